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
async fn phase2_deepseek_dual_validity_as_written_leaves_the_new_key_unused() {
    rehearse("phase2/as-written").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phase3_db_password_as_written_fails_at_step1_and_leaves_env_files_the_server_rejects() {
    rehearse("phase3/as-written").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phase4_nats_credentials_as_written_rotates_nothing_after_its_first_command_fails() {
    rehearse("phase4/as-written").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phase5_verification_holds_on_an_unrotated_node() {
    rehearse("phase5/as-written").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_rotation_as_written_passes_its_own_verification_and_fails_the_promoted_checks() {
    rehearse("rotation/as-written").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_after_phase1_restarts_the_whole_node_and_loses_the_events_accepted_just_before() {
    rehearse("rollback/after-phase1").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_after_phase2_restarts_the_whole_node_and_loses_events() {
    rehearse("rollback/after-phase2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_after_phase3_restores_env_files_the_server_still_accepts_but_loses_events() {
    rehearse("rollback/after-phase3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_after_phase4_restarts_the_whole_node_and_loses_events() {
    rehearse("rollback/after-phase4").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_after_phase5_restarts_the_whole_node_and_loses_events() {
    rehearse("rollback/after-phase5").await;
}
