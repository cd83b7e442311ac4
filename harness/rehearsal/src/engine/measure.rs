//! What a step measured on the replica that a finding needs, as typed `Measurement`s: the log
//! streams a `docker logs … | grep` reads, what a backup holds and whether a rerun overwrote
//! it, where the runbook's example values ended up, the services an elided block never
//! restarts, what a `sed` changed, and containers whose env differs from their `.env`.
//! `verdicts.rs` decides from these; nothing here decides.

use crate::journal::{Measurement, StepRecord};
use harness::checks::secrets::SecretSet;
use harness::envfile::EnvFile;
use harness::replica_root::SECRET_NAMES;
use harness::runbook::Step;
use harness::services::Service;
use harness::stack::Stack;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// What the node held before a step's blocks ran.
pub struct Before {
    env: Option<BTreeMap<Service, EnvFile>>,
    /// What Compose would give each node container now (`Stack::expected_env`).
    expected: BTreeMap<Service, Vec<(String, String)>>,
    had_backup: bool,
    backup: Option<Vec<u8>>,
}

impl Before {
    pub fn take(stack: &Stack, backup: Option<&Path>) -> Before {
        Before {
            env: stack.current_env().ok(),
            expected: Service::ALL
                .into_iter()
                .filter_map(|s| Some((s, stack.expected_env(s).ok()?)))
                .collect(),
            had_backup: backup.is_some(),
            backup: backup.and_then(|p| std::fs::read(p).ok()),
        }
    }
}

/// A step's measurements, and notes for what could not be measured.
#[derive(Default)]
pub struct Measured {
    pub measurements: Vec<Measurement>,
    pub notes: Vec<String>,
}

/// Everything measured once a step's blocks have run (`backup`: the runbook's backup found so
/// far; `literals`: the values the runbook writes literally).
pub fn after_step(
    stack: &Stack,
    step: &Step,
    record: &StepRecord,
    before: &Before,
    backup: Option<&Path>,
    literals: &[(String, String)],
) -> Measured {
    let mut out = Measured::default();
    if let (Some(bytes), Some(path)) = (&before.backup, backup) {
        out.measurements
            .extend(backup_overwrite(stack, path, bytes));
    }
    out.measurements
        .extend(example_values(stack, step, record, literals));
    out.measurements.extend(elision(step));
    if let (false, Some(path)) = (before.had_backup, backup) {
        match backup_read_in_clear(path) {
            Ok(m) => out.measurements.push(m),
            Err(note) => out.notes.push(note),
        }
    }
    if step.code.iter().any(|b| b.text.contains("sed ")) {
        if let (Some(env_before), Ok(after)) = (&before.env, stack.current_env()) {
            out.measurements.extend(sed(step, env_before, &after));
        }
    }
    out
}

