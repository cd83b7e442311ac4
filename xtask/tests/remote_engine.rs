//! The toolkit against a Docker engine reached over TCP (`DOCKER_HOST=tcp://…`) or SSH
//! (`DOCKER_HOST=ssh://…`), as a team with a remote engine runs it: this machine's engine,
//! exposed by the test on a TCP socket bound to 127.0.0.1 that forwards to its Unix socket, or
//! behind an sshd in a container of the project's image. `up`, `status`, `verify --replica`,
//! `rehearse` and `down` go through that socket, or that SSH connection, alone.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use harness::exit_codes;

const ENGINE_SOCKET: &str = "/var/run/docker.sock";

/// The engine's Unix socket exposed on 127.0.0.1:PORT for as long as the test runs; counts
/// the connections it forwards.
fn engine_on_tcp() -> (u16, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let forwarded = Arc::new(AtomicUsize::new(0));
    let count = forwarded.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            listener.set_nonblocking(true).unwrap();
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    if let Ok(mut engine) = tokio::net::UnixStream::connect(ENGINE_SOCKET).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut engine).await;
                    }
                });
            }
        });
    });
    (port, forwarded)
}

fn xtask_with(env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_xtask"));
    for (k, v) in env {
        command.env(k, v);
    }
    command.args(args).output().unwrap()
}

/// `up`, `status`, `verify --replica`, `down`, then `rehearse --only v2/qdrant` (whose runbook
/// blocks run `docker compose`), each through `env`; the replica's id.
fn up_status_verify_down_rehearse(env: &[(&str, &str)]) {
    let up = xtask_with(env, &["up"]);
    assert_eq!(up.status.code(), Some(exit_codes::OK), "{}", text(&up));
    let stdout = String::from_utf8_lossy(&up.stdout).into_owned();
    let id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("replica ")?.split_whitespace().next())
        .unwrap_or_else(|| panic!("no replica id in: {stdout}"))
        .to_string();

    let status = xtask_with(env, &["status", &id]);
    let status_text = text(&status);
    assert_eq!(status.status.code(), Some(exit_codes::OK), "{status_text}");
    assert!(status_text.contains("PORTS (127.0.0.1)"), "{status_text}");
    assert_eq!(
        status_text.matches(" running ").count(),
        8,
        "every container running: {status_text}"
    );

    let verify = xtask_with(env, &["verify", "--replica", &id]);
    assert_eq!(
        verify.status.code(),
        Some(exit_codes::OK),
        "{}",
        text(&verify)
    );

    let down = xtask_with(env, &["down", &id]);
    assert_eq!(down.status.code(), Some(exit_codes::OK), "{}", text(&down));

    let out = tempfile::tempdir().unwrap();
    let runbook = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/runbook/SECRETS_ROTATION_RUNBOOK.v2.md");
    let rehearse = xtask_with(
        env,
        &[
            "rehearse",
            "--runbook",
            runbook.to_str().unwrap(),
            "--only",
            "rotate/qdrant",
            "--out",
            out.path().to_str().unwrap(),
        ],
    );
    let rehearse_text = text(&rehearse);
    assert_eq!(
        rehearse.status.code(),
        Some(exit_codes::OK),
        "{rehearse_text}"
    );
    assert!(
        rehearse_text.contains("1 of 1 scenarios met their expected outcome"),
        "{rehearse_text}"
    );
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn up_status_verify_rehearse_and_down_work_against_an_engine_reached_over_tcp() {
    let (port, forwarded) = engine_on_tcp();
    let docker_host = format!("tcp://127.0.0.1:{port}");
    up_status_verify_down_rehearse(&[("DOCKER_HOST", &docker_host)]);
    assert!(
        forwarded.load(Ordering::SeqCst) > 0,
        "the commands never used DOCKER_HOST"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_status_verify_rehearse_and_down_work_against_an_engine_reached_over_ssh() {
    let sshd = testing::Sshd::start(None, "ssh-engine").await;
    let docker_host = format!("ssh://root@127.0.0.1:{}", sshd.port);
    let (identity, known_hosts) = (
        sshd.identity.display().to_string(),
        sshd.known_hosts.display().to_string(),
    );
    let env = [
        ("DOCKER_HOST", docker_host.as_str()),
        (harness::docker::SSH_IDENTITY_VAR, identity.as_str()),
        (harness::docker::SSH_KNOWN_HOSTS_VAR, known_hosts.as_str()),
    ];
    tokio::task::block_in_place(|| up_status_verify_down_rehearse(&env));
    let logs = sshd.logs().await;
    assert!(
        logs.matches("Accepted publickey for root").count() >= 5,
        "every command connected over SSH: {logs}"
    );

    // An engine over SSH that refuses the key: exit 3, ssh's own reason, nothing started.
    let wrong_key = tempfile::tempdir().unwrap();
    let key = wrong_key.path().join("id");
    let made = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    let refused = xtask_with(
        &[
            ("DOCKER_HOST", docker_host.as_str()),
            (harness::docker::SSH_IDENTITY_VAR, key.to_str().unwrap()),
            (harness::docker::SSH_KNOWN_HOSTS_VAR, known_hosts.as_str()),
        ],
        &["status"],
    );
    assert_eq!(
        refused.status.code(),
        Some(exit_codes::NO_DOCKER),
        "{}",
        text(&refused)
    );
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(&format!("no Docker engine answers at {docker_host}")),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "at {docker_host}: ssh: root@127.0.0.1: Permission denied (publickey"
        )),
        "{stderr}"
    );
}
