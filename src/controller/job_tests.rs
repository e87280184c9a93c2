use super::*;
use crate::crd::{FlinkDeploymentSpec, JobSpec, ReconciliationStatus};

const NOW: i64 = 1_700_000_000_000;

fn spec(mode: UpgradeMode) -> FlinkDeploymentSpec {
    FlinkDeploymentSpec {
        image: Some("flink:1.20".into()),
        flink_configuration: Some(
            [("taskmanager.numberOfTaskSlots".to_string(), "2".to_string())]
                .into_iter()
                .collect(),
        ),
        job: Some(JobSpec {
            jar_uri: Some("local:///opt/flink/usrlib/job.jar".into()),
            parallelism: Some(2),
            upgrade_mode: Some(mode),
            ..JobSpec::default()
        }),
        ..FlinkDeploymentSpec::default()
    }
}

fn settings() -> JobSettings {
    JobSettings::from_conf(&FlinkConfiguration::new())
}

fn ha_settings() -> JobSettings {
    JobSettings { ha: true, ..settings() }
}

fn running_job() -> ObservedJob {
    ObservedJob {
        id: "job-1".into(),
        name: "KeyedCounter".into(),
        state: "RUNNING".into(),
        start_time: Some(NOW - 60_000),
        vertices_running: true,
        failure: None,
    }
}

fn job_in(state: &str) -> ObservedJob {
    ObservedJob {
        state: state.into(),
        ..running_job()
    }
}

fn running_world() -> Observed {
    Observed {
        jobmanager: JobManagerDeploymentStatus::Ready,
        cluster_present: true,
        job: Some(running_job()),
        ..Observed::default()
    }
}

fn deployed(spec: &FlinkDeploymentSpec) -> FlinkDeploymentStatus {
    FlinkDeploymentStatus {
        reconciliation_status: Some(ReconciliationStatus {
            last_reconciled_spec: Some(serde_json::to_string(spec).unwrap()),
            state: Some(ReconciliationState::Deployed),
            reconciliation_timestamp: Some(NOW - 100_000),
            last_stable_spec: None,
        }),
        ..FlinkDeploymentStatus::default()
    }
}

fn desired(spec: &FlinkDeploymentSpec) -> Option<Desired<'_>> {
    Some(Desired {
        spec,
        generation: Some(2),
    })
}

fn step(spec: &FlinkDeploymentSpec, status: &FlinkDeploymentStatus, world: &Observed, s: &JobSettings) -> JobPlan {
    decide(desired(spec), status, world, s, NOW)
}

fn reasons(plan: &JobPlan) -> Vec<&'static str> {
    plan.events.iter().map(|e| e.reason).collect()
}

fn last_spec(status: &FlinkDeploymentStatus) -> FlinkDeploymentSpec {
    deployed_spec(status).unwrap()
}

// ---- classification ----

#[test]
fn classification_of_spec_changes() {
    let base = spec(UpgradeMode::Savepoint);
    assert_eq!(classify(&base, &base), SpecChange::None);
    let ignored: Vec<fn(&mut FlinkDeploymentSpec)> = vec![
        |s| s.job.as_mut().unwrap().savepoint_trigger_nonce = Some(7),
        |s| s.job.as_mut().unwrap().upgrade_mode = Some(UpgradeMode::LastState),
        |s| s.job.as_mut().unwrap().initial_savepoint_path = Some("file:///sp/1".into()),
        |s| s.job.as_mut().unwrap().allow_non_restored_state = Some(true),
        |s| {
            s.flink_configuration
                .as_mut()
                .unwrap()
                .insert("kubernetes.operator.periodic.savepoint.interval".into(), "1h".into());
        },
    ];
    for change in ignored {
        let mut new = base.clone();
        change(&mut new);
        assert_eq!(classify(&base, &new), SpecChange::Ignore, "{new:?}");
    }
    let upgrades: Vec<fn(&mut FlinkDeploymentSpec)> = vec![
        |s| s.image = Some("flink:1.20.1".into()),
        |s| s.restart_nonce = Some(1),
        |s| s.job.as_mut().unwrap().parallelism = Some(4),
        |s| s.job.as_mut().unwrap().args = Some(vec!["--x".into()]),
        |s| {
            s.flink_configuration
                .as_mut()
                .unwrap()
                .insert("state.backend.type".into(), "rocksdb".into());
        },
        |s| s.task_manager = Some(crate::crd::TaskManagerSpec::default()),
    ];
    for change in upgrades {
        let mut new = base.clone();
        change(&mut new);
        assert_eq!(classify(&base, &new), SpecChange::Upgrade, "{new:?}");
    }
}

