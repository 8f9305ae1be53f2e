//! From an AdmissionReview body to the AdmissionReview answer, through the core.
//!
//! Shared by the HTTPS handlers and the offline `backup-guard review` command, so both answer
//! exactly alike.

use base64::Engine as _;
use kube::core::Status;
use serde::Serialize;

use crate::policy::{self, Context, Decision, DecodeError, Request};

/// Which webhook answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Webhook {
    Validate,
    Mutate,
}

impl Webhook {
    /// Metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Webhook::Validate => "validate",
            Webhook::Mutate => "mutate",
        }
    }
}

/// A decided request and the review to send back.
#[derive(Debug)]
pub struct Answered {
    pub request: Request,
    pub decision: Decision,
    pub review: ReviewOut,
}

/// The AdmissionReview sent back.
///
/// Our own type rather than kube's `AdmissionResponse`, which serializes `patch` as an array of
/// numbers instead of base64 (kube-rs/kube#1781) — the API server would reject every patch.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReviewOut {
    pub api_version: String,
    pub kind: &'static str,
    pub response: ResponseOut,
}

/// `response` of an AdmissionReview.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ResponseOut {
    pub uid: String,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Base64 of the RFC 6902 patch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// Decodes, decides and encodes one AdmissionReview.
pub fn answer(body: &[u8], webhook: Webhook, ctx: &Context<'_>) -> Result<Answered, DecodeError> {
    Ok(decide(Request::from_review_json(body)?, webhook, ctx))
}

/// Decides an already decoded request and encodes the answer (decoding needs no index lock).
pub fn decide(request: Request, webhook: Webhook, ctx: &Context<'_>) -> Answered {
    let decision = match webhook {
        Webhook::Validate => policy::validate(&request, ctx),
        Webhook::Mutate => policy::mutate(&request, ctx),
    };
    let review = response(&request, &decision);
    Answered {
        request,
        decision,
        review,
    }
}

fn api_version(request_version: &str) -> String {
    if request_version.is_empty() {
        "admission.k8s.io/v1".into()
    } else {
        request_version.into()
    }
}

/// The review for a decision: denials are 403 with the message; warnings and patch attached.
pub fn response(request: &Request, decision: &Decision) -> ReviewOut {
    let mut out = ResponseOut {
        uid: request.uid.clone(),
        allowed: decision.allowed,
        status: None,
        patch: None,
        patch_type: None,
        warnings: decision.warnings.clone(),
    };
    if !decision.allowed {
        out.status = Some(Status::failure(&decision.message, "Forbidden").with_code(403));
    }
    if let Some(patch) = &decision.patch {
        match serde_json::to_vec(patch) {
            Ok(bytes) => {
                out.patch = Some(base64::engine::general_purpose::STANDARD.encode(bytes));
                out.patch_type = Some("JSONPatch");
            }
            // A patch of strings always serializes; fail closed if it ever does not.
            Err(e) => {
                out.allowed = false;
                out.status = Some(
                    Status::failure(
                        &format!("backup-guard: cannot encode patch: {e}"),
                        "InternalError",
                    )
                    .with_code(500),
                );
            }
        }
    }
    ReviewOut {
        api_version: api_version(&request.api_version),
        kind: "AdmissionReview",
        response: out,
    }
}

/// The answer to a body that could not be read: denied (fail closed), 400, with the reason.
pub fn invalid(error: &DecodeError) -> ReviewOut {
    ReviewOut {
        api_version: api_version(""),
        kind: "AdmissionReview",
        response: ResponseOut {
            uid: String::new(),
            allowed: false,
            status: Some(
                Status::failure(&format!("backup-guard: {error}"), "BadRequest").with_code(400),
            ),
            patch: None,
            patch_type: None,
            warnings: vec![],
        },
    }
}
