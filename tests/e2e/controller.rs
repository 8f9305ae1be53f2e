//! The companion controller in the guard process (`backup-guard run`), with the real webhook in
//! the path: a sanctioned backup's files, restores, snapshots and PodVolumeBackups go, then the
//! Backup; nothing else is touched. Storage is the `file` provider in a temporary directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::kube::{eventually, kubectl, kubectl_stdin, metric, Who};
use super::{set_policy, SUITE};

const BUCKET: &str = "velero";
const PREFIX: &str = "e2e";

/// Every file under `root`, relative path → bytes.
fn files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, root, out);
            } else {
                let rel = path.strip_prefix(root).expect("under root");
                out.insert(
                    rel.to_string_lossy().into_owned(),
                    std::fs::read(&path).expect("read file"),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn seed(bucket: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut keys = vec![];
    for b in ["ctl-gone", "ctl-kept", "ctl-gone-x"] {
        for f in [
            "velero-backup.json",
            &format!("{b}.tar.gz"),
            &format!("{b}-logs.gz"),
        ] {
            keys.push(format!("{PREFIX}/backups/{b}/{f}"));
        }
    }
    keys.push(format!(
        "{PREFIX}/restores/ctl-gone-r1/restore-ctl-gone-r1-logs.gz"
    ));
    keys.push(format!(
        "{PREFIX}/restores/ctl-kept-r1/restore-ctl-kept-r1-logs.gz"
    ));
    keys.push(format!("{PREFIX}/kopia/default/kopia.repository"));
    for (i, k) in keys.iter().enumerate() {
        let path = bucket.join(k);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, format!("{k}#{i}").repeat(i + 1)).expect("write");
    }
    files(bucket)
}

fn apply(who: Who, yaml: &str) {
    let r = kubectl_stdin(who, "apply -f -", yaml);
    assert!(r.ok, "{}", r.stderr);
}

fn objects(root: &Path) {
    apply(Who::Velero, &format!(
        "apiVersion: velero.io/v1\nkind: BackupStorageLocation\nmetadata: {{name: ctl-file, namespace: velero, labels: {{{SUITE}}}}}\n\
         spec: {{provider: file, objectStorage: {{bucket: {BUCKET}, prefix: {PREFIX}}}, config: {{root: {}}}}}\n",
        root.display()
    ));
    for b in ["ctl-gone", "ctl-kept"] {
        apply(Who::Velero, &format!(
            "apiVersion: velero.io/v1\nkind: Backup\nmetadata: {{name: {b}, namespace: velero, labels: {{{SUITE}, velero.io/storage-location: ctl-file}}}}\n\
             spec: {{storageLocation: ctl-file, ttl: 720h0m0s}}\nstatus: {{phase: Completed, expiration: \"2099-01-01T00:00:00Z\"}}\n"
        ));
        apply(Who::Velero, &format!(
            "apiVersion: velero.io/v1\nkind: Restore\nmetadata: {{name: {b}-r1, namespace: velero, labels: {{{SUITE}}}, finalizers: [restores.velero.io/external-resources-finalizer]}}\n\
             spec: {{backupName: {b}}}\n"
        ));
        apply(Who::Velero, &format!(
            "apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshotContent\nmetadata: {{name: e2e-{b}-vsc, labels: {{{SUITE}, velero.io/backup-name: {b}}}}}\n\
             spec: {{deletionPolicy: Delete, driver: hostpath.csi.k8s.io, source: {{snapshotHandle: snap-{b}}}, volumeSnapshotRef: {{name: {b}-vs, namespace: velero}}}}\n---\n\
             apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshot\nmetadata: {{name: {b}-vs, namespace: velero, labels: {{{SUITE}, velero.io/backup-name: {b}}}}}\n\
             spec: {{source: {{volumeSnapshotContentName: e2e-{b}-vsc}}}}\n---\n\
             apiVersion: velero.io/v1\nkind: PodVolumeBackup\nmetadata: {{name: {b}-pvb, namespace: velero, labels: {{{SUITE}, velero.io/backup-name: {b}}}}}\nspec: {{backupStorageLocation: default, node: node-1, pod: {{kind: Pod, name: app-0, namespace: app}}, repoIdentifier: \"kopia:cluster-a\", volume: data}}\n"
        ));
    }
}

fn exists(args: &str) -> bool {
    kubectl(Who::Admin, &format!("get {args}")).ok
}

fn jsonpath(args: &str, path: &str) -> String {
    kubectl(Who::Admin, &format!("get {args} -o jsonpath={path}")).stdout
}

/// The signing key `hack/e2e/lib.sh` wrote, next to the guard's log.
fn signing_key() -> PathBuf {
    let log = std::env::var("E2E_GUARD_LOG").expect("E2E_GUARD_LOG is set by make e2e");
    Path::new(&log).with_file_name("signing-key")
}

/// `backup-guard ARGS` with the suite's kubeconfig; (success, stdout + stderr).
fn guard(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_backup-guard"))
        .args(args)
        .output()
        .expect("backup-guard runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("$ backup-guard {}\n{text}", args.join(" "));
    (out.status.success(), text)
}

fn status_of(name: &str) -> String {
    let key = signing_key();
    let (ok, text) = guard(&[
        "status",
        "-n",
        "velero",
        "--signing-key",
        &key.to_string_lossy(),
    ]);
    assert!(ok, "{text}");
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("{name} in {text}"))
        .to_string()
}

/// Exactly ctl-gone's files, restore, snapshots and PodVolumeBackup are gone, with an Event.
fn assert_only_ctl_gone_went(bucket: &Path, seeded: &BTreeMap<String, Vec<u8>>) {
    let mut expected = seeded.clone();
    expected.retain(|k, _| {
        !k.starts_with(&format!("{PREFIX}/backups/ctl-gone/"))
            && !k.starts_with(&format!("{PREFIX}/restores/ctl-gone-r1/"))
    });
    assert_eq!(expected.len(), seeded.len() - 4);
    assert!(
        files(bucket) == expected,
        "exactly the backup's and its restore's files are gone"
    );
    for gone in [
        "-n velero restore ctl-gone-r1",
        "volumesnapshotcontent e2e-ctl-gone-vsc",
        "-n velero volumesnapshot ctl-gone-vs",
        "-n velero podvolumebackup ctl-gone-pvb",
    ] {
        assert!(!exists(gone), "{gone} must be gone");
    }
    for kept in [
        "-n velero backup ctl-kept",
        "-n velero restore ctl-kept-r1",
        "volumesnapshotcontent e2e-ctl-kept-vsc",
        "-n velero volumesnapshot ctl-kept-vs",
        "-n velero podvolumebackup ctl-kept-pvb",
    ] {
        assert!(exists(kept), "{kept} must stay");
    }
    assert!(jsonpath("-n velero backup ctl-kept", "{.metadata.finalizers}").is_empty());
    let notes = jsonpath(
        "-n velero events --field-selector involvedObject.name=ctl-gone",
        "{.items[*].message}",
    );
    assert!(
        notes.contains("requested by alice") && notes.contains("approved by bob"),
        "{notes}"
    );
    assert!(notes.contains("Deleted 3 storage object(s)"), "{notes}");
}

#[test]
fn controller_cleans_up_an_approved_backup_and_touches_nothing_else() {
    set_policy("approval: {required: true, approvers: {groups: [backup-admins]}}");
    let root = tempfile::tempdir().expect("tempdir");
    let bucket = root.path().join(BUCKET);
    let seeded = seed(&bucket);
    objects(root.path());
    assert_eq!(
        jsonpath(
            "volumesnapshotcontent e2e-ctl-gone-vsc",
            "{.spec.deletionPolicy}"
        ),
        "Retain",
        "the webhook keeps Velero's snapshot contents Retain while unsanctioned"
    );
    let success = r#"backup_guard_cleanups_total{engine="native",result="success"}"#;
    let before = metric(success);

    let r = kubectl(
        Who::Alice,
        "-n velero annotate backup ctl-gone backup-guard.io/delete-request=obsolete",
    );
    assert!(r.ok, "{}", r.stderr);
    assert!(status_of("ctl-gone").contains("requested"));
    assert!(status_of("ctl-kept").contains("protected"));
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(
        jsonpath("-n velero backup ctl-gone", "{.metadata.finalizers}").is_empty(),
        "a request awaiting approval sanctions nothing"
    );
    let (ok, text) = guard(&["approve", "ctl-gone", "-n", "velero", "--note", "fine"]);
    assert!(
        !ok && text.contains("approval.approvers"),
        "admin is no approver: {text}"
    );
    let r = kubectl(
        Who::Bob,
        "-n velero annotate backup ctl-gone backup-guard.io/delete-approval=ok",
    );
    assert!(r.ok, "{}", r.stderr);

    eventually(60, "the approved Backup to be cleaned up and gone", || {
        !exists("-n velero backup ctl-gone")
    });
    assert_only_ctl_gone_went(&bucket, &seeded);
    assert!(metric(success) > before);
    assert!(metric(r#"backup_guard_cleanup_objects_deleted_total{provider="file"}"#) >= 4.0);
    set_policy("mode: enforce");
}

#[test]
fn controller_cli_holds_and_only_a_manager_releases() {
    set_policy("mode: enforce");
    let root = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(root.path().join(BUCKET)).expect("bucket");
    apply(Who::Velero, &format!(
        "apiVersion: velero.io/v1\nkind: BackupStorageLocation\nmetadata: {{name: ctl-file-2, namespace: velero, labels: {{{SUITE}}}}}\n\
         spec: {{provider: file, objectStorage: {{bucket: {BUCKET}}}, config: {{root: {}}}}}\n",
        root.path().display()
    ));
    apply(Who::Velero, &format!("apiVersion: velero.io/v1\nkind: Backup\nmetadata: {{name: ctl-held, namespace: velero, labels: {{{SUITE}}}}}\nspec: {{storageLocation: ctl-file-2}}\n"));
    let (ok, text) = guard(&["hold", "ctl-held", "-n", "velero"]);
    assert!(ok && text.contains("on legal hold"), "{text}");
    let request = [
        "request-delete",
        "ctl-held",
        "-n",
        "velero",
        "--reason",
        "test",
    ];
    let (ok, text) = guard(&request);
    assert!(ok && text.contains("delete-requested-by: admin"), "{text}");
    let (ok, text) = guard(&request);
    assert!(
        ok && text.contains("unchanged") && text.contains("another --reason"),
        "the same reason renews nothing, and says so: {text}"
    );
    assert!(status_of("ctl-held").contains("held"));
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(
        exists("-n velero backup ctl-held"),
        "a held backup is never cleaned up"
    );
    let (ok, text) = guard(&["release", "ctl-held", "-n", "velero"]);
    assert!(!ok && text.contains("not a hold manager"), "{text}");
    assert!(
        kubectl(
            Who::Bob,
            "-n velero label backup ctl-held backup-guard.io/hold-"
        )
        .ok
    );
    eventually(
        60,
        "the released, requested backup to be cleaned up",
        || !exists("-n velero backup ctl-held"),
    );
}

#[test]
fn controller_cleans_up_a_backup_whose_name_is_longer_than_a_label() {
    set_policy("mode: enforce");
    let root = tempfile::tempdir().expect("tempdir");
    let long = format!("ctl-long-{}", "a".repeat(60));
    let label = backup_guard::policy::stamps::label_value(&long);
    assert_ne!(label, long, "Velero shortens the label of a name this long");
    let dir = root.path().join(BUCKET).join("backups").join(&long);
    std::fs::create_dir_all(&dir).expect("mkdir");
    for f in ["velero-backup.json", "backup.tar.gz"] {
        std::fs::write(dir.join(f), f).expect("write");
    }
    apply(Who::Velero, &format!(
        "apiVersion: velero.io/v1\nkind: BackupStorageLocation\nmetadata: {{name: ctl-file-3, namespace: velero, labels: {{{SUITE}}}}}\n\
         spec: {{provider: file, objectStorage: {{bucket: {BUCKET}}}, config: {{root: {}}}}}\n---\n\
         apiVersion: velero.io/v1\nkind: Backup\nmetadata: {{name: {long}, namespace: velero, labels: {{{SUITE}}}}}\n\
         spec: {{storageLocation: ctl-file-3, ttl: 720h0m0s}}\nstatus: {{phase: Completed, expiration: \"2099-01-01T00:00:00Z\"}}\n---\n\
         apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshotContent\nmetadata: {{name: e2e-ctl-long-vsc, labels: {{{SUITE}, velero.io/backup-name: {label}}}}}\n\
         spec: {{deletionPolicy: Delete, driver: hostpath.csi.k8s.io, source: {{snapshotHandle: snap-long}}, volumeSnapshotRef: {{name: long-vs, namespace: velero}}}}\n",
        root.path().display()
    ));
    assert_eq!(
        jsonpath(
            "volumesnapshotcontent e2e-ctl-long-vsc",
            "{.spec.deletionPolicy}"
        ),
        "Retain"
    );
    let r = kubectl(
        Who::Alice,
        &format!("-n velero annotate backup {long} backup-guard.io/delete-request=obsolete"),
    );
    assert!(r.ok, "{}", r.stderr);
    // The controller sets the content to Delete; the webhook must see the backup behind the
    // shortened label as sanctioned and let it through, or the content stays Retain and the
    // controller refuses to delete it (its storage snapshot would be orphaned).
    eventually(
        60,
        "the long-named backup and its snapshot content to be gone",
        || {
            !exists(&format!("-n velero backup {long}"))
                && !exists("volumesnapshotcontent e2e-ctl-long-vsc")
        },
    );
    assert!(!dir.exists() || std::fs::read_dir(&dir).expect("dir").next().is_none());
}
