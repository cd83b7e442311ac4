//! The per-stack replica root, laid out like production's `/opt/microdao-daarion`: the `.env`
//! files, the agent registry, the NATS config and `docker-compose.node1.yml`. Rotation steps
//! edit files here exactly as an operator would.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::docker::LABEL_SERVICE;
use crate::envfile::EnvFile;
use crate::error::{HarnessError, Result};
use crate::profile::{NodeProfile, Source};
use crate::redact::Redactor;
use crate::services::Service;
pub use crate::services::{NATS_USERS, SECRET_NAMES};
use yaml_rust2::Yaml;

/// The agents of the node: agent → (LLM provider, bot token variable in the gateway's `.env`).
pub const AGENTS: &[(&str, &str, &str)] = &[
    ("daarwizz", "deepseek", "TELEGRAM_BOT_TOKEN"),
    ("helion", "mistral", "TELEGRAM_BOT_TOKEN_HELION"),
    ("greenfood", "grok", "TELEGRAM_BOT_TOKEN_GREENFOOD"),
    ("druid", "cohere", "TELEGRAM_BOT_TOKEN_DRUID"),
];

/// Random characters from the OS (no extra dependency).
pub fn random_string(len: usize, alphabet: &[u8]) -> String {
    let mut bytes = vec![0u8; len];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .expect("/dev/urandom is readable");
    bytes
        .iter()
        .map(|b| alphabet[*b as usize % alphabet.len()] as char)
        .collect()
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Every secret of a node, by the name of the variable that holds it.
#[derive(Clone)]
pub struct NodeSecrets {
    values: BTreeMap<&'static str, String>,
}

impl std::fmt::Debug for NodeSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.values.keys()).finish()
    }
}

impl NodeSecrets {
    /// Fresh random values for every secret, shaped like the real ones.
    pub fn generate() -> Self {
        let mut values = BTreeMap::new();
        for name in SECRET_NAMES {
            values.insert(*name, Self::generate_one(name));
        }
        NodeSecrets { values }
    }

    /// A fresh value for the secret `name`, shaped like the real one.
    pub fn generate_one(name: &str) -> String {
        let digits = b"0123456789";
        if name.starts_with("TELEGRAM_BOT_TOKEN") {
            format!("{}:{}", random_string(10, digits), random_string(35, ALNUM))
        } else if name.ends_with("_API_KEY") && name != "QDRANT_API_KEY" {
            format!("sk-{}", random_string(40, ALNUM))
        } else {
            random_string(32, ALNUM)
        }
    }

    pub fn get(&self, name: &str) -> &str {
        self.values
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("unknown secret {name}"))
    }

    pub fn set(&mut self, name: &'static str, value: String) {
        self.values.insert(name, value);
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.values.iter().map(|(k, v)| (*k, v.as_str()))
    }

    /// Registers every value with `redactor`.
    pub fn register(&self, redactor: &Redactor) {
        for (name, value) in self.iter() {
            redactor.add(name, value);
        }
    }

    /// The fake upstream's initial keys: every provider key, bot token and password the node
    /// holds now (the "old" secrets).
    pub fn upstream_seed_env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            (
                "UPSTREAM_SEED_DEEPSEEK".into(),
                self.get("DEEPSEEK_API_KEY").into(),
            ),
            (
                "UPSTREAM_SEED_MISTRAL".into(),
                self.get("MISTRAL_API_KEY").into(),
            ),
            ("UPSTREAM_SEED_GROK".into(), self.get("GROK_API_KEY").into()),
            (
                "UPSTREAM_SEED_COHERE".into(),
                self.get("COHERE_API_KEY").into(),
            ),
            (
                "UPSTREAM_SEED_QDRANT".into(),
                self.get("QDRANT_API_KEY").into(),
            ),
            (
                "UPSTREAM_SEED_NEO4J".into(),
                self.get("NEO4J_PASSWORD").into(),
            ),
        ];
        for (agent, _, var) in AGENTS {
            env.push((
                format!("UPSTREAM_SEED_TELEGRAM_{}", agent.to_uppercase()),
                self.get(var).into(),
            ));
        }
        env
    }
}

/// A replica root directory.
#[derive(Clone, Debug)]
pub struct ReplicaRoot {
    dir: PathBuf,
}

/// The Compose project of the replica root `root`: its directory name, normalised as Compose
/// v1 (`[^-_a-z0-9]` dropped, lower case) and v2 do when no `-p` is given.
pub fn compose_project_of(root: &Path) -> String {
    let base = root
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    base.chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-' || *c == '_')
        .collect()
}

pub use crate::docker::operator_dir_of;

