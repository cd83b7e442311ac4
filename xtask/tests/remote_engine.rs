//! The toolkit against a Docker engine reached over TCP (`DOCKER_HOST=tcp://…`), as a team
//! with a remote engine runs it: this machine's engine, exposed by the test on a TCP socket
//! bound to 127.0.0.1 that forwards to its Unix socket. `up`, `status`, `verify --replica`,
//! `rehearse` and `down` go through that socket alone.

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

fn xtask_via(docker_host: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(args)
        .env("DOCKER_HOST", docker_host)
        .output()
        .unwrap()
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

    let up = xtask_via(&docker_host, &["up"]);
    assert_eq!(up.status.code(), Some(exit_codes::OK), "{}", text(&up));
    let stdout = String::from_utf8_lossy(&up.stdout).into_owned();
    let id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("replica ")?.split_whitespace().next())
        .unwrap_or_else(|| panic!("no replica id in: {stdout}"))
        .to_string();
    let through_tcp = forwarded.load(Ordering::SeqCst);
    assert!(through_tcp > 0, "up never used DOCKER_HOST");

    let status = xtask_via(&docker_host, &["status", &id]);
    let status_text = text(&status);
    assert_eq!(status.status.code(), Some(exit_codes::OK), "{status_text}");
    assert!(status_text.contains("PORTS (127.0.0.1)"), "{status_text}");
    assert_eq!(
        status_text.matches(" running ").count(),
        8,
        "every container running: {status_text}"
    );

    let verify = xtask_via(&docker_host, &["verify", "--replica", &id]);
    assert_eq!(
        verify.status.code(),
        Some(exit_codes::OK),
        "{}",
        text(&verify)
    );

    let down = xtask_via(&docker_host, &["down", &id]);
    assert_eq!(down.status.code(), Some(exit_codes::OK), "{}", text(&down));

    let out = std::env::temp_dir().join(format!("remote-engine-{}", std::process::id()));
    let runbook = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures/runbook/SECRETS_ROTATION_RUNBOOK.v2.md");
    let rehearse = xtask_via(
        &docker_host,
        &[
            "rehearse",
            "--runbook",
            runbook.to_str().unwrap(),
            "--only",
            "v2/qdrant",
            "--out",
            out.to_str().unwrap(),
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
    assert!(forwarded.load(Ordering::SeqCst) > through_tcp);
    let _ = std::fs::remove_dir_all(out);
}
