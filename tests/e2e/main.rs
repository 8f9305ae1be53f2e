//! The guard against a real kube-apiserver, driven with the real kubectl (`make e2e`).
//! Each test is named after what a user does; `hack/e2e/run.sh` brings up the cluster and
//! the guard, and afterwards proves the `seed_`, `kubectl_delete_backup_` and
//! `velero_backup_delete_` scenarios fail when the webhook is not registered.

mod controller;
mod deletions;
mod kube;
mod sanctions;

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

/// A Backup as Velero leaves it: started `spec.ttl` (720h) before its expiration.
fn backup(ns: &str, name: &str, expiration: &str, extra_labels: &str) -> String {
    let start = expiration
        .parse::<jiff::Timestamp>()
        .expect("an expiration")
        - jiff::SignedDuration::from_hours(720);
    format!(
        r#"apiVersion: velero.io/v1
kind: Backup
metadata:
  name: {name}
  namespace: {ns}
  labels: {{velero.io/storage-location: default{extra_labels}}}
spec: {{storageLocation: default, ttl: 720h0m0s, includedNamespaces: ["*"]}}
status: {{phase: Completed, startTimestamp: "{start}", expiration: "{expiration}"}}
"#
    )
}

const LATER: &str = "2099-01-01T00:00:00Z";
/// The label on everything the suite creates outside its own namespaces (and on those), which
/// hack/e2e/lib.sh's `e2e_sweep` removes from a `$KUBECONFIG` cluster before and after a run.
const SUITE: &str = "e2e.backup-guard.io/suite: \"true\"";
const EXPIRED: &str = "2020-01-01T00:00:00Z";

/// A fresh namespace holding the given backups (created as Velero would), indexed by the guard.
fn namespace_with_backups(ns: &str, backups: &[(&str, &str, &str)]) {
    let namespace =
        format!("apiVersion: v1\nkind: Namespace\nmetadata: {{name: {ns}, labels: {{{SUITE}}}}}\n");
    let _ = kubectl_stdin(Who::Admin, "create -f -", &namespace);
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
