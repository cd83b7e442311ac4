//! The rehearsal journal: a versioned JSON record of every scenario — steps and what each did,
//! faults, checks before and after, the probe's bucketed timeline and accounting, the findings
//! measured, and the verdict. Every report renders from it.
//!
//! Schema `rotation-rehearsal/journal`, version 11 (2: Telegram's delivery model — `lost` counts
//! only updates the gateway accepted and never stored; `probe.telegram` and `probe.harness`;
//! 3: `runbook_fingerprint`, `shard`, each shell run's `compose[]`; 4: the API client's retry
//! policy, `probe.config.api_retries` / `api_backoff_ms`, with `flows.api.delayed` the calls
//! answered 2xx only after a retry and `failed` those never answered 2xx; 5: each scenario's
//! `stopped_at_failed_step`; 6: typed `measurements[]` per step and per scenario, no longer
//! operator notes starting "measured"; 7: the probe's `containers_down` and Telegram's
//! `backlog_series` / `delay_series_ms`; a version-6 journal reads as one without them; 8: the
//! `env_written` measurement of each step; 9: each scenario's `boundaries[]`; 10: each boundary's `flows[]`, each scenario's
//! `budgets[]` and `telegram_outage`; 11: `node_profile` and the `wiring_edited` measurement). A test checks
//! that every field is named here:
//! - `schema`, `version`, `runbook` (file), `runbook_fingerprint` (its steps, whitespace
//!   ignored), `shard` (`index` K, `count` N, `selection[]`: every scenario id of the whole
//!   run; absent unless `--shard` was given), `started` (RFC 3339), `wall_ms`, `time_scale`;
//! - `scenarios[]`: `id`, `title`, `expected` (`holds`|`detected`|`breaks`), `actual` (the same or `inconclusive`; absent on
//!   error), `met`, `error`, `aborted_at` (the step a deadline ended), `safeguard` (why a
//!   safeguard stopped the steps), `stopped_at_failed_step` (the step whose command failed,
//!   where an operator told to stop there stopped), `wall_ms`, `deviated`, `ready_after_ms` /
//!   `ready_after_rollback_ms` (every service ready again that long after the last step, or
//!   after the rollback; null: not within 20 s),
//!   `checks_before[]` / `checks_after[]` / `checks_after_rollback[]` (`id`, `outcome`,
//!   `evidence`), `faults[]` (`name`, `at`, `injected_ms`, `removed_ms`, `inject`,
//!   `teardown`, `ok`; times in ms since the first step), `seed` (a random fault schedule's
//!   seed, to replay it), `stack` (the replica's id), `steps[]` and `rollback_steps[]` (`id`, `title`, `ok`,
//!   `started_ms`, `ended_ms` (ms since the first step, or since the rollback began),
//!   `actions[]` with `operator` or `shell` {`command`, `ran`, `exit_code`,
//!   `killed_at_deadline`, `duration_ms`, `output_tail`, `secrets_in_argv` (names, never
//!   values), `compose[]` (each Compose command the block ran: `tool`, the host's Compose that
//!   ran it, and `args`)} and a `note` (`as written (placeholder unfilled)`), `stale_env[]` and
//!   `env_compared` (whether containers were compared with their `.env` after a restart),
//!   `measurements[]`), `probe` and
//!   `rollback_probe` (see `probe::ProbeReport`: per-flow counts, outages, the 50 ms
//!   `timeline`, the data accounting; `telegram` {`max_connections`, `peak_in_flight`,
//!   `delay_p50_ms` / `delay_p99_ms` / `delay_max_ms`, `peak_backlog`, `backlog` (pending when
//!   the drain window ended: not lost), `backlog_oldest_ms`, `failures` by cause,
//!   `backlog_series[]` / `delay_series_ms[]` (per 250 ms: the most updates pending, the
//!   longest delay delivered)}; `containers_down` (service → spans {`from_ms`, `to_ms`} its
//!   container was not running, from the engine's events); `harness`
//!   {`lag_p99_ms`, `lag_max_ms` (the probe's clock, late), `host_errors` (the host's own:
//!   ports, file descriptors), `cpu_idle_pct`, `cpu_steal_pct`, `cpu_pressure_pct` (the share of the window some task
//!   waited for a CPU, from `/proc/pressure/cpu`)}), `findings[]` (`finding`,
//!   `verdict`: `confirmed`|`refuted`, `evidence`), `measurements[]` (what the scenario left
//!   behind: `backup_left_on_node`);
//!   `engine_unresponsive` (the engine operation that hung), `not_run` (why it never started),
//!   `inconclusive` (why the harness or the host, not the node, decided: a saturated probe, or
//!   a Compose command the host's Compose could not run), `forensics[]`
//!   (`service`, `when`, `status`, `running`, `exit_code`, `oom_killed`, `restart_count`,
//!   `started_at`, `engine_error`, `last_logs`: a service found not ready, or a worker that
//!   left the steps' JetStream messages unprocessed (and NATS with it), as its container was
//!   then), `boundaries[]` (each step boundary judged as a place to stop: `after` and `before`
//!   (the steps either side; `before` null after the last), `at_ms`, `lasted_ms` (how long the
//!   node stayed there), `checked_ms` (how long its checks and flows took), `checks[]`
//!   (`auth.held.*`, as `checks_after[]`), `flows[]` (each flow tried end to end: `flow`,
//!   `service`, `outcome`, `failed_ms`, `evidence`; see `FlowRecord`),
//!   `declared` (the runbook's sentence that states what was refused or failed there as
//!   expected, else null: then a refusal or a failed flow makes it an unsafe window)),
//!   `budgets[]` (per phase the steps ran: `phase`, `budget` {`service_down_ms`,
//!   `telegram_delay_p99_ms` (null: not judged), `source`: `default`|`no-downtime-promised`|
//!   `overview`|`phase`}, `longest_down` {`service`, `ms`, `from_ms`} (outside injected faults;
//!   null: nothing went down), `telegram_delay_p99_ms`), `telegram_outage` {`from_ms`,
//!   `longest_ms`, `node_down_ms`, `after_node_ms`} (null: no delivery failed);
//! - a measurement is an object with its `kind` and that kind's fields: `log_streams`
//!   {`service`, `errors_on_stdout`, `errors_on_stderr`, `lines_on_stdout`, `lines_on_stderr`
//!   (0 in journals written before them)}, `restore_directory`
//!   {`in_node_directory`, `directory`, `exit_code`}, `backup_overwritten` {`backup`,
//!   `rotated[]`}, `example_value` {`name`, `on_server`, `env_files`}, `elision`
//!   {`restarted[]`, `never_restarted[]`}, `backup` {`backup`, `env_files`, `secret_values`,
//!   `mode`}, `sed_changed` {`changed`: variable → files}, `sed_mangled` {`name`, `wrong`,
//!   `files`, `rewritten`}, `backup_left_on_node` {`backup`, `mode`}, `env_written`
//!   {`variables[]`: what a step changed in the node's `.env` files, names only},
//!   `wiring_edited` {`secret`, `edited` (the usual variable the step edits), `unchanged[]`,
//!   `changed[]`: where the node profile has services read the secret, as they read it};
//! - `findings[]`: every static finding of the runbook (`id`, `severity`, `line`,
//!   `explanation`) with `measured[]`, the scenarios that measured it (scenario, verdict,
//!   evidence);
//! - `leftovers[]`: containers, networks, volumes or directories of the run's replicas that
//!   remained; `engine_leftovers[]` (also per scenario): networks the engine would not remove
//!   although nothing of ours was attached (a stale endpoint, moby/moby#17217), not a failure;
//! - `skipped[]`: scenarios chosen but skipped because they no longer apply to this runbook
//!   (`--skip-inapplicable`): `scenario`, `why` (what it expected, the nearest runbook line);
//! - `node_profile`: the description of the node profile the replica was wired by
//!   (`--node-profile`); absent for the replica's default wiring.

