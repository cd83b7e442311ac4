//! The scenario's phases and its rollback under traffic: faults on schedule, every step
//! boundary judged, the safeguard, the probe, the outcome with the rollback, the forensics.

#[allow(unused_imports)]
use super::*;

/// The scenario's phases under traffic, with its faults injected and undone on schedule.
pub(super) async fn rehearse_steps(
    run: &Run<'_>,
    ctx: &mut Ctx<'_>,
    queue: &mut crate::telegram::Queue,
    record: &mut ScenarioRecord,
) {
    let live = probe::Live::default();
    let stop_timers = AtomicBool::new(false);
    let scheduler = run.scheduler;
    let body = async {
        let phases = async {
            let done = run_phases(ctx, run, &live).await;
            // Faults are bounded by the phases they were attached to.
            stop_timers.store(true, Ordering::SeqCst);
            scheduler.undo(Undo::EndOfPhases).await;
            done
        };
        tokio::join!(phases, scheduler.run_timers(&stop_timers)).0
    };
    let traffic = run.traffic(run.options.probe.clone(), &live, "");
    let (report, done, ready_after) = under_traffic(traffic, queue, body).await;
    record.steps = done.steps;
    record.safeguard = done.tripped;
    record.stopped_at_failed_step = done.stopped;
    record.boundaries = done.boundaries;
    record.probe = Some(report);
    record.ready_after_ms = ready_after;
}

/// The runbook's rollback under traffic (its own probe, ids apart), then the steady state
/// checked and any service found down examined.
pub(super) async fn rehearse_rollback(
    run: &Run<'_>,
    ctx: &mut Ctx<'_>,
    queue: &mut crate::telegram::Queue,
    record: &mut ScenarioRecord,
) {
    run.progress.say(&format!(
        "{}: running the runbook's rollback",
        run.scenario.id
    ));
    let live = probe::Live::default();
    let config = ProbeConfig {
        id_offset: 500_000,
        ..run.options.probe.clone()
    };
    ctx.t0 = Instant::now();
    let body = async {
        let mut steps = Vec::new();
        for step in &run.runbook.rollback {
            run.scheduler.before_step(&step.id).await;
            steps.push(run_step(ctx, step, 5).await);
        }
        run.scheduler.undo(Undo::EndOfRollback).await;
        steps
    };
    let traffic = run.traffic(config, &live, " after the rollback");
    let (report, steps, ready_after) = under_traffic(traffic, queue, body).await;
    record.rollback_steps = steps;
    record.ready_after_rollback_ms = ready_after;
    record.rollback_probe = Some(report);
    record.checks_after_rollback =
        checks_on(run.stack, STEADY_STATE, None, None, &ctx.redactor).await;
    record.forensics.extend(
        forensics(
            run.stack,
            &record.checks_after_rollback,
            "after rollback",
            &[],
        )
        .await,
    );
}

/// What running the phases gave: their steps, and why they stopped early, if they did.
pub(super) struct PhasesRun {
    pub(super) steps: Vec<StepRecord>,
    /// The safeguard that tripped.
    pub(super) tripped: Option<String>,
    /// The step whose command failed, where the operator stopped.
    pub(super) stopped: Option<String>,
    /// Each step boundary, judged as a place to stop.
    pub(super) boundaries: Vec<BoundaryRecord>,
}

