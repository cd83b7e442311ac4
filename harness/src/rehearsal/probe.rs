//! The traffic probe: constant-rate Telegram-style updates through the gateway's critical flow
//! (retried the way Telegram retries a webhook), JWT-authenticated API calls and direct
//! JetStream publishes, each outcome on a 50 ms timeline; then the full accounting: every update
//! ok, delayed or lost, every accepted update and event found in PostgreSQL, duplicates counted.

use crate::client::gateway_jwt;
use crate::services::Service;
use crate::stack::Stack;
use futures::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

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

#[derive(Debug, Clone, Serialize)]
pub struct ProbeConfig {
    /// Telegram updates per second through the gateway's webhook.
    pub rate: f64,
    /// JWT API calls per second.
    pub api_rate: f64,
    /// Direct JetStream publishes per second.
    pub jetstream_rate: f64,
    /// How long Telegram keeps retrying one update before it is lost.
    pub retry_window: Duration,
    /// First retry delay; each next one doubles (Telegram's backoff, bounded by the window).
    pub first_retry: Duration,
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
            first_retry: Duration::from_millis(500),
            drain: Duration::from_secs(20),
            id_offset: 0,
        }
    }
}

/// The flows the probe drives.
pub const FLOWS: [&str; 3] = ["webhook", "api", "jetstream"];

/// Success and failure counts of one flow in one bucket.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Bucket {
    pub ok: u32,
    pub fail: u32,
}

/// What happened to every request of one flow.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FlowReport {
    /// Requests sent for the first time (retries not counted).
    pub sent: u64,
    /// Attempts in all (with retries).
    pub attempts: u64,
    pub ok: u64,
    /// Succeeded after one or more failed attempts (webhook only).
    pub delayed: u64,
    /// Failed for good (API, JetStream) or never accepted within the retry window (webhook).
    pub failed: u64,
    /// The longest time between two successes with failures in between, in ms.
    pub longest_outage_ms: u64,
    /// Achieved rate of first sends, per second.
    pub achieved_rate: f64,
}

/// What PostgreSQL holds for what the probe had accepted.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DataReport {
    pub accepted_updates: u64,
    pub missing_gateway_rows: u64,
    pub missing_memories: u64,
    /// worker → accepted events (updates and JetStream publishes) it never recorded.
    pub missing_processed: BTreeMap<String, u64>,
    /// worker → the first accepted events it never recorded (ids; JetStream probe ids are large).
    pub missing_ids: BTreeMap<String, Vec<i64>>,
    /// worker → events delivered more than once (at-least-once delivery shows here).
    pub duplicates: BTreeMap<String, u64>,
    /// `at-least-once` when duplicates were seen, `exactly-once (observed)` otherwise.
    pub delivery: String,
    /// Set when the accounting could not read PostgreSQL.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    pub config: ProbeConfig,
    pub duration_ms: u64,
    pub flows: BTreeMap<String, FlowReport>,
    /// Webhook updates: ok at once, ok after retries, lost.
    pub updates_ok: u64,
    pub updates_delayed: u64,
    pub updates_lost: u64,
    /// flow → buckets of `BUCKET_MS` from the probe's start.
    pub timeline: BTreeMap<String, Vec<Bucket>>,
    pub data: DataReport,
}

impl ProbeReport {
    /// Nothing failed and nothing was lost (delays allowed), and every accepted item is stored.
    pub fn clean(&self) -> bool {
        self.updates_lost == 0
            && self.flows.values().all(|f| f.failed == 0)
            && self.data.error.is_none()
            && self.data.missing_gateway_rows == 0
            && self.data.missing_memories == 0
            && self.data.missing_processed.values().all(|n| *n == 0)
    }

    pub fn longest_outage_ms(&self) -> u64 {
        self.flows
            .values()
            .map(|f| f.longest_outage_ms)
            .max()
            .unwrap_or(0)
    }
}