use super::probe::ProbeReport;
use super::shell::ShellRun;
use harness::checks::Outcome as CheckOutcome;
use serde::{Deserialize, Serialize};
use std::time::SystemTime;

/// What a run measured: the runbook holds, its deviation was detected and rolled back, it
/// breaks, or the harness (not the runbook) decided and the run says nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Nothing failed, nothing was lost, the rotation took effect.
    Holds,
    /// It deviated, and the rollback restored the steady state.
    Detected,
    /// The runbook as written fails in a measured way.
    Breaks,
    /// The harness itself was the bottleneck (its clock late, the host out of ports): what
    /// it measured says nothing about the runbook; the journal says why.
    Inconclusive,
}

pub use harness::runbook::lock::Expected;

impl From<Expected> for Outcome {
    fn from(e: Expected) -> Outcome {
        match e {
            Expected::Holds => Outcome::Holds,
            Expected::Detected => Outcome::Detected,
            Expected::Breaks => Outcome::Breaks,
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Holds => "holds",
            Outcome::Detected => "detected",
            Outcome::Breaks => "breaks",
            Outcome::Inconclusive => "inconclusive",
        })
    }
}

pub const SCHEMA: &str = "rotation-rehearsal/journal";
pub const VERSION: u32 = 11;
/// The oldest journal version this build reads: a version-6 to 8 journal reads as a version-9
/// one without what later versions added (every field defaults; a measurement it lacks was not
/// taken; 9 added the step boundaries). Older ones held their measurements
/// as operator notes, which nothing here reads any more.
pub const OLDEST_READABLE: u32 = 6;

/// Why a journal's text is not one this build reads. Names no content of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JournalReadError {
    #[error("not a rehearsal journal (line {line}, column {column})")]
    NotAJournal { line: usize, column: usize },
    #[error("not a rehearsal journal (its schema is not `{SCHEMA}`)")]
    OtherSchema,
    #[error("journal version {found} was written by a newer rotation-rehearsal; this build reads versions {OLDEST_READABLE} to {VERSION}")]
    Newer { found: u64 },
    #[error("journal version {found} is older than this build reads (versions {OLDEST_READABLE} to {VERSION}); render it with the rotation-rehearsal that wrote it")]
    Older { found: u64 },
}

impl Journal {
    /// A journal from its JSON text: its schema and version checked before anything else is
    /// read (a newer one is refused, never read in part and written back as this version), an
    /// older readable one migrated to [`VERSION`].
    pub fn from_json(text: &str) -> Result<Journal, JournalReadError> {
        #[derive(Deserialize)]
        struct Head {
            schema: Option<String>,
            version: Option<u64>,
        }
        let not_a_journal = |e: serde_json::Error| JournalReadError::NotAJournal {
            line: e.line(),
            column: e.column(),
        };
        let head: Head = serde_json::from_str(text).map_err(not_a_journal)?;
        if head.schema.as_deref() != Some(SCHEMA) {
            return Err(JournalReadError::OtherSchema);
        }
        match head.version {
            Some(found) if found > u64::from(VERSION) => {
                return Err(JournalReadError::Newer { found })
            }
            Some(found) if found < u64::from(OLDEST_READABLE) => {
                return Err(JournalReadError::Older { found })
            }
            Some(_) => {}
            None => return Err(JournalReadError::OtherSchema),
        }
        let mut journal: Journal = serde_json::from_str(text).map_err(not_a_journal)?;
        journal.version = VERSION;
        Ok(journal)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Journal {
    pub schema: String,
    pub version: u32,
    pub runbook: String,
    /// The runbook's steps as rehearsed (`Runbook::fingerprint`): shards must agree on it.
    pub runbook_fingerprint: String,
    /// Which shard of which selection this run was (`--shard K/N`); absent for a whole run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardInfo>,
    pub started: String,
    pub wall_ms: u64,
    pub time_scale: f64,
    pub scenarios: Vec<ScenarioRecord>,
    pub findings: Vec<FindingSummary>,
    /// What of the run's replicas still existed after it (must be empty).
    pub leftovers: Vec<String>,
    /// Networks the Docker engine would not remove although nothing of ours was attached: it
    /// kept an endpoint it lost track of (moby/moby#17217); only a daemon restart removes them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub engine_leftovers: Vec<String>,
    /// Scenarios chosen but not rehearsed because they no longer apply to this runbook, skipped
    /// as the user asked (`--skip-inapplicable`); without it such a run does not start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<Skipped>,
    /// The node profile the replica was wired by (`--node-profile`), by its description;
    /// absent for the replica's default wiring.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_profile: Option<String>,
}

/// A scenario skipped for this runbook, and what it expected that the runbook no longer has.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    pub scenario: String,
    pub why: String,
}

impl Journal {
    /// Every scenario met its expected outcome and nothing of their replicas remained: what a
    /// rehearsal's exit code 0 means.
    pub fn passed(&self) -> bool {
        self.scenarios.iter().all(|s| s.met) && self.leftovers.is_empty()
    }

