//! `cargo xtask bench up`: measures a replica's start to all-ready (median of N runs), its
//! removal time and its idle memory (docker stats), and the same node started by Compose from
//! its generated file where Compose is installed. `cargo xtask bench verify`: the wall time
//! of every check against one healthy replica (median of N runs) and against a fleet of replicas
//! at once. `cargo xtask bench probe`: the highest rate the critical flow sustains.
//! `cargo xtask bench rehearse`: the wall time of the whole rehearsal (median of N runs) and,
//! per scenario, what its journal measured. Numbers, not assertions.

use harness::{errln, out, outln};

use std::time::{Duration, Instant};

use bollard::query_parameters::StatsOptionsBuilder;
use futures::StreamExt;
use harness::exit_codes;
use harness::progress::Progress;
use harness::{Service, Stack, StackOptions};

/// `cargo xtask bench`: numbers, not assertions.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// a replica's start to all-ready (median of N), removal time, idle memory; the same node
    /// started by Compose where it is installed
    Up {
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=1000))]
        runs: u64,
        /// the harness's starts alone, without the same node started by Compose after each
        #[arg(long)]
        harness_only: bool,
        /// keep this many cores busy with a CPU burner throughout, as another job would
        #[arg(long, value_name = "CORES", default_value_t = 0,
              value_parser = clap::value_parser!(u64).range(0..=64))]
        background_load: u64,
        /// starts at once, as a rehearsal's busy scenarios start (above 1: the harness alone)
        #[arg(long, value_name = "N", default_value_t = 1,
              value_parser = clap::value_parser!(u64).range(1..=16))]
        parallel: u64,
    },
    /// every check against one replica (median of N) and against a fleet of nodes, as `verify
    /// --targets` runs it, with the CPU each check costs
    Verify {
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=100))]
        runs: u64,
        /// nodes in the fleet: targets pointing at the running replicas in turn
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=1000))]
        targets: u64,
        /// distinct replicas the targets point at (started one at a time)
        #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=20))]
        replicas: u64,
        /// nodes verified at once, as `verify --jobs`
        #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1024))]
        jobs: u64,
    },
    /// the highest rate of Telegram updates the critical flow sustains: < 0.1 % failures, delivery delay p99 ≤ 1 s
    Probe {
        /// seconds at each rate
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=600))]
        seconds: u64,
    },
    /// what `verify --watch` costs the node it watches: the rehearsal's traffic on one replica
    /// for --seconds with and without a watch of it (alternating, --runs pairs), Telegram's
    /// delivery delay p99 and the failures on each side, the watch's rounds and CPU
    Watch {
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=50))]
        runs: u64,
        /// seconds of traffic in each run
        #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(5..=600))]
        seconds: u64,
        /// the watch's --interval
        #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=3600))]
        interval: u64,
        /// the watch's --skip: leave checks out by id glob, to measure what they cost
        #[arg(long, value_name = "GLOB")]
        skip: Vec<String>,
    },
    /// the rollback's restart in a loop: a replica started, every service restarted at once by
    /// the host's Compose (`compose -f docker-compose.node1.yml restart`, as the rollback of the
    /// runbook as written does), all ready again, then removed; failed starts, services not
    /// ready after the restart, and networks the engine would not remove, per N
    Restarts {
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=1000))]
        runs: u64,
        /// keep this many cores busy with a CPU burner throughout, as another job would
        #[arg(long, value_name = "CORES", default_value_t = 0,
              value_parser = clap::value_parser!(u64).range(0..=64))]
        background_load: u64,
    },
    /// the rehearsal of the runbook as written: median wall time of N runs, and per scenario
    /// the medians of what its journals measured
    Rehearse {
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=100))]
        runs: u64,
        /// scenarios by id glob (default: the runbook's own set, as `rehearse` chooses it)
        #[arg(long, value_name = "GLOB")]
        only: Vec<String>,
        /// rehearse this runbook (default fixtures/runbook/SECRETS_ROTATION_RUNBOOK.md; a
        /// `*.v2.*` file is rehearsed with the v2 set)
        #[arg(long, value_name = "FILE")]
        runbook: Option<std::path::PathBuf>,
        /// Telegram updates per second through the gateway (1 to 2000)
        #[arg(long, value_name = "N", default_value_t = 100.0, value_parser = crate::rehearse::rate)]
        rate: f64,
        /// keep this many cores busy with a CPU burner throughout, as another job on the
        /// machine would: a verdict must not depend on it
        #[arg(long, value_name = "CORES", default_value_t = 0,
              value_parser = clap::value_parser!(u64).range(0..=64))]
        background_load: u64,
    },
}

/// How long a bench ended by a signal waits for the engine to remove its replicas.
const REMOVAL_ON_SIGNAL: Duration = Duration::from_secs(120);

/// Runs `command`; SIGINT, SIGTERM or SIGHUP end it with every replica this process started
/// removed (containers, networks, volumes, replica roots) and exit 128 + the signal. `bench
/// rehearse` ends its scenarios itself.
pub async fn run_until_signal(command: Command) -> anyhow::Result<i32> {
    if matches!(command, Command::Rehearse { .. }) {
        return run(command).await;
    }
    let mut signals = harness::signals::Signals::install()?;
    let signal = tokio::select! {
        result = run(command) => return result,
        signal = signals.recv() => signal,
    };
    errln!(
        "{}: removing the replicas this bench started",
        signal.name()
    );
    let me = std::process::id();
    let removal = async {
        let docker = harness::docker::connect().await?;
        for stack in harness::docker::list_stacks(&docker).await? {
            if stack.owner_pid == me {
                harness::docker::remove_stack(&docker, &stack).await?;
            }
        }
        anyhow::Ok(())
    };
    match tokio::time::timeout(REMOVAL_ON_SIGNAL, removal).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => errln!("error: removing this bench's replicas: {e:#}"),
        Err(_) => errln!(
            "error: the Docker engine did not remove this bench's replicas within {} s; once it \
             answers, `cargo xtask down --all` removes them",
            REMOVAL_ON_SIGNAL.as_secs()
        ),
    }
    Ok(signal.exit_code())
}