/// Runs the scenario's phases step by step, faults attached before their steps; stops where
/// the safeguard trips or, for a runbook that says so, where a step's command fails.
pub(super) async fn run_phases(ctx: &mut Ctx<'_>, run: &Run<'_>, live: &probe::Live) -> PhasesRun {
    let (scenario, runbook, progress) = (run.scenario, run.runbook, run.progress);
    let mut done = PhasesRun {
        steps: Vec::new(),
        tripped: None,
        stopped: None,
        boundaries: Vec::new(),
    };
    // The secret the gateway issues tokens with before each step.
    let mut issued_with = flows::issuing_secret(run.stack).await;
    for phase in &scenario.phases {
        let Some(p) = runbook.phases.iter().find(|p| p.number == *phase) else {
            done.steps
                .push(StepRecord::missing(&format!("phase{phase}")));
            continue;
        };
        progress.say(&format!(
            "{}: phase {} ({})",
            scenario.id, p.number, p.title
        ));
        for step in &p.steps {
            if let Some(why) = scenario
                .safeguard
                .and_then(|guard| safeguard_trips(guard, live, ctx.t0, &step.id))
            {
                progress.say(&format!("{}: {why}", scenario.id));
                done.tripped = Some(why);
                return done;
            }
            if let Some(last) = done.boundaries.last_mut() {
                last.before = Some(step.id.clone());
                last.lasted_ms = (ctx.t0.elapsed().as_millis() as u64).saturating_sub(last.at_ms);
            }
            run.scheduler.before_step(&step.id).await;
            // A paced rehearsal is one a person follows (beside `verify --watch`, say): each
            // step is said as it begins.
            if !ctx.options.operator_pace.is_zero() {
                progress.say(&format!(
                    "{}: {} begins: {}",
                    scenario.id, step.id, step.title
                ));
            }
            let step_record = run_step(ctx, step, p.budget_minutes.unwrap_or(5)).await;
            let failed = !step_record.ok;
            done.steps.push(step_record);
            let first_id = flows::UPDATE_ID_BASE
                + (done.boundaries.len() * harness::replica_root::AGENTS.len()) as i64;
            done.boundaries
                .push(at_boundary(run, ctx, p, &step.id, issued_with.as_deref(), first_id).await);
            if let Some(now) = flows::issuing_secret(run.stack).await {
                issued_with = Some(now);
            }
            if !ctx.options.operator_pace.is_zero() {
                tokio::time::sleep(ctx.options.operator_pace).await;
            }
            if failed && scenario.stop_at_failed_step {
                progress.say(&format!(
                    "{}: {} failed: the operator stops there, as the runbook says",
                    scenario.id, step.id
                ));
                done.stopped = Some(step.id.clone());
                return done;
            }
        }
    }
    done
}

/// The node once `after` is done, as the operator would leave it there (`boundary::CHECKS`):
/// what each running container holds tried now, every flow tried end to end (`flows.rs`; the
/// API with a token signed with `issued_with`, the secret the gateway issued tokens with
/// before the step), and whether the phase's text declares what is refused.
pub(super) async fn at_boundary(
    run: &Run<'_>,
    ctx: &Ctx<'_>,
    phase: &harness::runbook::Phase,
    after: &str,
    issued_with: Option<&str>,
    first_id: i64,
) -> BoundaryRecord {
    let at_ms = ctx.t0.elapsed().as_millis() as u64;
    let fault_active = run
        .scheduler
        .records()
        .into_iter()
        .find(|f| f.injected_ms.is_some() && f.removed_ms.is_none())
        .map(|f| f.name);
    let flows = flows::Boundary {
        stack: run.stack,
        passwords: run.passwords,
        redactor: &ctx.redactor,
        issued_with,
        first_id,
        fault_active,
    };
    let checking = Instant::now();
    let (checks, flows) = tokio::join!(
        checks_on(run.stack, boundary::CHECKS, None, None, &ctx.redactor),
        flows::try_all(&flows)
    );
    let mut record = BoundaryRecord {
        after: after.to_string(),
        before: None,
        at_ms,
        lasted_ms: 0,
        checked_ms: checking.elapsed().as_millis() as u64,
        declared: None,
        checks,
        flows,
    };
    record.declared = boundary::declared(phase, &record.refused().collect::<Vec<_>>());
    for f in record.recovered() {
        run.progress.say(&format!(
            "{}: after {after}: {} recovered: {}",
            run.scenario.id, f.flow, f.evidence
        ));
    }
    for evidence in record.refused() {
        let how = if record.declared.is_some() {
            "declared by the runbook"
        } else {
            "unsafe"
        };
        run.progress.say(&format!(
            "{}: {how} after {after}: {evidence}",
            run.scenario.id
        ));
    }
    record
}

/// Why the safeguard stops the steps before `step`, if the live failure rate over its window
/// exceeds its tolerance (with at least 5 requests seen).
pub(super) fn safeguard_trips(
    guard: Safeguard,
    live: &probe::Live,
    started: Instant,
    step: &str,
) -> Option<String> {
    let (rate, n) = live.failure_rate(guard.window);
    (n >= 5 && rate > guard.max_failure_rate).then(|| {
        format!(
            "safeguard: {:.0} % of {n} requests failed over the last {} ms (tolerance {:.0} %), {} ms into the steps; aborted before {step}",
            rate * 100.0,
            guard.window.as_millis(),
            guard.max_failure_rate * 100.0,
            started.elapsed().as_millis(),
        )
    })
}

