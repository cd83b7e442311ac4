//! The scenario catalogue against what it claims: derived from every scenario, each one tested
//! and naming steps the runbook has, the finding kinds each can decide exactly where a rule
//! needs more than its step, and the committed lock matching the runbook and the catalogue.

use harness::runbook::coverage::ScenarioRef;
use harness::runbook::findings::FindingKind;
use harness::runbook::lock::{Lock, DEFAULT_LOCK};
use harness::runbook::{workspace_path, Runbook, DEFAULT_RUNBOOK};
use scenarios::{catalogue_for, FACTS, V2_LOCK};

const V2_RUNBOOK: &str = "fixtures/runbook/SECRETS_ROTATION_RUNBOOK.v2.md";

fn test_sources() -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect()
}

/// The catalogue of the runbook at `path` (a workspace path).
fn catalogue_of(path: &str) -> (Runbook, Vec<ScenarioRef>) {
    let runbook = Runbook::load(&workspace_path(path)).unwrap();
    let catalogue = catalogue_for(&runbook);
    (runbook, catalogue)
}

#[test]
fn every_catalogue_entry_is_tested_and_names_steps_its_runbook_has() {
    for path in [DEFAULT_RUNBOOK, V2_RUNBOOK] {
        let (runbook, catalogue) = catalogue_of(path);
        tested_with_existing_steps(&runbook, &catalogue);
    }
}

#[test]
fn every_finding_kind_a_scenario_can_decide_has_one_in_the_catalogue() {
    let (_, catalogue) = catalogue_of(DEFAULT_RUNBOOK);
    let decided: std::collections::BTreeSet<FindingKind> = catalogue
        .iter()
        .flat_map(|s| s.findings.iter().copied())
        .collect();
    let undecided: Vec<FindingKind> = FindingKind::ALL
        .into_iter()
        .filter(|k| !decided.contains(k))
        .collect();
    // A runbook without a rollback has nothing a scenario could rehearse.
    assert_eq!(undecided, vec![FindingKind::NoRollback]);
}

#[test]
fn the_catalogue_holds_every_scenario_the_random_phases_and_the_facts_in_order() {
    let (_, catalogue) = catalogue_of(DEFAULT_RUNBOOK);
    let ids: Vec<String> = catalogue.iter().map(|s| s.id.clone()).collect();
    let expected: Vec<String> = scenarios::rehearsals()
        .into_iter()
        .chain(scenarios::fault_rehearsals())
        .map(|s| s.id)
        .chain(["random/phase2", "random/phase3", "random/phase4"].map(String::from))
        .chain(FACTS.iter().map(|f| f.id.to_string()))
        .collect();
    assert_eq!(ids, expected);
    let (_, v2) = catalogue_of(V2_RUNBOOK);
    assert_eq!(v2.len(), scenarios::rehearsals_for(V2_RUNBOOK).len());
}

/// The entry of `id`, rendered as one line per field.
fn entry(path: &str, id: &str) -> String {
    let (_, catalogue) = catalogue_of(path);
    let e = catalogue.into_iter().find(|s| s.id == id).unwrap();
    let kinds: Vec<&str> = e.findings.iter().map(|k| k.id()).collect();
    format!(
        "steps: {}\nsecrets: {}\nfindings: {}\n",
        e.steps.join(" "),
        e.secrets.join(" "),
        kinds.join(" ")
    )
}

#[test]
fn phase3_as_written_runs_its_phase_after_the_preparation_then_the_rollback_and_can_decide_its_kinds(
) {
    assert_eq!(
        entry(DEFAULT_RUNBOOK, "phase3/as-written"),
        "steps: phase1.step1 phase1.step2 phase1.step3 phase3.step1 phase3.step2 phase3.step3 phase3.step4 rollback.step1 rollback.step2 rollback.step3\n\
         secrets: DB_PASSWORD\n\
         findings: restart-keeps-stale-env unanchored-sed secret-on-command-line trust-socket-verification psql-default-database unencrypted-backup backup-retention placeholder no-command rollback-wrong-directory\n"
    );
}

#[test]
fn the_same_day_rerun_with_the_alter_fixed_can_decide_the_overwritten_backup_and_the_files_only_rollback(
) {
    let e = entry(
        DEFAULT_RUNBOOK,
        "faults/phase1-rerun-the-same-day-after-phase3-with-the-alter-fixed",
    );
    let findings = e.lines().nth(2).unwrap();
    assert!(findings.contains(" backup-same-day-overwrite"), "{e}");
    assert!(findings.contains(" rollback-files-only"), "{e}");
    // The fixed `psql` names its database: the server no longer refuses it.
    assert!(!findings.contains(" psql-default-database"), "{e}");
    let plain = entry(DEFAULT_RUNBOOK, "rollback/after-phase3");
    assert!(!plain.contains("backup-same-day-overwrite"), "{plain}");
    assert!(!plain.contains("rollback-files-only"), "{plain}");
}

#[test]
fn only_a_scenario_that_rejects_the_new_key_can_decide_whether_the_selection_falls_back() {
    let (_, catalogue) = catalogue_of(DEFAULT_RUNBOOK);
    let deciding: Vec<&str> = catalogue
        .iter()
        .filter(|s| s.findings.contains(&FindingKind::SelectionNotFallback))
        .map(|s| s.id.as_str())
        .collect();
    assert_eq!(deciding, vec!["faults/phase2-deepseek-rejects-the-new-key"]);
}

fn tested_with_existing_steps(runbook: &Runbook, catalogue: &[ScenarioRef]) {
    let sources = test_sources();
    let facts: std::collections::HashMap<&str, &str> =
        FACTS.iter().map(|f| (f.id, f.test)).collect();
    for s in catalogue {
        let tested = match facts.get(s.id.as_str()) {
            Some(test) => sources.contains(&format!("fn {test}(")),
            None if s.id.starts_with("random/") => sources.contains(
                "fn random_fault_schedules_over_a_phase_lose_nothing_accepted_and_roll_back_to_the_steady_state(",
            ),
            None => {
                let short = s.id.trim_start_matches("faults/");
                sources.contains(&format!("\"{}\"", s.id))
                    || sources.contains(&format!("=> \"{short}\","))
            }
        };
        assert!(tested, "{}: no test runs it", s.id);
        for step in &s.steps {
            assert!(
                runbook.step(step).is_some(),
                "{}: the runbook has no step {step}",
                s.id
            );
        }
    }
    let mut ids: Vec<&str> = catalogue.iter().map(|s| s.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), catalogue.len(), "scenario ids are unique");
}

#[test]
fn the_committed_lock_matches_the_runbook_and_the_catalogue() {
    lock_matches(DEFAULT_RUNBOOK, DEFAULT_LOCK);
}

#[test]
fn the_committed_v2_lock_matches_the_v2_runbook_and_its_catalogue() {
    lock_matches(V2_RUNBOOK, V2_LOCK);
}

fn lock_matches(path: &str, lock: &str) {
    let (runbook, catalogue) = catalogue_of(path);
    let locked = Lock::load(&workspace_path(lock)).unwrap();
    let diff = locked.diff(&Lock::of(&runbook, &catalogue));
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
