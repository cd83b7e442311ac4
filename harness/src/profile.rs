//! The node's secret wiring as data (a node profile): per service and per secret, the variable
//! the service reads it from, its form (plain, or inside a URL), its source (the service's
//! `env_file`, Compose interpolation from the project `.env`, the compose file itself), what
//! the service does when it is missing; per mounted config, whether a file or its directory is
//! mounted. [`derive`] reads one from Compose's resolved config of a real node, naming what it
//! cannot map; nothing here ever holds or prints a secret's value.

use crate::replica_root::{NATS_USERS, SECRET_NAMES};
use crate::services::Service;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use yaml_rust2::Yaml;

/// The profile of the replica as shipped (`fixtures/profiles/default.toml`).
pub const DEFAULT_PROFILE: &str = "fixtures/profiles/default.toml";

/// A node's secret wiring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeProfile {
    /// One line saying which wiring this is.
    pub description: String,
    #[serde(rename = "service", default)]
    pub services: Vec<ServiceWiring>,
}

/// How one service reads its secrets and its mounted config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceWiring {
    /// The service's key (`gateway`, `memory-service`; see `Service::key`).
    pub name: String,
    #[serde(rename = "secret", default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<SecretWiring>,
    #[serde(rename = "mount", default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<Mount>,
}

/// One secret as one service reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretWiring {
    /// The node's secret (`DB_PASSWORD`, `NATS_PASSWORD_WORKER`: `replica_root::SECRET_NAMES`).
    pub secret: String,
    /// The variable the service reads (`DB_PASSWORD`, `DATABASE_URL`, `NATS_PASSWORD`).
    pub variable: String,
    pub form: Form,
    pub source: Source,
    pub when_missing: WhenMissing,
}

/// How the secret sits in its variable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Form {
    /// The variable is the secret.
    Plain,
    /// The secret is the password of a URL: `template` is the URL with `{password}` in its
    /// place; the password is percent-encoded in it (RFC 3986 userinfo).
    Url { template: String },
}

/// Where the variable's value comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Source {
    /// The service's `env_file` (`path` relative to the project directory): read when the
    /// container is created.
    EnvFile { path: String },
    /// Compose interpolates `variable` from the project's `.env` into the service's
    /// `environment:` on `up`; a `restart` keeps the old value.
    Interpolated { variable: String },
    /// Written into the compose file itself.
    ComposeFile,
}

/// What the service does when the variable is missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum WhenMissing {
    /// It does not start (or does not serve).
    Fails,
    /// It goes on with something else, described in `to` (never a value).
    FallsBack { to: String },
}

/// A bind mount of the service's config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mount {
    pub container_path: String,
    /// Relative to the project directory where it is inside it.
    pub host_path: String,
    pub kind: MountKind,
}

/// What a bind mount mounts: a file keeps its inode (a file replaced by `mv` is not seen by
/// the container), a directory shows what is in it now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MountKind {
    File,
    Directory,
}

/// Why a profile could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("{path}: {reason}")]
    Read { path: String, reason: String },
    #[error("Compose's config is not YAML: {0}")]
    NotYaml(String),
}

impl NodeProfile {
    /// Reads a profile from its TOML file.
    pub fn load(path: &Path) -> Result<NodeProfile, ProfileError> {
        let err = |reason: String| ProfileError::Read {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let profile: NodeProfile = toml::from_str(&text).map_err(|e| err(e.to_string()))?;
        for s in &profile.services {
            if Service::parse(&s.name).is_none() {
                return Err(err(format!("service `{}` is not a node service", s.name)));
            }
            for w in &s.secrets {
                if !SECRET_NAMES.contains(&w.secret.as_str()) {
                    return Err(err(format!(
                        "service `{}`: secret `{}` is not one of the node's ({})",
                        s.name,
                        w.secret,
                        SECRET_NAMES.join(", ")
                    )));
                }
            }
        }
        Ok(profile)
    }

    /// The profile as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a profile serialises")
    }
}

/// A profile derived from a compose file, and what could not be mapped (one sentence each,
/// naming services and variables, never values).
#[derive(Debug, Clone, PartialEq)]
pub struct Derived {
    pub profile: NodeProfile,
    pub unmapped: Vec<String>,
}

/// What `derive` needs besides Compose's config: the keys (never the values) of each
/// service's env files, and whether a host path is a file or a directory.
pub struct ProjectFiles<'a> {
    /// compose service name → (env file path relative to the project, its keys).
    pub env_files: &'a BTreeMap<String, Vec<(String, Vec<String>)>>,
    /// The project directory (host paths of mounts are made relative to it).
    pub project_dir: &'a Path,
    /// Whether a host path is a directory (`None`: it does not exist).
    pub is_dir: &'a dyn Fn(&Path) -> Option<bool>,
}

