//! Tests of `report.rs`.
use super::*;

fn backup() -> Object {
    let mut b = Object::default();
    b.metadata.namespace = "velero".into();
    b.metadata.name = "daily-1".into();
    b
}

const SNAPSHOTS_AND_PVBS: VeleroOnly = VeleroOnly {
    provider_snapshots: 2,
    pod_volume_backups: 1,
    moved_volumes: 0,
};

#[test]
fn what_only_velero_deletes_is_named_with_its_counts() {
    assert_eq!(velero_only_text(&VeleroOnly::default()), "");
    assert_eq!(
        velero_only_text(&SNAPSHOTS_AND_PVBS),
        "2 volume snapshot(s) Velero's snapshotter plugins took or tried, 1 PodVolumeBackup(s)' \
         data in the kopia/restic repository"
    );
    let moved = VeleroOnly {
        moved_volumes: 3,
        ..VeleroOnly::default()
    };
    assert_eq!(
        velero_only_text(&moved),
        "3 data mover operation(s)' data in the backup repository"
    );
}

#[test]
fn the_start_note_says_why_auto_chose_and_what_native_leaves() {
    let (b, facts) = (backup(), SanctionFacts::default());
    let only = SNAPSHOTS_AND_PVBS;
    let auto = started_note(&b, &facts, config::Engine::Auto, Engine::Velero, &only);
    assert!(
        auto.contains(
            "with the velero engine (cleanup.engine auto: the backup holds 2 volume snapshot(s)"
        ),
        "{auto}"
    );
    let requested = started_note(
        &b,
        &facts,
        config::Engine::Auto,
        Engine::Velero,
        &VeleroOnly::default(),
    );
    assert!(
        requested.contains("Velero has the backup's deletion in hand already"),
        "{requested}"
    );
    let native = started_note(&b, &facts, config::Engine::Native, Engine::Native, &only);
    assert!(
        native.contains("The native engine leaves in place 2 volume snapshot(s)"),
        "{native}"
    );
    assert!(native.contains("cleanup.engine auto or velero"), "{native}");
    // Nothing to say when there is nothing only Velero deletes, or Velero was asked for.
    for (choice, engine, only) in [
        (
            config::Engine::Native,
            Engine::Native,
            VeleroOnly::default(),
        ),
        (config::Engine::Auto, Engine::Native, VeleroOnly::default()),
        (config::Engine::Velero, Engine::Velero, only),
    ] {
        let note = started_note(&b, &facts, choice, engine, &only);
        let end = format!("cleaning up with the {} engine", engine_name(engine));
        assert!(note.ends_with(&end), "{note}");
    }
}

#[test]
fn the_success_note_lists_what_was_left() {
    let (b, facts) = (backup(), SanctionFacts::default());
    let done = Report {
        backup_keys: 12,
        pod_volume_backups: 1,
        ..Report::default()
    };
    let left = Left {
        velero_only: SNAPSHOTS_AND_PVBS,
        not_own: NotOwn::default(),
    };
    let note = success_note(&b, &facts, Engine::Native, &done, &left);
    assert!(
        note.contains("Deleted 12 storage object(s) of the backup"),
        "{note}"
    );
    assert!(note.ends_with("Left in place, as only Velero deletes them: 2 volume snapshot(s) Velero's snapshotter plugins took or tried, 1 PodVolumeBackup(s)' data in the kopia/restic repository."), "{note}");
    let clean = success_note(&b, &facts, Engine::Native, &done, &Left::default());
    assert!(!clean.contains("Left in place"), "{clean}");
    assert!(!clean.contains("Left alone"), "{clean}");
    let mut b = b;
    b.status.start_timestamp = Some("2026-11-24T20:00:00Z".into());
    b.status.completion_timestamp = Some("2026-11-24T20:05:00Z".into());
    let mut other = Left {
        not_own: NotOwn {
            outside_run: 2,
            restored: 0,
        },
        ..Left::default()
    };
    let note = success_note(&b, &facts, Engine::Native, &done, &other);
    let outside = "2 VolumeSnapshot(s)/VolumeSnapshotContent(s) labelled with the backup's name but created outside its run (2026-11-24T20:00:00Z to 2026-11-24T20:05:00Z): another backup's of the same name, or snapshots Velero only copied";
    assert!(note.ends_with(&format!("Left alone: {outside}.")), "{note}");
    let restored = "VolumeSnapshot(s)/VolumeSnapshotContent(s) labelled with the backup's name but created by a restore of it (velero.io/restore-name): the restore's, not the backup's";
    other.not_own.restored = 3;
    let note = success_note(&b, &facts, Engine::Native, &done, &other);
    let both = format!("Left alone: {outside}; 3 {restored}.");
    assert!(note.ends_with(&both), "{note}");
    other.not_own.outside_run = 0;
    let note = success_note(&b, &facts, Engine::Native, &done, &other);
    assert!(
        note.ends_with(&format!("Left alone: 3 {restored}.")),
        "{note}"
    );
}
