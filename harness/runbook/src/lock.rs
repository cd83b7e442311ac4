//! `scenarios/runbook.lock`: each step's fingerprint and the scenarios that cover it, as last
//! reviewed. A runbook that no longer matches its lock is a change nobody has re-rehearsed.

use super::coverage::{scenarios_for_step, ScenarioRef};
use super::Runbook;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Where the lock lives, relative to the workspace root.
pub const DEFAULT_LOCK: &str = "scenarios/runbook.lock";
const FORMAT_VERSION: u32 = 1;
const HEADER: &str =
    "# The runbook as last reviewed: each step's fingerprint and the scenarios that cover it.\n\
# Written by `cargo xtask runbook accept`; `cargo xtask runbook check` fails when the runbook\n\
# or its coverage no longer matches. Do not edit by hand.\n\n";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    pub version: u32,
    #[serde(rename = "step", default)]
    pub steps: Vec<LockedStep>,
    /// Outcomes other than `holds` that a reviewer accepted for a scenario derived from the
    /// runbook, each with the reason; every other derived scenario is held to `holds`.
    #[serde(rename = "accepted", default, skip_serializing_if = "Vec::is_empty")]
    pub accepted: Vec<Accepted>,
}

/// A measured deviation a reviewer accepted: the scenario, the outcome measured, and why it is
/// acceptable (or known). Written by `runbook accept --outcomes DIR` from a rehearsal's journal,
/// its reason then edited by hand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    pub scenario: String,
    pub outcome: Expected,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockedStep {
    pub id: String,
    pub title: String,
    pub fingerprint: String,
    #[serde(default)]
    pub scenarios: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{file}: cannot read the lock: {source}")]
    Io {
        file: String,
        #[source]
        source: user_io::input::InputError,
    },
    #[error("{file}:{line}: malformed lock: {message}")]
    Malformed {
        file: String,
        line: usize,
        message: String,
    },
}

/// How the runbook differs from its lock.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LockDiff {
    pub added: Vec<LockedStep>,
    pub removed: Vec<LockedStep>,
    /// (as locked, as now) for steps whose text changed.
    pub changed: Vec<(LockedStep, LockedStep)>,
    /// (as locked, as now) for steps whose text is the same but whose scenarios changed.
    pub recovered: Vec<(LockedStep, LockedStep)>,
}

impl Lock {
    /// The lock that matches `runbook` and `scenarios` now.
    pub fn of(runbook: &Runbook, scenarios: &[ScenarioRef]) -> Lock {
        Lock {
            version: FORMAT_VERSION,
            accepted: Vec::new(),
            steps: runbook
                .steps()
                .map(|s| LockedStep {
                    id: s.id.clone(),
                    title: s.title.clone(),
                    fingerprint: s.fingerprint.clone(),
                    scenarios: scenarios_for_step(&s.id, scenarios),
                })
                .collect(),
        }
    }

    pub fn load(path: &Path) -> Result<Lock, LockError> {
        let file = path.display().to_string();
        let text = user_io::input::read_text(path, super::RUNBOOK_MAX_BYTES).map_err(|source| {
            LockError::Io {
                file: file.clone(),
                source,
            }
        })?;
        Self::parse(&file, &text)
    }

