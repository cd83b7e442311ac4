//! When each of a stack's containers was not running while the probe ran: the engine's own
//! `start` and `die` events for the stack's containers (a recreate by Compose included), read
//! as they happen, so nothing is polled and no service is called.

use futures::StreamExt;
use harness::docker::{LABEL_SERVICE, LABEL_STACK};
use harness::stack::Stack;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// A service's container not running, in ms since the probe began: from its `die` to its next
/// `start` (`to_ms` null: not started again before the probe ended).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownSpan {
    pub from_ms: u64,
    pub to_ms: Option<u64>,
}

/// One engine event: ms since the watch began, the service's key, whether it started (or died).
type Seen = (u64, String, bool);

/// The watch of one stack's container events, from `start` on.
pub struct ContainerWatch {
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ContainerWatch {
    /// Watches `stack`'s containers from now; times are measured from `start`.
    pub fn start(stack: &Stack, start: SystemTime) -> ContainerWatch {
        let docker = stack.docker().clone();
        let filters: std::collections::HashMap<&str, Vec<String>> = [
            ("type", vec!["container".to_string()]),
            ("event", vec!["start".to_string(), "die".to_string()]),
            ("label", vec![format!("{LABEL_STACK}={}", stack.id())]),
        ]
        .into_iter()
        .collect();
        let since = start
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            .to_string();
        let options = bollard::query_parameters::EventsOptionsBuilder::default()
            .since(&since)
            .filters(&filters)
            .build();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let into = seen.clone();
        let task = tokio::spawn(async move {
            let mut events = docker.events(Some(options));
            while let Some(Ok(event)) = events.next().await {
                let service = event
                    .actor
                    .as_ref()
                    .and_then(|a| a.attributes.as_ref())
                    .and_then(|a| a.get(LABEL_SERVICE).cloned());
                let (Some(service), Some(nanos), Some(action)) =
                    (service, event.time_nano, event.action.as_deref())
                else {
                    continue;
                };
                let at =
                    SystemTime::UNIX_EPOCH + std::time::Duration::from_nanos(nanos.max(0) as u64);
                let Ok(since_start) = at.duration_since(start) else {
                    continue;
                };
                into.lock().expect("events lock").push((
                    since_start.as_millis() as u64,
                    service,
                    action == "start",
                ));
            }
        });
        ContainerWatch { seen, task }
    }

    /// Stops watching; each service's spans not running, the last one open when it had not
    /// started again.
    pub fn stop(self) -> BTreeMap<String, Vec<DownSpan>> {
        self.task.abort();
        let seen = std::mem::take(&mut *self.seen.lock().expect("events lock"));
        down_spans(seen)
    }
}

/// Each service's spans not running, from its `die` to its next `start`, in time order.
pub fn down_spans(mut seen: Vec<Seen>) -> BTreeMap<String, Vec<DownSpan>> {
    seen.sort_by_key(|(at, ..)| *at);
    let mut out: BTreeMap<String, Vec<DownSpan>> = BTreeMap::new();
    for (at, service, started) in seen {
        let spans = out.entry(service).or_default();
        let open = spans.last_mut().filter(|s| s.to_ms.is_none());
        match (open, started) {
            (Some(span), true) => span.to_ms = Some(at),
            (None, false) => spans.push(DownSpan {
                from_ms: at,
                to_ms: None,
            }),
            // A second `die` while down, or a `start` while up (a recreate's new container).
            _ => {}
        }
    }
    out.retain(|_, spans| !spans.is_empty());
    out
}

#[cfg(test)]
mod tests {
    use super::{down_spans, DownSpan};

    #[test]
    fn a_die_opens_a_span_the_next_start_closes_and_one_never_restarted_stays_open() {
        let seen = vec![
            (900, "router".to_string(), true),
            (100, "router".to_string(), false),
            (2000, "memory-service".to_string(), false),
            (2100, "memory-service".to_string(), false),
            (50, "gateway".to_string(), true),
        ];
        let spans = down_spans(seen);
        assert_eq!(
            spans.get("router"),
            Some(&vec![DownSpan {
                from_ms: 100,
                to_ms: Some(900)
            }])
        );
        assert_eq!(
            spans.get("memory-service"),
            Some(&vec![DownSpan {
                from_ms: 2000,
                to_ms: None
            }])
        );
        assert_eq!(spans.get("gateway"), None);
    }
}
