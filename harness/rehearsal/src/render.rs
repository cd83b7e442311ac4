//! Reports rendered from the journal: a terminal summary, JUnit XML (one testcase per
//! scenario), Markdown, and a self-contained HTML page with an SVG timeline per scenario.
//! Everything goes through the run's redactor once more.

use super::journal::{FaultRecord, FindingSummary, Journal, ScenarioRecord, StepRecord};
use super::probe::{ProbeReport, BUCKET_MS, FLOWS, SERIES_MS};
use harness::redact::Redactor;

fn counts(p: &ProbeReport) -> String {
    let api = &p.flows["api"];
    let js = &p.flows["jetstream"];
    let t = &p.telegram;
    let mut out = format!(
        "updates {} ok / {} delayed / {} lost, {} pending (delay p50 {} ms, p99 {} ms, max {} ms; \
         peak backlog {}); api {} failed of {} ({} ok after a retry); jetstream {} failed of {}; \
         longest outage {} ms",
        p.updates_ok,
        p.updates_delayed,
        p.updates_lost,
        t.backlog,
        t.delay_p50_ms,
        t.delay_p99_ms,
        t.delay_max_ms,
        t.peak_backlog,
        api.failed,
        api.sent,
        api.delayed,
        js.failed,
        js.sent,
        p.longest_outage_ms()
    );
    if let Some(missing) = data_missing(p) {
        out.push_str("; ");
        out.push_str(&missing);
    }
    out
}

/// What was accepted and never stored or processed, beside the updates counted as lost: the
/// memories a memory service on its fallback kept out of PostgreSQL, among others.
fn data_missing(p: &ProbeReport) -> Option<String> {
    let d = &p.data;
    let mut parts = Vec::new();
    if d.missing_gateway_rows > 0 {
        parts.push(format!("{} gateway rows", d.missing_gateway_rows));
    }
    if d.missing_memories > 0 {
        parts.push(format!("{} memories", d.missing_memories));
    }
    for (worker, n) in d.missing_processed.iter().filter(|(_, n)| **n > 0) {
        parts.push(format!("{n} events unprocessed by {worker}"));
    }
    (!parts.is_empty()).then(|| format!("accepted but not in PostgreSQL: {}", parts.join(", ")))
}

/// Updates ok / delayed / lost, as the summary tables show them.
fn updates(p: &ProbeReport) -> String {
    format!(
        "{} / {} / {}",
        p.updates_ok, p.updates_delayed, p.updates_lost
    )
}

/// What the scenarios measured about a finding: each distinct verdict and evidence once, with
/// the scenarios that gave it (eleven scenarios confirming the same thing make one line).
fn evidence_groups(f: &FindingSummary) -> Vec<(String, String, Vec<String>)> {
    let mut groups: Vec<(String, String, Vec<String>)> = Vec::new();
    for (scenario, verdict, evidence) in &f.measured {
        match groups
            .iter_mut()
            .find(|(v, e, _)| v == verdict && e == evidence)
        {
            Some((_, _, scenarios)) => scenarios.push(scenario.clone()),
            None => groups.push((verdict.clone(), evidence.clone(), vec![scenario.clone()])),
        }
    }
    groups
}

/// Said of a finding no scenario of this run measured.
const NOT_MEASURED: &str =
    "not measured by this run's scenarios (`--only '*'` runs every scenario)";

/// A finding's cell for one scenario: ✔ confirmed, ✘ refuted, blank when not measured.
fn verdict_mark(f: &FindingSummary, scenario: &str) -> (&'static str, Option<String>) {
    match f.measured.iter().find(|(s, _, _)| s == scenario) {
        Some((_, v, e)) if v == "confirmed" => ("✔", Some(e.clone())),
        Some((_, _, e)) => ("✘", Some(e.clone())),
        None => ("", None),
    }
}

