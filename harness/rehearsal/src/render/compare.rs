//! Two rehearsals side by side: for each secret (and the whole rotation, and the rollback), what
//! the scenario that rotates it measured under runbook A and under runbook B. The table a
//! reviewer reads before approving a runbook change (`cargo xtask report compare A B`).

use crate::journal::Outcome as RunOutcome;
use crate::journal::ScenarioRecord;
use harness::checks::Outcome;
use serde::Serialize;

/// What one scenario measured, as the comparison shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Side {
    pub scenario: String,
    /// `None` when the scenario errored before a verdict.
    pub outcome: Option<RunOutcome>,
    pub updates_ok: u64,
    pub updates_delayed: u64,
    pub updates_lost: u64,
    pub api_failed: u64,
    pub api_sent: u64,
    pub jetstream_failed: u64,
    pub jetstream_sent: u64,
    /// Longest outage of the webhook, API and JetStream flows, in ms.
    pub outage_ms: [u64; 3],
    /// Checks that did not pass after the steps.
    pub checks_failing: Vec<String>,
    /// Findings the scenario confirmed.
    pub findings_confirmed: usize,
}

impl Side {
    /// The measurements of `record` (its steps' probe, not its rollback's).
    pub fn of(record: &ScenarioRecord) -> Side {
        let probe = record.probe.as_ref();
        let flow = |name: &str| probe.and_then(|p| p.flows.get(name));
        let outage = |name: &str| flow(name).map_or(0, |f| f.longest_outage_ms);
        Side {
            scenario: record.id.clone(),
            outcome: record.actual,
            updates_ok: probe.map_or(0, |p| p.updates_ok),
            updates_delayed: probe.map_or(0, |p| p.updates_delayed),
            updates_lost: probe.map_or(0, |p| p.updates_lost),
            api_failed: flow("api").map_or(0, |f| f.failed),
            api_sent: flow("api").map_or(0, |f| f.sent),
            jetstream_failed: flow("jetstream").map_or(0, |f| f.failed),
            jetstream_sent: flow("jetstream").map_or(0, |f| f.sent),
            outage_ms: [outage("webhook"), outage("api"), outage("jetstream")],
            checks_failing: record
                .checks_after
                .iter()
                .filter(|c| !matches!(c.outcome, Outcome::Pass | Outcome::Skip))
                .map(|c| c.id.clone())
                .collect(),
            findings_confirmed: record
                .findings
                .iter()
                .filter(|f| f.verdict == crate::journal::Verdict::Confirmed)
                .count(),
        }
    }
}

/// One line of the comparison: a secret (or the whole rotation, or the rollback) and the
/// scenario of each runbook that rehearses it, when it has one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Row {
    pub what: String,
    pub a: Option<Side>,
    pub b: Option<Side>,
}

/// What to compare: a label and, per runbook, the id of the scenario that rehearses it.
#[derive(Debug, Clone)]
pub struct Pairing {
    pub what: String,
    pub a: Option<String>,
    pub b: Option<String>,
}

/// The rows for `pairings`, read from the scenarios of run `a` and of run `b` (their journals'
/// `scenarios`); a scenario a run does not hold is `None` there (not rehearsed by that run).
pub fn compare(a: &[ScenarioRecord], b: &[ScenarioRecord], pairings: &[Pairing]) -> Vec<Row> {
    let find = |run: &[ScenarioRecord], id: &Option<String>| {
        id.as_ref()
            .and_then(|id| run.iter().find(|s| &s.id == id))
            .map(Side::of)
    };
    pairings
        .iter()
        .map(|p| Row {
            what: p.what.clone(),
            a: find(a, &p.a),
            b: find(b, &p.b),
        })
        .collect()
}

fn outcome(o: Option<RunOutcome>) -> String {
    o.map_or_else(|| "error".to_string(), |o| o.to_string())
}

const HEADINGS: [&str; 10] = [
    "What",
    "Runbook",
    "Scenario",
    "Outcome",
    "Updates ok / delayed / lost",
    "API failed",
    "JetStream failed",
    "Longest outage webhook / API / JetStream",
    "Checks failing after",
    "Findings confirmed",
];

/// One side's cells after "What" and "Runbook": the scenario's id, then its measurements
/// (a scenario the run does not hold is "not rehearsed", the rest empty).
fn cells(side: &Option<Side>) -> [String; 8] {
    match side {
        None => [
            "–".into(),
            "not rehearsed".into(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        ],
        Some(s) => [
            s.scenario.clone(),
            outcome(s.outcome),
            format!(
                "{} / {} / {}",
                s.updates_ok, s.updates_delayed, s.updates_lost
            ),
            format!("{} of {}", s.api_failed, s.api_sent),
            format!("{} of {}", s.jetstream_failed, s.jetstream_sent),
            format!(
                "{:.1} / {:.1} / {:.1} s",
                s.outage_ms[0] as f64 / 1000.0,
                s.outage_ms[1] as f64 / 1000.0,
                s.outage_ms[2] as f64 / 1000.0
            ),
            if s.checks_failing.is_empty() {
                "none".to_string()
            } else {
                s.checks_failing.join(", ")
            },
            s.findings_confirmed.to_string(),
        ],
    }
}

/// Each row as two lines of cells, runbook A then runbook B.
fn lines<'a>(
    a_name: &'a str,
    b_name: &'a str,
    rows: &'a [Row],
) -> impl Iterator<Item = Vec<String>> + 'a {
    rows.iter().flat_map(move |row| {
        [(row.what.as_str(), a_name, &row.a), ("", b_name, &row.b)].map(|(what, name, side)| {
            let mut line = vec![what.to_string(), name.to_string()];
            line.extend(cells(side));
            line
        })
    })
}