    pub fn parse(file: &str, text: &str) -> Result<Lock, LockError> {
        toml::from_str::<Lock>(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
                .unwrap_or(0);
            LockError::Malformed {
                file: file.to_string(),
                line,
                message: e.message().to_string(),
            }
        })
    }

    pub fn render(&self) -> String {
        let body = toml::to_string(self).expect("a lock always serialises");
        format!("{HEADER}{body}")
    }

    /// Writes the lock through a temporary file, so a crash never leaves half a lock.
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        user_io::output::write_atomic(path, self.render().as_bytes())
    }

    /// The outcome accepted for `scenario`, when the lock accepts one.
    pub fn accepted_outcome(&self, scenario: &str) -> Option<Expected> {
        self.accepted
            .iter()
            .find(|a| a.scenario == scenario)
            .map(|a| a.outcome)
    }

    /// How many of `runbook`'s steps this lock holds with the same id and fingerprint.
    pub fn shared_steps(&self, runbook: &Runbook) -> usize {
        let locked: std::collections::HashSet<(&str, &str)> = self
            .steps
            .iter()
            .map(|s| (s.id.as_str(), s.fingerprint.as_str()))
            .collect();
        runbook
            .steps()
            .filter(|s| locked.contains(&(s.id.as_str(), s.fingerprint.as_str())))
            .count()
    }

    /// The fingerprints of the steps of phase `n` as locked, in order.
    pub fn phase_fingerprints(&self, n: u32) -> Vec<&str> {
        let prefix = format!("phase{n}.");
        self.steps
            .iter()
            .filter(|s| s.id.starts_with(&prefix))
            .map(|s| s.fingerprint.as_str())
            .collect()
    }

    /// The fingerprints of the rollback's steps as locked, in order.
    pub fn rollback_fingerprints(&self) -> Vec<&str> {
        self.steps
            .iter()
            .filter(|s| s.id.starts_with("rollback."))
            .map(|s| s.fingerprint.as_str())
            .collect()
    }

    /// What changed from `self` (the lock) to `now`.
    pub fn diff(&self, now: &Lock) -> LockDiff {
        let mut diff = LockDiff::default();
        let locked: std::collections::HashMap<&str, &LockedStep> =
            self.steps.iter().map(|s| (s.id.as_str(), s)).collect();
        let current: std::collections::HashSet<&str> =
            now.steps.iter().map(|s| s.id.as_str()).collect();
        for step in &now.steps {
            match locked.get(step.id.as_str()).copied() {
                None => diff.added.push(step.clone()),
                Some(old) if old.fingerprint != step.fingerprint => {
                    diff.changed.push((old.clone(), step.clone()))
                }
                Some(old) if old.scenarios != step.scenarios => {
                    diff.recovered.push((old.clone(), step.clone()))
                }
                Some(_) => {}
            }
        }
        for old in &self.steps {
            if !current.contains(old.id.as_str()) {
                diff.removed.push(old.clone());
            }
        }
        diff
    }
}

/// The most differences `LockDiff::report` lists one by one.
pub const REPORT_MAX_LINES: usize = 40;

impl LockDiff {
    pub fn is_clean(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && self.recovered.is_empty()
    }

    /// Every scenario a reviewer should re-run or re-read, without repeats.
    pub fn scenarios_to_review(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .changed
            .iter()
            .chain(self.recovered.iter())
            .flat_map(|(a, b)| a.scenarios.iter().chain(b.scenarios.iter()))
            .chain(self.removed.iter().flat_map(|s| s.scenarios.iter()))
            .chain(self.added.iter().flat_map(|s| s.scenarios.iter()))
            .cloned()
            .collect();
        all.sort();
        all.dedup();
        all
    }

    /// A human report: one line per difference (the first `REPORT_MAX_LINES`, then how many
    /// more), then the scenarios to review.
    pub fn report(&self) -> String {
        let mut out = String::new();
        let mut lines = 0usize;
        let scenarios = |s: &[String]| {
            if s.is_empty() {
                "no scenario covers it".to_string()
            } else {
                s.join(", ")
            }
        };
        for s in &self.added {
            out.push_str(&format!(
                "  added    {:<16} {} ({})\n",
                s.id,
                s.title,
                scenarios(&s.scenarios)
            ));
        }
        for s in &self.removed {
            out.push_str(&format!(
                "  removed  {:<16} {} (was covered by: {})\n",
                s.id,
                s.title,
                scenarios(&s.scenarios)
            ));
        }
        for (old, new) in &self.changed {
            out.push_str(&format!(
                "  changed  {:<16} {} (fingerprint {} -> {}; review: {})\n",
                new.id,
                new.title,
                old.fingerprint,
                new.fingerprint,
                scenarios(&new.scenarios)
            ));
        }
        for (old, new) in &self.recovered {
            out.push_str(&format!(
                "  coverage {:<16} {} (scenarios [{}] -> [{}])\n",
                new.id,
                new.title,
                old.scenarios.join(", "),
                new.scenarios.join(", ")
            ));
        }
        lines += out.lines().count();
        if lines > REPORT_MAX_LINES {
            let kept: Vec<&str> = out.lines().take(REPORT_MAX_LINES).collect();
            out = format!(
                "{}\n  … and {} more differences (`cargo xtask runbook show` lists every step)\n",
                kept.join("\n"),
                lines - REPORT_MAX_LINES
            );
        }
        let mut review = self.scenarios_to_review();
        if review.len() > REPORT_MAX_LINES {
            let more = review.len() - REPORT_MAX_LINES;
            review.truncate(REPORT_MAX_LINES);
            review.push(format!("… and {more} more"));
        }
        if !review.is_empty() {
            out.push_str(&format!("scenarios to re-review: {}\n", review.join(", ")));
        }
        out
    }
}

/// What a scenario expects: an outcome about the runbook, never `inconclusive`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expected {
    Holds,
    Detected,
    Breaks,
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Expected::Holds => "holds",
            Expected::Detected => "detected",
            Expected::Breaks => "breaks",
        })
    }
}
