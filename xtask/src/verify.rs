//! `cargo xtask verify`: the check catalogue, read-only, against real nodes (`--target FILE`)
//! or a running replica (`--replica`), with table / JSON / JUnit outputs and documented exit codes.

use harness::checks::secrets::SecretSet;
use harness::checks::{self, catalogue, Node, Target};
use harness::exit_codes;
use harness::redact::Redactor;
use std::path::PathBuf;

const USAGE: &str =
    "usage: cargo xtask verify (--target FILE... | --replica [ID]) [--previous FILE]
       [--since RFC3339] [--only GLOB]... [--skip GLOB]... [--format table|json|junit[=FILE]]...
       cargo xtask verify --list
  --target FILE     a node to verify (TOML; see fixtures/targets/node1.toml); repeat for a fleet
  --replica [ID]    the running replica from `cargo xtask up` (the only one, or by id)
  --previous FILE   the Phase 1 backup tarball (or a directory) with the secrets before rotation
  --since TIME      when the rotation happened (logs and upstream usage are read from then on)
  --only/--skip     select checks by id glob (`postgres.*`, `*.previous*`)
  --format F[=FILE] table (default), json or junit; to FILE, or stdout without one; repeatable
exit codes: 0 all passed, 1 some failed, 2 usage or configuration error, 3 no Docker engine,
            6 nothing failed but a target was unreachable
";

#[derive(Default)]
struct Options {
    targets: Vec<PathBuf>,
    replica: Option<Option<String>>,
    previous: Option<PathBuf>,
    since: Option<std::time::SystemTime>,
    only: Vec<String>,
    skip: Vec<String>,
    formats: Vec<(String, Option<PathBuf>)>,
    list: bool,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options::default();
    let mut i = 0;
    while i < args.len() {
        let flag = args[i].as_str();
        let value = |i: usize| {
            args.get(i + 1)
                .filter(|v| !v.starts_with("--"))
                .cloned()
                .ok_or(format!("{flag} needs a value"))
        };
        match flag {
            "--target" => o.targets.push(PathBuf::from(value(i)?)),
            "--previous" => o.previous = Some(PathBuf::from(value(i)?)),
            "--since" => {
                let v = value(i)?;
                o.since = Some(
                    humantime::parse_rfc3339_weak(&v)
                        .map_err(|e| format!("--since `{v}` is not an RFC 3339 time: {e}"))?,
                );
            }
            "--only" => o.only.push(value(i)?),
            "--skip" => o.skip.push(value(i)?),
            "--format" => {
                let v = value(i)?;
                let (kind, file) = match v.split_once('=') {
                    Some((k, f)) => (k.to_string(), Some(PathBuf::from(f))),
                    None => (v.clone(), None),
                };
                if !matches!(kind.as_str(), "table" | "json" | "junit") {
                    return Err(format!("unknown format `{kind}` (table, json or junit)"));
                }
                o.formats.push((kind, file));
            }
            "--replica" => match args.get(i + 1).filter(|v| !v.starts_with("--")) {
                Some(id) => o.replica = Some(Some(id.clone())),
                None => {
                    o.replica = Some(None);
                    i += 1;
                    continue;
                }
            },
            "--list" => {
                o.list = true;
                i += 1;
                continue;
            }
            other => return Err(format!("unknown option `{other}`")),
        }
        i += 2;
    }
    if !o.list && o.targets.is_empty() && o.replica.is_none() {
        return Err("give --target FILE (repeatable) or --replica".into());
    }
    if o.formats.is_empty() {
        o.formats.push(("table".into(), None));
    }
    if o.formats.iter().filter(|(_, f)| f.is_none()).count() > 1 {
        return Err(
            "only one --format can go to stdout; give the others a file (json=FILE)".into(),
        );
    }
    Ok(o)
}

pub async fn run(args: &[String]) -> anyhow::Result<i32> {
    let o = match parse(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            return Ok(exit_codes::USAGE);
        }
    };
    let all = catalogue();
    if o.list {
        let width = all.iter().map(|c| c.id.len()).max().unwrap_or(10);
        for c in &all {
            println!(
                "{:<width$}  {:<18} {:<9} {}",
                c.id, c.service, "read-only", c.description
            );
        }
        println!("{} checks, all read-only (promoted to verify)", all.len());
        return Ok(exit_codes::OK);
    }
    let selected = match checks::select(&all, &o.only, &o.skip) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit_codes::USAGE);
        }
    };

    let mut targets = Vec::new();
    for path in &o.targets {
        match Target::load(path) {
            Ok(t) => targets.push(t),
            Err(e) => {
                eprintln!("error: {e}");
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
                eprintln!("error: no replica is running; start one with `cargo xtask up`");
                return Ok(exit_codes::USAGE);
            }
            (None, many) => {
                eprintln!(
                    "error: several replicas are running ({}); name one: --replica ID",
                    many.join(", ")
                );
                return Ok(exit_codes::USAGE);
            }
        };
        targets.push(Target::from_running(&docker, &id).await?);
    }

    let redactor = Redactor::new();
    let mut nodes = Vec::new();
    for mut target in targets {
        if let Some(since) = o.since {
            target.since = Some(since);
        }
        let previous_path = o.previous.clone().or(target.previous.clone());
        let previous = match previous_path.map(|p| SecretSet::previous(&p)).transpose() {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(exit_codes::USAGE);
            }
        };
        nodes.push(Node::new(target, previous, redactor.clone()));
    }
    eprintln!(
        "verify: {} checks on {} target(s), in parallel...",
        selected.len(),
        nodes.len()
    );
    let report = checks::verify(&nodes, &selected).await;

    for (kind, file) in &o.formats {
        let text = match kind.as_str() {
            "json" => report.json(&redactor),
            "junit" => report.junit(&redactor),
            _ => report.table(&redactor),
        };
        match file {
            None => print!("{text}"),
            Some(path) => {
                let tmp = path.with_extension("tmp-verify");
                std::fs::write(&tmp, &text)
                    .and_then(|()| std::fs::rename(&tmp, path))
                    .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                eprintln!("verify: wrote {kind} to {}", path.display());
            }
        }
    }
    let c = report.counts();
    eprintln!(
        "verify: {} passed, {} failed, {} skipped, {} errors in {} ms (wall)",
        c.pass, c.fail, c.skip, c.error, report.wall_ms
    );
    Ok(report.exit_code())
}
