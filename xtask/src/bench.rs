//! `cargo xtask bench up`: measures a replica's start to all-ready (median of N runs), its
//! removal time and its idle memory (docker stats). Numbers, not assertions.

use std::time::{Duration, Instant};

use bollard::query_parameters::StatsOptionsBuilder;
use futures::StreamExt;
use harness::exit_codes;
use harness::progress::Progress;
use harness::{Service, Stack, StackOptions};

pub async fn run(args: &[String]) -> anyhow::Result<i32> {
    match args.first().map(String::as_str) {
        Some("up") => bench_up(&args[1..]).await,
        _ => {
            eprintln!("usage: cargo xtask bench up [--runs N]");
            Ok(exit_codes::USAGE)
        }
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

async fn bench_up(args: &[String]) -> anyhow::Result<i32> {
    let runs: usize = crate::flag_value(args, "--runs")
        .map(|r| r.parse())
        .transpose()
        .map_err(|_| anyhow::anyhow!("--runs takes a whole number"))?
        .unwrap_or(5);
    let progress = Progress::stderr();
    // Warm the caches first so that every timed run measures only the start.
    let docker = harness::docker::connect().await?;
    harness::images::ensure_base_image(&docker, &progress).await?;
    harness::binary::ensure_replica_binary(&progress).await?;
    let mut ups = Vec::new();
    let mut downs = Vec::new();
    let mut memory = None;
    for i in 0..runs {
        let started = Instant::now();
        let stack = Stack::start(StackOptions::default()).await?;
        let up = started.elapsed().as_secs_f64();
        ups.push(up);
        if i + 1 == runs {
            // Let the replica settle, then read its idle memory.
            tokio::time::sleep(Duration::from_secs(5)).await;
            memory = Some(idle_memory(&stack).await?);
        }
        let started = Instant::now();
        stack.down().await?;
        let down = started.elapsed().as_secs_f64();
        downs.push(down);
        progress.say(&format!(
            "run {}/{runs}: up {up:.2}s, down {down:.2}s",
            i + 1
        ));
    }
    println!("bench up ({runs} runs, images cached)");
    println!(
        "  up to all-ready: median {:.2}s  min {:.2}s  max {:.2}s",
        median(ups.clone()),
        ups.iter().cloned().fold(f64::INFINITY, f64::min),
        ups.iter().cloned().fold(0.0, f64::max)
    );
    println!("  down:            median {:.2}s", median(downs));
    if let Some((total, per)) = memory {
        println!(
            "  idle memory:     {:.0} MiB total (docker stats, usage minus page cache)",
            total as f64 / 1048576.0
        );
        for (service, bytes) in per {
            println!(
                "    {:<28} {:>6.1} MiB",
                service.production_name(),
                bytes as f64 / 1048576.0
            );
        }
    }
    Ok(exit_codes::OK)
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
