//! `Node`: the only handle a check receives, and everything it can do to a node — HTTP GETs,
//! login attempts that run no statement, container inspection and log reads, file reads. No
//! method writes; that is what makes every check of the catalogue safe to promote to `verify`.

use super::secrets::{PreviousError, SecretSet};
use super::target::Target;
use super::transport::{FileStat, SshOptions, SshSession, Tracked, Transport};
use super::Verdict;
use ::node::profile::{Form, SecretWiring, Source, WhenMissing};
use ::node::redact::Redactor;
use ::node::services::Service;
use bollard::query_parameters::{InspectContainerOptions, LogsOptionsBuilder};
use bollard::Docker;
use futures::StreamExt;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::OnceCell;

/// The client name of every connection this tool opens (NATS logs it; checks skip it).
pub const PROBE_NAME: &str = "rotation-verify";

/// How an HTTP GET authenticates.
#[derive(Clone, Copy, Debug)]
pub enum Auth<'a> {
    None,
    Bearer(&'a str),
    Header(&'static str, &'a str),
    /// HTTP basic auth: user, password.
    Basic(&'a str, &'a str),
}

/// A login attempt that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginError {
    /// The server answered and refused the credentials (what it said, never the secret).
    Rejected(String),
    /// Nothing answered at the address.
    Unreachable { address: String, detail: String },
    /// Anything else.
    Other(String),
}

impl LoginError {
    /// The verdict for a login that had to succeed.
    pub fn as_failure(&self, what: &str) -> Verdict {
        match self {
            LoginError::Rejected(why) => Verdict::fail(format!("{what} is rejected: {why}")),
            LoginError::Unreachable { address, detail } => Verdict::unreachable(address, detail),
            LoginError::Other(e) => Verdict::error(format!("{what}: {e}")),
        }
    }
}

/// One node as the checks see it: its target, its current and previous secrets, read-only
/// handles.
pub struct Node {
    target: Target,
    current: SecretSet,
    previous: Option<SecretSet>,
    redactor: Redactor,
    http: reqwest::Client,
    docker: OnceCell<Result<Docker, String>>,
    /// How its files and engine are reached.
    transport: Transport,
    /// Why the transport could not be opened: every check of the node is then unreachable.
    unreachable: Option<String>,
    /// PostgreSQL logins of the current run, by password: the checks holding the same
    /// credential (five services share `DB_PASSWORD`) ask the server once, on one new
    /// connection, as its answer is the same. Emptied when a run starts (`forget_logins`).
    pg_logins: std::sync::Mutex<HashMap<String, SharedLogin>>,
}

type SharedLogin = Arc<tokio::sync::OnceCell<Result<(), LoginError>>>;

impl Node {
    /// Reads the target's `.env` files (and `previous`, a backup tarball or directory) and
    /// registers every secret with a fresh redactor shared by all outputs.
    pub fn new(target: Target, previous: Option<SecretSet>, redactor: Redactor) -> Node {
        let current = SecretSet::read(&target.root, &env_files(&target));
        Self::with(target, current, previous, redactor, Transport::Local, None)
    }

    /// A node reached as its target says (`transport`): its `.env` files and, unless
    /// `previous` (a file here, `--previous`) is given, the target's `previous`, read through
    /// the transport. A node whose transport cannot be opened is returned with every check to
    /// come unreachable; a previous-secrets file that cannot be read is an error.
    pub async fn open(
        target: Target,
        previous: Option<&Path>,
        redactor: Redactor,
    ) -> Result<Node, PreviousError> {
        let Some(destination) = target.ssh() else {
            let previous = match previous.map(Path::to_path_buf).or(target.previous.clone()) {
                Some(p) => Some(SecretSet::previous(&p)?),
                None => None,
            };
            return Ok(Self::new(target, previous, redactor));
        };
        let options = SshOptions {
            identity: target.ssh_identity.clone(),
            known_hosts: target.ssh_known_hosts.clone(),
            timeout: Duration::from_millis(target.timeout_ms),
        };
        let session = match SshSession::open(destination.clone(), &options).await {
            Ok(s) => s,
            Err(why) => {
                let unreachable = Some(format!("{}: {why}", destination.display()));
                return Ok(Self::with(
                    target,
                    SecretSet::default(),
                    None,
                    redactor,
                    Transport::Local,
                    unreachable,
                ));
            }
        };
        let transport = Transport::Ssh(Box::new(session));
        let current = read_env_files(&transport, &target).await;
        let previous = match (previous, &target.previous) {
            (Some(here), _) => Some(SecretSet::previous(here)?),
            (None, Some(on_node)) => Some(previous_on_node(&transport, on_node).await?),
            (None, None) => None,
        };
        Ok(Self::with(
            target, current, previous, redactor, transport, None,
        ))
    }

