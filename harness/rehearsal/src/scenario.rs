//! The scenario model: which phases of the runbook a scenario runs, with which faults, edits
//! and replica settings, what must hold after, and the outcome it expects. Values only; the
//! engine runs them. Imports run one way: `faults` ← `schedule` ← `scenario` ← `engine`;
//! `journal`, the records they write (the outcome `Expected` among them), imports none of them.

pub use super::journal::{Expected, Outcome};
use super::schedule::FaultAt;
use harness::runbook::Runbook;
use serde::Serialize;
use std::borrow::Cow;
use std::time::Duration;

/// When the runbook's rollback runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rollback {
    /// Only when the hypothesis deviates.
    OnDeviation,
    /// Always after the phases (a rollback scenario).
    Always,
}

/// Abort the steps (and roll back) when the live failure rate over `window` exceeds
/// `max_failure_rate`; checked before every step.
#[derive(Debug, Clone, Copy)]
pub struct Safeguard {
    pub window: Duration,
    pub max_failure_rate: f64,
}

/// One scenario: which phases of the runbook run, what must hold after, what is expected.
pub struct Scenario {
    pub id: String,
    pub title: String,
    /// Runbook phases run in order (a rollback scenario runs phase 1 first for its backup).
    pub phases: Vec<u32>,
    pub rollback: Rollback,
    /// Check globs that say the rotation took effect (beyond the steady state).
    pub postconditions: Vec<String>,
    pub expected: Expected,
    pub faults: Vec<FaultAt>,
    pub safeguard: Option<Safeguard>,
    /// The seed a random fault schedule was drawn from (replay it with this seed).
    pub seed: Option<u64>,
    /// Edits of the runbook's code blocks (`from` → `to`, in order) this scenario rehearses
    /// instead of the runbook as written.
    pub edits: Vec<(&'static str, &'static str)>,
    /// The replica's settings: the platform changes a runbook requires (off by default, as
    /// the node is today).
    pub replica: harness::replica_root::RootOptions,
    /// The operator stops at a step whose command fails (a non-zero exit, or a block its
    /// deadline ended) and the rollback runs, as the runbook tells its operator to (the v2
    /// runbook does); otherwise the operator goes on with the next step, as the runbook as
    /// written leaves them to.
    pub stop_at_failed_step: bool,
    /// Why the replica cannot rehearse this scenario (a secret no replica service reads, a
    /// step nobody can carry out on it): its outcome is then `inconclusive` with this reason,
    /// and no replica is started.
    pub not_rehearsable: Option<String>,
    /// New secrets the operator is given instead of generated ones (`NEW_DB_PASSWORD` holding
    /// characters a URL reserves), by secret name.
    pub new_values: Vec<(&'static str, &'static str)>,
}

impl Scenario {
    /// The runbook as this scenario rehearses it: its edits applied, in order, to the phases'
    /// code.
    pub fn rehearsed<'a>(&self, runbook: &'a Runbook) -> Cow<'a, Runbook> {
        if self.edits.is_empty() {
            return Cow::Borrowed(runbook);
        }
        let mut r = runbook.clone();
        for (from, to) in &self.edits {
            for block in r
                .phases
                .iter_mut()
                .flat_map(|p| p.steps.iter_mut())
                .flat_map(|s| s.code.iter_mut())
            {
                block.text = block.text.replace(from, to);
            }
        }
        Cow::Owned(r)
    }

    /// Whether the runbook's rollback runs in this scenario as expected: always, or on the
    /// deviation its expected outcome says it measures.
    pub fn rolls_back(&self) -> bool {
        self.rollback == Rollback::Always || self.expected != Expected::Holds
    }
}
