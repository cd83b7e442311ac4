//! Production checks: one catalogue of read-only checks, each with a stable dotted id, run
//! against a `Target` (a real node or the replica) and returning pass / fail / skip / error with
//! redacted evidence. The same checks are the post-conditions of rehearsal scenarios and the
//! body of `cargo xtask verify`.
//!
//! Read-only is a property of the types: a check's body receives only a `Node`, whose methods
//! are HTTP GETs, login attempts that run no statement, container inspection and log reads, and
//! file reads. Nothing in a `Node` can write, so every check in the catalogue can be promoted.

mod catalogue;
pub mod engine;
mod node;
pub mod report;
pub mod secrets;
pub mod ssh;
pub mod target;
pub mod transport;
pub mod watch;

pub use self::node::{Auth, LoginError, Node};
pub use catalogue::catalogue;
pub use target::{Target, TargetError};

use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    /// The check does not apply to this target (no container given, no previous secrets…).
    Skip,
    /// The check could not decide (unreachable, timed out, no Docker engine…).
    Error,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Outcome::Pass => "pass",
            Outcome::Fail => "fail",
            Outcome::Skip => "skip",
            Outcome::Error => "error",
        })
    }
}

/// A check's result before redaction and timing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub outcome: Outcome,
    pub evidence: String,
    /// Set when the check could not reach an address (for the exit code).
    pub unreachable: bool,
}

impl Verdict {
    pub fn pass(evidence: impl Into<String>) -> Self {
        Self::of(Outcome::Pass, evidence)
    }
    pub fn fail(evidence: impl Into<String>) -> Self {
        Self::of(Outcome::Fail, evidence)
    }
    pub fn skip(evidence: impl Into<String>) -> Self {
        Self::of(Outcome::Skip, evidence)
    }
    pub fn error(evidence: impl Into<String>) -> Self {
        Self::of(Outcome::Error, evidence)
    }
    pub fn unreachable(address: &str, detail: &str) -> Self {
        Verdict {
            outcome: Outcome::Error,
            evidence: format!("unreachable {address}: {detail}"),
            unreachable: true,
        }
    }
    fn of(outcome: Outcome, evidence: impl Into<String>) -> Self {
        Verdict {
            outcome,
            evidence: evidence.into(),
            unreachable: false,
        }
    }
}

/// How a check may touch the node. Only `ReadOnly` exists in the catalogue, and `verify` takes
/// only checks built by `Check::read_only`, whose bodies receive nothing but a `Node`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SafetyClass {
    ReadOnly,
}

type Body = Arc<dyn for<'a> Fn(&'a Node) -> BoxFuture<'a, Verdict> + Send + Sync>;

/// One check of the catalogue.
#[derive(Clone)]
pub struct Check {
    /// Stable dotted id: `postgres.auth.current.router`.
    pub id: String,
    pub description: String,
    /// The service it concerns (`router`, `postgres`, `nats`, `node`).
    pub service: String,
    /// The node variables (inventory names) whose secrets it verifies.
    pub secrets: Vec<&'static str>,
    pub safety: SafetyClass,
    /// Its own timeout, when it needs one other than the target's.
    pub timeout: Option<Duration>,
    body: Body,
}

impl std::fmt::Debug for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Check").field("id", &self.id).finish()
    }
}

impl Check {
    /// A check whose body gets only read-only handles.
    pub fn read_only(
        id: impl Into<String>,
        description: impl Into<String>,
        service: impl Into<String>,
        secrets: Vec<&'static str>,
        body: impl for<'a> Fn(&'a Node) -> BoxFuture<'a, Verdict> + Send + Sync + 'static,
    ) -> Check {
        Check {
            id: id.into(),
            description: description.into(),
            service: service.into(),
            secrets,
            safety: SafetyClass::ReadOnly,
            timeout: None,
            body: Arc::new(body),
        }
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Check {
        self.timeout = Some(timeout);
        self
    }
}

/// The result of one check on one target, redacted.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    pub target: String,
    pub id: String,
    pub service: String,
    pub outcome: Outcome,
    pub evidence: String,
    pub duration_ms: u64,
    #[serde(skip)]
    pub unreachable: bool,
}

/// Runs `checks` against `node` concurrently, each within its timeout; evidence is redacted.
pub async fn run(node: &Node, checks: &[&Check]) -> Vec<CheckResult> {
    run_until(node, checks, None).await
}

