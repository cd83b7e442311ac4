//! What covers the runbook: for each inventory secret, the phase that rotates it, the scenarios
//! that rehearse it and the checks that verify it; for each step, its scenarios; for each
//! finding, the scenarios that measure it. Gaps are named, not hidden.

use super::findings::{Finding, FindingKind};
use super::shell;
use super::{Runbook, Step};
use serde::Serialize;

/// A scenario as the coverage sees it: derived from a scenario's value by
/// `rehearsal::catalogue`, or written for a fact the `scenarios` crate tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScenarioRef {
    pub id: String,
    pub summary: String,
    /// Runbook steps it rehearses or measures, in the order it runs them.
    pub steps: Vec<String>,
    /// Environment variable names of the secrets it rotates or measures.
    pub secrets: Vec<String>,
    /// Finding kinds it can confirm or refute (at the steps above, or in the notes).
    pub findings: Vec<FindingKind>,
}

impl ScenarioRef {
    /// Whether it runs or measures `step`.
    pub fn covers(&self, step: &str) -> bool {
        self.steps.iter().any(|s| s == step)
    }
}

/// A check as the coverage sees it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckRef {
    pub id: String,
    /// Environment variable names of the secrets it verifies.
    pub secrets: Vec<String>,
}

/// Inventory secret names (matched by keyword) → the variables that hold them on the node, and
/// the words a command uses when it really rotates them.
pub const SECRET_VARIABLES: &[(&str, &[&str], &[&str])] = &[
    (
        "nats",
        &[
            "NATS_PASSWORD_GATEWAY",
            "NATS_PASSWORD_ROUTER",
            "NATS_PASSWORD_WORKER",
        ],
        &["credentials", "creds", "NATS_PASSWORD"],
    ),
    ("jwt", &["JWT_SECRET"], &["JWT_SECRET"]),
    ("deepseek", &["DEEPSEEK_API_KEY"], &["DEEPSEEK_API_KEY"]),
    ("mistral", &["MISTRAL_API_KEY"], &["MISTRAL_API_KEY"]),
    ("grok", &["GROK_API_KEY"], &["GROK_API_KEY"]),
    ("cohere", &["COHERE_API_KEY"], &["COHERE_API_KEY"]),
    ("qdrant", &["QDRANT_API_KEY"], &["QDRANT_API_KEY"]),
    (
        "postgres",
        &["DB_PASSWORD"],
        &[
            "DB_PASSWORD",
            "ALTER USER",
            "ALTER ROLE",
            "POSTGRES_PASSWORD",
        ],
    ),
    (
        "neo4j",
        &["NEO4J_PASSWORD"],
        &["NEO4J_PASSWORD", "NEO4J_AUTH"],
    ),
    (
        "telegram",
        &[
            "TELEGRAM_BOT_TOKEN",
            "TELEGRAM_BOT_TOKEN_HELION",
            "TELEGRAM_BOT_TOKEN_GREENFOOD",
            "TELEGRAM_BOT_TOKEN_DRUID",
        ],
        &["TELEGRAM_BOT_TOKEN", "revoke", "BotFather"],
    ),
];

