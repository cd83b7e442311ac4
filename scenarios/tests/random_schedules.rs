//! Random fault schedules (proptest, seeded): transient faults at random times over a phase as
//! written, then the runbook's rollback. The invariants: nothing accepted is lost, and after the
//! rollback the steady state holds. The seed is printed and written into each scenario's journal
//! entry; `REHEARSAL_SEED=<seed>` replays the same schedules here, and
//! `cargo xtask rehearse --random <n> --seed <seed>` replays them with full reports. A failing
//! schedule is shrunk (each attempt is a full rehearsal, so the attempts are bounded) and the
//! smallest failing one is reported with its seed.

use harness::progress::Progress;
use harness::redact::Redactor;
use harness::runbook::{workspace_path, Runbook, DEFAULT_RUNBOOK};
use proptest::strategy::ValueTree;
use rehearsal::{engine, Options};
use scenarios::random::{schedules, violations, Schedule};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Rehearses one schedule; returns what broke the invariants.
fn check(
    rt: &tokio::runtime::Runtime,
    runbook: &Runbook,
    schedule: &Schedule,
    seed: u64,
    case: usize,
) -> Vec<String> {
    let scenario = schedule.scenario(seed, case);
    let redactor = Redactor::new();
    let record = rt.block_on(engine::run(
        &scenario,
        runbook,
        &Options::default(),
        &Progress::stderr(),
        &redactor,
    ));
    let json = serde_json::to_string(&record).unwrap();
    assert_eq!(
        redactor.find_leak(&json),
        None,
        "a secret value in the journal"
    );
    let broken = violations(&record);
    if !broken.is_empty() {
        // What the engine saw of the services involved, for the next person (logs redacted).
        for f in &record.forensics {
            eprintln!("{}", f.describe());
        }
    }
    broken
}

#[test]
fn random_fault_schedules_over_a_phase_lose_nothing_accepted_and_roll_back_to_the_steady_state() {
    let seed = env_number(
        "REHEARSAL_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    );
    let cases = env_number("REHEARSAL_SCHEDULES", 2) as usize;
    let max_shrinks = env_number("REHEARSAL_SHRINKS", 4);
    eprintln!("random fault schedules: seed {seed}, {cases} cases (replay: REHEARSAL_SEED={seed})");
    let runbook = Runbook::load(&workspace_path(DEFAULT_RUNBOOK)).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    for (case, mut tree) in schedules(seed, cases).into_iter().enumerate() {
        let drawn = tree.current();
        eprintln!("case {case}: {drawn:?}");
        let broken = check(&rt, &runbook, &drawn, seed, case);
        if broken.is_empty() {
            continue;
        }
        // Shrink: simplify while it still fails, step back when it passes.
        let (mut smallest, mut why) = (drawn.clone(), broken);
        let mut attempts = 0;
        while attempts < max_shrinks && tree.simplify() {
            attempts += 1;
            let candidate = tree.current();
            let broken = check(&rt, &runbook, &candidate, seed, case);
            if broken.is_empty() {
                if !tree.complicate() {
                    break;
                }
            } else {
                smallest = candidate;
                why = broken;
            }
        }
        panic!(
            "seed {seed}, case {case}: the invariants broke\n  drawn: {drawn:?}\n  smallest failing after {attempts} shrink attempts: {smallest:?}\n  {}\nreplay: REHEARSAL_SEED={seed} cargo nextest run -E 'test(random_fault_schedules)', or cargo xtask rehearse --random {} --seed {seed}",
            why.join("\n  "),
            case + 1
        );
    }
}
