//! Reports rendered from the journal: a terminal summary, JUnit XML (one testcase per
//! scenario), Markdown, and a self-contained HTML page with an SVG timeline per scenario.
//! Everything goes through the run's redactor once more.

use super::journal::{FaultRecord, FindingSummary, Journal, ScenarioRecord, StepRecord};
use super::probe::{ProbeReport, BUCKET_MS, FLOWS, SERIES_MS};
use harness::redact::Redactor;

pub mod compare;
mod findings;
mod markdown;
mod text;
mod timeline;
pub mod versus;
use findings::*;
pub use markdown::*;
pub use text::*;
use timeline::*;
#[cfg(test)]
mod tests;

/// `text` escaped for HTML and XML text and attribute values.
pub(crate) fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The run in one sentence: how many scenarios met their expected outcome, the outcomes, and
/// the worst numbers measured (longest outage, updates lost, API calls failed) with where.
fn headline(j: &Journal) -> String {
    let met = j.scenarios.iter().filter(|s| s.met).count();
    let mut outcomes: Vec<(String, usize)> = Vec::new();
    for s in &j.scenarios {
        let a = actual(s);
        match outcomes.iter_mut().find(|(o, _)| *o == a) {
            Some((_, n)) => *n += 1,
            None => outcomes.push((a, 1)),
        }
    }
    let outcomes: Vec<String> = outcomes.iter().map(|(o, n)| format!("{n} {o}")).collect();
    let worst = |what: &str, value: &dyn Fn(&ProbeReport) -> u64, unit: &str| {
        j.scenarios
            .iter()
            .filter_map(|s| s.probe.as_ref().map(|p| (value(p), &s.id)))
            .max_by_key(|(v, _)| *v)
            .filter(|(v, _)| *v > 0)
            .map(|(v, id)| format!("{what} {v}{unit} ({id})"))
    };
    let worst: Vec<String> = [
        worst("longest outage", &|p| p.longest_outage_ms(), " ms"),
        worst("updates lost", &|p| p.updates_lost, ""),
        worst(
            "API calls failed",
            &|p| p.flows.get("api").map_or(0, |f| f.failed),
            "",
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    format!(
        "{met} of {} scenarios met their expected outcome ({}); worst during the steps: {}.",
        j.scenarios.len(),
        outcomes.join(", "),
        if worst.is_empty() {
            "no outage, nothing lost, no API call failed".to_string()
        } else {
            worst.join(", ")
        }
    )
}

/// A self-contained page (no script, no outside resource): the summary table, the findings and
/// what measured them, then per scenario its faults, its traffic and SVG timeline during the
/// steps, the checks failing after them, and the rollback's traffic and timeline.
pub fn html(j: &Journal, redactor: &Redactor) -> String {
    html_with(j, redactor, "")
}

/// The HTML report with `top` (an HTML fragment: a comparison with another runbook's run)
/// before everything else.
pub fn html_with(j: &Journal, redactor: &Redactor, top: &str) -> String {
    let mut body = String::from(top);
    body.push_str(&format!("<p><strong>{}</strong></p>", xml(&headline(j))));
    body.push_str(&summary_table_html(j));
    if !j.skipped.is_empty() {
        body.push_str("<p>Skipped, as asked (<code>--skip-inapplicable</code>): they no longer apply to this runbook.</p><ul>");
        for k in &j.skipped {
            body.push_str(&format!("<li>{}</li>", xml(&k.why)));
        }
        body.push_str("</ul>");
    }
    body.push_str(&findings_html(j));
    for s in &j.scenarios {
        body.push_str(&scenario_html(s));
    }
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Rehearsal of {}</title><style>body{{font-family:sans-serif;max-width:980px;margin:2em auto}}.ok{{color:#2e7d32}}.miss{{color:#c62828}}section{{border-top:1px solid #ccc;margin-top:1.5em}}code{{background:#f3f3f3}}table{{border-collapse:collapse;font-size:13px}}td,th{{border:1px solid #ddd;padding:2px 6px;text-align:left}}table.findings td[title]{{text-align:center;cursor:help}}tr.detail td{{color:#555;font-size:12px;border-top:none}}</style></head><body><h1>Rehearsal of <code>{}</code></h1><p>Started {}, {} scenarios, {:.1} s, time scale {}. Green: succeeded, red: failed, per 50 ms; dashed lines: runbook steps; shaded: faults; below: each container, red while it was not running, and Telegram's backlog and delivery delay over time.</p>{body}</body></html>\n",
        xml(&j.runbook),
        xml(&j.runbook),
        xml(&j.started),
        j.scenarios.len(),
        j.wall_ms as f64 / 1000.0,
        j.time_scale
    );
    redactor.redact(&page)
}

/// One row per scenario, linked to its section: outcome, wall time, the probe's numbers.
fn summary_table_html(j: &Journal) -> String {
    let mut out = String::from("<table><tr><th>scenario</th><th>expected</th><th>measured</th><th>wall</th><th>updates ok / delayed / lost</th><th>longest outage</th><th>rollback: updates ok / delayed / lost, longest outage</th></tr>");
    for s in &j.scenarios {
        let (steps_counts, steps_outage) = s
            .probe
            .as_ref()
            .map(|p| (updates(p), format!("{} ms", p.longest_outage_ms())))
            .unwrap_or_default();
        out.push_str(&format!(
            "<tr><td><a href=\"#{id}\">{id}</a></td><td>{}</td><td class=\"{}\">{}</td><td>{:.1} s</td><td>{steps_counts}</td><td>{steps_outage}</td><td>{}</td></tr>",
            s.expected,
            if s.met { "ok" } else { "miss" },
            actual(s),
            s.wall_ms as f64 / 1000.0,
            s.rollback_probe
                .as_ref()
                .map(|r| format!("{}, {} ms", updates(r), r.longest_outage_ms()))
                .unwrap_or_else(|| "no rollback".into()),
            id = xml(&s.id),
        ));
    }
    out.push_str("</table>");
    out
}

/// A scenario's section: outcome, error or stop, faults, the steps' traffic and timeline, the
/// checks failing after them, the rollback's traffic and timeline.
fn scenario_html(s: &ScenarioRecord) -> String {
    let mut body = format!(
        "<section id=\"{id}\"><h2>{id} <small class=\"{}\">expected {} · measured {}</small></h2><p>{}</p>",
        if s.met { "ok" } else { "miss" },
        s.expected,
        actual(s),
        xml(&s.title),
        id = xml(&s.id),
    );
    if let Some(e) = &s.error {
        body.push_str(&format!("<p class=\"miss\">{}</p>", xml(e)));
    }
    if let Some(step) = &s.stopped_at_failed_step {
        body.push_str(&format!(
            "<p>Stopped: <code>{}</code> failed, and the runbook says to stop there; the rollback ran.</p>",
            xml(step)
        ));
    }
    if !s.faults.is_empty() {
        body.push_str("<ul>");
        for f in &s.faults {
            body.push_str(&format!(
                "<li>⚡ fault <b>{}</b> ({}){}</li>",
                xml(&f.name),
                xml(&f.at),
                if f.ok {
                    ""
                } else {
                    ": a fault operation failed"
                }
            ));
        }
        body.push_str("</ul>");
    }
    if let Some(p) = &s.probe {
        body.push_str(&format!(
            "<h3>During the steps</h3><p>{}</p>{}",
            xml(&counts(p)),
            timeline_svg(p, &s.steps, &s.faults)
        ));
    }
    let failing = s.failed_after();
    if !failing.is_empty() {
        body.push_str("<p>Checks failing after the steps:</p><ul>");
        for c in failing {
            body.push_str(&format!(
                "<li><code>{}</code> {}</li>",
                xml(&c.id),
                xml(&c.evidence)
            ));
        }
        body.push_str("</ul>");
        if let Some(line) = not_live_line(s) {
            body.push_str(&format!("<p>{}.</p>", xml(&line)));
        }
    }
    let windows = boundary_lines(s);
    if !windows.is_empty() {
        body.push_str(
            "<p>Step boundaries where a credential was refused or a flow failed:</p><ul>",
        );
        for (what, line) in windows {
            body.push_str(&format!("<li><b>{}</b>: {}</li>", xml(what), xml(&line)));
        }
        body.push_str("</ul>");
    }
    let budgets = budget_rows(s);
    if !budgets.is_empty() {
        body.push_str("<p>Impact against each phase's budget:</p>");
        body.push_str(&table_html(&BUDGET_COLUMNS, &budgets));
    }
    if let Some(line) = outage_line(s) {
        body.push_str(&format!("<p>{}.</p>", xml(&line)));
    }
    let rows = boundary_rows(s);
    if !rows.is_empty() {
        body.push_str("<details><summary>Every step boundary</summary>");
        body.push_str(&table_html(&BOUNDARY_COLUMNS, &rows));
        body.push_str("</details>");
    }
    if let Some(p) = &s.rollback_probe {
        body.push_str(&format!(
            "<h3>During the rollback</h3><p>{}</p>{}",
            xml(&counts(p)),
            timeline_svg(p, &s.rollback_steps, &[])
        ));
    }
    body.push_str("</section>");
    body
}
