//! The rehearsals of the corrected runbook (`fixtures/runbook/SECRETS_ROTATION_RUNBOOK.v2.md`):
//! one per secret it rotates (its phase after Phase 1's preparation), the whole rotation, and its
//! rollback after a phase whose old credential is already revoked. Each has the outcome measured
//! on the replica as its expected outcome, as the as-written rehearsals do.

use harness::rehearsal::faults::{ContainerFault, NetworkFault, ProxyEffect, UpstreamFault};
use harness::rehearsal::{Expected, FaultAt, Rollback, Scenario};
use harness::runbook::coverage::ScenarioRef;
use harness::Service;
use std::time::Duration;

/// A runbook file that is rehearsed with this set rather than the as-written one: its name has
/// `.v2.` in it (`SECRETS_ROTATION_RUNBOOK.v2.md`, or a reviewer's `….v2.edited.md`).
pub fn is_v2(runbook_file: &str) -> bool {
    std::path::Path::new(runbook_file)
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.contains(".v2."))
}

/// The v2 runbook's phases that rotate one secret: (phase, scenario id suffix, the variable,
/// the post-conditions that say it took effect).
pub const SECRET_PHASES: &[(u32, &str, &str, &[&str])] = &[
    (
        2,
        "deepseek",
        "DEEPSEEK_API_KEY",
        &[
            "provider.key.current.deepseek",
            "provider.key.previous.deepseek",
        ],
    ),
    (
        3,
        "mistral",
        "MISTRAL_API_KEY",
        &[
            "provider.key.current.mistral",
            "provider.key.previous.mistral",
        ],
    ),
    (
        4,
        "grok",
        "GROK_API_KEY",
        &["provider.key.current.grok", "provider.key.previous.grok"],
    ),
    (
        5,
        "cohere",
        "COHERE_API_KEY",
        &[
            "provider.key.current.cohere",
            "provider.key.previous.cohere",
        ],
    ),
    (
        6,
        "postgres",
        "DB_PASSWORD",
        &["postgres.auth.current.*", "postgres.auth.previous"],
    ),
    (
        7,
        "nats",
        "NATS_PASSWORD_GATEWAY",
        &[
            "nats.auth.current.*",
            "nats.auth.previous.*",
            "nats.clients.users",
        ],
    ),
    (
        8,
        "qdrant",
        "QDRANT_API_KEY",
        &[
            "provider.key.current.qdrant",
            "provider.key.previous.qdrant",
        ],
    ),
    (
        9,
        "neo4j",
        "NEO4J_PASSWORD",
        &["provider.key.current.neo4j", "provider.key.previous.neo4j"],
    ),
    (
        10,
        "telegram",
        "TELEGRAM_BOT_TOKEN",
        &[
            "provider.key.current.telegram-*",
            "provider.key.previous.telegram-*",
        ],
    ),
    (
        11,
        "jwt",
        "JWT_SECRET",
        &["gateway.jwt.current", "gateway.jwt.previous"],
    ),
];

/// The v2 runbook's verification phase (the last one).
pub const VERIFICATION_PHASE: u32 = 12;

/// Post-conditions every v2 scenario must meet beyond the steady state.
const ALWAYS: &[&str] = &[
    "env.no-old-keys",
    "env.file-mode",
    "provider.usage.current-only",
    "backups.encrypted",
];

/// Every check of the catalogue, as `cargo xtask verify --replica` runs them.
const EVERY_CHECK: &[&str] = &["*"];

