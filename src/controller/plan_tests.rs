use super::*;

fn observed() -> Observed {
    Observed {
        sanction: Ok(()),
        engine: Engine::Native,
        finalized: false,
        deleting: false,
        phase: Some("Completed".into()),
        in_velero_namespace: true,
        restores: vec![],
        contents: vec![],
        snapshots: vec![],
        not_own: NotOwn::default(),
        pod_volume_backups: vec![],
        velero_only: VeleroOnly::default(),
        delete_request: None,
        untaken_requests: vec![],
    }
}

fn named(ns: &str, name: &str) -> Named {
    Named {
        namespace: ns.into(),
        name: name.into(),
    }
}

#[test]
fn an_unsanctioned_backup_is_left_alone() {
    for why in [
        Unsanctioned::NoRequest,
        Unsanctioned::Unverified,
        Unsanctioned::Held,
        Unsanctioned::Stale,
        Unsanctioned::NeedsApproval,
        Unsanctioned::SelfApproved,
    ] {
        let o = Observed {
            sanction: Err(why),
            ..observed()
        };
        assert_eq!(plan(&o), Plan::Ignore, "{why:?}");
    }
}

#[test]
fn a_sanctioned_backup_gets_the_finalizer_first_and_goes_last() {
    let steps = match plan(&observed()) {
        Plan::Clean(steps) => steps,
        other => panic!("expected a cleanup, got {other:?}"),
    };
    assert_eq!(
        steps,
        vec![
            Step::AddFinalizer,
            Step::DeleteBackupFiles,
            Step::DeleteBackup,
            Step::RemoveFinalizer
        ]
    );
}

#[test]
fn native_cleanup_removes_restores_snapshots_and_pod_volume_backups_in_order() {
    let o = Observed {
        finalized: true,
        restores: vec![
            RestoreState {
                name: "r1".into(),
                velero_finalizers: true,
            },
            RestoreState {
                name: "r2".into(),
                velero_finalizers: false,
            },
        ],
        contents: vec![
            ContentState {
                name: "vsc-retained".into(),
                deletes_storage: false,
            },
            ContentState {
                name: "vsc-delete".into(),
                deletes_storage: true,
            },
        ],
        snapshots: vec![named("app", "vs-1")],
        pod_volume_backups: vec!["pvb-1".into()],
        ..observed()
    };
    let expected = vec![
        Step::DeleteBackupFiles,
        Step::DeleteRestoreFiles("r1".into()),
        Step::ReleaseRestore("r1".into()),
        Step::DeleteRestore("r1".into()),
        Step::DeleteRestoreFiles("r2".into()),
        Step::DeleteRestore("r2".into()),
        Step::SetContentDelete("vsc-retained".into()),
        Step::DeleteSnapshot(named("app", "vs-1")),
        Step::DeleteContent("vsc-retained".into()),
        Step::DeleteContent("vsc-delete".into()),
        Step::DeletePodVolumeBackup("pvb-1".into()),
        Step::DeleteBackup,
        Step::RemoveFinalizer,
    ];
    assert_eq!(plan(&o), Plan::Clean(expected));
}

#[test]
fn a_backup_already_deleting_with_our_finalizer_is_finished_not_deleted_again() {
    let o = Observed {
        finalized: true,
        deleting: true,
        ..observed()
    };
    assert_eq!(
        plan(&o),
        Plan::Clean(vec![Step::DeleteBackupFiles, Step::RemoveFinalizer])
    );
}

#[test]
fn a_backup_deleted_before_the_finalizer_went_on_is_a_shadow_deletion() {
    let o = Observed {
        deleting: true,
        ..observed()
    };
    assert_eq!(plan(&o), Plan::Ignore);
}

#[test]
fn a_withdrawn_or_stale_request_stops_the_cleanup_and_releases_the_backup() {
    for why in [
        Unsanctioned::NoRequest,
        Unsanctioned::Stale,
        Unsanctioned::Unverified,
    ] {
        let o = Observed {
            sanction: Err(why),
            finalized: true,
            ..observed()
        };
        assert_eq!(
            plan(&o),
            Plan::Stop {
                why,
                release: true,
                withdraw: vec![]
            }
        );
    }
}

#[test]
fn a_hold_stops_the_cleanup_and_keeps_the_backup_finalized() {
    let o = Observed {
        sanction: Err(Unsanctioned::Held),
        finalized: true,
        deleting: true,
        ..observed()
    };
    assert_eq!(
        plan(&o),
        Plan::Stop {
            why: Unsanctioned::Held,
            release: false,
            withdraw: vec![]
        }
    );
}

#[test]
fn sanction_is_rechecked_before_every_step_that_starts_or_destroys() {
    assert!(Step::AddFinalizer.needs_sanction());
    assert!(Step::DeleteBackupFiles.needs_sanction());
    assert!(Step::SetContentDelete("c".into()).needs_sanction());
    assert!(Step::FileDeleteRequest.needs_sanction());
    assert!(Step::DeleteBackup.needs_sanction());
    assert!(!Step::RemoveFinalizer.needs_sanction());
    assert!(!Step::AwaitDeleteRequest("x".into()).needs_sanction());
}

fn velero(request: Option<RequestState>) -> Observed {
    Observed {
        engine: Engine::Velero,
        finalized: true,
        delete_request: request,
        ..observed()
    }
}

fn request(processed: bool, errors: &[&str], age: i64, reported: bool) -> Option<RequestState> {
    Some(RequestState {
        name: "daily-1-abcde".into(),
        processed,
        errors: errors.iter().map(|e| e.to_string()).collect(),
        age,
        created: "2026-11-24T20:00:00Z".into(),
        reported,
        taken: false,
        idle: false,
    })
}

