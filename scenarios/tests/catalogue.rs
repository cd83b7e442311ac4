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
    // A runbook without a rollback has nothing a scenario could rehearse; an edit that misses
    // a secret's wiring exists only on a node wired otherwise than the replica's default
    // (rehearsed with `--node-profile`: tests/profiles.rs).
    assert_eq!(
        undecided,
        vec![FindingKind::NoRollback, FindingKind::EditMissesWiring]
    );
}

#[test]
fn the_catalogue_holds_every_scenario_the_random_phases_and_the_facts_in_order() {
    let (_, catalogue) = catalogue_of(DEFAULT_RUNBOOK);
    let ids: Vec<String> = catalogue.iter().map(|s| s.id.clone()).collect();
    let runbook = Runbook::load(&workspace_path(DEFAULT_RUNBOOK)).unwrap();
    let expected: Vec<String> = scenarios::derived(&runbook)
        .into_iter()
        .chain(scenarios::derived_faults(&runbook))
        .chain(scenarios::fault_rehearsals())
        .map(|s| s.id)
        .chain(["random/phase2", "random/phase3", "random/phase4"].map(String::from))
        .chain(FACTS.iter().map(|f| f.id.to_string()))
        .collect();
    assert_eq!(ids, expected);
    let (v2_runbook, v2) = catalogue_of(V2_RUNBOOK);
    assert_eq!(
        v2.len(),
        scenarios::rehearsals_for(&v2_runbook).len() + 1,
        "and the one fact that names no step"
    );
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
        entry(DEFAULT_RUNBOOK, "rotate/postgres"),
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
    let plain = entry(DEFAULT_RUNBOOK, "rollback/after-postgres");
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
    assert_eq!(
        deciding,
        vec!["faults/deepseek/step3-deepseek-rejects-the-new-key"]
    );
}