/// The findings as one table, finding × scenario (columns numbered, the legend below), then
/// the evidence once per finding and verdict.
fn findings_markdown(j: &Journal) -> String {
    let mut out = String::from("\n## Findings\n\n✔ confirmed, ✘ refuted, blank: not measured by that scenario.\n\n| finding | severity |");
    for (i, _) in j.scenarios.iter().enumerate() {
        out.push_str(&format!(" {} |", i + 1));
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---|".repeat(j.scenarios.len()));
    out.push('\n');
    for f in &j.findings {
        out.push_str(&format!("| {} (line {}) | {} |", f.id, f.line, f.severity));
        for s in &j.scenarios {
            out.push_str(&format!(" {} |", verdict_mark(f, &s.id).0));
        }
        out.push('\n');
    }
    out.push('\n');
    for (i, s) in j.scenarios.iter().enumerate() {
        out.push_str(&format!(
            "{}: {}{}",
            i + 1,
            s.id,
            if i + 1 < j.scenarios.len() {
                " · "
            } else {
                "\n"
            }
        ));
    }
    out.push_str("\n### Evidence\n\n");
    for f in &j.findings {
        let groups = evidence_groups(f);
        if groups.is_empty() {
            out.push_str(&format!("- {}: {NOT_MEASURED}\n", f.id));
        }
        for (verdict, evidence, scenarios) in groups {
            out.push_str(&format!(
                "- {} {verdict} by {}: {}\n",
                f.id,
                scenarios.join(", "),
                evidence
            ));
        }
    }
    out
}

/// The findings table for the HTML report: the measurement in each cell's tooltip, and once
/// per finding and verdict in a detail row.
fn findings_html(j: &Journal) -> String {
    let mut out = String::from("<h2>Findings</h2><p>✔ confirmed, ✘ refuted, blank: not measured by that scenario; hover a mark for the measurement.</p><table class=\"findings\"><tr><th>finding</th><th>severity</th>");
    for (i, s) in j.scenarios.iter().enumerate() {
        out.push_str(&format!("<th title=\"{}\">{}</th>", xml(&s.id), i + 1));
    }
    out.push_str("</tr>");
    for f in &j.findings {
        out.push_str(&format!(
            "<tr><td><code>{}</code> (line {})</td><td>{}</td>",
            xml(&f.id),
            f.line,
            xml(&f.severity)
        ));
        for s in &j.scenarios {
            match verdict_mark(f, &s.id) {
                (mark, Some(evidence)) => out.push_str(&format!(
                    "<td title=\"{}: {}\">{mark}</td>",
                    xml(&s.id),
                    xml(&evidence)
                )),
                _ => out.push_str("<td></td>"),
            }
        }
        let groups = evidence_groups(f);
        let detail = if groups.is_empty() {
            xml(NOT_MEASURED)
        } else {
            groups
                .iter()
                .map(|(v, e, scenarios)| {
                    format!("{} by {}: {}", xml(v), xml(&scenarios.join(", ")), xml(e))
                })
                .collect::<Vec<_>>()
                .join("<br>")
        };
        out.push_str(&format!(
            "</tr><tr class=\"detail\"><td colspan=\"{}\">{detail}</td></tr>",
            j.scenarios.len() + 2
        ));
    }
    out.push_str("</table>");
    for (i, s) in j.scenarios.iter().enumerate() {
        out.push_str(&format!(
            "{}{}: {}",
            if i == 0 { "<p>" } else { " · " },
            i + 1,
            xml(&s.id)
        ));
    }
    if !j.scenarios.is_empty() {
        out.push_str("</p>");
    }
    out
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
        let firsts: Vec<String> = s
            .first_failures()
            .iter()
            .map(|f| {
                format!(
                    "{} during {} ({:.1} s in)",
                    f.flow,
                    f.step.as_deref().unwrap_or("the steady state"),
                    f.at_ms as f64 / 1000.0
                )
            })
            .collect();
        if !firsts.is_empty() {
            out.push_str(&format!("     first failures: {}\n", firsts.join(", ")));
        }
        if let Some(why) = &s.safeguard {
            out.push_str(&format!("     stopped: {why}\n"));
        }
        if let Some(step) = &s.stopped_at_failed_step {
            out.push_str(&format!(
                "     stopped: {step} failed, and the runbook says to stop there\n"
            ));
        }
        let failed: Vec<&str> = s.failed_after().iter().map(|c| c.id.as_str()).collect();
        if !failed.is_empty() {
            out.push_str(&format!(
                "     checks failing after: {}\n",
                failed.join(", ")
            ));
        }
        if let Some(line) = not_live_line(s) {
            out.push_str(&format!("     {line}\n"));
        }
        for (what, line) in boundary_lines(s) {
            out.push_str(&format!("     {what}: {line}\n"));
        }
        for line in s.over_budget() {
            out.push_str(&format!("     over budget: {line}\n"));
        }
        if let Some(line) = outage_line(s) {
            out.push_str(&format!("     {line}\n"));
        }
        if let Some(p) = &s.rollback_probe {
            out.push_str(&format!("     rollback traffic: {}\n", counts(p)));
        }
        let confirmed: Vec<&str> = s
            .findings
            .iter()
            .filter(|f| f.verdict == crate::journal::Verdict::Confirmed)
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
        if let Some(why) = &s.inconclusive {
            out.push_str(&format!("     inconclusive: {why}\n"));
        }
        for f in &s.forensics {
            out.push_str(&format!(
                "     {} {}: {} (exit code {}, OOM-killed {}, restarts {})\n",
                f.service,
                f.when,
                f.status.as_deref().unwrap_or("unknown"),
                f.exit_code.map_or("-".into(), |c| c.to_string()),
                f.oom_killed.map_or("-".into(), |c| c.to_string()),
                f.restart_count.map_or("-".into(), |c| c.to_string()),
            ));
            if let Some(e) = &f.engine_error {
                out.push_str(&format!("       the engine could not start it: {e}\n"));
            }
        }
    }
    for k in &j.skipped {
        out.push_str(&format!("skip {}\n", k.why));
    }
    let met = j.scenarios.iter().filter(|s| s.met).count();
    out.push_str(&format!(
        "{met} of {} scenarios met their expected outcome in {:.1} s\n",
        j.scenarios.len(),
        j.wall_ms as f64 / 1000.0
    ));
    redactor.redact(&out)
}

