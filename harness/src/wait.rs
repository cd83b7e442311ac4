//! Typed readiness waits with deadlines: each service is probed the way its clients would
//! reach it, never by a bare sleep.

use std::time::{Duration, Instant};

use bollard::query_parameters::InspectContainerOptions;

use crate::error::{HarnessError, Result};
use crate::services::{Readiness, Service};
use crate::stack::Stack;

/// How often a probe is repeated while waiting.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Probes `service` once; `Err` says why it is not ready.
pub async fn probe(stack: &Stack, service: Service, http: &reqwest::Client) -> Result<(), String> {
    match service.readiness() {
        Readiness::Postgres => probe_postgres(stack).await,
        r => {
            let url = r
                .http_url(stack, service)
                .expect("http readiness has a url");
            match http.get(&url).send().await {
                Ok(resp) if resp.status().is_success() => Ok(()),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let body = resp.text().await.unwrap_or_default();
                    Err(format!(
                        "readiness answered {status}: {}",
                        stack.redactor().redact(&body)
                    ))
                }
                Err(e) => Err(format!("readiness probe failed: {}", e.without_url())),
            }
        }
    }
}

/// PostgreSQL is ready when it answers a TCP connection with an authentication verdict: a
/// connection with the node's password, or a password rejection (the server is up; which
/// password is live is a check, not readiness).
async fn probe_postgres(stack: &Stack) -> Result<(), String> {
    let password = stack
        .root()
        .read_env(Service::Postgres)
        .ok()
        .and_then(|f| f.get("POSTGRES_PASSWORD").map(str::to_string))
        .unwrap_or_default();
    match stack
        .pg_config(&password)
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
pub async fn until_ready(stack: &Stack, service: Service, deadline: Instant) -> Result<()> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .expect("http client");
    let started = Instant::now();
    loop {
        let reason = match probe(stack, service, &http).await {
            Ok(()) => return Ok(()),
            Err(reason) => reason,
        };
        let exited = container_exited(stack, service).await;
        if exited.is_some() || Instant::now() >= deadline {
            let last_logs = stack
                .logs(service, 20)
                .await
                .unwrap_or_else(|e| format!("(logs unavailable: {e})"));
            return Err(HarnessError::NotReady {
                service: service.to_string(),
                waited: started.elapsed(),
                reason: exited.unwrap_or(reason),
                last_logs,
            });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

async fn container_exited(stack: &Stack, service: Service) -> Option<String> {
    let info = stack
        .docker()
        .inspect_container(
            &stack.container_name(service),
            None::<InspectContainerOptions>,
        )
        .await
        .ok()?;
    let state = info.state?;
    if state.running == Some(false) && state.paused != Some(true) {
        Some(format!(
            "container exited with code {}",
            state.exit_code.unwrap_or(-1)
        ))
    } else {
        None
    }
}