/// One round of `checks` on `node`, one check at a time in the catalogue's order and the
/// checks' starts spread evenly over `spread` (a watch's round: its load on a node in service
/// spread over the round instead of one burst, at most one connection of ours open at once;
/// a check that runs long delays the next ones, never overlaps them), as a report of that node.
pub async fn verify_one_at_a_time(
    node: &Node,
    checks: &[&Check],
    spread: Duration,
) -> report::Report {
    let started = std::time::SystemTime::now();
    let clock = Instant::now();
    node.forget_logins();
    let gap = spread / checks.len().max(1) as u32;
    let mut results = Vec::with_capacity(checks.len());
    for (i, check) in checks.iter().enumerate() {
        tokio::time::sleep_until((clock + gap * i as u32).into()).await;
        results.push(run_one(node, check, None).await);
    }
    report::Report {
        version: report::REPORT_VERSION,
        started: humantime::format_rfc3339_seconds(started).to_string(),
        wall_ms: clock.elapsed().as_millis() as u64,
        targets: vec![report::TargetReport {
            name: node.target().name.clone(),
            transport: node.transport(),
            results,
        }],
    }
}

/// As `run`, but every check also ends at `deadline` (the node's share of a fleet run): one
/// still running then is an error marked unreachable, as a node that does not answer is; the
/// checks that finished keep their results.
async fn run_until(node: &Node, checks: &[&Check], deadline: Option<Instant>) -> Vec<CheckResult> {
    node.forget_logins();
    futures::future::join_all(checks.iter().map(|check| run_one(node, check, deadline))).await
}

/// One check on `node` under its timeout (and `deadline`, as `run_until` says).
async fn run_one(node: &Node, check: &Check, deadline: Option<Instant>) -> CheckResult {
    let default_timeout = Duration::from_millis(node.target().timeout_ms);
    let started = Instant::now();
    if let Some(why) = node.unreachable() {
        let verdict = Verdict {
            outcome: Outcome::Error,
            evidence: format!("unreachable {why}"),
            unreachable: true,
        };
        return result(node, check, verdict, started);
    }
    let own = check.timeout.unwrap_or(default_timeout);
    let left = deadline
        .map(|d| d.saturating_duration_since(started))
        .filter(|left| *left < own);
    let verdict = match tokio::time::timeout(left.unwrap_or(own), (check.body)(node)).await {
        Ok(v) => v,
        Err(_) if left.is_some() => Verdict {
            outcome: Outcome::Error,
            evidence: "the node's time in the fleet run ran out (--target-timeout)".to_string(),
            unreachable: true,
        },
        Err(_) => Verdict::error(format!("timed out after {} ms", own.as_millis())),
    };
    result(node, check, verdict, started)
}

/// A check's verdict on a node as the report holds it: redacted, timed.
fn result(node: &Node, check: &Check, verdict: Verdict, started: Instant) -> CheckResult {
    CheckResult {
        target: node.target().name.clone(),
        id: check.id.clone(),
        service: check.service.clone(),
        outcome: verdict.outcome,
        evidence: node.redactor().redact(&verdict.evidence),
        duration_ms: started.elapsed().as_millis() as u64,
        unreachable: verdict.unreachable,
    }
}

/// Runs `checks` on every node at once (a fleet runs concurrently) and times the whole run.
pub async fn verify(nodes: &[Node], checks: &[&Check]) -> report::Report {
    verify_fleet(
        nodes,
        checks,
        Fleet {
            jobs: nodes.len().max(1),
            per_target: None,
        },
    )
    .await
}

/// How a fleet is verified: at most `jobs` nodes at once (each node's checks run concurrently
/// among themselves), each node within `per_target` from when its turn starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fleet {
    pub jobs: usize,
    pub per_target: Option<Duration>,
}

/// Runs `checks` on `nodes`, `fleet.jobs` nodes at a time, in the nodes' order in the report;
/// times the whole run.
pub async fn verify_fleet(nodes: &[Node], checks: &[&Check], fleet: Fleet) -> report::Report {
    let started = std::time::SystemTime::now();
    let clock = Instant::now();
    let turns = tokio::sync::Semaphore::new(fleet.jobs.max(1));
    let per_node = futures::future::join_all(
        nodes
            .iter()
            .map(|n| node_turn(&turns, n, checks, fleet.per_target)),
    )
    .await;
    report::Report {
        version: report::REPORT_VERSION,
        started: humantime::format_rfc3339_seconds(started).to_string(),
        wall_ms: clock.elapsed().as_millis() as u64,
        targets: nodes
            .iter()
            .zip(per_node)
            .map(|(n, results)| report::TargetReport {
                name: n.target().name.clone(),
                transport: n.transport(),
                results,
            })
            .collect(),
    }
}

