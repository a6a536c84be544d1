//! Rule tokens interned to dense integer ids.
//!
//! Rules and posts meet on tokens. Interning every token a rule mentions lets the index key
//! its postings and the evaluator compare phrases by `u32` instead of by string, and lets a
//! post turn each of its tokens into an id with one hash lookup. Ids are reference counted
//! so that removing the last rule using a token frees its id and string (long-running
//! streams add and delete rules forever; the vocabulary must not only grow).
//!
//! Beside each id the table keeps the field kinds under which the index has a token
//! posting for it ([`Known::posted`]): a word that rules only mention beside their anchors
//! (a negated word, the other words of a phrase or of an `And`) has none, and a post's
//! lookup of it already tells the matcher not to probe the postings for it, a cache miss
//! at 100,000 rules.

use hashbrown::HashMap;

use crate::table::{Hashed, PrefetchMap};

/// The id of a post token no rule mentions; never equal to an interned id.
pub(crate) const UNKNOWN: u32 = u32::MAX;

/// The longest token kept inline in a [`short_key`].
const SHORT: usize = 15;

/// A token of at most [`SHORT`] bytes packed into an integer (bytes, then the length in the
/// top byte), so that looking it up compares integers instead of following a pointer to a
/// heap string: a post's tokens are looked up one by one and most are short. The top byte
/// is at most 15, so no token packs to `u128::MAX`, the table's vacant key.
///
/// The bytes are gathered with a few overlapping word loads rather than copied into a
/// zeroed buffer: the copy was a `memcpy` call per token, and reading the buffer back as
/// two words right after the copy's narrower stores stalled the load (about a sixth of
/// the time of loading a post's fields at 100,000 rules; docs/performance.md, "What a
/// post has, kept per post").
#[inline]
fn short_key(token: &str) -> Option<u128> {
    let b = token.as_bytes();
    let n = b.len();
    if n > SHORT {
        return None;
    }
    let word = |at: usize| u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"));
    let half = |at: usize| {
        u64::from(u32::from_le_bytes(
            b[at..at + 4].try_into().expect("4 bytes"),
        ))
    };
    let (lo, hi) = match n {
        // Bytes 8.. are the last n - 8 of the last eight, moved down (none when n is 8:
        // a shift by 64 is `None`).
        8.. => (
            word(0),
            word(n - 8).checked_shr(8 * (16 - n as u32)).unwrap_or(0),
        ),
        // The first four and the last four overlap on equal bytes.
        4..=7 => (half(0) | half(n - 4) << (8 * (n - 4)), 0),
        1..=3 => {
            let (first, mid, last) = (u64::from(b[0]), u64::from(b[n / 2]), u64::from(b[n - 1]));
            (first | mid << (8 * (n / 2)) | last << (8 * (n - 1)), 0)
        }
        0 => (0, 0),
    };
    Some(u128::from(lo) | u128::from(hi | (n as u64) << 56) << 64)
}

/// What the interner knows of a token a rule uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Known {
    /// The token's id.
    pub(crate) id: u32,
    /// The mask of the field kinds (by `FieldKind::bit`) under which the index has a
    /// token posting for it; kept by [`Interner::set_posted`].
    pub(crate) posted: u16,
}

/// A lookup begun by [`Interner::start`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum Lookup {
    /// A short token: its packed key and hash.
    Short(Hashed<u128>),
    /// A long token, looked up by its text.
    Long,
}

/// A reference-counted string → id table with id reuse.
#[derive(Debug, Clone, Default)]
pub(crate) struct Interner {
    /// Tokens of at most [`SHORT`] bytes, by [`short_key`].
    short: PrefetchMap<u128, Known>,
    /// Longer tokens.
    long: HashMap<Box<str>, Known>,
    /// Per id: the token (empty when the id is free) and how many rule references it has.
    entries: Vec<(Box<str>, u32)>,
    free: Vec<u32>,
}

impl Interner {
    /// The id of `token`, if a rule uses it.
    #[inline]
    pub(crate) fn get(&self, token: &str) -> Option<u32> {
        self.known(token).map(|known| known.id)
    }

    /// What is known of `token`, if a rule uses it.
    fn known(&self, token: &str) -> Option<Known> {
        match short_key(token) {
            Some(key) => self.short.get(key).copied(),
            None => self.long.get(token).copied(),
        }
    }

    /// Starts looking `token` up. A short token is hashed and the cache line of its home
    /// slot requested (its entry is there or a slot or two further, if anywhere); a long
    /// one is left for [`finish`](Self::finish). Calling this for each of a field's
    /// tokens before finishing any of them lets their cache misses overlap.
    #[inline]
    pub(crate) fn start(&self, token: &str) -> Lookup {
        match short_key(token) {
            Some(key) => {
                let hashed = self.short.hashed(key);
                self.short.prefetch(&hashed);
                Lookup::Short(hashed)
            }
            None => Lookup::Long,
        }
    }

