//! Every rehearsal is one test: the runbook as written, and every scenario of the fault matrix.
//! Each runs on a fresh replica under traffic and asserts the outcome measured so far (for the
//! runbook as written, also the exact findings it confirmed and refuted, `FINDINGS`; for the
//! fault matrix those in `fault_findings.txt`, where a verdict resting on timing is marked), and that
//! nothing of its replica (container, network, replica root, operator directory) remains after
//! it. A runbook change that changes an outcome fails here, with the scenario's summary, until
//! the expectation is reviewed.

use harness::progress::Progress;
use harness::redact::Redactor;
use harness::runbook::{workspace_path, Runbook, DEFAULT_RUNBOOK};
use rehearsal::{engine, journal, render, Options, Outcome};

/// The findings each rehearsal of the runbook as written confirms and refutes, exactly
/// (`verdict finding`, sorted), as measured on 2026-12-04 before and after the verdicts became
/// a pure function of typed measurements (two runs, the same sets). A finding that appears or
/// disappears fails the scenario's test with both lists.
const FINDINGS: &[(&str, &[&str])] = &[
    (
        "prepare",
        &[
            "confirmed backup-retention@notes",
            "confirmed no-command@phase1.step2",
            "confirmed unencrypted-backup@phase1.step1",
        ],
    ),
    (
        "rotate/deepseek",
        &[
            "confirmed backup-retention@notes",
            "confirmed logs-stderr-missed@phase2.step4",
            "confirmed never-terminates@phase2.step4",
            "confirmed no-command@phase1.step2",
            "confirmed no-command@rollback.step3",
            "confirmed placeholder@rollback.step1",
            "confirmed restart-keeps-stale-env@phase2.step3",
            "confirmed restart-keeps-stale-env@phase2.step5",
            "confirmed unencrypted-backup@phase1.step1",
            "refuted rollback-wrong-directory@rollback.step1",
        ],
    ),
    (
        "rotate/postgres",
        &[
            "confirmed backup-retention@notes",
            "confirmed no-command@phase1.step2",
            "confirmed no-command@rollback.step3",
            "confirmed placeholder@phase3.step2",
            "confirmed placeholder@phase3.step3",
            "confirmed placeholder@rollback.step1",
            "confirmed psql-default-database@phase3.step1",
            "confirmed restart-keeps-stale-env@phase3.step3",
            "confirmed secret-on-command-line@phase3.step1",
            "confirmed secret-on-command-line@phase3.step2",
            "confirmed trust-socket-verification@phase3.step4",
            "confirmed unencrypted-backup@phase1.step1",
            "refuted rollback-wrong-directory@rollback.step1",
            "refuted unanchored-sed@phase3.step2",
        ],
    ),
    (
        "rotate/nats",
        &[
            "confirmed backup-retention@notes",
            "confirmed no-command@phase1.step2",
            "confirmed no-command@phase4.step2",
            "confirmed no-command@rollback.step3",
            "confirmed placeholder@rollback.step1",
            "confirmed shallow-verification@phase4.step4",
            "confirmed unencrypted-backup@phase1.step1",
            "confirmed unknown-subcommand@phase4.step1",
            "refuted rollback-wrong-directory@rollback.step1",
        ],
    ),
    (
        "verify",
        &[
            "confirmed backup-retention@notes",
            "confirmed logs-stderr-missed@phase5.step3",
            "confirmed no-command@phase1.step2",
            "confirmed no-command@phase5.step2",
            "confirmed unencrypted-backup@phase1.step1",
        ],
    ),
    (
        "rotation",
        &[
            "confirmed backup-retention@notes",
            "confirmed logs-stderr-missed@phase2.step4",
            "confirmed logs-stderr-missed@phase5.step3",
            "confirmed never-terminates@phase2.step4",
            "confirmed no-command@phase1.step2",
            "confirmed no-command@phase4.step2",
            "confirmed no-command@phase5.step2",
            "confirmed no-command@rollback.step3",
            "confirmed placeholder@phase3.step2",
            "confirmed placeholder@phase3.step3",
            "confirmed placeholder@rollback.step1",
            "confirmed psql-default-database@phase3.step1",
            "confirmed restart-keeps-stale-env@phase2.step3",
            "confirmed restart-keeps-stale-env@phase2.step5",
            "confirmed restart-keeps-stale-env@phase3.step3",
            "confirmed restart-keeps-stale-env@phase4.step3",
            "confirmed secret-on-command-line@phase3.step1",
            "confirmed secret-on-command-line@phase3.step2",
            "confirmed shallow-verification@phase4.step4",
            "confirmed shallow-verification@phase5.step1",
            "confirmed trust-socket-verification@phase3.step4",
            "confirmed unencrypted-backup@phase1.step1",
            "confirmed unknown-subcommand@phase4.step1",
            "refuted rollback-wrong-directory@rollback.step1",
            "refuted unanchored-sed@phase3.step2",
        ],
    ),
    (
        "rollback/after-prepare",
        &[
            "confirmed backup-retention@notes",
            "confirmed no-command@phase1.step2",
            "confirmed no-command@rollback.step3",
            "confirmed placeholder@rollback.step1",
            "confirmed unencrypted-backup@phase1.step1",
            "refuted rollback-wrong-directory@rollback.step1",
        ],
    ),
    (
        "rollback/after-deepseek",
        &[
            "confirmed backup-retention@notes",
            "confirmed logs-stderr-missed@phase2.step4",
            "confirmed never-terminates@phase2.step4",
            "confirmed no-command@phase1.step2",
            "confirmed no-command@rollback.step3",
            "confirmed placeholder@rollback.step1",
            "confirmed restart-keeps-stale-env@phase2.step3",
            "confirmed restart-keeps-stale-env@phase2.step5",
            "confirmed unencrypted-backup@phase1.step1",
            "refuted rollback-wrong-directory@rollback.step1",
        ],
    ),
    (
        "rollback/after-postgres",
        &[
            "confirmed backup-retention@notes",
            "confirmed no-command@phase1.step2",
            "confirmed no-command@rollback.step3",
            "confirmed placeholder@phase3.step2",
            "confirmed placeholder@phase3.step3",
            "confirmed placeholder@rollback.step1",
            "confirmed psql-default-database@phase3.step1",
            "confirmed restart-keeps-stale-env@phase3.step3",
            "confirmed secret-on-command-line@phase3.step1",
            "confirmed secret-on-command-line@phase3.step2",
            "confirmed trust-socket-verification@phase3.step4",
            "confirmed unencrypted-backup@phase1.step1",
            "refuted rollback-wrong-directory@rollback.step1",
            "refuted unanchored-sed@phase3.step2",
        ],
    ),
    (
        "rollback/after-nats",
        &[
            "confirmed backup-retention@notes",
            "confirmed no-command@phase1.step2",
            "confirmed no-command@phase4.step2",
            "confirmed no-command@rollback.step3",
            "confirmed placeholder@rollback.step1",
            "confirmed shallow-verification@phase4.step4",
            "confirmed unencrypted-backup@phase1.step1",
            "confirmed unknown-subcommand@phase4.step1",
            "refuted rollback-wrong-directory@rollback.step1",
        ],
    ),
];

