//! Helpers shared by the workspace's tests: a default replica, with progress shown; an sshd in
//! a container of the project's image, as a node's; probe reports and journals built by hand,
//! for the tests of what is rendered from them.

use crate::progress::Progress;
use crate::{Stack, StackOptions};

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
        Err(crate::HarnessError::StaleNetwork { network }) => crate::errln!(
            "warning: {}",
            crate::docker::stale_network_warning(&network)
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
        let (repository, tag) = crate::images::base_image_ref();
        let labels = [
            (crate::docker::LABEL_MANAGED, "true".to_string()),
            (crate::docker::LABEL_STACK, owner.to_string()),
            (
                crate::docker::LABEL_OWNER_PID,
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
                crate::checks::transport::NODE_DOCKER_SOCKET,
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

/// A probe report at the default rate: `delayed` of 1 000 updates delayed, none lost, 50 API
/// calls and JetStream publishes all ok, and the webhook's longest outage.
pub fn probe_report(delayed: u64, webhook_outage_ms: u64) -> crate::rehearsal::probe::ProbeReport {
    use crate::rehearsal::probe::{DataReport, FlowReport, ProbeConfig, ProbeReport};
    let flow = |outage| FlowReport {
        sent: 50,
        attempts: 60,
        ok: 50,
        delayed: 0,
        failed: 0,
        longest_outage_ms: outage,
        achieved_rate: 99.0,
    };
    ProbeReport {
        config: ProbeConfig::default(),
        duration_ms: 10_000,
        flows: [
            ("webhook".to_string(), flow(webhook_outage_ms)),
            ("api".to_string(), flow(0)),
            ("jetstream".to_string(), flow(0)),
        ]
        .into(),
        updates_ok: 1000 - delayed,
        updates_delayed: delayed,
        updates_lost: 0,
        telegram: Default::default(),
        harness: Default::default(),
        timeline: Default::default(),
        containers_down: Default::default(),
        data: DataReport::default(),
    }
}

/// A journal of `scenarios` that took `wall_ms`, with no finding and nothing left behind.
pub fn journal(
    scenarios: Vec<crate::rehearsal::journal::ScenarioRecord>,
    wall_ms: u64,
) -> crate::rehearsal::Journal {
    use crate::rehearsal::journal::{Journal, SCHEMA, VERSION};
    Journal {
        schema: SCHEMA.to_string(),
        version: VERSION,
        runbook: "runbook.md".into(),
        runbook_fingerprint: "0123456789abcdef".into(),
        shard: None,
        started: "2026-11-26T09:00:00Z".into(),
        wall_ms,
        time_scale: 0.02,
        scenarios,
        findings: Vec::new(),
        leftovers: Vec::new(),
        engine_leftovers: Vec::new(),
        skipped: Vec::new(),
        node_profile: None,
    }
}

/// A runbook of about `bytes` bytes that parses: the shipped runbook's inventory, its phases
/// repeated (renumbered) until the size is reached, then its rollback and notes. For the
/// parser's benchmark and its linear-time tests.
pub fn synthetic_runbook(bytes: usize) -> String {
    const SHIPPED: &str = include_str!("../../fixtures/runbook/SECRETS_ROTATION_RUNBOOK.md");
    let first = SHIPPED
        .find("### Phase ")
        .expect("the shipped runbook has phases");
    let last = SHIPPED
        .rfind("### Phase ")
        .expect("the shipped runbook has phases");
    let end = last
        + SHIPPED[last..]
            .find("\n## ")
            .expect("a section follows the phases")
        + 1;
    let (prefix, phases, suffix) = (&SHIPPED[..first], &SHIPPED[first..end], &SHIPPED[end..]);
    let chunks: Vec<&str> = phases
        .split_inclusive("\n### Phase ")
        .map(|c| c.strip_suffix("### Phase ").unwrap_or(c))
        .map(|c| c.strip_prefix("### Phase ").unwrap_or(c))
        .collect();
    let mut out = String::with_capacity(bytes + SHIPPED.len());
    out.push_str(prefix);
    let mut number = 0;
    while out.len() + suffix.len() < bytes || number < chunks.len() {
        let chunk = chunks[number % chunks.len()];
        number += 1;
        let body = chunk.trim_start_matches(|c: char| c.is_ascii_digit());
        out.push_str(&format!("### Phase {number}{body}"));
    }
    out.push_str(suffix);
    out
}
