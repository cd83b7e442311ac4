//! Every step boundary judged as a place the operator may stop: once a step is done, before the
//! next starts, the credentials each running container holds are tried as the node would meet
//! them on a reconnect (`auth.held.*`), and every flow is tried end to end (`flows.rs`). A
//! refusal or a failed flow there is an unsafe window, whatever the time scale or the
//! operator's pace, unless the phase's own text declares that interruption.

use harness::runbook::Phase;

/// The checks run at every boundary (the flows beside them: `flows.rs`).
pub const CHECKS: &[&str] = &["auth.held.*"];

/// What a refusal or a failed flow can be declared by: the dependency that refused or failed,
/// as the runbook's prose names it.
const HOLDERS: &[&str] = &[
    "postgresql",
    "nats",
    "telegram",
    "neo4j",
    "qdrant",
    "deepseek",
    "mistral",
    "grok",
    "cohere",
];

/// The sentence of `phase`'s text that declares every failure in `refused` (the evidence of a
/// refused credential or a failed flow) as an expected interruption: one that says how long it
/// lasts (`until`, `while`) and that calls are refused or fail, naming what refused or failed
/// (`Neo4j`, `PostgreSQL`, `Telegram`). A failure naming none of them is never declared.
pub fn declared(phase: &Phase, refused: &[&str]) -> Option<String> {
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
    if refused.is_empty() {
        return None;
    }
    let mut declaring = Vec::new();
    for evidence in refused {
        let holders = holders_in(evidence);
        if holders.is_empty() {
            return None;
        }
        for holder in holders {
            let sentence = sentences
                .iter()
                .find(|s| s.to_lowercase().contains(holder))?;
            if !declaring.contains(sentence) {
                declaring.push(*sentence);
            }
        }
    }
    // One line, whatever the runbook's line breaks: reports put it in a list item.
    Some(
        declaring
            .join(" ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// The dependencies `evidence` names as refusing or failing: `PostgreSQL refuses …` →
/// postgresql, `telegram-helion answered 401 …` → telegram; a name inside another
/// (`crewai-nats-worker`, `NEO4J_PASSWORD`) does not count.
fn holders_in(evidence: &str) -> Vec<&'static str> {
    let lower = evidence.to_lowercase();
    let words: Vec<&str> = lower
        .split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '_'))
        .collect();
    HOLDERS
        .iter()
        .copied()
        .filter(|h| {
            words
                .iter()
                .any(|w| *w == *h || w.strip_prefix(*h).is_some_and(|rest| rest.starts_with('-')))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase_of(v2_phase: u32) -> Phase {
        let runbook = harness::runbook::Runbook::load(&harness::runbook::workspace_path(
            "fixtures/runbook/SECRETS_ROTATION_RUNBOOK.v2.md",
        ))
        .unwrap();
        runbook
            .phases
            .into_iter()
            .find(|p| p.number == v2_phase)
            .unwrap()
    }

    #[test]
    fn v2_declares_neo4j_refused_until_the_recreate_and_nothing_for_postgresql() {
        let neo4j = "neo4j answered 401 for router's NEO4J_PASSWORD";
        assert_eq!(
            declared(&phase_of(9), &[neo4j]).as_deref(),
            Some(
                "Neo4j holds one password per user: from the change until the router and the memory service are recreated, their Neo4j calls are refused."
            )
        );
        let postgres = "PostgreSQL refuses gateway's DB_PASSWORD for `daarion` (28P01 password authentication failed for user \"daarion\")";
        assert_eq!(declared(&phase_of(6), &[postgres]), None);
        // One refusal the phase does not declare makes the boundary unsafe.
        assert_eq!(declared(&phase_of(9), &[neo4j, postgres]), None);
    }

    #[test]
    fn v2_declares_the_telegram_replies_failing_until_the_gateway_is_recreated() {
        let telegram = "telegram-helion answered 401 for gateway's TELEGRAM_BOT_TOKEN_HELION; telegram-druid answered 401 for gateway's TELEGRAM_BOT_TOKEN_DRUID";
        assert!(declared(&phase_of(10), &[telegram])
            .unwrap()
            .contains("Until the gateway is recreated its replies fail"));
    }

    #[test]
    fn a_failed_webhook_is_declared_by_the_dependency_it_names_and_a_worker_by_none() {
        let webhook = "the helion webhook answered 502: telegram: telegram answered 401; still failing after 10.0 s";
        assert!(declared(&phase_of(10), &[webhook]).is_some());
        let worker = "crewai-nats-worker processed 0 of the 4 events; still failing after 10.0 s";
        assert_eq!(holders_in(worker), Vec::<&str>::new());
        assert_eq!(declared(&phase_of(10), &[webhook, worker]), None);
    }
}
