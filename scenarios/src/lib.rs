//! Runbook scenarios: what is rehearsed against the replica and the facts they rest on. Most
//! are derived from the runbook's own text (`rehearsal::derive`: a rehearsal and a
//! rollback per secret its phases rotate, the whole rotation), their accepted deviations read
//! from its lock; the rest are written by hand against a shipped text (the fault matrix of the
//! runbook as written, the v2 runbook's chosen faults, random schedules) and bound
//! to a runbook by its steps' fingerprints, never by its file name. The tests under `tests/`
//! run them; the catalogue (`catalogue_for`), which `harness::runbook::coverage` and the lock
//! read, is derived from these values.

use harness::runbook::coverage::ScenarioRef;
use harness::runbook::findings::FindingKind;
use harness::runbook::lock::{Lock, DEFAULT_LOCK};
use harness::runbook::{workspace_path, Runbook};
use rehearsal::Scenario;
use std::path::{Path, PathBuf};

pub mod costs;
pub mod random;
mod rehearsals;
pub mod v2;
pub use rehearsals::fault_rehearsals;

/// The lock of the shipped corrected runbook (`fixtures/runbook/SECRETS_ROTATION_RUNBOOK.v2.md`).
pub const V2_LOCK: &str = "scenarios/runbook.v2.lock";

/// The shipped locks, each the reviewed text of a shipped runbook, against which its
/// hand-written scenarios were measured.
pub const SHIPPED_LOCKS: &[&str] = &[DEFAULT_LOCK, V2_LOCK];

/// A family of hand-written scenarios: the lock of the text they were measured against,
/// whether `rehearse` runs them without `--only` (the faults only when asked), and the
/// scenarios.
struct HandWritten {
    lock: &'static str,
    default: bool,
    scenarios: fn() -> Vec<Scenario>,
}

const HAND_WRITTEN: &[HandWritten] = &[
    HandWritten {
        lock: DEFAULT_LOCK,
        default: false,
        scenarios: fault_rehearsals,
    },
    HandWritten {
        lock: V2_LOCK,
        default: true,
        scenarios: || vec![v2::v2_without_key_overlap()],
    },
    HandWritten {
        lock: V2_LOCK,
        default: false,
        scenarios: v2::v2_fault_rehearsals,
    },
    HandWritten {
        lock: V2_LOCK,
        default: false,
        scenarios: v2::v2_profile_rehearsals,
    },
];

fn load_lock(path: &Path) -> Option<Lock> {
    Lock::load(path).ok()
}

/// The lock that belongs to `runbook`: one beside its file (`X.md` → `X.lock`), else the
/// shipped lock that holds the most of its steps (by id and fingerprint: a renamed copy of a
/// shipped runbook is that runbook), else where one beside it would go.
pub fn lock_for(runbook: &Runbook) -> PathBuf {
    let beside = Path::new(&runbook.file).with_extension("lock");
    if beside.is_file() {
        return beside;
    }
    SHIPPED_LOCKS
        .iter()
        .map(|l| workspace_path(l))
        .filter_map(|path| Some((load_lock(&path)?.shared_steps(runbook), path)))
        .filter(|(shared, _)| *shared > 0)
        .max_by_key(|(shared, _)| *shared)
        .map(|(_, path)| path)
        .unwrap_or(beside)
}

/// The scenarios the text of `runbook` calls for (`rehearsal::derive`), their
/// expected outcomes as its lock accepts them (`holds` where it accepts none).
pub fn derived(runbook: &Runbook) -> Vec<Scenario> {
    let lock = load_lock(&lock_for(runbook));
    rehearsal::derive::scenarios(runbook, lock.as_ref())
}

/// The step-boundary fault scenarios the text of `runbook` calls for
/// (`rehearsal::derive::fault_scenarios`), expected as its lock accepts them.
pub fn derived_faults(runbook: &Runbook) -> Vec<Scenario> {
    let lock = load_lock(&lock_for(runbook));
    rehearsal::derive::fault_scenarios(runbook, lock.as_ref())
}

/// The hand-written scenarios bound to `runbook` (phases and fault steps renumbered by
/// content), and those measured on a text it shares steps with that do not apply, as (id,
/// why); `default_only`: only those `rehearse` runs without `--only`.
fn hand_written(runbook: &Runbook, default_only: bool) -> (Vec<Scenario>, Vec<(String, String)>) {
    let (mut bound, mut unbound) = (Vec::new(), Vec::new());
    for family in HAND_WRITTEN.iter().filter(|f| f.default || !default_only) {
        let Some(lock) = load_lock(&workspace_path(family.lock)) else {
            continue;
        };
        let related = lock.shared_steps(runbook) > 0;
        for scenario in (family.scenarios)() {
            let id = scenario.id.clone();
            match rehearsal::applies::bind(scenario, &lock, runbook) {
                Ok(s) => bound.push(s),
                Err(why) if related => unbound.push((id, why)),
                Err(_) => {}
            }
        }
    }
    (bound, unbound)
}

/// The hand-written scenarios measured on a text `runbook` shares steps with that do not
/// apply to it (a phase or the rollback changed), each as (id, why): `rehearse --only` and
/// `runbook check` name them; nothing is left out without a word.
pub fn not_bound(runbook: &Runbook) -> Vec<(String, String)> {
    hand_written(runbook, false).1
}

/// The scenario catalogue of `runbook`: every scenario meant for it (`rehearsals_for`), each
/// entry derived from the scenario's value (`rehearsal::catalogue`); where the runbook
/// holds the text the random schedules and the facts were written for, those too.
pub fn catalogue_for(runbook: &Runbook) -> Vec<ScenarioRef> {
    let mut scenarios = rehearsals_for(runbook);
    scenarios.extend(random::families_for(runbook));
    let mut entries = rehearsal::catalogue::of(&scenarios, runbook);
    if let Some(lock) = load_lock(&workspace_path(DEFAULT_LOCK)) {
        entries.extend(
            FACTS
                .iter()
                .filter(|f| f.holds_in(runbook, &lock))
                .map(Fact::entry),
        );
    }
    entries
}

/// What `rehearse --runbook FILE` runs without `--only`: the scenarios its text calls for, and
/// the hand-written ones meant to run with them.
pub fn default_rehearsals_for(runbook: &Runbook) -> Vec<Scenario> {
    let mut all = derived(runbook);
    all.extend(hand_written(runbook, true).0);
    all
}

/// Every rehearsal meant for `runbook`: those its text calls for, its step boundaries under
/// their faults, and every hand-written one that applies to it (the fault matrices included).
pub fn rehearsals_for(runbook: &Runbook) -> Vec<Scenario> {
    let mut all = derived(runbook);
    all.extend(derived_faults(runbook));
    all.extend(hand_written(runbook, false).0);
    all
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
    /// Whether `runbook` holds the steps this fact names as the runbook as written had them
    /// (`lock`, its lock): the fact then speaks of them.
    fn holds_in(&self, runbook: &Runbook, lock: &Lock) -> bool {
        self.steps.iter().all(|id| {
            let locked = lock.steps.iter().find(|s| s.id == *id);
            let now = runbook.step(id);
            matches!((locked, now), (Some(l), Some(n)) if l.fingerprint == n.fingerprint)
        })
    }

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