    /// Reads the target's `.env` files again, as they are now, through the node's transport,
    /// and registers their values with the redactor: a watch's round sees the files a rotation
    /// has just written, and no value they now hold is ever printed. A node that could not be
    /// reached keeps what it had.
    pub async fn reread_env(&mut self) {
        if self.unreachable.is_some() {
            return;
        }
        let current = read_env_files(&self.transport, &self.target).await;
        current.register(&self.redactor, "");
        self.current = current;
    }

    fn with(
        target: Target,
        current: SecretSet,
        previous: Option<SecretSet>,
        redactor: Redactor,
        transport: Transport,
        unreachable: Option<String>,
    ) -> Node {
        current.register(&redactor, "");
        if let Some(p) = &previous {
            p.register(&redactor, "PREVIOUS_");
        }
        let connect = Duration::from_millis(target.timeout_ms.min(2000));
        let http = reqwest::Client::builder()
            .connect_timeout(connect)
            .timeout(Duration::from_millis(target.timeout_ms))
            .build()
            .expect("an HTTP client with timeouts");
        Node {
            target,
            current,
            previous,
            redactor,
            http,
            docker: OnceCell::new(),
            transport,
            unreachable,
            pg_logins: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Why the node could not be reached at all (its SSH connection failed), if it could not.
    pub fn unreachable(&self) -> Option<&str> {
        self.unreachable.as_deref()
    }

    /// `local`, or the SSH destination its files and engine are read through.
    pub fn transport(&self) -> String {
        self.target
            .ssh()
            .map_or_else(|| "local".to_string(), |d| d.display())
    }

    /// What `stat` says of a file of the node.
    pub async fn stat(&self, path: &Path) -> Result<FileStat, String> {
        self.transport.stat(path).await
    }

    /// The regular files directly in a directory of the node.
    pub async fn list_files(&self, dir: &Path) -> Result<Vec<(PathBuf, FileStat)>, String> {
        self.transport.list_files(dir).await
    }

    /// A file of the node, at most `limit` bytes.
    pub async fn read_file(&self, path: &Path, limit: u64) -> Result<Vec<u8>, String> {
        self.transport.read(path, limit).await
    }

    /// A repository's tracked files and their contents (up to 4 MiB each).
    pub async fn tracked(&self, repo: &Path) -> Result<Tracked, String> {
        self.transport.tracked(repo).await
    }

    /// Forgets the logins of an earlier run: a run asks the server afresh.
    pub(super) fn forget_logins(&self) {
        if let Ok(mut logins) = self.pg_logins.lock() {
            logins.clear();
        }
    }

    pub fn target(&self) -> &Target {
        &self.target
    }
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }
    pub fn current(&self) -> &SecretSet {
        &self.current
    }
    pub fn previous(&self) -> Option<&SecretSet> {
        self.previous.as_ref()
    }

    /// The `.env` path of `service` relative to the root, as the target names it.
    pub fn env_rel(&self, service: &str) -> Option<&Path> {
        if service == "postgres" {
            return self.target.postgres.env.as_deref();
        }
        self.target.services.get(service).map(|s| s.env.as_path())
    }

    /// `var` from `service`'s current `.env`.
    pub fn var(&self, service: &str, var: &str) -> Option<&str> {
        self.current.value(self.env_rel(service)?, var)
    }

    /// The failed verdict for `service`'s `.env` lacking what a check needs (`missing`, e.g.
    /// "has no DB_PASSWORD"): when the file could not be read or parsed, the verdict says
    /// that instead, with the file's own error (file and line, no value), so a malformed line
    /// is never reported as an absent variable.
    pub fn env_lacks(&self, service: &str, missing: &str) -> Verdict {
        let Some(rel) = self.env_rel(service) else {
            return Verdict::skip(format!("the target has no [services.{service}]"));
        };
        match self.current.unreadable.iter().find(|(p, _)| p == rel) {
            Some((_, why)) => Verdict::fail(format!("{why} (so none of its variables is read)")),
            None => Verdict::fail(format!("{} {missing}", rel.display())),
        }
    }

    /// `secret` (`DB_PASSWORD`) as `service` reads it now, by the target's node profile: from
    /// its variable in its `.env`, or interpolated from the project `.env`, and out of its URL
    /// where it sits in one. A variable that is missing fails, naming the fallback the
    /// service then runs on where it has one.
    pub fn secret(&self, service: &str, secret: &str) -> Result<String, Verdict> {
        self.secret_in(&self.current, service, secret)
            .map_err(Verdict::fail)
            .and_then(|v| v.ok_or_else(|| self.secret_missing(service, secret)))
    }

    /// `secret` as `service` read it before the rotation (from `previous`), if it is there.
    pub fn previous_secret(&self, service: &str, secret: &str) -> Option<String> {
        let previous = self.previous.as_ref()?;
        match self.secret_in(previous, service, secret) {
            Ok(Some(v)) => Some(v),
            // The backup may not hold every service's file: any that wires it the same way.
            _ => self.target.services.keys().find_map(|other| {
                let w = self.wiring(other, secret)?;
                let rel = self.env_rel(other)?;
                let raw = previous.value_anywhere(rel, &w.variable)?;
                w.decode(raw)
            }),
        }
    }

    /// `name` as `service` reads it now: one of the node's secrets where the profile wires it
    /// (`secret`), else the variable of that name in its `.env`.
    pub fn value(&self, service: &str, name: &str) -> Option<String> {
        if self.wiring(service, name).is_some() {
            return self.secret_in(&self.current, service, name).ok().flatten();
        }
        self.var(service, name).map(str::to_string)
    }

    /// `name` as `service` read it before the rotation (see `value`).
    pub fn previous_value(&self, service: &str, name: &str) -> Option<String> {
        if self.wiring(service, name).is_some() {
            return self.previous_secret(service, name);
        }
        self.previous_var(service, name).map(str::to_string)
    }

    /// How `service` reads `secret` by the target's profile.
    pub fn wiring(&self, service: &str, secret: &str) -> Option<SecretWiring> {
        self.target
            .profile
            .wiring_of(Service::parse(service)?, secret)
    }

    /// The secret in `set`: `Ok(None)` where its variable is missing, `Err` where the value
    /// holds none the service can read (a URL without a password).
    fn secret_in(
        &self,
        set: &SecretSet,
        service: &str,
        secret: &str,
    ) -> Result<Option<String>, String> {
        let Some(w) = self.wiring(service, secret) else {
            return Ok(None);
        };
        let (raw, rel) = match &w.source {
            Source::EnvFile { .. } | Source::ComposeFile => {
                let Some(rel) = self.env_rel(service) else {
                    return Ok(None);
                };
                (set.value(rel, &w.variable), rel.to_path_buf())
            }
            Source::Interpolated { variable } => (
                set.value(Path::new(PROJECT_ENV), variable),
                PathBuf::from(PROJECT_ENV),
            ),
        };
        let Some(raw) = raw else { return Ok(None) };
        let as_read = match (&w.source, &w.form) {
            // Compose puts the value into the URL as it is, not encoded.
            (Source::Interpolated { .. }, Form::Url { template }) => {
                template.replace("{password}", raw)
            }
            _ => raw.to_string(),
        };
        w.decode(&as_read).map(Some).ok_or_else(|| {
            format!(
                "{}: `{}` of {service} holds no password it can read (not a URL with user:password@host)",
                rel.display(),
                w.variable
            )
        })
    }

    /// The verdict for `service` lacking `secret`'s variable: the fallback it runs on where
    /// the profile names one.
    fn secret_missing(&self, service: &str, secret: &str) -> Verdict {
        let Some(w) = self.wiring(service, secret) else {
            return Verdict::skip(format!("{service} reads no {secret} in the node profile"));
        };
        let source = match &w.source {
            Source::Interpolated { variable } => format!("{PROJECT_ENV} has no {variable}"),
            _ => format!("has no {}", w.variable),
        };
        let verdict = match &w.source {
            Source::Interpolated { .. } => Verdict::fail(source),
            _ => self.env_lacks(service, &source),
        };
        match &w.when_missing {
            WhenMissing::FallsBack { to } => Verdict::fail(format!(
                "{}: {service} runs on its fallback, {to}, not on the node's {secret}",
                verdict.evidence
            )),
            WhenMissing::Fails => verdict,
        }
    }

    /// `var` as it was before the rotation, for `service`.
    pub fn previous_var(&self, service: &str, var: &str) -> Option<&str> {
        self.previous
            .as_ref()?
            .value_anywhere(self.env_rel(service)?, var)
    }

    /// `GET url`: the status and the body, or the unreachable verdict.
    pub async fn get(&self, url: &str, auth: Auth<'_>) -> Result<(u16, String), Verdict> {
        self.send(self.http.get(url), url, auth).await
    }

    /// `POST url` with a JSON `body` that changes nothing (a read-only statement): the status
    /// and the body, or the unreachable verdict.
    pub async fn post_read_only(
        &self,
        url: &str,
        auth: Auth<'_>,
        body: &serde_json::Value,
    ) -> Result<(u16, String), Verdict> {
        self.send(self.http.post(url).json(body), url, auth).await
    }

    async fn send(
        &self,
        mut req: reqwest::RequestBuilder,
        url: &str,
        auth: Auth<'_>,
    ) -> Result<(u16, String), Verdict> {
        match auth {
            Auth::None => {}
            Auth::Bearer(token) => req = req.bearer_auth(token),
            Auth::Header(name, value) => req = req.header(name, value),
            Auth::Basic(user, password) => req = req.basic_auth(user, Some(password)),
        }
        match req.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                Ok((status, r.text().await.unwrap_or_default()))
            }
            Err(e) => Err(Verdict::unreachable(
                &address_of(url),
                &e.without_url().to_string(),
            )),
        }
    }

    /// A new TCP connection to PostgreSQL as the target's user, with `password`. It runs no
    /// statement and is closed at once. Within a run, one attempt per password.
    pub async fn pg_login(&self, password: &str) -> Result<(), LoginError> {
        self.pg_login_as(&self.target.postgres.user, password).await
    }

    /// `pg_login` as `user` (a service's own `POSTGRES_USER`). Within a run, one attempt per
    /// user and password.
    pub async fn pg_login_as(&self, user: &str, password: &str) -> Result<(), LoginError> {
        let shared = self
            .pg_logins
            .lock()
            .expect("the login memo")
            .entry(format!("{user}\0{password}"))
            .or_default()
            .clone();
        shared
            .get_or_init(|| self.pg_login_once(user, password))
            .await
            .clone()
    }

    async fn pg_login_once(&self, user: &str, password: &str) -> Result<(), LoginError> {
        let pg = &self.target.postgres;
        let mut config = tokio_postgres::Config::new();
        config
            .host(&pg.host)
            .port(pg.port)
            .user(user)
            .dbname(&pg.database)
            .password(password)
            .application_name(PROBE_NAME)
            .connect_timeout(Duration::from_millis(self.target.timeout_ms.min(3000)));
        match config.connect(tokio_postgres::NoTls).await {
            Ok((client, connection)) => {
                drop(client);
                let _ = connection.await;
                Ok(())
            }
            Err(e) => Err(match e.as_db_error() {
                Some(db) if matches!(db.code().code(), "28P01" | "28000") => {
                    LoginError::Rejected(format!("{} {}", db.code().code(), db.message()))
                }
                Some(db) => LoginError::Other(format!("{} {}", db.code().code(), db.message())),
                None => LoginError::Unreachable {
                    address: format!("{}:{}", pg.host, pg.port),
                    detail: e.to_string(),
                },
            }),
        }
    }

    /// A new NATS connection as `user` with `password`; closed at once, nothing published.
    pub async fn nats_login(&self, user: &str, password: &str) -> Result<(), LoginError> {
        let url = &self.target.nats.url;
        let options =
            async_nats::ConnectOptions::with_user_and_password(user.into(), password.into())
                .connection_timeout(Duration::from_millis(self.target.timeout_ms.min(3000)))
                .name(PROBE_NAME);
        match options.connect(url.as_str()).await {
            Ok(client) => {
                drop(client);
                Ok(())
            }
            Err(e) => Err(match e.kind() {
                async_nats::ConnectErrorKind::AuthorizationViolation
                | async_nats::ConnectErrorKind::Authentication => {
                    LoginError::Rejected(format!("authorization violation for user `{user}`"))
                }
                async_nats::ConnectErrorKind::Io
                | async_nats::ConnectErrorKind::TimedOut
                | async_nats::ConnectErrorKind::Dns => LoginError::Unreachable {
                    address: address_of(url),
                    detail: e.to_string(),
                },
                _ => LoginError::Other(e.to_string()),
            }),
        }
    }

    async fn docker(&self) -> Result<&Docker, Verdict> {
        let docker = self.docker.get_or_init(|| self.transport.docker()).await;
        docker.as_ref().map_err(|e| Verdict::error(e.clone()))
    }

    /// The environment a container was created with (`docker inspect`).
    pub async fn container_env(&self, container: &str) -> Result<Vec<(String, String)>, Verdict> {
        let docker = self.docker().await?;
        let inspect = docker
            .inspect_container(container, None::<InspectContainerOptions>)
            .await
            .map_err(|e| Verdict::error(format!("cannot inspect container {container}: {e}")))?;
        Ok(crate::engine::env_of(inspect))
    }

    /// When a container's process last started (`docker inspect`'s `State.StartedAt`).
    pub async fn container_started_at(&self, container: &str) -> Result<SystemTime, Verdict> {
        let docker = self.docker().await?;
        let inspect = docker
            .inspect_container(container, None::<InspectContainerOptions>)
            .await
            .map_err(|e| Verdict::error(format!("cannot inspect container {container}: {e}")))?;
        let started = inspect.state.and_then(|s| s.started_at).unwrap_or_default();
        humantime::parse_rfc3339(&started)
            .map_err(|e| Verdict::error(format!("{container} has no start time ({e})")))
    }

    /// A container's log lines (stdout and stderr) since `since`.
    pub async fn container_logs(
        &self,
        container: &str,
        since: SystemTime,
    ) -> Result<String, Verdict> {
        let docker = self.docker().await?;
        let since = since
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i32)
            .unwrap_or(0);
        let mut stream = docker.logs(
            container,
            Some(
                LogsOptionsBuilder::new()
                    .stdout(true)
                    .stderr(true)
                    .since(since)
                    .build(),
            ),
        );
        let mut out = String::new();
        while let Some(item) = stream.next().await {
            match item {
                Ok(chunk) => out.push_str(&String::from_utf8_lossy(&chunk.into_bytes())),
                Err(e) => {
                    return Err(Verdict::error(format!(
                        "cannot read the logs of {container}: {e}"
                    )))
                }
            }
        }
        Ok(out)
    }
}

