//! A wedged Docker engine — one that answers its ping but never finishes an operation, as a
//! deadlocked daemon does — is found in seconds, naming the operation that hung, instead of
//! failing every later scenario after minutes.

use harness::HarnessError;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A fake engine on a unix socket: `/_ping` answers, everything else hangs.
async fn wedged_engine(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("docker.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                loop {
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    let request = String::from_utf8_lossy(&buf[..n]);
                    if request.contains("/_ping") {
                        let _ = socket
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nOK")
                            .await;
                    } else {
                        // A deadlocked daemon: the request is taken and never answered.
                        tokio::time::sleep(Duration::from_secs(3600)).await;
                    }
                }
            });
        }
    });
    path
}

#[tokio::test]
async fn a_wedged_engine_is_reported_within_the_deadline_naming_the_operation_that_hung() {
    let dir = tempfile::tempdir().unwrap();
    let socket = wedged_engine(dir.path()).await;
    let docker = bollard::Docker::connect_with_unix(
        socket.to_str().unwrap(),
        120,
        bollard::API_DEFAULT_VERSION,
    )
    .unwrap();
    docker
        .ping()
        .await
        .expect("the wedged engine still answers its ping");
    let started = Instant::now();
    let error = harness::docker::health_within(&docker, Duration::from_millis(500))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    match &error {
        HarnessError::EngineUnresponsive { operation, .. } => {
            assert_eq!(operation, "listing containers")
        }
        other => panic!("{other}"),
    }
    assert_eq!(error.exit_code(), harness::exit_codes::ENGINE_UNRESPONSIVE);
    assert!(error.to_string().ends_with(
        "listing containers got no answer within 500ms. Nothing more can run on it; restart the Docker daemon, then `cargo xtask down` removes the replicas left on it"
    ), "{error}");
}
