//! Sanctioning a deletion on the object: the stamped request, forged stamps, two-person approval,
//! stale requests, holds and TTL tampering.

use super::kube::{eventually, kubectl, kubectl_stdin, Who};
use super::{namespace_with_backups, set_policy, LATER};

fn annotation(ns: &str, backup: &str, key: &str) -> String {
    let path = format!(
        "{{.metadata.annotations.{}}}",
        key.replace('.', "\\.").replace('/', "\\/")
    );
    kubectl(
        Who::Admin,
        &format!("-n {ns} get backup {backup} -o jsonpath={path}"),
    )
    .stdout
}

#[test]
fn request_is_stamped_then_sanctions_deletion_and_forged_stamps_are_refused() {
    set_policy("mode: enforce");
    namespace_with_backups("req", &[("wanted-gone", LATER, ""), ("other", LATER, "")]);
    let r = kubectl(
        Who::Alice,
        "-n req annotate backup wanted-gone backup-guard.io/delete-request=obsolete",
    );
    assert!(
        r.ok && r.stderr.contains("delete request stamped for alice"),
        "{}",
        r.stderr
    );
    assert_eq!(
        annotation("req", "wanted-gone", "backup-guard.io/delete-requested-by"),
        "alice"
    );
    assert!(!annotation("req", "wanted-gone", "backup-guard.io/delete-signature").is_empty());

    let r = kubectl(
        Who::Mallory,
        "-n req annotate backup other backup-guard.io/delete-requested-by=admin",
    );
    assert!(
        !r.ok && r.stderr.contains("written only by backup-guard"),
        "{}",
        r.stderr
    );

    eventually(20, "the sanctioned deletion to be allowed", || {
        kubectl(
            Who::Alice,
            "-n req delete backup wanted-gone --dry-run=server",
        )
        .ok
    });
    let r = kubectl(Who::Alice, "-n req delete backup wanted-gone --wait=false");
    assert!(r.ok, "{}", r.stderr);
    assert!(!kubectl(Who::Alice, "-n req delete backup other").ok);
}

#[test]
fn two_person_approval_and_stale_requests() {
    set_policy(
        "approval: {required: true, approvers: {groups: [backup-admins]}}\nrequest: {ttl: 4s}",
    );
    namespace_with_backups(
        "appr",
        &[("needs-two", LATER, ""), ("goes-stale", LATER, "")],
    );
    assert!(
        kubectl(
            Who::Alice,
            "-n appr annotate backup needs-two backup-guard.io/delete-request=obsolete"
        )
        .ok
    );
    let r = kubectl(
        Who::Alice,
        "-n appr delete backup needs-two --dry-run=server",
    );
    assert!(
        !r.ok && r.stderr.contains("awaits approval"),
        "{}",
        r.stderr
    );
    let r = kubectl(
        Who::Alice,
        "-n appr annotate backup needs-two backup-guard.io/delete-approval=me-myself",
    );
    assert!(
        !r.ok && r.stderr.contains("two-person rule"),
        "{}",
        r.stderr
    );
    let r = kubectl(
        Who::Bob,
        "-n appr annotate backup needs-two backup-guard.io/delete-approval=ok",
    );
    assert!(r.ok, "{}", r.stderr);
    assert_eq!(
        annotation("appr", "needs-two", "backup-guard.io/delete-approved-by"),
        "bob"
    );
    eventually(10, "the approved deletion to be allowed", || {
        kubectl(
            Who::Alice,
            "-n appr delete backup needs-two --dry-run=server",
        )
        .ok
    });

    assert!(
        kubectl(
            Who::Alice,
            "-n appr annotate backup goes-stale backup-guard.io/delete-request=obsolete"
        )
        .ok
    );
    assert!(
        kubectl(
            Who::Bob,
            "-n appr annotate backup goes-stale backup-guard.io/delete-approval=ok"
        )
        .ok
    );
    std::thread::sleep(std::time::Duration::from_secs(5));
    let r = kubectl(Who::Alice, "-n appr delete backup goes-stale");
    assert!(!r.ok && r.stderr.contains("has expired"), "{}", r.stderr);
    set_policy("mode: enforce");
}