/// The new values the checks found not live after the steps, each with the step that last
/// wrote it (or that no step did), in one line; `None` when every new value is live.
fn not_live_line(s: &ScenarioRecord) -> Option<String> {
    let not_live: Vec<String> = s
        .not_live()
        .into_iter()
        .map(|(var, last)| match last {
            Some(step) => format!("{var} (last written by {step})"),
            None => format!("{var} (no step wrote it)"),
        })
        .collect();
    (!not_live.is_empty()).then(|| {
        format!(
            "new values not live after the steps: {}",
            not_live.join(", ")
        )
    })
}

/// The boundaries where a credential was refused or a flow failed, one line each (`unsafe
/// window` or `declared window`, the step pair, what failed, how long the node stayed there in
/// the rehearsal, and the runbook's sentence for a declared one), then those where a flow
/// failed for a while and answered within the deadline (`recovered`).
pub fn boundary_lines(s: &ScenarioRecord) -> Vec<(&'static str, String)> {
    let mut lines: Vec<(&'static str, String)> = s
        .boundaries
        .iter()
        .filter(|b| b.refused().next().is_some())
        .map(|b| {
            let refused: Vec<&str> = b.refused().collect();
            let mut line = format!(
                "{}: {} (the node stayed there {:.1} s)",
                b.name(),
                refused.join("; "),
                b.lasted_ms as f64 / 1000.0
            );
            let what = match &b.declared {
                Some(sentence) => {
                    line.push_str(&format!(", as the runbook says: \"{sentence}\""));
                    "declared window"
                }
                None => "unsafe window",
            };
            (what, line)
        })
        .collect();
    for b in &s.boundaries {
        for f in b.recovered() {
            lines.push((
                "recovered",
                format!("{}: {}: {}", b.name(), f.flow, f.evidence),
            ));
        }
    }
    lines
}

/// The steps' longest Telegram outage, split into the node's own downtime and the rest.
fn outage_line(s: &ScenarioRecord) -> Option<String> {
    let o = s.telegram_outage.as_ref()?;
    Some(format!(
        "Telegram's longest outage: {:.1} s from {:.1} s: the node down {:.1} s of it, then {:.1} s of Telegram's backoff and the services' start",
        o.longest_ms as f64 / 1000.0,
        o.from_ms as f64 / 1000.0,
        o.node_down_ms as f64 / 1000.0,
        o.after_node_ms as f64 / 1000.0
    ))
}

/// Each phase's impact against its budget as a table row: the phase, its budget and where it
/// comes from, the longest a service was down, Telegram's delay p99, and whether it is within.
fn budget_rows(s: &ScenarioRecord) -> Vec<[String; 5]> {
    s.budgets
        .iter()
        .map(|b| {
            let mut budget = format!(
                "a service down ≤ {:.1} s",
                b.budget.service_down_ms as f64 / 1000.0
            );
            if let Some(l) = b.budget.telegram_delay_p99_ms {
                budget.push_str(&format!(
                    ", Telegram delay p99 ≤ {:.1} s",
                    l as f64 / 1000.0
                ));
            }
            budget.push_str(&format!(" ({})", crate::budgets::source(&b.budget)));
            let down = match &b.longest_down {
                Some(d) => format!("{} {:.1} s", d.service, d.ms as f64 / 1000.0),
                None => "none".into(),
            };
            [
                format!("phase {}", b.phase),
                budget,
                down,
                format!("{:.1} s", b.telegram_delay_p99_ms as f64 / 1000.0),
                if b.over().is_none() { "within" } else { "over" }.into(),
            ]
        })
        .collect()
}

/// The columns of `budget_rows`.
const BUDGET_COLUMNS: [&str; 5] = ["phase", "budget", "longest down", "Telegram delay p99", ""];
/// The columns of `boundary_rows`.
const BOUNDARY_COLUMNS: [&str; 4] = ["boundary", "the node stayed", "flows", "credentials"];

/// A Markdown table of `rows` under `columns`.
fn table_markdown<const N: usize>(columns: &[&str; N], rows: &[[String; N]]) -> String {
    let mut out = format!("| {} |\n|{}\n", columns.join(" | "), "---|".repeat(N));
    for row in rows {
        out.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    out
}

/// An HTML table of `rows` under `columns`, every cell escaped.
fn table_html<const N: usize>(columns: &[&str; N], rows: &[[String; N]]) -> String {
    let mut out = String::from("<table><tr>");
    for c in columns {
        out.push_str(&format!("<th>{}</th>", xml(c)));
    }
    out.push_str("</tr>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            out.push_str(&format!("<td>{}</td>", xml(cell)));
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
    out
}

/// Every boundary as a table row: the step pair, how long the node stayed there, the flows
/// answered (and those that were not), the credentials held (and those refused).
fn boundary_rows(s: &ScenarioRecord) -> Vec<[String; 4]> {
    s.boundaries
        .iter()
        .map(|b| {
            let tried: Vec<_> = b
                .flows
                .iter()
                .filter(|f| f.outcome != harness::checks::Outcome::Skip)
                .collect();
            let answered = tried
                .iter()
                .filter(|f| f.outcome == harness::checks::Outcome::Pass)
                .count();
            let mut flows = format!("{answered} of {} answered", tried.len());
            let failed: Vec<&str> = tried
                .iter()
                .filter(|f| f.outcome == harness::checks::Outcome::Fail)
                .map(|f| f.flow.as_str())
                .collect();
            if !failed.is_empty() {
                flows.push_str(&format!("; failed: {}", failed.join(", ")));
            }
            let recovered: Vec<String> = b
                .recovered()
                .map(|f| format!("{} after {:.1} s", f.flow, f.failed_ms as f64 / 1000.0))
                .collect();
            if !recovered.is_empty() {
                flows.push_str(&format!("; recovered: {}", recovered.join(", ")));
            }
            let refused = b
                .checks
                .iter()
                .filter(|c| c.outcome == harness::checks::Outcome::Fail)
                .count();
            let held = b.checks.len() - refused;
            let credentials = if refused == 0 {
                format!("{held} held")
            } else {
                format!("{held} held, {refused} refused")
            };
            [
                b.name(),
                format!("{:.1} s", b.lasted_ms as f64 / 1000.0),
                flows,
                credentials,
            ]
        })
        .collect()
}

/// `text` escaped for HTML and XML text and attribute values.
pub(crate) fn xml(text: &str) -> String {
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
        "# Rehearsal of `{}`\n\nStarted {}, {:.1} s, time scale {}.\n\n**{}**\n\n",
        j.runbook,
        j.started,
        j.wall_ms as f64 / 1000.0,
        j.time_scale,
        headline(j)
    );
    out.push_str(&summary_table_markdown(j));
    if !j.skipped.is_empty() {
        out.push_str("\nSkipped, as asked (`--skip-inapplicable`): they no longer apply to this runbook.\n\n");
        for k in &j.skipped {
            out.push_str(&format!("- {}\n", k.why));
        }
    }
    out.push_str(&findings_markdown(j));
    for s in &j.scenarios {
        out.push_str(&scenario_markdown(s));
    }
    redactor.redact(&html_escaped_outside_code(&out))
}

/// `markdown` with `<`, `>` and `&` escaped wherever a Markdown renderer would read them as
/// HTML: everywhere but code spans and fenced code blocks, which show them as they are. The
/// journal's text (commands, logs, evidence) is the node's, and a `<script>` in it stays text.
pub fn html_escaped_outside_code(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len());
    let mut fence: Option<String> = None;
    for line in markdown.split_inclusive('\n') {
        let trimmed = line.trim_start();
        let mark: String = trimmed
            .chars()
            .take_while(|c| *c == '`' || *c == '~')
            .collect();
        let is_fence = mark.len() >= 3 && mark.chars().all(|c| c == mark.chars().next().unwrap());
        match &fence {
            Some(open) => {
                if is_fence && mark.starts_with(open.as_str()) && trimmed.trim_end() == mark {
                    fence = None;
                }
                out.push_str(line);
            }
            None if is_fence => {
                fence = Some(mark);
                out.push_str(line);
            }
            None => escape_line_outside_spans(line, &mut out),
        }
    }
    out
}

/// One line outside a fence: code spans (a run of backticks up to the next run of the same
/// length) as they are, the rest escaped; an unmatched run of backticks is text.
fn escape_line_outside_spans(line: &str, out: &mut String) {
    let mut rest = line;
    while let Some(start) = rest.find('`') {
        escape_text(&rest[..start], out);
        let run = rest[start..].chars().take_while(|c| *c == '`').count();
        let after = &rest[start + run..];
        let closing = (0..after.len())
            .filter(|&i| after.is_char_boundary(i))
            .find(|&i| {
                after[i..].starts_with(&"`".repeat(run))
                    && !after[i + run..].starts_with('`')
                    && (i == 0 || !after[..i].ends_with('`'))
            });
        match closing {
            Some(end) => {
                out.push_str(&rest[start..start + run + end + run]);
                rest = &after[end + run..];
            }
            None => {
                out.push_str(&rest[start..start + run]);
                rest = after;
            }
        }
    }
    escape_text(rest, out);
}

fn escape_text(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            c => out.push(c),
        }
    }
}

