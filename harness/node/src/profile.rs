//! The node's secret wiring as data (a node profile): per service and per secret, the variable
//! the service reads it from, its form (plain, or inside a URL), its source (the service's
//! `env_file`, Compose interpolation from the project `.env`, the compose file itself), what
//! the service does when it is missing; per mounted config, whether a file or its directory is
//! mounted. [`derive`] reads one from Compose's resolved config of a real node, naming what it
//! cannot map; nothing here ever holds or prints a secret's value.

use crate::services::Service;
use crate::services::{NATS_USERS, SECRET_NAMES};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use yaml_rust2::Yaml;

/// The profile of the replica as shipped (`fixtures/profiles/default.toml`).
pub const DEFAULT_PROFILE: &str = "fixtures/profiles/default.toml";

/// A node's secret wiring (`Default`: the replica's own, `replica_default`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeProfile {
    /// One line saying which wiring this is.
    pub description: String,
    #[serde(rename = "service", default)]
    pub services: Vec<ServiceWiring>,
}

impl Default for NodeProfile {
    fn default() -> Self {
        NodeProfile::replica_default()
    }
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
    /// The node's secret (`DB_PASSWORD`, `NATS_PASSWORD_WORKER`: `services::SECRET_NAMES`).
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

/// The profiles this tool ships: name, text. `default` is the replica's wiring.
pub const SHIPPED: &[(&str, &str)] = &[
    (
        "default",
        include_str!("../../../fixtures/profiles/default.toml"),
    ),
    (
        "database-url",
        include_str!("../../../fixtures/profiles/database-url.toml"),
    ),
    (
        "interpolated",
        include_str!("../../../fixtures/profiles/interpolated.toml"),
    ),
];

impl NodeProfile {
    /// Reads a profile from its TOML file (a regular file of at most 1 MiB).
    pub fn load(path: &Path) -> Result<NodeProfile, ProfileError> {
        let text = user_io::input::read_text(path, 1 << 20).map_err(|e| ProfileError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        NodeProfile::parse(&text, &path.display().to_string())
    }

    /// A shipped profile by its name (`default`, `database-url`, `interpolated`), or one read
    /// from a file.
    pub fn named_or_file(arg: &str) -> Result<NodeProfile, ProfileError> {
        match SHIPPED.iter().find(|(name, _)| *name == arg) {
            Some((name, text)) => NodeProfile::parse(text, name),
            None if std::fs::symlink_metadata(arg).is_ok() || arg.contains('/') => {
                NodeProfile::load(Path::new(arg))
            }
            None => Err(ProfileError::Read {
                path: arg.to_string(),
                reason: format!(
                    "no such file, nor a shipped profile ({})",
                    SHIPPED
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        }
    }

    /// The replica's own wiring (`fixtures/profiles/default.toml`).
    pub fn replica_default() -> NodeProfile {
        NodeProfile::parse(SHIPPED[0].1, SHIPPED[0].0).expect("the default profile reads")
    }

    /// Reads a profile from TOML text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<NodeProfile, ProfileError> {
        let err = |reason: String| ProfileError::Read {
            path: origin.to_string(),
            reason,
        };
        let profile: NodeProfile = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
                .unwrap_or(0);
            err(format!(
                "line {line}: {}",
                user_io::input::describe_parse_message(e.message())
            ))
        })?;
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
                if let Form::Url { template } = &w.form {
                    if template.matches("{password}").count() != 1 {
                        return Err(err(format!(
                            "service `{}`: the URL template of `{}` must hold `{{password}}` once",
                            s.name, w.variable
                        )));
                    }
                }
            }
        }
        Ok(profile)
    }

