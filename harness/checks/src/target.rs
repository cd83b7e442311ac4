//! A `Target`: everything the checks need to know about one node (URLs, PostgreSQL, NATS,
//! `.env` paths, containers, providers, backups), loaded from TOML or produced by a running
//! replica. The TOML schema is documented on the structs and in `fixtures/targets/`.

use super::transport::SshDestination;
use ::node::profile::NodeProfile;
use ::node::services::Service;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use user_io::input::describe_parse_message;

/// The node's own services, by the key used in target files (and in check ids).
pub const SERVICE_KEYS: &[&str] = &[
    "gateway",
    "router",
    "memory-service",
    "crewai-nats-worker",
    "parser-pipeline",
];

/// The providers the router holds keys for: name → the router variable holding the key.
pub const PROVIDERS: &[(&str, &str)] = &[
    ("deepseek", "DEEPSEEK_API_KEY"),
    ("mistral", "MISTRAL_API_KEY"),
    ("grok", "GROK_API_KEY"),
    ("cohere", "COHERE_API_KEY"),
];

/// The other external services a node holds a credential for: name, the service whose `.env`
/// holds it, the variable, and how a read-only call presents it.
pub const EXTERNAL: &[(&str, &str, &str, KeyAuth)] = &[
    (
        "qdrant",
        "memory-service",
        "QDRANT_API_KEY",
        KeyAuth::ApiKey,
    ),
    ("neo4j", "router", "NEO4J_PASSWORD", KeyAuth::Basic),
    (
        "telegram-daarwizz",
        "gateway",
        "TELEGRAM_BOT_TOKEN",
        KeyAuth::Path,
    ),
    (
        "telegram-helion",
        "gateway",
        "TELEGRAM_BOT_TOKEN_HELION",
        KeyAuth::Path,
    ),
    (
        "telegram-greenfood",
        "gateway",
        "TELEGRAM_BOT_TOKEN_GREENFOOD",
        KeyAuth::Path,
    ),
    (
        "telegram-druid",
        "gateway",
        "TELEGRAM_BOT_TOKEN_DRUID",
        KeyAuth::Path,
    ),
];

/// How a read-only call presents a credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAuth {
    /// `Authorization: Bearer <key>` (the LLM providers).
    #[default]
    Bearer,
    /// `api-key: <key>` (Qdrant).
    ApiKey,
    /// HTTP basic auth as `user` with the value as password, on a read-only statement
    /// (`POST` of `RETURN 1` to Neo4j's transaction endpoint).
    Basic,
    /// The value in the URL, in place of `{key}` (Telegram's `…/bot{key}/getMe`).
    Path,
}

/// Where a replica kept by `rehearse --keep` holds the secrets from before its steps, laid out
/// like the root: `verify --replica` reads them as its previous secrets.
pub const KEPT_PREVIOUS: &str = ".rehearsal/previous";
/// Where a kept replica holds when its first step began (RFC 3339): `verify --replica` reads
/// logs and upstream usage from then on.
pub const KEPT_SINCE: &str = ".rehearsal/since";

/// Where a replica root keeps the node profile it was wired by, when not the default.
pub const KEPT_PROFILE: &str = ".rehearsal/node-profile.toml";

