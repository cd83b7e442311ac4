//! `cargo xtask verify`: the check catalogue, read-only, against real nodes (`--target FILE`)
//! or a running replica (`--replica`), with table / JSON / JUnit outputs and documented exit codes.

use harness::{errln, out, outln};

use futures::StreamExt;
use harness::checks::{self, catalogue, Node, Target};
use harness::exit_codes;
use harness::redact::Redactor;
use std::path::PathBuf;

/// `cargo xtask verify`: the read-only production checks against nodes or a replica.
#[derive(Debug, clap::Args)]
#[command(
    after_help = harness::exit_codes::help(Some("verify"))
)]
pub struct Args {
    /// a node to verify (TOML; see fixtures/targets/node1.toml); repeat for a fleet
    #[arg(long, value_name = "FILE", required_unless_present_any = ["replica", "list", "targets"])]
    target: Vec<PathBuf>,
    /// a fleet: every `*.toml` in DIR is a node (by file name order)
    #[arg(long, value_name = "DIR")]
    targets: Option<PathBuf>,
    /// nodes verified at once (each node's checks run concurrently among themselves)
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u64).range(1..=1024))]
    jobs: u64,
    /// seconds a node has for all its checks; what is still running then is an error marking
    /// the node unreachable (default: only each check's own timeout)
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    target_timeout: Option<u64>,
    /// the running replica from `cargo xtask up` (the only one, or by id)
    #[arg(long, value_name = "ID", num_args = 0..=1)]
    replica: Option<Option<String>>,
    /// the Phase 1 backup with the secrets before rotation: a gzip'd tar, a directory, or the v2
    /// runbook's encrypted one (`.tar.gz.enc`, with BACKUP_PASSPHRASE exported)
    #[arg(long, value_name = "FILE")]
    previous: Option<PathBuf>,
    /// when the rotation happened (RFC 3339); logs and upstream usage are read from then on
    #[arg(long, value_name = "TIME", value_parser = since)]
    since: Option<std::time::SystemTime>,
    /// select checks by id glob (`postgres.*`, `*.previous*`)
    #[arg(long, value_name = "GLOB")]
    only: Vec<String>,
    /// leave out checks by id glob
    #[arg(long, value_name = "GLOB")]
    skip: Vec<String>,
    /// table (default), json, junit or openmetrics (for node_exporter's textfile collector);
    /// `=FILE` writes it there, else to stdout; repeatable
    #[arg(long, value_name = "F[=FILE]", value_parser = format)]
    format: Vec<Format>,
    /// the checks, one a line, and exit
    #[arg(long)]
    list: bool,
    /// run the checks again every --interval against one node until Ctrl-C or SIGTERM, showing
    /// each change, and write the watch's journal.json, report.md and report.html into --out
    #[arg(long, conflicts_with_all = ["targets", "format", "list"])]
    watch: bool,
    /// seconds between the starts of two rounds of --watch (a round still running delays the
    /// next: never two runs of one check at once)
    #[arg(long, value_name = "SECS", default_value_t = 2, requires = "watch", value_parser = clap::value_parser!(u64).range(1..=3600))]
    interval: u64,
    /// where --watch writes its record (default target/watch/START-TIME)
    #[arg(long, value_name = "DIR", requires = "watch")]
    out: Option<PathBuf>,
    /// with --watch: the runbook the operator follows; Enter marks its next step (without it,
    /// a line typed is recorded as a note)
    #[arg(long, value_name = "FILE", requires = "watch")]
    runbook: Option<PathBuf>,
    /// with --watch: serve the last round as OpenMetrics at http://ADDR/metrics (port 0: any
    /// free port, said on stderr)
    #[arg(long, value_name = "ADDR", requires = "watch")]
    listen: Option<std::net::SocketAddr>,
    /// how the nodes' services read their secrets: a shipped profile (`default`,
    /// `database-url`, `interpolated`) or a profile file; replaces each target's
    /// `node_profile` (docs/node-profile.md)
    #[arg(long, value_name = "FILE|NAME")]
    node_profile: Option<String>,
}

