//! The scenario catalogue, derived from the scenarios' values and the runbook they rehearse:
//! the steps each one runs, the secrets its phases rotate, the finding kinds it can decide.
//! `runbook show`, the coverage and the lock read it; no entry is written by hand.

use crate::scenario::Scenario;
use crate::verdicts::{can_decide, Reach};
use harness::runbook::coverage::{rotations, variables_of, PhaseRotation, ScenarioRef};
use harness::runbook::findings::{Analysis, FindingKind};
use harness::runbook::Runbook;

/// What an entry reads of the runbook a scenario rehearses: the phases it runs (in the
/// runbook's order), the rollback, inventory and notes, its edits applied, and their analysis.
/// The other phases are left out: nothing the scenario runs depends on them, and a large
/// runbook is analysed in parts no larger than what each scenario rehearses.
struct Rehearsed {
    runbook: Runbook,
    findings: Vec<harness::runbook::findings::Finding>,
    rotations: Vec<Vec<PhaseRotation>>,
}

impl Rehearsed {
    fn of(scenario: &Scenario, runbook: &Runbook) -> Rehearsed {
        let part = Runbook {
            file: runbook.file.clone(),
            overview: runbook.overview.clone(),
            inventory: runbook.inventory.clone(),
            phases: runbook
                .phases
                .iter()
                .filter(|p| scenario.phases.contains(&p.number))
                .cloned()
                .collect(),
            rollback: runbook.rollback.clone(),
            rollback_line: runbook.rollback_line,
            notes: runbook.notes.clone(),
        };
        let runbook = scenario.rehearsed(&part).into_owned();
        Rehearsed {
            findings: Analysis::of(&runbook).findings,
            rotations: rotations(&runbook),
            runbook,
        }
    }
}

/// `scenario`'s entry, against `runbook` as written (the scenario's edits applied to it).
pub fn entry(scenario: &Scenario, runbook: &Runbook) -> ScenarioRef {
    entry_in(scenario, &Rehearsed::of(scenario, runbook))
}

/// The entries of `scenarios`, in order.
pub fn of(scenarios: &[Scenario], runbook: &Runbook) -> Vec<ScenarioRef> {
    scenarios.iter().map(|s| entry(s, runbook)).collect()
}

fn entry_in(scenario: &Scenario, rehearsed: &Rehearsed) -> ScenarioRef {
    let runbook = &rehearsed.runbook;
    let mut runs: Vec<String> = scenario
        .phases
        .iter()
        .filter_map(|n| runbook.phases.iter().find(|p| p.number == *n))
        .flat_map(|p| p.steps.iter().map(|s| s.id.clone()))
        .collect();
    if scenario.rolls_back() {
        runs.extend(runbook.rollback.iter().map(|s| s.id.clone()));
    }
    let reach = Reach::new(
        runs,
        runbook,
        scenario.faults.iter().map(|f| f.fault.name()).collect(),
        &rehearsed.findings,
    );
    let mut findings: Vec<FindingKind> = rehearsed
        .findings
        .iter()
        .filter(|f| can_decide(f, &reach))
        .map(|f| f.kind)
        .collect();
    findings.sort();
    findings.dedup();
    let mut seen = std::collections::HashSet::new();
    let steps: Vec<String> = reach
        .steps
        .iter()
        .filter(|s| seen.insert(s.as_str()))
        .cloned()
        .collect();
    ScenarioRef {
        id: scenario.id.clone(),
        summary: scenario.title.clone(),
        steps,
        secrets: rotated(scenario, runbook, &rehearsed.rotations),
        findings,
    }
}

/// The variables of the inventory's secrets that a command of one of `scenario`'s phases
/// rotates.
fn rotated(
    scenario: &Scenario,
    runbook: &Runbook,
    rotations: &[Vec<PhaseRotation>],
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (row, rotations) in runbook.inventory.iter().zip(rotations) {
        let rotates = rotations
            .iter()
            .any(|r| r.how == "commands" && scenario.phases.contains(&r.phase));
        if rotates {
            for v in variables_of(&row.secret).0 {
                if !out.iter().any(|o| o == v) {
                    out.push(v.to_string());
                }
            }
        }
    }
    out
}
