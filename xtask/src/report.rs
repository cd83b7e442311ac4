//! `cargo xtask report merge DIR…`: the journals of a sharded rehearsal (`rehearse --shard K/N`,
//! one directory each) joined into the journal and reports one unsharded run would have written.
//! `cargo xtask report compare A B`: two rehearsals (of two runbooks) side by side, per secret;
//! or a rehearsal against a watched rotation (B from `verify --watch`), per phase.
//! `cargo xtask report render DIR`: a journal's reports written again (report.html, .md, junit).

use harness::{errln, out, outln};

use std::path::PathBuf;

use harness::exit_codes;
use harness::redact::Redactor;
use rehearsal::compare::Pairing;
use rehearsal::{render, shard, Journal};

/// The most a journal may weigh (a 55-scenario journal is a few megabytes).
const JOURNAL_LIMIT: u64 = 512 * 1024 * 1024;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// merge shard journals (each DIR holds a journal.json) into one journal and its reports;
    /// exit 2 when the shards disagree on the runbook, or a scenario is missing or duplicated
    Merge {
        /// the shards' output directories (`rehearse --shard K/N --out DIR`)
        #[arg(required = true, value_name = "DIR")]
        dirs: Vec<PathBuf>,
        /// where the merged journal and reports go (default target/rehearsal)
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// write a rehearsal's reports again from its journal (DIR holds a journal.json), e.g.
    /// after an upgrade of this tool; exit 2 when it is not a journal
    Render {
        /// the rehearsal's output directory (`rehearse --out DIR`)
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// where the reports go (default: DIR itself)
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
    /// two rehearsals side by side (each DIR holds a journal.json, e.g. of the runbook as
    /// written and of a corrected one): per secret, the whole rotation and the rollback, what
    /// each measured; a Markdown table on stdout (and in --out FILE), B's HTML report with the
    /// table at its top (--html FILE). With B a watch (`verify --watch --out B`): the rehearsal
    /// against the watched rotation, per phase
    Compare {
        /// the first run's output directory (`rehearse --out A`)
        #[arg(value_name = "A")]
        a: PathBuf,
        /// the second run's output directory
        #[arg(value_name = "B")]
        b: PathBuf,
        /// also write the table to this file
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// also write B's HTML report, with the table at its top, to this file
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
    },
}

/// The node's inventory, as the runbooks list it: what a comparison has one row for.
const INVENTORY: &[&str] = &[
    "DeepSeek API Key",
    "Mistral API Key",
    "Grok API Key",
    "Cohere API Key",
    "PostgreSQL Password",
    "NATS Creds",
    "JWT Secrets",
    "Qdrant API Key",
    "Neo4j Password",
    "Telegram Bot Tokens",
];

/// The journal in `dir`, or the reason it cannot be read.
pub fn read_journal(dir: &std::path::Path) -> Result<Journal, String> {
    if let Err(e) = harness::input::expect_directory(dir) {
        return Err(format!("{}: {e}", dir.display()));
    }
    let path = dir.join("journal.json");
    harness::input::read_text(&path, JOURNAL_LIMIT)
        .map_err(|e| e.to_string())
        .and_then(|text| Journal::from_json(&text).map_err(|e| e.to_string()))
        .map_err(|reason| format!("{}: {reason}", path.display()))
}

/// B's journal when it is a watch's (`verify --watch --out B`): `Some(Err)` when it says it is
/// one but does not read as one; `None` when it is not a watch's (or not there: the rehearsal
/// reader says why).
fn read_watch(
    dir: &std::path::Path,
) -> Option<Result<harness::checks::watch::WatchJournal, String>> {
    let path = dir.join("journal.json");
    let text = harness::input::read_text(&path, JOURNAL_LIMIT).ok()?;
    harness::checks::watch::WatchJournal::is_watch(&text).then(|| {
        harness::checks::watch::WatchJournal::parse(&text)
            .map_err(|e| format!("{}: {e}", path.display()))
    })
}

/// A rehearsal against a watched rotation, per phase (`rehearsal::versus`).
fn versus(
    a_dir: &std::path::Path,
    watch: Result<harness::checks::watch::WatchJournal, String>,
    out: Option<PathBuf>,
) -> anyhow::Result<i32> {
    let (journal, watch) = match (read_journal(a_dir), watch) {
        (Ok(j), Ok(w)) => (j, w),
        (Err(e), _) | (_, Err(e)) => {
            errln!("error: {e}");
            return Ok(exit_codes::USAGE);
        }
    };
    let Some(scenario) = rehearsal::versus::rehearsed_scenario(&journal) else {
        errln!("error: {}: no scenario to compare with", a_dir.display());
        return Ok(exit_codes::USAGE);
    };
    // Each phase named by the runbook's title (the secret it rotates), where it can be read.
    let titles: std::collections::BTreeMap<String, String> = journal_runbook(&journal)
        .map(|r| {
            r.phases
                .iter()
                .map(|p| (format!("phase{}", p.number), p.title.clone()))
                .collect()
        })
        .unwrap_or_default();
    let secrets_of: std::collections::BTreeMap<String, Vec<String>> = harness::checks::catalogue()
        .into_iter()
        .map(|c| (c.id, c.secrets.iter().map(|s| s.to_string()).collect()))
        .collect();
    let table = rehearsal::versus::markdown(&journal, scenario, &watch, &titles, &secrets_of);
    out!("{table}");
    if let Some(path) = out {
        if let Err(e) = harness::output::write_atomic(&path, table.as_bytes()) {
            errln!(
                "error: --out {}: {}",
                path.display(),
                harness::input::io_reason(&e)
            );
            return Ok(exit_codes::USAGE);
        }
    }
    Ok(exit_codes::OK)
}

/// The scenario of `journal` that rehearses `secret` alone (one phase after the preparation),
/// by its runbook's catalogue.
fn single_secret_scenario(journal: &Journal, secret: &str) -> Option<String> {
    let (variables, _) = harness::runbook::coverage::variables_of(secret);
    let runbook = journal_runbook(journal)?;
    scenarios::catalogue_for(&runbook)
        .into_iter()
        .filter(|s| s.id.starts_with("rotate/"))
        .find(|s| {
            s.secrets.iter().any(|v| variables.contains(&v.as_str()))
                && journal.scenarios.iter().any(|r| r.id == s.id)
        })
        .map(|s| s.id)
}

/// The runbook as the journal names it, from here or from the workspace.
fn journal_runbook(journal: &Journal) -> Option<harness::runbook::Runbook> {
    let path = std::path::Path::new(&journal.runbook);
    harness::runbook::Runbook::load(path)
        .or_else(|_| {
            harness::runbook::Runbook::load(&harness::runbook::workspace_path(&journal.runbook))
        })
        .ok()
}

/// The scenario of `journal` whose id is one of `ids`.
fn first_with(journal: &Journal, ids: &[&str]) -> Option<String> {
    journal
        .scenarios
        .iter()
        .map(|s| &s.id)
        .find(|id| ids.contains(&id.as_str()))
        .cloned()
}

fn compare(
    a_dir: &std::path::Path,
    b_dir: &std::path::Path,
    out: Option<PathBuf>,
    html: Option<PathBuf>,
) -> anyhow::Result<i32> {
    // Where the comparison goes is checked before anything is read.
    for (flag, path) in [("--out", &out), ("--html", &html)] {
        if let Some(Err(e)) = path.as_deref().map(harness::output::check_writable) {
            errln!("error: {flag} {}: {}", e.path.display(), e.reason);
            return Ok(exit_codes::USAGE);
        }
    }
    if let Some(watch) = read_watch(b_dir) {
        if html.is_some() {
            errln!("error: --html renders two rehearsals; B is a watch (its table is on stdout and in --out)");
            return Ok(exit_codes::USAGE);
        }
        return versus(a_dir, watch, out);
    }
    let (a, b) = match (read_journal(a_dir), read_journal(b_dir)) {
        (Ok(a), Ok(b)) => (a, b),
        (Err(e), _) | (_, Err(e)) => {
            errln!("error: {e}");
            return Ok(exit_codes::USAGE);
        }
    };
    let mut pairings: Vec<Pairing> = INVENTORY
        .iter()
        .map(|secret| Pairing {
            what: secret.to_string(),
            a: single_secret_scenario(&a, secret),
            b: single_secret_scenario(&b, secret),
        })
        .collect();
    pairings.push(Pairing {
        what: "The whole rotation".into(),
        a: first_with(&a, &["rotation"]),
        b: first_with(&b, &["rotation"]),
    });
    pairings.push(Pairing {
        what: "The rollback after the DeepSeek phase".into(),
        a: first_with(&a, &["rollback/after-deepseek"]),
        b: first_with(&b, &["rollback/after-deepseek"]),
    });
    let name = |j: &Journal| {
        std::path::Path::new(&j.runbook)
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| j.runbook.clone())
    };
    let rows = rehearsal::compare::compare(&a.scenarios, &b.scenarios, &pairings);
    let table = rehearsal::compare::markdown(
        &format!("A: {}", name(&a)),
        &format!("B: {}", name(&b)),
        &rows,
    );
    out!("{table}");
    let page = html.map(|path| {
        let top = rehearsal::compare::html(
            &format!("A: {}", name(&a)),
            &format!("B: {}", name(&b)),
            &rows,
        );
        (path, render::html_with(&b, &Redactor::new(), &top))
    });
    for (flag, path, text) in out
        .map(|p| ("--out", p, table))
        .into_iter()
        .chain(page.map(|(p, t)| ("--html", p, t)))
    {
        if let Err(e) = harness::output::write_atomic(&path, text.as_bytes()) {
            errln!(
                "error: {flag} {}: {}",
                path.display(),
                harness::input::io_reason(&e)
            );
            return Ok(exit_codes::USAGE);
        }
    }
    Ok(exit_codes::OK)
}