/// One node to verify.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// A name for reports (`node1`).
    pub name: String,
    /// The node's root directory (`/opt/microdao-daarion`); `.env` paths are relative to it.
    pub root: PathBuf,
    /// When the rotation happened (RFC 3339): logs and upstream usage are read from then on.
    #[serde(default, with = "rfc3339_opt")]
    pub since: Option<SystemTime>,
    /// A git repository to scan for tracked secrets.
    #[serde(default)]
    pub repo: Option<PathBuf>,
    /// Where `secrets_backup_*` files are kept.
    #[serde(default)]
    pub backups: Option<PathBuf>,
    #[serde(default = "default_retention")]
    pub backup_retention_days: u64,
    /// The Phase 1 backup tarball (or a directory laid out like the root) holding the
    /// previous secrets; `--previous` overrides it.
    #[serde(default)]
    pub previous: Option<PathBuf>,
    /// Per-check timeout in milliseconds, 1 to 600 000.
    #[serde(default = "default_timeout_ms", deserialize_with = "timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default)]
    pub services: BTreeMap<String, ServiceTarget>,
    pub postgres: PostgresTarget,
    pub nats: NatsTarget,
    /// Provider name → a read-only URL and the router variable that holds its key.
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderTarget>,
    /// The replica's fake upstream admin API (`…/admin/keys`), for per-key use counts.
    #[serde(default, deserialize_with = "http_url_opt")]
    pub upstream_admin: Option<String>,
    /// How the node's files and Docker engine are reached: `local` (default: this machine) or
    /// `ssh://[user@]host[:port]` (read-only commands over SSH, the engine's socket forwarded;
    /// `root`, `repo`, `backups` and `previous` are then absolute paths on the node).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    /// The private key for an SSH transport (`ssh -i`); else the agent and ssh's config.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_identity: Option<PathBuf>,
    /// A known_hosts file holding the node's host key; else the user's own. An unknown host
    /// key is always refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_known_hosts: Option<PathBuf>,
    /// How the node's services read their secrets: a shipped profile (`database-url`,
    /// `interpolated`) or a profile file, relative to the target file; the replica's default
    /// wiring when absent (docs/node-profile.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_profile: Option<String>,
    /// The profile `node_profile` names, read by `load` (`verify --node-profile` replaces it).
    #[serde(skip)]
    pub profile: NodeProfile,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceTarget {
    /// Base URL (`http://127.0.0.1:9300`); `/health` and `/ready` are appended.
    #[serde(deserialize_with = "http_url")]
    pub url: String,
    /// The service's `.env`, relative to the root.
    pub env: PathBuf,
    /// Its container, for env and log checks through the local engine (or DOCKER_HOST).
    #[serde(default)]
    pub container: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub database: String,
    /// The PostgreSQL service's own `.env` (POSTGRES_PASSWORD), relative to the root.
    #[serde(default)]
    pub env: Option<PathBuf>,
    #[serde(default)]
    pub container: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatsTarget {
    /// `nats://host:port` (or `tls://`, `ws://`, `wss://`).
    #[serde(deserialize_with = "nats_url")]
    pub url: String,
    /// The monitoring endpoint (`http://127.0.0.1:8222`).
    #[serde(deserialize_with = "http_url")]
    pub monitoring: String,
    #[serde(default)]
    pub container: Option<String>,
    #[serde(default = "default_stream")]
    pub stream: String,
    #[serde(default = "default_consumers")]
    pub consumers: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderTarget {
    /// A read-only call (`GET …/v1/models`) answered 200 for a valid key, 401 otherwise.
    #[serde(deserialize_with = "http_url")]
    pub url: String,
    /// The variable holding the key.
    pub env: String,
    /// The service whose `.env` holds it (default `router`).
    #[serde(default = "default_provider_service")]
    pub service: String,
    /// How the call presents it: `bearer` (default), `api-key`, `basic` (as `user`), `path`.
    #[serde(default)]
    pub auth: KeyAuth,
    /// The user of `basic` auth.
    #[serde(default)]
    pub user: Option<String>,
}

fn default_provider_service() -> String {
    "router".into()
}

fn default_retention() -> u64 {
    30
}
fn default_timeout_ms() -> u64 {
    5000
}

/// The most a target may give each check.
pub const TIMEOUT_MS_MAX: u64 = 600_000;

fn timeout_ms<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let ms = u64::deserialize(d)?;
    if (1..=TIMEOUT_MS_MAX).contains(&ms) {
        Ok(ms)
    } else {
        Err(serde::de::Error::custom(format!(
            "{ms} is out of range: from 1 to {TIMEOUT_MS_MAX} (milliseconds a check may take)"
        )))
    }
}

fn http_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = String::deserialize(d)?;
    check_url(&text, &["http", "https"]).map_err(serde::de::Error::custom)?;
    Ok(text)
}