/// One row per scenario: outcome and the probe's numbers, the rollback's after them.
fn summary_table_markdown(j: &Journal) -> String {
    let mut out = String::from("| scenario | expected | actual | met | ok | delayed | lost | api failed | longest outage | rollback: ok / delayed / lost, longest outage |\n|---|---|---|---|---|---|---|---|---|---|\n");
    for s in &j.scenarios {
        let p = s.probe.as_ref();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} ms | {} |\n",
            s.id,
            s.expected,
            actual(s),
            if s.met { "yes" } else { "**no**" },
            p.map(|p| p.updates_ok).unwrap_or(0),
            p.map(|p| p.updates_delayed).unwrap_or(0),
            p.map(|p| p.updates_lost).unwrap_or(0),
            p.map(|p| p.flows["api"].failed).unwrap_or(0),
            p.map(|p| p.longest_outage_ms()).unwrap_or(0),
            s.rollback_probe
                .as_ref()
                .map(|r| format!("{}, {} ms", updates(r), r.longest_outage_ms()))
                .unwrap_or_else(|| "no rollback".into())
        ));
    }
    out
}

/// A scenario's section: its seed, faults, steps with what ran and what was measured, and
/// the checks failing after the steps.
fn scenario_markdown(s: &ScenarioRecord) -> String {
    let mut out = format!("\n## {} — {}\n\n", s.id, s.title);
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
        out.push_str(&step_markdown(step));
    }
    let failing = s.failed_after();
    if !failing.is_empty() {
        out.push_str("\nChecks failing after the steps:\n\n");
        for c in failing {
            out.push_str(&format!("- `{}`: {}\n", c.id, c.evidence));
        }
        if let Some(line) = not_live_line(s) {
            out.push_str(&format!("\n{line}.\n"));
        }
    }
    let windows = boundary_lines(s);
    if !windows.is_empty() {
        out.push_str("\nStep boundaries where a credential was refused or a flow failed:\n\n");
        for (what, line) in windows {
            out.push_str(&format!("- {what}: {line}\n"));
        }
    }
    let budgets = budget_rows(s);
    if !budgets.is_empty() {
        out.push_str("\nImpact against each phase's budget:\n\n");
        out.push_str(&table_markdown(&BUDGET_COLUMNS, &budgets));
    }
    if let Some(line) = outage_line(s) {
        out.push_str(&format!("\n{line}.\n"));
    }
    let rows = boundary_rows(s);
    if !rows.is_empty() {
        out.push_str(
            "\nEvery step boundary (each flow tried end to end, each credential held tried):\n\n",
        );
        out.push_str(&table_markdown(&BOUNDARY_COLUMNS, &rows));
    }
    out
}

