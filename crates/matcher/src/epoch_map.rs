//! What one post has: a small map that stays in the first-level cache, for what was kept
//! per rule or per token before (the rules made candidates, the field kinds of each
//! known token).
//!
//! At 100,000 rules those per-rule and per-token arrays were 400 KB and 600 KB. A post
//! touches a few dozen entries of each, at random, so nearly every touch was a cache
//! miss (docs/performance.md, "What a post has, kept per post"). This map holds only the
//! post's own entries.

/// The smallest table; a post with more entries than half of it doubles it.
const MIN_ENTRIES: usize = 64;

/// A table larger than this, and more than [`SHRINK_BELOW`] times larger than its last
/// post needed, is made this size again, so that one unusual post does not spread every
/// later post's few entries over a table that no longer stays cached. Below it a table is
/// kept: shrinking it after every small post and growing it after every large one cost
/// more than it saved.
const KEEP_UP_TO: usize = 1024;

/// See [`KEEP_UP_TO`].
const SHRINK_BELOW: usize = 16;

/// One entry: the post's epoch in the high half of `tag` and the key in the low one.
#[derive(Debug, Clone, Copy, Default)]
struct Entry<V> {
    tag: u64,
    value: V,
}

/// `u32` → `V` for one post at a time. Open addressing with linear probing; an entry of
/// an earlier epoch is vacant, so a new post starts with an empty map without clearing it.
#[derive(Debug, Clone, Default)]
pub(crate) struct EpochMap<V> {
    entries: Vec<Entry<V>>,
    /// The epoch whose entries are live (never 0, which marks a never-used entry).
    epoch: u32,
    /// Live entries.
    len: usize,
}

impl<V: Copy + Default> EpochMap<V> {
    /// Empties the map for the post of `epoch` (not 0). An epoch that does not follow
    /// the last one (the epochs wrapped around) could find entries of an earlier lap
    /// that look live, so they are cleared.
    pub(crate) fn start(&mut self, epoch: u32) {
        assert_ne!(epoch, 0, "epoch 0 marks a never-used entry");
        if self.entries.is_empty() {
            self.entries = vec![Entry::default(); MIN_ENTRIES];
        } else if self.entries.len() > KEEP_UP_TO && self.len * SHRINK_BELOW < self.entries.len() {
            self.entries = vec![Entry::default(); KEEP_UP_TO];
        } else if epoch <= self.epoch {
            self.entries.fill(Entry::default());
        }
        self.epoch = epoch;
        self.len = 0;
    }

    /// The tag of `key` in the current epoch.
    #[inline]
    fn live(&self, key: u32) -> u64 {
        u64::from(self.epoch) << 32 | u64::from(key)
    }

    /// The home entry of `key` in a table of `len` entries (a power of two).
    #[inline]
    fn home(key: u32, len: usize) -> usize {
        (key.wrapping_mul(0x9E37_79B1) >> (32 - len.trailing_zeros())) as usize
    }

    /// Whether an entry's tag is of `epoch`.
    #[inline]
    fn is_of(tag: u64, epoch: u32) -> bool {
        tag >> 32 == u64::from(epoch)
    }

    /// The value of `key`, if the post has it.
    #[inline]
    pub(crate) fn get(&self, key: u32) -> Option<&V> {
        if self.entries.is_empty() {
            return None;
        }
        let (want, mask) = (self.live(key), self.entries.len() - 1);
        let mut at = Self::home(key, self.entries.len());
        loop {
            let entry = &self.entries[at];
            if entry.tag == want {
                return Some(&entry.value);
            }
            if !Self::is_of(entry.tag, self.epoch) {
                return None;
            }
            at = (at + 1) & mask;
        }
    }

