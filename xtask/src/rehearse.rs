//! `cargo xtask rehearse`: every rehearsal of the runbook on fresh replicas under live traffic,
//! the journal and the reports under `target/rehearsal/`, and an exit code that says whether
//! every scenario met its expected outcome.

use harness::profile::NodeProfile;
use harness::{errln, out, outln};

use futures::StreamExt;
use harness::exit_codes;
use harness::progress::Progress;
use harness::redact::Redactor;
use harness::runbook::{workspace_path, Runbook, DEFAULT_RUNBOOK};
use harness::signals::{Interrupted, Signals};
use rehearsal::{engine, journal, render, Journal, Options, Scenario};
use rehearsal::{Expected, Outcome};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

/// `cargo xtask rehearse`: rehearse the runbook on fresh replicas under live traffic.
#[derive(Debug, clap::Args)]
#[command(
    after_help = harness::exit_codes::help(Some("rehearse"))
)]
pub struct Args {
    /// rehearse this runbook (default fixtures/runbook/SECRETS_ROTATION_RUNBOOK.md)
    #[arg(long, value_name = "FILE")]
    runbook: Option<PathBuf>,
    /// scenarios by id glob (`phase3/*`, `rollback/*`, `faults/*` the fault matrix, `*`
    /// everything); default: the runbook as written (phases, rotation, rollbacks)
    #[arg(long, value_name = "GLOB")]
    only: Vec<String>,
    /// list the scenarios (those chosen, or every one) and exit
    #[arg(long)]
    list: bool,
    /// add N random fault schedules (only these when no --only is given), held to the
    /// invariants: nothing accepted lost, the steady state after the rollback
    #[arg(long, value_name = "N", default_value_t = 0,
          value_parser = clap::value_parser!(u64).range(0..=10_000))]
    random: u64,
    /// the seed random schedules are drawn from (default: the time); a journal's `seed`
    /// replays its schedules
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// Telegram updates per second through the gateway (1 to 2000)
    #[arg(long, value_name = "N", default_value_t = 100.0, value_parser = rate)]
    rate: f64,
    /// the connections Telegram delivers updates over at most (setWebhook's max_connections,
    /// 1 to 100); what it cannot deliver waits in its queue
    #[arg(long, value_name = "N", default_value_t = 40,
          value_parser = clap::value_parser!(u64).range(1..=100))]
    telegram_max_connections: u64,
    /// runbook minutes to rehearsal time (0.001 to 10; 0.02 runs a 10-minute phase in 12 s)
    #[arg(long, value_name = "F", default_value_t = 0.02, value_parser = time_scale)]
    time_scale: f64,
    /// a real-time pause at every step boundary, in seconds (0 to 600, default 0), as a slow
    /// operator takes: the node under traffic while it waits there; every boundary is judged
    /// the same with or without it; each step is said as it begins
    #[arg(long, value_name = "SECONDS", default_value_t = 0.0, value_parser = operator_pace)]
    operator_pace: f64,
    /// scenarios busy at once: starting, under traffic, checking (default: the cores); as many
    /// more may wait out Telegram's retries meanwhile
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=64))]
    parallel: Option<u64>,
    /// where the journal and reports go (default target/rehearsal)
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// rehearse only shard K of N of the chosen scenarios (balanced by each one's measured
    /// cost, the same split every time); `cargo xtask report merge` joins the shards' journals
    #[arg(long, value_name = "K/N")]
    shard: Option<rehearsal::shard::Shard>,
    /// leave the replica running after the scenario (choose exactly one), detached as `up`
    /// leaves one, with the secrets from before its steps beside it: `cargo xtask verify
    /// --replica` checks it as the node after the rotation; `cargo xtask down` removes it
    #[arg(long)]
    keep: bool,
    /// rehearse the chosen scenarios that still apply to this runbook and skip, listing them
    /// in the reports, those whose phases, fault steps or edited texts it no longer has
    /// (without it such a run does not start)
    #[arg(long)]
    skip_inapplicable: bool,
    /// how the node's services read their secrets: a shipped profile (`default`,
    /// `database-url`, `interpolated`) or a profile file (`cargo xtask node profile` derives
    /// one from a compose file); the replica is wired that way (docs/node-profile.md)
    #[arg(long, value_name = "FILE|NAME")]
    node_profile: Option<String>,
}

