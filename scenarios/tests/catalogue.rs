//! The scenario catalogue against what it claims: every scenario names a test that exists and
//! steps the runbook has, and the committed lock matches the runbook and the catalogue.

use harness::runbook::lock::{Lock, DEFAULT_LOCK};
use harness::runbook::{findings, workspace_path, Runbook, DEFAULT_RUNBOOK};
use scenarios::CATALOGUE;

fn test_sources() -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect()
}

#[test]
fn every_scenario_names_an_existing_test_and_existing_steps_and_finding_kinds() {
    let runbook = Runbook::load(&workspace_path(DEFAULT_RUNBOOK)).unwrap();
    let sources = test_sources();
    for s in CATALOGUE {
        assert!(
            sources.contains(&format!("fn {}(", s.test)),
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
        for kind in s.findings {
            assert!(
                findings::KINDS.iter().any(|(k, _, _)| k == kind),
                "{}: unknown finding kind {kind}",
                s.id
            );
        }
    }
    let mut ids: Vec<&str> = CATALOGUE.iter().map(|s| s.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), CATALOGUE.len(), "scenario ids are unique");
}

#[test]
fn the_committed_lock_matches_the_runbook_and_the_catalogue() {
    let runbook = Runbook::load(&workspace_path(DEFAULT_RUNBOOK)).unwrap();
    let locked = Lock::load(&workspace_path(DEFAULT_LOCK)).unwrap();
    let diff = locked.diff(&Lock::of(&runbook, CATALOGUE));
    assert!(
        diff.is_clean(),
        "the runbook or the scenario catalogue changed since the lock was accepted:\n{}\
         re-review, then run `cargo xtask runbook accept`",
        diff.report()
    );
}
