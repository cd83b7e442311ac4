//! The JWT API client (its token renewed from the running gateway, unanswered calls retried as
//! pooled clients retry) and the JetStream publisher (with the gateway's current credentials).

#[allow(unused_imports)]
use super::*;

/// One call of the API client under its retry policy (`ProbeConfig::api_retries`,
/// `api_backoff_ms`): sent again only when nothing answered, as a client's connect and read
/// retries do; any answer, 401 included, ends it. Returns whether it was answered 2xx, and every
/// attempt (when, ok). `transport_error` sees each error that got no answer.
pub async fn api_call(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    config: &ProbeConfig,
    transport_error: &(dyn Fn(&reqwest::Error) + Sync),
) -> (bool, Vec<(Instant, bool)>) {
    let mut attempts = Vec::new();
    let mut backoff = Duration::from_millis(config.api_backoff_ms);
    loop {
        let answered = match http.get(url).bearer_auth(token).send().await {
            Ok(r) => Some(r.status().is_success()),
            Err(e) => {
                transport_error(&e);
                None
            }
        };
        let ok = answered == Some(true);
        attempts.push((Instant::now(), ok));
        if answered.is_some() || attempts.len() > config.api_retries as usize {
            return (ok, attempts);
        }
        tokio::time::sleep(backoff).await;
        backoff *= 2;
    }
}

/// How often the probe's API client renews its token (the node's clients renew hourly; the
/// rehearsal's time is scaled down).
pub const TOKEN_RENEWAL: Duration = Duration::from_secs(10);

/// Counts a client error the host caused (no port, no file descriptor), classified as the
/// webhook's deliveries are.
pub(super) fn count_host_side(e: &reqwest::Error, host_errors: &AtomicU64) {
    use std::error::Error;
    let mut source = e.source();
    while let Some(inner) = source {
        if let Some(io) = inner.downcast_ref::<std::io::Error>() {
            if crate::telegram::FailureCause::of_io(io).is_harness_side() {
                host_errors.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        source = inner.source();
    }
}

/// The API client: `GET /api/v1/agents` on the gateway under its retry policy, with a token
/// issued by the gateway running when the client starts, then renewed every `TOKEN_RENEWAL`,
/// as the gateway issues tokens, with the `JWT_SECRET` the running gateway was created with
/// (the token held is kept while the gateway cannot be inspected).
pub(super) struct ApiClient<'a> {
    pub(super) stack: &'a Stack,
    pub(super) config: &'a ProbeConfig,
    pub(super) http: reqwest::Client,
    pub(super) token: tokio::sync::Mutex<(Instant, String)>,
    pub(super) host_errors: &'a AtomicU64,
    pub(super) start: Instant,
}

impl<'a> ApiClient<'a> {
    pub(super) fn new(
        stack: &'a Stack,
        config: &'a ProbeConfig,
        jwt_secret: &str,
        host_errors: &'a AtomicU64,
        start: Instant,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .connect_timeout(Duration::from_millis(500))
            .pool_idle_timeout(Duration::from_secs(2))
            .pool_max_idle_per_host(config.max_in_flight)
            .build()
            .expect("http client");
        let renew_now = Instant::now()
            .checked_sub(TOKEN_RENEWAL)
            .unwrap_or_else(Instant::now);
        ApiClient {
            stack,
            config,
            http,
            token: tokio::sync::Mutex::new((renew_now, gateway_jwt(jwt_secret, "rehearsal-probe"))),
            host_errors,
            start,
        }
    }

    pub(super) async fn token(&self) -> String {
        let mut guard = self.token.lock().await;
        if guard.0.elapsed() >= TOKEN_RENEWAL {
            guard.0 = Instant::now();
            let running = tokio::time::timeout(
                Duration::from_secs(1),
                self.stack.container_env(Service::Gateway),
            )
            .await;
            if let Some(secret) = running
                .ok()
                .and_then(|env| env.ok())
                .and_then(|env| env.get("JWT_SECRET").cloned())
            {
                guard.1 = gateway_jwt(&secret, "rehearsal-probe");
            }
        }
        guard.1.clone()
    }

    pub(super) async fn call(&self) -> Event {
        let token = self.token().await;
        let url = format!("{}/api/v1/agents", self.stack.url(Service::Gateway));
        let host_side = |e: &reqwest::Error| count_host_side(e, self.host_errors);
        let (ok, attempts) = api_call(&self.http, &url, &token, self.config, &host_side).await;
        let attempts = attempts
            .into_iter()
            .map(|(at, ok)| (since(self.start, at), ok))
            .collect();
        Event::Api { ok, attempts }
    }
}

/// (address, user, password) and the JetStream context connected with them.
pub(super) type Session = (String, String, String, async_nats::jetstream::Context);

/// The JetStream client: publishes as a peer of the gateway, with the NATS user and password
/// in the gateway's `.env`, picked up when the file changes (as a client recreated from it
/// would), at the address NATS has now (the replica's port moves when its container restarts;
/// production's does not): a changed address or credential means a new connection.
pub(super) struct Publisher<'a> {
    pub(super) stack: &'a Stack,
    /// The gateway user's credentials while its `.env` cannot be read.
    pub(super) fallback: (String, String),
    pub(super) session: tokio::sync::Mutex<Option<Session>>,
    pub(super) start: Instant,
}

impl<'a> Publisher<'a> {
    pub(super) fn new(stack: &'a Stack, nats_password: &str, start: Instant) -> Self {
        Publisher {
            stack,
            fallback: ("gateway".to_string(), nats_password.to_string()),
            session: tokio::sync::Mutex::new(None),
            start,
        }
    }

    pub(super) fn credentials(&self) -> (String, String) {
        self.stack
            .root()
            .read_env(Service::Gateway)
            .ok()
            .and_then(|f| {
                Some((
                    f.get("NATS_USER")?.to_string(),
                    f.get("NATS_PASSWORD")?.to_string(),
                ))
            })
            .unwrap_or_else(|| self.fallback.clone())
    }

    pub(super) async fn connect(
        url: String,
        user: String,
        password: String,
    ) -> Option<async_nats::jetstream::Context> {
        async_nats::ConnectOptions::with_user_and_password(user, password)
            .name("rehearsal-probe")
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(1))
            .reconnect_delay_callback(|n| Duration::from_millis((100 * n as u64).min(500)))
            .connect(url)
            .await
            .ok()
            .map(async_nats::jetstream::new)
    }

    /// The context for the current address and credentials, connecting when they changed.
    pub(super) async fn context(&self) -> Option<async_nats::jetstream::Context> {
        let url = self.stack.nats_url();
        let (user, password) = self.credentials();
        let mut guard = self.session.lock().await;
        let current = guard
            .as_ref()
            .is_some_and(|(u, n, p, _)| u == &url && n == &user && p == &password);
        if !current {
            *guard = Self::connect(url.clone(), user.clone(), password.clone())
                .await
                .map(|js| (url, user, password, js));
        }
        guard.as_ref().map(|(.., js)| js.clone())
    }

    pub(super) async fn publish(&self, id: i64) -> Event {
        let ok = match self.context().await {
            Some(js) => {
                let payload = serde_json::json!({"update_id": id, "source": "probe"}).to_string();
                let sent = tokio::time::timeout(Duration::from_secs(2), async {
                    js.publish(format!("events.probe.{id}"), payload.into())
                        .await?
                        .await
                })
                .await;
                matches!(sent, Ok(Ok(_)))
            }
            None => false,
        };
        Event::Jetstream {
            id,
            ok,
            at: since(self.start, Instant::now()),
        }
    }
}
