//! `report.md` and `junit.xml`, and the HTML escaping of markdown outside code spans.

#[allow(unused_imports)]
use super::*;

pub fn junit(j: &Journal, redactor: &Redactor) -> String {
    use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};
    // Each value redacted before the serializer escapes it (see `checks::report`).
    let clean = |text: &str| redactor.redact(text);
    let mut report = Report::new("rehearsal");
    report.set_time(std::time::Duration::from_millis(j.wall_ms));
    let mut suite = TestSuite::new(clean(&j.runbook));
    for s in &j.scenarios {
        let status = if s.met {
            TestCaseStatus::success()
        } else {
            let why = s
                .error
                .clone()
                .unwrap_or_else(|| format!("expected {}, measured {}", s.expected, actual(s)));
            let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
            status.set_message(clean(&why));
            status
        };
        let mut case = TestCase::new(clean(&s.id), status);
        case.set_classname("rehearsal")
            .set_time(std::time::Duration::from_millis(s.wall_ms));
        suite.add_test_case(case);
    }
    report.add_test_suite(suite);
    harness::checks::report::junit_text(&report, redactor)
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
pub(super) fn escape_line_outside_spans(line: &str, out: &mut String) {
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

pub(super) fn escape_text(text: &str, out: &mut String) {
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
pub(super) fn summary_table_markdown(j: &Journal) -> String {
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
pub(super) fn scenario_markdown(s: &ScenarioRecord) -> String {
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
pub(super) fn step_markdown(step: &StepRecord) -> String {
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
