//! Every command of `cargo xtask` with each of its arguments, by what the argument is. The
//! hardening tests (`xtask/tests/every_command.rs`) drive every file argument and every
//! command's stdout from this table; `xtask`'s own unit test compares it with clap's command
//! tree, so a command or an argument added fails there until it is listed here.

/// What an argument takes, as far as files go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)] // each user of the table reads part of it
pub enum Kind {
    /// a file read (a FIFO, a directory, a missing file: refused, exit 2)
    InputFile,
    /// a file or a directory laid out like the node's root, read
    InputFileOrDir,
    /// a directory read (a file there is refused, exit 2)
    InputDir,
    /// a file written (through a temporary file renamed over it: a planted symlink is
    /// replaced, its target untouched; a missing parent or a directory refused, exit 2)
    OutputFile,
    /// `KIND=FILE`, the FILE written as [`Kind::OutputFile`]
    OutputFormatFile,
    /// a directory written into (made one level deep at most; a file there refused, exit 2)
    OutputDir,
    /// anything else that takes a value
    Value,
    /// a switch
    Flag,
}

/// One argument: the command (subcommands joined by a space), the argument (`--long`, or the
/// positional's value name), what it takes, and how to drive it: the command line, where `{}`
/// is the path under test, `{target}` a valid target file, `{journal}` a directory holding a
/// valid journal, `{out}` a fresh, empty directory. `None`: not driven (not a file).
pub type Entry = (
    &'static str,
    &'static str,
    Kind,
    Option<&'static [&'static str]>,
);

use Kind::*;

pub const ARGUMENTS: &[Entry] = &[
    ("up", "--timeout", Value, None),
    (
        "up",
        "--node-profile",
        InputFile,
        Some(&["up", "--node-profile", "{}"]),
    ),
    ("status", "IDS", Value, None),
    ("down", "IDS", Value, None),
    ("down", "--all", Flag, None),
    ("test", "--full", Flag, None),
    ("test", "NEXTEST", Value, None),
    (
        "rehearse",
        "--runbook",
        InputFile,
        Some(&["rehearse", "--list", "--runbook", "{}"]),
    ),
    ("rehearse", "--only", Value, None),
    ("rehearse", "--list", Flag, None),
    ("rehearse", "--random", Value, None),
    ("rehearse", "--seed", Value, None),
    ("rehearse", "--rate", Value, None),
    ("rehearse", "--telegram-max-connections", Value, None),
    ("rehearse", "--time-scale", Value, None),
    ("rehearse", "--operator-pace", Value, None),
    ("rehearse", "--parallel", Value, None),
    (
        "rehearse",
        "--out",
        OutputDir,
        Some(&["rehearse", "--out", "{}"]),
    ),
    ("rehearse", "--shard", Value, None),
    ("rehearse", "--keep", Flag, None),
    ("rehearse", "--skip-inapplicable", Flag, None),
    (
        "rehearse",
        "--node-profile",
        InputFile,
        Some(&["rehearse", "--list", "--node-profile", "{}"]),
    ),
    (
        "verify",
        "--target",
        InputFile,
        Some(&["verify", "--target", "{}"]),
    ),
    (
        "verify",
        "--targets",
        InputDir,
        Some(&["verify", "--targets", "{}"]),
    ),
    ("verify", "--jobs", Value, None),
    ("verify", "--target-timeout", Value, None),
    ("verify", "--replica", Value, None),
    (
        "verify",
        "--previous",
        InputFileOrDir,
        Some(&["verify", "--target", "{target}", "--previous", "{}"]),
    ),
    ("verify", "--since", Value, None),
    ("verify", "--only", Value, None),
    ("verify", "--skip", Value, None),
    (
        "verify",
        "--format",
        OutputFormatFile,
        Some(&["verify", "--target", "{target}", "--format", "json={}"]),
    ),
    ("verify", "--list", Flag, None),
    ("verify", "--watch", Flag, None),
    ("verify", "--interval", Value, None),
    ("verify", "--listen", Value, None),
    (
        "verify",
        "--out",
        OutputDir,
        Some(&["verify", "--target", "{target}", "--watch", "--out", "{}"]),
    ),
    (
        "verify",
        "--runbook",
        InputFile,
        Some(&[
            "verify",
            "--target",
            "{target}",
            "--watch",
            "--runbook",
            "{}",
        ]),
    ),
    (
        "verify",
        "--node-profile",
        InputFile,
        Some(&["verify", "--target", "{target}", "--node-profile", "{}"]),
    ),
    (
        "runbook show",
        "--runbook",
        InputFile,
        Some(&["runbook", "show", "--runbook", "{}"]),
    ),
    ("runbook show", "--format", Value, None),
    (
        "node profile",
        "--compose",
        InputFile,
        Some(&["node", "profile", "--compose", "{}"]),
    ),
    (
        "node profile",
        "--out",
        OutputFile,
        Some(&["node", "profile", "--compose", "{compose}", "--out", "{}"]),
    ),
    (
        "runbook show",
        "--outcomes",
        InputDir,
        Some(&["runbook", "show", "--outcomes", "{}"]),
    ),
    (
        "runbook check",
        "--runbook",
        InputFile,
        Some(&["runbook", "check", "--runbook", "{}"]),
    ),
    (
        "runbook check",
        "--lock",
        InputFile,
        Some(&["runbook", "check", "--lock", "{}"]),
    ),
    (
        "runbook accept",
        "--runbook",
        InputFile,
        Some(&[
            "runbook",
            "accept",
            "--runbook",
            "{}",
            "--lock",
            "{out}/lock",
        ]),
    ),
    (
        "runbook accept",
        "--lock",
        OutputFile,
        Some(&["runbook", "accept", "--lock", "{}"]),
    ),
    (
        "runbook accept",
        "--outcomes",
        InputDir,
        Some(&[
            "runbook",
            "accept",
            "--lock",
            "{out}/lock",
            "--outcomes",
            "{}",
        ]),
    ),
    ("bench up", "--runs", Value, None),
    ("bench up", "--harness-only", Flag, None),
    ("bench up", "--background-load", Value, None),
    ("bench up", "--parallel", Value, None),
    ("bench restarts", "--runs", Value, None),
    ("bench restarts", "--background-load", Value, None),
    ("bench verify", "--runs", Value, None),
    ("bench verify", "--targets", Value, None),
    ("bench verify", "--replicas", Value, None),
    ("bench verify", "--jobs", Value, None),
    ("bench probe", "--seconds", Value, None),
    ("bench watch", "--runs", Value, None),
    ("bench watch", "--seconds", Value, None),
    ("bench watch", "--interval", Value, None),
    ("bench watch", "--skip", Value, None),
    ("bench rehearse", "--runs", Value, None),
    ("bench rehearse", "--only", Value, None),
    (
        "bench rehearse",
        "--runbook",
        InputFile,
        Some(&["bench", "rehearse", "--runbook", "{}"]),
    ),
    ("bench rehearse", "--rate", Value, None),
    ("bench rehearse", "--background-load", Value, None),
    (
        "report merge",
        "DIRS",
        InputDir,
        Some(&["report", "merge", "{}", "--out", "{out}"]),
    ),
    (
        "report merge",
        "--out",
        OutputDir,
        Some(&["report", "merge", "{journal}", "--out", "{}"]),
    ),
    (
        "report render",
        "DIR",
        InputDir,
        Some(&["report", "render", "{}", "--out", "{out}"]),
    ),
    (
        "report render",
        "--out",
        OutputDir,
        Some(&["report", "render", "{journal}", "--out", "{}"]),
    ),
    (
        "report compare",
        "A",
        InputDir,
        Some(&["report", "compare", "{}", "{journal}"]),
    ),
    (
        "report compare",
        "B",
        InputDir,
        Some(&["report", "compare", "{journal}", "{}"]),
    ),
    (
        "report compare",
        "--out",
        OutputFile,
        Some(&["report", "compare", "{journal}", "{journal}", "--out", "{}"]),
    ),
    (
        "report compare",
        "--html",
        OutputFile,
        Some(&[
            "report",
            "compare",
            "{journal}",
            "{journal}",
            "--html",
            "{}",
        ]),
    ),
];

