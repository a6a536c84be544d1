//! Snowflake-style rule ids (docs/compatibility.md §2.7 and "Rule ids").
//!
//! X's rule ids decode as Twitter Snowflakes created a few milliseconds before the response
//! was sent, and clients treat them as opaque 64-bit integers that grow over time. sluice
//! issues ids with the same layout, so they look, sort and decode like X's:
//!
//! ```text
//!  63   62 ............ 22   21 ..... 12   11 ...... 0
//!  0  | ms since 2010-11-04T01:42:54.657Z | worker (10) | sequence (12)
//! ```
//!
//! A generator's ids are strictly increasing, even for many ids within one millisecond
//! (the sequence counts up, then borrows the next millisecond) and when the wall clock
//! steps back (ids continue from the last one issued instead of repeating).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The Twitter epoch, in milliseconds since the UNIX epoch.
pub const TWITTER_EPOCH_MS: u64 = 1_288_834_974_657;

/// Bits of the worker field.
pub const WORKER_BITS: u32 = 10;
/// Bits of the per-millisecond sequence.
pub const SEQUENCE_BITS: u32 = 12;
/// Largest accepted worker id.
pub const MAX_WORKER_ID: u16 = (1 << WORKER_BITS) - 1;

const TIMESTAMP_SHIFT: u32 = WORKER_BITS + SEQUENCE_BITS;
const SEQUENCE_MASK: u64 = (1 << SEQUENCE_BITS) - 1;
const WORKER_MASK: u64 = (1 << WORKER_BITS) - 1;

/// A worker id outside `0..=MAX_WORKER_ID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("snowflake worker id {0} is out of range (0..={MAX_WORKER_ID})")]
pub struct WorkerIdOutOfRange(pub u16);

/// Issues strictly increasing Snowflake ids for one worker. Shareable between threads
/// (`&self`, lock-free).
#[derive(Debug)]
pub struct SnowflakeGenerator {
    worker: u64,
    /// The last id issued (0 before the first).
    last: AtomicU64,
}

impl SnowflakeGenerator {
    /// A generator for `worker` (distinct per node, so nodes never issue the same id).
    pub fn new(worker: u16) -> Result<Self, WorkerIdOutOfRange> {
        Self::resume(worker, 0)
    }

    /// A generator whose ids all exceed `last_issued`, e.g. the largest id found in the
    /// store at start, so ids keep increasing across restarts even if the clock moved back.
    pub fn resume(worker: u16, last_issued: u64) -> Result<Self, WorkerIdOutOfRange> {
        if worker > MAX_WORKER_ID {
            return Err(WorkerIdOutOfRange(worker));
        }
        Ok(Self {
            worker: u64::from(worker),
            last: AtomicU64::new(last_issued),
        })
    }

    /// The next id, stamped with the current wall-clock time.
    pub fn next_id(&self) -> u64 {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        self.next_id_at(now_ms)
    }

    /// The next id for a clock reading of `unix_ms` (milliseconds since the UNIX epoch).
    /// Greater than every id this generator issued before, whatever `unix_ms` is.
    pub fn next_id_at(&self, unix_ms: u64) -> u64 {
        let fresh = self.compose(unix_ms.saturating_sub(TWITTER_EPOCH_MS), 0);
        let mut last = self.last.load(Ordering::Relaxed);
        loop {
            let next = if fresh > last {
                fresh
            } else {
                self.successor(last)
            };
            match self
                .last
                .compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(actual) => last = actual,
            }
        }
    }

    /// The worker id this generator stamps into its ids.
    pub fn worker(&self) -> u16 {
        u16::try_from(self.worker).expect("checked against MAX_WORKER_ID at construction")
    }

    fn compose(&self, ms_since_epoch: u64, sequence: u64) -> u64 {
        (ms_since_epoch << TIMESTAMP_SHIFT) | (self.worker << SEQUENCE_BITS) | sequence
    }

    /// The smallest id of this worker above `last`.
    fn successor(&self, last: u64) -> u64 {
        let ms = last >> TIMESTAMP_SHIFT;
        let worker = (last >> SEQUENCE_BITS) & WORKER_MASK;
        let sequence = last & SEQUENCE_MASK;
        if worker == self.worker && sequence < SEQUENCE_MASK {
            last + 1
        } else if worker < self.worker {
            self.compose(ms, 0)
        } else {
            self.compose(ms + 1, 0)
        }
    }
}