#[test]
fn only_standalone_reactive_applications_scale_in_place() {
    let mut reactive = spec(UpgradeMode::Savepoint);
    reactive.mode = Some(KubernetesDeploymentMode::Standalone);
    reactive
        .flink_configuration
        .as_mut()
        .unwrap()
        .insert("scheduler-mode".into(), "reactive".into());
    let mut scaled = reactive.clone();
    scaled.job.as_mut().unwrap().parallelism = Some(6);
    assert_eq!(classify(&reactive, &scaled), SpecChange::Scale);
    scaled.task_manager = Some(crate::crd::TaskManagerSpec {
        replicas: Some(3),
        ..Default::default()
    });
    assert_eq!(classify(&reactive, &scaled), SpecChange::Scale);
    // Anything else alongside the scale is an upgrade.
    scaled.image = Some("flink:1.20.1".into());
    assert_eq!(classify(&reactive, &scaled), SpecChange::Upgrade);
    // Native mode, or standalone without the reactive scheduler, restarts the job to rescale.
    let mut native = reactive.clone();
    native.mode = None;
    let mut native_scaled = native.clone();
    native_scaled.job.as_mut().unwrap().parallelism = Some(6);
    assert_eq!(classify(&native, &native_scaled), SpecChange::Upgrade);
}

#[test]
fn job_state_is_not_part_of_the_diff() {
    let base = spec(UpgradeMode::Savepoint);
    let mut suspended = base.clone();
    suspended.job.as_mut().unwrap().state = Some(JobState::Suspended);
    assert_eq!(classify(&base, &suspended), SpecChange::Ignore);
}

// ---- first deployment and steady state ----

#[test]
fn first_deployment_starts_from_the_initial_savepoint() {
    let mut s = spec(UpgradeMode::Savepoint);
    s.job.as_mut().unwrap().initial_savepoint_path = Some("file:///sp/initial".into());
    let plan = step(&s, &FlinkDeploymentStatus::default(), &Observed::default(), &settings());
    assert_eq!(
        plan.actions,
        vec![JobAction::Apply {
            restore: Some("file:///sp/initial".into())
        }]
    );
    assert_eq!(reasons(&plan), vec!["Submit"]);
    let job = plan.status.job_status.as_ref().unwrap();
    assert_eq!(job.state.as_deref(), Some("RECONCILING"));
    assert_eq!(job.upgrade_savepoint_path.as_deref(), Some("file:///sp/initial"));
    assert_eq!(last_spec(&plan.status), s);
    assert_eq!(plan.status.observed_generation, Some(2));
}

#[test]
fn a_job_first_deployed_suspended_is_not_started() {
    let mut s = spec(UpgradeMode::Savepoint);
    s.job.as_mut().unwrap().state = Some(JobState::Suspended);
    let plan = step(&s, &FlinkDeploymentStatus::default(), &Observed::default(), &settings());
    assert!(plan.actions.is_empty());
    assert_eq!(plan.status.job_status.unwrap().state.as_deref(), Some("SUSPENDED"));
}

#[test]
fn steady_state_reapplies_from_the_recorded_restore_point_and_becomes_stable() {
    let s = spec(UpgradeMode::Savepoint);
    let mut status = deployed(&s);
    status.job_status = Some(JobStatus {
        upgrade_savepoint_path: Some("file:///sp/2".into()),
        ..JobStatus::default()
    });
    let plan = step(&s, &status, &running_world(), &settings());
    assert_eq!(
        plan.actions,
        vec![JobAction::Apply {
            restore: Some("file:///sp/2".into())
        }]
    );
    let job = plan.status.job_status.as_ref().unwrap();
    assert_eq!(
        (job.job_id.as_deref(), job.state.as_deref()),
        (Some("job-1"), Some("RUNNING"))
    );
    let reconciliation = plan.status.reconciliation_status.as_ref().unwrap();
    assert_eq!(reconciliation.last_stable_spec, reconciliation.last_reconciled_spec);
    // The same world again changes nothing (no timestamp moves).
    let again = step(&s, &plan.status, &running_world(), &settings());
    assert_eq!(again.status, plan.status);
}

#[test]
fn a_job_with_vertices_still_scheduling_is_not_running() {
    let s = spec(UpgradeMode::Savepoint);
    let world = Observed {
        job: Some(ObservedJob {
            vertices_running: false,
            ..running_job()
        }),
        ..running_world()
    };
    let plan = step(&s, &deployed(&s), &world, &settings());
    assert_eq!(
        plan.status.job_status.as_ref().unwrap().state.as_deref(),
        Some("CREATED")
    );
    assert_eq!(plan.status.reconciliation_status.unwrap().last_stable_spec, None);
}

#[test]
fn a_failed_job_reports_its_cause() {
    let s = spec(UpgradeMode::Savepoint);
    let world = Observed {
        job: Some(ObservedJob {
            failure: Some("java.lang.RuntimeException: boom".into()),
            ..job_in("FAILED")
        }),
        ..running_world()
    };
    let plan = step(&s, &deployed(&s), &world, &settings());
    assert_eq!(plan.status.job_status.unwrap().state.as_deref(), Some("FAILED"));
    assert!(plan.error.unwrap().contains("boom"));
}

#[test]
fn an_ignored_change_is_recorded_without_touching_the_job() {
    let s = spec(UpgradeMode::Savepoint);
    let mut changed = s.clone();
    changed.job.as_mut().unwrap().upgrade_mode = Some(UpgradeMode::LastState);
    changed
        .flink_configuration
        .as_mut()
        .unwrap()
        .insert("kubernetes.operator.periodic.savepoint.interval".into(), "1h".into());
    let plan = step(&changed, &deployed(&s), &running_world(), &settings());
    assert_eq!(plan.actions, vec![JobAction::Apply { restore: None }]);
    assert_eq!(last_spec(&plan.status), changed);
    assert!(plan.status.upgrade.is_none());
    assert!(reasons(&plan).is_empty());
}