pub async fn run(command: Command) -> anyhow::Result<i32> {
    match command {
        Command::Up {
            runs,
            background_load,
            parallel,
            ..
        } if parallel > 1 => {
            bench_up_parallel(runs as usize, parallel as usize, background_load as usize).await
        }
        Command::Up {
            runs,
            harness_only,
            background_load,
            ..
        } => bench_up(runs as usize, harness_only, background_load as usize).await,
        Command::Verify {
            runs,
            targets,
            replicas,
            jobs,
        } => {
            bench_verify(
                runs as usize,
                targets as usize,
                replicas as usize,
                jobs as usize,
            )
            .await
        }
        Command::Probe { seconds } => bench_probe(seconds as usize).await,
        Command::Watch {
            runs,
            seconds,
            interval,
            skip,
        } => bench_watch(runs as usize, seconds, interval, &skip).await,
        Command::Restarts {
            runs,
            background_load,
        } => bench_restarts(runs as usize, background_load as usize).await,
        Command::Rehearse {
            runs,
            only,
            runbook,
            rate,
            background_load,
        } => bench_rehearse(runs as usize, only, runbook, rate, background_load as usize).await,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

async fn bench_up(runs: usize, harness_only: bool, background_load: usize) -> anyhow::Result<i32> {
    let progress = Progress::stderr();
    // Warm the caches first so that every timed run measures only the start.
    let docker = harness::docker::connect().await?;
    harness::host_tools::provide(&harness::images::replica_needs(&docker).await, &progress).await?;
    let (_, binary) = harness::images::ensure_image_and_binary(&docker, &progress).await?;
    let compose = harness::compose::HostCompose::detect().filter(|_| !harness_only);
    if compose.is_none() && !harness_only {
        progress.say("no Compose on this machine (docker compose or docker-compose): measuring the harness alone");
    }
    if background_load > 0 {
        progress.say(&format!(
            "bench up: {background_load} core(s) kept busy by a CPU burner throughout"
        ));
    }
    let _burner = CpuBurner::start(background_load);
    let mut ups = Vec::new();
    let mut downs = Vec::new();
    let mut compose_ups = Vec::new();
    let mut compose_returns = Vec::new();
    let mut compose_downs = Vec::new();
    let mut memory = None;
    // Each failed start: its run and the error's first line (the service and the reason).
    let mut failed: Vec<(usize, String)> = Vec::new();
    for i in 0..runs {
        let (stack, up) = match start_timed(i + 1, runs, &progress).await? {
            Ok(started) => started,
            Err(why) => {
                failed.push((i + 1, why));
                continue;
            }
        };
        ups.push(up);
        if i + 1 == runs {
            // Let the replica settle, then read its idle memory.
            tokio::time::sleep(Duration::from_secs(5)).await;
            memory = Some(idle_memory(&stack).await?);
        }
        // The same node for Compose: a copy of this replica's root and its generated file,
        // started only once the harness's replica is gone, so that the two never share cores.
        let node = compose
            .map(|tool| {
                crate::compose::ComposeNode::prepare(
                    tool,
                    stack.root(),
                    &stack.image_ref(),
                    &binary,
                    stack.redactor(),
                )
            })
            .transpose()?;
        let started = Instant::now();
        stack.down().await?;
        let down = started.elapsed().as_secs_f64();
        downs.push(down);
        let mut line = format!("run {}/{runs}: up {up:.2}s, down {down:.2}s", i + 1);
        if let Some(mut node) = node {
            let times = match node.up(&docker, Duration::from_secs(60)).await {
                Ok(times) => times,
                Err(e) => {
                    node.remove_leftovers(&docker).await?;
                    return Err(e);
                }
            };
            let down = node.down(&docker).await?;
            compose_ups.push(times.all_ready.as_secs_f64());
            compose_returns.push(times.up_returned.as_secs_f64());
            compose_downs.push(down.as_secs_f64());
            line.push_str(&format!(
                "; compose up {:.2}s (returned at {:.2}s), down {:.2}s",
                times.all_ready.as_secs_f64(),
                times.up_returned.as_secs_f64(),
                down.as_secs_f64()
            ));
        }
        progress.say(&line);
    }
    if ups.is_empty() {
        outln!("bench up ({runs} runs): every start failed");
        for (run, why) in &failed {
            outln!("  run {run}: {why}");
        }
        return Ok(exit_codes::FAILURES);
    }
    let spread = |v: &[f64]| {
        format!(
            "median {:.2}s  min {:.2}s  max {:.2}s",
            median(v.to_vec()),
            v.iter().cloned().fold(f64::INFINITY, f64::min),
            v.iter().cloned().fold(0.0, f64::max)
        )
    };
    outln!("bench up ({runs} runs, images cached, {background_load} core(s) busy besides)");
    print_failed_starts(&failed, runs);
    outln!("  up to all-ready: {}", spread(&ups));
    outln!("  down:            median {:.2}s", median(downs.clone()));
    if let Some(tool) = compose.filter(|_| !compose_ups.is_empty()) {
        outln!(
            "  compose, same node from its docker-compose.node1.yml ({}, then the same readiness probes):",
            crate::compose::up_command(tool)
        );
        outln!("    up to all-ready: {}", spread(&compose_ups));
        outln!(
            "    up returned:     median {:.2}s",
            median(compose_returns)
        );
        outln!(
            "    down -v:         median {:.2}s",
            median(compose_downs.clone())
        );
        outln!(
            "  ratio harness / compose, up to all-ready (medians): {:.2}; down: {:.2}",
            median(ups.clone()) / median(compose_ups.clone()),
            median(downs) / median(compose_downs)
        );
    }
    if let Some((total, per)) = memory {
        outln!(
            "  idle memory:     {:.0} MiB total (docker stats, usage minus page cache)",
            total as f64 / 1048576.0
        );
        for (service, bytes) in per {
            outln!(
                "    {:<28} {:>6.1} MiB",
                service.production_name(),
                bytes as f64 / 1048576.0
            );
        }
    }
    Ok(exit_codes::OK)
}

/// `failed starts: F of N (x per 100)`, then each failure's run and first line.
fn print_failed_starts(failed: &[(usize, String)], runs: usize) {
    let rate = if failed.is_empty() {
        String::new()
    } else {
        format!(
            " ({:.1} per 100)",
            failed.len() as f64 * 100.0 / runs as f64
        )
    };
    outln!("  failed starts:   {} of {runs}{rate}", failed.len());
    for (run, why) in failed {
        outln!("    run {run}: {why}");
    }
}

/// A replica started and timed, or the first line of why its start failed (the whole error,
/// its forensics, goes to stderr); an error only when there is no engine to start on.
async fn start_timed(
    run: usize,
    runs: usize,
    progress: &Progress,
) -> anyhow::Result<Result<(Stack, f64), String>> {
    let started = Instant::now();
    match Stack::start(StackOptions {
        progress: progress.clone(),
        ..StackOptions::default()
    })
    .await
    {
        Ok(stack) => Ok(Ok((stack, started.elapsed().as_secs_f64()))),
        Err(
            e @ (harness::HarnessError::NoDocker(_)
            | harness::HarnessError::EngineUnresponsive { .. }),
        ) => Err(e.into()),
        Err(e) => {
            errln!(
                "run {run}/{runs}: the start failed after {:.1}s: {e}",
                started.elapsed().as_secs_f64()
            );
            Ok(Err(e.to_string().lines().next().unwrap_or("").to_string()))
        }
    }
}

/// A start and its removal, timed, or why the start failed.
async fn start_and_remove(
    run: usize,
    runs: usize,
    progress: &Progress,
) -> anyhow::Result<Result<(f64, f64), String>> {
    let (stack, up) = match start_timed(run, runs, progress).await? {
        Ok(started) => started,
        Err(why) => return Ok(Err(why)),
    };
    let started = Instant::now();
    stack.down().await?;
    Ok(Ok((up, started.elapsed().as_secs_f64())))
}

/// What a replica's start needs, provided before any run is timed: the host's tools, the
/// image and the binary.
async fn provide_replica(progress: &Progress) -> anyhow::Result<()> {
    let docker = harness::docker::connect().await?;
    harness::host_tools::provide(&harness::images::replica_needs(&docker).await, progress).await?;
    harness::images::ensure_image_and_binary(&docker, progress).await?;
    Ok(())
}

/// One timed start and removal: its run, and its times or why the start failed.
type StartResult = (usize, anyhow::Result<Result<(f64, f64), String>>);

/// How long every service gets to be ready again after the restart.
const READY_AFTER_RESTART: Duration = Duration::from_secs(60);

/// `bench restarts`: the rollback's parallel restart in a loop; what went wrong, per N.
async fn bench_restarts(runs: usize, background_load: usize) -> anyhow::Result<i32> {
    let progress = Progress::stderr();
    provide_replica(&progress).await?;
    let _burner = CpuBurner::start(background_load);
    let quiet = Progress::silent();
    let mut failed_starts = Vec::new();
    // (run, what): a restart Compose reported as failed, or a service not ready after it.
    let mut failed_restarts: Vec<(usize, String)> = Vec::new();
    let mut stale_networks: Vec<(usize, String)> = Vec::new();
    let mut restart_times = Vec::new();
    for run in 1..=runs {
        let (stack, _) = match start_timed(run, runs, &quiet).await? {
            Ok(started) => started,
            Err(why) => {
                failed_starts.push((run, why));
                continue;
            }
        };
        let started = Instant::now();
        let restarted = stack.compose(&["restart"]).await?;
        let mut line = format!("run {run}/{runs}: ");
        if restarted.exit_code != 0 {
            let why = restarted.stderr.lines().last().unwrap_or("").to_string();
            line.push_str(&format!(
                "compose restart failed (exit {}): {why}",
                restarted.exit_code
            ));
            failed_restarts.push((
                run,
                format!("compose restart exit {}: {why}", restarted.exit_code),
            ));
        } else {
            let waits = Service::ALL
                .into_iter()
                .map(|service| stack.wait_ready(service, READY_AFTER_RESTART));
            let not_ready: Vec<String> = futures::future::join_all(waits)
                .await
                .into_iter()
                .filter_map(|r| r.err())
                .map(|e| e.to_string().lines().next().unwrap_or("").to_string())
                .collect();
            let took = started.elapsed().as_secs_f64();
            if not_ready.is_empty() {
                restart_times.push(took);
                line.push_str(&format!("restarted, all ready in {took:.2}s"));
            } else {
                for why in &not_ready {
                    errln!("run {run}/{runs}: {why}");
                }
                line.push_str(&format!(
                    "{} service(s) not ready after the restart",
                    not_ready.len()
                ));
                failed_restarts.extend(not_ready.into_iter().map(|why| (run, why)));
            }
        }
        match stack.down().await {
            Ok(()) => {}
            Err(harness::HarnessError::StaleNetwork { network }) => {
                line.push_str(&format!("; network {network} stale"));
                stale_networks.push((run, network));
            }
            Err(e) => return Err(e.into()),
        }
        progress.say(&line);
    }
    outln!("bench restarts ({runs} runs, images cached, {background_load} core(s) busy besides)");
    print_failed_starts(&failed_starts, runs);
    outln!(
        "  failed restarts: {} of {runs}",
        failed_restarts
            .iter()
            .map(|(r, _)| r)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    );
    for (run, why) in &failed_restarts {
        outln!("    run {run}: {why}");
    }
    outln!("  stale networks:  {} of {runs}", stale_networks.len());
    for (run, network) in &stale_networks {
        outln!("    run {run}: {network}");
    }
    if !restart_times.is_empty() {
        outln!(
            "  restart to all-ready: median {:.2}s  max {:.2}s",
            median(restart_times.clone()),
            restart_times.iter().cloned().fold(0.0, f64::max)
        );
    }
    Ok(
        if failed_starts.is_empty() && failed_restarts.is_empty() && stale_networks.is_empty() {
            exit_codes::OK
        } else {
            exit_codes::FAILURES
        },
    )
}

/// `bench up --parallel N`: N starts at once, as a rehearsal's busy scenarios start, the
/// harness alone; the failed starts and the start times.
async fn bench_up_parallel(
    runs: usize,
    parallel: usize,
    background_load: usize,
) -> anyhow::Result<i32> {
    let progress = Progress::stderr();
    provide_replica(&progress).await?;
    let _burner = CpuBurner::start(background_load);
    let quiet = Progress::silent();
    let results: Vec<StartResult> = futures::stream::iter(1..=runs)
        .map(|run| {
            let quiet = quiet.clone();
            let progress = progress.clone();
            async move {
                let result = start_and_remove(run, runs, &quiet).await;
                if let Ok(Ok((up, down))) = &result {
                    progress.say(&format!("run {run}/{runs}: up {up:.2}s, down {down:.2}s"));
                }
                (run, result)
            }
        })
        .buffer_unordered(parallel)
        .collect()
        .await;
    let mut ups = Vec::new();
    let mut failed = Vec::new();
    for (run, result) in results {
        match result? {
            Ok((up, _)) => ups.push(up),
            Err(why) => failed.push((run, why)),
        }
    }
    failed.sort();
    outln!("bench up ({runs} runs, {parallel} at once, images cached, {background_load} core(s) busy besides)");
    print_failed_starts(&failed, runs);
    if !ups.is_empty() {
        outln!(
            "  up to all-ready: median {:.2}s  max {:.2}s",
            median(ups.clone()),
            ups.iter().cloned().fold(0.0, f64::max)
        );
    }
    Ok(if failed.is_empty() {
        exit_codes::OK
    } else {
        exit_codes::FAILURES
    })
}

/// The probe's traffic on `stack` as `config` says, for `seconds`.
async fn probe_for(
    stack: &Stack,
    config: &rehearsal::probe::ProbeConfig,
    seconds: u64,
) -> rehearsal::probe::ProbeReport {
    use std::sync::atomic::{AtomicBool, Ordering};
    let secrets = stack.initial_secrets();
    let db = [secrets.get("DB_PASSWORD").to_string()];
    let stop = AtomicBool::new(false);
    let live = rehearsal::probe::Live::default();
    let mut queue = rehearsal::telegram::Queue::default();
    let run = rehearsal::probe::run(
        stack,
        config,
        &mut queue,
        &stop,
        &live,
        secrets.get("JWT_SECRET"),
        secrets.get("NATS_PASSWORD_GATEWAY"),
        &db,
    );
    let timer = async {
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        stop.store(true, Ordering::SeqCst);
    };
    tokio::join!(run, timer).0
}

/// Telegram's delivery delay (p99) under which the node keeps pace with a rate: above it the
/// updates queue up at Telegram faster than the node takes them, whatever drains later.
const KEEPS_PACE_DELAY_P99_MS: u64 = 1000;

/// The highest rate of Telegram updates the critical flow sustains on one replica: fewer than
/// 0.1 % failed attempts, nothing lost, and delivery keeping pace (delay p99 at most 1 s); the
/// probe at rising rates, each for `--seconds` (default 10).
async fn bench_probe(seconds: usize) -> anyhow::Result<i32> {
    use rehearsal::probe::ProbeConfig;
    let progress = Progress::stderr();
    let stack = Stack::start(StackOptions::default()).await?;
    let mut best = None;
    let mut offset = 0;
    for rate in [
        25.0, 50.0, 100.0, 200.0, 300.0, 400.0, 500.0, 600.0, 800.0, 1000.0, 1200.0, 1500.0, 2000.0,
    ] {
        let config = ProbeConfig {
            rate,
            api_rate: 0.0,
            jetstream_rate: 0.0,
            id_offset: offset,
            ..ProbeConfig::default()
        };
        offset += 10_000_000;
        let report = probe_for(&stack, &config, seconds as u64).await;
        let w = &report.flows["webhook"];
        let failed_attempts = w.attempts - w.ok;
        let failure = failed_attempts as f64 / w.attempts.max(1) as f64;
        let t = &report.telegram;
        progress.say(&format!(
            "rate {rate}/s: achieved {:.1}/s, {} attempts, {:.3} % failed, {} delayed, {} lost, processed missing {:?}; Telegram: {} connections busy at most, delay p99 {} ms, peak backlog {}, {} left queued; harness lag p99 {} ms, CPU idle {:.0} %",
            w.achieved_rate,
            w.attempts,
            failure * 100.0,
            report.updates_delayed,
            report.updates_lost,
            report.data.missing_processed,
            t.peak_in_flight,
            t.delay_p99_ms,
            t.peak_backlog,
            t.backlog,
            report.harness.lag_p99_ms,
            report.harness.cpu_idle_pct,
        ));
        let short = [
            (failure >= 0.001, "0.1 % or more of the attempts failed"),
            (
                w.achieved_rate < rate * 0.95,
                "the rate achieved was under 95 % of it",
            ),
            (!report.clean(), "something was lost, failed or not stored"),
            (
                t.backlog > 0,
                "updates were still queued at Telegram when the rate stopped",
            ),
            (
                t.delay_p99_ms > KEEPS_PACE_DELAY_P99_MS,
                "deliveries fell behind: Telegram's delay p99 over 1 s",
            ),
        ];
        let why: Vec<&str> = short.iter().filter(|(s, _)| *s).map(|(_, w)| *w).collect();
        if !why.is_empty() {
            progress.say(&format!("rate {rate}/s not sustained: {}", why.join("; ")));
            break;
        }
        best = Some((rate, w.achieved_rate));
    }
    stack.down().await?;
    match best {
        Some((rate, achieved)) => outln!("bench probe: the critical flow sustains {rate}/s (achieved {achieved:.1}/s) with < 0.1 % failures and Telegram's delay p99 at most 1 s, over {seconds} s"),
        None => outln!("bench probe: not even 25/s was sustained (< 0.1 % failures, delay p99 ≤ 1 s)"),
    }
    Ok(exit_codes::OK)
}

/// One run of `bench watch`: the probe's numbers, and the watch's when one ran.
struct WatchRun {
    delay_p99_ms: u64,
    failed: u64,
    attempts: u64,
    lag_p99_ms: u64,
    /// The watch's rounds and CPU (ms) in the run.
    watch: Option<(u64, f64)>,
}

/// The rehearsal's traffic (the probe at its defaults: 100 updates/s, the API and JetStream
/// flows) on one replica for `seconds`, alternately without and with `cargo xtask verify
/// --replica ID --watch --interval INTERVAL` running as its own process, `runs` pairs.
async fn bench_watch(
    runs: usize,
    seconds: u64,
    interval: u64,
    skip: &[String],
) -> anyhow::Result<i32> {
    use rehearsal::probe::ProbeConfig;
    let progress = Progress::stderr();
    provide_replica(&progress).await?;
    let stack = Stack::start(StackOptions {
        progress: progress.clone(),
        ..Default::default()
    })
    .await?;
    let records = tempfile::tempdir()?;
    let mut results: Vec<WatchRun> = Vec::new();
    for k in 0..runs * 2 {
        let watched = k % 2 == 1;
        let mut watch = None;
        if watched {
            let exe = std::env::current_exe()?;
            let child = std::process::Command::new(&exe)
                .args(["verify", "--replica", stack.id(), "--watch", "--interval"])
                .arg(interval.to_string())
                .args(skip.iter().flat_map(|g| ["--skip", g.as_str()]))
                .arg("--out")
                .arg(records.path().join(format!("run-{k}")))
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .map_err(|e| anyhow::anyhow!("starting `{} verify --watch`: {e}", exe.display()))?;
            // Its first round under way before the traffic starts.
            tokio::time::sleep(Duration::from_secs(1)).await;
            watch = Some(child);
        }
        let config = ProbeConfig {
            id_offset: k as i64 * 10_000_000,
            ..ProbeConfig::default()
        };
        let report = probe_for(&stack, &config, seconds).await;
        let watch = match watch {
            Some(mut child) => {
                let cpu = process_cpu_ms(child.id()).unwrap_or(0.0);
                // SAFETY: kill(2) on our own child's pid, which has not been reaped yet.
                unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
                child.wait()?;
                let journal = std::fs::read_to_string(
                    records.path().join(format!("run-{k}")).join("journal.json"),
                )
                .ok()
                .and_then(|t| harness::checks::watch::WatchJournal::parse(&t).ok());
                Some((journal.map_or(0, |j| j.rounds), cpu))
            }
            None => None,
        };
        let flows = || report.flows.values();
        let run = WatchRun {
            delay_p99_ms: report.telegram.delay_p99_ms,
            failed: flows().map(|f| f.attempts - f.ok).sum(),
            attempts: flows().map(|f| f.attempts).sum(),
            lag_p99_ms: report.harness.lag_p99_ms,
            watch,
        };
        progress.say(&format!(
            "run {} of {}, {}: delivery delay p99 {} ms, {} of {} attempts failed, harness lag p99 {} ms{}",
            k + 1,
            runs * 2,
            if watched { "watched" } else { "not watched" },
            run.delay_p99_ms,
            run.failed,
            run.attempts,
            run.lag_p99_ms,
            match run.watch {
                Some((rounds, cpu)) => format!("; the watch: {rounds} rounds, {:.1} s CPU", cpu / 1000.0),
                None => String::new(),
            }
        ));
        results.push(run);
    }
    stack.down().await?;
    let side = |watched: bool| results.iter().filter(move |r| r.watch.is_some() == watched);
    let p99s = |watched: bool| {
        side(watched)
            .map(|r| r.delay_p99_ms as f64)
            .collect::<Vec<_>>()
    };
    let (off, on) = (p99s(false), p99s(true));
    let spread = |v: &[f64]| {
        (
            v.iter().copied().fold(f64::INFINITY, f64::min),
            v.iter().copied().fold(0.0, f64::max),
        )
    };
    let ((off_min, off_max), (on_min, on_max)) = (spread(&off), spread(&on));
    let failed = |watched: bool| side(watched).map(|r| r.failed).sum::<u64>();
    let rounds: u64 = side(true).filter_map(|r| r.watch).map(|(n, _)| n).sum();
    let cpu: f64 = side(true).filter_map(|r| r.watch).map(|(_, c)| c).sum();
    outln!(
        "bench watch: {runs} pairs of {seconds} s at 100 updates/s on one replica, the watch every {interval} s"
    );
    outln!(
        "  delivery delay p99, not watched: median {:.0} ms (runs {off_min:.0} to {off_max:.0} ms); {} attempts failed",
        median(off.clone()),
        failed(false)
    );
    outln!(
        "  delivery delay p99, watched:     median {:.0} ms (runs {on_min:.0} to {on_max:.0} ms); {} attempts failed",
        median(on.clone()),
        failed(true)
    );
    outln!(
        "  the watch: {rounds} rounds, {:.2} s of CPU a minute of watching",
        cpu / 1000.0 / (runs as f64 * seconds as f64 / 60.0)
    );
    outln!(
        "  the watch adds {:+.0} ms to the median delivery delay p99 (the runs without it spread over {:.0} ms)",
        median(on) - median(off),
        off_max - off_min
    );
    Ok(exit_codes::OK)
}

/// The fleet's wall-time target for `bench verify --targets 50` on 2 cores.
const FLEET_TARGET_MS: f64 = 3000.0;

async fn bench_verify(
    runs: usize,
    fleet: usize,
    replicas: usize,
    jobs: usize,
) -> anyhow::Result<i32> {
    use harness::checks::{self, catalogue, Node};
    let progress = Progress::stderr();
    let all = catalogue();
    let selected: Vec<&checks::Check> = all.iter().collect();
    let replicas = replicas.min(fleet).max(1);
    progress.say(&format!(
        "starting {replicas} replicas (one at a time) for a fleet of {fleet} nodes"
    ));
    let mut stacks = Vec::new();
    for _ in 0..replicas {
        stacks.push(Stack::start(StackOptions::default()).await?);
    }
    let node_of = |stack: &Stack, name: String| {
        let mut target = stack.target();
        target.name = name;
        Node::new(target, None, stack.redactor().clone())
    };
    // One warm-up run (connection setup, DNS), then the timed ones.
    let one = [node_of(&stacks[0], "node01".into())];
    checks::verify(&one, &selected).await;
    let mut singles = Vec::new();
    let mut failed = 0;
    for i in 0..runs {
        let report = checks::verify(&one, &selected).await;
        failed += report.counts().fail + report.counts().error;
        singles.push(report.wall_ms as f64);
        progress.say(&format!(
            "run {}/{runs}: {} checks, 1 target, {} ms",
            i + 1,
            selected.len(),
            report.wall_ms
        ));
    }
    let nodes: Vec<Node> = (0..fleet)
        .map(|i| node_of(&stacks[i % replicas], format!("node{:02}", i + 1)))
        .collect();
    let plan = checks::Fleet {
        jobs,
        per_target: None,
    };
    let mut fleets = Vec::new();
    let mut cpu_ms = Vec::new();
    let mut engine_cpu_ms = Vec::new();
    let mut idle_pct = Vec::new();
    let dockerd = dockerd_pid();
    for i in 0..runs {
        let (cpu_before, engine_before) = (own_cpu_ms(), dockerd.and_then(process_cpu_ms));
        let machine_before = rehearsal::probe::cpu_counters();
        let report = checks::verify_fleet(&nodes, &selected, plan).await;
        cpu_ms.push(own_cpu_ms() - cpu_before);
        if let (Some(before), Some(after)) = (machine_before, rehearsal::probe::cpu_counters()) {
            let total = after.2.saturating_sub(before.2).max(1) as f64;
            idle_pct.push(after.0.saturating_sub(before.0) as f64 * 100.0 / total);
        }
        if let (Some(before), Some(after)) = (engine_before, dockerd.and_then(process_cpu_ms)) {
            engine_cpu_ms.push(after - before);
        }
        failed += report.counts().fail + report.counts().error;
        fleets.push(report.wall_ms as f64);
        if i + 1 == runs {
            let f = report.fleet();
            progress.say(&format!(
                "last fleet run: {} nodes: {} passed, {} failed, {} unreachable",
                f.nodes, f.passed, f.failed, f.unreachable
            ));
            let mut slowest: Vec<(String, f64)> = all
                .iter()
                .map(|c| {
                    let walls = report
                        .results()
                        .filter(|r| r.id == c.id)
                        .map(|r| r.duration_ms as f64)
                        .collect();
                    (c.id.clone(), median(walls))
                })
                .collect();
            slowest.sort_by(|a, b| b.1.total_cmp(&a.1));
            let slowest: Vec<String> = slowest
                .iter()
                .take(8)
                .map(|(id, ms)| format!("{id} {ms:.0} ms"))
                .collect();
            progress.say(&format!(
                "slowest checks in the last fleet run (median wall over the nodes): {}",
                slowest.join(", ")
            ));
        }
        progress.say(&format!(
            "run {}/{runs}: {} checks x {} targets, {jobs} at a time, {} ms",
            i + 1,
            selected.len(),
            nodes.len(),
            report.wall_ms
        ));
    }
    for stack in stacks {
        stack.down().await?;
    }
    let checks_run = (selected.len() * fleet) as f64;
    let cpu = median(cpu_ms);
    outln!(
        "bench verify ({runs} runs, {} checks, healthy replicas)",
        selected.len()
    );
    outln!(
        "  1 target:          median {:.0} ms  min {:.0}  max {:.0}",
        median(singles.clone()),
        singles.iter().cloned().fold(f64::INFINITY, f64::min),
        singles.iter().cloned().fold(0.0, f64::max)
    );
    let wall = median(fleets.clone());
    outln!(
        "  {fleet} targets ({replicas} replicas, {jobs} at a time): median {wall:.0} ms  min {:.0}  max {:.0}  (target <= {FLEET_TARGET_MS:.0} ms: {})",
        fleets.iter().cloned().fold(f64::INFINITY, f64::min),
        fleets.iter().cloned().fold(0.0, f64::max),
        if wall <= FLEET_TARGET_MS { "met" } else { "missed" }
    );
    outln!(
        "  CPU of verify itself: median {cpu:.0} ms a fleet run, {:.1} ms a node, {:.2} ms a check",
        cpu / fleet as f64,
        cpu / checks_run
    );
    if !engine_cpu_ms.is_empty() {
        let engine = median(engine_cpu_ms);
        outln!(
            "  CPU of the Docker engine answering it: median {engine:.0} ms a fleet run, {:.1} ms a node, {:.2} ms a check",
            engine / fleet as f64,
            engine / checks_run
        );
    }
    if !idle_pct.is_empty() {
        outln!(
            "  the machine idle during the fleet runs: median {:.1} % of its cores",
            median(idle_pct)
        );
    }
    if failed > 0 {
        outln!("  note: {failed} check results were fail/error during the runs");
    }
    Ok(exit_codes::OK)
}

/// This process's CPU time so far (user and system, every thread), in milliseconds.
fn own_cpu_ms() -> f64 {
    // SAFETY: getrusage writes into the struct it is given and reads nothing else.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1000.0 + t.tv_usec as f64 / 1000.0;
    ms(usage.ru_utime) + ms(usage.ru_stime)
}

/// The Docker daemon's process on this machine, when it runs here.
fn dockerd_pid() -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
        (comm.trim() == "dockerd").then_some(pid)
    })
}

