//! Helpers shared by the workspace's tests: a default replica, with progress shown; probe
//! reports and journals built by hand, for the tests of what is rendered from them.

use crate::progress::Progress;
use crate::{Stack, StackOptions};

/// A default replica stack; panics with the reason when it does not start (tests only).
pub async fn start() -> Stack {
    Stack::start(StackOptions {
        progress: Progress::stderr(),
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("stack did not start: {e}"))
}

/// A probe report at the default rate: `delayed` of 1 000 updates delayed, none lost, 50 API
/// calls and JetStream publishes all ok, and the webhook's longest outage.
pub fn probe_report(delayed: u64, webhook_outage_ms: u64) -> crate::rehearsal::probe::ProbeReport {
    use crate::rehearsal::probe::{DataReport, FlowReport, ProbeConfig, ProbeReport};
    let flow = |outage| FlowReport {
        sent: 50,
        attempts: 60,
        ok: 50,
        delayed: 0,
        failed: 0,
        longest_outage_ms: outage,
        achieved_rate: 99.0,
    };
    ProbeReport {
        config: ProbeConfig::default(),
        duration_ms: 10_000,
        flows: [
            ("webhook".to_string(), flow(webhook_outage_ms)),
            ("api".to_string(), flow(0)),
            ("jetstream".to_string(), flow(0)),
        ]
        .into(),
        updates_ok: 1000 - delayed,
        updates_delayed: delayed,
        updates_lost: 0,
        timeline: Default::default(),
        data: DataReport::default(),
    }
}

/// A journal of `scenarios` that took `wall_ms`, with no finding and nothing left behind.
pub fn journal(
    scenarios: Vec<crate::rehearsal::journal::ScenarioRecord>,
    wall_ms: u64,
) -> crate::rehearsal::Journal {
    use crate::rehearsal::journal::{Journal, SCHEMA, VERSION};
    Journal {
        schema: SCHEMA,
        version: VERSION,
        runbook: "runbook.md".into(),
        started: "2026-11-26T09:00:00Z".into(),
        wall_ms,
        time_scale: 0.02,
        scenarios,
        findings: Vec::new(),
        leftovers: Vec::new(),
    }
}
