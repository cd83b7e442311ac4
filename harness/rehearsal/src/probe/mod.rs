//! The traffic probe: Telegram updates created at a constant rate and delivered to the gateway's
//! webhook as Telegram delivers them (`telegram.rs`: a queue, at most `max_connections`
//! connections, backoff, nothing dropped), JWT-authenticated API calls and direct JetStream
//! publishes with bounded in-flight requests, each outcome on a 50 ms timeline; the probe's own
//! scheduling lag and host-side errors as evidence of the harness's health; then the accounting:
//! every accepted update and event looked up in PostgreSQL. Lost means accepted and never stored.

use futures::stream::{FuturesUnordered, StreamExt};
use harness::client::gateway_jwt;
use harness::services::Service;
use harness::stack::Stack;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// The probe's recent outcomes, readable while it runs (safeguards read it between steps).
#[derive(Debug, Default)]
pub struct Live {
    recent: std::sync::Mutex<std::collections::VecDeque<(Instant, bool)>>,
}

impl Live {
    fn record(&self, ok: bool) {
        let mut r = self.recent.lock().expect("live lock");
        r.push_back((Instant::now(), ok));
        while r.len() > 10_000 {
            r.pop_front();
        }
    }

    /// The failure rate of all flows over the last `window`, and how many attempts it rests on.
    pub fn failure_rate(&self, window: Duration) -> (f64, usize) {
        let r = self.recent.lock().expect("live lock");
        let since = Instant::now() - window;
        let (mut n, mut failed) = (0, 0);
        for (at, ok) in r.iter().rev().take_while(|(at, _)| *at >= since) {
            let _ = at;
            n += 1;
            if !ok {
                failed += 1;
            }
        }
        (
            if n == 0 {
                0.0
            } else {
                failed as f64 / n as f64
            },
            n,
        )
    }
}

/// Width of a timeline bucket.
pub const BUCKET_MS: u64 = 50;
/// JetStream probe ids start here, apart from webhook update ids.
const JETSTREAM_ID_BASE: i64 = 1_000_000_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeConfig {
    /// Telegram updates per second through the gateway's webhook.
    pub rate: f64,
    /// JWT API calls per second.
    pub api_rate: f64,
    /// Direct JetStream publishes per second.
    pub jetstream_rate: f64,
    /// How long undelivered updates are still tried after the probe stops (the drain window);
    /// what is left is reported as backlog, with its age — Telegram would keep it for 24 h.
    pub retry_window: Duration,
    /// How Telegram delivers: connections, backoff, timeout.
    pub telegram: super::telegram::TelegramConfig,
    /// API calls and JetStream publishes in flight at most per flow (their clients' pools).
    pub max_in_flight: usize,
    /// The API client's retry policy: an idempotent GET that got no HTTP answer at all
    /// (connection refused or reset, a timeout) is sent again up to this many times …
    #[serde(default)]
    pub api_retries: u32,
    /// … after this many milliseconds, doubling each time (250: 0.25 + 0.5 + 1 + 2 s). An
    /// answer, whatever its status (401 included), is never retried.
    #[serde(default)]
    pub api_backoff_ms: u64,
    /// How long to wait for workers to process everything accepted before counting.
    pub drain: Duration,
    /// Added to every id, so two probes on one node never reuse an update id.
    pub id_offset: i64,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            rate: 100.0,
            api_rate: 10.0,
            jetstream_rate: 10.0,
            retry_window: Duration::from_secs(20),
            telegram: super::telegram::TelegramConfig::default(),
            max_in_flight: 16,
            api_retries: 4,
            api_backoff_ms: 250,
            drain: Duration::from_secs(20),
            id_offset: 0,
        }
    }
}

pub use containers::DownSpan;

mod accounting;
mod clients;
pub mod containers;
mod recorder;
mod report;
pub mod telegram;
pub use accounting::*;
pub use clients::*;
use recorder::*;
pub use report::*;

/// The kernel's CPU pressure counter: microseconds in which some runnable task waited for a
/// CPU (`/proc/pressure/cpu`, "some … total="), since boot.
pub(super) fn cpu_pressure_us() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/pressure/cpu").ok()?;
    let some = text.lines().find(|l| l.starts_with("some "))?;
    some.split_whitespace()
        .find_map(|f| f.strip_prefix("total="))?
        .parse()
        .ok()
}

/// What the probe's clock did: when it stopped sending, its own lags, what it recorded, and
/// how many updates it created.
struct Clocked {
    stopped_at: u64,
    lags: Vec<u64>,
    rec: Recorder,
    created: u64,
}

/// The probe's clocks: one per client at its rate, and its own, whose lateness is the harness's
/// scheduling lag.
struct Ticks {
    webhook: tokio::time::Interval,
    api: tokio::time::Interval,
    jetstream: tokio::time::Interval,
    lag: tokio::time::Interval,
}