fn http_url_opt<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    http_url(d).map(Some)
}

fn nats_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let text = String::deserialize(d)?;
    check_url(&text, &["nats", "tls", "ws", "wss"]).map_err(serde::de::Error::custom)?;
    Ok(text)
}

/// Why `text` is not a URL of one of `schemes` with a host, in words that hold none of it (a
/// URL may carry a password).
pub fn check_url(text: &str, schemes: &[&str]) -> Result<(), String> {
    let url = reqwest::Url::parse(text).map_err(|e| format!("not a URL ({e})"))?;
    if !schemes.contains(&url.scheme()) {
        return Err(format!(
            "not a URL this field takes: the scheme must be {}",
            schemes.join(", ")
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("not a URL this field takes: it has no host".into());
    }
    Ok(())
}
fn default_stream() -> String {
    "EVENTS".into()
}
fn default_consumers() -> Vec<String> {
    vec!["crewai-nats-worker".into(), "parser-pipeline".into()]
}

/// A target file that cannot be used: the file, the line and what is wrong (naming the field).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}{}: {message}", runbook::at_line(*line))]
pub struct TargetError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// The largest target file read: a node's is about 2 KB.
pub const TARGET_MAX_BYTES: u64 = 1 << 20;

impl Target {
    pub fn load(path: &Path) -> Result<Target, TargetError> {
        let file = path.display().to_string();
        let text = user_io::input::read_text(path, TARGET_MAX_BYTES).map_err(|e| TargetError {
            file: file.clone(),
            line: e.line(),
            message: format!("target file: {e}"),
        })?;
        let mut target = Self::parse(&file, &text)?;
        // Relative paths in a target file are relative to the file; the node's own paths over
        // SSH are absolute (checked by `parse`).
        let base = path.parent().unwrap_or(Path::new("."));
        if let Some(named) = &target.node_profile {
            let shipped = ::node::profile::SHIPPED.iter().any(|(n, _)| n == named);
            let arg = if shipped {
                named.clone()
            } else {
                base.join(named).display().to_string()
            };
            target.profile = NodeProfile::named_or_file(&arg).map_err(|e| TargetError {
                file: file.clone(),
                line: text
                    .lines()
                    .position(|l| l.trim_start().starts_with("node_profile"))
                    .map_or(0, |i| i + 1),
                message: format!("node_profile: {e}"),
            })?;
        }
        let local = [&mut target.ssh_identity, &mut target.ssh_known_hosts];
        for p in local.into_iter().flatten() {
            *p = base.join(&*p);
        }
        if target.ssh().is_none() {
            target.root = base.join(&target.root);
            for p in [&mut target.repo, &mut target.backups, &mut target.previous]
                .into_iter()
                .flatten()
            {
                *p = base.join(&*p);
            }
        }
        Ok(target)
    }

    pub fn parse(file: &str, text: &str) -> Result<Target, TargetError> {
        let line_of = |e: &toml::de::Error| {
            e.span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
                .unwrap_or(0)
        };
        let error = |line: usize, message: String| TargetError {
            file: file.to_string(),
            line,
            message,
        };
        let deserializer = toml::Deserializer::parse(text).map_err(|e| {
            error(
                line_of(&e),
                format!("not valid TOML: {}", describe_parse_message(e.message())),
            )
        })?;
        let target: Target = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.inner();
            let what = describe_parse_message(inner.message());
            match path.as_str() {
                "." | "" => error(line_of(inner), what),
                _ => error(line_of(inner), format!("field `{path}`: {what}")),
            }
        })?;
        for key in target.services.keys() {
            if !SERVICE_KEYS.contains(&key.as_str()) {
                let line = text
                    .lines()
                    .position(|l| l.contains(&format!("services.{key}")))
                    .map(|i| i + 1)
                    .unwrap_or(0);
                return Err(TargetError {
                    file: file.to_string(),
                    line,
                    message: format!(
                        "unknown service `{key}` in [services]: expected one of {}",
                        SERVICE_KEYS.join(", ")
                    ),
                });
            }
        }
        target.check_transport(file, text)?;
        Ok(target)
    }

    /// A transport other than `local` or `ssh://…`, or an SSH target whose node paths are
    /// relative, is an error on the `transport` line.
    fn check_transport(&self, file: &str, text: &str) -> Result<(), TargetError> {
        let line = |key: &str| {
            text.lines()
                .position(|l| l.trim_start().starts_with(key))
                .map(|i| i + 1)
                .unwrap_or(0)
        };
        let error = |key: &str, message: String| TargetError {
            file: file.to_string(),
            line: line(key),
            message,
        };
        match self.transport.as_deref() {
            None | Some("local") => Ok(()),
            Some(url) => {
                SshDestination::parse(url)
                    .map_err(|e| error("transport", format!("field `transport`: {e}")))?;
                let node_paths = [
                    ("root", Some(&self.root)),
                    ("repo", self.repo.as_ref()),
                    ("backups", self.backups.as_ref()),
                    ("previous", self.previous.as_ref()),
                ];
                for (key, path) in node_paths {
                    if let Some(path) = path.filter(|p| !p.is_absolute()) {
                        return Err(error(
                            key,
                            format!(
                                "field `{key}`: `{}` is relative, but over SSH the node's paths are absolute",
                                path.display()
                            ),
                        ));
                    }
                }
                Ok(())
            }
        }
    }

    /// Where an SSH transport connects, when the target has one.
    pub fn ssh(&self) -> Option<SshDestination> {
        self.transport
            .as_deref()
            .and_then(|t| SshDestination::parse(t).ok())
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a target always serialises")
    }

    /// The `.env` path of a service, absolute.
    pub fn env_path(&self, service: &str) -> Option<PathBuf> {
        self.services.get(service).map(|s| self.root.join(&s.env))
    }

    /// Every `.env` file of the node (services, then PostgreSQL's), absolute, without repeats.
    pub fn env_paths(&self) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = self
            .services
            .values()
            .map(|s| self.root.join(&s.env))
            .chain(self.postgres.env.iter().map(|e| self.root.join(e)))
            .collect();
        paths.dedup();
        paths
    }

    /// The target of a replica with stack id `id` and root `root`, its services' ports
    /// published on the engine's host as `port(service, container port)` says.
    pub fn replica(id: &str, root: &Path, port: impl Fn(Service, u16) -> u16) -> Target {
        let engine = crate::engine::engine_host();
        let url = |s: Service| format!("http://{engine}:{}", port(s, s.ports()[0]));
        let container = |s: Service| Some(format!("{}-{id}", s.production_name()));
        let services = Service::NODE
            .into_iter()
            .map(|s| {
                (
                    s.key().to_string(),
                    ServiceTarget {
                        url: url(s),
                        env: PathBuf::from(s.env_file().expect("node services have a .env")),
                        container: container(s),
                    },
                )
            })
            .collect();
        let upstream = url(Service::Upstream);
        Target {
            name: format!("replica-{id}"),
            root: root.to_path_buf(),
            since: std::fs::read_to_string(root.join(KEPT_SINCE))
                .ok()
                .and_then(|t| humantime::parse_rfc3339_weak(t.trim()).ok()),
            repo: root.join(".git").is_dir().then(|| root.to_path_buf()),
            // Where the runbook put its backups: `backups/` (v2), else the root (as written).
            backups: Some(root.join("backups"))
                .filter(|p| p.is_dir())
                .or_else(|| Some(root.to_path_buf())),
            backup_retention_days: default_retention(),
            previous: Some(root.join(KEPT_PREVIOUS)).filter(|p| p.is_dir()),
            timeout_ms: default_timeout_ms(),
            services,
            postgres: PostgresTarget {
                host: engine.trim_matches(['[', ']']).to_string(),
                port: port(Service::Postgres, 5432),
                user: "daarion".into(),
                database: "daarion_main".into(),
                env: Service::Postgres.env_file().map(PathBuf::from),
                container: container(Service::Postgres),
            },
            nats: NatsTarget {
                url: format!("nats://{engine}:{}", port(Service::Nats, 4222)),
                monitoring: format!("http://{engine}:{}", port(Service::Nats, 8222)),
                container: container(Service::Nats),
                stream: default_stream(),
                consumers: default_consumers(),
            },
            providers: PROVIDERS
                .iter()
                .map(|(p, var)| {
                    (
                        p.to_string(),
                        ProviderTarget {
                            url: format!("{upstream}/{p}/v1/models"),
                            env: var.to_string(),
                            service: default_provider_service(),
                            auth: KeyAuth::Bearer,
                            user: None,
                        },
                    )
                })
                .chain(EXTERNAL.iter().map(|&(name, service, var, auth)| {
                    let url = match auth {
                        KeyAuth::ApiKey => format!("{upstream}/qdrant/collections"),
                        KeyAuth::Basic => format!("{upstream}/neo4j/db/neo4j/tx/commit"),
                        KeyAuth::Path => format!("{upstream}/bot{{key}}/getMe"),
                        KeyAuth::Bearer => format!("{upstream}/{name}/v1/models"),
                    };
                    (
                        name.to_string(),
                        ProviderTarget {
                            url,
                            env: var.to_string(),
                            service: service.to_string(),
                            auth,
                            user: (auth == KeyAuth::Basic).then(|| "neo4j".to_string()),
                        },
                    )
                }))
                .collect(),
            upstream_admin: Some(format!("{upstream}/admin/keys")),
            transport: None,
            ssh_identity: None,
            ssh_known_hosts: None,
            node_profile: None,
            // The replica root keeps the profile it was wired by (`ReplicaRoot::create`).
            profile: NodeProfile::load(&root.join(KEPT_PROFILE)).unwrap_or_default(),
        }
    }
}

