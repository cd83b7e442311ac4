//! The runbook model on the shipped runbook (golden) and on generated markdown (proptest):
//! structure, static findings, coverage gaps, fingerprints and the lock.

use harness::runbook::coverage::{coverage, ScenarioRef};
use harness::runbook::findings::{analyse, FindingKind};
use harness::runbook::lock::Lock;
use harness::runbook::{parse, workspace_path, Runbook, DEFAULT_RUNBOOK};
use proptest::prelude::*;

fn shipped() -> Runbook {
    Runbook::load(&workspace_path(DEFAULT_RUNBOOK)).expect("the shipped runbook parses")
}

#[test]
fn shipped_runbook_has_five_timed_phases_a_rollback_and_ten_inventory_secrets() {
    let rb = shipped();
    let phases: Vec<String> = rb
        .phases
        .iter()
        .map(|p| {
            format!(
                "{} {} ({:?} min, {} steps)",
                p.number,
                p.title,
                p.budget_minutes,
                p.steps.len()
            )
        })
        .collect();
    assert_eq!(
        phases.join("\n"),
        "1 Preparation (Some(5) min, 3 steps)\n\
         2 Dual-Validity Period (Some(10) min, 5 steps)\n\
         3 Database Password Rotation (Some(15) min, 4 steps)\n\
         4 NATS Credentials Rotation (Some(10) min, 4 steps)\n\
         5 Verification (Some(5) min, 3 steps)"
    );
    let rollback: Vec<&str> = rb.rollback.iter().map(|s| s.title.as_str()).collect();
    assert_eq!(
        rollback,
        ["Restore old secrets", "Restart services", "Verify recovery"]
    );
    let secrets: Vec<&str> = rb.inventory.iter().map(|r| r.secret.as_str()).collect();
    assert_eq!(
        secrets,
        [
            "NATS Creds",
            "JWT Secrets",
            "DeepSeek API Key",
            "Mistral API Key",
            "Grok API Key",
            "Cohere API Key",
            "Qdrant API Key",
            "PostgreSQL Password",
            "Neo4j Password",
            "Telegram Bot Tokens"
        ]
    );
    assert_eq!(rb.inventory[2].location, "Router .env");
    assert_eq!(rb.inventory[8].service, "Router, Memory");
    assert_eq!(rb.inventory[9].rotation_frequency, "As needed");
    assert_eq!(rb.notes.len(), 5);
    let s = rb.step("phase3.step1").unwrap();
    assert_eq!(s.title, "Update password in Postgres");
    assert_eq!(
        (s.line, s.code[0].first_line, s.code[0].language.as_str()),
        (91, 93, "bash")
    );
    assert_eq!(rb.step("phase2.step2").unwrap().code[0].language, "python");
    assert!(rb
        .step("phase1.step2")
        .unwrap()
        .prose
        .contains("Generate new passwords/keys\nStore in secure location"));
}

