//! The check catalogue: health and readiness, PostgreSQL, NATS, providers, env, backups, git and
//! logs. Ids are stable; per-service and per-provider checks carry the name as their last part.

use super::node::{address_of, Auth, LoginError, Node, PROBE_NAME, PROJECT_ENV};
use super::secrets::{is_secret_name, SecretSet, PREVIOUS_LIMITS};
use super::target::{KeyAuth, EXTERNAL, PROVIDERS, SERVICE_KEYS};
use super::transport::FileStat;
use super::{Check, Verdict};
use ::node::services::Service;
use futures::FutureExt;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Services whose `.env` holds DB_PASSWORD, and NATS credentials.
const DB_SERVICES: &[&str] = SERVICE_KEYS;
const NATS_SERVICES: &[&str] = &["gateway", "router", "crewai-nats-worker", "parser-pipeline"];
/// Log lines that mean an authentication failed, in any of the node's services or servers.
const AUTH_ERROR_PATTERNS: &[&str] = &[
    "28P01",
    "password authentication failed",
    "authorization violation",
    "authentication error",
    "upstream_401",
    "401 unauthorized",
    "invalid api key",
    "invalid_token",
];
/// Without a rotation time, logs are read over this window.
const DEFAULT_LOG_WINDOW: Duration = Duration::from_secs(15 * 60);

/// The inventory variables a service's `.env` holds secrets for (for coverage).
fn service_secrets(service: &str) -> Vec<&'static str> {
    match service {
        "gateway" => vec![
            "TELEGRAM_BOT_TOKEN",
            "TELEGRAM_BOT_TOKEN_HELION",
            "TELEGRAM_BOT_TOKEN_GREENFOOD",
            "TELEGRAM_BOT_TOKEN_DRUID",
            "JWT_SECRET",
            "NATS_PASSWORD_GATEWAY",
            "DB_PASSWORD",
        ],
        "router" => vec![
            "DEEPSEEK_API_KEY",
            "MISTRAL_API_KEY",
            "GROK_API_KEY",
            "COHERE_API_KEY",
            "NEO4J_PASSWORD",
            "NATS_PASSWORD_ROUTER",
            "DB_PASSWORD",
        ],
        "memory-service" => vec!["DB_PASSWORD", "QDRANT_API_KEY", "NEO4J_PASSWORD"],
        "crewai-nats-worker" | "parser-pipeline" => vec!["NATS_PASSWORD_WORKER", "DB_PASSWORD"],
        "postgres" => vec!["DB_PASSWORD"],
        _ => vec![],
    }
}

fn nats_inventory_var(service: &str) -> &'static str {
    match service {
        "gateway" => "NATS_PASSWORD_GATEWAY",
        "router" => "NATS_PASSWORD_ROUTER",
        _ => "NATS_PASSWORD_WORKER",
    }
}

