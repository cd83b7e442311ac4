//! The probe's record as it runs: every attempt of every flow on the 50 ms timeline.

#[allow(unused_imports)]
use super::*;

pub(super) enum Event {
    /// One API call: its outcome after retries, and every attempt (time, ok) on the timeline.
    Api {
        ok: bool,
        attempts: Vec<(u64, bool)>,
    },
    Jetstream {
        id: i64,
        ok: bool,
        at: u64,
    },
}

#[derive(Default)]
pub(super) struct Recorder {
    pub(super) timeline: BTreeMap<&'static str, Vec<Bucket>>,
    pub(super) attempts: BTreeMap<&'static str, Vec<(u64, bool)>>,
    pub(super) updates: BTreeMap<i64, (u32, bool)>,
    /// API calls: ok at once, failed after retries, ok after retries.
    pub(super) api: (u64, u64, u64),
    pub(super) api_attempts: u64,
    pub(super) jetstream: BTreeMap<i64, bool>,
}

impl Recorder {
    pub(super) fn mark(&mut self, flow: &'static str, at: u64, ok: bool) {
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

    /// A finished API call or publish, on the timeline and in the live record.
    pub(super) fn event(&mut self, event: Event, live: &Live) {
        match event {
            Event::Api { ok, attempts } => {
                for &(at, attempt_ok) in &attempts {
                    self.mark("api", at, attempt_ok);
                    live.record(attempt_ok);
                }
                match (ok, attempts.len()) {
                    (true, 1) => self.api.0 += 1,
                    (true, _) => self.api.2 += 1,
                    (false, _) => self.api.1 += 1,
                }
                self.api_attempts += attempts.len() as u64;
            }
            Event::Jetstream { id, ok, at } => {
                self.mark("jetstream", at, ok);
                live.record(ok);
                self.jetstream.insert(id, ok);
            }
        }
    }

    /// The webhook's attempts on the timeline and each delivered update's fate; returns the
    /// failed attempts by cause, counting the host's own in `host_errors`.
    pub(super) fn webhook(
        &mut self,
        delivered: &crate::telegram::Delivered,
        start: Instant,
        host_errors: &AtomicU64,
    ) -> BTreeMap<String, u64> {
        let mut failures: BTreeMap<String, u64> = BTreeMap::new();
        for a in &delivered.attempts {
            self.mark("webhook", since(start, a.at), a.ok);
            if let Some(cause) = a.cause {
                if cause.is_harness_side() {
                    host_errors.fetch_add(1, Ordering::Relaxed);
                }
                let name = serde_json::to_value(cause)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                *failures.entry(name).or_default() += 1;
            }
        }
        for (id, (attempts, _)) in &delivered.delivered {
            self.updates.insert(*id, (*attempts, true));
        }
        failures
    }

    /// Updates delivered at the first attempt.
    pub(super) fn updates_ok(&self) -> u64 {
        self.updates
            .values()
            .filter(|(a, ok)| *ok && *a == 1)
            .count() as u64
    }

    /// Updates delivered after a retry.
    pub(super) fn updates_delayed(&self) -> u64 {
        self.updates
            .values()
            .filter(|(a, ok)| *ok && *a > 1)
            .count() as u64
    }

    /// Each flow's counts: `sent` webhook updates (`created` this run, the rest carried over),
    /// `backlog` still with Telegram, the run `end`ing at `end` ms, sending until `stopped_at`.
    pub(super) fn flows(
        &self,
        sent: u64,
        created: u64,
        backlog: u64,
        end: u64,
        stopped_at: u64,
    ) -> BTreeMap<String, FlowReport> {
        let seconds = (stopped_at.max(1)) as f64 / 1000.0;
        let outage = |flow: &str| {
            self.attempts
                .get(flow)
                .map(|a| longest_outage(a, end))
                .unwrap_or(0)
        };
        let attempts = |flow: &str| self.attempts.get(flow).map(|a| a.len() as u64).unwrap_or(0);
        let (updates_ok, updates_delayed) = (self.updates_ok(), self.updates_delayed());
        let mut flows = BTreeMap::new();
        flows.insert(
            "webhook".to_string(),
            FlowReport {
                sent,
                attempts: attempts("webhook"),
                ok: updates_ok + updates_delayed,
                delayed: updates_delayed,
                // Not delivered when the drain window ended: still with Telegram, not lost.
                failed: backlog,
                longest_outage_ms: outage("webhook"),
                achieved_rate: created as f64 / seconds,
            },
        );
        let api_sent = self.api.0 + self.api.1 + self.api.2;
        flows.insert(
            "api".to_string(),
            FlowReport {
                sent: api_sent,
                attempts: self.api_attempts,
                ok: self.api.0 + self.api.2,
                delayed: self.api.2,
                failed: self.api.1,
                longest_outage_ms: outage("api"),
                achieved_rate: api_sent as f64 / seconds,
            },
        );
        let js_sent = self.jetstream.len() as u64;
        let js_ok = self.jetstream.values().filter(|ok| **ok).count() as u64;
        flows.insert(
            "jetstream".to_string(),
            FlowReport {
                sent: js_sent,
                attempts: js_sent,
                ok: js_ok,
                delayed: 0,
                failed: js_sent - js_ok,
                longest_outage_ms: outage("jetstream"),
                achieved_rate: js_sent as f64 / seconds,
            },
        );
        flows
    }
}

/// Longest gap between two successes that has a failure inside (or before the first success).
pub(super) fn longest_outage(attempts: &[(u64, bool)], end: u64) -> u64 {
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

/// Milliseconds from `start` to `at`.
pub(super) fn since(start: Instant, at: Instant) -> u64 {
    at.saturating_duration_since(start).as_millis() as u64
}
