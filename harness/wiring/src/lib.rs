//! What the production checks and the replica's fake services both need, so that the verifier
//! never links the fake services: the gateway's JWTs, a PostgreSQL URL as the node's services
//! read it, a secret's fingerprint, and the wiring a service is told on its command line.

pub mod jwt;
mod secrets;

pub use secrets::{fingerprint, DbUrl, WiredForm, WiredSecret, Wiring};
