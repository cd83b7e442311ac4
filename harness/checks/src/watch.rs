//! `verify --watch`: one node's checks run again every interval while a real rotation goes on;
//! each check's outcome kept as a time series of its changes, the operator's step marks, and the
//! record (journal and Markdown) written when the watch ends.
//!
//! This module holds what is recorded and how it is rendered; the loop (interval, signals, the
//! operator's keys) is the binary's. Nothing here reads a clock: every round and mark is given
//! its time, so a recorded watch renders the same every time.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{CheckResult, Outcome};
use ::node::redact::Redactor;

/// The watch journal's schema version; bump it when a field changes meaning or goes away.
pub const WATCH_JOURNAL_VERSION: u32 = 1;

/// One change of one check: its outcome from this time on (the first round's outcome too).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Point {
    /// Milliseconds since the watch started.
    pub at_ms: u64,
    pub outcome: Outcome,
    pub evidence: String,
}

/// A check's outcomes over the watch, one point per change.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Series {
    pub id: String,
    pub service: String,
    pub points: Vec<Point>,
}

/// The operator's mark: a runbook step begun, or a note typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mark {
    pub at_ms: u64,
    /// The step's id (`phase3.step2`) when the watch follows a runbook.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    pub text: String,
}

/// A check whose outcome changed in a round, as the terminal shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub at_ms: u64,
    pub id: String,
    /// `None` in the first round.
    pub from: Option<Outcome>,
    pub to: Outcome,
    pub evidence: String,
}

/// A stretch in which a service's health check did not pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownSpan {
    pub from_ms: u64,
    /// `None`: still down when the watch ended.
    pub until_ms: Option<u64>,
}

/// A watch's journal read back (`report compare`): what `Watch::journal` wrote.
#[derive(Debug, Clone, Deserialize)]
pub struct WatchJournal {
    pub version: u32,
    pub kind: String,
    pub target: String,
    pub started: String,
    pub interval_ms: u64,
    pub rounds: u64,
    pub ended_ms: u64,
    pub exit_code: i32,
    pub checks: Vec<Series>,
    pub down: BTreeMap<String, Vec<DownSpan>>,
    pub marks: Vec<Mark>,
}

impl WatchJournal {
    /// Whether `text` is a watch's journal (its `kind`), without reading the rest.
    pub fn is_watch(text: &str) -> bool {
        #[derive(Deserialize)]
        struct Kind {
            kind: Option<String>,
        }
        serde_json::from_str::<Kind>(text).is_ok_and(|k| k.kind.as_deref() == Some("watch"))
    }

    /// Reads a watch's journal; a journal of another kind or version is an error saying so.
    pub fn parse(text: &str) -> Result<WatchJournal, String> {
        let journal: WatchJournal =
            serde_json::from_str(text).map_err(|e| format!("not a watch journal: {e}"))?;
        if journal.kind != "watch" || journal.version != WATCH_JOURNAL_VERSION {
            return Err(format!(
                "a journal of kind `{}` version {}, not a watch's (version {WATCH_JOURNAL_VERSION})",
                journal.kind, journal.version
            ));
        }
        Ok(journal)
    }
}

/// Everything a watch has seen so far.
#[derive(Debug, Clone)]
pub struct Watch {
    target: String,
    /// RFC 3339.
    started: String,
    interval_ms: u64,
    series: BTreeMap<String, Series>,
    marks: Vec<Mark>,
    rounds: u64,
    last_round_ms: u64,
    /// The last round's results, for the exit code and the live table.
    last: Vec<CheckResult>,
}

impl Watch {
    pub fn new(target: &str, started: String, interval_ms: u64) -> Watch {
        Watch {
            target: target.to_string(),
            started,
            interval_ms,
            series: BTreeMap::new(),
            marks: Vec::new(),
            rounds: 0,
            last_round_ms: 0,
            last: Vec::new(),
        }
    }

