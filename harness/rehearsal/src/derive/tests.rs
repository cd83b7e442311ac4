//! The derivation's unit tests: scenarios, boundaries and post-conditions from runbook texts.

use super::*;

fn shipped(name: &str) -> Runbook {
    Runbook::load(&harness::runbook::workspace_path(&format!(
        "fixtures/runbook/{name}"
    )))
    .unwrap()
}

fn roles(plan: &Plan) -> Vec<(u32, String)> {
    plan.phases
        .iter()
        .map(|p| {
            let role = match &p.role {
                Role::Prepares => "prepares".to_string(),
                Role::Verifies => "verifies".to_string(),
                Role::Rotates(_) => format!("rotates {}", p.slug),
                Role::NotRehearsable(why) => format!("not rehearsable: {why}"),
            };
            (p.number, role)
        })
        .collect()
}

#[test]
fn the_runbook_as_written_rotates_deepseek_postgres_and_nats_and_never_says_stop() {
    let plan = Plan::of(&shipped("SECRETS_ROTATION_RUNBOOK.md"));
    assert_eq!(
        roles(&plan),
        [
            (1, "prepares".to_string()),
            (2, "rotates deepseek".into()),
            (3, "rotates postgres".into()),
            (4, "rotates nats".into()),
            (5, "verifies".into()),
        ]
    );
    assert!(!plan.stops_at_failed_step);
    assert!(!plan.replica.gateway_jwt_overlap);
}

#[test]
fn v2_rotates_every_secret_of_its_inventory_one_phase_each_and_says_stop() {
    let plan = Plan::of(&shipped("SECRETS_ROTATION_RUNBOOK.v2.md"));
    let slugs: Vec<&str> = plan.phases.iter().map(|p| p.slug.as_str()).collect();
    assert_eq!(
        slugs,
        [
            "", "deepseek", "mistral", "grok", "cohere", "postgres", "nats", "qdrant", "neo4j",
            "telegram", "jwt", ""
        ]
    );
    assert_eq!(plan.phases[11].role, Role::Verifies);
    assert!(plan.stops_at_failed_step);
    assert!(plan.replica.gateway_jwt_overlap);
}

#[test]
fn a_scenario_per_rotating_phase_and_its_rollback_named_by_secret_held_to_holds() {
    let ids: Vec<String> = scenarios(&shipped("SECRETS_ROTATION_RUNBOOK.md"), None)
        .into_iter()
        .map(|s| format!("{} {:?} {}", s.id, s.phases, s.expected))
        .collect();
    assert_eq!(
        ids,
        [
            "prepare [1] holds",
            "rollback/after-prepare [1] holds",
            "rotate/deepseek [1, 2] holds",
            "rollback/after-deepseek [1, 2] holds",
            "rotate/postgres [1, 3] holds",
            "rollback/after-postgres [1, 3] holds",
            "rotate/nats [1, 4] holds",
            "rollback/after-nats [1, 4] holds",
            "verify [1, 5] holds",
            "rotation [1, 2, 3, 4, 5] holds",
        ]
    );
}

#[test]
fn a_phase_rotating_a_secret_the_replica_does_not_model_is_named_not_rehearsable() {
    let text = std::fs::read_to_string(harness::runbook::workspace_path(
        "fixtures/runbook/SECRETS_ROTATION_RUNBOOK.v2.md",
    ))
    .unwrap()
    .replace(
        "| Telegram Bot Tokens | Gateway `.env` | Gateway | As needed |",
        "| Telegram Bot Tokens | Gateway `.env` | Gateway | As needed |\n\
         | Stripe API Key | Billing `.env` | Billing | Yearly |",
    )
    .replace(
        "## Rollback Procedure",
        "### Phase 13: Stripe API Key (5 min)\n\n1. **Rotate it in Stripe's dashboard:**\n   \
         ```bash\n   docker compose up -d billing\n   ```\n\n## Rollback Procedure",
    );
    let runbook = harness::runbook::parse("stripe.md", &text).unwrap();
    let all = scenarios(&runbook, None);
    let stripe = all
        .iter()
        .find(|s| s.id == "rotate/stripe-api-key")
        .unwrap();
    assert_eq!(
        stripe.not_rehearsable.as_deref(),
        Some("Phase 13 rotates Stripe API Key, which no service of the replica reads")
    );
    let rotation = all.iter().find(|s| s.id == "rotation").unwrap();
    assert_eq!(rotation.not_rehearsable, stripe.not_rehearsable);
}