/// Every command once, as a user runs it when its stdout goes to `| head -1`: the command line
/// (placeholders as in [`ARGUMENTS`]) and the exit code it has with nothing reading its
/// stdout: 0 for a command that had something to print (whoever closed the pipe has what they
/// wanted: git and ripgrep end so), else its own (here: 3, no Docker engine).
pub const STDOUT_RUNS: &[(&str, &[&str], i32)] = &[
    ("images", &["images"], 3),
    ("up", &["up"], 3),
    ("status", &["status"], 3),
    ("down", &["down"], 3),
    ("test", &["test"], 3),
    ("rehearse", &["rehearse", "--list"], 0),
    ("verify", &["verify", "--target", "{target}"], 0),
    ("runbook show", &["runbook", "show"], 0),
    (
        "node profile",
        &["node", "profile", "--compose", "{compose}"],
        0,
    ),
    ("runbook check", &["runbook", "check"], 0),
    (
        "runbook accept",
        &["runbook", "accept", "--lock", "{out}/lock"],
        0,
    ),
    ("bench up", &["bench", "up"], 3),
    ("bench verify", &["bench", "verify"], 3),
    ("bench probe", &["bench", "probe"], 3),
    ("bench watch", &["bench", "watch"], 3),
    ("bench restarts", &["bench", "restarts"], 3),
    ("bench rehearse", &["bench", "rehearse"], 3),
    (
        "report merge",
        &["report", "merge", "{journal}", "--out", "{out}"],
        0,
    ),
    (
        "report render",
        &["report", "render", "{journal}", "--out", "{out}"],
        0,
    ),
    (
        "report compare",
        &["report", "compare", "{journal}", "{journal}"],
        0,
    ),
];
