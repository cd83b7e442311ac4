//! The signals that end a run early — SIGINT (Ctrl-C), SIGTERM (`timeout`, CI runners,
//! systemd) and SIGHUP (a closed terminal) — as one future, so that whatever ends a command its
//! replicas are removed first and it exits `128 + signal`, as a shell reports it.

use tokio::signal::unix::{signal, Signal, SignalKind};

/// A signal that ended a run, by number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interrupted(pub i32);

impl Interrupted {
    /// The process's exit code: 128 + the signal's number (130 for SIGINT, 143 for SIGTERM).
    pub fn exit_code(self) -> i32 {
        crate::exit_codes::interrupted(self.0)
    }

    /// The signal's name, for messages.
    pub fn name(self) -> &'static str {
        match self.0 {
            libc::SIGINT => "SIGINT",
            libc::SIGTERM => "SIGTERM",
            libc::SIGHUP => "SIGHUP",
            _ => "a signal",
        }
    }
}

/// The handlers for the three signals, installed for as long as this value lives: from then on
/// those signals no longer kill the process, they wake `recv`.
pub struct Signals {
    int: Signal,
    term: Signal,
    hup: Signal,
}

impl Signals {
    /// Installs the handlers. Call it before starting anything that must be cleaned up.
    pub fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// The next of the three signals to arrive.
    pub async fn recv(&mut self) -> Interrupted {
        tokio::select! {
            _ = self.int.recv() => Interrupted(libc::SIGINT),
            _ = self.term.recv() => Interrupted(libc::SIGTERM),
            _ = self.hup.recv() => Interrupted(libc::SIGHUP),
        }
    }
}