/// A step: the operator's hand, each shell block's command and exit (and the Compose commands
/// it ran), and its measurements.
fn step_markdown(step: &StepRecord) -> String {
    let mut out = format!(
        "- **{}** {} {}\n",
        step.id,
        step.title,
        if step.ok { "" } else { "(failed)" }
    );
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
            for c in &sh.compose {
                out.push_str(&format!("    - ran by {}: `{}`\n", c.tool, c.args));
            }
        }
    }
    for m in &step.measurements {
        out.push_str(&format!("  - measured {}: {m}\n", m.label()));
    }
    out
}

/// An SVG timeline of one probe: one lane per flow, green for successes and red for failures
/// per bucket, faults shaded, step starts marked (steps and faults in ms since the probe began).
fn timeline_svg(p: &ProbeReport, steps: &[StepRecord], faults: &[FaultRecord]) -> String {
    let buckets = p.timeline.values().map(Vec::len).max().unwrap_or(0).max(1);
    let (width, lane) = (900.0, 28.0);
    let x = |i: usize| 90.0 + (i as f64) * (width - 100.0) / buckets as f64;
    let w = ((width - 100.0) / buckets as f64).max(0.5);
    let below = 66.0 + lane * 3.0;
    let mut svg = format!("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{}\" font-family=\"sans-serif\" font-size=\"11\">", below + LANES_BELOW_HEIGHT);
    // Each step's span, shaded in turn behind the lanes: which step the traffic ran under.
    for (n, step) in steps.iter().enumerate() {
        let (x0, x1) = (
            x((step.started_ms / BUCKET_MS) as usize),
            x((step.ended_ms.max(step.started_ms) / BUCKET_MS) as usize),
        );
        svg.push_str(&format!(
            "<rect x=\"{x0:.1}\" y=\"6\" width=\"{:.1}\" height=\"{}\" fill=\"{}\"><title>{} {} ({:.1}–{:.1} s)</title></rect>",
            (x1 - x0).max(0.5),
            lane * 3.0,
            if n % 2 == 0 { "#e8eef7" } else { "#f4f6fa" },
            xml(&step.id),
            xml(&step.title),
            step.started_ms as f64 / 1000.0,
            step.ended_ms as f64 / 1000.0,
        ));
    }
    svg.push_str(&time_axis(buckets, 10.0 + lane * 3.0, &x));
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
    svg.push_str(&fault_bands_svg(faults, lane, &x));
    // Steps that start within a few pixels of each other (phase 1's, a few ms apart) keep their
    // line and tooltip; only the first of them is labelled, so the labels stay readable.
    let mut last_label = f64::NEG_INFINITY;
    for step in steps {
        let at = x((step.started_ms / BUCKET_MS) as usize);
        svg.push_str(&format!(
            "<line x1=\"{at:.1}\" x2=\"{at:.1}\" y1=\"6\" y2=\"{}\" stroke=\"#555\" stroke-dasharray=\"2,2\"><title>{} {}</title></line>",
            10.0 + lane * 3.0,
            xml(&step.id),
            xml(&step.title),
        ));
        if at - last_label >= 70.0 {
            svg.push_str(&format!(
                "<text x=\"{at:.1}\" y=\"{}\" font-size=\"9\">{}</text>",
                38.0 + lane * 3.0,
                xml(&step.id)
            ));
            last_label = at;
        }
    }
    svg.push_str(&containers_and_telegram_svg(p, below, buckets, &x));
    svg.push_str("</svg>");
    svg
}

