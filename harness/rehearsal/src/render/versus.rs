//! A rehearsal held against a watched rotation (`report compare REHEARSAL WATCH`): per phase,
//! how long it took, which services were down and for how long, and (watched) which checks did
//! not pass and for how long. The rehearsal's side is its whole-rotation scenario, the watch's
//! side is cut into phases by the operator's step marks.

use std::collections::BTreeMap;

use crate::journal::{Journal, ScenarioRecord};
use harness::checks::watch::{Series, WatchJournal};
use harness::checks::Outcome;

/// One phase, both sides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhaseRow {
    /// `phase3`.
    pub phase: String,
    /// From its first step's start to its last step's end; `None`: not rehearsed.
    pub rehearsed_ms: Option<u64>,
    /// From the mark of its first step to the next phase's first mark (or the watch's end);
    /// `None`: no step of it was marked.
    pub watched_ms: Option<u64>,
    /// Per service, how long its container was down within the phase.
    pub rehearsed_down: BTreeMap<String, u64>,
    /// Per service, how long its health check did not pass within the phase.
    pub watched_down: BTreeMap<String, u64>,
    /// Per check, how long it failed or errored within the phase.
    pub watched_failing: BTreeMap<String, u64>,
}

/// The scenario a comparison takes the rehearsal's side from: the whole rotation (`rotation`),
/// else the one with the most steps.
pub fn rehearsed_scenario(journal: &Journal) -> Option<&ScenarioRecord> {
    journal
        .scenarios
        .iter()
        .find(|s| s.id == "rotation")
        .or_else(|| journal.scenarios.iter().max_by_key(|s| s.steps.len()))
}

/// `phase3` of `phase3.step2`; `None` for a rollback step.
fn phase_of(step: &str) -> Option<&str> {
    step.split_once('.')
        .map(|(phase, _)| phase)
        .filter(|p| p.starts_with("phase"))
}

/// The stretches `[from, until)` in which a watched check failed or errored (the last one
/// until the watch's end, `ended_ms`).
fn failing_spans(series: &Series, ended_ms: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
    series
        .points
        .iter()
        .enumerate()
        .filter(|(_, p)| matches!(p.outcome, Outcome::Fail | Outcome::Error))
        .map(move |(i, p)| {
            let until = series.points.get(i + 1).map_or(ended_ms, |n| n.at_ms);
            (p.at_ms, until)
        })
}

/// How much of `[from, to)` overlaps `[a, b)`.
fn overlap(from: u64, to: u64, a: u64, b: u64) -> u64 {
    to.min(b).saturating_sub(from.max(a))
}

