//! The hand-written scenarios of the corrected runbook
//! (`fixtures/runbook/SECRETS_ROTATION_RUNBOOK.v2.md`): its JWT phase on a gateway without the
//! platform change it requires, and its phases under the fault matrix's faults at chosen
//! moments. They were measured against the text `scenarios/runbook.v2.lock` holds, and
//! `crate::rehearsals_for` binds them to a runbook by its steps' fingerprints. The rehearsal of
//! each secret's phase, the whole rotation and the rollbacks are derived from the text itself
//! (`rehearsal::derive`).

use harness::Service;
use rehearsal::derive::ALWAYS;
use rehearsal::faults::{ConfigFault, ContainerFault};
use rehearsal::{Expected, FaultAt, Rollback, Scenario};
use std::time::Duration;

fn postconditions(own: &[&str]) -> Vec<String> {
    ALWAYS.iter().chain(own).map(|s| s.to_string()).collect()
}

/// The replica as the v2 runbook requires it: with the platform change its JWT phase names
/// (the gateway's key overlap).
fn platform() -> harness::replica_root::RootOptions {
    harness::replica_root::RootOptions {
        gateway_jwt_overlap: true,
        ..Default::default()
    }
}

fn scenario(id: String, title: String, phases: Vec<u32>, post: Vec<String>) -> Scenario {
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
        not_rehearsable: None,
        new_values: Vec::new(),
    }
}

/// The JWT phase on today's gateway, without the key overlap it requires: its first step stops
/// the phase before any secret changes. Hand-written: the replica's settings are the point.
pub fn v2_without_key_overlap() -> Scenario {
    let mut without = scenario(
        "v2/jwt/without-key-overlap".into(),
        "v2 Phase 11 on a gateway without the key-overlap change: the prerequisite check stops it, nothing changes".into(),
        vec![1, 11],
        postconditions(&[]),
    );
    without.replica = Default::default();
    without.expected = Expected::Detected;
    without
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
    own: &[&str],
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

/// The v2 phases under faults no step-boundary family gives (`derive::fault_scenarios` gives
/// those): a service killed until its recreate starts it, and one killed for 10 s at a moment
/// inside a step. Each with the outcome measured on the replica as its expected outcome.
pub fn v2_fault_rehearsals() -> Vec<Scenario> {
    use Expected::*;
    let secs = Duration::from_secs_f64;
    vec![
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

/// `v2/profiles/<profile>/<id>`: Phase 1 then `phase` on a replica wired as the shipped node
/// profile `profile` says (`fixtures/profiles/`).
fn v2_profiled(id: &str, profile: &str, phase: u32, what: &str, expected: Expected) -> Scenario {
    let mut s = scenario(
        format!("v2/profiles/{profile}/{id}"),
        format!("v2 Phase {phase} under traffic on a node wired as `{profile}`, {what}"),
        vec![1, phase],
        postconditions(&[]),
    );
    s.replica.profile =
        harness::profile::NodeProfile::named_or_file(profile).expect("a shipped profile reads");
    s.expected = expected;
    s
}

/// A new database password holding every character a URL reserves and `%` itself.
pub const URL_RESERVED_PASSWORD: &str = "N3w@Pa/ss#9%41:?";

/// The v2 phases on nodes whose services read their secrets otherwise than the replica's
/// default (`docs/node-profile.md`), under the faults only such a wiring has: a password with
/// characters a URL reserves, the URL variable removed so the memory service falls back, a
/// project `.env` edited and the services only restarted. Each with the outcome measured on
/// the replica as its expected outcome.
pub fn v2_profile_rehearsals() -> Vec<Scenario> {
    use Expected::*;
    let mut reserved = v2_profiled(
        "phase6-new-password-with-url-reserved-characters",
        "database-url",
        6,
        "with a new password holding `@`, `/`, `#`, `%`, `:` and `?`",
        Holds,
    );
    reserved.new_values = vec![("DB_PASSWORD", URL_RESERVED_PASSWORD)];
    let mut removed = v2_profiled(
        "phase6-database-url-removed-from-the-memory-service",
        "database-url",
        6,
        "with DATABASE_URL removed from the memory service's .env before its recreate",
        Breaks,
    );
    removed.faults = vec![FaultAt::before(
        "phase6.step3",
        ConfigFault::VariableRemoved {
            service: Service::Memory,
            var: "DATABASE_URL",
        },
    )];
    let mut restarted = v2_profiled(
        "phase9-project-env-edited-then-only-restarted",
        "interpolated",
        9,
        "with the recreate of the router and the memory service replaced by `docker restart`",
        Detected,
    );
    restarted.edits = vec![(
        "docker compose -f docker-compose.node1.yml up -d --no-deps dagi-router-node1 dagi-memory-service-node1",
        "docker restart dagi-router-node1 dagi-memory-service-node1",
    )];
    vec![reserved, removed, restarted]
}