/// Faults: a shaded band from injection to teardown, labelled below the lanes.
fn fault_bands_svg(faults: &[FaultRecord], lane: f64, x: &impl Fn(usize) -> f64) -> String {
    let mut svg = String::new();
    for f in faults {
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
            50.0 + lane * 3.0,
            xml(&f.name)
        ));
    }
    svg
}

/// One lane per container, and Telegram's two series.
const SERVICE_LANE: f64 = 12.0;
const SERIES_HEIGHT: f64 = 34.0;
const LANES_BELOW_HEIGHT: f64 = 8.0 * SERVICE_LANE + 2.0 * (SERIES_HEIGHT + 10.0) + 12.0;

/// Below the flows, from `top`: one lane per service, green while its container ran and red
/// while it did not (the engine's events), then Telegram's backlog and delivery delay over
/// time, each scaled to its own maximum.
fn containers_and_telegram_svg(
    p: &ProbeReport,
    top: f64,
    buckets: usize,
    x: &dyn Fn(usize) -> f64,
) -> String {
    let mut svg = String::new();
    let end = x(buckets);
    let at = |ms: u64| x((ms / BUCKET_MS) as usize).min(end);
    for (row, service) in harness::services::Service::ALL.iter().enumerate() {
        let y = top + row as f64 * SERVICE_LANE;
        let key = service.key();
        svg.push_str(&format!(
            "<text x=\"4\" y=\"{:.1}\" font-size=\"8\">{key}</text><rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#cfe8d4\"/>",
            y + 8.0,
            x(0),
            y + 1.0,
            end - x(0),
            SERVICE_LANE - 4.0
        ));
        for span in p.containers_down.get(key).into_iter().flatten() {
            let (x0, x1) = (at(span.from_ms), span.to_ms.map_or(end, at));
            svg.push_str(&format!(
                "<rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"#d33\"><title>{key} not running {}</title></rect>",
                y + 1.0,
                (x1 - x0).max(1.5),
                SERVICE_LANE - 4.0,
                match span.to_ms {
                    Some(to) => format!("{:.1}–{:.1} s", span.from_ms as f64 / 1000.0, to as f64 / 1000.0),
                    None => format!("from {:.1} s on", span.from_ms as f64 / 1000.0),
                }
            ));
        }
    }
    let t = &p.telegram;
    let series = [
        ("backlog", &t.backlog_series, "updates"),
        ("delay", &t.delay_series_ms, "ms"),
    ];
    for (n, (name, values, unit)) in series.into_iter().enumerate() {
        let y = top + 8.0 * SERVICE_LANE + 10.0 + n as f64 * (SERIES_HEIGHT + 10.0);
        let max = values.iter().copied().max().unwrap_or(0);
        svg.push_str(&format!(
            "<text x=\"4\" y=\"{:.1}\" font-size=\"9\">{name}</text><text x=\"4\" y=\"{:.1}\" font-size=\"8\" fill=\"#666\">max {max} {unit}</text><path d=\"M{:.1} {:.1} H{end:.1}\" stroke=\"#bbb\"/>",
            y + 12.0,
            y + 24.0,
            x(0),
            y + SERIES_HEIGHT,
        ));
        if max == 0 {
            continue;
        }
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                format!(
                    "{:.1},{:.1}",
                    at(i as u64 * SERIES_MS),
                    y + SERIES_HEIGHT - SERIES_HEIGHT * *v as f64 / max as f64
                )
            })
            .collect();
        svg.push_str(&format!(
            "<polyline points=\"{}\" fill=\"none\" stroke=\"#3367d6\" stroke-width=\"1.2\"><title>Telegram's {name} over time, at most {max} {unit}</title></polyline>",
            points.join(" ")
        ));
    }
    svg
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