    /// Some scenario missed its outcome, and every one that did was `inconclusive`: the
    /// harness, not the runbook, was the bottleneck.
    pub fn only_inconclusive(&self) -> bool {
        let missed: Vec<&ScenarioRecord> = self.scenarios.iter().filter(|s| !s.met).collect();
        !missed.is_empty()
            && self.leftovers.is_empty()
            && missed
                .iter()
                .all(|s| s.actual == Some(Outcome::Inconclusive))
    }
}

/// The shard a journal is from: K of N, and every scenario id of the whole selection (in order),
/// so that a merge can tell a missing scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    pub index: usize,
    pub count: usize,
    pub selection: Vec<String>,
}

/// A static finding and what the scenarios measured about it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FindingSummary {
    pub id: String,
    pub severity: String,
    pub line: usize,
    pub explanation: String,
    /// (scenario, verdict, evidence)
    pub measured: Vec<(String, String, String)>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScenarioRecord {
    pub id: String,
    pub title: String,
    pub expected: Expected,
    pub actual: Option<Outcome>,
    pub met: bool,
    pub error: Option<String>,
    pub aborted_at: Option<String>,
    /// Why and when a safeguard stopped the steps (then the rollback ran).
    pub safeguard: Option<String>,
    /// The step whose command failed, where the operator stopped (a scenario whose runbook
    /// says to stop there); then the rollback ran.
    #[serde(default)]
    pub stopped_at_failed_step: Option<String>,
    pub started: String,
    pub wall_ms: u64,
    pub deviated: bool,
    /// How long after the last step every service was ready again (None: not within 20 s).
    pub ready_after_ms: Option<u64>,
    pub ready_after_rollback_ms: Option<u64>,
    pub checks_before: Vec<CheckRecord>,
    pub faults: Vec<FaultRecord>,
    pub seed: Option<u64>,
    /// The replica stack the scenario ran on (removed when it ended).
    pub stack: Option<String>,
    pub steps: Vec<StepRecord>,
    pub checks_after: Vec<CheckRecord>,
    pub rollback_steps: Vec<StepRecord>,
    pub checks_after_rollback: Vec<CheckRecord>,
    pub probe: Option<ProbeReport>,
    pub rollback_probe: Option<ProbeReport>,
    pub findings: Vec<FindingVerdict>,
    /// What the scenario measured when it was over, beyond its steps (a backup left behind).
    #[serde(default)]
    pub measurements: Vec<Measurement>,
    /// Why the verdict is `inconclusive` (the harness was the bottleneck), when it is.
    pub inconclusive: Option<String>,
    /// Set when the Docker engine stopped answering (before or during this scenario): the
    /// operation that hung. Then the run stops, and scenarios not started are `not_run`.
    pub engine_unresponsive: Option<String>,
    /// Why this scenario was not run at all.
    pub not_run: Option<String>,
    /// Services found not ready after the steps or the rollback, as the engine saw their
    /// containers then: state and last log lines (redacted).
    pub forensics: Vec<Forensics>,
    /// What of its replica the engine kept although the harness removed it all (a network with
    /// a stale endpoint, moby/moby#17217).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub engine_leftovers: Vec<String>,
    /// Every boundary between two steps of the phases, judged as a place to stop.
    #[serde(default)]
    pub boundaries: Vec<BoundaryRecord>,
    /// Each phase's impact against its budget (`budgets.rs`).
    #[serde(default)]
    pub budgets: Vec<super::budgets::BudgetRecord>,
    /// The steps' longest Telegram outage, split into the node's own downtime and the rest.
    #[serde(default)]
    pub telegram_outage: Option<super::budgets::OutageSplit>,
}

/// A container as the engine saw it when its service was found not ready.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Forensics {
    pub service: String,
    /// `after steps` or `after rollback`.
    pub when: String,
    pub status: Option<String>,
    pub running: Option<bool>,
    pub exit_code: Option<i64>,
    pub oom_killed: Option<bool>,
    pub restart_count: Option<i64>,
    pub started_at: Option<String>,
    /// Why the engine could not start the container (its `State.Error`), when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_error: Option<String>,
    /// The last 50 log lines, through the stack's redactor.
    pub last_logs: String,
}

impl Forensics {
    /// What the engine saw of the service, and its last log lines (already redacted), for a
    /// person reading a failed test.
    pub fn describe(&self) -> String {
        format!(
            "forensics {} {}: {} (exit code {:?}, restarts {:?})\n{}",
            self.service,
            self.when,
            self.status.as_deref().unwrap_or("unknown"),
            self.exit_code,
            self.restart_count,
            self.last_logs
        )
    }
}

