//! The fault catalogue a scenario attaches to a step boundary or a time: container faults
//! (kill -9, stop, a hang by SIGSTOP, restart, a crash loop), network faults (a service cut off from the
//! stack's network; latency, stalls, refused connections and resets through the fault proxy in
//! front of PostgreSQL and NATS), configuration faults (an `.env` the update missed), upstream
//! faults (a key revoked early, the new key rejected, 429s, slow answers), NATS reloads and
//! PostgreSQL's connection limit. Each one is undone by its `teardown`, which the engine calls
//! when the fault's time is up, at the end of the phases, and again whatever happened.

use futures::future::BoxFuture;
use futures::FutureExt;
use harness::client::ReplicaClient;
use harness::services::Service;
use harness::stack::Stack;
use std::sync::Mutex;

/// A fault attached to a step boundary (the fault catalogue fills these in).
pub trait Fault: Send + Sync {
    fn name(&self) -> String;
    /// Injects the fault; returns what it did, for the journal.
    fn inject<'a>(&'a self, stack: &'a Stack) -> BoxFuture<'a, Result<String, String>>;
    /// Removes it; must be safe to call even if `inject` failed.
    fn teardown<'a>(&'a self, stack: &'a Stack) -> BoxFuture<'a, Result<String, String>>;
}

fn done(name: String, r: harness::error::Result<()>) -> Result<String, String> {
    r.map(|()| name).map_err(|e| e.to_string())
}

/// A container fault.
#[derive(Debug, Clone, Copy)]
pub enum ContainerFault {
    /// `docker kill -s KILL`: a crash.
    Kill(Service),
    /// `docker stop`.
    Stop(Service),
    /// A hang: every process of the container stopped with SIGSTOP (it exists, answers
    /// nothing, and `docker stop` / `restart` still end it). Never `docker pause`, which can
    /// deadlock the engine (see `Stack::freeze`).
    Hang(Service),
    /// `docker restart`.
    Restart(Service),
    /// Recreated with a variable missing from its environment and restart policy
    /// `on-failure`: it exits at start and Docker restarts it, again and again. Undone by a
    /// recreate from its `.env`.
    CrashLoop(Service, &'static str),
}

impl Fault for ContainerFault {
    fn name(&self) -> String {
        match self {
            ContainerFault::Kill(s) => format!("kill -9 {}", s.production_name()),
            ContainerFault::Stop(s) => format!("stop {}", s.production_name()),
            ContainerFault::Hang(s) => format!("hang {} (SIGSTOP)", s.production_name()),
            ContainerFault::Restart(s) => format!("restart {}", s.production_name()),
            ContainerFault::CrashLoop(s, var) => {
                format!(
                    "{} crash-loops (recreated without {var})",
                    s.production_name()
                )
            }
        }
    }

    fn inject<'a>(&'a self, stack: &'a Stack) -> BoxFuture<'a, Result<String, String>> {
        async move {
            let r = match *self {
                ContainerFault::Kill(s) => stack.kill(s, "KILL").await,
                ContainerFault::Stop(s) => stack.stop(s).await,
                ContainerFault::Hang(s) => stack.freeze(s).await,
                ContainerFault::Restart(s) => stack.restart(s).await,
                ContainerFault::CrashLoop(s, var) => stack.crash_loop(s, var).await,
            };
            done(format!("{} done", self.name()), r)
        }
        .boxed()
    }