/// A time axis under the lanes at `y`: ticks in seconds since the first step, at most about
/// ten of them (1, 2, 5, 10, 20, 30 or 60 s apart), as one path and their labels.
fn time_axis(buckets: usize, y: f64, x: &dyn Fn(usize) -> f64) -> String {
    let total_s = (buckets as u64 * BUCKET_MS) as f64 / 1000.0;
    let step_s = [1u64, 2, 5, 10, 20, 30, 60, 120, 300]
        .into_iter()
        .find(|s| total_s / *s as f64 <= 10.0)
        .unwrap_or(600);
    let mut path = format!("M{:.1} {y:.1}H{:.1}", x(0), x(buckets));
    let mut labels = String::new();
    let mut t = 0;
    while t as f64 <= total_s {
        let at = x((t * 1000 / BUCKET_MS) as usize);
        path.push_str(&format!("M{at:.1} {y:.1}v4"));
        labels.push_str(&format!(
            "<text x=\"{at:.1}\" y=\"{:.1}\" font-size=\"9\" text-anchor=\"middle\" fill=\"#555\">{t} s</text>",
            y + 13.0
        ));
        t += step_s;
    }
    format!("<path d=\"{path}\" stroke=\"#555\" fill=\"none\"/>{labels}")
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

#[cfg(test)]
mod tests {
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
}