#[test]
fn an_invalid_spec_keeps_the_deployed_one_running() {
    let s = spec(UpgradeMode::Savepoint);
    let plan = decide(None, &deployed(&s), &running_world(), &settings(), NOW);
    assert_eq!(plan.actions, vec![JobAction::Apply { restore: None }]);
    assert_eq!(last_spec(&plan.status), s);
}

#[test]
fn reactive_scaling_only_reapplies() {
    let mut s = spec(UpgradeMode::Savepoint);
    s.mode = Some(KubernetesDeploymentMode::Standalone);
    s.flink_configuration
        .as_mut()
        .unwrap()
        .insert("scheduler-mode".into(), "reactive".into());
    let mut scaled = s.clone();
    scaled.task_manager = Some(crate::crd::TaskManagerSpec {
        replicas: Some(3),
        ..Default::default()
    });
    let plan = step(&scaled, &deployed(&s), &running_world(), &settings());
    assert_eq!(plan.actions, vec![JobAction::Apply { restore: None }]);
    assert_eq!(reasons(&plan), vec!["Scaling"]);
    assert_eq!(last_spec(&plan.status), scaled);
    assert!(plan.status.upgrade.is_none());
}

// ---- savepoints ----

#[test]
fn a_new_nonce_triggers_one_manual_savepoint_recorded_with_its_nonce() {
    let s = spec(UpgradeMode::Savepoint);
    let mut wanted = s.clone();
    wanted.job.as_mut().unwrap().savepoint_trigger_nonce = Some(42);
    let plan = step(&wanted, &deployed(&s), &running_world(), &settings());
    assert_eq!(
        plan.actions,
        vec![
            JobAction::Apply { restore: None },
            JobAction::TriggerSavepoint {
                trigger_type: SavepointTriggerType::Manual,
                nonce: Some(42)
            }
        ]
    );
    // Not recorded until triggered: a failed trigger call is retried.
    assert_eq!(last_spec(&plan.status).job.unwrap().savepoint_trigger_nonce, None);
    let retried = step(&wanted, &plan.status, &running_world(), &settings());
    assert!(retried.actions.contains(&JobAction::TriggerSavepoint {
        trigger_type: SavepointTriggerType::Manual,
        nonce: Some(42)
    }));

    let mut status = plan.status.clone();
    record_trigger(&mut status, "t-1".into(), SavepointTriggerType::Manual, Some(42), NOW);
    assert_eq!(last_spec(&status).job.unwrap().savepoint_trigger_nonce, Some(42));
    // In progress: nothing new is triggered.
    let world = Observed {
        trigger: Some(TriggerState::InProgress),
        ..running_world()
    };
    let waiting = step(&wanted, &status, &world, &settings());
    assert_eq!(waiting.actions, vec![JobAction::Apply { restore: None }]);
    assert_eq!(waiting.requeue, Some(IN_FLIGHT));
    // Completed: recorded as the last savepoint and in the history, with the nonce.
    let world = Observed {
        trigger: Some(TriggerState::Completed {
            location: "file:///sp/savepoint-1".into(),
        }),
        ..running_world()
    };
    let done = step(&wanted, &status, &world, &settings());
    let info = done.status.job_status.clone().unwrap().savepoint_info.unwrap();
    let last = info.last_savepoint.unwrap();
    assert_eq!(last.location, "file:///sp/savepoint-1");
    assert_eq!(last.trigger_type, Some(SavepointTriggerType::Manual));
    assert_eq!(last.trigger_nonce, Some(42));
    assert_eq!(info.savepoint_history.len(), 1);
    assert_eq!(info.trigger_id, None);
    assert_eq!(reasons(&done), vec!["SavepointCompleted"]);
}

#[test]
fn periodic_savepoints_follow_the_interval() {
    let s = spec(UpgradeMode::Savepoint);
    let every_hour = JobSettings {
        periodic_savepoint_interval: Some(Duration::from_secs(3600)),
        ..settings()
    };
    // The job started a minute ago: not due; look again when it is.
    let plan = step(&s, &deployed(&s), &running_world(), &every_hour);
    assert_eq!(plan.actions.len(), 1);
    assert_eq!(plan.requeue, Some(Duration::from_millis(3_540_000)));
    // Started two hours ago, never savepointed: due.
    let world = Observed {
        job: Some(ObservedJob {
            start_time: Some(NOW - 7_200_000),
            ..running_job()
        }),
        ..running_world()
    };
    let plan = step(&s, &deployed(&s), &world, &every_hour);
    assert!(plan.actions.contains(&JobAction::TriggerSavepoint {
        trigger_type: SavepointTriggerType::Periodic,
        nonce: None
    }));
    let mut status = plan.status;
    record_trigger(&mut status, "t-2".into(), SavepointTriggerType::Periodic, None, NOW);
    let info = status.job_status.as_ref().unwrap().savepoint_info.as_ref().unwrap();
    assert_eq!(info.last_periodic_savepoint_timestamp, Some(NOW));
    // A job that is not running is not savepointed.
    let world = Observed {
        job: Some(ObservedJob {
            start_time: Some(NOW - 7_200_000),
            ..job_in("RESTARTING")
        }),
        ..running_world()
    };
    assert_eq!(step(&s, &deployed(&s), &world, &every_hour).actions.len(), 1);
}

