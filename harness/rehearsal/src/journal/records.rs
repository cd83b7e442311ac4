//! What a scenario records of its steps, boundaries, checks, faults and findings.

#[allow(unused_imports)]
use super::*;

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
