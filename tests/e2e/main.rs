//! The guard against a real kube-apiserver, driven with the real kubectl (`make e2e`).
//! Each test is named after what a user does; `hack/e2e/run.sh` brings up the cluster and
//! the guard, and afterwards proves the `seed_`, `kubectl_delete_backup_` and
//! `velero_backup_delete_` scenarios fail when the webhook is not registered.

mod controller;
mod kube;

use kube::{eventually, kubectl, kubectl_stdin, metric, Who};

fn set_policy(yaml: &str) {
    let before = metric("backup_guard_policy_reloads_total");
    let cm = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: backup-guard-policy, namespace: backup-guard, annotations: {{e2e/nonce: \"{}\"}}}}\ndata:\n  policy.yaml: |\n{}\n",
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()),
        yaml.lines().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
    );
    assert!(kubectl_stdin(Who::Admin, "apply -f -", &cm).ok);
    eventually(20, "the guard to reload its policy", || {
        metric("backup_guard_policy_reloads_total") > before
    });
}

fn backup(ns: &str, name: &str, expiration: &str, extra_labels: &str) -> String {
    format!(
        r#"apiVersion: velero.io/v1
kind: Backup
metadata:
  name: {name}
  namespace: {ns}
  labels: {{velero.io/storage-location: default{extra_labels}}}
spec: {{storageLocation: default, ttl: 720h0m0s, includedNamespaces: ["*"]}}
status: {{phase: Completed, startTimestamp: "2026-11-01T02:00:00Z", expiration: "{expiration}"}}
"#
    )
}

const LATER: &str = "2099-01-01T00:00:00Z";
const EXPIRED: &str = "2020-01-01T00:00:00Z";

/// A fresh namespace holding the given backups (created as Velero would), indexed by the guard.
fn namespace_with_backups(ns: &str, backups: &[(&str, &str, &str)]) {
    let _ = kubectl(Who::Admin, &format!("create namespace {ns}"));
    for (name, exp, labels) in backups {
        let r = kubectl_stdin(Who::Velero, "apply -f -", &backup(ns, name, exp, labels));
        assert!(r.ok, "creating backup {name}: {}", r.stderr);
    }
    // Indexed once a namespace deletion would name them all (denied, or warned in audit mode).
    let expected = format!("holds {} protected", backups.len());
    eventually(20, "the guard to index the backups", || {
        let r = kubectl(
            Who::Alice,
            &format!("delete namespace {ns} --dry-run=server"),
        );
        r.stderr.contains(&expected) || std::env::var("E2E_EXPECT_UNGUARDED").is_ok()
    });
}

fn exists(args: &str) -> bool {
    kubectl(Who::Admin, &format!("get {args}")).ok
}

