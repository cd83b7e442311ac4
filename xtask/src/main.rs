//! `cargo xtask`: the project's commands (images, up, status, down, test, rehearse, verify, runbook, node, bench). Errors become
//! the exit codes documented in `harness::exit_codes`.

use harness::{errln, outln};

mod bench;
mod compose;
mod node;
mod rehearse;
mod report;
mod runbook;
mod verify;
mod verify_watch;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use harness::docker::{self, StackSummary};
use harness::exit_codes;
use harness::progress::Progress;
use harness::stack::{new_stack_id, remove_by_id};
use harness::{HarnessError, Service, Stack, StackOptions};

/// The project's commands; their exit codes are `harness::exit_codes::TABLE`.
#[derive(Debug, clap::Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Rehearse a secrets-rotation runbook on a replica of the node; verify a real rotation",
    after_help = exit_codes::help(None),
    disable_help_subcommand = true
)]
struct Cli {
    #[command(subcommand)]
    task: Option<Task>,
}

#[derive(Debug, clap::Subcommand)]
enum Task {
    /// build the base image (mmdebstrap, or debootstrap as root; once) and the replica binary
    Images,
    /// start a replica of the node and leave it running; prints how to reach it
    Up {
        /// seconds every service gets to become ready
        #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u64).range(1..=3600))]
        timeout: u64,
        /// how the node's services read their secrets: a shipped profile (`default`,
        /// `database-url`, `interpolated`) or a profile file (docs/node-profile.md)
        #[arg(long, value_name = "FILE|NAME")]
        node_profile: Option<String>,
    },
    /// health and readiness of every service of running replicas, as a table
    Status {
        /// stack ids (default: every stack of ours)
        ids: Vec<String>,
    },
    /// remove running replicas (`down ID`, or all detached ones; `--all`: every stack of ours)
    Down {
        /// stack ids (default: detached stacks and orphans)
        ids: Vec<String>,
        /// every stack of ours, a live test's included
        #[arg(long)]
        all: bool,
    },
    /// run the gating test suite (cargo nextest, gate profile; --full: every scenario, ci
    /// profile), images and binary first
    Test {
        /// the whole suite: every scenario of the fault matrix too (the `ci` profile)
        #[arg(long)]
        full: bool,
        /// passed on to `cargo nextest run`
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        nextest: Vec<String>,
    },
    /// the main job: rehearse the runbook on fresh replicas under traffic, reports in target/rehearsal
    Rehearse(rehearse::Args),
    /// run the read-only production checks against nodes (--target FILE) or a replica (--replica)
    Verify(verify::Args),
    /// the runbook's steps, findings, coverage and lock
    #[command(subcommand)]
    Runbook(runbook::Command),
    /// the node as data: `node profile --compose FILE` derives how it reads its secrets
    #[command(subcommand)]
    Node(node::Command),
    /// start time, checks' time, probe ceiling, rehearsal wall time
    #[command(subcommand)]
    Bench(bench::Command),
    /// join a sharded rehearsal's journals into one journal and its reports
    #[command(subcommand)]
    Report(report::Command),
}

