use super::*;

fn key(s: &str) -> Path {
    Path::from(s)
}

fn backup(prefix: &str, name: &str) -> Scope {
    Scope::backup(prefix, name).expect("valid scope in test")
}

#[test]
fn backup_and_restore_prefixes_follow_velero_layout() {
    assert_eq!(
        backup_prefix("cluster-a", "daily-1").unwrap(),
        "cluster-a/backups/daily-1/"
    );
    assert_eq!(
        restore_prefix("cluster-a", "daily-1-20261101").unwrap(),
        "cluster-a/restores/daily-1-20261101/"
    );
    assert_eq!(backup_prefix("", "daily-1").unwrap(), "backups/daily-1/");
    assert_eq!(restore_prefix("", "r").unwrap(), "restores/r/");
}

#[test]
fn prefix_slashes_are_normalized() {
    for p in ["cluster-a/", "/cluster-a", "/cluster-a/", "cluster-a//"] {
        assert_eq!(
            backup_prefix(p, "b").unwrap(),
            "cluster-a/backups/b/",
            "prefix {p:?}"
        );
    }
    assert_eq!(backup_prefix("a/b/", "x").unwrap(), "a/b/backups/x/");
    assert_eq!(backup_prefix("/", "x").unwrap(), "backups/x/");
}

#[test]
fn bad_prefixes_are_rejected() {
    for p in ["a//b", "a/../b", "..", "./a", "a/.", "a b%", "a/#/b"] {
        assert!(
            matches!(normalize_prefix(p), Err(LayoutError::InvalidPrefix { .. })),
            "prefix {p:?} should be rejected"
        );
    }
}

#[test]
fn bad_names_are_rejected() {
    for n in [
        "", ".", "..", "a..b", "-a", "a-", ".a", "a.", "A", "a/b", "a b", "../x", "a_b",
    ] {
        let err = Scope::backup("p", n).unwrap_err();
        assert!(
            matches!(err, LayoutError::InvalidName { kind: "backup", .. }),
            "name {n:?}"
        );
        assert!(Scope::restore("p", n).is_err(), "restore name {n:?}");
    }
    assert!(Scope::backup("p", &"a".repeat(254)).is_err());
    assert!(Scope::backup("p", &"a".repeat(253)).is_ok());
}

#[test]
fn names_with_dots_are_valid_and_exact() {
    let s = backup("p", "daily.1");
    assert!(may_delete(&s, &key("p/backups/daily.1/velero-backup.json")));
    assert!(!may_delete(
        &s,
        &key("p/backups/daily.10/velero-backup.json")
    ));
    assert!(!may_delete(
        &s,
        &key("p/backups/daily/1/velero-backup.json")
    ));
}

#[test]
fn own_files_may_be_deleted() {
    let s = backup("cluster-a", "daily-1");
    for f in [
        "velero-backup.json",
        "daily-1.tar.gz",
        "daily-1-logs.gz",
        "daily-1-csi-volumesnapshots.json.gz",
    ] {
        assert!(may_delete(
            &s,
            &key(&format!("cluster-a/backups/daily-1/{f}"))
        ));
    }
    let r = Scope::restore("cluster-a", "daily-1-20261101").unwrap();
    assert!(may_delete(
        &r,
        &key("cluster-a/restores/daily-1-20261101/restore-daily-1-20261101-logs.gz")
    ));
}

#[test]
fn nothing_outside_the_scope_passes() {
    let s = backup("cluster-a", "daily-1");
    for k in [
        "cluster-a/backups/daily-10/velero-backup.json",
        "cluster-a/backups/daily-1",
        "cluster-a/backups/daily-1-x/f",
        "cluster-a/backups/weekly-1/velero-backup.json",
        "cluster-a/restores/daily-1/restore-daily-1-logs.gz",
        "cluster-a/restores/daily-1-20261101/x",
        "cluster-a/kopia/default/kopia.repository",
        "cluster-a/kopia/backups/daily-1/x",
        "cluster-a/restic/default/config",
        "cluster-a/metadata/revision",
        "cluster-a/plugins/x",
        "backups/daily-1/velero-backup.json",
        "cluster-b/backups/daily-1/velero-backup.json",
        "x/cluster-a/backups/daily-1/velero-backup.json",
        "cluster-a-old/backups/daily-1/velero-backup.json",
        "",
    ] {
        assert!(!may_delete(&s, &key(k)), "{k:?} must not pass");
    }
}

