//! The reports' unit tests: exact fragments of the markdown, HTML, JUnit and SVG.

use super::{html, html_escaped_outside_code, markdown};

#[test]
fn journal_html_in_report_md_is_text_except_inside_code() {
    let md = "evidence: <script>alert(1)</script> & more\n\
              ran `echo <b>` then ``a ` <i>`` and a lone ` <u>\n\
              ```\n<script>in a fence</script>\n```\n<p>after</p>\n";
    assert_eq!(
        html_escaped_outside_code(md),
        "evidence: &lt;script&gt;alert(1)&lt;/script&gt; &amp; more\n\
         ran `echo <b>` then ``a ` <i>`` and a lone ` &lt;u&gt;\n\
         ```\n<script>in a fence</script>\n```\n&lt;p&gt;after&lt;/p&gt;\n"
    );
}
use crate::journal::{CheckRecord, FindingSummary, ScenarioRecord, StepRecord};
use crate::samples::{journal, probe_report};
use crate::Expected;
use harness::checks::Outcome;
use harness::redact::Redactor;
use std::time::SystemTime;

/// A rolled-back phase 3 whose failing check's evidence holds a secret, and a finding that
/// no scenario of the run measured.
fn rolled_back() -> crate::Journal {
    let mut s = ScenarioRecord::new(
        "phase3/as-written",
        "Phase 3",
        Expected::Detected,
        SystemTime::now(),
    );
    s.actual = Some(crate::Outcome::Detected);
    s.met = true;
    s.probe = Some(probe_report(291, 3_646));
    s.rollback_probe = Some(probe_report(606, 10_817));
    s.steps.push(StepRecord::new("phase3.step1", "ALTER USER"));
    s.rollback_steps
        .push(StepRecord::new("rollback.step2", "Restart services"));
    s.checks_after.push(CheckRecord {
        id: "postgres.auth.env.memory".into(),
        outcome: Outcome::Fail,
        evidence: "password s3cr3t-Value rejected".into(),
    });
    let mut j = journal(vec![s], 46_000);
    j.findings.push(FindingSummary {
        id: "placeholder@phase2.step1".into(),
        severity: "medium".into(),
        line: 62,
        explanation: String::new(),
        measured: Vec::new(),
    });
    j
}

#[test]
fn html_report_shows_the_rollbacks_traffic_and_timeline_beside_the_steps() {
    let page = html(&rolled_back(), &Redactor::new());
    assert_eq!(page.matches("<svg").count(), 2, "{page}");
    assert!(page.contains("During the rollback"), "{page}");
    assert!(
        page.contains("updates 394 ok / 606 delayed / 0 lost"),
        "{page}"
    );
    assert!(page.contains("longest outage 10817 ms"), "{page}");
    assert!(page.contains("rollback.step2"), "{page}");
}

#[test]
fn summary_names_a_killed_container_with_its_state_and_an_inconclusive_verdict_with_why() {
    use crate::journal::{Forensics, ScenarioRecord};
    let mut record = ScenarioRecord::new(
        "faults/x",
        "x",
        crate::Expected::Detected,
        std::time::SystemTime::UNIX_EPOCH,
    );
    record.actual = Some(crate::Outcome::Inconclusive);
    record.inconclusive = Some("the probe's clock ticked 1171 ms late".into());
    record.forensics.push(Forensics {
        service: "dagi-gateway-node1".into(),
        when: "after steps".into(),
        status: Some("exited".into()),
        running: Some(false),
        exit_code: Some(137),
        oom_killed: Some(false),
        restart_count: Some(0),
        started_at: Some("2026-12-01T10:00:00Z".into()),
        engine_error: None,
        last_logs: "gateway: listening on 0.0.0.0:9300".into(),
    });
    let text = super::summary(
        &crate::samples::journal(vec![record], 1000),
        &Redactor::new(),
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[..3],
        [
            "MISS faults/x                     expected detected actual inconclusive    0.0 s",
            "     inconclusive: the probe's clock ticked 1171 ms late",
            "     dagi-gateway-node1 after steps: exited (exit code 137, OOM-killed false, restarts 0)",
        ]
    );
}

