//! `cargo xtask verify --watch`: the loop beside a real rotation. Rounds of the checks every
//! interval (one round at a time), the operator's marks from stdin, each change shown as it
//! happens, and the record (journal, Markdown, HTML) written when a signal ends the watch.

use std::io::{BufRead, IsTerminal};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime};

use harness::checks::watch::{Change, Watch};
use harness::checks::{self, Check, Node};
use harness::redact::Redactor;
use harness::runbook::Runbook;
use harness::signals::Signals;
use harness::{errln, exit_codes, outln};

/// What `verify` passes on for `--watch`, checked before any node is opened.
pub struct WatchArgs {
    pub interval: Duration,
    /// The record's directory, made and writable.
    pub out: PathBuf,
    /// The runbook's steps (id, title) the operator's Enter marks in turn; empty without one.
    pub steps: Vec<(String, String)>,
    pub started_at: SystemTime,
    /// Where the last round is served as OpenMetrics (`/metrics`).
    pub listen: Option<SocketAddr>,
}

impl WatchArgs {
    /// Reads `--runbook` and makes `--out` (default `target/watch/START-TIME`): a runbook that
    /// does not parse or a directory that cannot be written is a usage error, before anything
    /// is opened.
    pub fn prepare(
        interval: Duration,
        out: Option<&Path>,
        runbook: Option<&Path>,
        listen: Option<SocketAddr>,
    ) -> Result<WatchArgs, String> {
        let steps = match runbook {
            Some(path) => Runbook::load(path)
                .map_err(|e| e.to_string())?
                .phases
                .iter()
                .flat_map(|p| p.steps.iter().map(|s| (s.id.clone(), s.title.clone())))
                .collect(),
            None => Vec::new(),
        };
        let started_at = SystemTime::now();
        let out = match out {
            Some(dir) => {
                harness::output::prepare_directory(dir)
                    .map_err(|e| format!("--out {}: {}", dir.display(), e.reason))?;
                dir.to_path_buf()
            }
            None => {
                let stamp = humantime::format_rfc3339_seconds(started_at)
                    .to_string()
                    .replace(':', "-");
                let dir = PathBuf::from("target/watch").join(stamp);
                std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                dir
            }
        };
        Ok(WatchArgs {
            interval,
            out,
            steps,
            started_at,
            listen,
        })
    }
}