fn main() -> ExitCode {
    let cli = match <Cli as clap::Parser>::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with 0; every usage error to stderr with USAGE.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit_codes::USAGE as u8
            } else {
                exit_codes::OK as u8
            });
        }
    };
    let Some(task) = cli.task else {
        let _ = <Cli as clap::CommandFactory>::command().print_help();
        return ExitCode::SUCCESS;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result: Result<i32, anyhow::Error> = runtime.block_on(async move {
        // An engine over SSH is reached through a tunnel this process holds until it exits.
        let needs_engine = !matches!(task, Task::Runbook(_) | Task::Report(_) | Task::Node(_));
        let _ssh_engine = if needs_engine {
            harness::docker::tunnel_ssh_engine().await?
        } else {
            None
        };
        match task {
            Task::Images => images().await,
            Task::Up {
                timeout,
                node_profile,
            } => up(timeout, node_profile.as_deref()).await,
            Task::Status { ids } => status(&ids).await,
            Task::Down { ids, all } => down(&ids, all).await,
            Task::Test { full, nextest } => test(full, &nextest).await,
            Task::Bench(command) => bench::run_until_signal(command).await,
            Task::Runbook(command) => Ok(runbook::run(command)),
            Task::Node(command) => Ok(node::run(command).await),
            Task::Verify(args) => verify::run(args).await,
            Task::Rehearse(args) => rehearse::run(args).await,
            Task::Report(command) => report::run(command).await,
        }
    });
    match result {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            let code = match e.downcast_ref::<HarnessError>() {
                Some(h) => h.exit_code(),
                None => exit_codes::FAILURES,
            };
            errln!("error: {e:#}");
            ExitCode::from(code as u8)
        }
    }
}

async fn images() -> anyhow::Result<i32> {
    let progress = Progress::stderr();
    let docker = docker::connect().await?;
    harness::host_tools::provide(&harness::images::image_needs(&docker).await, &progress).await?;
    let ((repo, tag), binary) =
        harness::images::ensure_image_and_binary(&docker, &progress).await?;
    outln!("base image     {repo}:{tag}");
    outln!("replica binary {}", binary.display());
    Ok(exit_codes::OK)
}

async fn up(timeout: u64, node_profile: Option<&str>) -> anyhow::Result<i32> {
    let profile = match rehearse::node_profile(node_profile) {
        Ok(p) => p,
        Err(code) => return Ok(code),
    };
    {
        let docker = docker::connect().await?;
        let needs = harness::images::replica_needs(&docker).await;
        harness::host_tools::provide(&needs, &Progress::stderr()).await?;
    }
    let id = new_stack_id();
    let options = StackOptions {
        root: harness::replica_root::RootOptions {
            profile: profile.unwrap_or_else(harness::profile::NodeProfile::replica_default),
            ..Default::default()
        },
        progress: Progress::stderr(),
        ready_timeout: Duration::from_secs(timeout),
        detached: true,
        id: Some(id.clone()),
        ..Default::default()
    };
    let started = Instant::now();
    let mut signals = harness::signals::Signals::install()?;
    let stack = tokio::select! {
        stack = Stack::start(options) => stack,
        signal = signals.recv() => {
            errln!("{}: removing stack {id}", signal.name());
            let docker = docker::connect().await?;
            remove_by_id(&docker, &id).await?;
            return Ok(signal.exit_code());
        }
    };
    let stack = match stack {
        Ok(s) => s,
        Err(e) => {
            // A detached stack that failed to start is removed, not left behind.
            if let Ok(d) = docker::connect().await {
                let _ = remove_by_id(&d, &id).await;
            }
            return Err(e.into());
        }
    };
    outln!(
        "replica {} ready in {:.1}s\n",
        stack.id(),
        started.elapsed().as_secs_f64()
    );
    outln!("replica root   {}", stack.root().dir().display());
    outln!("compose file   {}", stack.root().compose_path().display());
    outln!(
        "network        {} (production names resolve inside it)\n",
        stack.network()
    );
    outln!("{:<28} {:<40} FROM THE HOST", "SERVICE", "CONTAINER");
    for s in Service::ALL {
        let reach = match s {
            Service::Postgres => format!(
                "postgres://daarion@{}:{}/daarion_main (password: DB_PASSWORD in services/*/.env)",
                harness::docker::engine_host(),
                stack.host_port(s, 5432).unwrap_or(0)
            ),
            Service::Nats => format!(
                "{} (users in nats/nats-server.conf), monitor {}",
                stack.nats_url(),
                stack.nats_monitor_url()
            ),
            _ => stack.url(s),
        };
        outln!(
            "{:<28} {:<40} {}",
            s.production_name(),
            stack.container_name(s),
            reach
        );
    }
    outln!(
        "\nexec:   docker exec -it {} psql -U daarion -d daarion_main",
        stack.container_name(Service::Postgres)
    );
    outln!(
        "status: cargo xtask status\nstop:   cargo xtask down {}",
        stack.id()
    );
    stack.detach().await;
    Ok(exit_codes::OK)
}

