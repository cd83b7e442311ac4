//! Faults a scenario attaches to a step boundary: container faults through the engine
//! (kill -9, stop, pause, restart) and upstream faults through the fake provider's admin API
//! (a key revoked early, 429s). Each is torn down by the engine at the end of the phase or of
//! the scenario, whatever happened.

use super::engine::Fault;
use crate::client::ReplicaClient;
use crate::services::Service;
use crate::stack::Stack;
use futures::future::BoxFuture;
use futures::FutureExt;

/// A container fault.
#[derive(Debug, Clone, Copy)]
pub enum ContainerFault {
    /// `docker kill -s KILL`: a crash.
    Kill(Service),
    /// `docker stop`.
    Stop(Service),
    /// `docker pause`: a hang (the process exists, answers nothing).
    Pause(Service),
    /// `docker restart`.
    Restart(Service),
}

impl Fault for ContainerFault {
    fn name(&self) -> String {
        match self {
            ContainerFault::Kill(s) => format!("kill -9 {}", s.production_name()),
            ContainerFault::Stop(s) => format!("stop {}", s.production_name()),
            ContainerFault::Pause(s) => format!("pause {}", s.production_name()),
            ContainerFault::Restart(s) => format!("restart {}", s.production_name()),
        }
    }

    fn inject<'a>(&'a self, stack: &'a Stack) -> BoxFuture<'a, Result<String, String>> {
        async move {
            let r = match *self {
                ContainerFault::Kill(s) => stack.kill(s, "KILL").await,
                ContainerFault::Stop(s) => stack.stop(s).await,
                ContainerFault::Pause(s) => stack.pause(s).await,
                ContainerFault::Restart(s) => stack.restart(s).await,
            };
            r.map(|()| format!("{} done", self.name()))
                .map_err(|e| e.to_string())
        }
        .boxed()
    }

    fn teardown<'a>(&'a self, stack: &'a Stack) -> BoxFuture<'a, Result<String, String>> {
        async move {
            let r = match *self {
                ContainerFault::Kill(s) | ContainerFault::Stop(s) => match stack.inspect(s).await {
                    Ok(i) if i.state.as_ref().and_then(|st| st.running) == Some(true) => Ok(()),
                    _ => stack.start_again(s).await,
                },
                ContainerFault::Pause(s) => stack.unpause(s).await.or(Ok(())),
                ContainerFault::Restart(_) => Ok(()),
            };
            r.map(|()| format!("{} undone", self.name()))
                .map_err(|e| e.to_string())
        }
        .boxed()
    }
}

/// A provider fault, through the fake upstream's admin API.
#[derive(Debug, Clone)]
pub enum UpstreamFault {
    /// The provider revokes the router's current key (early, before the rotation is done).
    RevokeCurrentKey {
        provider: &'static str,
        var: &'static str,
    },
    /// The provider answers every call with `status` (429: rate limited).
    Status { provider: &'static str, status: u16 },
}

impl Fault for UpstreamFault {
    fn name(&self) -> String {
        match self {
            UpstreamFault::RevokeCurrentKey { provider, .. } => {
                format!("{provider} revokes the current key early")
            }
            UpstreamFault::Status { provider, status } => format!("{provider} answers {status}"),
        }
    }

    fn inject<'a>(&'a self, stack: &'a Stack) -> BoxFuture<'a, Result<String, String>> {
        async move {
            let client = ReplicaClient::new(stack);
            let status = match self {
                UpstreamFault::RevokeCurrentKey { provider, var } => {
                    client
                        .revoke_key(provider, stack.initial_secrets().get(var))
                        .await
                }
                UpstreamFault::Status { provider, status } => {
                    client.set_behaviour(provider, Some(*status), None).await
                }
            };
            if status == 200 {
                Ok(format!("{}: done", self.name()))
            } else {
                Err(format!("{}: admin API answered {status}", self.name()))
            }
        }
        .boxed()
    }

    fn teardown<'a>(&'a self, stack: &'a Stack) -> BoxFuture<'a, Result<String, String>> {
        async move {
            let client = ReplicaClient::new(stack);
            let status = match self {
                UpstreamFault::RevokeCurrentKey { provider, var } => {
                    client
                        .issue_key(provider, stack.initial_secrets().get(var))
                        .await
                }
                UpstreamFault::Status { provider, .. } => {
                    client.set_behaviour(provider, None, None).await
                }
            };
            if status == 200 {
                Ok(format!("{}: undone", self.name()))
            } else {
                Err(format!("{}: admin API answered {status}", self.name()))
            }
        }
        .boxed()
    }
}