    /// What is known of `token`, whose lookup `lookup` [`start`](Self::start)ed.
    #[inline]
    pub(crate) fn finish(&self, lookup: &Lookup, token: &str) -> Option<Known> {
        match lookup {
            Lookup::Short(hashed) => self.short.get_hashed(hashed).copied(),
            Lookup::Long => self.long.get(token).copied(),
        }
    }

    /// Records whether the index has a token posting for `id` under the field kind of
    /// `kind_bit`; `id` is interned.
    pub(crate) fn set_posted(&mut self, id: u32, kind_bit: u16, posted: bool) {
        let token = &self.entries[id as usize].0;
        let known = match short_key(token) {
            Some(key) => self.short.get_mut(key),
            None => self.long.get_mut(&**token),
        }
        .expect("a posted token is interned");
        if posted {
            known.posted |= kind_bit;
        } else {
            known.posted &= !kind_bit;
        }
    }

    /// The posted mask of `id` ([`Known::posted`]), or `None` when `id` is free.
    #[cfg(test)]
    pub(crate) fn posted(&self, id: u32) -> Option<u16> {
        let token = &self.entries.get(id as usize)?.0;
        self.known(token)
            .filter(|known| known.id == id)
            .map(|known| known.posted)
    }

    /// How many rule references `id` has (zero for a free id).
    pub(crate) fn refs(&self, id: u32) -> u32 {
        self.entries[id as usize].1
    }

    /// Takes one reference to `token`, interning it if new.
    pub(crate) fn acquire(&mut self, token: &str) -> u32 {
        if let Some(id) = self.get(token) {
            self.entries[id as usize].1 += 1;
            return id;
        }
        let boxed: Box<str> = token.into();
        let id = match self.free.pop() {
            Some(id) => {
                self.entries[id as usize] = (boxed.clone(), 1);
                id
            }
            None => {
                let id = u32::try_from(self.entries.len())
                    .ok()
                    .filter(|&id| id != UNKNOWN)
                    .expect("fewer than 2^32 - 1 distinct rule tokens");
                self.entries.push((boxed.clone(), 1));
                id
            }
        };
        let known = Known { id, posted: 0 };
        match short_key(token) {
            Some(key) => *self.short.get_or_default(key) = known,
            None => {
                self.long.insert(boxed, known);
            }
        }
        id
    }

    /// Drops one reference to `id`, freeing it when it was the last.
    pub(crate) fn release(&mut self, id: u32) {
        let entry = &mut self.entries[id as usize];
        entry.1 -= 1;
        if entry.1 == 0 {
            let token = std::mem::take(&mut entry.0);
            match short_key(&token) {
                Some(key) => {
                    self.short.remove(key);
                }
                None => {
                    self.long.remove(&*token);
                }
            }
            self.free.push(id);
        }
    }

    /// The ids in use.
    #[cfg(test)]
    pub(crate) fn live_ids(&self) -> Vec<u32> {
        (0..self.entries.len() as u32)
            .filter(|&id| self.refs(id) > 0)
            .collect()
    }

    /// Number of distinct live tokens.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.short.len() + self.long.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key as it was first written: the bytes copied into a zeroed buffer, the length
    /// in the last byte.
    fn short_key_by_copy(token: &str) -> Option<u128> {
        let bytes = token.as_bytes();
        if bytes.len() > SHORT {
            return None;
        }
        let mut buf = [0u8; 16];
        buf[..bytes.len()].copy_from_slice(bytes);
        buf[SHORT] = bytes.len() as u8;
        Some(u128::from_le_bytes(buf))
    }

    #[test]
    fn short_keys_hold_every_byte_of_every_length_in_place() {
        // Distinct bytes at every position, so a byte dropped, doubled or misplaced by
        // the overlapping loads changes the key; every length up to one past the limit.
        let text = "abcdefghijklmnopq";
        for start in 0..=1 {
            for end in start..=text.len() {
                let token = &text[start..end];
                assert_eq!(short_key(token), short_key_by_copy(token), "{token:?}");
            }
        }
        for token in [
            "",
            "\0",
            "a\0",
            "\0\0\0\0\0\0\0\0",
            "été",
            "日本語",
            "🦀🦀🦀",
        ] {
            assert_eq!(short_key(token), short_key_by_copy(token), "{token:?}");
        }
    }

