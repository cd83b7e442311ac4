//! The replica started by Compose from its generated `docker-compose.node1.yml`: the yardstick
//! that `cargo xtask bench up` measures the harness's own start against.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use bollard::query_parameters::InspectContainerOptions;
use bollard::Docker;
use harness::compose::{HostCompose, Tool};
use harness::redact::Redactor;
use harness::replica_root::ComposeNodeFile;
use harness::replica_root::ReplicaRoot;
use harness::wait::Endpoints;
use harness::Service;

/// How the bench's command line reads, for the report.
pub fn up_command(compose: &HostCompose) -> &'static str {
    match compose.tool {
        Tool::Plugin => "docker compose up -d --wait",
        Tool::Standalone => "docker-compose up -d (1.x has no --wait)",
    }
}

/// The host's Compose on the project `project` of the file `file`.
fn command(compose: &HostCompose, project: &str, file: &Path) -> tokio::process::Command {
    let mut c = compose.command();
    c.arg("-p").arg(project).arg("-f").arg(file);
    c
}

/// One node started by Compose from a copy of a replica root, labelled as one of our stacks so
/// that `cargo xtask down --all` and the next run's sweep remove it if this process dies.
pub struct ComposeNode {
    pub id: String,
    compose: &'static HostCompose,
    dir: PathBuf,
    ports: BTreeMap<(Service, u16), u16>,
    postgres_password: String,
    redactor: Redactor,
}

/// How long one Compose start took.
pub struct ComposeTimes {
    /// Until `up` returned.
    pub up_returned: Duration,
    /// Until every service answered its readiness probe (the harness's own probes).
    pub all_ready: Duration,
}

impl Endpoints for ComposeNode {
    fn host_port(&self, service: Service, container_port: u16) -> Option<u16> {
        self.ports.get(&(service, container_port)).copied()
    }

    fn postgres_password(&self) -> String {
        self.postgres_password.clone()
    }

    fn redactor(&self) -> &Redactor {
        &self.redactor
    }
}

impl ComposeNode {
    /// Copies the replica root `from` (config files only: the node's data lives in its
    /// containers) and writes its compose file with our labels. Nothing is started yet.
    pub fn prepare(
        compose: &'static HostCompose,
        from: &ReplicaRoot,
        image: &str,
        binary: &Path,
        redactor: &Redactor,
    ) -> anyhow::Result<ComposeNode> {
        let id = harness::stack::new_stack_id();
        let dir = std::env::temp_dir().join(format!("rotation-replica-{id}"));
        copy_tree(from.dir(), &dir)
            .with_context(|| format!("copying the replica root to {}", dir.display()))?;
        let root = ReplicaRoot::open(&dir);
        let labels = harness::stack::stack_labels(&id, std::process::id(), &dir);
        root.write_compose(&ComposeNodeFile {
            image,
            profile: &harness::profile::NodeProfile::replica_default(),
            binary,
            upstream_env_file: &dir.join(".upstream.env"),
            labels: &labels,
            stack: None,
        })?;
        let postgres_password = root.postgres_password()?;
        Ok(ComposeNode {
            id,
            compose,
            dir,
            ports: BTreeMap::new(),
            postgres_password,
            redactor: redactor.clone(),
        })
    }

    fn project(&self) -> String {
        format!("rotation-compose-{}", self.id)
    }

    /// `up`, then the harness's readiness probes on every service until all answer (deadline).
    pub async fn up(
        &mut self,
        docker: &Docker,
        deadline: Duration,
    ) -> anyhow::Result<ComposeTimes> {
        let started = Instant::now();
        let mut up = command(
            self.compose,
            &self.project(),
            &ReplicaRoot::open(&self.dir).compose_path(),
        );
        up.arg("up").arg("-d");
        if self.compose.tool == Tool::Plugin {
            up.arg("--wait");
        }
        let out = up.output().await.context("running Compose")?;
        self.succeeded("up", &out)?;
        let up_returned = started.elapsed();
        for service in Service::ALL {
            let info = docker
                .inspect_container(service.production_name(), None::<InspectContainerOptions>)
                .await
                .with_context(|| format!("inspecting {}", service.production_name()))?;
            let ports = info
                .network_settings
                .and_then(|n| n.ports)
                .unwrap_or_default();
            for &port in service.ports() {
                if let Some(host) = harness::docker::published_port(&ports, port) {
                    self.ports.insert((service, port), host);
                }
            }
        }
        harness::wait::until_all_ready(self, started + deadline)
            .await
            .map_err(|last| {
                anyhow::anyhow!("the Compose node was not ready in {deadline:?}; {last}")
            })?;
        Ok(ComposeTimes {
            up_returned,
            all_ready: started.elapsed(),
        })
    }

    /// `down -v`, then whatever is left of ours (by label) removed, and the copied root.
    pub async fn down(self, docker: &Docker) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let mut down = command(
            self.compose,
            &self.project(),
            &ReplicaRoot::open(&self.dir).compose_path(),
        );
        down.args(["down", "-v", "-t", "5"]);
        let out = down.output().await.context("running Compose")?;
        let took = started.elapsed();
        self.remove_leftovers(docker).await?;
        self.succeeded("down", &out)?;
        Ok(took)
    }

    /// Removes every container and network labelled with this node's id, and its root.
    pub async fn remove_leftovers(&self, docker: &Docker) -> anyhow::Result<()> {
        harness::stack::remove_by_id(docker, &self.id).await?;
        if self.dir.exists() {
            std::fs::remove_dir_all(&self.dir)?;
        }
        Ok(())
    }

    /// `Err` with the last lines Compose wrote (redacted) when `command` failed.
    fn succeeded(&self, command: &str, out: &std::process::Output) -> anyhow::Result<()> {
        if out.status.success() {
            return Ok(());
        }
        let stderr = tail(&String::from_utf8_lossy(&out.stderr), 10);
        anyhow::bail!(
            "Compose {command} failed ({}): {}",
            out.status,
            self.redactor.redact(&stderr)
        )
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Copies a directory tree of regular files and directories, keeping file modes.
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