impl Ticks {
    fn new(config: &ProbeConfig) -> Ticks {
        let at_rate = |rate: f64| {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate.max(0.001)));
            // Users write at a constant rate whatever the probe's loop does: a late tick is
            // made up at once. The API and JetStream clients send at most `max_in_flight` at a
            // time; what they owe meanwhile waits, as a pooled client's requests wait for a
            // connection.
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            tick
        };
        let mut lag = tokio::time::interval(Duration::from_millis(BUCKET_MS));
        lag.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        Ticks {
            webhook: at_rate(config.rate),
            api: at_rate(config.api_rate),
            jetstream: at_rate(config.jetstream_rate),
            lag,
        }
    }
}

/// The clients' traffic on the probe's clock until `stop` is set and the calls in flight end:
/// Telegram updates created at `rate` (sent to `arrivals`, Telegram's side), API calls and
/// JetStream publishes at theirs, at most `max_in_flight` each at a time.
async fn drive(
    config: &ProbeConfig,
    stop: &AtomicBool,
    live: &Live,
    api: &ApiClient<'_>,
    publisher: &Publisher<'_>,
    arrivals: tokio::sync::mpsc::UnboundedSender<i64>,
) -> Clocked {
    use futures::FutureExt;
    let start = api.start;
    let mut rec = Recorder::default();
    let mut arrivals = Some(arrivals);
    let mut inflight: FuturesUnordered<futures::future::BoxFuture<'_, Event>> =
        FuturesUnordered::new();
    let mut ticks = Ticks::new(config);
    let mut lags: Vec<u64> = Vec::new();
    let (mut api_owed, mut js_owed, mut api_inflight, mut js_inflight) =
        (0u64, 0u64, 0usize, 0usize);
    let (mut next_id, mut next_js) = (1 + config.id_offset, JETSTREAM_ID_BASE + config.id_offset);
    let mut sending = true;
    let mut stopped_at = 0;
    loop {
        if sending && stop.load(Ordering::SeqCst) {
            sending = false;
            stopped_at = since(start, Instant::now());
            // No more updates: Telegram delivers what it holds, then the delivery ends.
            arrivals = None;
        }
        while api_owed > 0 && api_inflight < config.max_in_flight {
            inflight.push(api.call().boxed());
            api_owed -= 1;
            api_inflight += 1;
        }
        while js_owed > 0 && js_inflight < config.max_in_flight {
            inflight.push(publisher.publish(next_js).boxed());
            next_js += 1;
            js_owed -= 1;
            js_inflight += 1;
        }
        if !sending && inflight.is_empty() {
            break;
        }
        tokio::select! {
            _ = ticks.webhook.tick(), if sending && config.rate > 0.0 => {
                rec.updates.insert(next_id, (0, false));
                if let Some(a) = &arrivals {
                    let _ = a.send(next_id);
                }
                next_id += 1;
            }
            _ = ticks.api.tick(), if sending && config.api_rate > 0.0 => api_owed += 1,
            _ = ticks.jetstream.tick(), if sending && config.jetstream_rate > 0.0 => js_owed += 1,
            scheduled = ticks.lag.tick() => {
                lags.push(scheduled.elapsed().as_millis() as u64);
            }
            Some(event) = inflight.next(), if !inflight.is_empty() => {
                match &event {
                    Event::Api { .. } => api_inflight -= 1,
                    Event::Jetstream { .. } => js_inflight -= 1,
                }
                rec.event(event, live);
            }
        }
    }
    lags.sort_unstable();
    Clocked {
        stopped_at,
        lags,
        rec,
        created: (next_id - 1 - config.id_offset) as u64,
    }
}

/// Runs until `stop` is set, then lets Telegram's queue drain (at most `retry_window`) and
/// counts. `queue` is the scenario's Telegram queue: updates pending from an earlier run are
/// delivered first, and what is still pending at the end stays in it. The API client's tokens
/// come from the running gateway's secret (`jwt_secret` while it cannot be read);
/// `nats_password` is the gateway user's, for direct publishes; `db_passwords` are tried in
/// order for the accounting (the harness knows which passwords the server may hold).
#[allow(clippy::too_many_arguments)]
pub async fn run(
    stack: &Stack,
    config: &ProbeConfig,
    queue: &mut super::telegram::Queue,
    stop: &AtomicBool,
    live: &Live,
    jwt_secret: &str,
    nats_password: &str,
    db_passwords: &[String],
) -> ProbeReport {
    let start = Instant::now();
    let containers = super::containers::ContainerWatch::start(stack, SystemTime::now());
    let cpu_before = cpu_counters();
    let pressure_before = cpu_pressure_us().map(|us| (us, Instant::now()));
    let host_errors = AtomicU64::new(0);
    let api = ApiClient::new(stack, config, jwt_secret, &host_errors, start);
    let publisher = Publisher::new(stack, nats_password, start);

    // Telegram's side: updates are created on the clock and delivered from the queue.
    let (arrivals, arriving) = tokio::sync::mpsc::unbounded_channel::<i64>();
    let carried_over = queue.len() as u64;
    let delivery = super::telegram::deliver(
        &config.telegram,
        queue,
        arriving,
        || stack.url(Service::Gateway),
        config.retry_window,
        |attempt| live.record(attempt.ok),
    );
    let clock = drive(config, stop, live, &api, &publisher, arrivals);
    let (delivered, mut clocked) = tokio::join!(delivery, clock);
    let end = since(start, Instant::now());
    let containers_down = containers.stop();

    let failures = clocked.rec.webhook(&delivered, start, &host_errors);
    let backlog = queue.len() as u64;
    let flows = clocked.rec.flows(
        clocked.created + carried_over,
        clocked.created,
        backlog,
        end,
        clocked.stopped_at,
    );
    let accepted: Vec<i64> = delivered.delivered.keys().copied().collect();
    let published: Vec<i64> = clocked
        .rec
        .jetstream
        .iter()
        .filter(|(_, ok)| **ok)
        .map(|(id, _)| *id)
        .collect();
    let data = account(stack, db_passwords, &accepted, &published, config.drain).await;
    let rec = clocked.rec;
    ProbeReport {
        config: config.clone(),
        duration_ms: end,
        updates_ok: rec.updates_ok(),
        updates_delayed: rec.updates_delayed(),
        flows,
        // Accepted by the gateway (2xx) and never stored: the only updates truly lost.
        updates_lost: data.missing_gateway_rows,
        telegram: telegram_report(config, &delivered, queue, failures, start),
        harness: harness_health(
            &clocked.lags,
            host_errors.load(Ordering::Relaxed),
            cpu_before,
            pressure_before,
        ),
        timeline: rec
            .timeline
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        containers_down,
        data,
    }
}