/// Every check, in a stable order.
pub fn catalogue() -> Vec<Check> {
    let mut all = Vec::new();
    for &svc in SERVICE_KEYS {
        all.push(Check::read_only(
            format!("health.{svc}"),
            format!("{svc} answers /health"),
            svc,
            vec![],
            move |node| health(node, svc, "/health").boxed(),
        ));
    }
    for &svc in SERVICE_KEYS {
        all.push(Check::read_only(
            format!("ready.{svc}"),
            format!("{svc} answers /ready: every dependency reachable with its current secret"),
            svc,
            service_secrets(svc),
            move |node| health(node, svc, "/ready").boxed(),
        ));
    }
    for &svc in SERVICE_KEYS {
        all.push(Check::read_only(
            format!("auth.held.{svc}"),
            format!("the credentials {svc}'s running container holds are accepted now (PostgreSQL, NATS, its provider keys)"),
            svc,
            service_secrets(svc),
            move |node| held(node, svc).boxed(),
        ));
    }
    for &svc in DB_SERVICES {
        all.push(Check::read_only(
            format!("postgres.auth.current.{svc}"),
            format!("DB_PASSWORD in {svc}'s .env logs in on a new TCP connection from outside"),
            svc,
            vec!["DB_PASSWORD"],
            move |node| pg_current(node, svc).boxed(),
        ));
    }
    all.push(Check::read_only(
        "postgres.auth.previous",
        "the previous DB_PASSWORD is rejected on a new TCP connection",
        "postgres",
        vec!["DB_PASSWORD"],
        |node| pg_previous(node).boxed(),
    ));
    for &svc in NATS_SERVICES {
        all.push(Check::read_only(
            format!("nats.auth.current.{svc}"),
            format!("NATS_USER/NATS_PASSWORD in {svc}'s .env connect to NATS"),
            svc,
            vec![nats_inventory_var(svc)],
            move |node| nats_current(node, svc).boxed(),
        ));
        all.push(Check::read_only(
            format!("nats.auth.previous.{svc}"),
            format!("{svc}'s previous NATS password is rejected"),
            svc,
            vec![nats_inventory_var(svc)],
            move |node| nats_previous(node, svc).boxed(),
        ));
    }
    all.push(
        Check::read_only(
            "nats.jetstream.healthy",
            "the JetStream stream and its consumers exist and are not stalled (/jsz)",
            "nats",
            vec![],
            |node| jetstream(node).boxed(),
        )
        .with_timeout(Duration::from_secs(8)),
    );
    all.push(Check::read_only(
        "nats.clients.users",
        "every service's NATS user has a connected client, and no other user does (/connz?auth=true)",
        "nats",
        vec!["NATS_PASSWORD_GATEWAY", "NATS_PASSWORD_ROUTER", "NATS_PASSWORD_WORKER"],
        |node| nats_users(node).boxed(),
    ));
    all.push(Check::read_only(
        "gateway.jwt.current",
        "a token signed with the gateway's JWT_SECRET is accepted by its API",
        "gateway",
        vec!["JWT_SECRET"],
        |node| jwt(node, false).boxed(),
    ));
    all.push(Check::read_only(
        "gateway.jwt.previous",
        "a token signed with the previous JWT_SECRET is rejected",
        "gateway",
        vec!["JWT_SECRET"],
        |node| jwt(node, true).boxed(),
    ));
    let credentials = PROVIDERS
        .iter()
        .map(|&(provider, var)| (provider, "router", var))
        .chain(
            EXTERNAL
                .iter()
                .map(|&(name, service, var, _)| (name, service, var)),
        );
    for (name, service, var) in credentials {
        all.push(Check::read_only(
            format!("provider.key.current.{name}"),
            format!("{var} in the {service}'s .env is accepted by {name} (read-only call)"),
            service,
            vec![var],
            move |node| provider_key(node, name, false).boxed(),
        ));
        all.push(Check::read_only(
            format!("provider.key.previous.{name}"),
            format!("the previous {var} is rejected by {name}"),
            service,
            vec![var],
            move |node| provider_key(node, name, true).boxed(),
        ));
    }
    all.push(Check::read_only(
        "provider.usage.current-only",
        "since the rotation, the upstream saw only the router's current keys (replica)",
        "router",
        PROVIDERS.iter().map(|(_, v)| *v).collect(),
        |node| provider_usage(node).boxed(),
    ));
    for &svc in SERVICE_KEYS.iter().chain(&["postgres"]) {
        all.push(Check::read_only(
            format!("env.container-matches-file.{svc}"),
            format!("{svc}'s running container has the env of its .env file (no restart without recreate)"),
            svc,
            service_secrets(svc),
            move |node| container_matches(node, svc).boxed(),
        ));
    }
    all.push(Check::read_only(
        "env.shared-secrets-agree",
        "secrets held by several .env files have one value",
        "node",
        vec!["DB_PASSWORD", "NEO4J_PASSWORD", "NATS_PASSWORD_WORKER"],
        |node| shared_agree(node).boxed(),
    ));
    all.push(Check::read_only(
        "env.file-mode",
        "every .env file is mode 0600",
        "node",
        vec![],
        |node| file_modes(node).boxed(),
    ));
    all.push(Check::read_only(
        "env.no-old-keys",
        "no *_OLD, *_NEW or *_PREVIOUS variable is left in any .env",
        "node",
        vec![],
        |node| no_old_keys(node).boxed(),
    ));
    all.push(Check::read_only(
        "backups.retention",
        "no secrets backup is older than the retention",
        "node",
        vec![],
        |node| backups_retention(node).boxed(),
    ));
    all.push(Check::read_only(
        "backups.encrypted",
        "no backup holds .env files in clear",
        "node",
        vec![],
        |node| backups_encrypted(node).boxed(),
    ));
    all.push(
        Check::read_only(
            "git.no-secrets-tracked",
            "no current or previous secret value is in a file tracked by the node's git repository",
            "node",
            vec![],
            |node| git_tracked(node).boxed(),
        )
        .with_timeout(Duration::from_secs(20)),
    );
    // PostgreSQL's own log is not read: without `%a` in its log_line_prefix it cannot tell this
    // tool's probe of the previous password from a client's failure. The clients' logs can.
    for &svc in SERVICE_KEYS.iter().chain(&["nats"]) {
        all.push(Check::read_only(
            format!("logs.auth-errors.{svc}"),
            format!("no authentication error in {svc}'s logs since the rotation"),
            svc,
            vec![],
            move |node| auth_errors(node, svc).boxed(),
        ));
    }
    all
}

async fn health(node: &Node, svc: &str, path: &str) -> Verdict {
    let Some(s) = node.target().services.get(svc) else {
        return Verdict::skip(format!("the target has no [services.{svc}]"));
    };
    let url = format!("{}{path}", s.url.trim_end_matches('/'));
    match node.get(&url, Auth::None).await {
        Err(v) => v,
        Ok((200, _)) => Verdict::pass(format!("{svc} {path}: 200")),
        Ok((status, body)) => {
            let failing = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| {
                    v["checks"].as_object().map(|m| {
                        m.iter()
                            .filter(|(_, c)| c["ok"] == false)
                            .map(|(k, c)| {
                                format!("{k}: {}", c["error"].as_str().unwrap_or("not ok"))
                            })
                            .collect::<Vec<_>>()
                            .join("; ")
                    })
                })
                .unwrap_or_default();
            Verdict::fail(
                format!("{svc} {path}: HTTP {status} {failing}")
                    .trim()
                    .to_string(),
            )
        }
    }
}

async fn pg_current(node: &Node, svc: &str) -> Verdict {
    let Some(rel) = node.env_rel(svc) else {
        return Verdict::skip(format!("the target has no [services.{svc}]"));
    };
    let password = match node.secret(svc, "DB_PASSWORD") {
        Ok(p) => p,
        Err(v) => return v,
    };
    let wiring = node.wiring(svc, "DB_PASSWORD");
    let variable = wiring
        .as_ref()
        .map_or("DB_PASSWORD".to_string(), |w| w.variable.clone());
    let from = match wiring.map(|w| w.source) {
        Some(::node::profile::Source::Interpolated { variable }) => {
            format!("{PROJECT_ENV} ({variable}, interpolated)")
        }
        _ => rel.display().to_string(),
    };
    let pg = &node.target().postgres;
    match node.pg_login(&password).await {
        Ok(()) => Verdict::pass(format!(
            "{variable} of {svc} logs in as {} at {}:{} on a new connection",
            pg.user, pg.host, pg.port
        )),
        Err(e) => e.as_failure(&format!("{variable} in {from} ({svc})")),
    }
}

