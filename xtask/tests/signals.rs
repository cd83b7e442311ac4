//! Whatever signal ends a running `cargo xtask rehearse` — SIGINT (Ctrl-C), SIGTERM (`timeout`,
//! CI runners, systemd), SIGHUP (a closed terminal) — it exits 128 + the signal, and nothing it
//! started remains: no container, no network, no replica root (with its secrets and the
//! runbook's backup tarball), no operator directory.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use harness::docker::{self, StackSummary};

/// This process's stacks on the engine, owned by `pid`.
fn stacks_of(pid: u32) -> Vec<StackSummary> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let docker = docker::connect().await.unwrap();
        docker::list_stacks(&docker)
            .await
            .unwrap()
            .into_iter()
            .filter(|s| s.owner_pid == pid)
            .collect()
    })
}

/// Sends `signal` to `child` and waits at most `within` for it to end.
fn signal_and_wait(
    child: &mut std::process::Child,
    signal: i32,
    within: Duration,
) -> std::process::ExitStatus {
    // SAFETY: kill(2) on our own child's pid, which has not been reaped yet.
    assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "pid {} did not end within {within:?} of signal {signal}",
            child.id()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn rehearse_then(signal: i32) {
    let out = tempfile::tempdir().unwrap();
    let stderr = out.path().join("stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["rehearse", "--only", "prepare", "--out"])
        .arg(out.path().join("reports"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Wait until the scenario is running its steps: its replica is up, its root written.
    let deadline = Instant::now() + Duration::from_secs(300);
    let (roots, ids) = loop {
        let log = std::fs::read_to_string(&stderr).unwrap_or_default();
        if log.contains("prepare: phase 1") {
            let stacks = stacks_of(pid);
            let roots: Vec<PathBuf> = stacks.iter().filter_map(|s| s.root.clone()).collect();
            if !roots.is_empty() {
                break (
                    roots,
                    stacks.iter().map(|s| s.id.clone()).collect::<Vec<_>>(),
                );
            }
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("rehearse ended before the signal ({status}):\n{log}");
        }
        assert!(
            Instant::now() < deadline,
            "the scenario never started:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    for root in &roots {
        assert!(
            root.exists(),
            "{} exists while the scenario runs",
            root.display()
        );
    }
    let status = signal_and_wait(&mut child, signal, Duration::from_secs(120));
    let log = std::fs::read_to_string(&stderr).unwrap_or_default();
    assert_eq!(status.code(), Some(128 + signal), "{log}");
    // Nothing remains but a network the engine itself refused to remove (moby/moby#17217), which
    // rehearse then names in a warning.
    for stack in stacks_of(pid) {
        assert!(
            stack.containers.is_empty() && stack.volumes.is_empty(),
            "containers or volumes of stacks {ids:?} remain: {stack:?}"
        );
        for network in &stack.networks {
            assert!(
                log.contains(&format!(
                    "warning: the Docker engine kept a stale endpoint on network {network} (moby/moby#17217)"
                )),
                "network {network} of stacks {ids:?} remains: {log}"
            );
        }
    }
    for root in &roots {
        assert!(!root.exists(), "{} remains", root.display());
        let operator = harness::replica_root::operator_dir_of(root);
        assert!(!operator.exists(), "{} remains", operator.display());
    }
}

#[test]
fn sigterm_ends_a_rehearsal_with_143_and_removes_everything_it_started() {
    rehearse_then(libc::SIGTERM);
}

#[test]
fn sighup_ends_a_rehearsal_with_129_and_removes_everything_it_started() {
    rehearse_then(libc::SIGHUP);
}

#[test]
fn sigint_ends_a_rehearsal_with_130_and_removes_everything_it_started() {
    rehearse_then(libc::SIGINT);
}

/// A bench ended by SIGTERM mid-loop (`bench restarts`, after its first restart) exits 143 and
/// removes the replica it was running.
#[test]
fn sigterm_ends_a_bench_with_143_and_removes_its_replica() {
    let out = tempfile::tempdir().unwrap();
    let stderr = out.path().join("stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["bench", "restarts", "--runs", "20"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let log = std::fs::read_to_string(&stderr).unwrap_or_default();
        if log.contains("run 1/20: restarted") && !stacks_of(pid).is_empty() {
            break;
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the bench ended before the signal ({status}):\n{log}");
        }
        assert!(Instant::now() < deadline, "no restart:\n{log}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let status = signal_and_wait(&mut child, libc::SIGTERM, Duration::from_secs(150));
    let log = std::fs::read_to_string(&stderr).unwrap_or_default();
    assert_eq!(status.code(), Some(143), "{log}");
    assert!(
        log.contains("SIGTERM: removing the replicas this bench started"),
        "{log}"
    );
    let left: Vec<_> = stacks_of(pid)
        .into_iter()
        .filter(|s| !s.containers.is_empty() || !s.volumes.is_empty())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
