//! The Docker engine connection, the labels every object of ours carries, and the sweep that
//! removes what a killed run left behind.

use std::collections::BTreeMap;
use std::path::PathBuf;

use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, RemoveContainerOptionsBuilder,
};
use bollard::Docker;

use crate::error::{HarnessError, Result};

/// Every container and network of ours carries this label (value `true`).
pub const LABEL_MANAGED: &str = "io.rotation-rehearsal.managed";
/// The stack id.
pub const LABEL_STACK: &str = "io.rotation-rehearsal.stack";
/// The replica service (`gateway`, `postgres`, …).
pub const LABEL_SERVICE: &str = "io.rotation-rehearsal.service";
/// The pid of the process that owns the stack; `0` for a detached stack (`cargo xtask up`).
pub const LABEL_OWNER_PID: &str = "io.rotation-rehearsal.owner-pid";
/// The replica root directory of the stack, removed with it.
pub const LABEL_ROOT: &str = "io.rotation-rehearsal.root";

/// Where the engine is expected, for error messages.
pub fn endpoint() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
}

/// Connects to the engine (DOCKER_HOST or the local socket) and checks that it answers.
pub async fn connect() -> Result<Docker> {
    let docker = Docker::connect_with_defaults().map_err(|e| HarnessError::NoDocker {
        endpoint: endpoint(),
        reason: e.to_string(),
    })?;
    match tokio::time::timeout(std::time::Duration::from_secs(5), docker.ping()).await {
        Ok(Ok(_)) => Ok(docker),
        Ok(Err(e)) => Err(HarnessError::NoDocker {
            endpoint: endpoint(),
            reason: e.to_string(),
        }),
        Err(_) => Err(HarnessError::NoDocker {
            endpoint: endpoint(),
            reason: "no answer within 5s".into(),
        }),
    }
}

/// The environment a container was created with, from `docker inspect` (secret values: redact
/// before showing).
pub fn env_of(inspect: bollard::models::ContainerInspectResponse) -> Vec<(String, String)> {
    inspect
        .config
        .and_then(|c| c.env)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

/// The host port that `container_port`/tcp is published on, from `docker inspect`'s port map.
pub fn published_port(ports: &bollard::models::PortMap, container_port: u16) -> Option<u16> {
    ports
        .get(&format!("{container_port}/tcp"))
        .and_then(|b| b.as_ref())
        .and_then(|b| b.iter().find_map(|pb| pb.host_port.as_ref()?.parse().ok()))
}

/// One stack found on the engine by its labels.
#[derive(Debug, Clone)]
pub struct StackSummary {
    pub id: String,
    pub owner_pid: u32,
    pub root: Option<PathBuf>,
    /// Container name → state (`running`, `paused`, `exited`, …).
    pub containers: BTreeMap<String, String>,
    pub networks: Vec<String>,
}

impl StackSummary {
    /// Detached stacks (from `cargo xtask up`) have no owner process.
    pub fn detached(&self) -> bool {
        self.owner_pid == 0
    }

    /// A stack whose owner process is gone: a killed run's leftover.
    pub fn orphaned(&self) -> bool {
        !self.detached() && !PathBuf::from(format!("/proc/{}", self.owner_pid)).exists()
    }
}

/// What of the stacks `ids` still exists: containers, networks (by label), replica roots and
/// the operator directories beside them. Empty when everything was removed.
pub async fn leftovers_of(docker: &Docker, ids: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for stack in list_stacks(docker).await? {
        if ids.contains(&stack.id) {
            out.extend(stack.containers.keys().map(|c| format!("container {c}")));
            out.extend(stack.networks.iter().map(|n| format!("network {n}")));
        }
    }
    for id in ids {
        let root = std::env::temp_dir().join(format!("rotation-replica-{id}"));
        for dir in [root.clone(), root.with_extension("operator")] {
            if dir.exists() {
                out.push(format!("directory {}", dir.display()));
            }
        }
    }
    Ok(out)
}

/// Every stack of ours on the engine, from container and network labels.
pub async fn list_stacks(docker: &Docker) -> Result<Vec<StackSummary>> {
    let filter = BTreeMap::from([("label", vec![LABEL_MANAGED])]);
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filter.iter().map(|(k, v)| (*k, v.clone())).collect())
                .build(),
        ))
        .await
        .map_err(HarnessError::docker("listing containers"))?;
    let networks = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::new()
                .filters(&filter.iter().map(|(k, v)| (*k, v.clone())).collect())
                .build(),
        ))
        .await
        .map_err(HarnessError::docker("listing networks"))?;
    let mut stacks: BTreeMap<String, StackSummary> = BTreeMap::new();
    let mut entry = |labels: &std::collections::HashMap<String, String>| -> Option<String> {
        let id = labels.get(LABEL_STACK)?.clone();
        let s = stacks.entry(id.clone()).or_insert_with(|| StackSummary {
            id: id.clone(),
            owner_pid: labels
                .get(LABEL_OWNER_PID)
                .and_then(|p| p.parse().ok())
                .unwrap_or(0),
            root: labels.get(LABEL_ROOT).map(PathBuf::from),
            containers: BTreeMap::new(),
            networks: Vec::new(),
        });
        if s.root.is_none() {
            s.root = labels.get(LABEL_ROOT).map(PathBuf::from);
        }
        Some(id)
    };
    let mut container_rows = Vec::new();
    for c in containers {
        let labels = c.labels.clone().unwrap_or_default();
        if let Some(id) = entry(&labels) {
            let name = c
                .names
                .and_then(|n| n.first().cloned())
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string();
            let state = c.state.map(|s| s.to_string()).unwrap_or_default();
            container_rows.push((id, name, state));
        }
    }
    let mut network_rows = Vec::new();
    for n in networks {
        let labels = n.labels.clone().unwrap_or_default();
        if let Some(id) = entry(&labels) {
            network_rows.push((id, n.name.unwrap_or_default()));
        }
    }
    for (id, name, state) in container_rows {
        if let Some(s) = stacks.get_mut(&id) {
            s.containers.insert(name, state);
        }
    }
    for (id, name) in network_rows {
        if let Some(s) = stacks.get_mut(&id) {
            s.networks.push(name);
        }
    }
    Ok(stacks.into_values().collect())
}

/// Removes a stack's containers (forcefully, with volumes), its networks and its replica root.
pub async fn remove_stack(docker: &Docker, stack: &StackSummary) -> Result<()> {
    let removals = stack.containers.keys().map(|name| {
        docker.remove_container(
            name,
            Some(
                RemoveContainerOptionsBuilder::new()
                    .force(true)
                    .v(true)
                    .build(),
            ),
        )
    });
    for result in futures::future::join_all(removals).await {
        match result {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(e) => return Err(HarnessError::docker("removing a container")(e)),
        }
    }
    for network in &stack.networks {
        match docker.remove_network(network).await {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(e) => {
                return Err(HarnessError::docker(format!("removing network {network}"))(
                    e,
                ))
            }
        }
    }
    if let Some(root) = &stack.root {
        if root.exists() {
            std::fs::remove_dir_all(root).map_err(HarnessError::io(root))?;
        }
    }
    Ok(())
}

/// Removes the stacks whose owner process is gone (a killed run's leftovers); returns their ids.
pub async fn sweep_orphans(docker: &Docker) -> Result<Vec<String>> {
    let mut swept = Vec::new();
    for stack in list_stacks(docker).await? {
        if stack.orphaned() {
            remove_stack(docker, &stack).await?;
            swept.push(stack.id);
        }
    }
    Ok(swept)
}
