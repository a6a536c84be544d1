//! A matcher shared between one rule writer and many matching readers.
//!
//! Built on [`left_right`]: two copies of the [`Matcher`] exist; readers match against one
//! while the writer applies a batch of inserts and removes to the other, then
//! [`MatcherWriter::publish`] swaps them and replays the batch on the old copy. Readers never
//! take a lock and never wait for the writer (entering a read is two atomic operations); the
//! writer waits only for readers still inside a read of the copy it is about to change, i.e.
//! at most one post's matching time. A read that began before a publish may finish on the
//! old rules after the publish has returned; a read that begins after it sees the new ones.
//! The costs: memory for two copies, and every change is applied twice. That suits sluice,
//! where posts are matched continuously and rules change rarely, in batches.

use left_right::{Absorb, ReadHandle, WriteHandle};
use sluice_model::PostView;
use sluice_rules::Rule;

use crate::matcher::{Matcher, RuleKey, Scratch};

/// A change to the rule set, logged by the writer and applied to both copies.
enum Op<K> {
    Insert(K, Box<Rule>),
    Remove(K),
}

/// The copied state; a private wrapper so the operation log stays private.
#[derive(Clone)]
struct Inner<K>(Matcher<K>);

impl<K: RuleKey> Absorb<Op<K>> for Inner<K> {
    fn absorb_first(&mut self, op: &mut Op<K>, _: &Self) {
        match op {
            Op::Insert(id, rule) => self.0.insert(*id, rule),
            Op::Remove(id) => {
                self.0.remove(*id);
            }
        }
    }

    fn sync_with(&mut self, first: &Self) {
        self.0.clone_from(&first.0);
    }
}

/// Constructor of a writer/reader pair over a rule set (one stream's rules, or a whole
/// node's keyed by stream).
pub struct SharedMatcher;

impl SharedMatcher {
    /// A new, empty rule set keyed by `u64` rule ids: the single writer and a first reader
    /// (clone it for more).
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> (MatcherWriter, MatcherReader) {
        Self::with_keys()
    }

    /// A new, empty rule set keyed by `K` (e.g. a (stream, rule id) pair for the rules of
    /// many streams in one index).
    pub fn with_keys<K: RuleKey + Send + Sync>() -> (MatcherWriter<K>, MatcherReader<K>) {
        let (write, read) =
            left_right::new_from_empty::<Inner<K>, Op<K>>(Inner(Matcher::default()));
        (
            MatcherWriter {
                write,
                pending: false,
            },
            MatcherReader { read },
        )
    }
}

/// The one writer of a shared rule set. Changes become visible to readers at
/// [`MatcherWriter::publish`], all at once.
pub struct MatcherWriter<K: RuleKey = u64> {
    write: WriteHandle<Inner<K>, Op<K>>,
    /// Changes queued since the last publish (left-right applies changes made before the
    /// first publish directly, so its own log does not say).
    pending: bool,
}

impl<K: RuleKey> MatcherWriter<K> {
    /// Queues adding `rule` under `id` (replacing any rule with that id).
    pub fn insert(&mut self, id: K, rule: &Rule) -> &mut Self {
        self.write.append(Op::Insert(id, Box::new(rule.clone())));
        self.pending = true;
        self
    }

    /// Queues removing the rule with `id`, if any.
    pub fn remove(&mut self, id: K) -> &mut Self {
        self.write.append(Op::Remove(id));
        self.pending = true;
        self
    }

    /// Makes every queued change visible to readers. Waits only for reads in progress on
    /// the previous copy to finish.
    pub fn publish(&mut self) {
        self.write.publish();
        self.pending = false;
    }

    /// Whether there are queued changes not yet published.
    pub fn has_pending(&self) -> bool {
        self.pending
    }
}

/// A reader of a shared rule set: matches posts against the last published rules. Clone it
/// per thread (it is `Send`, not `Sync`).
pub struct MatcherReader<K = u64> {
    read: ReadHandle<Inner<K>>,
}

impl<K> Clone for MatcherReader<K> {
    fn clone(&self) -> Self {
        Self {
            read: self.read.clone(),
        }
    }
}

impl<K: RuleKey> MatcherReader<K> {
    /// Runs `f` on the last published matcher; `None` once the writer has been dropped.
    pub fn with<R>(&self, f: impl FnOnce(&Matcher<K>) -> R) -> Option<R> {
        self.read.enter().map(|guard| f(&guard.0))
    }

    /// [`Matcher::match_post_with`] on the last published rules. With the writer dropped
    /// there are no rules, and `out` is left empty.
    pub fn match_post_with(&self, post: &PostView<'_>, scratch: &mut Scratch, out: &mut Vec<K>) {
        self.match_post_where(post, scratch, out, |_| true);
    }

    /// [`Matcher::match_post_where`] on the last published rules.
    pub fn match_post_where(
        &self,
        post: &PostView<'_>,
        scratch: &mut Scratch,
        out: &mut Vec<K>,
        wanted: impl FnMut(&K) -> bool,
    ) {
        out.clear();
        self.with(|m| m.match_post_where(post, scratch, out, wanted));
    }

    /// [`Matcher::match_post`] on the last published rules.
    pub fn match_post(&self, post: &PostView<'_>, out: &mut Vec<K>) {
        self.match_post_with(post, &mut Scratch::default(), out);
    }

    /// Number of published rules (0 once the writer has been dropped).
    pub fn len(&self) -> usize {
        self.with(Matcher::len).unwrap_or(0)
    }

    /// True when no rules are published.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_model::parse_post;
    use sluice_rules::{Clause, Expr};

    fn kw(s: &str) -> Rule {
        Rule {
            expr: Expr::Clause(Clause::Keyword(s.into())),
        }
    }

    #[test]
    fn readers_see_changes_only_after_publish() {
        let (mut writer, reader) = SharedMatcher::new();
        let post = parse_post(br#"{"id":1,"text":"cats and dogs"}"#).expect("valid post");
        let mut out = Vec::new();

        writer.insert(1, &kw("cats")).insert(2, &kw("dogs"));
        assert!(writer.has_pending());
        reader.match_post(&post, &mut out);
        assert!(out.is_empty(), "not yet published");

        writer.publish();
        reader.match_post(&post, &mut out);
        assert_eq!(out, [1, 2]);

        let other = reader.clone();
        let handle = std::thread::spawn(move || {
            let post = parse_post(br#"{"id":2,"text":"dogs"}"#).expect("valid post");
            let mut out = Vec::new();
            other.match_post(&post, &mut out);
            out
        });
        assert_eq!(handle.join().expect("reader thread"), [2]);

        writer.remove(1);
        reader.match_post(&post, &mut out);
        assert_eq!(out, [1, 2], "removal not yet published");
        writer.publish();
        reader.match_post(&post, &mut out);
        assert_eq!(out, [2]);
        assert_eq!(reader.len(), 1);

        // Both copies stay in step across several publishes.
        writer.insert(3, &kw("and")).publish();
        writer.remove(2).publish();
        reader.match_post(&post, &mut out);
        assert_eq!(out, [3]);

        drop(writer);
        reader.match_post(&post, &mut out);
        assert!(out.is_empty());
        assert!(reader.is_empty());
    }
}
