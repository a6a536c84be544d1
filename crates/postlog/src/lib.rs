//! # sluice-postlog: the post log
//!
//! Every post a node accepts is appended here before it is delivered, and kept for a
//! retention window (by default 24 hours, up to 5 days), and within a disk budget when the
//! operator sets one (the oldest storage goes first). Streams read it back for
//! `backfillMinutes` (what a reconnecting client missed), for recovery
//! (`startTime`/`endTime`) and for replays; [`held`] tells whether a past window is still
//! whole.
//!
//! The log sits behind the [`PostLog`] trait so that a single node uses local files and a
//! cluster can back it with another engine (a JetStream stream) without the server caring.
//!
//! Positions: every appended post gets a sequence number, strictly increasing by one from
//! the log's first post, and the time it was appended (milliseconds since the UNIX epoch,
//! never decreasing). The first post of a new log gets [`FIRST_SEQ`]; a log reopened after a
//! restart continues its numbering (the only gaps are posts lost to damaged storage that was
//! cut off at start). Readers resume by sequence number; time is only used to
//! find where a window starts.
//!
//! ## Layout
//! - [`PostLog`], [`LoggedPost`], [`NewPost`], [`LogError`]: the contract.
//! - [`held`]: the oldest post still held, and whether a window from a given time is.
//! - [`MemoryLog`]: in memory (tests, servers without a data directory).
//! - [`SegmentLog`]: append-only segment files in a directory (a single node's data dir).
//! - `record`, `index`: the segment log's record format and per-segment index.

#![deny(missing_docs)]

pub mod held;
mod index;
mod memory;
mod record;
mod segment;

use std::sync::Arc;

use bytes::Bytes;

pub use memory::MemoryLog;
pub use segment::{SegmentLog, SegmentOptions};

/// The sequence number of the first post of a new log. Not 0, so that a reader may use 0 as
/// "nothing read yet".
pub const FIRST_SEQ: u64 = 1;

/// A post as the log returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedPost {
    /// Position in the log.
    pub seq: u64,
    /// When the post was appended, epoch milliseconds.
    pub appended_ms: u64,
    /// The datacenter the post originated in.
    pub datacenter: Arc<str>,
    /// The post's JSON, one line, without line terminator.
    pub bytes: Bytes,
}

/// A post to append.
#[derive(Debug, Clone, Copy)]
pub struct NewPost<'a> {
    /// The datacenter the post originated in.
    pub datacenter: &'a str,
    /// The post's JSON, one line, without line terminator.
    pub bytes: &'a [u8],
}

/// What one trim removed: the trimmer counts it in metrics and logs it.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Trimmed {
    /// Storage units (segment files) removed.
    pub segments: u64,
    /// Posts they held.
    pub posts: u64,
    /// Bytes they took.
    pub bytes: u64,
}

/// Why a log operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Reading or writing the log's storage failed.
    #[error("post log I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The stored log is damaged at this point.
    #[error("post log corrupt: {0}")]
    Corrupt(String),
}

/// The post log contract. Implementations are internally synchronized: one appender (the
/// pipeline) and any number of concurrent readers.
pub trait PostLog: Send + Sync + 'static {
    /// Appends posts in order, stamped with `now_ms` (clamped so times never decrease), and
    /// returns the sequence number of the last one. The posts are readable when this
    /// returns.
    fn append(&self, posts: &[NewPost<'_>], now_ms: u64) -> Result<u64, LogError>;

    /// The sequence number the next appended post will get.
    fn next_seq(&self) -> u64;

    /// The sequence number of the first retained post appended at or after `ms` (or
    /// [`PostLog::next_seq`] when there is none).
    fn seq_at_time(&self, ms: u64) -> Result<u64, LogError>;

    /// Up to `max` retained posts from sequence number `from` on, in order. Posts older than
    /// the retention may be gone: the result then starts at the first retained post. Posts
    /// skipped (trimmed) are only ever at the start of a result, never between two of its
    /// posts.
    fn read(&self, from: u64, max: usize) -> Result<Vec<LoggedPost>, LogError>;

    /// Drops posts appended before `ms` (whole storage units at a time; some older posts may
    /// stay a little longer).
    fn trim_before(&self, ms: u64) -> Result<(), LogError>;

    /// Drops the oldest posts, whole storage units at a time, until the log's storage takes
    /// at most `max_bytes` (the operator's disk budget). The unit being appended to is never
    /// dropped, so the newest posts stay even when they alone exceed the budget. Logs whose
    /// storage is bounded elsewhere (in memory; a JetStream stream's own `max_bytes`) keep
    /// the default, which drops nothing.
    fn trim_to_bytes(&self, max_bytes: u64) -> Result<Trimmed, LogError> {
        let _ = max_bytes;
        Ok(Trimmed::default())
    }

    /// Bytes the log's storage takes now (`None`: not measured by this log).
    fn stored_bytes(&self) -> Option<u64> {
        None
    }

    /// Makes what was appended so far survive a power loss (appends only promise to survive
    /// a crash of the process). Called periodically; a no-op for logs without storage.
    fn sync(&self) -> Result<(), LogError> {
        Ok(())
    }
}