/// Derives a profile from `config`, the output of Compose's `config --no-interpolate` (YAML;
/// Compose v1 and v2 both write it): each service's `environment` (the env files merged in,
/// interpolations left as `${VAR}`) and `volumes`.
pub fn derive(config: &str, files: &ProjectFiles<'_>) -> Result<Derived, ProfileError> {
    let docs = yaml_rust2::YamlLoader::load_from_str(config)
        .map_err(|e| ProfileError::NotYaml(e.to_string()))?;
    let doc = docs.first().cloned().unwrap_or(Yaml::Null);
    let mut profile = NodeProfile {
        description: "derived from a compose file by `cargo xtask node profile`".into(),
        services: Vec::new(),
    };
    let mut unmapped = Vec::new();
    let services = doc["services"].as_hash().cloned().unwrap_or_default();
    for (name, service) in services {
        let Some(name) = name.as_str() else { continue };
        let Some(known) = Service::parse(name) else {
            let secretish: Vec<String> = environment(&service)
                .into_iter()
                .filter(|(k, v)| looks_secret(k, v.as_deref()))
                .map(|(k, _)| k)
                .collect();
            if !secretish.is_empty() {
                unmapped.push(format!(
                    "compose service `{name}` is not a node service this tool knows; its {} not mapped",
                    said_as_variables(&secretish)
                ));
            }
            continue;
        };
        let mut wiring = ServiceWiring {
            name: known.key().to_string(),
            secrets: Vec::new(),
            mounts: Vec::new(),
        };
        let env_files = files.env_files.get(name).cloned().unwrap_or_default();
        for (variable, raw) in environment(&service) {
            match wire(known, &variable, raw.as_deref(), &env_files) {
                Some(w) => wiring.secrets.push(w),
                None if looks_secret(&variable, raw.as_deref()) => unmapped.push(format!(
                    "{name}: `{variable}` looks like a secret but holds none of the node's ({})",
                    SECRET_NAMES.join(", ")
                )),
                None => {}
            }
        }
        for volume in service["volumes"].as_vec().cloned().unwrap_or_default() {
            if let Some(m) = mount(&volume, files) {
                wiring.mounts.push(m);
            }
        }
        if !wiring.secrets.is_empty() || !wiring.mounts.is_empty() {
            profile.services.push(wiring);
        }
    }
    Ok(Derived { profile, unmapped })
}

