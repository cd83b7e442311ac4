//! Past one machine: a stable, cost-balanced share of the scenarios for shard K of N, and the
//! merge of the shards' journals into the one journal a single run would have written.
//!
//! Invariant: every scenario of the selection is in exactly one shard, whatever N, and which
//! one depends only on the selection and each scenario's cost, never on the machine or time.

use std::collections::BTreeSet;

use super::journal::{FindingSummary, Journal, ShardInfo};

/// Shard `index` (from 1) of `count`, as `--shard K/N` spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (k, n) = text
            .split_once('/')
            .ok_or_else(|| format!("`{text}` is not K/N (e.g. 2/4)"))?;
        let number = |t: &str| {
            t.trim()
                .parse::<usize>()
                .map_err(|_| format!("`{text}` is not K/N (e.g. 2/4)"))
        };
        let (index, count) = (number(k)?, number(n)?);
        if count == 0 || count > 64 || index == 0 || index > count {
            return Err(format!(
                "`{text}`: K must be from 1 to N, and N from 1 to 64"
            ));
        }
        Ok(Shard { index, count })
    }
}

/// Which shard (from 0) each of `costs` goes to: longest first, each to the shard with the
/// least cost so far (the lowest-numbered on a tie); equal costs are taken in the order given.
pub fn assign(costs: &[u64], count: usize) -> Vec<usize> {
    let count = count.max(1);
    let mut order: Vec<usize> = (0..costs.len()).collect();
    order.sort_by(|&a, &b| costs[b].cmp(&costs[a]).then(a.cmp(&b)));
    let mut load = vec![0u64; count];
    let mut shard_of = vec![0; costs.len()];
    for i in order {
        let lightest = (0..count)
            .min_by_key(|&s| (load[s], s))
            .expect("at least one shard");
        load[lightest] += costs[i];
        shard_of[i] = lightest;
    }
    shard_of
}

/// Why shard journals cannot be merged into one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    #[error("no journal to merge")]
    Nothing,
    #[error("{file} is not a shard's journal (rehearse it with --shard K/N)")]
    NotAShard { file: String },
    #[error(
        "the shards rehearsed different runbooks: {first_file} has fingerprint {first}, {file} \
         has {other}"
    )]
    RunbookDiffers {
        first_file: String,
        first: String,
        file: String,
        other: String,
    },
    #[error("the shards were cut from different selections or shard counts ({file} differs)")]
    SelectionDiffers { file: String },
    #[error("scenario {id} is in more than one shard's journal")]
    Duplicate { id: String },
    #[error("scenario(s) of the selection in no shard's journal: {}", ids.join(", "))]
    Missing { ids: Vec<String> },
}

/// One journal from the shards' (each with the file it was read from), as one unsharded run
/// of the same selection would have written it: scenarios in selection order, findings'
/// measurements joined, leftovers joined, the earliest start and the longest wall time.
pub fn merge(shards: Vec<(String, Journal)>) -> Result<Journal, MergeError> {
    let (first_file, first) = shards.first().ok_or(MergeError::Nothing)?.clone();
    let info = |file: &str, j: &Journal| -> Result<ShardInfo, MergeError> {
        j.shard.clone().ok_or_else(|| MergeError::NotAShard {
            file: file.to_string(),
        })
    };
    let first_info = info(&first_file, &first)?;
    let mut seen = BTreeSet::new();
    let mut scenarios = Vec::new();
    let mut leftovers = Vec::new();
    let mut engine_leftovers = Vec::new();
    let mut skipped = Vec::new();
    let mut findings: Vec<FindingSummary> = first.findings.clone();
    for f in &mut findings {
        f.measured.clear();
    }
    let mut started = first.started.clone();
    let mut wall_ms = 0;
    for (file, journal) in &shards {
        let shard = info(file, journal)?;
        same_run((&first_file, &first, &first_info), (file, journal, &shard))?;
        for s in &journal.scenarios {
            if !seen.insert(s.id.clone()) {
                return Err(MergeError::Duplicate { id: s.id.clone() });
            }
            scenarios.push(s.clone());
        }
        join_measured(&mut findings, &journal.findings);
        for k in &journal.skipped {
            if !seen.insert(k.scenario.clone()) {
                return Err(MergeError::Duplicate {
                    id: k.scenario.clone(),
                });
            }
            skipped.push(k.clone());
        }
        leftovers.extend(journal.leftovers.iter().cloned());
        engine_leftovers.extend(journal.engine_leftovers.iter().cloned());
        started = started.min(journal.started.clone());
        wall_ms = wall_ms.max(journal.wall_ms);
    }
    let missing: Vec<String> = first_info
        .selection
        .iter()
        .filter(|id| !seen.contains(*id))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(MergeError::Missing { ids: missing });
    }
    let position = |id: &str| first_info.selection.iter().position(|s| s == id);
    scenarios.sort_by_key(|s| position(&s.id));
    for f in &mut findings {
        f.measured
            .sort_by_key(|(scenario, _, _)| position(scenario));
    }
    Ok(Journal {
        started,
        wall_ms,
        scenarios,
        findings,
        leftovers,
        engine_leftovers,
        skipped,
        shard: None,
        ..first
    })
}

/// Whether `other` is a shard of the same run as `first`: the same runbook, the same
/// selection split the same number of ways.
fn same_run(
    (first_file, first, first_info): (&str, &Journal, &ShardInfo),
    (file, journal, shard): (&str, &Journal, &ShardInfo),
) -> Result<(), MergeError> {
    if journal.runbook_fingerprint != first.runbook_fingerprint {
        return Err(MergeError::RunbookDiffers {
            first_file: first_file.to_string(),
            first: first.runbook_fingerprint.clone(),
            file: file.to_string(),
            other: journal.runbook_fingerprint.clone(),
        });
    }
    if shard.selection != first_info.selection || shard.count != first_info.count {
        return Err(MergeError::SelectionDiffers {
            file: file.to_string(),
        });
    }
    Ok(())
}

