//! The node's flows tried end to end at a step boundary, one synthetic request each: an update
//! on every agent's Telegram webhook (its PostgreSQL row, the router and the agent's provider,
//! the memory service, the reply with the agent's bot token, the JetStream event), those events
//! processed by each worker, and the JWT API with a token the gateway issued before the step.
//!
//! A flow that fails is tried again until it answers or [`DEADLINE`] passes: what fails for a
//! moment (a restart the step did not wait out, an injected fault ending) is recorded as
//! recovered, with how long it failed; what still fails then is where an operator must not stop.
//! A credential refused the same way for [`STABLE_REFUSAL`] is judged then: it does not recover
//! by itself.
//! Every answer goes through the redactor before it is kept.

use crate::journal::FlowRecord;
use harness::checks::Outcome;
use harness::redact::Redactor;
use harness::replica_root::AGENTS;
use harness::services::Service;
use harness::stack::Stack;
use std::time::Duration;
use tokio::time::Instant;

/// How long a failing flow is tried again before the boundary is judged on it.
pub const DEADLINE: Duration = Duration::from_secs(10);
/// The pause between two tries of a failing flow.
const RETRY: Duration = Duration::from_millis(250);
/// How long the same refusal (a credential refused: 401, 403, `28P01`, an authorization
/// violation) must repeat before the flow is judged on it without waiting for the deadline: a
/// restart recovers by itself, a refused credential does not.
const STABLE_REFUSAL: Duration = Duration::from_secs(2);
/// One try's own limit (a stalled dependency must not hold a try past the deadline).
const TRY_TIMEOUT: Duration = Duration::from_secs(3);
/// Boundary update ids start here, apart from the probe's (its webhook and JetStream ids).
pub const UPDATE_ID_BASE: i64 = 3_000_000_000;
/// The node's JetStream consumers: each processes every event the gateway publishes.
pub const WORKERS: &[&str] = &["crewai-nats-worker", "parser-pipeline"];

/// What a boundary's flows need: the replica, the passwords PostgreSQL may hold for reading
/// what the workers processed, and the `JWT_SECRET` the gateway issued tokens with before the
/// step (a client that renewed just then holds such a token).
pub struct Boundary<'a> {
    pub stack: &'a Stack,
    pub passwords: &'a [String],
    pub redactor: &'a Redactor,
    pub issued_with: Option<&'a str>,
    /// The first update id this boundary may use (one per agent after it).
    pub first_id: i64,
    /// The injected fault still active here, if one is: what fails then is the fault's doing,
    /// so each flow is tried once and a failure is recorded as not judged, not waited out
    /// (waiting would stretch the fault's outage past the step that ends it).
    pub fault_active: Option<String>,
}

/// Tries every flow at once; returns one record per flow, in a stable order (the webhooks by
/// agent, the workers, the API).
pub async fn try_all(b: &Boundary<'_>) -> Vec<FlowRecord> {
    let http = reqwest::Client::builder()
        .timeout(TRY_TIMEOUT)
        .connect_timeout(Duration::from_millis(500))
        .build()
        .expect("http client");
    let started = Instant::now();
    let deadline = if b.fault_active.is_some() {
        Duration::ZERO
    } else {
        DEADLINE
    };
    let webhooks = futures::future::join_all(AGENTS.iter().enumerate().map(|(i, (agent, ..))| {
        webhook(b, &http, agent, b.first_id + i as i64, started, deadline)
    }));
    let api = api(b, &http, started, deadline);
    let (webhooks, api) = tokio::join!(webhooks, api);
    let accepted: Vec<i64> = webhooks
        .iter()
        .enumerate()
        .filter(|(_, r)| r.outcome == Outcome::Pass)
        .map(|(i, _)| b.first_id + i as i64)
        .collect();
    let workers = processed(b, &accepted, started, deadline).await;
    let all: Vec<FlowRecord> = webhooks.into_iter().chain(workers).chain(api).collect();
    match &b.fault_active {
        None => all,
        Some(fault) => not_judged_while(fault, all),
    }
}

/// `records` with each failure marked not judged (`skip`), naming the injected fault active
/// while it was tried.
fn not_judged_while(fault: &str, records: Vec<FlowRecord>) -> Vec<FlowRecord> {
    records
        .into_iter()
        .map(|mut r| {
            if r.outcome == Outcome::Fail {
                r.outcome = Outcome::Skip;
                r.evidence = format!(
                    "not judged while the injected fault `{fault}` was active: {}",
                    r.evidence
                );
            }
            r
        })
        .collect()
}