enum Event {
    Webhook {
        id: i64,
        attempt: u32,
        ok: bool,
        at: u64,
    },
    Api {
        ok: bool,
        at: u64,
    },
    Jetstream {
        id: i64,
        ok: bool,
        at: u64,
    },
}

struct Recorder {
    timeline: BTreeMap<&'static str, Vec<Bucket>>,
    attempts: BTreeMap<&'static str, Vec<(u64, bool)>>,
    updates: BTreeMap<i64, (u32, bool)>,
    api: (u64, u64),
    jetstream: BTreeMap<i64, bool>,
}

impl Recorder {
    fn mark(&mut self, flow: &'static str, at: u64, ok: bool) {
        let buckets = self.timeline.entry(flow).or_default();
        let index = (at / BUCKET_MS) as usize;
        if buckets.len() <= index {
            buckets.resize(index + 1, Bucket::default());
        }
        if ok {
            buckets[index].ok += 1;
        } else {
            buckets[index].fail += 1;
        }
        self.attempts.entry(flow).or_default().push((at, ok));
    }
}

/// When Telegram tries an update again after failed attempt `attempt`, made `since_first` after
/// its first send: the backoff doubles from `first_retry`, and the last try is made at the end of
/// the retry window rather than dropped, so an update is lost only when the whole window failed.
fn next_retry(config: &ProbeConfig, attempt: u32, since_first: Duration) -> Option<Duration> {
    let backoff = config.first_retry * 2u32.saturating_pow(attempt.saturating_sub(1));
    let left = config.retry_window.checked_sub(since_first)?;
    (!left.is_zero()).then(|| backoff.min(left))
}

/// Longest gap between two successes that has a failure inside (or before the first success).
fn longest_outage(attempts: &[(u64, bool)], end: u64) -> u64 {
    let mut sorted = attempts.to_vec();
    sorted.sort_by_key(|a| a.0);
    let mut last_ok: Option<u64> = None;
    let mut first_fail_since_ok: Option<u64> = None;
    let mut longest = 0;
    for (at, ok) in sorted {
        if ok {
            if let Some(f) = first_fail_since_ok.take() {
                longest = longest.max(at - last_ok.unwrap_or(f).min(f));
            }
            last_ok = Some(at);
        } else if first_fail_since_ok.is_none() {
            first_fail_since_ok = Some(at);
        }
    }
    if let Some(f) = first_fail_since_ok {
        longest = longest.max(end.saturating_sub(last_ok.unwrap_or(f).min(f)));
    }
    longest
}

