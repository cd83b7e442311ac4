//! `cargo xtask node profile --compose FILE`: a real node's secret wiring derived from its
//! compose file through Compose's own resolved config, as a node profile (TOML); what cannot
//! be mapped is named on stderr. No value is ever printed.

use harness::exit_codes;
use harness::profile::{derive, ProjectFiles};
use harness::{errln, out};
use std::path::{Path, PathBuf};

/// The largest compose file read (a node's is a few kB).
const COMPOSE_MAX_BYTES: u64 = 4 * 1024 * 1024;

/// `cargo xtask node`: the node as data.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// derive a node profile (how each service reads each secret) from a compose file, through
    /// the host's Compose (`config --no-interpolate`); prints TOML, never a value
    Profile {
        /// the node's compose file (its project directory is the file's)
        #[arg(long, value_name = "FILE")]
        compose: PathBuf,
        /// write the profile here instead of stdout
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

pub async fn run(command: Command) -> i32 {
    let Command::Profile { compose, out } = command;
    if let Some(path) = &out {
        if let Err(e) = harness::output::check_writable(path) {
            errln!("error: --out {}: {}", e.path.display(), e.reason);
            return exit_codes::USAGE;
        }
    }
    let raw = match harness::input::read_text(&compose, COMPOSE_MAX_BYTES) {
        Ok(text) => text,
        Err(e) => {
            errln!("error: --compose {}: {e}", compose.display());
            return exit_codes::USAGE;
        }
    };
    let project_dir = compose
        .canonicalize()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    let Some(host) = harness::compose::HostCompose::detect() else {
        errln!("error: deriving a profile needs Compose on this host (docker compose, or docker-compose): apt-get install docker-compose");
        return exit_codes::PREREQUISITE_MISSING;
    };
    let config = match host
        .command()
        .arg("-f")
        .arg(&compose)
        .args(["config", "--no-interpolate"])
        .current_dir(&project_dir)
        .output()
        .await
    {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        Ok(o) => {
            // Compose's own complaint names the file and the key, not values.
            let why = String::from_utf8_lossy(&o.stderr);
            errln!(
                "error: {} could not read {}: {}",
                host.describe(),
                compose.display(),
                why.lines().next().unwrap_or("").trim()
            );
            return exit_codes::USAGE;
        }
        Err(e) => {
            errln!("error: cannot run {}: {e}", host.describe());
            return exit_codes::PREREQUISITE_MISSING;
        }
    };
    let env_files = harness::profile::env_file_keys(&raw, &project_dir);
    let is_dir = |p: &Path| std::fs::metadata(p).ok().map(|m| m.is_dir());
    let derived = match derive(
        &config,
        &ProjectFiles {
            env_files: &env_files,
            project_dir: &project_dir,
            is_dir: &is_dir,
        },
    ) {
        Ok(d) => d,
        Err(e) => {
            errln!("error: {e}");
            return exit_codes::FAILURES;
        }
    };
    for line in &derived.unmapped {
        errln!("cannot map: {line}");
    }
    let text = derived.profile.to_toml();
    match out {
        Some(path) => {
            if let Err(e) = harness::output::write_atomic(&path, text.as_bytes()) {
                errln!("error: --out {}: {e}", path.display());
                return exit_codes::USAGE;
            }
            errln!("profile written to {}", path.display());
        }
        None => out!("{text}"),
    }
    exit_codes::OK
}
