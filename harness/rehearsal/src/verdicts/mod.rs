//! Deciding the static findings a scenario measured: a pure function from the scenario's record
//! (its steps' typed measurements and shell runs, its checks, faults and probe) and the
//! runbook's static findings to one verdict per finding, `confirmed` or `refuted`, with the
//! measurement that decided it. A finding no scenario gives a verdict on is "not measured".
//!
//! One rule per finding kind, in `RULES`; a new rule is one function and one row here (and,
//! when it needs a new measurement, one `Measurement` variant in `journal/measurement.rs`).

use super::faults::PASTED_AS_WRITTEN;
use super::journal::{
    ActionRecord, CheckRecord, FindingVerdict, Measurement, ScenarioRecord, StepRecord,
};
use super::shell::ShellRun;
use harness::checks::Outcome as CheckOutcome;
use harness::runbook::findings::{Finding, FindingKind};
use harness::runbook::Runbook;

#[cfg(test)]
mod tests;

/// A finding kind's rule: the verdicts the record gives on findings of that kind.
type Rule = fn(&ScenarioRecord) -> Vec<FindingVerdict>;

/// Every kind a scenario can measure, with its rule. `no-rollback` has none: a scenario cannot
/// measure a rollback the runbook does not have.
pub const RULES: &[(FindingKind, Rule)] = &[
    (FindingKind::NeverTerminates, never_terminates),
    (FindingKind::UnknownSubcommand, unknown_subcommand),
    (FindingKind::PsqlDefaultDatabase, psql_default_database),
    (
        FindingKind::TrustSocketVerification,
        trust_socket_verification,
    ),
    (FindingKind::SecretOnCommandLine, secret_on_command_line),
    (FindingKind::Placeholder, placeholder),
    (FindingKind::NoCommand, no_command),
    (FindingKind::RestartKeepsStaleEnv, restart_keeps_stale_env),
    (FindingKind::UnencryptedBackup, unencrypted_backup),
    (FindingKind::UnanchoredSed, unanchored_sed),
    (FindingKind::LogsStderrMissed, logs_stderr_missed),
    (
        FindingKind::RollbackWrongDirectory,
        rollback_wrong_directory,
    ),
    (
        FindingKind::BackupSameDayOverwrite,
        backup_same_day_overwrite,
    ),
    (FindingKind::ShallowVerification, shallow_verification),
    (FindingKind::SelectionNotFallback, selection_not_fallback),
    (FindingKind::RollbackFilesOnly, rollback_files_only),
    (FindingKind::BackupRetention, backup_retention),
    (FindingKind::EditMissesWiring, edit_misses_wiring),
];

/// What a scenario does, as far as deciding a finding needs to know: derived from its value
/// before anything runs (`catalogue::entry`).
pub struct Reach<'a> {
    /// The steps it runs, in order, a step run twice listed twice; the rollback's included
    /// when it rolls back.
    pub steps: Vec<String>,
    /// The runbook it rehearses (its edits applied).
    pub runbook: &'a Runbook,
    /// Its faults' names.
    pub faults: Vec<String>,
    /// The static findings of that runbook.
    pub findings: &'a [Finding],
    /// How many times it runs each step, and whether a step it runs holds an `ALTER USER` the
    /// server does not refuse: computed once, so that deciding every finding of a scenario
    /// that runs thousands of steps stays linear.
    runs: std::collections::HashMap<String, usize>,
    alters: bool,
}

impl<'a> Reach<'a> {
    pub fn new(
        steps: Vec<String>,
        runbook: &'a Runbook,
        faults: Vec<String>,
        findings: &'a [Finding],
    ) -> Reach<'a> {
        let mut runs: std::collections::HashMap<String, usize> = Default::default();
        for s in &steps {
            *runs.entry(s.clone()).or_default() += 1;
        }
        let refused: std::collections::HashSet<&str> = findings
            .iter()
            .filter(|f| f.kind == FindingKind::PsqlDefaultDatabase)
            .map(|f| f.step.as_str())
            .collect();
        let alters = runbook
            .phases
            .iter()
            .flat_map(|p| &p.steps)
            .chain(&runbook.rollback)
            .any(|s| {
                runs.contains_key(&s.id)
                    && !refused.contains(s.id.as_str())
                    && s.code.iter().any(|b| b.text.contains("ALTER USER"))
            });
        Reach {
            steps,
            runbook,
            faults,
            findings,
            runs,
            alters,
        }
    }
}