#[test]
fn velero_engine_files_a_request_and_waits_for_it() {
    assert_eq!(
        plan(&velero(None)),
        Plan::Clean(vec![Step::FileDeleteRequest])
    );
    assert_eq!(
        plan(&velero(request(false, &[], 3, false))),
        Plan::Clean(vec![Step::AwaitDeleteRequest("daily-1-abcde".into())])
    );
}

#[test]
fn velero_engine_reports_a_request_velero_leaves_untaken() {
    let mut idle = request(false, &[], 1800, false);
    if let Some(r) = idle.as_mut() {
        r.idle = true;
    }
    let o = velero(idle);
    assert_eq!(
        plan(&o),
        Plan::Clean(vec![Step::ReportIdleRequest {
            name: "daily-1-abcde".into(),
            since: "2026-11-24T20:00:00Z".into(),
        }])
    );
    // Reporting it changes nothing, so it is no destructive step to re-check sanction for.
    assert!(!Step::ReportIdleRequest {
        name: "x".into(),
        since: String::new(),
    }
    .needs_sanction());
}

#[test]
fn velero_engine_finishes_once_velero_processed_the_request_cleanly() {
    let mut o = velero(request(true, &[], 30, false));
    o.deleting = true;
    assert_eq!(plan(&o), Plan::Clean(vec![Step::RemoveFinalizer]));
    o.deleting = false;
    assert_eq!(
        plan(&o),
        Plan::Clean(vec![Step::DeleteBackup, Step::RemoveFinalizer])
    );
}

#[test]
fn velero_engine_reports_errors_once_then_retries_after_a_while() {
    let errs = ["error deleting backup files: access denied"];
    assert_eq!(
        plan(&velero(request(true, &errs, 10, false))),
        Plan::Clean(vec![Step::ReportDeleteRequestErrors {
            name: "daily-1-abcde".into(),
            errors: vec![errs[0].into()],
        }])
    );
    assert_eq!(
        plan(&velero(request(true, &errs, 10, true))),
        Plan::Clean(vec![Step::AwaitDeleteRequest("daily-1-abcde".into())])
    );
    assert_eq!(
        plan(&velero(request(true, &errs, VELERO_RETRY_AFTER, true))),
        Plan::Clean(vec![Step::FileDeleteRequest])
    );
}

#[test]
fn velero_engine_finishes_when_velero_deleted_the_backup_and_its_requests() {
    // Velero marks the Backup Deleting, deletes it (our finalizer holds it), then deletes every
    // DeleteBackupRequest of the backup: nothing left to follow, and nothing to file again.
    let mut o = velero(None);
    o.deleting = true;
    o.phase = Some("Deleting".into());
    assert_eq!(plan(&o), Plan::Clean(vec![Step::RemoveFinalizer]));
    // A sanctioned Backup somebody deleted before any request was filed still gets one.
    o.phase = Some("Completed".into());
    assert_eq!(plan(&o), Plan::Clean(vec![Step::FileDeleteRequest]));
    // Deleting without a deletion timestamp: Velero is still at it, or failed; a request follows.
    o.deleting = false;
    o.phase = Some("Deleting".into());
    assert_eq!(plan(&o), Plan::Clean(vec![Step::FileDeleteRequest]));
}

fn untaken(name: &str, version: &str) -> Untaken {
    Untaken {
        name: name.into(),
        resource_version: version.into(),
    }
}

#[test]
fn a_cleanup_called_off_withdraws_every_request_velero_has_not_taken() {
    for (why, release) in [(Unsanctioned::Held, false), (Unsanctioned::Stale, true)] {
        // `velero backup delete` run twice: two requests, both untaken.
        let both = vec![untaken("daily-1-older", "7"), untaken("daily-1-abcde", "9")];
        let mut o = velero(request(false, &[], 3, false));
        o.sanction = Err(why);
        o.untaken_requests = both.clone();
        assert_eq!(
            plan(&o),
            Plan::Stop {
                why,
                release,
                withdraw: both
            },
            "{why:?}"
        );
        // Taken or processed: too late to call off, nothing to withdraw.
        o.untaken_requests.clear();
        assert_eq!(
            plan(&o),
            Plan::Stop {
                why,
                release,
                withdraw: vec![]
            }
        );
    }
}

#[test]
fn a_backup_outside_veleros_namespace_is_not_cleaned() {
    for engine in [Engine::Native, Engine::Velero] {
        let mut o = Observed {
            engine,
            in_velero_namespace: false,
            ..observed()
        };
        assert_eq!(plan(&o), Plan::NotVelero { release: false });
        o.finalized = true;
        assert_eq!(plan(&o), Plan::NotVelero { release: true });
        // Unsanctioned there: left alone as everywhere.
        o.finalized = false;
        o.sanction = Err(Unsanctioned::NoRequest);
        assert_eq!(plan(&o), Plan::Ignore);
    }
}

#[test]
fn a_backup_velero_is_still_writing_waits() {
    // Velero 1.18's queue: about to run and write, and Velero refuses to delete it meanwhile.
    for phase in ["Queued", "ReadyToStart", "InProgress"] {
        assert!(WRITING_PHASES.contains(&phase), "{phase}");
    }
    for phase in WRITING_PHASES {
        for finalized in [false, true] {
            let o = Observed {
                phase: Some(phase.into()),
                finalized,
                ..observed()
            };
            assert_eq!(
                plan(&o),
                Plan::Wait {
                    phase: phase.into()
                },
                "{phase}"
            );
        }
    }
    for phase in [
        None,
        Some("New"),
        Some("Completed"),
        Some("PartiallyFailed"),
        Some("Failed"),
    ] {
        let o = Observed {
            phase: phase.map(String::from),
            ..observed()
        };
        assert!(matches!(plan(&o), Plan::Clean(_)), "{phase:?}");
    }
}