/// A process's CPU time so far (user and system), in milliseconds, from `/proc/PID/stat`.
fn process_cpu_ms(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    // SAFETY: sysconf reads a constant of the system.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some(ticks * 1000.0 / per_second.max(1.0))
}

/// Total and per-service memory of a stack's containers (usage minus inactive file cache).
async fn idle_memory(stack: &Stack) -> anyhow::Result<(u64, Vec<(Service, u64)>)> {
    let mut per = Vec::new();
    for s in Service::ALL {
        let mut stream = stack.docker().stats(
            &stack.container_name(s),
            Some(
                StatsOptionsBuilder::new()
                    .stream(false)
                    .one_shot(false)
                    .build(),
            ),
        );
        if let Some(stats) = stream.next().await {
            let stats = stats?;
            let m = stats.memory_stats.unwrap_or_default();
            let usage = m.usage.unwrap_or(0);
            let cache = m
                .stats
                .as_ref()
                .and_then(|s| {
                    s.get("inactive_file")
                        .or_else(|| s.get("total_inactive_file"))
                        .copied()
                })
                .unwrap_or(0);
            per.push((s, usage.saturating_sub(cache)));
        }
    }
    Ok((per.iter().map(|(_, b)| b).sum(), per))
}

/// The whole rehearsal (by default the runbook as written: every phase, the rotation and the
/// rollback after each) `--runs` times (default 3): wall time per run and their median, against
/// the 5-minute target; per scenario, the medians over the runs of what its journals measured.
/// Each run's journal and reports go to `target/bench/rehearse/run-K/`.
/// Burns `cores` cores until dropped: busy loops on threads of their own.
struct CpuBurner {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl CpuBurner {
    fn start(cores: usize) -> CpuBurner {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads = (0..cores)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let mut x = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        x = std::hint::black_box(
                            x.wrapping_mul(6364136223846793005).wrapping_add(1),
                        );
                    }
                })
            })
            .collect();
        CpuBurner { stop, threads }
    }
}

