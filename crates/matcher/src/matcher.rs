//! The indexed matcher: rules compiled to plans, anchored in the [`Index`].

use hashbrown::HashMap;
use sluice_model::PostView;
use sluice_rules::Rule;

use crate::compile::{FIELD_KINDS, FieldKind, SubstrSource, compile};
use crate::epoch_map::EpochMap;
use crate::eval::eval;
use crate::features::Features;
use crate::gate::{Gate, Hint};
use crate::index::{Index, Key, Slot, anchors, quadgram, token_key, trigram};
use crate::intern::Interner;
use crate::prefetch;
use crate::program::Program;
use crate::table::Hashed;

/// What a caller identifies its rules by: a rule id for one stream's rules, or a (stream,
/// rule id) pair for an index that holds the rules of many streams. Matches are reported in
/// ascending key order, so a pair key groups them by its first element.
pub trait RuleKey: Copy + Eq + Ord + std::hash::Hash + std::fmt::Debug {}

impl<K: Copy + Eq + Ord + std::hash::Hash + std::fmt::Debug> RuleKey for K {}

/// One inserted rule.
#[derive(Debug, Clone)]
struct Entry {
    program: Program,
    /// The keys the rule is indexed under; `None` for an always-candidate rule.
    anchors: Option<Box<[Key]>>,
}

/// The compiled, incrementally updatable index of a set of rules, each under a key `K`
/// (by default a `u64` rule id).
///
/// Insert and remove take time independent of the number of rules (hash updates and at most
/// a scan of one posting list); matching a post costs in proportion to the post's size and to
/// the number of rules anchored on what it contains, not to the number of rules. See the
/// crate documentation for the design.
#[derive(Debug, Clone)]
pub struct Matcher<K = u64> {
    /// Slot → rule; `None` for a free slot.
    entries: Vec<Option<Entry>>,
    /// Slot → the rule's [`Gate`], dense (a cache line each) so that rejecting a candidate
    /// costs one read.
    gates: Vec<Gate>,
    /// Slot → the rule's key, dense so that reporting an exact rule does not read its
    /// heap-allocated entry. A free slot keeps its last key; no index list refers to it.
    ids: Vec<K>,
    /// Free slots, reused before the table grows.
    free: Vec<Slot>,
    /// Per [`FieldKind`]: how many rules read fields of that kind (others are not
    /// tokenized).
    field_uses: [u32; FIELD_KINDS],
    /// Rule key → slot.
    slots: HashMap<K, Slot>,
    interner: Interner,
    index: Index,
}

impl<K> Default for Matcher<K> {
    fn default() -> Self {
        Self {
            entries: Vec::new(),
            gates: Vec::new(),
            ids: Vec::new(),
            free: Vec::new(),
            field_uses: [0; FIELD_KINDS],
            slots: HashMap::new(),
            interner: Interner::default(),
            index: Index::default(),
        }
    }
}

/// Per-caller buffers for [`Matcher::match_post_with`], so that matching a stream of posts
/// allocates nothing once the buffers have grown to fit.
///
/// A `Scratch` is not tied to one matcher: it may be used with any matcher, one post at a
/// time.
#[derive(Debug, Default, Clone)]
pub struct Scratch {
    features: Features,
    /// The post's distinct candidates so far.
    marks: EpochMap<()>,
    /// The post's candidates whose gates are to be read.
    candidates: Vec<Slot>,
    /// The post's candidates sure to match: found under a token posting whose hint says
    /// so ([`Hint::is_sure`]); their gates are not read.
    sure: Vec<Slot>,
    /// Per [`SubstrSource`]: the post's quadgrams that may have postings, hashed for that
    /// source's posting table, their lookups started in the window pass.
    gram_hits: [Vec<Hashed<u32>>; 2],
    /// The rules found under the post's tokens whose hints pass, then those under one
    /// source's quadgram hits whose gram pairs the post may have: what a probe lets
    /// through, before marking.
    let_through: Vec<Slot>,
    /// The sure rules under one token the post has, before marking.
    sure_through: Vec<Slot>,
    /// The post's token keys, hashed, their lookups started together.
    token_lookups: Vec<Hashed<u64>>,
}

impl Matcher<u64> {
    /// An empty matcher keyed by `u64` rule ids.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<K: RuleKey> Matcher<K> {
    /// An empty matcher keyed by `K`.
    pub fn with_keys() -> Self {
        Self::default()
    }