#[test]
fn savepoint_failures_become_warning_events() {
    let s = spec(UpgradeMode::Savepoint);
    let mut status = deployed(&s);
    record_trigger(
        &mut status,
        "t-3".into(),
        SavepointTriggerType::Periodic,
        None,
        NOW - 1_000,
    );
    let failed = Observed {
        trigger: Some(TriggerState::Failed {
            cause: "disk full".into(),
        }),
        ..running_world()
    };
    let plan = step(&s, &status, &failed, &settings());
    assert_eq!(reasons(&plan), vec!["SavepointError"]);
    assert!(plan.events[0].warning && plan.events[0].message.contains("disk full"));
    assert_eq!(plan.status.job_status.unwrap().savepoint_info.unwrap().trigger_id, None);
    // Unobservable: waits through the grace period, then gives up.
    let unknown = Observed {
        trigger: Some(TriggerState::Unknown {
            error: "connection refused".into(),
        }),
        ..running_world()
    };
    let within = step(&s, &status, &unknown, &settings());
    assert!(within.events.is_empty());
    let mut old = deployed(&s);
    record_trigger(
        &mut old,
        "t-3".into(),
        SavepointTriggerType::Periodic,
        None,
        NOW - 120_000,
    );
    let past = step(&s, &old, &unknown, &settings());
    assert_eq!(reasons(&past), vec!["SavepointError"]);
}

fn with_history(s: &FlinkDeploymentSpec, stamps: &[i64]) -> FlinkDeploymentStatus {
    let mut status = deployed(s);
    let history: Vec<Savepoint> = stamps
        .iter()
        .enumerate()
        .map(|(i, t)| Savepoint {
            time_stamp: *t,
            location: format!("file:///sp/{i}"),
            trigger_type: Some(SavepointTriggerType::Periodic),
            ..Savepoint::default()
        })
        .collect();
    status.job_status = Some(JobStatus {
        savepoint_info: Some(SavepointInfo {
            last_savepoint: history.last().cloned(),
            savepoint_history: history,
            ..SavepointInfo::default()
        }),
        ..JobStatus::default()
    });
    status
}

#[test]
fn history_is_trimmed_by_count_and_age_and_dropped_savepoints_are_disposed() {
    let s = spec(UpgradeMode::Savepoint);
    let limits = JobSettings {
        history_max_count: 3,
        history_max_age: Duration::from_secs(3600),
        ..settings()
    };
    let fresh = NOW - 1_000;
    let status = with_history(&s, &[fresh, fresh, fresh, fresh, fresh]);
    let plan = step(&s, &status, &running_world(), &limits);
    assert!(plan.actions.contains(&JobAction::DisposeSavepoints {
        locations: vec!["file:///sp/0".into(), "file:///sp/1".into()]
    }));
    let kept: Vec<String> = plan
        .status
        .job_status
        .unwrap()
        .savepoint_info
        .unwrap()
        .savepoint_history
        .into_iter()
        .map(|s| s.location)
        .collect();
    assert_eq!(kept, vec!["file:///sp/2", "file:///sp/3", "file:///sp/4"]);

    // Age: everything old goes, except the last savepoint (the job may need it).
    let old = NOW - 7_200_000;
    let status = with_history(&s, &[old, old]);
    let plan = step(&s, &status, &running_world(), &limits);
    assert!(plan.actions.contains(&JobAction::DisposeSavepoints {
        locations: vec!["file:///sp/0".into()]
    }));

    // Without a reachable cluster nothing is disposed and the history stays.
    let down = Observed {
        jobmanager: JobManagerDeploymentStatus::DeployedNotReady,
        job: None,
        ..running_world()
    };
    let plan = step(&s, &status, &down, &limits);
    assert_eq!(plan.actions, vec![JobAction::Apply { restore: None }]);
    assert_eq!(plan.status.job_status, status.job_status);
}

// ---- upgrades ----

/// Runs decide repeatedly against a world the test changes between passes, applying what the act layer
/// would record (trigger ids).
struct Run {
    spec: FlinkDeploymentSpec,
    status: FlinkDeploymentStatus,
    settings: JobSettings,
}

/// How long after the old job is first seen ended its statistics are trusted, with the default settings.
const STATS_SETTLED_AFTER_MS: i64 = 3_500;

impl Run {
    fn pass(&mut self, world: &Observed) -> JobPlan {
        self.pass_at(world, NOW)
    }

    fn pass_at(&mut self, world: &Observed, now_ms: i64) -> JobPlan {
        let plan = decide(desired(&self.spec), &self.status, world, &self.settings, now_ms);
        self.status = plan.status.clone();
        for action in &plan.actions {
            match action {
                JobAction::StopWithSavepoint { .. } => record_trigger(
                    &mut self.status,
                    "stop-1".into(),
                    SavepointTriggerType::Upgrade,
                    None,
                    NOW,
                ),
                JobAction::TriggerSavepoint { trigger_type, nonce } => {
                    record_trigger(&mut self.status, "sp-1".into(), *trigger_type, *nonce, NOW)
                }
                _ => {}
            }
        }
        plan
    }