/// The creation time encoded in a Snowflake id, in milliseconds since the UNIX epoch.
pub fn timestamp_ms(id: u64) -> u64 {
    (id >> TIMESTAMP_SHIFT) + TWITTER_EPOCH_MS
}

/// The worker field of a Snowflake id.
pub fn worker_of(id: u64) -> u16 {
    u16::try_from((id >> SEQUENCE_BITS) & WORKER_MASK).expect("masked to 10 bits")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_x_documented_rule_ids() {
        // docs/compatibility.md §2.7: the documented ids decode to a time just before the response's `sent`.
        assert_eq!(timestamp_ms(734_938_587_381_145_604), 1_464_057_988_387);
        assert_eq!(timestamp_ms(961_664_522_481_119_232), 1_518_113_663_679);
    }

    #[test]
    fn ids_carry_time_and_worker() {
        let generator = SnowflakeGenerator::new(5).expect("valid worker");
        let t = 1_700_000_000_123;
        let id = generator.next_id_at(t);
        assert_eq!(timestamp_ms(id), t);
        assert_eq!(worker_of(id), 5);
        assert_eq!(generator.worker(), 5);
    }

    #[test]
    fn strictly_increasing_within_one_millisecond() {
        let generator = SnowflakeGenerator::new(1).expect("valid worker");
        let t = 1_700_000_000_000;
        let ids: Vec<u64> = (0..10_000).map(|_| generator.next_id_at(t)).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert!(ids.iter().all(|&id| worker_of(id) == 1));
        // 4096 ids fit in a millisecond; the rest borrow the following ones.
        assert_eq!(timestamp_ms(ids[4095]), t);
        assert_eq!(timestamp_ms(ids[4096]), t + 1);
    }

    #[test]
    fn strictly_increasing_when_the_clock_steps_back() {
        let generator = SnowflakeGenerator::new(0).expect("valid worker");
        let a = generator.next_id_at(1_700_000_005_000);
        let b = generator.next_id_at(1_700_000_000_000);
        let c = generator.next_id_at(1_700_000_000_001);
        let d = generator.next_id_at(1_700_000_009_000);
        assert!(a < b && b < c && c < d);
        assert_eq!(timestamp_ms(d), 1_700_000_009_000);
    }

    #[test]
    fn resume_continues_above_a_stored_id_of_another_worker() {
        let stored = SnowflakeGenerator::new(9)
            .expect("valid worker")
            .next_id_at(1_800_000_000_000);
        let generator = SnowflakeGenerator::resume(3, stored).expect("valid worker");
        let next = generator.next_id_at(1_700_000_000_000);
        assert!(next > stored);
        assert_eq!(worker_of(next), 3);
    }

    #[test]
    fn worker_ids_are_bounded() {
        assert_eq!(
            SnowflakeGenerator::new(1024).map(|_| ()),
            Err(WorkerIdOutOfRange(1024))
        );
        assert!(SnowflakeGenerator::new(MAX_WORKER_ID).is_ok());
    }

    #[test]
    fn wall_clock_ids_increase_across_threads() {
        let generator = SnowflakeGenerator::new(2).expect("valid worker");
        let mut all: Vec<u64> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..4)
                .map(|_| s.spawn(|| (0..2000).map(|_| generator.next_id()).collect::<Vec<_>>()))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("thread ran"))
                .collect()
        });
        let n = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), n, "no id was issued twice");
    }
}