/// A PostgreSQL connection for the accounting, with the first of `passwords` the server takes.
pub(super) async fn accounting_connection(
    stack: &Stack,
    passwords: &[String],
) -> Result<tokio_postgres::Client, String> {
    let mut last_error = String::new();
    for p in passwords {
        match harness::client::pg_connect(stack, p).await {
            Ok(c) => return Ok(c),
            Err(e) => last_error = e,
        }
    }
    Err(format!(
        "cannot read PostgreSQL for the accounting: {last_error}"
    ))
}

#[cfg(test)]
mod tests {
    use super::longest_outage;

    #[test]
    fn outage_is_the_gap_between_successes_around_failures() {
        let a = [
            (0, true),
            (100, true),
            (150, false),
            (400, false),
            (900, true),
            (950, true),
        ];
        assert_eq!(longest_outage(&a, 1000), 800);
        assert_eq!(longest_outage(&[(0, true), (50, true)], 100), 0);
        assert_eq!(longest_outage(&[(0, true), (300, false)], 1000), 1000);
    }
}

#[cfg(test)]
mod api_client_tests {
    use super::{api_call, ProbeConfig};
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A port nothing listens on (yet).
    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// Answers every request on `port` with `status`, from `after` on.
    fn serve(port: u16, status: &'static str, after: Duration) {
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .unwrap();
            loop {
                let (mut conn, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = conn.read(&mut buf).await;
                    let response = format!(
                        "HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}"
                    );
                    let _ = conn.write_all(response.as_bytes()).await;
                });
            }
        });
    }

    fn policy() -> ProbeConfig {
        ProbeConfig {
            api_retries: 4,
            api_backoff_ms: 100,
            ..ProbeConfig::default()
        }
    }

    fn client() -> reqwest::Client {
        reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(200))
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn a_call_refused_while_the_gateway_is_replaced_is_answered_on_a_retry() {
        let port = free_port();
        serve(port, "200 OK", Duration::from_millis(250));
        let url = format!("http://127.0.0.1:{port}/api/v1/agents");
        let (ok, attempts) = api_call(&client(), &url, "t", &policy(), &|_| {}).await;
        let outcomes: Vec<bool> = attempts.iter().map(|(_, ok)| *ok).collect();
        // Refused until the server is back (0.25 s), then answered: one call, ok, its failed
        // attempts on the timeline (at 0 and 0.1 s on an idle machine, answered at 0.3 s).
        assert!(ok, "{outcomes:?}");
        assert_eq!(outcomes.first(), Some(&false), "{outcomes:?}");
        assert_eq!(outcomes.iter().filter(|ok| **ok).count(), 1, "{outcomes:?}");
        assert_eq!(outcomes.last(), Some(&true), "{outcomes:?}");
    }

    #[tokio::test]
    async fn a_call_answered_401_is_never_retried() {
        let port = free_port();
        serve(port, "401 Unauthorized", Duration::ZERO);
        tokio::time::sleep(Duration::from_millis(50)).await;
        let url = format!("http://127.0.0.1:{port}/api/v1/agents");
        let (ok, attempts) = api_call(&client(), &url, "t", &policy(), &|_| {}).await;
        assert_eq!((ok, attempts.len()), (false, 1));
    }

    #[tokio::test]
    async fn a_call_nothing_answers_fails_after_one_try_and_its_four_retries() {
        let url = format!("http://127.0.0.1:{}/api/v1/agents", free_port());
        let errors = std::sync::atomic::AtomicU32::new(0);
        let count = |_: &reqwest::Error| {
            errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        };
        let (ok, attempts) = api_call(&client(), &url, "t", &policy(), &count).await;
        assert_eq!((ok, attempts.len()), (false, 5));
        assert_eq!(errors.into_inner(), 5);
    }
}