impl ReplicaRoot {
    /// Opens an existing root.
    pub fn open(dir: impl Into<PathBuf>) -> Self {
        ReplicaRoot { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The operator's home during a rehearsal (`<root>.operator`, beside the root, so that the
    /// runbook's `find`s in the root never see it). It belongs to the stack: removed with it by
    /// `docker::remove_stack`, by the sweep and by `cargo xtask down`.
    pub fn operator_dir(&self) -> PathBuf {
        operator_dir_of(&self.dir)
    }

    /// The `.env` path of `service`, if it has one.
    pub fn env_path(&self, service: Service) -> Option<PathBuf> {
        service.env_file().map(|f| self.dir.join(f))
    }

    pub fn nats_dir(&self) -> PathBuf {
        self.dir.join("nats")
    }

    pub fn nats_conf_path(&self) -> PathBuf {
        self.nats_dir().join("nats-server.conf")
    }

    pub fn router_dir(&self) -> PathBuf {
        self.dir.join("services/router")
    }

    pub fn compose_path(&self) -> PathBuf {
        self.dir.join("docker-compose.node1.yml")
    }

    /// The password PostgreSQL starts with (`POSTGRES_PASSWORD` in its `.env`); empty if unset.
    pub fn postgres_password(&self) -> Result<String> {
        Ok(self
            .read_env(Service::Postgres)?
            .get("POSTGRES_PASSWORD")
            .unwrap_or_default()
            .to_string())
    }

    /// Reads `service`'s `.env`.
    pub fn read_env(&self, service: Service) -> Result<EnvFile> {
        let path = self
            .env_path(service)
            .ok_or_else(|| crate::envfile::EnvFileError::Parse {
                path: self.dir.clone(),
                line: 0,
                message: format!("{service} has no .env file"),
            })?;
        Ok(EnvFile::read(path)?)
    }

    /// Every `.env` file of the node: service → its variables.
    pub fn current_env(&self) -> Result<BTreeMap<Service, EnvFile>> {
        let mut out = BTreeMap::new();
        for s in Service::ALL {
            if s.env_file().is_some() {
                out.insert(s, self.read_env(s)?);
            }
        }
        Ok(out)
    }

    /// Makes the root a git repository as the node's checkout is: the compose file and the
    /// services' configuration staged, every `.env`, the NATS configuration (its passwords) and
    /// the backups ignored, so `git.no-secrets-tracked` reads it as it reads the node's. `None`
    /// where git cannot run here (the check then says the target has no repository).
    pub fn track_in_git(&self) -> Option<PathBuf> {
        let ignore = self.dir.join(".gitignore");
        std::fs::write(
            &ignore,
            "# Secrets stay out of git: every .env, the NATS configuration, the backups.\n\
             .env\n*.env\n.env.*\nnats/\nbackups/\n.rehearsal/\n",
        )
        .ok()?;
        let git = |args: &[&str]| {
            std::process::Command::new("git")
                .arg("-C")
                .arg(&self.dir)
                .args(args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        (git(&["init", "-q"]) && git(&["add", "-A"])).then(|| self.dir.clone())
    }

    /// Creates the layout in `dir` with `secrets` as the node's current (old) secrets.
    pub fn create(
        dir: impl Into<PathBuf>,
        secrets: &NodeSecrets,
        options: &RootOptions,
    ) -> Result<Self> {
        let root = ReplicaRoot { dir: dir.into() };
        for sub in [
            "gateway-bot",
            "services/router",
            "services/memory-service",
            "services/crewai-nats-worker",
            "services/parser-pipeline",
            "services/postgres",
            "nats",
        ] {
            let p = root.dir.join(sub);
            std::fs::create_dir_all(&p).map_err(HarnessError::io(&p))?;
        }
        let db = |f: &mut EnvFile| {
            f.set("POSTGRES_HOST", "dagi-postgres");
            f.set("POSTGRES_PORT", "5432");
            f.set("POSTGRES_USER", "daarion");
            f.set("POSTGRES_DB", "daarion_main");
            f.set("DB_PASSWORD", secrets.get("DB_PASSWORD"));
            f.set(
                "DB_POOL_MAX_LIFETIME_SECS",
                &options.pool_max_lifetime_secs.to_string(),
            );
        };
        let nats = |f: &mut EnvFile, user: &str, var: &str| {
            f.set("NATS_URL", "nats://dagi-nats-node1:4222");
            f.set("NATS_USER", user);
            f.set("NATS_PASSWORD", secrets.get(var));
        };

        let mut gw = EnvFile::new(root.dir.join("gateway-bot/.env"));
        gw.comment("Gateway (dagi-gateway-node1): read when the container is created");
        gw.set("DEFAULT_AGENT", "daarwizz");
        for (_, _, var) in AGENTS {
            gw.set(var, secrets.get(var));
        }
        gw.set("JWT_SECRET", secrets.get("JWT_SECRET"));
        if options.gateway_jwt_overlap {
            gw.set("JWT_KEY_OVERLAP", "true");
        }
        nats(&mut gw, "gateway", "NATS_PASSWORD_GATEWAY");
        db(&mut gw);
        gw.set("ROUTER_URL", "http://dagi-router-node1:9102");
        gw.set(
            "MEMORY_SERVICE_URL",
            "http://dagi-memory-service-node1:8000",
        );
        gw.set("TELEGRAM_API_URL", "http://upstream:8080");
        gw.write()?;

        let mut router = EnvFile::new(root.dir.join("services/router/.env"));
        router.comment("Router (dagi-router-node1)");
        for var in [
            "DEEPSEEK_API_KEY",
            "MISTRAL_API_KEY",
            "GROK_API_KEY",
            "COHERE_API_KEY",
        ] {
            router.set(var, secrets.get(var));
        }
        if options.router_new_or_old {
            router.set("ROUTER_KEY_SELECTION", "new-or-old");
        }
        router.set("UPSTREAM_URL", "http://upstream:8080");
        router.set("NEO4J_URI", "http://upstream:8080/neo4j");
        router.set("NEO4J_USER", "neo4j");
        router.set("NEO4J_PASSWORD", secrets.get("NEO4J_PASSWORD"));
        router.set("AGENT_REGISTRY", "/etc/router/agents.json");
        nats(&mut router, "router", "NATS_PASSWORD_ROUTER");
        db(&mut router);
        router.write()?;

        let registry = serde_json::json!({
            "agents": AGENTS.iter().map(|(agent, provider, _)| {
                (agent.to_string(), serde_json::json!({"provider": provider, "model": format!("{provider}-chat")}))
            }).collect::<serde_json::Map<_, _>>()
        });
        let reg_path = root.dir.join("services/router/agents.json");
        std::fs::write(
            &reg_path,
            serde_json::to_string_pretty(&registry).expect("json"),
        )
        .map_err(HarnessError::io(&reg_path))?;

        let mut memory = EnvFile::new(root.dir.join("services/memory-service/.env"));
        memory.comment("Memory service (dagi-memory-service-node1)");
        db(&mut memory);
        memory.set("QDRANT_URL", "http://upstream:8080/qdrant");
        memory.set("QDRANT_API_KEY", secrets.get("QDRANT_API_KEY"));
        memory.set("NEO4J_URI", "http://upstream:8080/neo4j");
        memory.set("NEO4J_USER", "neo4j");
        memory.set("NEO4J_PASSWORD", secrets.get("NEO4J_PASSWORD"));
        memory.write()?;

        for (worker, dir) in [
            ("crewai-nats-worker", "services/crewai-nats-worker/.env"),
            ("parser-pipeline", "services/parser-pipeline/.env"),
        ] {
            let mut w = EnvFile::new(root.dir.join(dir));
            w.comment(&format!("NATS worker ({worker})"));
            w.set("WORKER_NAME", worker);
            nats(&mut w, "worker", "NATS_PASSWORD_WORKER");
            db(&mut w);
            w.write()?;
        }

        let mut pg = EnvFile::new(root.dir.join("services/postgres/.env"));
        pg.comment("PostgreSQL (dagi-postgres): POSTGRES_PASSWORD is used only when the data directory is initialised");
        pg.set("POSTGRES_USER", "daarion");
        pg.set("POSTGRES_PASSWORD", secrets.get("DB_PASSWORD"));
        pg.set("POSTGRES_DB", "daarion_main");
        pg.write()?;

        let users: Vec<(String, String)> = NATS_USERS
            .iter()
            .map(|(user, _)| {
                let var = format!("NATS_PASSWORD_{}", user.to_uppercase());
                (user.to_string(), secrets.get(&var).to_string())
            })
            .collect();
        root.write_nats_conf(&users)?;
        let conf = root.nats_conf_path();
        std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o600))
            .map_err(HarnessError::io(&conf))?;
        root.wire_secrets(secrets, &options.profile)?;
        Ok(root)
    }

    /// The project's `.env`, from which Compose interpolates the compose file.
    pub fn project_env_path(&self) -> PathBuf {
        self.dir.join(".env")
    }

    /// Moves each secret to where `profile` says its service reads it: out of the default
    /// variable, into the profile's (in the service's `env_file`, in its URL form, or into the
    /// project `.env` that Compose interpolates). The default profile changes nothing.
    fn wire_secrets(&self, secrets: &NodeSecrets, profile: &NodeProfile) -> Result<()> {
        let limits = profile.replica_limits();
        if !limits.is_empty() {
            return Err(HarnessError::Profile(limits.join("; ")));
        }
        let default = NodeProfile::replica_default();
        let mut project = EnvFile::new(self.project_env_path());
        project.comment(
            "The project's variables, interpolated by Compose into the compose file on `up`",
        );
        let mut project_used = false;
        for service in Service::ALL {
            let Some(path) = self.env_path(service) else {
                continue;
            };
            let mut file = EnvFile::read(&path)?;
            let mut changed = false;
            for w in profile.wiring(service) {
                let d = default.wiring_of(service, &w.secret);
                if d.as_ref() == Some(&w) {
                    continue;
                }
                if let Some(d) = d {
                    changed |= file.remove(&d.variable);
                }
                let value = secrets.get(&w.secret);
                match &w.source {
                    Source::EnvFile { .. } => {
                        file.set(&w.variable, &w.render(value));
                        changed = true;
                    }
                    Source::Interpolated { variable } => {
                        project.set(variable, value);
                        project_used = true;
                    }
                    Source::ComposeFile => {}
                }
            }
            if changed {
                file.write()?;
            }
        }
        if project_used {
            project.write()?;
        }
        if !profile.is_replica_default() {
            let kept = self.dir.join(crate::checks::target::KEPT_PROFILE);
            if let Some(parent) = kept.parent() {
                std::fs::create_dir_all(parent).map_err(HarnessError::io(parent))?;
            }
            std::fs::write(&kept, profile.to_toml()).map_err(HarnessError::io(&kept))?;
        }
        Ok(())
    }

    /// `service`'s `environment:` in the compose file under `profile`: (variable, value as the
    /// compose file writes it, interpolations in).
    pub fn compose_environment(service: Service, profile: &NodeProfile) -> Vec<(String, String)> {
        let default = NodeProfile::replica_default();
        profile
            .wiring(service)
            .into_iter()
            .filter(|w| default.wiring_of(service, &w.secret).as_ref() != Some(w))
            .filter_map(|w| Some((w.variable.clone(), w.compose_value("")?)))
            .collect()
    }

    /// Writes the NATS config with `users` (name, password), in place.
    pub fn write_nats_conf(&self, users: &[(String, String)]) -> Result<()> {
        let mut text = String::from(
            "# NATS server of node1 (dagi-nats-node1). Users are read at start and on reload (SIGHUP).\n\
             port: 4222\n\
             monitor_port: 8222\n\
             server_name: dagi-nats-node1\n\
             jetstream {\n  store_dir: \"/data/jetstream\"\n}\n\
             authorization {\n  users: [\n",
        );
        for (user, password) in users {
            text.push_str(&format!(
                "    {{ user: {}, password: {} }}\n",
                nats_quote(user),
                nats_quote(password)
            ));
        }
        text.push_str("  ]\n}\n");
        let path = self.nats_conf_path();
        write_in_place(&path, &text)
    }

    /// Writes `docker-compose.node1.yml` describing this replica: the same images, commands,
    /// env files and mounts the harness uses, one service per production name, and `labels` on
    /// every container. As a stack's file ([`ComposeStack`]) it names the stack's own containers,
    /// network and host ports, so that Compose run on it (its project is the root's directory
    /// name, as Compose derives it: [`compose_project_of`]) acts on the running stack; without one it describes a node of its own
    /// (production container names, a default network with `labels`, ephemeral ports). Paths
    /// inside the root are relative, so a copy of the root is a node of its own.
    pub fn write_compose(&self, node: &ComposeNodeFile<'_>) -> Result<()> {
        let upstream_env_file = match node.upstream_env_file.strip_prefix(&self.dir) {
            Ok(inside) => format!("./{}", inside.display()),
            Err(_) => node.upstream_env_file.display().to_string(),
        };
        let labels = |extra: &[(String, String)]| {
            map(node
                .labels
                .iter()
                .chain(extra)
                .map(|(k, v)| (literal(k), literal(v))))
        };
        let mut services = Vec::new();
        for s in Service::ALL {
            let mut service = vec![(key("image"), literal(node.image))];
            let name = match &node.stack {
                Some(stack) => format!("{}-{}", s.production_name(), stack.id),
                None => s.production_name().to_string(),
            };
            service.push((key("container_name"), literal(&name)));
            service.push((key("hostname"), literal(s.production_name())));
            if let Some(env) = s.env_file() {
                service.push((key("env_file"), literal(&format!("./{env}"))));
            }
            if s == Service::Upstream {
                service.push((key("env_file"), literal(&upstream_env_file)));
            }
            let environment = ReplicaRoot::compose_environment(s, node.profile);
            if !environment.is_empty() {
                // Interpolations stay: `compose_value` escaped every other `$`.
                let values = environment
                    .into_iter()
                    .map(|(k, v)| (key(&k), Yaml::String(v)));
                service.push((key("environment"), map(values)));
            }
            let command = command_for(s, node.profile)
                .iter()
                .map(|a| literal(a))
                .collect();
            service.push((key("command"), Yaml::Array(command)));
            let mut volumes = vec![format!(
                "{}:/usr/local/bin/replica:ro",
                node.binary.display()
            )];
            if s == Service::Router {
                volumes.push("./services/router:/etc/router:ro".into());
            }
            if s == Service::Nats {
                for m in node.profile.mounts(s) {
                    volumes.push(format!("{}:{}:ro", m.host_path, m.container_path));
                }
            }
            if let Some((volume, path)) = s.data_volume() {
                volumes.push(format!("{volume}:{path}"));
            }
            let volumes = volumes.iter().map(|v| literal(v)).collect();
            service.push((key("volumes"), Yaml::Array(volumes)));
            let ports = s
                .ports()
                .iter()
                .map(|p| {
                    let host = node
                        .stack
                        .as_ref()
                        .and_then(|stack| stack.ports.get(&(s, *p)))
                        .map(|h| h.to_string())
                        .unwrap_or_default();
                    literal(&format!("{}:{host}:{p}", crate::docker::publish_ip()))
                })
                .collect();
            service.push((key("ports"), Yaml::Array(ports)));
            if let Some(stack) = &node.stack {
                let aliases = s.aliases().iter().map(|a| literal(a)).collect();
                let default = map([
                    (
                        key("ipv4_address"),
                        literal(&stack.subnet.address(s).to_string()),
                    ),
                    (key("aliases"), Yaml::Array(aliases)),
                ]);
                service.push((key("networks"), map([(key("default"), default)])));
                let hosts = stack
                    .subnet
                    .extra_hosts()
                    .iter()
                    .map(|h| literal(h))
                    .collect();
                service.push((key("extra_hosts"), Yaml::Array(hosts)));
            }
            let service_label = [(LABEL_SERVICE.to_string(), s.key().to_string())];
            service.push((key("labels"), labels(&service_label)));
            services.push((key(s.production_name()), map(service)));
        }
        let network = match &node.stack {
            Some(stack) => map([
                (key("external"), Yaml::Boolean(true)),
                (key("name"), literal(stack.network)),
            ]),
            None => map([(key("labels"), labels(&[]))]),
        };
        let volumes = Service::ALL
            .iter()
            .filter_map(|s| s.data_volume())
            .map(|(volume, _)| (key(volume), map([(key("labels"), labels(&[]))])));
        let file = map([
            (key("version"), literal("3.8")),
            (key("services"), map(services)),
            (key("networks"), map([(key("default"), network)])),
            (key("volumes"), map(volumes)),
        ]);
        let mut y = String::from(
            "# The replica of node1, as docker-compose would run it. Generated by the rehearsal harness.\n",
        );
        yaml_rust2::YamlEmitter::new(&mut y)
            .dump(&file)
            .expect("a YAML tree of strings, lists and maps is written");
        y.push('\n');
        write_in_place(&self.compose_path(), &y)
    }
}

/// What a replica root's compose file describes.
#[derive(Debug)]
pub struct ComposeNodeFile<'a> {
    pub image: &'a str,
    /// How the services read their secrets and what NATS mounts.
    pub profile: &'a NodeProfile,
    pub binary: &'a Path,
    pub upstream_env_file: &'a Path,
    /// Labels on every container (and on the network Compose creates, for a node of its own).
    pub labels: &'a [(String, String)],
    /// The running stack the file describes; `None` for a node of its own.
    pub stack: Option<ComposeStack<'a>>,
}

/// A running stack as its compose file names it.
#[derive(Debug)]
pub struct ComposeStack<'a> {
    /// The stack id: the suffix of every container name.
    pub id: &'a str,
    /// The stack's network (external to Compose: the harness owns it).
    pub network: &'a str,
    /// Its subnet: each service's fixed address and every peer's name in `/etc/hosts`.
    pub subnet: &'a crate::addresses::StackSubnet,
    /// The host port (on 127.0.0.1) of each (service, container port).
    pub ports: &'a BTreeMap<(Service, u16), u16>,
}

