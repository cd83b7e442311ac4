//! The scenario engine: a fresh replica, the steady-state hypothesis checked before, the
//! runbook's steps (its shell blocks, and an operator's hand for the steps that are prose or
//! file edits) under live traffic, faults at step boundaries, post-conditions checked after,
//! the runbook's rollback when the hypothesis deviates (or always, for rollback scenarios), and
//! a measured outcome: holds, detected or breaks.

use super::busy::{Asker, BusySlot, BusySlots};
use super::journal::{
    ActionRecord, BoundaryRecord, CheckRecord, Measurement, ScenarioRecord, StepRecord,
};
use super::measure::{self, file_mode, file_name};
use super::probe::{self, ProbeConfig};
use super::scenario::{Outcome, Rollback, Safeguard, Scenario};
use super::schedule::{Scheduler, Undo};
use super::shell;
use super::{boundary, flows};
use harness::checks::secrets::SecretSet;
use harness::checks::{self, catalogue, glob_match, Node, Outcome as CheckOutcome};
use harness::redact::Redactor;
use harness::replica_root::{NodeSecrets, SECRET_NAMES};
use harness::runbook::{Runbook, Step};
use harness::services::Service;
use harness::stack::{Stack, StackOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

/// How the rehearsal runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Runbook minutes → rehearsal seconds: 0.1 runs a 10-minute phase in 60 s.
    pub time_scale: f64,
    pub probe: ProbeConfig,
    /// The whole scenario's deadline (start, steps, checks, rollback).
    pub deadline: Duration,
    /// Quiet time after the last step, so the probe sees the aftermath.
    pub settle: Duration,
    /// How many scenarios do busy work at once (a scenario waiting out retries is not busy).
    pub busy: BusySlots,
    /// Leave the replica running after the scenario, as stack `keep` (detached, as `cargo xtask
    /// up` leaves one), with the secrets from before the steps beside it, so that
    /// `cargo xtask verify --replica` checks it as it would the node after the rotation.
    pub keep: Option<String>,
    /// A real-time pause at every step boundary, as a slow operator takes (none by default):
    /// the node under traffic while it waits there. The boundary checks judge the boundary the
    /// same with or without it.
    pub operator_pace: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            time_scale: 0.02,
            probe: ProbeConfig {
                rate: 100.0,
                api_rate: 5.0,
                jetstream_rate: 5.0,
                retry_window: Duration::from_secs(60),
                ..ProbeConfig::default()
            },
            deadline: Duration::from_secs(240),
            settle: Duration::from_secs(3),
            busy: BusySlots::per_core(),
            keep: None,
            operator_pace: Duration::ZERO,
        }
    }
}

/// How late the probe's 50 ms clock may tick (99th percentile) before its timings are the
/// harness's rather than the node's: a second late means the probe's loop was starved.
pub const HARNESS_LAG_LIMIT_MS: u64 = 1000;
/// The share of the probe's attempts that may fail for the host's own reasons (no ephemeral
/// port, no file descriptor) before the traffic numbers are the host's rather than the node's.
pub const HOST_ERROR_LIMIT: f64 = 0.01;

/// Why `probe`'s numbers are the harness's rather than the node's, if they are: its clock
/// ticked later than `HARNESS_LAG_LIMIT_MS`, or more than `HOST_ERROR_LIMIT` of its attempts
/// failed on the host's side.
pub fn harness_saturated(probe: &probe::ProbeReport) -> Option<String> {
    let h = &probe.harness;
    if h.lag_p99_ms > HARNESS_LAG_LIMIT_MS {
        return Some(format!(
            "the probe's clock ticked {} ms late (99th percentile; most {} ms, limit {} ms; CPU \
             idle {:.0} %, steal {:.0} %): its timings are the harness's, not the node's",
            h.lag_p99_ms, h.lag_max_ms, HARNESS_LAG_LIMIT_MS, h.cpu_idle_pct, h.cpu_steal_pct
        ));
    }
    let attempts: u64 = probe.flows.values().map(|f| f.attempts).sum();
    if attempts > 0 && h.host_errors as f64 > HOST_ERROR_LIMIT * attempts as f64 {
        return Some(format!(
            "{} of {attempts} attempts failed on the host's side (no port or file descriptor \
             left), above {:.0} %: the failures are the harness's, not the node's",
            h.host_errors,
            HOST_ERROR_LIMIT * 100.0
        ));
    }
    None
}

/// The machine's idle CPU (percent of all cores, over the probe's window) below which the
/// replica was starved: its containers queued for CPU, so how long a recreate took, how late an
/// update came and whether a call outlived the client's retries are the machine's numbers, not
/// the node's. Measured on this project's 2-core machine: one scenario alone leaves 26 % idle
/// (`v2/rotation`); five at once (two busy, three waiting out retries) 1–3.4 %, where
/// `v2/rotation` missed `holds` by one API call and a backlog it alone never had.
pub const MACHINE_IDLE_FLOOR_PCT: f64 = 5.0;

