//! What the user sees on stderr: one line per step, a spinner while a long step runs when stderr
//! is a terminal (plain lines otherwise, e.g. in CI logs). stdout is kept for results.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static QUIET: AtomicBool = AtomicBool::new(false);

pub fn set_quiet(q: bool) {
    QUIET.store(q, Ordering::Relaxed);
}

pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Prints a step line (`==> ...`) to stderr.
pub fn step(msg: impl AsRef<str>) {
    if !quiet() {
        say(format_args!("==> {}", msg.as_ref()));
    }
}

tokio::task_local! {
    /// What the lines of the running task start with: its platform, when several build at once.
    static LABEL: String;
}

/// Runs `work` with every line it prints (steps, details, the builder's log) starting with
/// `[label] `: the platforms of a multi-platform build run at the same time.
pub async fn labelled<F: std::future::Future>(label: String, work: F) -> F::Output {
    LABEL.scope(format!("[{label}] "), work).await
}

/// The running task's label (`[linux/arm64] `), or nothing.
pub fn label() -> String {
    LABEL.try_with(Clone::clone).unwrap_or_default()
}

/// One line on stderr. A closed stderr (the reader went away) loses the line rather than
/// panicking: the build goes on and still cleans up after itself.
fn say(line: std::fmt::Arguments) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{}{line}", label());
}

/// Prints a detail line under a step.
pub fn detail(msg: impl AsRef<str>) {
    if !quiet() {
        say(format_args!("    {}", msg.as_ref()));
    }
}

/// A running step: a spinner on a terminal, and its duration when done.
pub struct Task {
    bar: Option<ProgressBar>,
    start: Instant,
    msg: String,
}

pub fn task(msg: impl Into<String>) -> Task {
    let msg = msg.into();
    let bar = if !quiet() && std::io::stderr().is_terminal() {
        let bar = ProgressBar::new_spinner();
        bar.set_style(
            ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.set_message(msg.clone());
        bar.enable_steady_tick(Duration::from_millis(120));
        Some(bar)
    } else {
        step(&msg);
        None
    };
    Task { bar, start: Instant::now(), msg }
}

impl Task {
    pub fn done(self, result: impl AsRef<str>) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if !quiet() {
            let secs = self.start.elapsed().as_secs_f64();
            if self.bar.is_some() {
                say(format_args!("==> {} ({secs:.1}s): {}", self.msg, result.as_ref()));
            } else {
                say(format_args!("    done in {secs:.1}s: {}", result.as_ref()));
            }
        }
    }
}

impl Drop for Task {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Human-readable byte count.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 { format!("{n} B") } else { format!("{v:.1} {}", UNITS[u]) }
}