    /// Records one round of results, finished `at_ms` after the start; returns the checks whose
    /// outcome changed (every check in the first round).
    pub fn record_round(&mut self, at_ms: u64, results: &[CheckResult]) -> Vec<Change> {
        self.rounds += 1;
        self.last_round_ms = at_ms;
        let mut changes = Vec::new();
        for r in results {
            let series = self.series.entry(r.id.clone()).or_insert_with(|| Series {
                id: r.id.clone(),
                service: r.service.clone(),
                points: Vec::new(),
            });
            let from = series.points.last().map(|p| p.outcome);
            if from != Some(r.outcome) {
                series.points.push(Point {
                    at_ms,
                    outcome: r.outcome,
                    evidence: r.evidence.clone(),
                });
                changes.push(Change {
                    at_ms,
                    id: r.id.clone(),
                    from,
                    to: r.outcome,
                    evidence: r.evidence.clone(),
                });
            }
        }
        self.last = results.to_vec();
        changes
    }

    pub fn mark(&mut self, at_ms: u64, step: Option<String>, text: String) {
        self.marks.push(Mark { at_ms, step, text });
    }

    pub fn rounds(&self) -> u64 {
        self.rounds
    }

    /// The exit code of the last round, as `verify` gives one: 0 all passed, 1 some failed, 6
    /// unreachable (`exit_codes`); a watch that ended before its first round is 0.
    pub fn exit_code(&self) -> i32 {
        super::report::exit_code_of(&self.last)
    }

    /// Each check's state now and since when (ms), in id order: the live table's rows.
    pub fn states(&self) -> Vec<(&str, Outcome, u64, &str)> {
        self.series
            .values()
            .filter_map(|s| {
                s.points
                    .last()
                    .map(|p| (s.id.as_str(), p.outcome, p.at_ms, p.evidence.as_str()))
            })
            .collect()
    }

    /// Per service (from its `health.SERVICE` check), the stretches it did not pass.
    pub fn down_spans(&self) -> BTreeMap<String, Vec<DownSpan>> {
        let mut out = BTreeMap::new();
        for s in self.series.values().filter(|s| s.id.starts_with("health.")) {
            let mut spans = Vec::new();
            let mut open: Option<u64> = None;
            for p in &s.points {
                match (p.outcome == Outcome::Pass, open) {
                    (false, None) => open = Some(p.at_ms),
                    (true, Some(from)) => {
                        spans.push(DownSpan {
                            from_ms: from,
                            until_ms: Some(p.at_ms),
                        });
                        open = None;
                    }
                    _ => {}
                }
            }
            if let Some(from) = open {
                spans.push(DownSpan {
                    from_ms: from,
                    until_ms: None,
                });
            }
            out.insert(s.service.clone(), spans);
        }
        out
    }

