//! What each scenario costs, in seconds of wall time, as measured: what `--shard K/N` balances
//! shards by. Regenerate from a journal of the whole set (`cargo xtask rehearse --only '*'`):
//! each scenario's `wall_ms`, rounded to the second.

/// Measured on the project's 2-core machine, 2026-12-01 (the runbook as written: 11 scenarios,
/// two busy at a time; the fault matrix: `--only 'faults/*'`).
pub const MEASURED: &[(&str, u64)] = &[
    ("phase1/as-written", 12),
    ("phase2/as-written", 61),
    ("phase3/as-written", 67),
    ("phase4/as-written", 52),
    ("phase5/as-written", 21),
    ("rotation/as-written", 64),
    ("rollback/after-phase1", 45),
    ("rollback/after-phase2", 78),
    ("rollback/after-phase3", 54),
    ("rollback/after-phase4", 47),
    ("rollback/after-phase5", 31),
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
