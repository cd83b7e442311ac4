//! Each phase's impact measured against its budget (`runbook::budget`): the longest a node
//! service's container was down at a stretch during the phase's steps, outside what an injected
//! fault did, and Telegram's delay p99; and the scenario's longest Telegram outage split into
//! the node's own downtime and the time after it (Telegram's backoff, the services' start).

use crate::budgets::{BudgetRecord, DownMeasure, OutageSplit};
use crate::journal::{FaultRecord, StepRecord};
use crate::probe::{ProbeReport, BUCKET_MS};
use harness::runbook::budget;
use harness::runbook::Runbook;
use harness::services::Service;

/// How long after an injected fault is undone the downtime it caused may still last (the
/// container's start), not counted against the runbook.
const FAULT_GRACE_MS: u64 = 3_000;

/// Every phase the steps ran, measured against its budget in `runbook`.
pub fn judge(
    runbook: &Runbook,
    steps: &[StepRecord],
    probe: &ProbeReport,
    faults: &[FaultRecord],
) -> Vec<BudgetRecord> {
    let mut phases: Vec<u32> = steps.iter().filter_map(|s| phase_of(&s.id)).collect();
    phases.dedup();
    phases
        .into_iter()
        .filter_map(|n| {
            let phase = runbook.phases.iter().find(|p| p.number == n)?;
            let own: Vec<&StepRecord> = steps
                .iter()
                .filter(|s| phase_of(&s.id) == Some(n))
                .collect();
            let from = own.iter().map(|s| s.started_ms).min()?;
            let to = own.iter().map(|s| s.ended_ms).max()?;
            Some(BudgetRecord {
                phase: n,
                budget: budget::of_phase(runbook, phase),
                longest_down: longest_down(probe, faults, from, to),
                telegram_delay_p99_ms: probe.telegram.delay_p99_ms,
            })
        })
        .collect()
}

/// `phase6.step2` → 6.
fn phase_of(step: &str) -> Option<u32> {
    step.strip_prefix("phase")?.split('.').next()?.parse().ok()
}

/// The node services (the fake upstream is not one).
fn node_services() -> impl Iterator<Item = Service> {
    Service::ALL.into_iter().filter(|s| *s != Service::Upstream)
}

/// The longest stretch a node service was down overlapping `[from, to]`, leaving out the spans
/// that overlap an injected fault (its time, and `FAULT_GRACE_MS` after it).
fn longest_down(
    probe: &ProbeReport,
    faults: &[FaultRecord],
    from: u64,
    to: u64,
) -> Option<DownMeasure> {
    let faulted = |a: u64, b: u64| {
        faults.iter().any(|f| match f.injected_ms {
            Some(i) => {
                let until = f.removed_ms.unwrap_or(probe.duration_ms) + FAULT_GRACE_MS;
                a <= until && b >= i
            }
            None => false,
        })
    };
    node_services()
        .flat_map(|s| {
            probe
                .containers_down
                .get(s.key())
                .into_iter()
                .flatten()
                .map(move |span| (s, span))
        })
        .filter_map(|(s, span)| {
            let end = span.to_ms.unwrap_or(probe.duration_ms);
            (span.from_ms <= to && end >= from && !faulted(span.from_ms, end)).then(|| {
                DownMeasure {
                    service: s.key().to_string(),
                    ms: end.saturating_sub(span.from_ms),
                    from_ms: span.from_ms,
                }
            })
        })
        .max_by_key(|d| d.ms)
}

