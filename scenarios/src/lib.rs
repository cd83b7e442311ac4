//! Runbook scenarios: what is rehearsed against the replica (the runbook as written, the fault
//! matrix, the v2 runbook's, random schedules) and the facts they rest on. The tests under
//! `tests/` run them; the catalogue (`catalogue_for`), which `harness::runbook::coverage` and
//! the lock read, is derived from these values.

use harness::runbook::coverage::ScenarioRef;
use harness::runbook::findings::FindingKind;
use harness::runbook::Runbook;

pub mod costs;
pub mod random;
mod rehearsals;
pub mod v2;
pub mod v2_boundaries;
pub use rehearsals::{fault_rehearsals, rehearsals};
pub use v2::v2_rehearsals;

/// The lock of the v2 runbook's steps and scenarios (the as-written runbook's is
/// `harness::runbook::lock::DEFAULT_LOCK`).
pub const V2_LOCK: &str = "scenarios/runbook.v2.lock";

/// The scenario catalogue of `runbook`: every scenario meant for it (`rehearsals_for`), each
/// entry derived from the scenario's value (`harness::rehearsal::catalogue`); for the runbook
/// as written also the random schedules' phases and the facts the scenarios rest on.
pub fn catalogue_for(runbook: &Runbook) -> Vec<ScenarioRef> {
    let mut scenarios = rehearsals_for(&runbook.file);
    if !v2::is_v2(&runbook.file) {
        scenarios.extend(random::families());
    }
    let mut entries = harness::rehearsal::catalogue::of(&scenarios, runbook);
    if !v2::is_v2(&runbook.file) {
        entries.extend(FACTS.iter().map(Fact::entry));
    }
    entries
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

/// A fact the scenarios rest on, tested on its own (`tests/facts.rs`), not a rehearsal: its
/// catalogue entry is written here, with the test that shows it.
pub struct Fact {
    pub id: &'static str,
    /// The test function that shows it (a test checks that it exists).
    pub test: &'static str,
    pub summary: &'static str,
    pub steps: &'static [&'static str],
    pub secrets: &'static [&'static str],
    pub findings: &'static [FindingKind],
}

impl Fact {
    pub fn entry(&self) -> ScenarioRef {
        ScenarioRef {
            id: self.id.to_string(),
            summary: self.summary.to_string(),
            steps: self.steps.iter().map(|s| s.to_string()).collect(),
            secrets: self.secrets.iter().map(|s| s.to_string()).collect(),
            findings: self.findings.to_vec(),
        }
    }
}

/// The facts, by id.
pub const FACTS: &[Fact] = &[
    Fact {
        id: "facts/restart-keeps-old-env",
        test: "env_edit_then_docker_restart_keeps_the_old_value_and_recreate_takes_the_new",
        summary: "an edited .env plus `docker restart` keeps the old value in the container; a recreate takes the new one",
        steps: &["phase2.step3", "phase2.step5", "phase3.step3", "phase4.step3", "rollback.step2"],
        secrets: &["QDRANT_API_KEY"],
        findings: &[FindingKind::RestartKeepsStaleEnv],
    },
    Fact {
        id: "facts/wrong-db-password-fails",
        test: "wrong_db_password_in_memory_env_plus_recreate_fails_its_db_readiness_and_writes",
        summary: "a DB_PASSWORD the server does not accept makes the memory service unready and its writes fail",
        steps: &["phase3.step2", "phase3.step3"],
        secrets: &["DB_PASSWORD"],
        findings: &[],
    },
    Fact {
        id: "facts/revoked-key-upstream-401",
        test: "a_key_revoked_at_the_provider_makes_infer_fail_with_upstream_401",
        summary: "a provider key revoked upstream makes inference fail with a clear upstream_401",
        steps: &["phase2.step5"],
        secrets: &["DEEPSEEK_API_KEY"],
        findings: &[],
    },
    Fact {
        id: "facts/nats-reload-disconnects-workers",
        test: "nats_password_changed_in_config_plus_reload_disconnects_the_workers",
        summary: "a NATS password changed in the server config plus a reload disconnects clients still using the old one",
        steps: &["phase4.step2", "phase4.step3"],
        secrets: &["NATS_PASSWORD_WORKER"],
        findings: &[],
    },
    Fact {
        id: "facts/alter-role-and-trust-socket",
        test: "alter_role_keeps_open_sessions_fails_new_old_password_logins_and_the_trust_socket_proves_nothing",
        summary: "ALTER ROLE keeps open sessions, rejects new logins with the old password, and the trust socket passes regardless",
        steps: &["phase3.step1", "phase3.step4"],
        secrets: &["DB_PASSWORD"],
        findings: &[FindingKind::TrustSocketVerification],
    },
    Fact {
        id: "facts/special-character-db-password",
        test: "a_db_password_with_quotes_backslashes_dollars_and_spaces_works_end_to_end",
        summary: "a database password with quotes, backslashes, dollars and spaces works end to end when written correctly",
        steps: &[],
        secrets: &["DB_PASSWORD"],
        findings: &[],
    },
    Fact {
        id: "facts/compose-recreate-reads-env",
        test: "compose_up_after_an_env_edit_takes_the_new_value_and_compose_restart_keeps_the_old",
        summary: "an edited .env plus Compose's `up -d SERVICE` gives the container the new value; Compose's `restart` keeps the old one",
        steps: &["rollback.step2"],
        secrets: &["QDRANT_API_KEY"],
        findings: &[FindingKind::RestartKeepsStaleEnv],
    },
    Fact {
        id: "facts/compose-up-recreates-only-changed",
        test: "compose_up_recreates_only_what_changed_on_the_stack_itself_one_container_per_service",
        summary: "Compose's `up -d` on the replica recreates only the service whose config changed, on the stack itself: one container per service, on the stack's network, same ports",
        steps: &["rollback.step2"],
        secrets: &["DEEPSEEK_API_KEY"],
        findings: &[],
    },
];