#[test]
fn empty_prefix_scope_is_exact() {
    let s = backup("", "daily-1");
    assert!(may_delete(&s, &key("backups/daily-1/velero-backup.json")));
    assert!(!may_delete(
        &s,
        &key("cluster-a/backups/daily-1/velero-backup.json")
    ));
    assert!(!may_delete(&s, &key("kopia/backups/daily-1/x")));
    assert!(!may_delete(&s, &key("backups/daily-10/x")));
}

#[test]
fn dot_segments_inside_the_scope_do_not_pass() {
    let s = backup("p", "b");
    // object_store escapes `.`/`..` parts, so build raw keys with Path::from_iter on escaped input.
    for raw in ["p/backups/b/../c/x", "p/backups/b/./x", "p/backups/b//x"] {
        if let Ok(p) = Path::parse(raw) {
            assert!(!may_delete(&s, &p), "{raw:?}");
        }
    }
    let escaped = Path::from_iter(["p", "backups", "b", "..", "x"]);
    assert!(
        may_delete(&s, &escaped),
        "an escaped '..' part is a literal name"
    );
    assert_eq!(escaped.as_ref(), "p/backups/b/%2E%2E/x");
}

#[test]
fn list_path_is_the_directory() {
    assert_eq!(
        backup("cluster-a/", "daily-1").list_path().as_ref(),
        "cluster-a/backups/daily-1"
    );
    assert_eq!(backup("", "d").list_path().as_ref(), "backups/d");
}

/// An independent, segment-wise model of the rule.
fn model(prefix: &str, kind: ScopeKind, name: &str, key: &str) -> bool {
    let want: Vec<&str> = prefix
        .split('/')
        .filter(|s| !s.is_empty())
        .chain([kind.dir_name(), name])
        .collect();
    let segs: Vec<&str> = key.split('/').collect();
    segs.len() > want.len()
        && segs[..want.len()] == want[..]
        && segs[want.len()..]
            .iter()
            .all(|s| !s.is_empty() && *s != "." && *s != "..")
}

#[test]
fn property_may_delete_matches_segment_model() {
    let prefixes = ["", "cluster-a", "cluster-a/", "a/b", "backups"];
    let names = ["daily-1", "daily-10", "daily-1.x", "d", "backups", "kopia"];
    let tops = [
        "",
        "cluster-a",
        "cluster-a-x",
        "a/b",
        "a",
        "backups",
        "x/cluster-a",
    ];
    let dirs = [
        "backups", "restores", "kopia", "restic", "metadata", "plugins", "backup",
    ];
    let tails = [
        "",
        "f",
        "velero-backup.json",
        "sub/f",
        "..",
        ".",
        "a/../b",
        "/",
        "f/",
    ];
    let mut checked = 0usize;
    let mut passed = 0usize;
    for prefix in prefixes {
        for name in names {
            for kind in [ScopeKind::Backup, ScopeKind::Restore] {
                let scope = Scope::new(kind, prefix, name).unwrap();
                for top in tops {
                    for dir in dirs {
                        for obj in names.iter().chain(&["daily-1x", "daily", ""]) {
                            for tail in tails {
                                let raw = [top, dir, obj, tail]
                                    .iter()
                                    .filter(|s| !s.is_empty())
                                    .copied()
                                    .collect::<Vec<_>>()
                                    .join("/");
                                let Ok(path) = Path::parse(&raw) else {
                                    continue;
                                };
                                let got = may_delete(&scope, &path);
                                let want = model(prefix, kind, name, path.as_ref());
                                assert_eq!(got, want, "scope {:?} key {raw:?}", scope.dir());
                                if got {
                                    // A key that passes never names shared or foreign data.
                                    let rest = &path.as_ref()[scope.dir().len()..];
                                    assert!(!rest.is_empty());
                                    assert!(path.as_ref().starts_with(scope.dir()));
                                    passed += 1;
                                }
                                checked += 1;
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(checked > 10_000, "checked {checked}");
    assert!(passed > 50, "passed {passed}");
}
