//! The step-boundary fault families: before each step of a phase that rotates a secret, the
//! fault the services that step touches are exposed to (a service killed, PostgreSQL stalled,
//! every NATS connection reset, the provider rejecting the new key). `derive` makes one
//! scenario of each boundary; a new family is a variant here and its `Fault` in `faults.rs`.

use crate::faults::{ContainerFault, NetworkFault, ProxyEffect, UpstreamFault};
use crate::FaultAt;
use harness::runbook::findings::restarts_or_recreates;
use harness::runbook::{Phase, Step};
use harness::Service;
use std::time::Duration;

/// An inventory secret a phase's commands rotate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// The inventory row (`PostgreSQL Password`).
    pub secret: String,
    /// Its key in `SECRET_VARIABLES` (`postgres`), which names its scenarios.
    pub key: &'static str,
    /// The node's variables that hold it.
    pub variables: &'static [&'static str],
}

/// How long a killed service stays down before it is started again, as a restart policy (or an
/// operator) would: longer than the API client's retries (3.75 s), so a service on the API's
/// path shows in failed calls rather than on the edge of them.
pub const KILLED_FOR: Duration = Duration::from_secs(5);
/// How long PostgreSQL stalls (every byte held, connections kept open).
pub const STALLED_FOR: Duration = Duration::from_secs(4);

/// A fault a step boundary meets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `kill -9` of the service, started again `KILLED_FOR` later.
    Killed(Service),
    /// PostgreSQL answers nothing for `STALLED_FOR` (connections stay open).
    PostgresStalls,
    /// Every NATS connection reset once, as a reload that kicks its clients does.
    NatsReset,
    /// The provider rejects the new key (the value of `var` the runbook wrote), just before the
    /// step that makes it live.
    RejectsNewKey {
        provider: &'static str,
        var: &'static str,
    },
}

/// The secrets a server holds, by their `SECRET_VARIABLES` key: a phase rotating one meets the
/// server's family at every step, whichever services the step touches.
const SERVER_SECRETS: &[(&str, Family)] = &[
    ("postgres", Family::PostgresStalls),
    ("nats", Family::NatsReset),
];

impl Family {
    /// The tail of a boundary scenario's id: `router-killed-for-5s`.
    pub fn slug(&self) -> String {
        match self {
            Family::Killed(service) => {
                format!("{}-killed-for-{}s", service.key(), KILLED_FOR.as_secs())
            }
            Family::PostgresStalls => format!("postgres-stalls-for-{}s", STALLED_FOR.as_secs()),
            Family::NatsReset => "nats-connections-reset".into(),
            Family::RejectsNewKey { provider, .. } => format!("{provider}-rejects-the-new-key"),
        }
    }

    /// The fault, injected just before `step` starts.
    pub fn before(&self, step: &str) -> FaultAt {
        match *self {
            Family::Killed(service) => {
                FaultAt::before(step, ContainerFault::Kill(service)).lasting(KILLED_FOR)
            }
            Family::PostgresStalls => FaultAt::before(
                step,
                NetworkFault::Proxy {
                    to: Service::Postgres,
                    from: None,
                    effect: ProxyEffect::Stall,
                },
            )
            .lasting(STALLED_FOR),
            Family::NatsReset => FaultAt::before(
                step,
                NetworkFault::Proxy {
                    to: Service::Nats,
                    from: None,
                    effect: ProxyEffect::Reset,
                },
            ),
            Family::RejectsNewKey { provider, var } => {
                FaultAt::before(step, UpstreamFault::reject_new_key(provider, var))
            }
        }
    }
}

/// One step boundary and the fault it meets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Boundary {
    /// The step the fault comes just before (`phase6.step3`).
    pub step: String,
    /// Its number within the phase, which names the scenario (`step3`).
    pub number: u32,
    pub family: Family,
}

/// Every boundary of `phase`, which rotates `rotated`, in step order: a phase rotating a
/// server's secret meets the server's family before every step; any other meets, before each
/// step, the death of each node service the step names (by container or `.env` path; a step
/// naming none: each the phase names); a provider's key is rejected just before the first step
/// that restarts or recreates a container.
pub fn boundaries(phase: &Phase, rotated: &[Rotated]) -> Vec<Boundary> {
    let server: Vec<Family> = rotated
        .iter()
        .filter_map(|r| SERVER_SECRETS.iter().find(|(k, _)| *k == r.key))
        .map(|(_, family)| *family)
        .collect();
    let phase_services: Vec<Service> = Service::NODE
        .into_iter()
        .filter(|s| phase.steps.iter().any(|step| names(step, *s)))
        .collect();
    let goes_live = phase
        .steps
        .iter()
        .find(|s| restarts_or_recreates(s))
        .map(|s| s.id.as_str());
    let mut out = Vec::new();
    for step in &phase.steps {
        let families = if server.is_empty() {
            let named: Vec<Service> = phase_services
                .iter()
                .copied()
                .filter(|s| names(step, *s))
                .collect();
            let services = if named.is_empty() {
                &phase_services
            } else {
                &named
            };
            services.iter().map(|s| Family::Killed(*s)).collect()
        } else {
            server.clone()
        };
        let rejects = rotated
            .iter()
            .flat_map(|r| r.variables.iter())
            .filter_map(|var| {
                harness::checks::target::PROVIDERS
                    .iter()
                    .find(|(_, v)| v == var)
            })
            .filter(|_| goes_live == Some(step.id.as_str()))
            .map(|(provider, var)| Family::RejectsNewKey { provider, var });
        for family in families.into_iter().chain(rejects) {
            out.push(Boundary {
                step: step.id.clone(),
                number: step.number,
                family,
            });
        }
    }
    out
}

/// Whether `step` names `service`: its container or its `.env` file, in its text or commands.
fn names(step: &Step, service: Service) -> bool {
    let mentions = |text: &str| {
        text.contains(service.production_name())
            || service.env_file().is_some_and(|f| text.contains(f))
    };
    mentions(&step.title) || mentions(&step.prose) || step.code.iter().any(|b| mentions(&b.text))
}