    /// The profile as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a profile serialises")
    }

    /// What this profile declares for `service`, if anything.
    fn declared(&self, service: Service) -> Option<&ServiceWiring> {
        self.services.iter().find(|s| s.name == service.key())
    }

    /// How `service` reads each of its secrets: as this profile says, and where it says
    /// nothing, as the replica's default profile does.
    pub fn wiring(&self, service: Service) -> Vec<SecretWiring> {
        let own = |p: &NodeProfile| {
            p.declared(service)
                .map(|s| s.secrets.clone())
                .unwrap_or_default()
        };
        let declared = own(self);
        let mut out: Vec<SecretWiring> = own(&NodeProfile::replica_default())
            .into_iter()
            .map(|d| {
                declared
                    .iter()
                    .find(|w| w.secret == d.secret)
                    .cloned()
                    .unwrap_or(d)
            })
            .collect();
        for w in declared {
            if !out.iter().any(|o| o.secret == w.secret) {
                out.push(w);
            }
        }
        out
    }

    /// How `service` reads `secret`, if it reads it.
    pub fn wiring_of(&self, service: Service, secret: &str) -> Option<SecretWiring> {
        self.wiring(service)
            .into_iter()
            .find(|w| w.secret == secret)
    }

    /// `service`'s mounts: as this profile says, else as the default's.
    pub fn mounts(&self, service: Service) -> Vec<Mount> {
        match self.declared(service).filter(|s| !s.mounts.is_empty()) {
            Some(s) => s.mounts.clone(),
            None => NodeProfile::replica_default()
                .declared(service)
                .map(|s| s.mounts.clone())
                .unwrap_or_default(),
        }
    }

    /// Whether this is the replica's default wiring (every service as `default.toml`).
    pub fn is_replica_default(&self) -> bool {
        let default = NodeProfile::replica_default();
        Service::ALL
            .into_iter()
            .all(|s| self.wiring(s) == default.wiring(s) && self.mounts(s) == default.mounts(s))
    }

    /// What the replica cannot run of this profile, one sentence each: the replica's services
    /// read a URL only for PostgreSQL, fall back only where the node's memory service does,
    /// and each service's `env_file` is its own.
    pub fn replica_limits(&self) -> Vec<String> {
        let mut out = Vec::new();
        for service in Service::ALL {
            for w in self.wiring(service) {
                let who = format!("{}: `{}`", service.key(), w.variable);
                if let Form::Url { template } = &w.form {
                    if w.secret != "DB_PASSWORD" || !template.starts_with("postgres") {
                        out.push(format!(
                            "{who}: the replica's services read only a PostgreSQL URL (DB_PASSWORD)"
                        ));
                    }
                }
                if let WhenMissing::FallsBack { .. } = w.when_missing {
                    if !(service == Service::Memory && w.secret == "DB_PASSWORD") {
                        out.push(format!(
                            "{who}: only the memory service falls back (without its database URL)"
                        ));
                    }
                }
                if w.source == Source::ComposeFile {
                    out.push(format!(
                        "{who}: the replica writes no secret into its compose file (it is tracked in git)"
                    ));
                }
                if let Source::EnvFile { path } = &w.source {
                    if service.env_file() != Some(path.as_str()) {
                        out.push(format!(
                            "{who}: the replica reads a service's secrets only from its own env_file ({})",
                            service.env_file().unwrap_or("none")
                        ));
                    }
                }
                if service == Service::Postgres
                    && (w.variable != "POSTGRES_PASSWORD" || w.form != Form::Plain)
                {
                    out.push(format!(
                        "{who}: PostgreSQL reads its password as POSTGRES_PASSWORD, plain"
                    ));
                }
                if service.env_file().is_none() {
                    out.push(format!(
                        "{who}: the replica's {} reads no secret from its environment",
                        service.key()
                    ));
                }
            }
            for m in self.mounts(service) {
                let known = service == Service::Nats
                    && matches!(
                        (m.container_path.as_str(), m.kind),
                        ("/etc/nats", MountKind::Directory)
                            | ("/etc/nats/nats-server.conf", MountKind::File)
                    );
                if !known {
                    out.push(format!(
                        "{}: the replica mounts only NATS's config, as the directory /etc/nats or the file /etc/nats/nats-server.conf",
                        service.key()
                    ));
                }
            }
        }
        out
    }

    /// How the replica's binary is told `service`'s wiring where it differs from the default
    /// (the options `wiring::Wiring::from_args` reads; none for the default).
    pub fn service_options(&self, service: Service) -> Vec<String> {
        let default = NodeProfile::replica_default();
        let mut wiring = wiring::Wiring::default();
        for w in self.wiring(service) {
            let Some(d) = default.wiring_of(service, &w.secret) else {
                continue;
            };
            wiring.secrets.push(wiring::WiredSecret {
                name: d.variable.clone(),
                variable: w.variable.clone(),
                form: match w.form {
                    Form::Plain => wiring::WiredForm::Plain,
                    Form::Url { .. } => wiring::WiredForm::DatabaseUrl,
                },
                falls_back: matches!(w.when_missing, WhenMissing::FallsBack { .. }),
            });
        }
        wiring.to_args()
    }
}