#[test]
fn shipped_runbook_findings_are_the_expected_ones_at_the_expected_steps_and_lines() {
    let findings = analyse(&shipped());
    let got: Vec<String> = findings
        .iter()
        .map(|f| format!("{} line {}", f.id, f.line))
        .collect();
    let expected = "\
unencrypted-backup@phase1.step1 line 39
backup-same-day-overwrite@phase1.step1 line 39
no-command@phase1.step2 line 45
placeholder@phase2.step1 line 62
selection-not-fallback@phase2.step2 line 67
restart-keeps-stale-env@phase2.step3 line 72
never-terminates@phase2.step4 line 78
logs-stderr-missed@phase2.step4 line 78
restart-keeps-stale-env@phase2.step5 line 84
secret-on-command-line@phase3.step1 line 93
placeholder@phase3.step1 line 93
psql-default-database@phase3.step1 line 93
unanchored-sed@phase3.step2 line 101
secret-on-command-line@phase3.step2 line 101
placeholder@phase3.step2 line 101
restart-keeps-stale-env@phase3.step3 line 106
restart-keeps-stale-env@phase3.step3.2 line 108
placeholder@phase3.step3 line 110
trust-socket-verification@phase3.step4 line 115
unknown-subcommand@phase4.step1 line 123
no-command@phase4.step2 line 128
restart-keeps-stale-env@phase4.step3 line 137
restart-keeps-stale-env@phase4.step3.2 line 138
restart-keeps-stale-env@phase4.step3.3 line 141
restart-keeps-stale-env@phase4.step3.4 line 142
shallow-verification@phase4.step4 line 148
shallow-verification@phase5.step1 line 155
shallow-verification@phase5.step1.2 line 156
shallow-verification@phase5.step1.3 line 157
no-command@phase5.step2 line 160
logs-stderr-missed@phase5.step3 line 167
logs-stderr-missed@phase5.step3.2 line 168
rollback-files-only@rollback.step1 line 177
placeholder@rollback.step1 line 179
rollback-wrong-directory@rollback.step1 line 179
restart-keeps-stale-env@rollback.step2 line 184
no-command@rollback.step3 line 187
backup-retention@notes line 208";
    assert_eq!(
        got.join("\n"),
        expected,
        "findings on the shipped runbook changed"
    );
    let nats = findings
        .iter()
        .find(|f| f.kind == FindingKind::UnknownSubcommand)
        .unwrap();
    assert!(
        nats.explanation
            .contains("`nats server` has no subcommand `generate-credentials`"),
        "{}",
        nats.explanation
    );
    let socket = findings
        .iter()
        .find(|f| f.kind == FindingKind::TrustSocketVerification)
        .unwrap();
    assert!(socket.explanation.contains("dagi-memory-service-node1"));
}

#[test]
fn a_runbook_recreating_through_compose_has_no_restart_or_subcommand_findings_at_those_steps() {
    let edited = Runbook::load(&workspace_path(
        "fixtures/runbook/SECRETS_ROTATION_RUNBOOK.compose.md",
    ))
    .expect("the compose-edited runbook parses");
    let shipped: Vec<String> = analyse(&shipped()).iter().map(|f| f.id.clone()).collect();
    let got: Vec<String> = analyse(&edited).iter().map(|f| f.id.clone()).collect();
    // Exactly the shipped runbook's findings less the restarts the edit replaced by
    // `up -d --force-recreate` (both spellings, with `-f`): nothing new, none of the old left.
    let expected: Vec<String> = shipped
        .into_iter()
        .filter(|id| !id.starts_with("restart-keeps-stale-env@"))
        .collect();
    assert_eq!(got, expected);
}

#[test]
fn the_v2_runbook_has_no_finding_its_console_steps_say_what_they_export_or_revoke() {
    let v2 = Runbook::load(&workspace_path(
        "fixtures/runbook/SECRETS_ROTATION_RUNBOOK.v2.md",
    ))
    .expect("the v2 runbook parses");
    let got: Vec<String> = analyse(&v2).iter().map(|f| f.id.clone()).collect();
    assert_eq!(got, Vec::<String>::new());
}

#[test]
fn a_console_step_that_names_no_exported_value_is_still_a_step_without_a_command() {
    let text = "# R\n\n## Secrets Inventory\n\n| Secret | Location | Service | Rotation Frequency |\n|-|-|-|-|\n\
                | DeepSeek API Key | Router `.env` | Router | As needed |\n\n\
                ## Rotation Procedure\n\n### Phase 1: Keys (5 min)\n\n\
                1. **Create the new DeepSeek key in the provider's console:**\n   \
                Keep it somewhere safe.\n";
    let rb = parse("inline.md", text).expect("parses");
    let got: Vec<String> = analyse(&rb).iter().map(|f| f.id.clone()).collect();
    assert!(
        got.contains(&"no-command@phase1.step1".to_string()),
        "{got:?}"
    );
}

#[test]
fn findings_quote_only_the_runbooks_own_text() {
    // The runbook's example value is public text; what must never appear is anything a node
    // holds, and findings only ever quote the runbook itself.
    let rb = shipped();
    let text = std::fs::read_to_string(workspace_path(DEFAULT_RUNBOOK)).unwrap();
    for f in analyse(&rb) {
        for word in f.excerpt.split_whitespace() {
            let bare = word.trim_end_matches("...");
            assert!(
                text.contains(bare) || bare.is_empty(),
                "{} quotes `{word}`, which is not in the runbook",
                f.id
            );
        }
    }
}

