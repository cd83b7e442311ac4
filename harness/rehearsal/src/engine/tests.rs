//! The engine's unit tests: outcomes with a rollback, the trust rules, deadlines.

use super::*;

/// A scenario whose rollback ran: `lost` updates during the steps, the rollback's checks
/// passing or not, and `backlog` updates Telegram still holds after the rollback.
fn rolled_back(lost: u64, checks_pass: bool, backlog: u64, deviated: bool) -> ScenarioRecord {
    let mut r = ScenarioRecord::new("s", "s", crate::Expected::Holds, SystemTime::UNIX_EPOCH);
    r.deviated = deviated;
    r.probe = Some(probe::ProbeReport {
        updates_lost: lost,
        ..Default::default()
    });
    let mut after = probe::ProbeReport::default();
    after.telegram.backlog = backlog;
    r.rollback_probe = Some(after);
    r.checks_after_rollback = vec![CheckRecord {
        id: "health.gateway".into(),
        outcome: if checks_pass {
            CheckOutcome::Pass
        } else {
            CheckOutcome::Fail
        },
        evidence: String::new(),
    }];
    r
}

#[test]
fn a_worker_that_processed_nothing_is_examined_with_nats() {
    let mut p = probe::ProbeReport::default();
    p.data
        .missing_processed
        .insert("parser-pipeline".into(), 501);
    p.data
        .missing_processed
        .insert("crewai-nats-worker".into(), 0);
    assert_eq!(
        unprocessed_by(&p),
        vec![Service::ParserPipeline, Service::Nats]
    );
    assert_eq!(
        unprocessed_by(&probe::ProbeReport::default()),
        Vec::<Service>::new()
    );
}

#[test]
fn updates_lost_during_the_steps_break_the_scenario_whatever_the_rollback_restores() {
    let r = rolled_back(3, true, 0, true);
    assert_eq!(
        outcome_with_rollback(&r, Rollback::OnDeviation),
        Outcome::Breaks
    );
    assert_eq!(outcome_with_rollback(&r, Rollback::Always), Outcome::Breaks);
}

#[test]
fn a_deviation_the_rollback_restores_is_detected_and_one_it_does_not_breaks() {
    assert_eq!(
        outcome_with_rollback(&rolled_back(0, true, 0, true), Rollback::OnDeviation),
        Outcome::Detected
    );
    assert_eq!(
        outcome_with_rollback(&rolled_back(0, false, 0, true), Rollback::OnDeviation),
        Outcome::Breaks
    );
    // Telegram still holding updates after the rollback: the node does not take them.
    assert_eq!(
        outcome_with_rollback(&rolled_back(0, true, 2, true), Rollback::OnDeviation),
        Outcome::Breaks
    );
}

#[test]
fn a_rollback_scenario_that_never_deviated_and_is_restored_holds() {
    assert_eq!(
        outcome_with_rollback(&rolled_back(0, true, 0, false), Rollback::Always),
        Outcome::Holds
    );
    assert_eq!(
        outcome_with_rollback(&rolled_back(0, true, 0, true), Rollback::Always),
        Outcome::Detected
    );
}

#[test]
fn a_block_that_bounds_its_waits_is_given_their_sum() {
    let script = "docker compose up -d x\ntimeout 60 bash -c 'until curl -fsS u; do sleep 1; done'\ntimeout 5s true\ncurl --max-time 3 u";
    assert_eq!(own_timeouts(script), Duration::from_secs(65));
    assert_eq!(own_timeouts("sleep 30"), Duration::ZERO);
}

#[test]
fn a_scenario_of_twelve_phases_gets_three_times_the_deadline_of_one_of_four() {
    let d = Duration::from_secs(240);
    assert_eq!(scenario_deadline(d, 2), d);
    assert_eq!(scenario_deadline(d, 4), d);
    assert_eq!(scenario_deadline(d, 5), Duration::from_secs(300));
    assert_eq!(scenario_deadline(d, 12), Duration::from_secs(720));
}