/// Watches `node` until SIGINT, SIGTERM or SIGHUP; the exit code is the last round's (0 all
/// passed, 1 some failed, 6 unreachable), 2 when the record cannot be written.
/// `selected` are the checks each round runs.
pub async fn run(
    mut node: Node,
    selected: &[&Check],
    args: WatchArgs,
    redactor: Redactor,
) -> anyhow::Result<i32> {
    let steps = &args.steps;
    let out = &args.out;
    let started = humantime::format_rfc3339_seconds(args.started_at).to_string();
    let metrics = Arc::new(RwLock::new(String::from("# EOF\n")));
    let server = match args.listen {
        Some(addr) => match serve_metrics(addr, metrics.clone()).await {
            Ok(server) => Some(server),
            Err(e) => {
                errln!("error: --listen {addr}: {e}");
                return Ok(exit_codes::USAGE);
            }
        },
        None => None,
    };
    let mut signals = Signals::install()?;
    let niced = lowest_cpu_priority();
    let clock = Instant::now();
    let target = node.target().name.clone();
    let mut watch = Watch::new(&target, started, args.interval.as_millis() as u64);
    let per_minute = selected.len() as u64 * 60 / args.interval.as_secs().max(1);
    errln!(
        "verify --watch: {} checks on {target} every {} s (at most {per_minute} checks a minute, \
         one at a time, spread over half the interval: at most one connection of ours open at \
         once{}); record in {}; Ctrl-C ends",
        selected.len(),
        args.interval.as_secs(),
        if niced {
            ", at the lowest CPU priority"
        } else {
            ""
        },
        out.display()
    );
    let mut next_step = 0;
    match steps.first() {
        Some((id, title)) => errln!("verify --watch: Enter marks the start of {id} {title}"),
        None => errln!("verify --watch: a line typed is recorded as a note"),
    }
    let mut lines = operator_lines();
    let live = std::io::stdout().is_terminal();
    let mut ticker = tokio::time::interval(args.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let interrupted = loop {
        tokio::select! {
            _ = ticker.tick() => {
                // The files as the rotation has left them by now (and their values redacted).
                node.reread_env().await;
                let round = tokio::select! {
                    r = checks::verify_one_at_a_time(&node, selected, args.interval / 2) => r,
                    signal = signals.recv() => break signal,
                };
                let at = clock.elapsed().as_millis() as u64;
                let results = &round.targets[0].results;
                let changes = watch.record_round(at, results);
                *metrics.write().expect("metrics lock") = round.openmetrics(&redactor);
                if live {
                    draw(&watch, &changes, &redactor);
                } else {
                    for c in &changes {
                        outln!("{}", redactor.redact(&change_line(c)));
                    }
                }
            }
            Some((when, line)) = lines.recv() => {
                let at = when.saturating_duration_since(clock).as_millis() as u64;
                let (step, text) = match steps.get(next_step) {
                    Some((id, title)) if line.trim().is_empty() => {
                        next_step += 1;
                        (Some(id.clone()), title.clone())
                    }
                    _ => (None, line.trim().to_string()),
                };
                if step.is_none() && text.is_empty() {
                    continue;
                }
                errln!("[{:>7.1}s] mark: {}{text}", at as f64 / 1000.0,
                    step.as_ref().map(|s| format!("{s} ")).unwrap_or_default());
                watch.mark(at, step, text);
                if let Some((id, title)) = steps.get(next_step) {
                    errln!("verify --watch: Enter marks the start of {id} {title}");
                }
            }
            signal = signals.recv() => break signal,
        }
    };
    if let Some(server) = server {
        server.abort();
    }
    errln!(
        "verify --watch: {} after {} rounds; writing the record",
        interrupted.name(),
        watch.rounds()
    );
    for (name, text) in [
        ("journal.json", watch.journal(&redactor)),
        ("report.md", watch.markdown(&redactor)),
        ("report.html", watch.html(&redactor)),
    ] {
        let path = out.join(name);
        if let Err(e) = harness::output::write_atomic(&path, text.as_bytes()) {
            errln!("error: {}: {e}", path.display());
            return Ok(exit_codes::USAGE);
        }
    }
    errln!(
        "verify --watch: record in {}/{{journal.json,report.md,report.html}}",
        out.display()
    );
    Ok(watch.exit_code())
}

/// Puts every thread of this process at the lowest CPU priority (nice 19; on Linux a thread's
/// own, inherited by the threads it starts): on a node in service, its own processes go first
/// (`cargo xtask bench watch` measured the difference on the node's delivery delay). Whether
/// it could.
fn lowest_cpu_priority() -> bool {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return false;
    };
    tasks.flatten().fold(true, |all, task| {
        let Some(tid) = task
            .file_name()
            .to_str()
            .and_then(|t| t.parse::<libc::id_t>().ok())
        else {
            return false;
        };
        // SAFETY: setpriority(2) on a thread of this process; it reads and writes no memory.
        let done = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, 19) } == 0;
        all && done
    })
}

/// Serves `metrics` (the last round's OpenMetrics) at `/metrics` on `addr` until aborted.
async fn serve_metrics(
    addr: SocketAddr,
    metrics: Arc<RwLock<String>>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let body = metrics.read().expect("metrics lock").clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    body,
                )
            }
        }),
    );
    errln!("verify --watch: serving the last round at http://{bound}/metrics");
    Ok(tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    }))
}

/// The operator's lines from stdin, each with the moment it was read; a closed stdin ends them.
fn operator_lines() -> tokio::sync::mpsc::UnboundedReceiver<(Instant, String)> {
    let (send, receive) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if send.send((Instant::now(), line)).is_err() {
                break;
            }
        }
    });
    receive
}

/// `[   12.3s] health.router: pass -> error (evidence)`.
fn change_line(c: &Change) -> String {
    let from = c.from.map(|o| format!("{o} -> ")).unwrap_or_default();
    format!(
        "[{:>7.1}s] {}: {from}{} ({})",
        c.at_ms as f64 / 1000.0,
        c.id,
        c.to,
        c.evidence
    )
}

/// Redraws the whole table in place: each check's state and since when, this round's changes
/// marked `*`.
fn draw(watch: &Watch, changes: &[Change], redactor: &Redactor) {
    let mut screen = String::from("\x1b[H\x1b[2J");
    let width = watch
        .states()
        .iter()
        .map(|(id, ..)| id.len())
        .max()
        .unwrap_or(10);
    for (id, outcome, since, evidence) in watch.states() {
        let changed = if changes.iter().any(|c| c.id == id) {
            '*'
        } else {
            ' '
        };
        let line = format!(
            "{changed} {:<5} {id:<width$} since {:>7.1}s  {evidence}",
            outcome.to_string(),
            since as f64 / 1000.0
        );
        screen.push_str(&line.chars().take(160).collect::<String>());
        screen.push('\n');
    }
    // `out!` writes and flushes at once (and a closed terminal does not panic it).
    harness::out!("{}", redactor.redact(&screen));
}