async fn stacks_selected(
    wanted: &[String],
) -> anyhow::Result<(bollard::Docker, Vec<StackSummary>)> {
    let docker = docker::connect().await?;
    let all = docker::list_stacks(&docker).await?;
    if wanted.is_empty() {
        return Ok((docker, all));
    }
    let mut out = Vec::new();
    for w in wanted {
        match all.iter().find(|s| &s.id == w) {
            Some(s) => out.push(s.clone()),
            None => return Err(HarnessError::NoSuchStack(w.clone()).into()),
        }
    }
    Ok((docker, out))
}

async fn status(ids: &[String]) -> anyhow::Result<i32> {
    let (docker, stacks) = stacks_selected(ids).await?;
    if stacks.is_empty() {
        outln!("no replica is running (start one with `cargo xtask up`)");
        return Ok(exit_codes::OK);
    }
    let mut all_ready = true;
    for stack in &stacks {
        let kind = if stack.detached() {
            "detached".to_string()
        } else if stack.orphaned() {
            "orphaned (its process is gone; swept by the next run or `down --all`)".to_string()
        } else {
            format!("owned by pid {}", stack.owner_pid)
        };
        outln!("stack {}  {kind}", stack.id);
        if let Some(root) = &stack.root {
            outln!("root  {}", root.display());
        }
        outln!(
            "{:<27} {:<9} {:<22} {:<7} READINESS",
            "SERVICE",
            "STATE",
            format!("PORTS ({})", harness::docker::engine_host()),
            "HEALTH"
        );
        for row in harness::status::stack_status(&docker, stack).await {
            let ports = row
                .ports
                .iter()
                .map(|(c, h)| format!("{c}->{h}"))
                .collect::<Vec<_>>()
                .join(" ");
            if !row.readiness.starts_with("ready") && !row.readiness.starts_with("accepting") {
                all_ready = false;
            }
            outln!(
                "{:<27} {:<9} {:<22} {:<7} {}",
                row.service.production_name(),
                row.state,
                ports,
                row.health,
                row.readiness
            );
        }
        outln!();
    }
    Ok(if all_ready {
        exit_codes::OK
    } else {
        exit_codes::FAILURES
    })
}

async fn down(ids: &[String], everything: bool) -> anyhow::Result<i32> {
    let explicit = !ids.is_empty();
    let (docker, stacks) = stacks_selected(ids).await?;
    let (mut removed, mut stuck) = (0, 0);
    for stack in stacks {
        // Without ids or --all, only detached stacks and orphans: never a live test's stack.
        if !(everything || explicit || stack.detached() || stack.orphaned()) {
            continue;
        }
        let started = Instant::now();
        // One stack that cannot be removed whole does not keep the others.
        if let Err(e) = docker::remove_stack(&docker, &stack).await {
            errln!("error: stack {} not removed whole: {e}", stack.id);
            stuck += 1;
            continue;
        }
        removed += 1;
        outln!(
            "removed stack {} ({} containers, {} networks) in {:.1}s",
            stack.id,
            stack.containers.len(),
            stack.networks.len(),
            started.elapsed().as_secs_f64()
        );
    }
    if removed + stuck == 0 {
        outln!("nothing to remove");
    }
    Ok(if stuck == 0 {
        exit_codes::OK
    } else {
        exit_codes::FAILURES
    })
}

