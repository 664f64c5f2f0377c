//! How a build stops on a signal. One listener for SIGINT and SIGTERM ([`Signals`]) is made when
//! the build starts and handed down: every stage races its work against it, and the builder, which
//! has a container to remove first, takes it along (`builder::docker::assemble`). A signal
//! that comes between two stages is kept for the next one, never lost. The build then fails with
//! [`Interrupted`] (or the builder's own `Interrupted`), and the CLI exits with 128 + the signal's
//! number, as a shell reports it: 130 for SIGINT (Ctrl-C), 143 for SIGTERM.
//!
//! Once listened for, these signals no longer end the process by themselves: whatever runs while
//! a [`Signals`] exists must race against it.

use std::fmt;
use std::future::Future;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

/// A signal that stops a build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    /// SIGINT (Ctrl-C).
    Int,
    /// SIGTERM (`kill`, `docker stop`, a CI runner cancelling the job).
    Term,
}

impl StopSignal {
    pub fn name(self) -> &'static str {
        match self {
            StopSignal::Int => "SIGINT",
            StopSignal::Term => "SIGTERM",
        }
    }

    /// 128 + the signal's number, as a shell reports a process the signal ended: 130 or 143.
    pub fn exit_code(self) -> u8 {
        let number = match self {
            StopSignal::Int => libc::SIGINT,
            StopSignal::Term => libc::SIGTERM,
        };
        128 + number as u8
    }
}

impl fmt::Display for StopSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A stage of the build was stopped by a signal (nothing outside this process was left to clean
/// up; the builder reports its own, naming the container it removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("interrupted by {signal}")]
pub struct Interrupted {
    pub signal: StopSignal,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot listen for SIGINT and SIGTERM: {0}")]
pub struct ListenError(#[source] std::io::Error);

/// The listener for SIGINT and SIGTERM; the first one that comes is kept. Clones share it: the
/// platforms of a multi-platform build, built at the same time, each race their work against a
/// clone, and blocking work polls [`Signals::received`].
#[derive(Clone)]
pub struct Signals {
    got: watch::Receiver<Option<StopSignal>>,
}

impl Signals {
    /// Starts listening: from now on SIGINT and SIGTERM are this listener's to act on.
    pub fn listen() -> Result<Signals, ListenError> {
        let mut int = signal(SignalKind::interrupt()).map_err(ListenError)?;
        let mut term = signal(SignalKind::terminate()).map_err(ListenError)?;
        let (tx, got) = watch::channel(None);
        tokio::spawn(async move {
            let s = tokio::select! {
                Some(()) = int.recv() => StopSignal::Int,
                Some(()) = term.recv() => StopSignal::Term,
                // The signal driver is gone (the runtime shuts down): no signal will come.
                else => return,
            };
            let _ = tx.send(Some(s));
            // Later signals are this process's too: keep them from ending it until every clone
            // of the listener is gone.
            tokio::select! {
                _ = tx.closed() => {}
                _ = async { loop { tokio::select! { _ = int.recv() => {}, _ = term.recv() => {} } } } => {}
            }
        });
        Ok(Signals { got })
    }

    /// The signal that came, if one did: for blocking work that checks between its steps.
    pub fn received(&self) -> Option<StopSignal> {
        *self.got.borrow()
    }

    /// Resolves with the first signal (at once when it came already). Cancel-safe.
    pub async fn recv(&self) -> StopSignal {
        let mut got = self.got.clone();
        loop {
            if let Some(s) = *got.borrow_and_update() {
                return s;
            }
            if got.changed().await.is_err() {
                // The listener is gone (the runtime shuts down): no signal will come.
                return std::future::pending().await;
            }
        }
    }

    /// Runs `work` unless a signal comes first (or came already): then `work` is dropped.
    pub async fn run<T>(&self, work: impl Future<Output = T>) -> Result<T, Interrupted> {
        tokio::select! {
            biased;
            signal = self.recv() => Err(Interrupted { signal }),
            v = work => Ok(v),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_are_128_plus_the_signal_number() {
        assert_eq!(StopSignal::Int.exit_code(), 130);
        assert_eq!(StopSignal::Term.exit_code(), 143);
        assert_eq!(Interrupted { signal: StopSignal::Term }.to_string(), "interrupted by SIGTERM");
    }

    /// A signal that comes while no stage is racing is kept for the next stage.
    #[tokio::test]
    async fn a_signal_between_stages_stops_the_next_one() {
        let signals = Signals::listen().unwrap();
        let clone = signals.clone();
        assert_eq!(signals.run(async { 1 }).await, Ok(1));
        assert_eq!(clone.received(), None);
        // SAFETY: raising a signal this process listens for.
        assert_eq!(unsafe { libc::raise(libc::SIGTERM) }, 0);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let stopped = signals.run(std::future::pending::<()>()).await;
        assert_eq!(stopped, Err(Interrupted { signal: StopSignal::Term }));
        assert_eq!(signals.run(async { 2 }).await, Err(Interrupted { signal: StopSignal::Term }));
        // Every clone (another platform's build, blocking work) sees the same signal.
        assert_eq!(clone.received(), Some(StopSignal::Term));
        assert_eq!(clone.run(std::future::pending::<()>()).await, Err(Interrupted { signal: StopSignal::Term }));
    }
}
