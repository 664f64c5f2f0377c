//! Per-blob progress bars on stderr (indicatif), shown only when stderr is a terminal and the
//! run is not `--quiet`; otherwise every call is a no-op and the summary line is all there is.

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

/// A set of bars drawn together.
pub struct Bars {
    multi: Option<MultiProgress>,
}

impl Bars {
    pub fn new() -> Self {
        let visible = !crate::ui::quiet() && std::io::stderr().is_terminal();
        Bars { multi: visible.then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr())) }
    }

    /// A hidden set (tests, or output that is not a terminal).
    pub fn hidden() -> Self {
        Bars { multi: None }
    }

    /// A bar for one blob of `size` bytes, labelled `label`.
    pub fn blob(&self, label: &str, size: u64) -> Progress {
        let Some(multi) = &self.multi else { return Progress::hidden() };
        let bar = multi.add(ProgressBar::new(size));
        let style = ProgressStyle::with_template("  {prefix:<24} [{bar:30}] {bytes}/{total_bytes} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(label.chars().take(24).collect::<String>());
        Progress { bar: Some(bar) }
    }
}

impl Default for Bars {
    fn default() -> Self {
        Self::new()
    }
}

/// One blob's bar (or nothing).
#[derive(Clone, Default)]
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    pub fn hidden() -> Self {
        Progress { bar: None }
    }
    pub fn set_position(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.set_position(n);
        }
    }
    pub fn set_length(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.set_length(n);
        }
    }
    /// Ends the bar with a word (`uploaded`, `mounted`, `exists`), leaving it on screen.
    pub fn finish(&self, msg: &str) {
        if let Some(b) = &self.bar {
            b.finish_with_message(msg.to_string());
        }
    }
}