fn starved(lag_p99_ms: u64) -> probe::ProbeReport {
    let mut p = crate::samples::probe_report(0, 0);
    p.harness.lag_p99_ms = lag_p99_ms;
    p.harness.lag_max_ms = lag_p99_ms + 200;
    p
}

fn step_that_ran(id: &str, exit_code: i32, compose: &[(&str, &str)]) -> StepRecord {
    let mut step = StepRecord::new(id, "Restart services");
    step.actions.push(ActionRecord::shell(
        shell::ShellRun {
            command: "docker compose up -d --wait".into(),
            ran: "docker compose up -d --wait".into(),
            exit_code: Some(exit_code),
            killed_at_deadline: false,
            duration_ms: 900,
            output_tail: String::new(),
            secrets_in_argv: Vec::new(),
            compose: compose
                .iter()
                .map(|(tool, args)| harness::compose::ComposeRun {
                    tool: tool.to_string(),
                    args: args.to_string(),
                })
                .collect(),
        },
        "",
    ));
    step
}

#[test]
fn a_compose_command_the_host_cannot_run_makes_the_scenario_inconclusive_naming_the_step() {
    let no_compose = step_that_ran(
        "rollback.step2",
        127,
        &[(harness::compose::NO_COMPOSE, "restart")],
    );
    assert_eq!(
        host_could_not_run(&[], &[no_compose]),
        Some("rollback.step2: the runbook's Compose command could not run as written: the rehearsal host has no Compose (neither `docker compose` nor `docker-compose`); install docker-compose".into())
    );
    let v1 = "docker-compose 1.29.2 (v1)";
    let wait_on_v1 = step_that_ran("phase2.step3", 1, &[(v1, "up -d --wait dagi-router-node1")]);
    assert!(host_could_not_run(&[wait_on_v1], &[])
        .is_some_and(|why| why.starts_with("phase2.step3: ") && why.contains("no `--wait`")));
    // The runbook's own failure, or a v2-only flag that worked anyway, is no excuse.
    let failed_as_written = step_that_ran("phase2.step3", 1, &[(v1, "up -d dagi-router")]);
    let ran_fine = step_that_ran("phase2.step3", 0, &[(v1, "up -d --wait")]);
    assert_eq!(
        host_could_not_run(&[failed_as_written, ran_fine], &[]),
        None
    );
}

fn exited(engine_error: Option<&str>) -> crate::journal::Forensics {
    crate::journal::Forensics {
        service: "parser-pipeline".into(),
        when: "after rollback".into(),
        status: Some("exited".into()),
        running: Some(false),
        exit_code: Some(128),
        oom_killed: Some(false),
        restart_count: Some(0),
        started_at: None,
        engine_error: engine_error.map(str::to_string),
        last_logs: String::new(),
    }
}

#[test]
fn a_service_the_engine_could_not_start_for_a_stale_endpoint_makes_the_scenario_inconclusive() {
    let stale = exited(Some(
        "endpoint with name parser-pipeline already exists in network rotation-c3c3d2c2",
    ));
    assert_eq!(
        engine_could_not_start(&[exited(None), stale]),
        Some("the Docker engine could not start parser-pipeline after rollback: endpoint with name parser-pipeline already exists in network rotation-c3c3d2c2 (a stale network endpoint, moby/moby#17217: the engine's defect, not the runbook's)".into())
    );
    // A container that ran and exited, or that its own configuration kept from starting,
    // is the runbook's business.
    let bad_mount = exited(Some("error mounting \"/x/.env\": not a directory"));
    assert_eq!(engine_could_not_start(&[exited(None), bad_mount]), None);
}

#[test]
fn a_breaking_verdict_measured_by_a_starved_probe_is_inconclusive_never_breaks() {
    let p = starved(1500);
    let (actual, why) = unless_saturated(Outcome::Breaks, [Some(&p), None]);
    assert_eq!(actual, Outcome::Inconclusive);
    assert!(why
        .unwrap()
        .starts_with("the probe's clock ticked 1500 ms late"));
    let (actual, _) = unless_saturated(Outcome::Detected, [None, Some(&p)]);
    assert_eq!(actual, Outcome::Inconclusive);
}

