//! A hash table whose lookups can be started ahead: the tables a post probes many times
//! are of this kind (the interner's table of tokens up to 15 bytes, probed once per token;
//! the index's token postings, probed once per distinct field and known token; its
//! quadgram postings, probed for each four-byte window that passes the bucket filter).
//!
//! Written by hand because starting a lookup ahead is the point. A post's tokens are looked
//! up one after another, and at 100,000 rules these tables are far larger than the L2
//! cache: with `hashbrown`, each lookup stalled on its bucket (in `perf annotate` of
//! `sluice match`, about a third of the time spent loading a post's fields, and most of the
//! time spent probing its token postings). hashbrown keeps its bucket addresses private, so
//! nothing can ask for a bucket before probing it. Here [`PrefetchMap::prefetch`] computes
//! a key's home slot and requests its cache line, so that a caller can start the lookups of
//! all its keys and then finish them, their cache misses overlapping instead of queueing.
//!
//! Open addressing with linear probing, the key and value side by side in a 32-byte slot,
//! at most half the slots used; deletion shifts the following entries back (no tombstones:
//! a matcher that adds and removes rules forever never needs a rebuild to stay fast).

use std::hash::{BuildHasher, Hash};

use hashbrown::DefaultHashBuilder;

/// A key type with one value that is never a real key, marking a vacant slot.
pub(crate) trait TableKey: Copy + Eq + Hash {
    /// The value no real key takes.
    const VACANT: Self;
}

/// The smallest table allocated once a key is inserted.
const MIN_SLOTS: usize = 16;

/// One slot. Aligned to 32 bytes, so a slot of at most 32 bytes (those of every user) sits
/// in one cache line.
#[derive(Debug, Clone)]
#[repr(C, align(32))]
struct Entry<K, V> {
    key: K,
    value: V,
}

/// `K` → `V`, with lookups that can be started ahead ([`hashed`](Self::hashed),
/// [`prefetch`](Self::prefetch), then [`get_hashed`](Self::get_hashed)).
#[derive(Debug, Clone)]
pub(crate) struct PrefetchMap<K, V> {
    /// A power of two in length (or empty), at most half of them occupied.
    slots: Vec<Entry<K, V>>,
    len: usize,
    hasher: DefaultHashBuilder,
}

impl<K, V> Default for PrefetchMap<K, V> {
    fn default() -> Self {
        Self {
            slots: Vec::new(),
            len: 0,
            hasher: DefaultHashBuilder::default(),
        }
    }
}

/// A key with its hash, computed once for [`PrefetchMap::prefetch`] and reused by
/// [`PrefetchMap::get_hashed`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hashed<K> {
    key: K,
    hash: u64,
}

impl<K: TableKey, V: Clone + Default> PrefetchMap<K, V> {
    /// Number of keys held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether no key is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// `key` with its hash.
    #[inline]
    pub(crate) fn hashed(&self, key: K) -> Hashed<K> {
        Hashed {
            key,
            hash: self.hasher.hash_one(key),
        }
    }

    /// Asks the CPU for the cache line of `key`'s home slot, without waiting for it.
    #[inline]
    pub(crate) fn prefetch(&self, key: &Hashed<K>) {
        if let Some(slot) = self.slots.get(self.home(key.hash)) {
            crate::prefetch(slot);
        }
    }

    /// The value of `key`.
    #[inline]
    pub(crate) fn get(&self, key: K) -> Option<&V> {
        self.get_hashed(&self.hashed(key))
    }

    /// The value of an already hashed key.
    #[inline]
    pub(crate) fn get_hashed(&self, key: &Hashed<K>) -> Option<&V> {
        self.find(key).map(|at| &self.slots[at].value)
    }

    /// The value of `key`, inserted as `V::default()` if absent.
    pub(crate) fn get_or_default(&mut self, key: K) -> &mut V {
        debug_assert!(key != K::VACANT);
        let hashed = self.hashed(key);
        let at = match self.find(&hashed) {
            Some(at) => at,
            None => {
                if (self.len + 1) * 2 > self.slots.len() {
                    self.grow();
                }
                let at = self.vacant_for(hashed.hash);
                self.slots[at].key = key;
                self.len += 1;
                at
            }
        };
        &mut self.slots[at].value
    }