    fn teardown<'a>(&'a self, stack: &'a Stack) -> BoxFuture<'a, Result<String, String>> {
        async move {
            let r = match *self {
                ContainerFault::Kill(s) | ContainerFault::Stop(s) => match stack.inspect(s).await {
                    Ok(i) if i.state.as_ref().and_then(|st| st.running) == Some(true) => Ok(()),
                    _ => stack.start_again(s).await,
                },
                ContainerFault::Hang(s) => stack.thaw(s).await.or(Ok(())),
                ContainerFault::Restart(_) => Ok(()),
                ContainerFault::CrashLoop(s, _) => stack.recreate(s).await,
            };
            done(format!("{} undone", self.name()), r)
        }
        .boxed()
    }
}

/// What the fault proxy does to connections.
#[derive(Debug, Clone, Copy)]
pub enum ProxyEffect {
    /// Each chunk held this long, each way.
    Latency { ms: u64 },
    /// Every byte held until the fault ends (connections stay open).
    Stall,
    /// This fraction of new connections reset at accept (packet loss, as a client sees it
    /// once TCP gives up).
    Refuse { fraction: f64 },
    /// Every current connection reset once (RST).
    Reset,
}

/// A network fault.
#[derive(Debug, Clone, Copy)]
pub enum NetworkFault {
    /// `docker network disconnect`: cut off from every other service until reconnected.
    Disconnect(Service),
    /// Through the fault proxy in front of `to` (PostgreSQL or NATS), for connections from
    /// `from` (every client when `None`).
    Proxy {
        to: Service,
        from: Option<Service>,
        effect: ProxyEffect,
    },
}

impl NetworkFault {
    async fn rule(&self, stack: &Stack) -> Result<(Service, String, Option<String>), String> {
        let NetworkFault::Proxy { to, from, effect } = *self else {
            unreachable!("only proxy faults have a rule");
        };
        let from_ips = match from {
            Some(s) => vec![stack
                .network_ip(s)
                .await
                .map_err(|e| e.to_string())?
                .to_string()],
            None => Vec::new(),
        };
        let rule = match effect {
            ProxyEffect::Latency { ms } => serde_json::json!({"latency_ms": ms, "from": from_ips}),
            ProxyEffect::Stall => serde_json::json!({"stall": true, "from": from_ips}),
            ProxyEffect::Refuse { fraction } => {
                serde_json::json!({"refuse": fraction, "from": from_ips})
            }
            ProxyEffect::Reset => {
                return Ok((
                    to,
                    String::new(),
                    Some(serde_json::json!({ "from": from_ips }).to_string()),
                ))
            }
        };
        Ok((to, rule.to_string(), None))
    }
}

impl Fault for NetworkFault {
    fn name(&self) -> String {
        match self {
            NetworkFault::Disconnect(s) => {
                format!("{} cut off from the network", s.production_name())
            }
            NetworkFault::Proxy { to, from, effect } => {
                let link = format!(
                    "{} → {}",
                    from.map(|s| s.production_name()).unwrap_or("every client"),
                    to.production_name()
                );
                match effect {
                    ProxyEffect::Latency { ms } => format!("{ms} ms latency {link}"),
                    ProxyEffect::Stall => format!("stalled connections {link}"),
                    ProxyEffect::Refuse { fraction } => {
                        format!(
                            "{:.0} % of new connections refused {link}",
                            fraction * 100.0
                        )
                    }
                    ProxyEffect::Reset => format!("connections reset {link}"),
                }
            }
        }
    }

    fn inject<'a>(&'a self, stack: &'a Stack) -> BoxFuture<'a, Result<String, String>> {
        async move {
            match self {
                NetworkFault::Disconnect(s) => done(self.name(), stack.disconnect(*s).await),
                NetworkFault::Proxy { .. } => {
                    let (to, rule, reset) = self.rule(stack).await?;
                    let answer = match reset {
                        Some(body) => stack.fault_proxy(to, "POST", "/reset", &body).await,
                        None => stack.fault_proxy(to, "PUT", "/rule", &rule).await,
                    }
                    .map_err(|e| e.to_string())?;
                    Ok(format!("{}: proxy answered {}", self.name(), answer.trim()))
                }
            }
        }
        .boxed()
    }