/// What each as-written scenario's test expects it to decide is within what the catalogue,
/// derived from the scenario's value, says it can decide: the same steps, the same kinds.
#[test]
fn every_finding_an_as_written_scenario_decides_is_one_its_catalogue_entry_can_decide() {
    let runbook = Runbook::load(&workspace_path(DEFAULT_RUNBOOK)).unwrap();
    let catalogue = scenarios::catalogue_for(&runbook);
    let mut outside = Vec::new();
    for (id, findings) in FINDINGS {
        let entry = catalogue.iter().find(|s| s.id == *id).unwrap();
        for line in *findings {
            let finding = line.split_once(' ').unwrap().1;
            let (kind, step) = finding.split_once('@').unwrap();
            let kind = harness::runbook::findings::FindingKind::from_id(kind).unwrap();
            let at_a_step = runbook.step(step).is_some();
            if !entry.findings.contains(&kind) || (at_a_step && !entry.covers(step)) {
                outside.push(format!("{id}: {finding}"));
            }
        }
    }
    assert_eq!(outside, Vec::<String>::new());
}

/// One fault-matrix scenario's expected findings (`tests/fault_findings.txt`): the verdicts
/// every run gives, and those a run may give or not, their verdict resting on timing.
struct FaultFindings {
    id: String,
    always: Vec<String>,
    sometimes: Vec<String>,
}

impl FaultFindings {
    /// (expected always but not measured, measured but not expected).
    fn unexplained(&self, measured: &[String]) -> (Vec<String>, Vec<String>) {
        let missing = self
            .always
            .iter()
            .filter(|f| !measured.contains(f))
            .cloned()
            .collect();
        let unexpected = measured
            .iter()
            .filter(|f| !self.always.contains(f) && !self.sometimes.contains(f))
            .cloned()
            .collect();
        (missing, unexpected)
    }
}

/// `tests/fault_findings.txt`: `[scenario id]`, then one `verdict finding` per line, a line
/// starting with `~ ` one a run may or may not give (the reason after `#`).
fn fault_findings() -> Vec<FaultFindings> {
    let mut out: Vec<FaultFindings> = Vec::new();
    for line in include_str!("fault_findings.txt").lines() {
        let line = line.split(" #").next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(id) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            out.push(FaultFindings {
                id: id.to_string(),
                always: Vec::new(),
                sometimes: Vec::new(),
            });
            continue;
        }
        let entry = out.last_mut().expect("a finding after a [scenario]");
        match line.strip_prefix("~ ") {
            Some(f) => entry.sometimes.push(f.to_string()),
            None => entry.always.push(line.to_string()),
        }
    }
    out
}

/// Every fault-matrix scenario has its expected findings, in the matrix's order, and each one
/// is a finding its catalogue entry says it can decide.
#[test]
fn every_fault_scenario_has_its_expected_findings_each_one_it_can_decide() {
    let runbook = Runbook::load(&workspace_path(DEFAULT_RUNBOOK)).unwrap();
    let catalogue = scenarios::catalogue_for(&runbook);
    // A step boundary derived from the text may be listed too, for the findings it decides.
    let derived: Vec<String> = scenarios::derived_faults(&runbook)
        .into_iter()
        .map(|s| s.id)
        .collect();
    let listed: Vec<String> = fault_findings()
        .into_iter()
        .map(|f| f.id)
        .filter(|id| !derived.contains(id))
        .collect();
    let matrix: Vec<String> = scenarios::fault_rehearsals()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(listed, matrix);
    let mut outside = Vec::new();
    for f in fault_findings() {
        let entry = catalogue.iter().find(|s| s.id == f.id).unwrap();
        for line in f.always.iter().chain(&f.sometimes) {
            let finding = line.split_once(' ').unwrap().1;
            let (kind, step) = finding.split_once('@').unwrap();
            let kind = harness::runbook::findings::FindingKind::from_id(kind).unwrap();
            if !entry.findings.contains(&kind)
                || (runbook.step(step).is_some() && !entry.covers(step))
            {
                outside.push(format!("{}: {finding}", f.id));
            }
        }
    }
    assert_eq!(outside, Vec::<String>::new());
}

async fn rehearse(id: &str) {
    rehearse_runbook(DEFAULT_RUNBOOK, id).await;
}

/// Rehearses scenario `id` of the runbook at `path` (relative to the workspace); asserts its
/// expected outcome, no secret in the journal and nothing left behind; returns the journal.
/// An `inconclusive` rehearsal (the harness, the machine or the engine, not the runbook,
/// decided: a starved probe, a machine without spare CPU, a stale network endpoint) says
/// nothing about the runbook, so it is rehearsed once more on a fresh replica, alone on the
/// machine (no other scenario busy beside it), and the second outcome is asserted.
async fn rehearse_runbook(path: &str, id: &str) -> journal::Journal {
    let runbook = Runbook::load(&workspace_path(path)).unwrap();
    let j = rehearse_on(&runbook, id).await;
    let summary = render::summary(&j, &Redactor::new());
    if !j.scenarios[0].met {
        // What the engine saw of the services found down or that left work unprocessed, with
        // their last log lines (redacted), so an intermittent miss explains itself.
        for f in &j.scenarios[0].forensics {
            eprintln!("{}", f.describe());
        }
    }
    assert!(
        j.scenarios[0].met,
        "{id}: expected outcome not met\n{summary}"
    );
    if path == DEFAULT_RUNBOOK {
        let mut measured: Vec<String> = j.scenarios[0]
            .findings
            .iter()
            .map(|f| format!("{} {}", f.verdict, f.finding))
            .collect();
        measured.sort();
        if let Some((_, expected)) = FINDINGS.iter().find(|(s, _)| *s == id) {
            assert_eq!(
                measured, *expected,
                "{id}: the findings it confirmed and refuted\n{summary}"
            );
        }
        if let Some(expected) = fault_findings().iter().find(|f| f.id == id) {
            assert_eq!(
                expected.unexplained(&measured),
                (Vec::<String>::new(), Vec::<String>::new()),
                "{id}: the findings it confirmed and refuted (missing, then unexpected)\n{summary}"
            );
        }
    }
    j
}

