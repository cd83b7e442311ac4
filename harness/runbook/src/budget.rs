//! Impact budgets: how long each phase may leave a node service down at a stretch, and how long
//! Telegram updates may wait (p99), as the runbook states them or by default.
//!
//! A runbook states a budget in a sentence starting `Impact budget` (in the overview for every
//! phase, in a phase's preamble for that phase): `each service down at most N s` and `Telegram
//! updates delayed at most N s`. An overview that promises the rotation runs `without
//! downtime` (or `without service downtime`) with no qualification is a budget of zero
//! downtime. What no sentence states takes [`DEFAULT`]. The node's own downtime (a container not
//! running) is judged by default because it is stable from run to run (0.5–0.7 s per recreate);
//! Telegram's delay is dominated by its retry backoff, which varies several-fold between runs,
//! so it is judged only where the runbook states it, and always reported beside.

use super::{Phase, Runbook};
use serde::{Deserialize, Serialize};

/// Where a phase's budget comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BudgetSource {
    /// This tool's default ([`DEFAULT`]).
    Default,
    /// The overview's `without downtime`.
    NoDowntimePromised,
    /// An `Impact budget` sentence of the overview.
    Overview,
    /// An `Impact budget` sentence of the phase.
    Phase,
}

/// One phase's budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    /// The longest a node service's container may be down at a stretch, in ms.
    pub service_down_ms: u64,
    /// The longest Telegram updates may wait, p99, in ms (None: reported, not judged).
    pub telegram_delay_p99_ms: Option<u64>,
    pub source: BudgetSource,
}

/// The budget a phase has when nothing states one: a service down at most 10 s at a stretch (a
/// recreate keeps a container down 0.5–0.7 s, up to 5 s while the engine is busy), Telegram's
/// delay not judged.
pub const DEFAULT: Budget = Budget {
    service_down_ms: 10_000,
    telegram_delay_p99_ms: None,
    source: BudgetSource::Default,
};

/// `phase`'s budget in `runbook`.
pub fn of_phase(runbook: &Runbook, phase: &Phase) -> Budget {
    let mut budget = DEFAULT;
    if promises_no_downtime(&runbook.overview) {
        budget.service_down_ms = 0;
        budget.source = BudgetSource::NoDowntimePromised;
    }
    for (text, source) in [
        (&runbook.overview, BudgetSource::Overview),
        (&phase.preamble, BudgetSource::Phase),
    ] {
        for sentence in budget_sentences(text) {
            if let Some(s) = seconds_after(&sentence, "down at most") {
                budget.service_down_ms = s;
                budget.source = source;
            }
            if let Some(s) = seconds_after(&sentence, "delayed at most") {
                budget.telegram_delay_p99_ms = Some(s);
                budget.source = source;
            }
        }
    }
    budget
}

/// Whether `overview` promises no downtime without qualifying it ("without downtime where the
/// node's components allow it" qualifies it).
fn promises_no_downtime(overview: &str) -> bool {
    let flat = overview.split_whitespace().collect::<Vec<_>>().join(" ");
    let lower = flat.to_lowercase();
    [
        "without service downtime",
        "without downtime",
        "no downtime",
        "zero downtime",
    ]
    .iter()
    .any(|promise| {
        lower.match_indices(promise).any(|(at, _)| {
            let rest = &lower[at + promise.len()..];
            let rest = rest.split('.').next().unwrap_or("");
            !["where", "except", "unless", "if "]
                .iter()
                .any(|q| rest.trim_start().starts_with(q))
        })
    })
}

/// The sentences of `text` that start with `Impact budget`.
fn budget_sentences(text: &str) -> Vec<String> {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = Vec::new();
    let mut rest = flat.as_str();
    while let Some(at) = rest.find("Impact budget") {
        let sentence = &rest[at..];
        let end = sentence.find(". ").map(|e| e + 1).unwrap_or(sentence.len());
        out.push(sentence[..end].to_string());
        rest = &sentence[end..];
    }
    out
}

/// `N` in `… {marker} N s …`, in ms.
fn seconds_after(sentence: &str, marker: &str) -> Option<u64> {
    let at = sentence.find(marker)? + marker.len();
    let number: String = sentence[at..]
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let value: f64 = number.parse().ok()?;
    let unit = sentence[at..].trim_start()[number.len()..].trim_start();
    (unit.starts_with('s') || unit.starts_with("second")).then(|| (value * 1000.0).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped(name: &str) -> String {
        std::fs::read_to_string(crate::workspace_path(&format!("fixtures/runbook/{name}"))).unwrap()
    }

    fn budgets(text: &str) -> Vec<(u32, u64, Option<u64>, BudgetSource)> {
        let r = crate::parse("r.md", text).unwrap();
        r.phases
            .iter()
            .map(|p| {
                let b = of_phase(&r, p);
                (
                    p.number,
                    b.service_down_ms,
                    b.telegram_delay_p99_ms,
                    b.source,
                )
            })
            .collect()
    }

    #[test]
    fn the_as_written_promise_of_no_service_downtime_is_a_budget_of_zero_in_every_phase() {
        let all = budgets(&shipped("SECRETS_ROTATION_RUNBOOK.md"));
        assert_eq!(all.len(), 5);
        for b in all {
            assert_eq!((b.1, b.2, b.3), (0, None, BudgetSource::NoDowntimePromised));
        }
    }

    #[test]
    fn v2s_overview_states_its_budget_and_a_phase_sentence_overrides_it() {
        let v2 = shipped("SECRETS_ROTATION_RUNBOOK.v2.md");
        assert!(budgets(&v2)
            .iter()
            .all(|b| (b.1, b.2, b.3) == (10_000, Some(60_000), BudgetSource::Overview)));
        let edited = v2.replacen(
            "### Phase 6: PostgreSQL Password (15 min)\n",
            "### Phase 6: PostgreSQL Password (15 min)\n\nImpact budget: each service down at most 1.5 s.\n",
            1,
        );
        let phase6 = budgets(&edited).into_iter().find(|b| b.0 == 6).unwrap();
        assert_eq!(phase6, (6, 1_500, Some(60_000), BudgetSource::Phase));
    }

    #[test]
    fn a_qualified_promise_of_no_downtime_keeps_the_default() {
        let v2 = shipped("SECRETS_ROTATION_RUNBOOK.v2.md");
        let start = v2.find("Impact budget\nof every phase").unwrap();
        let end = start + v2[start..].find("(p99).").unwrap() + "(p99).".len();
        let without = format!("{}{}", &v2[..start], &v2[end..]);
        assert!(without.contains("without downtime where the node's components allow it"));
        assert!(budgets(&without)
            .iter()
            .all(|b| (b.1, b.2, b.3) == (10_000, None, BudgetSource::Default)));
    }
}
