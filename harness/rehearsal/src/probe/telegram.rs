//! Telegram's webhook delivery, as the Bot API does it: one queue per bot, delivered over at
//! most `max_connections` simultaneous keep-alive connections (setWebhook: 1–100, default 40);
//! updates of one chat in sequence (a failed one holds its chat's later ones back until it is
//! delivered), different chats concurrently; backing off while the webhook fails; and never
//! dropping an update — what is not delivered stays pending (`pending_update_count` in
//! getWebhookInfo, kept for 24 hours). The queue outlives one probe run, so updates pending
//! when a scenario's steps end are delivered during its rollback. Telegram does not publish
//! its retry schedule: the backoff (0.5 s doubling to 8 s) is this model's assumption, set in
//! `TelegramConfig` and recorded in the journal.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How Telegram delivers to the webhook.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TelegramConfig {
    /// Simultaneous connections at most (setWebhook's `max_connections`).
    pub max_connections: usize,
    /// The wait after the first failed delivery; it doubles with each failure in a row.
    pub first_backoff: Duration,
    /// The longest wait between tries while the webhook keeps failing.
    pub max_backoff: Duration,
    /// How long one delivery may take before it counts as failed.
    pub request_timeout: Duration,
}

impl Default for TelegramConfig {
    fn default() -> Self {
        TelegramConfig {
            max_connections: 40,
            first_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// Updates not delivered yet, per chat in `update_id` order, with when they were created:
/// kept across probe runs.
#[derive(Debug, Default)]
pub struct Queue {
    chats: BTreeMap<i64, std::collections::VecDeque<(i64, Pending)>>,
    /// Chats with an update to deliver and none in flight, by their next update's id: the
    /// next delivery is always the oldest update whose chat is free.
    ready: std::collections::BTreeSet<(i64, i64)>,
    /// Chats with a delivery in flight.
    busy: std::collections::BTreeSet<i64>,
    len: usize,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    created: Instant,
    attempts: u32,
}

/// The chat an update belongs to (as the probe's updates are addressed).
pub fn chat_of(id: i64) -> i64 {
    1000 + id % 97
}

impl Queue {
    /// Updates pending, in flight included.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The age of the oldest pending update.
    pub fn oldest_age(&self, now: Instant) -> Option<Duration> {
        self.chats
            .values()
            .filter_map(|q| q.front())
            .map(|(_, p)| now.saturating_duration_since(p.created))
            .max()
    }

    fn push(&mut self, id: i64, pending: Pending) {
        let chat = chat_of(id);
        let queue = self.chats.entry(chat).or_default();
        queue.push_back((id, pending));
        self.len += 1;
        if queue.len() == 1 && !self.busy.contains(&chat) {
            self.ready.insert((id, chat));
        }
    }

    /// The oldest update whose chat has nothing in flight; its chat is busy until `finish`.
    fn take(&mut self) -> Option<(i64, Pending)> {
        let (_, chat) = self.ready.pop_first()?;
        self.busy.insert(chat);
        self.chats.get(&chat).and_then(|q| q.front()).copied()
    }

    /// Ends the delivery of `id`: delivered, it leaves the queue and its chat's next update is
    /// ready; failed, it stays first in its chat, which is ready again.
    fn finish(&mut self, id: i64, delivered: bool, attempts: u32) {
        let chat = chat_of(id);
        self.busy.remove(&chat);
        let Some(queue) = self.chats.get_mut(&chat) else {
            return;
        };
        if delivered {
            queue.pop_front();
            self.len -= 1;
        } else if let Some(front) = queue.front_mut() {
            front.1.attempts = attempts;
        }
        match queue.front() {
            Some((next, _)) => {
                self.ready.insert((*next, chat));
            }
            None => {
                self.chats.remove(&chat);
            }
        }
    }
}

/// One delivery attempt, for the timeline: when it ended and whether the webhook took it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    pub id: i64,
    pub at: Instant,
    pub ok: bool,
    /// Why it failed, when it did.
    pub cause: Option<FailureCause>,
}

/// Why a delivery failed: the node's answer, or a connection the host could not make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailureCause {
    /// The webhook answered with a status other than 2xx.
    Status,
    /// Nothing listened (connection refused): the service is down.
    Refused,
    /// No answer within the request timeout.
    Timeout,
    /// The host ran out of something (ports, file descriptors): the harness's own limit.
    HostResources,
    /// Any other transport error (reset, broken pipe).
    Transport,
}

impl FailureCause {
    /// Whether the failure is the harness's own, not the node's.
    pub fn is_harness_side(self) -> bool {
        matches!(self, FailureCause::HostResources)
    }

