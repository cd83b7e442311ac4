//! A verify run's report and its renderings: a terminal table, JSON (versioned), JUnit XML and
//! the OpenMetrics text exposition (node_exporter's textfile collector reads it).
//! Every rendering goes through the redactor once more before it is written anywhere.

use super::{CheckResult, Outcome};
use ::node::redact::Redactor;
use serde::Serialize;
use user_io::exit_codes;

/// The JSON report's schema version; bump it when a field changes meaning or goes away.
pub const REPORT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub version: u32,
    /// RFC 3339 start time.
    pub started: String,
    pub wall_ms: u64,
    pub targets: Vec<TargetReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetReport {
    pub name: String,
    /// `local`, or the SSH destination its files and engine were read through.
    pub transport: String,
    pub results: Vec<CheckResult>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub pass: usize,
    pub fail: usize,
    pub skip: usize,
    pub error: usize,
}

impl Counts {
    fn of<'a>(results: impl IntoIterator<Item = &'a CheckResult>) -> Counts {
        let mut c = Counts::default();
        for r in results {
            match r.outcome {
                Outcome::Pass => c.pass += 1,
                Outcome::Fail => c.fail += 1,
                Outcome::Skip => c.skip += 1,
                Outcome::Error => c.error += 1,
            }
        }
        c
    }
}

/// How one node came out, by the same rule as the exit code: a failed check makes it failed;
/// else a check that could not reach it makes it unreachable; else an error makes it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeStatus {
    Passed,
    Failed,
    Unreachable,
}

/// A fleet's nodes by status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FleetCounts {
    pub nodes: usize,
    pub passed: usize,
    pub failed: usize,
    pub unreachable: usize,
}

impl TargetReport {
    pub fn counts(&self) -> Counts {
        Counts::of(&self.results)
    }

    pub fn status(&self) -> NodeStatus {
        let c = self.counts();
        if c.fail > 0 {
            NodeStatus::Failed
        } else if self.results.iter().any(|r| r.unreachable) {
            NodeStatus::Unreachable
        } else if c.error > 0 {
            NodeStatus::Failed
        } else {
            NodeStatus::Passed
        }
    }
}

impl Report {
    pub fn results(&self) -> impl Iterator<Item = &CheckResult> {
        self.targets.iter().flat_map(|t| t.results.iter())
    }

    pub fn counts(&self) -> Counts {
        Counts::of(self.results())
    }

    pub fn fleet(&self) -> FleetCounts {
        let mut f = FleetCounts {
            nodes: self.targets.len(),
            ..FleetCounts::default()
        };
        for t in &self.targets {
            match t.status() {
                NodeStatus::Passed => f.passed += 1,
                NodeStatus::Failed => f.failed += 1,
                NodeStatus::Unreachable => f.unreachable += 1,
            }
        }
        f
    }

    /// 0 all passed (skips allowed); 1 some failed or errored; 6 nothing failed but some check
    /// could not reach its target (see `exit_codes`).
    pub fn exit_code(&self) -> i32 {
        exit_code_of(self.results())
    }

    /// Grouped by node, each under a line with its status and counts; a fleet (more than one
    /// node) ends with its nodes by status.
    pub fn table(&self, redactor: &Redactor) -> String {
        let mut out = String::new();
        for t in &self.targets {
            let c = t.counts();
            let over = if t.transport == "local" {
                String::new()
            } else {
                format!(" over {}", t.transport)
            };
            out.push_str(&format!(
                "target {}{over}: {} ({} passed, {} failed, {} skipped, {} errors)\n",
                t.name,
                status_word(t.status()),
                c.pass,
                c.fail,
                c.skip,
                c.error
            ));
            let width = t.results.iter().map(|r| r.id.len()).max().unwrap_or(10);
            for r in &t.results {
                out.push_str(&format!(
                    "  {:<5} {:<width$} {:>5} ms  {}\n",
                    r.outcome.to_string(),
                    r.id,
                    r.duration_ms,
                    r.evidence
                ));
            }
        }
        let c = self.counts();
        out.push_str(&format!(
            "{} passed, {} failed, {} skipped, {} errors; {} checks on {} target(s) in {} ms\n",
            c.pass,
            c.fail,
            c.skip,
            c.error,
            self.results().count(),
            self.targets.len(),
            self.wall_ms
        ));
        if self.targets.len() > 1 {
            let f = self.fleet();
            out.push_str(&format!(
                "fleet: {} nodes: {} passed, {} failed, {} unreachable\n",
                f.nodes, f.passed, f.failed, f.unreachable
            ));
        }
        redactor.redact(&out)
    }