/// The reports of the journal in `dir`, written to `out` (default `dir`).
fn render_again(dir: &std::path::Path, out: Option<PathBuf>) -> anyhow::Result<i32> {
    let journal = match read_journal(dir) {
        Ok(j) => j,
        Err(e) => {
            errln!("error: {e}");
            return Ok(exit_codes::USAGE);
        }
    };
    if let Some(Err(e)) = out.as_deref().map(harness::output::prepare_directory) {
        errln!("error: --out {}: {}", e.path.display(), e.reason);
        return Ok(exit_codes::USAGE);
    }
    let out = out.unwrap_or_else(|| dir.to_path_buf());
    // The journal was redacted when written; nothing here knows a secret.
    crate::rehearse::write_reports(&journal, &out, &Redactor::new())?;
    outln!(
        "reports: {}/{{journal.json,report.html,report.md,junit.xml}}",
        out.display()
    );
    Ok(exit_codes::OK)
}

pub async fn run(command: Command) -> anyhow::Result<i32> {
    let (dirs, out) = match command {
        Command::Merge { dirs, out } => (dirs, out),
        Command::Compare { a, b, out, html } => return compare(&a, &b, out, html),
        Command::Render { dir, out } => return render_again(&dir, out),
    };
    if let Some(Err(e)) = out.as_deref().map(harness::output::prepare_directory) {
        errln!("error: --out {}: {}", e.path.display(), e.reason);
        return Ok(exit_codes::USAGE);
    }
    let out = out.unwrap_or_else(|| harness::runbook::workspace_path("target/rehearsal"));
    let mut shards = Vec::new();
    for dir in &dirs {
        match read_journal(dir) {
            Ok(j) => shards.push((dir.join("journal.json").display().to_string(), j)),
            Err(e) => {
                errln!("error: {e}");
                return Ok(exit_codes::USAGE);
            }
        }
    }
    let merged = match shard::merge(shards) {
        Ok(j) => j,
        Err(e) => {
            errln!("error: {e}");
            return Ok(exit_codes::USAGE);
        }
    };
    // The shards' journals were redacted when written; nothing here knows a secret.
    let redactor = Redactor::new();
    crate::rehearse::write_reports(&merged, &out, &redactor)?;
    out!("{}", render::summary(&merged, &redactor));
    outln!(
        "merged {} shard(s): {}/{{journal.json,report.html,report.md,junit.xml}}",
        dirs.len(),
        out.display()
    );
    Ok(if merged.passed() {
        exit_codes::OK
    } else if merged.only_inconclusive() {
        exit_codes::INCONCLUSIVE
    } else {
        exit_codes::FAILURES
    })
}
