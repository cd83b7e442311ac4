//! One runbook step: an operator's hand or its shell blocks under a deadline (the phase's budget
//! compressed and the block's own `timeout` bounds), and what the operator needs around it.

#[allow(unused_imports)]
use super::*;

/// The sum of the `timeout N` bounds a script sets on its own commands (seconds, as `timeout`
/// reads a bare number or one ending in `s`).
pub(super) fn own_timeouts(script: &str) -> Duration {
    let words: Vec<&str> = script.split_whitespace().collect();
    let secs: f64 = words
        .windows(2)
        .filter(|w| w[0] == "timeout")
        .filter_map(|w| w[1].trim_end_matches('s').parse::<f64>().ok())
        .filter(|n| n.is_finite() && *n > 0.0)
        .sum();
    Duration::from_secs_f64(secs.min(24.0 * 3600.0))
}

/// How many steps `scenario`'s phases have in `runbook`: the boundaries an operator's pace
/// adds to its time.
pub(super) fn steps_of(scenario: &Scenario, runbook: &Runbook) -> u32 {
    scenario
        .phases
        .iter()
        .filter_map(|n| runbook.phases.iter().find(|p| p.number == *n))
        .map(|p| p.steps.len() as u32)
        .sum()
}

/// A scenario's deadline: `per_scenario` for up to four phases, a quarter of it more for each
/// phase beyond (the v2 rotation's twelve phases get three times as long as one phase).
pub(super) fn scenario_deadline(per_scenario: Duration, phases: usize) -> Duration {
    per_scenario + per_scenario / 4 * phases.saturating_sub(4) as u32
}

/// The values an operator exports from the team's secret store before pasting the runbook's
/// blocks (a runbook names them instead of writing them on a command line): `NEW_<SECRET>`, the
/// new value of each secret, and `BACKUP_PASSPHRASE`, fresh for each scenario.
/// Writes `secrets` (the node's before the steps) into `dir` laid out like the root (each
/// service's `.env`, as the replica's own are written), as `verify --previous DIR` reads them.
pub(super) fn write_previous(
    dir: &std::path::Path,
    secrets: &NodeSecrets,
    options: &harness::replica_root::RootOptions,
) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| e.to_string())?;
    harness::replica_root::ReplicaRoot::create(dir, secrets, options)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

pub(super) fn operator_env(new: &NodeSecrets) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = SECRET_NAMES
        .iter()
        .map(|name| (format!("NEW_{name}"), new.get(name).to_string()))
        .collect();
    env.push((
        "BACKUP_PASSPHRASE".into(),
        NodeSecrets::generate_one("BACKUP_PASSPHRASE"),
    ));
    env
}

/// Runs one runbook step: an operator's hand where the step is prose or a file edit, its shell
/// blocks as written otherwise.
pub(super) async fn run_step(ctx: &mut Ctx<'_>, step: &Step, phase_minutes: u32) -> StepRecord {
    if let Ok(mut s) = ctx.current_step.lock() {
        *s = step.id.clone();
    }
    let mut record = StepRecord::new(&step.id, &step.title);
    record.started_ms = ctx.t0.elapsed().as_millis() as u64;
    let env_before = ctx.stack.current_env().ok();
    act_for_operator(ctx, step, &mut record).await;
    let before = measure::Before::take(ctx.stack, ctx.backup.as_deref());
    let deadline = step_deadline(&step.title, phase_minutes, ctx.options.time_scale);
    for block in step.code.iter().filter(|b| b.is_shell()) {
        run_block(ctx, &block.text, deadline, &mut record).await;
    }
    let literals = ctx.literals.clone();
    let measured = measure::after_step(
        ctx.stack,
        step,
        &record,
        &before,
        ctx.backup.as_deref(),
        &literals,
    );
    record.measurements.extend(measured.measurements);
    record
        .measurements
        .extend(measure::wiring_edited(ctx.stack, step, &before, &ctx.new));
    if let (Some(before), Ok(after)) = (&env_before, ctx.stack.current_env()) {
        let variables = measure::env_written(before, &after);
        if !variables.is_empty() {
            record
                .measurements
                .push(Measurement::EnvWritten { variables });
        }
    }
    record
        .actions
        .extend(measured.notes.iter().map(|n| ActionRecord::operator(n)));
    // After a restart, compare every container with its file: the measurement behind
    // `restart-keeps-stale-env`.
    if step.code.iter().any(|b| b.text.contains("restart")) {
        record.env_compared = true;
        record.stale_env = measure::stale_env(ctx.stack).await;
    }
    record.ended_ms = ctx.t0.elapsed().as_millis() as u64;
    if step.code.is_empty() && record.actions.is_empty() {
        record.actions.push(ActionRecord::operator(
            "no command in the runbook; nothing was done",
        ));
    }
    record
}