    pub fn json(&self, redactor: &Redactor) -> String {
        let doc = serde_json::json!({
            "version": self.version,
            "started": self.started,
            "wall_ms": self.wall_ms,
            "summary": self.counts(),
            "fleet": self.fleet(),
            "exit_code": self.exit_code(),
            "targets": self.targets.iter().map(|t| serde_json::json!({
                "name": t.name,
                "transport": t.transport,
                "status": t.status(),
                "summary": t.counts(),
                "results": t.results,
            })).collect::<Vec<_>>(),
        });
        redactor.redact(&serde_json::to_string_pretty(&doc).expect("serialisable"))
    }

    pub fn junit(&self, redactor: &Redactor) -> String {
        use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
        // Each value redacted before the serializer escapes it: a secret holding `&` or `<`
        // must be found as written, not as its XML escape.
        let clean = |text: &str| redactor.redact(text);
        let mut report = Report::new("verify");
        report.set_time(std::time::Duration::from_millis(self.wall_ms));
        for t in &self.targets {
            let mut suite = TestSuite::new(clean(&t.name));
            for r in &t.results {
                let mut status = match r.outcome {
                    Outcome::Pass => TestCaseStatus::success(),
                    Outcome::Fail => TestCaseStatus::non_success(NonSuccessKind::Failure),
                    Outcome::Error => TestCaseStatus::non_success(NonSuccessKind::Error),
                    Outcome::Skip => TestCaseStatus::skipped(),
                };
                if r.outcome != Outcome::Pass {
                    status.set_message(clean(&r.evidence));
                }
                let mut case = TestCase::new(clean(&r.id), status);
                case.set_classname(clean(&t.name))
                    .set_time(std::time::Duration::from_millis(r.duration_ms));
                suite.add_test_case(case);
            }
            report.add_test_suite(suite);
        }
        junit_text(&report, redactor)
    }

