//! Rehearsing the runbook: the traffic probe, the scenario engine that runs the runbook's own
//! steps on a fresh replica under that traffic, the journal every run writes, and the reports
//! rendered from it.

pub mod applies;
pub mod boundary;
pub mod budgets;
pub mod busy;
pub mod catalogue;
pub mod compare;
pub mod containers;
pub mod derive;
pub mod engine;
pub mod families;
pub mod faults;
pub mod flows;
pub mod impact;
pub mod journal;
mod measure;
mod operator;
pub mod probe;
pub mod render;
pub mod samples;
pub mod scenario;
pub mod schedule;
pub mod shard;
pub mod shell;
pub mod telegram;
pub mod verdicts;
pub mod versus;

pub use engine::Options;
pub use faults::Fault;
pub use journal::Journal;
pub use scenario::{Expected, Outcome, Rollback, Safeguard, Scenario};
pub use schedule::{At, FaultAt};