/// RFC 3339 times (`2026-11-25T10:00:00Z`) as `SystemTime`, optional.
mod rfc3339_opt {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::SystemTime;

    pub fn serialize<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&humantime::format_rfc3339_seconds(*t).to_string()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SystemTime>, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339_weak(&text).map(Some).map_err(|e| {
            serde::de::Error::custom(format!(
                "not an RFC 3339 time such as 2026-11-25T10:00:00Z ({e})"
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example target with `node_profile` set to `value`, written beside a profile file.
    fn example_with(dir: &Path, value: &str) -> PathBuf {
        let example =
            std::fs::read_to_string(runbook::workspace_path("fixtures/targets/node1.toml"))
                .unwrap()
                .replace(
                    "# node_profile = \"database-url\"",
                    &format!("node_profile = \"{value}\""),
                );
        let path = dir.join("node1.toml");
        std::fs::write(&path, example).unwrap();
        path
    }

    #[test]
    fn a_target_names_its_node_profile_by_shipped_name_or_by_a_file_beside_it() {
        let dir = tempfile::tempdir().unwrap();
        let target = Target::load(&example_with(dir.path(), "database-url")).unwrap();
        assert_eq!(
            target.profile,
            NodeProfile::named_or_file("database-url").unwrap()
        );
        std::fs::write(
            dir.path().join("node.profile.toml"),
            NodeProfile::named_or_file("interpolated")
                .unwrap()
                .to_toml(),
        )
        .unwrap();
        let target = Target::load(&example_with(dir.path(), "node.profile.toml")).unwrap();
        assert_eq!(
            target.profile,
            NodeProfile::named_or_file("interpolated").unwrap()
        );
        let err = Target::load(&example_with(dir.path(), "missing.toml")).unwrap_err();
        assert_eq!(err.line, 21);
        assert!(
            err.message.starts_with("node_profile: ") && err.message.contains("missing.toml"),
            "{}",
            err.message
        );
        // Without one, the replica's default wiring.
        let plain = Target::load(&runbook::workspace_path("fixtures/targets/node1.toml")).unwrap();
        assert_eq!(plain.profile, NodeProfile::replica_default());
    }
}
