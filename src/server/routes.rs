//! HTTP: `/validate` and `/mutate` on the HTTPS port; `/metrics`, `/livez`, `/readyz` on the
//! metrics port. Body limits, content type, deadline, decode, decide, encode, record.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tower_http::timeout::TimeoutLayer;

use super::events::Notice;
use super::state::{now, Shared};
use crate::policy::{Context, Outcome, Request};
use crate::webhook::review::{decide, invalid, ReviewOut, Webhook};

/// Largest AdmissionReview accepted: an object and its old copy, each up to etcd's 1.5 MiB.
pub const MAX_BODY: usize = 4 * 1024 * 1024;
/// Per-request deadline, well inside the webhook's `timeoutSeconds` (5 s in the chart).
pub const DEADLINE: Duration = Duration::from_secs(3);

/// The webhook router.
pub fn webhook_router(shared: Arc<Shared>) -> Router {
    with_limits(
        Router::new()
            .route("/validate", post(validate))
            .route("/mutate", post(mutate)),
    )
    .with_state(shared)
}

/// The body limit and the deadline every webhook route has (the bench's null webhook too).
pub fn with_limits<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    router
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            DEADLINE,
        ))
}

/// The metrics and probes router.
pub fn metrics_router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .with_state(shared)
}

async fn validate(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    handle(&s, Webhook::Validate, &headers, &body)
}

async fn mutate(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    handle(&s, Webhook::Mutate, &headers, &body)
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

fn handle(s: &Shared, webhook: Webhook, headers: &HeaderMap, body: &[u8]) -> Response {
    let started = Instant::now();
    if !is_json(headers) {
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "backup-guard: send an AdmissionReview as application/json\n",
        )
            .into_response();
    }
    let request = match Request::from_review_json(body) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(webhook = webhook.as_str(), error = %e, "malformed admission request");
            s.metrics
                .admission_requests
                .with_label_values(&[webhook.as_str(), "UNKNOWN", "other", "error"])
                .inc();
            return (StatusCode::BAD_REQUEST, json(&invalid(&e))).into_response();
        }
    };
    let policy = s.policy.load();
    let index = s.read_index();
    let ctx = Context {
        policy: &policy,
        index: &index,
        now: now(),
        key: &s.key,
    };
    let answered = decide(request, webhook, &ctx);
    drop(index);
    let (req, d) = (&answered.request, &answered.decision);
    // Debug-level span: at the default level it costs nothing; the lines that matter (denied,
    // warned) carry the same fields themselves.
    let span = tracing::debug_span!("admission", uid = %req.uid, operation = req.operation.as_str(),
        resource = req.resource.as_str(), namespace = %req.namespace, name = %req.name,
        decision = d.outcome.as_str(), webhook = webhook.as_str());
    span.in_scope(|| record(s, webhook, &answered));
    s.metrics
        .admission_duration
        .with_label_values(&[webhook.as_str()])
        .observe(started.elapsed().as_secs_f64());
    json(&answered.review)
}

/// The review as JSON. axum's `Json` starts from 128 bytes and grows three times for a denial;
/// this buffer holds one. Encoding a review cannot fail; if it ever does, the answer is a 500,
/// which the API server treats by that webhook entry's failurePolicy (each entry has its own).
fn json(review: &ReviewOut) -> Response {
    let mut body = Vec::with_capacity(1024);
    match serde_json::to_writer(&mut body, review) {
        Ok(()) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("backup-guard: cannot encode the review: {e}\n"),
        )
            .into_response(),
    }
}

fn record(s: &Shared, webhook: Webhook, a: &crate::webhook::Answered) {
    let (req, d) = (&a.request, &a.decision);
    if d.mode == crate::policy::Mode::Off {
        return;
    }
    s.metrics
        .admission_requests
        .with_label_values(&[
            webhook.as_str(),
            req.operation.as_str(),
            req.resource.as_str(),
            d.outcome.as_str(),
        ])
        .inc();
    if let Some((resource, actor)) = d.blocked {
        s.metrics
            .blocked_deletions
            .with_label_values(&[resource.as_str(), actor.as_str()])
            .inc();
    }
    if d.outcome != Outcome::Allowed {
        // The reason, not the full message: the message is in the response and the Event.
        // Plain `&str` fields: a `%` field goes through `fmt` for every line.
        tracing::info!(
            uid = req.uid.as_str(),
            operation = req.operation.as_str(),
            resource = req.resource.as_str(),
            namespace = req.namespace.as_str(),
            name = req.name.as_str(),
            decision = d.outcome.as_str(),
            reason = d.reason.map_or("", crate::policy::Reason::as_str),
            user = req.user.username.as_str(),
            dry_run = req.dry_run,
            "guarded request"
        );
    }
    let worth_an_event = matches!(
        d.outcome,
        Outcome::Denied | Outcome::Warned | Outcome::Neutered
    ) && d.reason.is_some();
    // The namespace controller deletes only inside a terminating namespace, where the API server
    // refuses every new Event: a cascade's Event is the one on the namespace's own DELETE.
    let namespace_cascade = req.user.username == crate::policy::NAMESPACE_CONTROLLER;
    if worth_an_event && !req.dry_run && !namespace_cascade {
        if let Some(tx) = &s.notices {
            // Never wait on the request path: a full queue drops the Event, the metric and log stay.
            let _ = tx.try_send(Notice::from_decision(req, d));
        }
    }
}

async fn metrics(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        s.metrics.render(),
    )
}

async fn readyz(State(s): State<Arc<Shared>>) -> Response {
    let r = &s.readiness;
    if r.ready() {
        return (StatusCode::OK, "ok\n").into_response();
    }
    let why = format!(
        "not ready: index synced={}, policy loaded={}, shutting down={}\n",
        r.index_synced.load(std::sync::atomic::Ordering::Acquire),
        r.policy_loaded.load(std::sync::atomic::Ordering::Acquire),
        r.shutting_down.load(std::sync::atomic::Ordering::Acquire)
    );
    (StatusCode::SERVICE_UNAVAILABLE, why).into_response()
}