/// Why a verdict other than `holds` says nothing about the runbook, if it does not: it rests
/// on traffic timing alone (`timing_only`: no step failed, no safeguard tripped, every check
/// passed, nothing accepted went missing), and it was measured either beside other busy
/// scenarios (`alone` false: their replicas took the CPU this one's recreates and deliveries
/// waited for) or, alone, by one of `probes` on a machine with no spare CPU
/// (`MACHINE_IDLE_FLOOR_PCT`). A verdict on timing is given only from a run alone on a machine
/// with CPU to spare. A failed step or check, or lost data, is evidence whatever the load; so is
/// `holds`.
pub fn starved_by_the_machine<'a>(
    actual: Outcome,
    timing_only: bool,
    alone: bool,
    probes: impl IntoIterator<Item = Option<&'a probe::ProbeReport>>,
) -> Option<String> {
    if actual == Outcome::Holds || !timing_only {
        return None;
    }
    if !alone {
        return Some(
            "only delays and failed calls deviated (every step and check passed, nothing was \
             lost), measured beside other busy scenarios whose replicas shared the CPU: a verdict \
             on timing alone is given only from a run alone on the machine"
                .to_string(),
        );
    }
    probes.into_iter().flatten().find_map(|p| {
        let h = &p.harness;
        (h.cpu_idle_pct < MACHINE_IDLE_FLOOR_PCT).then(|| {
            format!(
                "the machine had no spare CPU while the traffic was measured ({:.1} % idle, floor \
                 {MACHINE_IDLE_FLOOR_PCT:.0} %): only delays and failed calls deviated, every step \
                 and check passed and nothing was lost, and those timings are the machine's, not \
                 the node's",
                h.cpu_idle_pct
            )
        })
    })
}

/// Whether a probe's report shows data missing: accepted and never stored or processed, or
/// not countable. Evidence whatever the machine's load.
fn data_missing(p: &probe::ProbeReport) -> bool {
    p.updates_lost > 0
        || p.data.error.is_some()
        || p.data.missing_gateway_rows > 0
        || p.data.missing_memories > 0
        || p.data.missing_processed.values().any(|n| *n > 0)
}

/// `actual`, unless it is a verdict other than `holds` resting on numbers a saturated harness
/// measured: then `inconclusive`, with why. A saturated harness that still saw everything
/// work has not invented a success.
pub fn unless_saturated<'a>(
    actual: Outcome,
    probes: impl IntoIterator<Item = Option<&'a probe::ProbeReport>>,
) -> (Outcome, Option<String>) {
    if actual == Outcome::Holds {
        return (actual, None);
    }
    match probes.into_iter().flatten().find_map(harness_saturated) {
        Some(reason) => (Outcome::Inconclusive, Some(reason)),
        None => (actual, None),
    }
}

/// Why a container could not be started for the Docker engine's own reason, if one could not:
/// libnetwork kept the endpoint of its earlier run (moby/moby#17217, #20398, #33756), so the
/// start failed before the service ran at all. A service down for that is the engine's
/// defect, not the runbook's; no verdict on the runbook is possible.
pub fn engine_could_not_start(forensics: &[super::journal::Forensics]) -> Option<String> {
    forensics.iter().find_map(|f| {
        let error = f.engine_error.as_deref()?;
        error.contains("endpoint").then(|| {
            format!(
                "the Docker engine could not start {} {}: {error} (a stale network endpoint, \
                 moby/moby#17217: the engine's defect, not the runbook's)",
                f.service, f.when
            )
        })
    })
}

/// Why a runbook command could not run as written on this host for the host's own reason (it
/// has no Compose, or its Compose lacks what the command uses), if one could not: then no
/// verdict on the runbook is possible.
pub fn host_could_not_run(steps: &[StepRecord], rollback: &[StepRecord]) -> Option<String> {
    steps.iter().chain(rollback).find_map(|step| {
        step.actions
            .iter()
            .filter_map(|a| a.shell.as_ref())
            .filter(|run| run.exit_code != Some(0))
            .flat_map(|run| &run.compose)
            .find_map(|c| c.host_limitation())
            .map(|why| {
                format!(
                    "{}: the runbook's Compose command could not run as written: {why}",
                    step.id
                )
            })
    })
}

/// The steady-state hypothesis: the node works and is consistent.
pub const STEADY_STATE: &[&str] = &[
    "health.*",
    "ready.*",
    "postgres.auth.current.*",
    "nats.auth.current.*",
    "nats.jetstream.healthy",
    "nats.clients.users",
    "gateway.jwt.current",
    "provider.key.current.*",
    "env.container-matches-file.*",
    "env.shared-secrets-agree",
];

/// The scenario's busy slot: held while it works, given up while it only waits for Telegram's
/// retries to run out. Time spent waiting for a slot does not count towards the deadline.
struct Busy<'a> {
    slots: &'a BusySlots,
    held: Mutex<Option<BusySlot>>,
    waited_ms: AtomicU64,
}