/// A finite number in `range`, for flags whose extremes would overflow a `Duration`.
pub fn number_in(text: &str, range: std::ops::RangeInclusive<f64>) -> Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a number"))?;
    if !value.is_finite() || !range.contains(&value) {
        return Err(format!(
            "{} is out of range: from {} to {}",
            text.trim(),
            range.start(),
            range.end()
        ));
    }
    Ok(value)
}

pub fn rate(text: &str) -> Result<f64, String> {
    number_in(text, 1.0..=2000.0)
}

fn time_scale(text: &str) -> Result<f64, String> {
    number_in(text, 0.001..=10.0)
}

fn operator_pace(text: &str) -> Result<f64, String> {
    number_in(text, 0.0..=600.0)
}

pub async fn run(args: Args) -> anyhow::Result<i32> {
    let runbook_path = args
        .runbook
        .unwrap_or_else(|| workspace_path(DEFAULT_RUNBOOK));
    let only = args.only;
    let list = args.list;
    let random = args.random as usize;
    let seed = args.seed;
    let out_given = args.out.is_some();
    let out = args
        .out
        .unwrap_or_else(|| workspace_path("target/rehearsal"));
    let mut options = Options::default();
    options.probe.rate = args.rate;
    options.probe.telegram.max_connections = args.telegram_max_connections as usize;
    options.time_scale = args.time_scale;
    options.operator_pace = std::time::Duration::from_secs_f64(args.operator_pace);
    if let Some(n) = args.parallel {
        options.busy = rehearsal::busy::BusySlots::new(n as usize);
    }
    // Where the reports go is checked before anything starts, not after an hour of scenarios.
    // The default (the workspace's target/rehearsal) is made whole; a path given is made one
    // level deep at most, so a typo is an error, not a new tree.
    let writable = if out_given {
        harness::output::prepare_directory(&out).map_err(|e| e.reason)
    } else {
        std::fs::create_dir_all(&out)
            .map_err(|e| harness::input::io_reason(&e))
            .and_then(|()| {
                harness::output::check_writable(&out.join("journal.json")).map_err(|e| e.reason)
            })
    };
    if let Err(reason) = writable {
        errln!(
            "error: --out {}: {reason}\nnothing was started",
            out.display()
        );
        return Ok(exit_codes::USAGE);
    }
    let runbook = match Runbook::load(&runbook_path) {
        Ok(r) => r,
        Err(e) => {
            errln!("error: {e}\nnothing was started");
            return Ok(exit_codes::USAGE);
        }
    };
    let profile = match node_profile(args.node_profile.as_deref()) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    // Random schedules alone when no `--only` asks for more.
    let mut chosen = if only.is_empty() && random > 0 {
        Vec::new()
    } else {
        chosen_by(&only, &runbook)
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
            let drawn = tree.current().scenario(seed, case);
            let id = drawn.id.clone();
            match scenarios::random::bound_to(&runbook, vec![drawn]).pop() {
                Some(bound) => chosen.push(bound),
                None => {
                    errln!(
                        "error: {id}: random schedules are drawn over the phases of the runbook as written, which {} does not hold as they were measured\nnothing was started",
                        runbook.file
                    );
                    return Ok(exit_codes::USAGE);
                }
            }
        }
    }
    let selection: Vec<String> = chosen.iter().map(|s| s.id.clone()).collect();
    if let Some(shard) = args.shard {
        let costs: Vec<u64> = chosen
            .iter()
            .map(|s| scenarios::costs::cost_of(&s.id))
            .collect();
        let shard_of = rehearsal::shard::assign(&costs, shard.count);
        chosen = chosen
            .into_iter()
            .zip(shard_of)
            .filter(|(_, k)| *k + 1 == shard.index)
            .map(|(s, _)| s)
            .collect();
    }
    // Hand-written scenarios asked for by `--only` that were measured on another text of this
    // runbook: refused by name, or skipped and listed with `--skip-inapplicable`.
    let unbound: Vec<(String, String)> = scenarios::not_bound(&runbook)
        .into_iter()
        .filter(|(id, _)| only.iter().any(|g| harness::checks::glob_match(g, id)))
        .collect();
    let mut skipped_unbound = Vec::new();
    if !unbound.is_empty() && !list {
        if !args.skip_inapplicable {
            for (_, why) in &unbound {
                errln!("error: {}: {why}", runbook.file);
            }
            say_none_started(unbound.len(), &runbook.file);
            return Ok(exit_codes::USAGE);
        }
        for (id, why) in &unbound {
            errln!("skipped: {}: {why}", runbook.file);
            skipped_unbound.push(rehearsal::journal::Skipped {
                scenario: id.clone(),
                why: why.clone(),
            });
        }
        if chosen.is_empty() {
            errln!(
                "error: every chosen scenario no longer applies to {}; nothing was started",
                runbook.file
            );
            return Ok(exit_codes::USAGE);
        }
    }
    if selection.is_empty() && !only.is_empty() {
        errln!(
            "error: no scenario matches {}; see `cargo xtask rehearse --list`",
            only.join(", ")
        );
        return Ok(exit_codes::USAGE);
    }
    if list {
        // Everything there is to choose from, when nothing was chosen.
        if only.is_empty() && args.shard.is_none() {
            let ids: Vec<String> = chosen.iter().map(|s| s.id.clone()).collect();
            chosen.extend(
                scenarios::rehearsals_for(&runbook)
                    .into_iter()
                    .filter(|s| !ids.contains(&s.id)),
            );
        }
        for s in &chosen {
            let expected = match &s.not_rehearsable {
                Some(_) => "(not rehearsable)".to_string(),
                None => s.expected.to_string(),
            };
            outln!(
                "{:<24} expected {:<8} phases {:?}  {}",
                s.id,
                expected,
                s.phases,
                s.title
            );
        }
        for s in chosen.iter().filter(|s| s.not_rehearsable.is_some()) {
            errln!(
                "not rehearsable: {}: {}",
                s.id,
                s.not_rehearsable.as_deref().unwrap_or_default()
            );
        }
        let unbound = scenarios::not_bound(&runbook);
        if let Some((_, why)) = unbound.first() {
            errln!(
                "{} hand-written scenario(s) measured on another text of this runbook do not apply to it (e.g. {why})",
                unbound.len(),
            );
        }
        return Ok(exit_codes::OK);
    }
    if chosen.is_empty() && args.shard.is_some() && !selection.is_empty() {
        // More shards than scenarios: this one has none, and says so in its journal.
        errln!(
            "shard {} has no scenario of the {} chosen",
            args.shard.map_or(0, |s| s.index),
            selection.len()
        );
    } else if chosen.is_empty() {
        errln!(
            "error: no scenario matches {}; see `cargo xtask rehearse --list`",
            only.join(", ")
        );
        return Ok(exit_codes::USAGE);
    }
    if args.keep {
        if chosen.len() != 1 {
            errln!(
                "error: --keep keeps one replica: choose exactly one scenario with --only ({} chosen)\nnothing was started",
                chosen.len()
            );
            return Ok(exit_codes::USAGE);
        }
        options.keep = Some(harness::stack::new_stack_id());
    }
    let skipped = if args.skip_inapplicable {
        let skipped = skip_inapplicable(&mut chosen, &runbook);
        if chosen.is_empty() {
            errln!(
                "error: every chosen scenario no longer applies to {}; nothing was started",
                runbook.file
            );
            return Ok(exit_codes::USAGE);
        }
        skipped
    } else if let Some(code) = refuse_inapplicable(&chosen, &runbook) {
        return Ok(code);
    } else {
        Vec::new()
    };
    let progress = Progress::stderr();
    if let Some(p) = &profile {
        progress.say(&format!("node profile: {}", p.description));
        for s in &mut chosen {
            s.replica.profile = p.clone();
        }
    }
    let redactor = Redactor::new();
    let chosen = std::sync::Arc::new(chosen);
    let mut journal = match rehearse_all(&chosen, &runbook, &options, &progress, &redactor).await? {
        Ok(journal) => journal,
        Err(signal) => return Ok(signal.exit_code()),
    };
    journal.skipped = skipped_unbound.into_iter().chain(skipped).collect();
    journal.node_profile = profile.map(|p| p.description);
    journal.shard = args.shard.map(|shard| rehearsal::journal::ShardInfo {
        index: shard.index,
        count: shard.count,
        selection,
    });
    write_reports(&journal, &out, &redactor)?;
    out!("{}", render::summary(&journal, &redactor));
    outln!(
        "reports: {}/{{journal.json,report.html,report.md,junit.xml}}",
        out.display()
    );
    if !journal.leftovers.is_empty() {
        errln!("error: left behind: {}", journal.leftovers.join(", "));
    }
    if !journal.engine_leftovers.is_empty() {
        errln!(
            "warning: the Docker engine kept {} with a stale endpoint although nothing was attached (moby/moby#17217); only a daemon restart removes it",
            journal.engine_leftovers.join(", ")
        );
    }
    if let Some(hung) = journal
        .scenarios
        .iter()
        .find_map(|s| s.engine_unresponsive.as_ref())
    {
        let not_run = journal
            .scenarios
            .iter()
            .filter(|s| s.not_run.is_some())
            .count();
        errln!("error: {hung} ({not_run} scenario(s) not run)");
        return Ok(exit_codes::ENGINE_UNRESPONSIVE);
    }
    Ok(if journal.passed() {
        exit_codes::OK
    } else if journal.only_inconclusive() {
        errln!(
            "inconclusive: the harness was the bottleneck, not the node; rerun on a quieter \
             machine or with --parallel 1"
        );
        exit_codes::INCONCLUSIVE
    } else {
        exit_codes::FAILURES
    })
}