async fn pg_previous(node: &Node) -> Verdict {
    let Some(previous) = node.previous() else {
        return Verdict::skip("no previous secrets given (--previous FILE)");
    };
    let Some(old) = DB_SERVICES
        .iter()
        .find_map(|s| node.previous_secret(s, "DB_PASSWORD"))
        .or_else(|| {
            previous
                .secret_values()
                .into_iter()
                .find(|(k, _)| k == "DB_PASSWORD")
                .map(|(_, v)| v)
        })
    else {
        return Verdict::skip("the previous secrets hold no DB_PASSWORD");
    };
    let still_current: Vec<&str> = DB_SERVICES
        .iter()
        .copied()
        .filter(|s| node.secret(s, "DB_PASSWORD").ok().as_deref() == Some(old.as_str()))
        .collect();
    if !still_current.is_empty() {
        return Verdict::fail(format!(
            "the previous DB_PASSWORD is still the current one in {} (not rotated)",
            still_current.join(", ")
        ));
    }
    match node.pg_login(&old).await {
        Ok(()) => Verdict::fail(
            "the previous DB_PASSWORD still logs in on a new connection: the server-side password was not changed",
        ),
        Err(LoginError::Rejected(why)) => Verdict::pass(format!("the previous DB_PASSWORD is rejected ({why})")),
        Err(e) => e.as_failure("login with the previous DB_PASSWORD"),
    }
}

fn nats_credentials<'a>(node: &'a Node, svc: &str) -> Result<(&'a str, &'a str), Verdict> {
    if node.env_rel(svc).is_none() {
        return Err(Verdict::skip(format!("the target has no [services.{svc}]")));
    }
    match (node.var(svc, "NATS_USER"), node.var(svc, "NATS_PASSWORD")) {
        (Some(u), Some(p)) => Ok((u, p)),
        _ => Err(node.env_lacks(svc, "lacks NATS_USER or NATS_PASSWORD")),
    }
}

async fn nats_current(node: &Node, svc: &str) -> Verdict {
    let (user, password) = match nats_credentials(node, svc) {
        Ok(c) => c,
        Err(v) => return v,
    };
    match node.nats_login(user, password).await {
        Ok(()) => Verdict::pass(format!("{svc} connects to NATS as `{user}`")),
        Err(e) => e.as_failure(&format!("NATS_PASSWORD of {svc} (user `{user}`)")),
    }
}

async fn nats_previous(node: &Node, svc: &str) -> Verdict {
    let (user, current) = match nats_credentials(node, svc) {
        Ok(c) => c,
        Err(v) => return v,
    };
    if node.previous().is_none() {
        return Verdict::skip("no previous secrets given (--previous FILE)");
    }
    let Some(old) = node.previous_var(svc, "NATS_PASSWORD") else {
        return Verdict::skip(format!(
            "the previous secrets hold no NATS_PASSWORD for {svc}"
        ));
    };
    let old_user = node.previous_var(svc, "NATS_USER").unwrap_or(user);
    if old == current && old_user == user {
        return Verdict::fail(format!(
            "{svc}'s NATS_PASSWORD is still the previous one (not rotated)"
        ));
    }
    match node.nats_login(old_user, old).await {
        Ok(()) => Verdict::fail(format!(
            "{svc}'s previous NATS password still connects as `{old_user}`: the server still accepts it"
        )),
        Err(LoginError::Rejected(_)) => Verdict::pass(format!("{svc}'s previous NATS password is rejected")),
        Err(e) => e.as_failure(&format!("login with {svc}'s previous NATS password")),
    }
}

async fn monitor(node: &Node, path: &str) -> Result<Value, Verdict> {
    let url = format!(
        "{}{path}",
        node.target().nats.monitoring.trim_end_matches('/')
    );
    let (status, body) = node.get(&url, Auth::None).await?;
    if status != 200 {
        return Err(Verdict::fail(format!("{path}: HTTP {status}")));
    }
    serde_json::from_str(&body).map_err(|e| Verdict::error(format!("{path}: not JSON: {e}")))
}

/// One consumer as `/jsz` shows it.
struct ConsumerState {
    name: String,
    pending: u64,
    delivered: u64,
    ack_pending: u64,
}

