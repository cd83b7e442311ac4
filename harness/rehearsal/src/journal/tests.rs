//! The journal's unit tests: its schema documented field by field, versions read, the record's rules.

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
    let doc: String = include_str!("mod.rs")
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