/// Whether a scenario that does `reach` can decide `finding`: it runs the finding's step (for
/// one in the notes, what makes the thing the note is about), and it does what the kind's rule
/// reads besides. The rules above decide from the record; this says, beside them, which
/// scenarios can give a record they decide on.
pub fn can_decide(finding: &Finding, reach: &Reach) -> bool {
    let runs = |step: &str| reach.runs.get(step).copied().unwrap_or(0);
    let runs_a_step_with = |kind: FindingKind| {
        reach
            .findings
            .iter()
            .any(|f| f.kind == kind && runs(&f.step) > 0)
    };
    match finding.kind {
        FindingKind::NoRollback => false,
        // The backup a second run of the step writes over the first's.
        FindingKind::BackupSameDayOverwrite => runs(&finding.step) > 1,
        // The new key must be rejected for the selection to show whether it falls back.
        FindingKind::SelectionNotFallback => {
            runs(&finding.step) > 0
                && reach
                    .faults
                    .iter()
                    .any(|f| f.contains("rejects the new key"))
        }
        // The rollback must follow an `ALTER USER` that runs: one in a step it runs that the
        // server does not refuse for a database that does not exist.
        FindingKind::RollbackFilesOnly => runs(&finding.step) > 0 && reach.alters,
        // The backup left on the node when the scenario is over.
        FindingKind::BackupRetention => runs_a_step_with(FindingKind::UnencryptedBackup),
        _ => runs(&finding.step) > 0,
    }
}

/// The verdicts `record` gives on the runbook's `findings`: one per finding and verdict
/// (repeats in one step merged), `no-command` only where the static analysis found one.
pub fn verdicts(record: &ScenarioRecord, findings: &[Finding]) -> Vec<FindingVerdict> {
    let mut out: Vec<FindingVerdict> = Vec::new();
    for (_, rule) in RULES {
        for v in rule(record) {
            merge(&mut out, v);
        }
    }
    // A step the static rule accepts without a command (a provider console's action that says
    // what it yields) is not one "without a command" because the rehearsal acted for it.
    out.retain(|v| {
        !v.finding.starts_with("no-command@")
            || findings
                .iter()
                .any(|f| f.kind == FindingKind::NoCommand && f.id == v.finding)
    });
    out
}

/// Adds `v`, merging its evidence into an earlier verdict on the same finding.
fn merge(out: &mut Vec<FindingVerdict>, v: FindingVerdict) {
    match out
        .iter_mut()
        .find(|o| o.finding == v.finding && o.verdict == v.verdict)
    {
        Some(o) => {
            if !o.evidence.contains(&v.evidence) {
                o.evidence.push_str("; ");
                o.evidence.push_str(&v.evidence);
            }
        }
        None => out.push(v),
    }
}

fn id(kind: FindingKind, step: &StepRecord) -> String {
    format!("{kind}@{}", step.id)
}

/// The steps, then the rollback's.
fn all_steps(record: &ScenarioRecord) -> impl Iterator<Item = &StepRecord> {
    record.steps.iter().chain(record.rollback_steps.iter())
}

/// Every shell run of `step` with the action that holds it.
fn shells(step: &StepRecord) -> impl Iterator<Item = (&ActionRecord, &ShellRun)> {
    step.actions
        .iter()
        .filter_map(|a| a.shell.as_ref().map(|s| (a, s)))
}

/// One verdict per shell run of every step, where `decide` gives one.
fn per_shell_run(
    record: &ScenarioRecord,
    kind: FindingKind,
    decide: impl Fn(&StepRecord, &ActionRecord, &ShellRun) -> Option<FindingVerdictText>,
) -> Vec<FindingVerdict> {
    let mut out = Vec::new();
    for step in all_steps(record) {
        for (action, shell) in shells(step) {
            if let Some(v) = decide(step, action, shell) {
                out.push(v.at(&id(kind, step)));
            }
        }
    }
    out
}

/// One verdict per measurement of every step, where `decide` gives one.
fn per_measurement(
    record: &ScenarioRecord,
    kind: FindingKind,
    decide: impl Fn(&Measurement) -> Option<FindingVerdictText>,
) -> Vec<FindingVerdict> {
    let mut out = Vec::new();
    for step in all_steps(record) {
        for m in &step.measurements {
            if let Some(v) = decide(m) {
                out.push(v.at(&id(kind, step)));
            }
        }
    }
    out
}

/// A verdict and its evidence, before it is given the finding's id.
enum FindingVerdictText {
    Confirmed(String),
    Refuted(String),
}

impl FindingVerdictText {
    fn at(self, finding: &str) -> FindingVerdict {
        match self {
            FindingVerdictText::Confirmed(e) => FindingVerdict::confirmed(finding, &e),
            FindingVerdictText::Refuted(e) => FindingVerdict::refuted(finding, &e),
        }
    }
}