fn boundary_faults(runbook: &Runbook, secret: &str) -> Vec<String> {
    fault_scenarios(runbook, None)
        .into_iter()
        .filter(|s| s.id.starts_with(&format!("faults/{secret}/")))
        .map(|s| {
            format!(
                "{} {} {:?} {}",
                s.id,
                s.faults[0].fault.name(),
                s.phases,
                s.expected
            )
        })
        .collect()
}

#[test]
fn each_step_of_a_provider_phase_meets_its_service_killed_and_the_restart_a_rejected_key() {
    assert_eq!(
        boundary_faults(&shipped("SECRETS_ROTATION_RUNBOOK.v2.md"), "deepseek"),
        [
            "faults/deepseek/step1-router-killed-for-5s kill -9 dagi-router-node1 [1, 2] holds",
            "faults/deepseek/step2-router-killed-for-5s kill -9 dagi-router-node1 [1, 2] holds",
            "faults/deepseek/step3-router-killed-for-5s kill -9 dagi-router-node1 [1, 2] holds",
            "faults/deepseek/step3-deepseek-rejects-the-new-key deepseek rejects the new key (DEEPSEEK_API_KEY) [1, 2] holds",
            "faults/deepseek/step4-router-killed-for-5s kill -9 dagi-router-node1 [1, 2] holds",
        ]
    );
    // Neo4j's phase names the router's and the memory service's: each meets both deaths.
    let neo4j = boundary_faults(&shipped("SECRETS_ROTATION_RUNBOOK.v2.md"), "neo4j");
    assert_eq!(
        neo4j
            .iter()
            .map(|l| l.split(' ').next().unwrap())
            .collect::<Vec<_>>(),
        [
            "faults/neo4j/step1-router-killed-for-5s",
            "faults/neo4j/step1-memory-service-killed-for-5s",
            "faults/neo4j/step2-router-killed-for-5s",
            "faults/neo4j/step2-memory-service-killed-for-5s",
            "faults/neo4j/step3-router-killed-for-5s",
            "faults/neo4j/step3-memory-service-killed-for-5s",
        ]
    );
}

#[test]
fn a_servers_secret_meets_the_servers_fault_before_every_step() {
    let as_written = shipped("SECRETS_ROTATION_RUNBOOK.md");
    for (secret, fault, rest) in [
        (
            "postgres",
            "postgres-stalls-for-4s",
            "stalled connections every client \u{2192} dagi-postgres [1, 3] holds",
        ),
        (
            "nats",
            "nats-connections-reset",
            "connections reset every client \u{2192} dagi-nats-node1 [1, 4] holds",
        ),
    ] {
        assert_eq!(
            boundary_faults(&as_written, secret),
            (1..=4)
                .map(|k| format!("faults/{secret}/step{k}-{fault} {rest}"))
                .collect::<Vec<_>>()
        );
    }
}

#[test]
fn boundary_ids_stay_when_phases_move_and_their_faults_follow_the_steps() {
    let v2 = shipped("SECRETS_ROTATION_RUNBOOK.v2.md");
    let text = std::fs::read_to_string(&v2.file).unwrap();
    let at = |n: u32| text.find(&format!("### Phase {n}:")).unwrap();
    let swapped = format!(
        "{}{}{}{}",
        &text[..at(3)],
        text[at(4)..at(5)].replacen("### Phase 4:", "### Phase 3:", 1),
        text[at(3)..at(4)].replacen("### Phase 3:", "### Phase 4:", 1),
        &text[at(5)..]
    );
    let swapped = harness::runbook::parse("swapped.md", &swapped).unwrap();
    let where_ = |runbook: &Runbook| {
        let mut all: Vec<(String, String)> = fault_scenarios(runbook, None)
            .into_iter()
            .map(|s| (s.id.clone(), s.faults[0].describe_at()))
            .collect();
        all.sort();
        all
    };
    let (before, after) = (where_(&v2), where_(&swapped));
    let ids = |v: &[(String, String)]| v.iter().map(|(i, _)| i.clone()).collect::<Vec<_>>();
    assert_eq!(ids(&before), ids(&after));
    let grok = |v: &[(String, String)]| {
        v.iter()
            .find(|(i, _)| i == "faults/grok/step3-grok-rejects-the-new-key")
            .unwrap()
            .1
            .clone()
    };
    assert_eq!(grok(&before), "before phase4.step3");
    assert_eq!(grok(&after), "before phase3.step3");
}