/// The node profile `--node-profile` names (`None` without one or for the default wiring),
/// or the exit code after saying why it cannot be used; nothing is started either way.
pub fn node_profile(arg: Option<&str>) -> Result<Option<NodeProfile>, i32> {
    let Some(arg) = arg else { return Ok(None) };
    let profile = NodeProfile::named_or_file(arg).map_err(|e| {
        errln!("error: --node-profile {e}\nnothing was started");
        exit_codes::USAGE
    })?;
    let limits = profile.replica_limits();
    if !limits.is_empty() {
        errln!(
            "error: --node-profile {arg}: the replica cannot run it: {}\nnothing was started",
            limits.join("; ")
        );
        return Err(exit_codes::USAGE);
    }
    Ok((!profile.is_replica_default()).then_some(profile))
}

/// Every chosen scenario whose phases, fault steps or edited texts the runbook no longer has,
/// said one a line with the runbook line nearest to what it expected: `Some(USAGE)` then, and
/// nothing is started. An edited runbook is never rehearsed as something else without a word.
pub fn refuse_inapplicable(chosen: &[Scenario], runbook: &Runbook) -> Option<i32> {
    let found: Vec<_> = chosen
        .iter()
        .flat_map(|s| rehearsal::applies::not_applicable(s, runbook))
        .collect();
    if found.is_empty() {
        return None;
    }
    for n in &found {
        errln!("error: {}: {n}", runbook.file);
    }
    let scenarios: std::collections::BTreeSet<_> = found.iter().map(|n| &n.scenario).collect();
    say_none_started(scenarios.len(), &runbook.file);
    Some(exit_codes::USAGE)
}

