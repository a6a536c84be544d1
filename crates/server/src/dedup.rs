//! De-duplication of accepted posts by id: a post whose id was accepted within the last
//! [`WINDOW`] is acknowledged again but neither logged nor delivered a second time (see
//! `docs/ingest.md`, "Duplicate ids").
//!
//! The single-node pipeline's append thread owns one [`RecentIds`]: it sees every batch in
//! order, so a check and the insert that follows cannot race, and it records an id only once
//! the post is in the post log, so a batch that failed to be stored leaves nothing behind
//! and its retry is not mistaken for a duplicate. It compares the id the ingest API read
//! when it validated the post ([`crate::pipeline::IngestedPost::id`]): the post is not
//! parsed again here. At start the window is refilled from the post log
//! ([`RecentIds::rebuild`]), which holds at least the last [`WINDOW`] of posts (the
//! retention is never shorter), so a restart does not reopen it; the log keeps only the
//! bytes, so that rebuild reads each id from them ([`sluice_model::read_post_id`]). In
//! cluster mode JetStream de-duplicates by the same id over the same window (its message
//! id).

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use sluice_postlog::{LogError, PostLog};

/// How long an accepted id is remembered: the longest backfill (5 minutes), so that a
/// client backfilling after a reconnect never gets one post twice because it was ingested
/// twice, and so that an ingest client retrying a batch it got no answer for (a timeout, a
/// restart of the server) within that time does not duplicate it. Longer would cost memory
/// in proportion (see [`RecentIds`]) for a retention that may be 24 hours.
pub const WINDOW: Duration = Duration::from_secs(5 * 60);

/// Ids remembered at most (about 220 MB): past this, the oldest are forgotten before their
/// window ends. A node's ingest rate does not reach it (20,000 posts/s for 5 minutes is 6
/// million ids); it only bounds memory against a flood.
pub const MAX_IDS: usize = 8_000_000;

/// The ids accepted within the window, oldest first.
///
/// Memory: per id, 8 bytes in the arrival queue and a hash set entry of 8 bytes and a
/// control byte, both in tables whose capacity doubles: 20–40 MB per million ids (27 MB at
/// exactly one million). Arrival times are kept per run of ids with the same millisecond,
/// 16 bytes per batch.
#[derive(Debug)]
pub struct RecentIds {
    window_ms: u64,
    max_ids: usize,
    set: HashSet<u64>,
    /// Every id in `set`, in arrival order.
    order: VecDeque<u64>,
    /// (arrival time, how many ids of `order` arrived then), oldest first.
    times: VecDeque<(u64, usize)>,
}

impl RecentIds {
    /// An empty window of `window` holding at most `max_ids` ids.
    pub fn new(window: Duration, max_ids: usize) -> Self {
        Self {
            window_ms: u64::try_from(window.as_millis()).unwrap_or(u64::MAX),
            max_ids,
            set: HashSet::new(),
            order: VecDeque::new(),
            times: VecDeque::new(),
        }
    }

    /// The window of the posts `log` received in the last `window` before `now_ms`.
    pub fn rebuild(
        log: &dyn PostLog,
        now_ms: u64,
        window: Duration,
        max_ids: usize,
    ) -> Result<Self, LogError> {
        let mut recent = Self::new(window, max_ids);
        let mut from = log.seq_at_time(now_ms.saturating_sub(recent.window_ms))?;
        loop {
            let posts = log.read(from, 4_096)?;
            let Some(last) = posts.last() else { break };
            from = last.seq + 1;
            for post in &posts {
                if let Some(id) = sluice_model::read_post_id(&post.bytes) {
                    recent.insert(id, post.appended_ms);
                }
            }
        }
        Ok(recent)
    }

    /// How many ids are remembered.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether no id is remembered.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// Forgets the ids that arrived before `now_ms` minus the window.
    pub fn expire(&mut self, now_ms: u64) {
        let cutoff = now_ms.saturating_sub(self.window_ms);
        while let Some(&(ms, _)) = self.times.front() {
            if ms >= cutoff {
                break;
            }
            self.forget_oldest();
        }
    }

    /// Records `id` as accepted at `now_ms`; `false` (and nothing changes) if it is already
    /// remembered.
    pub fn insert(&mut self, id: u64, now_ms: u64) -> bool {
        if !self.set.insert(id) {
            return false;
        }
        self.order.push_back(id);
        match self.times.back_mut() {
            Some((ms, n)) if *ms >= now_ms => *n += 1,
            _ => self.times.push_back((now_ms, 1)),
        }
        while self.order.len() > self.max_ids {
            self.forget_oldest();
        }
        true
    }