/// The consumers of `stream`, or `None` when the stream does not exist.
fn consumers(jsz: &Value, stream: &str) -> Option<Vec<ConsumerState>> {
    let details = jsz["account_details"].as_array()?;
    let stream = details
        .iter()
        .flat_map(|a| a["stream_detail"].as_array().cloned().unwrap_or_default())
        .find(|s| s["name"] == stream)?;
    Some(
        stream["consumer_detail"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(|c| ConsumerState {
                name: c["name"].as_str().unwrap_or("").to_string(),
                pending: c["num_pending"].as_u64().unwrap_or(0),
                delivered: c["delivered"]["consumer_seq"].as_u64().unwrap_or(0),
                ack_pending: c["num_ack_pending"].as_u64().unwrap_or(0),
            })
            .collect(),
    )
}

async fn jetstream(node: &Node) -> Verdict {
    let nats = &node.target().nats;
    let path = "/jsz?streams=true&consumers=true";
    let first = match monitor(node, path).await {
        Ok(v) => v,
        Err(v) => return v,
    };
    let Some(now) = consumers(&first, &nats.stream) else {
        return Verdict::fail(format!("stream {} does not exist", nats.stream));
    };
    let names: BTreeSet<&str> = now.iter().map(|c| c.name.as_str()).collect();
    let missing: Vec<&str> = nats
        .consumers
        .iter()
        .map(String::as_str)
        .filter(|c| !names.contains(c))
        .collect();
    if !missing.is_empty() {
        return Verdict::fail(format!(
            "stream {}: consumer(s) {} missing",
            nats.stream,
            missing.join(", ")
        ));
    }
    // A consumer with messages pending is stalled when its delivered sequence does not move.
    let waiting: Vec<&ConsumerState> = now
        .iter()
        .filter(|c| c.pending > 0 || c.ack_pending > 0)
        .collect();
    if !waiting.is_empty() {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let later = match monitor(node, path).await {
            Ok(v) => consumers(&v, &nats.stream).unwrap_or_default(),
            Err(v) => return v,
        };
        let stalled: Vec<String> = waiting
            .iter()
            .filter(|c| {
                later.iter().any(|l| {
                    l.name == c.name
                        && l.delivered == c.delivered
                        && (l.pending > 0 || l.ack_pending > 0)
                })
            })
            .map(|c| {
                format!(
                    "{} ({} pending, {} unacked, delivered seq stuck at {})",
                    c.name, c.pending, c.ack_pending, c.delivered
                )
            })
            .collect();
        if !stalled.is_empty() {
            return Verdict::fail(format!("stalled consumer(s): {}", stalled.join("; ")));
        }
    }
    Verdict::pass(format!(
        "stream {} with consumers {}: none stalled",
        nats.stream,
        names.into_iter().collect::<Vec<_>>().join(", ")
    ))
}

async fn nats_users(node: &Node) -> Verdict {
    let connz = match monitor(node, "/connz?auth=true&limit=1024").await {
        Ok(v) => v,
        Err(v) => return v,
    };
    let mut connected: BTreeMap<String, usize> = BTreeMap::new();
    let mut pending = 0;
    for c in connz["connections"].as_array().cloned().unwrap_or_default() {
        if c["name"] == PROBE_NAME || c["name"] == "readiness-probe" {
            continue;
        }
        // A connection still authenticating (or being refused) is connected as nobody yet.
        let Some(user) = c["authorized_user"].as_str().filter(|u| !u.is_empty()) else {
            pending += 1;
            continue;
        };
        *connected.entry(user.to_string()).or_default() += 1;
    }
    let mut expected: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for &svc in NATS_SERVICES {
        if let Some(user) = node.var(svc, "NATS_USER") {
            expected.entry(user.to_string()).or_default().push(svc);
        }
    }
    let missing: Vec<String> = expected
        .iter()
        .filter(|(u, _)| !connected.contains_key(*u))
        .map(|(u, s)| {
            format!(
                "no client connected as `{u}` (the user of {})",
                s.join(", ")
            )
        })
        .collect();
    let unexpected: Vec<String> = connected
        .iter()
        .filter(|(u, _)| !expected.contains_key(*u))
        .map(|(u, n)| format!("{n} client(s) connected as `{u}`, which no .env names"))
        .collect();
    let mut seen = connected
        .iter()
        .map(|(u, n)| format!("{u}×{n}"))
        .collect::<Vec<_>>()
        .join(", ");
    if pending > 0 {
        seen.push_str(&format!("; {pending} not (yet) authenticated"));
    }
    if missing.is_empty() && unexpected.is_empty() {
        Verdict::pass(format!("connected users: {seen}"))
    } else {
        Verdict::fail(format!(
            "{} (connected: {seen})",
            missing
                .into_iter()
                .chain(unexpected)
                .collect::<Vec<_>>()
                .join("; ")
        ))
    }
}

async fn jwt(node: &Node, previous: bool) -> Verdict {
    let Some(gw) = node.target().services.get("gateway") else {
        return Verdict::skip("the target has no [services.gateway]");
    };
    let current = node.value("gateway", "JWT_SECRET");
    let secret = if previous {
        if node.previous().is_none() {
            return Verdict::skip("no previous secrets given (--previous FILE)");
        }
        match node.previous_value("gateway", "JWT_SECRET") {
            Some(old) if Some(&old) == current.as_ref() => {
                return Verdict::fail(
                    "the gateway's JWT_SECRET is still the previous one (not rotated)",
                )
            }
            Some(old) => old,
            None => return Verdict::skip("the previous secrets hold no JWT_SECRET"),
        }
    } else {
        match current {
            Some(c) => c,
            None => return node.env_lacks("gateway", "has no JWT_SECRET"),
        }
    };
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() + 300)
        .unwrap_or(0);
    let token = wiring::jwt::sign(
        &secret,
        &serde_json::json!({"sub": "rotation-verify", "exp": exp}),
    );
    let url = format!("{}/api/v1/agents", gw.url.trim_end_matches('/'));
    match (node.get(&url, Auth::Bearer(&token)).await, previous) {
        (Err(v), _) => v,
        (Ok((200, _)), false) => Verdict::pass("a token signed with the current JWT_SECRET is accepted"),
        (Ok((status, _)), false) => Verdict::fail(format!(
            "a token signed with JWT_SECRET from the gateway's .env gets HTTP {status}: the running gateway uses another secret"
        )),
        (Ok((401 | 403, _)), true) => Verdict::pass("a token signed with the previous JWT_SECRET is rejected"),
        (Ok((status, _)), true) => Verdict::fail(format!(
            "a token signed with the previous JWT_SECRET gets HTTP {status}: the gateway still accepts it"
        )),
    }
}

