//! The HTTP side of the webhook, driven in-process with captured AdmissionReviews
//! (`tower::ServiceExt::oneshot`): status codes, body limits, content types, metrics.

mod support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request as HttpRequest, StatusCode};
use backup_guard::metrics::Metrics;
use backup_guard::policy::Policy;
use backup_guard::server::routes::{metrics_router, webhook_router, DEADLINE, MAX_BODY};
use backup_guard::server::Shared;
use http_body_util::BodyExt;
use serde_json::Value;
use support::fixtures::{index, KEY};
use tower::ServiceExt;

fn shared() -> Arc<Shared> {
    let s = Shared::new(Policy::default(), KEY.to_vec(), Metrics::new(), None);
    *s.write_index() = index();
    s
}

fn post(path: &str, content_type: &str, body: Vec<u8>) -> HttpRequest<Body> {
    HttpRequest::post(path)
        .header("content-type", content_type)
        .body(Body::from(body))
        .expect("request builds")
}

async fn call(s: &Arc<Shared>, req: HttpRequest<Body>) -> (StatusCode, Vec<u8>) {
    let resp = webhook_router(s.clone())
        .oneshot(req)
        .await
        .expect("router answers");
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes()
        .to_vec();
    (status, body)
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(support::fixtures::path(&format!("admission/{name}"))).expect("fixture")
}

#[tokio::test]
async fn delete_backup_is_answered_200_with_a_403_denial_and_counted() {
    let s = shared();
    let (status, body) = call(
        &s,
        post(
            "/validate",
            "application/json",
            fixture("delete-backup-by-user.json"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["kind"], "AdmissionReview");
    assert_eq!(v["response"]["allowed"], false);
    assert_eq!(v["response"]["status"]["code"], 403);
    let req: Value = serde_json::from_slice(&fixture("delete-backup-by-user.json")).expect("json");
    assert_eq!(v["response"]["uid"], req["request"]["uid"]);
    let metrics = s.metrics.render();
    assert!(metrics.contains(r#"backup_guard_admission_requests_total{decision="denied",operation="DELETE",resource="backups",webhook="validate"} 1"#), "{metrics}");
    assert!(
        metrics
            .contains(r#"backup_guard_blocked_deletions_total{actor="user",resource="backups"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("backup_guard_admission_duration_seconds_count{webhook=\"validate\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn mutate_returns_a_base64_json_patch() {
    let s = shared();
    let (status, body) = call(
        &s,
        post(
            "/mutate",
            "application/json",
            fixture("create-vsc-delete-policy.json"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["response"]["allowed"], true);
    assert_eq!(v["response"]["patchType"], "JSONPatch");
    use base64::Engine as _;
    let patch = base64::engine::general_purpose::STANDARD
        .decode(
            v["response"]["patch"]
                .as_str()
                .expect("patch is a base64 string"),
        )
        .expect("base64");
    let ops: Value = serde_json::from_slice(&patch).expect("patch is JSON");
    assert_eq!(
        ops[0],
        serde_json::json!({"op": "add", "path": "/spec/deletionPolicy", "value": "Retain"})
    );
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let (status, _) = call(
        &shared(),
        post(
            "/validate",
            "text/plain",
            fixture("delete-backup-by-user.json"),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn malformed_json_is_400_with_a_message() {
    let s = shared();
    let (status, body) = call(
        &s,
        post(
            "/validate",
            "application/json",
            b"{\"kind\":\"AdmissionReview\",".to_vec(),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let v: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(v["response"]["allowed"], false);
    assert!(v["response"]["status"]["message"]
        .as_str()
        .is_some_and(|m| m.contains("not a valid AdmissionReview")));
    assert!(s.metrics.render().contains(r#"decision="error""#));
}

#[tokio::test]
async fn oversize_body_is_413() {
    let (status, _) = call(
        &shared(),
        post("/validate", "application/json", vec![b' '; MAX_BODY + 1]),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn readyz_waits_for_index_and_policy() {
    let s = shared();
    let get = |p: &str| {
        HttpRequest::get(p)
            .body(Body::empty())
            .expect("request builds")
    };
    let resp = metrics_router(s.clone())
        .oneshot(get("/readyz"))
        .await
        .expect("answers");
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    s.readiness
        .index_synced
        .store(true, std::sync::atomic::Ordering::Release);
    s.readiness
        .policy_loaded
        .store(true, std::sync::atomic::Ordering::Release);
    let resp = metrics_router(s.clone())
        .oneshot(get("/readyz"))
        .await
        .expect("answers");
    assert_eq!(resp.status(), StatusCode::OK);
    s.readiness
        .shutting_down
        .store(true, std::sync::atomic::Ordering::Release);
    let resp = metrics_router(s.clone())
        .oneshot(get("/readyz"))
        .await
        .expect("answers");
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    let resp = metrics_router(s)
        .oneshot(get("/livez"))
        .await
        .expect("answers");
    assert_eq!(resp.status(), StatusCode::OK);
}

/// A client that sends its headers and never the body (a stalled or slowloris connection) is cut
/// off at the deadline with 408, inside the API server's timeoutSeconds, and nothing is decided.
/// Tokio's clock is paused: it jumps to the deadline once nothing else can run.
#[tokio::test(start_paused = true)]
async fn a_body_that_never_arrives_is_cut_off_at_the_deadline() {
    let s = shared();
    let never = futures::stream::pending::<Result<Vec<u8>, std::io::Error>>();
    let started = tokio::time::Instant::now();
    let request = HttpRequest::post("/validate")
        .header("content-type", "application/json")
        .body(Body::from_stream(never))
        .expect("request builds");
    // Without a deadline the call would wait forever: fail instead of hanging.
    let (status, _) = tokio::time::timeout(DEADLINE * 2, call(&s, request))
        .await
        .expect("answered before twice the deadline");
    let waited = started.elapsed();
    assert_eq!(status, StatusCode::REQUEST_TIMEOUT);
    assert!(
        waited >= DEADLINE && waited < DEADLINE + std::time::Duration::from_millis(50),
        "answered after {waited:?}"
    );
    let metrics = s.metrics.render();
    assert!(
        !metrics.contains("backup_guard_admission_requests_total{"),
        "a request that never arrived was counted:\n{metrics}"
    );
}