impl Drop for CpuBurner {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

async fn bench_rehearse(
    runs: usize,
    only: Vec<String>,
    runbook: Option<std::path::PathBuf>,
    rate: f64,
    background_load: usize,
) -> anyhow::Result<i32> {
    use harness::redact::Redactor;
    use harness::runbook::{workspace_path, Runbook, DEFAULT_RUNBOOK};
    use rehearsal::{Journal, Options};
    let path = runbook.unwrap_or_else(|| workspace_path(DEFAULT_RUNBOOK));
    let runbook = match Runbook::load(&path) {
        Ok(r) => r,
        Err(e) => {
            errln!("error: {e}\nnothing was started");
            return Ok(exit_codes::USAGE);
        }
    };
    let chosen = crate::rehearse::chosen_by(&only, &runbook);
    if let Some(code) = crate::rehearse::refuse_inapplicable(&chosen, &runbook) {
        return Ok(code);
    }
    let chosen = std::sync::Arc::new(chosen);
    if chosen.is_empty() {
        errln!("error: no scenario matches {}", only.join(", "));
        return Ok(exit_codes::USAGE);
    }
    let mut options = Options::default();
    options.probe.rate = rate;
    let progress = Progress::stderr();
    let mut journals: Vec<Journal> = Vec::new();
    if background_load > 0 {
        progress.say(&format!(
            "bench rehearse: {background_load} core(s) kept busy by a CPU burner throughout"
        ));
    }
    let _burner = CpuBurner::start(background_load);
    for k in 1..=runs {
        progress.say(&format!("bench rehearse: run {k} of {runs}"));
        let redactor = Redactor::new();
        let journal =
            match crate::rehearse::rehearse_all(&chosen, &runbook, &options, &progress, &redactor)
                .await?
            {
                Ok(journal) => journal,
                Err(signal) => return Ok(signal.exit_code()),
            };
        let out = workspace_path(&format!("target/bench/rehearse/run-{k}"));
        crate::rehearse::write_reports(&journal, &out, &redactor)?;
        progress.say(&format!(
            "run {k}: {:.1} s, {} of {} met their expected outcome, {} left behind; journal in {}",
            journal.wall_ms as f64 / 1000.0,
            journal.scenarios.iter().filter(|s| s.met).count(),
            journal.scenarios.len(),
            journal.leftovers.len(),
            out.display()
        ));
        journals.push(journal);
    }
    out!("{}", rehearse_table(&journals, &options));
    out!("{}", agreement_table(&journals));
    Ok(if journals.iter().all(Journal::passed) {
        exit_codes::OK
    } else {
        exit_codes::FAILURES
    })
}

/// Whether the runs agree: per scenario, how many runs measured each outcome, and the spread
/// (min–max) of the numbers a verdict rests on.
fn agreement_table(journals: &[rehearsal::Journal]) -> String {
    let mut out = String::from(
        "\n| scenario | expected | outcomes over the runs | agree | lost (min–max) | backlog | delay p99 ms | longest webhook outage ms | harness lag p99 ms |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    let spread = |v: Vec<u64>| {
        let (lo, hi) = (
            v.iter().min().copied().unwrap_or(0),
            v.iter().max().copied().unwrap_or(0),
        );
        if lo == hi {
            lo.to_string()
        } else {
            format!("{lo}–{hi}")
        }
    };
    let mut agreeing = 0;
    for (i, s) in journals[0].scenarios.iter().enumerate() {
        let records: Vec<_> = journals.iter().filter_map(|j| j.scenarios.get(i)).collect();
        let mut outcomes: std::collections::BTreeMap<String, usize> = Default::default();
        for r in &records {
            let name = r
                .actual
                .map(|a| a.to_string())
                .unwrap_or_else(|| "error".into());
            *outcomes.entry(name).or_default() += 1;
        }
        let agree = outcomes.len() == 1;
        agreeing += agree as usize;
        let probes: Vec<_> = records
            .iter()
            .flat_map(|r| [r.probe.as_ref(), r.rollback_probe.as_ref()])
            .flatten()
            .collect();
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            s.id,
            s.expected,
            outcomes
                .iter()
                .map(|(o, n)| format!("{o} ×{n}"))
                .collect::<Vec<_>>()
                .join(", "),
            if agree { "yes" } else { "NO" },
            spread(
                records
                    .iter()
                    .map(|r| r.probe.as_ref().map_or(0, |p| p.updates_lost))
                    .collect()
            ),
            spread(probes.iter().map(|p| p.telegram.backlog).collect()),
            spread(probes.iter().map(|p| p.telegram.delay_p99_ms).collect()),
            spread(
                probes
                    .iter()
                    .map(|p| p.flows["webhook"].longest_outage_ms)
                    .collect()
            ),
            spread(probes.iter().map(|p| p.harness.lag_p99_ms).collect()),
        ));
    }
    out.push_str(&format!(
        "\n{agreeing} of {} scenarios gave the same outcome in all {} runs\n",
        journals[0].scenarios.len(),
        journals.len()
    ));
    out
}