    /// The OpenMetrics text exposition (Prometheus' text format is a subset a scraper and
    /// node_exporter's textfile collector read): per check, whether it passed and which outcome
    /// it had, with `target`, `check` and `service` labels; per target, whether it was reached
    /// and its status; the run's duration, start time and exit code. Ends with `# EOF`.
    pub fn openmetrics(&self, redactor: &Redactor) -> String {
        let mut out = String::new();
        let mut family = |name: &str, unit: Option<&str>, help: &str, samples: Vec<String>| {
            out.push_str(&format!("# TYPE {name} gauge\n"));
            if let Some(unit) = unit {
                out.push_str(&format!("# UNIT {name} {unit}\n"));
            }
            out.push_str(&format!("# HELP {name} {help}\n"));
            for s in samples {
                out.push_str(&s);
                out.push('\n');
            }
        };
        let check_labels = |t: &TargetReport, r: &CheckResult| {
            format!(
                "target=\"{}\",check=\"{}\",service=\"{}\"",
                label(&t.name),
                label(&r.id),
                label(&r.service)
            )
        };
        let checks = || {
            self.targets
                .iter()
                .flat_map(|t| t.results.iter().map(move |r| (t, r)))
        };
        family(
            "rotation_verify_check_success",
            None,
            "Whether the check passed (1) or not (0): failed, errored or skipped.",
            checks()
                .map(|(t, r)| {
                    let value = u8::from(r.outcome == Outcome::Pass);
                    format!(
                        "rotation_verify_check_success{{{}}} {value}",
                        check_labels(t, r)
                    )
                })
                .collect(),
        );
        family(
            "rotation_verify_check_outcome",
            None,
            "The check's outcome: 1 on the series of its outcome, 0 on the other three.",
            checks()
                .flat_map(|(t, r)| {
                    OUTCOMES.iter().map(move |o| {
                        format!(
                            "rotation_verify_check_outcome{{{},outcome=\"{o}\"}} {}",
                            check_labels(t, r),
                            u8::from(r.outcome.to_string() == *o)
                        )
                    })
                })
                .collect(),
        );
        family(
            "rotation_verify_check_duration_seconds",
            Some("seconds"),
            "How long the check took.",
            checks()
                .map(|(t, r)| {
                    format!(
                        "rotation_verify_check_duration_seconds{{{}}} {:.3}",
                        check_labels(t, r),
                        r.duration_ms as f64 / 1000.0
                    )
                })
                .collect(),
        );
        family(
            "rotation_verify_target_reachable",
            None,
            "Whether every check reached the target (0: one could not).",
            self.targets
                .iter()
                .map(|t| {
                    let reached = u8::from(t.status() != NodeStatus::Unreachable);
                    format!(
                        "rotation_verify_target_reachable{{target=\"{}\"}} {reached}",
                        label(&t.name)
                    )
                })
                .collect(),
        );
        family(
            "rotation_verify_target_passed",
            None,
            "Whether the target passed: no check failed or errored and every one reached it.",
            self.targets
                .iter()
                .map(|t| {
                    let passed = u8::from(t.status() == NodeStatus::Passed);
                    format!(
                        "rotation_verify_target_passed{{target=\"{}\"}} {passed}",
                        label(&t.name)
                    )
                })
                .collect(),
        );
        family(
            "rotation_verify_duration_seconds",
            Some("seconds"),
            "How long the verify run took (wall).",
            vec![format!(
                "rotation_verify_duration_seconds {:.3}",
                self.wall_ms as f64 / 1000.0
            )],
        );
        let started = humantime::parse_rfc3339_weak(&self.started)
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs())
            .unwrap_or(0);
        family(
            "rotation_verify_start_timestamp_seconds",
            Some("seconds"),
            "When the verify run started, in seconds since the Unix epoch.",
            vec![format!("rotation_verify_start_timestamp_seconds {started}")],
        );
        family(
            "rotation_verify_exit_code",
            None,
            "The run's exit code, as `cargo xtask verify --help` lists them.",
            vec![format!("rotation_verify_exit_code {}", self.exit_code())],
        );
        out.push_str("# EOF\n");
        redactor.redact(&out)
    }
}

/// The four outcomes as the `outcome` label spells them.
const OUTCOMES: [&str; 4] = ["pass", "fail", "skip", "error"];

/// A label value as the exposition format escapes it: backslash, double quote and newline.
fn label(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// The exit code of a set of results: a failure first, then an unreachable target, then an
/// error; else 0 (skips allowed).
pub fn exit_code_of<'a>(results: impl IntoIterator<Item = &'a CheckResult>) -> i32 {
    let results: Vec<&CheckResult> = results.into_iter().collect();
    let c = Counts::of(results.iter().copied());
    if c.fail > 0 {
        exit_codes::FAILURES
    } else if results.iter().any(|r| r.unreachable) {
        exit_codes::UNREACHABLE
    } else if c.error > 0 {
        exit_codes::FAILURES
    } else {
        exit_codes::OK
    }
}

fn status_word(status: NodeStatus) -> &'static str {
    match status {
        NodeStatus::Passed => "passed",
        NodeStatus::Failed => "failed",
        NodeStatus::Unreachable => "unreachable",
    }
}

/// A JUnit report as text, redacted once more as a whole (its values were redacted before the
/// serializer escaped them); a report the serializer refuses is said in an XML comment.
pub fn junit_text(report: &quick_junit::Report, redactor: &Redactor) -> String {
    let xml = report
        .to_string()
        .unwrap_or_else(|e| format!("<!-- the JUnit report could not be written: {e} -->\n"));
    redactor.redact(&xml)
}

