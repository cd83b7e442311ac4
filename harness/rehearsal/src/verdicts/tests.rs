//! The verdict rules' unit tests: each finding kind confirmed or refuted from a recorded run.

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
fn never_terminates_is_confirmed_by_a_follow_killed_at_its_deadline_and_not_by_one_that_ended() {
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
fn trust_socket_verification_counts_the_real_logins_that_failed_and_needs_a_verification_step() {
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
    let example = step("phase3.step2", "Change the password").measured(Measurement::ExampleValue {
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
fn rollback_wrong_directory_is_confirmed_by_a_restore_elsewhere_and_refuted_in_the_nodes_directory()
{
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
    let monitor =
        step("phase4.step4", "Verify NATS").ran(run("curl -s http://localhost:8222/varz", 0, ""));
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