    /// The value of `key`, for changing it in place.
    pub(crate) fn get_mut(&mut self, key: K) -> Option<&mut V> {
        let at = self.find(&self.hashed(key))?;
        Some(&mut self.slots[at].value)
    }

    /// Removes `key` and returns its value, if present.
    pub(crate) fn remove(&mut self, key: K) -> Option<V> {
        let at = self.find(&self.hashed(key))?;
        let value = std::mem::take(&mut self.slots[at].value);
        // Backward shift: move each following entry of the run into the hole when its home
        // slot does not lie cyclically after the hole, so that every key stays reachable
        // from its home without passing a vacant slot.
        let mask = self.slots.len() - 1;
        let mut hole = at;
        let mut next = (hole + 1) & mask;
        while self.slots[next].key != K::VACANT {
            let home = self.home(self.hasher.hash_one(self.slots[next].key));
            if (next.wrapping_sub(home) & mask) >= (next.wrapping_sub(hole) & mask) {
                self.slots.swap(hole, next);
                hole = next;
            }
            next = (next + 1) & mask;
        }
        self.slots[hole].key = K::VACANT;
        self.len -= 1;
        Some(value)
    }

    /// Where `key` is.
    #[inline]
    fn find(&self, key: &Hashed<K>) -> Option<usize> {
        debug_assert!(key.key != K::VACANT, "the vacant key is never looked up");
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut at = self.home(key.hash);
        loop {
            let slot = &self.slots[at].key;
            if *slot == key.key {
                return Some(at);
            }
            if *slot == K::VACANT {
                return None;
            }
            at = (at + 1) & mask;
        }
    }

    /// The home slot of a hash: its low bits (the hasher mixes every bit of the key into
    /// them).
    #[inline]
    fn home(&self, hash: u64) -> usize {
        (hash as usize) & self.slots.len().wrapping_sub(1)
    }

    /// The first vacant slot from `hash`'s home.
    fn vacant_for(&self, hash: u64) -> usize {
        let mask = self.slots.len() - 1;
        let mut at = self.home(hash);
        while self.slots[at].key != K::VACANT {
            at = (at + 1) & mask;
        }
        at
    }

    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(MIN_SLOTS);
        let vacant = Entry {
            key: K::VACANT,
            value: V::default(),
        };
        let old = std::mem::replace(&mut self.slots, vec![vacant; size]);
        for slot in old.into_iter().filter(|s| s.key != K::VACANT) {
            let at = self.vacant_for(self.hasher.hash_one(slot.key));
            self.slots[at] = slot;
        }
    }
}

impl TableKey for u128 {
    const VACANT: Self = u128::MAX;
}

impl TableKey for u64 {
    const VACANT: Self = u64::MAX;
}

/// Quadgrams: four bytes of folded UTF-8, which never holds the byte 0xFF.
impl TableKey for u32 {
    const VACANT: Self = u32::MAX;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Random inserts, changes and removes against std's map, with few keys so that the
    /// table stays small, runs wrap around its end and shifts cross it.
    #[test]
    fn agrees_with_a_map_under_inserts_and_removes() {
        // Every key type the matcher uses: interned short tokens, token postings, quadgrams.
        agree_with_a_map::<u128>();
        agree_with_a_map::<u64>();
        agree_with_a_map::<u32>();
    }