#[test]
fn coverage_names_secrets_no_phase_rotates_as_gaps() {
    let rb = shipped();
    let findings = analyse(&rb);
    let one = [ScenarioRef {
        id: "s/db".into(),
        summary: String::new(),
        steps: vec!["phase3.step3".into()],
        secrets: vec!["DB_PASSWORD".into()],
        findings: vec![FindingKind::RestartKeepsStaleEnv],
    }];
    let cov = coverage(&rb, &findings, &one, &[]);
    let row = |name: &str| cov.secrets.iter().find(|s| s.secret == name).unwrap();
    let rotated = |name: &str| {
        row(name)
            .rotated_by
            .iter()
            .map(|r| format!("{}:{}", r.phase, r.how))
            .collect::<Vec<_>>()
            .join(",")
    };
    assert_eq!(rotated("DeepSeek API Key"), "2:commands");
    assert_eq!(rotated("Mistral API Key"), "2:prose only");
    assert_eq!(rotated("PostgreSQL Password"), "3:commands");
    assert_eq!(rotated("NATS Creds"), "4:commands");
    for never in [
        "JWT Secrets",
        "Grok API Key",
        "Cohere API Key",
        "Qdrant API Key",
        "Neo4j Password",
        "Telegram Bot Tokens",
    ] {
        assert_eq!(rotated(never), "", "{never}");
        assert!(
            row(never).gaps.contains(&"no phase rotates it".to_string()),
            "{never}: {:?}",
            row(never).gaps
        );
    }
    assert!(row("Mistral API Key")
        .gaps
        .contains(&"named in prose, but no command rotates it".to_string()));
    assert_eq!(row("PostgreSQL Password").scenarios, ["s/db"]);
    let step = cov.steps.iter().find(|s| s.step == "phase3.step3").unwrap();
    assert_eq!(step.scenarios, ["s/db"]);
    let linked: Vec<&str> = cov
        .findings
        .iter()
        .filter(|f| !f.scenarios.is_empty())
        .map(|f| f.finding.as_str())
        .collect();
    assert_eq!(
        linked,
        [
            "restart-keeps-stale-env@phase3.step3",
            "restart-keeps-stale-env@phase3.step3.2"
        ]
    );
}

#[test]
fn a_document_without_phases_is_an_error_with_file_and_line() {
    let e = parse("r.md", "# T\n\n## Secrets Inventory\n\n| Secret | Location | Service | Rotation Frequency |\n|-|-|-|-|\n| a | b | c | d |\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "r.md:1: no phases: expected headings like `### Phase 1: Preparation (5 min)`"
    );
}

const INVENTORY: &str = "## Secrets Inventory\n\n| Secret | Location | Service | Rotation Frequency |\n|-|-|-|-|\n| a | b | c | d |\n\n";

#[test]
fn a_step_without_a_number_is_an_error_at_its_line() {
    let doc = format!("{INVENTORY}## Rotation Procedure\n\n### Phase 1: Prep (5 min)\n\n- **Backup:**\n  ```bash\n  ls\n  ```\n");
    let e = parse("r.md", &doc).unwrap_err();
    assert_eq!(
        (e.line, e.message.starts_with("step without a number")),
        (11, true),
        "{e}"
    );
}

#[test]
fn an_inventory_table_with_a_missing_column_is_an_error_naming_it_at_the_header_line() {
    let doc = "## Secrets Inventory\n\n| Secret | Location | Service |\n|-|-|-|\n| a | b | c |\n\n### Phase 1: P (1 min)\n\n1. **S:**\n   ```bash\n   ls\n   ```\n";
    let e = parse("r.md", doc).unwrap_err();
    assert_eq!(e.line, 3, "{e}");
    assert!(
        e.message.contains("lacks column(s) rotation frequency"),
        "{e}"
    );
}

#[test]
fn a_phase_heading_without_a_number_and_a_phase_without_steps_are_errors() {
    let doc = format!("{INVENTORY}### Phase One: P (1 min)\n\n1. x\n");
    assert_eq!(parse("r.md", &doc).unwrap_err().line, 7);
    let doc = format!(
        "{INVENTORY}### Phase 1: P (1 min)\n\nJust prose.\n\n### Phase 2: Q\n\n1. **S:** do\n"
    );
    let e = parse("r.md", &doc).unwrap_err();
    assert_eq!(
        (e.line, e.message.as_str()),
        (7, "phase 1 has no numbered steps")
    );
}

