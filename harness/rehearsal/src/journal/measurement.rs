//! A step's typed measurements (`Measurement`), and each said in a sentence.

#[allow(unused_imports)]
use super::*;

/// What a step measured on the replica that a finding needs, as data; `verdicts` decides from
/// it and the report renders it (`Display`, one line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Measurement {
    /// `docker logs … | grep` without `2>&1`: lines with "error" on each stream of `service`,
    /// and lines in all (of the last 100 on each stream).
    LogStreams {
        service: String,
        errors_on_stdout: usize,
        errors_on_stderr: usize,
        #[serde(default)]
        lines_on_stdout: usize,
        #[serde(default)]
        lines_on_stderr: usize,
    },
    /// Where `tar -x` ran: the node's directory or elsewhere.
    RestoreDirectory {
        in_node_directory: bool,
        directory: String,
        exit_code: Option<i32>,
    },
    /// The backup written again during this step: the secrets it now holds rotated values of.
    BackupOverwritten {
        backup: String,
        rotated: Vec<String>,
    },
    /// A value written in the runbook (`name`), run as written: now the server's password, or
    /// the value in `env_files` `.env` files.
    ExampleValue {
        name: String,
        on_server: bool,
        env_files: usize,
    },
    /// A block that elides restarts ("… continue for all services"): the services using
    /// DB_PASSWORD it names and those it never restarts.
    Elision {
        restarted: Vec<String>,
        never_restarted: Vec<String>,
    },
    /// The backup the step wrote, read without a passphrase.
    Backup {
        backup: String,
        env_files: usize,
        secret_values: usize,
        mode: u32,
    },
    /// What a `sed` changed: variable → number of files.
    SedChanged {
        changed: std::collections::BTreeMap<String, usize>,
    },
    /// A variable a `sed` meant to set that differs from the command's value in `wrong` of
    /// `files` files; `rewritten`: sed changed it, but not to that value.
    SedMangled {
        name: String,
        wrong: usize,
        files: usize,
        rewritten: bool,
    },
    /// The backup still on the node when the scenario ended.
    BackupLeftOnNode { backup: String, mode: u32 },
    /// The variables whose value a step changed in any of the node's `.env` files (names
    /// only), whoever changed them: a command, or the operator's hand.
    EnvWritten { variables: Vec<String> },
    /// A step that edits `edited=` lines of the `.env` files, where the node profile has
    /// services read `secret` elsewhere: the places (variable and service) whose value, as the
    /// service reads it, the step left as it was, and those where it changed or already is the
    /// value the step wrote.
    WiringEdited {
        secret: String,
        edited: String,
        unchanged: Vec<String>,
        changed: Vec<String>,
    },
}

impl Measurement {
    /// What was measured, in two words, for a report's line (`measured sed: …`).
    pub fn label(&self) -> &'static str {
        match self {
            Measurement::LogStreams { .. } => "log streams",
            Measurement::RestoreDirectory { .. } => "restore directory",
            Measurement::BackupOverwritten { .. } => "backup overwrite",
            Measurement::ExampleValue { .. } => "example value",
            Measurement::Elision { .. } => "elision",
            Measurement::Backup { .. } => "backup",
            Measurement::SedChanged { .. } => "sed",
            Measurement::SedMangled { .. } => "sed mangled",
            Measurement::BackupLeftOnNode { .. } => "backup left",
            Measurement::EnvWritten { .. } => "env written",
            Measurement::WiringEdited { .. } => "wiring edited",
        }
    }
}

/// `a, b`, or `none`.
pub(super) fn list_or_none(list: &[String]) -> String {
    if list.is_empty() {
        "none".to_string()
    } else {
        list.join(", ")
    }
}

/// `DB_PASSWORD in 5 file(s), X in 1 file(s)`.
pub(super) fn files_changed(changed: &std::collections::BTreeMap<String, usize>) -> String {
    changed
        .iter()
        .map(|(k, n)| format!("{k} in {n} file(s)"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Where `tar -x` of the rollback ran, in words.
pub(super) fn restore_directory(
    f: &mut std::fmt::Formatter<'_>,
    in_node_directory: bool,
    directory: &str,
    exit_code: i32,
) -> std::fmt::Result {
    if in_node_directory {
        write!(
            f,
            "`tar -x` ran in the node's directory (the shell was still there from an earlier `cd`), exit {exit_code}"
        )
    } else {
        write!(
            f,
            "`tar -x` ran in {directory}, not the node's directory, exit {exit_code}"
        )
    }
}

/// What a backup written again the same day holds, in words.
pub(super) fn backup_overwritten(
    f: &mut std::fmt::Formatter<'_>,
    backup: &str,
    rotated: &[String],
) -> std::fmt::Result {
    if rotated.is_empty() {
        write!(
            f,
            "{backup} was written again; it still holds only pre-rotation values"
        )
    } else {
        write!(
            f,
            "{backup} was written again the same day and now holds rotated values of {}; the pre-rotation values of those are in no backup",
            rotated.join(", ")
        )
    }
}

/// Where the runbook's example value ended up, in words.
pub(super) fn example_value(
    f: &mut std::fmt::Formatter<'_>,
    name: &str,
    on_server: bool,
    env_files: usize,
) -> std::fmt::Result {
    if on_server {
        write!(
            f,
            "the server's password is now the value written in the runbook ({name}), as published"
        )
    } else {
        write!(
            f,
            "the value written in the runbook ({name}) is now the password in {env_files} .env file(s)"
        )
    }
}

/// What a `sed` block changed, in words.
pub(super) fn sed_changed(
    f: &mut std::fmt::Formatter<'_>,
    changed: &std::collections::BTreeMap<String, usize>,
) -> std::fmt::Result {
    if changed.is_empty() {
        f.write_str("it changed no variable in any file")
    } else if changed.keys().all(|k| k == "DB_PASSWORD") {
        write!(
            f,
            "it changed {}; no other variable was touched on this node (no collateral rewrite)",
            files_changed(changed)
        )
    } else {
        write!(
            f,
            "it changed more than DB_PASSWORD: {}",
            files_changed(changed)
        )
    }
}

/// How a `sed` block left a variable different from its command's value, in words.
pub(super) fn sed_mangled(
    f: &mut std::fmt::Formatter<'_>,
    name: &str,
    wrong: usize,
    files: usize,
    rewritten: bool,
) -> std::fmt::Result {
    let how = if rewritten {
        "sed rewrote it, but not to the value its command gives"
    } else {
        "sed changed nothing (its error is hidden by `find -exec`)"
    };
    write!(
        f,
        "{name} differs from the command's value in {wrong} of {files} files: {how}"
    )
}