/// One output: its kind and where it goes (stdout without a file).
#[derive(Debug, Clone)]
struct Format {
    kind: &'static str,
    file: Option<PathBuf>,
}

fn format(text: &str) -> Result<Format, String> {
    let (kind, file) = match text.split_once('=') {
        Some((k, f)) if !f.is_empty() => (k, Some(PathBuf::from(f))),
        Some((k, _)) => return Err(format!("`{k}=` needs a file after the `=`")),
        None => (text, None),
    };
    let kind = match kind {
        "table" => "table",
        "json" => "json",
        "junit" => "junit",
        "openmetrics" => "openmetrics",
        other => {
            return Err(format!(
                "unknown format `{other}` (table, json, junit or openmetrics)"
            ))
        }
    };
    Ok(Format { kind, file })
}

fn since(text: &str) -> Result<std::time::SystemTime, String> {
    humantime::parse_rfc3339_weak(text).map_err(|e| format!("not an RFC 3339 time: {e}"))
}

pub async fn run(o: Args) -> anyhow::Result<i32> {
    let mut formats = o.format.clone();
    if formats.is_empty() {
        formats.push(Format {
            kind: "table",
            file: None,
        });
    }
    if formats.iter().filter(|f| f.file.is_none()).count() > 1 {
        errln!("error: only one --format can go to stdout; give the others a file (json=FILE)");
        return Ok(exit_codes::USAGE);
    }
    // Output paths are checked before any check runs: a typo costs nothing.
    for f in &formats {
        if let Some(path) = &f.file {
            if let Err(e) = harness::output::check_writable(path) {
                errln!(
                    "error: --format {}={}: {}",
                    f.kind,
                    path.display(),
                    e.reason
                );
                return Ok(exit_codes::USAGE);
            }
        }
    }
    let all = catalogue();
    if o.list {
        let width = all.iter().map(|c| c.id.len()).max().unwrap_or(10);
        for c in &all {
            outln!(
                "{:<width$}  {:<18} {:<9} {}",
                c.id,
                c.service,
                "read-only",
                c.description
            );
        }
        outln!("{} checks, all read-only (promoted to verify)", all.len());
        return Ok(exit_codes::OK);
    }
    let selected = match checks::select(&all, &o.only, &o.skip) {
        Ok(s) => s,
        Err(e) => {
            errln!("error: {e}");
            return Ok(exit_codes::USAGE);
        }
    };

    let mut paths = o.target.clone();
    if let Some(dir) = &o.targets {
        match fleet_files(dir) {
            Ok(files) => paths.extend(files),
            Err(e) => {
                errln!("error: --targets {}: {e}", dir.display());
                return Ok(exit_codes::USAGE);
            }
        }
    }
    let mut targets = Vec::new();
    for path in &paths {
        match Target::load(path) {
            Ok(t) => targets.push(t),
            Err(e) => {
                errln!("error: {e}");
                return Ok(exit_codes::USAGE);
            }
        }
    }
    if let Some(id) = &o.replica {
        let docker = harness::docker::connect().await?;
        let running: Vec<String> = harness::docker::list_stacks(&docker)
            .await?
            .into_iter()
            .filter(|s| s.detached() && s.containers.values().any(|state| state == "running"))
            .map(|s| s.id)
            .collect();
        let id = match (id, running.as_slice()) {
            (Some(id), _) => id.clone(),
            (None, [one]) => one.clone(),
            (None, []) => {
                errln!("error: no replica is running; start one with `cargo xtask up`");
                return Ok(exit_codes::USAGE);
            }
            (None, many) => {
                errln!(
                    "error: several replicas are running ({}); name one: --replica ID",
                    many.join(", ")
                );
                return Ok(exit_codes::USAGE);
            }
        };
        targets.push(harness::status::replica_target(&docker, &id).await?);
    }

    if o.watch && targets.len() != 1 {
        errln!(
            "error: --watch watches one node: give one --target or --replica ({} given)",
            targets.len()
        );
        return Ok(exit_codes::USAGE);
    }
    let watch = match o.watch {
        true => match crate::verify_watch::WatchArgs::prepare(
            std::time::Duration::from_secs(o.interval),
            o.out.as_deref(),
            o.runbook.as_deref(),
            o.listen,
        ) {
            Ok(w) => Some(w),
            Err(e) => {
                errln!("error: {e}");
                return Ok(exit_codes::USAGE);
            }
        },
        false => None,
    };
    if let Some(name) = duplicate_name(&targets) {
        errln!("error: two targets are named `{name}`; a report needs each node once");
        return Ok(exit_codes::USAGE);
    }
    let profile = match &o.node_profile {
        Some(arg) => match harness::profile::NodeProfile::named_or_file(arg) {
            Ok(p) => Some(p),
            Err(e) => {
                errln!("error: --node-profile {e}");
                return Ok(exit_codes::USAGE);
            }
        },
        None => None,
    };
    for target in &mut targets {
        if let Some(since) = o.since {
            target.since = Some(since);
        }
        if let Some(p) = &profile {
            target.profile = p.clone();
        }
    }
    let fleet = checks::Fleet {
        jobs: o.jobs as usize,
        per_target: o.target_timeout.map(std::time::Duration::from_secs),
    };
    // Nodes are opened (their files read, here or over SSH) `--jobs` at a time, in order.
    let redactor = Redactor::new();
    let over_ssh = targets.iter().filter(|t| t.ssh().is_some()).count();
    if over_ssh > 0 {
        errln!("verify: connecting to {over_ssh} node(s) over SSH...");
    }
    let opened: Vec<_> = futures::stream::iter(targets.into_iter().map(|target| {
        let redactor = redactor.clone();
        let previous = o.previous.clone();
        async move { Node::open(target, previous.as_deref(), redactor).await }
    }))
    .buffered(fleet.jobs)
    .collect()
    .await;
    let mut nodes = Vec::new();
    for node in opened {
        match node {
            Ok(n) => nodes.push(n),
            Err(e) => {
                errln!("error: {e}");
                return Ok(exit_codes::USAGE);
            }
        }
    }
    for node in &nodes {
        if let Some(why) = node.unreachable() {
            errln!(
                "verify: {} is unreachable ({why}); its checks are not run",
                node.target().name
            );
        }
    }
    if let Some(watch) = watch {
        let node = nodes.into_iter().next().expect("one target, checked above");
        return crate::verify_watch::run(node, &selected, watch, redactor).await;
    }
    errln!(
        "verify: {} checks on {} target(s), {} at a time...",
        selected.len(),
        nodes.len(),
        fleet.jobs.min(nodes.len())
    );
    let report = checks::verify_fleet(&nodes, &selected, fleet).await;

    for Format { kind, file } in &formats {
        let text = match *kind {
            "json" => report.json(&redactor),
            "junit" => report.junit(&redactor),
            "openmetrics" => report.openmetrics(&redactor),
            _ => report.table(&redactor),
        };
        match file {
            None => out!("{text}"),
            Some(path) => {
                harness::output::write_atomic(path, text.as_bytes())
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                errln!("verify: wrote {kind} to {}", path.display());
            }
        }
    }
    let c = report.counts();
    errln!(
        "verify: {} passed, {} failed, {} skipped, {} errors in {} ms (wall)",
        c.pass,
        c.fail,
        c.skip,
        c.error,
        report.wall_ms
    );
    Ok(report.exit_code())
}

/// The target files of a fleet directory: its `*.toml` files, sorted by name; none is an error.
fn fleet_files(dir: &std::path::Path) -> Result<Vec<PathBuf>, String> {
    harness::input::expect_directory(dir).map_err(|e| e.to_string())?;
    let entries = std::fs::read_dir(dir).map_err(|e| harness::input::io_reason(&e))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    files.sort();
    if files.is_empty() {
        return Err("no *.toml target file in it".to_string());
    }
    Ok(files)
}

/// A node name given to two targets, if one is.
fn duplicate_name(targets: &[Target]) -> Option<String> {
    let mut seen = std::collections::BTreeSet::new();
    targets
        .iter()
        .map(|t| t.name.clone())
        .find(|name| !seen.insert(name.clone()))
}
