//! Every rehearsal of the runbook as written is one test: it runs on a fresh replica under
//! traffic and asserts the outcome measured so far. A runbook change that changes an outcome
//! fails here, with the scenario's summary, until the expectation is reviewed.

use harness::progress::Progress;
use harness::redact::Redactor;
use harness::rehearsal::{engine, journal, render, Options};
use harness::runbook::{workspace_path, Runbook, DEFAULT_RUNBOOK};

async fn rehearse(id: &str) {
    let runbook = Runbook::load(&workspace_path(DEFAULT_RUNBOOK)).unwrap();
    let scenario = scenarios::rehearsals()
        .into_iter()
        .chain(scenarios::fault_rehearsals())
        .find(|s| s.id == id)
        .unwrap_or_else(|| panic!("no rehearsal {id}"));
    let redactor = Redactor::new();
    let record = engine::run(
        &scenario,
        &runbook,
        &Options::default(),
        &Progress::stderr(),
        &redactor,
    )
    .await;
    let j = journal::assemble(
        &runbook,
        std::time::SystemTime::now(),
        record.wall_ms,
        0.02,
        vec![record],
    );
    let summary = render::summary(&j, &redactor);
    let json = serde_json::to_string(&j).unwrap();
    assert_eq!(
        redactor.find_leak(&json),
        None,
        "a secret value in the journal"
    );
    assert!(
        j.scenarios[0].met,
        "{id}: expected outcome not met\n{summary}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phase1_preparation_backup_new_secrets_and_preflight_hold_under_traffic() {
    rehearse("phase1/as-written").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phase2_deepseek_dual_validity_as_written_leaves_the_new_key_unused_and_is_rolled_back() {
    rehearse("phase2/as-written").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phase3_db_password_as_written_fails_at_step1_and_leaves_env_files_the_server_rejects_until_rolled_back(
) {
    rehearse("phase3/as-written").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phase4_nats_credentials_as_written_rotates_nothing_and_is_rolled_back() {
    rehearse("phase4/as-written").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phase5_verification_holds_on_an_unrotated_node() {
    rehearse("phase5/as-written").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_rotation_as_written_passes_its_own_verification_but_not_the_promoted_checks() {
    rehearse("rotation/as-written").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_after_phase1_restarts_the_whole_node_with_downtime_and_no_loss() {
    rehearse("rollback/after-phase1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_after_phase2_restores_the_old_key_setup() {
    rehearse("rollback/after-phase2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_after_phase3_restores_env_files_the_server_still_accepts() {
    rehearse("rollback/after-phase3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_after_phase4_restores_the_steady_state() {
    rehearse("rollback/after-phase4").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_after_phase5_restarts_the_whole_node_with_downtime_and_no_loss() {
    rehearse("rollback/after-phase5").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scenario_past_its_deadline_stops_at_its_step_and_leaves_no_container() {
    let runbook = Runbook::load(&workspace_path(DEFAULT_RUNBOOK)).unwrap();
    let scenario = scenarios::rehearsals()
        .into_iter()
        .find(|s| s.id == "phase2/as-written")
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_deepseek_revokes_the_old_key_early_in_phase2_delays_updates_and_is_rolled_back() {
    rehearse("faults/phase2-deepseek-revokes-the-old-key-early").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_deepseek_answers_429_in_phase2_delays_updates_and_is_rolled_back() {
    rehearse("faults/phase2-deepseek-answers-429").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_memory_crashes_before_phase3_step3_is_restarted_by_the_rolling_restart() {
    rehearse("faults/phase3-memory-crashes-before-the-rolling-restart").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_postgres_hangs_before_phase3_step2_costs_nothing_measurable() {
    rehearse("faults/phase3-postgres-hangs-during-the-env-update").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_nats_crashes_before_phase4_step3_fails_api_and_jetstream_for_seconds() {
    rehearse("faults/phase4-nats-crashes-before-the-rolling-restart").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_gateway_down_in_phase2_trips_the_safeguard_which_aborts_and_rolls_back() {
    rehearse("faults/phase2-gateway-down-trips-the-safeguard").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_a_new_db_password_with_an_ampersand_is_mangled_by_the_runbooks_sed_in_every_env_file(
) {
    rehearse("faults/phase3-new-password-with-an-ampersand").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fault_a_new_db_password_with_a_slash_makes_the_runbooks_sed_fail_silently() {
    rehearse("faults/phase3-new-password-with-a-slash").await;
}