impl<'a> Busy<'a> {
    async fn acquire(slots: &'a BusySlots) -> Busy<'a> {
        let (slot, _) = slots.acquire(Asker::Starting).await;
        Busy {
            slots,
            held: Mutex::new(Some(slot)),
            waited_ms: AtomicU64::new(0),
        }
    }

    /// Gives the slot up when `probe_done` is still unset a second from now: the probe is
    /// waiting out retries, and the next scenario can work meanwhile.
    async fn release_while_waiting(&self, probe_done: &AtomicBool) -> bool {
        for _ in 0..10 {
            if probe_done.load(Ordering::SeqCst) {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let slot = self.held.lock().ok().and_then(|mut h| h.take());
        slot.is_some()
    }

    async fn reacquire(&self) {
        if self.held.lock().is_ok_and(|h| h.is_some()) {
            return;
        }
        let (slot, waited) = self.slots.acquire(Asker::Returning).await;
        self.waited_ms
            .fetch_add(waited.as_millis() as u64, Ordering::SeqCst);
        if let Ok(mut held) = self.held.lock() {
            *held = Some(slot);
        }
    }

    fn waited(&self) -> Duration {
        Duration::from_millis(self.waited_ms.load(Ordering::SeqCst))
    }
}

/// What the deadline watches in a running scenario: the step it is at (named when the
/// deadline ends it) and its busy slot (whose waits push the deadline back).
struct Watch<'a> {
    step: Arc<Mutex<String>>,
    busy: Busy<'a>,
}

struct Ctx<'a> {
    stack: &'a Stack,
    options: &'a Options,
    redactor: Redactor,
    new: NodeSecrets,
    cwd: PathBuf,
    backup: Option<PathBuf>,
    current_step: Arc<Mutex<String>>,
    /// When the first step (or the rollback) began: step times are counted from here.
    t0: Instant,
    /// Values the runbook writes literally (its example password): (name, value).
    literals: Vec<(String, String)>,
    /// What the operator exports from the secret store before pasting a block: `NEW_<SECRET>`
    /// for every secret (the values in `new`), `BACKUP_PASSPHRASE` and `JWT_OVERLAP_IDLE_SECS`
    /// (not a secret); once a step has revoked an old key at a provider, `REVOKED_KEYS` (their
    /// variables, space-separated).
    operator_env: Vec<(String, String)>,
    /// The variables whose old value the operator revoked so far, in order.
    revoked: Vec<&'static str>,
}

/// Runs one scenario on a fresh replica and records everything in its journal entry.
///
/// Every secret the scenario saw is added to `journal_redactor`, which the reports go through.
pub async fn run(
    scenario: &Scenario,
    runbook: &Runbook,
    options: &Options,
    progress: &harness::progress::Progress,
    journal_redactor: &Redactor,
) -> ScenarioRecord {
    if let Some(why) = &scenario.not_rehearsable {
        // Nothing the replica could run: said, never skipped, and no replica started.
        let mut record = ScenarioRecord::new(
            &scenario.id,
            &scenario.title,
            scenario.expected,
            SystemTime::now(),
        );
        record.actual = Some(Outcome::Inconclusive);
        record.inconclusive = Some(format!("not rehearsable on the replica: {why}"));
        return record;
    }
    let watch = Watch {
        step: Arc::new(Mutex::new("start".to_string())),
        busy: Busy::acquire(&options.busy).await,
    };
    let clock = Instant::now();
    let mut record = ScenarioRecord::new(
        &scenario.id,
        &scenario.title,
        scenario.expected,
        SystemTime::now(),
    );
    record.seed = scenario.seed;
    let Some(stack) = start_replica(scenario, options, progress, &mut record).await else {
        record.wall_ms = clock.elapsed().as_millis() as u64;
        return record;
    };
    record.stack = Some(stack.id().to_string());
    let runbook = edited(runbook, scenario, &stack);
    let deadline = scenario_deadline(options.deadline, scenario.phases.len())
        + options.operator_pace * steps_of(scenario, &runbook);
    let body = run_on(
        &stack,
        scenario,
        &runbook,
        options,
        progress,
        &mut record,
        &watch,
    );
    let timed_out = !within_deadline(body, deadline, &watch.busy).await;
    if timed_out {
        let at = watch.step.lock().map(|s| s.clone()).unwrap_or_default();
        record.error = Some(format!(
            "deadline of {} s reached during {at}",
            deadline.as_secs()
        ));
        record.aborted_at = Some(at);
    }
    // Faults attached to this scenario are torn down whatever happened.
    for f in &scenario.faults {
        let _ = f.fault.teardown(&stack).await;
    }
    journal_redactor.absorb(stack.redactor());
    // The operator's working directory, also when a deadline cut the scenario short.
    let _ = std::fs::remove_dir_all(stack.root().operator_dir());
    let kept = options.keep.is_some() && !timed_out;
    keep_or_remove(stack, kept, scenario, progress, &mut record).await;
    record.wall_ms = clock.elapsed().as_millis() as u64;
    record.met = record.error.is_none() && record.actual == Some(scenario.expected.into());
    progress.say(&format!(
        "{}: {} (expected {}) in {:.1} s",
        scenario.id,
        record
            .actual
            .map(|a| a.to_string())
            .unwrap_or_else(|| "error".into()),
        scenario.expected,
        record.wall_ms as f64 / 1000.0
    ));
    record
}

/// A fresh replica for `scenario`, once the engine is known to answer; `None` (the record says
/// why) when the engine is wedged or the replica does not start.
async fn start_replica(
    scenario: &Scenario,
    options: &Options,
    progress: &harness::progress::Progress,
    record: &mut ScenarioRecord,
) -> Option<Stack> {
    // The engine must still do its work: a wedged one ends the run here, in seconds.
    let engine = match harness::docker::connect().await {
        Ok(docker) => harness::docker::health(&docker).await,
        Err(e) => Err(e),
    };
    if let Err(e) = engine {
        if matches!(e, harness::HarnessError::EngineUnresponsive { .. }) {
            record.engine_unresponsive = Some(e.to_string());
        }
        record.error = Some(e.to_string());
        return None;
    }
    progress.say(&format!("{}: starting a fresh replica", scenario.id));
    let started = Stack::start(StackOptions {
        progress: progress.clone(),
        root: scenario.replica.clone(),
        detached: options.keep.is_some(),
        id: options.keep.clone(),
        ..Default::default()
    })
    .await;
    started
        .map_err(|e| record.error = Some(format!("the replica did not start: {e}")))
        .ok()
}

/// The runbook as `scenario` rehearses it (`Scenario::rehearsed`). A value an edit puts in
/// place of one of the runbook's literal secrets is a secret too.
fn edited<'a>(
    runbook: &'a Runbook,
    scenario: &Scenario,
    stack: &Stack,
) -> std::borrow::Cow<'a, Runbook> {
    if !scenario.edits.is_empty() {
        let literal = harness::runbook::findings::literal_secrets(runbook);
        for (from, to) in &scenario.edits {
            if let Some((name, _)) = literal.iter().find(|(_, v)| v == from) {
                stack.redactor().add(name, to);
            }
        }
    }
    scenario.rehearsed(runbook)
}

