//! The scenario catalogue against what it claims: every scenario names a test that exists and
//! steps the runbook has, and the committed lock matches the runbook and the catalogue.

use harness::runbook::coverage::ScenarioRef;
use harness::runbook::findings::FindingKind;
use harness::runbook::lock::{Lock, DEFAULT_LOCK};
use harness::runbook::{workspace_path, Runbook, DEFAULT_RUNBOOK};
use scenarios::{v2_catalogue, CATALOGUE, V2_LOCK};

const V2_RUNBOOK: &str = "fixtures/runbook/SECRETS_ROTATION_RUNBOOK.v2.md";

fn test_sources() -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect()
}

#[test]
fn every_scenario_names_an_existing_test_and_existing_steps_and_finding_kinds() {
    names_existing_tests_steps_and_kinds(DEFAULT_RUNBOOK, CATALOGUE);
}

#[test]
fn every_finding_kind_a_scenario_can_measure_has_one_in_the_catalogue() {
    let measured: std::collections::BTreeSet<FindingKind> = CATALOGUE
        .iter()
        .flat_map(|s| s.findings.iter().copied())
        .collect();
    let unmeasured: Vec<FindingKind> = FindingKind::ALL
        .into_iter()
        .filter(|k| !measured.contains(k))
        .collect();
    // A runbook without a rollback has nothing a scenario could rehearse.
    assert_eq!(unmeasured, vec![FindingKind::NoRollback]);
}

#[test]
fn every_v2_scenario_names_an_existing_test_and_existing_steps_of_the_v2_runbook() {
    names_existing_tests_steps_and_kinds(V2_RUNBOOK, v2_catalogue());
}

fn names_existing_tests_steps_and_kinds(runbook: &str, catalogue: &[ScenarioRef]) {
    let runbook = Runbook::load(&workspace_path(runbook)).unwrap();
    let sources = test_sources();
    for s in catalogue {
        assert!(
            sources.contains(&format!("fn {}(", s.test))
                || sources.contains(&format!("    {} => \"", s.test)),
            "{}: no test `{}`",
            s.id,
            s.test
        );
        for step in s.steps {
            assert!(
                runbook.step(step).is_some(),
                "{}: the runbook has no step {step}",
                s.id
            );
        }
    }
    let mut ids: Vec<&str> = catalogue.iter().map(|s| s.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), catalogue.len(), "scenario ids are unique");
}

#[test]
fn the_committed_lock_matches_the_runbook_and_the_catalogue() {
    lock_matches(DEFAULT_RUNBOOK, DEFAULT_LOCK, CATALOGUE);
}

#[test]
fn the_committed_v2_lock_matches_the_v2_runbook_and_its_catalogue() {
    lock_matches(V2_RUNBOOK, V2_LOCK, v2_catalogue());
}

fn lock_matches(path: &str, lock: &str, catalogue: &[ScenarioRef]) {
    let runbook = Runbook::load(&workspace_path(path)).unwrap();
    let locked = Lock::load(&workspace_path(lock)).unwrap();
    let diff = locked.diff(&Lock::of(&runbook, catalogue));
    assert!(
        diff.is_clean(),
        "the runbook or the scenario catalogue changed since the lock was accepted:\n{}\
         re-review, then run `cargo xtask runbook accept --runbook {}`",
        diff.report(),
        path
    );
}

#[test]
fn every_scenario_applies_to_its_runbook_its_phases_fault_steps_and_edited_texts_all_there() {
    for file in [DEFAULT_RUNBOOK, V2_RUNBOOK] {
        let runbook = Runbook::load(&workspace_path(file)).unwrap();
        let found: Vec<String> = scenarios::rehearsals_for(&runbook.file)
            .iter()
            .flat_map(|s| harness::rehearsal::applies::not_applicable(s, &runbook))
            .map(|n| n.to_string())
            .collect();
        assert_eq!(found, Vec::<String>::new(), "{file}");
    }
}
