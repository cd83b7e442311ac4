//! The rehearsals of the runbook as written: one per phase (after Phase 1's preparation, which
//! every rotation starts with), one for the whole rotation, and the rollback procedure after each
//! phase. Each has the outcome measured on the replica as its expected outcome; a runbook change
//! that alters an outcome fails its test until the change is reviewed.
//!
//! Measured (2026-11-25): phases 2, 3 and 4 as written are `detected`: nothing is lost under
//! traffic, but the promoted checks find the rotation did not take effect (the new DeepSeek key
//! is not live and `_OLD` is left; the `.env` files hold a DB password the server rejects; no
//! NATS credential changed), and the runbook's rollback restores the steady state, with about
//! 4–6 s of downtime from its `docker-compose restart` of the whole node and no loss.

use harness::rehearsal::faults::{ContainerFault, UpstreamFault};
use harness::rehearsal::{Expected, Fault, FaultAt, Rollback, Safeguard, Scenario};
use harness::Service;

/// Post-conditions that say each phase's rotation took effect (beyond the steady state).
fn postconditions(phase: u32) -> Vec<&'static str> {
    match phase {
        2 => vec![
            "env.no-old-keys",
            "provider.usage.current-only",
            "provider.key.previous.deepseek",
        ],
        3 => vec!["postgres.auth.previous"],
        4 => vec!["nats.auth.previous.*"],
        _ => vec![],
    }
}

fn phase(n: u32, expected: Expected, title: &str) -> Scenario {
    Scenario {
        id: format!("phase{n}/as-written"),
        title: title.to_string(),
        phases: if n == 1 { vec![1] } else { vec![1, n] },
        rollback: Rollback::OnDeviation,
        postconditions: postconditions(n),
        expected,
        faults: Vec::new(),
        safeguard: None,
        edit: None,
    }
}

fn rollback_after(n: u32, expected: Expected) -> Scenario {
    Scenario {
        id: format!("rollback/after-phase{n}"),
        title: format!("Phase {n} as written, then the rollback procedure as written"),
        phases: if n == 1 { vec![1] } else { vec![1, n] },
        rollback: Rollback::Always,
        postconditions: postconditions(n),
        expected,
        faults: Vec::new(),
        safeguard: None,
        edit: None,
    }
}

/// Every rehearsal, in a stable order.
pub fn rehearsals() -> Vec<Scenario> {
    vec![
        phase(
            1,
            Expected::Holds,
            "Phase 1 (preparation): the backup tarball, new secrets, the preflight health check",
        ),
        phase(
            2,
            Expected::Detected,
            "Phase 2 (DeepSeek dual validity) as written, under traffic",
        ),
        phase(
            3,
            Expected::Detected,
            "Phase 3 (database password) as written, under traffic",
        ),
        phase(
            4,
            Expected::Detected,
            "Phase 4 (NATS credentials) as written, under traffic",
        ),
        phase(
            5,
            Expected::Holds,
            "Phase 5 (verification) as written, beside the promoted checks",
        ),
        Scenario {
            id: "rotation/as-written".into(),
            title: "The whole rotation, phases 1 to 5 in order, as written".into(),
            phases: vec![1, 2, 3, 4, 5],
            rollback: Rollback::OnDeviation,
            postconditions: [2, 3, 4].into_iter().flat_map(postconditions).collect(),
            expected: Expected::Detected,
            faults: Vec::new(),
            safeguard: None,
            edit: None,
        },
        rollback_after(1, Expected::Holds),
        rollback_after(2, Expected::Detected),
        rollback_after(3, Expected::Detected),
        rollback_after(4, Expected::Detected),
        rollback_after(5, Expected::Holds),
    ]
}

fn with_fault(
    id: &str,
    phase_n: u32,
    before: &str,
    fault: Box<dyn Fault>,
    expected: Expected,
) -> Scenario {
    let mut s = phase(phase_n, expected, "");
    s.id = format!("faults/{id}");
    s.title = format!(
        "Phase {phase_n} as written, with `{}` before {before}",
        fault.name()
    );
    s.faults = vec![FaultAt {
        before_step: before.to_string(),
        fault,
    }];
    s
}

/// The fault matrix, started (issue 6 adds the rest). Measured 2026-11-25: every one is
/// `detected`; the DeepSeek faults cost 7–9 s of outage (all updates delayed, none lost), the
/// NATS crash 3.7 s with API and JetStream failures, the PostgreSQL hang nothing measurable.
pub fn fault_rehearsals() -> Vec<Scenario> {
    // The title names the character, never the password: it becomes the node's secret.
    let password = |id: &str, what: &str, to: &'static str, expected: Expected| {
        let mut s = phase(3, expected, "");
        s.id = format!("faults/{id}");
        s.title = format!(
            "Phase 3 as written, with a new password holding {what} instead of the runbook's example"
        );
        s.edit = Some(("NewPassword123!", to));
        s
    };
    vec![
        password(
            "phase3-new-password-with-an-ampersand",
            "`&`",
            "N3w&Pass123",
            Expected::Detected,
        ),
        password(
            "phase3-new-password-with-a-slash",
            "`/`",
            "N3w/Pass123",
            Expected::Detected,
        ),
        with_fault(
            "phase2-deepseek-revokes-the-old-key-early",
            2,
            "phase2.step3",
            Box::new(UpstreamFault::RevokeCurrentKey {
                provider: "deepseek",
                var: "DEEPSEEK_API_KEY",
            }),
            Expected::Detected,
        ),
        with_fault(
            "phase2-deepseek-answers-429",
            2,
            "phase2.step4",
            Box::new(UpstreamFault::Status {
                provider: "deepseek",
                status: 429,
            }),
            Expected::Detected,
        ),
        with_fault(
            "phase3-memory-crashes-before-the-rolling-restart",
            3,
            "phase3.step3",
            Box::new(ContainerFault::Kill(Service::Memory)),
            Expected::Detected,
        ),
        with_fault(
            "phase3-postgres-hangs-during-the-env-update",
            3,
            "phase3.step2",
            Box::new(ContainerFault::Pause(Service::Postgres)),
            Expected::Detected,
        ),
        with_fault(
            "phase4-nats-crashes-before-the-rolling-restart",
            4,
            "phase4.step3",
            Box::new(ContainerFault::Kill(Service::Nats)),
            Expected::Detected,
        ),
        {
            // The gateway goes down at the start of Phase 2: the safeguard sees the failure rate
            // and aborts before the next step; the runbook's rollback then runs.
            let mut s = with_fault(
                "phase2-gateway-down-trips-the-safeguard",
                2,
                "phase2.step1",
                Box::new(ContainerFault::Stop(Service::Gateway)),
                Expected::Detected,
            );
            s.safeguard = Some(Safeguard {
                window: std::time::Duration::from_secs(2),
                max_failure_rate: 0.5,
            });
            s
        },
    ]
}