/// The largest `.env` file read over SSH.
const ENV_FILE_LIMIT: u64 = 1 << 20;

/// The target's `.env` files as `transport` reads them now.
async fn read_env_files(transport: &Transport, target: &Target) -> SecretSet {
    let mut files = Vec::new();
    for rel in env_files(target) {
        let read = transport
            .read(&target.root.join(&rel), ENV_FILE_LIMIT)
            .await;
        files.push((rel, read));
    }
    SecretSet::from_read(files)
}

/// The `.env` files of a target, relative to its root: each service's, and the project's
/// `.env` where the node profile has Compose interpolate a secret from it.
fn env_files(target: &Target) -> Vec<PathBuf> {
    let interpolates = Service::ALL.into_iter().any(|s| {
        target
            .profile
            .wiring(s)
            .iter()
            .any(|w| matches!(w.source, Source::Interpolated { .. }))
    });
    target
        .services
        .values()
        .map(|s| s.env.clone())
        .chain(target.postgres.env.iter().cloned())
        .chain(interpolates.then(|| PathBuf::from(PROJECT_ENV)))
        .collect()
}

/// The project's `.env` beside the compose file, relative to the root.
pub const PROJECT_ENV: &str = ".env";

/// The target's previous secrets as they are on the node: a backup file, or a directory laid
/// out like the root.
async fn previous_on_node(transport: &Transport, path: &Path) -> Result<SecretSet, PreviousError> {
    let name = path.display().to_string();
    let err = |reason: String| PreviousError {
        path: name.clone(),
        reason,
    };
    let stat = transport.stat(path).await.map_err(err)?;
    if stat.is_dir {
        let archive = transport.env_files_of_dir(path).await.map_err(err)?;
        return SecretSet::previous_from_dir_archive(&name, &archive);
    }
    let limit = super::secrets::PREVIOUS_LIMITS.total_bytes;
    let bytes = transport.read(path, limit).await.map_err(err)?;
    let passphrase = std::env::var("BACKUP_PASSPHRASE").ok();
    SecretSet::previous_from_backup(&name, &bytes, passphrase.as_deref())
}

