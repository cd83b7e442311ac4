//! The replica's service binary (`xtask`'s `replica` target), built by cargo as a static executable
//! so that it runs from a bind mount in the base image whatever the host's libc is.

use std::path::PathBuf;
use std::process::Stdio;

use crate::error::{HarnessError, Result};
use crate::progress::Progress;

/// The workspace root (this crate's parent directory).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("harness lives inside the workspace")
        .to_path_buf()
}

/// The cargo profile the replica is built with: xtask's own (`dev`, its hot dependencies
/// optimised; see the root `Cargo.toml`), so that it reuses what `cargo xtask` was built with.
const REPLICA_PROFILE_DIR: &str = "debug";

/// The package whose `replica` target is built (`xtask`: cargo resolves a build's features per
/// package selected, and only xtask's own selection matches the build that ran `cargo xtask`).
const REPLICA_PACKAGE: &str = "xtask";

/// The feature without which no build makes the `replica` target (`xtask/Cargo.toml`).
const REPLICA_FEATURE: &str = "replica-binary";

/// Where cargo puts the static binary.
pub fn replica_binary_path() -> PathBuf {
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target_dir.join(REPLICA_PROFILE_DIR).join("replica")
}

/// Whether cargo sets `name` for the crate it runs (`cargo run`, a test): a build script that
/// reads one (ring's reads `CARGO_MANIFEST_DIR`) would see a value the user's own `cargo xtask`
/// build did not, and cargo would rebuild it and everything above it, here and again in the
/// user's next build.
fn set_by_cargo_for_a_crate(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || matches!(
            name,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_MANIFEST_LINKS"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_TARGET_TMPDIR"
                | "OUT_DIR"
        )
}

/// Once per process: every stack a rehearsal starts runs the binary the first one found, and
/// does not ask cargo again (a fifth of a second each time, and a code edit in the middle of a
/// run would otherwise change the replica between scenarios).
pub async fn ensure_replica_binary(progress: &Progress) -> Result<PathBuf> {
    static BUILT: tokio::sync::OnceCell<PathBuf> = tokio::sync::OnceCell::const_new();
    BUILT
        .get_or_try_init(|| build_replica_binary(progress))
        .await
        .cloned()
}

/// Builds (or finds up to date) the static `replica` binary and returns its path.
///
/// `REPLICA_BINARY` names a prebuilt binary and skips cargo (`cargo xtask test` sets it so
/// that tests running in parallel do not each invoke cargo). Only the binary's own crate is
/// linked statically (`cargo rustc … -- -C target-feature=+crt-static`): its dependencies are
/// the very builds `cargo xtask` runs on, so a fresh clone links it in seconds.
async fn build_replica_binary(progress: &Progress) -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("REPLICA_BINARY").map(PathBuf::from) {
        if p.is_file() {
            return Ok(p);
        }
        return Err(HarnessError::BinaryBuild(format!(
            "REPLICA_BINARY={} does not exist",
            p.display()
        )));
    }
    progress.say("building the replica services (static binary; cached after the first time)");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = tokio::process::Command::new(cargo);
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(set_by_cargo_for_a_crate) {
            command.env_remove(name);
        }
    }
    let mut child = command
        .current_dir(workspace_root())
        .args([
            "rustc",
            "--package",
            REPLICA_PACKAGE,
            "--bin",
            "replica",
            "--features",
            REPLICA_FEATURE,
            "--",
            "-C",
            "target-feature=+crt-static",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| HarnessError::BinaryBuild(format!("cannot run cargo: {e}")))?;
    // Cargo's own progress ("Compiling …") is shown, so a first build is never silent.
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
        child.stderr.take().expect("piped stderr"),
    ));
    let mut tail: std::collections::VecDeque<String> = Default::default();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim_start().starts_with("Compiling") {
            progress.say(&format!("  {}", line.trim()));
        }
        tail.push_back(line);
        if tail.len() > 30 {
            tail.pop_front();
        }
    }
    let status = child
        .wait()
        .await
        .map_err(|e| HarnessError::BinaryBuild(format!("cargo did not finish: {e}")))?;
    if !status.success() {
        return Err(HarnessError::BinaryBuild(
            tail.into_iter().collect::<Vec<_>>().join("\n"),
        ));
    }
    let path = replica_binary_path();
    if !path.is_file() {
        return Err(HarnessError::BinaryBuild(format!(
            "cargo succeeded but {} is missing",
            path.display()
        )));
    }
    Ok(path)
}