/// Options for the files of a new replica root.
#[derive(Clone, Debug)]
pub struct RootOptions {
    /// Seconds a pooled PostgreSQL connection lives before it is recycled.
    pub pool_max_lifetime_secs: u64,
    /// The router picks keys by the runbook's `NEW or OLD` line (Phase 2).
    pub router_new_or_old: bool,
    /// The platform change the v2 runbook's JWT phase requires: the gateway also accepts
    /// tokens signed with `JWT_SECRET_PREVIOUS` (`JWT_KEY_OVERLAP=true` in its `.env`).
    /// Off by default, as the node's gateway is today.
    pub gateway_jwt_overlap: bool,
    /// How the node's services read their secrets (`--node-profile`); the replica's own
    /// wiring by default.
    pub profile: NodeProfile,
}

impl Default for RootOptions {
    fn default() -> Self {
        RootOptions {
            pool_max_lifetime_secs: 30,
            router_new_or_old: false,
            gateway_jwt_overlap: false,
            profile: NodeProfile::replica_default(),
        }
    }
}

/// The container command of `service` under `profile` (the replica's services are told where
/// the profile's wiring differs from the default: `NodeProfile::service_options`).
pub fn command_for(service: Service, profile: &NodeProfile) -> Vec<String> {
    let mut command = base_command(service);
    if command[0] == "/usr/local/bin/replica" {
        command.extend(profile.service_options(service));
    }
    command
}

