//! Runbook scenarios: the catalogue of what is rehearsed against the replica, with the runbook
//! steps, secrets and static findings each one measures. The tests under `tests/` run them;
//! `harness::runbook::coverage` and the lock read this catalogue.

use harness::runbook::coverage::ScenarioRef;

/// Every scenario, by id. A tidy test checks that each `test` names a test function that exists.
pub const CATALOGUE: &[ScenarioRef] = &[
    ScenarioRef {
        id: "facts/restart-keeps-old-env",
        test: "env_edit_then_docker_restart_keeps_the_old_value_and_recreate_takes_the_new",
        summary: "an edited .env plus `docker restart` keeps the old value in the container; a recreate takes the new one",
        steps: &["phase2.step3", "phase2.step5", "phase3.step3", "phase4.step3", "rollback.step2"],
        secrets: &["QDRANT_API_KEY"],
        findings: &["restart-keeps-stale-env"],
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
        findings: &["trust-socket-verification"],
    },
    ScenarioRef {
        id: "facts/special-character-db-password",
        test: "a_db_password_with_quotes_backslashes_dollars_and_spaces_works_end_to_end",
        summary: "a database password with quotes, backslashes, dollars and spaces works end to end when written correctly",
        steps: &[],
        secrets: &["DB_PASSWORD"],
        findings: &[],
    },
];

/// The catalogue entry with this id.
pub fn scenario(id: &str) -> Option<&'static ScenarioRef> {
    CATALOGUE.iter().find(|s| s.id == id)
}