/// Runs `body` until it ends or `deadline` passes, the deadline pushed back by every wait for
/// a busy slot; false when the deadline ended it.
async fn within_deadline(
    body: impl std::future::Future<Output = ()>,
    deadline: Duration,
    busy: &Busy<'_>,
) -> bool {
    let mut body = std::pin::pin!(body);
    let body_started = tokio::time::Instant::now();
    loop {
        let limit = deadline + busy.waited();
        match tokio::time::timeout_at(body_started + limit, &mut body).await {
            Ok(()) => return true,
            Err(_) if deadline + busy.waited() > limit => continue,
            Err(_) => return false,
        }
    }
}

/// Leaves the replica running (`--keep`), with the secrets from before the steps beside it,
/// or removes it; a network the engine keeps with a stale endpoint is recorded, not an error.
async fn keep_or_remove(
    stack: Stack,
    kept: bool,
    scenario: &Scenario,
    progress: &harness::progress::Progress,
    record: &mut ScenarioRecord,
) {
    if kept {
        let previous = stack
            .root()
            .dir()
            .join(harness::checks::target::KEPT_PREVIOUS);
        match write_previous(&previous, stack.initial_secrets(), &scenario.replica) {
            Ok(()) => progress.say(&format!(
                "{}: replica {} kept running: `cargo xtask verify --replica {}` checks it (the \
                 secrets from before the steps are its previous ones); `cargo xtask down {}` \
                 removes it",
                scenario.id,
                stack.id(),
                stack.id(),
                stack.id()
            )),
            Err(e) => progress.say(&format!(
                "warning: {}: the secrets from before the steps could not be kept beside the \
                 replica ({e}): `verify --replica` will skip the previous-secret checks",
                scenario.id
            )),
        }
        stack.detach().await;
        return;
    }
    match stack.down().await {
        Ok(()) => {}
        // Everything of ours is gone; the engine keeps an endpoint it lost track of, and with
        // it the network (moby#17217): the engine's defect, recorded, not the scenario's.
        Err(harness::HarnessError::StaleNetwork { network }) => {
            progress.say(&format!(
                "warning: {}: {}",
                scenario.id,
                harness::docker::stale_network_warning(&network)
            ));
            record.engine_leftovers.push(format!("network {network}"));
        }
        Err(e) => {
            record
                .error
                .get_or_insert(format!("removing the replica: {e}"));
        }
    }
}

async fn checks_on(
    stack: &Stack,
    globs: &[&str],
    since: Option<SystemTime>,
    previous: Option<SecretSet>,
    redactor: &Redactor,
) -> Vec<CheckRecord> {
    let all = catalogue();
    let selected: Vec<&checks::Check> = all
        .iter()
        .filter(|c| globs.iter().any(|g| glob_match(g, &c.id)))
        .collect();
    let mut target = stack.target();
    target.since = since;
    let node = Node::new(target, previous, redactor.clone());
    let report = checks::verify(std::slice::from_ref(&node), &selected).await;
    report.targets[0]
        .results
        .iter()
        .map(|r| CheckRecord {
            id: r.id.clone(),
            outcome: r.outcome,
            evidence: r.evidence.clone(),
        })
        .collect()
}