#[test]
fn a_missing_file_is_an_error_naming_it() {
    let e = Runbook::load(std::path::Path::new("/nonexistent/runbook.md")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/runbook.md: runbook: cannot read it: No such file"),
        "{e}"
    );
}

#[test]
fn lock_check_lists_the_changed_step_and_the_scenarios_to_re_review() {
    let s = [ScenarioRef {
        id: "s/pg".into(),
        summary: String::new(),
        steps: vec!["phase3.step1".into()],
        secrets: Vec::new(),
        findings: Vec::new(),
    }];
    let text = std::fs::read_to_string(workspace_path(DEFAULT_RUNBOOK)).unwrap();
    let before = Lock::of(&parse("r", &text).unwrap(), &s);
    let reparsed = Lock::parse("lock", &before.render()).unwrap();
    assert_eq!(reparsed, before, "the lock round-trips");

    let edited = text.replace(
        "ALTER USER daarion WITH PASSWORD",
        "ALTER ROLE daarion WITH PASSWORD",
    );
    let after = Lock::of(&parse("r", &edited).unwrap(), &s);
    let diff = before.diff(&after);
    let changed: Vec<&str> = diff.changed.iter().map(|(_, n)| n.id.as_str()).collect();
    assert_eq!(changed, ["phase3.step1"]);
    assert!(diff.added.is_empty() && diff.removed.is_empty());
    assert_eq!(diff.scenarios_to_review(), ["s/pg"]);
    assert!(
        diff.report().contains("changed  phase3.step1"),
        "{}",
        diff.report()
    );

    let fewer = text.replace("4. **Verify connectivity:**", "Verify connectivity:");
    let diff = before.diff(&Lock::of(&parse("r", &fewer).unwrap(), &s));
    assert_eq!(
        diff.removed
            .iter()
            .map(|s| s.id.as_str())
            .collect::<Vec<_>>(),
        ["phase3.step4"]
    );
}

#[test]
fn a_malformed_lock_is_an_error_with_its_line() {
    let e = Lock::parse(
        "runbook.lock",
        "version = 1\n[[step]]\nid = \"x\"\ntitle = 3\n",
    )
    .unwrap_err();
    assert!(
        e.to_string().starts_with("runbook.lock:4: malformed lock"),
        "{e}"
    );
}

// ---- generated runbooks ----

#[derive(Debug, Clone)]
struct GenStep {
    title: String,
    prose: String,
    code: Vec<String>,
}

/// Renders phases of steps as runbook markdown; `ws` varies only whitespace.
fn render(phases: &[Vec<GenStep>], ws: (usize, usize, bool)) -> String {
    let (trailing, blank, double) = ws;
    let pad = " ".repeat(trailing);
    let words = |s: &str| {
        if double {
            s.replace(' ', "  ")
        } else {
            s.to_string()
        }
    };
    let mut doc = format!("# Runbook\n\n## Secrets Inventory\n\n| Secret | Location | Service | Rotation Frequency |\n|---|---|---|---|\n| DB | .env | all | Quarterly |{pad}\n\n## Rotation Procedure\n\n");
    for (p, steps) in phases.iter().enumerate() {
        doc.push_str(&format!(
            "### Phase {}: {} ({} min){pad}\n\n",
            p + 1,
            words("Do the thing"),
            p + 2
        ));
        for (s, step) in steps.iter().enumerate() {
            doc.push_str(&format!("{}. **{}:**{pad}\n", s + 1, words(&step.title)));
            if !step.prose.is_empty() {
                doc.push_str(&format!("   {}{pad}\n", words(&step.prose)));
            }
            for line in &step.code {
                doc.push_str(&format!("   ```bash\n   {}{pad}\n   ```\n", words(line)));
            }
            doc.push_str(&"\n".repeat(blank));
        }
        doc.push('\n');
    }
    doc.push_str(
        "## Rollback Procedure\n\n1. **Restore:**\n   ```bash\n   tar -xzf b.tgz\n   ```\n",
    );
    doc
}