async fn provider_key(node: &Node, provider: &str, previous: bool) -> Verdict {
    let Some(p) = node.target().providers.get(provider) else {
        return Verdict::skip(format!("the target has no [providers.{provider}]"));
    };
    let service = p.service.as_str();
    let current = node.value(service, &p.env);
    let key = if previous {
        if node.previous().is_none() {
            return Verdict::skip("no previous secrets given (--previous FILE)");
        }
        match node.previous_value(service, &p.env) {
            Some(old) if Some(&old) == current.as_ref() => {
                return Verdict::fail(format!("{} is still the previous key (not rotated)", p.env))
            }
            Some(old) => old,
            None => return Verdict::skip(format!("the previous secrets hold no {}", p.env)),
        }
    } else {
        match current {
            Some(c) => c,
            None if node.wiring(service, &p.env).is_some() => {
                return node
                    .secret(service, &p.env)
                    .err()
                    .unwrap_or_else(|| node.env_lacks(service, &format!("has no {}", p.env)))
            }
            None => return node.env_lacks(service, &format!("has no {}", p.env)),
        }
    };
    match (present_key(node, p, &key).await, previous) {
        (Err(v), _) => v,
        (Ok((200, _)), false) => Verdict::pass(format!("{provider} accepts {}", p.env)),
        (Ok((status, _)), false) => Verdict::fail(format!(
            "{provider} rejects {} from {service}'s .env (HTTP {status})",
            p.env
        )),
        (Ok((401 | 403, _)), true) => {
            Verdict::pass(format!("{provider} rejects the previous {}", p.env))
        }
        (Ok((status, _)), true) => Verdict::fail(format!(
            "{provider} still accepts the previous {} (HTTP {status}): revoke it",
            p.env
        )),
    }
}

/// A read-only call to provider `p` presenting `key` as the node presents it: its status and body.
async fn present_key(
    node: &Node,
    p: &super::target::ProviderTarget,
    key: &str,
) -> Result<(u16, String), Verdict> {
    match p.auth {
        KeyAuth::Bearer => node.get(&p.url, Auth::Bearer(key)).await,
        KeyAuth::ApiKey => node.get(&p.url, Auth::Header("api-key", key)).await,
        KeyAuth::Path => node.get(&p.url.replace("{key}", key), Auth::None).await,
        KeyAuth::Basic => {
            let user = p.user.as_deref().unwrap_or("neo4j");
            let read_only = serde_json::json!({"statements": [{"statement": "RETURN 1"}]});
            node.post_read_only(&p.url, Auth::Basic(user, key), &read_only)
                .await
        }
    }
}

/// Whether the credentials `svc`'s running container holds (its environment as created, not its
/// `.env`) are accepted now: PostgreSQL as its `POSTGRES_USER`, NATS as its `NATS_USER`, each
/// provider credential the target says it holds. What the service would meet if it had to
/// reconnect at this moment.
async fn held(node: &Node, svc: &str) -> Verdict {
    let Some(container) = node
        .target()
        .services
        .get(svc)
        .and_then(|s| s.container.clone())
    else {
        return Verdict::skip(format!("no container named for {svc}"));
    };
    let env = match node.container_env(&container).await {
        Ok(e) => e,
        Err(v) => return v,
    };
    let var = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let (mut accepted, mut refused, mut undecided) = (Vec::new(), Vec::new(), Vec::new());
    if let Some(password) = var("DB_PASSWORD") {
        let user = var("POSTGRES_USER").unwrap_or(&node.target().postgres.user);
        match node.pg_login_as(user, password).await {
            Ok(()) => accepted.push(format!("PostgreSQL as `{user}`")),
            Err(LoginError::Rejected(why)) => refused.push(format!(
                "PostgreSQL refuses {svc}'s DB_PASSWORD for `{user}` ({why})"
            )),
            Err(e) => return e.as_failure(&format!("{svc}'s DB_PASSWORD")),
        }
    }
    if let (Some(user), Some(password)) = (var("NATS_USER"), var("NATS_PASSWORD")) {
        match node.nats_login(user, password).await {
            Ok(()) => accepted.push(format!("NATS as `{user}`")),
            Err(LoginError::Rejected(_)) => {
                refused.push(format!("NATS refuses {svc}'s NATS_PASSWORD for `{user}`"))
            }
            Err(e) => return e.as_failure(&format!("{svc}'s NATS_PASSWORD")),
        }
    }
    for (name, p) in &node.target().providers {
        let Some(key) = var(&p.env).filter(|_| p.service == svc) else {
            continue;
        };
        match present_key(node, p, key).await {
            Err(v) => return v,
            Ok((200..=299, _)) => accepted.push(format!("{name} ({})", p.env)),
            Ok((status @ (401 | 403), _)) => {
                refused.push(format!("{name} answered {status} for {svc}'s {}", p.env))
            }
            // Rate limited, or the provider failing: the key was neither accepted nor refused.
            Ok((status, _)) => undecided.push(format!(
                "{name} answered {status} for {svc}'s {} (neither accepted nor refused)",
                p.env
            )),
        }
    }
    held_verdict(svc, &accepted, &refused, &undecided)
}

/// `auth.held`'s verdict: failed on any refusal; passed when something was accepted; skipped
/// when nothing was tried or nothing answered for or against a credential.
fn held_verdict(
    svc: &str,
    accepted: &[String],
    refused: &[String],
    undecided: &[String],
) -> Verdict {
    let also = if undecided.is_empty() {
        String::new()
    } else {
        format!("; {}", undecided.join("; "))
    };
    match (
        refused.is_empty(),
        accepted.is_empty(),
        undecided.is_empty(),
    ) {
        (false, _, _) => Verdict::fail(format!("{}{also}", refused.join("; "))),
        (true, false, _) => Verdict::pass(format!("accepted: {}{also}", accepted.join(", "))),
        (true, true, false) => Verdict::skip(undecided.join("; ")),
        (true, true, true) => {
            Verdict::skip(format!("{svc}'s container holds no credential to try"))
        }
    }
}

