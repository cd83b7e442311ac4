//! Runbook scenarios: the catalogue of what is rehearsed against the replica, with the runbook
//! steps, secrets and static findings each one measures. The tests under `tests/` run them;
//! `harness::runbook::coverage` and the lock read this catalogue.

use harness::runbook::coverage::ScenarioRef;
use harness::runbook::findings::FindingKind;

pub mod costs;
pub mod random;
mod rehearsals;
pub mod v2;
pub mod v2_boundaries;
pub use rehearsals::{fault_rehearsals, rehearsals};
pub use v2::v2_rehearsals;

/// The v2 scenarios as the coverage and the lock see them: the hand-written entries
/// (`v2::V2_CATALOGUE`) and one per step boundary under a fault (`v2_boundaries`).
pub fn v2_catalogue() -> &'static [ScenarioRef] {
    static ALL: std::sync::LazyLock<Vec<ScenarioRef>> = std::sync::LazyLock::new(|| {
        v2::V2_CATALOGUE
            .iter()
            .cloned()
            .chain(
                v2_boundaries::BOUNDARIES
                    .iter()
                    .map(v2_boundaries::Boundary::catalogue_entry),
            )
            .collect()
    });
    &ALL
}

/// The lock of the v2 runbook's steps and scenarios (the as-written runbook's is
/// `harness::runbook::lock::DEFAULT_LOCK`).
pub const V2_LOCK: &str = "scenarios/runbook.v2.lock";

/// The scenario catalogue that rehearses the runbook in `runbook_file` (`v2::is_v2`).
pub fn catalogue_for(runbook_file: &str) -> &'static [ScenarioRef] {
    if v2::is_v2(runbook_file) {
        v2_catalogue()
    } else {
        CATALOGUE
    }
}

/// The lock that belongs to the runbook in `runbook_file`.
pub fn lock_for(runbook_file: &str) -> &'static str {
    if v2::is_v2(runbook_file) {
        V2_LOCK
    } else {
        harness::runbook::lock::DEFAULT_LOCK
    }
}

/// What `rehearse --runbook FILE` runs without `--only`: the v2 set for a v2 runbook, the
/// runbook as written (phases, rotation, rollbacks) otherwise.
pub fn default_rehearsals_for(runbook_file: &str) -> Vec<harness::rehearsal::Scenario> {
    if v2::is_v2(runbook_file) {
        v2_rehearsals()
    } else {
        rehearsals()
    }
}

/// Every rehearsal meant for the runbook in `runbook_file`: for a v2 runbook the v2 set, its
/// faults and its step boundaries; otherwise the runbook as written and the fault matrix.
pub fn rehearsals_for(runbook_file: &str) -> Vec<harness::rehearsal::Scenario> {
    if v2::is_v2(runbook_file) {
        v2_rehearsals()
            .into_iter()
            .chain(v2::v2_fault_rehearsals())
            .chain(v2_boundaries::v2_boundary_rehearsals())
            .collect()
    } else {
        rehearsals().into_iter().chain(fault_rehearsals()).collect()
    }
}

/// Every rehearsal there is (as written, fault matrix, v2), for `--only` globs.
pub fn every_rehearsal() -> Vec<harness::rehearsal::Scenario> {
    rehearsals()
        .into_iter()
        .chain(fault_rehearsals())
        .chain(v2_rehearsals())
        .chain(v2::v2_fault_rehearsals())
        .chain(v2_boundaries::v2_boundary_rehearsals())
        .collect()
}

