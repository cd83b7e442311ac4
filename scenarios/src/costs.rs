//! What each scenario costs, in seconds of wall time, as measured: what `--shard K/N` balances
//! shards by. Regenerate from a journal of the whole set (`cargo xtask rehearse --only '*'`):
//! each scenario's `wall_ms`, rounded to the second.

/// Measured on the project's 2-core machine, two busy at a time. 2026-12-06: the scenarios
/// derived from the runbook as written (`cargo xtask rehearse`, 191.5 s) and from v2
/// (`--runbook …v2.md`, 419.4 s; an id both derive takes the longer). 2026-12-01: the fault
/// matrix (44 scenarios, `--only 'faults/*'`, 17 m 29 s). 2026-12-03, idle: v2's faults and
/// every step boundary of its secrets' phases under its fault, named since by the ids derived
/// from the text (`faults/<secret>/step<K>-…`; one both runbooks derive takes the longer).
/// 2026-12-07: the step boundaries derived from the runbook as written (`--only 'faults/*/step*'`,
/// 14 in 495 s) and those v2 had not measured (Neo4j's and Qdrant's step 3).
pub const MEASURED: &[(&str, u64)] = &[
    ("prepare", 9),
    ("rollback/after-prepare", 32),
    ("rotate/deepseek", 91),
    ("rollback/after-deepseek", 71),
    ("rotate/postgres", 58),
    ("rollback/after-postgres", 71),
    ("rotate/nats", 51),
    ("rollback/after-nats", 72),
    ("verify", 10),
    ("rotation", 112),
    ("rotate/mistral", 13),
    ("rollback/after-mistral", 20),
    ("rotate/grok", 26),
    ("rollback/after-grok", 23),
    ("rotate/cohere", 14),
    ("rollback/after-cohere", 29),
    ("rotate/qdrant", 13),
    ("rollback/after-qdrant", 22),
    ("rotate/neo4j", 26),
    ("rollback/after-neo4j", 41),
    ("rotate/telegram", 28),
    ("rollback/after-telegram", 26),
    ("rotate/jwt", 53),
    ("rollback/after-jwt", 62),
    ("faults/phase1-gateway-down-at-the-preflight-check", 36),
    ("faults/phase1-postgres-restarts-during-the-backup", 28),
    ("faults/phase1-nats-crashes-for-3s", 56),
    (
        "faults/phase1-deepseek-answers-429-for-3s-at-the-preflight-check",
        36,
    ),
    ("faults/phase1-memory-crash-loops", 121),
    (
        "faults/phase1-rerun-the-same-day-after-phase3-with-the-alter-fixed",
        175,
    ),
    ("faults/phase1-memory-to-postgres-300ms-latency-for-4s", 18),
    ("faults/phase2-deepseek-revokes-the-old-key-early", 55),
    ("faults/deepseek/step3-deepseek-rejects-the-new-key", 154),
    ("faults/phase2-deepseek-answers-429", 55),
    ("faults/phase2-deepseek-answers-after-2s", 64),
    ("faults/phase2-new-key-pasted-as-written", 57),
    ("faults/phase2-router-cut-off-for-3s", 56),
    ("faults/phase2-gateway-down-trips-the-safeguard", 54),
    ("faults/phase3-new-password-with-an-ampersand", 42),
    ("faults/phase3-new-password-with-a-slash", 48),
    ("faults/phase3-alter-fixed-new-password-with-a-dollar", 170),
    ("faults/phase3-alter-fixed-new-password-with-a-quote", 43),
    (
        "faults/phase3-alter-fixed-new-password-with-a-backslash",
        197,
    ),
    (
        "faults/phase3-alter-fixed-new-password-with-a-hash-and-a-space",
        203,
    ),
    (
        "faults/phase3-alter-fixed-new-password-with-a-backtick-and-a-double-quote",
        43,
    ),
    ("faults/phase3-alter-fixed-memory-env-missed", 185),
    (
        "faults/phase3-memory-crashes-before-the-rolling-restart",
        59,
    ),
    ("faults/phase3-postgres-hangs-during-the-env-update", 57),
    ("faults/phase3-postgres-max-connections-for-5s", 54),
    ("faults/phase3-postgres-500ms-latency-for-5s", 57),
    ("faults/phase3-postgres-connections-reset", 46),
    ("faults/phase4-nats-crashes-before-the-rolling-restart", 64),
    ("faults/phase4-nats-reloads-during-publishing", 73),
    ("faults/phase4-nats-restarts-before-the-rolling-restart", 54),
    ("faults/phase4-nats-300ms-latency-for-5s", 54),
    ("faults/phase4-nats-connections-reset", 52),
    ("faults/phase4-crewai-worker-cut-off-for-4s", 44),
    ("faults/phase5-memory-crash-loops", 136),
    ("faults/phase5-deepseek-revokes-the-current-key", 99),
    ("faults/phase5-postgres-stalls-for-4s", 18),
    ("faults/phase5-postgres-max-connections", 49),
    ("faults/phase5-router-hangs-for-4s", 18),
    ("faults/rollback-memory-crashes-before-the-restart", 60),
    ("faults/rollback-postgres-hangs-for-5s", 55),
    ("faults/rollback-nats-crashes-before-the-verification", 64),
    ("faults/rollback-deepseek-answers-429", 34),
    ("faults/rollback-postgres-300ms-latency", 34),
    ("faults/rollback-after-phase3-with-the-alter-fixed", 205),
    ("v2/jwt/without-key-overlap", 25),
    ("faults/postgres/step3-postgres-stalls-for-4s", 94),
    ("faults/nats/step4-nats-connections-reset", 55),
    ("v2/faults/phase8-memory-killed-before-its-recreate", 28),
    (
        "v2/faults/phase11-gateway-killed-for-10s-during-the-key-overlap",
        71,
    ),
    // 2026-12-07: the v2 scenarios on nodes wired by another profile (`--only 'v2/profiles/*'`).
    (
        "v2/profiles/database-url/phase6-new-password-with-url-reserved-characters",
        27,
    ),
    (
        "v2/profiles/database-url/phase6-database-url-removed-from-the-memory-service",
        37,
    ),
    (
        "v2/profiles/interpolated/phase9-project-env-edited-then-only-restarted",
        157,
    ),
    ("faults/deepseek/step1-router-killed-for-5s", 156),
    ("faults/deepseek/step2-router-killed-for-5s", 121),
    ("faults/deepseek/step3-router-killed-for-5s", 124),
    ("faults/deepseek/step4-router-killed-for-5s", 74),
    ("faults/mistral/step1-router-killed-for-5s", 37),
    ("faults/mistral/step2-router-killed-for-5s", 36),
    ("faults/mistral/step3-router-killed-for-5s", 25),
    ("faults/mistral/step4-router-killed-for-5s", 53),
    ("faults/mistral/step3-mistral-rejects-the-new-key", 124),
    ("faults/grok/step1-router-killed-for-5s", 28),
    ("faults/grok/step2-router-killed-for-5s", 59),
    ("faults/grok/step3-router-killed-for-5s", 84),
    ("faults/grok/step4-router-killed-for-5s", 144),
    ("faults/grok/step3-grok-rejects-the-new-key", 112),
    ("faults/cohere/step1-router-killed-for-5s", 46),
    ("faults/cohere/step2-router-killed-for-5s", 62),
    ("faults/cohere/step3-router-killed-for-5s", 22),
    ("faults/cohere/step4-router-killed-for-5s", 114),
    ("faults/cohere/step3-cohere-rejects-the-new-key", 103),
    ("faults/postgres/step1-postgres-stalls-for-4s", 100),
    ("faults/postgres/step2-postgres-stalls-for-4s", 122),
    ("faults/postgres/step4-postgres-stalls-for-4s", 93),
    ("faults/postgres/step5-postgres-stalls-for-4s", 108),
    ("faults/postgres/step6-postgres-stalls-for-4s", 111),
    ("faults/postgres/step7-postgres-stalls-for-4s", 108),
    ("faults/nats/step1-nats-connections-reset", 117),
    ("faults/nats/step2-nats-connections-reset", 133),
    ("faults/nats/step3-nats-connections-reset", 56),
    ("faults/nats/step5-nats-connections-reset", 155),
    ("faults/nats/step6-nats-connections-reset", 113),
    ("faults/qdrant/step1-memory-service-killed-for-5s", 41),
    ("faults/qdrant/step2-memory-service-killed-for-5s", 36),
    ("faults/qdrant/step4-memory-service-killed-for-5s", 75),
    ("faults/neo4j/step1-memory-service-killed-for-5s", 65),
    ("faults/neo4j/step2-memory-service-killed-for-5s", 30),
    ("faults/neo4j/step3-router-killed-for-5s", 90),
    ("faults/telegram/step1-gateway-killed-for-5s", 60),
    ("faults/telegram/step2-gateway-killed-for-5s", 59),
    ("faults/jwt/step1-gateway-killed-for-5s", 133),
    ("faults/jwt/step2-gateway-killed-for-5s", 126),
    ("faults/jwt/step3-gateway-killed-for-5s", 153),
    ("faults/jwt/step4-gateway-killed-for-5s", 91),
    ("faults/deepseek/step5-router-killed-for-5s", 68),
    ("faults/neo4j/step1-router-killed-for-5s", 32),
    ("faults/neo4j/step2-router-killed-for-5s", 22),
    ("faults/neo4j/step3-memory-service-killed-for-5s", 24),
    ("faults/qdrant/step3-memory-service-killed-for-5s", 20),
];

/// A scenario not measured yet (a random schedule, a new one): about a median scenario's.
pub const UNMEASURED: u64 = 50;

/// The measured cost of scenario `id`, or `UNMEASURED`.
pub fn cost_of(id: &str) -> u64 {
    MEASURED
        .iter()
        .find(|(known, _)| *known == id)
        .map_or(UNMEASURED, |(_, secs)| *secs)
}
