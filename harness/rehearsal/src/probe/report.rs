//! What the probe reports: per flow its attempts and outages, the data accounted for, Telegram's
//! deliveries, and the harness's own health.

#[allow(unused_imports)]
use super::*;

/// The flows the probe drives.
pub const FLOWS: [&str; 3] = ["webhook", "api", "jetstream"];

/// Success and failure counts of one flow in one bucket.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Bucket {
    pub ok: u32,
    pub fail: u32,
}

/// What happened to every request of one flow.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
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
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProbeReport {
    pub config: ProbeConfig,
    pub duration_ms: u64,
    pub flows: BTreeMap<String, FlowReport>,
    /// Webhook updates: ok at once, ok after retries, and accepted (2xx) but never stored in
    /// PostgreSQL: the real loss.
    pub updates_ok: u64,
    pub updates_delayed: u64,
    pub updates_lost: u64,
    /// Telegram's side of the webhook flow: delays, backlog, connections.
    pub telegram: TelegramReport,
    /// The harness's own health while it ran: evidence for an `inconclusive` verdict.
    pub harness: HarnessHealth,
    /// flow → buckets of `BUCKET_MS` from the probe's start.
    pub timeline: BTreeMap<String, Vec<Bucket>>,
    /// Service key → the spans its container was not running (`containers.rs`: the engine's
    /// events); a service that ran throughout is absent.
    #[serde(default)]
    pub containers_down: BTreeMap<String, Vec<DownSpan>>,
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

/// The width of the over-time series (Telegram's backlog and delivery delays), in ms.
pub const SERIES_MS: u64 = 250;

/// The webhook flow as Telegram saw it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TelegramReport {
    pub max_connections: usize,
    /// The most deliveries in flight at once.
    pub peak_in_flight: usize,
    /// Delay from an update's creation to the webhook's 2xx: median, 99th percentile, most.
    pub delay_p50_ms: u64,
    pub delay_p99_ms: u64,
    pub delay_max_ms: u64,
    /// The most updates pending at once.
    pub peak_backlog: u64,
    /// Updates still pending when the drain window ended (not lost: Telegram keeps them), and
    /// the age of the oldest.
    pub backlog: u64,
    pub backlog_oldest_ms: u64,
    /// Failed deliveries by cause (`refused`, `status`, `timeout`, `host-resources`, …).
    pub failures: BTreeMap<String, u64>,
    /// Over time, per `SERIES_MS` from the probe's start: the most updates pending, and the
    /// longest delay of the updates delivered in that window (0: none delivered).
    #[serde(default)]
    pub backlog_series: Vec<u64>,
    #[serde(default)]
    pub delay_series_ms: Vec<u64>,
}

/// The harness's own health during a probe run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct HarnessHealth {
    /// How late the probe's 50 ms clock ticked: 99th percentile and most, in ms.
    pub lag_p99_ms: u64,
    pub lag_max_ms: u64,
    /// Failures that were the host's own (no ports or file descriptors left), all flows.
    pub host_errors: u64,
    /// The machine's CPU while it ran: idle and steal, in percent of all cores.
    pub cpu_idle_pct: f64,
    pub cpu_steal_pct: f64,
    /// The share of the window in which some runnable task waited for a CPU (the kernel's
    /// pressure stall information, `/proc/pressure/cpu` "some"), in percent; `None` where the
    /// kernel does not report it.
    #[serde(default)]
    pub cpu_pressure_pct: Option<f64>,
}