    #[test]
    fn ids_are_shared_counted_and_reused() {
        let mut i = Interner::default();
        let a = i.acquire("apple");
        assert_eq!(i.acquire("apple"), a);
        let b = i.acquire("pear");
        assert_ne!(a, b);
        i.release(a);
        assert_eq!(i.get("apple"), Some(a), "one reference remains");
        i.release(a);
        assert_eq!(i.get("apple"), None);
        assert_eq!(i.len(), 1);
        let c = i.acquire("plum");
        assert_eq!(c, a, "freed ids are reused");
        assert_eq!(i.entries.len(), 2, "no id beyond the two handed out");
        // Short and long tokens, around the inline limit, with and without padding bytes.
        let words = [
            "",
            "a",
            "a\0",
            "fifteen_bytes__",
            "sixteen_bytes___",
            "a much longer token",
        ];
        let ids: Vec<u32> = words.iter().map(|w| i.acquire(w)).collect();
        for (w, id) in words.iter().zip(&ids) {
            assert_eq!(i.get(w), Some(*id), "{w:?}");
        }
        assert_eq!(i.get("fifteen_bytes_"), None);
        assert_eq!(i.get("sixteen_bytes__"), None);
        for id in ids {
            i.release(id);
        }
        assert_eq!(i.len(), 2);
        assert_eq!(i.get("a much longer token"), None);
    }

    #[test]
    fn posted_kinds_are_kept_per_token_through_growth_and_release() {
        let mut i = Interner::default();
        let words: Vec<String> = (0..200)
            .map(|n| format!("w{n}"))
            .chain((0..200).map(|n| format!("a token longer than fifteen bytes {n}")))
            .collect();
        let ids: Vec<u32> = words.iter().map(|w| i.acquire(w)).collect();
        for (n, &id) in ids.iter().enumerate() {
            assert_eq!(i.posted(id), Some(0), "nothing posted yet");
            if n % 3 != 0 {
                i.set_posted(id, 1 << (n % 9), true);
                i.set_posted(id, 1 << 10, true);
            }
        }
        // Growing the table and freeing other ids moves entries; their masks go with them.
        let more: Vec<u32> = (0..2000).map(|n| i.acquire(&format!("m{n}"))).collect();
        for id in more {
            i.release(id);
        }
        for (n, (w, &id)) in words.iter().zip(&ids).enumerate() {
            let want = if n % 3 == 0 {
                0
            } else {
                1 << (n % 9) | 1 << 10
            };
            let known = i.finish(&i.start(w), w).expect("interned");
            assert_eq!(known, Known { id, posted: want }, "{w:?}");
            i.set_posted(id, 1 << 10, false);
            assert_eq!(i.posted(id), Some(want & !(1 << 10)), "{w:?}");
            assert_eq!(i.get(w), Some(id), "the token is still interned");
        }
        // A freed id loses its mask; taken again, it starts with none.
        i.release(ids[1]);
        assert_eq!(i.posted(ids[1]), None);
        assert_eq!(i.acquire("w1"), ids[1]);
        assert_eq!(i.posted(ids[1]), Some(0));
    }

    #[test]
    fn started_lookups_agree_with_get_through_growth_and_release() {
        let mut i = Interner::default();
        let words: Vec<String> = (0..3000).map(|n| format!("w{n}")).collect();
        let check = |i: &Interner| {
            for w in words
                .iter()
                .map(String::as_str)
                .chain(["absent", "w-1", ""])
            {
                assert_eq!(i.finish(&i.start(w), w).map(|k| k.id), i.get(w), "{w:?}");
            }
        };
        for w in &words {
            i.acquire(w);
        }
        check(&i);
        for w in words.iter().step_by(2) {
            let id = i.get(w).expect("interned");
            i.release(id);
        }
        check(&i);
        assert_eq!(i.finish(&i.start("w0"), "w0"), None);
        assert!(i.finish(&i.start("w1"), "w1").is_some());
        for w in words.iter().step_by(3) {
            i.acquire(w);
        }
        check(&i);
    }

    #[test]
    fn a_lookup_started_ahead_finds_what_get_finds() {
        let mut i = Interner::default();
        let words = [
            "",
            "cat",
            "fifteen_bytes__",
            "sixteen_bytes___",
            "a much longer token",
        ];
        for w in words {
            i.acquire(w);
        }
        let probes =
            words
                .iter()
                .copied()
                .chain(["dog", "fifteen_bytes_x", "another long absent token"]);
        let started: Vec<(Lookup, &str)> = probes.map(|w| (i.start(w), w)).collect();
        for (lookup, w) in &started {
            assert_eq!(i.finish(lookup, w).map(|k| k.id), i.get(w), "{w:?}");
        }
        assert_eq!(
            started
                .iter()
                .filter(|(l, w)| i.finish(l, w).is_some())
                .count(),
            5
        );
    }
}
