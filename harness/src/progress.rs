//! Progress lines for anything slow (image build, stack start): a user never stares at a
//! silent terminal. Lines go to stderr, prefixed with the elapsed time.

use std::sync::Arc;
use std::time::Instant;

/// A function that prints one progress line.
type Sink = Arc<dyn Fn(&str) + Send + Sync>;

/// Where progress lines go.
#[derive(Clone)]
pub struct Progress {
    started: Instant,
    sink: Option<Sink>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
    }
}

impl Progress {
    /// Progress printed to stderr.
    pub fn stderr() -> Self {
        Progress {
            started: Instant::now(),
            sink: Some(Arc::new(|line| crate::errln!("{line}"))),
        }
    }

    /// No progress output (tests that assert on output).
    pub fn silent() -> Self {
        Progress {
            started: Instant::now(),
            sink: None,
        }
    }

    /// Progress sent to `sink`.
    pub fn to(sink: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Progress {
            started: Instant::now(),
            sink: Some(Arc::new(sink)),
        }
    }

    /// Emits one line, prefixed with the time since this progress started.
    pub fn say(&self, line: &str) {
        if let Some(sink) = &self.sink {
            let t = self.started.elapsed().as_secs_f64();
            sink(&format!("[{t:6.1}s] {line}"));
        }
    }
}
