//! `cargo xtask runbook show|check|accept`: the runbook as data, its findings and coverage, and
//! the lock that makes an unreviewed runbook change fail CI.

use harness::exit_codes;
use harness::runbook::coverage::{coverage, CheckRef, Coverage};
use harness::runbook::findings::{analyse, Finding};
use harness::runbook::lock::{Lock, DEFAULT_LOCK};
use harness::runbook::{workspace_path, Runbook, DEFAULT_RUNBOOK};
use std::path::PathBuf;

const USAGE: &str = "usage: cargo xtask runbook <show|check|accept> [--runbook FILE] [--lock FILE] [--format table|json]\n\
  show    phases, steps, findings and coverage (table, or --format json)\n\
  check   fail (exit 7) when the runbook or its coverage changed since scenarios/runbook.lock\n\
  accept  write the lock for the runbook as it is now\n";

struct Options {
    runbook: PathBuf,
    lock: PathBuf,
    json: bool,
}

fn options(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        runbook: workspace_path(DEFAULT_RUNBOOK),
        lock: workspace_path(DEFAULT_LOCK),
        json: false,
    };
    let mut i = 0;
    while i < args.len() {
        let value = || {
            args.get(i + 1)
                .cloned()
                .ok_or(format!("{} needs a value", args[i]))
        };
        match args[i].as_str() {
            "--runbook" => o.runbook = PathBuf::from(value()?),
            "--lock" => o.lock = PathBuf::from(value()?),
            "--format" => match value()?.as_str() {
                "json" => o.json = true,
                "table" => o.json = false,
                other => return Err(format!("unknown format `{other}` (table or json)")),
            },
            other => return Err(format!("unknown option `{other}`")),
        }
        i += 2;
    }
    Ok(o)
}

/// The checks coverage counts: every check of the catalogue with the secrets it verifies.
fn checks() -> Vec<CheckRef> {
    harness::checks::catalogue()
        .iter()
        .map(|c| CheckRef {
            id: c.id.clone(),
            secrets: c.secrets.iter().map(|s| s.to_string()).collect(),
        })
        .collect()
}

pub fn run(args: &[String]) -> i32 {
    let Some(command) = args.first() else {
        eprint!("{USAGE}");
        return exit_codes::USAGE;
    };
    let o = match options(&args[1..]) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}\n{USAGE}");
            return exit_codes::USAGE;
        }
    };
    let runbook = match Runbook::load(&o.runbook) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return exit_codes::USAGE;
        }
    };
    let scenarios = scenarios::CATALOGUE;
    match command.as_str() {
        "show" => {
            let findings = analyse(&runbook);
            let coverage = coverage(&runbook, &findings, scenarios, &checks());
            if o.json {
                let doc = serde_json::json!({
                    "runbook": runbook,
                    "findings": findings,
                    "coverage": coverage,
                });
                println!(
                    "{}",
                    serde_json::to_string_pretty(&doc).expect("serialisable")
                );
            } else {
                print!("{}", show_table(&runbook, &findings, &coverage));
            }
            exit_codes::OK
        }
        "check" => {
            let now = Lock::of(&runbook, scenarios);
            let locked = match Lock::load(&o.lock) {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("error: {e}\n(run `cargo xtask runbook accept` to write the lock)");
                    return exit_codes::USAGE;
                }
            };
            let diff = locked.diff(&now);
            if diff.is_clean() {
                println!(
                    "runbook {} matches {} ({} steps)",
                    o.runbook.display(),
                    o.lock.display(),
                    now.steps.len()
                );
                exit_codes::OK
            } else {
                eprintln!(
                    "runbook {} changed since {} was accepted:\n{}Re-rehearse and review the \
                     scenarios above, then run `cargo xtask runbook accept`.",
                    o.runbook.display(),
                    o.lock.display(),
                    diff.report()
                );
                exit_codes::RUNBOOK_CHANGED
            }
        }
        "accept" => {
            let now = Lock::of(&runbook, scenarios);
            let before = Lock::load(&o.lock).ok();
            if let Err(e) = now.write(&o.lock) {
                eprintln!("error: {}: {e}", o.lock.display());
                return exit_codes::FAILURES;
            }
            match before.map(|b| b.diff(&now)) {
                Some(diff) if diff.is_clean() => {
                    println!("{} already up to date", o.lock.display())
                }
                Some(diff) => print!("{} updated:\n{}", o.lock.display(), diff.report()),
                None => println!("{} written ({} steps)", o.lock.display(), now.steps.len()),
            }
            exit_codes::OK
        }
        other => {
            eprintln!("error: unknown runbook command `{other}`\n{USAGE}");
            exit_codes::USAGE
        }
    }
}

fn or_dash(list: &[String]) -> String {
    if list.is_empty() {
        "-".into()
    } else {
        list.join(", ")
    }
}

fn show_table(runbook: &Runbook, findings: &[Finding], coverage: &Coverage) -> String {
    let mut out = String::new();
    let steps = runbook.steps().count();
    out.push_str(&format!(
        "{}: {} phases, {} steps ({} in the rollback), {} inventory secrets, {} findings\n\n",
        runbook.file,
        runbook.phases.len(),
        steps,
        runbook.rollback.len(),
        runbook.inventory.len(),
        findings.len()
    ));
    out.push_str("STEPS\n");
    let step_row = |out: &mut String, id: &str, title: &str, line: usize, fp: &str| {
        let scenarios = coverage
            .steps
            .iter()
            .find(|s| s.step == id)
            .map(|s| or_dash(&s.scenarios))
            .unwrap_or_default();
        let n = findings.iter().filter(|f| f.step == id).count();
        out.push_str(&format!(
            "  {id:<15} {title:<50} line {line:<4} {fp}  findings {n:<2} scenarios: {scenarios}\n"
        ));
    };
    for phase in &runbook.phases {
        let budget = phase
            .budget_minutes
            .map(|m| format!(" ({m} min)"))
            .unwrap_or_default();
        out.push_str(&format!(
            "  phase{:<10} {}{budget}, line {}\n",
            phase.number, phase.title, phase.line
        ));
        for s in &phase.steps {
            step_row(&mut out, &s.id, &s.title, s.line, &s.fingerprint);
        }
    }
    for s in &runbook.rollback {
        step_row(&mut out, &s.id, &s.title, s.line, &s.fingerprint);
    }
    out.push_str("\nFINDINGS (hypotheses; a scenario confirms or refutes each by measurement)\n");
    for f in findings {
        let measured = coverage
            .findings
            .iter()
            .find(|c| c.finding == f.id)
            .map(|c| or_dash(&c.scenarios))
            .unwrap_or_default();
        out.push_str(&format!(
            "  {:<6} {:<42} line {:<4} {}\n         {}\n         measured by: {}\n",
            f.severity.to_string(),
            f.id,
            f.line,
            f.excerpt,
            f.explanation,
            measured
        ));
    }
    out.push_str("\nCOVERAGE OF THE INVENTORY\n");
    for s in &coverage.secrets {
        let rotated = if s.rotated_by.is_empty() {
            "-".to_string()
        } else {
            s.rotated_by
                .iter()
                .map(|r| format!("phase {} ({})", r.phase, r.how))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!(
            "  {:<22} rotated by: {rotated}\n  {:<22} scenarios:  {}\n  {:<22} checks:     {}\n",
            s.secret,
            "",
            or_dash(&s.scenarios),
            "",
            or_dash(&s.checks)
        ));
        if !s.gaps.is_empty() {
            out.push_str(&format!("  {:<22} GAPS:       {}\n", "", s.gaps.join("; ")));
        }
    }
    out
}
