//! Every step boundary judged as a place the operator may stop: once a step is done, before the
//! next starts, the credentials each running container holds are tried as the node would meet
//! them on a reconnect (`auth.held.*`). A refusal there is an unsafe window, whatever the time
//! scale or the operator's pace, unless the phase's own text declares that interruption.

use super::journal::CheckRecord;
use crate::runbook::Phase;

/// The checks run at every boundary.
pub const CHECKS: &[&str] = &["auth.held.*"];

/// The sentence of `phase`'s text that declares every refusal `refused` holds as an expected
/// interruption: one that says how long it lasts (`until`, `while`) and that calls are refused
/// or fail, naming the credential's holder (`Neo4j`, `PostgreSQL`, `Telegram`).
pub fn declared(phase: &Phase, refused: &[&CheckRecord]) -> Option<String> {
    let sentences: Vec<&str> = phase
        .preamble
        .split_inclusive('.')
        .map(str::trim)
        .filter(|s| {
            let lower = s.to_lowercase();
            ["until", "while"].iter().any(|w| lower.contains(w))
                && ["refused", "rejected", "fail"]
                    .iter()
                    .any(|w| lower.contains(w))
        })
        .collect();
    let holders: Vec<String> = refused
        .iter()
        .flat_map(|c| c.evidence.split("; "))
        .map(holder_of)
        .collect();
    if holders.is_empty() {
        return None;
    }
    let mut declaring = Vec::new();
    for holder in &holders {
        let sentence = sentences
            .iter()
            .find(|s| s.to_lowercase().contains(holder.as_str()))?;
        if !declaring.contains(sentence) {
            declaring.push(*sentence);
        }
    }
    Some(declaring.join(" "))
}

/// Who refused, from a refusal `auth.held.*` wrote: `PostgreSQL refuses …` → `postgresql`,
/// `telegram-helion answered 401 …` → `telegram`.
fn holder_of(refusal: &str) -> String {
    let first = refusal.split_whitespace().next().unwrap_or("");
    first.split('-').next().unwrap_or(first).to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::Outcome;

    fn phase_of(v2_phase: u32) -> Phase {
        let runbook = crate::runbook::Runbook::load(&crate::runbook::workspace_path(
            "fixtures/runbook/SECRETS_ROTATION_RUNBOOK.v2.md",
        ))
        .unwrap();
        runbook
            .phases
            .into_iter()
            .find(|p| p.number == v2_phase)
            .unwrap()
    }

    fn refusal(evidence: &str) -> CheckRecord {
        CheckRecord {
            id: "auth.held.router".into(),
            outcome: Outcome::Fail,
            evidence: evidence.into(),
        }
    }

    #[test]
    fn v2_declares_neo4j_refused_until_the_recreate_and_nothing_for_postgresql() {
        let neo4j = refusal("neo4j answered 401 for router's NEO4J_PASSWORD");
        assert_eq!(
            declared(&phase_of(9), &[&neo4j]).as_deref(),
            Some(
                "Neo4j holds one password per user: from the change until the router and the memory service\nare recreated, their Neo4j calls are refused."
            )
        );
        let postgres = refusal(
            "PostgreSQL refuses gateway's DB_PASSWORD for `daarion` (28P01 password authentication failed for user \"daarion\")",
        );
        assert_eq!(declared(&phase_of(6), &[&postgres]), None);
        // One refusal the phase does not declare makes the boundary unsafe.
        assert_eq!(declared(&phase_of(9), &[&neo4j, &postgres]), None);
    }

    #[test]
    fn v2_declares_the_telegram_replies_failing_until_the_gateway_is_recreated() {
        let telegram = refusal("telegram-helion answered 401 for gateway's TELEGRAM_BOT_TOKEN_HELION; telegram-druid answered 401 for gateway's TELEGRAM_BOT_TOKEN_DRUID");
        assert!(declared(&phase_of(10), &[&telegram])
            .unwrap()
            .contains("Until the gateway is recreated its replies fail"));
    }
}