/// Each finding's measurements in `other` joined to those in `findings`, each once.
fn join_measured(findings: &mut [FindingSummary], other: &[FindingSummary]) {
    for f in other {
        if let Some(mine) = findings.iter_mut().find(|m| m.id == f.id) {
            for entry in &f.measured {
                if !mine.measured.contains(entry) {
                    mine.measured.push(entry.clone());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_is_read_as_k_of_n_and_nonsense_is_refused_with_its_reason() {
        assert_eq!("2/4".parse(), Ok(Shard { index: 2, count: 4 }));
        for bad in ["0/4", "5/4", "1/0", "4", "a/b", "1/65"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn every_scenario_goes_to_exactly_one_shard_and_the_costs_balance() {
        let costs = [200, 60, 60, 60, 50, 45, 45, 40, 30, 20, 12];
        let shard_of = assign(&costs, 3);
        let load = |s: usize| -> u64 {
            costs
                .iter()
                .zip(&shard_of)
                .filter(|(_, &k)| k == s)
                .map(|(c, _)| c)
                .sum()
        };
        let loads: Vec<u64> = (0..3).map(load).collect();
        assert_eq!(loads.iter().sum::<u64>(), costs.iter().sum::<u64>());
        assert_eq!(loads, [200, 215, 207]);
        assert_eq!(assign(&costs, 3), shard_of, "the same every time");
    }

    use crate::journal::ScenarioRecord;
    use crate::Expected;

    const SELECTION: [&str; 5] = [
        "phase1/as-written",
        "phase2/as-written",
        "rollback/after-phase1",
        "faults/a",
        "faults/b",
    ];

    fn record(id: &str) -> ScenarioRecord {
        let mut r = ScenarioRecord::new(id, id, Expected::Holds, std::time::UNIX_EPOCH);
        r.actual = Some(crate::Outcome::Holds);
        r.met = true;
        r
    }

    /// The journal shard `index` of 3 writes, holding `ids`, with its start and wall time.
    fn shard(index: usize, ids: &[&str], started: &str, wall_ms: u64) -> (String, Journal) {
        let mut j = crate::samples::journal(ids.iter().map(|id| record(id)).collect(), wall_ms);
        j.started = started.into();
        j.findings = vec![FindingSummary {
            id: "placeholder@rollback.step1".into(),
            severity: "medium".into(),
            line: 179,
            explanation: "a placeholder".into(),
            measured: ids
                .iter()
                .filter(|id| id.starts_with("rollback/"))
                .map(|id| (id.to_string(), "confirmed".into(), "exit 2".into()))
                .collect(),
        }];
        j.shard = Some(ShardInfo {
            index,
            count: 3,
            selection: SELECTION.iter().map(|s| s.to_string()).collect(),
        });
        (format!("shard{index}/journal.json"), j)
    }

    fn three_shards() -> Vec<(String, Journal)> {
        vec![
            shard(
                2,
                &["faults/b", "phase2/as-written"],
                "2026-12-01T10:00:05Z",
                90_000,
            ),
            shard(
                1,
                &["rollback/after-phase1"],
                "2026-12-01T10:00:00Z",
                120_000,
            ),
            shard(
                3,
                &["phase1/as-written", "faults/a"],
                "2026-12-01T10:00:09Z",
                60_000,
            ),
        ]
    }

    #[test]
    fn three_shards_merge_into_the_journal_of_one_run_in_selection_order() {
        let merged = merge(three_shards()).unwrap();
        let ids: Vec<&str> = merged.scenarios.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, SELECTION);
        assert_eq!(merged.started, "2026-12-01T10:00:00Z");
        assert_eq!(merged.wall_ms, 120_000, "the shards ran side by side");
        assert_eq!(merged.shard, None, "a whole run's journal");
        assert_eq!(
            merged.findings[0].measured,
            [(
                "rollback/after-phase1".to_string(),
                "confirmed".to_string(),
                "exit 2".to_string()
            )]
        );
        assert!(merged.passed());
    }

    #[test]
    fn shards_of_different_runbooks_a_duplicate_or_a_missing_scenario_are_refused() {
        let mut other = three_shards();
        other[2].1.runbook_fingerprint = "fedcba9876543210".into();
        assert_eq!(
            merge(other).unwrap_err().to_string(),
            "the shards rehearsed different runbooks: shard2/journal.json has fingerprint 0123456789abcdef, shard3/journal.json has fedcba9876543210"
        );
        let mut twice = three_shards();
        twice.push(shard(3, &["faults/a"], "2026-12-01T10:00:09Z", 1));
        assert_eq!(
            merge(twice).unwrap_err(),
            MergeError::Duplicate {
                id: "faults/a".into()
            }
        );
        let mut short = three_shards();
        short.pop();
        assert_eq!(
            merge(short).unwrap_err().to_string(),
            "scenario(s) of the selection in no shard's journal: phase1/as-written, faults/a"
        );
        let mut whole = three_shards();
        whole[0].1.shard = None;
        assert_eq!(
            merge(whole).unwrap_err(),
            MergeError::NotAShard {
                file: "shard2/journal.json".into()
            }
        );
    }

    #[test]
    fn more_shards_than_scenarios_leaves_some_empty_and_loses_none() {
        let shard_of = assign(&[5, 5], 4);
        assert_eq!(shard_of, [0, 1]);
    }
}