/// Every scenario, by id. A tidy test checks that each `test` names a test function that exists.
pub const CATALOGUE: &[ScenarioRef] = &[
    ScenarioRef {
        id: "phase1/as-written",
        test: "phase1_preparation_backup_new_secrets_and_preflight_hold_under_traffic",
        summary: "Phase 1 as written under traffic, measured by the promoted checks",
        steps: &["phase1.step1", "phase1.step2", "phase1.step3"],
        secrets: &[],
        findings: &[FindingKind::UnencryptedBackup, FindingKind::BackupRetention, FindingKind::NoCommand],
    },
    ScenarioRef {
        id: "phase2/as-written",
        test: "phase2_deepseek_dual_validity_as_written_leaves_the_new_key_unused_and_is_rolled_back",
        summary: "Phase 2 as written under traffic, measured by the promoted checks",
        steps: &["phase1.step1", "phase1.step2", "phase1.step3", "phase2.step1", "phase2.step2", "phase2.step3", "phase2.step4", "phase2.step5"],
        secrets: &["DEEPSEEK_API_KEY"],
        findings: &[FindingKind::NeverTerminates, FindingKind::RestartKeepsStaleEnv, FindingKind::UnencryptedBackup, FindingKind::BackupRetention, FindingKind::Placeholder, FindingKind::NoCommand, FindingKind::RollbackWrongDirectory, FindingKind::LogsStderrMissed],
    },
    ScenarioRef {
        id: "phase3/as-written",
        test: "phase3_db_password_as_written_fails_at_step1_and_leaves_env_files_the_server_rejects_until_rolled_back",
        summary: "Phase 3 as written under traffic, measured by the promoted checks",
        steps: &["phase1.step1", "phase1.step2", "phase1.step3", "phase3.step1", "phase3.step2", "phase3.step3", "phase3.step4"],
        secrets: &["DB_PASSWORD"],
        findings: &[FindingKind::RestartKeepsStaleEnv, FindingKind::UnanchoredSed, FindingKind::SecretOnCommandLine, FindingKind::TrustSocketVerification, FindingKind::PsqlDefaultDatabase, FindingKind::UnencryptedBackup, FindingKind::BackupRetention, FindingKind::Placeholder, FindingKind::NoCommand, FindingKind::RollbackWrongDirectory],
    },
    ScenarioRef {
        id: "phase4/as-written",
        test: "phase4_nats_credentials_as_written_rotates_nothing_and_is_rolled_back",
        summary: "Phase 4 as written under traffic, measured by the promoted checks",
        steps: &["phase1.step1", "phase1.step2", "phase1.step3", "phase4.step1", "phase4.step2", "phase4.step3", "phase4.step4"],
        secrets: &["NATS_PASSWORD_GATEWAY", "NATS_PASSWORD_ROUTER", "NATS_PASSWORD_WORKER"],
        findings: &[FindingKind::UnknownSubcommand, FindingKind::UnencryptedBackup, FindingKind::BackupRetention, FindingKind::Placeholder, FindingKind::NoCommand, FindingKind::RollbackWrongDirectory, FindingKind::ShallowVerification],
    },
    ScenarioRef {
        id: "phase5/as-written",
        test: "phase5_verification_holds_on_an_unrotated_node",
        summary: "Phase 5 as written under traffic, measured by the promoted checks",
        steps: &["phase1.step1", "phase1.step2", "phase1.step3", "phase5.step1", "phase5.step2", "phase5.step3"],
        secrets: &[],
        findings: &[FindingKind::UnencryptedBackup, FindingKind::BackupRetention, FindingKind::NoCommand, FindingKind::LogsStderrMissed],
    },
    ScenarioRef {
        id: "rotation/as-written",
        test: "the_whole_rotation_as_written_passes_its_own_verification_but_not_the_promoted_checks",
        summary: "phases 1 to 5 in order, as written, under traffic",
        steps: &["phase1.step1", "phase1.step2", "phase1.step3", "phase2.step1", "phase2.step2", "phase2.step3", "phase2.step4", "phase2.step5", "phase3.step1", "phase3.step2", "phase3.step3", "phase3.step4", "phase4.step1", "phase4.step2", "phase4.step3", "phase4.step4", "phase5.step1", "phase5.step2", "phase5.step3"],
        secrets: &["DEEPSEEK_API_KEY", "DB_PASSWORD", "NATS_PASSWORD_GATEWAY", "NATS_PASSWORD_ROUTER", "NATS_PASSWORD_WORKER"],
        findings: &[FindingKind::NeverTerminates, FindingKind::UnknownSubcommand, FindingKind::RestartKeepsStaleEnv, FindingKind::UnanchoredSed, FindingKind::SecretOnCommandLine, FindingKind::TrustSocketVerification, FindingKind::PsqlDefaultDatabase, FindingKind::UnencryptedBackup, FindingKind::BackupRetention, FindingKind::Placeholder, FindingKind::NoCommand, FindingKind::RollbackWrongDirectory, FindingKind::LogsStderrMissed, FindingKind::ShallowVerification],
    },
    ScenarioRef {
        id: "rollback/after-phase1",
        test: "rollback_after_phase1_restarts_the_whole_node_with_downtime_and_no_loss",
        summary: "Phase 1 as written, then the rollback procedure as written",
        steps: &["phase1.step1", "phase1.step2", "phase1.step3", "rollback.step1", "rollback.step2", "rollback.step3"],
        secrets: &[],
        findings: &[FindingKind::UnencryptedBackup, FindingKind::BackupRetention, FindingKind::Placeholder, FindingKind::NoCommand, FindingKind::RollbackWrongDirectory],
    },
    ScenarioRef {
        id: "rollback/after-phase2",
        test: "rollback_after_phase2_restores_the_old_key_setup",
        summary: "Phase 2 as written, then the rollback procedure as written",
        steps: &["phase1.step1", "phase1.step2", "phase1.step3", "phase2.step1", "phase2.step2", "phase2.step3", "phase2.step4", "phase2.step5", "rollback.step1", "rollback.step2", "rollback.step3"],
        secrets: &["DEEPSEEK_API_KEY"],
        findings: &[FindingKind::NeverTerminates, FindingKind::RestartKeepsStaleEnv, FindingKind::UnencryptedBackup, FindingKind::BackupRetention, FindingKind::Placeholder, FindingKind::NoCommand, FindingKind::RollbackWrongDirectory, FindingKind::LogsStderrMissed],
    },
    ScenarioRef {
        id: "rollback/after-phase3",
        test: "rollback_after_phase3_restores_env_files_the_server_still_accepts",
        summary: "Phase 3 as written, then the rollback procedure as written",
        steps: &["phase1.step1", "phase1.step2", "phase1.step3", "phase3.step1", "phase3.step2", "phase3.step3", "phase3.step4", "rollback.step1", "rollback.step2", "rollback.step3"],
        secrets: &["DB_PASSWORD"],
        findings: &[FindingKind::RestartKeepsStaleEnv, FindingKind::UnanchoredSed, FindingKind::SecretOnCommandLine, FindingKind::TrustSocketVerification, FindingKind::PsqlDefaultDatabase, FindingKind::UnencryptedBackup, FindingKind::BackupRetention, FindingKind::Placeholder, FindingKind::NoCommand, FindingKind::RollbackWrongDirectory],
    },
    ScenarioRef {
        id: "rollback/after-phase4",
        test: "rollback_after_phase4_restores_the_steady_state",
        summary: "Phase 4 as written, then the rollback procedure as written",
        steps: &["phase1.step1", "phase1.step2", "phase1.step3", "phase4.step1", "phase4.step2", "phase4.step3", "phase4.step4", "rollback.step1", "rollback.step2", "rollback.step3"],
        secrets: &["NATS_PASSWORD_GATEWAY", "NATS_PASSWORD_ROUTER", "NATS_PASSWORD_WORKER"],
        findings: &[FindingKind::UnknownSubcommand, FindingKind::UnencryptedBackup, FindingKind::BackupRetention, FindingKind::Placeholder, FindingKind::NoCommand, FindingKind::RollbackWrongDirectory, FindingKind::ShallowVerification],
    },
    ScenarioRef {
        id: "rollback/after-phase5",
        test: "rollback_after_phase5_restarts_the_whole_node_with_downtime_and_no_loss",
        summary: "Phase 5 as written, then the rollback procedure as written",
        steps: &["phase1.step1", "phase1.step2", "phase1.step3", "phase5.step1", "phase5.step2", "phase5.step3", "rollback.step1", "rollback.step2", "rollback.step3"],
        secrets: &[],
        findings: &[FindingKind::UnencryptedBackup, FindingKind::BackupRetention, FindingKind::Placeholder, FindingKind::NoCommand, FindingKind::RollbackWrongDirectory, FindingKind::LogsStderrMissed],
    },
    ScenarioRef {
        id: "faults/phase1-rerun-the-same-day-after-phase3-with-the-alter-fixed",
        test: "fault_phase1_rerun_the_same_day_after_phase3_with_the_alter_fixed",
        summary: "Phases 1 and 3 (its `psql` fixed), Phase 1 again the same day, then the rollback as written",
        steps: &["phase1.step1", "phase1.step2", "phase1.step3", "phase3.step1", "phase3.step2", "phase3.step3", "phase3.step4", "rollback.step1", "rollback.step2", "rollback.step3"],
        secrets: &["DB_PASSWORD"],
        findings: &[FindingKind::RestartKeepsStaleEnv, FindingKind::UnanchoredSed, FindingKind::SecretOnCommandLine, FindingKind::TrustSocketVerification, FindingKind::UnencryptedBackup, FindingKind::BackupSameDayOverwrite, FindingKind::BackupRetention, FindingKind::Placeholder, FindingKind::NoCommand, FindingKind::RollbackFilesOnly, FindingKind::RollbackWrongDirectory],
    },
    ScenarioRef {
        id: "faults/phase2-deepseek-rejects-the-new-key",
        test: "fault_phase2_deepseek_rejects_the_new_key",
        summary: "Phase 2 as written, with `deepseek rejects the new key (DEEPSEEK_API_KEY_NEW)` before phase2.step3",
        steps: &["phase1.step1", "phase1.step2", "phase1.step3", "phase2.step1", "phase2.step2", "phase2.step3", "phase2.step4", "phase2.step5", "rollback.step1", "rollback.step2", "rollback.step3"],
        secrets: &["DEEPSEEK_API_KEY"],
        findings: &[FindingKind::NeverTerminates, FindingKind::RestartKeepsStaleEnv, FindingKind::UnencryptedBackup, FindingKind::BackupRetention, FindingKind::Placeholder, FindingKind::NoCommand, FindingKind::RollbackWrongDirectory, FindingKind::LogsStderrMissed, FindingKind::SelectionNotFallback],
    },
    ScenarioRef {
        id: "faults/phase2-new-key-pasted-as-written",
        test: "fault_phase2_new_key_pasted_as_written",
        summary: "Phase 2 as written, with `phase2.step1 pasted as written: DEEPSEEK_API_KEY_NEW=<new_key> in dagi-router-node1's .env` before phase2.step2",
        steps: &["phase1.step1", "phase1.step2", "phase1.step3", "phase2.step1", "phase2.step2", "phase2.step3", "phase2.step4", "phase2.step5", "rollback.step1", "rollback.step2", "rollback.step3"],
        secrets: &["DEEPSEEK_API_KEY"],
        findings: &[FindingKind::NeverTerminates, FindingKind::RestartKeepsStaleEnv, FindingKind::UnencryptedBackup, FindingKind::BackupRetention, FindingKind::Placeholder, FindingKind::NoCommand, FindingKind::RollbackWrongDirectory, FindingKind::LogsStderrMissed],
    },
    ScenarioRef {
        id: "faults/rollback-after-phase3-with-the-alter-fixed",
        test: "fault_rollback_after_phase3_with_the_alter_fixed",
        summary: "Phase 3 with its `psql` fixed (the ALTER runs), then the rollback as written",
        steps: &["phase1.step1", "phase1.step2", "phase1.step3", "phase3.step1", "phase3.step2", "phase3.step3", "phase3.step4", "rollback.step1", "rollback.step2", "rollback.step3"],
        secrets: &["DB_PASSWORD"],
        findings: &[FindingKind::RestartKeepsStaleEnv, FindingKind::UnanchoredSed, FindingKind::SecretOnCommandLine, FindingKind::TrustSocketVerification, FindingKind::UnencryptedBackup, FindingKind::BackupRetention, FindingKind::Placeholder, FindingKind::NoCommand, FindingKind::RollbackFilesOnly, FindingKind::RollbackWrongDirectory],
    },
    ScenarioRef {
        id: "facts/restart-keeps-old-env",
        test: "env_edit_then_docker_restart_keeps_the_old_value_and_recreate_takes_the_new",
        summary: "an edited .env plus `docker restart` keeps the old value in the container; a recreate takes the new one",
        steps: &["phase2.step3", "phase2.step5", "phase3.step3", "phase4.step3", "rollback.step2"],
        secrets: &["QDRANT_API_KEY"],
        findings: &[FindingKind::RestartKeepsStaleEnv],
    },
    ScenarioRef {
        id: "facts/wrong-db-password-fails",
        test: "wrong_db_password_in_memory_env_plus_recreate_fails_its_db_readiness_and_writes",
        summary: "a DB_PASSWORD the server does not accept makes the memory service unready and its writes fail",
        steps: &["phase3.step2", "phase3.step3"],
        secrets: &["DB_PASSWORD"],
        findings: &[],
    },
    ScenarioRef {
        id: "facts/revoked-key-upstream-401",
        test: "a_key_revoked_at_the_provider_makes_infer_fail_with_upstream_401",
        summary: "a provider key revoked upstream makes inference fail with a clear upstream_401",
        steps: &["phase2.step5"],
        secrets: &["DEEPSEEK_API_KEY"],
        findings: &[],
    },
    ScenarioRef {
        id: "facts/nats-reload-disconnects-workers",
        test: "nats_password_changed_in_config_plus_reload_disconnects_the_workers",
        summary: "a NATS password changed in the server config plus a reload disconnects clients still using the old one",
        steps: &["phase4.step2", "phase4.step3"],
        secrets: &["NATS_PASSWORD_WORKER"],
        findings: &[],
    },
    ScenarioRef {
        id: "facts/alter-role-and-trust-socket",
        test: "alter_role_keeps_open_sessions_fails_new_old_password_logins_and_the_trust_socket_proves_nothing",
        summary: "ALTER ROLE keeps open sessions, rejects new logins with the old password, and the trust socket passes regardless",
        steps: &["phase3.step1", "phase3.step4"],
        secrets: &["DB_PASSWORD"],
        findings: &[FindingKind::TrustSocketVerification],
    },
    ScenarioRef {
        id: "facts/special-character-db-password",
        test: "a_db_password_with_quotes_backslashes_dollars_and_spaces_works_end_to_end",
        summary: "a database password with quotes, backslashes, dollars and spaces works end to end when written correctly",
        steps: &[],
        secrets: &["DB_PASSWORD"],
        findings: &[],
    },
    ScenarioRef {
        id: "facts/compose-recreate-reads-env",
        test: "compose_up_after_an_env_edit_takes_the_new_value_and_compose_restart_keeps_the_old",
        summary: "an edited .env plus Compose's `up -d SERVICE` gives the container the new value; Compose's `restart` keeps the old one",
        steps: &["rollback.step2"],
        secrets: &["QDRANT_API_KEY"],
        findings: &[FindingKind::RestartKeepsStaleEnv],
    },
    ScenarioRef {
        id: "facts/compose-up-recreates-only-changed",
        test: "compose_up_recreates_only_what_changed_on_the_stack_itself_one_container_per_service",
        summary: "Compose's `up -d` on the replica recreates only the service whose config changed, on the stack itself: one container per service, on the stack's network, same ports",
        steps: &["rollback.step2"],
        secrets: &["DEEPSEEK_API_KEY"],
        findings: &[],
    },
];

/// The catalogue entry with this id.
pub fn scenario(id: &str) -> Option<&'static ScenarioRef> {
    CATALOGUE.iter().chain(v2_catalogue()).find(|s| s.id == id)
}