    /// Adds `rule` under `id`, replacing any rule already inserted with that id.
    pub fn insert(&mut self, id: K, rule: &Rule) {
        self.remove(id);
        let plan = compile(&rule.expr, &mut self.interner);
        let anchors = anchors(&plan, &self.index, &self.interner).map(Vec::into_boxed_slice);
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                let slot = Slot::try_from(self.entries.len()).expect("fewer than 2^32 rules");
                self.entries.push(None);
                slot
            }
        };
        let anchored: Vec<u32> = anchors
            .iter()
            .flat_map(|keys| keys.iter())
            .filter_map(|key| match key {
                Key::Token(_, id) => Some(*id),
                _ => None,
            })
            .collect();
        let gate = Gate::of(&plan, &anchored);
        let program = Program::new(plan);
        self.count_fields(program.fields_read(), true);
        self.index.add(
            anchors.as_deref(),
            slot,
            Hint::of(&gate),
            &mut self.interner,
        );
        match self.gates.get_mut(slot as usize) {
            Some(g) => {
                *g = gate;
                self.ids[slot as usize] = id;
            }
            None => {
                self.gates.push(gate);
                self.ids.push(id);
            }
        }
        self.entries[slot as usize] = Some(Entry { program, anchors });
        self.slots.insert(id, slot);
    }

    /// Removes the rule with `id`; returns whether there was one.
    pub fn remove(&mut self, id: K) -> bool {
        let Some(slot) = self.slots.remove(&id) else {
            return false;
        };
        let entry = self.entries[slot as usize]
            .take()
            .expect("a mapped slot holds its rule");
        let hint = Hint::of(&self.gates[slot as usize]);
        self.index
            .remove(entry.anchors.as_deref(), slot, hint, &mut self.interner);
        entry.program.release(&mut self.interner);
        self.count_fields(entry.program.fields_read(), false);
        self.free.push(slot);
        true
    }

    /// Counts (`add`) or uncounts the field kinds in `mask`, those a rule reads.
    fn count_fields(&mut self, mask: u16, add: bool) {
        for kind in FieldKind::ALL {
            if mask & kind.bit() != 0 {
                let uses = &mut self.field_uses[kind as usize];
                *uses = if add { *uses + 1 } else { *uses - 1 };
            }
        }
    }

    /// The mask of field kinds some rule reads.
    fn wanted_fields(&self) -> u16 {
        FieldKind::ALL
            .iter()
            .filter(|k| self.field_uses[**k as usize] != 0)
            .fold(0, |mask, k| mask | k.bit())
    }

    /// The program of the rule in `slot`, which holds one.
    fn program(&self, slot: Slot) -> &Program {
        &self.entries[slot as usize]
            .as_ref()
            .expect("indexed slots hold rules")
            .program
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// True when there are no rules.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Whether a rule with `id` is present.
    pub fn contains(&self, id: K) -> bool {
        self.slots.contains_key(&id)
    }

    /// Clears `out`, then pushes the key of every matching rule, ascending.
    ///
    /// Allocates fresh buffers per call; a stream should use [`Matcher::match_post_with`].
    pub fn match_post(&self, post: &PostView<'_>, out: &mut Vec<K>) {
        self.match_post_with(post, &mut Scratch::default(), out);
    }

    /// Same as [`Matcher::match_post`], reusing caller-owned buffers so steady-state
    /// matching does not allocate.
    pub fn match_post_with(&self, post: &PostView<'_>, scratch: &mut Scratch, out: &mut Vec<K>) {
        self.match_post_where(post, scratch, out, |_| true);
    }

    /// [`Matcher::match_post_with`] for the rules whose key `wanted` accepts: the others are
    /// not evaluated (e.g. the rules of streams nobody is connected to).
    pub fn match_post_where(
        &self,
        post: &PostView<'_>,
        scratch: &mut Scratch,
        out: &mut Vec<K>,
        mut wanted: impl FnMut(&K) -> bool,
    ) {
        out.clear();
        if self.slots.is_empty() {
            return;
        }
        self.collect_candidates(post, scratch);
        let Scratch {
            features,
            candidates,
            sure,
            ..
        } = scratch;
        out.extend(
            sure.iter()
                .map(|&slot| self.ids[slot as usize])
                .filter(&mut wanted),
        );
        // Rules `wanted` refuses (of streams nobody is connected to) are dropped before
        // their programs are requested.
        candidates.retain(|&slot| wanted(&self.ids[slot as usize]));
        let gates = &self.gates[..];
        // Every program to evaluate is requested before the first is read: their entries
        // were requested as their gates passed, and now their nodes' misses overlap too.
        for &slot in candidates.iter() {
            if !gates[slot as usize].exact {
                self.program(slot).prefetch();
            }
        }
        out.extend(
            candidates
                .iter()
                .filter(|&&slot| gates[slot as usize].exact || eval(self.program(slot), features))
                .map(|&slot| self.ids[slot as usize]),
        );
        out.sort_unstable();
    }

    /// Diagnostics for the benchmark: the number of candidate rules for `post` that pass
    /// their gates or are sure to match without one (each is then evaluated, or reported
    /// directly when its anchors imply a match). Not part of the stable API.
    #[doc(hidden)]
    pub fn candidate_count(&self, post: &PostView<'_>, scratch: &mut Scratch) -> usize {
        if self.slots.is_empty() {
            return 0;
        }
        self.collect_candidates(post, scratch);
        scratch.candidates.len() + scratch.sure.len()
    }

    /// Loads the post's features into `scratch` and fills `scratch.candidates`, once each,
    /// with the rules anchored on something the post has (a quadgram's rules only when the
    /// post may also hold their pattern's [`GramPair`](crate::grams::GramPair)) whose gates
    /// pass ([`Matcher::keep_passing`]), and `scratch.sure` with those a token posting
    /// says match without a gate ([`Hint::is_sure`]).
    ///
    /// Long on purpose: the hot loop of matching. The probes of every anchor kind share the
    /// destructured scratch and its marks; helpers would have to re-borrow them per probe.
    fn collect_candidates(&self, post: &PostView<'_>, scratch: &mut Scratch) {
        let Scratch {
            features,
            marks,
            candidates,
            sure,
            gram_hits,
            let_through,
            sure_through,
            token_lookups,
        } = scratch;
        features.load(post, &self.interner, self.wanted_fields());
        marks.start(features.epoch);
        candidates.clear();
        sure.clear();
        // Quadgrams first: they fill the post's gram sets, which evaluation reads.
        for src in [SubstrSource::Text, SubstrSource::Url] {
            let hits = &mut gram_hits[src as usize];
            hits.clear();
            let sub = &self.index.substrings[src as usize];
            if sub.quadgrams.is_empty() {
                continue;
            }
            let kind = src.field_kind();
            let (fields, grams) = features.fields_and_grams(src);
            grams.start();
            for field in fields.iter().filter(|f| f.kind == kind) {
                for w in field.text.folded().as_bytes().windows(4) {
                    let gram = quadgram(w);
                    grams.insert(gram);
                    if sub.quadgram_counts.may_have(gram) {
                        // Requested now, read after the token probes (see `table`).
                        let key = sub.quadgrams.hashed(gram);
                        sub.quadgrams.prefetch(&key);
                        hits.push(key);
                    }
                }
            }
        }
        let feats = &*features;
        // Probing only collects the distinct slots and asks for each one's gate; the gates
        // are read afterwards (see `keep_passing`), so that their misses overlap the rest
        // of the probing instead of each stalling it.
        let gates = &self.gates[..];
        // Rules sure to match are marked too, so that another of their anchors does not
        // make them candidates again, but their gates are neither requested nor read.
        let mut mark_all = |list: &[Slot], sure_to_match: bool| {
            for &slot in list {
                if !marks.insert(slot) {
                    continue;
                }
                if sure_to_match {
                    sure.push(slot);
                } else {
                    prefetch(&gates[slot as usize]);
                    candidates.push(slot);
                }
            }
        };

        mark_all(&self.index.always, false);
        // All the token lookups are started before any is finished, so that their cache
        // misses overlap (see `table`).
        token_lookups.clear();
        token_lookups.extend(features.token_keys.iter().map(|&(kind, id)| {
            let key = self.index.tokens.hashed(token_key(kind, id));
            self.index.tokens.prefetch(&key);
            key
        }));
        // A rule whose hint fails cannot match: it is dropped before its mark and gate
        // are touched (and marked if another of its anchors brings it). Each list's rules
        // are marked as the list is read, so that their gates are requested early.
        for key in token_lookups.iter() {
            if let Some(list) = self.index.tokens.get_hashed(key) {
                let_through.clear();
                sure_through.clear();
                for &(slot, hint) in list {
                    if hint.is_sure() {
                        sure_through.push(slot);
                    } else if hint.passes(feats) {
                        let_through.push(slot);
                    }
                }
                mark_all(let_through, false);
                mark_all(sure_through, true);
            }
        }
        for (kind, value) in features.strs() {
            if let Some(list) = self.index.strs[kind as usize].get(value) {
                mark_all(list, false);
            }
        }
        for key in &features.nums {
            if let Some(list) = self.index.nums.get(key) {
                mark_all(list, false);
            }
        }
        for key in &features.cells {
            if let Some(list) = self.index.cells.get(key) {
                mark_all(list, false);
            }
        }
        let mut flags = features.flags;
        while flags != 0 {
            let flag = flags.trailing_zeros() as usize;
            flags &= flags - 1;
            mark_all(&self.index.flags[flag], false);
        }
        for src in [SubstrSource::Text, SubstrSource::Url] {
            let sub = &self.index.substrings[src as usize];
            if sub.trigrams.is_empty() && sub.quadgrams.is_empty() && sub.byte_lists == 0 {
                continue;
            }
            let kind = src.field_kind();
            // A rule under a gram the post has is a candidate only if the post may also
            // have two more grams of its pattern; for real text most are dropped here,
            // before their marks and gates are touched.
            let set = &feats.grams[src as usize];
            let_through.clear();
            for key in &gram_hits[src as usize] {
                if let Some(list) = sub.quadgrams.get_hashed(key) {
                    let_through.extend(
                        list.iter()
                            .filter(|&&(_, pair)| set.may_have_pair(pair))
                            .map(|&(slot, _)| slot),
                    );
                }
            }
            mark_all(let_through, false);
            for field in feats.fields().iter().filter(|f| f.kind == kind) {
                let bytes = field.text.folded().as_bytes();
                if !sub.trigrams.is_empty() {
                    for w in bytes.windows(3) {
                        if let Some(list) = sub.trigrams.get(&trigram(w)) {
                            mark_all(list, false);
                        }
                    }
                }
                if sub.byte_lists != 0 {
                    let mut seen = [0u64; 4];
                    for &b in bytes {
                        let (word, bit) = (usize::from(b >> 6), 1u64 << (b & 63));
                        if seen[word] & bit == 0 {
                            seen[word] |= bit;
                            mark_all(&sub.bytes[usize::from(b)], false);
                        }
                    }
                }
            }
        }
        self.keep_passing(candidates, feats);
    }

    /// Keeps the candidates whose gates pass `feats`, in the order they were found.
    ///
    /// At 100k+ rules the gate array is far larger than the second-level cache and nearly
    /// every candidate's gate is a miss: each gate was requested when its rule became a
    /// candidate, and the entry of each rule that passes and needs evaluating (its gate is
    /// not exact) is requested here for the evaluation loop. The candidates are not sorted
    /// first: sorting a post's 40 to 80 of them cost more than the locality it bought
    /// (docs/performance.md, "Where the candidates' time goes").
    fn keep_passing(&self, candidates: &mut Vec<Slot>, feats: &Features) {
        let gates = &self.gates[..];
        let mut kept = 0;
        for i in 0..candidates.len() {
            let slot = candidates[i];
            let gate = &gates[slot as usize];
            if gate.passes(feats) {
                if !gate.exact {
                    prefetch(&self.entries[slot as usize]);
                }
                candidates[kept] = slot;
                kept += 1;
            }
        }
        candidates.truncate(kept);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_model::parse_post;
    use sluice_rules::{Clause, Expr};

    fn rule(expr: Expr) -> Rule {
        Rule { expr }
    }

    fn kw(s: &str) -> Expr {
        Expr::Clause(Clause::Keyword(s.into()))
    }

    fn matches(m: &Matcher, json: &str) -> Vec<u64> {
        let post = parse_post(json.as_bytes()).expect("valid post");
        let mut out = Vec::new();
        m.match_post(&post, &mut out);
        out
    }

    #[test]
    fn insert_replace_remove_and_reinsert() {
        let mut m = Matcher::new();
        assert!(m.is_empty());
        m.insert(5, &rule(kw("apple")));
        m.insert(2, &rule(kw("apple")));
        let post = r#"{"id":1,"text":"I like Apple pie"}"#;
        assert_eq!(matches(&m, post), [2, 5]);
        m.insert(5, &rule(kw("pear")));
        assert_eq!(m.len(), 2);
        assert_eq!(matches(&m, post), [2]);
        assert!(m.remove(2));
        assert!(!m.remove(2));
        assert_eq!(matches(&m, post), Vec::<u64>::new());
        m.insert(2, &rule(kw("pie")));
        assert_eq!(matches(&m, post), [2]);
    }

    #[test]
    fn removing_every_rule_gives_back_its_words_and_field_kinds() {
        let rules = [
            "apple",
            "\"apple pie\" -\"red pear\"",
            "\"one two three four\"",
            "(a OR b OR c) word -other",
            "\"near far\"~3 bio:chef",
            "place:\"new york\" url:shop",
            "x -(y OR (z w))",
        ];
        let mut m = Matcher::new();
        for (id, rule) in (0..).zip(rules) {
            m.insert(id, &sluice_rules::parse(rule).expect("valid rule"));
        }
        assert!(m.interner.len() > 0);
        assert_ne!(m.wanted_fields(), 0);
        for id in 0..rules.len() as u64 {
            assert!(m.remove(id));
        }
        assert_eq!(m.interner.len(), 0, "every token id taken is released once");
        assert_eq!(m.field_uses, [0; FIELD_KINDS]);
        assert!(m.index.tokens.is_empty());
    }

    /// Every interned token's posted mask against the token postings the index holds.
    fn assert_posted_masks_follow_the_postings(m: &Matcher) {
        let live = m.interner.live_ids();
        assert_eq!(live.len(), m.interner.len());
        for id in live {
            let posted = m.interner.posted(id).expect("a live id");
            let want = FieldKind::ALL
                .iter()
                .filter(|&&kind| m.index.tokens.get(token_key(kind, id)).is_some())
                .fold(0, |mask, kind| mask | kind.bit());
            assert_eq!(posted, want, "token id {id}");
        }
    }

    #[test]
    fn the_interner_notes_the_field_kinds_each_token_is_posted_under() {
        let rules = [
            "apple -pear",
            "\"apple pie\" bio:chef",
            "bio:apple url:pear",
            "(plum OR pear) -bio:plum",
            "place:\"new york\" apple",
            "\"near far\"~3",
        ];
        let mut m = Matcher::new();
        for round in 0..3 {
            for (id, rule) in (0..).zip(rules) {
                m.insert(id, &sluice_rules::parse(rule).expect("valid rule"));
                assert_posted_masks_follow_the_postings(&m);
            }
            // Take out every other rule, then the rest in the next round.
            for id in (round % 2..rules.len() as u64).step_by(2) {
                assert!(m.remove(id));
                assert_posted_masks_follow_the_postings(&m);
            }
        }
        for id in 0..rules.len() as u64 {
            m.remove(id);
        }
        assert_eq!(m.interner.len(), 0);
    }

    #[test]
    fn a_word_no_rule_is_anchored_on_is_not_probed_but_still_read() {
        let mut m = Matcher::new();
        m.insert(1, &sluice_rules::parse("apple -pear").expect("valid rule"));
        let post = r#"{"id":1,"text":"pear apple pear"}"#;
        assert_eq!(matches(&m, post), Vec::<u64>::new(), "pear is still seen");
        assert_eq!(matches(&m, r#"{"id":2,"text":"apple"}"#), [1]);
        let view = parse_post(post.as_bytes()).expect("valid post");
        let mut scratch = Scratch::default();
        m.collect_candidates(&view, &mut scratch);
        let apple = m.interner.get("apple").expect("interned");
        assert!(m.interner.get("pear").is_some());
        assert_eq!(scratch.features.token_keys, [(FieldKind::Text, apple)]);
    }

    #[test]
    fn a_rule_sure_to_match_is_reported_once_whichever_anchor_finds_it_and_only_if_wanted() {
        let mut m = Matcher::new();
        let either = sluice_rules::parse("apple OR #ai").expect("valid rule");
        m.insert(1, &either);
        m.insert(2, &rule(kw("apple")));
        let post = r##"{"id":1,"text":"apple #ai","entities":{"hashtags":[{"text":"ai"}]}}"##;
        assert_eq!(matches(&m, post), [1, 2]);
        let hashtag_only = r##"{"id":2,"text":"#ai","entities":{"hashtags":[{"text":"ai"}]}}"##;
        assert_eq!(matches(&m, hashtag_only), [1]);
        let view = parse_post(post.as_bytes()).expect("valid post");
        let mut out = Vec::new();
        m.match_post_where(&view, &mut Scratch::default(), &mut out, |&id| id != 2);
        assert_eq!(out, [1]);
    }

    #[test]
    fn rules_under_one_token_with_different_hints_match_and_leave_as_they_came() {
        let lang = |l: &str| Expr::Clause(Clause::Lang(l.into()));
        let mut m = Matcher::new();
        m.insert(1, &rule(Expr::And(vec![kw("apple"), lang("en")])));
        m.insert(2, &rule(Expr::And(vec![kw("apple"), lang("fr")])));
        m.insert(3, &rule(Expr::And(vec![kw("apple"), kw("pie")])));
        m.insert(4, &rule(kw("apple")));
        let post = r#"{"id":1,"text":"apple pie","lang":"en"}"#;
        assert_eq!(matches(&m, post), [1, 3, 4]);
        let post = r#"{"id":2,"text":"apple tart","lang":"fr"}"#;
        assert_eq!(matches(&m, post), [2, 4]);
        assert!(m.remove(3) && m.remove(1));
        assert_eq!(matches(&m, post), [2, 4]);
        assert!(m.remove(2) && m.remove(4));
        assert!(m.index.tokens.is_empty(), "each entry left with its hint");
    }

    #[test]
    fn a_reused_scratch_matches_as_a_fresh_one_when_the_epochs_wrap() {
        // 200 rules, so that a post naming every word has more candidates and known
        // tokens than the per-post tables start with.
        let mut m = Matcher::new();
        for i in 0..100u64 {
            let (w, x) = (kw(&format!("w{i}")), kw(&format!("x{i}")));
            m.insert(i, &rule(w.clone()));
            m.insert(1000 + i, &rule(Expr::And(vec![w, Expr::Not(Box::new(x))])));
        }
        let all: String = (0..100).map(|i| format!("w{i} ")).collect();
        let some: String = (0..100).step_by(3).map(|i| format!("w{i} x{i} ")).collect();
        let mut scratch = Scratch::default();
        // The first post leaves entries stamped 1; the third is stamped 1 again, after the
        // wrap, and must not take them for its own. The tables stay under the size above
        // which a small post makes them smaller (which would clear them anyway), and the
        // second post, stamped in between, overwrites only some of the first's entries.
        for (n, text) in [&all, &some, &all, &some].into_iter().enumerate() {
            if n == 1 {
                scratch.features.epoch = u32::MAX - 1;
            }
            let json = format!(r#"{{"id":{n},"text":"{text}"}}"#);
            let post = parse_post(json.as_bytes()).expect("valid post");
            let mut out = Vec::new();
            m.match_post_with(&post, &mut scratch, &mut out);
            let mut fresh = Vec::new();
            m.match_post(&post, &mut fresh);
            assert_eq!(out, fresh, "post {n}");
            let want = if text == &all { 200 } else { 34 };
            assert_eq!(out.len(), want, "post {n}");
        }
        assert_eq!(scratch.features.epoch, 2, "the stamps wrapped");
    }

    #[test]
    fn scratch_is_reusable_across_posts_and_matchers() {
        let mut a = Matcher::new();
        a.insert(
            1,
            &rule(Expr::And(vec![kw("red"), Expr::Not(Box::new(kw("blue")))])),
        );
        let mut b = Matcher::new();
        b.insert(9, &rule(Expr::Clause(Clause::Contains("lu".into()))));
        let mut scratch = Scratch::default();
        let mut out = Vec::new();
        for (m, json, want) in [
            (&a, r#"{"id":1,"text":"red"}"#, vec![1]),
            (&b, r#"{"id":2,"text":"red blue"}"#, vec![9]),
            (&a, r#"{"id":3,"text":"red blue"}"#, vec![]),
            (&b, r#"{"id":4,"text":"red"}"#, vec![]),
        ] {
            let post = parse_post(json.as_bytes()).expect("valid post");
            m.match_post_with(&post, &mut scratch, &mut out);
            assert_eq!(out, want, "{json}");
        }
    }
}
