//! Rehearsing the runbook: the traffic probe, the scenario engine that runs the runbook's own
//! steps on a fresh replica under that traffic, the journal every run writes, and the reports
//! rendered from it.

pub mod derive;
pub mod engine;
pub mod journal;
pub mod probe;
pub mod render;
pub mod samples;
pub mod scenario;
pub mod shard;
pub mod shell;
pub mod verdicts;

pub use probe::{containers, telegram};
pub use render::{compare, versus};

pub use derive::{applies, catalogue, families};
pub(crate) use engine::operator;
pub use engine::Options;
pub use engine::{boundary, budgets, busy, faults, flows, impact, schedule};
pub use faults::Fault;
pub use journal::Journal;
pub use scenario::{Expected, Outcome, Rollback, Safeguard, Scenario};
pub use schedule::{At, FaultAt};
