//! Random fault schedules: one to three transient faults at random times and for random
//! durations over one phase as written, followed by the runbook's rollback. Schedules are drawn
//! by proptest from a seed (`schedules(seed, n)`), so the seed in the journal replays them
//! (`cargo xtask rehearse --random N --seed S`), and a failing one shrinks (`shrink`).
//!
//! The invariants a schedule is held to (`violations`): nothing accepted is lost while the steps
//! run, and after the rollback the steady state holds and the rollback lost nothing either.

use harness::Service;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use rehearsal::faults::{ContainerFault, NatsReload, NetworkFault, ProxyEffect, UpstreamFault};
use rehearsal::journal::ScenarioRecord;
use rehearsal::{Expected, FaultAt, Rollback, Scenario};
use std::time::Duration;

/// A transient fault a schedule may draw.
#[derive(Debug, Clone, PartialEq)]
pub enum RandomFault {
    Kill(Service),
    Hang(Service),
    Restart(Service),
    Disconnect(Service),
    Latency { to: Service, ms: u64 },
    Stall(Service),
    Refuse { to: Service, percent: u8 },
    Reset(Service),
    NatsReload,
    Deepseek429,
    DeepseekSlow { ms: u64 },
}

impl RandomFault {
    fn attach(&self, at: Duration, lasts: Duration) -> FaultAt {
        let proxy = |to, effect| NetworkFault::Proxy {
            to,
            from: None,
            effect,
        };
        let f = match *self {
            RandomFault::Kill(s) => FaultAt::after(at, ContainerFault::Kill(s)),
            RandomFault::Hang(s) => FaultAt::after(at, ContainerFault::Hang(s)),
            RandomFault::Restart(s) => FaultAt::after(at, ContainerFault::Restart(s)),
            RandomFault::Disconnect(s) => FaultAt::after(at, NetworkFault::Disconnect(s)),
            RandomFault::Latency { to, ms } => {
                FaultAt::after(at, proxy(to, ProxyEffect::Latency { ms }))
            }
            RandomFault::Stall(to) => FaultAt::after(at, proxy(to, ProxyEffect::Stall)),
            RandomFault::Refuse { to, percent } => FaultAt::after(
                at,
                proxy(
                    to,
                    ProxyEffect::Refuse {
                        fraction: f64::from(percent) / 100.0,
                    },
                ),
            ),
            RandomFault::Reset(to) => FaultAt::after(at, proxy(to, ProxyEffect::Reset)),
            RandomFault::NatsReload => FaultAt::after(at, NatsReload),
            RandomFault::Deepseek429 => FaultAt::after(
                at,
                UpstreamFault::Status {
                    provider: "deepseek",
                    status: 429,
                },
            ),
            RandomFault::DeepseekSlow { ms } => FaultAt::after(
                at,
                UpstreamFault::Slow {
                    provider: "deepseek",
                    delay_ms: ms,
                },
            ),
        };
        f.lasting(lasts)
    }
}

/// One fault of a schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub fault: RandomFault,
    /// Milliseconds after the first step.
    pub at_ms: u64,
    pub lasts_ms: u64,
}

/// A random fault schedule over one phase.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub phase: u32,
    pub faults: Vec<Planned>,
}

fn service() -> impl Strategy<Value = Service> {
    prop_oneof![
        Just(Service::Memory),
        Just(Service::Router),
        Just(Service::Gateway),
        Just(Service::CrewaiWorker),
        Just(Service::ParserPipeline),
        Just(Service::Postgres),
        Just(Service::Nats),
    ]
}

fn backing() -> impl Strategy<Value = Service> {
    prop_oneof![Just(Service::Postgres), Just(Service::Nats)]
}

fn fault() -> impl Strategy<Value = RandomFault> {
    prop_oneof![
        service().prop_map(RandomFault::Restart),
        service().prop_map(RandomFault::Kill),
        service().prop_map(RandomFault::Hang),
        service().prop_map(RandomFault::Disconnect),
        (backing(), 50u64..800).prop_map(|(to, ms)| RandomFault::Latency { to, ms }),
        backing().prop_map(RandomFault::Stall),
        (backing(), 10u8..90).prop_map(|(to, percent)| RandomFault::Refuse { to, percent }),
        backing().prop_map(RandomFault::Reset),
        Just(RandomFault::NatsReload),
        Just(RandomFault::Deepseek429),
        (100u64..3000).prop_map(|ms| RandomFault::DeepseekSlow { ms }),
    ]
}

/// The strategy schedules are drawn from: phase 2, 3 or 4 (the ones whose steps last long
/// enough for faults at a time: 2–10 s), then one to three faults of eleven kinds, each at 0–2.5 s after the
/// first step, lasting 0.3–4 s (or until the phases end).
/// The phases a schedule is drawn over.
const PHASES: std::ops::RangeInclusive<u32> = 2..=4;