    /// Takes back the `n` ids inserted last (their posts could not be stored).
    pub fn forget_newest(&mut self, n: usize) {
        for _ in 0..n {
            let Some(id) = self.order.pop_back() else {
                return;
            };
            self.set.remove(&id);
            if let Some((_, count)) = self.times.back_mut() {
                *count -= 1;
                if *count == 0 {
                    self.times.pop_back();
                }
            }
        }
    }

    fn forget_oldest(&mut self) {
        let Some(id) = self.order.pop_front() else {
            return;
        };
        self.set.remove(&id);
        if let Some((_, count)) = self.times.front_mut() {
            *count -= 1;
            if *count == 0 {
                self.times.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_postlog::{MemoryLog, NewPost};

    const MINUTE: u64 = 60_000;

    #[test]
    fn an_id_is_a_duplicate_until_its_window_has_passed() {
        let mut recent = RecentIds::new(Duration::from_secs(300), MAX_IDS);
        let t0 = 1_000_000;
        assert!(recent.insert(7, t0));
        assert!(!recent.insert(7, t0), "twice in one batch");
        recent.expire(t0 + 4 * MINUTE);
        assert!(
            !recent.insert(7, t0 + 4 * MINUTE),
            "again within the window"
        );
        assert!(recent.insert(8, t0 + 4 * MINUTE));
        recent.expire(t0 + 5 * MINUTE);
        assert!(
            !recent.insert(7, t0 + 5 * MINUTE),
            "exactly at the window's end"
        );
        recent.expire(t0 + 5 * MINUTE + 1);
        assert_eq!(recent.len(), 1, "7 expired, 8 not yet");
        assert!(recent.insert(7, t0 + 5 * MINUTE + 1), "after the window");
        recent.expire(t0 + 9 * MINUTE);
        assert!(!recent.insert(8, t0 + 9 * MINUTE), "8 arrived at 4 min");
        recent.expire(t0 + 9 * MINUTE + 1);
        assert!(recent.insert(8, t0 + 9 * MINUTE + 1));
    }

    #[test]
    fn ids_of_a_batch_that_was_not_stored_are_taken_back() {
        let mut recent = RecentIds::new(Duration::from_secs(300), MAX_IDS);
        assert!(recent.insert(1, 10));
        assert!(recent.insert(2, 20));
        assert!(recent.insert(3, 20));
        recent.forget_newest(2);
        assert_eq!(recent.len(), 1);
        assert!(recent.insert(2, 30) && recent.insert(3, 30));
        assert!(!recent.insert(1, 30));
        // The times stayed consistent: 1 expires alone, then 2 and 3 together.
        recent.expire(10 + 300_000 + 1);
        assert_eq!(recent.len(), 2);
        recent.expire(30 + 300_000 + 1);
        assert!(recent.is_empty());
    }

    #[test]
    fn the_oldest_ids_go_first_past_the_cap() {
        let mut recent = RecentIds::new(Duration::from_secs(300), 3);
        for id in 1..=4 {
            assert!(recent.insert(id, id));
        }
        assert_eq!(recent.len(), 3);
        assert!(recent.insert(1, 5), "1 was forgotten");
        assert!(!recent.insert(4, 5));
    }

    #[test]
    fn rebuild_remembers_the_logged_posts_of_the_window() {
        let log = MemoryLog::new();
        let post = |id: u64| format!(r#"{{"id":{id},"created_at":"x"}}"#);
        let old = [post(1)];
        let new = [post(2), post(3)];
        let as_new = |posts: &[String]| -> Vec<Vec<u8>> {
            posts.iter().map(|p| p.as_bytes().to_vec()).collect()
        };
        for (posts, ms) in [(as_new(&old), 1_000), (as_new(&new), 1_000 + 4 * MINUTE)] {
            let batch: Vec<NewPost<'_>> = posts
                .iter()
                .map(|bytes| NewPost {
                    datacenter: "local",
                    bytes,
                })
                .collect();
            log.append(&batch, ms).unwrap();
        }
        let now = 1_000 + 6 * MINUTE;
        let mut recent = RecentIds::rebuild(&log, now, WINDOW, MAX_IDS).unwrap();
        assert_eq!(recent.len(), 2, "the post of minute 0 is out of the window");
        assert!(recent.insert(1, now));
        assert!(!recent.insert(2, now));
        assert!(!recent.insert(3, now));
    }
}