fn all_pass(checks: &[CheckRecord]) -> bool {
    checks
        .iter()
        .all(|c| matches!(c.outcome, CheckOutcome::Pass | CheckOutcome::Skip))
}

async fn run_on(
    stack: &Stack,
    scenario: &Scenario,
    runbook: &Runbook,
    options: &Options,
    progress: &harness::progress::Progress,
    record: &mut ScenarioRecord,
    watch: &Watch<'_>,
) {
    // The static analysis of the runbook this scenario rehearses (edits applied), once.
    let analysis =
        harness::runbook::findings::Analysis::of_profiled(runbook, &scenario.replica.profile);
    let home = stack.root().operator_dir();
    let _ = std::fs::create_dir_all(&home);
    let mut ctx = Ctx::new(
        stack,
        options,
        &home,
        watch,
        &analysis,
        &scenario.new_values,
    );
    let redactor = ctx.redactor.clone();
    record.checks_before = checks_on(stack, STEADY_STATE, None, None, &redactor).await;
    if !all_pass(&record.checks_before) {
        record.error = Some("the steady state did not hold before the first step".into());
        return;
    }
    let rotation_started = SystemTime::now();
    if options.keep.is_some() {
        mark_kept_since(stack, rotation_started);
    }
    // What the node held before the first step: the previous secrets when the runbook's own
    // backup cannot be read (an encrypted one).
    let env_files: Vec<PathBuf> = Service::ALL
        .iter()
        .filter_map(|s| s.env_file().map(PathBuf::from))
        .collect();
    let before_steps = SecretSet::read(stack.root().dir(), &env_files);
    let passwords = accounting_passwords(stack, &ctx);
    // Telegram's queue for this bot, for the whole scenario: what the steps leave pending is
    // delivered during the rollback.
    let mut queue = super::telegram::Queue::default();
    let started_steps = Instant::now();
    ctx.t0 = started_steps;
    let scheduler = Scheduler::new(stack, &scenario.faults, started_steps);
    let run = Run {
        stack,
        scenario,
        runbook,
        options,
        progress,
        busy: &watch.busy,
        scheduler: &scheduler,
        passwords: &passwords,
    };
    rehearse_steps(&run, &mut ctx, &mut queue, record).await;
    if let Some(p) = &record.probe {
        record.budgets = super::impact::judge(run.runbook, &record.steps, p, &scheduler.records());
        record.telegram_outage = super::impact::telegram_outage(p);
        for over in record.over_budget() {
            progress.say(&format!("{}: over budget: {over}", scenario.id));
        }
    }
    check_after_steps(&run, &ctx, record, before_steps, rotation_started).await;
    scheduler.undo(Undo::AfterChecks).await;
    record.deviated = record.safeguard.is_some()
        || record.stopped_at_failed_step.is_some()
        || record.unsafe_windows().next().is_some()
        || !record.over_budget().is_empty()
        || !record.probe.as_ref().is_some_and(|p| p.clean())
        || !all_pass(&record.checks_after);
    let actual = if scenario.rollback == Rollback::Always || record.deviated {
        rehearse_rollback(&run, &mut ctx, &mut queue, record).await;
        outcome_with_rollback(record, scenario.rollback)
    } else {
        Outcome::Holds
    };
    let (actual, inconclusive) = judged(record, actual, options.busy.alone_on_the_machine());
    record.actual = Some(actual);
    record.inconclusive = inconclusive;
    record.faults = scheduler.records();
    // Retention: what the runbook leaves on the node when the scenario is over.
    if let Some(path) = ctx.backup.as_ref().filter(|p| p.exists()) {
        record.measurements.push(Measurement::BackupLeftOnNode {
            backup: file_name(path),
            mode: file_mode(path),
        });
    }
    record.findings = super::verdicts::verdicts(record, &analysis.findings);
    let _ = std::fs::remove_dir_all(&home);
}

/// For `verify --replica` on the kept replica: logs and usage from the first step on.
fn mark_kept_since(stack: &Stack, rotation_started: SystemTime) {
    let since = stack.root().dir().join(harness::checks::target::KEPT_SINCE);
    let _ = std::fs::create_dir_all(since.parent().unwrap_or(stack.root().dir()));
    let _ = std::fs::write(
        &since,
        humantime::format_rfc3339(rotation_started).to_string(),
    );
}

/// The passwords the accounting tries, in order: whichever the server holds by then is the
/// initial one, one of the runbook's literal ones, or the new one the operator brought.
fn accounting_passwords(stack: &Stack, ctx: &Ctx<'_>) -> Vec<String> {
    let mut passwords = vec![stack.initial_secrets().get("DB_PASSWORD").to_string()];
    passwords.extend(ctx.literals.iter().map(|(_, v)| v.clone()));
    passwords.push(ctx.new.get("DB_PASSWORD").to_string());
    passwords
}