pub fn schedule() -> impl Strategy<Value = Schedule> {
    (
        PHASES,
        prop::collection::vec(
            (fault(), 0u64..2500, 300u64..4000).prop_map(|(fault, at_ms, lasts_ms)| Planned {
                fault,
                at_ms,
                lasts_ms,
            }),
            1..=3,
        ),
    )
        .prop_map(|(phase, faults)| Schedule { phase, faults })
}

fn runner(seed: u64) -> TestRunner {
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&seed.wrapping_add(i as u64).to_le_bytes());
    }
    TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
    )
}

/// The first `n` schedules drawn from `seed`, each with the value tree that shrinks it.
pub fn schedules(seed: u64, n: usize) -> Vec<impl ValueTree<Value = Schedule>> {
    let mut runner = runner(seed);
    let strategy = schedule();
    (0..n)
        .map(|_| strategy.new_tree(&mut runner).expect("a schedule"))
        .collect()
}

impl Schedule {
    /// The scenario that runs this schedule: phase 1 (every rotation starts with it) and the
    /// drawn phase, the faults, then always the rollback.
    pub fn scenario(&self, seed: u64, case: usize) -> Scenario {
        let faults: Vec<FaultAt> = self
            .faults
            .iter()
            .map(|p| {
                p.fault.attach(
                    Duration::from_millis(p.at_ms),
                    Duration::from_millis(p.lasts_ms),
                )
            })
            .collect();
        let what: Vec<String> = faults
            .iter()
            .map(|f| format!("`{}` {}", f.fault.name(), f.describe_at()))
            .collect();
        Scenario {
            id: format!("random/seed-{seed}-case-{case}"),
            title: format!(
                "Phase {} as written, then the rollback, with {}",
                self.phase,
                what.join(", ")
            ),
            phases: if self.phase == 1 {
                vec![1]
            } else {
                vec![1, self.phase]
            },
            rollback: Rollback::Always,
            postconditions: Vec::new(),
            // The invariants, not an outcome, are what a random schedule is held to.
            expected: Expected::Detected,
            faults,
            safeguard: None,
            edits: Vec::new(),
            seed: Some(seed),
            replica: Default::default(),
            stop_at_failed_step: false,
            not_rehearsable: None,
            new_values: Vec::new(),
        }
    }
}

/// The phases random schedules are drawn over, one scenario each with no fault drawn yet: what
/// every schedule over that phase runs (the catalogue's `random/phaseN`).
pub fn families() -> Vec<Scenario> {
    PHASES
        .map(|phase| {
            let mut s = Schedule {
                phase,
                faults: Vec::new(),
            }
            .scenario(0, 0);
            s.id = format!("random/phase{phase}");
            s.title = format!(
                "Phase {phase} as written, then the rollback, with one to three random transient faults"
            );
            s.seed = None;
            s
        })
        .collect()
}

/// The families that apply to `runbook`: the phases of the runbook as written they are drawn
/// over, bound to it by their steps' fingerprints (none for another text).
pub fn families_for(runbook: &harness::runbook::Runbook) -> Vec<Scenario> {
    bound_to(runbook, families())
}

/// `scenarios`, drawn over the runbook as written, bound to `runbook` (those that apply).
pub fn bound_to(runbook: &harness::runbook::Runbook, scenarios: Vec<Scenario>) -> Vec<Scenario> {
    let lock = harness::runbook::lock::Lock::load(&harness::runbook::workspace_path(
        harness::runbook::lock::DEFAULT_LOCK,
    ));
    match lock {
        Ok(lock) => scenarios
            .into_iter()
            .filter_map(|s| rehearsal::applies::bind(s, &lock, runbook).ok())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// What broke the invariants, if anything: accepted work lost during the steps or the rollback,
/// or a steady state that did not come back after the rollback.
pub fn violations(record: &ScenarioRecord) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(e) = &record.error {
        out.push(format!("the scenario did not complete: {e}"));
    }
    for (when, probe) in [
        ("during the steps", &record.probe),
        ("during the rollback", &record.rollback_probe),
    ] {
        let Some(p) = probe else {
            out.push(format!("no traffic was measured {when}"));
            continue;
        };
        if p.updates_lost > 0 {
            out.push(format!("{} accepted updates lost {when}", p.updates_lost));
        }
        if p.data.missing_gateway_rows > 0 {
            out.push(format!(
                "{} gateway rows missing {when}",
                p.data.missing_gateway_rows
            ));
        }
        for (worker, n) in &p.data.missing_processed {
            if *n > 0 {
                out.push(format!(
                    "{n} JetStream messages never processed by {worker} {when}"
                ));
            }
        }
    }
    let failing: Vec<&str> = record
        .checks_after_rollback
        .iter()
        .filter(|c| {
            !matches!(
                c.outcome,
                harness::checks::Outcome::Pass | harness::checks::Outcome::Skip
            )
        })
        .map(|c| c.id.as_str())
        .collect();
    if record.checks_after_rollback.is_empty() {
        out.push("the steady state was not checked after the rollback".into());
    } else if !failing.is_empty() {
        out.push(format!(
            "after the rollback the steady state does not hold: {}",
            failing.join(", ")
        ));
    }
    out
}