fn base_command(service: Service) -> Vec<String> {
    match service {
        Service::Postgres => vec!["sh".into(), "-c".into(), POSTGRES_ENTRYPOINT.into()],
        Service::Nats => vec!["sh".into(), "-c".into(), NATS_ENTRYPOINT.into()],
        Service::Upstream => vec!["/usr/local/bin/replica".into(), "upstream".into()],
        Service::Router => vec!["/usr/local/bin/replica".into(), "router".into()],
        Service::Memory => vec!["/usr/local/bin/replica".into(), "memory".into()],
        Service::Gateway => vec!["/usr/local/bin/replica".into(), "gateway".into()],
        Service::CrewaiWorker | Service::ParserPipeline => {
            vec!["/usr/local/bin/replica".into(), "worker".into()]
        }
    }
}

/// PostgreSQL's start script, with the official image's semantics: on first start, initialise
/// the data directory with POSTGRES_USER as superuser and POSTGRES_PASSWORD, create
/// POSTGRES_DB, `trust` on the local socket and scram-sha-256 over TCP; then run the server.
///
/// Clients reach the server through the fault proxy on 5432 (the server itself listens on
/// loopback 5433); the socket `.s.PGSQL.5432` is a link to the server's, so `docker exec …
/// psql` works as in production.
pub const POSTGRES_ENTRYPOINT: &str = r#"set -e
PGBIN=/usr/lib/postgresql/15/bin
PGDATA=/var/lib/postgresql/data
TEMPLATE=/var/lib/postgresql/template
mkdir -p "$PGDATA" /var/run/postgresql
chown postgres:postgres "$PGDATA" /var/run/postgresql
ln -sfn .s.PGSQL.5433 /var/run/postgresql/.s.PGSQL.5432
/usr/local/bin/replica faultproxy 0.0.0.0:5432 127.0.0.1:5433 127.0.0.1:9199 &
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  create_database=yes
  if [ "$POSTGRES_USER" = daarion ] && [ -s "$TEMPLATE/PG_VERSION" ]; then
    cp -a "$TEMPLATE/." "$PGDATA/"
    # The template holds the node's database already (images.rs: POSTGRES_TEMPLATE_SCRIPT).
    if [ "$POSTGRES_DB" = daarion_main ]; then create_database=no; fi
  else
    umask 077
    printf '%s\n' "$POSTGRES_PASSWORD" > /tmp/pwfile
    chown postgres /tmp/pwfile
    runuser -u postgres -- "$PGBIN/initdb" -D "$PGDATA" -U "$POSTGRES_USER" --pwfile=/tmp/pwfile \
      --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --no-sync >/dev/null
    rm -f /tmp/pwfile
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  fi
  pw=$(printf '%s' "$POSTGRES_PASSWORD" | sed "s/'/''/g")
  {
    printf 'ALTER ROLE "%s" PASSWORD '"'"'%s'"'"';\n' "$POSTGRES_USER" "$pw"
    if [ "$create_database" = yes ]; then
      printf 'CREATE DATABASE "%s" OWNER "%s";\n' "$POSTGRES_DB" "$POSTGRES_USER"
    fi
  } | runuser -u postgres -- "$PGBIN/postgres" --single -D "$PGDATA" -c fsync=off postgres >/dev/null
  echo "postgres init: data directory initialised"