/// The last line of a refusal: how many scenarios no longer apply, and what to do.
fn say_none_started(count: usize, file: &str) {
    errln!(
        "{count} scenario(s) no longer apply to {file}; nothing was started (`cargo xtask runbook check` lists them; `--skip-inapplicable` rehearses the rest and lists them in the reports)"
    );
}

/// Removes from `chosen` the scenarios that no longer apply to `runbook`, saying each on
/// stderr; returns them, with why, for the journal.
pub fn skip_inapplicable(
    chosen: &mut Vec<Scenario>,
    runbook: &Runbook,
) -> Vec<rehearsal::journal::Skipped> {
    let mut skipped: Vec<rehearsal::journal::Skipped> = Vec::new();
    chosen.retain(|s| {
        let why: Vec<String> = rehearsal::applies::not_applicable(s, runbook)
            .iter()
            .map(|n| n.to_string())
            .collect();
        if why.is_empty() {
            return true;
        }
        for line in &why {
            errln!("skipped: {}: {line}", runbook.file);
        }
        skipped.push(rehearsal::journal::Skipped {
            scenario: s.id.clone(),
            why: why.join("; "),
        });
        false
    });
    skipped
}

/// The scenarios of the runbook in `runbook_file` whose id matches one of the globs; with none,
/// its default set: for the runbook as written its phases, the whole rotation and the rollback
/// after each (the fault matrix is `faults/*`, everything `*`); for a v2 runbook (`.v2.` in its
/// name) the `v2/*` set without its faults (`v2/faults/*`).
pub fn chosen_by(only: &[String], runbook: &Runbook) -> Vec<Scenario> {
    if only.is_empty() {
        return scenarios::default_rehearsals_for(runbook);
    }
    scenarios::rehearsals_for(runbook)
        .into_iter()
        .filter(|s| only.iter().any(|g| harness::checks::glob_match(g, &s.id)))
        .collect()
}