use FindingVerdictText::{Confirmed, Refuted};

fn never_terminates(record: &ScenarioRecord) -> Vec<FindingVerdict> {
    per_shell_run(record, FindingKind::NeverTerminates, |_, _, shell| {
        let follows = shell.command.contains(" -f ") || shell.command.contains("--follow");
        (shell.killed_at_deadline && follows).then(|| {
            Confirmed(format!(
                "still running after {} ms; killed at the step's deadline",
                shell.duration_ms
            ))
        })
    })
}

fn unknown_subcommand(record: &ScenarioRecord) -> Vec<FindingVerdict> {
    per_shell_run(record, FindingKind::UnknownSubcommand, |_, _, shell| {
        (shell.command.contains("nats ") && shell.exit_code.is_some_and(|c| c != 0))
            .then(|| Confirmed(exit_and_first_line(shell)))
    })
}

fn psql_default_database(record: &ScenarioRecord) -> Vec<FindingVerdict> {
    per_shell_run(record, FindingKind::PsqlDefaultDatabase, |_, _, shell| {
        // `FATAL: database "daarion" does not exist`, not a `DROP … IF EXISTS` notice.
        let no_database = shell
            .output_tail
            .to_lowercase()
            .lines()
            .any(|l| l.contains("database \"") && l.contains("does not exist"));
        (shell.command.contains("psql") && no_database)
            .then(|| Confirmed(exit_and_first_line(shell)))
    })
}

fn trust_socket_verification(record: &ScenarioRecord) -> Vec<FindingVerdict> {
    let real = not_passing(&record.checks_after, "postgres.auth.current.").len();
    per_shell_run(
        record,
        FindingKind::TrustSocketVerification,
        |step, _, shell| {
            (shell.command.contains("psql") && step.title.to_lowercase().contains("verif")).then(|| {
                Confirmed(format!(
                    "the runbook's check exited {} while {real} of 5 real TCP logins with the .env passwords failed",
                    shell.exit_code.unwrap_or(-1)
                ))
            })
        },
    )
}

fn secret_on_command_line(record: &ScenarioRecord) -> Vec<FindingVerdict> {
    per_shell_run(record, FindingKind::SecretOnCommandLine, |_, _, shell| {
        (!shell.secrets_in_argv.is_empty()).then(|| {
            Confirmed(format!(
                "{} seen in a process's argv on the host while the command ran (readable by every local user through `ps`)",
                shell.secrets_in_argv.join(", ")
            ))
        })
    })
}

/// A block with a placeholder run as written, the runbook's example values where they end
/// up, an elision's services never restarted, and the provider's answer to a value pasted as
/// written.
fn placeholder(record: &ScenarioRecord) -> Vec<FindingVerdict> {
    let mut out = Vec::new();
    for step in all_steps(record) {
        let finding = id(FindingKind::Placeholder, step);
        for (action, shell) in shells(step) {
            if action.note.contains("placeholder unfilled") && shell.exit_code != Some(0) {
                out.push(FindingVerdict::confirmed(
                    &finding,
                    &format!(
                        "as written it exits {}: {}",
                        shell.exit_code.unwrap_or(-1),
                        first_line(&shell.output_tail)
                    ),
                ));
            }
        }
        for m in &step.measurements {
            match m {
                Measurement::ExampleValue { .. } => {
                    out.push(FindingVerdict::confirmed(&finding, &m.to_string()))
                }
                Measurement::Elision {
                    never_restarted, ..
                } if never_restarted.is_empty() => {
                    out.push(FindingVerdict::refuted(&finding, &m.to_string()))
                }
                Measurement::Elision { .. } => {
                    out.push(FindingVerdict::confirmed(&finding, &m.to_string()))
                }
                _ => {}
            }
        }
    }
    for fault in record.faults.iter().filter(|f| f.injected_ms.is_some()) {
        let Some((step, _)) = fault.name.split_once(&format!(" {PASTED_AS_WRITTEN}")) else {
            continue;
        };
        let finding = format!("{}@{step}", FindingKind::Placeholder);
        if fault.inject.contains(" answers 401 ") {
            out.push(FindingVerdict::confirmed(&finding, &fault.inject));
        } else if fault.inject.contains(" answers 200 ") {
            out.push(FindingVerdict::refuted(&finding, &fault.inject));
        }
    }
    out
}

