//! The Docker engine connection, the labels every object of ours carries, and the sweep that
//! removes what a killed run left behind.

use std::collections::BTreeMap;
use std::path::PathBuf;

use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
    RemoveContainerOptionsBuilder, RemoveVolumeOptionsBuilder,
};
use bollard::Docker;

use crate::error::{HarnessError, Result};

pub use crate::checks::engine::{
    endpoint, engine_host, engine_host_of, engine_version, env_of, known_engine_defect, publish_ip,
    published_port, SshEngine, ENGINE_HOST_VAR, SSH_IDENTITY_VAR, SSH_KNOWN_HOSTS_VAR,
};

/// Connects to the engine (`DOCKER_HOST` or the local socket) and checks that it answers
/// (`checks::engine::connect`, its error as the harness's).
pub async fn connect() -> Result<Docker> {
    Ok(crate::checks::engine::connect().await?)
}

/// `checks::engine::tunnel_ssh_engine`, its error as the harness's.
pub async fn tunnel_ssh_engine() -> Result<Option<SshEngine>> {
    Ok(crate::checks::engine::tunnel_ssh_engine().await?)
}

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

/// What is said of a network the engine keeps with an endpoint it lost track of
/// (`HarnessError::StaleNetwork`): the engine's defect, not the run's, so a warning.
pub fn stale_network_warning(network: &str) -> String {
    format!(
        "the Docker engine kept a stale endpoint on network {network} (moby/moby#17217); only a \
         daemon restart removes it"
    )
}

/// How long the engine gets to answer a health probe: its own operations take milliseconds
/// when it is well; a wedged engine never answers.
pub const ENGINE_HEALTH_DEADLINE: std::time::Duration = std::time::Duration::from_secs(15);

/// Whether the engine still does its work, not only answers a ping: a container list, an
/// inspect of one of ours, and a network list, each within `ENGINE_HEALTH_DEADLINE`. A wedged
/// engine (containers it lists as running with no process left, operations that hang) fails
/// here at once, naming the operation, instead of failing every later test after minutes.
pub async fn health(docker: &Docker) -> Result<()> {
    health_within(docker, ENGINE_HEALTH_DEADLINE).await
}

/// `health` with its own deadline per operation.
pub async fn health_within(docker: &Docker, deadline: std::time::Duration) -> Result<()> {
    let hung = |operation: &str| HarnessError::EngineUnresponsive {
        endpoint: endpoint(),
        operation: operation.to_string(),
        waited: deadline,
        known_defect: engine_version()
            .and_then(known_engine_defect)
            .map(|d| format!("; {d}"))
            .unwrap_or_default(),
    };
    let filter = BTreeMap::from([("label", vec![LABEL_MANAGED])]);
    let filters: std::collections::HashMap<&str, Vec<&str>> =
        filter.iter().map(|(k, v)| (*k, v.clone())).collect();
    let containers = tokio::time::timeout(
        deadline,
        docker.list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build(),
        )),
    )
    .await
    .map_err(|_| hung("listing containers"))?
    .map_err(HarnessError::docker("listing containers"))?;
    if let Some(name) = containers
        .iter()
        .find_map(|c| c.names.as_ref()?.first().cloned())
    {
        let name = name.trim_start_matches('/').to_string();
        // Only that it answers counts: a container removed meanwhile is no sign of trouble.
        tokio::time::timeout(
            deadline,
            docker.inspect_container(
                &name,
                None::<bollard::query_parameters::InspectContainerOptions>,
            ),
        )
        .await
        .map_err(|_| hung(&format!("inspecting container {name}")))?
        .ok();
    }
    tokio::time::timeout(
        deadline,
        docker.list_networks(Some(ListNetworksOptionsBuilder::new().build())),
    )
    .await
    .map_err(|_| hung("listing networks"))?
    .map_err(HarnessError::docker("listing networks"))?;
    Ok(())
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
    /// Named volumes (PostgreSQL's data, NATS's JetStream store).
    pub volumes: Vec<String>,
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

/// What of the stacks `ids` still exists: containers, networks (by label), volumes, replica
/// roots and the operator directories beside them. Empty when everything was removed. A network
/// the engine refused to remove with nothing attached (`known_stale`) is not listed: it is the
/// engine's, and `engine_leftovers` of the journal name it.
/// A network the engine refused to remove in this process although nothing was attached to it
/// (`HarnessError::StaleNetwork`): the engine's leftover, not ours.
pub fn known_stale(network: &str) -> bool {
    STALE_NETWORKS
        .lock()
        .map(|stale| stale.iter().any(|n| n == network))
        .unwrap_or(false)
}