/// Rehearses scenario `id` of `runbook` (its own text: the scenario is the one `runbook` calls
/// for); asserts no secret in the journal and nothing left behind; returns the journal. An
/// `inconclusive` rehearsal is rehearsed once more alone on the machine (see above).
async fn rehearse_on(runbook: &Runbook, id: &str) -> journal::Journal {
    rehearse_with(runbook, id, Options::default()).await
}

/// `rehearse_on` with `options`.
async fn rehearse_with(runbook: &Runbook, id: &str, options: Options) -> journal::Journal {
    rehearse_scenario(runbook, scenario_of(runbook, id), options).await
}

/// Scenario `id` of `runbook`.
fn scenario_of(runbook: &Runbook, id: &str) -> rehearsal::Scenario {
    scenarios::rehearsals_for(runbook)
        .into_iter()
        .find(|s| s.id == id)
        .unwrap_or_else(|| panic!("no rehearsal {id}"))
}

/// Scenario `id` of the runbook at `path` on a replica wired as the node profile `profile`
/// (a shipped name or a file) says; asserts its expected outcome, no secret in the journal and
/// nothing left behind.
async fn rehearse_profiled(path: &str, id: &str, profile: &str) -> journal::Journal {
    let runbook = Runbook::load(&workspace_path(path)).unwrap();
    let mut scenario = scenario_of(&runbook, id);
    scenario.replica.profile = harness::profile::NodeProfile::named_or_file(profile).unwrap();
    let j = rehearse_scenario(&runbook, scenario, Options::default()).await;
    let summary = render::summary(&j, &Redactor::new());
    assert!(
        j.scenarios[0].met,
        "{id} under {profile}: expected outcome not met\n{summary}"
    );
    j
}

/// Rehearses `scenario` of `runbook` (see `rehearse_on`).
async fn rehearse_scenario(
    runbook: &Runbook,
    scenario: rehearsal::Scenario,
    options: Options,
) -> journal::Journal {
    let id = scenario.id.clone();
    let redactor = Redactor::new();
    let mut attempt = 1;
    let mut options = options;
    let record = loop {
        let record =
            engine::run(&scenario, runbook, &options, &Progress::stderr(), &redactor).await;
        let inconclusive = record.actual == Some(Outcome::Inconclusive);
        if !inconclusive || attempt == 2 {
            break record;
        }
        eprintln!(
            "{id}: inconclusive ({}); rehearsing it once more on a fresh replica, alone on the machine",
            record
                .inconclusive
                .as_deref()
                .unwrap_or("no reason recorded")
        );
        options.busy = options.busy.alone();
        attempt += 1;
    };
    let j = journal::assemble(
        runbook,
        &scenario.replica.profile,
        std::time::SystemTime::now(),
        record.wall_ms,
        0.02,
        vec![record],
    );
    let json = serde_json::to_string(&j).unwrap();
    assert_eq!(
        redactor.find_leak(&json),
        None,
        "a secret value in the journal"
    );
    let stack = j.scenarios[0]
        .stack
        .clone()
        .expect("the scenario had a replica");
    let docker = harness::docker::connect().await.unwrap();
    let left = harness::docker::leftovers_of(&docker, &[stack])
        .await
        .unwrap();
    assert_eq!(left, Vec::<String>::new(), "{id}: left behind");
    j
}

