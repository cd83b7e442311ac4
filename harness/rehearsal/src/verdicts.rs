//! Deciding the static findings a scenario measured: a pure function from the scenario's record
//! (its steps' typed measurements and shell runs, its checks, faults and probe) and the
//! runbook's static findings to one verdict per finding, `confirmed` or `refuted`, with the
//! measurement that decided it. A finding no scenario gives a verdict on is "not measured".
//!
//! One rule per finding kind, in `RULES`; a new rule is one function and one row here (and,
//! when it needs a new measurement, one `Measurement` variant in `journal.rs`).

use super::faults::PASTED_AS_WRITTEN;
use super::journal::{
    ActionRecord, CheckRecord, FindingVerdict, Measurement, ScenarioRecord, StepRecord,
};
use super::shell::ShellRun;
use harness::checks::Outcome as CheckOutcome;
use harness::runbook::findings::{Finding, FindingKind};
use harness::runbook::Runbook;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::FaultRecord;
    use crate::Expected;
    use std::time::SystemTime;

    fn record(steps: Vec<StepRecord>) -> ScenarioRecord {
        let mut r = ScenarioRecord::new("s", "s", Expected::Holds, SystemTime::UNIX_EPOCH);
        r.steps = steps;
        r
    }

    fn step(id: &str, title: &str) -> StepRecord {
        StepRecord::new(id, title)
    }

    fn run(command: &str, exit_code: i32, output: &str) -> ShellRun {
        ShellRun {
            command: command.into(),
            ran: command.into(),
            exit_code: Some(exit_code),
            killed_at_deadline: false,
            duration_ms: 1200,
            output_tail: output.into(),
            secrets_in_argv: Vec::new(),
            compose: Vec::new(),
        }
    }

    trait Build {
        fn ran(self, run: ShellRun) -> Self;
        fn ran_noted(self, run: ShellRun, note: &str) -> Self;
        fn measured(self, m: Measurement) -> Self;
        fn operator(self, note: &str) -> Self;
    }

    impl Build for StepRecord {
        fn ran(self, run: ShellRun) -> Self {
            self.ran_noted(run, "")
        }
        fn ran_noted(mut self, run: ShellRun, note: &str) -> Self {
            self.actions.push(ActionRecord::shell(run, note));
            self
        }
        fn measured(mut self, m: Measurement) -> Self {
            self.measurements.push(m);
            self
        }
        fn operator(mut self, note: &str) -> Self {
            self.actions.push(ActionRecord::operator(note));
            self
        }
    }

    fn check(id: &str, outcome: CheckOutcome) -> CheckRecord {
        CheckRecord {
            id: id.into(),
            outcome,
            evidence: String::new(),
        }
    }

    fn confirmed(finding: &str, evidence: &str) -> Vec<FindingVerdict> {
        vec![FindingVerdict::confirmed(finding, evidence)]
    }

    fn refuted(finding: &str, evidence: &str) -> Vec<FindingVerdict> {
        vec![FindingVerdict::refuted(finding, evidence)]
    }

    const NONE: Vec<FindingVerdict> = Vec::new();

    #[test]
    fn every_finding_kind_but_no_rollback_has_a_rule() {
        let without: Vec<FindingKind> = FindingKind::ALL
            .into_iter()
            .filter(|k| !RULES.iter().any(|(r, _)| r == k))
            .collect();
        assert_eq!(without, vec![FindingKind::NoRollback]);
    }

    #[test]
    fn never_terminates_is_confirmed_by_a_follow_killed_at_its_deadline_and_not_by_one_that_ended()
    {
        let mut follow = run("docker logs -f dagi-router-node1", -1, "");
        follow.killed_at_deadline = true;
        follow.exit_code = None;
        let r = record(vec![step("phase5.step2", "Monitor").ran(follow)]);
        assert_eq!(
            verdicts(&r, &[]),
            confirmed(
                "never-terminates@phase5.step2",
                "still running after 1200 ms; killed at the step's deadline"
            )
        );
        let ended = run("docker logs -f dagi-router-node1", 0, "");
        let r = record(vec![step("phase5.step2", "Monitor").ran(ended)]);
        assert_eq!(verdicts(&r, &[]), NONE);
    }

    #[test]
    fn unknown_subcommand_is_confirmed_by_a_nats_call_that_fails_and_not_by_one_that_works() {
        let failed = run(
            "nats server reload",
            1,
            "\nnats: error: unknown command \"reload\"\nmore",
        );
        let r = record(vec![step("phase4.step3", "Reload NATS").ran(failed)]);
        assert_eq!(
            verdicts(&r, &[]),
            confirmed(
                "unknown-subcommand@phase4.step3",
                "exit 1: nats: error: unknown command \"reload\""
            )
        );
        let worked = run("nats server check connection", 0, "OK");
        let r = record(vec![step("phase4.step3", "Reload NATS").ran(worked)]);
        assert_eq!(verdicts(&r, &[]), NONE);
    }

    #[test]
    fn psql_default_database_is_confirmed_by_the_servers_no_such_database_and_not_otherwise() {
        let fatal = run(
            "psql -U daarion -c 'SELECT 1'",
            2,
            "psql: error: FATAL:  database \"daarion\" does not exist",
        );
        let r = record(vec![step("phase3.step2", "Change the password").ran(fatal)]);
        assert_eq!(
            verdicts(&r, &[]),
            confirmed(
                "psql-default-database@phase3.step2",
                "exit 2: psql: error: FATAL:  database \"daarion\" does not exist"
            )
        );
        let ok = run("psql -U daarion -d daarion -c 'SELECT 1'", 0, "1");
        let r = record(vec![step("phase3.step2", "Change the password").ran(ok)]);
        assert_eq!(verdicts(&r, &[]), NONE);
    }

    #[test]
    fn trust_socket_verification_counts_the_real_logins_that_failed_and_needs_a_verification_step()
    {
        let socket = || {
            run(
                "docker exec dagi-postgres psql -U daarion -c 'SELECT 1'",
                0,
                "1",
            )
        };
        let mut r = record(vec![
            step("phase3.step5", "Verify the new password").ran(socket())
        ]);
        r.checks_after = vec![
            check("postgres.auth.current.gateway", CheckOutcome::Fail),
            check("postgres.auth.current.router", CheckOutcome::Fail),
            check("postgres.auth.current.memory", CheckOutcome::Pass),
            check("nats.auth.current.gateway", CheckOutcome::Fail),
        ];
        assert_eq!(
            verdicts(&r, &[]),
            confirmed(
                "trust-socket-verification@phase3.step5",
                "the runbook's check exited 0 while 2 of 5 real TCP logins with the .env passwords failed"
            )
        );
        let r = record(vec![
            step("phase3.step2", "Change the password").ran(socket())
        ]);
        assert_eq!(verdicts(&r, &[]), NONE);
    }

    #[test]
    fn secret_on_command_line_names_the_secret_seen_in_argv_never_its_value() {
        let mut seen = run("psql -c \"ALTER USER daarion PASSWORD '...'\"", 0, "");
        seen.secrets_in_argv = vec!["DB_PASSWORD".into()];
        let r = record(vec![step("phase3.step2", "Change the password").ran(seen)]);
        assert_eq!(
            verdicts(&r, &[]),
            confirmed(
                "secret-on-command-line@phase3.step2",
                "DB_PASSWORD seen in a process's argv on the host while the command ran (readable by every local user through `ps`)"
            )
        );
        let clean = run("psql -f /dev/stdin", 0, "");
        let r = record(vec![step("phase3.step2", "Change the password").ran(clean)]);
        assert_eq!(verdicts(&r, &[]), NONE);
    }

    #[test]
    fn placeholder_is_confirmed_by_a_block_that_fails_as_written_and_refuted_by_an_elision_that_leaves_none_out(
    ) {
        let r = record(vec![step("phase1.step1", "Back up").ran_noted(
            run(
                "tar -czf secrets_backup_YYYYMMDD.tar.gz",
                2,
                "tar: no such file",
            ),
            "as written (placeholder unfilled)",
        )]);
        assert_eq!(
            verdicts(&r, &[]),
            confirmed(
                "placeholder@phase1.step1",
                "as written it exits 2: tar: no such file"
            )
        );
        let elided = |never: &[&str]| {
            step("phase3.step4", "Restart").measured(Measurement::Elision {
                restarted: vec!["dagi-gateway-node1".into()],
                never_restarted: never.iter().map(|s| s.to_string()).collect(),
            })
        };
        assert_eq!(
            verdicts(&record(vec![elided(&["dagi-router-node1"])]), &[]),
            confirmed(
                "placeholder@phase3.step4",
                "the block restarts 1 of the 2 services that use DB_PASSWORD; never restarted: dagi-router-node1"
            )
        );
        assert_eq!(
            verdicts(&record(vec![elided(&[])]), &[]),
            refuted(
                "placeholder@phase3.step4",
                "the block restarts 1 of the 1 services that use DB_PASSWORD; never restarted: none"
            )
        );
        let example =
            step("phase3.step2", "Change the password").measured(Measurement::ExampleValue {
                name: "DB_PASSWORD".into(),
                on_server: true,
                env_files: 0,
            });
        assert_eq!(
            verdicts(&record(vec![example]), &[]),
            confirmed(
                "placeholder@phase3.step2",
                "the server's password is now the value written in the runbook (DB_PASSWORD), as published"
            )
        );
    }

    #[test]
    fn placeholder_pasted_as_written_is_confirmed_by_the_providers_401_and_refuted_by_its_200() {
        let pasted = |answer: &str| {
            let mut r = record(Vec::new());
            let mut fault = FaultRecord::new(
                &format!("phase2.step1 {PASTED_AS_WRITTEN}: DEEPSEEK_API_KEY"),
                "phase2.step1",
            );
            fault.injected_ms = Some(10);
            fault.inject = format!("the provider answers {answer} to the pasted value");
            r.faults.push(fault);
            r
        };
        assert_eq!(
            verdicts(&pasted("401"), &[]),
            confirmed(
                "placeholder@phase2.step1",
                "the provider answers 401 to the pasted value"
            )
        );
        assert_eq!(
            verdicts(&pasted("200"), &[]),
            refuted(
                "placeholder@phase2.step1",
                "the provider answers 200 to the pasted value"
            )
        );
    }

    fn static_finding(kind: FindingKind, step: &str) -> Finding {
        Finding {
            id: format!("{kind}@{step}"),
            kind,
            severity: kind.severity(),
            step: step.into(),
            line: 1,
            excerpt: String::new(),
            explanation: String::new(),
        }
    }

    #[test]
    fn no_command_is_confirmed_only_where_the_static_analysis_found_a_step_without_one() {
        let console =
            || step("phase2.step1", "Create the key").operator("created a key at the provider");
        let found = [static_finding(FindingKind::NoCommand, "phase2.step1")];
        assert_eq!(
            verdicts(&record(vec![console()]), &found),
            confirmed(
                "no-command@phase2.step1",
                "no command to run: the rehearsal acted for the operator (1 action(s): created a key at the provider)"
            )
        );
        assert_eq!(verdicts(&record(vec![console()]), &[]), NONE);
        let with_shell = step("phase2.step1", "Create the key").ran(run("true", 0, ""));
        assert_eq!(verdicts(&record(vec![with_shell]), &found), NONE);
    }

    #[test]
    fn restart_keeps_stale_env_merges_every_stale_container_of_a_step_into_one_verdict() {
        let mut restarted = step("phase2.step3", "Restart the router");
        restarted.env_compared = true;
        restarted.stale_env = vec![
            "dagi-router-node1: DEEPSEEK_API_KEY".into(),
            "dagi-gateway-node1: JWT_SECRET".into(),
        ];
        assert_eq!(
            verdicts(&record(vec![restarted]), &[]),
            confirmed(
                "restart-keeps-stale-env@phase2.step3",
                "after the restart the container differs from its .env: dagi-router-node1: DEEPSEEK_API_KEY; after the restart the container differs from its .env: dagi-gateway-node1: JWT_SECRET"
            )
        );
        let mut fresh = step("phase2.step3", "Restart the router");
        fresh.env_compared = true;
        assert_eq!(verdicts(&record(vec![fresh]), &[]), NONE);
    }

    #[test]
    fn unencrypted_backup_is_confirmed_by_the_backup_read_without_a_passphrase() {
        let backed_up = step("phase1.step1", "Back up").measured(Measurement::Backup {
            backup: "secrets_backup_20261204.tar.gz".into(),
            env_files: 6,
            secret_values: 9,
            mode: 0o644,
        });
        assert_eq!(
            verdicts(&record(vec![backed_up]), &[]),
            confirmed(
                "unencrypted-backup@phase1.step1",
                "secrets_backup_20261204.tar.gz holds 6 .env files with 9 secret values in clear, mode 0644"
            )
        );
        assert_eq!(
            verdicts(&record(vec![step("phase1.step1", "Back up")]), &[]),
            NONE
        );
    }

    #[test]
    fn unanchored_sed_is_confirmed_by_a_mangled_value_refuted_by_a_clean_rewrite_and_undecided_by_a_wider_one(
    ) {
        let sed = |m: Measurement| step("phase3.step3", "Update .env").measured(m);
        assert_eq!(
            verdicts(
                &record(vec![sed(Measurement::SedMangled {
                    name: "DB_PASSWORD".into(),
                    wrong: 5,
                    files: 5,
                    rewritten: true,
                })]),
                &[]
            ),
            confirmed(
                "unanchored-sed@phase3.step3",
                "DB_PASSWORD differs from the command's value in 5 of 5 files: sed rewrote it, but not to the value its command gives"
            )
        );
        let changed = |vars: &[(&str, usize)]| Measurement::SedChanged {
            changed: vars.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
        };
        assert_eq!(
            verdicts(&record(vec![sed(changed(&[("DB_PASSWORD", 5)]))]), &[]),
            refuted(
                "unanchored-sed@phase3.step3",
                "it changed DB_PASSWORD in 5 file(s); no other variable was touched on this node (no collateral rewrite)"
            )
        );
        assert_eq!(
            verdicts(
                &record(vec![sed(changed(&[("DB_PASSWORD", 5), ("JWT_SECRET", 1)]))]),
                &[]
            ),
            NONE
        );
    }

    #[test]
    fn logs_stderr_missed_is_confirmed_by_errors_or_a_whole_log_the_pipe_never_sees() {
        let logs = |stderr: usize, lines_out: usize, lines_err: usize| {
            step("phase5.step1", "Check logs").measured(Measurement::LogStreams {
                service: "dagi-router-node1".into(),
                errors_on_stdout: 0,
                errors_on_stderr: stderr,
                lines_on_stdout: lines_out,
                lines_on_stderr: lines_err,
            })
        };
        assert_eq!(
            verdicts(&record(vec![logs(3, 5, 10)]), &[]),
            confirmed(
                "logs-stderr-missed@phase5.step1",
                "dagi-router-node1: 0 lines with \"error\" on stdout, which the pipe carries; 3 on stderr, which it never sees"
            )
        );
        assert_eq!(
            verdicts(&record(vec![logs(0, 0, 12)]), &[]),
            confirmed(
                "logs-stderr-missed@phase5.step1",
                "dagi-router-node1: 0 lines with \"error\" on stdout, which the pipe carries; 0 on stderr, which it never sees; its whole log (12 lines) is on stderr: the pipe sees none of it, an error included"
            )
        );
        assert_eq!(verdicts(&record(vec![logs(0, 4, 12)]), &[]), NONE);
        assert_eq!(verdicts(&record(vec![logs(0, 0, 0)]), &[]), NONE);
    }

    #[test]
    fn rollback_wrong_directory_is_confirmed_by_a_restore_elsewhere_and_refuted_in_the_nodes_directory(
    ) {
        let restore = |in_node_directory: bool| {
            let mut r = record(Vec::new());
            r.rollback_steps =
                vec![
                    step("rollback.step1", "Restore").measured(Measurement::RestoreDirectory {
                        in_node_directory,
                        directory: "/tmp/operator".into(),
                        exit_code: Some(0),
                    }),
                ];
            r
        };
        assert_eq!(
            verdicts(&restore(false), &[]),
            confirmed(
                "rollback-wrong-directory@rollback.step1",
                "`tar -x` ran in /tmp/operator, not the node's directory, exit 0"
            )
        );
        assert_eq!(
            verdicts(&restore(true), &[]),
            refuted(
                "rollback-wrong-directory@rollback.step1",
                "`tar -x` ran in the node's directory (the shell was still there from an earlier `cd`), exit 0"
            )
        );
    }

    #[test]
    fn backup_same_day_overwrite_is_confirmed_when_the_rewrite_holds_rotated_values() {
        let overwritten = |rotated: &[&str]| {
            record(vec![step("phase3.step1", "Back up again").measured(
                Measurement::BackupOverwritten {
                    backup: "secrets_backup_20261204.tar.gz".into(),
                    rotated: rotated.iter().map(|s| s.to_string()).collect(),
                },
            )])
        };
        assert_eq!(
            verdicts(&overwritten(&["DEEPSEEK_API_KEY"]), &[]),
            confirmed(
                "backup-same-day-overwrite@phase3.step1",
                "secrets_backup_20261204.tar.gz was written again the same day and now holds rotated values of DEEPSEEK_API_KEY; the pre-rotation values of those are in no backup"
            )
        );
        assert_eq!(
            verdicts(&overwritten(&[]), &[]),
            refuted(
                "backup-same-day-overwrite@phase3.step1",
                "secrets_backup_20261204.tar.gz was written again; it still holds only pre-rotation values"
            )
        );
    }

    #[test]
    fn shallow_verification_is_confirmed_by_health_checks_that_pass_while_promoted_checks_fail() {
        let health = |exit: i32| {
            let mut s = step("phase5.step1", "Verify").ran(run(
                "curl -f http://localhost:9300/health",
                exit,
                "",
            ));
            s.ok = exit == 0;
            s
        };
        let broken = |s: StepRecord| {
            let mut r = record(vec![s]);
            r.checks_after = vec![check("gateway.jwt.current", CheckOutcome::Fail)];
            r
        };
        assert_eq!(
            verdicts(&broken(health(0)), &[]),
            confirmed(
                "shallow-verification@phase5.step1",
                "the runbook's health checks passed while 1 promoted checks failed"
            )
        );
        assert_eq!(
            verdicts(&broken(health(22)), &[]),
            refuted(
                "shallow-verification@phase5.step1",
                "the runbook's health checks failed while 1 promoted checks failed"
            )
        );
        assert_eq!(verdicts(&record(vec![health(0)]), &[]), NONE);
        let monitor = step("phase4.step4", "Verify NATS").ran(run(
            "curl -s http://localhost:8222/varz",
            0,
            "",
        ));
        let mut r = record(vec![monitor]);
        r.checks_after = vec![check("nats.auth.current.worker", CheckOutcome::Fail)];
        assert_eq!(
            verdicts(&r, &[]),
            confirmed(
                "shallow-verification@phase4.step4",
                "the runbook's monitoring call exited 0 while 1 promoted NATS checks failed (nats.auth.current.worker)"
            )
        );
    }

    #[test]
    fn selection_not_fallback_is_confirmed_when_traffic_suffered_with_the_new_key_rejected() {
        let rejected = |delayed: u64| {
            let mut r = record(vec![step("phase2.step2", "Set the key")
                .operator("set DEEPSEEK_API_KEY (new-or-old selection)")]);
            let mut fault = FaultRecord::new("deepseek rejects the new key", "phase2.step2");
            fault.injected_ms = Some(1500);
            r.faults.push(fault);
            r.probe = Some(crate::probe::ProbeReport {
                updates_delayed: delayed,
                ..Default::default()
            });
            r
        };
        assert_eq!(
            verdicts(&rejected(4), &[]),
            confirmed(
                "selection-not-fallback@phase2.step2",
                "with the new key rejected from 1500 ms and the old key still valid: 4 updates delayed, 0 lost, 0 API calls failed: the router never fell back"
            )
        );
        assert_eq!(
            verdicts(&rejected(0), &[]),
            refuted(
                "selection-not-fallback@phase2.step2",
                "with the new key rejected from 1500 ms and the old key still valid: 0 updates delayed, 0 lost, 0 API calls failed"
            )
        );
    }

    #[test]
    fn rollback_files_only_is_confirmed_when_the_restored_passwords_are_rejected_after_an_alter() {
        let rolled_back = |rejected: bool| {
            let mut r = record(vec![step("phase3.step2", "Change the password").ran(run(
                "psql -c \"ALTER USER daarion PASSWORD :'pw'\"",
                0,
                "ALTER ROLE",
            ))]);
            r.rollback_steps = vec![step("rollback.step1", "Restore")];
            r.checks_after_rollback = vec![check(
                "postgres.auth.current.gateway",
                if rejected {
                    CheckOutcome::Fail
                } else {
                    CheckOutcome::Pass
                },
            )];
            r
        };
        assert_eq!(
            verdicts(&rolled_back(true), &[]),
            confirmed(
                "rollback-files-only@rollback.step1",
                "the ALTER had run; after the rollback 1 of 5 services' logins with the restored .env passwords are rejected: the server kept the rotated password"
            )
        );
        assert_eq!(
            verdicts(&rolled_back(false), &[]),
            refuted(
                "rollback-files-only@rollback.step1",
                "the ALTER had run, and after the rollback every service's login with the restored .env password works"
            )
        );
    }

    #[test]
    fn backup_retention_is_confirmed_by_a_backup_still_on_the_node_when_the_scenario_ends() {
        let mut r = record(Vec::new());
        assert_eq!(verdicts(&r, &[]), NONE);
        r.measurements.push(Measurement::BackupLeftOnNode {
            backup: "secrets_backup_20261204.tar.gz".into(),
            mode: 0o644,
        });
        assert_eq!(
            verdicts(&r, &[]),
            confirmed(
                "backup-retention@notes",
                "after the scenario secrets_backup_20261204.tar.gz (mode 0644, unencrypted) is still on the node; no step of the runbook removes or expires a backup"
            )
        );
    }
}