/// A step without a shell block: what the rehearsal did for the operator, if anything.
fn no_command(record: &ScenarioRecord) -> Vec<FindingVerdict> {
    all_steps(record)
        .filter(|step| shells(step).next().is_none())
        .map(|step| {
            let did: Vec<&str> = step
                .actions
                .iter()
                .filter_map(|a| a.operator.as_deref())
                .collect();
            let evidence = match did.first() {
                Some(first) if !first.starts_with("no command") => format!(
                    "no command to run: the rehearsal acted for the operator ({} action(s): {first})",
                    did.len()
                ),
                _ => "no command to run: nothing was done at this step".to_string(),
            };
            FindingVerdict::confirmed(&id(FindingKind::NoCommand, step), &evidence)
        })
        .collect()
}

/// Containers that differ from their `.env` after a restart. None proves nothing when no value
/// had changed since the containers were created (the rollback restores exactly those): no
/// verdict then.
fn restart_keeps_stale_env(record: &ScenarioRecord) -> Vec<FindingVerdict> {
    all_steps(record)
        .flat_map(|step| {
            step.stale_env.iter().map(move |stale| {
                FindingVerdict::confirmed(
                    &id(FindingKind::RestartKeepsStaleEnv, step),
                    &format!("after the restart the container differs from its .env: {stale}"),
                )
            })
        })
        .collect()
}

fn unencrypted_backup(record: &ScenarioRecord) -> Vec<FindingVerdict> {
    per_measurement(record, FindingKind::UnencryptedBackup, |m| match m {
        Measurement::Backup { .. } => Some(Confirmed(m.to_string())),
        _ => None,
    })
}

/// A `sed` that left a variable other than its command says confirms; one that changed only
/// the password (or nothing) refutes; one that changed other variables too gives no verdict.
fn unanchored_sed(record: &ScenarioRecord) -> Vec<FindingVerdict> {
    per_measurement(record, FindingKind::UnanchoredSed, |m| match m {
        Measurement::SedMangled { .. } => Some(Confirmed(m.to_string())),
        Measurement::SedChanged { changed } if changed.keys().all(|k| k == "DB_PASSWORD") => {
            Some(Refuted(m.to_string()))
        }
        _ => None,
    })
}

/// An edit that left the secret as a service reads it confirms; one that changed it wherever
/// the services read it refutes.
fn edit_misses_wiring(record: &ScenarioRecord) -> Vec<FindingVerdict> {
    per_measurement(record, FindingKind::EditMissesWiring, |m| match m {
        Measurement::WiringEdited { unchanged, .. } if !unchanged.is_empty() => {
            Some(Confirmed(m.to_string()))
        }
        Measurement::WiringEdited { .. } => Some(Refuted(m.to_string())),
        _ => None,
    })
}

/// Only errors on stderr show what the pipe misses.
fn logs_stderr_missed(record: &ScenarioRecord) -> Vec<FindingVerdict> {
    per_measurement(record, FindingKind::LogsStderrMissed, |m| match m {
        Measurement::LogStreams {
            errors_on_stderr, ..
        } if *errors_on_stderr > 0 => Some(Confirmed(m.to_string())),
        // Nothing failed, but the service logs on stderr alone: the pipe would miss any error.
        Measurement::LogStreams {
            lines_on_stdout: 0,
            lines_on_stderr,
            ..
        } if *lines_on_stderr > 0 => Some(Confirmed(m.to_string())),
        _ => None,
    })
}

fn rollback_wrong_directory(record: &ScenarioRecord) -> Vec<FindingVerdict> {
    per_measurement(record, FindingKind::RollbackWrongDirectory, |m| match m {
        Measurement::RestoreDirectory {
            in_node_directory: false,
            ..
        } => Some(Confirmed(m.to_string())),
        Measurement::RestoreDirectory { .. } => Some(Refuted(m.to_string())),
        _ => None,
    })
}

fn backup_same_day_overwrite(record: &ScenarioRecord) -> Vec<FindingVerdict> {
    per_measurement(record, FindingKind::BackupSameDayOverwrite, |m| match m {
        Measurement::BackupOverwritten { rotated, .. } if rotated.is_empty() => {
            Some(Refuted(m.to_string()))
        }
        Measurement::BackupOverwritten { .. } => Some(Confirmed(m.to_string())),
        _ => None,
    })
}