/// Builds the image and binary if needed, then runs `chosen` on fresh replicas (as many busy at
/// once as `options.busy` allows) and assembles the journal, with what of their replicas
/// remained. `Err(signal)` when SIGINT, SIGTERM or SIGHUP ended it: this process's replicas,
/// their roots and operator directories are removed first.
pub async fn rehearse_all(
    chosen: &std::sync::Arc<Vec<Scenario>>,
    runbook: &Runbook,
    options: &Options,
    progress: &Progress,
    redactor: &Redactor,
) -> anyhow::Result<Result<Journal, Interrupted>> {
    let mut signals = Signals::install()?;
    let docker = harness::docker::connect().await?;
    let run = run_all(&docker, chosen, runbook, options, progress, redactor);
    tokio::select! {
        journal = run => journal.map(Ok),
        signal = signals.recv() => {
            // The scenarios' futures are dropped by now: their stacks removed themselves on
            // drop. Whatever of this process's is still listed goes too.
            progress.say(&format!("{}: removing this run's replicas", signal.name()));
            for stack in harness::docker::list_stacks(&docker).await? {
                // The one `--keep` was to leave is this run's too until the run ends.
                if stack.owner_pid == std::process::id() || options.keep.as_ref() == Some(&stack.id) {
                    match harness::docker::remove_stack(&docker, &stack).await {
                        Ok(()) => {}
                        // The engine's defect, not this run's: said, and the signal still decides
                        // the exit code, as the rehearsal's own teardown records it.
                        Err(harness::HarnessError::StaleNetwork { network }) => {
                            progress.say(&format!(
                                "warning: {}",
                                harness::docker::stale_network_warning(&network)
                            ))
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
            }
            Ok(Err(signal))
        }
    }
}

async fn run_all(
    docker: &bollard::Docker,
    chosen: &std::sync::Arc<Vec<Scenario>>,
    runbook: &Runbook,
    options: &Options,
    progress: &Progress,
    redactor: &Redactor,
) -> anyhow::Result<Journal> {
    let mut needs = harness::images::replica_needs(docker).await;
    needs.extend(harness::host_tools::for_programs(&runbook.host_programs()));
    harness::host_tools::provide(&needs, progress).await?;
    harness::images::ensure_image_and_binary(docker, progress).await?;
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
    // Set when the engine stops answering: the scenarios not started yet are not run.
    let engine_down = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Each scenario is a task of its own, so that scenarios (and their probes) run on every
    // core rather than take turns on one; dropping this future (a signal) aborts them, and
    // their replicas are removed as their stacks drop.
    let shared = std::sync::Arc::new((
        runbook.clone(),
        options.clone(),
        progress.clone(),
        redactor.clone(),
    ));
    let mut records = futures::stream::iter(order)
        .map(|i| {
            let (scenarios, shared, engine_down) =
                (chosen.clone(), shared.clone(), engine_down.clone());
            let task = AbortOnDrop(tokio::spawn(async move {
                let scenario = &scenarios[i];
                let (runbook, options, progress, redactor) = &*shared;
                if engine_down.load(std::sync::atomic::Ordering::SeqCst) {
                    let mut record = unrun(scenario);
                    record.not_run = Some("the Docker engine stopped answering".into());
                    return record;
                }
                let record = engine::run(scenario, runbook, options, progress, redactor).await;
                if let Some(hung) = &record.engine_unresponsive {
                    if !engine_down.swap(true, std::sync::atomic::Ordering::SeqCst) {
                        progress.say(&format!("error: {hung}"));
                    }
                }
                record
            }));
            let chosen = chosen.clone();
            async move {
                let record = match task.join().await {
                    Ok(record) => record,
                    Err(e) => {
                        let mut record = unrun(&chosen[i]);
                        record.error = Some(format!("the scenario's task failed: {e}"));
                        record
                    }
                };
                (i, record)
            }
        })
        // A slot is free as soon as its scenario ends (`buffered` would hold it until every
        // scenario listed before it had ended too). Twice as many run as may be busy: the
        // others wait out retries without a busy slot (see `rehearsal::busy`). Measured on 2
        // cores: three times as many was no faster (the machine is saturated) and pushed a
        // breaking scenario past its deadline.
        .buffer_unordered(2 * options.busy.count())
        .collect::<Vec<_>>()
        .await;
    records.sort_by_key(|(i, _)| *i);
    // A scenario the machine, the harness or the engine left `inconclusive` says nothing about
    // the runbook: it is rehearsed once more on a fresh replica, alone on the machine (no other
    // scenario busy beside it), and that outcome is the one reported.
    let mut stacks: Vec<String> = records
        .iter()
        .filter_map(|(_, r)| r.stack.clone())
        .collect();
    let alone = Options {
        busy: options.busy.alone(),
        ..options.clone()
    };
    for (i, record) in records.iter_mut() {
        let scenario = &chosen[*i];
        if record.actual != Some(Outcome::Inconclusive)
            || record.seed.is_some()
            || engine_down.load(std::sync::atomic::Ordering::SeqCst)
        {
            continue;
        }
        progress.say(&format!(
            "{}: inconclusive ({}); rehearsing it once more, alone on the machine",
            scenario.id,
            record
                .inconclusive
                .as_deref()
                .unwrap_or("no reason recorded")
        ));
        if let Some(kept) = &options.keep {
            // The replica of the first attempt goes; the second one's is kept instead.
            harness::stack::remove_by_id(docker, kept).await?;
        }
        *record = engine::run(scenario, runbook, &alone, progress, redactor).await;
        stacks.extend(record.stack.clone());
    }
    let records: Vec<_> = records
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
        .collect();
    let profile = chosen
        .first()
        .map(|s| s.replica.profile.clone())
        .unwrap_or_default();
    let mut journal = journal::assemble(
        runbook,
        &profile,
        started,
        clock.elapsed().as_millis() as u64,
        options.time_scale,
        records,
    );
    // Nothing of ours may remain: containers, networks, replica roots, operator directories;
    // except the replica `--keep` asked for.
    stacks.retain(|id| options.keep.as_ref() != Some(id));
    journal.leftovers = harness::docker::leftovers_of(docker, &stacks).await?;
    journal.engine_leftovers = journal
        .scenarios
        .iter()
        .flat_map(|s| s.engine_leftovers.iter().cloned())
        .collect();
    Ok(journal)
}

/// The record of a scenario that did not run to its end (the caller says why).
fn unrun(scenario: &Scenario) -> rehearsal::journal::ScenarioRecord {
    rehearsal::journal::ScenarioRecord::new(
        &scenario.id,
        &scenario.title,
        scenario.expected,
        SystemTime::now(),
    )
}

/// A spawned task that is aborted when its handle is dropped (a signal ends the run).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    async fn join(mut self) -> Result<T, tokio::task::JoinError> {
        (&mut self.0).await
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
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
        harness::output::write_atomic(&out.join(name), text.as_bytes())?;
    }
    Ok(())
}