/// The probe's traffic around a body of work (the steps, or the rollback's), and what follows
/// it alike: the settle time (the probe sees the aftermath), the node's readiness, and
/// Telegram's last retries, waited out with the busy slot released.
pub(super) struct Traffic<'a> {
    pub(super) stack: &'a Stack,
    pub(super) options: &'a Options,
    pub(super) config: ProbeConfig,
    pub(super) live: &'a probe::Live,
    pub(super) passwords: &'a [String],
    pub(super) busy: &'a Busy<'a>,
    pub(super) progress: &'a harness::progress::Progress,
    /// What the progress says while Telegram's retries are waited out.
    pub(super) waiting: String,
}

/// Runs `body` under `traffic`; returns the probe's report, what `body` gave, and how long
/// after `body` every service was ready again (None: not within 20 s).
pub(super) async fn under_traffic<T>(
    traffic: Traffic<'_>,
    queue: &mut crate::telegram::Queue,
    body: impl std::future::Future<Output = T>,
) -> (probe::ProbeReport, T, Option<u64>) {
    let t = &traffic;
    let stop = AtomicBool::new(false);
    let probe_done = AtomicBool::new(false);
    let probe = run_probe(
        t.stack,
        &t.config,
        queue,
        &stop,
        t.live,
        t.passwords,
        &probe_done,
    );
    let method = async {
        let result = body.await;
        let ended = Instant::now();
        tokio::time::sleep(t.options.settle).await;
        stop.store(true, Ordering::SeqCst);
        // While Telegram's last retries run out, the node has the same time to be ready.
        let ready_after = wait_all_ready(t.stack, ended).await;
        if t.busy.release_while_waiting(&probe_done).await {
            t.progress.say(&t.waiting);
        }
        (result, ready_after)
    };
    let (report, (result, ready_after)) = tokio::join!(probe, method);
    t.busy.reacquire().await;
    (report, result, ready_after)
}

/// The outcome once the rollback ran: accepted work lost while the steps ran is not restored
/// by any rollback (`breaks`); otherwise restored (nothing lost, Telegram's queue drained,
/// the steady state back) is `detected`, or `holds` for a rollback scenario that never
/// deviated. Downtime during a rollback is measured and reported; loss is what fails it.
pub(super) fn outcome_with_rollback(record: &ScenarioRecord, rollback: Rollback) -> Outcome {
    // A memory the memory service accepted and kept out of PostgreSQL (on its fallback) is
    // lost as surely as an update.
    let lost = |p: &probe::ProbeReport| {
        p.updates_lost > 0
            || p.data.missing_gateway_rows > 0
            || p.data.missing_memories > 0
            || p.data.missing_processed.values().any(|n| *n > 0)
    };
    let lost_during_steps = record.probe.as_ref().is_some_and(lost);
    let restored = all_pass(&record.checks_after_rollback)
        && record
            .rollback_probe
            .as_ref()
            .is_some_and(|p| !lost(p) && p.telegram.backlog == 0);
    if lost_during_steps {
        Outcome::Breaks
    } else if !record.deviated && rollback == Rollback::Always && restored {
        Outcome::Holds
    } else if restored {
        Outcome::Detected
    } else {
        Outcome::Breaks
    }
}

/// The verdict as it stands, or `inconclusive` with why, when the host, the engine or the
/// machine's load rather than the runbook decided it.
pub(super) fn judged(
    record: &ScenarioRecord,
    actual: Outcome,
    alone_on_the_machine: bool,
) -> (Outcome, Option<String>) {
    let probes = [record.probe.as_ref(), record.rollback_probe.as_ref()];
    let host_or_engine = host_could_not_run(&record.steps, &record.rollback_steps).or_else(|| {
        (actual != Outcome::Holds)
            .then(|| engine_could_not_start(&record.forensics))
            .flatten()
    });
    let timing_only = record.safeguard.is_none()
        && record.stopped_at_failed_step.is_none()
        && record.unsafe_windows().next().is_none()
        && all_pass(&record.checks_after)
        && all_pass(&record.checks_after_rollback)
        && !probes.into_iter().flatten().any(data_missing);
    let host_or_engine = host_or_engine
        .or_else(|| starved_by_the_machine(actual, timing_only, alone_on_the_machine, probes));
    match host_or_engine {
        Some(reason) => (Outcome::Inconclusive, Some(reason)),
        None => unless_saturated(actual, probes),
    }
}