pub use runbook::findings::MissedWiring;

impl runbook::findings::NodeWiring for NodeProfile {
    fn missed_by_edit(&self, code: &str) -> Vec<MissedWiring> {
        NodeProfile::missed_by_edit(self, code)
    }
    fn description(&self) -> &str {
        &self.description
    }
}

impl NodeProfile {
    /// The secrets shell `code` edits in `.env` files (`sed`/`awk`/`perl` on a `VAR=` line of a
    /// secret's usual variable) while this profile has some service read it from a variable
    /// or file the code never names. Empty for the default wiring.
    pub fn missed_by_edit(&self, code: &str) -> Vec<MissedWiring> {
        if !["sed ", "awk ", "perl "].iter().any(|t| code.contains(t)) {
            return Vec::new();
        }
        let default = NodeProfile::replica_default();
        let mut out: Vec<MissedWiring> = Vec::new();
        for secret in SECRET_NAMES {
            for service in Service::ALL {
                // The edit concerns a service only when it writes the variable that service
                // reads the secret from by default (`POSTGRES_PASSWORD=` is PostgreSQL's).
                let Some(d) = default.wiring_of(service, secret) else {
                    continue;
                };
                if !names_token(code, &format!("{}=", d.variable)) {
                    continue;
                }
                let Some(w) = self.wiring_of(service, secret) else {
                    continue;
                };
                if w == d {
                    continue;
                }
                let place = match &w.source {
                    Source::EnvFile { path } if !names_token(code, &w.variable) => {
                        format!("`{}` in {path}", w.variable)
                    }
                    Source::Interpolated { variable } if !edits_project_env(code) => {
                        format!("`{variable}` in the project .env (Compose interpolates it)")
                    }
                    _ => continue,
                };
                match out
                    .iter_mut()
                    .find(|m| m.secret == *secret && m.edited == d.variable)
                {
                    Some(m) if !m.places.contains(&place) => m.places.push(place),
                    Some(_) => {}
                    None => out.push(MissedWiring {
                        secret: secret.to_string(),
                        edited: d.variable.clone(),
                        places: vec![place],
                    }),
                }
            }
        }
        out
    }
}

