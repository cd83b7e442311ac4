//! The replica of the node: its base image without a registry, its service binary, its root
//! and `.env` files, its containers as a Compose project, readiness waits and our stacks on the
//! engine. Re-exports the layers below it (the runbook, the node, the checks, the user's side).

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
pub mod replica_root;
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