/// Every container name on the engine that is a bare production name (a second set of the
/// node's containers), sampled every 200 ms until `done`.
async fn production_names_seen(done: std::sync::Arc<std::sync::atomic::AtomicBool>) -> Vec<String> {
    use bollard::query_parameters::ListContainersOptionsBuilder;
    let docker = harness::docker::connect().await.unwrap();
    let mut seen = Vec::new();
    while !done.load(std::sync::atomic::Ordering::SeqCst) {
        let listed = docker
            .list_containers(Some(ListContainersOptionsBuilder::new().all(true).build()))
            .await
            .unwrap_or_default();
        for name in listed.into_iter().flat_map(|c| c.names.unwrap_or_default()) {
            let name = name.trim_start_matches('/').to_string();
            let bare = harness::Service::ALL
                .iter()
                .any(|s| s.production_name() == name);
            if bare && !seen.contains(&name) {
                seen.push(name);
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runbook_that_recreates_through_compose_recreates_the_stacks_own_router_with_the_new_key_live(
) {
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let watch = tokio::spawn(production_names_seen(done.clone()));
    let j = rehearse_runbook(
        "fixtures/runbook/SECRETS_ROTATION_RUNBOOK.compose.md",
        "rollback/after-deepseek",
    )
    .await;
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        watch.await.unwrap(),
        Vec::<String>::new(),
        "Compose created containers outside the stack"
    );
    let record = &j.scenarios[0];
    let host = harness::compose::HostCompose::detect()
        .expect("the README's prerequisites install Compose")
        .describe();
    let compose_runs: Vec<(&str, &rehearsal::shell::ShellRun)> = record
        .steps
        .iter()
        .chain(&record.rollback_steps)
        .flat_map(|step| {
            step.actions
                .iter()
                .filter_map(move |a| a.shell.as_ref().map(|run| (step.id.as_str(), run)))
        })
        .filter(|(_, run)| !run.compose.is_empty())
        .collect();
    let steps: Vec<&str> = compose_runs.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        steps,
        ["phase2.step3", "phase2.step5", "rollback.step2"],
        "the Compose commands of phase 2 and of the rollback ran"
    );
    for (step, run) in &compose_runs {
        assert_eq!(run.exit_code, Some(0), "{step}: {}", run.output_tail);
        let tools: Vec<&str> = run.compose.iter().map(|c| c.tool.as_str()).collect();
        assert_eq!(tools, [host.as_str()], "{step}: which Compose ran");
    }
    for step in record.steps.iter().filter(|s| s.id.starts_with("phase2.")) {
        assert_eq!(
            step.stale_env,
            Vec::<String>::new(),
            "{}: stale env",
            step.id
        );
    }
    let router_env = record
        .checks_after
        .iter()
        .find(|c| c.id == "env.container-matches-file.router")
        .expect("the router's env was checked");
    assert_eq!(
        router_env.outcome,
        harness::checks::Outcome::Pass,
        "{}",
        router_env.evidence
    );
    assert!(
        !record
            .findings
            .iter()
            .any(|f| f.finding.starts_with("restart-keeps-stale-env@phase2")
                && f.verdict == rehearsal::journal::Verdict::Confirmed),
        "a recreate is not a restart: {:?}",
        record.findings
    );
    let rollback = record.rollback_probe.as_ref().expect("a rollback probe");
    assert!(
        rollback.flows["webhook"].longest_outage_ms > 0,
        "the probe saw the node recreated by the rollback"
    );
    assert_eq!(rollback.updates_lost, 0, "recreated, nothing lost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phase1_preparation_backup_new_secrets_and_preflight_hold_under_traffic() {
    rehearse("prepare").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phase2_deepseek_dual_validity_as_written_leaves_the_new_key_unused_and_is_rolled_back() {
    rehearse("rotate/deepseek").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phase3_db_password_as_written_fails_at_step1_and_leaves_env_files_the_server_rejects_until_rolled_back(
) {
    rehearse("rotate/postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phase4_nats_credentials_as_written_rotates_nothing_and_is_rolled_back() {
    rehearse("rotate/nats").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phase5_verification_holds_on_an_unrotated_node() {
    rehearse("verify").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_rotation_as_written_passes_its_own_verification_but_not_the_promoted_checks() {
    let j = rehearse_runbook(DEFAULT_RUNBOOK, "rotation").await;
    // "without service downtime" is a budget of zero: each phase that restarts a service is
    // over it (which of the services it restarts was down longest varies from run to run).
    let over: Vec<String> = j.scenarios[0]
        .over_budget()
        .iter()
        .map(|o| o.split(": ").next().unwrap_or(o).to_string())
        .collect();
    assert_eq!(
        over,
        ["phase 2", "phase 3", "phase 4"],
        "{:?}",
        j.scenarios[0].over_budget()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_after_phase1_restarts_the_whole_node_with_downtime_and_no_loss() {
    rehearse("rollback/after-prepare").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_after_phase2_restores_the_old_key_setup() {
    rehearse("rollback/after-deepseek").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_after_phase3_restores_env_files_the_server_still_accepts() {
    rehearse("rollback/after-postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_after_phase4_restores_the_steady_state() {
    rehearse("rollback/after-nats").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scenario_past_its_deadline_stops_at_its_step_and_leaves_no_container() {
    let runbook = Runbook::load(&workspace_path(DEFAULT_RUNBOOK)).unwrap();
    let scenario = scenarios::rehearsals_for(&runbook)
        .into_iter()
        .find(|s| s.id == "rotate/deepseek")
        .unwrap();
    // Uncompressed, Phase 2 step 4 (`docker logs -f … | grep`, "Monitor for 5 minutes") would
    // run 5 minutes; the scenario's 25 s deadline ends it first.
    let options = Options {
        deadline: std::time::Duration::from_secs(25),
        time_scale: 1.0,
        ..Options::default()
    };
    let record = engine::run(
        &scenario,
        &runbook,
        &options,
        &Progress::stderr(),
        &Redactor::new(),
    )
    .await;
    assert_eq!(
        record.aborted_at.as_deref(),
        Some("phase2.step4"),
        "{:?}",
        record.error
    );
    assert!(!record.met);
    let docker = harness::docker::connect().await.unwrap();
    let mine: Vec<_> = harness::docker::list_stacks(&docker)
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.owner_pid == std::process::id())
        .collect();
    assert!(mine.is_empty(), "containers left behind: {mine:?}");
}

/// DeepSeek rejecting the new key just before Phase 2 step 3 (the router's restart): a step
/// boundary derived from the text (`tests/boundaries.rs` leaves it to this test), rehearsed here
/// for the findings it decides (`tests/fault_findings.txt`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_phase2_deepseek_rejects_the_new_key() {
    rehearse("faults/deepseek/step3-deepseek-rejects-the-new-key").await;
}

/// One test per scenario of the fault matrix, named after its id (phase, fault, step).
macro_rules! fault_matrix {
    ($($name:ident => $id:literal,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                rehearse(concat!("faults/", $id)).await;
            }
        )*

        #[test]
        fn every_scenario_of_the_fault_matrix_is_a_test() {
            let tested: Vec<&str> = vec![$($id),*];
            let matrix: Vec<String> = scenarios::fault_rehearsals()
                .into_iter()
                .map(|s| s.id.trim_start_matches("faults/").to_string())
                .collect();
            assert_eq!(matrix, tested);
        }
    };
}

fault_matrix! {
    fault_phase1_gateway_down_at_the_preflight_check => "phase1-gateway-down-at-the-preflight-check",
    fault_phase1_postgres_restarts_during_the_backup => "phase1-postgres-restarts-during-the-backup",
    fault_phase1_nats_crashes_for_3s => "phase1-nats-crashes-for-3s",
    fault_phase1_deepseek_answers_429_for_3s_at_the_preflight_check => "phase1-deepseek-answers-429-for-3s-at-the-preflight-check",
    fault_phase1_memory_crash_loops => "phase1-memory-crash-loops",
    fault_phase1_rerun_the_same_day_after_phase3_with_the_alter_fixed => "phase1-rerun-the-same-day-after-phase3-with-the-alter-fixed",
    fault_phase1_memory_to_postgres_300ms_latency_for_4s => "phase1-memory-to-postgres-300ms-latency-for-4s",
    fault_phase2_deepseek_revokes_the_old_key_early => "phase2-deepseek-revokes-the-old-key-early",
    fault_phase2_deepseek_answers_429 => "phase2-deepseek-answers-429",
    fault_phase2_deepseek_answers_after_2s => "phase2-deepseek-answers-after-2s",
    fault_phase2_new_key_pasted_as_written => "phase2-new-key-pasted-as-written",
    fault_phase2_router_cut_off_for_3s => "phase2-router-cut-off-for-3s",
    fault_phase2_gateway_down_trips_the_safeguard => "phase2-gateway-down-trips-the-safeguard",
    fault_phase3_new_password_with_an_ampersand => "phase3-new-password-with-an-ampersand",
    fault_phase3_new_password_with_a_slash => "phase3-new-password-with-a-slash",
    fault_phase3_alter_fixed_new_password_with_a_dollar => "phase3-alter-fixed-new-password-with-a-dollar",
    fault_phase3_alter_fixed_new_password_with_a_quote => "phase3-alter-fixed-new-password-with-a-quote",
    fault_phase3_alter_fixed_new_password_with_a_backslash => "phase3-alter-fixed-new-password-with-a-backslash",
    fault_phase3_alter_fixed_new_password_with_a_hash_and_a_space => "phase3-alter-fixed-new-password-with-a-hash-and-a-space",
    fault_phase3_alter_fixed_new_password_with_a_backtick_and_a_double_quote => "phase3-alter-fixed-new-password-with-a-backtick-and-a-double-quote",
    fault_phase3_alter_fixed_memory_env_missed => "phase3-alter-fixed-memory-env-missed",
    fault_phase3_memory_crashes_before_the_rolling_restart => "phase3-memory-crashes-before-the-rolling-restart",
    fault_phase3_postgres_hangs_during_the_env_update => "phase3-postgres-hangs-during-the-env-update",
    fault_phase3_postgres_max_connections_for_5s => "phase3-postgres-max-connections-for-5s",
    fault_phase3_postgres_500ms_latency_for_5s => "phase3-postgres-500ms-latency-for-5s",
    fault_phase3_postgres_connections_reset => "phase3-postgres-connections-reset",
    fault_phase4_nats_crashes_before_the_rolling_restart => "phase4-nats-crashes-before-the-rolling-restart",
    fault_phase4_nats_reloads_during_publishing => "phase4-nats-reloads-during-publishing",
    fault_phase4_nats_restarts_before_the_rolling_restart => "phase4-nats-restarts-before-the-rolling-restart",
    fault_phase4_nats_300ms_latency_for_5s => "phase4-nats-300ms-latency-for-5s",
    fault_phase4_nats_connections_reset => "phase4-nats-connections-reset",
    fault_phase4_crewai_worker_cut_off_for_4s => "phase4-crewai-worker-cut-off-for-4s",
    fault_phase5_memory_crash_loops => "phase5-memory-crash-loops",
    fault_phase5_deepseek_revokes_the_current_key => "phase5-deepseek-revokes-the-current-key",
    fault_phase5_postgres_stalls_for_4s => "phase5-postgres-stalls-for-4s",
    fault_phase5_postgres_max_connections => "phase5-postgres-max-connections",
    fault_phase5_router_hangs_for_4s => "phase5-router-hangs-for-4s",
    fault_rollback_memory_crashes_before_the_restart => "rollback-memory-crashes-before-the-restart",
    fault_rollback_postgres_hangs_for_5s => "rollback-postgres-hangs-for-5s",
    fault_rollback_nats_crashes_before_the_verification => "rollback-nats-crashes-before-the-verification",
    fault_rollback_deepseek_answers_429 => "rollback-deepseek-answers-429",
    fault_rollback_postgres_300ms_latency => "rollback-postgres-300ms-latency",
    fault_rollback_after_phase3_with_the_alter_fixed => "rollback-after-phase3-with-the-alter-fixed",
}

const V2: &str = "fixtures/runbook/SECRETS_ROTATION_RUNBOOK.v2.md";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_phase2_deepseek_key_rotated_under_traffic_holds_with_the_old_key_revoked() {
    rehearse_runbook(V2, "rotate/deepseek").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_phase3_mistral_key_rotated_under_traffic_holds_with_the_old_key_revoked() {
    rehearse_runbook(V2, "rotate/mistral").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_phase4_grok_key_rotated_under_traffic_holds_with_the_old_key_revoked() {
    rehearse_runbook(V2, "rotate/grok").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_phase5_cohere_key_rotated_under_traffic_holds_with_the_old_key_revoked() {
    rehearse_runbook(V2, "rotate/cohere").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_phase6_db_password_moved_through_a_temporary_role_holds_with_the_old_password_rejected()
{
    rehearse_runbook(V2, "rotate/postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_phase7_nats_clients_moved_through_temporary_users_hold_with_the_old_passwords_rejected()
{
    rehearse_runbook(V2, "rotate/nats").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_phase8_qdrant_key_rotated_under_traffic_holds_with_the_old_key_revoked() {
    rehearse_runbook(V2, "rotate/qdrant").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_phase9_neo4j_password_cut_over_delays_updates_and_loses_none() {
    rehearse_runbook(V2, "rotate/neo4j").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_phase10_bot_tokens_revoked_in_botfather_delay_updates_and_lose_none() {
    rehearse_runbook(V2, "rotate/telegram").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_phase11_jwt_secret_rotated_with_the_previous_one_accepted_until_unused_holds() {
    rehearse_runbook(V2, "rotate/jwt").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_phase11_on_a_gateway_without_the_key_overlap_stops_at_its_prerequisite_check() {
    let j = rehearse_runbook(V2, "v2/jwt/without-key-overlap").await;
    let steps: Vec<&str> = j.scenarios[0].steps.iter().map(|s| s.id.as_str()).collect();
    assert_eq!(
        steps,
        [
            "phase1.step1",
            "phase1.step2",
            "phase1.step3",
            "phase11.step1"
        ],
        "the phase stops at its prerequisite check"
    );
    assert_eq!(
        j.scenarios[0].stopped_at_failed_step.as_deref(),
        Some("phase11.step1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_the_whole_rotation_holds_under_traffic_and_passes_every_check_verify_runs() {
    let j = rehearse_runbook(V2, "rotation").await;
    let after = &j.scenarios[0].checks_after;
    assert_eq!(
        after.len(),
        harness::checks::catalogue().len(),
        "v2 rotation: after the rotation, every check `cargo xtask verify` has"
    );
    let not_passed: Vec<String> = after
        .iter()
        .filter(|c| c.outcome != harness::checks::Outcome::Pass)
        .map(|c| format!("{} {:?}: {}", c.id, c.outcome, c.evidence))
        .collect();
    assert_eq!(
        not_passed,
        Vec::<String>::new(),
        "v2 rotation: checks after"
    );
    // Every boundary: each agent's webhook, each worker's processing, the API tried end to end;
    // nothing failed except where the phase's own text declares it.
    let s = &j.scenarios[0];
    assert_eq!(s.boundaries.len(), 47);
    for b in &s.boundaries {
        let flows: Vec<&str> = b.flows.iter().map(|f| f.flow.as_str()).collect();
        assert_eq!(
            flows,
            [
                "telegram.daarwizz",
                "telegram.helion",
                "telegram.greenfood",
                "telegram.druid",
                "jetstream.crewai-nats-worker",
                "jetstream.parser-pipeline",
                "api.token-issued-before-the-step"
            ],
            "{}",
            b.name()
        );
    }
    let failing: Vec<(String, bool)> = s
        .boundaries
        .iter()
        .filter(|b| b.refused().next().is_some())
        .map(|b| (b.name(), b.declared.is_some()))
        .collect();
    assert_eq!(
        failing,
        [
            ("phase9.step2 \u{2192} phase9.step3".to_string(), true),
            ("phase10.step1 \u{2192} phase10.step2".to_string(), true)
        ]
    );
    assert_eq!(s.over_budget(), Vec::<String>::new());
    assert_eq!(
        s.budgets.len(),
        12,
        "every phase measured against its budget"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_rollback_after_phase2_restores_the_files_but_keeps_the_revoked_deepseek_key_out() {
    rehearse_runbook(V2, "rollback/after-deepseek").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_rollback_after_phase6_gives_daarion_its_backed_up_password_on_the_server() {
    rehearse_runbook(V2, "rollback/after-postgres").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_rollback_after_phase7_reloads_the_backed_up_nats_users() {
    rehearse_runbook(V2, "rollback/after-nats").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_rollback_after_phase3_restores_the_files_but_keeps_the_revoked_mistral_key_out() {
    rehearse_runbook(V2, "rollback/after-mistral").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_rollback_after_phase4_restores_the_files_but_keeps_the_revoked_grok_key_out() {
    rehearse_runbook(V2, "rollback/after-grok").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_rollback_after_phase5_restores_the_files_but_keeps_the_revoked_cohere_key_out() {
    rehearse_runbook(V2, "rollback/after-cohere").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_rollback_after_phase8_restores_the_files_but_keeps_the_revoked_qdrant_key_out() {
    rehearse_runbook(V2, "rollback/after-qdrant").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_rollback_after_phase9_after_the_neo4j_cut_over() {
    rehearse_runbook(V2, "rollback/after-neo4j").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_rollback_after_phase10_after_the_bot_tokens_were_revoked() {
    rehearse_runbook(V2, "rollback/after-telegram").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_prepare_phase1_alone_holds_under_traffic() {
    rehearse_runbook(V2, "prepare").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_rollback_after_phase1_restores_the_node_from_the_encrypted_backup() {
    rehearse_runbook(V2, "rollback/after-prepare").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_phase12_verification_holds_on_a_node_not_rotated() {
    rehearse_runbook(V2, "verify").await;
}

/// The v2 text with its DeepSeek phase missing the step that writes the new key into the
/// router's `.env`, written here: the router is recreated with the old key, which the next
/// step revokes.
fn v2_without_the_deepseek_env_step() -> Runbook {
    let text = std::fs::read_to_string(workspace_path(V2)).unwrap();
    let phase2 = text.find("### Phase 2:").unwrap();
    let start = phase2 + text[phase2..].find("2. **Write the new key").unwrap();
    let end = start + text[start..].find("3. **Recreate the router").unwrap();
    let edited = format!("{}{}", &text[..start], &text[end..]);
    harness::runbook::parse("v2-without-the-deepseek-env-step.md", &edited).unwrap()
}

/// The edited phase is not `holds` in its own scenario, and the report names the step under
/// which it broke: the derived scenario holds the edit to what the text says it rotates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_edited_phase2_without_its_env_step_is_not_holds_and_its_report_names_the_step() {
    let runbook = v2_without_the_deepseek_env_step();
    let j = rehearse_on(&runbook, "rotate/deepseek").await;
    let record = &j.scenarios[0];
    let summary = render::summary(&j, &Redactor::new());
    assert_eq!(record.expected, rehearsal::Expected::Holds);
    assert!(
        matches!(record.actual, Some(Outcome::Detected | Outcome::Breaks)),
        "rotate/deepseek on the edited v2\n{summary}"
    );
    let failed: Vec<&str> = record
        .failed_after()
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    assert!(
        failed.contains(&"provider.key.current.deepseek"),
        "the router holds a revoked key: {failed:?}\n{summary}"
    );
    assert!(
        summary
            .contains("new values not live after the steps: DEEPSEEK_API_KEY (no step wrote it)"),
        "the report names the value no step wrote\n{summary}"
    );
}

/// The same edit in the whole rotation: not `holds` either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_edited_rotation_without_the_deepseek_env_step_is_not_holds() {
    let runbook = v2_without_the_deepseek_env_step();
    let j = rehearse_on(&runbook, "rotation").await;
    let summary = render::summary(&j, &Redactor::new());
    assert!(
        matches!(
            j.scenarios[0].actual,
            Some(Outcome::Detected | Outcome::Breaks)
        ),
        "rotation on the edited v2\n{summary}"
    );
}

/// The v2 text with `edit` applied, parsed as `name`.
fn v2_edited(name: &str, edit: impl Fn(&str) -> String) -> Runbook {
    let text = std::fs::read_to_string(workspace_path(V2)).unwrap();
    harness::runbook::parse(name, &edit(&text)).unwrap()
}

/// The boundaries of a journal's scenario where stopping is unsafe, as `step → step: refused`.
fn unsafe_windows(j: &journal::Journal) -> Vec<String> {
    j.scenarios[0]
        .unsafe_windows()
        .map(|b| {
            let refused: Vec<&str> = b.refused().collect();
            format!("{}: {}", b.name(), refused.join("; "))
        })
        .collect()
}

/// v2 with `daarion`'s password changed at the end of Phase 6 step 2, one step before the
/// services leave `daarion` for the temporary role (written here).
fn v2_with_daarions_password_changed_a_step_early() -> Runbook {
    v2_edited("v2-alter-early.md", |t| {
        let check = "   PGPASSWORD=\"$NEW_DB_PASSWORD\" psql \"postgresql://daarion_rotation@localhost:5432/daarion_main\" -tAc 'SELECT current_user'\n";
        assert!(t.contains(check));
        t.replacen(
            check,
            &format!(
                "{check}   q=\\'\n   printf \"ALTER ROLE daarion PASSWORD '%s';\\n\" \"${{NEW_DB_PASSWORD//$q/$q$q}}\" \\\n     | docker exec -i dagi-postgres psql -v ON_ERROR_STOP=1 -U daarion -d daarion_main -q\n"
            ),
            1,
        )
    })
}

/// Every service then holds a password the server refuses until step 3 moves it: a window of
/// milliseconds at this time scale, unsafe all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_edited_phase6_with_daarions_password_changed_a_step_early_has_an_unsafe_window_after_step2(
) {
    let j = rehearse_on(
        &v2_with_daarions_password_changed_a_step_early(),
        "rotate/postgres",
    )
    .await;
    let summary = render::summary(&j, &Redactor::new());
    assert!(
        matches!(
            j.scenarios[0].actual,
            Some(Outcome::Detected | Outcome::Breaks)
        ),
        "rotate/postgres on the edited v2\n{summary}"
    );
    let windows = unsafe_windows(&j);
    assert_eq!(
        windows.len(),
        1,
        "one unsafe window, after phase6.step2\n{summary}"
    );
    assert!(
        windows[0].starts_with("phase6.step2 \u{2192} phase6.step3: PostgreSQL refuses "),
        "{windows:?}\n{summary}"
    );
    assert!(
        summary.contains("unsafe window: phase6.step2 \u{2192} phase6.step3: PostgreSQL refuses"),
        "the report names the window\n{summary}"
    );
}

/// The same edit rehearsed by an operator who pauses 3 s at every boundary: the same window,
/// refused the same way; only how long the node stayed there differs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_edited_phase6_window_is_the_same_at_an_operators_pace_of_3s() {
    let runbook = v2_with_daarions_password_changed_a_step_early();
    let paced = Options {
        operator_pace: std::time::Duration::from_secs(3),
        ..Options::default()
    };
    let j = rehearse_with(&runbook, "rotate/postgres", paced).await;
    let summary = render::summary(&j, &Redactor::new());
    let windows = unsafe_windows(&j);
    assert_eq!(windows.len(), 1, "{summary}");
    assert!(
        windows[0].starts_with("phase6.step2 \u{2192} phase6.step3: PostgreSQL refuses "),
        "{windows:?}\n{summary}"
    );
    let stayed = j.scenarios[0]
        .unsafe_windows()
        .next()
        .map(|b| b.lasted_ms)
        .unwrap();
    assert!(stayed >= 3000, "the operator waited there: {stayed} ms");
}

/// v2 with Phase 7's temporary users removed (step 5) before the clients move back to their
/// regular users (step 4), the two steps swapped: between them every client holds a user the
/// server no longer has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_edited_phase7_with_the_temporary_users_removed_a_step_early_has_an_unsafe_window_after_step4(
) {
    let edited = v2_edited("v2-users-removed-early.md", |t| {
        let (p7, p8) = (
            t.find("### Phase 7:").unwrap(),
            t.find("### Phase 8:").unwrap(),
        );
        let phase = &t[p7..p8];
        let back = phase.find("4. **Move every client back").unwrap();
        let remove = phase.find("5. **Remove the temporary users").unwrap();
        let check = phase.find("6. **Check which user").unwrap();
        format!(
            "{}{}{}{}{}{}",
            &t[..p7],
            &phase[..back],
            phase[remove..check].replacen("5. **", "4. **", 1),
            phase[back..remove].replacen("4. **", "5. **", 1),
            &phase[check..],
            &t[p8..]
        )
    });
    let j = rehearse_on(&edited, "rotate/nats").await;
    let summary = render::summary(&j, &Redactor::new());
    assert!(
        matches!(
            j.scenarios[0].actual,
            Some(Outcome::Detected | Outcome::Breaks)
        ),
        "rotate/nats on the edited v2\n{summary}"
    );
    let windows = unsafe_windows(&j);
    assert!(
        windows
            .iter()
            .any(|w| w.starts_with("phase7.step4 \u{2192} phase7.step5: NATS refuses ")),
        "{windows:?}\n{summary}"
    );
}

/// v2 with Phase 11's step 2 writing the new JWT secret without keeping the current one as
/// the previous (written here): the gateway recreated there no longer accepts the tokens it
/// issued a step before, until their holders renew them; by the phase's end they have, and
/// every check after it passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_edited_phase11_with_the_previous_secret_dropped_at_the_first_recreate_has_an_unsafe_window_after_step2(
) {
    let edited = v2_edited("v2-previous-dropped-early.md", |t| {
        let keep = "print \"JWT_SECRET_PREVIOUS=\" substr($0, 12); ";
        assert!(t.contains(keep));
        t.replacen(keep, "", 1)
    });
    let j = rehearse_on(&edited, "rotate/jwt").await;
    let summary = render::summary(&j, &Redactor::new());
    assert!(
        matches!(
            j.scenarios[0].actual,
            Some(Outcome::Detected | Outcome::Breaks)
        ),
        "rotate/jwt on the edited v2\n{summary}"
    );
    let windows = unsafe_windows(&j);
    assert!(
        windows.iter().any(|w| w.starts_with(
            "phase11.step2 \u{2192} phase11.step3: the API answered 401 for a token the gateway issued before the step"
        )),
        "{windows:?}\n{summary}"
    );
}

/// v2 with its Mistral and Grok phases swapped and renumbered, written here: each secret is
/// rehearsed in the phase that now holds it, with v2's outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_swapped_phases_3_and_4_rotate_mistral_and_grok_each_with_v2s_outcome() {
    let swapped = v2_edited("v2-swapped.md", |t| {
        let at = |n: u32| t.find(&format!("### Phase {n}:")).unwrap();
        let (mistral, grok, after) = (&t[at(3)..at(4)], &t[at(4)..at(5)], at(5));
        format!(
            "{}{}{}{}",
            &t[..at(3)],
            grok.replacen("### Phase 4:", "### Phase 3:", 1),
            mistral.replacen("### Phase 3:", "### Phase 4:", 1),
            &t[after..]
        )
    });
    for (id, phases) in [("rotate/mistral", [1, 4]), ("rotate/grok", [1, 3])] {
        let j = rehearse_on(&swapped, id).await;
        let record = &j.scenarios[0];
        let ran: Vec<&str> = record.steps.iter().map(|s| s.id.as_str()).collect();
        assert!(
            ran.iter()
                .any(|s| s.starts_with(&format!("phase{}.", phases[1]))),
            "{id} ran the phase that now holds its secret: {ran:?}"
        );
        assert!(
            record.met,
            "{id}\n{}",
            render::summary(&j, &Redactor::new())
        );
    }
}

/// v2 with a second DeepSeek phase added at its end, written here: rehearsed as
/// `rotate/deepseek-2` with no change to the code, with v2's outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_added_second_deepseek_phase_is_rehearsed_as_rotate_deepseek_2_and_holds() {
    let added = v2_edited("v2-added.md", |t| {
        let phase2 = &t[t.find("### Phase 2:").unwrap()..t.find("### Phase 3:").unwrap()];
        let again = phase2.replacen("### Phase 2:", "### Phase 13:", 1);
        t.replacen(
            "## Rollback Procedure",
            &format!("{again}## Rollback Procedure"),
            1,
        )
    });
    let j = rehearse_on(&added, "rotate/deepseek-2").await;
    assert!(
        j.scenarios[0].met,
        "rotate/deepseek-2\n{}",
        render::summary(&j, &Redactor::new())
    );
}

/// Tokens the gateway signed with the new secret are still accepted after the rollback: no
/// API call of the client fails while it holds one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_rollback_after_phase11_keeps_the_tokens_signed_since_valid() {
    let j = rehearse_runbook(V2, "rollback/after-jwt").await;
    let rollback = j.scenarios[0]
        .rollback_probe
        .as_ref()
        .expect("v2 rollback/after-jwt: the rollback ran under traffic");
    assert_eq!(
        rollback.flows["api"].failed, 0,
        "v2 rollback/after-jwt: rollback.step4: API calls failed (a client logged out)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_phase8_memory_killed_before_its_recreate() {
    rehearse_runbook(V2, "v2/faults/phase8-memory-killed-before-its-recreate").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_phase11_gateway_killed_for_10s_during_the_key_overlap() {
    rehearse_runbook(
        V2,
        "v2/faults/phase11-gateway-killed-for-10s-during-the-key-overlap",
    )
    .await;
}

// Node profiles: the same runbooks on nodes whose services read their secrets otherwise than
// the replica's default (docs/node-profile.md).

/// The secret as each service reads it after `phase3.step2`, by `edit-misses-wiring`.
fn wiring_verdicts(j: &journal::Journal) -> Vec<(String, String, String)> {
    j.scenarios[0]
        .findings
        .iter()
        .filter(|f| f.finding.starts_with("edit-misses-wiring@"))
        .map(|f| (f.finding.clone(), f.verdict.to_string(), f.evidence.clone()))
        .collect()
}

/// No update lost and no memory kept out of PostgreSQL while the steps ran.
fn assert_nothing_lost(j: &journal::Journal, what: &str) {
    let probe = j.scenarios[0].probe.as_ref().expect("traffic");
    assert_eq!(
        (probe.updates_lost, probe.data.missing_memories),
        (0, 0),
        "{what}: lost updates, memories not in PostgreSQL"
    );
}

/// The check `id` after the steps: its outcome and evidence.
fn check_after(j: &journal::Journal, id: &str) -> (String, String) {
    let c = j.scenarios[0]
        .checks_after
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no check {id}"));
    (c.outcome.to_string(), c.evidence.clone())
}

/// Phase 3 as written rewrites `DB_PASSWORD=` lines; on a node whose clients read
/// `DATABASE_URL`, the password they use stays the old one everywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_database_url_phase3_as_written_sed_leaves_every_database_url_on_the_old_password()
{
    let j = rehearse_profiled(DEFAULT_RUNBOOK, "rotate/postgres", "database-url").await;
    assert_eq!(
        wiring_verdicts(&j),
        [(
            "edit-misses-wiring@phase3.step2".to_string(),
            "confirmed".to_string(),
            "the step edited `DB_PASSWORD=` lines, but DB_PASSWORD did not change where the services read it: `DATABASE_URL` of router, `DATABASE_URL` of memory-service, `DATABASE_URL` of gateway, `DATABASE_URL` of crewai-nats-worker, `DATABASE_URL` of parser-pipeline".to_string()
        )]
    );
    let finding = j
        .findings
        .iter()
        .find(|f| f.id == "edit-misses-wiring@phase3.step2")
        .expect("the static finding");
    assert!(
        finding
            .explanation
            .contains("`DATABASE_URL` in services/memory-service/.env"),
        "{}",
        finding.explanation
    );
    assert_eq!(
        check_after(&j, "postgres.auth.current.memory-service").1,
        format!(
            "DATABASE_URL of memory-service logs in as daarion at {} on a new connection",
            check_after(&j, "postgres.auth.current.memory-service")
                .1
                .split(" at ")
                .nth(1)
                .and_then(|r| r.split(' ').next())
                .unwrap_or("?")
        )
    );
}

/// Phase 6 of v2 writes the new password into `DATABASE_URL`, percent-encoded, as well as into
/// `DB_PASSWORD`: on a `DATABASE_URL` node it holds, nothing lost, the old password refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_database_url_v2_phase6_writes_the_url_too_and_holds() {
    let j = rehearse_profiled(V2, "rotate/postgres", "database-url").await;
    assert_eq!(wiring_verdicts(&j), []);
    assert_nothing_lost(&j, "v2 rotate/postgres under database-url");
    assert_eq!(
        check_after(&j, "postgres.auth.previous").0,
        "pass",
        "v2 rotate/postgres under database-url: phase6.step4"
    );
}

/// Phase 6 and Phase 9 of v2 edit the project `.env` Compose interpolates too, and recreate
/// through Compose: on a node that interpolates its shared passwords they hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_interpolated_v2_phase6_edits_the_project_env_and_holds() {
    let j = rehearse_profiled(V2, "rotate/postgres", "interpolated").await;
    // Step 4 edits PostgreSQL's own `.env`, which it no longer reads; step 3 already wrote the
    // new password where it does.
    assert_eq!(
        wiring_verdicts(&j),
        [(
            "edit-misses-wiring@phase6.step4".to_string(),
            "refuted".to_string(),
            "the step edited `POSTGRES_PASSWORD=` lines and DB_PASSWORD is the value it wrote where the services read it: `POSTGRES_PASSWORD` of postgres".to_string()
        )]
    );
    assert_nothing_lost(&j, "v2 rotate/postgres under interpolated");
    assert_eq!(
        check_after(&j, "env.container-matches-file.gateway").0,
        "pass",
        "v2 rotate/postgres under interpolated: phase6.step5"
    );
}

/// A new password holding `@`, `/`, `#`, `%`, `:` and `?`: v2 writes it percent-encoded into
/// every `DATABASE_URL`, and the clients read it back whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_profile_database_url_phase6_new_password_with_url_reserved_characters_holds() {
    rehearse_runbook(
        V2,
        "v2/profiles/database-url/phase6-new-password-with-url-reserved-characters",
    )
    .await;
}

/// `DATABASE_URL` removed from the memory service's `.env`: its recreate in `phase6.step3`
/// starts it on its SQLite fallback, healthy, and every memory from then on is lost; the checks
/// name the fallback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_profile_database_url_phase6_memory_service_on_its_fallback_loses_memories() {
    let j = rehearse_runbook(
        V2,
        "v2/profiles/database-url/phase6-database-url-removed-from-the-memory-service",
    )
    .await;
    let probe = j.scenarios[0].probe.as_ref().expect("traffic");
    assert!(
        probe.data.missing_memories > 0,
        "phase6.step3: the memory service kept memories out of PostgreSQL"
    );
    let (outcome, evidence) = check_after(&j, "env.container-matches-file.memory-service");
    assert_eq!(outcome, "fail");
    assert!(
        evidence.ends_with(
            "(memory-service): DATABASE_URL is not in the container: it runs on its fallback, sqlite:///./memory.db"
        ),
        "{evidence}"
    );
    assert_eq!(
        check_after(&j, "postgres.auth.current.memory-service").1,
        "services/memory-service/.env has no DATABASE_URL: memory-service runs on its fallback, sqlite:///./memory.db, not on the node's DB_PASSWORD"
    );
}

/// Phase 9 on a node that interpolates `NEO4J_PASSWORD` from the project `.env`, with its
/// recreate replaced by `docker restart`: the restarted services keep the old password, the
/// step's wait fails, the rollback restores the node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_profile_interpolated_phase9_project_env_edited_then_only_restarted_keeps_the_old_password(
) {
    let j = rehearse_runbook(
        V2,
        "v2/profiles/interpolated/phase9-project-env-edited-then-only-restarted",
    )
    .await;
    let (outcome, evidence) = check_after(&j, "env.container-matches-file.router");
    assert_eq!(outcome, "fail");
    assert!(
        evidence
            .contains("NEO4J_PASSWORD differs from .env (NEO4J_PASSWORD, interpolated on `up`)"),
        "{evidence}"
    );
}