/// The longest run of the webhook's timeline with failures and no delivery, split by the
/// webhook path's container downtime inside it; none when no delivery failed.
pub fn telegram_outage(probe: &ProbeReport) -> Option<OutageSplit> {
    let buckets = probe.timeline.get("webhook")?;
    let (mut best, mut last_ok, mut failed_since_ok) = (None::<(u64, u64)>, None::<usize>, false);
    for (i, b) in buckets.iter().enumerate() {
        if b.fail > 0 {
            failed_since_ok = true;
        }
        if b.ok > 0 {
            if failed_since_ok {
                let from = last_ok.map_or(0, |k| (k as u64 + 1) * BUCKET_MS);
                let to = i as u64 * BUCKET_MS;
                if to > from && best.is_none_or(|(f, t)| t - f < to - from) {
                    best = Some((from, to));
                }
            }
            last_ok = Some(i);
            failed_since_ok = false;
        }
    }
    let (from, to) = best?;
    let path = [
        Service::Gateway,
        Service::Router,
        Service::Memory,
        Service::Postgres,
        Service::Nats,
    ];
    let mut down: Vec<(u64, u64)> = path
        .iter()
        .flat_map(|s| probe.containers_down.get(s.key()).into_iter().flatten())
        .map(|span| {
            let end = span.to_ms.unwrap_or(probe.duration_ms);
            (span.from_ms.max(from), end.min(to))
        })
        .filter(|(a, b)| a < b)
        .collect();
    down.sort();
    let mut node_down = 0;
    let mut covered_to = from;
    for (a, b) in down {
        let a = a.max(covered_to);
        if b > a {
            node_down += b - a;
            covered_to = b;
        }
    }
    let longest = to - from;
    Some(OutageSplit {
        from_ms: from,
        longest_ms: longest,
        node_down_ms: node_down,
        after_node_ms: longest - node_down,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budgets::telegram_over;
    use crate::probe::{Bucket, DownSpan};
    use harness::runbook::budget::Budget;
    use harness::runbook::budget::{BudgetSource, DEFAULT};

    fn probe_with(webhook: &[(u32, u32)], gateway_down: &[(u64, u64)]) -> ProbeReport {
        let mut p = ProbeReport {
            duration_ms: webhook.len() as u64 * BUCKET_MS,
            ..ProbeReport::default()
        };
        p.timeline.insert(
            "webhook".into(),
            webhook
                .iter()
                .map(|&(ok, fail)| Bucket { ok, fail })
                .collect(),
        );
        p.containers_down.insert(
            "gateway".into(),
            gateway_down
                .iter()
                .map(|&(a, b)| DownSpan {
                    from_ms: a,
                    to_ms: Some(b),
                })
                .collect(),
        );
        p
    }

    #[test]
    fn a_telegram_outage_is_split_into_the_gateways_downtime_and_the_backoff_after_it() {
        // Delivered at 0, failing from 50 ms, delivered again at 1 000 ms; the gateway was down
        // 100–400 ms.
        let mut buckets = vec![(1, 0)];
        buckets.extend(std::iter::repeat_n((0, 1), 19));
        buckets.push((1, 0));
        let split = telegram_outage(&probe_with(&buckets, &[(100, 400)])).unwrap();
        assert_eq!(
            split,
            OutageSplit {
                from_ms: 50,
                longest_ms: 950,
                node_down_ms: 300,
                after_node_ms: 650
            }
        );
    }

    #[test]
    fn downtime_an_injected_fault_caused_is_not_counted_against_the_runbook() {
        let p = probe_with(&[(1, 0); 400], &[(1_000, 6_000), (12_000, 12_700)]);
        let mut killed = FaultRecord::new("gateway-killed-for-5s", "phase6.step1");
        killed.injected_ms = Some(1_000);
        killed.removed_ms = Some(6_000);
        assert_eq!(
            longest_down(&p, &[killed], 0, 20_000),
            Some(DownMeasure {
                service: "gateway".into(),
                ms: 700,
                from_ms: 12_000
            })
        );
        assert_eq!(longest_down(&p, &[], 0, 20_000).unwrap().ms, 5_000);
    }

    fn record(phase: u32, limit: Option<u64>, p99: u64) -> BudgetRecord {
        BudgetRecord {
            phase,
            budget: Budget {
                telegram_delay_p99_ms: limit,
                source: BudgetSource::Phase,
                ..DEFAULT
            },
            longest_down: None,
            telegram_delay_p99_ms: p99,
        }
    }

    #[test]
    fn telegrams_delay_is_judged_once_against_the_strictest_budget_of_the_phases_run() {
        let records = [
            record(1, None, 30_000),
            record(9, Some(60_000), 30_000),
            record(10, Some(20_000), 30_000),
        ];
        assert_eq!(
            telegram_over(&records).as_deref(),
            Some("the steps: Telegram updates waited 30.0 s (p99), over the budget of 20.0 s (phase 10: the phase's own)")
        );
        assert_eq!(telegram_over(&records[..2]), None);
    }
}