/// The operator's hand where the step is prose or a file edit; a key revoked at a provider is
/// exported to every later block as `REVOKED_KEYS`.
pub(super) async fn act_for_operator(ctx: &mut Ctx<'_>, step: &Step, record: &mut StepRecord) {
    let acted = crate::operator::act(ctx.stack, step, &ctx.new).await;
    for note in acted.notes {
        record
            .actions
            .push(ActionRecord::operator(&ctx.redactor.redact(&note)));
    }
    if !acted.revoked.is_empty() {
        ctx.revoked.extend(acted.revoked);
        ctx.operator_env.retain(|(k, _)| k != "REVOKED_KEYS");
        ctx.operator_env
            .push(("REVOKED_KEYS".into(), ctx.revoked.join(" ")));
    }
}

/// A step's deadline: the time its own title gives ("Monitor for 5 minutes"), compressed;
/// otherwise its phase's budget, compressed, but at least 30 s, so that a command that is
/// merely slow (eight `docker restart`s in a row) does not pass for one that never ends.
pub(super) fn step_deadline(title: &str, phase_minutes: u32, time_scale: f64) -> Duration {
    match minutes_in(title) {
        Some(m) => Duration::from_secs_f64((m * 60.0 * time_scale).max(1.0)),
        None => Duration::from_secs_f64((phase_minutes as f64 * 60.0 * time_scale).max(30.0)),
    }
}

/// Runs one shell block of a step on the host against the replica (as written first, when it
/// holds a placeholder), and records it with what it measured as it ran.
pub(super) async fn run_block(
    ctx: &mut Ctx<'_>,
    text: &str,
    deadline: Duration,
    record: &mut StepRecord,
) {
    let rewriting = shell::Rewriting::for_stack(ctx.stack, ctx.options.time_scale);
    let script = shell::rewrite(text, &rewriting);
    // A block that bounds its own waits (`timeout 60 …`) is given those bounds and 30 s
    // more: its own timeout, not the rehearsal's, says when a wait has failed.
    let deadline = deadline.max(own_timeouts(&script) + Duration::from_secs(30));
    let shims = ctx.stack.shim_dir();
    if script
        .lines()
        .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        record.actions.push(ActionRecord::operator(
            "the block holds only comments: nothing to run",
        ));
        return;
    }
    let date = humantime::format_rfc3339(SystemTime::now()).to_string()[..10].replace('-', "");
    let filled = script.replace("YYYYMMDD", &date);
    let run_script = |script: String, cwd: PathBuf| {
        let (redactor, env) = (ctx.redactor.clone(), ctx.operator_env.clone());
        let shims = shims.clone();
        async move { shell::run(text, &script, &cwd, deadline, &redactor, &shims, &env).await }
    };
    if filled != script {
        // Run it as written first: that is what a pasted placeholder does.
        let (literal, _) = run_script(script.clone(), ctx.cwd.clone()).await;
        record.actions.push(ActionRecord::shell(
            literal,
            "as written (placeholder unfilled)",
        ));
    }
    let ran_in = ctx.cwd.clone();
    let (run, cwd) = run_script(filled.clone(), ctx.cwd.clone()).await;
    ctx.cwd = cwd;
    if measure::reads_logs_through_a_pipe(text) {
        let measured = measure::log_streams(ctx.stack, text).await;
        record.measurements.extend(measured);
    }
    if text.contains("tar -x") {
        record.measurements.push(Measurement::RestoreDirectory {
            in_node_directory: ran_in == ctx.stack.root().dir(),
            directory: ran_in.display().to_string(),
            exit_code: run.exit_code,
        });
    }
    let note = if filled != script {
        "with the placeholder filled in"
    } else {
        ""
    };
    record.ok &= run.exit_code == Some(0);
    record.actions.push(ActionRecord::shell(run, note));
    // Lifecycle commands move the replica's ports.
    for s in Service::ALL {
        let _ = ctx.stack.refresh_ports(s).await;
    }
    if let Some(backup) = find_backup(&ctx.cwd).or_else(|| find_backup(ctx.stack.root().dir())) {
        ctx.backup.get_or_insert(backup);
    }
}

/// `5` from "Monitor for 5 minutes".
pub(super) fn minutes_in(title: &str) -> Option<f64> {
    let words: Vec<&str> = title.split_whitespace().collect();
    words.windows(2).find_map(|w| {
        let unit = w[1].trim_end_matches([':', '.', ')', ',']).to_lowercase();
        if unit.starts_with("minute") || unit == "min" {
            w[0].parse().ok()
        } else {
            None
        }
    })
}

/// The runbook's secrets backup in `dir`, as the runbook as written makes it
/// (`secrets_backup_*.tar.gz`). The v2 runbook's encrypted ones in `backups/` are not taken:
/// the measurements made of this one (what it holds in clear, that nothing expires it) are the
/// as-written runbook's findings.
pub(super) fn find_backup(dir: &std::path::Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("secrets_backup_") && n.ends_with(".tar.gz"))
        })
}
