//! The converted lines waiting for the sink, and the cursor they carry: a batch is handed
//! over when it holds [`Limits::max_lines`] lines or its first event is
//! [`Limits::max_wait`] old, whichever comes first, so the sink sees few, full requests
//! under load and a post still reaches the streams within ~100 ms when the firehose is
//! quiet.

use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

/// When a batch is due.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Lines at most.
    pub max_lines: usize,
    /// How long the first event of a batch waits at most.
    pub max_wait: Duration,
}

impl Default for Limits {
    /// 1,000 lines or 100 ms.
    fn default() -> Self {
        Self {
            max_lines: 1_000,
            max_wait: Duration::from_millis(100),
        }
    }
}

/// What one event adds to a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// A post in X's native format.
    Post,
    /// A compliance `delete` event.
    Delete,
}

/// Lines gathered since the last hand-over.
#[derive(Debug, Default)]
pub struct Batch {
    body: Vec<u8>,
    kinds: Vec<LineKind>,
    cursor: Option<u64>,
    since: Option<Instant>,
}

impl Batch {
    /// Adds a line (without its newline) converted from the event at `time_us`.
    pub fn push(&mut self, kind: LineKind, line: &[u8], time_us: u64) {
        self.body.extend_from_slice(line);
        self.body.push(b'\n');
        self.kinds.push(kind);
        self.advance(time_us);
    }

    /// An event that gave no line (an identity event, a like, …) still moves the cursor:
    /// after a restart it need not be read again.
    pub fn advance(&mut self, time_us: u64) {
        self.cursor = Some(self.cursor.map_or(time_us, |c| c.max(time_us)));
        self.since.get_or_insert_with(Instant::now);
    }

    /// Lines in the batch.
    pub fn lines(&self) -> usize {
        self.kinds.len()
    }

    /// Whether nothing was added since the last hand-over (not even a cursor move).
    pub fn is_empty(&self) -> bool {
        self.cursor.is_none()
    }

    /// Whether it must be handed over now.
    pub fn is_full(&self, limits: &Limits) -> bool {
        self.lines() >= limits.max_lines
    }

    /// When it is due by age (`None`: empty, never due).
    pub fn deadline(&self, limits: &Limits) -> Option<Instant> {
        self.since.map(|since| since + limits.max_wait)
    }

    /// Posts and deletes among `kinds`, leaving out the 1-based `refused` lines.
    pub fn count(kinds: &[LineKind], refused: &[usize]) -> (u64, u64) {
        let mut counts = (0, 0);
        for (index, kind) in kinds.iter().enumerate() {
            if refused.contains(&(index + 1)) {
                continue;
            }
            match kind {
                LineKind::Post => counts.0 += 1,
                LineKind::Delete => counts.1 += 1,
            }
        }
        counts
    }

    /// Empties the batch into what the sink gets and the cursor to save after it.
    pub fn take(&mut self) -> Taken {
        let taken = Taken {
            body: Bytes::from(std::mem::take(&mut self.body)),
            kinds: std::mem::take(&mut self.kinds),
            cursor: self.cursor,
        };
        *self = Self::default();
        taken
    }
}

/// A batch handed over.
#[derive(Debug, Clone)]
pub struct Taken {
    /// NDJSON lines, each ending in `\n` (empty when the events gave no line).
    pub body: Bytes,
    /// What each line of `body` is, in order.
    pub kinds: Vec<LineKind>,
    /// The `time_us` of the batch's last event: saved once the sink acknowledged `body`.
    pub cursor: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_framed_counted_and_carry_the_last_cursor() {
        let mut batch = Batch::default();
        let limits = Limits {
            max_lines: 3,
            max_wait: Duration::from_millis(100),
        };
        assert!(batch.is_empty() && batch.deadline(&limits).is_none());
        batch.push(LineKind::Post, b"{\"id\":1}", 10);
        batch.advance(11);
        batch.push(LineKind::Delete, b"{\"delete\":{}}", 12);
        assert!(!batch.is_full(&limits));
        assert!(batch.deadline(&limits).is_some());
        batch.push(LineKind::Post, b"{\"id\":2}", 13);
        assert!(batch.is_full(&limits));
        let taken = batch.take();
        assert_eq!(
            &taken.body[..],
            b"{\"id\":1}\n{\"delete\":{}}\n{\"id\":2}\n"
        );
        assert_eq!(
            taken.kinds,
            [LineKind::Post, LineKind::Delete, LineKind::Post]
        );
        assert_eq!(taken.cursor, Some(13));
        assert!(batch.is_empty() && batch.lines() == 0);
        assert_eq!(Batch::count(&taken.kinds, &[]), (2, 1));
        assert_eq!(Batch::count(&taken.kinds, &[2, 3]), (1, 0));
    }

    #[test]
    fn events_without_lines_still_move_the_cursor() {
        let mut batch = Batch::default();
        batch.advance(7);
        assert!(!batch.is_empty());
        let taken = batch.take();
        assert!(taken.body.is_empty());
        assert_eq!(taken.cursor, Some(7));
    }
}
