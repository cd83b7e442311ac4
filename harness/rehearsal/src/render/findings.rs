//! The findings table, finding by scenario: confirmed or refuted, with each measurement once.

#[allow(unused_imports)]
use super::*;

/// What the scenarios measured about a finding: each distinct verdict and evidence once, with
/// the scenarios that gave it (eleven scenarios confirming the same thing make one line).
pub(super) fn evidence_groups(f: &FindingSummary) -> Vec<(String, String, Vec<String>)> {
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
pub(super) const NOT_MEASURED: &str =
    "not measured by this run's scenarios (`--only '*'` runs every scenario)";

/// A finding's cell for one scenario: ✔ confirmed, ✘ refuted, blank when not measured.
pub(super) fn verdict_mark(f: &FindingSummary, scenario: &str) -> (&'static str, Option<String>) {
    match f.measured.iter().find(|(s, _, _)| s == scenario) {
        Some((_, v, e)) if v == "confirmed" => ("✔", Some(e.clone())),
        Some((_, _, e)) => ("✘", Some(e.clone())),
        None => ("", None),
    }
}

/// The findings as one table, finding × scenario (columns numbered, the legend below), then
/// the evidence once per finding and verdict.
pub(super) fn findings_markdown(j: &Journal) -> String {
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
pub(super) fn findings_html(j: &Journal) -> String {
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