    /// The changes between one mark and the next (the last mark's until the end).
    fn changes_per_mark(&self) -> Vec<(&Mark, Vec<(&str, &Point)>)> {
        self.marks
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let until = self.marks.get(i + 1).map(|n| n.at_ms).unwrap_or(u64::MAX);
                let mut changes: Vec<(&str, &Point)> = self
                    .series
                    .values()
                    .flat_map(|s| s.points.iter().map(move |p| (s.id.as_str(), p)))
                    .filter(|(_, p)| p.at_ms >= m.at_ms && p.at_ms < until)
                    // The first round is the state, not a change.
                    .filter(|(id, p)| {
                        self.series[*id].points.first().map(|f| f.at_ms) != Some(p.at_ms)
                    })
                    .collect();
                changes.sort_by_key(|(id, p)| (p.at_ms, *id));
                (m, changes)
            })
            .collect()
    }

    /// The journal: `kind: "watch"` (watched on a node, not rehearsed on a replica), every
    /// check's series, the services' down spans, the marks; redacted.
    pub fn journal(&self, redactor: &Redactor) -> String {
        let doc = serde_json::json!({
            "version": WATCH_JOURNAL_VERSION,
            "kind": "watch",
            "target": self.target,
            "started": self.started,
            "interval_ms": self.interval_ms,
            "rounds": self.rounds,
            "ended_ms": self.last_round_ms,
            "exit_code": self.exit_code(),
            "checks": self.series.values().collect::<Vec<_>>(),
            "down": self.down_spans(),
            "marks": self.marks,
        });
        redactor.redact(&serde_json::to_string_pretty(&doc).expect("serialisable"))
    }

    /// The Markdown record: the services' down spans, the checks that ever changed with their
    /// series, and what changed during each mark; redacted.
    pub fn markdown(&self, redactor: &Redactor) -> String {
        let secs = |ms: u64| format!("{:.1} s", ms as f64 / 1000.0);
        let mut out = format!(
            "# Watch of {}\n\nStarted {}, {} rounds every {}, last at {}; exit code {}.\n\n",
            self.target,
            self.started,
            self.rounds,
            secs(self.interval_ms),
            secs(self.last_round_ms),
            self.exit_code()
        );
        out.push_str("## Services down\n\n");
        let down = self.down_spans();
        if down.values().all(|s| s.is_empty()) {
            out.push_str("No service's health check failed.\n\n");
        } else {
            out.push_str("| service | down from | until |\n|---|---|---|\n");
            for (service, spans) in &down {
                for s in spans {
                    let until = s.until_ms.map(secs).unwrap_or_else(|| "the end".into());
                    out.push_str(&format!("| {service} | {} | {until} |\n", secs(s.from_ms)));
                }
            }
            out.push('\n');
        }
        out.push_str("## Checks that changed\n\n");
        let changed: Vec<_> = self
            .series
            .values()
            .filter(|s| s.points.len() > 1)
            .collect();
        if changed.is_empty() {
            out.push_str("None: every check kept its first outcome.\n\n");
        } else {
            for s in changed {
                let steps: Vec<String> = s
                    .points
                    .iter()
                    .map(|p| format!("{} at {}", p.outcome, secs(p.at_ms)))
                    .collect();
                out.push_str(&format!("- `{}`: {}\n", s.id, steps.join(", ")));
            }
            out.push('\n');
        }
        if !self.marks.is_empty() {
            out.push_str("## Marks\n\n");
            for (m, changes) in self.changes_per_mark() {
                let name = match &m.step {
                    Some(step) => format!("{step} {}", m.text),
                    None => m.text.clone(),
                };
                out.push_str(&format!("- {} {name}", secs(m.at_ms)));
                if changes.is_empty() {
                    out.push_str(": nothing changed\n");
                } else {
                    let list: Vec<String> = changes
                        .iter()
                        .map(|(id, p)| format!("`{id}` {} at {}", p.outcome, secs(p.at_ms)))
                        .collect();
                    out.push_str(&format!(": {}\n", list.join(", ")));
                }
            }
        }
        redactor.redact(&out)
    }
}

/// Left margin of the timeline (lane labels) and the width of its time axis, in SVG units.
const LABEL_W: f64 = 230.0;
const AXIS_W: f64 = 660.0;
const LANE_H: f64 = 14.0;

/// The fill of an outcome's stretch on a check's lane.
fn outcome_fill(o: Outcome) -> &'static str {
    match o {
        Outcome::Pass => "#2e9d4a",
        Outcome::Fail => "#d33",
        Outcome::Error => "#e69500",
        Outcome::Skip => "#bbb",
    }
}

