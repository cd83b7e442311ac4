//! The base image built without root, as most users run Docker: a user in the engine's group
//! runs `cargo xtask images` and mmdebstrap builds the root filesystem in a user namespace.
//! Run as root (CI), the test makes such a user for the purpose; run as a user, it is that user.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use harness::exit_codes;

/// The user the test makes when it runs as root.
const BUILDER: &str = "rehearsal-builder";
/// Where the test's image goes, beside (never over) the cached one.
const REPOSITORY: &str = "rotation-rehearsal/base-built-as-a-user";

fn run(command: &mut Command) -> (bool, String) {
    let out = command.output().expect("the command runs");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The name of the group owning the engine's socket (`docker`).
fn engine_group() -> String {
    let gid = std::fs::metadata("/var/run/docker.sock")
        .expect("the engine's socket")
        .gid();
    let (ok, line) = run(Command::new("getent").args(["group", &gid.to_string()]));
    assert!(ok, "no group has the engine socket's gid {gid}");
    line.split(':').next().unwrap().to_string()
}

/// Makes `BUILDER` (in the engine's group, with subordinate ids) unless it exists.
fn builder_user() {
    if run(Command::new("id").arg(BUILDER)).0 {
        return;
    }
    let (ok, out) =
        run(Command::new("useradd").args(["--create-home", "--groups", &engine_group(), BUILDER]));
    assert!(ok, "useradd: {out}");
}

/// A copy of `from` in `dir` that any user may run.
fn runnable_copy(from: &Path, dir: &Path) -> std::path::PathBuf {
    let to = dir.join(from.file_name().unwrap());
    std::fs::copy(from, &to).unwrap();
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755)).unwrap();
    to
}

#[test]
fn the_base_image_builds_without_root_as_a_user_in_the_engines_group() {
    // SAFETY: geteuid has no preconditions.
    let as_root = unsafe { libc::geteuid() } == 0;
    for tool in ["mmdebstrap", "newuidmap"] {
        assert!(
            run(Command::new("sh").args(["-c", &format!("command -v {tool}")])).0,
            "{tool} is missing: `apt-get install mmdebstrap uidmap` (docs/machines.md)"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let xtask = runnable_copy(Path::new(env!("CARGO_BIN_EXE_xtask")), dir.path());
    // The replica binary is not what this test builds: a stand-in file says where it is.
    let replica = dir.path().join("replica");
    std::fs::write(&replica, b"").unwrap();
    let mut command = if as_root {
        builder_user();
        let mut c = Command::new("runuser");
        c.args(["-u", BUILDER, "--"]).arg(&xtask);
        c
    } else {
        Command::new(&xtask)
    };
    command
        .arg("images")
        .env(harness::images::BASE_REPOSITORY_VAR, REPOSITORY)
        .env("REPLICA_BINARY", &replica)
        .env("TMPDIR", "/tmp")
        .current_dir(dir.path());
    let out = command.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, tag) = harness::images::base_image_ref();
    let image = format!("{REPOSITORY}:{tag}");
    let removed = run(Command::new("docker").args(["image", "rm", "--force", &image]));
    assert_eq!(out.status.code(), Some(exit_codes::OK), "{text}");
    assert!(
        text.contains("with mmdebstrap, in a user namespace"),
        "{text}"
    );
    assert!(
        text.contains(&format!("base image {image} ready in")),
        "{text}"
    );
    assert!(text.contains(&format!("base image     {image}")), "{text}");
    assert!(removed.0, "the image was there to remove: {}", removed.1);
}

#[test]
fn a_user_missing_host_tools_is_told_one_sudo_line_naming_them_all_and_nothing_starts() {
    // SAFETY: geteuid has no preconditions.
    let as_root = unsafe { libc::geteuid() } == 0;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let xtask = runnable_copy(Path::new(env!("CARGO_BIN_EXE_xtask")), dir.path());
    let runbook = dir.path().join("runbook.md");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/runbook/SECRETS_ROTATION_RUNBOOK.v2.md"),
        &runbook,
    )
    .unwrap();
    std::fs::set_permissions(&runbook, std::fs::Permissions::from_mode(0o644)).unwrap();
    // A PATH with the docker CLI and apt-get, and nothing else the rehearsal needs.
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    for program in ["docker", "apt-get"] {
        let found = ["/usr/local/bin", "/usr/bin"]
            .into_iter()
            .map(|d| Path::new(d).join(program))
            .find(|p| p.exists())
            .unwrap_or_else(|| panic!("{program} is on this machine"));
        std::os::unix::fs::symlink(found, bin.join(program)).unwrap();
    }
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    std::fs::set_permissions(&out_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    // `env` sets the PATH last: runuser and su may reset it.
    let mut command = if as_root {
        builder_user();
        let mut c = Command::new("runuser");
        c.args(["-u", BUILDER, "--", "/usr/bin/env"]);
        c
    } else {
        Command::new("/usr/bin/env")
    };
    command.arg(format!("PATH={}", bin.display())).arg(&xtask);
    let started = std::time::Instant::now();
    let out = command
        .args(["rehearse", "--only", "prepare", "--runbook"])
        .arg(&runbook)
        .arg("--out")
        .arg(&out_dir)
        // An image that is not cached: its builder is needed too.
        .env(harness::images::BASE_REPOSITORY_VAR, REPOSITORY)
        .env("TMPDIR", "/tmp")
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(exit_codes::PREREQUISITE_MISSING),
        "{stderr}"
    );
    assert_eq!(
        stderr.trim().lines().last().unwrap_or(""),
        "error: missing on this host: docker-compose (the replica's Compose project), curl, \
         openssl, psql (the runbook's commands), mmdebstrap, newuidmap (building the base \
         image): run `sudo apt-get install curl docker-compose mmdebstrap openssl \
         postgresql-client uidmap`"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "it stopped before building anything: {stderr}"
    );
}
