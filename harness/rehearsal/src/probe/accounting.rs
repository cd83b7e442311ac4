//! After the traffic: what PostgreSQL holds of what was accepted, Telegram's report, and the
//! harness's health from its clock, its host-side errors and the CPU counters.

#[allow(unused_imports)]
use super::*;

/// Telegram's side of the run: connections, delivery delays, the backlog left in `queue`, and
/// the failed deliveries by cause.
pub(super) fn telegram_report(
    config: &ProbeConfig,
    delivered: &crate::telegram::Delivered,
    queue: &crate::telegram::Queue,
    failures: BTreeMap<String, u64>,
    start: Instant,
) -> TelegramReport {
    let window = |at: Instant| (since(start, at) / SERIES_MS) as usize;
    let mut backlog_series: Vec<u64> = Vec::new();
    for (at, pending) in &delivered.backlog_samples {
        put_max(&mut backlog_series, window(*at), *pending as u64);
    }
    let mut delay_series_ms: Vec<u64> = Vec::new();
    for a in delivered.attempts.iter().filter(|a| a.ok) {
        if let Some((_, delay)) = delivered.delivered.get(&a.id) {
            put_max(&mut delay_series_ms, window(a.at), delay.as_millis() as u64);
        }
    }
    let mut delays: Vec<u64> = delivered
        .delivered
        .values()
        .map(|(_, d)| d.as_millis() as u64)
        .collect();
    delays.sort_unstable();
    TelegramReport {
        max_connections: config.telegram.max_connections,
        peak_in_flight: delivered.peak_in_flight,
        delay_p50_ms: quantile(&delays, 0.5),
        delay_p99_ms: quantile(&delays, 0.99),
        delay_max_ms: delays.last().copied().unwrap_or(0),
        peak_backlog: delivered.peak_backlog as u64,
        backlog: queue.len() as u64,
        backlog_oldest_ms: queue
            .oldest_age(Instant::now())
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
        failures,
        backlog_series,
        delay_series_ms,
    }
}

/// `series[i] = max(series[i], value)`, the series grown with zeros to reach `i`.
pub(super) fn put_max(series: &mut Vec<u64>, i: usize, value: u64) {
    if series.len() <= i {
        series.resize(i + 1, 0);
    }
    series[i] = series[i].max(value);
}

/// The harness's health over the run: the probe clock's lag, host-side errors, and the
/// machine's idle, steal and pressure since `cpu_before` / `pressure_before`.
pub(super) fn harness_health(
    lags: &[u64],
    host_errors: u64,
    cpu_before: Option<(u64, u64, u64)>,
    pressure_before: Option<(u64, Instant)>,
) -> HarnessHealth {
    let cpu = match (cpu_before, cpu_counters()) {
        (Some((i0, s0, t0)), Some((i1, s1, t1))) if t1 > t0 => {
            let total = (t1 - t0) as f64;
            (
                100.0 * (i1 - i0) as f64 / total,
                100.0 * (s1 - s0) as f64 / total,
            )
        }
        _ => (0.0, 0.0),
    };
    HarnessHealth {
        lag_p99_ms: quantile(lags, 0.99),
        lag_max_ms: lags.last().copied().unwrap_or(0),
        host_errors,
        cpu_idle_pct: cpu.0,
        cpu_steal_pct: cpu.1,
        cpu_pressure_pct: pressure_before.and_then(|(us0, at)| {
            let us1 = cpu_pressure_us()?;
            let window = at.elapsed().as_micros() as f64;
            (window > 0.0).then(|| (100.0 * us1.saturating_sub(us0) as f64 / window).min(100.0))
        }),
    }
}

/// One count of what is missing: the accepted updates without a gateway row or a memory, and
/// each worker's unprocessed events (`all_events`: accepted and published), duplicates and
/// the first ten missing ids, written into `report`.
pub(super) async fn count_missing(
    db: &tokio_postgres::Client,
    accepted: &[i64],
    all_events: &[i64],
    report: &mut DataReport,
) -> Result<(), String> {
    let count = |sql: &'static str| async move {
        db.query(sql, &[&accepted])
            .await
            .map(|rows| rows.first().map(|r| r.get::<_, i64>(0) as u64).unwrap_or(0))
            .map_err(|e| e.to_string())
    };
    report.missing_gateway_rows = count(
        "SELECT count(*) FROM unnest($1::bigint[]) id WHERE NOT EXISTS (SELECT 1 FROM gateway_updates g WHERE g.update_id = id)",
    )
    .await?;
    report.missing_memories = count(
        "SELECT count(*) FROM unnest($1::bigint[]) id WHERE NOT EXISTS (SELECT 1 FROM memories m WHERE m.update_id = id)",
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
        report
            .missing_processed
            .insert(worker.into(), rows[0].get::<_, i64>(0) as u64);
        let ids = db
            .query(
                "SELECT id FROM unnest($1::bigint[]) id WHERE NOT EXISTS \
                 (SELECT 1 FROM processed_events p WHERE p.worker = $2 AND p.update_id = id) ORDER BY id LIMIT 10",
                &[&all_events, &worker],
            )
            .await
            .map_err(|e| e.to_string())?;
        report.missing_ids.insert(
            worker.into(),
            ids.iter().map(|r| r.get::<_, i64>(0)).collect(),
        );
        report
            .duplicates
            .insert(worker.into(), rows[0].get::<_, i64>(1) as u64);
    }
    Ok(())
}

/// Counts what PostgreSQL holds for the accepted updates and the acked publishes, counting
/// again every 500 ms until the workers have caught up or `drain` has passed.
pub(super) async fn account(
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
    let db = match accounting_connection(stack, passwords).await {
        Ok(db) => db,
        Err(e) => {
            report.error = Some(e);
            return report;
        }
    };
    let all_events: Vec<i64> = accepted.iter().chain(published).copied().collect();
    let deadline = Instant::now() + drain;
    loop {
        if let Err(e) = count_missing(&db, accepted, &all_events, &mut report).await {
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

/// The machine's CPU counters (`/proc/stat`'s first line): (idle + iowait, steal, total).
pub fn cpu_counters() -> Option<(u64, u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let idle = fields.get(3)? + fields.get(4).unwrap_or(&0);
    let steal = *fields.get(7).unwrap_or(&0);
    Some((idle, steal, fields.iter().take(8).sum()))
}

/// The `q`-quantile of sorted `values` (0 when empty).
pub(super) fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}
