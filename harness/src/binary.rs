//! The replica's service binary (`fixtures`' `replica`), built by cargo as a static executable
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

/// The explicit target triple the static binary is built for.
pub fn static_target() -> String {
    format!("{}-unknown-linux-gnu", std::env::consts::ARCH)
}

/// The cargo profile the replica is built with (optimised; see the root `Cargo.toml`).
pub const REPLICA_PROFILE: &str = "replica";

/// Where cargo puts the static binary.
pub fn replica_binary_path() -> PathBuf {
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target_dir
        .join(static_target())
        .join(REPLICA_PROFILE)
        .join("replica")
}

/// Builds (or finds up to date) the static `replica` binary and returns its path.
///
/// `REPLICA_BINARY` names a prebuilt binary and skips cargo (`cargo xtask test` sets it so
/// that tests running in parallel do not each invoke cargo).
pub async fn ensure_replica_binary(progress: &Progress) -> Result<PathBuf> {
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
    let mut child = tokio::process::Command::new(cargo)
        .current_dir(workspace_root())
        .args([
            "build",
            "--package",
            "fixtures",
            "--bin",
            "replica",
            "--profile",
            REPLICA_PROFILE,
            "--target",
        ])
        .arg(static_target())
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
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
