//! Typed readiness waits with deadlines: each service is probed the way its clients would
//! reach it, never by a bare sleep.

use std::time::{Duration, Instant};

use futures::future::BoxFuture;

use crate::error::{HarnessError, Result};
use crate::redact::Redactor;
use crate::services::{Readiness, Service};

/// How often a probe is repeated while waiting.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Where a running replica's services answer from the host: a harness `Stack`, or the same
/// node started by `docker-compose` from its generated file (`cargo xtask bench up`).
pub trait Endpoints: Sync {
    /// The host port (on 127.0.0.1) that `container_port` of `service` is published on.
    fn host_port(&self, service: Service, container_port: u16) -> Option<u16>;
    /// The password PostgreSQL was started with (from its `.env`).
    fn postgres_password(&self) -> String;
    /// Hides the node's secrets in what a probe reports.
    fn redactor(&self) -> &Redactor;
    /// Why `service` will not become ready whatever the wait (its container exited), if the
    /// node can tell; `None` when it is running or the node cannot see its containers.
    fn exited(&self, _service: Service) -> BoxFuture<'_, Option<String>> {
        Box::pin(async { None })
    }
    /// The last `tail` lines `service` logged (redacted), for a wait that failed.
    fn last_logs(&self, _service: Service, _tail: usize) -> BoxFuture<'_, String> {
        Box::pin(async { "(this node's logs are not reachable from the harness)".to_string() })
    }
}

/// A tokio-postgres config reaching the node's database on `port` of the host, with `password`.
pub fn pg_config_at(port: u16, password: &str) -> tokio_postgres::Config {
    let mut c = tokio_postgres::Config::new();
    c.host(crate::docker::engine_host().trim_matches(['[', ']']))
        .port(port)
        .user("daarion")
        .dbname("daarion_main")
        .password(password)
        .connect_timeout(Duration::from_secs(3));
    c
}

/// Probes `service` once; `Err` says why it is not ready.
pub async fn probe(
    node: &dyn Endpoints,
    service: Service,
    http: &reqwest::Client,
) -> Result<(), String> {
    match service.readiness() {
        Readiness::Postgres => probe_postgres(node).await,
        r => {
            let url = readiness_url(&r, node, service).expect("http readiness has a url");
            match http.get(&url).send().await {
                Ok(resp) if resp.status().is_success() => Ok(()),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let body = resp.text().await.unwrap_or_default();
                    Err(format!(
                        "readiness answered {status}: {}",
                        node.redactor().redact(&body)
                    ))
                }
                Err(e) => Err(format!("readiness probe failed: {}", e.without_url())),
            }
        }
    }
}

/// Probes every service of `node` until all answer or `deadline` passes; `Err` names a service
/// that did not and why. For a node the harness did not start (Compose from its generated file).
pub async fn until_all_ready(node: &dyn Endpoints, deadline: Instant) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .expect("http client");
    let mut waiting: Vec<Service> = Service::ALL.to_vec();
    loop {
        let mut still = Vec::new();
        let mut last = String::new();
        for service in waiting {
            if let Err(why) = probe(node, service, &http).await {
                last = format!("{}: {why}", service.production_name());
                still.push(service);
            }
        }
        waiting = still;
        if waiting.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(last);
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// PostgreSQL is ready when it answers a TCP connection with an authentication verdict: a
/// connection with the node's password, or a password rejection (the server is up; which
/// password is live is a check, not readiness).
async fn probe_postgres(node: &dyn Endpoints) -> Result<(), String> {
    let port = node.host_port(Service::Postgres, 5432).unwrap_or(0);
    match pg_config_at(port, &node.postgres_password())
        .connect(tokio_postgres::NoTls)
        .await
    {
        Ok((client, conn)) => {
            let task = tokio::spawn(conn);
            let r = client.simple_query("SELECT 1").await.map(|_| ());
            drop(client);
            let _ = task.await;
            r.map_err(|e| e.to_string())
        }
        Err(e) => match e.as_db_error() {
            Some(db) if db.code() == &tokio_postgres::error::SqlState::INVALID_PASSWORD => Ok(()),
            Some(db) => Err(format!("{}: {}", db.code().code(), db.message())),
            None => Err(e.to_string()),
        },
    }
}

/// Waits until `service` is ready or `deadline` passes; a container that exits fails at once.
pub async fn until_ready(node: &dyn Endpoints, service: Service, deadline: Instant) -> Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .expect("http client");
    let started = Instant::now();
    loop {
        let reason = match probe(node, service, &http).await {
            Ok(()) => return Ok(()),
            Err(reason) => reason,
        };
        let exited = node.exited(service).await;
        if exited.is_some() || Instant::now() >= deadline {
            return Err(HarnessError::NotReady {
                service: service.to_string(),
                waited: started.elapsed(),
                reason: exited.unwrap_or(reason),
                last_logs: node.last_logs(service, 20).await,
            });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// The URL probed on the host side for `service`'s HTTP readiness (`None` for PostgreSQL's).
pub fn readiness_url(
    readiness: &Readiness,
    node: &dyn Endpoints,
    service: Service,
) -> Option<String> {
    let (port, path) = match readiness {
        Readiness::Http { port, path } => (*port, *path),
        Readiness::NatsMonitor => (8222, "/healthz?js-enabled-only=true"),
        Readiness::Postgres => return None,
    };
    Some(format!(
        "http://127.0.0.1:{}{path}",
        node.host_port(service, port).unwrap_or(0)
    ))
}
