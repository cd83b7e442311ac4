//! Reports rendered from the journal: a terminal summary, JUnit XML (one testcase per
//! scenario), Markdown, and a self-contained HTML page with an SVG timeline per scenario.
//! Everything goes through the run's redactor once more.

use super::journal::{Journal, ScenarioRecord};
use super::probe::{ProbeReport, BUCKET_MS, FLOWS};
use crate::redact::Redactor;

fn counts(p: &ProbeReport) -> String {
    let api = &p.flows["api"];
    let js = &p.flows["jetstream"];
    format!(
        "updates {} ok / {} delayed / {} lost; api {} failed of {}; jetstream {} failed of {}; longest outage {} ms",
        p.updates_ok, p.updates_delayed, p.updates_lost, api.failed, api.sent, js.failed, js.sent, p.longest_outage_ms()
    )
}

fn actual(s: &ScenarioRecord) -> String {
    s.actual
        .map(|a| a.to_string())
        .unwrap_or_else(|| "error".into())
}

/// Per scenario: expected vs actual, counts, longest outage, findings confirmed.
pub fn summary(j: &Journal, redactor: &Redactor) -> String {
    let mut out = String::new();
    for s in &j.scenarios {
        out.push_str(&format!(
            "{} {:<28} expected {:<8} actual {:<8} {:>6.1} s\n",
            if s.met { "ok  " } else { "MISS" },
            s.id,
            s.expected.to_string(),
            actual(s),
            s.wall_ms as f64 / 1000.0
        ));
        if let Some(p) = &s.probe {
            out.push_str(&format!("     traffic: {}\n", counts(p)));
        }
        let failed: Vec<&str> = s.failed_after().iter().map(|c| c.id.as_str()).collect();
        if !failed.is_empty() {
            out.push_str(&format!(
                "     checks failing after: {}\n",
                failed.join(", ")
            ));
        }
        if let Some(p) = &s.rollback_probe {
            out.push_str(&format!("     rollback traffic: {}\n", counts(p)));
        }
        let confirmed: Vec<&str> = s
            .findings
            .iter()
            .filter(|f| f.verdict == "confirmed")
            .map(|f| f.finding.as_str())
            .collect();
        if !confirmed.is_empty() {
            out.push_str(&format!(
                "     findings confirmed: {}\n",
                confirmed.join(", ")
            ));
        }
        if let Some(e) = &s.error {
            out.push_str(&format!("     error: {e}\n"));
        }
    }
    let met = j.scenarios.iter().filter(|s| s.met).count();
    out.push_str(&format!(
        "{met} of {} scenarios met their expected outcome in {:.1} s\n",
        j.scenarios.len(),
        j.wall_ms as f64 / 1000.0
    ));
    redactor.redact(&out)
}

fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn junit(j: &Journal, redactor: &Redactor) -> String {
    let failures = j.scenarios.iter().filter(|s| !s.met).count();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"rehearsal\" tests=\"{}\" failures=\"{failures}\" time=\"{:.3}\">\n  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\">\n",
        j.scenarios.len(),
        j.wall_ms as f64 / 1000.0,
        xml(&j.runbook),
        j.scenarios.len()
    );
    for s in &j.scenarios {
        out.push_str(&format!(
            "    <testcase classname=\"rehearsal\" name=\"{}\" time=\"{:.3}\"",
            xml(&s.id),
            s.wall_ms as f64 / 1000.0
        ));
        if s.met {
            out.push_str("/>\n");
        } else {
            let why = s
                .error
                .clone()
                .unwrap_or_else(|| format!("expected {}, measured {}", s.expected, actual(s)));
            out.push_str(&format!(
                ">\n      <failure message=\"{}\"/>\n    </testcase>\n",
                xml(&why)
            ));
        }
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    redactor.redact(&out)
}

