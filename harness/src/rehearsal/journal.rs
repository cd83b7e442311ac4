//! The rehearsal journal: a versioned JSON record of every scenario — steps and what each did,
//! faults, checks before and after, the probe's bucketed timeline and accounting, the findings
//! measured, and the verdict. Every report renders from it.
//!
//! Schema `rotation-rehearsal/journal`, version 5 (2: Telegram's delivery model — `lost` counts
//! only updates the gateway accepted and never stored; `probe.telegram` and `probe.harness`;
//! 3: `runbook_fingerprint`, `shard`, each shell run's `compose[]`; 4: the API client's retry
//! policy, `probe.config.api_retries` / `api_backoff_ms`, with `flows.api.delayed` the calls
//! answered 2xx only after a retry and `failed` those never answered 2xx; 5: each scenario's
//! `stopped_at_failed_step`):
//! - `schema`, `version`, `runbook` (file), `runbook_fingerprint` (its steps, whitespace
//!   ignored), `shard` (`index` K, `count` N, `selection[]`: every scenario id of the whole
//!   run; absent unless `--shard` was given), `started` (RFC 3339), `wall_ms`, `time_scale`;
//! - `scenarios[]`: `id`, `title`, `expected`, `actual` (`holds`|`detected`|`breaks`, absent on
//!   error), `met`, `error`, `aborted_at` (the step a deadline ended), `safeguard` (why a
//!   safeguard stopped the steps), `stopped_at_failed_step` (the step whose command failed,
//!   where an operator told to stop there stopped), `wall_ms`, `deviated`,
//!   `checks_before[]` / `checks_after[]` / `checks_after_rollback[]` (`id`, `outcome`,
//!   `evidence`), `faults[]` (`name`, `at`, `injected_ms`, `removed_ms`, `inject`,
//!   `teardown`, `ok`; times in ms since the first step), `seed` (a random fault schedule's
//!   seed, to replay it), `stack` (the replica's id), `steps[]` and `rollback_steps[]` (`id`, `title`, `ok`,
//!   `started_ms`, `ended_ms` (ms since the first step, or since the rollback began),
//!   `actions[]` with `operator` or `shell` {`command`, `ran`, `exit_code`,
//!   `killed_at_deadline`, `duration_ms`, `output_tail`, `compose[]` (each Compose command the
//!   block ran: `tool`, the host's Compose that ran it, and `args`)}, `stale_env[]`), `probe` and
//!   `rollback_probe` (see `probe::ProbeReport`: per-flow counts, outages, the 50 ms
//!   `timeline`, the data accounting; `telegram` {`max_connections`, `peak_in_flight`,
//!   `delay_p50_ms` / `delay_p99_ms` / `delay_max_ms`, `peak_backlog`, `backlog` (pending when
//!   the drain window ended: not lost), `backlog_oldest_ms`, `failures` by cause}; `harness`
//!   {`lag_p99_ms`, `lag_max_ms` (the probe's clock, late), `host_errors` (the host's own:
//!   ports, file descriptors), `cpu_idle_pct`, `cpu_steal_pct`, `cpu_pressure_pct` (the share of the window some task
//!   waited for a CPU, from `/proc/pressure/cpu`)}), `findings[]` (`finding`,
//!   `verdict`, `evidence`);
//!   `engine_unresponsive` (the engine operation that hung), `not_run` (why it never started),
//!   `inconclusive` (why the harness or the host, not the node, decided: a saturated probe, or
//!   a Compose command the host's Compose could not run), `forensics[]`
//!   (`service`, `when`, `status`, `running`, `exit_code`, `oom_killed`, `restart_count`,
//!   `started_at`, `last_logs`: a service found not ready, as its container was then);
//! - `findings[]`: every static finding of the runbook with the scenarios that measured it;
//! - `leftovers[]`: containers, networks, volumes or directories of the run's replicas that
//!   remained; `engine_leftovers[]` (also per scenario): networks the engine would not remove
//!   although nothing of ours was attached (a stale endpoint, moby/moby#17217), not a failure.

use super::engine::Expected;
use super::probe::ProbeReport;
use super::shell::ShellRun;
use crate::checks::Outcome;
use serde::{Deserialize, Serialize};
use std::time::SystemTime;

pub const SCHEMA: &str = "rotation-rehearsal/journal";
pub const VERSION: u32 = 5;

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
                .all(|s| s.actual == Some(Expected::Inconclusive))
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
    pub actual: Option<Expected>,
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

impl ScenarioRecord {
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
            inconclusive: None,
            engine_unresponsive: None,
            not_run: None,
            forensics: Vec::new(),
            engine_leftovers: Vec::new(),
        }
    }

    /// Promoted checks that failed after the steps.
    pub fn failed_after(&self) -> Vec<&CheckRecord> {
        self.checks_after
            .iter()
            .filter(|c| c.outcome == Outcome::Fail || c.outcome == Outcome::Error)
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckRecord {
    pub id: String,
    pub outcome: Outcome,
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

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FindingVerdict {
    pub finding: String,
    /// `confirmed` or `refuted`.
    pub verdict: String,
    pub evidence: String,
}

impl FindingVerdict {
    pub fn confirmed(finding: &str, evidence: &str) -> Self {
        FindingVerdict {
            finding: finding.into(),
            verdict: "confirmed".into(),
            evidence: evidence.into(),
        }
    }
    pub fn refuted(finding: &str, evidence: &str) -> Self {
        FindingVerdict {
            finding: finding.into(),
            verdict: "refuted".into(),
            evidence: evidence.into(),
        }
    }
}

/// The journal of a run: the scenarios' records and, for every static finding of the runbook,
/// what the scenarios measured about it.
pub fn assemble(
    runbook: &crate::runbook::Runbook,
    started: SystemTime,
    wall_ms: u64,
    time_scale: f64,
    scenarios: Vec<ScenarioRecord>,
) -> Journal {
    let findings = crate::runbook::findings::analyse(runbook)
        .into_iter()
        .map(|f| {
            let base = format!("{}@{}", f.kind, f.step);
            let mut measured: Vec<(String, String, String)> = Vec::new();
            for s in &scenarios {
                for v in s.findings.iter().filter(|v| v.finding == base) {
                    let entry = (s.id.clone(), v.verdict.clone(), v.evidence.clone());
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
    }
}
