//! The state of a stack seen from outside (no `Stack` value needed): per service, its
//! container state, published ports, shallow health and deep readiness.

use std::time::Duration;

use bollard::query_parameters::InspectContainerOptions;
use bollard::Docker;

use crate::docker::StackSummary;
use crate::services::{Readiness, Service};

/// One row of `cargo xtask status`.
#[derive(Clone, Debug)]
pub struct ServiceStatus {
    pub service: Service,
    pub container: String,
    pub state: String,
    /// container port → host port on the engine's host (`docker::engine_host`)
    pub ports: Vec<(u16, u16)>,
    /// `ok`, `down`, or the HTTP status; `-` where the service has no health endpoint.
    pub health: String,
    /// `ready`, or the first failing dependency.
    pub readiness: String,
}

/// Reads each service's state and probes its health and readiness.
pub async fn stack_status(docker: &Docker, stack: &StackSummary) -> Vec<ServiceStatus> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(4))
        .build()
        .expect("http client");
    let rows = Service::ALL.map(|service| {
        let http = http.clone();
        async move {
            let container = format!("{}-{}", service.production_name(), stack.id);
            let mut row = ServiceStatus {
                service,
                container: container.clone(),
                state: "missing".into(),
                ports: Vec::new(),
                health: "-".into(),
                readiness: "-".into(),
            };
            let Ok(info) = docker
                .inspect_container(&container, None::<InspectContainerOptions>)
                .await
            else {
                return row;
            };
            row.state = info
                .state
                .and_then(|s| s.status)
                .map(|s| s.to_string())
                .unwrap_or_default();
            let published = info
                .network_settings
                .and_then(|n| n.ports)
                .unwrap_or_default();
            for p in service.ports() {
                if let Some(h) = crate::docker::published_port(&published, *p) {
                    row.ports.push((*p, h));
                }
            }
            let host = |port: u16| row.ports.iter().find(|(c, _)| *c == port).map(|(_, h)| *h);
            let engine = crate::docker::engine_host();
            match service.readiness() {
                Readiness::Http { port, path } => {
                    if let Some(h) = host(port) {
                        row.health =
                            get_status(&http, &format!("http://{engine}:{h}/health")).await;
                        row.readiness = if path == "/ready" {
                            ready_summary(&http, &format!("http://{engine}:{h}/ready")).await
                        } else {
                            row.health.replace("ok", "ready")
                        };
                    }
                }
                Readiness::NatsMonitor => {
                    if let Some(h) = host(8222) {
                        row.health =
                            get_status(&http, &format!("http://{engine}:{h}/healthz")).await;
                        row.readiness = get_status(
                            &http,
                            &format!("http://{engine}:{h}/healthz?js-enabled-only=true"),
                        )
                        .await
                        .replace("ok", "ready (jetstream)");
                    }
                }
                Readiness::Postgres => {
                    if let Some(h) = host(5432) {
                        let reachable = tokio::net::TcpStream::connect(format!("{engine}:{h}"))
                            .await
                            .is_ok();
                        row.health = if reachable {
                            "ok".into()
                        } else {
                            "down".into()
                        };
                        row.readiness = if reachable {
                            "accepting TCP (auth: see verify)".into()
                        } else {
                            "down".into()
                        };
                    }
                }
            }
            row
        }
    });
    futures::future::join_all(rows).await
}

async fn get_status(http: &reqwest::Client, url: &str) -> String {
    match http.get(url).send().await {
        Ok(r) if r.status().is_success() => "ok".into(),
        Ok(r) => r.status().as_u16().to_string(),
        Err(_) => "down".into(),
    }
}

async fn ready_summary(http: &reqwest::Client, url: &str) -> String {
    match http.get(url).send().await {
        Ok(r) => {
            let ok = r.status().is_success();
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            if ok {
                return "ready".into();
            }
            let failing: Vec<String> = body["checks"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter(|(_, v)| v["ok"] == false)
                        .map(|(k, _)| k.clone())
                        .collect()
                })
                .unwrap_or_default();
            format!("NOT READY: {}", failing.join(", "))
        }
        Err(_) => "down".into(),
    }
}

/// The target of a replica running on the engine (from `cargo xtask up`), by its stack id: the
/// replica root from its labels, the host ports from `docker inspect`.
pub async fn replica_target(docker: &Docker, id: &str) -> crate::Result<crate::checks::Target> {
    let stacks = crate::docker::list_stacks(docker).await?;
    let stack = stacks
        .iter()
        .find(|s| s.id == id)
        .ok_or_else(|| crate::HarnessError::NoSuchStack(id.to_string()))?;
    let root = stack
        .root
        .clone()
        .ok_or_else(|| crate::HarnessError::NoSuchStack(format!("{id} (no replica root label)")))?;
    let mut ports = std::collections::BTreeMap::new();
    for service in Service::ALL {
        let name = format!("{}-{id}", service.production_name());
        let inspect = docker
            .inspect_container(&name, None::<InspectContainerOptions>)
            .await
            .map_err(crate::HarnessError::docker(format!("inspecting {name}")))?;
        let map = inspect
            .network_settings
            .and_then(|n| n.ports)
            .unwrap_or_default();
        for &port in service.ports() {
            if let Some(host) = crate::docker::published_port(&map, port) {
                ports.insert((service, port), host);
            }
        }
    }
    Ok(crate::checks::Target::replica(id, &root, |s, port| {
        ports.get(&(s, port)).copied().unwrap_or(0)
    }))
}
