//! The probe as evidence of the harness's own health: starved of CPU on purpose, it reports
//! itself saturated (so a verdict resting on it becomes `inconclusive`); given the machine, it
//! does not.

use rehearsal::engine::harness_saturated;
use rehearsal::probe::{self, ProbeConfig};
use rehearsal::telegram::Queue;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Runs the probe for `seconds` against a fresh replica on a one-thread runtime; `starve` blocks
/// that thread for 1.3 s at a time, as a saturated machine would hold the probe's loop.
fn probe_for(seconds: u64, starve: bool) -> probe::ProbeReport {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let stack = testing::start().await;
        let secrets = stack.initial_secrets().clone();
        let db = [secrets.get("DB_PASSWORD").to_string()];
        let config = ProbeConfig {
            rate: 20.0,
            api_rate: 2.0,
            jetstream_rate: 2.0,
            drain: Duration::from_secs(5),
            ..ProbeConfig::default()
        };
        let stop = AtomicBool::new(false);
        let live = probe::Live::default();
        let mut queue = Queue::default();
        let run = probe::run(
            &stack,
            &config,
            &mut queue,
            &stop,
            &live,
            secrets.get("JWT_SECRET"),
            secrets.get("NATS_PASSWORD_GATEWAY"),
            &db,
        );
        let clock = async {
            let end = tokio::time::Instant::now() + Duration::from_secs(seconds);
            while tokio::time::Instant::now() < end {
                if starve {
                    // Holds the only thread: every task, the probe's clock included, waits.
                    std::thread::sleep(Duration::from_millis(1300));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            stop.store(true, Ordering::SeqCst);
        };
        let (report, ()) = tokio::join!(run, clock);
        testing::down(stack).await;
        report
    })
}

#[test]
fn a_deliberately_starved_probe_reports_the_harness_saturated() {
    let report = probe_for(8, true);
    assert!(
        report.harness.lag_p99_ms > 1000,
        "lag p99 {} ms",
        report.harness.lag_p99_ms
    );
    let why = harness_saturated(&report).expect("saturated");
    assert!(why.starts_with("the probe's clock ticked"), "{why}");
}

#[test]
fn a_probe_with_the_machine_to_itself_is_not_saturated() {
    let report = probe_for(5, false);
    assert_eq!(harness_saturated(&report), None, "{:?}", report.harness);
    assert_eq!(report.updates_lost, 0);
    assert_eq!(report.telegram.backlog, 0);
}