fi
# `docker stop` sends TERM; like the official image (STOPSIGNAL SIGINT), shut down fast and
# cleanly. The shell must outlive the shutdown: when PID 1 exits, the kernel kills the rest.
# fsync is off for speed (the host does not crash in a rehearsal); synchronous_commit stays on,
# so a committed row survives a killed server, as it does in production.
setpriv --reuid=postgres --regid=postgres --init-groups "$PGBIN/postgres" -D "$PGDATA" \
  -c listen_addresses=127.0.0.1 -c port=5433 -c fsync=off -c full_page_writes=off -c max_connections=200 &
pid=$!
set +e
trap 'kill -INT $pid' TERM INT
wait $pid
trap - TERM INT
wait $pid
"#;

/// NATS's start script: the fault proxy on the client port 4222, the server on 4223 (a flag,
/// which overrides the config file's `port: 4222` and survives a reload), PID 1 the server.
pub const NATS_ENTRYPOINT: &str = r#"/usr/local/bin/replica faultproxy 0.0.0.0:4222 127.0.0.1:4223 127.0.0.1:9199 &
exec nats-server -c /etc/nats/nats-server.conf -p 4223
"#;

/// Quotes a string for the NATS config (double quotes, `\` and `"` escaped).
pub fn nats_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A YAML string Compose reads literally: `$` is doubled, since Compose interpolates `$VAR` in
/// every value of the file. The emitter quotes what a YAML 1.1 reader (Compose v1's PyYAML)
/// would take for something else: numbers, `yes`/`no`, anything with a `:` (`5432:5432` is a
/// base-60 number there).
fn literal(s: &str) -> Yaml {
    Yaml::String(s.replace('$', "$$"))
}

