//! `cargo xtask rehearse`: every rehearsal of the runbook on fresh replicas under live traffic,
//! the journal and the reports under `target/rehearsal/`, and an exit code that says whether
//! every scenario met its expected outcome.

use futures::StreamExt;
use harness::exit_codes;
use harness::progress::Progress;
use harness::redact::Redactor;
use harness::rehearsal::engine::Expected;
use harness::rehearsal::{engine, journal, render, Journal, Options, Scenario};
use harness::runbook::{workspace_path, Runbook, DEFAULT_RUNBOOK};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

const USAGE: &str = "usage: cargo xtask rehearse [--runbook FILE] [--only GLOB]... [--list]
       [--random N [--seed S]] [--rate N] [--time-scale F] [--parallel N] [--out DIR]
  --runbook FILE   rehearse this runbook (default fixtures/runbook/SECRETS_ROTATION_RUNBOOK.md)
  --only GLOB      scenarios by id glob (`phase3/*`, `rollback/*`, `faults/*` the fault matrix,
                   `*` everything); default: the runbook as written (phases, rotation, rollbacks)
  --random N       add N random fault schedules (only these when no --only is given), held to
                   the invariants: nothing accepted lost, the steady state after the rollback
  --seed S         the seed random schedules are drawn from (default: the time); a journal's
                   `seed` replays its schedules
  --rate N         Telegram updates per second through the gateway (default 100)
  --time-scale F   runbook minutes to rehearsal time (default 0.02: a 10-minute phase in 12 s)
  --parallel N     scenarios busy at once: starting, under traffic, checking (default: the
                   cores); as many more may wait out Telegram's retries meanwhile
  --out DIR        where the journal and reports go (default target/rehearsal)
exit codes: 0 every scenario met its expected outcome, 1 some did not, 2 usage or a runbook that
            does not parse (nothing started), 3 no Docker engine, 4 image or binary build failed,
            130 interrupted (its replicas removed)
";

pub async fn run(args: &[String]) -> anyhow::Result<i32> {
    let mut runbook_path = workspace_path(DEFAULT_RUNBOOK);
    let mut only: Vec<String> = Vec::new();
    let mut list = false;
    let mut options = Options::default();
    let mut random = 0usize;
    let mut seed: Option<u64> = None;
    let mut out = workspace_path("target/rehearsal");
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned();
        let need =
            |v: Option<String>| v.ok_or_else(|| anyhow::anyhow!("{} needs a value", args[i]));
        match args[i].as_str() {
            "--runbook" => runbook_path = PathBuf::from(need(value)?),
            "--only" => only.push(need(value)?),
            "--out" => out = PathBuf::from(need(value)?),
            "--rate" => {
                options.probe.rate = need(value)?
                    .parse()
                    .map_err(|_| anyhow::anyhow!("--rate takes a number"))?
            }
            "--time-scale" => {
                options.time_scale = need(value)?
                    .parse()
                    .map_err(|_| anyhow::anyhow!("--time-scale takes a number"))?
            }
            "--random" => {
                random = need(value)?
                    .parse()
                    .map_err(|_| anyhow::anyhow!("--random takes a number of schedules"))?
            }
            "--seed" => {
                seed = Some(
                    need(value)?
                        .parse()
                        .map_err(|_| anyhow::anyhow!("--seed takes a number"))?,
                )
            }
            "--parallel" => {
                options.busy = harness::rehearsal::busy::BusySlots::new(
                    need(value)?
                        .parse()
                        .map_err(|_| anyhow::anyhow!("--parallel takes a number"))?,
                );
            }
            "--list" => {
                list = true;
                i += 1;
                continue;
            }
            other => {
                eprintln!("error: unknown option `{other}`\n\n{USAGE}");
                return Ok(exit_codes::USAGE);
            }
        }
        i += 2;
    }
    let runbook = match Runbook::load(&runbook_path) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}\nnothing was started");
            return Ok(exit_codes::USAGE);
        }
    };
    // Random schedules alone when no `--only` asks for more.
    let mut chosen = if only.is_empty() && random > 0 {
        Vec::new()
    } else {
        chosen_by(&only)
    };
    if random > 0 {
        let seed = seed.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0)
        });
        for (case, tree) in scenarios::random::schedules(seed, random)
            .iter()
            .enumerate()
        {
            use proptest::strategy::ValueTree;
            chosen.push(tree.current().scenario(seed, case));
        }
    }
    if list {
        // Everything there is to choose from, when nothing was chosen.
        if only.is_empty() {
            chosen.extend(scenarios::fault_rehearsals());
        }
        for s in &chosen {
            println!(
                "{:<24} expected {:<8} phases {:?}  {}",
                s.id,
                s.expected.to_string(),
                s.phases,
                s.title
            );
        }
        return Ok(exit_codes::OK);
    }
    if chosen.is_empty() {
        eprintln!(
            "error: no scenario matches {}; see `cargo xtask rehearse --list`",
            only.join(", ")
        );
        return Ok(exit_codes::USAGE);
    }
    let progress = Progress::stderr();
    let redactor = Redactor::new();
    let Some(journal) = rehearse_all(&chosen, &runbook, &options, &progress, &redactor).await?
    else {
        return Ok(exit_codes::INTERRUPTED);
    };
    write_reports(&journal, &out, &redactor)?;
    print!("{}", render::summary(&journal, &redactor));
    println!(
        "reports: {}/{{journal.json,report.html,report.md,junit.xml}}",
        out.display()
    );
    if !journal.leftovers.is_empty() {
        eprintln!("error: left behind: {}", journal.leftovers.join(", "));
    }
    Ok(if journal.passed() {
        exit_codes::OK
    } else {
        exit_codes::FAILURES
    })
}

