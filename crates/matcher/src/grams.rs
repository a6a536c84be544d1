//! Fixed-size filters over four-byte grams, so substring matching touches hash tables and
//! runs `memmem` only when a gram can actually be there.
//!
//! Both filters hash a gram to a bucket. [`GramSet`] is the set of a
//! post's grams (per source, rebuilt per post): a `contains:` candidate whose pattern has a
//! gram missing from it cannot match, so its search is skipped. [`GramCounts`] counts the
//! rules' anchor grams per bucket: a post gram whose bucket is empty has no posting, so its
//! hash lookup is skipped. Both may say "maybe" wrongly (shared buckets), never "no"
//! wrongly.

use crate::index::quadgram;

/// Number of buckets of [`GramCounts`] (2^16: a few thousand rule grams fill few of them).
const BUCKETS: usize = 1 << 16;

/// log2 of the number of bits of a [`GramSet`]: 2^14 bits (2 KiB, cleared per post), of
/// which a post's couple of thousand grams set about one in eight.
const SET_BITS_LOG2: u32 = 14;

/// A multiplicative hash of a gram; its top bits pick the bucket.
#[inline]
fn hash(gram: u32) -> u32 {
    gram.wrapping_mul(0x9E37_79B1)
}

/// The [`GramCounts`] bucket of a gram.
#[inline]
fn bucket(gram: u32) -> usize {
    (hash(gram) >> (32 - BUCKETS.trailing_zeros())) as usize
}

/// The [`GramSet`] bit of a gram.
#[inline]
fn set_bit(gram: u32) -> usize {
    (hash(gram) >> (32 - SET_BITS_LOG2)) as usize
}

/// The buckets of the four-byte grams of some text: a Bloom filter with one hash.
#[derive(Debug, Clone)]
pub(crate) struct GramSet {
    bits: Box<[u64]>,
    /// Whether the set was filled for the current post (when not, it answers "maybe").
    filled: bool,
}

impl Default for GramSet {
    fn default() -> Self {
        Self {
            bits: vec![0; (1 << SET_BITS_LOG2) / 64].into_boxed_slice(),
            filled: false,
        }
    }
}

impl GramSet {
    /// Empties the set; until [`GramSet::start`], every query answers "maybe".
    pub(crate) fn reset(&mut self) {
        if self.filled {
            self.bits.fill(0);
            self.filled = false;
        }
    }

    /// Starts filling the set for the current post.
    pub(crate) fn start(&mut self) {
        self.filled = true;
    }

    /// Adds a gram.
    #[inline]
    pub(crate) fn insert(&mut self, gram: u32) {
        let b = set_bit(gram);
        self.bits[b / 64] |= 1 << (b % 64);
    }

    /// Whether the text may contain a gram whose [`gram_bit`] is `bit`.
    #[inline]
    pub(crate) fn may_have_bit(&self, bit: u16) -> bool {
        let b = usize::from(bit);
        !self.filled || self.bits[b / 64] & (1 << (b % 64)) != 0
    }

    /// Whether the text may contain `pattern` (of four bytes or more): false only when one
    /// of its grams is certainly absent. Shorter patterns always may.
    pub(crate) fn may_contain(&self, pattern: &[u8]) -> bool {
        !self.filled
            || pattern.windows(4).all(|w| {
                let b = set_bit(quadgram(w));
                self.bits[b / 64] & (1 << (b % 64)) != 0
            })
    }
}

/// The bit a gram sets in a [`GramSet`], for callers that keep it (see `gate`).
pub(crate) fn gram_bit(gram: u32) -> u16 {
    u16::try_from(set_bit(gram)).expect("a set has 2^14 bits")
}

/// Two more grams of a substring pattern anchored on one of its grams, as their
/// [`GramSet`] bits: kept beside the rule in the anchor gram's posting, so that a post
/// holding the anchor gram but not these (most of them, for real text) is not made a
/// candidate at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct GramPair([u16; 2]);

impl GramPair {
    /// The pair of `pattern` anchored on `anchor`, one of its grams: its first and last
    /// grams other than the anchor (the anchor's own, when the pattern has no other, as a
    /// four-byte or empty pattern).
    pub(crate) fn of(pattern: &[u8], anchor: u32) -> Self {
        let mut others = pattern
            .windows(4)
            .map(quadgram)
            .filter(|&gram| gram != anchor);
        let first = others.next().unwrap_or(anchor);
        let last = others.next_back().unwrap_or(first);
        Self([gram_bit(first), gram_bit(last)])
    }
}

impl GramSet {
    /// Whether the text may hold both grams of `pair`.
    #[inline]
    pub(crate) fn may_have_pair(&self, pair: GramPair) -> bool {
        self.may_have_bit(pair.0[0]) && self.may_have_bit(pair.0[1])
    }
}