fn gen_step() -> impl Strategy<Value = GenStep> {
    (
        "[A-Z][a-z]{1,8}( [a-z]{1,8}){0,3}",
        prop_oneof![Just(String::new()), "[a-z]{1,8}( [a-z]{1,8}){0,4}"],
        prop::collection::vec("[a-z]{1,6}( [a-zA-Z0-9_=./$'\"-]{1,12}){0,4}", 0..3),
    )
        .prop_map(|(title, prose, code)| GenStep { title, prose, code })
}

fn gen_phases() -> impl Strategy<Value = Vec<Vec<GenStep>>> {
    prop::collection::vec(prop::collection::vec(gen_step(), 1..5), 1..6)
}

fn ids_and_prints(rb: &Runbook) -> Vec<(String, String)> {
    rb.steps()
        .map(|s| (s.id.clone(), s.fingerprint.clone()))
        .collect()
}

proptest! {
    #[test]
    fn any_text_gives_a_runbook_or_an_error_never_a_panic(text in "\\PC{0,400}") {
        if let Ok(rb) = parse("gen.md", &text) {
            let _ = analyse(&rb);
        }
    }

    #[test]
    fn markdown_shaped_noise_never_panics(lines in prop::collection::vec(prop_oneof![
        Just("### Phase 1: A (5 min)".to_string()), Just("## Secrets Inventory".to_string()),
        Just("| Secret | Location | Service | Rotation Frequency |".to_string()), Just("|-|-|-|-|".to_string()),
        Just("1. **Step:**".to_string()), Just("   ```bash".to_string()), Just("   ```".to_string()),
        Just("## Rollback Procedure".to_string()), Just("- note".to_string()), "\\PC{0,30}",
    ], 0..40)) {
        if let Ok(rb) = parse("gen.md", &lines.join("\n")) {
            let _ = analyse(&rb);
        }
    }

    #[test]
    fn generated_runbooks_get_the_ids_their_structure_implies(phases in gen_phases()) {
        let rb = parse("gen.md", &render(&phases, (0, 0, false))).unwrap();
        let expected: Vec<String> = phases.iter().enumerate()
            .flat_map(|(p, steps)| (0..steps.len()).map(move |s| format!("phase{}.step{}", p + 1, s + 1)))
            .chain(std::iter::once("rollback.step1".to_string()))
            .collect();
        let got: Vec<String> = rb.steps().map(|s| s.id.clone()).collect();
        prop_assert_eq!(got, expected);
        for (phase, gen) in rb.phases.iter().zip(&phases) {
            for (step, g) in phase.steps.iter().zip(gen) {
                prop_assert_eq!(&step.title, &g.title);
                prop_assert_eq!(step.code.len(), g.code.len());
            }
        }
    }

    #[test]
    fn ids_and_fingerprints_survive_whitespace_only_edits(
        phases in gen_phases(), trailing in 0usize..3, blank in 0usize..3, double in any::<bool>()
    ) {
        let plain = parse("gen.md", &render(&phases, (0, 0, false))).unwrap();
        let spaced = parse("gen.md", &render(&phases, (trailing, blank, double))).unwrap();
        prop_assert_eq!(ids_and_prints(&plain), ids_and_prints(&spaced));
    }

    #[test]
    fn changing_one_command_changes_exactly_that_steps_fingerprint(
        phases in gen_phases(), pick in any::<prop::sample::Index>(), extra in "[a-z]{1,5}"
    ) {
        let with_code: Vec<(usize, usize)> = phases.iter().enumerate()
            .flat_map(|(p, steps)| steps.iter().enumerate().filter(|(_, s)| !s.code.is_empty()).map(move |(s, _)| (p, s)))
            .collect();
        prop_assume!(!with_code.is_empty());
        let (p, s) = with_code[pick.index(with_code.len())];
        let mut edited = phases.clone();
        edited[p][s].code[0].push_str(&format!(" --{extra}"));
        let before = ids_and_prints(&parse("gen.md", &render(&phases, (0, 0, false))).unwrap());
        let after = ids_and_prints(&parse("gen.md", &render(&edited, (0, 0, false))).unwrap());
        let changed: Vec<&String> = before.iter().zip(&after).filter(|(a, b)| a.1 != b.1).map(|(a, _)| &a.0).collect();
        let target = format!("phase{}.step{}", p + 1, s + 1);
        prop_assert_eq!(changed, vec![&target]);
    }
}