#[derive(Debug, Clone, Serialize)]
pub struct PhaseRotation {
    pub phase: u32,
    /// `commands` when a command rotates it, `prose only` when only the text names it.
    pub how: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct SecretCoverage {
    pub secret: String,
    pub line: usize,
    pub variables: Vec<String>,
    pub rotated_by: Vec<PhaseRotation>,
    pub scenarios: Vec<String>,
    pub checks: Vec<String>,
    pub gaps: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepCoverage {
    pub step: String,
    pub title: String,
    pub scenarios: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FindingCoverage {
    pub finding: String,
    pub scenarios: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Coverage {
    pub secrets: Vec<SecretCoverage>,
    pub steps: Vec<StepCoverage>,
    pub findings: Vec<FindingCoverage>,
}

/// The `SECRET_VARIABLES` keyword an inventory row names (`postgres` of `PostgreSQL Password`).
pub fn key_of(secret: &str) -> Option<&'static str> {
    let lower = secret.to_lowercase();
    SECRET_VARIABLES
        .iter()
        .map(|(k, _, _)| *k)
        .find(|k| lower.contains(k))
}

/// The variables an inventory row stands for (empty when no keyword matches).
pub fn variables_of(secret: &str) -> (&'static [&'static str], &'static [&'static str]) {
    let lower = secret.to_lowercase();
    SECRET_VARIABLES
        .iter()
        .find(|(k, _, _)| lower.contains(k))
        .map(|(_, v, w)| (*v, *w))
        .unwrap_or((&[], &[]))
}

fn step_commands(step: &Step) -> String {
    step.code
        .iter()
        .filter(|b| b.is_shell())
        .flat_map(|b| {
            let script = shell::read(&b.text, b.first_line);
            script
                .commands()
                .map(|c| c.words.join(" "))
                .chain(script.comments.iter().map(|c| c.text.clone()))
                .collect::<Vec<_>>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// For each inventory row, in order, the phases that rotate it: by their commands, or named
/// in prose only.
pub fn rotations(runbook: &Runbook) -> Vec<Vec<PhaseRotation>> {
    // Each phase's commands and what it says it rotates, lowercased once: the inventory's rows
    // are matched against them (rows × size, with rows bounded by `MAX_INVENTORY_ROWS`).
    let phase_texts: Vec<(u32, String, String)> = runbook
        .phases
        .iter()
        .map(|phase| {
            let commands: String = phase
                .steps
                .iter()
                .map(step_commands)
                .collect::<Vec<_>>()
                .join("\n");
            // What a phase says it rotates is in its title and preamble ("For API Keys
            // (DeepSeek, Mistral, etc.)"); a step's prose mentions services for other reasons,
            // and so does the preamble of a phase whose title names its secret ("JWT Secret:
            // … Telegram updates wait …").
            let title = phase.title.to_lowercase();
            let names_a_secret = SECRET_VARIABLES.iter().any(|(k, _, _)| title.contains(k));
            let text = if names_a_secret {
                title
            } else {
                format!("{title} {}", phase.preamble.to_lowercase())
            };
            (phase.number, commands.to_lowercase(), text)
        })
        .collect();
    runbook
        .inventory
        .iter()
        .map(|row| {
            let (_, words) = variables_of(&row.secret);
            let keyword = key_of(&row.secret);
            let words: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
            let mut rotated_by = Vec::new();
            for (number, commands, text) in &phase_texts {
                let by_command = words.iter().any(|w| commands.contains(w.as_str()));
                let by_prose = keyword.is_some_and(|k| text.contains(k));
                if by_command {
                    rotated_by.push(PhaseRotation {
                        phase: *number,
                        how: "commands",
                    });
                } else if by_prose {
                    rotated_by.push(PhaseRotation {
                        phase: *number,
                        how: "prose only",
                    });
                }
            }
            rotated_by
        })
        .collect()
}

pub fn coverage(
    runbook: &Runbook,
    findings: &[Finding],
    scenarios: &[ScenarioRef],
    checks: &[CheckRef],
) -> Coverage {
    let rotations = rotations(runbook);
    let secrets = runbook
        .inventory
        .iter()
        .zip(rotations)
        .map(|(row, rotated_by)| {
            let (variables, _) = variables_of(&row.secret);
            let touches = |list: &[String]| list.iter().any(|s| variables.contains(&s.as_str()));
            let scenario_ids: Vec<String> = scenarios
                .iter()
                .filter(|s| touches(&s.secrets))
                .map(|s| s.id.to_string())
                .collect();
            let check_ids: Vec<String> = checks
                .iter()
                .filter(|c| c.secrets.iter().any(|s| variables.contains(&s.as_str())))
                .map(|c| c.id.clone())
                .collect();
            let mut gaps = Vec::new();
            if variables.is_empty() {
                gaps.push("no known variable holds this secret".to_string());
            }
            if !rotated_by.iter().any(|r| r.how == "commands") {
                gaps.push(if rotated_by.is_empty() {
                    "no phase rotates it".to_string()
                } else {
                    "named in prose, but no command rotates it".to_string()
                });
            }
            if scenario_ids.is_empty() {
                gaps.push("no scenario rehearses it".to_string());
            }
            if check_ids.is_empty() {
                gaps.push("no check verifies it".to_string());
            }
            SecretCoverage {
                secret: row.secret.clone(),
                line: row.line,
                variables: variables.iter().map(|v| v.to_string()).collect(),
                rotated_by,
                scenarios: scenario_ids,
                checks: check_ids,
                gaps,
            }
        })
        .collect();

    let steps = runbook
        .steps()
        .map(|step| StepCoverage {
            step: step.id.clone(),
            title: step.title.clone(),
            scenarios: scenarios_for_step(&step.id, scenarios),
        })
        .collect();

    let findings = findings
        .iter()
        .map(|f| FindingCoverage {
            finding: f.id.clone(),
            scenarios: scenarios
                .iter()
                .filter(|s| {
                    s.findings.contains(&f.kind)
                        && (s.covers(&f.step) || runbook.step(&f.step).is_none())
                })
                .map(|s| s.id.to_string())
                .collect(),
        })
        .collect();

    Coverage {
        secrets,
        steps,
        findings,
    }
}

/// The ids of the scenarios that cover `step`.
pub fn scenarios_for_step(step: &str, scenarios: &[ScenarioRef]) -> Vec<String> {
    scenarios
        .iter()
        .filter(|s| s.covers(step))
        .map(|s| s.id.clone())
        .collect()
}
