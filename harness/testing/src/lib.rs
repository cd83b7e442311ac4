//! What the workspace's tests share that starts containers: a default replica, with progress
//! shown, and an sshd in a container of the project's image, as a node's. A dev-dependency
//! only: nothing that ships links it, or testcontainers.

use harness::progress::Progress;
use harness::{Stack, StackOptions};

/// A default replica stack; panics with the reason when it does not start (tests only).
pub async fn start() -> Stack {
    Stack::start(StackOptions {
        progress: Progress::stderr(),
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("stack did not start: {e}"))
}

/// Removes `stack`; panics with the reason when anything of it remains, except a network the
/// Docker engine keeps with an endpoint it lost track of (moby/moby#17217): the engine's
/// defect, not the test's, said as a warning, as the rehearsal records it.
pub async fn down(stack: Stack) {
    match stack.down().await {
        Ok(()) => {}
        Err(harness::HarnessError::StaleNetwork { network }) => harness::errln!(
            "warning: {}",
            harness::docker::stale_network_warning(&network)
        ),
        Err(e) => panic!("stack not removed: {e}"),
    }
}

/// An sshd in a container of the project's own image, as a node's would be: the engine's
/// socket at its usual place, a host key and an authorized key made for it, published on
/// loopback only, labelled so that the sweep removes it with its owner. Removed when dropped.
pub struct Sshd {
    container: testcontainers::ContainerAsync<testcontainers::GenericImage>,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The client key it accepts (`ssh -i`).
    pub identity: std::path::PathBuf,
    /// A known_hosts file with its host key for `[127.0.0.1]:port`.
    pub known_hosts: std::path::PathBuf,
    _keys: tempfile::TempDir,
}

impl Sshd {
    /// Starts it; `root`, when given, is bind-mounted read-only at the same path (a node's
    /// replica root); `owner` is the stack id its label carries. Panics with the reason when it
    /// does not start (tests only).
    pub async fn start(root: Option<&std::path::Path>, owner: &str) -> Sshd {
        use testcontainers::core::{AccessMode, ContainerPort, Mount, WaitFor};
        use testcontainers::runners::AsyncRunner;
        use testcontainers::{GenericImage, ImageExt};
        let keys = tempfile::tempdir().expect("a directory for the keys");
        let dir = keys.path();
        std::fs::create_dir_all(dir.join("sshd")).expect("the keys' directory");
        ssh_keygen(&dir.join("sshd/host"));
        ssh_keygen(&dir.join("client"));
        std::fs::copy(dir.join("client.pub"), dir.join("sshd/authorized_keys"))
            .expect("authorized_keys");
        let (repository, tag) = harness::images::base_image_ref();
        let labels = [
            (harness::docker::LABEL_MANAGED, "true".to_string()),
            (harness::docker::LABEL_STACK, owner.to_string()),
            (
                harness::docker::LABEL_OWNER_PID,
                std::process::id().to_string(),
            ),
        ];
        let mut image = GenericImage::new(repository, tag)
            .with_exposed_port(ContainerPort::Tcp(22))
            .with_wait_for(WaitFor::message_on_stderr("Server listening"))
            .with_labels(labels.map(|(k, v)| (k.to_string(), v)))
            .with_container_name(format!("sshd-{owner}-{}", std::process::id()))
            .with_mount(
                Mount::bind_mount(dir.join("sshd").display().to_string(), "/keys")
                    .with_access_mode(AccessMode::ReadOnly),
            )
            .with_mount(Mount::bind_mount(
                "/var/run/docker.sock",
                harness::checks::transport::NODE_DOCKER_SOCKET,
            ))
            .with_cmd([
                "sh",
                "-c",
                "mkdir -p /run/sshd && exec /usr/sbin/sshd -D -e -h /keys/host \
                 -o AuthorizedKeysFile=/keys/authorized_keys -o StrictModes=no \
                 -o PermitRootLogin=prohibit-password",
            ])
            .with_host_config_modifier(|hc| {
                hc.publish_all_ports = Some(false);
                hc.port_bindings = Some(std::collections::HashMap::from([(
                    "22/tcp".to_string(),
                    Some(vec![bollard::models::PortBinding {
                        host_ip: Some("127.0.0.1".into()),
                        host_port: Some(String::new()),
                    }]),
                )]));
            })
            .with_startup_timeout(std::time::Duration::from_secs(30));
        if let Some(root) = root {
            let root = root.display().to_string();
            image = image.with_mount(
                Mount::bind_mount(root.clone(), root).with_access_mode(AccessMode::ReadOnly),
            );
        }
        let container = image
            .start()
            .await
            .unwrap_or_else(|e| panic!("sshd did not start: {e}"));
        let port = container
            .get_host_port_ipv4(ContainerPort::Tcp(22))
            .await
            .expect("sshd's published port");
        let host_key = std::fs::read_to_string(dir.join("sshd/host.pub")).expect("host key");
        let known_hosts = dir.join("known_hosts");
        std::fs::write(
            &known_hosts,
            format!("[127.0.0.1]:{port} {}\n", host_key.trim()),
        )
        .expect("known_hosts");
        Sshd {
            container,
            port,
            identity: dir.join("client"),
            known_hosts,
            _keys: keys,
        }
    }

    /// Its logs so far (stdout and stderr): whom it let in.
    pub async fn logs(&self) -> String {
        let out = self.container.stderr_to_vec().await.unwrap_or_default();
        String::from_utf8_lossy(&out).into_owned()
    }
}

fn ssh_keygen(path: &std::path::Path) {
    let out = std::process::Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "rehearsal-test",
            "-f",
        ])
        .arg(path)
        .output()
        .expect("ssh-keygen (the OpenSSH client) is installed");
    assert!(
        out.status.success(),
        "ssh-keygen: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