/// The comparison as a Markdown table: two lines per row, runbook A then runbook B.
pub fn markdown(a_name: &str, b_name: &str, rows: &[Row]) -> String {
    let mut out = format!("| {} |\n|{}\n", HEADINGS.join(" | "), "---|".repeat(10));
    for mut line in lines(a_name, b_name, rows) {
        if line[2] != "–" {
            line[2] = format!("`{}`", line[2]);
        }
        let text = format!("| {} |", line.join(" | "));
        // An empty cell is "| |", as a reader would type it.
        out.push_str(&text.replace("|  |", "| |").replace("|  |", "| |"));
        out.push('\n');
    }
    out
}

/// The comparison as an HTML section (for the top of the HTML report of run B): the same
/// table, a runbook's line red where its scenario lost updates or failed calls.
pub fn html(a_name: &str, b_name: &str, rows: &[Row]) -> String {
    let esc = crate::render::xml;
    let mut out = format!(
        "<h2>Compared with another runbook</h2><table><tr>{}</tr>",
        HEADINGS
            .iter()
            .map(|h| format!("<th>{}</th>", esc(h)))
            .collect::<String>()
    );
    let sides = rows.iter().flat_map(|r| [&r.a, &r.b]);
    for (line, side) in lines(a_name, b_name, rows).zip(sides) {
        let hurt = side
            .as_ref()
            .is_some_and(|s| s.updates_lost + s.api_failed + s.jetstream_failed > 0);
        out.push_str(&format!(
            "<tr{}>{}</tr>",
            if hurt { " class=\"miss\"" } else { "" },
            line.iter()
                .map(|c| format!("<td>{}</td>", esc(c)))
                .collect::<String>()
        ));
    }
    out.push_str("</table>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::CheckRecord;
    use crate::probe::{FlowReport, ProbeReport};
    use crate::Expected;

    fn record(
        id: &str,
        actual: crate::Expected,
        lost: u64,
        api_failed: u64,
        failing: &[&str],
    ) -> ScenarioRecord {
        let mut r = ScenarioRecord::new(id, id, actual, std::time::SystemTime::UNIX_EPOCH);
        r.actual = Some(actual.into());
        let mut probe = ProbeReport {
            updates_ok: 1000,
            updates_delayed: 7,
            updates_lost: lost,
            ..ProbeReport::default()
        };
        probe.flows.insert(
            "api".into(),
            FlowReport {
                sent: 50,
                failed: api_failed,
                longest_outage_ms: 1500,
                ..FlowReport::default()
            },
        );
        r.probe = Some(probe);
        r.checks_after = failing
            .iter()
            .map(|c| CheckRecord {
                id: c.to_string(),
                outcome: Outcome::Fail,
                evidence: String::new(),
            })
            .collect();
        r
    }

    #[test]
    fn each_secret_shows_both_runbooks_measurements_and_a_missing_scenario_as_not_rehearsed() {
        let a = [record(
            "phase3/as-written",
            Expected::Detected,
            0,
            3,
            &["postgres.auth.previous"],
        )];
        let b = [record("v2/postgres", Expected::Holds, 0, 0, &[])];
        let pairings = [
            Pairing {
                what: "PostgreSQL Password".into(),
                a: Some("phase3/as-written".into()),
                b: Some("v2/postgres".into()),
            },
            Pairing {
                what: "JWT Secrets".into(),
                a: None,
                b: Some("v2/jwt".into()),
            },
        ];
        let table = markdown("as-written", "v2", &compare(&a, &b, &pairings));
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[2],
            "| PostgreSQL Password | as-written | `phase3/as-written` | detected | 1000 / 7 / 0 | 3 of 50 | 0 of 0 | 0.0 / 1.5 / 0.0 s | postgres.auth.previous | 0 |"
        );
        assert_eq!(
            lines[3],
            "| | v2 | `v2/postgres` | holds | 1000 / 7 / 0 | 0 of 50 | 0 of 0 | 0.0 / 1.5 / 0.0 s | none | 0 |"
        );
        assert_eq!(
            lines[4],
            "| JWT Secrets | as-written | – | not rehearsed | | | | | | |"
        );
        assert_eq!(lines[5], "| | v2 | – | not rehearsed | | | | | | |");
    }

    #[test]
    fn the_html_section_marks_a_runbook_red_where_its_scenario_failed_calls_and_escapes_names() {
        let a = [record("phase3/as-written", Expected::Detected, 0, 3, &[])];
        let b = [record("v2/postgres", Expected::Holds, 0, 0, &[])];
        let pairings = [Pairing {
            what: "PostgreSQL <Password>".into(),
            a: Some("phase3/as-written".into()),
            b: Some("v2/postgres".into()),
        }];
        let html = html("A: old.md", "B: new.md", &compare(&a, &b, &pairings));
        assert!(html.starts_with("<h2>Compared with another runbook</h2><table><tr><th>What</th>"));
        assert!(html.contains(
            "<tr class=\"miss\"><td>PostgreSQL &lt;Password&gt;</td><td>A: old.md</td><td>phase3/as-written</td><td>detected</td><td>1000 / 7 / 0</td><td>3 of 50</td>"
        ));
        assert!(html.contains(
            "<tr><td></td><td>B: new.md</td><td>v2/postgres</td><td>holds</td><td>1000 / 7 / 0</td><td>0 of 50</td>"
        ));
        assert!(html.ends_with("</table>"));
    }
}