    /// The value of `key`, added as `V::default()` if the post did not have it, and
    /// whether it was added. Only after [`start`](Self::start).
    #[inline]
    pub(crate) fn entry(&mut self, key: u32) -> (&mut V, bool) {
        debug_assert!(!self.entries.is_empty(), "entry before start");
        let (want, mask) = (self.live(key), self.entries.len() - 1);
        let mut at = Self::home(key, self.entries.len());
        loop {
            let tag = self.entries[at].tag;
            if tag == want {
                return (&mut self.entries[at].value, false);
            }
            if !Self::is_of(tag, self.epoch) {
                break;
            }
            at = (at + 1) & mask;
        }
        if (self.len + 1) * 2 > self.entries.len() {
            self.grow();
            return (self.entry(key).0, true);
        }
        self.len += 1;
        self.entries[at] = Entry {
            tag: want,
            value: V::default(),
        };
        (&mut self.entries[at].value, true)
    }

    /// Adds `key`; true if the post did not have it yet (a set of the post's keys).
    #[inline]
    pub(crate) fn insert(&mut self, key: u32) -> bool {
        self.entry(key).1
    }

    /// Doubles the table, keeping the live entries.
    fn grow(&mut self) {
        let doubled = vec![Entry::default(); self.entries.len() * 2];
        let old = std::mem::replace(&mut self.entries, doubled);
        let mask = self.entries.len() - 1;
        let epoch = self.epoch;
        for entry in old.into_iter().filter(|e| Self::is_of(e.tag, epoch)) {
            let mut at = Self::home(entry.tag as u32, self.entries.len());
            while Self::is_of(self.entries[at].tag, epoch) {
                at = (at + 1) & mask;
            }
            self.entries[at] = entry;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn answers_as_a_map_across_posts_growth_and_wrapping_epochs() {
        let mut map = EpochMap::<u16>::default();
        let mut state = 12345u64;
        for epoch in [1, 2, 3, u32::MAX, 1, 2] {
            map.start(epoch);
            let mut want = HashMap::new();
            // Up to 2,000 keys, with repeats, to cross several doublings.
            let count = (state % 2000) as usize;
            for _ in 0..count {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let key = (state >> 40) as u32 % 3000;
                let bit = 1u16 << (state % 16);
                let (value, added) = map.entry(key);
                assert_eq!(added, !want.contains_key(&key), "epoch {epoch} key {key}");
                *value |= bit;
                *want.entry(key).or_insert(0) |= bit;
                let probe = (state >> 20) as u32 % 3000;
                assert_eq!(
                    map.get(probe),
                    want.get(&probe),
                    "epoch {epoch} probe {probe}"
                );
            }
            for (key, value) in &want {
                assert_eq!(map.get(*key), Some(value));
            }
            state = state.wrapping_add(977);
        }
    }

    #[test]
    fn entries_of_an_earlier_lap_are_gone_after_the_epochs_wrap() {
        let mut map = EpochMap::<()>::default();
        map.start(1);
        assert!(map.insert(7));
        map.start(u32::MAX);
        map.start(1);
        assert_eq!(
            map.get(7),
            None,
            "tag 1 is live again, so the entry must be cleared"
        );
        assert!(map.insert(7));
    }

    #[test]
    fn a_table_grown_by_one_post_shrinks_for_the_next() {
        let mut map = EpochMap::<()>::default();
        map.start(1);
        for key in 0..5000 {
            map.insert(key);
        }
        let grown = map.entries.len();
        map.start(2);
        assert_eq!(map.entries.len(), grown, "the last post filled it");
        assert_eq!(map.get(0), None);
        map.insert(1);
        map.start(3);
        assert_eq!(map.entries.len(), KEEP_UP_TO);
        assert_eq!(map.get(1), None);
        assert!(map.insert(1));
    }

    #[test]
    fn a_new_post_starts_empty() {
        let mut map = EpochMap::<()>::default();
        assert_eq!(map.get(7), None, "before any post");
        map.start(1);
        assert!(map.entry(7).1);
        assert!(!map.entry(7).1);
        map.start(2);
        assert_eq!(map.get(7), None);
        assert!(map.entry(7).1);
        assert!(map.entry(0).1);
        assert!(!map.entry(0).1);
    }
}
