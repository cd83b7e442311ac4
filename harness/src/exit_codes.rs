//! Exit codes of every `cargo xtask` command, documented in one place.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success: the command did what it was asked, every check passed; or its stdout's reader went away (`… \| head -1`), which ends it quietly |
//! | 1 | the command ran and found failures (checks failed, scenarios missed their outcome) |
//! | 2 | usage or configuration error (unknown command or flag, malformed input file) |
//! | 3 | no Docker engine reachable (DOCKER_HOST / the socket) |
//! | 4 | an image or the replica binary could not be built (mmdebstrap or debootstrap, cargo) |
//! | 5 | the replica did not become ready (the message names the service and its last logs) |
//! | 6 | a target is unreachable |
//! | 7 | the runbook changed since `scenarios/runbook.lock` was accepted (`runbook check`) |
//! | 8 | `rehearse`: the scenarios that missed their outcome were all `inconclusive` (the harness, not the node, was the bottleneck: rerun on a quieter machine or with `--parallel 1`) |
//! | 9 | the Docker engine stopped answering mid-run (an operation hung past its deadline); the scenarios not yet run are reported as not run |
//! | 10 | a tool the command needs is missing (the message names the command that installs it); nothing was built |
//! | 101 | internal error (a bug: a panic) |
//! | 129 | ended by SIGHUP (128 + 1, as a shell reports it); what it started was removed |
//! | 130 | interrupted by Ctrl-C (128 + SIGINT); what it started was removed |
//! | 143 | ended by SIGTERM (128 + 15: `timeout`, CI runners, systemd); what it started was removed |

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
/// Interrupted by Ctrl-C; what the command started was removed first.
pub const INTERRUPTED: i32 = 128 + libc::SIGINT;

/// Ended by `signal` (SIGHUP, SIGINT, SIGTERM): 128 + its number, as a shell reports it.
pub fn interrupted(signal: i32) -> i32 {
    128 + signal
}

use crate::error::HarnessError;

/// The exit code a binary returns for `error`.
pub fn for_error(error: &HarnessError) -> i32 {
    match error {
        HarnessError::NoDocker { .. } => NO_DOCKER,
        HarnessError::ImageToolMissing
        | HarnessError::UserNamespaceToolsMissing
        | HarnessError::HostToolsMissing { .. }
        | HarnessError::HostToolsInstall { .. } => PREREQUISITE_MISSING,
        HarnessError::EngineUnresponsive { .. } => ENGINE_UNRESPONSIVE,
        HarnessError::ImageBuild { .. } | HarnessError::BinaryBuild(_) => BUILD_FAILED,
        HarnessError::NotReady { .. }
        | HarnessError::Start { .. }
        | HarnessError::Compose { .. } => NOT_READY,
        HarnessError::EnvFile { .. } | HarnessError::NoSuchStack(_) | HarnessError::Profile(_) => {
            USAGE
        }
        HarnessError::Docker { .. }
        | HarnessError::StaleNetwork { .. }
        | HarnessError::Io { .. }
        | HarnessError::Exec { .. } => FAILURES,
    }
}