/// What judging every step boundary cost: the time the boundary checks and flows took (they
/// run between two steps, on the scenario's critical path) against the scenarios' wall time,
/// summed over each run, as the median over the runs.
fn boundary_cost(journals: &[rehearsal::Journal]) -> String {
    let per_run: Vec<(f64, f64, usize)> = journals
        .iter()
        .map(|j| {
            let checked: u64 = j
                .scenarios
                .iter()
                .flat_map(|s| &s.boundaries)
                .map(|b| b.checked_ms)
                .sum();
            let wall: u64 = j.scenarios.iter().map(|s| s.wall_ms).sum();
            let n = j.scenarios.iter().map(|s| s.boundaries.len()).sum();
            (checked as f64 / 1000.0, wall as f64 / 1000.0, n)
        })
        .collect();
    let checked = median(per_run.iter().map(|r| r.0).collect());
    let wall = median(per_run.iter().map(|r| r.1).collect());
    let boundaries = per_run.first().map_or(0, |r| r.2);
    let share = if wall > checked {
        100.0 * checked / (wall - checked)
    } else {
        0.0
    };
    format!(
        "step boundaries: {boundaries} judged per run; their checks and flows took {checked:.1} s of the scenarios' {wall:.1} s (median), {share:.1} % more than without them; target <= 15 %\n\n"
    )
}