    fn teardown<'a>(&'a self, stack: &'a Stack) -> BoxFuture<'a, Result<String, String>> {
        async move {
            match self {
                NetworkFault::Disconnect(s) => {
                    let connected = stack.network_ip(*s).await.is_ok();
                    if connected {
                        return Ok(format!("{} undone (was connected)", self.name()));
                    }
                    let r = stack.reconnect(*s).await;
                    let _ = stack.refresh_ports(*s).await;
                    done(format!("{} undone", self.name()), r)
                }
                NetworkFault::Proxy { to, .. } => stack
                    .fault_proxy(*to, "PUT", "/rule", "{}")
                    .await
                    .map(|_| format!("{} undone", self.name()))
                    .map_err(|e| e.to_string()),
            }
        }
        .boxed()
    }
}

/// A configuration fault.
#[derive(Debug, Clone, Copy)]
pub enum ConfigFault {
    /// The update missed this service's `.env`: `var` holds its value from before the
    /// rotation again. Not undone: the missed file is what the scenario measures.
    EnvMissed { service: Service, var: &'static str },
    /// `var` is gone from this service's `.env` (a hand edit, a template without it): the
    /// service's next recreate starts without it, and falls back where it does. Not undone.
    VariableRemoved { service: Service, var: &'static str },
    /// The operator pasted `step`'s block as written, its placeholder unfilled: `var` in the
    /// router's `.env` holds `literal` (e.g. `<new_key>`), and `provider` is asked whether it
    /// takes that as a key. Not undone: the file is what the scenario measures.
    PastedAsWritten {
        step: &'static str,
        var: &'static str,
        literal: &'static str,
        provider: &'static str,
    },
}

/// What a [`ConfigFault::PastedAsWritten`] is called; the finding it measures is read back
/// from the journal by this marker.
pub const PASTED_AS_WRITTEN: &str = "pasted as written";

impl Fault for ConfigFault {
    fn name(&self) -> String {
        match self {
            ConfigFault::EnvMissed { service, var } => {
                format!(
                    "the update misses {}'s .env ({var})",
                    service.production_name()
                )
            }
            ConfigFault::VariableRemoved { service, var } => {
                format!("{var} removed from {}'s .env", service.production_name())
            }
            ConfigFault::PastedAsWritten {
                step, var, literal, ..
            } => format!(
                "{step} {PASTED_AS_WRITTEN}: {var}={literal} in {}'s .env",
                Service::Router.production_name()
            ),
        }
    }

    fn inject<'a>(&'a self, stack: &'a Stack) -> BoxFuture<'a, Result<String, String>> {
        async move {
            match *self {
                ConfigFault::EnvMissed { service, var } => {
                    let old = stack.initial_secrets().get(var).to_string();
                    done(
                        format!("{}: done", self.name()),
                        stack.edit_env(service, |f| f.set(var, &old)),
                    )
                }
                ConfigFault::VariableRemoved { service, var } => done(
                    format!("{}: done", self.name()),
                    stack.edit_env(service, |f| {
                        f.remove(var);
                    }),
                ),
                ConfigFault::PastedAsWritten {
                    var,
                    literal,
                    provider,
                    ..
                } => {
                    stack
                        .edit_env(Service::Router, |f| f.set(var, literal))
                        .map_err(|e| e.to_string())?;
                    let status = harness::client::ReplicaClient::new(stack)
                        .chat_with_key(provider, literal)
                        .await;
                    Ok(format!(
                        "{}: done; {provider} answers {status} to `{literal}` as a key, which the router sends once it is recreated",
                        self.name()
                    ))
                }
            }
        }
        .boxed()
    }

    fn teardown<'a>(&'a self, _stack: &'a Stack) -> BoxFuture<'a, Result<String, String>> {
        async move {
            Ok(format!(
                "{}: left as it is (the scenario measures it)",
                self.name()
            ))
        }
        .boxed()
    }
}

/// A provider fault, through the fake upstream's admin API.
#[derive(Debug)]
pub enum UpstreamFault {
    /// The provider revokes the router's current key (early, before the rotation is done).
    RevokeCurrentKey {
        provider: &'static str,
        var: &'static str,
    },
    /// The provider rejects the new key the router's `.env` holds at injection: in `var` once
    /// the runbook wrote it there, else in a variable beside it (`{var}_NEW`, as a runbook that
    /// keeps both keys writes it).
    RejectNewKey {
        provider: &'static str,
        var: &'static str,
        revoked: Mutex<Option<String>>,
    },
    /// The provider answers every call with `status` (429: rate limited).
    Status { provider: &'static str, status: u16 },
    /// The provider answers, but only after `delay_ms`.
    Slow {
        provider: &'static str,
        delay_ms: u64,
    },
}

/// The new key `router` holds for `var`: `var`'s value when it is no longer the key the node
/// started with, else the first `{var}_…` variable's that is not.
fn new_key_in(
    router: &harness::envfile::EnvFile,
    var: &str,
    initial: &harness::replica_root::NodeSecrets,
) -> Option<String> {
    let old = initial
        .iter()
        .find(|(name, _)| *name == var)
        .map(|(_, v)| v);
    let beside = format!("{var}_");
    let vars = router.vars();
    let of = |name: &str| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    std::iter::once(of(var))
        .chain(
            vars.iter()
                .filter(|(k, _)| k.starts_with(&beside))
                .map(|(_, v)| Some(v.clone())),
        )
        .flatten()
        .find(|value| Some(value.as_str()) != old)
}

impl UpstreamFault {
    pub fn reject_new_key(provider: &'static str, var: &'static str) -> Self {
        UpstreamFault::RejectNewKey {
            provider,
            var,
            revoked: Mutex::new(None),
        }
    }
}

impl Fault for UpstreamFault {
    fn name(&self) -> String {
        match self {
            UpstreamFault::RevokeCurrentKey { provider, .. } => {
                format!("{provider} revokes the current key early")
            }
            UpstreamFault::RejectNewKey { provider, var, .. } => {
                format!("{provider} rejects the new key ({var})")
            }
            UpstreamFault::Status { provider, status } => format!("{provider} answers {status}"),
            UpstreamFault::Slow { provider, delay_ms } => {
                format!("{provider} answers after {delay_ms} ms")
            }
        }
    }

    fn inject<'a>(&'a self, stack: &'a Stack) -> BoxFuture<'a, Result<String, String>> {
        async move {
            let client = ReplicaClient::new(stack);
            let status = match self {
                UpstreamFault::RevokeCurrentKey { provider, var } => {
                    client
                        .revoke_key(provider, stack.initial_secrets().get(var))
                        .await
                }
                UpstreamFault::RejectNewKey {
                    provider,
                    var,
                    revoked,
                } => {
                    let files = stack.current_env().map_err(|e| e.to_string())?;
                    let Some(router) = files.get(&Service::Router) else {
                        return Err(format!("{}: the router has no .env", self.name()));
                    };
                    let Some(key) = new_key_in(router, var, stack.initial_secrets()) else {
                        return Err(format!(
                            "{}: the router's .env holds no new key in {var} or beside it",
                            self.name()
                        ));
                    };
                    let status = client.revoke_key(provider, &key).await;
                    *revoked.lock().expect("revoked lock") = Some(key);
                    status
                }
                UpstreamFault::Status { provider, status } => {
                    client.set_behaviour(provider, Some(*status), None).await
                }
                UpstreamFault::Slow { provider, delay_ms } => {
                    client.set_behaviour(provider, None, Some(*delay_ms)).await
                }
            };
            if status == 200 {
                Ok(format!("{}: done", self.name()))
            } else {
                Err(format!("{}: admin API answered {status}", self.name()))
            }
        }
        .boxed()
    }

    fn teardown<'a>(&'a self, stack: &'a Stack) -> BoxFuture<'a, Result<String, String>> {
        async move {
            let client = ReplicaClient::new(stack);
            let status = match self {
                UpstreamFault::RevokeCurrentKey { provider, var } => {
                    client
                        .issue_key(provider, stack.initial_secrets().get(var))
                        .await
                }
                UpstreamFault::RejectNewKey {
                    provider, revoked, ..
                } => {
                    let key = revoked.lock().expect("revoked lock").take();
                    match key {
                        Some(key) => client.issue_key(provider, &key).await,
                        None => 200,
                    }
                }
                UpstreamFault::Status { provider, .. } | UpstreamFault::Slow { provider, .. } => {
                    client.set_behaviour(provider, None, None).await
                }
            };
            if status == 200 {
                Ok(format!("{}: undone", self.name()))
            } else {
                Err(format!("{}: admin API answered {status}", self.name()))
            }
        }
        .boxed()
    }
}

/// `SIGHUP` to NATS: a configuration reload while the probe publishes.
#[derive(Debug, Clone, Copy)]
pub struct NatsReload;

impl Fault for NatsReload {
    fn name(&self) -> String {
        "NATS reloads its configuration".into()
    }

    fn inject<'a>(&'a self, stack: &'a Stack) -> BoxFuture<'a, Result<String, String>> {
        async move {
            done(
                format!("{}: SIGHUP sent", self.name()),
                stack.reload_nats().await,
            )
        }
        .boxed()
    }

    fn teardown<'a>(&'a self, _stack: &'a Stack) -> BoxFuture<'a, Result<String, String>> {
        async move { Ok(format!("{}: nothing to undo", self.name())) }.boxed()
    }
}

/// PostgreSQL's `max_connections` reached: the harness opens connections until the server
/// refuses the next one, and holds them until the fault ends.
#[derive(Default)]
pub struct PostgresConnectionsExhausted {
    held: tokio::sync::Mutex<Vec<tokio_postgres::Client>>,
}

impl Fault for PostgresConnectionsExhausted {
    fn name(&self) -> String {
        "PostgreSQL's max_connections reached".into()
    }

    fn inject<'a>(&'a self, stack: &'a Stack) -> BoxFuture<'a, Result<String, String>> {
        async move {
            // Whichever password the server holds now: the initial one, or the one in the
            // `.env` files after a rotation.
            let mut passwords = vec![stack.initial_secrets().get("DB_PASSWORD").to_string()];
            if let Some(p) = stack.current_env().ok().and_then(|f| {
                f.get(&Service::Memory)?
                    .get("DB_PASSWORD")
                    .map(String::from)
            }) {
                passwords.push(p);
            }
            let mut password = None;
            for p in &passwords {
                if harness::client::pg_connect(stack, p).await.is_ok() {
                    password = Some(p.clone());
                    break;
                }
            }
            let Some(password) = password else {
                return Err(format!("{}: no known password logs in", self.name()));
            };
            let mut held = self.held.lock().await;
            let refused = loop {
                // Eight at a time: SCRAM logins are slow enough to matter.
                let batch = (0..8).map(|_| harness::client::pg_connect(stack, &password));
                let mut refused = None;
                for r in futures::future::join_all(batch).await {
                    match r {
                        Ok(c) => held.push(c),
                        Err(e) => refused = Some(e),
                    }
                }
                if let Some(e) = refused {
                    break e;
                }
                if held.len() > 1000 {
                    break "no limit met after 1000 connections".into();
                }
            };
            Ok(format!(
                "{}: {} connections held; the next was refused: {}",
                self.name(),
                held.len(),
                stack.redactor().redact(&refused)
            ))
        }
        .boxed()
    }

    fn teardown<'a>(&'a self, _stack: &'a Stack) -> BoxFuture<'a, Result<String, String>> {
        async move {
            let n = std::mem::take(&mut *self.held.lock().await).len();
            Ok(format!("{}: {n} connections closed", self.name()))
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::new_key_in;
    use harness::envfile::EnvFile;
    use harness::replica_root::NodeSecrets;

    fn router(vars: &[(&str, &str)]) -> EnvFile {
        let mut env = EnvFile::new(std::path::PathBuf::from("router.env"));
        for (k, v) in vars {
            env.set(k, v);
        }
        env
    }

    #[test]
    fn the_new_key_a_provider_rejects_is_the_one_written_in_place_or_beside_the_old() {
        let secrets = NodeSecrets::generate();
        let old = secrets.get("DEEPSEEK_API_KEY").to_string();
        let key = |vars: &[(&str, &str)]| {
            new_key_in(&router(vars), "DEEPSEEK_API_KEY", &secrets).map(|k| k == "sk-new")
        };
        assert_eq!(key(&[("DEEPSEEK_API_KEY", "sk-new")]), Some(true));
        assert_eq!(
            key(&[
                ("DEEPSEEK_API_KEY", &old),
                ("DEEPSEEK_API_KEY_OLD", &old),
                ("DEEPSEEK_API_KEY_NEW", "sk-new"),
            ]),
            Some(true)
        );
        assert_eq!(key(&[("DEEPSEEK_API_KEY", &old)]), None);
    }
}