/// The post-conditions after the steps: the steady state and the rotation's own intent,
/// against the previous secrets from the Phase 1 backup when there is one (`before_steps`
/// otherwise); then forensics of what is down or left work unprocessed.
async fn check_after_steps(
    run: &Run<'_>,
    ctx: &Ctx<'_>,
    record: &mut ScenarioRecord,
    before_steps: SecretSet,
    rotation_started: SystemTime,
) {
    let previous = ctx
        .backup
        .as_ref()
        .and_then(|path| SecretSet::previous_with(path, None).ok())
        .or(Some(before_steps));
    let mut globs: Vec<&str> = STEADY_STATE.to_vec();
    globs.extend(run.scenario.postconditions.iter().map(String::as_str));
    record.checks_after = checks_on(
        run.stack,
        &globs,
        Some(rotation_started),
        previous,
        &ctx.redactor,
    )
    .await;
    let also = record
        .probe
        .as_ref()
        .map(unprocessed_by)
        .unwrap_or_default();
    record
        .forensics
        .extend(forensics(run.stack, &record.checks_after, "after steps", &also).await);
}

/// What every part of a scenario's run reads: the replica, the scenario and its runbook, the
/// options, the busy slot, the fault schedule, and the passwords the accounting tries.
struct Run<'a> {
    stack: &'a Stack,
    scenario: &'a Scenario,
    runbook: &'a Runbook,
    options: &'a Options,
    progress: &'a harness::progress::Progress,
    busy: &'a Busy<'a>,
    scheduler: &'a Scheduler<'a>,
    passwords: &'a [String],
}

