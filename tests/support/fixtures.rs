//! Loading the captured AdmissionReview fixtures and deciding them through the core.

#![allow(dead_code)]

use std::path::PathBuf;

use backup_guard::index::Index;
use backup_guard::policy::{self, Context, Decision, Object, Policy, Request, Resource};
use jiff::Timestamp;
use serde_json::Value;

/// The signing key tests sign and verify with.
pub const KEY: &[u8] = b"test-signing-key-0123456789abcdef";

/// Path of a file under tests/fixtures.
pub fn path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// An AdmissionReview fixture as JSON.
pub fn review(name: &str) -> Value {
    let text = std::fs::read_to_string(path(&format!("admission/{name}"))).expect("fixture exists");
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// Unix seconds of an RFC 3339 time.
pub fn at(time: &str) -> i64 {
    time.parse::<Timestamp>().expect("valid time").as_second()
}

/// The day the fixtures were captured, before any backup expired.
pub fn capture_day() -> i64 {
    at("2026-11-23T21:00:00Z")
}

/// A policy from YAML.
pub fn policy(yaml: &str) -> Policy {
    Policy::parse(yaml).expect("test policy is valid")
}

/// The velero namespace as captured (Backups, the BSL), plus the Velero snapshot content.
pub fn index() -> Index {
    let mut idx = Index::new();
    let text =
        std::fs::read_to_string(path("objects/velero-namespace.yaml")).expect("objects fixture");
    idx.load_text(&text, KEY).expect("objects load");
    let vsc = review("create-vsc-delete-policy.json");
    let mut obj = vsc["request"]["object"].clone();
    obj["metadata"]["name"] = vsc["request"]["name"].clone();
    apply(&mut idx, Resource::VolumeSnapshotContent, &obj);
    idx
}

/// Puts one object into the index, as the watch would.
pub fn apply(idx: &mut Index, resource: Resource, obj: &Value) {
    let view: Object = serde_json::from_value(obj.clone()).expect("object decodes");
    idx.apply(resource, &view, KEY);
}

fn request(review: &Value) -> Request {
    Request::from_review_json(&serde_json::to_vec(review).expect("encodes"))
        .expect("fixture decodes")
}

/// The validating webhook's decision.
pub fn validate(review: &Value, policy: &Policy, index: &Index, now: i64) -> Decision {
    let ctx = Context {
        policy,
        index,
        now,
        key: KEY,
    };
    policy::validate(&request(review), &ctx)
}

/// The mutating webhook's decision.
pub fn mutate(review: &Value, policy: &Policy, index: &Index, now: i64) -> Decision {
    let ctx = Context {
        policy,
        index,
        now,
        key: KEY,
    };
    policy::mutate(&request(review), &ctx)
}

/// The review's new object with the mutating webhook's patch applied.
pub fn mutated_object(review: &Value, policy: &Policy, index: &Index, now: i64) -> Value {
    let d = mutate(review, policy, index, now);
    let mut obj = review["request"]["object"].clone();
    if let Some(patch) = d.patch {
        json_patch::patch(&mut obj, &patch).expect("patch applies");
    }
    obj
}

/// The same review with a different user.
pub fn as_user(mut review: Value, user: &str, groups: &[&str]) -> Value {
    review["request"]["userInfo"] = serde_json::json!({"username": user, "groups": groups});
    review
}

/// `kubectl delete backup` of the given object (from the captured delete).
pub fn delete_of(obj: &Value) -> Value {
    let mut r = review("delete-backup-by-user.json");
    r["request"]["name"] = obj["metadata"]["name"].clone();
    r["request"]["oldObject"] = obj.clone();
    r
}

/// An UPDATE from `old` to `new` (from the captured annotate).
pub fn update_of(old: &Value, new: &Value) -> Value {
    let mut r = review("update-backup-delete-request.json");
    r["request"]["name"] = new["metadata"]["name"].clone();
    r["request"]["oldObject"] = old.clone();
    r["request"]["object"] = new.clone();
    r
}

/// Daily-2 with alice's delete request stamped by the mutating webhook at `now`.
pub fn requested_daily_2(policy: &Policy, index: &Index, now: i64) -> Value {
    mutated_object(
        &review("update-backup-delete-request.json"),
        policy,
        index,
        now,
    )
}