/// Whether `text` holds `token` not preceded by a letter, digit or `_` (`DB_PASSWORD=` is not
/// in `NEW_DB_PASSWORD=`).
fn names_token(text: &str, token: &str) -> bool {
    text.match_indices(token).any(|(at, _)| {
        !text[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// Whether shell `code` names the project's `.env` (`.env`, `./.env`, `-name ".env"`), not
/// only a service's (`services/router/.env`).
fn edits_project_env(code: &str) -> bool {
    code.match_indices(".env").any(|(at, _)| {
        let before = &code[..at];
        let after = &code[at + 4..];
        let ends = after
            .chars()
            .next()
            .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'));
        let starts = before.ends_with("./")
            || before
                .chars()
                .next_back()
                .is_none_or(|c| c.is_whitespace() || c == '"' || c == '\'' || c == '=');
        starts && ends
    })
}

impl SecretWiring {
    /// The variable's value holding `secret` (in its URL, percent-encoded), as written into
    /// an env file or the compose file.
    pub fn render(&self, secret: &str) -> String {
        match &self.form {
            Form::Plain => secret.to_string(),
            Form::Url { template } => {
                template.replace("{password}", &crate::redact::url_encoded(secret))
            }
        }
    }

    /// The secret a variable's value holds, read as the service reads it (a URL's password
    /// percent-decoded, up to its first `@`); `None` where the URL has none.
    pub fn decode(&self, value: &str) -> Option<String> {
        match &self.form {
            Form::Plain => Some(value.to_string()),
            Form::Url { .. } => wiring::DbUrl::parse(value).map(|u| u.password),
        }
    }

    /// The value Compose gives this variable on `up` when it interpolates it from the project
    /// `.env` (`project` looks a variable up there); `None` for any other source.
    pub fn interpolated_value(&self, project: impl Fn(&str) -> Option<String>) -> Option<String> {
        match self.source {
            Source::Interpolated { .. } => Some(interpolate(&self.compose_value("")?, project)),
            _ => None,
        }
    }

    /// What the compose file's `environment:` says for this variable holding `secret`, where
    /// it says anything: `${VAR}` in the secret's place when interpolated (Compose puts the
    /// value there as it is, not encoded), the value itself when written there.
    pub fn compose_value(&self, secret: &str) -> Option<String> {
        match &self.source {
            Source::EnvFile { .. } => None,
            Source::ComposeFile => Some(self.render(secret).replace('$', "$$")),
            Source::Interpolated { variable } => {
                let reference = format!("${{{variable}}}");
                Some(match &self.form {
                    Form::Plain => reference,
                    Form::Url { template } => template
                        .replace('$', "$$")
                        .replace("{password}", &reference),
                })
            }
        }
    }
}

/// `text` with Compose's interpolation applied: `$$` is `$`, `${VAR}` and `$VAR` the value
/// `lookup` gives (empty when none), `${VAR:-default}` / `${VAR-default}` the default when
/// the variable is unset (`:-` also when empty).
pub fn interpolate(text: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('{') {
            let Some(end) = inner.find('}') else {
                out.push_str(&rest[at..]);
                return out;
            };
            let body = &inner[..end];
            let name_end = body
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(body.len());
            let (name, modifier) = body.split_at(name_end);
            let value = lookup(name);
            out.push_str(
                &match (modifier.strip_prefix(":-"), modifier.strip_prefix('-')) {
                    (Some(default), _) => value.filter(|v| !v.is_empty()).unwrap_or(default.into()),
                    (None, Some(default)) => value.unwrap_or(default.into()),
                    _ => value.unwrap_or_default(),
                },
            );
            rest = &inner[end + 1..];
        } else {
            let name_end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            if name_end == 0 {
                out.push('$');
            } else {
                out.push_str(&lookup(&after[..name_end]).unwrap_or_default());
            }
            rest = &after[name_end..];
        }
    }
    out.push_str(rest);
    out
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
        let path = runbook::workspace_path(DEFAULT_PROFILE);
        let profile = NodeProfile::load(&path).unwrap();
        assert_eq!(
            toml::from_str::<NodeProfile>(&profile.to_toml()).unwrap(),
            profile
        );
        let nats = profile.services.iter().find(|s| s.name == "nats").unwrap();
        assert_eq!(nats.mounts[0].kind, MountKind::Directory);
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

    #[test]
    fn a_profile_the_replica_cannot_run_is_refused_naming_each_reason() {
        let text = r#"
description = "x"
[[service]]
name = "router"
[[service.secret]]
secret = "NEO4J_PASSWORD"
variable = "NEO4J_URL"
form = { kind = "url", template = "neo4j://neo4j:{password}@graph:7687" }
source = { kind = "env-file", path = "services/router/.env" }
when_missing = { kind = "falls-back", to = "no graph" }
"#;
        let profile = NodeProfile::parse(text, "x.toml").unwrap();
        assert_eq!(
            profile.replica_limits(),
            [
                "router: `NEO4J_URL`: the replica's services read only a PostgreSQL URL (DB_PASSWORD)",
                "router: `NEO4J_URL`: only the memory service falls back (without its database URL)",
            ]
        );
        let bad = text.replace("{password}", "secret");
        assert_eq!(
            NodeProfile::parse(&bad, "x.toml").unwrap_err().to_string(),
            "x.toml: service `router`: the URL template of `NEO4J_URL` must hold `{password}` once"
        );
    }

    #[test]
    fn compose_interpolation_reads_braces_defaults_and_escaped_dollars() {
        let vars = |name: &str| match name {
            "A" => Some("a".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        assert_eq!(interpolate("${A}", vars), "a");
        assert_eq!(interpolate("x:$A@y", vars), "x:a@y");
        assert_eq!(interpolate("$${A}", vars), "${A}");
        assert_eq!(
            interpolate("${B:-d}|${EMPTY:-d}|${EMPTY-d}|${B-d}|${B}", vars),
            "d|d||d|"
        );
        assert_eq!(interpolate("cost $5", vars), "cost ");
        assert_eq!(interpolate("a $ b", vars), "a $ b");
    }

    #[test]
    fn a_password_with_url_reserved_characters_reads_back_only_when_encoded() {
        let wiring = SecretWiring {
            secret: "DB_PASSWORD".into(),
            variable: "DATABASE_URL".into(),
            form: Form::Url {
                template: "postgresql://daarion:{password}@dagi-postgres:5432/daarion_main".into(),
            },
            source: Source::EnvFile {
                path: "services/memory-service/.env".into(),
            },
            when_missing: WhenMissing::Fails,
        };
        let password = "p@ss/w#rd%41";
        assert_eq!(
            wiring.render(password),
            "postgresql://daarion:p%40ss%2Fw%23rd%2541@dagi-postgres:5432/daarion_main"
        );
        assert_eq!(
            wiring.decode(&wiring.render(password)).as_deref(),
            Some(password)
        );
        let raw = "postgresql://daarion:p@ss/w#rd%41@dagi-postgres:5432/daarion_main";
        // As SQLAlchemy reads it: the password ends at the first `@`, the host is `ss`.
        assert_eq!(wiring.decode(raw).as_deref(), Some("p"));
        let url = wiring::DbUrl::parse(raw).unwrap();
        assert_eq!((url.host.as_str(), url.port), ("ss", 5432));
    }

    proptest::proptest! {
        #[test]
        fn any_password_percent_encoded_in_a_url_reads_back_whole(password in "\\PC{1,40}") {
            let wiring = SecretWiring {
                secret: "DB_PASSWORD".into(),
                variable: "DATABASE_URL".into(),
                form: Form::Url {
                    template: "postgresql+psycopg://daarion:{password}@db:5432/main".into(),
                },
                source: Source::Interpolated { variable: "X".into() },
                when_missing: WhenMissing::Fails,
            };
            let url = wiring.render(&password);
            proptest::prop_assert_eq!(wiring.decode(&url), Some(password.clone()));
            let redactor = crate::redact::Redactor::new();
            redactor.add("DB_PASSWORD", &password);
            proptest::prop_assert!(redactor.find_leak(&url).is_some());
        }
    }

    #[test]
    fn an_edit_of_db_password_lines_misses_every_database_url_but_not_postgres_own_variable() {
        let url = NodeProfile::named_or_file("database-url").unwrap();
        let sed = r#"find /opt/microdao-daarion -name ".env" -exec sed -i 's/DB_PASSWORD=.*/DB_PASSWORD=NewPassword123!/g' {} \;"#;
        assert_eq!(
            url.missed_by_edit(sed),
            [MissedWiring {
                secret: "DB_PASSWORD".into(),
                edited: "DB_PASSWORD".into(),
                places: [
                    "services/router/.env",
                    "services/memory-service/.env",
                    "gateway-bot/.env",
                    "services/crewai-nats-worker/.env",
                    "services/parser-pipeline/.env"
                ]
                .map(|p| format!("`DATABASE_URL` in {p}"))
                .to_vec(),
            }]
        );
        // PostgreSQL's own variable is not a client's: editing it misses no URL.
        let postgres = "awk '/^POSTGRES_PASSWORD=/ { print \"POSTGRES_PASSWORD=\" ENVIRON[\"NEW_DB_PASSWORD\"]; next } { print }' services/postgres/.env";
        assert_eq!(url.missed_by_edit(postgres), []);
        // An edit naming DATABASE_URL too misses nothing; the default wiring never misses.
        assert_eq!(url.missed_by_edit(&format!("{sed}\n/^DATABASE_URL=/")), []);
        assert_eq!(NodeProfile::replica_default().missed_by_edit(sed), []);
        // Interpolated from the project `.env`: an edit of the services' files alone misses it.
        let interpolated = NodeProfile::named_or_file("interpolated").unwrap();
        assert_eq!(
            interpolated.missed_by_edit(postgres)[0].places,
            ["`DB_PASSWORD` in the project .env (Compose interpolates it)"]
        );
        assert_eq!(
            interpolated.missed_by_edit(&format!(
                "{postgres}\nfor f in services/*/.env .env; do :; done"
            )),
            []
        );
    }
}