/// `host:port` of a URL, for "unreachable" messages: never its user or password, and never
/// its path (a Telegram URL holds the token there).
pub fn address_of(url: &str) -> String {
    ::node::redact::address_of_url(url)
}

#[cfg(test)]
mod started_at_tests {
    #[test]
    fn dockers_nanosecond_start_times_parse_to_the_nanosecond() {
        let t = humantime::parse_rfc3339("2026-12-01T23:26:19.123456789Z").unwrap();
        let ns = t
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        assert_eq!(ns, 123_456_789);
    }
}

#[cfg(test)]
mod reread_tests {
    use super::*;

    /// A watch's round reads the `.env` a rotation has just written: the new value is the
    /// node's current one, and it is redacted from then on.
    #[tokio::test]
    async fn a_reread_sees_the_value_written_since_the_node_was_opened_and_redacts_it() {
        let dir = tempfile::tempdir().unwrap();
        let example =
            std::fs::read_to_string(runbook::workspace_path("fixtures/targets/node1.toml"))
                .unwrap()
                .replace("/opt/microdao-daarion", &dir.path().display().to_string());
        let path = dir.path().join("node1.toml");
        std::fs::write(&path, example).unwrap();
        let env = dir.path().join("services/router/.env");
        std::fs::create_dir_all(env.parent().unwrap()).unwrap();
        std::fs::write(&env, "DEEPSEEK_API_KEY=before-the-rotation-1\n").unwrap();
        let redactor = Redactor::new();
        let mut node = Node::new(Target::load(&path).unwrap(), None, redactor.clone());
        assert_eq!(
            node.var("router", "DEEPSEEK_API_KEY"),
            Some("before-the-rotation-1")
        );
        std::fs::write(&env, "DEEPSEEK_API_KEY=after-the-rotation-2\n").unwrap();
        node.reread_env().await;
        assert_eq!(
            node.var("router", "DEEPSEEK_API_KEY"),
            Some("after-the-rotation-2")
        );
        assert!(!redactor
            .redact("key after-the-rotation-2")
            .contains("after-the-rotation-2"));
    }
}