/// A key of the compose file (names of ours: nothing to escape).
fn key(name: &str) -> Yaml {
    Yaml::String(name.to_string())
}

/// A YAML map in the order given.
fn map(pairs: impl IntoIterator<Item = (Yaml, Yaml)>) -> Yaml {
    Yaml::Hash(pairs.into_iter().collect())
}

/// Rewrites `path` in place (same inode); creates it with mode 0600 if missing.
pub fn write_in_place(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(HarnessError::io(path))?;
    f.write_all(text.as_bytes()).map_err(HarnessError::io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_root_holds_every_env_file_with_mode_0600() {
        let dir = std::env::temp_dir().join(format!("root-test-{}", std::process::id()));
        let secrets = NodeSecrets::generate();
        let root = ReplicaRoot::create(&dir, &secrets, &RootOptions::default()).unwrap();
        for s in Service::ALL {
            if let Some(p) = root.env_path(s) {
                let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{}", p.display());
            }
        }
        let router = root.read_env(Service::Router).unwrap();
        assert_eq!(
            router.get("DEEPSEEK_API_KEY"),
            Some(secrets.get("DEEPSEEK_API_KEY"))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_compose_file_is_relocatable_labelled_and_keeps_shell_variables_literal() {
        let dir = std::env::temp_dir().join(format!("root-compose-test-{}", std::process::id()));
        let root =
            ReplicaRoot::create(&dir, &NodeSecrets::generate(), &RootOptions::default()).unwrap();
        let labels = [("io.example.owner".to_string(), "test".to_string())];
        root.write_compose(&ComposeNodeFile {
            profile: &NodeProfile::replica_default(),
            image: "base:tag",
            binary: Path::new("/bin/replica"),
            upstream_env_file: &dir.join(".upstream.env"),
            labels: &labels,
            stack: None,
        })
        .unwrap();
        let text = std::fs::read_to_string(root.compose_path()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        // Compose would replace `$PGDATA` in the PostgreSQL start script with the host's value.
        let bare_dollar = text.replace("$$", "").contains('$');
        assert!(!bare_dollar, "a `$` Compose would interpolate:\n{text}");
        assert!(text.contains("$$PGDATA"), "{text}");
        let file = compose_yaml(&text);
        let services = file["services"].as_hash().unwrap();
        assert_eq!(
            file["services"]["upstream"]["env_file"].as_str(),
            Some("./.upstream.env")
        );
        assert!(
            !text.contains(&dir.display().to_string()),
            "an absolute path into the root:\n{text}"
        );
        let owner = |item: &Yaml| item["labels"]["io.example.owner"].as_str() == Some("test");
        let labelled = services.values().filter(|s| owner(s)).count()
            + usize::from(owner(&file["networks"]["default"]))
            + file["volumes"]
                .as_hash()
                .unwrap()
                .values()
                .filter(|v| owner(v))
                .count();
        assert_eq!(
            labelled,
            Service::ALL.len() + 3,
            "every container, the network and the two data volumes:\n{text}"
        );
    }

    /// The compose file as Compose reads it (a YAML 1.1 reader would read the same: every
    /// string that could be taken for a number or a boolean is quoted).
    fn compose_yaml(text: &str) -> Yaml {
        let mut docs = yaml_rust2::YamlLoader::load_from_str(text).expect("YAML");
        assert!(
            text.contains("\"127.0.0.1::5432\"") || text.contains(":5432\""),
            "ports quoted for YAML 1.1 readers:\n{text}"
        );
        docs.remove(0)
    }

    #[test]
    fn a_stacks_compose_file_names_its_own_containers_network_and_ports() {
        let dir = std::env::temp_dir().join(format!("root-compose-stack-{}", std::process::id()));
        let root =
            ReplicaRoot::create(&dir, &NodeSecrets::generate(), &RootOptions::default()).unwrap();
        let ports = BTreeMap::from([((Service::Router, 9102), 41234)]);
        root.write_compose(&ComposeNodeFile {
            profile: &NodeProfile::replica_default(),
            image: "base:tag",
            binary: Path::new("/bin/replica"),
            upstream_env_file: &dir.join(".upstream.env"),
            labels: &[],
            stack: Some(ComposeStack {
                id: "ab12cd34",
                network: "rotation-ab12cd34",
                subnet: &crate::addresses::StackSubnet::candidates(5).next().unwrap(),
                ports: &ports,
            }),
        })
        .unwrap();
        let text = std::fs::read_to_string(root.compose_path()).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let file = compose_yaml(&text);
        let router = &file["services"]["dagi-router-node1"];
        assert_eq!(
            router["container_name"].as_str(),
            Some("dagi-router-node1-ab12cd34")
        );
        assert_eq!(router["ports"][0].as_str(), Some("127.0.0.1:41234:9102"));
        let strings = |list: &Yaml| -> Vec<String> {
            list.as_vec()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap().to_string())
                .collect()
        };
        // The router's fixed address, its aliases and every peer in its hosts file.
        assert_eq!(
            router["networks"]["default"]["ipv4_address"].as_str(),
            Some("10.213.5.13")
        );
        assert_eq!(
            strings(&router["networks"]["default"]["aliases"]),
            ["dagi-router-node1", "router"]
        );
        assert_eq!(
            strings(&router["extra_hosts"])[..2],
            ["dagi-postgres:10.213.5.10", "postgres:10.213.5.10"]
        );
        assert_eq!(
            file["networks"]["default"]["external"].as_bool(),
            Some(true)
        );
        assert_eq!(
            file["networks"]["default"]["name"].as_str(),
            Some("rotation-ab12cd34")
        );
        assert!(
            strings(&file["services"]["dagi-postgres"]["volumes"])
                .contains(&"postgres-data:/var/lib/postgresql/data".to_string()),
            "{text}"
        );
        assert_eq!(
            compose_project_of(&dir.with_file_name("rotation-replica-AB.12")),
            "rotation-replica-ab12"
        );
    }

    // The node profiles as the replica writes its root under them.
    mod under_profiles {
        use crate::profile::*;
        use crate::services::{Service, SECRET_NAMES};
        use std::path::Path;

        #[test]
        fn the_default_profile_names_exactly_the_secrets_the_replica_writes_into_each_env_file() {
            let dir = tempfile::tempdir().unwrap();
            let secrets = crate::replica_root::NodeSecrets::generate();
            let root = crate::replica_root::ReplicaRoot::create(
                dir.path(),
                &secrets,
                &crate::replica_root::RootOptions::default(),
            )
            .unwrap();
            let mut written = Vec::new();
            for service in Service::ALL {
                let Some(rel) = service.env_file() else {
                    continue;
                };
                let env = crate::envfile::EnvFile::read(root.dir().join(rel)).unwrap();
                for (variable, value) in env.vars() {
                    for secret in SECRET_NAMES {
                        if secrets.get(secret) == value {
                            written.push((
                                service.key().to_string(),
                                secret.to_string(),
                                variable.clone(),
                                rel.to_string(),
                            ));
                        }
                    }
                }
            }
            let profile =
                NodeProfile::load(&crate::runbook::workspace_path(DEFAULT_PROFILE)).unwrap();
            let mut declared: Vec<(String, String, String, String)> = profile
                .services
                .iter()
                .flat_map(|s| {
                    s.secrets.iter().map(|w| {
                        assert_eq!(w.form, Form::Plain);
                        let Source::EnvFile { path } = &w.source else {
                            panic!("{}: {} not from its env_file", s.name, w.variable)
                        };
                        (
                            s.name.clone(),
                            w.secret.clone(),
                            w.variable.clone(),
                            path.clone(),
                        )
                    })
                })
                .collect();
            written.sort();
            declared.sort();
            assert_eq!(declared, written);
        }

        fn root_under(profile: &str) -> (tempfile::TempDir, crate::replica_root::NodeSecrets) {
            let dir = tempfile::tempdir().unwrap();
            let secrets = crate::replica_root::NodeSecrets::generate();
            let options = crate::replica_root::RootOptions {
                profile: NodeProfile::named_or_file(profile).unwrap(),
                ..Default::default()
            };
            crate::replica_root::ReplicaRoot::create(dir.path(), &secrets, &options).unwrap();
            (dir, secrets)
        }

        fn env_of(dir: &Path, rel: &str) -> Vec<(String, String)> {
            crate::envfile::EnvFile::read(dir.join(rel)).unwrap().vars()
        }

        #[test]
        fn every_shipped_profile_reads_and_the_replica_can_run_it() {
            for (name, _) in SHIPPED {
                let profile = NodeProfile::named_or_file(name).unwrap();
                assert_eq!(profile.replica_limits(), Vec::<String>::new(), "{name}");
                assert_eq!(profile.is_replica_default(), *name == "default", "{name}");
            }
        }

        #[test]
        fn the_default_profile_adds_no_environment_option_or_mount_to_the_replica() {
            let default = NodeProfile::replica_default();
            for service in Service::ALL {
                assert_eq!(default.service_options(service), Vec::<String>::new());
                assert_eq!(
                    crate::replica_root::ReplicaRoot::compose_environment(service, &default),
                    Vec::<(String, String)>::new()
                );
            }
            let (dir, _) = root_under("default");
            assert!(!dir.path().join(".env").exists());
        }

        #[test]
        fn under_the_database_url_profile_each_client_reads_its_password_from_an_encoded_url() {
            let (dir, secrets) = root_under("database-url");
            let profile = NodeProfile::named_or_file("database-url").unwrap();
            for service in [
                Service::Gateway,
                Service::Router,
                Service::Memory,
                Service::CrewaiWorker,
                Service::ParserPipeline,
            ] {
                let env = env_of(dir.path(), service.env_file().unwrap());
                assert!(!env.iter().any(|(k, _)| k == "DB_PASSWORD"), "{service}");
                let url = &env.iter().find(|(k, _)| k == "DATABASE_URL").unwrap().1;
                let wiring = profile.wiring_of(service, "DB_PASSWORD").unwrap();
                assert_eq!(
                    wiring.decode(url).as_deref(),
                    Some(secrets.get("DB_PASSWORD"))
                );
            }
            assert_eq!(
                profile.service_options(Service::Memory),
                [
                    "--secret",
                    "DB_PASSWORD=database-url:DATABASE_URL",
                    "--falls-back",
                    "DB_PASSWORD"
                ]
            );
            assert_eq!(
                profile.service_options(Service::Router),
                ["--secret", "DB_PASSWORD=database-url:DATABASE_URL"]
            );
        }

        #[test]
        fn under_the_interpolated_profile_the_shared_passwords_live_once_in_the_project_env() {
            let (dir, secrets) = root_under("interpolated");
            let project = env_of(dir.path(), ".env");
            assert_eq!(
                project,
                [
                    (
                        "DB_PASSWORD".to_string(),
                        secrets.get("DB_PASSWORD").to_string()
                    ),
                    (
                        "NEO4J_PASSWORD".to_string(),
                        secrets.get("NEO4J_PASSWORD").to_string()
                    ),
                ]
            );
            for service in Service::ALL {
                let Some(rel) = service.env_file() else {
                    continue;
                };
                let env = env_of(dir.path(), rel);
                for (k, v) in &env {
                    assert!(
                        v != secrets.get("DB_PASSWORD") && v != secrets.get("NEO4J_PASSWORD"),
                        "{service}: {k} holds a shared password"
                    );
                }
            }
            let profile = NodeProfile::named_or_file("interpolated").unwrap();
            assert_eq!(
                crate::replica_root::ReplicaRoot::compose_environment(Service::Postgres, &profile),
                [(
                    "POSTGRES_PASSWORD".to_string(),
                    "${DB_PASSWORD}".to_string()
                )]
            );
            assert_eq!(
                profile.mounts(Service::Nats),
                [Mount {
                    container_path: "/etc/nats/nats-server.conf".into(),
                    host_path: "./nats/nats-server.conf".into(),
                    kind: MountKind::File,
                }]
            );
        }
    }
}