#[test]
fn every_report_lists_the_scenarios_skipped_because_they_no_longer_apply() {
    let mut j = rolled_back();
    j.skipped.push(crate::journal::Skipped {
        scenario: "faults/phase4-step9".into(),
        why: "faults/phase4-step9: attaches a fault before phase4.step9, which the runbook has not; nearest: line 120: ### Step 3".into(),
    });
    let summary = super::summary(&j, &Redactor::new());
    assert!(summary.lines().any(|l| l == "skip faults/phase4-step9: attaches a fault before phase4.step9, which the runbook has not; nearest: line 120: ### Step 3"), "{summary}");
    let md = markdown(&j, &Redactor::new());
    assert!(
        md.contains("\n- faults/phase4-step9: attaches a fault before phase4.step9"),
        "{md}"
    );
    let page = html(&j, &Redactor::new());
    assert!(
        page.contains("<li>faults/phase4-step9: attaches a fault before phase4.step9"),
        "skipped not in the HTML"
    );
}

#[test]
fn timeline_labels_only_the_first_of_steps_that_start_together_and_keeps_every_line() {
    let mut steps: Vec<StepRecord> = ["phase1.step1", "phase1.step2", "phase4.step3"]
        .iter()
        .map(|id| StepRecord::new(id, "a step"))
        .collect();
    steps[1].started_ms = 50;
    steps[2].started_ms = 8_000;
    let mut p = probe_report(0, 0);
    p.timeline
        .insert("webhook".into(), vec![Default::default(); 200]);
    let svg = super::timeline_svg(&p, &steps, &[]);
    assert_eq!(svg.matches("<line").count(), 3, "{svg}");
    assert!(svg.contains(">phase1.step1</text>"), "{svg}");
    assert!(!svg.contains(">phase1.step2</text>"), "{svg}");
    assert!(svg.contains(">phase4.step3</text>"), "{svg}");
}

#[test]
fn timeline_has_a_time_axis_in_seconds_and_a_shaded_band_per_step() {
    let mut steps: Vec<StepRecord> = ["phase2.step1", "phase2.step2"]
        .iter()
        .map(|id| StepRecord::new(id, "a step"))
        .collect();
    (steps[0].started_ms, steps[0].ended_ms) = (0, 2_500);
    (steps[1].started_ms, steps[1].ended_ms) = (2_500, 9_000);
    let mut p = probe_report(0, 0);
    // 24 s of 50 ms buckets: ticks 5 s apart.
    p.timeline
        .insert("webhook".into(), vec![Default::default(); 480]);
    let svg = super::timeline_svg(&p, &steps, &[]);
    let ticks: Vec<&str> = svg
        .split("fill=\"#555\">")
        .skip(1)
        .map(|t| t.split('<').next().unwrap_or(""))
        .collect();
    assert_eq!(ticks, ["0 s", "5 s", "10 s", "15 s", "20 s"]);
    assert!(
        svg.contains("<title>phase2.step1 a step (0.0–2.5 s)</title>"),
        "{svg}"
    );
    assert!(
        svg.contains("<title>phase2.step2 a step (2.5–9.0 s)</title>"),
        "{svg}"
    );
}

#[test]
fn timeline_has_a_lane_per_container_red_while_down_and_telegrams_backlog_and_delay() {
    let mut p = probe_report(0, 0);
    p.timeline
        .insert("webhook".into(), vec![Default::default(); 200]);
    p.containers_down.insert(
        "router".into(),
        vec![
            crate::probe::DownSpan {
                from_ms: 1_000,
                to_ms: Some(3_000),
            },
            crate::probe::DownSpan {
                from_ms: 9_000,
                to_ms: None,
            },
        ],
    );
    p.telegram.backlog_series = vec![0, 4, 40, 12, 0];
    p.telegram.delay_series_ms = vec![30, 900, 35];
    let svg = super::timeline_svg(&p, &[], &[]);
    for key in [
        "postgres",
        "nats",
        "gateway",
        "crewai-nats-worker",
        "parser-pipeline",
    ] {
        assert!(svg.contains(&format!(">{key}</text>")), "{key}: {svg}");
    }
    assert!(
        svg.contains("<title>router not running 1.0–3.0 s</title>"),
        "{svg}"
    );
    assert!(
        svg.contains("<title>router not running from 9.0 s on</title>"),
        "{svg}"
    );
    assert_eq!(svg.matches("not running").count(), 2, "{svg}");
    assert!(svg.contains(">max 40 updates</text>"), "{svg}");
    assert!(svg.contains(">max 900 ms</text>"), "{svg}");
    assert!(
        svg.contains("<title>Telegram's backlog over time, at most 40 updates</title>"),
        "{svg}"
    );
}

