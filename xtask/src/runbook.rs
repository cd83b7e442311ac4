//! `cargo xtask runbook show|check|accept`: the runbook as data, its findings and coverage, and
//! the lock that makes an unreviewed runbook change fail CI.

use harness::{errln, out, outln};

use harness::exit_codes;
use harness::runbook::coverage::{coverage, CheckRef, Coverage};
use harness::runbook::findings::{analyse, Finding};
use harness::runbook::lock::Lock;
use harness::runbook::{workspace_path, Runbook, DEFAULT_RUNBOOK};
use std::path::PathBuf;

/// `cargo xtask runbook`: the runbook as data.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// phases, steps, findings and coverage (table, or --format json)
    Show {
        #[command(flatten)]
        runbook: RunbookArg,
        /// table or json
        #[arg(long, value_enum, default_value_t = ShowFormat::Table)]
        format: ShowFormat,
        /// a rehearsal's output directory (`rehearse --out DIR`): also list the step boundaries
        /// it measured (unsafe, declared, recovered) and what went over its budget
        #[arg(long, value_name = "DIR")]
        outcomes: Option<PathBuf>,
    },
    /// fail (exit 7) when the runbook or its coverage changed since scenarios/runbook.lock
    Check(LockOptions),
    /// write the lock for the runbook as it is now (keeping the outcomes it accepts);
    /// `--outcomes DIR`: also accept the outcomes a rehearsal of it measured
    Accept {
        #[command(flatten)]
        lock: LockOptions,
        /// a rehearsal's output directory (`rehearse --out DIR`): each scenario derived from
        /// the runbook that was not `holds` there is accepted with its outcome and what it
        /// measured (edit the reason); one that held drops its acceptance
        #[arg(long, value_name = "DIR")]
        outcomes: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
pub struct RunbookArg {
    /// the runbook (default fixtures/runbook/SECRETS_ROTATION_RUNBOOK.md)
    #[arg(long, value_name = "FILE")]
    runbook: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct LockOptions {
    #[command(flatten)]
    runbook: RunbookArg,
    /// the lock (default scenarios/runbook.lock)
    #[arg(long, value_name = "FILE")]
    lock: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ShowFormat {
    Table,
    Json,
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

pub fn run(command: Command) -> i32 {
    // `accept` is the remaining arm.
    let (name, runbook, lock, format, outcomes) = match command {
        Command::Show {
            runbook,
            format,
            outcomes,
        } => ("show", runbook, None, format, outcomes),
        Command::Check(o) => ("check", o.runbook, o.lock, ShowFormat::Table, None),
        Command::Accept { lock, outcomes } => (
            "accept",
            lock.runbook,
            lock.lock,
            ShowFormat::Table,
            outcomes,
        ),
    };
    let runbook_path = runbook
        .runbook
        .unwrap_or_else(|| workspace_path(DEFAULT_RUNBOOK));
    // The lock `accept` writes is checked before the runbook is read.
    if let (Some(path), "accept") = (&lock, name) {
        if let Err(e) = harness::output::check_writable(path) {
            errln!("error: --lock {}: {}", e.path.display(), e.reason);
            return exit_codes::USAGE;
        }
    }
    let runbook = match Runbook::load(&runbook_path) {
        Ok(r) => r,
        Err(e) => {
            errln!("error: {e}");
            return exit_codes::USAGE;
        }
    };
    let measured = match outcomes.as_deref().map(crate::report::read_journal) {
        Some(Ok(journal)) => Some(journal),
        Some(Err(e)) => {
            errln!("error: --outcomes {e}");
            return exit_codes::USAGE;
        }
        None => None,
    };
    let lock_path = lock.unwrap_or_else(|| scenarios::lock_for(&runbook));
    let scenarios = scenarios::catalogue_for(&runbook);
    match name {
        "show" => {
            let findings = analyse(&runbook);
            let coverage = coverage(&runbook, &findings, &scenarios, &checks());
            if format == ShowFormat::Json {
                let not_rehearsable: Vec<serde_json::Value> = not_rehearsable(&runbook)
                    .into_iter()
                    .map(|(id, why)| serde_json::json!({ "scenario": id, "why": why }))
                    .collect();
                let budgets: Vec<serde_json::Value> = runbook
                    .phases
                    .iter()
                    .map(|p| {
                        serde_json::json!({
                            "phase": p.number,
                            "budget": harness::runbook::budget::of_phase(&runbook, p),
                        })
                    })
                    .collect();
                let windows: Vec<serde_json::Value> = measured
                    .iter()
                    .flat_map(|j| &j.scenarios)
                    .map(|s| {
                        serde_json::json!({
                            "scenario": s.id,
                            "boundaries": s.boundaries,
                            "budgets": s.budgets,
                        })
                    })
                    .collect();
                let doc = serde_json::json!({
                    "runbook": runbook,
                    "findings": findings,
                    "coverage": coverage,
                    "not_rehearsable": not_rehearsable,
                    "budgets": budgets,
                    "measured": windows,
                });
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&doc).expect("serialisable")
                );
            } else {
                out!("{}", show_table(&runbook, &findings, &coverage));
                if let Some(journal) = &measured {
                    out!("{}", measured_table(journal));
                }
            }
            exit_codes::OK
        }
        "check" => {
            let inapplicable: Vec<String> = scenarios::rehearsals_for(&runbook)
                .iter()
                .flat_map(|s| rehearsal::applies::not_applicable(s, &runbook))
                .map(|n| n.to_string())
                .collect();
            // Hand-written scenarios measured on another text of a phase: not rehearsed on this
            // one (the lock's coverage shows what no longer covers which step).
            let unbound = scenarios::not_bound(&runbook);
            if !unbound.is_empty() {
                errln!(
                    "hand-written scenarios measured on another text that do not apply to {} (not rehearsed):",
                    runbook_path.display()
                );
                for (_, why) in &unbound {
                    errln!("  {why}");
                }
            }
            if !inapplicable.is_empty() {
                errln!(
                    "scenarios whose faults or edits no longer apply to {}:",
                    runbook_path.display()
                );
                for n in &inapplicable {
                    errln!("  {n}");
                }
            }
            let now = Lock::of(&runbook, &scenarios);
            let locked = match Lock::load(&lock_path) {
                Ok(l) => l,
                Err(e) => {
                    errln!("error: {e}\n(run `cargo xtask runbook accept` to write the lock)");
                    return exit_codes::USAGE;
                }
            };
            let diff = locked.diff(&now);
            if diff.is_clean() && !inapplicable.is_empty() {
                errln!(
                    "runbook {} matches {}, but the scenarios above no longer apply: fix them \
                     before rehearsing",
                    runbook_path.display(),
                    lock_path.display()
                );
                exit_codes::RUNBOOK_CHANGED
            } else if diff.is_clean() {
                outln!(
                    "runbook {} matches {} ({} steps)",
                    runbook_path.display(),
                    lock_path.display(),
                    now.steps.len()
                );
                exit_codes::OK
            } else {
                errln!(
                    "runbook {} changed since {} was accepted:\n{}Re-rehearse and review the \
                     scenarios above, then run `cargo xtask runbook accept`.",
                    runbook_path.display(),
                    lock_path.display(),
                    diff.report()
                );
                exit_codes::RUNBOOK_CHANGED
            }
        }
        _ => {
            let before = Lock::load(&lock_path).ok();
            let mut now = Lock::of(&runbook, &scenarios);
            now.accepted = before
                .as_ref()
                .map(|b| b.accepted.clone())
                .unwrap_or_default();
            if let Some(journal) = &measured {
                let derived: Vec<String> = scenarios::derived(&runbook)
                    .into_iter()
                    .chain(scenarios::derived_faults(&runbook))
                    .map(|s| s.id)
                    .collect();
                for change in accept_outcomes(&mut now, journal, &derived) {
                    outln!("{change}");
                }
            }
            if let Err(e) = now.write(&lock_path) {
                errln!("error: {}: {e}", lock_path.display());
                return exit_codes::FAILURES;
            }
            match before.map(|b| (b.diff(&now), b.accepted == now.accepted)) {
                Some((diff, same_outcomes)) if diff.is_clean() && same_outcomes => {
                    outln!("{} already up to date", lock_path.display())
                }
                Some((diff, _)) => out!("{} updated:\n{}", lock_path.display(), diff.report()),
                None => outln!(
                    "{} written ({} steps)",
                    lock_path.display(),
                    now.steps.len()
                ),
            }
            exit_codes::OK
        }
    }
}

/// Accepts in `lock` what `journal` measured for the scenarios derived from the runbook
/// (`derived`, its step boundaries included): an outcome other than `holds` with what was measured (a reason a reviewer
/// then edits; kept when the outcome is the one already accepted), `holds` by dropping the
/// acceptance. `inconclusive` changes nothing. One line per change.
fn accept_outcomes(
    lock: &mut Lock,
    journal: &rehearsal::Journal,
    derived: &[String],
) -> Vec<String> {
    use rehearsal::{Expected, Outcome};
    let mut changes = Vec::new();
    for record in journal.scenarios.iter().filter(|r| derived.contains(&r.id)) {
        let outcome = match record.actual {
            Some(Outcome::Holds) => Expected::Holds,
            Some(Outcome::Detected) => Expected::Detected,
            Some(Outcome::Breaks) => Expected::Breaks,
            _ => continue,
        };
        let had = lock.accepted_outcome(&record.id);
        if had.unwrap_or(Expected::Holds) == outcome {
            continue;
        }
        lock.accepted.retain(|a| a.scenario != record.id);
        if outcome == Expected::Holds {
            changes.push(format!(
                "{}: holds again, no longer accepted otherwise",
                record.id
            ));
            continue;
        }
        lock.accepted.push(harness::runbook::lock::Accepted {
            scenario: record.id.clone(),
            outcome,
            reason: measured_reason(record),
        });
        changes.push(format!(
            "{}: {outcome} accepted (edit its reason in the lock)",
            record.id
        ));
    }
    lock.accepted.sort_by(|a, b| a.scenario.cmp(&b.scenario));
    changes
}

/// What a scenario measured, in one line: the checks that failed after its steps, what was
/// lost, where it stopped.
fn measured_reason(record: &rehearsal::journal::ScenarioRecord) -> String {
    let failed: Vec<&str> = record
        .checks_after
        .iter()
        .filter(|c| c.outcome != harness::checks::Outcome::Pass)
        .map(|c| c.id.as_str())
        .collect();
    let mut parts = Vec::new();
    if !failed.is_empty() {
        parts.push(format!(
            "checks failed after the steps: {}",
            failed.join(", ")
        ));
    }
    if let Some(p) = &record.probe {
        if p.updates_lost > 0 {
            parts.push(format!("{} accepted updates lost", p.updates_lost));
        }
    }
    if let Some(step) = &record.stopped_at_failed_step {
        parts.push(format!("stopped at {step}"));
    }
    if parts.is_empty() {
        parts.push("measured, not yet explained".into());
    }
    format!("measured {}: {}", record.started, parts.join("; "))
}

fn or_dash(list: &[String]) -> String {
    if list.is_empty() {
        "-".into()
    } else {
        list.join(", ")
    }
}

/// Scenario ids for the table, a family of more than `FAMILY_SHOWN` (ids that share all but
/// their last segment, as `faults/…`) as `faults/* (44)`; `--format json` lists every id.
fn scenario_ids(list: &[String]) -> String {
    const FAMILY_SHOWN: usize = 5;
    let family = |id: &str| id.rsplit_once('/').map_or("", |(f, _)| f).to_string();
    let mut out: Vec<String> = Vec::new();
    let mut seen: Vec<String> = Vec::new();
    for id in list {
        let f = family(id);
        let members = list.iter().filter(|i| family(i) == f).count();
        if members <= FAMILY_SHOWN || f.is_empty() {
            out.push(id.clone());
        } else if !seen.contains(&f) {
            out.push(format!("{f}/* ({members})"));
            seen.push(f);
        }
    }
    or_dash(&out)
}

/// What a rehearsal measured at the step boundaries and against the budgets, per scenario.
fn measured_table(journal: &rehearsal::journal::Journal) -> String {
    let mut out = String::from("\nSTEP BOUNDARIES AND BUDGETS (as rehearsed)\n");
    for s in &journal.scenarios {
        let lines = rehearsal::render::boundary_lines(s);
        let over = s.over_budget();
        let tried = s.boundaries.len();
        out.push_str(&format!(
            "  {:<40} {tried} boundaries, {} unsafe, {} over budget\n",
            s.id,
            s.unsafe_windows().count(),
            over.len()
        ));
        for (what, line) in lines {
            out.push_str(&format!("    {what}: {line}\n"));
        }
        for line in over {
            out.push_str(&format!("    over budget: {line}\n"));
        }
    }
    out
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
    // Looked up by id once, so the table is linear in the runbook's size.
    let scenarios_of: std::collections::HashMap<&str, String> = coverage
        .steps
        .iter()
        .map(|s| (s.step.as_str(), scenario_ids(&s.scenarios)))
        .collect();
    let mut findings_at: std::collections::HashMap<&str, usize> = Default::default();
    for f in findings {
        *findings_at.entry(f.step.as_str()).or_default() += 1;
    }
    let step_row = |out: &mut String, id: &str, title: &str, line: usize, fp: &str| {
        let scenarios = scenarios_of.get(id).map(String::as_str).unwrap_or_default();
        let n = findings_at.get(id).copied().unwrap_or(0);
        out.push_str(&format!(
            "  {id:<15} {title:<50} line {line:<4} {fp}  findings {n:<2} scenarios: {scenarios}\n"
        ));
    };
    for phase in &runbook.phases {
        let budget = phase
            .budget_minutes
            .map(|m| format!(" ({m} min)"))
            .unwrap_or_default();
        let impact = harness::runbook::budget::of_phase(runbook, phase);
        let delay = impact
            .telegram_delay_p99_ms
            .map(|l| format!(", Telegram delay p99 <= {:.1} s", l as f64 / 1000.0))
            .unwrap_or_default();
        out.push_str(&format!(
            "  phase{:<10} {}{budget}, line {}; impact budget: a service down <= {:.1} s{delay} ({})\n",
            phase.number,
            phase.title,
            phase.line,
            impact.service_down_ms as f64 / 1000.0,
            rehearsal::budgets::source(&impact)
        ));
        for s in &phase.steps {
            step_row(&mut out, &s.id, &s.title, s.line, &s.fingerprint);
        }
    }
    for s in &runbook.rollback {
        step_row(&mut out, &s.id, &s.title, s.line, &s.fingerprint);
    }
    out.push_str("\nFINDINGS (hypotheses; a scenario confirms or refutes each by measurement)\n");
    let measured_by: std::collections::HashMap<&str, String> = coverage
        .findings
        .iter()
        .map(|c| (c.finding.as_str(), scenario_ids(&c.scenarios)))
        .collect();
    for f in findings {
        let measured = measured_by
            .get(f.id.as_str())
            .map(String::as_str)
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
            scenario_ids(&s.scenarios),
            "",
            or_dash(&s.checks)
        ));
        if !s.gaps.is_empty() {
            out.push_str(&format!("  {:<22} GAPS:       {}\n", "", s.gaps.join("; ")));
        }
    }
    let not_rehearsable = not_rehearsable(runbook);
    if !not_rehearsable.is_empty() {
        out.push_str("\nNOT REHEARSABLE (inconclusive when rehearsed, with the reason)\n");
        for (id, why) in not_rehearsable {
            out.push_str(&format!("  {id:<28} {why}\n"));
        }
    }
    out
}

