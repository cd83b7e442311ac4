//! Benchmarks of what must stay linear or cheap: the runbook's parsing and analysis over
//! generated runbooks of 10 KB to 10 MB, the redactor over a 100 MB log stream, and the check
//! runner's own overhead (checks that do nothing, on one node and on a fleet of 50).
//! `cargo bench -p harness`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use futures::FutureExt;
use harness::checks::{self, Check, Node, Target, Verdict};
use harness::redact::Redactor;
use std::hint::black_box;
use std::time::Duration;

fn runbook(c: &mut Criterion) {
    let mut group = c.benchmark_group("runbook/parse+analyse+coverage");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for bytes in [10_000usize, 100_000, 1_000_000, 10_000_000] {
        let text = harness::runbook::synthetic(bytes);
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(BenchmarkId::from_parameter(bytes), &text, |b, text| {
            b.iter(|| {
                let runbook = harness::runbook::parse("bench.md", black_box(text)).unwrap();
                let findings = harness::runbook::findings::analyse(&runbook);
                let coverage = harness::runbook::coverage::coverage(&runbook, &findings, &[], &[]);
                let lock = harness::runbook::lock::Lock::of(&runbook, &[]);
                black_box((findings.len(), coverage.steps.len(), lock.steps.len()))
            })
        });
    }
    group.finish();
}

/// A service's log as the harness reads it: 100 MB of lines, a few holding a secret.
fn log_stream(secrets: &[(String, String)], bytes: usize) -> Vec<String> {
    let mut lines = Vec::with_capacity(bytes / 100);
    let mut total = 0;
    let mut i = 0usize;
    while total < bytes {
        let line = if i.is_multiple_of(1000) {
            let (_, value) = &secrets[i / 1000 % secrets.len()];
            format!("2026-12-01T10:00:00Z ERROR auth failed for key {value} (request {i})")
        } else {
            format!("2026-12-01T10:00:00Z INFO gateway: POST /telegram/webhook 200 update_id={i} in 3 ms")
        };
        total += line.len() + 1;
        lines.push(line);
        i += 1;
    }
    lines
}

fn redactor(c: &mut Criterion) {
    let secrets = harness::replica_root::NodeSecrets::generate();
    let redactor = Redactor::new();
    secrets.register(&redactor);
    let values: Vec<(String, String)> = (0..20)
        .map(|i| {
            (
                format!("S{i}"),
                format!("secret-value-{i}-{}", "x".repeat(24)),
            )
        })
        .collect();
    for (name, value) in &values {
        redactor.add(name, value);
    }
    let lines = log_stream(&values, 100 << 20);
    let bytes: u64 = lines.iter().map(|l| l.len() as u64 + 1).sum();
    let mut group = c.benchmark_group("redact");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function("100MB log stream, line by line", |b| {
        b.iter(|| {
            let mut masked = 0usize;
            for line in &lines {
                masked += redactor.redact(black_box(line)).len();
            }
            masked
        })
    });
    group.finish();
}

fn check_runner(c: &mut Criterion) {
    let example = std::fs::read_to_string(harness::runbook::workspace_path(
        "fixtures/targets/node1.toml",
    ))
    .unwrap();
    let target = Target::parse("node1.toml", &example).unwrap();
    let noop: Vec<Check> = (0..55)
        .map(|i| {
            Check::read_only(format!("noop.{i}"), "does nothing", "node", vec![], |_| {
                async { Verdict::pass("nothing to see") }.boxed()
            })
        })
        .collect();
    let selected: Vec<&Check> = noop.iter().collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("checks/runner overhead, 55 checks that do nothing");
    for nodes in [1usize, 50] {
        let fleet: Vec<Node> = (0..nodes)
            .map(|_| Node::new(target.clone(), None, Redactor::new()))
            .collect();
        group.bench_with_input(BenchmarkId::new("nodes", nodes), &fleet, |b, fleet| {
            b.iter(|| runtime.block_on(checks::verify(fleet, &selected)))
        });
    }
    group.finish();
}

criterion_group!(benches, runbook, redactor, check_runner);
criterion_main!(benches);