async fn provider_usage(node: &Node) -> Verdict {
    let Some(admin) = node.target().upstream_admin.clone() else {
        return Verdict::skip("no upstream admin API (only the replica has one)");
    };
    let Some(since) = node.target().since else {
        return Verdict::skip("no rotation time given (`since` in the target, or --since)");
    };
    // A key the router's previous container used before it was replaced is not stale: what
    // counts is what was used since the rotation began and the current container started.
    let router = node
        .target()
        .services
        .get("router")
        .and_then(|s| s.container.clone());
    let (since, since_what) = match router {
        Some(c) => match node.container_started_at(&c).await {
            Ok(started) if started > since => (started, "the router's container started"),
            Ok(_) => (since, "it began"),
            Err(v) => return v,
        },
        None => (since, "it began"),
    };
    let since_ms = since
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let body = match node.get(&admin, Auth::None).await {
        Ok((200, body)) => body,
        Ok((status, _)) => return Verdict::error(format!("{}: HTTP {status}", address_of(&admin))),
        Err(v) => return v,
    };
    let keys: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let mut stale = Vec::new();
    for &(provider, var) in PROVIDERS {
        let current = node.value("router", var).map(|v| wiring::fingerprint(&v));
        for k in keys["keys"].as_array().cloned().unwrap_or_default() {
            if k["provider"] != provider
                || Some(k["fingerprint"].as_str().unwrap_or("")) == current.as_deref()
            {
                continue;
            }
            if k["last_used_ms"].as_u64().unwrap_or(0) >= since_ms {
                stale.push(format!(
                    "{provider}: key {} (not the router's {var}) was used after the rotation, since {since_what}",
                    k["fingerprint"].as_str().unwrap_or("?")
                ));
            }
        }
    }
    if stale.is_empty() {
        Verdict::pass(format!(
            "after the rotation, since {since_what}, only the router's current keys were used"
        ))
    } else {
        Verdict::fail(stale.join("; "))
    }
}

