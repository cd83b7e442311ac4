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

mod measurement;
mod records;
pub use measurement::*;
pub use records::*;
#[cfg(test)]
mod tests;

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

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Confirmed => "confirmed",
            Verdict::Refuted => "refuted",
        })
    }
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
