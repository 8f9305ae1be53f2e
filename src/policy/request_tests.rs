//! Tests of `request.rs`.
use super::*;

#[test]
fn nameless_cascade_delete_takes_its_name_from_old_object() {
    let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{
        "uid":"u1","kind":{"group":"velero.io","version":"v1","kind":"Backup"},
        "resource":{"group":"velero.io","version":"v1","resource":"backups"},
        "namespace":"velero","operation":"DELETE",
        "userInfo":{"username":"system:serviceaccount:kube-system:namespace-controller"},
        "oldObject":{"metadata":{"name":"daily-1","namespace":"velero","labels":null}},
        "dryRun":false}}"#;
    let r = Request::from_review_json(body).expect("decodes");
    assert_eq!(r.name, "daily-1");
    assert_eq!(r.resource, Resource::Backup);
    assert_eq!(r.operation, Operation::Delete);
}

#[test]
fn malformed_bodies_are_errors_not_panics() {
    for body in [
        &b""[..],
        b"{",
        b"[]",
        br#"{"kind":"AdmissionReview"}"#,
        br#"{"kind":"Pod","request":{}}"#,
        br#"{"kind":"AdmissionReview","request":{"uid":"x","resource":{"resource":"pods"},"operation":"PATCH"}}"#,
        br#"{"kind":"AdmissionReview","request":{"uid":1}}"#,
        b"{\"kind\":\"AdmissionReview\xff\"}",
    ] {
        assert!(Request::from_review_json(body).is_err());
    }
}

#[test]
fn unexpected_field_types_in_spec_read_as_absent() {
    let body =
        br#"{"kind":"AdmissionReview","request":{"uid":"x","resource":{"group":"g","resource":"r"},
        "operation":"CREATE","object":{"spec":{"ttl":5,"backupName":{"a":[1,{"b":null}]},
        "storageLocation":["x"],"deletionPolicy":null,"volumeSnapshotRef":"x",
        "provider":{},"objectStorage":"x","config":"x"},
        "status":{"phase":true,"expiration":-1.5,"boundVolumeSnapshotContentName":"c"}}}}"#;
    let r = Request::from_review_json(body).expect("decodes");
    let o = r.object.expect("object");
    assert_eq!(o.spec.ttl, None);
    assert_eq!(o.spec.backup_name, None);
    assert_eq!(o.spec.storage_location, None);
    assert_eq!(o.spec.deletion_policy, None);
    assert_eq!(o.spec.volume_snapshot_ref, None);
    assert_eq!(o.spec.provider, None);
    assert_eq!(o.spec.object_storage, None);
    assert_eq!(o.spec.config, None);
    assert_eq!(o.status.phase, None);
    assert_eq!(o.status.expiration, None);
    assert_eq!(
        o.status.bound_volume_snapshot_content_name.as_deref(),
        Some("c")
    );
}

#[test]
fn strings_with_escapes_decode() {
    let body =
        br#"{"kind":"AdmissionReview","request":{"uid":"x","resource":{"group":"g","resource":"r"},
        "operation":"CREATE","object":{"spec":{"ttl":"7\u0032h","backupName":"a\"b"}}}}"#;
    let spec = Request::from_review_json(body)
        .expect("decodes")
        .object
        .expect("object")
        .spec;
    assert_eq!(spec.ttl.as_deref(), Some("72h"));
    assert_eq!(spec.backup_name.as_deref(), Some("a\"b"));
}