    /// The cause of a failed connection or transfer, from the OS's error.
    pub fn of_io(io: &std::io::Error) -> FailureCause {
        match io.kind() {
            std::io::ErrorKind::ConnectionRefused => FailureCause::Refused,
            std::io::ErrorKind::TimedOut => FailureCause::Timeout,
            std::io::ErrorKind::AddrNotAvailable | std::io::ErrorKind::AddrInUse => {
                FailureCause::HostResources
            }
            _ if matches!(io.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE)) => {
                FailureCause::HostResources
            }
            _ => FailureCause::Transport,
        }
    }
}

/// What one delivery run did.
#[derive(Debug, Default)]
pub struct Delivered {
    pub attempts: Vec<Attempt>,
    /// id → (attempts it took, delay from creation to the webhook's 2xx), for delivered ones.
    pub delivered: BTreeMap<i64, (u32, Duration)>,
    /// The most updates pending (queued or in flight) at once.
    pub peak_backlog: usize,
    /// The most deliveries in flight at once (never above `max_connections`).
    pub peak_in_flight: usize,
    /// The updates pending (queued or in flight), sampled at most every `SAMPLE_EVERY`.
    pub backlog_samples: Vec<(Instant, usize)>,
}

/// How often the backlog is sampled for its series.
const SAMPLE_EVERY: Duration = Duration::from_millis(100);

impl Delivered {
    /// Records `pending` at `now` unless the last sample is younger than `SAMPLE_EVERY`.
    fn sample(&mut self, now: Instant, pending: usize) {
        if self
            .backlog_samples
            .last()
            .is_none_or(|(at, _)| now.duration_since(*at) >= SAMPLE_EVERY)
        {
            self.backlog_samples.push((now, pending));
        }
    }
}

/// How long Telegram waits after `failures_in_a_row` failed deliveries: `first_backoff`,
/// doubling with each further failure, at most `max_backoff`.
fn backoff(config: &TelegramConfig, failures_in_a_row: u32) -> Duration {
    let doubling = 2u32.saturating_pow(failures_in_a_row.saturating_sub(1).min(16));
    config
        .first_backoff
        .saturating_mul(doubling)
        .min(config.max_backoff)
}

/// Telegram's pause after failed deliveries: a failed update stays first in its chat, and
/// Telegram waits longer after each failure in a row.
#[derive(Default)]
struct BackingOff {
    failures_in_a_row: u32,
    resume_at: Option<Instant>,
}

impl BackingOff {
    fn after(&mut self, ok: bool, config: &TelegramConfig) {
        if ok {
            *self = BackingOff::default();
        } else {
            self.failures_in_a_row += 1;
            self.resume_at = Some(Instant::now() + backoff(config, self.failures_in_a_row));
        }
    }

    /// Whether Telegram still waits at `now`.
    fn waits_at(&self, now: Instant) -> bool {
        self.resume_at.is_some_and(|r| now < r)
    }
}