pub fn markdown(j: &Journal, redactor: &Redactor) -> String {
    let mut out = format!(
        "# Rehearsal of `{}`\n\nStarted {}, {:.1} s, time scale {}.\n\n",
        j.runbook,
        j.started,
        j.wall_ms as f64 / 1000.0,
        j.time_scale
    );
    out.push_str("| scenario | expected | actual | met | ok | delayed | lost | api failed | longest outage |\n|---|---|---|---|---|---|---|---|---|\n");
    for s in &j.scenarios {
        let p = s.probe.as_ref();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} ms |\n",
            s.id,
            s.expected,
            actual(s),
            if s.met { "yes" } else { "**no**" },
            p.map(|p| p.updates_ok).unwrap_or(0),
            p.map(|p| p.updates_delayed).unwrap_or(0),
            p.map(|p| p.updates_lost).unwrap_or(0),
            p.map(|p| p.flows["api"].failed).unwrap_or(0),
            p.map(|p| p.longest_outage_ms()).unwrap_or(0)
        ));
    }
    out.push_str("\n## Findings\n\n| finding | severity | measured |\n|---|---|---|\n");
    for f in &j.findings {
        let measured = if f.measured.is_empty() {
            "not measured".to_string()
        } else {
            f.measured
                .iter()
                .map(|(s, v, e)| format!("{v} by {s}: {e}"))
                .collect::<Vec<_>>()
                .join("<br>")
        };
        out.push_str(&format!(
            "| {} (line {}) | {} | {} |\n",
            f.id,
            f.line,
            f.severity,
            measured.replace('|', "\\|")
        ));
    }
    for s in &j.scenarios {
        out.push_str(&format!("\n## {} — {}\n\n", s.id, s.title));
        if let Some(seed) = s.seed {
            out.push_str(&format!("Random fault schedule, seed `{seed}`.\n\n"));
        }
        for f in &s.faults {
            let when = match (f.injected_ms, f.removed_ms) {
                (Some(a), Some(b)) => format!("injected at {a} ms, undone at {b} ms"),
                (Some(a), None) => format!("injected at {a} ms, never undone"),
                _ => "never injected".to_string(),
            };
            out.push_str(&format!(
                "- ⚡ fault **{}** ({}): {when}{}\n",
                f.name,
                f.at,
                if f.ok {
                    ""
                } else {
                    " (a fault operation failed)"
                }
            ));
        }
        for step in s.steps.iter().chain(&s.rollback_steps) {
            out.push_str(&format!(
                "- **{}** {} {}\n",
                step.id,
                step.title,
                if step.ok { "" } else { "(failed)" }
            ));
            for a in &step.actions {
                if let Some(o) = &a.operator {
                    out.push_str(&format!("  - operator: {o}\n"));
                }
                if let Some(sh) = &a.shell {
                    out.push_str(&format!(
                        "  - `{}` → {}{} {}\n",
                        sh.command.lines().next().unwrap_or(""),
                        sh.exit_code
                            .map(|c| format!("exit {c}"))
                            .unwrap_or_else(|| "no exit".into()),
                        if sh.killed_at_deadline {
                            ", killed at its deadline"
                        } else {
                            ""
                        },
                        a.note
                    ));
                }
            }
        }
        let failing = s.failed_after();
        if !failing.is_empty() {
            out.push_str("\nChecks failing after the steps:\n\n");
            for c in failing {
                out.push_str(&format!("- `{}`: {}\n", c.id, c.evidence));
            }
        }
    }
    redactor.redact(&out)
}

