//! The builder's log: shown live on stderr, line by line, and the last lines kept for errors.

use std::collections::VecDeque;
use std::io::Write;

/// Prefix of every builder log line shown on stderr.
pub const PREFIX: &str = "  │ ";

/// Splits a byte stream into lines, echoes each complete line (prefixed) to stderr when `echo`
/// is on, and keeps the last `capacity` lines.
#[derive(Debug)]
pub struct LogTail {
    partial: Vec<u8>,
    lines: VecDeque<String>,
    capacity: usize,
    echo: bool,
    /// Values replaced with [`super::inputs::REDACTED`] in every line (the build's secrets).
    redactions: Vec<Vec<u8>>,
}

impl LogTail {
    pub fn new(capacity: usize, echo: bool) -> LogTail {
        LogTail {
            partial: Vec::new(),
            lines: VecDeque::with_capacity(capacity),
            capacity,
            echo,
            redactions: Vec::new(),
        }
    }

    /// Replaces each of `values` wherever it appears in a line, before the line is shown or kept.
    pub fn redacting(mut self, values: Vec<Vec<u8>>) -> LogTail {
        self.redactions = values;
        self
    }

    /// Adds a chunk of output (any split: lines are put together across chunks).
    pub fn push(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            self.partial.extend_from_slice(&rest[..i]);
            self.complete_line();
            rest = &rest[i + 1..];
        }
        self.partial.extend_from_slice(rest);
    }

    /// Ends the stream: a last line without a newline counts too.
    pub fn finish(&mut self) {
        if !self.partial.is_empty() {
            self.complete_line();
        }
    }

    /// The last lines, oldest first.
    pub fn tail(&self) -> Vec<String> {
        self.lines.iter().cloned().collect()
    }

    fn complete_line(&mut self) {
        let raw = std::mem::take(&mut self.partial);
        let text = String::from_utf8_lossy(&raw);
        let line = text.strip_suffix('\r').unwrap_or(&text).to_string();
        let line = match self.redactions.is_empty() {
            true => line,
            false => super::inputs::redact(&line, &self.redactions),
        };
        if self.echo {
            let mut err = std::io::stderr().lock();
            // Losing a log line on a closed stderr is not worth failing the build.
            let _ = writeln!(err, "{}{PREFIX}{line}", crate::ui::label());
        }
        if self.lines.len() == self.capacity {
            self.lines.pop_front();
        }
        if self.capacity > 0 {
            self.lines.push_back(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_chunks_and_keeps_the_tail() {
        let mut log = LogTail::new(2, false);
        log.push(b"one\ntw");
        log.push(b"o\r\nthr");
        log.push(b"ee\nfo");
        assert_eq!(log.tail(), ["two", "three"]);
        log.finish();
        assert_eq!(log.tail(), ["three", "fo"]);
        log.finish();
        assert_eq!(log.tail(), ["three", "fo"]);
    }

    #[test]
    fn secret_values_never_reach_the_tail() {
        let mut log = LogTail::new(3, false).redacting(vec![b"hunter2\n".to_vec()]);
        log.push(b"auth: hunt");
        log.push(b"er2 and hunter2\nok\n");
        assert_eq!(log.tail(), ["auth: [secret] and [secret]", "ok"]);
    }
}
