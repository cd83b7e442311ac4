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
            "{tool} is missing: `apt-get install mmdebstrap uidmap` (README, Prerequisites)"
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