impl ScenarioRecord {
    /// The boundaries where stopping is unsafe, in step order.
    pub fn unsafe_windows(&self) -> impl Iterator<Item = &BoundaryRecord> {
        self.boundaries.iter().filter(|b| b.is_unsafe())
    }

    /// What went over its phase's budget, one sentence each.
    pub fn over_budget(&self) -> Vec<String> {
        self.budgets
            .iter()
            .filter_map(|b| b.over())
            .chain(super::budgets::telegram_over(&self.budgets))
            .collect()
    }

    pub fn new(id: &str, title: &str, expected: Expected, started: SystemTime) -> Self {
        ScenarioRecord {
            id: id.into(),
            title: title.into(),
            expected,
            actual: None,
            met: false,
            error: None,
            aborted_at: None,
            safeguard: None,
            stopped_at_failed_step: None,
            started: humantime::format_rfc3339_seconds(started).to_string(),
            wall_ms: 0,
            deviated: false,
            ready_after_ms: None,
            ready_after_rollback_ms: None,
            checks_before: Vec::new(),
            faults: Vec::new(),
            seed: None,
            stack: None,
            steps: Vec::new(),
            checks_after: Vec::new(),
            rollback_steps: Vec::new(),
            checks_after_rollback: Vec::new(),
            probe: None,
            rollback_probe: None,
            findings: Vec::new(),
            measurements: Vec::new(),
            inconclusive: None,
            engine_unresponsive: None,
            not_run: None,
            forensics: Vec::new(),
            engine_leftovers: Vec::new(),
            boundaries: Vec::new(),
            budgets: Vec::new(),
            telegram_outage: None,
        }
    }

    /// Promoted checks that failed after the steps.
    pub fn failed_after(&self) -> Vec<&CheckRecord> {
        self.checks_after
            .iter()
            .filter(|c| c.outcome == CheckOutcome::Fail || c.outcome == CheckOutcome::Error)
            .collect()
    }

    /// The variables whose new value a failing `*.current.*` check found not live after the
    /// steps, each with the last step that wrote it in a `.env` file (`None`: no step did).
    pub fn not_live(&self) -> Vec<(String, Option<String>)> {
        let catalogue = harness::checks::catalogue();
        let mut out: Vec<(String, Option<String>)> = Vec::new();
        for check in self
            .failed_after()
            .iter()
            .filter(|c| c.id.split('.').any(|part| part == "current"))
        {
            let Some(entry) = catalogue.iter().find(|c| c.id == check.id) else {
                continue;
            };
            for var in &entry.secrets {
                if out.iter().any(|(v, _)| v == var) {
                    continue;
                }
                let last = self
                    .steps
                    .iter()
                    .rev()
                    .find(|step| {
                        step.measurements.iter().any(|m| {
                            matches!(m, Measurement::EnvWritten { variables } if variables.iter().any(|v| v == var))
                        })
                    })
                    .map(|step| step.id.clone());
                out.push((var.to_string(), last));
            }
        }
        out
    }

    /// Where each flow's traffic first failed during the steps, earliest first: the step it
    /// failed under, the flow, and when (ms since the first step).
    pub fn first_failures(&self) -> Vec<FirstFailure> {
        let Some(probe) = self.probe.as_ref() else {
            return Vec::new();
        };
        let bucket_ms = crate::probe::BUCKET_MS;
        let mut out: Vec<FirstFailure> = probe
            .timeline
            .iter()
            .filter_map(|(flow, buckets)| {
                let at_ms = buckets.iter().position(|b| b.fail > 0)? as u64 * bucket_ms;
                let step = self
                    .steps
                    .iter()
                    .rev()
                    .find(|s| s.started_ms <= at_ms)
                    .map(|s| s.id.clone());
                Some(FirstFailure {
                    step,
                    flow: flow.clone(),
                    at_ms,
                })
            })
            .collect();
        out.sort_by_key(|f| f.at_ms);
        out
    }
}

/// Where one flow of a scenario's traffic first failed: under which step, when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstFailure {
    /// The step running (or last begun) then; `None` before the first step.
    pub step: Option<String>,
    pub flow: String,
    pub at_ms: u64,
}

/// A step boundary judged as a place the operator may stop: the checks run once `after` was
/// done, before the next step started.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BoundaryRecord {
    /// The step just done.
    pub after: String,
    /// The step the operator would go on with (none after the last step run).
    pub before: Option<String>,
    /// When the checks ran, and how long the node stayed at this boundary in the rehearsal
    /// (until the next step started), ms since the first step.
    pub at_ms: u64,
    pub lasted_ms: u64,
    /// How long the checks and the flows took here (0 in journals before version 10).
    #[serde(default)]
    pub checked_ms: u64,
    pub checks: Vec<CheckRecord>,
    /// Every flow tried end to end here (`flows.rs`); empty in journals before version 10.
    #[serde(default)]
    pub flows: Vec<FlowRecord>,
    /// The runbook's sentence that declares what failed here as an expected interruption of
    /// this phase; then the boundary is stated, not unsafe.
    pub declared: Option<String>,
}

/// One flow tried end to end at a boundary: `flow` (`telegram.<agent>`,
/// `jetstream.<worker>`, `api.token-issued-before-the-step`), the `service` that answers it
/// first, `outcome` (`pass`: answered, maybe after failing; `fail`: still failing at the
/// deadline; `skip`: not tried), `failed_ms` (how long it failed before answering, or until the
/// deadline) and `evidence` (its answer, or its last failure).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FlowRecord {
    pub flow: String,
    pub service: String,
    pub outcome: CheckOutcome,
    pub failed_ms: u64,
    pub evidence: String,
}

