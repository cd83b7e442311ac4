//! The run in words: counts of updates and calls, the one-sentence summary, each scenario's
//! boundaries, outages and budgets as rows, and the tables they go in.

#[allow(unused_imports)]
use super::*;

pub(super) fn counts(p: &ProbeReport) -> String {
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
pub(super) fn data_missing(p: &ProbeReport) -> Option<String> {
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
pub(super) fn updates(p: &ProbeReport) -> String {
    format!(
        "{} / {} / {}",
        p.updates_ok, p.updates_delayed, p.updates_lost
    )
}

pub(super) fn actual(s: &ScenarioRecord) -> String {
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
pub(super) fn not_live_line(s: &ScenarioRecord) -> Option<String> {
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
pub(super) fn outage_line(s: &ScenarioRecord) -> Option<String> {
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
pub(super) fn budget_rows(s: &ScenarioRecord) -> Vec<[String; 5]> {
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
pub(super) const BUDGET_COLUMNS: [&str; 5] =
    ["phase", "budget", "longest down", "Telegram delay p99", ""];

/// The columns of `boundary_rows`.
pub(super) const BOUNDARY_COLUMNS: [&str; 4] =
    ["boundary", "the node stayed", "flows", "credentials"];

/// A Markdown table of `rows` under `columns`.
pub(super) fn table_markdown<const N: usize>(columns: &[&str; N], rows: &[[String; N]]) -> String {
    let mut out = format!("| {} |\n|{}\n", columns.join(" | "), "---|".repeat(N));
    for row in rows {
        out.push_str(&format!("| {} |\n", row.join(" | ")));
    }
    out
}

/// An HTML table of `rows` under `columns`, every cell escaped.
pub(super) fn table_html<const N: usize>(columns: &[&str; N], rows: &[[String; N]]) -> String {
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
pub(super) fn boundary_rows(s: &ScenarioRecord) -> Vec<[String; 4]> {
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
