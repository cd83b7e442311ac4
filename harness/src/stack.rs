//! A running replica of the node: its own two networks, one container per service (created,
//! networked and operated through bollard), a per-stack replica root, typed readiness waits,
//! and certain removal.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use bollard::models::{
    ContainerCreateBody, ContainerUpdateBody, EndpointIpamConfig, EndpointSettings, HostConfig,
    Ipam, IpamConfig, Mount, MountType, NetworkConnectRequest, NetworkCreateRequest,
    NetworkDisconnectRequest, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, KillContainerOptionsBuilder,
    LogsOptionsBuilder, RestartContainerOptionsBuilder, StartContainerOptions,
    StopContainerOptionsBuilder,
};
use bollard::Docker;
use futures::StreamExt;

use crate::addresses::StackSubnet;
use crate::compose::{self, HostCompose};
use crate::docker::{self, LABEL_MANAGED, LABEL_OWNER_PID, LABEL_ROOT, LABEL_SERVICE, LABEL_STACK};
use crate::envfile::EnvFile;
use crate::error::{HarnessError, Result};
use crate::images::ensure_image_and_binary;
use crate::profile::NodeProfile;
use crate::progress::Progress;
use crate::redact::Redactor;
use crate::replica_root::{
    command_for, compose_project_of, ComposeNodeFile, ComposeStack, NodeSecrets, ReplicaRoot,
    RootOptions,
};
use crate::services::Service;
use crate::wait;

/// How to start a stack.
#[derive(Clone, Debug)]
pub struct StackOptions {
    /// Where progress lines go.
    pub progress: Progress,
    /// How long all services together may take to become ready.
    pub ready_timeout: Duration,
    /// A detached stack outlives this process (`cargo xtask up`); `cargo xtask down` removes it.
    pub detached: bool,
    /// Options for the replica root's files.
    pub root: RootOptions,
    /// The node's initial (old) secrets; generated when absent.
    pub secrets: Option<NodeSecrets>,
    /// The stack id; generated when absent.
    pub id: Option<String>,
    /// `.env` edits applied before any container is created: (service, variable, value).
    pub env_overrides: Vec<(Service, String, String)>,
}

impl Default for StackOptions {
    fn default() -> Self {
        StackOptions {
            progress: Progress::silent(),
            ready_timeout: Duration::from_secs(60),
            detached: false,
            root: RootOptions::default(),
            secrets: None,
            id: None,
            env_overrides: Vec::new(),
        }
    }
}

/// The outcome of a command run inside a container.
#[derive(Clone, Debug)]
pub struct ExecOutput {
    pub exit_code: i64,
    /// Redacted.
    pub stdout: String,
    /// Redacted.
    pub stderr: String,
}

/// A new stack id: 8 hex characters.
pub fn new_stack_id() -> String {
    crate::replica_root::random_string(8, b"0123456789abcdef")
}

/// A running replica.
pub struct Stack {
    id: String,
    docker: Docker,
    network: String,
    /// The stack's own network that publishes its ports (`<network>-ports`), in place of the
    /// engine's shared bridge: the host still reaches a container cut off `network`, and no
    /// container of another stack ever leaves a network this stack's containers are on.
    ports_network: String,
    /// The stack network's subnet, each service's fixed address on it and every peer's name in
    /// every container's `/etc/hosts` (`addresses`); set when the network is made.
    subnet: OnceLock<StackSubnet>,
    root: ReplicaRoot,
    image: (String, String),
    /// The image's id, which Compose v2 labels a container with.
    image_id: Option<String>,
    binary: PathBuf,
    secrets: NodeSecrets,
    /// How the services read their secrets (`RootOptions::profile`).
    profile: NodeProfile,
    redactor: Redactor,
    ports: Mutex<BTreeMap<(Service, u16), u16>>,
    /// The host's Compose, whose config hashes label the containers; `None` without one.
    compose: Option<&'static HostCompose>,
    /// Each service's config hash as the host's Compose computes it from the files now.
    hashes: Mutex<BTreeMap<Service, String>>,
    detached: bool,
    progress: Progress,
    ready_timeout: Duration,
    torn_down: AtomicBool,
}

impl std::fmt::Debug for Stack {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("id", &self.id)
            .field("root", &self.root.dir())
            .finish()
    }
}

impl Stack {
    /// This replica as `verify` sees a node: its root, and its services at their host ports.
    pub fn target(&self) -> crate::checks::Target {
        crate::checks::Target::replica(self.id(), self.root().dir(), |s, port| {
            self.host_port(s, port).unwrap_or(0)
        })
    }