/// The probe: its API client with tokens the running gateway issues (the node's old JWT secret
/// until the gateway runs another), its JetStream client with the gateway's NATS credentials
/// as the gateway's `.env` has them (the initial password until the file names others); `done`
/// is set once it has counted, so the scenario knows whether it is still waiting.
pub(super) async fn run_probe(
    stack: &Stack,
    config: &ProbeConfig,
    queue: &mut crate::telegram::Queue,
    stop: &AtomicBool,
    live: &probe::Live,
    db_passwords: &[String],
    done: &AtomicBool,
) -> probe::ProbeReport {
    let old = stack.initial_secrets();
    let report = probe::run(
        stack,
        config,
        queue,
        stop,
        live,
        old.get("JWT_SECRET"),
        old.get("NATS_PASSWORD_GATEWAY"),
        db_passwords,
    )
    .await;
    done.store(true, Ordering::SeqCst);
    report
}

/// The workers that left JetStream messages of the steps unprocessed when the accounting
/// ended, and NATS with them: examined like a service found down, since a worker ready again by
/// the checks says nothing about why it processed nothing.
pub(super) fn unprocessed_by(probe: &probe::ProbeReport) -> Vec<Service> {
    let mut out: Vec<Service> = Service::ALL
        .into_iter()
        .filter(|s| {
            probe
                .data
                .missing_processed
                .get(s.production_name())
                .is_some_and(|n| *n > 0)
        })
        .collect();
    if !out.is_empty() {
        out.push(Service::Nats);
    }
    out
}

/// Every service found not ready by `checks` (its `health.*` or `ready.*` check did not pass),
/// or whose container is not running, or named in `also`, as its container is now: state and
/// last 50 log lines.
pub(super) async fn forensics(
    stack: &Stack,
    checks: &[crate::journal::CheckRecord],
    when: &str,
    also: &[Service],
) -> Vec<crate::journal::Forensics> {
    let mut out = Vec::new();
    for service in Service::ALL {
        let failed = also.contains(&service)
            || checks.iter().any(|c| {
                (c.id == format!("health.{}", service.key())
                    || c.id == format!("ready.{}", service.key()))
                    && c.outcome != CheckOutcome::Pass
            });
        let state = stack.inspect(service).await.ok().and_then(|i| {
            let restarts = i.restart_count;
            i.state.map(|st| (st, restarts))
        });
        let running = state.as_ref().and_then(|(st, _)| st.running);
        if !failed && running == Some(true) {
            continue;
        }
        let last_logs = stack
            .logs(service, 50)
            .await
            .unwrap_or_else(|e| format!("(logs not read: {e})"));
        out.push(crate::journal::Forensics {
            service: service.production_name().to_string(),
            when: when.to_string(),
            status: state
                .as_ref()
                .and_then(|(st, _)| st.status.map(|s| s.to_string())),
            running,
            exit_code: state.as_ref().and_then(|(st, _)| st.exit_code),
            oom_killed: state.as_ref().and_then(|(st, _)| st.oom_killed),
            restart_count: state.as_ref().and_then(|(_, r)| *r),
            started_at: state.as_ref().and_then(|(st, _)| st.started_at.clone()),
            engine_error: state
                .as_ref()
                .and_then(|(st, _)| st.error.clone())
                .filter(|e| !e.is_empty())
                .map(|e| stack.redactor().redact(&e)),
            last_logs,
        });
    }
    out
}

/// Waits (at most 20 s) until every service answers its readiness probe, as an operator waits
/// after restarts before checking; returns how long after `since` (the last step) all were
/// ready, `None` when some never were.
pub(super) async fn wait_all_ready(stack: &Stack, since: Instant) -> Option<u64> {
    for s in Service::ALL {
        let _ = stack.refresh_ports(s).await;
    }
    let waits = Service::ALL.map(|s| stack.wait_ready(s, Duration::from_secs(20)));
    let ok = futures::future::join_all(waits)
        .await
        .iter()
        .all(|r| r.is_ok());
    ok.then(|| since.elapsed().as_millis() as u64)
}