/// The scenarios whose id matches one of the globs; with none, the runbook as written (its
/// phases, the whole rotation, the rollback after each). The fault matrix is `faults/*`,
/// everything `*`.
pub fn chosen_by(only: &[String]) -> Vec<Scenario> {
    if only.is_empty() {
        return scenarios::rehearsals();
    }
    scenarios::rehearsals()
        .into_iter()
        .chain(scenarios::fault_rehearsals())
        .filter(|s| only.iter().any(|g| harness::checks::glob_match(g, &s.id)))
        .collect()
}

/// Builds the image and binary if needed, then runs `chosen` on fresh replicas (as many busy at
/// once as `options.busy` allows) and assembles the journal, with what of their replicas
/// remained. `None` when Ctrl-C stopped it: this process's replicas are removed first.
pub async fn rehearse_all(
    chosen: &[Scenario],
    runbook: &Runbook,
    options: &Options,
    progress: &Progress,
    redactor: &Redactor,
) -> anyhow::Result<Option<Journal>> {
    let docker = harness::docker::connect().await?;
    harness::images::ensure_image_and_binary(&docker, progress).await?;
    progress.say(&format!(
        "rehearsing {} scenario(s) of {} ({} busy at a time, {} updates/s, time scale {})",
        chosen.len(),
        runbook.file,
        options.busy.count(),
        options.probe.rate,
        options.time_scale
    ));
    let started = SystemTime::now();
    let clock = Instant::now();
    // The longest first, so that none is left running alone at the end: a scenario expected to
    // break waits out Telegram's retry window twice (after the steps and after the rollback).
    let mut order: Vec<usize> = (0..chosen.len()).collect();
    order.sort_by_key(|&i| chosen[i].expected != Expected::Breaks);
    let all = futures::stream::iter(order)
        .map(|i| async move {
            let record = engine::run(&chosen[i], runbook, options, progress, redactor).await;
            (i, record)
        })
        // A slot is free as soon as its scenario ends (`buffered` would hold it until every
        // scenario listed before it had ended too). Twice as many run as may be busy: the
        // others wait out retries without a busy slot (see `rehearsal::busy`). Measured on 2
        // cores: three times as many was no faster (the machine is saturated) and pushed a
        // breaking scenario past its deadline.
        .buffer_unordered(2 * options.busy.count())
        .collect::<Vec<_>>();
    let records = tokio::select! {
        mut records = all => {
            records.sort_by_key(|(i, _)| *i);
            records
                .into_iter()
                .map(|(_, mut r)| {
                    // A random schedule is held to the invariants, not to an outcome.
                    if r.seed.is_some() {
                        let broken = scenarios::random::violations(&r);
                        r.met = broken.is_empty();
                        if !broken.is_empty() {
                            r.error.get_or_insert(broken.join("; "));
                        }
                    }
                    r
                })
                .collect::<Vec<_>>()
        }
        _ = tokio::signal::ctrl_c() => {
            // Nothing the rehearsal started outlives it: remove this process's stacks now.
            progress.say("interrupted: removing this run's replicas");
            for stack in harness::docker::list_stacks(&docker).await? {
                if stack.owner_pid == std::process::id() {
                    harness::docker::remove_stack(&docker, &stack).await?;
                }
            }
            return Ok(None);
        }
    };
    let stacks: Vec<String> = records.iter().filter_map(|r| r.stack.clone()).collect();
    let mut journal = journal::assemble(
        runbook,
        started,
        clock.elapsed().as_millis() as u64,
        options.time_scale,
        records,
    );
    // Nothing of ours may remain: containers, networks, replica roots, operator directories.
    journal.leftovers = harness::docker::leftovers_of(&docker, &stacks).await?;
    Ok(Some(journal))
}

/// The journal and the reports rendered from it, into `out`, each through the run's redactor.
pub fn write_reports(journal: &Journal, out: &Path, redactor: &Redactor) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    let json = redactor.redact(&serde_json::to_string_pretty(journal)?);
    let files = [
        ("journal.json", json),
        ("junit.xml", render::junit(journal, redactor)),
        ("report.md", render::markdown(journal, redactor)),
        ("report.html", render::html(journal, redactor)),
    ];
    for (name, text) in &files {
        std::fs::write(out.join(name), text)?;
    }
    Ok(())
}