impl<'a> Run<'a> {
    fn traffic(&self, config: ProbeConfig, live: &'a probe::Live, after: &str) -> Traffic<'a> {
        Traffic {
            stack: self.stack,
            options: self.options,
            config,
            live,
            passwords: self.passwords,
            busy: self.busy,
            progress: self.progress,
            waiting: format!(
                "{}: waiting out Telegram's retries{after} (another scenario may work meanwhile)",
                self.scenario.id
            ),
        }
    }
}

/// The scenario's phases under traffic, with its faults injected and undone on schedule.
async fn rehearse_steps(
    run: &Run<'_>,
    ctx: &mut Ctx<'_>,
    queue: &mut super::telegram::Queue,
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
async fn rehearse_rollback(
    run: &Run<'_>,
    ctx: &mut Ctx<'_>,
    queue: &mut super::telegram::Queue,
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

impl<'a> Ctx<'a> {
    /// The operator at the start of a scenario: in `home`, with the new values
    /// (`NEW_<SECRET>`) and the backup passphrase exported, every one of them and the
    /// runbook's literal values hidden from the journal.
    fn new(
        stack: &'a Stack,
        options: &'a Options,
        home: &Path,
        watch: &Watch<'_>,
        analysis: &harness::runbook::findings::Analysis,
        new_values: &[(&'static str, &'static str)],
    ) -> Ctx<'a> {
        let redactor = stack.redactor().clone();
        let mut new = NodeSecrets::generate();
        for (name, value) in new_values {
            new.set(name, value.to_string());
        }
        let mut operator_env = operator_env(&new);
        // Values the runbook writes literally become the node's secrets when its commands run.
        for (name, value) in operator_env.iter().chain(&analysis.literal_secrets) {
            redactor.add(name, value);
        }
        // Not a secret: how long no token signed with the previous JWT secret must have been
        // seen before a runbook drops it, the token lifetime on the node, here three of the
        // probe client's renewals.
        operator_env.push((
            "JWT_OVERLAP_IDLE_SECS".into(),
            (3 * super::probe::TOKEN_RENEWAL.as_secs()).to_string(),
        ));
        Ctx {
            stack,
            options,
            redactor,
            new,
            cwd: home.to_path_buf(),
            backup: None,
            current_step: watch.step.clone(),
            t0: Instant::now(),
            literals: analysis.literal_secrets.clone(),
            operator_env,
            revoked: Vec::new(),
        }
    }
}

/// What running the phases gave: their steps, and why they stopped early, if they did.
struct PhasesRun {
    steps: Vec<StepRecord>,
    /// The safeguard that tripped.
    tripped: Option<String>,
    /// The step whose command failed, where the operator stopped.
    stopped: Option<String>,
    /// Each step boundary, judged as a place to stop.
    boundaries: Vec<BoundaryRecord>,
}

/// Runs the scenario's phases step by step, faults attached before their steps; stops where
/// the safeguard trips or, for a runbook that says so, where a step's command fails.
async fn run_phases(ctx: &mut Ctx<'_>, run: &Run<'_>, live: &probe::Live) -> PhasesRun {
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
async fn at_boundary(
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
fn safeguard_trips(
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
struct Traffic<'a> {
    stack: &'a Stack,
    options: &'a Options,
    config: ProbeConfig,
    live: &'a probe::Live,
    passwords: &'a [String],
    busy: &'a Busy<'a>,
    progress: &'a harness::progress::Progress,
    /// What the progress says while Telegram's retries are waited out.
    waiting: String,
}

/// Runs `body` under `traffic`; returns the probe's report, what `body` gave, and how long
/// after `body` every service was ready again (None: not within 20 s).
async fn under_traffic<T>(
    traffic: Traffic<'_>,
    queue: &mut super::telegram::Queue,
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
fn outcome_with_rollback(record: &ScenarioRecord, rollback: Rollback) -> Outcome {
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
fn judged(
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
async fn run_probe(
    stack: &Stack,
    config: &ProbeConfig,
    queue: &mut super::telegram::Queue,
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
fn unprocessed_by(probe: &probe::ProbeReport) -> Vec<Service> {
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
async fn forensics(
    stack: &Stack,
    checks: &[super::journal::CheckRecord],
    when: &str,
    also: &[Service],
) -> Vec<super::journal::Forensics> {
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
        out.push(super::journal::Forensics {
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
async fn wait_all_ready(stack: &Stack, since: Instant) -> Option<u64> {
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

/// The sum of the `timeout N` bounds a script sets on its own commands (seconds, as `timeout`
/// reads a bare number or one ending in `s`).
fn own_timeouts(script: &str) -> Duration {
    let words: Vec<&str> = script.split_whitespace().collect();
    let secs: f64 = words
        .windows(2)
        .filter(|w| w[0] == "timeout")
        .filter_map(|w| w[1].trim_end_matches('s').parse::<f64>().ok())
        .filter(|n| n.is_finite() && *n > 0.0)
        .sum();
    Duration::from_secs_f64(secs.min(24.0 * 3600.0))
}

/// How many steps `scenario`'s phases have in `runbook`: the boundaries an operator's pace
/// adds to its time.
fn steps_of(scenario: &Scenario, runbook: &Runbook) -> u32 {
    scenario
        .phases
        .iter()
        .filter_map(|n| runbook.phases.iter().find(|p| p.number == *n))
        .map(|p| p.steps.len() as u32)
        .sum()
}

/// A scenario's deadline: `per_scenario` for up to four phases, a quarter of it more for each
/// phase beyond (the v2 rotation's twelve phases get three times as long as one phase).
fn scenario_deadline(per_scenario: Duration, phases: usize) -> Duration {
    per_scenario + per_scenario / 4 * phases.saturating_sub(4) as u32
}

/// The values an operator exports from the team's secret store before pasting the runbook's
/// blocks (a runbook names them instead of writing them on a command line): `NEW_<SECRET>`, the
/// new value of each secret, and `BACKUP_PASSPHRASE`, fresh for each scenario.
/// Writes `secrets` (the node's before the steps) into `dir` laid out like the root (each
/// service's `.env`, as the replica's own are written), as `verify --previous DIR` reads them.
fn write_previous(
    dir: &std::path::Path,
    secrets: &NodeSecrets,
    options: &harness::replica_root::RootOptions,
) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| e.to_string())?;
    harness::replica_root::ReplicaRoot::create(dir, secrets, options)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn operator_env(new: &NodeSecrets) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = SECRET_NAMES
        .iter()
        .map(|name| (format!("NEW_{name}"), new.get(name).to_string()))
        .collect();
    env.push((
        "BACKUP_PASSPHRASE".into(),
        NodeSecrets::generate_one("BACKUP_PASSPHRASE"),
    ));
    env
}

/// Runs one runbook step: an operator's hand where the step is prose or a file edit, its shell
/// blocks as written otherwise.
async fn run_step(ctx: &mut Ctx<'_>, step: &Step, phase_minutes: u32) -> StepRecord {
    if let Ok(mut s) = ctx.current_step.lock() {
        *s = step.id.clone();
    }
    let mut record = StepRecord::new(&step.id, &step.title);
    record.started_ms = ctx.t0.elapsed().as_millis() as u64;
    let env_before = ctx.stack.current_env().ok();
    act_for_operator(ctx, step, &mut record).await;
    let before = measure::Before::take(ctx.stack, ctx.backup.as_deref());
    let deadline = step_deadline(&step.title, phase_minutes, ctx.options.time_scale);
    for block in step.code.iter().filter(|b| b.is_shell()) {
        run_block(ctx, &block.text, deadline, &mut record).await;
    }
    let literals = ctx.literals.clone();
    let measured = measure::after_step(
        ctx.stack,
        step,
        &record,
        &before,
        ctx.backup.as_deref(),
        &literals,
    );
    record.measurements.extend(measured.measurements);
    record
        .measurements
        .extend(measure::wiring_edited(ctx.stack, step, &before, &ctx.new));
    if let (Some(before), Ok(after)) = (&env_before, ctx.stack.current_env()) {
        let variables = measure::env_written(before, &after);
        if !variables.is_empty() {
            record
                .measurements
                .push(Measurement::EnvWritten { variables });
        }
    }
    record
        .actions
        .extend(measured.notes.iter().map(|n| ActionRecord::operator(n)));
    // After a restart, compare every container with its file: the measurement behind
    // `restart-keeps-stale-env`.
    if step.code.iter().any(|b| b.text.contains("restart")) {
        record.env_compared = true;
        record.stale_env = measure::stale_env(ctx.stack).await;
    }
    record.ended_ms = ctx.t0.elapsed().as_millis() as u64;
    if step.code.is_empty() && record.actions.is_empty() {
        record.actions.push(ActionRecord::operator(
            "no command in the runbook; nothing was done",
        ));
    }
    record
}

/// The operator's hand where the step is prose or a file edit; a key revoked at a provider is
/// exported to every later block as `REVOKED_KEYS`.
async fn act_for_operator(ctx: &mut Ctx<'_>, step: &Step, record: &mut StepRecord) {
    let acted = super::operator::act(ctx.stack, step, &ctx.new).await;
    for note in acted.notes {
        record
            .actions
            .push(ActionRecord::operator(&ctx.redactor.redact(&note)));
    }
    if !acted.revoked.is_empty() {
        ctx.revoked.extend(acted.revoked);
        ctx.operator_env.retain(|(k, _)| k != "REVOKED_KEYS");
        ctx.operator_env
            .push(("REVOKED_KEYS".into(), ctx.revoked.join(" ")));
    }
}

/// A step's deadline: the time its own title gives ("Monitor for 5 minutes"), compressed;
/// otherwise its phase's budget, compressed, but at least 30 s, so that a command that is
/// merely slow (eight `docker restart`s in a row) does not pass for one that never ends.
fn step_deadline(title: &str, phase_minutes: u32, time_scale: f64) -> Duration {
    match minutes_in(title) {
        Some(m) => Duration::from_secs_f64((m * 60.0 * time_scale).max(1.0)),
        None => Duration::from_secs_f64((phase_minutes as f64 * 60.0 * time_scale).max(30.0)),
    }
}

/// Runs one shell block of a step on the host against the replica (as written first, when it
/// holds a placeholder), and records it with what it measured as it ran.
async fn run_block(ctx: &mut Ctx<'_>, text: &str, deadline: Duration, record: &mut StepRecord) {
    let rewriting = shell::Rewriting::for_stack(ctx.stack, ctx.options.time_scale);
    let script = shell::rewrite(text, &rewriting);
    // A block that bounds its own waits (`timeout 60 …`) is given those bounds and 30 s
    // more: its own timeout, not the rehearsal's, says when a wait has failed.
    let deadline = deadline.max(own_timeouts(&script) + Duration::from_secs(30));
    let shims = ctx.stack.shim_dir();
    if script
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        record.actions.push(ActionRecord::operator(
            "the block holds only comments: nothing to run",
        ));
        return;
    }
    let date = humantime::format_rfc3339(SystemTime::now()).to_string()[..10].replace('-', "");
    let filled = script.replace("YYYYMMDD", &date);
    let run_script = |script: String, cwd: PathBuf| {
        let (redactor, env) = (ctx.redactor.clone(), ctx.operator_env.clone());
        let shims = shims.clone();
        async move { shell::run(text, &script, &cwd, deadline, &redactor, &shims, &env).await }
    };
    if filled != script {
        // Run it as written first: that is what a pasted placeholder does.
        let (literal, _) = run_script(script.clone(), ctx.cwd.clone()).await;
        record.actions.push(ActionRecord::shell(
            literal,
            "as written (placeholder unfilled)",
        ));
    }
    let ran_in = ctx.cwd.clone();
    let (run, cwd) = run_script(filled.clone(), ctx.cwd.clone()).await;
    ctx.cwd = cwd;
    if measure::reads_logs_through_a_pipe(text) {
        let measured = measure::log_streams(ctx.stack, text).await;
        record.measurements.extend(measured);
    }
    if text.contains("tar -x") {
        record.measurements.push(Measurement::RestoreDirectory {
            in_node_directory: ran_in == ctx.stack.root().dir(),
            directory: ran_in.display().to_string(),
            exit_code: run.exit_code,
        });
    }
    let note = if filled != script {
        "with the placeholder filled in"
    } else {
        ""
    };
    record.ok &= run.exit_code == Some(0);
    record.actions.push(ActionRecord::shell(run, note));
    // Lifecycle commands move the replica's ports.
    for s in Service::ALL {
        let _ = ctx.stack.refresh_ports(s).await;
    }
    if let Some(backup) = find_backup(&ctx.cwd).or_else(|| find_backup(ctx.stack.root().dir())) {
        ctx.backup.get_or_insert(backup);
    }
}

/// `5` from "Monitor for 5 minutes".
fn minutes_in(title: &str) -> Option<f64> {
    let words: Vec<&str> = title.split_whitespace().collect();
    words.windows(2).find_map(|w| {
        let unit = w[1].trim_end_matches([':', '.', ')', ',']).to_lowercase();
        if unit.starts_with("minute") || unit == "min" {
            w[0].parse().ok()
        } else {
            None
        }
    })
}

/// The runbook's secrets backup in `dir`, as the runbook as written makes it
/// (`secrets_backup_*.tar.gz`). The v2 runbook's encrypted ones in `backups/` are not taken:
/// the measurements made of this one (what it holds in clear, that nothing expires it) are the
/// as-written runbook's findings.
fn find_backup(dir: &std::path::Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("secrets_backup_") && n.ends_with(".tar.gz"))
        })
}

#[cfg(test)]
mod tests {
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
        let wait_on_v1 =
            step_that_ran("phase2.step3", 1, &[(v1, "up -d --wait dagi-router-node1")]);
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
}