/// The scenarios `runbook` calls for that the replica cannot rehearse, with why.
fn not_rehearsable(runbook: &Runbook) -> Vec<(String, String)> {
    scenarios::derived(runbook)
        .into_iter()
        .filter_map(|s| Some((s.id, s.not_rehearsable?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use harness::checks::Outcome;
    use rehearsal::journal::{BoundaryRecord, FlowRecord, ScenarioRecord};
    use rehearsal::Expected;

    #[test]
    fn runbook_show_outcomes_lists_each_scenarios_unsafe_and_recovered_boundaries() {
        let mut s = ScenarioRecord::new(
            "rotate/jwt",
            "JWT",
            Expected::Holds,
            std::time::SystemTime::UNIX_EPOCH,
        );
        let flow = |flow: &str, outcome, failed_ms, evidence: &str| FlowRecord {
            flow: flow.into(),
            service: "gateway".into(),
            outcome,
            failed_ms,
            evidence: evidence.into(),
        };
        for (after, before, flows) in [
            (
                "phase11.step2",
                Some("phase11.step3"),
                vec![flow(
                    "api.token-issued-before-the-step",
                    Outcome::Fail,
                    2_000,
                    "the API answered 401 for a token the gateway issued before the step; still failing after 2.0 s",
                )],
            ),
            (
                "phase11.step3",
                None,
                vec![flow(
                    "telegram.helion",
                    Outcome::Pass,
                    600,
                    "the helion webhook answered 200, after failing for 600 ms (the gateway did not answer)",
                )],
            ),
        ] {
            s.boundaries.push(BoundaryRecord {
                after: after.into(),
                before: before.map(Into::into),
                at_ms: 0,
                lasted_ms: 1_500,
                checked_ms: 0,
                checks: Vec::new(),
                flows,
                declared: None,
            });
        }
        let journal = rehearsal::samples::journal(vec![s], 1_000);
        assert_eq!(
            super::measured_table(&journal),
            "\nSTEP BOUNDARIES AND BUDGETS (as rehearsed)\n\
             \x20 rotate/jwt                               2 boundaries, 1 unsafe, 0 over budget\n\
             \x20   unsafe window: phase11.step2 \u{2192} phase11.step3: the API answered 401 for a token the gateway issued before the step; still failing after 2.0 s (the node stayed there 1.5 s)\n\
             \x20   recovered: after phase11.step3: telegram.helion: the helion webhook answered 200, after failing for 600 ms (the gateway did not answer)\n"
        );
    }
}
