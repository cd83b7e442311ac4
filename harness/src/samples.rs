//! Journals, probe reports and runbooks built by hand, for the tests and benches of what is
//! rendered or measured from them.

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
        telegram: Default::default(),
        harness: Default::default(),
        timeline: Default::default(),
        containers_down: Default::default(),
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

/// A runbook of about `bytes` bytes that parses: the shipped runbook's inventory, its phases
/// repeated (renumbered) until the size is reached, then its rollback and notes. For the
/// parser's benchmark and its linear-time tests.
pub fn synthetic_runbook(bytes: usize) -> String {
    const SHIPPED: &str = include_str!("../../fixtures/runbook/SECRETS_ROTATION_RUNBOOK.md");
    let first = SHIPPED
        .find("### Phase ")
        .expect("the shipped runbook has phases");
    let last = SHIPPED
        .rfind("### Phase ")
        .expect("the shipped runbook has phases");
    let end = last
        + SHIPPED[last..]
            .find("\n## ")
            .expect("a section follows the phases")
        + 1;
    let (prefix, phases, suffix) = (&SHIPPED[..first], &SHIPPED[first..end], &SHIPPED[end..]);
    let chunks: Vec<&str> = phases
        .split_inclusive("\n### Phase ")
        .map(|c| c.strip_suffix("### Phase ").unwrap_or(c))
        .map(|c| c.strip_prefix("### Phase ").unwrap_or(c))
        .collect();
    let mut out = String::with_capacity(bytes + SHIPPED.len());
    out.push_str(prefix);
    let mut number = 0;
    while out.len() + suffix.len() < bytes || number < chunks.len() {
        let chunk = chunks[number % chunks.len()];
        number += 1;
        let body = chunk.trim_start_matches(|c: char| c.is_ascii_digit());
        out.push_str(&format!("### Phase {number}{body}"));
    }
    out.push_str(suffix);
    out
}