    fn step(&self) -> Option<UpgradeStep> {
        self.status.upgrade.as_ref().map(|u| u.step)
    }
}

fn upgraded(mode: UpgradeMode) -> (FlinkDeploymentSpec, FlinkDeploymentSpec) {
    let old = spec(mode);
    let mut new = old.clone();
    new.job.as_mut().unwrap().parallelism = Some(4);
    (old, new)
}

#[test]
fn savepoint_upgrade_stops_with_a_savepoint_records_it_then_redeploys_from_it() {
    let (old, new) = upgraded(UpgradeMode::Savepoint);
    let mut run = Run {
        spec: new.clone(),
        status: deployed(&old),
        settings: settings(),
    };
    // 1. The upgrade is recorded before anything is touched; nothing is applied.
    let plan = run.pass(&running_world());
    assert!(plan.actions.is_empty(), "{:?}", plan.actions);
    assert_eq!(reasons(&plan), vec!["SpecChanged"]);
    assert_eq!(run.step(), Some(UpgradeStep::Stopping));
    assert_eq!(
        run.status.reconciliation_status.as_ref().unwrap().state,
        Some(ReconciliationState::Upgrading)
    );
    assert_eq!(last_spec(&run.status), new);
    // 2. Stop with savepoint.
    let plan = run.pass(&running_world());
    assert_eq!(
        plan.actions,
        vec![JobAction::StopWithSavepoint { job_id: "job-1".into() }]
    );
    // 3. In progress: wait; nothing is deleted.
    let in_progress = Observed {
        trigger: Some(TriggerState::InProgress),
        ..running_world()
    };
    assert!(run.pass(&in_progress).actions.is_empty());
    // 4. Completed: recorded BEFORE the cluster is deleted.
    let completed = Observed {
        job: Some(job_in("FINISHED")),
        trigger: Some(TriggerState::Completed {
            location: "file:///sp/upgrade-1".into(),
        }),
        ..running_world()
    };
    let plan = run.pass(&completed);
    assert!(plan.actions.is_empty());
    assert_eq!(run.step(), Some(UpgradeStep::Deleting));
    let info = run.status.job_status.as_ref().unwrap().savepoint_info.clone().unwrap();
    assert_eq!(info.last_savepoint.unwrap().location, "file:///sp/upgrade-1");
    assert_eq!(
        run.status.upgrade.as_ref().unwrap().restore_path.as_deref(),
        Some("file:///sp/upgrade-1")
    );
    // 5. Delete the cluster (HA data goes too: the savepoint carries the state).
    let finished = Observed {
        job: Some(job_in("FINISHED")),
        ..running_world()
    };
    let plan = run.pass(&finished);
    assert_eq!(plan.actions, vec![JobAction::DeleteCluster { keep_ha: false }]);
    // 6. Gone: deploy the new spec from the savepoint.
    let gone = Observed::default();
    let plan = run.pass(&gone);
    assert_eq!(
        plan.actions,
        vec![JobAction::Apply {
            restore: Some("file:///sp/upgrade-1".into())
        }]
    );
    assert_eq!(run.status.upgrade, None);
    assert_eq!(
        run.status.reconciliation_status.as_ref().unwrap().state,
        Some(ReconciliationState::Deployed)
    );
    // 7. Steady again: the same restore point keeps the objects unchanged.
    let plan = run.pass(&running_world());
    assert_eq!(
        plan.actions,
        vec![JobAction::Apply {
            restore: Some("file:///sp/upgrade-1".into())
        }]
    );
}

#[test]
fn a_stop_whose_trigger_was_never_recorded_is_recovered_from_the_statistics() {
    // The operator died between POST /stop and the status write: the job is FINISHED, no trigger known.
    let (old, new) = upgraded(UpgradeMode::Savepoint);
    let mut run = Run {
        spec: new,
        status: deployed(&old),
        settings: settings(),
    };
    run.pass(&running_world());
    let after_crash = Observed {
        job: Some(job_in("FINISHED")),
        latest_savepoint: Some("file:///sp/lost-trigger".into()),
        ..running_world()
    };
    // Flink's REST may still serve statistics from before the stop: they are read once its cache has expired.
    let plan = run.pass(&after_crash);
    assert!(plan.actions.is_empty(), "never stops twice");
    assert_eq!(run.step(), Some(UpgradeStep::Stopping));
    assert_eq!(plan.requeue, Some(Duration::from_millis(STATS_SETTLED_AFTER_MS as u64)));
    let plan = run.pass_at(&after_crash, NOW + STATS_SETTLED_AFTER_MS);
    assert!(plan.actions.is_empty(), "never stops twice or deletes in the same pass");
    assert_eq!(run.step(), Some(UpgradeStep::Deleting));
    assert_eq!(
        run.status.upgrade.as_ref().unwrap().restore_path.as_deref(),
        Some("file:///sp/lost-trigger")
    );
}