/// For each secret the step edits in its usual variable where the node profile has services
/// read it elsewhere: where, as each service reads it, it changed (or already is the new value,
/// `new`, or what the step wrote) and where it did not.
pub fn wiring_edited(
    stack: &Stack,
    step: &Step,
    before: &Before,
    new: &harness::replica_root::NodeSecrets,
) -> Vec<Measurement> {
    let profile = stack.profile();
    let default = harness::profile::NodeProfile::replica_default();
    let mut out = Vec::new();
    for block in step.code.iter().filter(|b| b.is_shell()) {
        for missed in profile.missed_by_edit(&block.text) {
            // What the step wrote into the edited variable: a service already reading that
            // value (an earlier step wrote it where it reads it) is not left behind.
            let written: Vec<String> = stack
                .current_env()
                .map(|files| {
                    files
                        .values()
                        .filter_map(|f| f.get(&missed.edited).map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            let (mut unchanged, mut changed) = (Vec::new(), Vec::new());
            for service in Service::ALL {
                let Some(w) = profile.wiring_of(service, &missed.secret) else {
                    continue;
                };
                let Some(d) = default.wiring_of(service, &missed.secret) else {
                    continue;
                };
                if d == w || d.variable != missed.edited {
                    continue;
                }
                let read = |env: &[(String, String)]| {
                    env.iter()
                        .find(|(k, _)| *k == w.variable)
                        .and_then(|(_, v)| w.decode(v))
                };
                let was = before.expected.get(&service).and_then(|e| read(e));
                let now = stack.expected_env(service).ok().and_then(|e| read(&e));
                let place = format!("`{}` of {}", w.variable, service.key());
                let current = now
                    .as_ref()
                    .is_some_and(|v| written.contains(v) || v == new.get(&missed.secret));
                if was == now && !current {
                    unchanged.push(place);
                } else {
                    changed.push(place);
                }
            }
            out.push(Measurement::WiringEdited {
                secret: missed.secret,
                edited: missed.edited,
                unchanged,
                changed,
            });
        }
    }
    out
}

/// `docker logs … | grep` without `2>&1`: the pipe sees stdout only.
pub fn reads_logs_through_a_pipe(text: &str) -> bool {
    text.contains("docker logs") && text.contains("grep") && !text.contains("2>&1")
}

/// What the pipe carried (stdout) against what it never sees (stderr), per service the block
/// names.
pub async fn log_streams(stack: &Stack, text: &str) -> Vec<Measurement> {
    let errors = |t: &str| {
        t.lines()
            .filter(|l| l.to_lowercase().contains("error"))
            .count()
    };
    let mut out = Vec::new();
    for service in Service::NODE
        .into_iter()
        .filter(|s| text.contains(s.production_name()))
    {
        if let Ok((stdout, stderr)) = stack.logs_by_stream(service, 100).await {
            out.push(Measurement::LogStreams {
                service: service.production_name().to_string(),
                errors_on_stdout: errors(&stdout),
                errors_on_stderr: errors(&stderr),
                lines_on_stdout: stdout.lines().count(),
                lines_on_stderr: stderr.lines().count(),
            });
        }
    }
    out
}

/// A backup overwritten by a rerun the same day: which of its values are no longer the
/// pre-rotation ones.
fn backup_overwrite(stack: &Stack, path: &Path, before: &[u8]) -> Option<Measurement> {
    if std::fs::read(path).ok()? == before {
        return None;
    }
    let initial = stack.initial_secrets();
    let rotated: BTreeSet<String> = SecretSet::previous_with(path, None)
        .map(|set| {
            set.files
                .values()
                .flatten()
                .filter(|(k, v)| SECRET_NAMES.contains(&k.as_str()) && initial.get(k) != v.as_str())
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default();
    Some(Measurement::BackupOverwritten {
        backup: file_name(path),
        rotated: rotated.into_iter().collect(),
    })
}

/// The runbook's example values, run as written: the server's password now, or in `.env`
/// files a `sed` wrote.
fn example_values(
    stack: &Stack,
    step: &Step,
    record: &StepRecord,
    literals: &[(String, String)],
) -> Vec<Measurement> {
    let exits: Vec<Option<i32>> = record
        .actions
        .iter()
        .filter_map(|a| a.shell.as_ref().map(|s| s.exit_code))
        .collect();
    let mut out = Vec::new();
    for (name, value) in literals {
        if !step.code.iter().any(|b| b.text.contains(value.as_str())) || exits.is_empty() {
            continue;
        }
        let in_files = stack
            .current_env()
            .map(|files| {
                files
                    .values()
                    .filter(|f| f.vars().iter().any(|(_, v)| v == value))
                    .count()
            })
            .unwrap_or(0);
        let altered =
            step.code.iter().any(|b| b.text.contains("ALTER")) && exits.contains(&Some(0));
        if altered || (in_files > 0 && step.code.iter().any(|b| b.text.contains("sed "))) {
            out.push(Measurement::ExampleValue {
                name: name.clone(),
                on_server: altered,
                env_files: in_files,
            });
        }
    }
    out
}

/// An elision ("# ... continue for all services") where restarts should be: which services
/// using DB_PASSWORD the block never names.
fn elision(step: &Step) -> Option<Measurement> {
    if !step
        .code
        .iter()
        .any(|b| b.text.contains("continue for all"))
    {
        return None;
    }
    let (restarted, never_restarted): (Vec<Service>, Vec<Service>) = Service::NODE
        .into_iter()
        .filter(|s| s.uses_db())
        .partition(|s| {
            step.code
                .iter()
                .any(|b| b.text.contains(s.production_name()))
        });
    let names =
        |v: Vec<Service>| -> Vec<String> { v.iter().map(|s| s.production_name().into()).collect() };
    Some(Measurement::Elision {
        restarted: names(restarted),
        never_restarted: names(never_restarted),
    })
}

/// The backup the step wrote, read as anyone who finds the file would: without the passphrase.
/// `Err`: a note saying it is not a plain archive.
fn backup_read_in_clear(path: &Path) -> Result<Measurement, String> {
    match SecretSet::previous_with(path, None) {
        Ok(set) => Ok(Measurement::Backup {
            backup: file_name(path),
            env_files: set.files.len(),
            secret_values: set.secret_values().len(),
            mode: file_mode(path),
        }),
        Err(e) => Err(format!(
            "backup {} is not a plain archive: {e}",
            path.display()
        )),
    }
}

/// What a `sed` changed in the `.env` files, and each variable its command meant to set that
/// now differs from the command's value.
fn sed(
    step: &Step,
    before: &BTreeMap<Service, EnvFile>,
    after: &BTreeMap<Service, EnvFile>,
) -> Vec<Measurement> {
    let mut changed: BTreeMap<String, usize> = BTreeMap::new();
    for (s, file) in after {
        let old: BTreeMap<String, String> = before
            .get(s)
            .map(|f| f.vars().into_iter().collect())
            .unwrap_or_default();
        for (k, v) in file.vars() {
            if old.get(&k) != Some(&v) {
                *changed.entry(k).or_default() += 1;
            }
        }
    }
    let mut out = vec![Measurement::SedChanged {
        changed: changed.clone(),
    }];
    let intended = step
        .code
        .iter()
        .flat_map(|b| harness::runbook::findings::sed_assignments(&b.text));
    for (name, value) in intended {
        let holding: Vec<bool> = after
            .values()
            .filter_map(|f| f.get(&name).map(|v| v == value))
            .collect();
        let wrong = holding.iter().filter(|ok| !**ok).count();
        if wrong > 0 {
            out.push(Measurement::SedMangled {
                rewritten: changed.contains_key(&name),
                name,
                wrong,
                files: holding.len(),
            });
        }
    }
    out
}

/// The variables whose value differs between two reads of the node's `.env` files (set,
/// changed or removed in any of them), sorted, each once.
pub fn env_written(
    before: &BTreeMap<Service, EnvFile>,
    after: &BTreeMap<Service, EnvFile>,
) -> Vec<String> {
    let vars = |files: &BTreeMap<Service, EnvFile>, s: &Service| -> BTreeMap<String, String> {
        files
            .get(s)
            .map(|f| f.vars().into_iter().collect())
            .unwrap_or_default()
    };
    let mut out: Vec<String> = Vec::new();
    for s in before.keys().chain(after.keys()) {
        let (b, a) = (vars(before, s), vars(after, s));
        for k in b.keys().chain(a.keys()) {
            if b.get(k) != a.get(k) && !out.contains(k) {
                out.push(k.clone());
            }
        }
    }
    out.sort();
    out
}

/// Every node container whose env differs from what Compose would give it now, from its
/// `.env` and the project `.env` it interpolates (`service: VAR, VAR`).
pub async fn stale_env(stack: &Stack) -> Vec<String> {
    let mut out = Vec::new();
    for s in Service::NODE {
        if let (Ok(env), Ok(expected)) = (stack.container_env(s).await, stack.expected_env(s)) {
            let stale: Vec<String> = expected
                .into_iter()
                .filter(|(k, v)| env.get(k) != Some(v))
                .map(|(k, _)| k)
                .collect();
            if !stale.is_empty() {
                out.push(format!("{}: {}", s.production_name(), stale.join(", ")));
            }
        }
    }
    out
}

/// A path's file name, for a measurement (`secrets_backup_20261204.tar.gz`).
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("?")
        .to_string()
}

/// A file's permission bits (0 when it cannot be read).
pub fn file_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0)
}
