//! Rule tokens interned to dense integer ids.
//!
//! Rules and posts meet on tokens. Interning every token a rule mentions lets the index key
//! its postings and the evaluator compare phrases by `u32` instead of by string, and lets a
//! post turn each of its tokens into an id with one hash lookup. Ids are reference counted
//! so that removing the last rule using a token frees its id and string (long-running
//! streams add and delete rules forever; the vocabulary must not only grow).

use hashbrown::HashMap;

/// The id of a post token no rule mentions; never equal to an interned id.
pub(crate) const UNKNOWN: u32 = u32::MAX;

/// A reference-counted string → id table with id reuse.
#[derive(Debug, Clone, Default)]
pub(crate) struct Interner {
    ids: HashMap<Box<str>, u32>,
    /// Per id: the token (empty when the id is free) and how many rule references it has.
    entries: Vec<(Box<str>, u32)>,
    free: Vec<u32>,
}

impl Interner {
    /// The id of `token`, if a rule uses it.
    #[inline]
    pub(crate) fn get(&self, token: &str) -> Option<u32> {
        self.ids.get(token).copied()
    }

    /// One past the largest id ever handed out: the size of per-id tables.
    pub(crate) fn capacity(&self) -> usize {
        self.entries.len()
    }

    /// Takes one reference to `token`, interning it if new.
    pub(crate) fn acquire(&mut self, token: &str) -> u32 {
        if let Some(&id) = self.ids.get(token) {
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
        self.ids.insert(boxed, id);
        id
    }

    /// Drops one reference to `id`, freeing it when it was the last.
    pub(crate) fn release(&mut self, id: u32) {
        let entry = &mut self.entries[id as usize];
        entry.1 -= 1;
        if entry.1 == 0 {
            let token = std::mem::take(&mut entry.0);
            self.ids.remove(&*token);
            self.free.push(id);
        }
    }

    /// Number of distinct live tokens.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(i.capacity(), 2);
    }
}
