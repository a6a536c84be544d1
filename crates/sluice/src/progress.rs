//! The progress line of the client commands that run for a while (`ingest --pace`,
//! `record`): on a terminal it is rewritten in place every 250 ms; otherwise a plain line
//! goes to stderr every 5 s, named by its command. Each command writes its own text; the
//! cadence, the rate since the last line and the terminal handling are here.

use std::time::{Duration, Instant};

/// How often the line is rewritten on a terminal.
const EVERY_ON_TERMINAL: Duration = Duration::from_millis(250);
/// How often a plain line is written elsewhere.
const EVERY_PLAIN: Duration = Duration::from_secs(5);

/// One command's progress line.
pub struct ProgressLine {
    command: &'static str,
    terminal: bool,
    /// When the line was last written, and the count it was written at (for the rate).
    shown_at: Instant,
    shown_count: u64,
    /// Whether the terminal shows a line now.
    shown: bool,
}

impl ProgressLine {
    /// A line for `command` (`"sluice record"`), counting from `start`.
    pub fn new(command: &'static str, terminal: bool, start: Instant) -> Self {
        Self {
            command,
            terminal,
            shown_at: start,
            shown_count: 0,
            shown: false,
        }
    }

    /// When it is time to write the line again: the rate per second of `count` since it was
    /// last written (the caller then writes it with [`Self::write`]).
    pub fn due(&mut self, count: u64) -> Option<f64> {
        let every = if self.terminal {
            EVERY_ON_TERMINAL
        } else {
            EVERY_PLAIN
        };
        let now = Instant::now();
        let elapsed = now.duration_since(self.shown_at);
        if elapsed < every {
            return None;
        }
        let rate = count.saturating_sub(self.shown_count) as f64 / elapsed.as_secs_f64();
        self.shown_at = now;
        self.shown_count = count;
        Some(rate)
    }

    /// Writes `text` as the line.
    pub fn write(&mut self, text: &str) {
        if self.terminal {
            eprint!("\r\x1b[2K{text}");
            self.shown = true;
        } else {
            eprintln!("{}: {text}", self.command);
        }
    }

    /// Clears the line so another message can be printed.
    pub fn clear(&mut self) {
        if self.terminal && self.shown {
            eprint!("\r\x1b[2K");
            self.shown = false;
        }
    }

    /// Leaves the last line on screen, ending it.
    pub fn keep(&mut self) {
        if self.terminal && self.shown {
            eprintln!();
            self.shown = false;
        }
    }
}