/// Delivers the updates arriving on `arrivals` (ids, as users create them) and those already
/// pending in `queue` to `url()` — read before each delivery, as the node's address may move —
/// until `arrivals` is closed and either the queue is empty or `drain` has passed since. What
/// is left stays in `queue`. `on_attempt` sees every attempt as it ends.
pub async fn deliver(
    config: &TelegramConfig,
    queue: &mut Queue,
    mut arrivals: mpsc::UnboundedReceiver<i64>,
    url: impl Fn() -> String,
    drain: Duration,
    mut on_attempt: impl FnMut(&Attempt),
) -> Delivered {
    use futures::stream::{FuturesUnordered, StreamExt};
    let mut out = Delivered::default();
    let mut in_flight = FuturesUnordered::new();
    // One slot per connection Telegram may hold; an idle slot keeps its connection open.
    let mut idle: Vec<Option<Connection>> = (0..config.max_connections).map(|_| None).collect();
    let mut backing_off = BackingOff::default();
    let mut arrivals_open = true;
    let mut drain_deadline: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if !arrivals_open && drain_deadline.is_none() {
            drain_deadline = Some(now + drain);
        }
        let drained = !arrivals_open && queue.is_empty();
        let past_drain = drain_deadline.is_some_and(|d| now >= d);
        if drained || (past_drain && in_flight.is_empty()) {
            break;
        }
        // Start deliveries while connections are free and Telegram is not backing off.
        while !backing_off.waits_at(now) && !past_drain && !idle.is_empty() {
            let Some((id, pending)) = queue.take() else {
                break;
            };
            let connection = idle.pop().expect("checked above");
            let address = url();
            let timeout = config.request_timeout;
            in_flight.push(async move {
                let (connection, cause) = post(connection, &address, id, timeout).await;
                let attempt = Attempt {
                    id,
                    at: Instant::now(),
                    ok: cause.is_none(),
                    cause,
                };
                (connection, attempt, pending)
            });
        }
        out.peak_in_flight = out.peak_in_flight.max(in_flight.len());
        out.peak_backlog = out.peak_backlog.max(queue.len());
        out.sample(now, queue.len());
        let wake = backing_off
            .resume_at
            .filter(|r| *r > now)
            .or(drain_deadline)
            .unwrap_or(now + Duration::from_millis(100));
        tokio::select! {
            id = arrivals.recv(), if arrivals_open => match id {
                Some(id) => queue.push(id, Pending { created: Instant::now(), attempts: 0 }),
                None => arrivals_open = false,
            },
            Some((connection, attempt, pending)) = in_flight.next(), if !in_flight.is_empty() => {
                idle.push(connection);
                on_attempt(&attempt);
                out.attempts.push(attempt);
                let attempts = pending.attempts + 1;
                queue.finish(attempt.id, attempt.ok, attempts);
                backing_off.after(attempt.ok, config);
                if attempt.ok {
                    let delay = attempt.at.saturating_duration_since(pending.created);
                    out.delivered.insert(attempt.id, (attempts, delay));
                }
            }
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
    }
    out
}

/// One keep-alive HTTP/1.1 connection to the webhook, and the address it was made to.
struct Connection {
    address: String,
    sender: hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>,
}

/// POSTs update `id` to `address` (`http://host:port`) over `connection` when it is still open
/// to that address, else over a new one; returns the connection to keep (none after an error)
/// and why the delivery failed, if it did.
async fn post(
    connection: Option<Connection>,
    address: &str,
    id: i64,
    timeout: Duration,
) -> (Option<Connection>, Option<FailureCause>) {
    let body = serde_json::json!({
        "update_id": id,
        "message": {"message_id": id, "chat": {"id": 1000 + id % 97}, "text": "probe"},
    })
    .to_string();
    let attempt = async {
        let mut connection = match connection {
            Some(c) if c.address == address && !c.sender.is_closed() => c,
            _ => connect(address).await?,
        };
        connection
            .sender
            .ready()
            .await
            .map_err(|_| FailureCause::Transport)?;
        let host = address.trim_start_matches("http://");
        let request = hyper::Request::post("/telegram/webhook")
            .header(hyper::header::HOST, host)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .map_err(|_| FailureCause::Transport)?;
        let response = connection
            .sender
            .send_request(request)
            .await
            .map_err(|_| FailureCause::Transport)?;
        let status = response.status();
        // Read the answer to its end, so the connection can carry the next update.
        let _ = http_body_util::BodyExt::collect(response.into_body()).await;
        Ok::<_, FailureCause>((connection, status.is_success()))
    };
    match tokio::time::timeout(timeout, attempt).await {
        Ok(Ok((connection, true))) => (Some(connection), None),
        Ok(Ok((connection, false))) => (Some(connection), Some(FailureCause::Status)),
        Ok(Err(cause)) => (None, Some(cause)),
        Err(_) => (None, Some(FailureCause::Timeout)),
    }
}