/// Retries `attempt` until it answers `Ok` or `deadline` from `started` passes; the record
/// says how long it failed before answering (or until the deadline) and its last failure.
async fn until_answered<F, Fut>(
    flow: String,
    service: &str,
    (started, deadline): (Instant, Duration),
    redactor: &Redactor,
    mut attempt: F,
) -> FlowRecord
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<String, String>>,
{
    let mut first_failure: Option<(Instant, String)> = None;
    let mut last_failure = String::new();
    // The same failure since when: a refusal that repeats unchanged is not waited out.
    let (mut previous_failure, mut same_since) = (String::new(), Instant::now());
    loop {
        let tried = Instant::now();
        match tokio::time::timeout(TRY_TIMEOUT, attempt()).await {
            Ok(Ok(answer)) => {
                let failed_ms = first_failure
                    .as_ref()
                    .map_or(0, |(at, _)| tried.duration_since(*at).as_millis() as u64);
                let evidence = match &first_failure {
                    Some(_) => {
                        format!("{answer}, after failing for {failed_ms} ms ({last_failure})")
                    }
                    None => answer,
                };
                return FlowRecord {
                    flow,
                    service: service.to_string(),
                    outcome: Outcome::Pass,
                    failed_ms,
                    evidence: redactor.redact(&evidence),
                };
            }
            Ok(Err(why)) => last_failure = why,
            Err(_) => last_failure = format!("no answer within {} s", TRY_TIMEOUT.as_secs()),
        }
        let since = first_failure.get_or_insert((tried, String::new())).0;
        if last_failure != previous_failure {
            same_since = tried;
            previous_failure = last_failure.clone();
        }
        let refused_for = tried.duration_since(same_since);
        if started.elapsed() + RETRY >= deadline
            || (is_refusal(&last_failure) && refused_for >= STABLE_REFUSAL)
        {
            let failed_ms = since.elapsed().as_millis() as u64;
            return FlowRecord {
                flow,
                service: service.to_string(),
                outcome: Outcome::Fail,
                failed_ms,
                evidence: redactor.redact(&format!(
                    "{last_failure}; still failing after {:.1} s",
                    failed_ms as f64 / 1000.0
                )),
            };
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// Whether `failure` is a credential refused, which only an operator's step changes.
fn is_refusal(failure: &str) -> bool {
    ["401", "403", "28P01", "uthorization violation"]
        .iter()
        .any(|code| failure.contains(code))
}

/// One update on `agent`'s webhook, answered 2xx once the gateway has run the whole flow.
async fn webhook(
    b: &Boundary<'_>,
    http: &reqwest::Client,
    agent: &str,
    update_id: i64,
    started: Instant,
    deadline: Duration,
) -> FlowRecord {
    let body = serde_json::json!({
        "update_id": update_id,
        "message": {"message_id": update_id, "chat": {"id": 7_000_000 + update_id % 97}, "text": "boundary"},
    });
    until_answered(
        format!("telegram.{agent}"),
        "gateway",
        (started, deadline),
        b.redactor,
        || async {
            let url = format!("{}/{agent}/telegram/webhook", b.stack.url(Service::Gateway));
            let r = to_gateway(http.post(url).json(&body)).await?;
            let status = r.status();
            if status.is_success() {
                return Ok(format!("the {agent} webhook answered {}", status.as_u16()));
            }
            Err(format!(
                "the {agent} webhook answered {}: {}",
                status.as_u16(),
                gateway_error(&r.text().await.unwrap_or_default())
            ))
        },
    )
    .await
}

/// Sends `request` to the gateway; no answer at all is a failure saying so (no URL in it).
async fn to_gateway(request: reqwest::RequestBuilder) -> Result<reqwest::Response, String> {
    request
        .send()
        .await
        .map_err(|e| format!("the gateway did not answer: {}", e.without_url()))
}

/// The gateway's error body (`{"error": code, "detail": …}`) said as the dependency that
/// failed and why: `telegram: 401 …`.
fn gateway_error(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    match (v["error"].as_str(), v["detail"].as_str()) {
        (Some(code), Some(detail)) => {
            let who = match code {
                "db" => "PostgreSQL",
                "jetstream" => "NATS JetStream",
                other => other,
            };
            format!("{who}: {detail}")
        }
        _ => body.chars().take(200).collect(),
    }
}

/// Each worker has processed the events of the updates the webhooks accepted.
async fn processed(
    b: &Boundary<'_>,
    accepted: &[i64],
    started: Instant,
    deadline: Duration,
) -> Vec<FlowRecord> {
    let mut records = Vec::new();
    for worker in WORKERS {
        let flow = format!("jetstream.{worker}");
        if accepted.is_empty() {
            records.push(FlowRecord {
                flow,
                service: worker.to_string(),
                outcome: Outcome::Skip,
                failed_ms: 0,
                evidence: "not tried: no webhook update was accepted".into(),
            });
            continue;
        }
        let asked = Instant::now();
        let mut record = until_answered(flow, worker, (started, deadline), b.redactor, || async {
            let done = processed_count(b, worker, accepted).await?;
            if done == accepted.len() {
                Ok(format!("{worker} processed the {done} events"))
            } else {
                Err(format!(
                    "{worker} processed {done} of the {} events",
                    accepted.len()
                ))
            }
        })
        .await;
        // Events still on their way are not a failure: a worker that processes them before
        // the deadline answered, in the time it took.
        if record.outcome == Outcome::Pass {
            record.failed_ms = 0;
            record.evidence = format!(
                "{worker} processed the {} events within {} ms",
                accepted.len(),
                asked.elapsed().as_millis()
            );
        }
        records.push(record);
    }
    records
}

/// How many of the `accepted` updates' events `worker` has recorded in PostgreSQL.
async fn processed_count(
    b: &Boundary<'_>,
    worker: &str,
    accepted: &[i64],
) -> Result<usize, String> {
    let db = crate::probe::accounting_connection(b.stack, b.passwords).await?;
    let sql = "SELECT count(*) FROM processed_events WHERE worker = $1 AND update_id = ANY($2)";
    let rows = db
        .query(sql, &[&worker, &accepted])
        .await
        .map_err(|e| e.to_string())?;
    Ok(rows[0].get::<_, i64>(0) as usize)
}

/// The JWT API with a token signed with the secret the gateway issued tokens with before the
/// step: a token a client renewed just before it must still be accepted after it.
async fn api(
    b: &Boundary<'_>,
    http: &reqwest::Client,
    started: Instant,
    deadline: Duration,
) -> Option<FlowRecord> {
    let secret = b.issued_with?;
    let token = harness::client::gateway_jwt(secret, "rehearsal-boundary");
    Some(
        until_answered(
            "api.token-issued-before-the-step".into(),
            "gateway",
            (started, deadline),
            b.redactor,
            || async {
                let url = format!("{}/api/v1/agents", b.stack.url(Service::Gateway));
                let r = to_gateway(http.get(url).bearer_auth(&token)).await?;
                let status = r.status().as_u16();
                if r.status().is_success() {
                    Ok(format!(
                        "the API answered {status} for a token issued before the step"
                    ))
                } else {
                    Err(format!(
                        "the API answered {status} for a token the gateway issued before the step"
                    ))
                }
            },
        )
        .await,
    )
}

/// The `JWT_SECRET` the running gateway issues tokens with, if it can be read now.
pub async fn issuing_secret(stack: &Stack) -> Option<String> {
    tokio::time::timeout(
        Duration::from_secs(2),
        stack.container_env(Service::Gateway),
    )
    .await
    .ok()?
    .ok()?
    .get("JWT_SECRET")
    .cloned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Runs `until_answered` on answers given in turn (the last one repeats), on paused time.
    async fn tried(answers: &[Result<&str, &str>]) -> FlowRecord {
        let n = AtomicU32::new(0);
        until_answered(
            "telegram.helion".into(),
            "gateway",
            (Instant::now(), DEADLINE),
            &Redactor::new(),
            || {
                let i = (n.fetch_add(1, Ordering::SeqCst) as usize).min(answers.len() - 1);
                let answer = answers[i].map(str::to_string).map_err(str::to_string);
                async move { answer }
            },
        )
        .await
    }

    #[tokio::test(start_paused = true)]
    async fn a_flow_that_fails_for_a_moment_is_recorded_as_recovered_with_how_long() {
        let r = tried(&[
            Err("the gateway did not answer: connection refused"),
            Err("the gateway did not answer: connection refused"),
            Ok("the helion webhook answered 200"),
        ])
        .await;
        assert_eq!(r.outcome, Outcome::Pass);
        assert_eq!(r.failed_ms, 500);
        assert_eq!(
            r.evidence,
            "the helion webhook answered 200, after failing for 500 ms (the gateway did not answer: connection refused)"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_repeated_for_2s_is_judged_without_waiting_for_the_deadline() {
        let r = tried(&[Err(
            "the helion webhook answered 502: telegram: 401 Unauthorized",
        )])
        .await;
        assert_eq!(r.outcome, Outcome::Fail);
        assert_eq!(
            r.evidence,
            "the helion webhook answered 502: telegram: 401 Unauthorized; still failing after 2.0 s"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_failure_that_is_not_a_refusal_is_tried_until_the_deadline() {
        let r = tried(&[Err("the gateway did not answer: connection refused")]).await;
        assert_eq!(r.outcome, Outcome::Fail);
        assert_eq!(
            r.evidence,
            "the gateway did not answer: connection refused; still failing after 9.8 s"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn while_an_injected_fault_is_active_a_flow_is_tried_once_and_its_failure_not_judged() {
        let n = AtomicU32::new(0);
        let r = until_answered(
            "telegram.helion".into(),
            "gateway",
            (Instant::now(), Duration::ZERO),
            &Redactor::new(),
            || {
                n.fetch_add(1, Ordering::SeqCst);
                async {
                    Err::<String, _>("the gateway did not answer: connection refused".to_string())
                }
            },
        )
        .await;
        assert_eq!(n.load(Ordering::SeqCst), 1);
        let judged = not_judged_while(
            "kill -9 dagi-gateway-node1 before phase10.step1, for 5.0 s",
            vec![r],
        );
        assert_eq!(judged[0].outcome, Outcome::Skip);
        assert_eq!(
            judged[0].evidence,
            "not judged while the injected fault `kill -9 dagi-gateway-node1 before phase10.step1, for 5.0 s` was active: the gateway did not answer: connection refused; still failing after 0.0 s"
        );
    }
}
