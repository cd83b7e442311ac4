//! The node as data, shared by the checks and the replica: its services and their names, its
//! `.env` files, how its services read their secrets (the node profile), and the redactor
//! that keeps every secret value out of what is printed or written.

pub mod envfile;
pub mod profile;
pub mod redact;
pub mod services;

pub use services::Service;