#[test]
fn hold_release_needs_a_manager_and_ttl_tampering_is_refused() {
    set_policy("mode: enforce");
    namespace_with_backups(
        "hold",
        &[
            ("kept", LATER, ", backup-guard.io/hold: \"true\""),
            ("ttl", LATER, ""),
        ],
    );
    let r = kubectl(
        Who::Mallory,
        "-n hold label backup kept backup-guard.io/hold-",
    );
    assert!(
        !r.ok && r.stderr.contains("mallory is not a hold manager"),
        "{}",
        r.stderr
    );
    assert!(kubectl(Who::Bob, "-n hold label backup kept backup-guard.io/hold-").ok);

    let r = kubectl(
        Who::Alice,
        "-n hold patch backup ttl --type merge -p '{\"spec\":{\"ttl\":\"1h0m0s\"}}'",
    );
    assert!(
        !r.ok
            && r.stderr
                .contains("shortens spec.ttl from 720h0m0s to 1h0m0s"),
        "{}",
        r.stderr
    );
    let r = kubectl(Who::Alice, "-n hold patch backup ttl --type merge -p '{\"status\":{\"expiration\":\"2021-01-01T00:00:00Z\"}}'");
    assert!(
        !r.ok && r.stderr.contains("moves status.expiration earlier"),
        "{}",
        r.stderr
    );
    // The cleanup deletes in the location the Backup names: it is set once.
    let r = kubectl(
        Who::Alice,
        "-n hold patch backup ttl --type merge -p '{\"spec\":{\"storageLocation\":\"dr-site\"}}'",
    );
    assert!(
        !r.ok
            && r.stderr
                .contains("moves spec.storageLocation from default to dr-site"),
        "{}",
        r.stderr
    );
}

#[test]
fn a_backup_relabelled_into_a_milder_mode_is_refused() {
    set_policy("rules:\n- selector: {matchLabels: {env: dev}}\n  mode: audit");
    namespace_with_backups("relabel", &[("prod-1", LATER, "")]);
    let r = kubectl(Who::Alice, "-n relabel label backup prod-1 env=dev");
    assert!(
        !r.ok && r.stderr.contains("in mode audit instead of enforce"),
        "{}",
        r.stderr
    );
    // A label that keeps its mode passes.
    assert!(kubectl(Who::Alice, "-n relabel label backup prod-1 env=prod").ok);
    set_policy("mode: enforce");
}

#[test]
fn the_cleanup_finalizer_of_a_held_backup_cannot_be_stripped() {
    set_policy("mode: enforce");
    namespace_with_backups(
        "strip",
        &[("kept", LATER, ", backup-guard.io/hold: \"true\"")],
    );
    // As the controller leaves a held Backup whose cleanup the hold stopped (the finalizer's
    // writer is the controller; the guard polices its removal, not who adds it).
    let add = "-n strip patch backup kept --type merge -p '{\"metadata\":{\"finalizers\":[\"backup-guard.io/cleanup\"]}}'";
    assert!(kubectl(Who::Admin, add).ok);
    let strip = "-n strip patch backup kept --type merge -p '{\"metadata\":{\"finalizers\":null}}'";
    let r = kubectl(Who::Admin, strip);
    assert!(
        !r.ok && r.stderr.contains("which is on legal hold"),
        "{}",
        r.stderr
    );
    // Released by a hold manager, the finalizer may go.
    assert!(kubectl(Who::Bob, "-n strip label backup kept backup-guard.io/hold-").ok);
    assert!(kubectl(Who::Admin, strip).ok);
}

#[test]
fn a_backup_created_already_expired_is_refused() {
    set_policy("mode: neuter");
    namespace_with_backups("recreated", &[("daily-1", LATER, "")]);
    // As if deleted in neuter mode and applied again from an old copy, before Velero's sync.
    let copy = super::backup("recreated", "daily-0", super::EXPIRED, "");
    let r = kubectl_stdin(Who::Alice, "create -f -", &copy);
    assert!(!r.ok && r.stderr.contains("already past"), "{}", r.stderr);
    // Velero's own sync may (it brings a backup back with its own times).
    assert!(kubectl_stdin(Who::Velero, "create -f -", &copy).ok);
    set_policy("mode: enforce");
}
