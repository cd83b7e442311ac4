//! What the journal records of each phase's impact against its budget (`runbook::budget`) and of
//! the scenario's longest Telegram outage; `impact.rs` measures them.

use harness::runbook::budget::{self, Budget};
use serde::{Deserialize, Serialize};

/// One phase's impact against its budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetRecord {
    pub phase: u32,
    pub budget: Budget,
    /// The longest a node service's container was down at a stretch during the phase's steps,
    /// outside injected faults (none: no container went down).
    pub longest_down: Option<DownMeasure>,
    /// Telegram's delay p99 over the scenario's steps (the probe measures it per scenario).
    pub telegram_delay_p99_ms: u64,
}

/// A service's longest stretch down: which, how long, from when (ms since the first step).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownMeasure {
    pub service: String,
    pub ms: u64,
    pub from_ms: u64,
}

impl BudgetRecord {
    /// The phase's service downtime over its budget, in a sentence.
    pub fn over(&self) -> Option<String> {
        let down = self
            .longest_down
            .as_ref()
            .filter(|d| d.ms > self.budget.service_down_ms)?;
        Some(format!(
            "phase {}: {} was down {:.1} s at a stretch (from {:.1} s), over the budget of {:.1} s ({})",
            self.phase,
            down.service,
            down.ms as f64 / 1000.0,
            down.from_ms as f64 / 1000.0,
            self.budget.service_down_ms as f64 / 1000.0,
            source(&self.budget)
        ))
    }
}

/// Telegram's delay over the strictest budget stated for the phases the steps ran, in a
/// sentence: the probe measures the delay once for all the steps, so it is judged once.
pub fn telegram_over(records: &[BudgetRecord]) -> Option<String> {
    let strictest = records
        .iter()
        .filter_map(|r| r.budget.telegram_delay_p99_ms.map(|l| (l, r)))
        .min_by_key(|(l, _)| *l)?;
    let (limit, record) = strictest;
    (record.telegram_delay_p99_ms > limit).then(|| {
        format!(
            "the steps: Telegram updates waited {:.1} s (p99), over the budget of {:.1} s (phase {}: {})",
            record.telegram_delay_p99_ms as f64 / 1000.0,
            limit as f64 / 1000.0,
            record.phase,
            source(&record.budget)
        )
    })
}

/// Where a budget comes from, in words.
pub fn source(b: &Budget) -> &'static str {
    match b.source {
        budget::BudgetSource::Default => "the default",
        budget::BudgetSource::NoDowntimePromised => "the runbook promises no downtime",
        budget::BudgetSource::Overview => "the runbook's overview",
        budget::BudgetSource::Phase => "the phase's own",
    }
}

/// The scenario's longest Telegram outage (no update delivered while some failed), split into
/// the node's own downtime inside it (a container on the webhook's path not running) and the
/// rest (Telegram's backoff, the services' start).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutageSplit {
    pub from_ms: u64,
    pub longest_ms: u64,
    pub node_down_ms: u64,
    pub after_node_ms: u64,
}