async fn connect(address: &str) -> Result<Connection, FailureCause> {
    let host = address.trim_start_matches("http://");
    let stream = tokio::net::TcpStream::connect(host)
        .await
        .map_err(|e| FailureCause::of_io(&e))?;
    let _ = stream.set_nodelay(true);
    let (sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|_| FailureCause::Transport)?;
    tokio::spawn(connection);
    Ok(Connection {
        address: address.to_string(),
        sender,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

    /// A webhook on loopback that answers 500 while `failing`, counts connections open at
    /// once, and records the update ids it acknowledged, in order.
    struct Webhook {
        url: String,
        failing: Arc<AtomicBool>,
        peak_connections: Arc<AtomicUsize>,
        acknowledged: Arc<Mutex<Vec<i64>>>,
    }

    async fn webhook() -> Webhook {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let failing = Arc::new(AtomicBool::new(false));
        let open = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let acknowledged = Arc::new(Mutex::new(Vec::new()));
        let (f, p, a) = (failing.clone(), peak.clone(), acknowledged.clone());
        tokio::spawn(async move {
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                let (failing, open, peak, acknowledged) =
                    (f.clone(), open.clone(), p.clone(), a.clone());
                let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut reader = BufReader::new(socket);
                    loop {
                        let mut length = 0usize;
                        let mut line = String::new();
                        let mut ended = false;
                        loop {
                            line.clear();
                            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                                ended = true;
                                break;
                            }
                            if let Some(v) =
                                line.to_ascii_lowercase().strip_prefix("content-length:")
                            {
                                length = v.trim().parse().unwrap();
                            }
                            if line == "\r\n" {
                                break;
                            }
                        }
                        if ended {
                            break;
                        }
                        let mut body = vec![0; length];
                        reader.read_exact(&mut body).await.unwrap();
                        tokio::time::sleep(Duration::from_millis(2)).await;
                        let answer = if failing.load(Ordering::SeqCst) {
                            "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n"
                        } else {
                            let update: serde_json::Value = serde_json::from_slice(&body).unwrap();
                            acknowledged
                                .lock()
                                .unwrap()
                                .push(update["update_id"].as_i64().unwrap());
                            "HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
                        };
                        if reader.get_mut().write_all(answer.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Webhook {
            url,
            failing,
            peak_connections: peak,
            acknowledged,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_webhook_failing_for_a_window_gets_every_update_afterwards_each_chat_in_order_over_at_most_max_connections(
    ) {
        let hook = webhook().await;
        let config = TelegramConfig {
            max_connections: 4,
            first_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(200),
            request_timeout: Duration::from_secs(2),
        };
        let mut queue = Queue::default();
        let (tx, rx) = mpsc::unbounded_channel();
        let failing = hook.failing.clone();
        let producer = async move {
            for id in 1..=300 {
                if id == 100 {
                    failing.store(true, Ordering::SeqCst);
                }
                if id == 200 {
                    failing.store(false, Ordering::SeqCst);
                }
                tx.send(id).unwrap();
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        };
        let url = hook.url.clone();
        let (delivered, ()) = tokio::join!(
            deliver(
                &config,
                &mut queue,
                rx,
                move || url.clone(),
                Duration::from_secs(10),
                |_| {}
            ),
            producer
        );
        assert!(queue.is_empty(), "{} still pending", queue.len());
        assert_eq!(delivered.delivered.len(), 300);
        assert!(
            delivered.attempts.iter().any(|a| !a.ok),
            "the window failed some"
        );
        assert!(hook.peak_connections.load(Ordering::SeqCst) <= 4);
        assert!(delivered.peak_in_flight <= 4);
        // Nothing acknowledged twice, nothing lost: every id exactly once.
        let mut acked = hook.acknowledged.lock().unwrap().clone();
        assert_eq!(acked.len(), 300);
        // Each chat's updates in order; chats concurrently.
        let mut last: BTreeMap<i64, i64> = BTreeMap::new();
        for id in &acked {
            let before = last.insert(chat_of(*id), *id);
            assert!(
                before.is_none_or(|b| b < *id),
                "chat {} got {id} after {before:?}",
                chat_of(*id)
            );
        }
        acked.sort();
        assert_eq!(acked, (1..=300).collect::<Vec<_>>());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn what_a_down_webhook_never_took_stays_pending_as_backlog_not_lost() {
        // Nothing listens here: every delivery is refused.
        let url = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", l.local_addr().unwrap())
        };
        let config = TelegramConfig {
            max_connections: 40,
            first_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(100),
            request_timeout: Duration::from_secs(1),
        };
        let mut queue = Queue::default();
        let (tx, rx) = mpsc::unbounded_channel();
        for id in 1..=50 {
            tx.send(id).unwrap();
        }
        drop(tx);
        let delivered = deliver(
            &config,
            &mut queue,
            rx,
            || url.clone(),
            Duration::from_millis(500),
            |_| {},
        )
        .await;
        assert!(delivered.delivered.is_empty());
        assert_eq!(queue.len(), 50, "every update still pending");
        assert!(delivered
            .attempts
            .iter()
            .all(|a| a.cause == Some(FailureCause::Refused)));
        // Backing off: a handful of tries in half a second, not a storm of retries.
        assert!(
            delivered.attempts.len() < 50 * 10,
            "{} attempts",
            delivered.attempts.len()
        );
    }
}
