//! `cargo xtask report merge DIR…`: the journals of a sharded rehearsal (`rehearse --shard K/N`,
//! one directory each) joined into the journal and reports one unsharded run would have written.

use std::path::PathBuf;

use harness::exit_codes;
use harness::redact::Redactor;
use harness::rehearsal::{render, shard, Journal};

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
}

pub async fn run(command: Command) -> anyhow::Result<i32> {
    let Command::Merge { dirs, out } = command;
    let out = out.unwrap_or_else(|| harness::runbook::workspace_path("target/rehearsal"));
    let mut shards = Vec::new();
    for dir in &dirs {
        let path = dir.join("journal.json");
        let journal = harness::input::read_text(&path, JOURNAL_LIMIT)
            .map_err(|e| e.to_string())
            .and_then(|text| {
                serde_json::from_str::<Journal>(&text).map_err(|e| {
                    format!(
                        "not a rehearsal journal (line {}, column {})",
                        e.line(),
                        e.column()
                    )
                })
            });
        match journal {
            Ok(j) => shards.push((path.display().to_string(), j)),
            Err(reason) => {
                eprintln!("error: {}: {reason}", path.display());
                return Ok(exit_codes::USAGE);
            }
        }
    }
    let merged = match shard::merge(shards) {
        Ok(j) => j,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit_codes::USAGE);
        }
    };
    // The shards' journals were redacted when written; nothing here knows a secret.
    let redactor = Redactor::new();
    crate::rehearse::write_reports(&merged, &out, &redactor)?;
    print!("{}", render::summary(&merged, &redactor));
    println!(
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