pub(crate) fn xml(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".to_string(),
            '<' => "&lt;".to_string(),
            '>' => "&gt;".to_string(),
            '"' => "&quot;".to_string(),
            '\'' => "&apos;".to_string(),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => " ".to_string(),
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(target: &str, id: &str, outcome: Outcome, unreachable: bool) -> CheckResult {
        CheckResult {
            target: target.into(),
            id: id.into(),
            service: "gateway".into(),
            outcome,
            evidence: "seen".into(),
            duration_ms: 3,
            unreachable,
        }
    }

    fn fleet() -> Report {
        let node = |name: &str, results: Vec<CheckResult>| TargetReport {
            name: name.into(),
            transport: "local".into(),
            results,
        };
        Report {
            version: REPORT_VERSION,
            started: "2026-12-03T21:00:00Z".into(),
            wall_ms: 1200,
            targets: vec![
                node(
                    "node1",
                    vec![
                        result("node1", "health.gateway", Outcome::Pass, false),
                        result("node1", "backups.encrypted", Outcome::Skip, false),
                    ],
                ),
                node(
                    "node2",
                    vec![
                        result("node2", "health.gateway", Outcome::Pass, false),
                        result("node2", "env.no-old-keys", Outcome::Fail, false),
                    ],
                ),
                node(
                    "node3",
                    vec![result("node3", "health.gateway", Outcome::Error, true)],
                ),
            ],
        }
    }

    #[test]
    fn a_fleet_table_groups_checks_by_node_and_ends_with_the_nodes_by_status() {
        let table = fleet().table(&Redactor::new());
        assert_eq!(
            table,
            "target node1: passed (1 passed, 0 failed, 1 skipped, 0 errors)\n\
             \x20 pass  health.gateway        3 ms  seen\n\
             \x20 skip  backups.encrypted     3 ms  seen\n\
             target node2: failed (1 passed, 1 failed, 0 skipped, 0 errors)\n\
             \x20 pass  health.gateway      3 ms  seen\n\
             \x20 fail  env.no-old-keys     3 ms  seen\n\
             target node3: unreachable (0 passed, 0 failed, 0 skipped, 1 errors)\n\
             \x20 error health.gateway     3 ms  seen\n\
             2 passed, 1 failed, 1 skipped, 1 errors; 5 checks on 3 target(s) in 1200 ms\n\
             fleet: 3 nodes: 1 passed, 1 failed, 1 unreachable\n"
        );
    }

    #[test]
    fn a_fleet_json_has_each_nodes_status_and_the_fleet_summary_and_junit_a_suite_per_node() {
        let report = fleet();
        let doc: serde_json::Value = serde_json::from_str(&report.json(&Redactor::new())).unwrap();
        assert_eq!(
            doc["fleet"],
            serde_json::json!({"nodes": 3, "passed": 1, "failed": 1, "unreachable": 1})
        );
        let statuses: Vec<&str> = doc["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, ["passed", "failed", "unreachable"]);
        assert_eq!(doc["exit_code"], exit_codes::FAILURES);
        // JUnit as quick-junit writes it (Jenkins' schema): one suite per node, a skipped check
        // counted as `disabled`, the evidence as the message.
        assert_eq!(
            report.junit(&Redactor::new()),
            r#"<?xml version="1.0" encoding="UTF-8"?>
<testsuites name="verify" tests="5" failures="1" errors="1" time="1.200">
    <testsuite name="node1" tests="2" disabled="1" errors="0" failures="0">
        <testcase name="health.gateway" classname="node1" time="0.003">
        </testcase>
        <testcase name="backups.encrypted" classname="node1" time="0.003">
            <skipped message="seen"/>
        </testcase>
    </testsuite>
    <testsuite name="node2" tests="2" disabled="0" errors="0" failures="1">
        <testcase name="health.gateway" classname="node2" time="0.003">
        </testcase>
        <testcase name="env.no-old-keys" classname="node2" time="0.003">
            <failure message="seen"/>
        </testcase>
    </testsuite>
    <testsuite name="node3" tests="1" disabled="0" errors="1" failures="0">
        <testcase name="health.gateway" classname="node3" time="0.003">
            <error message="seen"/>
        </testcase>
    </testsuite>
</testsuites>
"#
        );
    }

    #[test]
    fn one_node_has_no_fleet_line() {
        let mut report = fleet();
        report.targets.truncate(1);
        assert!(!report.table(&Redactor::new()).contains("fleet:"));
        assert_eq!(report.exit_code(), exit_codes::OK);
    }

    /// The gauge value of `family`'s sample with these labels (target, check, service, outcome
    /// in that order, as many as given).
    fn sample_value(
        exposition: &openmetrics_parser::MetricsExposition<
            openmetrics_parser::OpenMetricsType,
            openmetrics_parser::OpenMetricsValue,
        >,
        family: &str,
        labels: &[&str],
    ) -> f64 {
        let names = ["target", "check", "service", "outcome"];
        let family = &exposition.families[family];
        let sample = family
            .iter_samples()
            .find(|s| {
                let set = s.get_labelset().expect("labels");
                set.iter().count() == labels.len()
                    && names
                        .iter()
                        .zip(labels)
                        .all(|(n, v)| set.get_label_value(n) == Some(*v))
            })
            .unwrap_or_else(|| panic!("no sample {labels:?} in {}", family.family_name));
        match &sample.value {
            openmetrics_parser::OpenMetricsValue::Gauge(n) => n.as_f64(),
            other => panic!("not a gauge: {other:?}"),
        }
    }

    #[test]
    fn openmetrics_of_a_fleet_is_read_by_an_openmetrics_and_a_prometheus_parser() {
        let text = fleet().openmetrics(&Redactor::new());
        let parsed = openmetrics_parser::openmetrics::parse_openmetrics(&text)
            .unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        let success = "rotation_verify_check_success";
        assert_eq!(
            sample_value(&parsed, success, &["node1", "health.gateway", "gateway"]),
            1.0
        );
        assert_eq!(
            sample_value(&parsed, success, &["node2", "env.no-old-keys", "gateway"]),
            0.0
        );
        let outcome = "rotation_verify_check_outcome";
        assert_eq!(
            sample_value(
                &parsed,
                outcome,
                &["node2", "env.no-old-keys", "gateway", "fail"]
            ),
            1.0
        );
        assert_eq!(
            sample_value(
                &parsed,
                outcome,
                &["node2", "env.no-old-keys", "gateway", "pass"]
            ),
            0.0
        );
        let reachable = "rotation_verify_target_reachable";
        assert_eq!(sample_value(&parsed, reachable, &["node3"]), 0.0);
        assert_eq!(sample_value(&parsed, reachable, &["node1"]), 1.0);
        assert_eq!(
            sample_value(&parsed, "rotation_verify_target_passed", &["node2"]),
            0.0
        );
        assert_eq!(
            sample_value(&parsed, "rotation_verify_duration_seconds", &[]),
            1.2
        );
        assert_eq!(
            sample_value(&parsed, "rotation_verify_start_timestamp_seconds", &[]),
            1_796_331_600.0
        );
        assert_eq!(
            sample_value(&parsed, "rotation_verify_exit_code", &[]),
            f64::from(exit_codes::FAILURES)
        );
        assert_eq!(
            parsed.families["rotation_verify_check_duration_seconds"].unit,
            "seconds"
        );
        // node_exporter's textfile collector reads Prometheus' text format.
        let prometheus = openmetrics_parser::prometheus::parse_prometheus(&text)
            .unwrap_or_else(|e| panic!("{e:?}\n{text}"));
        assert_eq!(prometheus.families.len(), parsed.families.len());
    }

    #[test]
    fn openmetrics_of_one_check_is_exactly_this() {
        let report = Report {
            version: REPORT_VERSION,
            started: "2026-12-03T21:00:00Z".into(),
            wall_ms: 250,
            targets: vec![TargetReport {
                name: "node1".into(),
                transport: "local".into(),
                results: vec![result("node1", "health.gateway", Outcome::Pass, false)],
            }],
        };
        assert_eq!(
            report.openmetrics(&Redactor::new()),
            "# TYPE rotation_verify_check_success gauge\n\
             # HELP rotation_verify_check_success Whether the check passed (1) or not (0): failed, errored or skipped.\n\
             rotation_verify_check_success{target=\"node1\",check=\"health.gateway\",service=\"gateway\"} 1\n\
             # TYPE rotation_verify_check_outcome gauge\n\
             # HELP rotation_verify_check_outcome The check's outcome: 1 on the series of its outcome, 0 on the other three.\n\
             rotation_verify_check_outcome{target=\"node1\",check=\"health.gateway\",service=\"gateway\",outcome=\"pass\"} 1\n\
             rotation_verify_check_outcome{target=\"node1\",check=\"health.gateway\",service=\"gateway\",outcome=\"fail\"} 0\n\
             rotation_verify_check_outcome{target=\"node1\",check=\"health.gateway\",service=\"gateway\",outcome=\"skip\"} 0\n\
             rotation_verify_check_outcome{target=\"node1\",check=\"health.gateway\",service=\"gateway\",outcome=\"error\"} 0\n\
             # TYPE rotation_verify_check_duration_seconds gauge\n\
             # UNIT rotation_verify_check_duration_seconds seconds\n\
             # HELP rotation_verify_check_duration_seconds How long the check took.\n\
             rotation_verify_check_duration_seconds{target=\"node1\",check=\"health.gateway\",service=\"gateway\"} 0.003\n\
             # TYPE rotation_verify_target_reachable gauge\n\
             # HELP rotation_verify_target_reachable Whether every check reached the target (0: one could not).\n\
             rotation_verify_target_reachable{target=\"node1\"} 1\n\
             # TYPE rotation_verify_target_passed gauge\n\
             # HELP rotation_verify_target_passed Whether the target passed: no check failed or errored and every one reached it.\n\
             rotation_verify_target_passed{target=\"node1\"} 1\n\
             # TYPE rotation_verify_duration_seconds gauge\n\
             # UNIT rotation_verify_duration_seconds seconds\n\
             # HELP rotation_verify_duration_seconds How long the verify run took (wall).\n\
             rotation_verify_duration_seconds 0.250\n\
             # TYPE rotation_verify_start_timestamp_seconds gauge\n\
             # UNIT rotation_verify_start_timestamp_seconds seconds\n\
             # HELP rotation_verify_start_timestamp_seconds When the verify run started, in seconds since the Unix epoch.\n\
             rotation_verify_start_timestamp_seconds 1796331600\n\
             # TYPE rotation_verify_exit_code gauge\n\
             # HELP rotation_verify_exit_code The run's exit code, as `cargo xtask verify --help` lists them.\n\
             rotation_verify_exit_code 0\n\
             # EOF\n"
        );
    }

    proptest::proptest! {
        /// A target's name comes from the user's file: any text stays one label value.
        #[test]
        fn any_target_name_is_one_label_value_the_parser_reads_back(name in "(\\PC|\n|\\\\|\"){1,24}") {
            let mut report = fleet();
            report.targets.truncate(1);
            report.targets[0].name = name.clone();
            let text = report.openmetrics(&Redactor::new());
            let parsed = openmetrics_parser::openmetrics::parse_openmetrics(&text)
                .unwrap_or_else(|e| panic!("{e:?}\n{text}"));
            let family = &parsed.families["rotation_verify_target_reachable"];
            let sample = family.iter_samples().next().expect("one sample");
            let labels = sample.get_labelset().expect("labels");
            proptest::prop_assert_eq!(labels.get_label_value("target"), Some(name.as_str()));
        }
    }
}