/// The phases of both sides in the rehearsal's order, then the watch's phases it did not have.
pub fn compare(scenario: &ScenarioRecord, watch: &WatchJournal) -> Vec<PhaseRow> {
    let mut order: Vec<String> = Vec::new();
    let mut rehearsed: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for step in &scenario.steps {
        let Some(phase) = phase_of(&step.id) else {
            continue;
        };
        if !order.iter().any(|p| p == phase) {
            order.push(phase.to_string());
        }
        let span = rehearsed
            .entry(phase.to_string())
            .or_insert((step.started_ms, step.ended_ms));
        span.0 = span.0.min(step.started_ms);
        span.1 = span.1.max(step.ended_ms);
    }
    // The watch's phases: from the first mark of each to the next phase's first mark.
    let mut starts: Vec<(String, u64)> = Vec::new();
    for mark in &watch.marks {
        let Some(phase) = mark.step.as_deref().and_then(phase_of) else {
            continue;
        };
        if starts.last().map(|(p, _)| p.as_str()) != Some(phase) {
            starts.push((phase.to_string(), mark.at_ms));
        }
    }
    let mut watched: BTreeMap<String, Vec<(u64, u64)>> = BTreeMap::new();
    for (i, (phase, from)) in starts.iter().enumerate() {
        let to = starts
            .get(i + 1)
            .map(|(_, t)| *t)
            .unwrap_or(watch.ended_ms)
            .max(*from);
        watched.entry(phase.clone()).or_default().push((*from, to));
        if !order.contains(phase) {
            order.push(phase.clone());
        }
    }
    let probe = scenario.probe.as_ref();
    order
        .into_iter()
        .map(|phase| {
            let r = rehearsed.get(&phase).copied();
            let w = watched.get(&phase).cloned().unwrap_or_default();
            let mut rehearsed_down = BTreeMap::new();
            if let (Some((from, to)), Some(probe)) = (r, probe) {
                for (service, spans) in &probe.containers_down {
                    let ms: u64 = spans
                        .iter()
                        .map(|s| overlap(from, to, s.from_ms, s.to_ms.unwrap_or(probe.duration_ms)))
                        .sum();
                    if ms > 0 {
                        rehearsed_down.insert(service.clone(), ms);
                    }
                }
            }
            let within = |a: u64, b: u64| -> u64 {
                w.iter().map(|(from, to)| overlap(*from, *to, a, b)).sum()
            };
            let mut watched_down = BTreeMap::new();
            for (service, spans) in &watch.down {
                let ms: u64 = spans
                    .iter()
                    .map(|s| within(s.from_ms, s.until_ms.unwrap_or(watch.ended_ms)))
                    .sum();
                if ms > 0 {
                    watched_down.insert(service.clone(), ms);
                }
            }
            let mut watched_failing = BTreeMap::new();
            for series in &watch.checks {
                let ms: u64 = failing_spans(series, watch.ended_ms)
                    .map(|(from, until)| within(from, until))
                    .sum();
                if ms > 0 {
                    watched_failing.insert(series.id.clone(), ms);
                }
            }
            PhaseRow {
                rehearsed_ms: r.map(|(from, to)| to.saturating_sub(from)),
                watched_ms: (!w.is_empty()).then(|| w.iter().map(|(a, b)| b - a).sum()),
                phase,
                rehearsed_down,
                watched_down,
                watched_failing,
            }
        })
        .collect()
}

/// One step the operator marked, both sides.
#[derive(Debug, Clone, PartialEq)]
pub struct StepRow {
    /// `phase2.step3`.
    pub step: String,
    /// From its start to its end in the rehearsal; `None`: not rehearsed.
    pub rehearsed_ms: Option<u64>,
    /// From its mark to the next mark (or the watch's end).
    pub watched_ms: u64,
    /// Whether production took longer than the rehearsal would have without its time
    /// compression (`rehearsed_ms / time_scale`: the rehearsal compressed its waits, never its
    /// commands, so this bounds it from above).
    pub longer: bool,
}

/// Every step the operator marked, in the watch's order, against its rehearsed duration.
pub fn steps(scenario: &ScenarioRecord, watch: &WatchJournal, time_scale: f64) -> Vec<StepRow> {
    let marked: Vec<(&str, u64)> = watch
        .marks
        .iter()
        .filter_map(|m| m.step.as_deref().map(|s| (s, m.at_ms)))
        .collect();
    marked
        .iter()
        .map(|(step, at)| {
            let until = watch
                .marks
                .iter()
                .map(|m| m.at_ms)
                .find(|t| t > at)
                .unwrap_or(watch.ended_ms)
                .max(*at);
            let rehearsed_ms = scenario
                .steps
                .iter()
                .find(|s| s.id == *step)
                .map(|s| s.ended_ms.saturating_sub(s.started_ms));
            let watched_ms = until - at;
            // Waits compressed by the scale (never stretched beyond their length), commands not.
            let scale = if time_scale > 0.0 {
                time_scale.min(1.0)
            } else {
                1.0
            };
            StepRow {
                step: step.to_string(),
                rehearsed_ms,
                watched_ms,
                longer: rehearsed_ms.is_some_and(|r| watched_ms as f64 > r as f64 / scale),
            }
        })
        .collect()
}