impl Watch {
    /// The page a post-rotation review opens (self-contained: no script, no outside resource):
    /// one lane per service (green while its health check passed, red while it did not), one
    /// lane per check that ever changed, coloured by its outcome over time, the operator's
    /// marks as dashed lines, then what changed during each mark; redacted.
    pub fn html(&self, redactor: &Redactor) -> String {
        use super::report::xml;
        let end = self.last_round_ms.max(1);
        let x = |ms: u64| LABEL_W + AXIS_W * ms.min(end) as f64 / end as f64;
        let secs = |ms: u64| format!("{:.1} s", ms as f64 / 1000.0);
        let down = self.down_spans();
        let changed: Vec<&Series> = self
            .series
            .values()
            .filter(|s| s.points.len() > 1)
            .collect();
        let lanes = down.len() + changed.len();
        let top = 30.0;
        let height = top + lanes as f64 * LANE_H + 40.0;
        let mut svg = format!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0}\" height=\"{height:.0}\" font-family=\"sans-serif\">",
            LABEL_W + AXIS_W + 10.0
        );
        let mut row = 0;
        let mut lane = |svg: &mut String, label: &str, spans: Vec<(u64, u64, &str, String)>| {
            let y = top + row as f64 * LANE_H;
            svg.push_str(&format!(
                "<text x=\"4\" y=\"{:.1}\" font-size=\"9\">{}</text>",
                y + 10.0,
                xml(label)
            ));
            for (from, to, fill, title) in spans {
                svg.push_str(&format!(
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{fill}\"><title>{}</title></rect>",
                    x(from),
                    y + 2.0,
                    (x(to) - x(from)).max(1.5),
                    LANE_H - 4.0,
                    xml(&title)
                ));
            }
            row += 1;
        };
        for (service, spans) in &down {
            let mut bars = vec![(0, end, "#cfe8d4", format!("{service} answering"))];
            bars.extend(spans.iter().map(|d| {
                let to = d.until_ms.unwrap_or(end);
                (
                    d.from_ms,
                    to,
                    "#d33",
                    format!("{service} down {}–{}", secs(d.from_ms), secs(to)),
                )
            }));
            lane(&mut svg, service, bars);
        }
        for s in &changed {
            let bars = s
                .points
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let to = s.points.get(i + 1).map_or(end, |n| n.at_ms);
                    let title = format!(
                        "{} {} from {}: {}",
                        s.id,
                        p.outcome,
                        secs(p.at_ms),
                        p.evidence
                    );
                    (p.at_ms, to, outcome_fill(p.outcome), title)
                })
                .collect();
            lane(&mut svg, &s.id, bars);
        }
        let bottom = top + lanes as f64 * LANE_H;
        for (i, m) in self.marks.iter().enumerate() {
            let name = m.step.clone().unwrap_or_else(|| m.text.clone());
            svg.push_str(&format!(
                "<path d=\"M{0:.1} {1:.1}V{bottom:.1}\" stroke=\"#555\" stroke-dasharray=\"3 2\"/><text x=\"{0:.1}\" y=\"{2:.1}\" font-size=\"8\"><title>{3}</title>{4}</text>",
                x(m.at_ms),
                top - 2.0,
                10.0 + (i % 2) as f64 * 9.0,
                xml(&format!("{} at {}", m.text, secs(m.at_ms))),
                xml(&name)
            ));
        }
        // The time axis: about ten ticks, 1, 2, 5, … s apart.
        let total_s = end as f64 / 1000.0;
        let tick_s = [1u64, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800]
            .into_iter()
            .find(|t| total_s / *t as f64 <= 10.0)
            .unwrap_or(3600);
        let mut t = 0;
        while t as f64 <= total_s {
            let at = x(t * 1000);
            svg.push_str(&format!(
                "<path d=\"M{at:.1} {bottom:.1}v4\" stroke=\"#555\"/><text x=\"{at:.1}\" y=\"{:.1}\" font-size=\"9\" text-anchor=\"middle\" fill=\"#555\">{t} s</text>",
                bottom + 14.0
            ));
            t += tick_s;
        }
        svg.push_str("</svg>");
        let mut marks = String::new();
        if !self.marks.is_empty() {
            marks.push_str("<h2>Marks</h2><table><tr><th>at</th><th>step</th><th>what changed until the next mark</th></tr>");
            for (m, changes) in self.changes_per_mark() {
                let name = match &m.step {
                    Some(step) => format!("<code>{}</code> {}", xml(step), xml(&m.text)),
                    None => xml(&m.text),
                };
                let list: Vec<String> = changes
                    .iter()
                    .map(|(id, p)| {
                        format!(
                            "<code>{}</code> {} at {}",
                            xml(id),
                            p.outcome,
                            secs(p.at_ms)
                        )
                    })
                    .collect();
                marks.push_str(&format!(
                    "<tr><td>{}</td><td>{name}</td><td>{}</td></tr>",
                    secs(m.at_ms),
                    if list.is_empty() {
                        "nothing".to_string()
                    } else {
                        list.join(", ")
                    }
                ));
            }
            marks.push_str("</table>");
        }
        let mut states = String::from(
            "<h2>At the end</h2><table><tr><th>check</th><th>outcome</th><th>since</th><th>evidence</th></tr>",
        );
        for (id, outcome, since, evidence) in self.states() {
            states.push_str(&format!(
                "<tr><td><code>{}</code></td><td style=\"color:{}\">{outcome}</td><td>{}</td><td>{}</td></tr>",
                xml(id),
                outcome_fill(outcome),
                secs(since),
                xml(evidence)
            ));
        }
        states.push_str("</table>");
        let page = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Watch of {0}</title><style>body{{font-family:sans-serif;max-width:980px;margin:2em auto}}code{{background:#f3f3f3}}table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ddd;padding:2px 6px;text-align:left}}</style></head><body><h1>Watch of <code>{0}</code></h1><p>Started {1}, {2} rounds every {3}, last at {4}; exit code {5}. One lane per service (green while its health check passed, red while it did not), then each check that changed (green pass, red fail, orange error, grey skip); dashed lines: the operator's marks.</p>{svg}{marks}{states}</body></html>\n",
            xml(&self.target),
            xml(&self.started),
            self.rounds,
            secs(self.interval_ms),
            secs(self.last_round_ms),
            self.exit_code()
        );
        redactor.redact(&page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use user_io::exit_codes;

    fn r(id: &str, service: &str, outcome: Outcome) -> CheckResult {
        CheckResult {
            target: "node1".into(),
            id: id.into(),
            service: service.into(),
            outcome,
            evidence: format!("{id} {outcome}"),
            duration_ms: 5,
            unreachable: false,
        }
    }

    /// The router recreated during Phase 3 step 2: down for one round, its credential check
    /// switching to the new password.
    fn recorded() -> Watch {
        let mut w = Watch::new("node1", "2026-12-07T14:00:00Z".into(), 2000);
        let round = |health: Outcome, auth: Outcome| {
            vec![
                r("health.router", "router", health),
                r("postgres.auth.current.router", "router", auth),
            ]
        };
        w.record_round(2000, &round(Outcome::Pass, Outcome::Fail));
        w.mark(
            3000,
            Some("phase3.step2".into()),
            "Recreate the router".into(),
        );
        w.record_round(4000, &round(Outcome::Error, Outcome::Error));
        w.record_round(6000, &round(Outcome::Pass, Outcome::Pass));
        w.mark(7000, None, "all good".into());
        w.record_round(8000, &round(Outcome::Pass, Outcome::Pass));
        w
    }

    #[test]
    fn only_changes_are_recorded_and_reported() {
        let mut w = Watch::new("node1", "t".into(), 2000);
        let first = w.record_round(2000, &[r("health.gateway", "gateway", Outcome::Pass)]);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].from, None);
        let again = w.record_round(4000, &[r("health.gateway", "gateway", Outcome::Pass)]);
        assert!(again.is_empty());
        let down = w.record_round(6000, &[r("health.gateway", "gateway", Outcome::Fail)]);
        assert_eq!(
            down,
            vec![Change {
                at_ms: 6000,
                id: "health.gateway".into(),
                from: Some(Outcome::Pass),
                to: Outcome::Fail,
                evidence: "health.gateway fail".into(),
            }]
        );
        assert_eq!(w.exit_code(), exit_codes::FAILURES);
        assert_eq!(
            w.states(),
            vec![("health.gateway", Outcome::Fail, 6000, "health.gateway fail")]
        );
    }

    #[test]
    fn a_service_down_between_two_rounds_is_one_span_and_the_marks_name_what_changed() {
        let w = recorded();
        assert_eq!(
            w.down_spans()["router"],
            vec![DownSpan {
                from_ms: 4000,
                until_ms: Some(6000)
            }]
        );
        assert_eq!(w.exit_code(), exit_codes::OK);
        assert_eq!(
            w.markdown(&Redactor::new()),
            "# Watch of node1\n\n\
             Started 2026-12-07T14:00:00Z, 4 rounds every 2.0 s, last at 8.0 s; exit code 0.\n\n\
             ## Services down\n\n\
             | service | down from | until |\n|---|---|---|\n\
             | router | 4.0 s | 6.0 s |\n\n\
             ## Checks that changed\n\n\
             - `health.router`: pass at 2.0 s, error at 4.0 s, pass at 6.0 s\n\
             - `postgres.auth.current.router`: fail at 2.0 s, error at 4.0 s, pass at 6.0 s\n\n\
             ## Marks\n\n\
             - 3.0 s phase3.step2 Recreate the router: `health.router` error at 4.0 s, \
             `postgres.auth.current.router` error at 4.0 s, `health.router` pass at 6.0 s, \
             `postgres.auth.current.router` pass at 6.0 s\n\
             - 7.0 s all good: nothing changed\n"
        );
    }

    #[test]
    fn the_html_has_a_lane_per_service_and_per_changed_check_the_marks_and_no_secret() {
        let redactor = Redactor::new();
        redactor.add("DB_PASSWORD", "hunter2-secret-value");
        let mut w = recorded();
        w.record_round(
            10_000,
            &[
                r("health.router", "router", Outcome::Pass),
                CheckResult {
                    evidence: "password hunter2-secret-value <refused>".into(),
                    ..r("postgres.auth.current.router", "router", Outcome::Fail)
                },
            ],
        );
        let page = w.html(&redactor);
        assert!(!page.contains("hunter2-secret-value"), "{page}");
        assert!(page.starts_with("<!doctype html>") && page.ends_with("</html>\n"));
        for expected in [
            // The service's lane: answering, then down for the round of the recreate.
            ">router</text>",
            "<title>router down 4.0 s–6.0 s</title>",
            // The credential check's lane, each stretch with its outcome and evidence.
            ">postgres.auth.current.router</text>",
            "<title>postgres.auth.current.router fail from 2.0 s: postgres.auth.current.router fail</title>",
            "<title>postgres.auth.current.router pass from 6.0 s: postgres.auth.current.router pass</title>",
            // The marks: a dashed line each, and the table of what changed during them.
            "<title>Recreate the router at 3.0 s</title>phase3.step2</text>",
            "<tr><td>3.0 s</td><td><code>phase3.step2</code> Recreate the router</td><td><code>health.router</code> error at 4.0 s, <code>postgres.auth.current.router</code> error at 4.0 s, <code>health.router</code> pass at 6.0 s, <code>postgres.auth.current.router</code> pass at 6.0 s</td></tr>",
            // Evidence escaped.
            "[REDACTED:DB_PASSWORD] &lt;refused&gt;",
        ] {
            assert!(page.contains(expected), "no {expected:?} in {page}");
        }
    }

    #[test]
    fn the_journal_is_a_watch_with_each_checks_series_and_no_secret() {
        let redactor = Redactor::new();
        redactor.add("DB_PASSWORD", "hunter2-secret-value");
        let mut w = recorded();
        w.record_round(
            10_000,
            &[CheckResult {
                evidence: "password hunter2-secret-value refused".into(),
                ..r("postgres.auth.current.router", "router", Outcome::Fail)
            }],
        );
        let journal = w.journal(&redactor);
        assert!(!journal.contains("hunter2-secret-value"), "{journal}");
        let doc: serde_json::Value = serde_json::from_str(&journal).unwrap();
        assert_eq!(doc["kind"], "watch");
        assert_eq!(doc["rounds"], 5);
        let auth = doc["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == "postgres.auth.current.router")
            .unwrap();
        let outcomes: Vec<_> = auth["points"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["at_ms"].as_u64().unwrap(), p["outcome"].as_str().unwrap()))
            .collect();
        assert_eq!(
            outcomes,
            [
                (2000, "fail"),
                (4000, "error"),
                (6000, "pass"),
                (10_000, "fail")
            ]
        );
        assert_eq!(doc["marks"][0]["step"], "phase3.step2");
        assert_eq!(doc["exit_code"], exit_codes::FAILURES);
    }
}
