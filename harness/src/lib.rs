//! The rotation rehearsal harness: images without a registry, the replica stack of the node,
//! its `.env` files and secrets, readiness waits, and the redactor every output goes through.

pub mod addresses;
pub mod binary;
pub mod client;
pub mod compose;
pub mod compose_resident;
pub mod docker;
pub mod error;
pub mod host_tools;
pub mod images;
pub mod progress;
pub mod rehearsal;
pub mod replica_root;
pub mod samples;
pub mod signals;
pub mod stack;
pub mod status;
pub mod wait;

pub use ::runbook;
pub use checks;
pub use node::{envfile, profile, redact, services};
pub use user_io::{console, errln, exit_codes, input, out, outln, output};

pub use error::{HarnessError, Result};
pub use services::Service;
pub use stack::{Stack, StackOptions};