/// Per secret, the checks of it (those verifying it and at most one other secret, as
/// `secrets_of` gives each check's) that failed or errored in the watch, and for how long.
pub fn per_secret(
    watch: &WatchJournal,
    secrets_of: &BTreeMap<String, Vec<String>>,
) -> BTreeMap<String, BTreeMap<String, u64>> {
    let mut out: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for series in &watch.checks {
        let Some(secrets) = secrets_of.get(&series.id).filter(|s| s.len() <= 2) else {
            continue;
        };
        let failing: u64 = failing_spans(series, watch.ended_ms)
            .map(|(from, until)| until.saturating_sub(from))
            .sum();
        if failing == 0 {
            continue;
        }
        for secret in secrets {
            out.entry(secret.clone())
                .or_default()
                .insert(series.id.clone(), failing);
        }
    }
    out
}

fn secs(ms: u64) -> String {
    format!("{:.1} s", ms as f64 / 1000.0)
}

fn listed(per: &BTreeMap<String, u64>, code: bool) -> String {
    if per.is_empty() {
        return "none".into();
    }
    per.iter()
        .map(|(k, ms)| match code {
            true => format!("`{k}` {}", secs(*ms)),
            false => format!("{k} {}", secs(*ms)),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The comparison as Markdown: what was compared, one row per phase (named by `titles`, the
/// runbook's phase titles, where known: each phase rotates one secret), then the steps that
/// took longer in production than rehearsed.
pub fn markdown(
    journal: &Journal,
    scenario: &ScenarioRecord,
    watch: &WatchJournal,
    titles: &BTreeMap<String, String>,
    secrets_of: &BTreeMap<String, Vec<String>>,
) -> String {
    let rows = compare(scenario, watch);
    let mut out = format!(
        "# Rehearsed against watched\n\n\
         Rehearsed: `{}`, scenario `{}` (time scale {}: its waits were compressed, its commands \
         were not). Watched: {}, started {}, {} rounds every {}.\n\n",
        journal.runbook,
        scenario.id,
        journal.time_scale,
        watch.target,
        watch.started,
        watch.rounds,
        secs(watch.interval_ms)
    );
    out.push_str(
        "| phase | took, rehearsed | took, watched | down, rehearsed | down, watched | \
         checks failing, watched |\n|---|---|---|---|---|---|\n",
    );
    for row in &rows {
        let took = |ms: Option<u64>, none: &str| ms.map(secs).unwrap_or_else(|| none.into());
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            match titles.get(&row.phase) {
                Some(title) => format!("{} ({title})", row.phase),
                None => row.phase.clone(),
            },
            took(row.rehearsed_ms, "not rehearsed"),
            took(row.watched_ms, "not marked"),
            listed(&row.rehearsed_down, false),
            match row.watched_ms {
                Some(_) => listed(&row.watched_down, false),
                None => "-".into(),
            },
            match row.watched_ms {
                Some(_) => listed(&row.watched_failing, true),
                None => "-".into(),
            },
        ));
    }
    if !secrets_of.is_empty() {
        let failing = per_secret(watch, secrets_of);
        if failing.is_empty() {
            out.push_str("\nEvery secret's own checks passed throughout the watch.\n");
        } else {
            out.push_str(
                "\nPer secret, its own checks that did not pass in production (for how long, \
                 over the whole watch):\n\n| secret | checks |\n|---|---|\n",
            );
            for (secret, checks) in &failing {
                out.push_str(&format!("| {secret} | {} |\n", listed(checks, true)));
            }
        }
    }
    let longer: Vec<StepRow> = steps(scenario, watch, journal.time_scale)
        .into_iter()
        .filter(|r| r.longer)
        .collect();
    if !longer.is_empty() {
        out.push_str(&format!(
            "\nSteps that took longer than rehearsed, even with the rehearsal's waits uncompressed \
             (its duration / {}):\n\n| step | rehearsed | uncompressed | watched |\n|---|---|---|---|\n",
            journal.time_scale.min(1.0)
        ));
        for r in &longer {
            let rehearsed = r.rehearsed_ms.unwrap_or(0);
            out.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                r.step,
                secs(rehearsed),
                secs((rehearsed as f64 / journal.time_scale.min(1.0)) as u64),
                secs(r.watched_ms)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::StepRecord;
    use crate::probe::{DownSpan, ProbeReport};
    use crate::Expected;
    use harness::checks::watch::{DownSpan as WatchDown, Mark, Point, Series};
    use std::time::SystemTime;

    fn step(id: &str, started_ms: u64, ended_ms: u64) -> StepRecord {
        let mut s = StepRecord::new(id, id);
        (s.started_ms, s.ended_ms) = (started_ms, ended_ms);
        s
    }

    /// Phase 3 recreates the router: rehearsed (0.6 s down in 4 s), watched (the health check
    /// failing one round of 2 s within a phase of 3 minutes); Phase 4 rehearsed, not marked.
    fn pair() -> (ScenarioRecord, WatchJournal) {
        let mut scenario = ScenarioRecord::new(
            "rotation",
            "rotation",
            Expected::Holds,
            SystemTime::UNIX_EPOCH,
        );
        scenario.steps = vec![
            step("phase3.step1", 1_000, 2_000),
            step("phase3.step2", 2_000, 5_000),
            step("phase4.step1", 5_000, 6_000),
            step("rollback.step1", 7_000, 8_000),
        ];
        let mut probe = ProbeReport {
            duration_ms: 9_000,
            ..ProbeReport::default()
        };
        probe.containers_down.insert(
            "router".into(),
            vec![DownSpan {
                from_ms: 3_000,
                to_ms: Some(3_600),
            }],
        );
        scenario.probe = Some(probe);
        let point = |at_ms: u64, outcome: Outcome| Point {
            at_ms,
            outcome,
            evidence: String::new(),
        };
        let watch = WatchJournal {
            version: 1,
            kind: "watch".into(),
            target: "node1".into(),
            started: "2026-12-07T14:00:00Z".into(),
            interval_ms: 2_000,
            rounds: 100,
            ended_ms: 200_000,
            exit_code: 0,
            checks: vec![Series {
                id: "health.router".into(),
                service: "router".into(),
                points: vec![
                    point(2_000, Outcome::Pass),
                    point(60_000, Outcome::Error),
                    point(62_000, Outcome::Pass),
                ],
            }],
            down: BTreeMap::from([(
                "router".to_string(),
                vec![WatchDown {
                    from_ms: 60_000,
                    until_ms: Some(62_000),
                }],
            )]),
            marks: vec![
                Mark {
                    at_ms: 10_000,
                    step: Some("phase3.step1".into()),
                    text: "Rotate".into(),
                },
                Mark {
                    at_ms: 50_000,
                    step: Some("phase3.step2".into()),
                    text: "Recreate".into(),
                },
                Mark {
                    at_ms: 190_000,
                    step: None,
                    text: "done".into(),
                },
            ],
        };
        (scenario, watch)
    }

    #[test]
    fn each_phase_has_its_time_and_its_services_down_on_both_sides() {
        let (scenario, watch) = pair();
        assert_eq!(
            compare(&scenario, &watch),
            vec![
                PhaseRow {
                    phase: "phase3".into(),
                    rehearsed_ms: Some(4_000),
                    watched_ms: Some(190_000),
                    rehearsed_down: BTreeMap::from([("router".into(), 600)]),
                    watched_down: BTreeMap::from([("router".into(), 2_000)]),
                    watched_failing: BTreeMap::from([("health.router".into(), 2_000)]),
                },
                PhaseRow {
                    phase: "phase4".into(),
                    rehearsed_ms: Some(1_000),
                    watched_ms: None,
                    rehearsed_down: BTreeMap::new(),
                    watched_down: BTreeMap::new(),
                    watched_failing: BTreeMap::new(),
                },
            ]
        );
    }

    #[test]
    fn a_step_is_longer_than_rehearsed_only_beyond_its_uncompressed_duration() {
        let (scenario, mut watch) = pair();
        // phase3.step1: 1 s rehearsed at 0.02, 50 s uncompressed; watched 40 s, then 60 s.
        assert_eq!(
            steps(&scenario, &watch, 0.02),
            vec![
                StepRow {
                    step: "phase3.step1".into(),
                    rehearsed_ms: Some(1_000),
                    watched_ms: 40_000,
                    longer: false,
                },
                StepRow {
                    step: "phase3.step2".into(),
                    rehearsed_ms: Some(3_000),
                    watched_ms: 140_000,
                    longer: false,
                },
            ]
        );
        watch.marks[1].at_ms = 70_000;
        let rows = steps(&scenario, &watch, 0.02);
        assert_eq!(
            (rows[0].watched_ms, rows[0].longer, rows[1].longer),
            (60_000, true, false)
        );
    }

    #[test]
    fn each_secret_lists_its_own_checks_that_failed_and_not_the_services_health() {
        let (_, mut watch) = pair();
        watch.checks.push(Series {
            id: "postgres.auth.current.router".into(),
            service: "router".into(),
            points: vec![
                Point {
                    at_ms: 2_000,
                    outcome: Outcome::Pass,
                    evidence: String::new(),
                },
                Point {
                    at_ms: 52_000,
                    outcome: Outcome::Fail,
                    evidence: String::new(),
                },
                Point {
                    at_ms: 58_000,
                    outcome: Outcome::Pass,
                    evidence: String::new(),
                },
            ],
        });
        let secrets_of = BTreeMap::from([
            (
                "postgres.auth.current.router".to_string(),
                vec!["DB_PASSWORD".to_string()],
            ),
            (
                "health.router".to_string(),
                vec![
                    "DB_PASSWORD".into(),
                    "NATS_PASSWORD".into(),
                    "DEEPSEEK_API_KEY".into(),
                ],
            ),
        ]);
        assert_eq!(
            per_secret(&watch, &secrets_of),
            BTreeMap::from([(
                "DB_PASSWORD".to_string(),
                BTreeMap::from([("postgres.auth.current.router".to_string(), 6_000)])
            )])
        );
    }

    #[test]
    fn the_markdown_has_one_row_per_phase() {
        let (scenario, watch) = pair();
        let journal = Journal {
            schema: "rotation-rehearsal/journal".into(),
            version: 11,
            runbook: "RUNBOOK.md".into(),
            runbook_fingerprint: String::new(),
            shard: None,
            started: "2026-12-07T13:00:00Z".into(),
            wall_ms: 9_000,
            time_scale: 0.02,
            scenarios: vec![scenario],
            findings: Vec::new(),
            leftovers: Vec::new(),
            engine_leftovers: Vec::new(),
            skipped: Vec::new(),
            node_profile: None,
        };
        let scenario = rehearsed_scenario(&journal).unwrap();
        let table = markdown(
            &journal,
            scenario,
            &watch,
            &BTreeMap::new(),
            &BTreeMap::new(),
        );
        assert!(
            table.ends_with(
                "| phase | took, rehearsed | took, watched | down, rehearsed | down, watched | \
                 checks failing, watched |\n|---|---|---|---|---|---|\n\
                 | phase3 | 4.0 s | 190.0 s | router 0.6 s | router 2.0 s | `health.router` 2.0 s |\n\
                 | phase4 | 1.0 s | not marked | none | - | - |\n"
            ),
            "{table}"
        );
    }
}