fn tested_with_existing_steps(runbook: &Runbook, catalogue: &[ScenarioRef]) {
    let sources = test_sources();
    let facts: std::collections::HashMap<&str, &str> =
        FACTS.iter().map(|f| (f.id, f.test)).collect();
    // `tests/boundaries.rs` makes a test of each of these, for every shipped runbook.
    let boundaries: Vec<String> = scenarios::derived_faults(runbook)
        .into_iter()
        .map(|s| s.id)
        .collect();
    for s in catalogue {
        let tested = match facts.get(s.id.as_str()) {
            Some(test) => sources.contains(&format!("fn {test}(")),
            None if boundaries.contains(&s.id) => {
                sources.contains("for scenario in scenarios::derived_faults(&runbook) {")
            }
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
        let found: Vec<String> = scenarios::rehearsals_for(&runbook)
            .iter()
            .flat_map(|s| rehearsal::applies::not_applicable(s, &runbook))
            .map(|n| n.to_string())
            .collect();
        assert_eq!(found, Vec::<String>::new(), "{file}");
    }
}

/// The v2 runbook's text, changed by `edit`, parsed as the file `name`.
fn v2_edited(name: &str, edit: impl Fn(String) -> String) -> Runbook {
    let text = std::fs::read_to_string(workspace_path(V2_RUNBOOK)).unwrap();
    harness::runbook::parse(name, &edit(text)).unwrap()
}

/// Each scenario as one line: id, phases, expected outcome, how it ends, its faults' steps and
/// its post-conditions (what decides its verdict).
fn described(scenarios: &[rehearsal::Scenario]) -> Vec<String> {
    scenarios
        .iter()
        .map(|s| {
            let faults: Vec<String> = s.faults.iter().map(|f| format!("{:?}", f.at)).collect();
            format!(
                "{} {:?} {} stop={} overlap={} faults={faults:?} post={:?}",
                s.id,
                s.phases,
                s.expected,
                s.stop_at_failed_step,
                s.replica.gateway_jwt_overlap,
                s.postconditions
            )
        })
        .collect()
}

/// `### Phase a` and `### Phase b` of `text` swapped, whole sections, each renumbered to the
/// other's place.
fn swap_phases(text: &str, a: u32, b: u32) -> String {
    let start = |n: u32| text.find(&format!("### Phase {n}:")).unwrap();
    let (sa, sb, after) = (start(a), start(b), start(b + 1));
    let first = text[sa..sb].replacen(&format!("### Phase {a}:"), &format!("### Phase {b}:"), 1);
    let second =
        text[sb..after].replacen(&format!("### Phase {b}:"), &format!("### Phase {a}:"), 1);
    format!("{}{second}{first}{}", &text[..sa], &text[after..])
}

#[test]
fn v2_saved_under_any_file_name_is_rehearsed_with_the_same_scenarios_and_expectations() {
    let v2 = Runbook::load(&workspace_path(V2_RUNBOOK)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let renamed = dir.path().join("SECRETS_ROTATION_RUNBOOK.md");
    std::fs::copy(workspace_path(V2_RUNBOOK), &renamed).unwrap();
    let renamed = Runbook::load(&renamed).unwrap();
    assert_eq!(
        described(&scenarios::rehearsals_for(&renamed)),
        described(&scenarios::rehearsals_for(&v2))
    );
    assert_eq!(
        scenarios::lock_for(&renamed),
        workspace_path(V2_LOCK),
        "its lock is v2's, found by the steps it holds"
    );
}

#[test]
fn v2_with_two_phases_swapped_rotates_each_secret_in_the_phase_that_now_holds_it() {
    let v2 = Runbook::load(&workspace_path(V2_RUNBOOK)).unwrap();
    let swapped = v2_edited("swapped.md", |t| swap_phases(&t, 3, 4));
    assert_eq!(swapped.phases[2].title, "Grok API Key");
    let renumber = |line: String| {
        // Mistral's phase is now 4 and Grok's 3: the same scenarios, their phases renumbered.
        line.replace("[1, 3]", "[1, @]")
            .replace("[1, 4]", "[1, 3]")
            .replace("[1, @]", "[1, 4]")
            .replace("phase3.", "phase@.")
            .replace("phase4.", "phase3.")
            .replace("phase@.", "phase4.")
    };
    let mut before: Vec<String> = described(&scenarios::rehearsals_for(&v2))
        .into_iter()
        .map(|l| {
            if l.starts_with("rotation ") {
                l
            } else {
                renumber(l)
            }
        })
        .collect();
    let mut after = described(&scenarios::rehearsals_for(&swapped));
    // The whole rotation runs every phase in the runbook's order either way.
    before.sort();
    after.sort();
    assert_eq!(after, before);
}

#[test]
fn v2_with_a_second_deepseek_phase_added_rehearses_it_with_no_change_to_the_code() {
    let added = v2_edited("added.md", |t| {
        let phase2 = &t[t.find("### Phase 2:").unwrap()..t.find("### Phase 3:").unwrap()];
        let again = phase2.replacen("### Phase 2:", "### Phase 13:", 1);
        t.replacen(
            "## Rollback Procedure",
            &format!("{again}## Rollback Procedure"),
            1,
        )
    });
    let all = scenarios::rehearsals_for(&added);
    let lines = described(&all);
    let first = lines
        .iter()
        .find(|l| l.starts_with("rotate/deepseek "))
        .unwrap();
    let second = lines
        .iter()
        .find(|l| l.starts_with("rotate/deepseek-2 "))
        .expect("the added phase is rehearsed");
    assert_eq!(
        second,
        &first.replacen("rotate/deepseek [1, 2]", "rotate/deepseek-2 [1, 13]", 1)
    );
    assert!(all.iter().any(|s| s.id == "rollback/after-deepseek-2"));
    let rotation = all.iter().find(|s| s.id == "rotation").unwrap();
    assert_eq!(rotation.phases.last(), Some(&13));
}

#[tokio::test]
async fn a_phase_rotating_a_secret_the_replica_does_not_model_is_inconclusive_naming_it() {
    let stripe = v2_edited("stripe.md", |t| {
        t.replace(
            "| Telegram Bot Tokens | Gateway `.env` | Gateway | As needed |",
            "| Telegram Bot Tokens | Gateway `.env` | Gateway | As needed |\n\
             | Stripe API Key | Billing `.env` | Billing | Yearly |",
        )
        .replacen(
            "## Rollback Procedure",
            "### Phase 13: Stripe API Key (5 min)\n\n1. **Roll the key in Stripe's dashboard:**\n   \
             Export it as `NEW_STRIPE_API_KEY`.\n\n## Rollback Procedure",
            1,
        )
    });
    let all = scenarios::rehearsals_for(&stripe);
    let scenario = all
        .iter()
        .find(|s| s.id == "rotate/stripe-api-key")
        .unwrap();
    let record = rehearsal::engine::run(
        scenario,
        &stripe,
        &rehearsal::Options::default(),
        &harness::progress::Progress::silent(),
        &harness::redact::Redactor::new(),
    )
    .await;
    assert_eq!(record.actual, Some(rehearsal::Outcome::Inconclusive));
    assert_eq!(
        record.inconclusive.as_deref(),
        Some("not rehearsable on the replica: Phase 13 rotates Stripe API Key, which no service of the replica reads")
    );
    assert_eq!(record.stack, None, "no replica was started");
}

#[test]
fn every_secret_of_v2s_inventory_has_a_scenario_that_rotates_it() {
    let (runbook, catalogue) = catalogue_of(V2_RUNBOOK);
    let findings = harness::runbook::findings::Analysis::of(&runbook).findings;
    let coverage = harness::runbook::coverage::coverage(&runbook, &findings, &catalogue, &[]);
    let without: Vec<&str> = coverage
        .secrets
        .iter()
        .filter(|s| s.gaps.iter().any(|g| g == "no scenario rehearses it"))
        .map(|s| s.secret.as_str())
        .collect();
    assert_eq!(without, Vec::<&str>::new());
}

#[test]
fn v2_with_a_step_moved_one_earlier_keeps_its_derived_scenario_moves_its_boundaries_and_drops_the_faults_measured_on_the_old_order(
) {
    let v2 = Runbook::load(&workspace_path(V2_RUNBOOK)).unwrap();
    // Phase 8 (Qdrant) with its recreate moved before the step that writes the new key.
    let moved = v2_edited("moved.md", |t| {
        let (p8, p9) = (
            t.find("### Phase 8:").unwrap(),
            t.find("### Phase 9:").unwrap(),
        );
        let phase = &t[p8..p9];
        let write = phase.find("2. **Write the new key").unwrap();
        let recreate = phase.find("3. **Recreate the memory service").unwrap();
        let revoke = phase.find("4. **Revoke").unwrap();
        format!(
            "{}{}{}{}{}{}",
            &t[..p8],
            &phase[..write],
            phase[recreate..revoke].replacen("3. **", "2. **", 1),
            phase[write..recreate].replacen("2. **", "3. **", 1),
            &phase[revoke..],
            &t[p9..]
        )
    });
    let line = |runbook: &Runbook, id: &str| {
        described(&scenarios::rehearsals_for(runbook))
            .into_iter()
            .find(|l| l.starts_with(&format!("{id} ")))
            .unwrap_or_else(|| panic!("no {id}"))
    };
    assert_eq!(
        line(&moved, "rotate/qdrant"),
        line(&v2, "rotate/qdrant"),
        "the same rehearsal of the same secret"
    );
    // The boundary ids name the step's number: the same ids, each before the step now there.
    let before = |runbook: &Runbook, id: &str| {
        scenarios::derived_faults(runbook)
            .into_iter()
            .find(|s| s.id == id)
            .map(|s| s.title)
            .unwrap()
    };
    assert!(
        before(&moved, "faults/qdrant/step2-memory-service-killed-for-5s")
            .ends_with("before phase8.step2, for 5.0 s")
    );
    assert_eq!(
        before(&moved, "faults/qdrant/step2-memory-service-killed-for-5s"),
        before(&v2, "faults/qdrant/step2-memory-service-killed-for-5s")
    );
    let unbound = scenarios::not_bound(&moved);
    assert_eq!(
        unbound
            .iter()
            .map(|(id, _)| id.as_str())
            .collect::<Vec<_>>(),
        ["v2/faults/phase8-memory-killed-before-its-recreate"]
    );
    for (_, why) in &unbound {
        assert!(why.contains("phase8.step2 changed"), "{why}");
    }
}