#[test]
fn a_new_operator_continues_an_upgrade_from_the_status_alone() {
    let (old, new) = upgraded(UpgradeMode::Savepoint);
    let mut run = Run {
        spec: new.clone(),
        status: deployed(&old),
        settings: settings(),
    };
    run.pass(&running_world());
    run.pass(&running_world());
    // A fresh process sees the recorded trigger and polls it instead of stopping again.
    let status = run.status.clone();
    let plan = decide(
        desired(&new),
        &status,
        &Observed {
            trigger: Some(TriggerState::InProgress),
            ..running_world()
        },
        &settings(),
        NOW + 5_000,
    );
    assert!(plan.actions.is_empty());
}

#[test]
fn a_failed_stop_with_savepoint_is_retried_and_deletes_nothing() {
    let (old, new) = upgraded(UpgradeMode::Savepoint);
    let mut run = Run {
        spec: new,
        status: deployed(&old),
        settings: settings(),
    };
    run.pass(&running_world());
    run.pass(&running_world());
    let failed = Observed {
        trigger: Some(TriggerState::Failed {
            cause: "checkpoint declined".into(),
        }),
        ..running_world()
    };
    let plan = run.pass(&failed);
    assert!(plan.actions.is_empty());
    assert_eq!(reasons(&plan), vec!["SavepointError"]);
    assert_eq!(run.step(), Some(UpgradeStep::Stopping));
    assert_eq!(
        run.pass(&running_world()).actions,
        vec![JobAction::StopWithSavepoint { job_id: "job-1".into() }]
    );
}

#[test]
fn an_upgrade_waits_for_a_savepoint_in_flight() {
    let (old, new) = upgraded(UpgradeMode::Savepoint);
    let mut status = deployed(&old);
    record_trigger(&mut status, "manual-1".into(), SavepointTriggerType::Manual, None, NOW);
    let world = Observed {
        trigger: Some(TriggerState::InProgress),
        ..running_world()
    };
    let plan = step(&new, &status, &world, &settings());
    assert!(plan.status.upgrade.is_none());
    assert_eq!(last_spec(&plan.status), old);
    assert_eq!(plan.requeue, Some(IN_FLIGHT));
}

#[test]
fn last_state_with_ha_keeps_the_ha_data_and_restores_nothing_explicitly() {
    let (old, new) = upgraded(UpgradeMode::LastState);
    let mut run = Run {
        spec: new,
        status: deployed(&old),
        settings: ha_settings(),
    };
    run.pass(&running_world());
    let plan = run.pass(&running_world());
    assert!(plan.actions.is_empty());
    assert_eq!(run.step(), Some(UpgradeStep::Deleting));
    assert_eq!(
        run.pass(&running_world()).actions,
        vec![JobAction::DeleteCluster { keep_ha: true }]
    );
    assert_eq!(
        run.pass(&Observed::default()).actions,
        vec![JobAction::Apply { restore: None }]
    );
}

#[test]
fn last_state_without_ha_cancels_and_restores_from_the_retained_checkpoint() {
    let (old, new) = upgraded(UpgradeMode::LastState);
    let mut run = Run {
        spec: new,
        status: deployed(&old),
        settings: settings(),
    };
    let with_checkpoint = Observed {
        latest_checkpoint: Some("file:///cp/job-1/chk-7".into()),
        ..running_world()
    };
    run.pass(&with_checkpoint);
    assert_eq!(
        run.pass(&with_checkpoint).actions,
        vec![JobAction::Cancel { job_id: "job-1".into() }]
    );
    // Right after the cancel Flink's REST can still answer from its statistics cache: chk-7, which the job
    // subsumed (and deleted) when chk-8 completed. Nothing is settled from that answer.
    let cancelled_stale = Observed {
        job: Some(job_in("CANCELED")),
        ..with_checkpoint.clone()
    };
    let plan = run.pass(&cancelled_stale);
    assert!(plan.actions.is_empty());
    assert_eq!(run.step(), Some(UpgradeStep::Stopping));
    assert_eq!(run.status.upgrade.as_ref().unwrap().job_ended_seen, Some(NOW));
    assert_eq!(plan.requeue, Some(Duration::from_millis(STATS_SETTLED_AFTER_MS as u64)));
    // A pass before the cache has expired waits only for what is left of it.
    let plan = run.pass_at(&cancelled_stale, NOW + 1_000);
    assert_eq!(run.step(), Some(UpgradeStep::Stopping));
    assert_eq!(
        plan.requeue,
        Some(Duration::from_millis(STATS_SETTLED_AFTER_MS as u64 - 1_000))
    );
    // Once it has, the statistics are final: chk-8 is the retained checkpoint.
    let cancelled = Observed {
        job: Some(job_in("CANCELED")),
        latest_checkpoint: Some("file:///cp/job-1/chk-8".into()),
        ..running_world()
    };
    let later = NOW + STATS_SETTLED_AFTER_MS;
    run.pass_at(&cancelled, later);
    assert_eq!(
        run.status.upgrade.as_ref().unwrap().restore_path.as_deref(),
        Some("file:///cp/job-1/chk-8")
    );
    assert_eq!(
        run.pass_at(&cancelled, later).actions,
        vec![JobAction::DeleteCluster { keep_ha: false }]
    );
    assert_eq!(
        run.pass(&Observed::default()).actions,
        vec![JobAction::Apply {
            restore: Some("file:///cp/job-1/chk-8".into())
        }]
    );
}