    fn agree_with_a_map<K: TableKey + From<u16> + std::fmt::Debug>() {
        let mut table: PrefetchMap<K, Vec<u32>> = PrefetchMap::default();
        let mut model: HashMap<K, Vec<u32>> = HashMap::new();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let key_of = |n: u64| K::from(u16::try_from(n % 3_000).expect("below 3,000"));
        for step in 0..200_000u32 {
            let key = key_of(next());
            match next() % 4 {
                0 => assert_eq!(table.remove(key), model.remove(&key), "remove {key:?}"),
                1 => {
                    if let Some(value) = table.get_mut(key) {
                        value.push(step);
                    }
                    if let Some(value) = model.get_mut(&key) {
                        value.push(step);
                    }
                }
                _ => {
                    table.get_or_default(key).push(step);
                    model.entry(key).or_default().push(step);
                }
            }
            if step % 1_000 == 0 {
                for probe in (0..3_000).map(key_of) {
                    assert_eq!(table.get(probe), model.get(&probe), "key {probe:?}");
                }
            }
            assert_eq!(table.len(), model.len());
            assert_eq!(table.is_empty(), model.is_empty());
        }
        for (&key, value) in &model {
            let hashed = table.hashed(key);
            table.prefetch(&hashed);
            assert_eq!(table.get_hashed(&hashed), Some(value));
        }
    }

    /// Three keys whose home is the last slot fill it and wrap to the first two, pushing a
    /// key whose home is the first slot to the third; removing keys shifts the ones after
    /// them back across the end, each no further back than its home.
    #[test]
    fn a_run_wraps_around_the_end_and_shifts_back_across_it() {
        let mut table: PrefetchMap<u64, u32> = PrefetchMap::default();
        table.get_or_default(u64::MAX - 1);
        table.remove(u64::MAX - 1);
        assert_eq!(table.slots.len(), MIN_SLOTS);
        let home = |table: &PrefetchMap<u64, u32>, key: u64| table.home(table.hasher.hash_one(key));
        let last = MIN_SLOTS - 1;
        let mut at_last = (0..).filter(|&k| home(&table, k) == last);
        let wrapping: Vec<u64> = at_last.by_ref().take(3).collect();
        let at_first = (0..).find(|&k| home(&table, k) == 0).unwrap();
        for (n, &key) in wrapping.iter().enumerate() {
            *table.get_or_default(key) = n as u32;
        }
        *table.get_or_default(at_first) = 9;
        let keys_at = |table: &PrefetchMap<u64, u32>| -> Vec<u64> {
            [last, 0, 1, 2]
                .iter()
                .map(|&at| table.slots[at].key)
                .collect()
        };
        assert_eq!(
            keys_at(&table),
            [wrapping[0], wrapping[1], wrapping[2], at_first]
        );
        assert_eq!(table.remove(wrapping[0]), Some(0));
        assert_eq!(
            keys_at(&table),
            [wrapping[1], wrapping[2], at_first, u64::VACANT]
        );
        assert_eq!(table.remove(wrapping[2]), Some(2));
        assert_eq!(
            keys_at(&table),
            [wrapping[1], at_first, u64::VACANT, u64::VACANT]
        );
        assert_eq!(table.get(wrapping[1]), Some(&1));
        assert_eq!(table.get(at_first), Some(&9));
        assert_eq!(table.get(wrapping[0]), None);
        assert_eq!(
            table.slots.iter().filter(|s| s.key == u64::VACANT).count(),
            MIN_SLOTS - 2
        );
        assert!(
            table
                .slots
                .iter()
                .filter(|s| s.key == u64::VACANT)
                .all(|s| s.value == 0)
        );
    }

    #[test]
    fn an_empty_table_finds_nothing() {
        let mut table: PrefetchMap<u128, u32> = PrefetchMap::default();
        let hashed = table.hashed(7);
        table.prefetch(&hashed);
        assert_eq!(table.get_hashed(&hashed), None);
        assert_eq!(table.get(0), None);
        assert_eq!(table.remove(0), None);
        assert!(table.get_mut(0).is_none());
        assert!(table.is_empty());
    }

    #[test]
    fn slots_of_every_user_fit_a_cache_line() {
        assert_eq!(std::mem::size_of::<Entry<u128, crate::intern::Known>>(), 32);
        assert_eq!(
            std::mem::size_of::<Entry<u64, crate::index::TokenPostings>>(),
            32
        );
        assert_eq!(
            std::mem::size_of::<Entry<u32, crate::index::GramPostings>>(),
            32
        );
    }
}
