//! Usage: what each stream delivered per UTC hour, its connections, and how often each of
//! its rules matched in the last hour — the numbers of X's Usage API
//! ([`crate::api::usage`]) and of the console's usage view ([`crate::api::admin_usage`]).
//!
//! Counting costs delivery next to nothing: the pipeline thread tallies a batch in its own
//! buffers ([`crate::delivery::fanout`]) and adds the totals to each stream's
//! [`StreamUsage`] once per batch (one short lock per stream and batch, never per post);
//! replays add theirs per step. [`flush`] moves the counts into the store (every few
//! seconds, before a usage read and at shutdown), so they survive restarts.
//!
//! - [`counters`]: the in-memory counts of one stream.
//! - [`bucket`]: hour, day and month buckets of UTC time and X's `yyyymmddhhmm` dates.
//! - [`flush`]: from memory to the store.
//! - [`report`]: the stored and live counts of an account over a range of buckets.

pub mod bucket;
pub mod counters;
pub mod flush;
pub mod report;

pub use counters::StreamUsage;

/// Milliseconds in an hour.
pub const HOUR_MS: i64 = 3_600_000;
/// Milliseconds in a minute.
pub const MINUTE_MS: i64 = 60_000;

/// The UTC hour (hours since the UNIX epoch) of `ms` (milliseconds since the epoch).
pub fn hour_of(ms: i64) -> i64 {
    ms.div_euclid(HOUR_MS)
}

/// The minute (minutes since the UNIX epoch) of `ms`.
pub fn minute_of(ms: i64) -> i64 {
    ms.div_euclid(MINUTE_MS)
}