/// An SVG timeline: one lane per flow, green for successes and red for failures per bucket,
/// step starts marked.
fn timeline_svg(s: &ScenarioRecord) -> String {
    let Some(p) = &s.probe else {
        return String::new();
    };
    let buckets = p.timeline.values().map(Vec::len).max().unwrap_or(0).max(1);
    let (width, lane) = (900.0, 28.0);
    let x = |i: usize| 90.0 + (i as f64) * (width - 100.0) / buckets as f64;
    let w = ((width - 100.0) / buckets as f64).max(0.5);
    let mut svg = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"11\">", 52.0 + lane * 3.0);
    for (row, flow) in FLOWS.iter().enumerate() {
        let y = 10.0 + row as f64 * lane;
        svg.push_str(&format!("<text x=\"4\" y=\"{}\">{flow}</text>", y + 16.0));
        for (i, b) in p.timeline.get(*flow).into_iter().flatten().enumerate() {
            let total = (b.ok + b.fail) as f64;
            if total == 0.0 {
                continue;
            }
            let fail_h = (lane - 6.0) * b.fail as f64 / total;
            svg.push_str(&format!("<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{w:.2}\" height=\"{:.1}\" fill=\"#2e9d4a\"/>", x(i), y + fail_h, lane - 6.0 - fail_h));
            if b.fail > 0 {
                svg.push_str(&format!("<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{w:.2}\" height=\"{fail_h:.1}\" fill=\"#d33\"><title>{} failed</title></rect>", x(i), b.fail));
            }
        }
    }
    // Faults: a shaded band from injection to teardown, labelled below the lanes.
    for f in &s.faults {
        let Some(from) = f.injected_ms else { continue };
        let to = f
            .removed_ms
            .unwrap_or(from + BUCKET_MS)
            .max(from + BUCKET_MS);
        let (x0, x1) = (x((from / BUCKET_MS) as usize), x((to / BUCKET_MS) as usize));
        svg.push_str(&format!(
            "<rect x=\"{x0:.1}\" y=\"6\" width=\"{:.1}\" height=\"{}\" fill=\"#f5a623\" fill-opacity=\"0.25\" stroke=\"#f5a623\"><title>fault: {} ({})</title></rect><text x=\"{x0:.1}\" y=\"{}\" font-size=\"9\" fill=\"#b36b00\">⚡ {}</text>",
            (x1 - x0).max(1.5),
            lane * 3.0,
            xml(&f.name),
            xml(&f.at),
            36.0 + lane * 3.0,
            xml(&f.name)
        ));
    }
    for step in &s.steps {
        let i = (step.started_ms / BUCKET_MS) as usize;
        svg.push_str(&format!(
            "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"6\" y2=\"{1}\" stroke=\"#555\" stroke-dasharray=\"2,2\"><title>{2} {3}</title></line><text x=\"{0:.1}\" y=\"{4}\" font-size=\"9\">{2}</text>",
            x(i),
            10.0 + lane * 3.0,
            xml(&step.id),
            xml(&step.title),
            24.0 + lane * 3.0
        ));
    }
    svg.push_str("</svg>");
    svg
}

pub fn html(j: &Journal, redactor: &Redactor) -> String {
    let mut body = String::new();
    for s in &j.scenarios {
        body.push_str(&format!(
            "<section><h2>{} <small class=\"{}\">expected {} · measured {}</small></h2><p>{}</p>",
            xml(&s.id),
            if s.met { "ok" } else { "miss" },
            s.expected,
            actual(s),
            xml(&s.title)
        ));
        if let Some(p) = &s.probe {
            body.push_str(&format!("<p>{}</p>{}", xml(&counts(p)), timeline_svg(s)));
        }
        let failing = s.failed_after();
        if !failing.is_empty() {
            body.push_str("<ul>");
            for c in failing {
                body.push_str(&format!(
                    "<li><code>{}</code> {}</li>",
                    xml(&c.id),
                    xml(&c.evidence)
                ));
            }
            body.push_str("</ul>");
        }
        body.push_str("</section>");
    }
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Rehearsal of {}</title><style>body{{font-family:sans-serif;max-width:980px;margin:2em auto}}.ok{{color:#2e7d32}}.miss{{color:#c62828}}section{{border-top:1px solid #ccc;margin-top:1.5em}}code{{background:#f3f3f3}}</style></head><body><h1>Rehearsal of <code>{}</code></h1><p>{} scenarios, {:.1} s, time scale {}. Green: succeeded, red: failed, per 50 ms; dashed lines: runbook steps.</p>{body}</body></html>\n",
        xml(&j.runbook),
        xml(&j.runbook),
        j.scenarios.len(),
        j.wall_ms as f64 / 1000.0,
        j.time_scale
    );
    redactor.redact(&page)
}
