//! The rehearsals of the corrected runbook (`fixtures/runbook/SECRETS_ROTATION_RUNBOOK.v2.md`):
//! one per secret it rotates (its phase after Phase 1's preparation), the whole rotation, and its
//! rollback after a phase whose old credential is already revoked. Each has the outcome measured
//! on the replica as its expected outcome, as the as-written rehearsals do.

use harness::rehearsal::faults::{ContainerFault, NetworkFault, ProxyEffect, UpstreamFault};
use harness::rehearsal::{Expected, FaultAt, Rollback, Scenario};
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