#[test]
fn seed_kubectl_delete_namespace_with_backups_is_denied_before_it_turns_terminating() {
    set_policy("mode: enforce");
    namespace_with_backups("seed-a", &[("daily-1", LATER, ""), ("daily-2", LATER, "")]);
    let blocked =
        metric(r#"backup_guard_blocked_deletions_total{actor="user",resource="namespaces"}"#);
    let r = kubectl(Who::Alice, "delete namespace seed-a");
    assert!(!r.ok, "the namespace deletion must be refused");
    assert!(r.stderr.contains("denied the request"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("namespace seed-a holds 2 protected Velero backup(s) (daily-1, daily-2)"),
        "{}",
        r.stderr
    );
    let phase = kubectl(
        Who::Admin,
        "get namespace seed-a -o jsonpath={.status.phase}",
    );
    assert_eq!(phase.stdout.trim(), "Active");
    assert!(exists("-n seed-a backup daily-1"));
    eventually(20, "a DeletionBlocked Event for the namespace", || {
        kubectl(Who::Admin, "-n default get events -o jsonpath={range.items[*]}{.reason}/{.involvedObject.name}{\"\\n\"}{end}")
            .stdout
            .contains("DeletionBlocked/seed-a")
    });
    assert!(
        metric(r#"backup_guard_blocked_deletions_total{actor="user",resource="namespaces"}"#)
            > blocked
    );
}

#[test]
fn seed_neuter_mode_lets_the_namespace_go_and_warns() {
    namespace_with_backups("seed-b", &[("daily-1", LATER, "")]);
    set_policy("mode: neuter");
    let r = kubectl(Who::Alice, "delete namespace seed-b --wait=false");
    set_policy("mode: enforce");
    assert!(r.ok, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("Warning: backup-guard: namespace seed-b: it holds 1 protected backups"),
        "{}",
        r.stderr
    );
    assert!(
        metric(
            r#"backup_guard_admission_requests_total{decision="neutered",operation="DELETE",resource="namespaces",webhook="validate"}"#
        ) >= 1.0
    );
}

#[test]
fn kubectl_delete_backup_in_each_mode() {
    namespace_with_backups(
        "modes",
        &[
            ("b-enforce", LATER, ""),
            ("b-neuter", LATER, ""),
            ("b-audit", LATER, ""),
            ("b-off", LATER, ""),
        ],
    );
    set_policy("mode: enforce");
    let dry = kubectl(
        Who::Alice,
        "-n modes delete backup b-enforce --dry-run=server",
    );
    assert!(
        !dry.ok && dry.stderr.contains("backup modes/b-enforce is protected"),
        "{}",
        dry.stderr
    );
    let r = kubectl(Who::Alice, "-n modes delete backup b-enforce");
    assert!(!r.ok);
    assert!(
        r.stderr.contains(
            "kubectl annotate backup b-enforce -n modes backup-guard.io/delete-request='<reason>'"
        ),
        "{}",
        r.stderr
    );
    assert!(exists("-n modes backup b-enforce"));

    set_policy("mode: neuter");
    let r = kubectl(Who::Alice, "-n modes delete backup b-neuter");
    assert!(
        r.ok && r
            .stderr
            .contains("Warning: backup-guard: backup modes/b-neuter"),
        "{}",
        r.stderr
    );
    assert!(!exists("-n modes backup b-neuter"));

    set_policy("mode: audit");
    let r = kubectl(Who::Alice, "-n modes delete backup b-audit");
    assert!(
        r.ok && r
            .stderr
            .contains("Warning: backup-guard: backup modes/b-audit"),
        "{}",
        r.stderr
    );

    set_policy("mode: off");
    let r = kubectl(Who::Alice, "-n modes delete backup b-off");
    assert!(r.ok && !r.stderr.contains("backup-guard"), "{}", r.stderr);
    set_policy("mode: enforce");
}

fn delete_request(ns: &str, backup: &str) -> String {
    format!(
        "apiVersion: velero.io/v1\nkind: DeleteBackupRequest\nmetadata: {{generateName: {backup}-, namespace: {ns}, labels: {{velero.io/backup-name: {backup}}}}}\nspec: {{backupName: {backup}}}\n"
    )
}

#[test]
fn velero_backup_delete_and_the_ttl_collector() {
    set_policy("mode: enforce");
    namespace_with_backups(
        "dbr",
        &[
            ("fresh", LATER, ""),
            ("old", EXPIRED, ""),
            ("held", EXPIRED, ", backup-guard.io/hold: \"true\""),
        ],
    );
    let r = kubectl_stdin(Who::Alice, "create -f -", &delete_request("dbr", "fresh"));
    assert!(
        !r.ok
            && r.stderr
                .contains("refusing a DeleteBackupRequest for backup dbr/fresh"),
        "{}",
        r.stderr
    );
    let r = kubectl_stdin(Who::Velero, "create -f -", &delete_request("dbr", "fresh"));
    assert!(
        !r.ok && r.stderr.contains("it has not expired"),
        "{}",
        r.stderr
    );
    let r = kubectl_stdin(Who::Velero, "create -f -", &delete_request("dbr", "old"));
    assert!(
        r.ok,
        "the TTL collector may delete an expired backup: {}",
        r.stderr
    );
    let r = kubectl_stdin(Who::Velero, "create -f -", &delete_request("dbr", "held"));
    assert!(!r.ok && r.stderr.contains("legal hold"), "{}", r.stderr);
    let r = kubectl_stdin(Who::Alice, "create -f -", &delete_request("dbr", "old"));
    assert!(!r.ok, "a user may not pose as the collector");
}

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
}

#[test]
fn storage_location_and_snapshot_contents_are_guarded() {
    set_policy("mode: enforce");
    namespace_with_backups("bsl", &[("in-default", LATER, "")]);
    let bsl = "apiVersion: velero.io/v1\nkind: BackupStorageLocation\nmetadata: {name: default, namespace: bsl}\nspec: {provider: aws, objectStorage: {bucket: b}}\n";
    assert!(kubectl_stdin(Who::Velero, "apply -f -", bsl).ok);
    let r = kubectl(Who::Alice, "-n bsl delete backupstoragelocation default");
    assert!(
        !r.ok && r.stderr.contains("where 1 backup(s) are stored"),
        "{}",
        r.stderr
    );

    let vsc = "apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshotContent\nmetadata: {name: snapcontent-e2e, labels: {velero.io/backup-name: in-default}}\nspec: {deletionPolicy: Delete, driver: ebs.csi.aws.com, source: {snapshotHandle: snap-1}, volumeSnapshotRef: {name: vs, namespace: bsl}}\n";
    assert!(kubectl_stdin(Who::Velero, "create -f -", vsc).ok);
    let policy = kubectl(
        Who::Admin,
        "get volumesnapshotcontent snapcontent-e2e -o jsonpath={.spec.deletionPolicy}",
    );
    assert_eq!(
        policy.stdout, "Retain",
        "a Velero-labelled content created with Delete comes back Retain"
    );

    set_policy("snapshots: {retainContents: false}");
    let vsc2 = vsc.replace("snapcontent-e2e", "snapcontent-e2e-2");
    assert!(kubectl_stdin(Who::Velero, "create -f -", &vsc2).ok);
    set_policy("mode: enforce");
    eventually(10, "the guard to index the content", || {
        !kubectl(
            Who::Alice,
            "delete volumesnapshotcontent snapcontent-e2e-2 --dry-run=server",
        )
        .ok
    });
    let r = kubectl(Who::Alice, "delete volumesnapshotcontent snapcontent-e2e-2");
    assert!(
        !r.ok && r.stderr.contains("would delete the storage snapshot"),
        "{}",
        r.stderr
    );
}

#[test]
fn policy_configmap_edited_live_and_an_invalid_edit_keeps_the_last_good_policy() {
    set_policy("mode: audit");
    namespace_with_backups("live", &[("one", LATER, "")]);
    let r = kubectl(Who::Alice, "-n live delete backup one --dry-run=server");
    assert!(
        r.ok && r.stderr.contains("Warning: backup-guard"),
        "audit mode took effect: {}",
        r.stderr
    );
    set_policy("mode: enforce");
    let failures = metric(r#"backup_guard_policy_reloads_total{result="failure"}"#);
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: backup-guard-policy, namespace: backup-guard}\ndata:\n  policy.yaml: \"mode: sometimes\"\n";
    assert!(kubectl_stdin(Who::Admin, "apply -f -", cm).ok);
    eventually(20, "the invalid policy to be refused", || {
        metric(r#"backup_guard_policy_reloads_total{result="failure"}"#) > failures
    });
    assert!(
        !kubectl(Who::Alice, "-n live delete backup one").ok,
        "the last good policy (enforce) still works"
    );
    eventually(20, "an InvalidPolicy Event on the ConfigMap", || {
        kubectl(
            Who::Admin,
            "-n backup-guard get events -o jsonpath={.items[*].reason}",
        )
        .stdout
        .contains("InvalidPolicy")
    });
    set_policy("mode: enforce");
}

#[test]
fn zz_crd_deletion_is_refused_while_backups_exist() {
    set_policy("mode: enforce");
    namespace_with_backups("crd", &[("last", LATER, "")]);
    let r = kubectl(Who::Alice, "delete crd backups.velero.io");
    assert!(!r.ok && r.stderr.contains("still holds"), "{}", r.stderr);
    assert!(exists("crd backups.velero.io"));
}

#[test]
fn index_follows_creates_updates_and_deletes() {
    set_policy("mode: enforce");
    let gauge = || metric(r#"backup_guard_protected_objects{resource="backups"}"#);
    let before = gauge();
    namespace_with_backups("watch", &[("w-1", LATER, ""), ("w-2", LATER, "")]);
    eventually(20, "two more protected backups", || gauge() == before + 2.0);
    assert!(
        kubectl(
            Who::Alice,
            "-n watch annotate backup w-1 backup-guard.io/delete-request=done"
        )
        .ok
    );
    eventually(
        20,
        "the sanctioned backup to leave the protected count",
        || gauge() == before + 1.0,
    );
    assert!(kubectl(Who::Alice, "-n watch delete backup w-1 --wait=false").ok);
    let r = kubectl(Who::Velero, "-n watch delete backup w-2");
    assert!(r.ok, "{}", r.stderr);
    eventually(20, "the deletions to reach the index", || gauge() == before);
    assert!(
        kubectl(Who::Alice, "delete namespace watch --wait=false").ok,
        "an empty namespace may go"
    );
}