async fn test(full: bool, args: &[String]) -> anyhow::Result<i32> {
    let profile = if full { "ci" } else { "gate" };
    let progress = Progress::stderr();
    let docker = docker::connect().await?;
    harness::host_tools::provide(&harness::host_tools::for_tests(), &progress).await?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let has_nextest = std::process::Command::new(&cargo)
        .args(["nextest", "--version"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_nextest {
        progress.say(
            "cargo-nextest is not installed: installing it (cargo install --locked cargo-nextest)",
        );
        let installed = tokio::process::Command::new(&cargo)
            .args(["install", "--locked", "cargo-nextest"])
            .status()
            .await?;
        if !installed.success() {
            errln!("error: `cargo install --locked cargo-nextest` failed; run it yourself, then `cargo xtask test`");
            return Ok(exit_codes::PREREQUISITE_MISSING);
        }
    }
    let (_, binary) = harness::images::ensure_image_and_binary(&docker, &progress).await?;
    progress.say(&format!(
        "running the test suite: cargo nextest run --workspace --profile {profile}"
    ));
    let status = tokio::process::Command::new(cargo)
        .current_dir(harness::binary::workspace_root())
        .args(["nextest", "run", "--workspace", "--profile", profile])
        .args(args)
        .env("REPLICA_BINARY", &binary)
        .status()
        .await?;
    // Whatever the tests did, nothing of theirs may remain.
    let leftovers: Vec<_> = docker::list_stacks(&docker)
        .await?
        .into_iter()
        .filter(|s| s.orphaned())
        .collect();
    for s in &leftovers {
        errln!(
            "warning: test stack {} outlived its process; removing it",
            s.id
        );
        if let Err(e) = docker::remove_stack(&docker, s).await {
            errln!("warning: test stack {} not removed whole: {e}", s.id);
        }
    }
    Ok(status.code().unwrap_or(exit_codes::FAILURES))
}

#[cfg(test)]
#[path = "../tests/support/commands.rs"]
mod commands;

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// Every leaf command of `command` (subcommands joined by a space), with its arguments:
    /// `--long`, or a positional's id in capitals.
    fn leaves(command: &clap::Command, path: &str, out: &mut Vec<(String, Vec<String>)>) {
        let subcommands: Vec<_> = command.get_subcommands().collect();
        if subcommands.is_empty() {
            let args = command
                .get_arguments()
                .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
                .map(|a| match a.get_long() {
                    Some(long) => format!("--{long}"),
                    None => a.get_id().as_str().to_uppercase(),
                })
                .collect();
            out.push((path.trim().to_string(), args));
        }
        for sub in subcommands {
            leaves(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn the_hardening_table_lists_every_command_and_argument_of_the_cli() {
        let mut tree = Vec::new();
        leaves(
            &<super::Cli as clap::CommandFactory>::command(),
            "",
            &mut tree,
        );
        let commands: BTreeSet<String> = tree.iter().map(|(c, _)| c.clone()).collect();
        let arguments: BTreeSet<(String, String)> = tree
            .iter()
            .flat_map(|(c, args)| args.iter().map(move |a| (c.clone(), a.clone())))
            .collect();
        let tabled_commands: BTreeSet<String> = super::commands::STDOUT_RUNS
            .iter()
            .map(|(c, _, _)| c.to_string())
            .collect();
        let tabled_arguments: BTreeSet<(String, String)> = super::commands::ARGUMENTS
            .iter()
            .map(|(c, a, _, _)| (c.to_string(), a.to_string()))
            .collect();
        let untabled: Vec<_> = commands.difference(&tabled_commands).collect();
        let gone: Vec<_> = tabled_commands.difference(&commands).collect();
        assert_eq!(
            (untabled, gone),
            (vec![], vec![]),
            "(commands not in xtask/tests/support/commands.rs's STDOUT_RUNS, commands it names that the CLI does not have)"
        );
        let untabled: Vec<_> = arguments.difference(&tabled_arguments).collect();
        let gone: Vec<_> = tabled_arguments.difference(&arguments).collect();
        assert_eq!(
            (untabled, gone),
            (vec![], vec![]),
            "(arguments not in xtask/tests/support/commands.rs's ARGUMENTS, arguments it names that the CLI does not have)"
        );
    }
}