#[test]
fn reports_open_with_one_sentence_naming_the_outcomes_and_the_worst_numbers() {
    let j = rolled_back();
    let md = markdown(&j, &Redactor::new());
    let line = md.lines().find(|l| l.starts_with("**")).unwrap_or("");
    assert_eq!(
        line,
        "**1 of 1 scenarios met their expected outcome (1 detected); worst during the steps: longest outage 3646 ms (phase3/as-written).**"
    );
    assert!(html(&j, &Redactor::new()).contains("<p><strong>1 of 1 scenarios met"));
}

#[test]
fn html_report_lists_every_finding_and_says_when_no_scenario_measured_it() {
    let page = html(&rolled_back(), &Redactor::new());
    assert!(page.contains("placeholder@phase2.step1"), "{page}");
    assert!(page.contains("not measured by this run"), "{page}");
    let md = markdown(&rolled_back(), &Redactor::new());
    assert!(md.contains("not measured by this run"), "{md}");
}

#[test]
fn findings_are_one_table_with_each_measurement_said_once_not_once_per_scenario() {
    let mut j = rolled_back();
    let mut second = j.scenarios[0].clone();
    second.id = "rotation/as-written".into();
    j.scenarios.push(second);
    let evidence = "secrets_backup_20261204.tar.gz holds 6 .env files with 16 secret values in clear, mode 0644";
    j.findings = vec![FindingSummary {
        id: "unencrypted-backup@phase1.step1".into(),
        severity: "high".into(),
        line: 39,
        explanation: String::new(),
        measured: vec![
            (
                "phase3/as-written".into(),
                "confirmed".into(),
                evidence.into(),
            ),
            (
                "rotation/as-written".into(),
                "confirmed".into(),
                evidence.into(),
            ),
        ],
    }];
    let md = markdown(&j, &Redactor::new());
    assert!(md.contains("| finding | severity | 1 | 2 |\n|---|---|---|---|\n| unencrypted-backup@phase1.step1 (line 39) | high | ✔ | ✔ |\n"), "{md}");
    assert!(
        md.contains("1: phase3/as-written · 2: rotation/as-written\n"),
        "{md}"
    );
    assert_eq!(md.matches(evidence).count(), 1, "{md}");
    assert!(md.contains(&format!("- unencrypted-backup@phase1.step1 confirmed by phase3/as-written, rotation/as-written: {evidence}\n")), "{md}");
    let page = html(&j, &Redactor::new());
    assert!(
        page.contains(&format!(
            "<td title=\"rotation/as-written: {evidence}\">✔</td>"
        )),
        "{page}"
    );
}

#[test]
fn html_report_is_self_contained_and_redacted() {
    let redactor = Redactor::new();
    redactor.add("DB_PASSWORD", "s3cr3t-Value");
    let page = html(&rolled_back(), &redactor);
    assert_eq!(redactor.find_leak(&page), None);
    for outside in ["<script", "<link", " src=", "url("] {
        assert!(!page.contains(outside), "the page loads {outside}");
    }
    assert!(page.contains("postgres.auth.env.memory"), "{page}");
}

#[test]
fn markdown_report_has_the_rollbacks_numbers_in_the_summary_table() {
    let md = markdown(&rolled_back(), &Redactor::new());
    assert!(md.contains("| 394 / 606 / 0, 10817 ms |"), "{md}");
}

#[test]
fn junit_has_a_case_per_scenario_and_a_missed_ones_reason_with_its_secret_redacted() {
    let secret = "p&ss<word>";
    let mut held = ScenarioRecord::new(
        "rotate/qdrant",
        "Qdrant",
        Expected::Holds,
        SystemTime::now(),
    );
    held.met = true;
    held.wall_ms = 2_500;
    let mut missed = ScenarioRecord::new(
        "rotate/postgres",
        "PostgreSQL",
        Expected::Holds,
        SystemTime::now(),
    );
    missed.wall_ms = 4_000;
    missed.error = Some(format!("step 2 printed {secret}"));
    let redactor = Redactor::new();
    redactor.add("DB_PASSWORD", secret);
    assert_eq!(
        super::junit(&journal(vec![held, missed], 7_000), &redactor),
        r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="rehearsal" tests="2" failures="1" errors="0" time="7.000">
    <testsuite name="runbook.md" tests="2" disabled="0" errors="0" failures="1">
        <testcase name="rotate/qdrant" classname="rehearsal" time="2.500">
        </testcase>
        <testcase name="rotate/postgres" classname="rehearsal" time="4.000">
            <failure message="step 2 printed [REDACTED:DB_PASSWORD]"/>
        </testcase>
    </testsuite>
</testsuites>
"#
    );
}