/// The bench's report: wall times, then one Markdown row per scenario and probe (its steps, its
/// rollback) with the medians over the runs.
fn rehearse_table(journals: &[rehearsal::Journal], options: &rehearsal::Options) -> String {
    use rehearsal::probe::ProbeReport;
    let walls: Vec<f64> = journals.iter().map(|j| j.wall_ms as f64 / 1000.0).collect();
    let mut out = format!(
        "bench rehearse: {} scenario(s), {} run(s), {} updates/s, time scale {}, {} busy at a time\n",
        journals[0].scenarios.len(),
        journals.len(),
        options.probe.rate,
        options.time_scale,
        options.busy.count()
    );
    out.push_str(&format!(
        "wall time: median {:.1} s (min {:.1}, max {:.1}); target <= 300 s\n\n",
        median(walls.clone()),
        walls.iter().cloned().fold(f64::INFINITY, f64::min),
        walls.iter().cloned().fold(0.0, f64::max),
    ));
    out.push_str(&boundary_cost(journals));
    out.push_str(
        "medians over the runs; outages are the longest gap between two successes of a flow\n\n",
    );
    out.push_str("| scenario | traffic | met | achieved / configured rate | updates ok / delayed / lost | API failed / sent | JetStream failed / sent | longest outage webhook / API / JetStream |\n|---|---|---|---|---|---|---|---|\n");
    let med = |v: Vec<u64>| median(v.into_iter().map(|n| n as f64).collect());
    for (i, s) in journals[0].scenarios.iter().enumerate() {
        let records: Vec<_> = journals.iter().filter_map(|j| j.scenarios.get(i)).collect();
        let met = records.iter().filter(|r| r.met).count();
        let steps: Vec<&ProbeReport> = records.iter().filter_map(|r| r.probe.as_ref()).collect();
        let rollbacks: Vec<&ProbeReport> = records
            .iter()
            .filter_map(|r| r.rollback_probe.as_ref())
            .collect();
        for (label, probes) in [("steps", steps), ("rollback", rollbacks)] {
            if probes.is_empty() {
                continue;
            }
            let flow = |name: &str, f: fn(&rehearsal::probe::FlowReport) -> u64| {
                med(probes
                    .iter()
                    .map(|p| p.flows.get(name).map(f).unwrap_or(0))
                    .collect())
            };
            let achieved = median(
                probes
                    .iter()
                    .map(|p| p.flows["webhook"].achieved_rate)
                    .collect(),
            );
            out.push_str(&format!(
                "| {} | {label} | {met}/{} | {achieved:.1} / {} | {} / {} / {} | {} / {} | {} / {} | {} / {} / {} ms |\n",
                s.id,
                records.len(),
                probes[0].config.rate,
                med(probes.iter().map(|p| p.updates_ok).collect()),
                med(probes.iter().map(|p| p.updates_delayed).collect()),
                med(probes.iter().map(|p| p.updates_lost).collect()),
                flow("api", |f| f.failed),
                flow("api", |f| f.sent),
                flow("jetstream", |f| f.failed),
                flow("jetstream", |f| f.sent),
                flow("webhook", |f| f.longest_outage_ms),
                flow("api", |f| f.longest_outage_ms),
                flow("jetstream", |f| f.longest_outage_ms),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::rehearse_table;
    use rehearsal::journal::ScenarioRecord;
    use rehearsal::samples::{journal, probe_report};
    use rehearsal::Expected;
    use rehearsal::{Journal, Options};
    use std::time::SystemTime;

    fn run(wall_s: u64, delayed: u64, outage_ms: u64) -> Journal {
        let mut s = ScenarioRecord::new(
            "phase2/as-written",
            "Phase 2",
            Expected::Detected,
            SystemTime::now(),
        );
        s.met = true;
        s.probe = Some(probe_report(delayed, outage_ms));
        journal(vec![s], wall_s * 1000)
    }

    #[test]
    fn bench_rehearse_reports_the_median_run_and_each_scenarios_median_numbers() {
        let runs = [
            run(100, 10, 1_000),
            run(300, 30, 3_000),
            run(200, 20, 2_000),
        ];
        let table = rehearse_table(&runs, &Options::default());
        assert!(
            table.contains("wall time: median 200.0 s (min 100.0, max 300.0)"),
            "{table}"
        );
        assert!(
            table.contains(
                "| phase2/as-written | steps | 3/3 | 99.0 / 100 | 980 / 20 / 0 | 0 / 50 | 0 / 50 | 2000 / 0 / 0 ms |"
            ),
            "{table}"
        );
        // No rollback ran, so no rollback row.
        assert!(!table.contains("| rollback |"), "{table}");
    }

    #[test]
    fn bench_rehearse_states_what_the_step_boundaries_cost_against_the_wall_time() {
        let with_boundaries = |wall_s: u64, checked_ms: u64| {
            let mut j = run(wall_s, 0, 0);
            j.scenarios[0].wall_ms = wall_s * 1000;
            for after in ["phase2.step1", "phase2.step2"] {
                j.scenarios[0]
                    .boundaries
                    .push(rehearsal::journal::BoundaryRecord {
                        after: after.into(),
                        before: None,
                        at_ms: 0,
                        lasted_ms: checked_ms,
                        checked_ms,
                        checks: Vec::new(),
                        flows: Vec::new(),
                        declared: None,
                    });
            }
            j
        };
        let table =
            super::boundary_cost(&[with_boundaries(110, 5_000), with_boundaries(120, 6_000)]);
        assert_eq!(
            table,
            "step boundaries: 2 judged per run; their checks and flows took 11.0 s of the scenarios' 115.0 s (median), 10.6 % more than without them; target <= 15 %\n\n"
        );
    }
}