/// Per bucket, how many anchor grams of rules fall in it.
///
/// The counts (256 KiB) are only touched when rules come and go; a post's grams, one per
/// byte of its text, are checked against a bit per bucket (8 KiB, which stays in the
/// first-level cache), set while the bucket's count is not zero. Read from the counts,
/// the check was a cache miss per gram at 100,000 rules (docs/performance.md, "Matching
/// cost").
#[derive(Debug, Clone)]
pub(crate) struct GramCounts {
    counts: Box<[u32]>,
    occupied: Box<[u64]>,
}

impl Default for GramCounts {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS].into_boxed_slice(),
            occupied: vec![0; BUCKETS / 64].into_boxed_slice(),
        }
    }
}

impl GramCounts {
    /// Records one more rule anchored on `gram`.
    pub(crate) fn add(&mut self, gram: u32) {
        let b = bucket(gram);
        self.counts[b] += 1;
        self.occupied[b / 64] |= 1 << (b % 64);
    }

    /// Forgets one rule anchored on `gram`.
    pub(crate) fn remove(&mut self, gram: u32) {
        let b = bucket(gram);
        self.counts[b] -= 1;
        if self.counts[b] == 0 {
            self.occupied[b / 64] &= !(1 << (b % 64));
        }
    }

    /// Whether some rule may be anchored on `gram`.
    #[inline]
    pub(crate) fn may_have(&self, gram: u32) -> bool {
        let b = bucket(gram);
        self.occupied[b / 64] & (1 << (b % 64)) != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_never_rules_out_a_present_pattern() {
        let text = b"the quick brown fox";
        let mut set = GramSet::default();
        assert!(set.may_contain(b"zzzz"), "unfilled: maybe");
        set.start();
        text.windows(4).for_each(|w| set.insert(quadgram(w)));
        assert!(set.may_contain(b"quick brown"));
        assert!(set.may_contain(b"fox"));
        assert!(!set.may_contain(b"quack"));
        set.reset();
        assert!(set.may_contain(b"quack"));
    }

    #[test]
    fn a_pair_never_rules_out_a_text_holding_its_pattern() {
        let text = b"the quick brown fox jumps";
        let mut set = GramSet::default();
        set.start();
        text.windows(4).for_each(|w| set.insert(quadgram(w)));
        // Each pattern below occurs in the text, whichever of its grams anchors it.
        for pattern in [&b"quick brown"[..], b"k br", b"fox jumps", b"the "] {
            for w in pattern.windows(4) {
                let pair = GramPair::of(pattern, quadgram(w));
                assert!(set.may_have_pair(pair), "{pattern:?} anchored on {w:?}");
            }
        }
        // Absent patterns: the pair leaves out the anchor, so it still rules these out.
        for (pattern, anchor) in [(&b"quick brawn"[..], b"quic"), (b"brown cow", b"brow")] {
            let pair = GramPair::of(pattern, quadgram(anchor));
            assert!(!set.may_have_pair(pair), "{pattern:?}");
        }
        // A four-byte pattern has no other gram: its pair is the anchor itself.
        assert_eq!(
            GramPair::of(b"abcd", quadgram(b"abcd")),
            GramPair([gram_bit(quadgram(b"abcd")); 2])
        );
    }

    #[test]
    fn counts_follow_adds_and_removes() {
        let mut counts = GramCounts::default();
        let g = quadgram(b"abcd");
        assert!(!counts.may_have(g));
        counts.add(g);
        counts.add(g);
        counts.remove(g);
        assert!(counts.may_have(g));
        counts.remove(g);
        assert!(!counts.may_have(g));
    }

    #[test]
    fn the_bits_say_what_the_counts_say_through_adds_and_removes() {
        let mut counts = GramCounts::default();
        // Grams that share buckets and words of the bitset, added and removed interleaved.
        let grams: Vec<u32> = (0..5000u32)
            .map(|i| i.wrapping_mul(2_654_435_761) ^ i)
            .collect();
        let check = |counts: &GramCounts| {
            for b in 0..BUCKETS {
                let bit = counts.occupied[b / 64] & (1 << (b % 64)) != 0;
                assert_eq!(bit, counts.counts[b] != 0, "bucket {b}");
            }
            for &g in &grams {
                assert_eq!(counts.may_have(g), counts.counts[bucket(g)] != 0);
            }
        };
        for (i, &g) in grams.iter().enumerate() {
            counts.add(g);
            if i % 3 == 0 {
                counts.add(g);
            }
        }
        check(&counts);
        for (i, &g) in grams.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
            counts.remove(g);
            if i % 3 == 0 {
                counts.remove(g);
            }
        }
        check(&counts);
        for (i, &g) in grams.iter().enumerate().filter(|(i, _)| i % 2 == 1) {
            counts.remove(g);
            if i % 3 == 0 {
                counts.remove(g);
            }
        }
        check(&counts);
        assert!(counts.occupied.iter().all(|&w| w == 0), "all removed");
    }
}