/// The runbook's own checks against the promoted ones: the NATS monitoring port (it answers
/// without credentials) and the services' `/health`.
fn shallow_verification(record: &ScenarioRecord) -> Vec<FindingVerdict> {
    let mut out = Vec::new();
    for step in &record.steps {
        let monitor = shells(step).find(|(_, sh)| sh.command.contains(":8222"));
        if let Some((_, sh)) = monitor {
            let failing = not_passing(&record.checks_after, "nats.");
            if sh.exit_code == Some(0) && !failing.is_empty() {
                out.push(FindingVerdict::confirmed(
                    &id(FindingKind::ShallowVerification, step),
                    &format!(
                        "the runbook's monitoring call exited 0 while {} promoted NATS checks failed ({})",
                        failing.len(),
                        failing.join(", ")
                    ),
                ));
            }
        }
    }
    let health = record
        .steps
        .iter()
        .find(|s| shells(s).any(|(_, sh)| sh.command.contains("/health")));
    if let Some(health) = health {
        let failing = record
            .checks_after
            .iter()
            .filter(|c| c.outcome == CheckOutcome::Fail)
            .count();
        let evidence = format!(
            "the runbook's health checks {} while {failing} promoted checks failed",
            if health.ok { "passed" } else { "failed" }
        );
        let finding = id(FindingKind::ShallowVerification, health);
        // With nothing broken the health checks cannot be told from real ones: no verdict.
        if failing > 0 {
            out.push(if health.ok {
                FindingVerdict::confirmed(&finding, &evidence)
            } else {
                FindingVerdict::refuted(&finding, &evidence)
            });
        }
    }
    out
}

/// The provider rejects the new key: does the router fall back to the old one?
fn selection_not_fallback(record: &ScenarioRecord) -> Vec<FindingVerdict> {
    let rejected = record
        .faults
        .iter()
        .find(|f| f.name.contains("rejects the new key") && f.injected_ms.is_some());
    let selection = record.steps.iter().find(|s| {
        s.actions.iter().any(|a| {
            a.operator
                .as_deref()
                .is_some_and(|o| o.contains("new-or-old"))
        })
    });
    let (Some(fault), Some(step), Some(p)) = (rejected, selection, record.probe.as_ref()) else {
        return Vec::new();
    };
    let hurt = p.updates_delayed + p.updates_lost;
    let evidence = format!(
        "with the new key rejected from {} ms and the old key still valid: {} updates delayed, {} lost, {} API calls failed",
        fault.injected_ms.unwrap_or(0),
        p.updates_delayed,
        p.updates_lost,
        p.flows.get("api").map(|f| f.failed).unwrap_or(0)
    );
    let finding = id(FindingKind::SelectionNotFallback, step);
    vec![if hurt > 0 {
        FindingVerdict::confirmed(&finding, &format!("{evidence}: the router never fell back"))
    } else {
        FindingVerdict::refuted(&finding, &evidence)
    }]
}

/// The rollback restores files; did the server's password come back with them?
fn rollback_files_only(record: &ScenarioRecord) -> Vec<FindingVerdict> {
    let altered = record.steps.iter().any(|s| {
        shells(s).any(|(_, sh)| sh.command.contains("ALTER USER") && sh.exit_code == Some(0))
    });
    let (true, Some(first)) = (altered, record.rollback_steps.first()) else {
        return Vec::new();
    };
    let rejected = not_passing(&record.checks_after_rollback, "postgres.auth.current.").len();
    let finding = id(FindingKind::RollbackFilesOnly, first);
    vec![if rejected > 0 {
        FindingVerdict::confirmed(&finding, &format!("the ALTER had run; after the rollback {rejected} of 5 services' logins with the restored .env passwords are rejected: the server kept the rotated password"))
    } else {
        FindingVerdict::refuted(
            &finding,
            "the ALTER had run, and after the rollback every service's login with the restored .env password works",
        )
    }]
}

/// Retention: what the runbook leaves on the node when the scenario is over.
fn backup_retention(record: &ScenarioRecord) -> Vec<FindingVerdict> {
    record
        .measurements
        .iter()
        .filter(|m| matches!(m, Measurement::BackupLeftOnNode { .. }))
        .map(|m| {
            FindingVerdict::confirmed(
                &format!("{}@notes", FindingKind::BackupRetention),
                &m.to_string(),
            )
        })
        .collect()
}

/// The ids of the checks under `prefix` that did not pass.
fn not_passing<'a>(checks: &'a [CheckRecord], prefix: &str) -> Vec<&'a str> {
    checks
        .iter()
        .filter(|c| c.id.starts_with(prefix) && c.outcome != CheckOutcome::Pass)
        .map(|c| c.id.as_str())
        .collect()
}

/// `exit 2: <first line of output>`.
fn exit_and_first_line(shell: &ShellRun) -> String {
    format!(
        "exit {}: {}",
        shell.exit_code.unwrap_or(-1),
        first_line(&shell.output_tail)
    )
}

fn first_line(text: &str) -> &str {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
}