    /// Provides the image and binary, writes a replica root, starts every service and returns
    /// when all are ready (or fails naming the one that is not, with its last log lines).
    /// A host port taken by someone else between its choice and its container's start (another
    /// stack starting at the same moment) fails that attempt; the stack is then removed and
    /// started again on other ports, at most `START_ATTEMPTS` times in all.
    pub async fn start(options: StackOptions) -> Result<Stack> {
        let mut attempt = 1;
        loop {
            match Self::start_once(options.clone()).await {
                Err(e) if attempt < START_ATTEMPTS && port_taken(&e.to_string()) => {
                    options.progress.say(&format!(
                        "a host port of the stack was taken before its container started ({e}); \
                         starting it again on other ports"
                    ));
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    async fn start_once(options: StackOptions) -> Result<Stack> {
        let progress = options.progress.clone();
        let docker = docker::connect().await?;
        // The sweep of killed runs' leftovers shares nothing with this stack: it runs while the
        // image and binary are checked and the host's Compose is found (once per process).
        let compose = async {
            let detect = || {
                let compose = HostCompose::detect();
                compose.inspect(|c| c.prewarm());
                compose
            };
            Ok(tokio::task::spawn_blocking(detect).await.unwrap_or(None))
        };
        let (sweep, (image, binary), compose) = tokio::try_join!(
            docker::sweep_orphans(&docker),
            ensure_image_and_binary(&docker, &progress),
            compose
        )?;
        if !sweep.removed.is_empty() {
            progress.say(&format!(
                "swept {} leftover stack(s) of killed runs: {}",
                sweep.removed.len(),
                sweep.removed.join(", ")
            ));
        }
        // Once per process for each: a stuck leftover stays stuck until the daemon restarts.
        static WARNED: Mutex<Vec<String>> = Mutex::new(Vec::new());
        for (id, why) in &sweep.stuck {
            let first = WARNED.lock().is_ok_and(|mut warned| {
                let first = !warned.contains(id);
                if first {
                    warned.push(id.clone());
                }
                first
            });
            if first {
                progress.say(&format!("warning: leftover stack {id} not removed: {why}"));
            }
        }
        let image_id = docker
            .inspect_image(&format!("{}:{}", image.0, image.1))
            .await
            .ok()
            .and_then(|i| i.id);
        let id = options.id.clone().unwrap_or_else(new_stack_id);
        let dir = std::env::temp_dir().join(format!("rotation-replica-{id}"));
        let secrets = options
            .secrets
            .clone()
            .unwrap_or_else(NodeSecrets::generate);
        let redactor = Redactor::new();
        secrets.register(&redactor);
        let network = format!("rotation-{id}");
        let owner_pid = if options.detached {
            0
        } else {
            std::process::id()
        };
        let labels = stack_labels(&id, owner_pid, &dir);
        // From here on, dropping the stack removes everything created so far (by its labels).
        let stack = Stack {
            id: id.clone(),
            docker,
            ports_network: format!("{network}-ports"),
            network,
            subnet: OnceLock::new(),
            root: ReplicaRoot::open(&dir),
            image,
            image_id,
            binary,
            secrets,
            profile: options.root.profile.clone(),
            redactor,
            ports: Mutex::new(BTreeMap::new()),
            compose,
            hashes: Mutex::new(BTreeMap::new()),
            detached: options.detached,
            progress,
            ready_timeout: options.ready_timeout,
            torn_down: AtomicBool::new(false),
        };
        // The networks (half a second of the engine's time) are made while the replica root,
        // the Compose file, its config hashes and the data volumes are; the Compose file names
        // the addresses on the stack's network, so it is written once that network exists.
        tokio::try_join!(
            async {
                stack.create_stack_network(&labels).await?;
                stack.prepare(&options, &labels).await
            },
            stack.create_network(&stack.ports_network, &labels, None)
        )?;
        stack.progress.say(&format!(
            "starting stack {id}: {} containers on network {}",
            Service::ALL.len(),
            stack.network
        ));
        let started = Instant::now();
        stack.start_all_until_ready(started).await?;
        stack.progress.say(&format!(
            "stack {id} ready in {:.1}s",
            started.elapsed().as_secs_f64()
        ));
        Ok(stack)
    }

    /// The replica root with its `.env` files, the Compose file and its config hashes, the
    /// shims and the data volumes: everything a container needs before it is created.
    async fn prepare(&self, options: &StackOptions, labels: &[(String, String)]) -> Result<()> {
        let stack = self;
        let id = &self.id;
        let dir = self.root.dir().to_path_buf();
        ReplicaRoot::create(&dir, &stack.secrets, &options.root)?;
        for (service, key, value) in &options.env_overrides {
            stack.edit_env(*service, |f| f.set(key, value))?;
        }
        let upstream_env = stack.root.dir().join(".upstream.env");
        let mut f = EnvFile::new(&upstream_env);
        f.comment("The fake outside world's initial keys (not part of the node)");
        for (k, v) in stack.secrets.upstream_seed_env() {
            f.set(&k, &v);
        }
        f.write()?;
        // Fixed host ports, as the node's: a recreate by Compose publishes the same ones.
        let ports = free_host_ports()?;
        *stack.ports.lock().expect("ports lock") = ports.clone();
        stack.root.write_compose(&ComposeNodeFile {
            image: &stack.image_ref(),
            profile: &stack.profile,
            binary: &stack.binary,
            upstream_env_file: &upstream_env,
            labels,
            stack: Some(ComposeStack {
                id,
                network: &stack.network,
                subnet: stack.subnet(),
                ports: &ports,
            }),
        })?;
        stack.root.track_in_git();
        compose::write_shims(&stack.shim_dir(), stack.compose)?;
        tokio::try_join!(stack.create_data_volumes(labels), stack.refresh_hashes(&[]))?;
        Ok(())
    }

    /// Creates the stack's network on the first free subnet of [`StackSubnet::candidates`].
    async fn create_stack_network(&self, labels: &[(String, String)]) -> Result<()> {
        // Stacks started together start their search at different subnets.
        let seed = self.id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        let mut last = None;
        for subnet in StackSubnet::candidates(seed).take(SUBNET_ATTEMPTS) {
            match self
                .create_network(&self.network, labels, Some(subnet))
                .await
            {
                Ok(()) => {
                    self.subnet.set(subnet).expect("the subnet is set once");
                    return Ok(());
                }
                Err(e) if crate::addresses::is_overlap(&e.to_string()) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.expect("at least one attempt"))
    }

    /// Creates one of the stack's bridge networks, labelled as the stack, on `subnet` if given.
    async fn create_network(
        &self,
        name: &str,
        labels: &[(String, String)],
        subnet: Option<StackSubnet>,
    ) -> Result<()> {
        let request = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            labels: Some(labels.iter().cloned().collect()),
            ipam: subnet.map(|s| Ipam {
                config: Some(vec![IpamConfig {
                    subnet: Some(s.cidr()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.docker
            .create_network(request)
            .await
            .map(|_| ())
            .map_err(HarnessError::docker(format!("creating network {name}")))
    }

    /// The stack network's subnet (made before any container is).
    fn subnet(&self) -> &StackSubnet {
        self.subnet
            .get()
            .expect("the stack's network is made before its subnet is used")
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The replica root (laid out like `/opt/microdao-daarion`).
    pub fn root(&self) -> &ReplicaRoot {
        &self.root
    }

    /// The secrets the node started with (the "old" ones).
    pub fn initial_secrets(&self) -> &NodeSecrets {
        &self.secrets
    }

    /// The redactor that knows every secret of this stack; register new secrets with it.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    pub fn network(&self) -> &str {
        &self.network
    }

    pub fn image_ref(&self) -> String {
        format!("{}:{}", self.image.0, self.image.1)
    }

    /// The stack's Compose project (the replica root's directory name, as Compose derives it).
    pub fn compose_project(&self) -> String {
        compose_project_of(self.root.dir())
    }

    /// The directory of shims a runbook's commands find first on `PATH` (`compose::write_shims`).
    pub fn shim_dir(&self) -> PathBuf {
        self.root.operator_dir().join(".compose-shims")
    }

    /// The engine's name of a data volume (`Service::data_volume`): Compose's own,
    /// `<project>_<key>`.
    pub fn volume_name(&self, key: &str) -> String {
        format!("{}_{key}", self.compose_project())
    }

    /// Creates the named data volumes, labelled as ours and as Compose labels the volumes of
    /// its project, so that Compose takes them for its own.
    async fn create_data_volumes(&self, labels: &[(String, String)]) -> Result<()> {
        for (key, _) in Service::ALL.iter().filter_map(|s| s.data_volume()) {
            let mut all: std::collections::HashMap<String, String> =
                labels.iter().cloned().collect();
            all.insert(compose::LABEL_PROJECT.into(), self.compose_project());
            all.insert(compose::LABEL_VOLUME.into(), key.into());
            if let Some(c) = self.compose {
                all.insert(compose::LABEL_VERSION.into(), c.version.clone());
            }
            let name = self.volume_name(key);
            self.docker
                .create_volume(bollard::models::VolumeCreateRequest {
                    name: Some(name.clone()),
                    labels: Some(all),
                    ..Default::default()
                })
                .await
                .map_err(HarnessError::docker(format!("creating volume {name}")))?;
        }
        Ok(())
    }

    /// Computes the config hash of `services` (all when empty) again from the files as they
    /// are now, with the host's Compose; nothing without one.
    async fn refresh_hashes(&self, services: &[Service]) -> Result<()> {
        let Some(compose) = self.compose else {
            return Ok(());
        };
        let hashes = compose
            .config_hashes(self.root.dir(), services, &self.redactor)
            .await?;
        self.hashes.lock().expect("hashes lock").extend(hashes);
        Ok(())
    }

    /// Runs the host's Compose on this stack as an operator would in the node's directory
    /// (`docker compose -f docker-compose.node1.yml ARGS…`); output redacted. Ports are read
    /// again afterwards: what Compose recreated is a new container.
    pub async fn compose(&self, args: &[&str]) -> Result<ExecOutput> {
        let Some(compose) = self.compose else {
            return Err(HarnessError::Compose {
                doing: format!("running `compose {}`", args.join(" ")),
                detail: "this host has no Compose (neither `docker compose` nor `docker-compose`)"
                    .into(),
            });
        };
        let out = compose
            .command()
            .current_dir(self.root.dir())
            .arg("-f")
            .arg(compose::COMPOSE_FILE)
            .args(args)
            .output()
            .await
            .map_err(|e| HarnessError::Compose {
                doing: format!("running `compose {}`", args.join(" ")),
                detail: e.to_string(),
            })?;
        for service in Service::ALL {
            let _ = self.refresh_ports(service).await;
        }
        Ok(ExecOutput {
            exit_code: out.status.code().map_or(-1, i64::from),
            stdout: self.redactor.redact(&String::from_utf8_lossy(&out.stdout)),
            stderr: self.redactor.redact(&String::from_utf8_lossy(&out.stderr)),
        })
    }

    /// The container name of `service` in this stack: production's name plus the stack id.
    pub fn container_name(&self, service: Service) -> String {
        format!("{}-{}", service.production_name(), self.id)
    }

    /// The host port (on 127.0.0.1) that `container_port` of `service` is published on.
    pub fn host_port(&self, service: Service, container_port: u16) -> Option<u16> {
        self.ports
            .lock()
            .expect("ports lock")
            .get(&(service, container_port))
            .copied()
    }

    /// `http://<engine host>:<port>` of a service's first port (127.0.0.1 for a local engine).
    pub fn url(&self, service: Service) -> String {
        let port = service.ports()[0];
        let host = self.host_port(service, port).unwrap_or(0);
        format!("http://{}:{host}", crate::docker::engine_host())
    }

    /// The NATS client URL from the host.
    pub fn nats_url(&self) -> String {
        format!(
            "nats://{}:{}",
            crate::docker::engine_host(),
            self.host_port(Service::Nats, 4222).unwrap_or(0)
        )
    }

    /// The NATS monitoring URL from the host.
    pub fn nats_monitor_url(&self) -> String {
        format!(
            "http://{}:{}",
            crate::docker::engine_host(),
            self.host_port(Service::Nats, 8222).unwrap_or(0)
        )
    }

    /// A tokio-postgres config reaching PostgreSQL from outside its container, with `password`.
    pub fn pg_config(&self, password: &str) -> tokio_postgres::Config {
        crate::wait::pg_config_at(
            self.host_port(Service::Postgres, 5432).unwrap_or(0),
            password,
        )
    }

    /// Every `.env` file of the node as it is now.
    pub fn current_env(&self) -> Result<BTreeMap<Service, EnvFile>> {
        self.root.current_env()
    }

    /// Reads, edits and writes `service`'s `.env` in place. The running container is not
    /// affected until it is recreated.
    pub fn edit_env(&self, service: Service, edit: impl FnOnce(&mut EnvFile)) -> Result<()> {
        let mut f = self.root.read_env(service)?;
        edit(&mut f);
        Ok(f.write()?)
    }

    /// The environment the running container of `service` actually has (redaction is the
    /// caller's business: these are secret values).
    pub async fn container_env(&self, service: Service) -> Result<BTreeMap<String, String>> {
        Ok(docker::env_of(self.inspect(service).await?)
            .into_iter()
            .collect())
    }

    /// `docker restart`: the process restarts with the env the container was created with.
    pub async fn restart(&self, service: Service) -> Result<()> {
        self.docker
            .restart_container(
                &self.container_name(service),
                Some(RestartContainerOptionsBuilder::new().t(5).build()),
            )
            .await
            .map_err(HarnessError::docker(format!("restarting {service}")))?;
        self.refresh_ports(service).await
    }

    /// Recreate (`docker compose up -d <svc>` after an `.env` change): remove the container
    /// and create it again, reading its `.env` file anew.
    pub async fn recreate(&self, service: Service) -> Result<()> {
        self.recreate_with(service, None).await
    }

    /// Removes `service`'s container and creates it again (`create_service_with`).
    /// The container is removed by name: Compose may have replaced the one the harness
    /// created. Its config hash is computed again, since its `.env` may have changed.
    async fn recreate_with(&self, service: Service, left_out: Option<&str>) -> Result<()> {
        self.disarm_restarts(service).await;
        docker::remove_container(&self.docker, &self.container_name(service)).await?;
        self.refresh_hashes(&[service]).await?;
        self.create_service_with(service, left_out).await
    }

    /// Turns a crash loop's restart policy off and kills the container before it is removed:
    /// removing a container while the engine is restarting it can leave its endpoint on the
    /// network for good (moby/moby#17217), which then keeps the network from being removed.
    async fn disarm_restarts(&self, service: Service) {
        let name = self.container_name(service);
        let looping = self
            .docker
            .inspect_container(&name, None::<InspectContainerOptions>)
            .await
            .ok()
            .and_then(|i| i.host_config)
            .and_then(|hc| hc.restart_policy)
            .and_then(|p| p.name)
            .is_some_and(|p| p != RestartPolicyNameEnum::NO && p != RestartPolicyNameEnum::EMPTY);
        if !looping {
            return;
        }
        let _ = self
            .docker
            .update_container(
                &name,
                ContainerUpdateBody {
                    restart_policy: Some(RestartPolicy {
                        name: Some(RestartPolicyNameEnum::NO),
                        maximum_retry_count: None,
                    }),
                    ..Default::default()
                },
            )
            .await;
        let _ = self
            .docker
            .kill_container(
                &name,
                Some(KillContainerOptionsBuilder::new().signal("KILL").build()),
            )
            .await;
        // Until the engine has no restart of it in flight.
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let state = self
                .docker
                .inspect_container(&name, None::<InspectContainerOptions>)
                .await
                .ok()
                .and_then(|i| i.state);
            let settled =
                state.is_none_or(|s| s.restarting != Some(true) && s.running != Some(true));
            if settled {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `docker stop` (SIGTERM, then SIGKILL after 5 s).
    pub async fn stop(&self, service: Service) -> Result<()> {
        self.docker
            .stop_container(
                &self.container_name(service),
                Some(StopContainerOptionsBuilder::new().t(5).build()),
            )
            .await
            .map_err(HarnessError::docker(format!("stopping {service}")))
    }

    /// `docker start` of a stopped container (same env as at creation).
    pub async fn start_again(&self, service: Service) -> Result<()> {
        self.docker
            .start_container(&self.container_name(service), None::<StartContainerOptions>)
            .await
            .map_err(HarnessError::docker(format!("starting {service}")))?;
        self.refresh_ports(service).await
    }

    /// `docker kill --signal <signal>` (e.g. `KILL`, `HUP` to make NATS reload its config).
    pub async fn kill(&self, service: Service, signal: &str) -> Result<()> {
        self.docker
            .kill_container(
                &self.container_name(service),
                Some(KillContainerOptionsBuilder::new().signal(signal).build()),
            )
            .await
            .map_err(HarnessError::docker(format!(
                "sending {signal} to {service}"
            )))
    }

    /// The service hangs: every process in its container is stopped with SIGSTOP (PID 1 by
    /// the engine, the others by `kill -STOP -1` run inside it), so its TCP peers see no
    /// answer. Not `docker pause`: that freezes the cgroup, and a lifecycle operation on a
    /// frozen container (the runbook's `docker-compose restart`, a stop, a network disconnect)
    /// can deadlock the Docker daemon itself — measured here, a paused PostgreSQL and the
    /// rollback's restart wedged the engine for every later test. A stopped process is
    /// still ended by `docker stop` / `restart` (SIGKILL after the grace period), as a hung
    /// process in production is.
    pub async fn freeze(&self, service: Service) -> Result<()> {
        self.exec(service, &["sh", "-c", "kill -s STOP -1"]).await?;
        self.kill(service, "STOP").await
    }

    /// Undoes `freeze`: SIGCONT to PID 1, then to every other process of the container.
    pub async fn thaw(&self, service: Service) -> Result<()> {
        self.kill(service, "CONT").await?;
        self.exec(service, &["sh", "-c", "kill -s CONT -1"])
            .await
            .map(|_| ())
    }

    /// Makes NATS re-read `nats/nats-server.conf` (SIGHUP), as `nats-server --signal reload`.
    pub async fn reload_nats(&self) -> Result<()> {
        self.kill(Service::Nats, "HUP").await
    }

    /// `docker exec <container> <cmd…>`; output is redacted.
    pub async fn exec(&self, service: Service, cmd: &[&str]) -> Result<ExecOutput> {
        use bollard::exec::{CreateExecOptions, StartExecResults};
        let container = self.container_name(service);
        let exec = self
            .docker
            .create_exec(
                &container,
                CreateExecOptions {
                    cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map_err(HarnessError::docker(format!("exec in {service}")))?;
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        if let StartExecResults::Attached { mut output, .. } = self
            .docker
            .start_exec(&exec.id, None)
            .await
            .map_err(HarnessError::docker(format!("exec in {service}")))?
        {
            while let Some(item) = output.next().await {
                match item.map_err(HarnessError::docker(format!("exec output of {service}")))? {
                    bollard::container::LogOutput::StdOut { message } => {
                        stdout.extend_from_slice(&message)
                    }
                    bollard::container::LogOutput::StdErr { message } => {
                        stderr.extend_from_slice(&message)
                    }
                    _ => {}
                }
            }
        }
        let inspect = self
            .docker
            .inspect_exec(&exec.id)
            .await
            .map_err(HarnessError::docker(format!("exec in {service}")))?;
        Ok(ExecOutput {
            exit_code: inspect.exit_code.unwrap_or(-1),
            stdout: self.redactor.redact(&String::from_utf8_lossy(&stdout)),
            stderr: self.redactor.redact(&String::from_utf8_lossy(&stderr)),
        })
    }

    /// The last `tail` log lines of `service` (stdout and stderr), redacted.
    pub async fn logs(&self, service: Service, tail: usize) -> Result<String> {
        logs_of(
            &self.docker,
            &self.container_name(service),
            tail,
            &self.redactor,
        )
        .await
    }

    /// The last `tail` lines `service` wrote on stdout and on stderr, apart (redacted).
    pub async fn logs_by_stream(&self, service: Service, tail: usize) -> Result<(String, String)> {
        let container = self.container_name(service);
        let mut stream = log_stream(&self.docker, &container, tail);
        let (mut stdout, mut stderr) = (String::new(), String::new());
        while let Some(item) = stream.next().await {
            match item.map_err(HarnessError::docker(format!("reading logs of {service}")))? {
                bollard::container::LogOutput::StdErr { message } => {
                    stderr.push_str(&String::from_utf8_lossy(&message))
                }
                other => stdout.push_str(&String::from_utf8_lossy(&other.into_bytes())),
            }
        }
        Ok((self.redactor.redact(&stdout), self.redactor.redact(&stderr)))
    }

    /// Waits until `service` is ready (typed probe, deadline).
    pub async fn wait_ready(&self, service: Service, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        wait::until_ready(self, service, deadline).await
    }

    /// Creates every service's container and waits for each to be ready from the moment its
    /// own container started. PostgreSQL and NATS come first and the services once both are
    /// running: started all at once, the six services' starts slowed PostgreSQL's by the engine's
    /// and the cores' share they took (all-ready 3.1 s against 2.9 s, `cargo xtask bench up`).
    /// The first service that fails (creation, exit, or `ready_timeout` after its start) ends
    /// the wait; what was created is removed with the stack.
    async fn start_all_until_ready(&self, started: Instant) -> Result<()> {
        let servers = Service::ALL.iter().filter(|s| s.is_server()).count();
        let (started_servers, servers_started) = tokio::sync::watch::channel(0usize);
        let ups = Service::ALL.map(|s| {
            let started_servers = &started_servers;
            let mut servers_started = servers_started.clone();
            async move {
                self.create_container(s, None).await?;
                if !s.is_server() {
                    let _ = servers_started.wait_for(|n| *n == servers).await;
                }
                self.start_created(s).await?;
                if s.is_server() {
                    started_servers.send_modify(|n| *n += 1);
                }
                let deadline = Instant::now() + self.ready_timeout;
                wait::until_ready(self, s, deadline).await?;
                self.progress.say(&format!(
                    "  {s} ready (+{:.1}s)",
                    started.elapsed().as_secs_f64()
                ));
                Ok::<(), HarnessError>(())
            }
        });
        futures::future::try_join_all(ups).await.map(|_| ())
    }

    /// `docker inspect` of `service`'s container.
    pub async fn inspect(
        &self,
        service: Service,
    ) -> Result<bollard::models::ContainerInspectResponse> {
        self.docker
            .inspect_container(
                &self.container_name(service),
                None::<InspectContainerOptions>,
            )
            .await
            .map_err(HarnessError::docker(format!("inspecting {service}")))
    }

    /// Reads the published host ports of `service` again. A stopped container publishes none:
    /// its ports are kept, since a stack's are fixed (`free_host_ports`) and it publishes the
    /// same ones when it runs again. Forgetting them made a runbook block rewritten while the
    /// service was down talk to port 0 after it came back.
    pub async fn refresh_ports(&self, service: Service) -> Result<()> {
        let info = self.inspect(service).await?;
        let ports = info
            .network_settings
            .and_then(|n| n.ports)
            .unwrap_or_default();
        let mut map = self.ports.lock().expect("ports lock");
        for p in service.ports() {
            if let Some(h) = docker::published_port(&ports, *p) {
                map.insert((service, *p), h);
            }
        }
        Ok(())
    }

    /// Creates and starts `service`'s container (`create_container`, `start_created`).
    async fn create_service_with(&self, service: Service, left_out: Option<&str>) -> Result<()> {
        self.create_container(service, left_out).await?;
        self.start_created(service).await
    }

    /// The env Compose gives `service`'s container on `up` from the files as they are now: its
    /// `.env`, then the compose file's `environment:` (the node profile's), interpolated from
    /// the project `.env` (a `restart` reads none of them again).
    pub fn expected_env(&self, service: Service) -> Result<Vec<(String, String)>> {
        let mut env: Vec<(String, String)> = match service {
            Service::Upstream => self.secrets.upstream_seed_env(),
            s => match self.root.env_path(s) {
                Some(path) => EnvFile::read(path)?.vars(),
                None => Vec::new(),
            },
        };
        let project = EnvFile::read(self.root.project_env_path())
            .map(|f| f.vars())
            .unwrap_or_default();
        for w in self.profile.wiring(service) {
            let value = w.interpolated_value(|name| {
                project
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            });
            if let Some(value) = value {
                env.retain(|(k, _)| *k != w.variable);
                env.push((w.variable, value));
            }
        }
        Ok(env)
    }

    /// How the node's services read their secrets in this stack.
    pub fn profile(&self) -> &NodeProfile {
        &self.profile
    }

    /// Creates `service`'s container from its `.env`, on the stack's network, not started; with
    /// `left_out`, without that variable and with the restart policy `on-failure` (how a crash
    /// loop looks in production).
    async fn create_container(&self, service: Service, left_out: Option<&str>) -> Result<()> {
        let mut env = self.expected_env(service)?;
        if let Some(var) = left_out {
            env.retain(|(k, _)| k != var);
        }
        let restart_policy = left_out.map(|_| RestartPolicy {
            name: Some(RestartPolicyNameEnum::ON_FAILURE),
            maximum_retry_count: None,
        });
        // Loopback only, on the ports the compose file names.
        let port_bindings = service
            .ports()
            .iter()
            .map(|p| {
                let host = self.host_port(service, *p);
                (
                    format!("{p}/tcp"),
                    Some(vec![PortBinding {
                        host_ip: Some(crate::docker::publish_ip().into()),
                        host_port: Some(host.map(|h| h.to_string()).unwrap_or_default()),
                    }]),
                )
            })
            .collect();
        let config = ContainerCreateBody {
            image: Some(self.image_ref()),
            hostname: Some(service.production_name().to_string()),
            cmd: Some(command_for(service, &self.profile)),
            env: Some(env.into_iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(self.container_labels(service).into_iter().collect()),
            exposed_ports: Some(service.ports().iter().map(|p| format!("{p}/tcp")).collect()),
            // On the stack's ports network, which publishes the ports: the host still reaches
            // them while a fault has cut the container off the stack's network.
            host_config: Some(HostConfig {
                network_mode: Some(self.ports_network.clone()),
                extra_hosts: Some(self.subnet().extra_hosts()),
                port_bindings: Some(port_bindings),
                publish_all_ports: Some(false),
                restart_policy,
                mounts: Some(self.mounts(service)),
                ..Default::default()
            }),
            ..Default::default()
        };
        let options = CreateContainerOptionsBuilder::new()
            .name(&self.container_name(service))
            .build();
        self.docker
            .create_container(Some(options), config)
            .await
            .map_err(HarnessError::start("create", service))?;
        // On the stack's network before its process starts: no connect after start, so no
        // window in which it runs without its peers or they dial it before it is attached.
        self.reconnect(service).await
    }

    /// The labels of `service`'s container: ours (`stack_labels`, the service) and those Compose
    /// would give it, its config hash included.
    fn container_labels(&self, service: Service) -> Vec<(String, String)> {
        let mut labels = stack_labels(
            &self.id,
            if self.detached { 0 } else { std::process::id() },
            self.root.dir(),
        );
        labels.push((LABEL_SERVICE.to_string(), service.key().to_string()));
        let hash = self
            .hashes
            .lock()
            .expect("hashes lock")
            .get(&service)
            .cloned();
        labels.extend(compose::container_labels(
            &self.compose_project(),
            service,
            compose::ContainerFacts {
                hash: hash.as_deref(),
                root: self.root.dir(),
                version: self.compose.map(|c| c.version.as_str()),
                image_id: self.image_id.as_deref(),
            },
        ));
        labels
    }

    /// What `service`'s container mounts. Every container has the binary: the services run
    /// it, PostgreSQL and NATS run its fault proxy in front of them.
    fn mounts(&self, service: Service) -> Vec<Mount> {
        let mut mounts = vec![bind_mount(&self.binary, "/usr/local/bin/replica")];
        if let Some((key, path)) = service.data_volume() {
            mounts.push(Mount {
                target: Some(path.to_string()),
                source: Some(self.volume_name(key)),
                typ: Some(MountType::VOLUME),
                read_only: Some(false),
                ..Default::default()
            });
        }
        if service == Service::Router {
            mounts.push(bind_mount(&self.root.router_dir(), "/etc/router"));
        }
        if service == Service::Nats {
            for m in self.profile.mounts(service) {
                let host = self.root.dir().join(m.host_path.trim_start_matches("./"));
                mounts.push(bind_mount(&host, &m.container_path));
            }
        }
        mounts
    }

    /// Starts the container `create_container` made and reads its published ports.
    async fn start_created(&self, service: Service) -> Result<()> {
        self.docker
            .start_container(&self.container_name(service), None::<StartContainerOptions>)
            .await
            .map_err(HarnessError::start("start", service))?;
        self.refresh_ports(service).await
    }

    /// Connects `service` to the stack's network under its production names.
    pub async fn reconnect(&self, service: Service) -> Result<()> {
        self.docker
            .connect_network(
                &self.network,
                NetworkConnectRequest {
                    container: self.container_name(service),
                    endpoint_config: Some(EndpointSettings {
                        aliases: Some(service.aliases().into_iter().map(String::from).collect()),
                        ipam_config: Some(EndpointIpamConfig {
                            ipv4_address: Some(self.subnet().address(service).to_string()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                },
            )
            .await
            .map_err(HarnessError::docker(format!(
                "connecting {service} to {}",
                self.network
            )))
    }

    /// `docker network disconnect --force`: `service` is cut off from every other service
    /// (the host still reaches its published ports, which go through another network).
    pub async fn disconnect(&self, service: Service) -> Result<()> {
        self.docker
            .disconnect_network(
                &self.network,
                NetworkDisconnectRequest {
                    container: self.container_name(service),
                    force: Some(true),
                },
            )
            .await
            .map_err(HarnessError::docker(format!(
                "disconnecting {service} from {}",
                self.network
            )))
    }

    /// `service`'s address on the stack's network (the peer address its connections carry).
    pub async fn network_ip(&self, service: Service) -> Result<std::net::IpAddr> {
        let info = self.inspect(service).await?;
        info.network_settings
            .and_then(|n| n.networks)
            .and_then(|n| n.get(&self.network).cloned())
            .and_then(|e| e.ip_address)
            .and_then(|ip| ip.parse().ok())
            .ok_or_else(|| HarnessError::Exec {
                container: self.container_name(service),
                detail: format!("it has no address on {}", self.network),
            })
    }

    /// A call to the fault proxy in front of `service` (PostgreSQL or NATS), made inside its
    /// container: `PUT /rule` with a JSON rule, `POST /reset`, `GET /rule`. Returns the answer.
    pub async fn fault_proxy(
        &self,
        service: Service,
        method: &str,
        path: &str,
        body: &str,
    ) -> Result<String> {
        let url = format!("http://127.0.0.1:9199{path}");
        let out = self
            .exec(
                service,
                &[
                    "curl",
                    "-sS",
                    "-f",
                    "-X",
                    method,
                    "-H",
                    "content-type: application/json",
                    "--data-binary",
                    body,
                    &url,
                ],
            )
            .await?;
        if out.exit_code == 0 {
            Ok(out.stdout)
        } else {
            Err(HarnessError::Exec {
                container: self.container_name(service),
                detail: format!(
                    "the fault proxy answered exit {}: {}",
                    out.exit_code,
                    out.stderr.trim()
                ),
            })
        }
    }

    /// Recreates `service` without `var` in its environment and with the restart policy
    /// `on-failure`: it exits at start and Docker restarts it, again and again. `recreate`
    /// ends the loop.
    pub async fn crash_loop(&self, service: Service, var: &str) -> Result<()> {
        self.recreate_with(service, Some(var)).await
    }

    /// Removes every container, the network and the replica root, concurrently.
    pub async fn down(self) -> Result<()> {
        self.torn_down.store(true, Ordering::SeqCst);
        remove_by_id(&self.docker, &self.id).await
    }

    /// Leaves the stack running after this process exits (`cargo xtask up`).
    pub async fn detach(self) {
        self.torn_down.store(true, Ordering::SeqCst);
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if self.torn_down.load(Ordering::SeqCst) {
            return;
        }
        let id = self.id.clone();
        // A thread with its own runtime works whatever runtime (if any) is dropping us.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("cleanup runtime");
            rt.block_on(async move {
                match docker::connect().await {
                    Ok(d) => {
                        if let Err(e) = remove_by_id(&d, &id).await {
                            crate::errln!("warning: could not remove stack {id}: {e}");
                        }
                    }
                    Err(e) => crate::errln!("warning: could not remove stack {id}: {e}"),
                }
            })
        })
        .join();
    }
}

/// Removes the stack `id` (containers, networks, replica root) found by its labels.
pub async fn remove_by_id(docker: &Docker, id: &str) -> Result<()> {
    for stack in docker::list_stacks(docker).await? {
        if stack.id == id {
            docker::remove_stack(docker, &stack).await?;
        }
    }
    Ok(())
}

/// The labels that make a container or network ours: managed, its stack, its owner process (0 when
/// detached), its replica root.
pub fn stack_labels(id: &str, owner_pid: u32, root: &Path) -> Vec<(String, String)> {
    vec![
        (LABEL_MANAGED.to_string(), "true".to_string()),
        (LABEL_STACK.to_string(), id.to_string()),
        (LABEL_OWNER_PID.to_string(), owner_pid.to_string()),
        (LABEL_ROOT.to_string(), root.display().to_string()),
    ]
}

/// A free port on 127.0.0.1 for every (service, container port): all bound at once, so no two
/// are the same, then released for the containers to take.
fn free_host_ports() -> Result<BTreeMap<(Service, u16), u16>> {
    let range = host_port_range(&std::fs::read_to_string(EPHEMERAL_RANGE).unwrap_or_default());
    let span = u32::from(range.end - range.start);
    // A different start for each stack, so that stacks created side by side rarely try the
    // same ports (the bind below decides).
    let start = {
        use std::hash::{BuildHasher, Hasher};
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        (random % u64::from(span)) as u32
    };
    let mut candidates = (0..span).map(|i| range.start + ((start + i) % span) as u16);
    let mut held = Vec::new();
    let mut ports = BTreeMap::new();
    for service in Service::ALL {
        for &port in service.ports() {
            let (host, listener) = candidates
                .by_ref()
                .find_map(|p| {
                    std::net::TcpListener::bind(("127.0.0.1", p))
                        .ok()
                        .map(|l| (p, l))
                })
                .ok_or_else(|| {
                    HarnessError::io(Path::new("127.0.0.1"))(std::io::Error::new(
                        std::io::ErrorKind::AddrInUse,
                        format!(
                            "no free port left in {}..{} for the replica",
                            range.start, range.end
                        ),
                    ))
                })?;
            ports.insert((service, port), host);
            held.push(listener);
        }
    }
    Ok(ports)
}

/// How many times `Stack::start` tries when a chosen host port is taken meanwhile.
const START_ATTEMPTS: u32 = 3;
/// Subnets tried for a stack's network before its start fails (each refusal: another network
/// has that subnet).
const SUBNET_ATTEMPTS: usize = 32;

/// Whether the engine refused a container's start because one of its host ports was taken.
fn port_taken(error: &str) -> bool {
    error.contains("port is already allocated") || error.contains("address already in use")
}

/// The kernel's range of ephemeral ports (the local ports of outgoing connections).
const EPHEMERAL_RANGE: &str = "/proc/sys/net/ipv4/ip_local_port_range";

/// Where a stack's fixed host ports are taken from: below the kernel's ephemeral range
/// (`ip_local_port_range`, read from `ephemeral`; 32768 when unreadable). A port inside that
/// range can be taken, while its container restarts, as the local port of one of the many
/// connections the probe opens, and the container then cannot start again ("address already
/// in use": the rollback's `docker-compose restart` once left a service exited with code 128).
fn host_port_range(ephemeral: &str) -> std::ops::Range<u16> {
    let low = ephemeral
        .split_whitespace()
        .next()
        .and_then(|n| n.parse::<u16>().ok())
        .unwrap_or(32768);
    if low > 12000 {
        10000..low
    } else {
        // An ephemeral range that starts this low leaves no room below it: above it, then.
        let high = ephemeral
            .split_whitespace()
            .nth(1)
            .and_then(|n| n.parse::<u16>().ok())
            .unwrap_or(60999);
        high.saturating_add(1).min(64000)..65000
    }
}

/// A read-only bind mount of the host's `source` at `target`.
fn bind_mount(source: &Path, target: &str) -> Mount {
    Mount {
        target: Some(target.to_string()),
        source: Some(source.display().to_string()),
        typ: Some(MountType::BIND),
        read_only: Some(true),
        ..Default::default()
    }
}

/// The last `tail` lines of a container's stdout and stderr, as Docker streams them.
fn log_stream<'a>(
    docker: &'a Docker,
    container: &'a str,
    tail: usize,
) -> impl futures::Stream<
    Item = std::result::Result<bollard::container::LogOutput, bollard::errors::Error>,
> + 'a {
    docker.logs(
        container,
        Some(
            LogsOptionsBuilder::new()
                .stdout(true)
                .stderr(true)
                .tail(&tail.to_string())
                .build(),
        ),
    )
}

pub async fn logs_of(
    docker: &Docker,
    container: &str,
    tail: usize,
    redactor: &Redactor,
) -> Result<String> {
    let mut stream = log_stream(docker, container, tail);
    let mut out = String::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(chunk) => out.push_str(&String::from_utf8_lossy(&chunk.into_bytes())),
            Err(e) => return Err(HarnessError::docker(format!("reading logs of {container}"))(e)),
        }
    }
    Ok(redactor.redact(&out))
}

impl crate::wait::Endpoints for Stack {
    fn host_port(&self, service: Service, container_port: u16) -> Option<u16> {
        Stack::host_port(self, service, container_port)
    }

    fn postgres_password(&self) -> String {
        self.root().postgres_password().unwrap_or_default()
    }

    fn redactor(&self) -> &Redactor {
        Stack::redactor(self)
    }

    fn exited(&self, service: Service) -> futures::future::BoxFuture<'_, Option<String>> {
        Box::pin(async move {
            let info = self
                .docker()
                .inspect_container(
                    &self.container_name(service),
                    None::<bollard::query_parameters::InspectContainerOptions>,
                )
                .await
                .ok()?;
            let state = info.state?;
            (state.running == Some(false) && state.paused != Some(true)).then(|| {
                format!(
                    "container exited with code {}",
                    state.exit_code.unwrap_or(-1)
                )
            })
        })
    }

    fn last_logs(&self, service: Service, tail: usize) -> futures::future::BoxFuture<'_, String> {
        Box::pin(async move {
            self.logs(service, tail)
                .await
                .unwrap_or_else(|e| format!("(logs unavailable: {e})"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{host_port_range, port_taken};

    #[test]
    fn a_host_port_taken_before_the_container_started_is_told_from_other_start_failures() {
        assert!(port_taken("the engine could not start dagi-postgres: Docker responded with status code 500: driver failed programming external connectivity on endpoint dagi-postgres-194eb7b7 (4d2d): Bind for 127.0.0.1:27084 failed: port is already allocated"));
        assert!(port_taken(
            "listen tcp4 127.0.0.1:27084: bind: address already in use"
        ));
        assert!(!port_taken("dagi-postgres did not become ready in 60 s"));
    }

    #[test]
    fn a_stacks_host_ports_come_from_below_the_kernels_ephemeral_range() {
        assert_eq!(host_port_range("32768\t60999\n"), 10000..32768);
        assert_eq!(host_port_range("40000 65000"), 10000..40000);
        // Unreadable: Linux's default.
        assert_eq!(host_port_range(""), 10000..32768);
        // A range that starts low leaves room only above it.
        assert_eq!(host_port_range("1024 50000"), 50001..65000);
    }
}
