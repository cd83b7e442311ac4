//! The scenario engine: a fresh replica, the steady-state hypothesis checked before, the
//! runbook's steps (its shell blocks, and an operator's hand for the steps that are prose or
//! file edits) under live traffic, faults at step boundaries, post-conditions checked after,
//! the runbook's rollback when the hypothesis deviates (or always, for rollback scenarios), and
//! a measured outcome: holds, detected or breaks.

use self::busy::{Asker, BusySlot, BusySlots};
use self::measure::{file_mode, file_name};
use self::schedule::{Scheduler, Undo};
use super::journal::{
    ActionRecord, BoundaryRecord, CheckRecord, Measurement, ScenarioRecord, StepRecord,
};
use super::probe::{self, ProbeConfig};
use super::scenario::{Outcome, Rollback, Safeguard, Scenario};
use super::shell;
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

pub mod boundary;
pub mod budgets;
pub mod busy;
pub mod faults;
pub mod flows;
pub mod impact;
pub(crate) mod measure;
pub(crate) mod operator;
mod phases;
pub mod schedule;
mod steps;
mod trust;
use phases::*;
use steps::*;
pub use trust::*;
#[cfg(test)]
mod tests;

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
