//! A verify run's report and its renderings: a terminal table, JSON (versioned) and JUnit XML.
//! Every rendering goes through the redactor once more before it is written anywhere.

use super::{CheckResult, Outcome};
use crate::exit_codes;
use crate::redact::Redactor;
use serde::Serialize;

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
    pub results: Vec<CheckResult>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub pass: usize,
    pub fail: usize,
    pub skip: usize,
    pub error: usize,
}

impl Report {
    pub fn results(&self) -> impl Iterator<Item = &CheckResult> {
        self.targets.iter().flat_map(|t| t.results.iter())
    }

    pub fn counts(&self) -> Counts {
        let mut c = Counts::default();
        for r in self.results() {
            match r.outcome {
                Outcome::Pass => c.pass += 1,
                Outcome::Fail => c.fail += 1,
                Outcome::Skip => c.skip += 1,
                Outcome::Error => c.error += 1,
            }
        }
        c
    }

    /// 0 all passed (skips allowed); 1 some failed or errored; 6 nothing failed but some check
    /// could not reach its target (see `exit_codes`).
    pub fn exit_code(&self) -> i32 {
        let c = self.counts();
        if c.fail > 0 {
            exit_codes::FAILURES
        } else if self.results().any(|r| r.unreachable) {
            exit_codes::UNREACHABLE
        } else if c.error > 0 {
            exit_codes::FAILURES
        } else {
            exit_codes::OK
        }
    }

    pub fn table(&self, redactor: &Redactor) -> String {
        let mut out = String::new();
        for t in &self.targets {
            out.push_str(&format!("target {}\n", t.name));
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
        redactor.redact(&out)
    }

    pub fn json(&self, redactor: &Redactor) -> String {
        let doc = serde_json::json!({
            "version": self.version,
            "started": self.started,
            "wall_ms": self.wall_ms,
            "summary": self.counts(),
            "exit_code": self.exit_code(),
            "targets": self.targets,
        });
        redactor.redact(&serde_json::to_string_pretty(&doc).expect("serialisable"))
    }

    pub fn junit(&self, redactor: &Redactor) -> String {
        let c = self.counts();
        let mut out = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"verify\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3}\">\n",
            self.results().count(),
            c.fail,
            c.error,
            c.skip,
            self.wall_ms as f64 / 1000.0
        );
        for t in &self.targets {
            let count = |o: Outcome| t.results.iter().filter(|r| r.outcome == o).count();
            out.push_str(&format!(
                "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">\n",
                xml(&t.name),
                t.results.len(),
                count(Outcome::Fail),
                count(Outcome::Error),
                count(Outcome::Skip)
            ));
            for r in &t.results {
                out.push_str(&format!(
                    "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                    xml(&t.name),
                    xml(&r.id),
                    r.duration_ms as f64 / 1000.0
                ));
                let body = match r.outcome {
                    Outcome::Pass => None,
                    Outcome::Fail => Some(format!("<failure message=\"{}\"/>", xml(&r.evidence))),
                    Outcome::Error => Some(format!("<error message=\"{}\"/>", xml(&r.evidence))),
                    Outcome::Skip => Some(format!("<skipped message=\"{}\"/>", xml(&r.evidence))),
                };
                match body {
                    None => out.push_str("/>\n"),
                    Some(b) => out.push_str(&format!(">\n      {b}\n    </testcase>\n")),
                }
            }
            out.push_str("  </testsuite>\n");
        }
        out.push_str("</testsuites>\n");
        redactor.redact(&out)
    }
}

fn xml(text: &str) -> String {
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
