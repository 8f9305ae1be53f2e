//! From an AdmissionReview body to the AdmissionReview answer, through the core.
//!
//! Shared by the HTTPS handlers and the offline `backup-guard review` command, so both answer
//! exactly alike.

use kube::core::admission::{AdmissionResponse, AdmissionReview};
use kube::core::{DynamicObject, Status, TypeMeta};

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
    pub review: AdmissionReview<DynamicObject>,
}

/// Decodes, decides and encodes one AdmissionReview.
pub fn answer(body: &[u8], webhook: Webhook, ctx: &Context<'_>) -> Result<Answered, DecodeError> {
    let request = Request::from_review_json(body)?;
    let decision = match webhook {
        Webhook::Validate => policy::validate(&request, ctx),
        Webhook::Mutate => policy::mutate(&request, ctx),
    };
    let review = response(&request, &decision).into_review();
    Ok(Answered {
        request,
        decision,
        review,
    })
}

/// The AdmissionResponse for a decision: denials are 403 with the message, warnings and patch attached.
pub fn response(request: &Request, decision: &Decision) -> AdmissionResponse {
    let mut resp = AdmissionResponse::invalid("");
    resp.types = TypeMeta {
        api_version: if request.api_version.is_empty() {
            "admission.k8s.io/v1".into()
        } else {
            request.api_version.clone()
        },
        kind: "AdmissionReview".into(),
    };
    resp.uid = request.uid.clone();
    resp.allowed = true;
    resp.result = Status::success();
    if !decision.allowed {
        resp.result = Status::failure(&decision.message, "Forbidden").with_code(403);
        resp.allowed = false;
    }
    if !decision.warnings.is_empty() {
        resp.warnings = Some(decision.warnings.clone());
    }
    if let Some(patch) = &decision.patch {
        match resp.clone().with_patch(patch.clone()) {
            Ok(patched) => resp = patched,
            // A patch of strings always serializes; fail closed if it ever does not.
            Err(e) => {
                resp.allowed = false;
                resp.result = Status::failure(
                    &format!("backup-guard: cannot encode patch: {e}"),
                    "InternalError",
                )
                .with_code(500);
            }
        }
    }
    resp
}

/// The answer to a body that could not be read: denied (fail closed), 400, with the reason.
pub fn invalid(error: &DecodeError) -> AdmissionReview<DynamicObject> {
    let mut resp = AdmissionResponse::invalid(format!("backup-guard: {error}"));
    resp.result.code = 400;
    resp.into_review()
}
