//! Exit codes of every `cargo xtask` command, documented in one place: the constants, and
//! [`TABLE`], from which the README's table and each command's `--help` are rendered (a test
//! holds the README to [`markdown_table`]).

/// Success.
pub const OK: i32 = 0;
/// Ran, and found failures.
pub const FAILURES: i32 = 1;
/// Usage or configuration error.
pub const USAGE: i32 = 2;
/// No Docker engine reachable.
pub const NO_DOCKER: i32 = 3;
/// Image or binary build failed.
pub const BUILD_FAILED: i32 = 4;
/// The replica (or one of its services) never became ready.
pub const NOT_READY: i32 = 5;
/// A target is unreachable.
pub const UNREACHABLE: i32 = 6;
/// The runbook (or what covers it) changed since its lock was accepted.
pub const RUNBOOK_CHANGED: i32 = 7;
/// Every missed scenario was inconclusive: the harness was the bottleneck.
pub const INCONCLUSIVE: i32 = 8;
/// The Docker engine stopped answering mid-run.
pub const ENGINE_UNRESPONSIVE: i32 = 9;
/// A tool the command needs is missing; nothing was built.
pub const PREREQUISITE_MISSING: i32 = 10;
/// Interrupted by Ctrl-C; what the command started was removed first (128 + SIGINT).
pub const INTERRUPTED: i32 = 128 + libc::SIGINT;

/// Ended by `signal` (SIGHUP, SIGINT, SIGTERM): 128 + its number, as a shell reports it.
pub fn interrupted(signal: i32) -> i32 {
    128 + signal
}

/// One exit code: its number, what it means, and the commands that can return it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Documented {
    /// The number the process exits with; `128 + N` codes are listed one per signal.
    pub code: i32,
    /// What it means, in one line.
    pub meaning: &'static str,
    /// The `cargo xtask` commands that can return it; empty for "every command".
    pub commands: &'static [&'static str],
}

/// Every exit code of every command, in order.
pub const TABLE: &[Documented] = &[
    Documented {
        code: OK,
        meaning: "success: every check passed, every scenario met its outcome; or stdout's reader went away (`… | head -1`)",
        commands: &[],
    },
    Documented {
        code: FAILURES,
        meaning: "the command ran and found failures: checks failed, scenarios missed their outcome, a node's wiring could not be mapped",
        commands: &["rehearse", "verify", "runbook", "node", "report", "bench"],
    },
    Documented {
        code: USAGE,
        meaning: "usage or configuration error: a bad flag or value, an input file that does not parse, an output that cannot be written; nothing was started",
        commands: &[],
    },
    Documented {
        code: NO_DOCKER,
        meaning: "no Docker engine reachable (`DOCKER_HOST`, the socket, an SSH connection to it)",
        commands: &["images", "up", "status", "down", "test", "rehearse", "verify", "bench"],
    },
    Documented {
        code: BUILD_FAILED,
        meaning: "the base image or the replica binary could not be built",
        commands: &["images", "up", "test", "rehearse", "bench"],
    },
    Documented {
        code: NOT_READY,
        meaning: "the replica did not become ready (the message names the service and its last log lines)",
        commands: &["up", "rehearse", "bench"],
    },
    Documented {
        code: UNREACHABLE,
        meaning: "nothing failed, but a target was unreachable",
        commands: &["verify"],
    },
    Documented {
        code: RUNBOOK_CHANGED,
        meaning: "the runbook changed since its lock was accepted, or a scenario no longer applies to it",
        commands: &["runbook"],
    },
    Documented {
        code: INCONCLUSIVE,
        meaning: "the scenarios that missed their outcome were all `inconclusive`: the harness or the machine, not the node, was the bottleneck",
        commands: &["rehearse"],
    },
    Documented {
        code: ENGINE_UNRESPONSIVE,
        meaning: "the Docker engine stopped answering mid-run; the scenarios not yet run are reported as not run",
        commands: &["rehearse", "bench"],
    },
    Documented {
        code: PREREQUISITE_MISSING,
        meaning: "a host tool the command needs is missing; the message gives the one line that installs it; nothing was started",
        commands: &["images", "up", "test", "rehearse", "bench"],
    },
    Documented {
        code: 100,
        meaning: "a test failed (cargo-nextest's own codes are passed through)",
        commands: &["test"],
    },
    Documented {
        code: 101,
        meaning: "internal error (a bug: a panic)",
        commands: &[],
    },
    Documented {
        code: 128 + libc::SIGHUP,
        meaning: "ended by SIGHUP; what the command started was removed first",
        commands: &[],
    },
    Documented {
        code: INTERRUPTED,
        meaning: "interrupted by Ctrl-C (SIGINT); what the command started was removed first",
        commands: &[],
    },
    Documented {
        code: 128 + libc::SIGTERM,
        meaning: "ended by SIGTERM (`timeout`, CI runners, systemd); what the command started was removed first",
        commands: &[],
    },
];

/// The exit codes as the README's markdown table: `| code | meaning | commands |`.
pub fn markdown_table() -> String {
    let mut out = String::from("| code | meaning | commands |\n|---|---|---|\n");
    for entry in TABLE {
        let commands = if entry.commands.is_empty() {
            "all".to_string()
        } else {
            entry.commands.join(", ")
        };
        let meaning = entry.meaning.replace('|', "\\|");
        out.push_str(&format!("| {} | {meaning} | {commands} |\n", entry.code));
    }
    out
}

/// The `--help` text of the exit codes `command` can return (every code for `None`), one per
/// line.
pub fn help(command: Option<&str>) -> String {
    let mut out = String::from("Exit codes:");
    for entry in TABLE.iter().filter(|e| match command {
        None => true,
        Some(command) => e.commands.is_empty() || e.commands.contains(&command),
    }) {
        out.push_str(&format!("\n  {:>3}  {}", entry.code, entry.meaning));
    }
    out
}