async fn container_matches(node: &Node, svc: &str) -> Verdict {
    let container = if svc == "postgres" {
        node.target().postgres.container.clone()
    } else {
        node.target()
            .services
            .get(svc)
            .and_then(|s| s.container.clone())
    };
    let Some(container) = container else {
        return Verdict::skip(format!("no container named for {svc}"));
    };
    let Some(rel) = node.env_rel(svc) else {
        return Verdict::skip(format!("no .env for {svc}"));
    };
    let Some(file) = node.current().files.get(rel) else {
        return Verdict::fail(format!("{} cannot be read", rel.display()));
    };
    let env = match node.container_env(&container).await {
        Ok(e) => e,
        Err(v) => return v,
    };
    let in_container: BTreeMap<&str, &str> =
        env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // What Compose gives the container on `up`: its env_file, then its `environment:`,
    // interpolated from the project `.env` (which a `restart` does not read again).
    let mut expected: BTreeMap<&str, (String, String)> = file
        .iter()
        .map(|(k, v)| (k.as_str(), (v.clone(), rel.display().to_string())))
        .collect();
    let wiring = Service::parse(svc)
        .map(|s| node.target().profile.wiring(s))
        .unwrap_or_default();
    let project = Path::new(PROJECT_ENV);
    for w in &wiring {
        let value =
            w.interpolated_value(|name| node.current().value(project, name).map(str::to_string));
        if let (Some(value), ::node::profile::Source::Interpolated { variable }) =
            (value, &w.source)
        {
            let from = format!("{PROJECT_ENV} ({variable}, interpolated on `up`)");
            expected.insert(w.variable.as_str(), (value, from));
        }
    }
    let same = |k: &str, c: &str, v: &str| same_as_read(&wiring, k, c, v);
    let mut problems = Vec::new();
    for (k, (v, from)) in &expected {
        match in_container.get(k) {
            Some(c) if same(k, c, v) => {}
            Some(_) => problems.push(format!("{k} differs from {from}")),
            None => problems.push(format!("{k} is in {from} but not in the container")),
        }
    }
    for k in in_container.keys() {
        if is_secret_name(k) && !expected.contains_key(k) {
            problems.push(format!(
                "{k} is in the container but not in {}",
                rel.display()
            ));
        }
    }
    let fallen_back: Vec<String> = wiring
        .iter()
        .filter_map(|w| match &w.when_missing {
            ::node::profile::WhenMissing::FallsBack { to }
                if !in_container.contains_key(w.variable.as_str()) =>
            {
                Some(format!(
                    "{} is not in the container: it runs on its fallback, {to}",
                    w.variable
                ))
            }
            _ => None,
        })
        .collect();
    if !fallen_back.is_empty() {
        return Verdict::fail(format!(
            "{container} ({svc}): {}",
            fallen_back
                .into_iter()
                .chain(problems)
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    if problems.is_empty() {
        Verdict::pass(format!(
            "{container}: env equals {} ({} variables)",
            rel.display(),
            expected.len()
        ))
    } else {
        Verdict::fail(format!(
            "{container} ({svc}): {} — recreate it (a restart keeps the env it was created with)",
            problems.join("; ")
        ))
    }
}

/// Whether a container's value `c` of `variable` is the file's `v` as the service reads it: the
/// same text, or, for a URL the profile puts a secret in, the same URL once decoded (`%2F` and
/// `%2f` are one `/`).
fn same_as_read(
    wiring: &[::node::profile::SecretWiring],
    variable: &str,
    c: &str,
    v: &str,
) -> bool {
    let scheme = |u: &str| u.split_once("://").map(|(s, _)| s.to_string());
    c == v
        || wiring.iter().any(|w| {
            w.variable == variable
                && matches!(w.form, ::node::profile::Form::Url { .. })
                && wiring::DbUrl::parse(c).is_some()
                && wiring::DbUrl::parse(c) == wiring::DbUrl::parse(v)
                && scheme(c) == scheme(v)
        })
}

async fn shared_agree(node: &Node) -> Verdict {
    let files = &node.current().files;
    let mut groups: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for (rel, vars) in files {
        let user = vars
            .iter()
            .find(|(k, _)| k == "NATS_USER")
            .map(|(_, v)| v.as_str());
        // The service whose `.env` this is, for the secrets its profile puts inside URLs.
        let service = node
            .target()
            .services
            .iter()
            .find(|(_, s)| &s.env == rel)
            .and_then(|(key, _)| Service::parse(key));
        for (k, v) in vars {
            let in_url = service.and_then(|s| {
                node.target().profile.wiring(s).into_iter().find(|w| {
                    &w.variable == k && matches!(w.form, ::node::profile::Form::Url { .. })
                })
            });
            if let Some(w) = in_url {
                let group = match w.secret.as_str() {
                    "DB_PASSWORD" => "DB_PASSWORD (and PostgreSQL's POSTGRES_PASSWORD)".to_string(),
                    other => other.to_string(),
                };
                groups
                    .entry(group)
                    .or_default()
                    .entry(w.decode(v).unwrap_or_default())
                    .or_default()
                    .push(format!("{}:{k}", rel.display()));
                continue;
            }
            let group = match k.as_str() {
                "DB_PASSWORD" | "POSTGRES_PASSWORD" => {
                    "DB_PASSWORD (and PostgreSQL's POSTGRES_PASSWORD)".to_string()
                }
                "NATS_PASSWORD" => format!("NATS_PASSWORD of user `{}`", user.unwrap_or("?")),
                k if is_secret_name(k) => k.to_string(),
                _ => continue,
            };
            groups
                .entry(group)
                .or_default()
                .entry(v.clone())
                .or_default()
                .push(format!("{}:{k}", rel.display()));
        }
    }
    let disagreements: Vec<String> = groups
        .iter()
        .filter(|(_, values)| values.len() > 1)
        .map(|(group, values)| {
            let mut sides: Vec<&Vec<String>> = values.values().collect();
            sides.sort_by_key(|s| std::cmp::Reverse(s.len()));
            let odd: Vec<String> = sides[1..].iter().flat_map(|s| s.iter().cloned()).collect();
            format!(
                "{group}: {} differ from {}",
                odd.join(", "),
                sides[0].join(", ")
            )
        })
        .collect();
    let shared = groups
        .values()
        .filter(|v| v.values().map(Vec::len).sum::<usize>() > 1)
        .count();
    if disagreements.is_empty() {
        Verdict::pass(format!(
            "{shared} shared secrets agree across {} files",
            files.len()
        ))
    } else {
        Verdict::fail(disagreements.join("; "))
    }
}

async fn file_modes(node: &Node) -> Verdict {
    let mut bad = Vec::new();
    for path in node.target().env_paths() {
        match node.stat(&path).await {
            Ok(s) if s.mode & 0o077 != 0 => {
                bad.push(format!("{} is mode {:04o}", path.display(), s.mode))
            }
            Ok(_) => {}
            Err(e) => bad.push(format!("{}: {e}", path.display())),
        }
    }
    if bad.is_empty() {
        Verdict::pass(format!(
            "{} .env files, all 0600 or stricter",
            node.target().env_paths().len()
        ))
    } else {
        Verdict::fail(format!("{} (want 0600)", bad.join("; ")))
    }
}

async fn no_old_keys(node: &Node) -> Verdict {
    let left: Vec<String> = node
        .current()
        .files
        .iter()
        .flat_map(|(rel, vars)| {
            vars.iter()
                .filter(|(k, _)| {
                    ["_OLD", "_NEW", "_PREVIOUS"]
                        .iter()
                        .any(|end| k.ends_with(end))
                })
                .map(move |(k, _)| format!("{} still has {k}", rel.display()))
        })
        .collect();
    if left.is_empty() {
        Verdict::pass("no *_OLD, *_NEW or *_PREVIOUS variable in any .env")
    } else {
        Verdict::fail(left.join("; "))
    }
}

async fn backup_files(node: &Node) -> Result<Vec<(PathBuf, FileStat)>, Verdict> {
    let Some(dir) = node.target().backups.clone() else {
        return Err(Verdict::skip("no backups directory in the target"));
    };
    let files = node
        .list_files(&dir)
        .await
        .map_err(|e| Verdict::error(format!("{}: {e}", dir.display())))?;
    Ok(files
        .into_iter()
        .filter(|(p, _)| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.contains("backup"))
        })
        .collect())
}

async fn backups_retention(node: &Node) -> Verdict {
    let files = match backup_files(node).await {
        Ok(f) => f,
        Err(v) => return v,
    };
    let retention = Duration::from_secs(node.target().backup_retention_days * 86_400);
    let now = SystemTime::now();
    let old: Vec<String> = files
        .iter()
        .filter_map(|(p, stat)| {
            let age = now.duration_since(stat.modified).ok()?;
            (age > retention)
                .then(|| format!("{} is {} days old", p.display(), age.as_secs() / 86_400))
        })
        .collect();
    if old.is_empty() {
        Verdict::pass(format!(
            "{} backup(s), none older than {} days",
            files.len(),
            node.target().backup_retention_days
        ))
    } else {
        Verdict::fail(format!(
            "{} (retention {} days)",
            old.join("; "),
            node.target().backup_retention_days
        ))
    }
}

async fn backups_encrypted(node: &Node) -> Verdict {
    let files = match backup_files(node).await {
        Ok(f) => f,
        Err(v) => return v,
    };
    let mut clear = Vec::new();
    for (p, stat) in &files {
        let Ok(bytes) = node.read_file(p, PREVIOUS_LIMITS.total_bytes).await else {
            continue;
        };
        // Read as anyone who finds the file would: without the passphrase.
        if let Ok(set) = SecretSet::previous_from_backup(&p.display().to_string(), &bytes, None) {
            let secrets = set.secret_values().len();
            clear.push(format!(
                "{} holds {} .env file(s) with {secrets} secret value(s) in clear (mode {:04o})",
                p.display(),
                set.files.len(),
                stat.mode
            ));
        }
    }
    if clear.is_empty() {
        Verdict::pass(format!(
            "{} backup(s), none readable as a plain archive of .env files",
            files.len()
        ))
    } else {
        Verdict::fail(clear.join("; "))
    }
}

async fn git_tracked(node: &Node) -> Verdict {
    let Some(repo) = node.target().repo.clone() else {
        return Verdict::skip("no git repository in the target (`repo`)");
    };
    let tracked = match node.tracked(&repo).await {
        Ok(t) => t,
        Err(e) => return Verdict::error(e),
    };
    let mut secrets = node.current().secret_values();
    if let Some(p) = node.previous() {
        secrets.extend(
            p.secret_values()
                .into_iter()
                .map(|(k, v)| (format!("previous {k}"), v)),
        );
    }
    let mut found: Vec<String> = tracked
        .paths
        .iter()
        .filter(|rel| rel.file_name().is_some_and(|n| n == ".env"))
        .map(|rel| format!("{} is tracked", rel.display()))
        .collect();
    for (rel, bytes) in &tracked.contents {
        if rel.file_name().is_some_and(|n| n == ".env") {
            continue;
        }
        let text = String::from_utf8_lossy(bytes);
        for (name, value) in &secrets {
            if value.len() >= 6 && text.contains(value.as_str()) {
                found.push(format!("{} contains the value of {name}", rel.display()));
            }
        }
    }
    if found.is_empty() {
        Verdict::pass(format!(
            "{} tracked files, none holds a secret value",
            tracked.paths.len()
        ))
    } else {
        Verdict::fail(found.join("; "))
    }
}

async fn auth_errors(node: &Node, svc: &str) -> Verdict {
    let t = node.target();
    let container = match svc {
        "postgres" => t.postgres.container.clone(),
        "nats" => t.nats.container.clone(),
        s => t.services.get(s).and_then(|s| s.container.clone()),
    };
    let Some(container) = container else {
        return Verdict::skip(format!("no container named for {svc}"));
    };
    let (since, window) = match t.since {
        Some(s) => (s, "since the rotation".to_string()),
        None => (
            SystemTime::now() - DEFAULT_LOG_WINDOW,
            format!(
                "in the last {} min (no rotation time given)",
                DEFAULT_LOG_WINDOW.as_secs() / 60
            ),
        ),
    };
    let logs = match node.container_logs(&container, since).await {
        Ok(l) => l,
        Err(v) => return v,
    };
    let hits: Vec<&str> = logs
        .lines()
        // This tool's own login attempts (the previous credentials) carry its client name.
        .filter(|l| !l.contains(PROBE_NAME))
        .filter(|l| {
            let lower = l.to_lowercase();
            AUTH_ERROR_PATTERNS.iter().any(|p| lower.contains(p))
        })
        .collect();
    match hits.first() {
        None => Verdict::pass(format!(
            "no authentication error in {container}'s logs {window}"
        )),
        Some(first) => Verdict::fail(format!(
            "{} authentication error line(s) in {container}'s logs {window}; first: {}",
            hits.len(),
            first.trim()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Outcome;

    #[test]
    fn a_provider_rate_limiting_a_held_key_is_neither_accepted_nor_refused() {
        let limited = [
            "deepseek answered 429 for router's DEEPSEEK_API_KEY (neither accepted nor refused)"
                .to_string(),
        ];
        let v = held_verdict("router", &[], &[], &limited);
        assert_eq!(
            (v.outcome, v.evidence.as_str()),
            (
                Outcome::Skip,
                "deepseek answered 429 for router's DEEPSEEK_API_KEY (neither accepted nor refused)"
            )
        );
        let v = held_verdict("router", &["NATS as `router`".to_string()], &[], &limited);
        assert_eq!(v.outcome, Outcome::Pass);
        let refused = ["mistral answered 401 for router's MISTRAL_API_KEY".to_string()];
        let v = held_verdict("router", &[], &refused, &limited);
        assert_eq!(
            (v.outcome, v.evidence.as_str()),
            (
                Outcome::Fail,
                "mistral answered 401 for router's MISTRAL_API_KEY; deepseek answered 429 for router's DEEPSEEK_API_KEY (neither accepted nor refused)"
            )
        );
    }

    #[test]
    fn a_url_in_the_container_matches_its_file_when_it_reads_the_same_password_and_user() {
        let url = ::node::profile::NodeProfile::named_or_file("database-url").unwrap();
        let wiring = url.wiring(Service::Memory);
        let file = "postgresql+psycopg://daarion:p%2Fw@dagi-postgres:5432/daarion_main";
        let lower = "postgresql+psycopg://daarion:p%2fw@dagi-postgres:5432/daarion_main";
        assert!(same_as_read(&wiring, "DATABASE_URL", lower, file));
        let other_user =
            "postgresql+psycopg://daarion_rotation:p%2Fw@dagi-postgres:5432/daarion_main";
        assert!(!same_as_read(&wiring, "DATABASE_URL", other_user, file));
        let other_password = "postgresql+psycopg://daarion:p%2Fx@dagi-postgres:5432/daarion_main";
        assert!(!same_as_read(&wiring, "DATABASE_URL", other_password, file));
        // A plain variable is compared as text.
        assert!(!same_as_read(&wiring, "QDRANT_API_KEY", "a%2f", "a%2F"));
    }
}