/// One node of a fleet: waits for a turn (the semaphore is fair: nodes go in order), then runs
/// its checks within `per_target` from then.
async fn node_turn(
    turns: &tokio::sync::Semaphore,
    node: &Node,
    checks: &[&Check],
    per_target: Option<Duration>,
) -> Vec<CheckResult> {
    let _turn = turns
        .acquire()
        .await
        .expect("the fleet's semaphore is never closed");
    let deadline = per_target.map(|t| Instant::now() + t);
    run_until(node, checks, deadline).await
}

/// Checks selected by `--only` / `--skip` globs (`*` any run of characters, `?` one).
pub fn select<'a>(
    catalogue: &'a [Check],
    only: &[String],
    skip: &[String],
) -> Result<Vec<&'a Check>, SelectionError> {
    for pattern in only.iter().chain(skip) {
        if !catalogue.iter().any(|c| glob_match(pattern, &c.id)) {
            return Err(SelectionError {
                pattern: pattern.clone(),
                close: close_matches(pattern, catalogue),
            });
        }
    }
    Ok(catalogue
        .iter()
        .filter(|c| only.is_empty() || only.iter().any(|p| glob_match(p, &c.id)))
        .filter(|c| !skip.iter().any(|p| glob_match(p, &c.id)))
        .collect())
}

/// An `--only`/`--skip` pattern that matches no check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no check matches `{pattern}`{}", if close.is_empty() { " (see `--list`)".to_string() } else { format!("; did you mean {}?", close.join(", ")) })]
pub struct SelectionError {
    pub pattern: String,
    pub close: Vec<String>,
}

/// Whether `text` (a check or scenario id) matches `pattern`, a glob as `globset` reads it:
/// `*` any run of characters (dots and slashes included), `?` one, `[abc]` one of a set,
/// `{a,b}` either. A pattern that is not a glob (an unclosed `[`) matches nothing, so a
/// selection by it is refused as matching nothing, with the ids closest to it.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    globset::GlobBuilder::new(pattern)
        .literal_separator(false)
        .build()
        .is_ok_and(|glob| glob.compile_matcher().is_match(text))
}

fn close_matches(pattern: &str, catalogue: &[Check]) -> Vec<String> {
    let bare = pattern.replace(['*', '?'], "");
    let mut scored: Vec<(usize, &str)> = catalogue
        .iter()
        .map(|c| (edit_distance(&bare, &c.id), c.id.as_str()))
        .collect();
    scored.sort();
    let best = scored.first().map(|s| s.0).unwrap_or(0);
    let mut close: Vec<String> = scored
        .iter()
        .filter(|(d, _)| *d <= best + 2 && *d <= bare.len().max(4))
        .take(5)
        .map(|(_, id)| id.to_string())
        .collect();
    // Ids sharing the pattern's first segment are close too.
    let head = bare.split('.').next().unwrap_or("");
    for c in catalogue {
        if close.len() < 5 && !head.is_empty() && c.id.starts_with(head) && !close.contains(&c.id) {
            close.push(c.id.clone());
        }
    }
    close
}

pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            cur[j] = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_dotted_ids() {
        assert!(glob_match("postgres.*", "postgres.auth.current.router"));
        assert!(glob_match("*.previous*", "nats.auth.previous.gateway"));
        assert!(glob_match("health.?outer", "health.router"));
        assert!(!glob_match("postgres.*", "nats.auth.current.router"));
        assert!(glob_match("*", ""));
        assert!(glob_match(
            "faults/*",
            "faults/postgres/step1-postgres-stalls"
        ));
        assert!(glob_match("rotate/{deepseek,grok}", "rotate/grok"));
        assert!(!glob_match("rotate/[", "rotate/["));
    }

    #[test]
    fn an_unknown_only_id_lists_close_matches() {
        let all = catalogue();
        let e = select(&all, &["postgres.auth.curent.router".into()], &[]).unwrap_err();
        assert!(
            e.close
                .contains(&"postgres.auth.current.router".to_string()),
            "{e}"
        );
        assert!(e.to_string().contains("did you mean"), "{e}");
    }

    #[test]
    fn skip_removes_what_only_selected() {
        let all = catalogue();
        let chosen = select(&all, &["postgres.*".into()], &["*.previous".into()]).unwrap();
        assert!(!chosen.is_empty());
        assert!(chosen
            .iter()
            .all(|c| c.id.starts_with("postgres.") && !c.id.ends_with(".previous")));
    }

    #[test]
    fn check_ids_are_unique_and_dotted() {
        let all = catalogue();
        let mut ids: Vec<&str> = all.iter().map(|c| c.id.as_str()).collect();
        ids.sort();
        let n = ids.len();
        ids.dedup();
        assert_eq!(ids.len(), n);
        assert!(all
            .iter()
            .all(|c| c.id.contains('.') && !c.description.is_empty()));
    }
}