fn postconditions(own: &[&'static str]) -> Vec<&'static str> {
    ALWAYS.iter().chain(own).copied().collect()
}

/// The replica as the v2 runbook requires it: with the platform change its JWT phase names
/// (the gateway's key overlap).
fn platform() -> harness::replica_root::RootOptions {
    harness::replica_root::RootOptions {
        gateway_jwt_overlap: true,
        ..Default::default()
    }
}

fn scenario(id: String, title: String, phases: Vec<u32>, post: Vec<&'static str>) -> Scenario {
    Scenario {
        id,
        title,
        phases,
        rollback: Rollback::OnDeviation,
        postconditions: post,
        expected: Expected::Holds,
        faults: Vec::new(),
        safeguard: None,
        edits: Vec::new(),
        seed: None,
        replica: platform(),
        stop_at_failed_step: true,
    }
}

/// The v2 rollback after a phase that changed state outside the files: a key revoked at its
/// provider, a password on the server, NATS's users, the secret the gateway's tokens are signed
/// with. (phase, title)
const ROLLBACKS: &[(u32, &str)] = &[
    (2, "v2 Phase 2 (deepseek), its old DEEPSEEK_API_KEY revoked, then the v2 rollback: the revoked key is not restored"),
    (6, "v2 Phase 6 (PostgreSQL), then the v2 rollback: daarion's backed-up password given back on the server, every service recreated with it"),
    (7, "v2 Phase 7 (NATS), then the v2 rollback: the backed-up users reloaded into NATS, every client recreated with its old password"),
    (11, "v2 Phase 11 (JWT), then the v2 rollback: the backed-up secret signs again, and tokens signed since stay valid"),
];

/// Every v2 rehearsal, in a stable order.
pub fn v2_rehearsals() -> Vec<Scenario> {
    let mut all: Vec<Scenario> = SECRET_PHASES
        .iter()
        .map(|(phase, name, var, post)| {
            scenario(
                format!("v2/{name}"),
                format!("v2 Phase {phase}: {var} rotated with the old value valid until no client uses it, under traffic"),
                vec![1, *phase],
                postconditions(post),
            )
        })
        .collect();
    let mut phases = vec![1];
    phases.extend(SECRET_PHASES.iter().map(|(p, ..)| *p));
    phases.push(VERIFICATION_PHASE);
    // After the whole rotation, every check `cargo xtask verify` has: what an operator runs
    // against the node right after the real rotation (logs, backups and git included).
    all.push(scenario(
        "v2/rotation".into(),
        "v2: every phase in order, under traffic".into(),
        phases,
        EVERY_CHECK.to_vec(),
    ));
    for (phase, title) in ROLLBACKS {
        let mut rollback = scenario(
            format!("v2/rollback/after-phase{phase}"),
            title.to_string(),
            vec![1, *phase],
            ALWAYS.to_vec(),
        );
        rollback.rollback = Rollback::Always;
        all.push(rollback);
    }
    // The JWT phase on today's gateway, without the key overlap it requires: its first step
    // stops the phase before any secret changes.
    let mut without = scenario(
        "v2/jwt/without-key-overlap".into(),
        "v2 Phase 11 on a gateway without the key-overlap change: the prerequisite check stops it, nothing changes".into(),
        vec![1, 11],
        ALWAYS.to_vec(),
    );
    without.replica = Default::default();
    without.expected = Expected::Detected;
    all.push(without);
    all
}

/// A v2 phase under a fault of the fault matrix, at the step boundary (or moment) where it
/// hurts that phase most: (id suffix, phase, the fault, the outcome measured).
fn v2_faulted(id: &str, phase: u32, fault: FaultAt, expected: Expected) -> Scenario {
    v2_faulted_with(id, phase, fault, expected, &[])
}

/// `v2/faults/<id>`: Phase 1 then `phase` under `fault`, with the post-conditions every v2
/// scenario meets and `own`.
pub(crate) fn v2_faulted_with(
    id: &str,
    phase: u32,
    fault: FaultAt,
    expected: Expected,
    own: &[&'static str],
) -> Scenario {
    let mut s = scenario(
        format!("v2/faults/{id}"),
        format!(
            "v2 Phase {phase} under traffic, with `{}` {}",
            fault.fault.name(),
            fault.describe_at()
        ),
        vec![1, phase],
        postconditions(own),
    );
    s.faults = vec![fault];
    s.expected = expected;
    s
}

/// The v2 phases under the fault matrix's faults: a provider that rejects the new key, a
/// stalled PostgreSQL, NATS connections kicked, a service killed mid-step. Each with the outcome
/// measured on the replica as its expected outcome.
pub fn v2_fault_rehearsals() -> Vec<Scenario> {
    use Expected::*;
    let secs = Duration::from_secs_f64;
    vec![
        v2_faulted(
            "phase2-deepseek-rejects-the-new-key",
            2,
            FaultAt::before(
                "phase2.step3",
                UpstreamFault::reject_new_key("deepseek", "DEEPSEEK_API_KEY"),
            ),
            Detected,
        ),
        v2_faulted(
            "phase6-postgres-stalls-for-4s-while-services-move-to-the-temporary-role",
            6,
            FaultAt::before(
                "phase6.step3",
                NetworkFault::Proxy {
                    to: Service::Postgres,
                    from: None,
                    effect: ProxyEffect::Stall,
                },
            )
            .lasting(secs(4.0)),
            Holds,
        ),
        v2_faulted(
            "phase7-nats-connections-reset-while-clients-move-back",
            7,
            FaultAt::before(
                "phase7.step4",
                NetworkFault::Proxy {
                    to: Service::Nats,
                    from: None,
                    effect: ProxyEffect::Reset,
                },
            ),
            Holds,
        ),
        v2_faulted(
            "phase8-memory-killed-before-its-recreate",
            8,
            FaultAt::before("phase8.step3", ContainerFault::Kill(Service::Memory)),
            Holds,
        ),
        v2_faulted(
            "phase11-gateway-killed-for-10s-during-the-key-overlap",
            11,
            // Down for 10 s, longer than the API client's retries last (3.75 s): those calls
            // fail, the fault's doing, not the runbook's (a 3 s kill is on the edge: measured
            // once each way). The runbook's wait goes on through it and the overlap holds.
            FaultAt::after(secs(12.0), ContainerFault::Kill(Service::Gateway)).lasting(secs(10.0)),
            Detected,
        ),
    ]
}

const PREPARATION: [&str; 3] = ["phase1.step1", "phase1.step2", "phase1.step3"];

/// The steps of the PostgreSQL phase and of the NATS phase, after the preparation.
const PHASE6_STEPS: &[&str] = &[
    "phase1.step1",
    "phase1.step2",
    "phase1.step3",
    "phase6.step1",
    "phase6.step2",
    "phase6.step3",
    "phase6.step4",
    "phase6.step5",
    "phase6.step6",
    "phase6.step7",
];
const PHASE7_STEPS: &[&str] = &[
    "phase1.step1",
    "phase1.step2",
    "phase1.step3",
    "phase7.step1",
    "phase7.step2",
    "phase7.step3",
    "phase7.step4",
    "phase7.step5",
    "phase7.step6",
];

macro_rules! provider_ref {
    ($id:literal, $test:literal, $phase:literal, $var:literal) => {
        ScenarioRef {
            id: $id,
            test: $test,
            summary: concat!(
                "v2 Phase ",
                $phase,
                " under traffic: ",
                $var,
                " rotated and the old key revoked, measured by the promoted checks"
            ),
            steps: &[
                PREPARATION[0],
                PREPARATION[1],
                PREPARATION[2],
                concat!("phase", $phase, ".step1"),
                concat!("phase", $phase, ".step2"),
                concat!("phase", $phase, ".step3"),
                concat!("phase", $phase, ".step4"),
            ],
            secrets: &[$var],
            findings: &[],
        }
    };
}

/// The v2 scenarios as the coverage and the lock see them.
pub const V2_CATALOGUE: &[ScenarioRef] = &[
    provider_ref!(
        "v2/deepseek",
        "v2_phase2_deepseek_key_rotated_under_traffic_holds_with_the_old_key_revoked",
        "2",
        "DEEPSEEK_API_KEY"
    ),
    provider_ref!(
        "v2/mistral",
        "v2_phase3_mistral_key_rotated_under_traffic_holds_with_the_old_key_revoked",
        "3",
        "MISTRAL_API_KEY"
    ),
    provider_ref!(
        "v2/grok",
        "v2_phase4_grok_key_rotated_under_traffic_holds_with_the_old_key_revoked",
        "4",
        "GROK_API_KEY"
    ),
    provider_ref!(
        "v2/cohere",
        "v2_phase5_cohere_key_rotated_under_traffic_holds_with_the_old_key_revoked",
        "5",
        "COHERE_API_KEY"
    ),
    ScenarioRef {
        id: "v2/postgres",
        test: "v2_phase6_db_password_moved_through_a_temporary_role_holds_with_the_old_password_rejected",
        summary: "v2 Phase 6 under traffic: the services on a temporary role while daarion's password changes, then back",
        steps: PHASE6_STEPS,
        secrets: &["DB_PASSWORD"],
        findings: &[],
    },
    ScenarioRef {
        id: "v2/nats",
        test: "v2_phase7_nats_clients_moved_through_temporary_users_hold_with_the_old_passwords_rejected",
        summary: "v2 Phase 7 under traffic: the clients on temporary NATS users while the regular ones get new passwords, then back",
        steps: PHASE7_STEPS,
        secrets: &["NATS_PASSWORD_GATEWAY", "NATS_PASSWORD_ROUTER", "NATS_PASSWORD_WORKER"],
        findings: &[],
    },
    ScenarioRef {
        id: "v2/qdrant",
        test: "v2_phase8_qdrant_key_rotated_under_traffic_holds_with_the_old_key_revoked",
        summary: "v2 Phase 8 under traffic: a second Qdrant key, the memory service recreated, the old key revoked",
        steps: &["phase1.step1", "phase1.step2", "phase1.step3", "phase8.step1", "phase8.step2", "phase8.step3", "phase8.step4"],
        secrets: &["QDRANT_API_KEY"],
        findings: &[],
    },
    ScenarioRef {
        id: "v2/neo4j",
        test: "v2_phase9_neo4j_password_cut_over_delays_updates_and_loses_none",
        summary: "v2 Phase 9 under traffic: Neo4j's one password changed, router and memory recreated at once",
        steps: &["phase1.step1", "phase1.step2", "phase1.step3", "phase9.step1", "phase9.step2", "phase9.step3"],
        secrets: &["NEO4J_PASSWORD"],
        findings: &[],
    },
    ScenarioRef {
        id: "v2/telegram",
        test: "v2_phase10_bot_tokens_revoked_in_botfather_delay_updates_and_lose_none",
        summary: "v2 Phase 10 under traffic: every bot's token revoked in BotFather, the gateway recreated",
        steps: &["phase1.step1", "phase1.step2", "phase1.step3", "phase10.step1", "phase10.step2"],
        secrets: &["TELEGRAM_BOT_TOKEN", "TELEGRAM_BOT_TOKEN_HELION", "TELEGRAM_BOT_TOKEN_GREENFOOD", "TELEGRAM_BOT_TOKEN_DRUID"],
        findings: &[],
    },
    ScenarioRef {
        id: "v2/jwt",
        test: "v2_phase11_jwt_secret_rotated_with_the_previous_one_accepted_until_unused_holds",
        summary: "v2 Phase 11 under traffic: the gateway's key overlap checked, the new JWT secret in, the previous one dropped once no token uses it",
        steps: &["phase1.step1", "phase1.step2", "phase1.step3", "phase11.step1", "phase11.step2", "phase11.step3", "phase11.step4"],
        secrets: &["JWT_SECRET"],
        findings: &[],
    },
    ScenarioRef {
        id: "v2/jwt/without-key-overlap",
        test: "v2_phase11_on_a_gateway_without_the_key_overlap_stops_at_its_prerequisite_check",
        summary: "v2 Phase 11 on today's gateway: step 1 finds no key overlap and stops the phase; the rollback leaves the node as it was",
        steps: &["phase1.step1", "phase1.step2", "phase1.step3", "phase11.step1"],
        secrets: &[],
        findings: &[],
    },
    ScenarioRef {
        id: "v2/faults/phase2-deepseek-rejects-the-new-key",
        test: "v2_phase2_deepseek_rejecting_the_new_key_before_the_recreate",
        summary: "v2 Phase 2 with DeepSeek rejecting the new key from the router's recreate on",
        steps: &["phase1.step1", "phase1.step2", "phase1.step3", "phase2.step1", "phase2.step2", "phase2.step3", "phase2.step4"],
        secrets: &["DEEPSEEK_API_KEY"],
        findings: &[],
    },
    ScenarioRef {
        id: "v2/faults/phase6-postgres-stalls-for-4s-while-services-move-to-the-temporary-role",
        test: "v2_phase6_postgres_stalling_for_4s_while_services_move_to_the_temporary_role",
        summary: "v2 Phase 6 with PostgreSQL stalled for 4 s as the services move to the temporary role",
        steps: PHASE6_STEPS,
        secrets: &["DB_PASSWORD"],
        findings: &[],
    },
    ScenarioRef {
        id: "v2/faults/phase7-nats-connections-reset-while-clients-move-back",
        test: "v2_phase7_nats_connections_reset_while_clients_move_back",
        summary: "v2 Phase 7 with every NATS connection reset as the clients move back to their users",
        steps: PHASE7_STEPS,
        secrets: &["NATS_PASSWORD_GATEWAY", "NATS_PASSWORD_ROUTER", "NATS_PASSWORD_WORKER"],
        findings: &[],
    },
    ScenarioRef {
        id: "v2/faults/phase8-memory-killed-before-its-recreate",
        test: "v2_phase8_memory_killed_before_its_recreate",
        summary: "v2 Phase 8 with the memory service killed just before the step that recreates it",
        steps: &["phase1.step1", "phase1.step2", "phase1.step3", "phase8.step1", "phase8.step2", "phase8.step3", "phase8.step4"],
        secrets: &["QDRANT_API_KEY"],
        findings: &[],
    },
    ScenarioRef {
        id: "v2/faults/phase11-gateway-killed-for-10s-during-the-key-overlap",
        test: "v2_phase11_gateway_killed_for_10s_during_the_key_overlap",
        summary: "v2 Phase 11 with the gateway killed for 10 s while the runbook waits for the previous JWT secret to go unused",
        steps: &["phase1.step1", "phase1.step2", "phase1.step3", "phase11.step1", "phase11.step2", "phase11.step3", "phase11.step4"],
        secrets: &["JWT_SECRET"],
        findings: &[],
    },
    ScenarioRef {
        id: "v2/rotation",
        test: "v2_the_whole_rotation_holds_under_traffic_and_passes_every_check_verify_runs",
        summary: "v2 phases 1 to 12 in order under traffic",
        steps: &[
            "phase1.step1",
            "phase1.step2",
            "phase1.step3",
            "phase2.step1",
            "phase2.step2",
            "phase2.step3",
            "phase2.step4",
            "phase3.step1",
            "phase3.step2",
            "phase3.step3",
            "phase3.step4",
            "phase4.step1",
            "phase4.step2",
            "phase4.step3",
            "phase4.step4",
            "phase5.step1",
            "phase5.step2",
            "phase5.step3",
            "phase5.step4",
            "phase6.step1",
            "phase6.step2",
            "phase6.step3",
            "phase6.step4",
            "phase6.step5",
            "phase6.step6",
            "phase6.step7",
            "phase7.step1",
            "phase7.step2",
            "phase7.step3",
            "phase7.step4",
            "phase7.step5",
            "phase7.step6",
            "phase8.step1",
            "phase8.step2",
            "phase8.step3",
            "phase8.step4",
            "phase9.step1",
            "phase9.step2",
            "phase9.step3",
            "phase10.step1",
            "phase10.step2",
            "phase11.step1",
            "phase11.step2",
            "phase11.step3",
            "phase11.step4",
            "phase12.step1",
            "phase12.step2",
        ],
        secrets: &[
            "DEEPSEEK_API_KEY",
            "MISTRAL_API_KEY",
            "GROK_API_KEY",
            "COHERE_API_KEY",
            "DB_PASSWORD",
            "NATS_PASSWORD_GATEWAY",
            "NATS_PASSWORD_ROUTER",
            "NATS_PASSWORD_WORKER",
            "QDRANT_API_KEY",
            "NEO4J_PASSWORD",
            "TELEGRAM_BOT_TOKEN",
            "TELEGRAM_BOT_TOKEN_HELION",
            "TELEGRAM_BOT_TOKEN_GREENFOOD",
            "TELEGRAM_BOT_TOKEN_DRUID",
            "JWT_SECRET",
        ],
        findings: &[],
    },
    ScenarioRef {
        id: "v2/rollback/after-phase2",
        test: "v2_rollback_after_phase2_restores_the_files_but_keeps_the_revoked_deepseek_key_out",
        summary: "v2 Phase 2 with its old key revoked, then the v2 rollback under traffic",
        steps: &[
            "phase1.step1",
            "phase1.step2",
            "phase1.step3",
            "phase2.step1",
            "phase2.step2",
            "phase2.step3",
            "phase2.step4",
            "rollback.step1",
            "rollback.step2",
            "rollback.step3",
            "rollback.step4",
            "rollback.step5",
            "rollback.step6",
        ],
        secrets: &["DEEPSEEK_API_KEY"],
        findings: &[],
    },
    ScenarioRef {
        id: "v2/rollback/after-phase6",
        test: "v2_rollback_after_phase6_gives_daarion_its_backed_up_password_on_the_server",
        summary: "v2 Phase 6, then the v2 rollback under traffic: the server's password as well as the files restored",
        steps: ROLLBACK_AFTER_PHASE6_STEPS,
        secrets: &["DB_PASSWORD"],
        findings: &[],
    },
    ScenarioRef {
        id: "v2/rollback/after-phase7",
        test: "v2_rollback_after_phase7_reloads_the_backed_up_nats_users",
        summary: "v2 Phase 7, then the v2 rollback under traffic: NATS's users as well as the files restored",
        steps: ROLLBACK_AFTER_PHASE7_STEPS,
        secrets: &["NATS_PASSWORD_GATEWAY", "NATS_PASSWORD_ROUTER", "NATS_PASSWORD_WORKER"],
        findings: &[],
    },
    ScenarioRef {
        id: "v2/rollback/after-phase11",
        test: "v2_rollback_after_phase11_keeps_the_tokens_signed_since_valid",
        summary: "v2 Phase 11, then the v2 rollback under traffic: the backed-up JWT secret signs again, no client logged out",
        steps: &[
            "phase1.step1",
            "phase1.step2",
            "phase1.step3",
            "phase11.step1",
            "phase11.step2",
            "phase11.step3",
            "phase11.step4",
            "rollback.step1",
            "rollback.step2",
            "rollback.step3",
            "rollback.step4",
            "rollback.step5",
            "rollback.step6",
        ],
        secrets: &["JWT_SECRET"],
        findings: &[],
    },
];

const ROLLBACK_AFTER_PHASE6_STEPS: &[&str] = &[
    "phase1.step1",
    "phase1.step2",
    "phase1.step3",
    "phase6.step1",
    "phase6.step2",
    "phase6.step3",
    "phase6.step4",
    "phase6.step5",
    "phase6.step6",
    "phase6.step7",
    "rollback.step1",
    "rollback.step2",
    "rollback.step3",
    "rollback.step4",
    "rollback.step5",
    "rollback.step6",
];
const ROLLBACK_AFTER_PHASE7_STEPS: &[&str] = &[
    "phase1.step1",
    "phase1.step2",
    "phase1.step3",
    "phase7.step1",
    "phase7.step2",
    "phase7.step3",
    "phase7.step4",
    "phase7.step5",
    "phase7.step6",
    "rollback.step1",
    "rollback.step2",
    "rollback.step3",
    "rollback.step4",
    "rollback.step5",
    "rollback.step6",
];
