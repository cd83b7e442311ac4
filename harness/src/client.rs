//! Talking to a running replica from the host: Telegram-style updates, JWT-authenticated API
//! calls, the upstream's admin API, PostgreSQL rows and NATS connections. Nothing here prints
//! a secret value; errors carry status codes and the services' own error codes.

use std::time::Duration;

use serde_json::{json, Value};

use crate::services::Service;
use crate::stack::Stack;

/// What the gateway answered to one update.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookOutcome {
    pub status: u16,
    /// The service's error code (`db`, `router`, `jetstream`, …), empty on success.
    pub error: String,
    /// The service's error detail (no secret values: the services never put them there).
    pub detail: String,
}

impl WebhookOutcome {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// A client for one stack. It holds the host ports of the moment: after a restart or
/// recreate (which publish new ports) take a new one.
#[derive(Clone)]
pub struct ReplicaClient {
    http: reqwest::Client,
    gateway: String,
    router: String,
    memory: String,
    upstream: String,
}

impl ReplicaClient {
    pub fn new(stack: &Stack) -> Self {
        ReplicaClient {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("http client"),
            gateway: stack.url(Service::Gateway),
            router: stack.url(Service::Router),
            memory: stack.url(Service::Memory),
            upstream: stack.url(Service::Upstream),
        }
    }

    /// POSTs a Telegram-style update to `/telegram/webhook` (`agent` None) or
    /// `/{agent}/telegram/webhook`.
    pub async fn send_update(
        &self,
        agent: Option<&str>,
        update_id: i64,
        text: &str,
    ) -> WebhookOutcome {
        let url = match agent {
            None => format!("{}/telegram/webhook", self.gateway),
            Some(a) => format!("{}/{a}/telegram/webhook", self.gateway),
        };
        let update = json!({
            "update_id": update_id,
            "message": {"message_id": update_id, "chat": {"id": 1000 + update_id % 97}, "text": text},
        });
        match self.http.post(url).json(&update).send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                let body: Value = r.json().await.unwrap_or(Value::Null);
                WebhookOutcome {
                    status,
                    error: body["error"].as_str().unwrap_or("").to_string(),
                    detail: body["detail"].as_str().unwrap_or("").to_string(),
                }
            }
            Err(e) => WebhookOutcome {
                status: 0,
                error: "unreachable".into(),
                detail: e.without_url().to_string(),
            },
        }
    }

    /// Calls the router directly: `POST /v1/agents/{agent}/infer`.
    pub async fn infer(&self, agent: &str, update_id: i64) -> (u16, Value) {
        self.json_call(
            self.http
                .post(format!("{}/v1/agents/{agent}/infer", self.router))
                .json(&json!({"update_id": update_id, "text": "ping"})),
        )
        .await
    }

    /// A service's readiness: (HTTP status, body with per-dependency checks).
    pub async fn readiness(&self, stack: &Stack, service: Service) -> (u16, Value) {
        let url = crate::wait::readiness_url(&service.readiness(), stack, service)
            .expect("service has an HTTP readiness endpoint");
        self.json_call(self.http.get(url)).await
    }

    /// Stores a memory directly through the memory service.
    pub async fn store_memory(&self, update_id: i64) -> (u16, Value) {
        self.json_call(
            self.http
                .post(format!("{}/memories", self.memory))
                .json(&json!({
                    "update_id": update_id, "agent": "daarwizz", "chat_id": 1,
                    "user_text": "direct", "reply_text": "direct",
                })),
        )
        .await
    }

    /// Issues `key` for `provider` at the fake upstream.
    pub async fn issue_key(&self, provider: &str, key: &str) -> u16 {
        self.json_call(
            self.http
                .post(format!("{}/admin/keys", self.upstream))
                .json(&json!({"provider": provider, "key": key})),
        )
        .await
        .0
    }

    /// Makes `provider` answer `status` and/or wait `delay_ms` (both `None`: behave again).
    pub async fn set_behaviour(
        &self,
        provider: &str,
        status: Option<u16>,
        delay_ms: Option<u64>,
    ) -> u16 {
        self.json_call(
            self.http
                .post(format!("{}/admin/behaviour", self.upstream))
                .json(&json!({"provider": provider, "status": status, "delay_ms": delay_ms})),
        )
        .await
        .0
    }

    /// Revokes `key` for `provider` at the fake upstream.
    pub async fn revoke_key(&self, provider: &str, key: &str) -> u16 {
        self.json_call(
            self.http
                .post(format!("{}/admin/revoke", self.upstream))
                .json(&json!({"provider": provider, "key": key})),
        )
        .await
        .0
    }

    /// One chat call to `provider` at the fake upstream with `key` as its Bearer key: the
    /// status it answers (401: the key is not one the provider issued).
    pub async fn chat_with_key(&self, provider: &str, key: &str) -> u16 {
        self.json_call(
            self.http
                .post(format!("{}/{provider}/v1/chat/completions", self.upstream))
                .bearer_auth(key)
                .json(&json!({"model": format!("{provider}-chat"), "messages": [{"role": "user", "content": "ping"}]})),
        )
        .await
        .0
    }

    /// The upstream's key table: fingerprints, states and use counts (never key values).
    pub async fn upstream_keys(&self) -> Value {
        self.json_call(self.http.get(format!("{}/admin/keys", self.upstream)))
            .await
            .1
    }

    async fn json_call(&self, req: reqwest::RequestBuilder) -> (u16, Value) {
        match req.send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                (status, r.json().await.unwrap_or(Value::Null))
            }
            Err(e) => (
                0,
                json!({"error": "unreachable", "detail": e.without_url().to_string()}),
            ),
        }
    }
}

/// The NATS users currently connected, from the monitor's `/connz?auth=true`.
pub async fn nats_connected_users(stack: &Stack) -> Result<Vec<String>, String> {
    let url = format!("{}/connz?auth=true", stack.nats_monitor_url());
    let body: Value = reqwest::get(url)
        .await
        .map_err(|e| e.without_url().to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    Ok(body["connections"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter_map(|conn| conn["authorized_user"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

/// Opens a new TCP connection to PostgreSQL from the host with `password`.
pub async fn pg_connect(stack: &Stack, password: &str) -> Result<tokio_postgres::Client, String> {
    let (client, conn) = stack
        .pg_config(password)
        .connect(tokio_postgres::NoTls)
        .await
        .map_err(|e| match e.as_db_error() {
            Some(db) => format!("{}: {}", db.code().code(), db.message()),
            None => e.to_string(),
        })?;
    tokio::spawn(conn);
    Ok(client)
}

/// Signs a JWT for the gateway's API with `secret` (HS256), valid for an hour.
pub fn gateway_jwt(secret: &str, subject: &str) -> String {
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() + 3600)
        .unwrap_or(0);
    wiring::jwt::sign(secret, &json!({"sub": subject, "exp": exp}))
}
