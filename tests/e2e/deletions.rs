//! Deleting backups and what holds them, as users and Velero do it: `kubectl delete namespace`
//! and `kubectl delete backup` in each mode, `velero backup delete` and the TTL collector
//! (DeleteBackupRequests), storage locations and snapshot contents.

use super::kube::{eventually, kubectl, kubectl_stdin, metric, Who};
use super::{exists, namespace_with_backups, set_policy, EXPIRED, LATER, SUITE};

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
    // Pointed elsewhere, the location would send a sanctioned cleanup to another backup.
    let r = kubectl(
        Who::Alice,
        "-n bsl patch backupstoragelocation default --type merge -p '{\"spec\":{\"objectStorage\":{\"bucket\":\"other\"}}}'",
    );
    assert!(
        !r.ok
            && r.stderr
                .contains("changes spec.objectStorage.bucket from \"b\" to \"other\""),
        "{}",
        r.stderr
    );

    let vsc = &format!("apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshotContent\nmetadata: {{name: snapcontent-e2e, labels: {{{SUITE}, velero.io/backup-name: in-default}}}}\nspec: {{deletionPolicy: Delete, driver: ebs.csi.aws.com, source: {{snapshotHandle: snap-1}}, volumeSnapshotRef: {{name: vs, namespace: bsl}}}}\n");
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
fn velero_backup_delete_and_the_ttl_collector_a_hold_placed_after_the_request_stops_velero() {
    set_policy("mode: enforce");
    namespace_with_backups("taken", &[("old", EXPIRED, "")]);
    // The TTL collector's request is let through: the backup has expired and is not held.
    let r = kubectl_stdin(Who::Velero, "create -f -", &delete_request("taken", "old"));
    assert!(r.ok, "{}", r.stderr);
    // While it waits in Velero's queue, a hold manager holds the backup.
    let hold = "-n taken label backup old backup-guard.io/hold=true";
    assert!(kubectl(Who::Bob, hold).ok);
    let blocked =
        || metric(r#"backup_guard_blocked_deletions_total{actor="velero",resource="backups"}"#);
    let before = blocked();
    // Velero takes the request: its first write before deleting anything is refused.
    let deleting =
        "-n taken patch backup old --type merge -p '{\"status\":{\"phase\":\"Deleting\"}}'";
    let r = kubectl(Who::Velero, deleting);
    assert!(
        !r.ok
            && r.stderr
                .contains("refusing to let Velero start deleting backup taken/old")
            && r.stderr.contains("it is on legal hold"),
        "{}",
        r.stderr
    );
    // (kube-apiserver 1.20 may call the webhook more than once for one refused PATCH.)
    assert!(blocked() > before);
    // Released, the expired backup is the collector's again.
    assert!(kubectl(Who::Bob, "-n taken label backup old backup-guard.io/hold-").ok);
    let r = kubectl(Who::Velero, deleting);
    assert!(r.ok, "{}", r.stderr);
    // Say that deletion fails part-way (the phase stays `Deleting`) and the backup is held
    // again: Velero's next request writes the phase again, and is refused the same.
    assert!(kubectl(Who::Bob, hold).ok);
    let r = kubectl(Who::Velero, deleting);
    assert!(
        !r.ok && r.stderr.contains("it is on legal hold"),
        "{}",
        r.stderr
    );
}

#[test]
fn neuter_mode_keeps_a_held_backup_and_its_namespace() {
    // Indexed under enforce (namespace_with_backups waits for the enforce message), then neuter.
    set_policy("mode: enforce");
    namespace_with_backups(
        "neuter-held",
        &[
            ("kept", LATER, ", backup-guard.io/hold: \"true\""),
            ("free", LATER, ""),
        ],
    );
    set_policy("mode: neuter");
    let r = kubectl(Who::Alice, "-n neuter-held delete backup kept");
    assert!(!r.ok && r.stderr.contains("not a held one"), "{}", r.stderr);
    let r = kubectl(Who::Alice, "delete namespace neuter-held --dry-run=server");
    assert!(
        !r.ok
            && r.stderr
                .contains("namespace neuter-held holds 1 Velero backup(s) on legal hold (kept)"),
        "{}",
        r.stderr
    );
    // Velero's sync may not remove it either (it would come back without its hold).
    assert!(!kubectl(Who::Velero, "-n neuter-held delete backup kept").ok);
    // The unheld one goes from the cluster, with a warning, as neuter says.
    let r = kubectl(Who::Alice, "-n neuter-held delete backup free");
    assert!(
        r.ok && r.stderr.contains("Warning: backup-guard"),
        "{}",
        r.stderr
    );
    assert!(exists("-n neuter-held backup kept"));
    set_policy("mode: enforce");
}

#[test]
fn neuter_mode_keeps_a_backup_whose_expiration_was_moved_later() {
    set_policy("mode: enforce");
    let uploaded = "2098-01-01T00:00:00Z";
    namespace_with_backups(
        "neuter-later",
        &[("pinned", uploaded, ""), ("free", uploaded, "")],
    );
    // Alice keeps a backup longer, as Velero users do, by moving its expiration later.
    let later = format!(
        "-n neuter-later patch backup pinned --type merge -p '{{\"status\":{{\"expiration\":\"{LATER}\"}}}}'"
    );
    let r = kubectl(Who::Alice, &later);
    assert!(r.ok, "{}", r.stderr);
    let original = || {
        let path = r"{.metadata.annotations.backup-guard\.io/original-expiration}";
        let get = format!("-n neuter-later get backup pinned -o jsonpath={path}");
        kubectl(Who::Admin, &get).stdout
    };
    assert_eq!(original(), uploaded);
    // Removing the kept value by hand does not lose it.
    let strip = "-n neuter-later annotate backup pinned backup-guard.io/original-expiration-";
    assert!(kubectl(Who::Alice, strip).ok);
    assert_eq!(original(), uploaded);
    set_policy("mode: neuter");
    let r = kubectl(Who::Alice, "-n neuter-later delete backup pinned");
    assert!(
        !r.ok
            && r.stderr.contains("was moved later on the cluster only")
            && r.stderr.contains(&format!("uploaded with ({uploaded})")),
        "{}",
        r.stderr
    );
    let r = kubectl(Who::Alice, "delete namespace neuter-later --dry-run=server");
    assert!(
        !r.ok
            && r.stderr.contains(
                "namespace neuter-later holds 1 Velero backup(s) whose status.expiration was moved later on the cluster (pinned)"
            ),
        "{}",
        r.stderr
    );
    // The one as Velero left it goes from the cluster, with a warning, as neuter says.
    let r = kubectl(Who::Alice, "-n neuter-later delete backup free");
    assert!(
        r.ok && r.stderr.contains("Warning: backup-guard"),
        "{}",
        r.stderr
    );
    assert!(exists("-n neuter-later backup pinned"));
    set_policy("mode: enforce");
}

#[test]
fn neuter_mode_keeps_the_backup_crd_while_a_backup_is_held() {
    set_policy("mode: enforce");
    namespace_with_backups(
        "crd-held",
        &[("kept", LATER, ", backup-guard.io/hold: \"true\"")],
    );
    set_policy("mode: neuter");
    // `velero uninstall` deletes the CRD, which removes every Backup without a call per object.
    let r = kubectl(Who::Admin, "delete crd backups.velero.io --dry-run=server");
    assert!(
        !r.ok && r.stderr.contains("on legal hold (") && r.stderr.contains("crd-held/kept"),
        "{}",
        r.stderr
    );
    assert!(
        kubectl(
            Who::Bob,
            "-n crd-held label backup kept backup-guard.io/hold-"
        )
        .ok
    );
    set_policy("mode: enforce");
}
