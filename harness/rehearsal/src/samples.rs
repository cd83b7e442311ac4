//! Journals, probe reports and runbooks built by hand, for the tests and benches of what is
//! rendered or measured from them.

/// A probe report at the default rate: `delayed` of 1 000 updates delayed, none lost, 50 API
/// calls and JetStream publishes all ok, and the webhook's longest outage.
pub fn probe_report(delayed: u64, webhook_outage_ms: u64) -> crate::probe::ProbeReport {
    use crate::probe::{DataReport, FlowReport, ProbeConfig, ProbeReport};
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
        telegram: Default::default(),
        harness: Default::default(),
        timeline: Default::default(),
        containers_down: Default::default(),
        data: DataReport::default(),
    }
}

/// A journal of `scenarios` that took `wall_ms`, with no finding and nothing left behind.
pub fn journal(scenarios: Vec<crate::journal::ScenarioRecord>, wall_ms: u64) -> crate::Journal {
    use crate::journal::{Journal, SCHEMA, VERSION};
    Journal {
        schema: SCHEMA.to_string(),
        version: VERSION,
        runbook: "runbook.md".into(),
        runbook_fingerprint: "0123456789abcdef".into(),
        shard: None,
        started: "2026-11-26T09:00:00Z".into(),
        wall_ms,
        time_scale: 0.02,
        scenarios,
        findings: Vec::new(),
        leftovers: Vec::new(),
        engine_leftovers: Vec::new(),
        skipped: Vec::new(),
        node_profile: None,
    }
}
