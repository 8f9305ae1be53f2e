use super::*;
use crate::policy::request::Meta;

fn backup(ns: &str, name: &str, location: &str) -> Object {
    let mut o = Object {
        metadata: Meta {
            name: name.into(),
            namespace: ns.into(),
            uid: format!("uid-{name}"),
            ..Default::default()
        },
        ..Default::default()
    };
    o.spec.storage_location = Some(location.into());
    o.status.expiration = Some("2026-12-01T00:00:00Z".into());
    o
}

#[test]
fn follows_creates_updates_and_deletes() {
    let mut idx = Index::new();
    idx.apply(Resource::Backup, &backup("velero", "a", "default"), b"k");
    idx.apply(Resource::Backup, &backup("velero", "b", "default"), b"k");
    idx.apply(Resource::Backup, &backup("velero", "b", "other"), b"k");
    assert_eq!(idx.count(Resource::Backup), 2);
    assert_eq!(idx.backups_at_location("velero", "default"), 1);
    assert_eq!(idx.backups_at_location("velero", "other"), 1);
    let p = idx.protected_in("velero", &Policy::default(), 0, 1);
    assert_eq!(p.count, 2);
    assert_eq!(p.names, ["a"]);
    idx.remove(Resource::Backup, "velero", "a");
    idx.remove(Resource::Backup, "velero", "b");
    assert_eq!(idx.count(Resource::Backup), 0);
    assert_eq!(
        idx.protected_in("velero", &Policy::default(), 0, 5).count,
        0
    );
    assert_eq!(idx.backups_at_location("velero", "default"), 0);
}

#[test]
fn a_namespace_names_its_first_protected_backups_in_name_order() {
    let mut idx = Index::new();
    // Inserted out of order, enough of them that the map's order is not the names' order.
    for i in [7, 3, 11, 0, 9, 5, 1, 10, 2, 8, 4, 6] {
        idx.apply(
            Resource::Backup,
            &backup("velero", &format!("daily-{i:02}"), "default"),
            b"k",
        );
    }
    let p = idx.protected_in("velero", &Policy::default(), 0, 3);
    assert_eq!(p.count, 12);
    assert_eq!(p.names, ["daily-00", "daily-01", "daily-02"]);
    let all = idx.protected_in("velero", &Policy::default(), 0, 20).names;
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!((all.len(), &all), (12, &sorted));
    assert!(idx
        .protected_in("velero", &Policy::default(), 0, 0)
        .names
        .is_empty());
}

#[test]
fn backups_of_one_schedule_share_their_labels_until_the_last_goes() {
    let mut idx = Index::new();
    let scheduled = |name: &str| {
        let mut b = backup("velero", name, "default");
        b.metadata
            .labels
            .insert("velero.io/schedule-name".into(), "nightly".into());
        b
    };
    idx.apply(Resource::Backup, &scheduled("a"), b"k");
    idx.apply(Resource::Backup, &scheduled("b"), b"k");
    idx.apply(
        Resource::Backup,
        &backup("velero", "plain", "default"),
        b"k",
    );
    let (a, b) = (idx.backup("velero", "a"), idx.backup("velero", "b"));
    let (a, b) = (a.expect("a").labels.clone(), b.expect("b").labels.clone());
    assert!(a
        .as_ref()
        .zip(b.as_ref())
        .is_some_and(|(a, b)| Arc::ptr_eq(a, b)));
    assert_eq!(
        a.as_deref().map(|l| l["velero.io/schedule-name"].as_str()),
        Some("nightly")
    );
    assert!(idx
        .backup("velero", "plain")
        .expect("plain")
        .labels
        .is_none());
    drop((a, b));
    idx.remove(Resource::Backup, "velero", "a");
    assert_eq!(idx.label_sets.len(), 1);
    idx.remove(Resource::Backup, "velero", "b");
    assert!(idx.label_sets.is_empty());
}

#[test]
fn expiration_is_read_as_unix_seconds() {
    let mut idx = Index::new();
    idx.apply(Resource::Backup, &backup("velero", "a", "default"), b"k");
    let e = idx.backup("velero", "a").expect("indexed");
    assert_eq!(e.expiration, Some(1_796_083_200));
    assert!(e.facts.is_none(), "a plain backup carries no boxed facts");
}

#[test]
fn a_long_backup_is_found_by_the_shortened_name_velero_labels_its_snapshots_with() {
    let mut idx = Index::new();
    let long = format!("nightly-{}", "x".repeat(70));
    let other = format!("nightly-{}y", "x".repeat(69));
    for (name, location) in [(&long, "long"), (&other, "other")] {
        idx.apply(Resource::Backup, &backup("velero", name, location), b"k");
    }
    let label = label_value(&long);
    assert_eq!(label.len(), LABEL_MAX);
    let found = idx
        .backup("velero", &label)
        .expect("found by its label value");
    assert_eq!(&*found.location, "long");
    assert!(idx.backup("velero", &long).is_some(), "and by its name");
    assert!(idx.backup("other-ns", &label).is_none());
    let unknown = format!("{}000000", &label[..57]);
    assert!(idx.backup("velero", &unknown).is_none());
}