#[test]
fn the_statistics_wait_follows_flinks_rest_cache_settings() {
    assert_eq!(settings().checkpoint_stats_max_age, Duration::from_secs(3));
    let mut conf = FlinkConfiguration::new();
    conf.insert("web.refresh-interval".into(), "10 s".into());
    assert_eq!(
        JobSettings::from_conf(&conf).checkpoint_stats_max_age,
        Duration::from_secs(10),
        "the statistics cache defaults to web.refresh-interval"
    );
    conf.insert("rest.cache.checkpoint-statistics.timeout".into(), "20000".into());
    assert_eq!(
        JobSettings::from_conf(&conf).checkpoint_stats_max_age,
        Duration::from_secs(20)
    );
    let mut conf = FlinkConfiguration::new();
    conf.insert("rest.cache.checkpoint-statistics.timeout".into(), "1 s".into());
    assert_eq!(
        JobSettings::from_conf(&conf).checkpoint_stats_max_age,
        Duration::from_secs(3),
        "the execution graph is still cached for web.refresh-interval"
    );
}

#[test]
fn last_state_without_ha_or_any_checkpoint_is_refused() {
    let (old, new) = upgraded(UpgradeMode::LastState);
    let plan = step(&new, &deployed(&old), &running_world(), &settings());
    assert!(plan.status.upgrade.is_none());
    assert_eq!(last_spec(&plan.status), old, "the old spec keeps running");
    assert_eq!(plan.actions, vec![JobAction::Apply { restore: None }]);
    assert_eq!(reasons(&plan), vec!["UpgradeRefused"]);
    assert!(plan.error.unwrap().contains("no completed checkpoint or savepoint"));
}

#[test]
fn stateless_upgrade_deletes_everything_and_starts_fresh() {
    let (old, new) = upgraded(UpgradeMode::Stateless);
    let mut status = deployed(&old);
    status.job_status = Some(JobStatus {
        upgrade_savepoint_path: Some("file:///sp/initial".into()),
        ..JobStatus::default()
    });
    let mut run = Run {
        spec: new,
        status,
        settings: ha_settings(),
    };
    run.pass(&running_world());
    run.pass(&running_world());
    assert_eq!(
        run.pass(&running_world()).actions,
        vec![JobAction::DeleteCluster { keep_ha: false }]
    );
    assert_eq!(
        run.pass(&Observed::default()).actions,
        vec![JobAction::Apply { restore: None }]
    );
}

#[test]
fn a_broken_jobmanager_is_replaced_from_the_last_known_savepoint() {
    let (old, new) = upgraded(UpgradeMode::Savepoint);
    let mut status = with_history(&old, &[NOW - 1_000]);
    status.job_status.as_mut().unwrap().upgrade_savepoint_path = Some("file:///sp/start".into());
    let mut run = Run {
        spec: new,
        status,
        settings: settings(),
    };
    let broken = Observed {
        jobmanager: JobManagerDeploymentStatus::Error,
        cluster_present: true,
        ..Observed::default()
    };
    run.pass(&broken);
    run.pass(&broken);
    assert_eq!(
        run.status.upgrade.as_ref().unwrap().restore_path.as_deref(),
        Some("file:///sp/0")
    );
    // A JobManager that is merely starting is waited for instead.
    let (old, new) = upgraded(UpgradeMode::Savepoint);
    let mut run = Run {
        spec: new,
        status: deployed(&old),
        settings: settings(),
    };
    let starting = Observed {
        jobmanager: JobManagerDeploymentStatus::DeployedNotReady,
        cluster_present: true,
        ..Observed::default()
    };
    run.pass(&starting);
    let plan = run.pass(&starting);
    assert!(plan.actions.is_empty());
    assert_eq!(run.step(), Some(UpgradeStep::Stopping));
    assert!(plan.error.unwrap().contains("waiting for the JobManager"));
}

#[test]
fn suspend_then_resume_restores_from_the_suspend_savepoint() {
    let s = spec(UpgradeMode::Savepoint);
    let mut suspended = s.clone();
    suspended.job.as_mut().unwrap().state = Some(JobState::Suspended);
    let mut run = Run {
        spec: suspended.clone(),
        status: deployed(&s),
        settings: settings(),
    };
    let plan = run.pass(&running_world());
    assert_eq!(reasons(&plan), vec!["Suspend"]);
    run.pass(&running_world());
    run.pass(&Observed {
        job: Some(job_in("FINISHED")),
        trigger: Some(TriggerState::Completed {
            location: "file:///sp/suspend".into(),
        }),
        ..running_world()
    });
    assert_eq!(
        run.pass(&running_world()).actions,
        vec![JobAction::DeleteCluster { keep_ha: false }]
    );
    let plan = run.pass(&Observed::default());
    assert!(plan.actions.is_empty(), "suspended: nothing is deployed");
    assert_eq!(reasons(&plan), vec!["Suspended"]);
    let job = run.status.job_status.clone().unwrap();
    assert_eq!(job.state.as_deref(), Some("SUSPENDED"));
    assert_eq!(job.upgrade_savepoint_path.as_deref(), Some("file:///sp/suspend"));
    assert_eq!(
        crate::controller::decide::lifecycle_state(&run.status, false),
        crate::crd::ResourceLifecycleState::Suspended
    );
    // Steady while suspended: nothing applied.
    assert!(run.pass(&Observed::default()).actions.is_empty());

    // Resume.
    run.spec = s.clone();
    let plan = run.pass(&Observed::default());
    assert_eq!(reasons(&plan), vec!["Resume"]);
    assert_eq!(run.step(), Some(UpgradeStep::Deleting));
    assert_eq!(
        run.pass(&Observed::default()).actions,
        vec![JobAction::Apply {
            restore: Some("file:///sp/suspend".into())
        }]
    );
    assert_eq!(last_spec(&run.status), s);
}