/// Runs until `stop` is set, then lets retries finish and counts. `jwt_secret` signs the API
/// calls; `nats_password` is the gateway user's, for direct publishes; `db_passwords` are tried
/// in order for the accounting (the harness knows which passwords the server may hold).
pub async fn run(
    stack: &Stack,
    config: &ProbeConfig,
    stop: &AtomicBool,
    live: &Live,
    jwt_secret: &str,
    nats_password: &str,
    db_passwords: &[String],
) -> ProbeReport {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .connect_timeout(Duration::from_millis(500))
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .expect("http client");
    // The replica's NATS port moves when its container restarts (production's does not):
    // reconnect when it has moved, as a client of a fixed address would simply reconnect.
    let jetstream: tokio::sync::Mutex<Option<(String, async_nats::jetstream::Context)>> =
        tokio::sync::Mutex::new(None);
    let jetstream = &jetstream;
    let connect = |url: String| async move {
        async_nats::ConnectOptions::with_user_and_password("gateway".into(), nats_password.into())
            .name("rehearsal-probe")
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(1))
            .reconnect_delay_callback(|n| Duration::from_millis((100 * n as u64).min(500)))
            .connect(url)
            .await
            .ok()
            .map(async_nats::jetstream::new)
    };
    let token = gateway_jwt(jwt_secret, "rehearsal-probe");
    let start = Instant::now();
    let mut rec = Recorder {
        timeline: BTreeMap::new(),
        attempts: BTreeMap::new(),
        updates: BTreeMap::new(),
        api: (0, 0),
        jetstream: BTreeMap::new(),
    };
    let elapsed = |start: Instant| start.elapsed().as_millis() as u64;

    let webhook = |id: i64, attempt: u32, delay: Duration| {
        let http = http.clone();
        async move {
            tokio::time::sleep(delay).await;
            let url = format!("{}/telegram/webhook", stack.url(Service::Gateway));
            let update = serde_json::json!({
                "update_id": id,
                "message": {"message_id": id, "chat": {"id": 1000 + id % 97}, "text": "probe"},
            });
            let ok = matches!(http.post(url).json(&update).send().await, Ok(r) if r.status().is_success());
            Event::Webhook { id, attempt, ok, at: elapsed(start) }
        }
        .boxed()
    };
    let api = || {
        let http = http.clone();
        let token = token.clone();
        async move {
            let url = format!("{}/api/v1/agents", stack.url(Service::Gateway));
            let ok = matches!(http.get(url).bearer_auth(token).send().await, Ok(r) if r.status().is_success());
            Event::Api { ok, at: elapsed(start) }
        }
        .boxed()
    };
    let publish = |id: i64| {
        async move {
            let url = stack.nats_url();
            let js = {
                let mut guard = jetstream.lock().await;
                if guard.as_ref().map(|(u, _)| u != &url).unwrap_or(true) {
                    *guard = connect(url.clone()).await.map(|js| (url, js));
                }
                guard.as_ref().map(|(_, js)| js.clone())
            };
            let ok = match js {
                Some(js) => {
                    let payload =
                        serde_json::json!({"update_id": id, "source": "probe"}).to_string();
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
                at: elapsed(start),
            }
        }
        .boxed()
    };
    use futures::FutureExt;
    let mut inflight: FuturesUnordered<futures::future::BoxFuture<'_, Event>> =
        FuturesUnordered::new();
    let period = |rate: f64| Duration::from_secs_f64(1.0 / rate.max(0.001));
    let mut webhook_tick = tokio::time::interval(period(config.rate));
    let mut api_tick = tokio::time::interval(period(config.api_rate));
    let mut js_tick = tokio::time::interval(period(config.jetstream_rate));
    // A late tick is made up at once: by any time t, rate × t requests have been sent, even
    // when this loop was held up (a loaded 2-core machine delays it by more than 10 ms).
    for t in [&mut webhook_tick, &mut api_tick, &mut js_tick] {
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    }
    let (mut next_id, mut next_js) = (1 + config.id_offset, JETSTREAM_ID_BASE + config.id_offset);
    let mut first_sent: BTreeMap<i64, u64> = BTreeMap::new();
    let mut sending = true;
    let mut stopped_at = 0;
    loop {
        if sending && stop.load(Ordering::SeqCst) {
            sending = false;
            stopped_at = elapsed(start);
        }
        if !sending && inflight.is_empty() {
            break;
        }
        tokio::select! {
            _ = webhook_tick.tick(), if sending && config.rate > 0.0 => {
                first_sent.insert(next_id, elapsed(start));
                rec.updates.insert(next_id, (0, false));
                inflight.push(webhook(next_id, 1, Duration::ZERO));
                next_id += 1;
            }
            _ = api_tick.tick(), if sending && config.api_rate > 0.0 => inflight.push(api()),
            _ = js_tick.tick(), if sending && config.jetstream_rate > 0.0 => {
                inflight.push(publish(next_js));
                next_js += 1;
            }
            Some(event) = inflight.next(), if !inflight.is_empty() => match event {
                Event::Webhook { id, attempt, ok, at } => {
                    rec.mark("webhook", at, ok);
                    live.record(ok);
                    let entry = rec.updates.entry(id).or_default();
                    entry.0 = attempt;
                    entry.1 = ok;
                    if !ok {
                        let since_first = Duration::from_millis(
                            at.saturating_sub(first_sent.get(&id).copied().unwrap_or(at)),
                        );
                        if let Some(delay) = next_retry(config, attempt, since_first) {
                            inflight.push(webhook(id, attempt + 1, delay));
                        }
                    }
                }
                Event::Api { ok, at } => {
                    rec.mark("api", at, ok);
                    live.record(ok);
                    if ok { rec.api.0 += 1 } else { rec.api.1 += 1 }
                }
                Event::Jetstream { id, ok, at } => {
                    rec.mark("jetstream", at, ok);
                    live.record(ok);
                    rec.jetstream.insert(id, ok);
                }
            },
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
    let end = elapsed(start);
    let seconds = (stopped_at.max(1)) as f64 / 1000.0;

    let mut flows = BTreeMap::new();
    let outage = |flow: &str| {
        rec.attempts
            .get(flow)
            .map(|a| longest_outage(a, end))
            .unwrap_or(0)
    };
    let updates_ok = rec
        .updates
        .values()
        .filter(|(a, ok)| *ok && *a == 1)
        .count() as u64;
    let updates_delayed = rec.updates.values().filter(|(a, ok)| *ok && *a > 1).count() as u64;
    let updates_lost = rec.updates.values().filter(|(_, ok)| !ok).count() as u64;
    let attempts = |flow: &str| rec.attempts.get(flow).map(|a| a.len() as u64).unwrap_or(0);
    flows.insert(
        "webhook".to_string(),
        FlowReport {
            sent: rec.updates.len() as u64,
            attempts: attempts("webhook"),
            ok: updates_ok + updates_delayed,
            delayed: updates_delayed,
            failed: updates_lost,
            longest_outage_ms: outage("webhook"),
            achieved_rate: rec.updates.len() as f64 / seconds,
        },
    );
    flows.insert(
        "api".to_string(),
        FlowReport {
            sent: rec.api.0 + rec.api.1,
            attempts: rec.api.0 + rec.api.1,
            ok: rec.api.0,
            delayed: 0,
            failed: rec.api.1,
            longest_outage_ms: outage("api"),
            achieved_rate: (rec.api.0 + rec.api.1) as f64 / seconds,
        },
    );
    let js_ok = rec.jetstream.values().filter(|ok| **ok).count() as u64;
    flows.insert(
        "jetstream".to_string(),
        FlowReport {
            sent: rec.jetstream.len() as u64,
            attempts: rec.jetstream.len() as u64,
            ok: js_ok,
            delayed: 0,
            failed: rec.jetstream.len() as u64 - js_ok,
            longest_outage_ms: outage("jetstream"),
            achieved_rate: rec.jetstream.len() as f64 / seconds,
        },
    );
    let accepted: Vec<i64> = rec
        .updates
        .iter()
        .filter(|(_, (_, ok))| *ok)
        .map(|(id, _)| *id)
        .collect();
    let published: Vec<i64> = rec
        .jetstream
        .iter()
        .filter(|(_, ok)| **ok)
        .map(|(id, _)| *id)
        .collect();
    let data = account(stack, db_passwords, &accepted, &published, config.drain).await;
    ProbeReport {
        config: config.clone(),
        duration_ms: end,
        flows,
        updates_ok,
        updates_delayed,
        updates_lost,
        timeline: rec
            .timeline
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        data,
    }
}

/// Counts what PostgreSQL holds for the accepted updates and the acked publishes, waiting up
/// to `drain` for the workers to catch up.
async fn account(
    stack: &Stack,
    passwords: &[String],
    accepted: &[i64],
    published: &[i64],
    drain: Duration,
) -> DataReport {
    let mut report = DataReport {
        accepted_updates: accepted.len() as u64,
        ..Default::default()
    };
    let mut client = None;
    let mut last_error = String::new();
    for p in passwords {
        match crate::client::pg_connect(stack, p).await {
            Ok(c) => {
                client = Some(c);
                break;
            }
            Err(e) => last_error = e,
        }
    }
    let Some(db) = client else {
        report.error = Some(format!(
            "cannot read PostgreSQL for the accounting: {last_error}"
        ));
        return report;
    };
    let all_events: Vec<i64> = accepted.iter().chain(published).copied().collect();
    let deadline = Instant::now() + drain;
    loop {
        let missing = |rows: Vec<tokio_postgres::Row>| {
            rows.first().map(|r| r.get::<_, i64>(0) as u64).unwrap_or(0)
        };
        let count = |sql: &'static str, ids: Vec<i64>| {
            let db = &db;
            async move {
                db.query(sql, &[&ids])
                    .await
                    .map(missing)
                    .map_err(|e| e.to_string())
            }
        };
        let result: Result<(), String> = async {
            report.missing_gateway_rows = count(
                "SELECT count(*) FROM unnest($1::bigint[]) id WHERE NOT EXISTS (SELECT 1 FROM gateway_updates g WHERE g.update_id = id)",
                accepted.to_vec(),
            )
            .await?;
            report.missing_memories = count(
                "SELECT count(*) FROM unnest($1::bigint[]) id WHERE NOT EXISTS (SELECT 1 FROM memories m WHERE m.update_id = id)",
                accepted.to_vec(),
            )
            .await?;
            for worker in ["crewai-nats-worker", "parser-pipeline"] {
                let rows = db
                    .query(
                        "SELECT count(*) FILTER (WHERE p.update_id IS NULL), count(*) FILTER (WHERE p.deliveries > 1) \
                         FROM unnest($1::bigint[]) id LEFT JOIN processed_events p ON p.worker = $2 AND p.update_id = id",
                        &[&all_events, &worker],
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                report.missing_processed.insert(worker.into(), rows[0].get::<_, i64>(0) as u64);
                let ids = db
                    .query(
                        "SELECT id FROM unnest($1::bigint[]) id WHERE NOT EXISTS \
                         (SELECT 1 FROM processed_events p WHERE p.worker = $2 AND p.update_id = id) ORDER BY id LIMIT 10",
                        &[&all_events, &worker],
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                report.missing_ids.insert(worker.into(), ids.iter().map(|r| r.get::<_, i64>(0)).collect());
                report.duplicates.insert(worker.into(), rows[0].get::<_, i64>(1) as u64);
            }
            Ok(())
        }
        .await;
        if let Err(e) = result {
            report.error = Some(e);
            break;
        }
        report.error = None;
        let done = report.missing_processed.values().all(|n| *n == 0);
        if done || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    report.delivery = if report.duplicates.values().any(|n| *n > 0) {
        "at-least-once (duplicates delivered)".into()
    } else {
        "exactly-once (observed: no duplicate)".into()
    };
    report
}

#[cfg(test)]
mod tests {
    use super::{longest_outage, next_retry, ProbeConfig};
    use std::time::Duration;

    #[test]
    fn telegram_retries_until_the_end_of_its_window_and_then_gives_up() {
        let config = ProbeConfig {
            retry_window: Duration::from_secs(60),
            first_retry: Duration::from_millis(500),
            ..ProbeConfig::default()
        };
        let s = Duration::from_secs;
        assert_eq!(
            next_retry(&config, 1, s(0)),
            Some(Duration::from_millis(500))
        );
        assert_eq!(next_retry(&config, 3, s(4)), Some(s(2)));
        // 32 s of backoff would pass the window: the last try comes at its end instead.
        assert_eq!(next_retry(&config, 7, s(32)), Some(s(28)));
        assert_eq!(next_retry(&config, 8, s(60)), None);
        assert_eq!(next_retry(&config, 8, s(61)), None);
    }

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