impl BoundaryRecord {
    /// What failed here: each refused credential's and each failed flow's evidence.
    pub fn refused(&self) -> impl Iterator<Item = &str> {
        self.checks
            .iter()
            .filter(|c| c.outcome == CheckOutcome::Fail)
            .map(|c| c.evidence.as_str())
            .chain(
                self.flows
                    .iter()
                    .filter(|f| f.outcome == CheckOutcome::Fail)
                    .map(|f| f.evidence.as_str()),
            )
    }

    /// The flows that failed here for a while and then answered within the deadline.
    pub fn recovered(&self) -> impl Iterator<Item = &FlowRecord> {
        self.flows
            .iter()
            .filter(|f| f.outcome == CheckOutcome::Pass && f.failed_ms > 0)
    }

    /// Whether stopping here leaves a service holding a credential the node refuses, or a
    /// flow failing, and the runbook does not say so.
    pub fn is_unsafe(&self) -> bool {
        self.declared.is_none() && self.refused().next().is_some()
    }

    /// `phase6.step2 → phase6.step3`, or `after phase6.step7` at the end.
    pub fn name(&self) -> String {
        match &self.before {
            Some(next) => format!("{} \u{2192} {next}", self.after),
            None => format!("after {}", self.after),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckRecord {
    pub id: String,
    pub outcome: CheckOutcome,
    pub evidence: String,
}

/// One fault: where it attached, when it was injected and undone (ms since the first step),
/// and what each did.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FaultRecord {
    pub name: String,
    pub at: String,
    pub injected_ms: Option<u64>,
    pub removed_ms: Option<u64>,
    pub inject: String,
    pub teardown: String,
    /// Both the injection and the teardown succeeded (or have not happened).
    pub ok: bool,
}

impl FaultRecord {
    pub fn new(name: &str, at: &str) -> Self {
        FaultRecord {
            name: name.into(),
            at: at.into(),
            injected_ms: None,
            removed_ms: None,
            inject: "not injected (its step or time never came)".into(),
            teardown: String::new(),
            ok: true,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    pub id: String,
    pub title: String,
    pub ok: bool,
    pub started_ms: u64,
    pub ended_ms: u64,
    pub actions: Vec<ActionRecord>,
    /// Containers whose env differs from their `.env` after this step's restart.
    pub stale_env: Vec<String>,
    /// Whether containers were compared with their files after this step's restart.
    pub env_compared: bool,
    /// What the step measured that a finding needs.
    #[serde(default)]
    pub measurements: Vec<Measurement>,
}

impl StepRecord {
    pub fn new(id: &str, title: &str) -> Self {
        StepRecord {
            id: id.into(),
            title: title.into(),
            ok: true,
            started_ms: 0,
            ended_ms: 0,
            actions: Vec::new(),
            stale_env: Vec::new(),
            env_compared: false,
            measurements: Vec::new(),
        }
    }
    pub fn missing(id: &str) -> Self {
        let mut s = Self::new(id, "not in the runbook");
        s.ok = false;
        s
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ActionRecord {
    pub operator: Option<String>,
    pub shell: Option<ShellRun>,
    pub note: String,
}

impl ActionRecord {
    pub fn operator(note: &str) -> Self {
        ActionRecord {
            operator: Some(note.to_string()),
            shell: None,
            note: String::new(),
        }
    }
    pub fn shell(run: ShellRun, note: &str) -> Self {
        ActionRecord {
            operator: None,
            shell: Some(run),
            note: note.to_string(),
        }
    }
}

/// What a scenario measured about a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Confirmed,
    Refuted,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Confirmed => "confirmed",
            Verdict::Refuted => "refuted",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FindingVerdict {
    /// `<kind>@<step>`, as the static finding's id without its repeat suffix.
    pub finding: String,
    pub verdict: Verdict,
    pub evidence: String,
}

impl FindingVerdict {
    pub fn confirmed(finding: &str, evidence: &str) -> Self {
        FindingVerdict {
            finding: finding.into(),
            verdict: Verdict::Confirmed,
            evidence: evidence.into(),
        }
    }
    pub fn refuted(finding: &str, evidence: &str) -> Self {
        FindingVerdict {
            finding: finding.into(),
            verdict: Verdict::Refuted,
            evidence: evidence.into(),
        }
    }
}

/// What a step measured on the replica that a finding needs, as data; `verdicts` decides from
/// it and the report renders it (`Display`, one line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Measurement {
    /// `docker logs … | grep` without `2>&1`: lines with "error" on each stream of `service`,
    /// and lines in all (of the last 100 on each stream).
    LogStreams {
        service: String,
        errors_on_stdout: usize,
        errors_on_stderr: usize,
        #[serde(default)]
        lines_on_stdout: usize,
        #[serde(default)]
        lines_on_stderr: usize,
    },
    /// Where `tar -x` ran: the node's directory or elsewhere.
    RestoreDirectory {
        in_node_directory: bool,
        directory: String,
        exit_code: Option<i32>,
    },
    /// The backup written again during this step: the secrets it now holds rotated values of.
    BackupOverwritten {
        backup: String,
        rotated: Vec<String>,
    },
    /// A value written in the runbook (`name`), run as written: now the server's password, or
    /// the value in `env_files` `.env` files.
    ExampleValue {
        name: String,
        on_server: bool,
        env_files: usize,
    },
    /// A block that elides restarts ("… continue for all services"): the services using
    /// DB_PASSWORD it names and those it never restarts.
    Elision {
        restarted: Vec<String>,
        never_restarted: Vec<String>,
    },
    /// The backup the step wrote, read without a passphrase.
    Backup {
        backup: String,
        env_files: usize,
        secret_values: usize,
        mode: u32,
    },
    /// What a `sed` changed: variable → number of files.
    SedChanged {
        changed: std::collections::BTreeMap<String, usize>,
    },
    /// A variable a `sed` meant to set that differs from the command's value in `wrong` of
    /// `files` files; `rewritten`: sed changed it, but not to that value.
    SedMangled {
        name: String,
        wrong: usize,
        files: usize,
        rewritten: bool,
    },
    /// The backup still on the node when the scenario ended.
    BackupLeftOnNode { backup: String, mode: u32 },
    /// The variables whose value a step changed in any of the node's `.env` files (names
    /// only), whoever changed them: a command, or the operator's hand.
    EnvWritten { variables: Vec<String> },
    /// A step that edits `edited=` lines of the `.env` files, where the node profile has
    /// services read `secret` elsewhere: the places (variable and service) whose value, as the
    /// service reads it, the step left as it was, and those where it changed or already is the
    /// value the step wrote.
    WiringEdited {
        secret: String,
        edited: String,
        unchanged: Vec<String>,
        changed: Vec<String>,
    },
}

impl Measurement {
    /// What was measured, in two words, for a report's line (`measured sed: …`).
    pub fn label(&self) -> &'static str {
        match self {
            Measurement::LogStreams { .. } => "log streams",
            Measurement::RestoreDirectory { .. } => "restore directory",
            Measurement::BackupOverwritten { .. } => "backup overwrite",
            Measurement::ExampleValue { .. } => "example value",
            Measurement::Elision { .. } => "elision",
            Measurement::Backup { .. } => "backup",
            Measurement::SedChanged { .. } => "sed",
            Measurement::SedMangled { .. } => "sed mangled",
            Measurement::BackupLeftOnNode { .. } => "backup left",
            Measurement::EnvWritten { .. } => "env written",
            Measurement::WiringEdited { .. } => "wiring edited",
        }
    }
}

/// `a, b`, or `none`.
fn list_or_none(list: &[String]) -> String {
    if list.is_empty() {
        "none".to_string()
    } else {
        list.join(", ")
    }
}

/// `DB_PASSWORD in 5 file(s), X in 1 file(s)`.
fn files_changed(changed: &std::collections::BTreeMap<String, usize>) -> String {
    changed
        .iter()
        .map(|(k, n)| format!("{k} in {n} file(s)"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl std::fmt::Display for Measurement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Measurement::LogStreams {
                service,
                errors_on_stdout,
                errors_on_stderr,
                lines_on_stdout,
                lines_on_stderr,
            } => {
                write!(
                    f,
                    "{service}: {errors_on_stdout} lines with \"error\" on stdout, which the pipe carries; {errors_on_stderr} on stderr, which it never sees"
                )?;
                if *lines_on_stdout == 0 && *lines_on_stderr > 0 {
                    write!(f, "; its whole log ({lines_on_stderr} lines) is on stderr: the pipe sees none of it, an error included")?;
                }
                Ok(())
            }
            Measurement::RestoreDirectory {
                in_node_directory,
                directory,
                exit_code,
            } => restore_directory(f, *in_node_directory, directory, exit_code.unwrap_or(-1)),
            Measurement::BackupOverwritten { backup, rotated } => {
                backup_overwritten(f, backup, rotated)
            }
            Measurement::ExampleValue {
                name,
                on_server,
                env_files,
            } => example_value(f, name, *on_server, *env_files),
            Measurement::Elision {
                restarted,
                never_restarted,
            } => write!(
                f,
                "the block restarts {} of the {} services that use DB_PASSWORD; never restarted: {}",
                restarted.len(),
                restarted.len() + never_restarted.len(),
                list_or_none(never_restarted)
            ),
            Measurement::Backup {
                backup,
                env_files,
                secret_values,
                mode,
            } => write!(
                f,
                "{backup} holds {env_files} .env files with {secret_values} secret values in clear, mode {mode:04o}"
            ),
            Measurement::SedChanged { changed } => sed_changed(f, changed),
            Measurement::SedMangled {
                name,
                wrong,
                files,
                rewritten,
            } => sed_mangled(f, name, *wrong, *files, *rewritten),
            Measurement::EnvWritten { variables } => {
                write!(f, "variables written in the .env files: {}", variables.join(", "))
            }
            Measurement::WiringEdited {
                secret,
                edited,
                unchanged,
                changed,
            } => match unchanged.as_slice() {
                [] => write!(
                    f,
                    "the step edited `{edited}=` lines and {secret} is the value it wrote where the services read it: {}",
                    changed.join(", ")
                ),
                _ => write!(
                    f,
                    "the step edited `{edited}=` lines, but {secret} did not change where the services read it: {}",
                    unchanged.join(", ")
                ),
            },
            Measurement::BackupLeftOnNode { backup, mode } => write!(
                f,
                "after the scenario {backup} (mode {mode:04o}, unencrypted) is still on the node; no step of the runbook removes or expires a backup"
            ),
        }
    }
}

/// Where `tar -x` of the rollback ran, in words.
fn restore_directory(
    f: &mut std::fmt::Formatter<'_>,
    in_node_directory: bool,
    directory: &str,
    exit_code: i32,
) -> std::fmt::Result {
    if in_node_directory {
        write!(
            f,
            "`tar -x` ran in the node's directory (the shell was still there from an earlier `cd`), exit {exit_code}"
        )
    } else {
        write!(
            f,
            "`tar -x` ran in {directory}, not the node's directory, exit {exit_code}"
        )
    }
}

/// What a backup written again the same day holds, in words.
fn backup_overwritten(
    f: &mut std::fmt::Formatter<'_>,
    backup: &str,
    rotated: &[String],
) -> std::fmt::Result {
    if rotated.is_empty() {
        write!(
            f,
            "{backup} was written again; it still holds only pre-rotation values"
        )
    } else {
        write!(
            f,
            "{backup} was written again the same day and now holds rotated values of {}; the pre-rotation values of those are in no backup",
            rotated.join(", ")
        )
    }
}

/// Where the runbook's example value ended up, in words.
fn example_value(
    f: &mut std::fmt::Formatter<'_>,
    name: &str,
    on_server: bool,
    env_files: usize,
) -> std::fmt::Result {
    if on_server {
        write!(
            f,
            "the server's password is now the value written in the runbook ({name}), as published"
        )
    } else {
        write!(
            f,
            "the value written in the runbook ({name}) is now the password in {env_files} .env file(s)"
        )
    }
}

/// What a `sed` block changed, in words.
fn sed_changed(
    f: &mut std::fmt::Formatter<'_>,
    changed: &std::collections::BTreeMap<String, usize>,
) -> std::fmt::Result {
    if changed.is_empty() {
        f.write_str("it changed no variable in any file")
    } else if changed.keys().all(|k| k == "DB_PASSWORD") {
        write!(
            f,
            "it changed {}; no other variable was touched on this node (no collateral rewrite)",
            files_changed(changed)
        )
    } else {
        write!(
            f,
            "it changed more than DB_PASSWORD: {}",
            files_changed(changed)
        )
    }
}

/// How a `sed` block left a variable different from its command's value, in words.
fn sed_mangled(
    f: &mut std::fmt::Formatter<'_>,
    name: &str,
    wrong: usize,
    files: usize,
    rewritten: bool,
) -> std::fmt::Result {
    let how = if rewritten {
        "sed rewrote it, but not to the value its command gives"
    } else {
        "sed changed nothing (its error is hidden by `find -exec`)"
    };
    write!(
        f,
        "{name} differs from the command's value in {wrong} of {files} files: {how}"
    )
}

/// The journal of a run: the scenarios' records and, for every static finding of the runbook
/// on a node wired as `profile` says, what the scenarios measured about it.
pub fn assemble(
    runbook: &harness::runbook::Runbook,
    profile: &harness::profile::NodeProfile,
    started: SystemTime,
    wall_ms: u64,
    time_scale: f64,
    scenarios: Vec<ScenarioRecord>,
) -> Journal {
    let findings = harness::runbook::findings::analyse_profiled(runbook, profile)
        .into_iter()
        .map(|f| {
            let base = format!("{}@{}", f.kind, f.step);
            let mut measured: Vec<(String, String, String)> = Vec::new();
            for s in &scenarios {
                for v in s.findings.iter().filter(|v| v.finding == base) {
                    let entry = (s.id.clone(), v.verdict.to_string(), v.evidence.clone());
                    if !measured.contains(&entry) {
                        measured.push(entry);
                    }
                }
            }
            FindingSummary {
                id: f.id,
                severity: f.severity.to_string(),
                line: f.line,
                explanation: f.explanation,
                measured,
            }
        })
        .collect();
    Journal {
        schema: SCHEMA.to_string(),
        version: VERSION,
        runbook: runbook.file.clone(),
        runbook_fingerprint: runbook.fingerprint(),
        shard: None,
        started: humantime::format_rfc3339_seconds(started).to_string(),
        wall_ms,
        time_scale,
        scenarios,
        findings,
        leftovers: Vec::new(),
        engine_leftovers: Vec::new(),
        skipped: Vec::new(),
        node_profile: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn only_a_failing_current_credential_check_names_a_new_value_not_live() {
        let mut record = ScenarioRecord::new("s", "t", Expected::Holds, SystemTime::UNIX_EPOCH);
        let failed = |id: &str| CheckRecord {
            id: id.into(),
            outcome: CheckOutcome::Fail,
            evidence: String::new(),
        };
        record.checks_after = vec![
            failed("provider.usage.current-only"),
            failed("env.container-matches-file.router"),
        ];
        assert_eq!(record.not_live(), vec![]);
        let mut step = StepRecord::new("phase3.step2", "t");
        step.measurements.push(Measurement::EnvWritten {
            variables: vec!["DB_PASSWORD".into()],
        });
        record.steps.push(step);
        record
            .checks_after
            .push(failed("postgres.auth.current.router"));
        assert_eq!(
            record.not_live(),
            vec![("DB_PASSWORD".to_string(), Some("phase3.step2".to_string()))]
        );
    }

    #[test]
    fn a_journal_of_a_newer_or_too_old_version_is_refused_naming_its_version() {
        let json = |version: u32| {
            let mut j = crate::samples::journal(Vec::new(), 1);
            j.version = version;
            serde_json::to_string(&j).unwrap()
        };
        assert_eq!(
            Journal::from_json(&json(999)).unwrap_err().to_string(),
            "journal version 999 was written by a newer rotation-rehearsal; this build reads versions 6 to 11"
        );
        assert_eq!(
            Journal::from_json(&json(5)).unwrap_err().to_string(),
            "journal version 5 is older than this build reads (versions 6 to 11); render it with the rotation-rehearsal that wrote it"
        );
        // A newer journal is refused by its version even when nothing else of it would parse.
        assert_eq!(
            Journal::from_json(r#"{"schema":"rotation-rehearsal/journal","version":12,"x":1}"#)
                .unwrap_err(),
            JournalReadError::Newer { found: 12 }
        );
        assert_eq!(Journal::from_json(&json(6)).unwrap().version, VERSION);
        assert_eq!(
            Journal::from_json(r#"{"schema":"other","version":7}"#).unwrap_err(),
            JournalReadError::OtherSchema
        );
    }

    /// Every key of `value`, at any depth, except inside the probe reports (documented on
    /// `probe::ProbeReport`) and maps keyed by data (`changed`: variable → files).
    fn keys(value: &serde_json::Value, out: &mut BTreeSet<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (k, v) in map {
                    out.insert(k.clone());
                    if !matches!(k.as_str(), "probe" | "rollback_probe" | "changed") {
                        keys(v, out);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| keys(v, out)),
            _ => {}
        }
    }

    /// A step with one action of each kind and every kind of measurement.
    fn step_with_everything() -> StepRecord {
        let mut step = StepRecord::new("phase1.step1", "t");
        step.actions.push(ActionRecord::operator("o"));
        step.actions.push(ActionRecord::shell(
            ShellRun {
                command: "c".into(),
                ran: "c".into(),
                exit_code: Some(0),
                killed_at_deadline: false,
                duration_ms: 1,
                output_tail: String::new(),
                secrets_in_argv: Vec::new(),
                compose: vec![harness::compose::ComposeRun {
                    tool: "docker-compose 1.29.2 (v1)".into(),
                    args: "up -d".into(),
                }],
            },
            "",
        ));
        step.measurements = vec![
            Measurement::LogStreams {
                service: "s".into(),
                errors_on_stdout: 0,
                errors_on_stderr: 0,
                lines_on_stdout: 0,
                lines_on_stderr: 0,
            },
            Measurement::RestoreDirectory {
                in_node_directory: true,
                directory: "d".into(),
                exit_code: Some(0),
            },
            Measurement::BackupOverwritten {
                backup: "b".into(),
                rotated: Vec::new(),
            },
            Measurement::ExampleValue {
                name: "n".into(),
                on_server: false,
                env_files: 1,
            },
            Measurement::Elision {
                restarted: Vec::new(),
                never_restarted: Vec::new(),
            },
            Measurement::Backup {
                backup: "b".into(),
                env_files: 1,
                secret_values: 1,
                mode: 0o600,
            },
            Measurement::SedChanged {
                changed: [("DB_PASSWORD".to_string(), 1)].into(),
            },
            Measurement::SedMangled {
                name: "n".into(),
                wrong: 1,
                files: 1,
                rewritten: true,
            },
            Measurement::WiringEdited {
                secret: "DB_PASSWORD".into(),
                edited: "DB_PASSWORD".into(),
                unchanged: vec!["`DATABASE_URL` in services/router/.env".into()],
                changed: Vec::new(),
            },
        ];
        step
    }

    /// A journal with every optional part present: one of each record, measurement and action.
    fn journal_with_everything() -> Journal {
        let mut s = ScenarioRecord::new("s", "t", Expected::Holds, SystemTime::UNIX_EPOCH);
        s.stopped_at_failed_step = Some("phase1.step1".into());
        s.boundaries.push(BoundaryRecord {
            after: "phase1.step1".into(),
            before: Some("phase1.step2".into()),
            at_ms: 1,
            lasted_ms: 1,
            checked_ms: 1,
            checks: Vec::new(),
            flows: vec![FlowRecord {
                flow: "telegram.helion".into(),
                service: "gateway".into(),
                outcome: CheckOutcome::Pass,
                failed_ms: 0,
                evidence: String::new(),
            }],
            declared: Some("until".into()),
        });
        s.checks_before.push(CheckRecord {
            id: "c".into(),
            outcome: CheckOutcome::Pass,
            evidence: String::new(),
        });
        s.faults.push(FaultRecord::new("f", "phase1.step1"));
        let mut probe = ProbeReport::default();
        probe.containers_down.insert(
            "router".into(),
            vec![crate::probe::DownSpan {
                from_ms: 1,
                to_ms: Some(2),
            }],
        );
        s.probe = Some(probe);
        s.findings
            .push(FindingVerdict::confirmed("placeholder@phase1.step1", "e"));
        s.forensics.push(Forensics {
            service: "dagi-gateway-node1".into(),
            when: "after steps".into(),
            status: None,
            running: None,
            exit_code: None,
            oom_killed: None,
            restart_count: None,
            started_at: None,
            engine_error: Some("e".into()),
            last_logs: String::new(),
        });
        s.engine_leftovers.push("rotation-1".into());
        s.measurements.push(Measurement::BackupLeftOnNode {
            backup: "b".into(),
            mode: 0o600,
        });
        s.steps.push(step_with_everything());
        Journal {
            schema: SCHEMA.into(),
            version: VERSION,
            runbook: "r".into(),
            runbook_fingerprint: "f".into(),
            shard: Some(ShardInfo {
                index: 1,
                count: 2,
                selection: vec!["s".into()],
            }),
            started: "2026-12-04T00:00:00Z".into(),
            wall_ms: 1,
            time_scale: 0.1,
            scenarios: vec![s],
            findings: vec![FindingSummary {
                id: "placeholder@phase1.step1".into(),
                severity: "medium".into(),
                line: 1,
                explanation: String::new(),
                measured: Vec::new(),
            }],
            leftovers: vec!["l".into()],
            engine_leftovers: vec!["rotation-1".into()],
            skipped: vec![Skipped {
                scenario: "faults/x".into(),
                why: "faults/x: …".into(),
            }],
            node_profile: Some("DATABASE_URL per PostgreSQL client".into()),
        }
    }

    #[test]
    fn every_field_and_measurement_kind_of_the_journal_is_documented_in_its_schema() {
        let doc: String = include_str!("journal.rs")
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .collect::<Vec<_>>()
            .join("\n");
        let json = serde_json::to_value(journal_with_everything()).expect("serialises");
        let mut fields = BTreeSet::new();
        keys(&json, &mut fields);
        let kinds = json["scenarios"][0]["steps"][0]["measurements"]
            .as_array()
            .expect("measurements")
            .iter()
            .chain(
                json["scenarios"][0]["measurements"]
                    .as_array()
                    .expect("measurements"),
            )
            .map(|m| m["kind"].as_str().expect("kind").to_string());
        let undocumented: Vec<String> = fields
            .into_iter()
            .chain(kinds)
            .filter(|f| !doc.contains(&format!("`{f}`")) && !doc.contains(&format!("`{f}[]`")))
            .collect();
        assert_eq!(undocumented, Vec::<String>::new());
    }
}