#[test]
fn a_spec_edited_during_an_upgrade_waits_for_it_to_finish() {
    let (old, new) = upgraded(UpgradeMode::Stateless);
    let mut run = Run {
        spec: new.clone(),
        status: deployed(&old),
        settings: settings(),
    };
    run.pass(&running_world());
    let mut newer = new.clone();
    newer.image = Some("flink:1.20.9".into());
    run.spec = newer.clone();
    run.pass(&running_world());
    assert_eq!(last_spec(&run.status), new, "the in-flight target is kept");
    run.pass(&running_world());
    run.pass(&Observed::default());
    // Then the newer spec becomes the next upgrade.
    let plan = run.pass(&running_world());
    assert_eq!(reasons(&plan), vec!["SpecChanged"]);
    assert_eq!(last_spec(&run.status), newer);
}

#[test]
fn settings_come_from_the_configuration() {
    let conf: FlinkConfiguration = [
        ("high-availability.type", "kubernetes"),
        ("kubernetes.operator.periodic.savepoint.interval", "10 min"),
        ("kubernetes.operator.savepoint.history.max.count", "3"),
        ("kubernetes.operator.savepoint.history.max.age", "2h"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let s = JobSettings::from_conf(&conf);
    assert!(s.ha);
    assert_eq!(s.periodic_savepoint_interval, Some(Duration::from_secs(600)));
    assert_eq!(s.history_max_count, 3);
    assert_eq!(s.history_max_age, Duration::from_secs(7200));
    let defaults = settings();
    assert_eq!(
        (
            defaults.ha,
            defaults.periodic_savepoint_interval,
            defaults.history_max_count
        ),
        (false, None, 10)
    );
}

#[test]
fn savepoint_status_answers_map_to_trigger_states() {
    use crate::flink::{FlinkError, OperationStatus};
    assert_eq!(
        TriggerState::from_rest(Ok(OperationStatus::InProgress)),
        TriggerState::InProgress
    );
    assert_eq!(
        TriggerState::from_rest(Ok(OperationStatus::Completed {
            location: Some("file:///sp/1".into())
        })),
        TriggerState::Completed {
            location: "file:///sp/1".into()
        }
    );
    assert!(matches!(
        TriggerState::from_rest(Ok(OperationStatus::Completed { location: None })),
        TriggerState::Failed { .. }
    ));
    let unreachable = FlinkError::Timeout {
        method: "GET".into(),
        url: "http://x/jobs".into(),
        timeout: Duration::from_secs(1),
    };
    assert!(matches!(
        TriggerState::from_rest(Err(unreachable)),
        TriggerState::Unknown { .. }
    ));
}

#[test]
fn a_job_on_its_way_to_running_is_looked_at_again_soon() {
    // Submitted, tasks scheduled (Flink says RUNNING before its vertices run), restarting: the status must follow
    // within seconds, not at the next resync (found on the node: a session job showed RUNNING up to a minute late).
    let s = spec(UpgradeMode::Savepoint);
    let status = deployed(&s);
    let scheduling = ObservedJob {
        vertices_running: false,
        ..running_job()
    };
    for job in [
        job_in("CREATED"),
        job_in("INITIALIZING"),
        scheduling,
        job_in("RESTARTING"),
    ] {
        let world = Observed {
            job: Some(job.clone()),
            ..running_world()
        };
        let plan = step(&s, &status, &world, &settings());
        assert_eq!(plan.requeue, Some(STARTING), "{job:?}");
        assert_ne!(
            plan.status.job_status.unwrap().state.as_deref(),
            Some("RUNNING"),
            "{job:?}"
        );
    }
    // Running, or over: the normal resync.
    for job in [running_job(), job_in("FINISHED"), job_in("CANCELED"), job_in("FAILED")] {
        let world = Observed {
            job: Some(job.clone()),
            ..running_world()
        };
        assert_eq!(step(&s, &status, &world, &settings()).requeue, None, "{job:?}");
    }
}

#[test]
fn only_applying_may_be_repeated_from_a_stale_copy() {
    assert!(!JobAction::Apply { restore: None }.must_not_repeat());
    let once = [
        JobAction::StopWithSavepoint { job_id: "j".into() },
        JobAction::TriggerSavepoint {
            trigger_type: crate::crd::SavepointTriggerType::Manual,
            nonce: None,
        },
        JobAction::Cancel { job_id: "j".into() },
        JobAction::DeleteCluster { keep_ha: true },
        JobAction::DisposeSavepoints { locations: vec![] },
    ];
    assert!(once.iter().all(JobAction::must_not_repeat));
}