#[test]
fn a_probe_on_time_keeps_the_verdict_and_a_starved_one_does_not_undo_holds() {
    let on_time = starved(HARNESS_LAG_LIMIT_MS);
    assert_eq!(
        unless_saturated(Outcome::Breaks, [Some(&on_time)]),
        (Outcome::Breaks, None)
    );
    let late = starved(5000);
    assert_eq!(
        unless_saturated(Outcome::Holds, [Some(&late)]),
        (Outcome::Holds, None)
    );
}

#[test]
fn failed_calls_measured_on_a_machine_without_spare_cpu_are_inconclusive_never_detected() {
    let mut p = crate::samples::probe_report(0, 0);
    p.harness.cpu_idle_pct = 2.1;
    let why = starved_by_the_machine(Outcome::Detected, true, true, [Some(&p), None]).unwrap();
    assert!(
        why.starts_with(
            "the machine had no spare CPU while the traffic was measured (2.1 % idle, floor 5 %)"
        ),
        "{why}"
    );
    p.harness.cpu_idle_pct = MACHINE_IDLE_FLOOR_PCT;
    assert_eq!(
        starved_by_the_machine(Outcome::Detected, true, true, [Some(&p)]),
        None,
        "a machine with spare CPU measured the node"
    );
}

#[test]
fn failed_calls_measured_beside_other_busy_scenarios_are_inconclusive_until_measured_alone() {
    let mut p = crate::samples::probe_report(0, 0);
    p.harness.cpu_idle_pct = 10.0;
    let why = starved_by_the_machine(Outcome::Detected, true, false, [Some(&p)]).unwrap();
    assert_eq!(
        why,
        "only delays and failed calls deviated (every step and check passed, nothing was \
         lost), measured beside other busy scenarios whose replicas shared the CPU: a verdict \
         on timing alone is given only from a run alone on the machine"
    );
    assert_eq!(
        starved_by_the_machine(Outcome::Detected, true, true, [Some(&p)]),
        None,
        "measured alone, with CPU to spare: the verdict stands"
    );
    assert!(
        BusySlots::new(1).alone_on_the_machine(),
        "one slot: every scenario is alone"
    );
    assert!(!BusySlots::new(2).alone_on_the_machine());
    assert!(BusySlots::new(2).alone().alone_on_the_machine());
}

#[test]
fn a_failed_check_or_step_or_holds_stands_whatever_the_machines_load() {
    let mut p = crate::samples::probe_report(0, 0);
    p.harness.cpu_idle_pct = 0.5;
    assert_eq!(
        starved_by_the_machine(Outcome::Detected, false, false, [Some(&p)]),
        None,
        "a failed check or step is evidence"
    );
    assert_eq!(
        starved_by_the_machine(Outcome::Breaks, false, false, [Some(&p)]),
        None
    );
    assert_eq!(
        starved_by_the_machine(Outcome::Holds, true, false, [Some(&p)]),
        None,
        "a starved machine did not invent a success"
    );
}

#[test]
fn data_accepted_and_never_stored_is_evidence_not_timing() {
    let mut p = crate::samples::probe_report(0, 0);
    assert!(!data_missing(&p));
    p.data
        .missing_processed
        .insert("crewai-nats-worker".into(), 1);
    assert!(data_missing(&p));
}

#[test]
fn host_side_errors_above_one_percent_make_the_numbers_the_hosts() {
    let mut p = crate::samples::probe_report(0, 0);
    let attempts: u64 = p.flows.values().map(|f| f.attempts).sum();
    p.harness.host_errors = attempts / 100;
    assert_eq!(harness_saturated(&p), None);
    p.harness.host_errors = attempts / 100 + 1;
    assert!(harness_saturated(&p)
        .unwrap()
        .contains("failed on the host's side"));
}
