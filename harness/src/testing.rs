//! Helpers shared by the workspace's container tests: a default replica, with progress shown.

use crate::progress::Progress;
use crate::{Stack, StackOptions};

/// A default replica stack; panics with the reason when it does not start (tests only).
pub async fn start() -> Stack {
    Stack::start(StackOptions {
        progress: Progress::stderr(),
        ..Default::default()
    })
    .await
    .unwrap_or_else(|e| panic!("stack did not start: {e}"))
}