/// A service's `environment` as (name, value as Compose wrote it), from either of its forms.
fn environment(service: &Yaml) -> Vec<(String, Option<String>)> {
    let env = &service["environment"];
    let text = |v: &Yaml| match v {
        Yaml::String(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Real(r) => Some(r.clone()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    };
    if let Some(map) = env.as_hash() {
        return map
            .iter()
            .filter_map(|(k, v)| Some((k.as_str()?.to_string(), text(v))))
            .collect();
    }
    env.as_vec()
        .map(|list| {
            list.iter()
                .filter_map(|item| {
                    let s = item.as_str()?;
                    Some(match s.split_once('=') {
                        Some((k, v)) => (k.to_string(), Some(v.to_string())),
                        None => (s.to_string(), None),
                    })
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a variable looks like it holds a secret: its name says so, or, for a URL or DSN,
/// its value has a user part (`scheme://user:…@host`); a URL without one is an address.
fn looks_secret(name: &str, raw: Option<&str>) -> bool {
    let upper = name.to_uppercase();
    if upper.ends_with("_USER") {
        return false;
    }
    if ["_URL", "_URI", "_DSN"].iter().any(|w| upper.ends_with(w)) {
        return raw.is_some_and(|v| {
            v.split_once("://")
                .is_some_and(|(_, rest)| rest.contains('@'))
        });
    }
    ["PASSWORD", "SECRET", "TOKEN", "_KEY", "CREDENTIAL", "_AUTH"]
        .iter()
        .any(|w| upper.contains(w))
}

/// "variable `A` is" or "variables `A`, `B` are".
fn said_as_variables(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.as_slice() {
        [one] => format!("variable {one} is"),
        many => format!("variables {} are", many.join(", ")),
    }
}

/// The node's secret a plain variable of `service` named `name` holds.
fn secret_named(service: Service, name: &str) -> Option<&'static str> {
    match name {
        "NATS_PASSWORD" => nats_secret_of(service),
        "POSTGRES_PASSWORD" if service == Service::Postgres => Some("DB_PASSWORD"),
        _ => SECRET_NAMES.iter().copied().find(|s| *s == name),
    }
}

/// The NATS password secret of the user `service` connects as.
fn nats_secret_of(service: Service) -> Option<&'static str> {
    let user = NATS_USERS
        .iter()
        .find(|(_, services)| services.contains(&service))?
        .0;
    SECRET_NAMES
        .iter()
        .copied()
        .find(|s| s.eq_ignore_ascii_case(&format!("NATS_PASSWORD_{user}")))
}

/// The secret a URL's scheme says its password is (`postgresql+psycopg://` → `DB_PASSWORD`).
fn secret_of_scheme(service: Service, scheme: &str) -> Option<&'static str> {
    let scheme = scheme.to_lowercase();
    if scheme.starts_with("postgres") {
        Some("DB_PASSWORD")
    } else if scheme.starts_with("nats") {
        nats_secret_of(service)
    } else if scheme.starts_with("neo4j") || scheme.starts_with("bolt") {
        Some("NEO4J_PASSWORD")
    } else {
        None
    }
}

/// `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `$VAR` → (VAR, has a default).
fn interpolation(text: &str) -> Option<(String, bool)> {
    let inner = text.strip_prefix("${")?.strip_suffix('}')?;
    let end = inner
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(inner.len());
    let (var, rest) = inner.split_at(end);
    (!var.is_empty()).then(|| {
        (
            var.to_string(),
            rest.starts_with(":-") || rest.starts_with('-'),
        )
    })
}

/// How `service` reads a secret through `variable`, whose value Compose wrote as `raw`
/// (interpolations left in), if it holds one.
fn wire(
    service: Service,
    variable: &str,
    raw: Option<&str>,
    env_files: &[(String, Vec<String>)],
) -> Option<SecretWiring> {
    let raw = raw.unwrap_or("");
    let in_env_file = env_files
        .iter()
        .find(|(_, keys)| keys.iter().any(|k| k == variable))
        .map(|(path, _)| path.clone());
    let literal_source = || match &in_env_file {
        Some(path) => Source::EnvFile { path: path.clone() },
        None => Source::ComposeFile,
    };
    // Interpolated whole: `VAR: ${X}`.
    if let Some((from, has_default)) = interpolation(raw.trim()) {
        let secret = secret_named(service, &from).or_else(|| secret_named(service, variable))?;
        return Some(SecretWiring {
            secret: secret.into(),
            variable: variable.into(),
            form: Form::Plain,
            source: Source::Interpolated {
                variable: from.clone(),
            },
            when_missing: missing(has_default, &from),
        });
    }
    // A URL with a password: `scheme://user:PASSWORD@host…`. The password runs from the
    // first `:` after the user to the last `@` (an unencoded `@`, `:` or `/` in it must not
    // leave a piece of it in the template).
    if let Some((scheme, rest)) = raw.split_once("://") {
        let (userinfo, after) = rest.rsplit_once('@')?;
        let (user, password) = userinfo.split_once(':')?;
        if user.contains('/') {
            return None;
        }
        let secret = secret_of_scheme(service, scheme)?;
        let template = format!("{scheme}://{user}:{{password}}@{after}");
        let (source, when_missing) = match interpolation(password) {
            Some((from, has_default)) => (
                Source::Interpolated {
                    variable: from.clone(),
                },
                missing(has_default, &from),
            ),
            None => (literal_source(), WhenMissing::Fails),
        };
        if template.contains("${") {
            return None;
        }
        return Some(SecretWiring {
            secret: secret.into(),
            variable: variable.into(),
            form: Form::Url { template },
            source,
            when_missing,
        });
    }
    let secret = secret_named(service, variable)?;
    Some(SecretWiring {
        secret: secret.into(),
        variable: variable.into(),
        form: Form::Plain,
        source: literal_source(),
        when_missing: WhenMissing::Fails,
    })
}

/// What a service does when an interpolated variable is missing: Compose's default when the
/// file gives one (not shown), else it gets an empty value and fails.
fn missing(has_default: bool, from: &str) -> WhenMissing {
    if has_default {
        WhenMissing::FallsBack {
            to: format!("the compose file's default for `{from}`"),
        }
    } else {
        WhenMissing::Fails
    }
}

/// A bind mount of `volume` (`host:container[:mode]`, or its long form), if it is one.
fn mount(volume: &Yaml, files: &ProjectFiles<'_>) -> Option<Mount> {
    let (host, container) = match volume {
        Yaml::String(s) => {
            let mut parts = s.split(':');
            (parts.next()?.to_string(), parts.next()?.to_string())
        }
        Yaml::Hash(_) => {
            if volume["type"].as_str() != Some("bind") {
                return None;
            }
            (
                volume["source"].as_str()?.to_string(),
                volume["target"].as_str()?.to_string(),
            )
        }
        _ => return None,
    };
    let host_path = Path::new(&host);
    let absolute = if host_path.is_absolute() {
        host_path.to_path_buf()
    } else if host.starts_with('.') {
        files.project_dir.join(host_path)
    } else {
        return None; // a named volume
    };
    let kind = match (files.is_dir)(&absolute)? {
        true => MountKind::Directory,
        false => MountKind::File,
    };
    let shown = absolute
        .strip_prefix(files.project_dir)
        .map(|p| format!("./{}", p.display()))
        .unwrap_or_else(|_| absolute.display().to_string());
    Some(Mount {
        container_path: container,
        host_path: shown,
        kind,
    })
}

/// Each compose service's env files (as the compose file names them, relative to the project)
/// with their keys, read from the file as written: Compose v1's `config` merges them into
/// `environment`, so where a variable came from is only in the file itself.
pub fn env_file_keys(
    raw: &str,
    project_dir: &Path,
) -> BTreeMap<String, Vec<(String, Vec<String>)>> {
    let docs = yaml_rust2::YamlLoader::load_from_str(raw).unwrap_or_default();
    let Some(doc) = docs.first() else {
        return BTreeMap::new();
    };
    let mut out = BTreeMap::new();
    for (name, service) in doc["services"].as_hash().into_iter().flatten() {
        let Some(name) = name.as_str() else { continue };
        let entries: Vec<String> = match &service["env_file"] {
            yaml_rust2::Yaml::String(s) => vec![s.clone()],
            yaml_rust2::Yaml::Array(list) => list
                .iter()
                .filter_map(|e| {
                    e.as_str()
                        .or_else(|| e["path"].as_str())
                        .map(str::to_string)
                })
                .collect(),
            _ => Vec::new(),
        };
        let files = entries
            .into_iter()
            .map(|path| {
                let keys = crate::envfile::EnvFile::read(project_dir.join(&path))
                    .map(|f| f.vars().into_iter().map(|(k, _)| k).collect())
                    .unwrap_or_default();
                (path.trim_start_matches("./").to_string(), keys)
            })
            .collect();
        out.insert(name.to_string(), files);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_default_profile_reads_and_round_trips() {
        let path = crate::runbook::workspace_path(DEFAULT_PROFILE);
        let profile = NodeProfile::load(&path).unwrap();
        assert_eq!(
            toml::from_str::<NodeProfile>(&profile.to_toml()).unwrap(),
            profile
        );
        let nats = profile.services.iter().find(|s| s.name == "nats").unwrap();
        assert_eq!(nats.mounts[0].kind, MountKind::Directory);
    }

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
        let profile = NodeProfile::load(&crate::runbook::workspace_path(DEFAULT_PROFILE)).unwrap();
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

    /// `docker-compose config --no-interpolate` (v1) of a node in the platform's public style.
    const CONFIG: &str = r#"services:
  dagi-memory-service-node1:
    environment:
      DATABASE_URL: postgresql+psycopg://daarion:${DB_PASSWORD}@dagi-postgres:5432/daarion_main
      LOG_LEVEL: info
      QDRANT_URL: http://dagi-qdrant:6333
      NODE_REGISTRY_DB_PASSWORD: ${NODE_REGISTRY_DB_PASSWORD:-changeme}
      QDRANT_API_KEY: literal-from-env-file
    image: memory:latest
  dagi-nats-node1:
    image: nats:2
    volumes:
    - /node/nats/nats.conf:/etc/nats/nats.conf:ro
  dagi-router-node1:
    environment:
      NATS_PASSWORD: literal
      DEEPSEEK_API_KEY: ${DEEPSEEK_API_KEY}
  grafana:
    environment:
      GF_SECURITY_ADMIN_PASSWORD: literal
version: '3.8'
"#;

    #[test]
    fn a_compose_config_in_the_platforms_style_gives_each_wiring_and_names_what_it_cannot_map() {
        let env_files: BTreeMap<String, Vec<(String, Vec<String>)>> = [(
            "dagi-memory-service-node1".to_string(),
            vec![(
                "services/memory/.env".to_string(),
                vec!["QDRANT_API_KEY".to_string()],
            )],
        )]
        .into();
        let is_dir = |p: &Path| Some(!p.to_string_lossy().ends_with(".conf"));
        let derived = derive(
            CONFIG,
            &ProjectFiles {
                env_files: &env_files,
                project_dir: Path::new("/node"),
                is_dir: &is_dir,
            },
        )
        .unwrap();
        let memory = &derived.profile.services[0];
        assert_eq!(memory.name, "memory-service");
        assert_eq!(
            memory.secrets,
            [
                SecretWiring {
                    secret: "DB_PASSWORD".into(),
                    variable: "DATABASE_URL".into(),
                    form: Form::Url {
                        template: "postgresql+psycopg://daarion:{password}@dagi-postgres:5432/daarion_main".into()
                    },
                    source: Source::Interpolated { variable: "DB_PASSWORD".into() },
                    when_missing: WhenMissing::Fails,
                },
                SecretWiring {
                    secret: "QDRANT_API_KEY".into(),
                    variable: "QDRANT_API_KEY".into(),
                    form: Form::Plain,
                    source: Source::EnvFile { path: "services/memory/.env".into() },
                    when_missing: WhenMissing::Fails,
                },
            ]
        );
        let nats = &derived.profile.services[1];
        assert_eq!(
            (nats.name.as_str(), &nats.mounts),
            (
                "nats",
                &vec![Mount {
                    container_path: "/etc/nats/nats.conf".into(),
                    host_path: "./nats/nats.conf".into(),
                    kind: MountKind::File,
                }]
            )
        );
        let router = &derived.profile.services[2];
        assert_eq!(
            router
                .secrets
                .iter()
                .map(|w| (w.secret.as_str(), w.variable.as_str(), &w.source))
                .collect::<Vec<_>>(),
            [
                (
                    "NATS_PASSWORD_ROUTER",
                    "NATS_PASSWORD",
                    &Source::ComposeFile
                ),
                (
                    "DEEPSEEK_API_KEY",
                    "DEEPSEEK_API_KEY",
                    &Source::Interpolated {
                        variable: "DEEPSEEK_API_KEY".into()
                    }
                ),
            ]
        );
        assert_eq!(
            derived.unmapped,
            [
                "dagi-memory-service-node1: `NODE_REGISTRY_DB_PASSWORD` looks like a secret but holds none of the node's (DB_PASSWORD, JWT_SECRET, TELEGRAM_BOT_TOKEN, TELEGRAM_BOT_TOKEN_HELION, TELEGRAM_BOT_TOKEN_GREENFOOD, TELEGRAM_BOT_TOKEN_DRUID, NATS_PASSWORD_GATEWAY, NATS_PASSWORD_ROUTER, NATS_PASSWORD_WORKER, DEEPSEEK_API_KEY, MISTRAL_API_KEY, GROK_API_KEY, COHERE_API_KEY, NEO4J_PASSWORD, QDRANT_API_KEY)",
                "compose service `grafana` is not a node service this tool knows; its variable `GF_SECURITY_ADMIN_PASSWORD` is not mapped",
            ]
        );
        let shown = derived.profile.to_toml();
        for value in ["literal-from-env-file", "changeme", "literal"] {
            assert!(!shown.contains(value), "{value} in\n{shown}");
        }
    }

    proptest::proptest! {
        /// Whatever characters a literal password holds, the URL's template is the URL around
        /// it and the profile shows no piece of it.
        #[test]
        fn a_literal_password_in_a_url_never_reaches_the_profile(password in "[^\\n\\r]{6,40}") {
            let config = serde_json::json!({
                "services": {
                    "dagi-memory-service-node1": {
                        "environment": {
                            "DATABASE_URL": format!("postgresql://daarion:{password}@dagi-postgres:5432/daarion_main")
                        }
                    }
                }
            })
            .to_string();
            let env_files = BTreeMap::new();
            let is_dir = |_: &Path| None;
            let derived = derive(
                &config,
                &ProjectFiles { env_files: &env_files, project_dir: Path::new("/node"), is_dir: &is_dir },
            )
            .unwrap();
            let wiring = &derived.profile.services[0].secrets[0];
            proptest::prop_assert_eq!(
                &wiring.form,
                &Form::Url { template: "postgresql://daarion:{password}@dagi-postgres:5432/daarion_main".into() }
            );
            // What the profile must be, with no password in it: a password that happens to be a
            // piece of that text says nothing.
            let expected = NodeProfile {
                description: derived.profile.description.clone(),
                services: vec![ServiceWiring {
                    name: "memory-service".into(),
                    secrets: vec![wiring.clone()],
                    mounts: Vec::new(),
                }],
            };
            proptest::prop_assume!(!expected.to_toml().contains(&password));
            proptest::prop_assert_eq!(&derived.profile, &expected);
            proptest::prop_assert!(!derived.profile.to_toml().contains(&password));
        }
    }
}