pub async fn leftovers_of(docker: &Docker, ids: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for stack in list_stacks(docker).await? {
        if ids.contains(&stack.id) {
            out.extend(stack.containers.keys().map(|c| format!("container {c}")));
            out.extend(
                stack
                    .networks
                    .iter()
                    .filter(|n| !known_stale(n))
                    .map(|n| format!("network {n}")),
            );
            out.extend(stack.volumes.iter().map(|v| format!("volume {v}")));
        }
    }
    for id in ids {
        let root = std::env::temp_dir().join(format!("rotation-replica-{id}"));
        for dir in [root.clone(), operator_dir_of(&root)] {
            if dir.exists() {
                out.push(format!("directory {}", dir.display()));
            }
        }
    }
    Ok(out)
}

/// Every stack of ours on the engine, from container, network and volume labels.
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
    let volumes = docker
        .list_volumes(Some(
            ListVolumesOptionsBuilder::new()
                .filters(&filter.iter().map(|(k, v)| (*k, v.clone())).collect())
                .build(),
        ))
        .await
        .map_err(HarnessError::docker("listing volumes"))?
        .volumes
        .unwrap_or_default();
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
            volumes: Vec::new(),
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
    let mut volume_rows = Vec::new();
    for v in volumes {
        if let Some(id) = entry(&v.labels) {
            volume_rows.push((id, v.name));
        }
    }
    for (id, name) in volume_rows {
        if let Some(s) = stacks.get_mut(&id) {
            s.volumes.push(name);
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

/// The operator directory beside the replica root `root` (`ReplicaRoot::operator_dir`):
/// removed with its stack.
pub fn operator_dir_of(root: &std::path::Path) -> PathBuf {
    root.with_extension("operator")
}

/// Removes a stack's containers (forcefully, with volumes), its named volumes, its networks and
/// its replica root.
/// Everything is attempted; the first error is returned.
pub async fn remove_stack(docker: &Docker, stack: &StackSummary) -> Result<()> {
    // First every container leaves the stack's networks while it still exists, one leave at a
    // time on each network (the networks side by side): the engine of Debian 12 (Docker
    // 20.10.24) can deadlock when two containers leave one network together
    // (`known_engine_defect`), and a container force-removed while attached sometimes keeps its
    // endpoint (moby/moby#17217, #42119). Then, attached to nothing, they are removed all at
    // once (the slow part: each is killed and waited for). Failed leaves are ignored: the
    // removals decide.
    let leave_one_network = |network: String| async move {
        for container in stack.containers.keys() {
            let _ = docker
                .disconnect_network(
                    &network,
                    bollard::models::NetworkDisconnectRequest {
                        container: container.clone(),
                        force: Some(true),
                    },
                )
                .await;
        }
    };
    futures::future::join_all(stack.networks.iter().cloned().map(leave_one_network)).await;
    let removals = stack
        .containers
        .keys()
        .map(|name| remove_container(docker, name));
    let mut first_error = None;
    for result in futures::future::join_all(removals).await {
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    for volume in &stack.volumes {
        let options = RemoveVolumeOptionsBuilder::new().force(true).build();
        match docker.remove_volume(volume, Some(options)).await {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(e) => {
                first_error
                    .get_or_insert(HarnessError::docker(format!("removing volume {volume}"))(e));
            }
        }
    }
    // With no container of its own left to release, a busy network's endpoint is stale at once.
    let grace = if stack.containers.is_empty() {
        std::time::Duration::ZERO
    } else {
        ENDPOINT_RELEASE_GRACE
    };
    for network in &stack.networks {
        if let Err(e) = remove_network(docker, network, grace).await {
            first_error.get_or_insert(e);
        }
    }
    if let Some(root) = &stack.root {
        for dir in [root.clone(), operator_dir_of(root)] {
            match std::fs::remove_dir_all(&dir) {
                // Gone already (never made, or another remover was first).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    first_error.get_or_insert(HarnessError::io(&dir)(e));
                }
                Ok(()) => {}
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

pub(crate) async fn remove_container(docker: &Docker, name: &str) -> Result<()> {
    let options = RemoveContainerOptionsBuilder::new()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(name, Some(options)).await {
        Ok(())
        | Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(()),
        // Another remover got there first (a stack dropping while a signal sweeps it): done
        // when the container is gone.
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 409,
            ref message,
        }) if message.contains("already in progress") => {
            let deadline = std::time::Instant::now() + NETWORK_REMOVAL_DEADLINE;
            while std::time::Instant::now() < deadline {
                match docker
                    .inspect_container(
                        name,
                        None::<bollard::query_parameters::InspectContainerOptions>,
                    )
                    .await
                {
                    Err(bollard::errors::Error::DockerResponseServerError {
                        status_code: 404,
                        ..
                    }) => return Ok(()),
                    _ => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
                }
            }
            Err(HarnessError::Docker {
                doing: format!("waiting for container {name} to be removed"),
                source: bollard::errors::Error::DockerResponseServerError {
                    status_code: 409,
                    message: message.clone(),
                },
            })
        }
        Err(e) => Err(HarnessError::docker(format!("removing container {name}"))(
            e,
        )),
    }
}

/// How long a network removal keeps trying while containers are still attached to it.
const NETWORK_REMOVAL_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);
/// How long the engine gets to release an endpoint no container holds any more.
const ENDPOINT_RELEASE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Networks this process found holding an endpoint no container has: the engine will not
/// remove them until its daemon restarts, so they are not tried again (each try costs time).
static STALE_NETWORKS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Removes a network of ours. The engine refuses (403, "active endpoints") while a container is
/// still attached: one created after the stack was listed, or an endpoint the engine has not
/// released yet. Whatever is attached is removed too (the network is the stack's own), and the
/// removal is tried again until a deadline. An endpoint that no container holds and the engine
/// never releases within `grace` (a Docker bug: moby/moby#17217, #42119) is reported as such.
async fn remove_network(docker: &Docker, network: &str, grace: std::time::Duration) -> Result<()> {
    let stale = || HarnessError::StaleNetwork {
        network: network.to_string(),
    };
    if STALE_NETWORKS
        .lock()
        .expect("lock")
        .iter()
        .any(|n| n == network)
    {
        return Err(stale());
    }
    let started = std::time::Instant::now();
    let mut nothing_attached_since: Option<std::time::Instant> = None;
    loop {
        let error = match docker.remove_network(network).await {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(()),
            Err(e) => e,
        };
        let busy = matches!(
            &error,
            bollard::errors::Error::DockerResponseServerError {
                status_code: 403 | 409,
                ..
            }
        );
        if !busy || started.elapsed() >= NETWORK_REMOVAL_DEADLINE {
            return Err(HarnessError::docker(format!("removing network {network}"))(
                error,
            ));
        }
        let attached = docker
            .inspect_network(
                network,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
            .ok()
            .and_then(|n| n.containers)
            .unwrap_or_default();
        if attached.is_empty() {
            let since = *nothing_attached_since.get_or_insert_with(std::time::Instant::now);
            if since.elapsed() >= grace {
                STALE_NETWORKS
                    .lock()
                    .expect("lock")
                    .push(network.to_string());
                return Err(stale());
            }
        }
        for (id, _) in attached {
            let _ = docker
                .disconnect_network(
                    network,
                    bollard::models::NetworkDisconnectRequest {
                        container: id.clone(),
                        force: Some(true),
                    },
                )
                .await;
            let _ = remove_container(docker, &id).await;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// What a sweep removed, and what it could not.
#[derive(Debug, Default)]
pub struct Sweep {
    /// Stacks removed whole.
    pub removed: Vec<String>,
    /// Stacks (id, why) of which something remains.
    pub stuck: Vec<(String, String)>,
}

/// Removes the stacks whose owner process is gone (a killed run's leftovers). A stack that
/// cannot be removed whole is reported, not an error: it must not stop the next run.
pub async fn sweep_orphans(docker: &Docker) -> Result<Sweep> {
    let mut sweep = Sweep::default();
    for stack in list_stacks(docker).await? {
        if stack.orphaned() {
            match remove_stack(docker, &stack).await {
                Ok(()) => sweep.removed.push(stack.id),
                Err(e) => sweep.stuck.push((stack.id, e.to_string())),
            }
        }
    }
    Ok(sweep)
}
