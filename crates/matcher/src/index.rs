//! The anchor index: from something a post can have to the rules anchored on it.
//!
//! A rule's *anchors* are keys such that the rule can only match a post having at least one
//! of them ([`anchors`]). Each key kind has its own posting table:
//! - tokens, keyed by (field kind, interned id);
//! - exact string attributes (`#`, `@`, `$`, `from:`, `lang:`, place and profile values …),
//!   one hash map per attribute, looked up with the post's folded value;
//! - numeric attributes (user and status ids);
//! - flags (`has:`, `is:`), one list each;
//! - one-degree geo grid cells, for `point_radius:`/`bounding_box:` and their profile forms;
//! - substrings ([`SubstringIndex`]);
//! - rules with no anchor at all, candidates for every post.
//!
//! Postings are unordered `Vec<u32>` of rule slots; insert pushes, remove swaps out. Both
//! are O(1) hash work plus at most a scan of one posting list, so updates stay far below a
//! millisecond however many rules there are.

use hashbrown::HashMap;
use smallvec::SmallVec;

use crate::compile::{
    FLAGS, FieldKind, Flag, Node, NumKind, OFF_GRID, PROFILE_OFF_GRID, Pred, STR_KINDS, StrKind,
    SubstrSource, has_flag,
};
use crate::gate::Hint;
use crate::geo::{box_cells, circle_cells};
use crate::grams::{GramCounts, GramPair};
use crate::intern::Interner;
use crate::table::{PrefetchMap, TableKey};
use sluice_rules::HasKind;

/// A rule slot: the dense index of a rule in the matcher's rule table.
pub(crate) type Slot = u32;

/// The rules under one hashed key. Most lists are short, and up to four slots live inline
/// in the hash table's entry (same 24 bytes as a `Vec`), so probing a key costs one cache
/// miss instead of two.
pub(crate) type Postings = SmallVec<[Slot; 4]>;

/// The rules under one token, each with the [`Hint`] of its gate, checked before the rule
/// is made a candidate. Two inline entries take the same 24 bytes as [`Postings`].
pub(crate) type TokenPostings = SmallVec<[(Slot, Hint); 2]>;

/// The rules under one quadgram, each with the [`GramPair`] of its pattern, checked
/// against the post's gram set before the rule is made a candidate. Two inline entries
/// take the same 24 bytes as [`Postings`].
pub(crate) type GramPostings = SmallVec<[(Slot, GramPair); 2]>;

/// Something a post can have, on which rules are anchored.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Key {
    /// An interned token in a field of the given kind.
    Token(FieldKind, u32),
    /// A string attribute value (folded except place ids).
    Str(StrKind, Box<str>),
    /// A numeric attribute value.
    Num(NumKind, u64),
    /// A `has:`/`is:` flag.
    Flag(Flag),
    /// Three bytes of a folded text (`Text`) or URL (`Url`) field (3-byte patterns).
    Trigram(SubstrSource, u32),
    /// Four bytes of a folded text or URL field (patterns of four bytes or more), with two
    /// more grams of the pattern that the post must also have.
    Quadgram(SubstrSource, u32, GramPair),
    /// One byte of a folded text or URL field (for patterns shorter than three bytes).
    Byte(SubstrSource, u8),
    /// A one-degree geo grid cell holding the post's location (`false`) or one of its
    /// author's profile locations (`true`).
    Cell(bool, u32),
}

/// The `cells` key of a grid cell of the post's location or of a profile location.
#[inline]
pub(crate) fn cell_key(profile: bool, cell: u32) -> u32 {
    cell << 1 | u32::from(profile)
}

/// Packs three bytes into a trigram key.
#[inline]
pub(crate) fn trigram(b: &[u8]) -> u32 {
    u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2])
}

/// Packs four bytes into a quadgram key. The bytes are always of folded UTF-8 text (rule
/// patterns and post fields are `str`s), which never holds 0xFF, so no quadgram is
/// `u32::MAX`, the vacant key of their [`PrefetchMap`].
#[inline]
pub(crate) fn quadgram(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Patterns of the substring operators, by a chosen four-byte gram (three bytes for 3-byte
/// patterns) or, when shorter than three bytes, by their first byte. Four-byte grams are far
/// more selective than trigrams on real text. Incremental: no automaton to rebuild on
/// change.
#[derive(Debug, Clone)]
pub(crate) struct SubstringIndex {
    /// Trigram → rules with a 3-byte pattern.
    pub(crate) trigrams: HashMap<u32, Postings>,
    /// Quadgram → rules with a pattern of four bytes or more.
    pub(crate) quadgrams: PrefetchMap<u32, GramPostings>,
    /// Which buckets of quadgrams have postings, to skip most lookups.
    pub(crate) quadgram_counts: GramCounts,
    /// First byte → rules with a pattern of one or two bytes.
    pub(crate) bytes: Vec<Vec<Slot>>,
    /// Number of non-empty lists in `bytes`, to skip the byte probe when zero.
    pub(crate) byte_lists: usize,
}

impl Default for SubstringIndex {
    fn default() -> Self {
        Self {
            trigrams: HashMap::new(),
            quadgrams: PrefetchMap::default(),
            quadgram_counts: GramCounts::default(),
            bytes: vec![Vec::new(); 256],
            byte_lists: 0,
        }
    }
}

/// Every posting table.
#[derive(Debug, Clone)]
pub(crate) struct Index {
    /// (field kind, token id) → rules; key [`token_key`], whose lookups a post starts
    /// ahead (see `table`).
    pub(crate) tokens: PrefetchMap<u64, TokenPostings>,
    /// Per [`StrKind`]: value → rules.
    pub(crate) strs: Vec<HashMap<Box<str>, Postings>>,
    /// (kind, value) → rules.
    pub(crate) nums: HashMap<(NumKind, u64), Postings>,
    /// Per flag: rules.
    pub(crate) flags: Vec<Vec<Slot>>,
    /// Geo grid cell ([`cell_key`]) → rules whose region overlaps it.
    pub(crate) cells: HashMap<u32, Postings>,
    /// Per [`SubstrSource`]: substring patterns.
    pub(crate) substrings: [SubstringIndex; 2],
    /// Rules without anchors.
    pub(crate) always: Vec<Slot>,
}

impl Default for Index {
    fn default() -> Self {
        Self {
            tokens: PrefetchMap::default(),
            strs: vec![HashMap::new(); STR_KINDS],
            nums: HashMap::new(),
            flags: vec![Vec::new(); FLAGS],
            cells: HashMap::new(),
            substrings: Default::default(),
            always: Vec::new(),
        }
    }
}

/// The `tokens` key of a (field kind, token id) pair: `id << 4 | kind`, below 2^36, so never
/// `u64::MAX`, the table's vacant key.
#[inline]
pub(crate) fn token_key(kind: FieldKind, id: u32) -> u64 {
    u64::from(id) << 4 | kind as u64
}

fn remove_slot(list: &mut Vec<Slot>, slot: Slot) {
    list.swap_remove(position(list, slot));
}

/// Where `entry` (a slot, or a slot with its [`GramPair`]) is in `list`, which holds it.
fn position<E: PartialEq>(list: &[E], entry: E) -> usize {
    list.iter()
        .position(|e| *e == entry)
        .expect("an indexed rule is in its posting")
}

impl Index {
    /// Current length of `key`'s posting list.
    fn len(&self, key: &Key) -> usize {
        match key {
            Key::Token(kind, id) => self
                .tokens
                .get(token_key(*kind, *id))
                .map_or(0, |list| list.len()),
            Key::Str(kind, v) => self.strs[*kind as usize]
                .get(v)
                .map_or(0, |list| list.len()),
            Key::Num(kind, v) => self.nums.get(&(*kind, *v)).map_or(0, |list| list.len()),
            Key::Flag(f) => self.flags[usize::from(*f)].len(),
            Key::Trigram(src, t) => self.substrings[*src as usize]
                .trigrams
                .get(t)
                .map_or(0, |list| list.len()),
            Key::Quadgram(src, q, _) => self.substrings[*src as usize]
                .quadgrams
                .get(*q)
                .map_or(0, |list| list.len()),
            Key::Byte(src, b) => self.substrings[*src as usize].bytes[usize::from(*b)].len(),
            Key::Cell(profile, c) => self
                .cells
                .get(&cell_key(*profile, *c))
                .map_or(0, |list| list.len()),
        }
    }

    /// The estimated cost of anchoring on `key`: its posting length, plus a prior for keys
    /// that many posts have whatever the rules (flags, languages, single bytes). For a
    /// token the prior is the number of rule references to it (`interner`): a word many
    /// rules mention, even without being anchored on it (`-world`, the second word of
    /// `apple world`), is a common word, which many posts say too.
    fn cost(&self, key: &Key, interner: &Interner) -> usize {
        let prior = match key {
            Key::Token(_, id) => interner.refs(*id) as usize,
            Key::Num(..) | Key::Quadgram(..) => 0,
            Key::Trigram(..) => 100,
            Key::Str(StrKind::Lang | StrKind::PlaceCountry | StrKind::ProfileCountry, _) => 5_000,
            Key::Str(..) => 0,
            Key::Byte(..) => 20_000,
            // Posts cluster in cities: a cell is shared by many of them.
            Key::Cell(..) => 1_000,
            // Off-grid locations do not occur in real posts.
            Key::Flag(OFF_GRID | PROFILE_OFF_GRID) => 0,
            Key::Flag(_) => 100_000,
        };
        self.len(key) + prior
    }

    /// Indexes the rule in `slot` under each of its `anchors` (none: under every post),
    /// with `hint` beside it under tokens. A token's first posting under a field kind is
    /// noted in `interner` ([`Interner::set_posted`]).
    pub(crate) fn add(
        &mut self,
        anchors: Option<&[Key]>,
        slot: Slot,
        hint: Hint,
        interner: &mut Interner,
    ) {
        let Some(keys) = anchors else {
            self.always.push(slot);
            return;
        };
        for key in keys {
            match key {
                Key::Token(kind, id) => {
                    let list = self.tokens.get_or_default(token_key(*kind, *id));
                    list.push((slot, hint));
                    if list.len() == 1 {
                        interner.set_posted(*id, kind.bit(), true);
                    }
                }
                Key::Str(kind, v) => {
                    self.strs[*kind as usize]
                        .entry(v.clone())
                        .or_default()
                        .push(slot);
                }
                Key::Num(kind, v) => self.nums.entry((*kind, *v)).or_default().push(slot),
                Key::Flag(f) => self.flags[usize::from(*f)].push(slot),
                Key::Trigram(src, t) => {
                    self.substrings[*src as usize]
                        .trigrams
                        .entry(*t)
                        .or_default()
                        .push(slot);
                }
                Key::Quadgram(src, q, pair) => {
                    let sub = &mut self.substrings[*src as usize];
                    sub.quadgrams.get_or_default(*q).push((slot, *pair));
                    sub.quadgram_counts.add(*q);
                }
                Key::Byte(src, b) => {
                    let sub = &mut self.substrings[*src as usize];
                    let list = &mut sub.bytes[usize::from(*b)];
                    if list.is_empty() {
                        sub.byte_lists += 1;
                    }
                    list.push(slot);
                }
                Key::Cell(profile, c) => {
                    self.cells
                        .entry(cell_key(*profile, *c))
                        .or_default()
                        .push(slot);
                }
            }
        }
    }

    /// Undoes [`Index::add`] with the same anchors, slot and hint, before the rule's
    /// tokens are released from `interner`.
    pub(crate) fn remove(
        &mut self,
        anchors: Option<&[Key]>,
        slot: Slot,
        hint: Hint,
        interner: &mut Interner,
    ) {
        let Some(keys) = anchors else {
            remove_slot(&mut self.always, slot);
            return;
        };
        for key in keys {
            match key {
                Key::Token(kind, id) => {
                    if remove_from_table(&mut self.tokens, token_key(*kind, *id), (slot, hint)) {
                        interner.set_posted(*id, kind.bit(), false);
                    }
                }
                Key::Str(kind, v) => remove_from_map(&mut self.strs[*kind as usize], &**v, slot),
                Key::Num(kind, v) => remove_from_map(&mut self.nums, &(*kind, *v), slot),
                Key::Flag(f) => remove_slot(&mut self.flags[usize::from(*f)], slot),
                Key::Trigram(src, t) => {
                    remove_from_map(&mut self.substrings[*src as usize].trigrams, t, slot);
                }
                Key::Quadgram(src, q, pair) => {
                    let sub = &mut self.substrings[*src as usize];
                    remove_from_table(&mut sub.quadgrams, *q, (slot, *pair));
                    sub.quadgram_counts.remove(*q);
                }
                Key::Byte(src, b) => {
                    let sub = &mut self.substrings[*src as usize];
                    let list = &mut sub.bytes[usize::from(*b)];
                    remove_slot(list, slot);
                    if list.is_empty() {
                        sub.byte_lists -= 1;
                    }
                }
                Key::Cell(profile, c) => {
                    remove_from_map(&mut self.cells, &cell_key(*profile, *c), slot);
                }
            }
        }
    }
}

/// [`remove_from_map`] for the tables whose lookups a post starts ahead; returns whether
/// `key`'s posting is gone.
fn remove_from_table<K, E, const N: usize>(
    table: &mut PrefetchMap<K, SmallVec<[E; N]>>,
    key: K,
    entry: E,
) -> bool
where
    K: TableKey,
    E: PartialEq + Clone,
    [E; N]: smallvec::Array<Item = E>,
{
    let emptied = take_from_posting(table.get_mut(key), entry);
    if emptied {
        table.remove(key);
    }
    emptied
}

/// Takes `entry` out of `key`'s posting in `map`, dropping the posting once empty.
fn remove_from_map<K, Q, E, const N: usize>(
    map: &mut HashMap<K, SmallVec<[E; N]>>,
    key: &Q,
    entry: E,
) where
    K: std::hash::Hash + Eq + std::borrow::Borrow<Q>,
    Q: std::hash::Hash + Eq + ?Sized,
    E: PartialEq,
    [E; N]: smallvec::Array<Item = E>,
{
    if take_from_posting(map.get_mut(key), entry) {
        map.remove(key);
    }
}

/// Takes `entry` out of `posting`, the posting of an indexed rule's key; returns whether
/// the posting is now empty (and is to be dropped).
fn take_from_posting<E, const N: usize>(posting: Option<&mut SmallVec<[E; N]>>, entry: E) -> bool
where
    E: PartialEq,
    [E; N]: smallvec::Array<Item = E>,
{
    let list = posting.expect("an indexed rule's key has a posting");
    list.swap_remove(position(list, entry));
    list.is_empty()
}

/// The keys to anchor a rule on, chosen against the index's current state, sorted and
/// deduplicated; `None` when the rule has no anchor (it must be tried on every post).
///
/// Sound by construction, in a stronger form than "if the rule matches a post, the post has
/// one of the keys": if the rule matches, one of the leaves that gave its keys is true.
/// The matcher relies on the stronger form: a quadgram key is only worth its rule when the
/// rest of that leaf's pattern may be in the post too (`GramPair`). An anchor must
/// therefore only ever come from its own leaf.
/// - a leaf's keys are what the post must have for it to be true;
/// - `And` takes the cheapest anchored child (any child must hold), a child with no keys
///   (one that never matches) first;
/// - `Or` takes the union of its children, or nothing if one child is unanchored;
/// - `Not` gives no anchor.
pub(crate) fn anchors(node: &Node, index: &Index, interner: &Interner) -> Option<Vec<Key>> {
    let mut keys = node_anchors(node, index, interner)?;
    keys.sort_unstable();
    keys.dedup();
    Some(keys)
}

fn node_anchors(node: &Node, index: &Index, interner: &Interner) -> Option<Vec<Key>> {
    match node {
        // A child with no keys can never match (it holds a `Never`): the And cannot either,
        // so it wins even against keys whose posting lists are empty today.
        Node::And(children) => children
            .iter()
            .filter_map(|c| node_anchors(c, index, interner))
            .min_by_key(|keys| {
                let cost: usize = keys.iter().map(|k| index.cost(k, interner)).sum();
                (!keys.is_empty(), cost)
            }),
        Node::Or(children) => {
            let mut all = Vec::new();
            for child in children {
                all.extend(node_anchors(child, index, interner)?);
            }
            Some(all)
        }
        Node::Not(_) => None,
        Node::Leaf(pred) => pred_anchors(pred, index, interner),
    }
}

/// The keys for a phrase: the cheapest of its tokens, in every field kind of `mask`.
fn token_keys(mask: u16, ids: &[u32], index: &Index, interner: &Interner) -> Vec<Key> {
    let kinds = FieldKind::ALL
        .iter()
        .copied()
        .filter(|k| k.bit() & mask != 0);
    let keys_for = |id: u32| kinds.clone().map(move |k| Key::Token(k, id));
    let best = ids
        .iter()
        .copied()
        .min_by_key(|&id| {
            keys_for(id)
                .map(|k| index.cost(&k, interner))
                .sum::<usize>()
        })
        .expect("a compiled phrase has tokens");
    keys_for(best).collect()
}

/// The keys for a geo region: the grid cells it overlaps plus the off-grid flag (a point
/// off the grid has no cell); when the region has no cells, the `has:` flag of a location
/// (a post inside a region has a location).
fn region_keys(profile: bool, cells: Option<Vec<u32>>) -> Vec<Key> {
    match cells {
        Some(cells) => {
            let off_grid = if profile { PROFILE_OFF_GRID } else { OFF_GRID };
            let mut keys: Vec<Key> = cells.into_iter().map(|c| Key::Cell(profile, c)).collect();
            keys.push(Key::Flag(off_grid));
            keys
        }
        None => vec![Key::Flag(has_flag(if profile {
            HasKind::ProfileGeo
        } else {
            HasKind::Geo
        }))],
    }
}

fn pred_anchors(pred: &Pred, index: &Index, interner: &Interner) -> Option<Vec<Key>> {
    Some(match pred {
        // A rule that can never match needs no anchor: an empty key set is never a candidate.
        Pred::Never => Vec::new(),
        Pred::Phrase { fields, ids } => token_keys(*fields, ids, index, interner),
        Pred::Proximity { ids, .. } => token_keys(FieldKind::Text.bit(), ids, index, interner),
        Pred::Substring { src, finder } => {
            let pattern = finder.needle();
            match pattern.len() {
                0..3 => vec![Key::Byte(*src, pattern[0])],
                3 => vec![Key::Trigram(*src, trigram(pattern))],
                _ => {
                    // The cheapest gram; on a tie, the later one (word starts are common).
                    // A key's pair does not change its cost, so the candidates are costed
                    // with the anchor-only pair, which takes no pass over the pattern.
                    let best = pattern
                        .windows(4)
                        .map(quadgram)
                        .rev()
                        .min_by_key(|&gram| {
                            let key = Key::Quadgram(*src, gram, GramPair::of(&[], gram));
                            index.cost(&key, interner)
                        })
                        .expect("a pattern of four bytes has a quadgram");
                    vec![Key::Quadgram(*src, best, GramPair::of(pattern, best))]
                }
            }
        }
        Pred::Str { kind, value } => vec![Key::Str(*kind, value.clone())],
        Pred::User {
            name_kind,
            id_kind,
            name,
            id,
        } => {
            let mut keys = vec![Key::Str(*name_kind, name.clone())];
            keys.extend(id.map(|id| Key::Num(*id_kind, id)));
            keys
        }
        Pred::Num { kind, value } => vec![Key::Num(*kind, *value)],
        Pred::Place { id, ids } => {
            let mut keys = vec![Key::Str(StrKind::PlaceId, id.clone())];
            if !ids.is_empty() {
                keys.extend(token_keys(FieldKind::PlaceName.bit(), ids, index, interner));
            }
            keys
        }
        Pred::Radius { profile, circle } => region_keys(*profile, circle_cells(circle)),
        Pred::Box { profile, bbox } => region_keys(*profile, box_cells(bbox)),
        Pred::Flag(flag) => vec![Key::Flag(*flag)],
        Pred::Count { .. } | Pred::Sample(_) => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::compile;
    use crate::intern::Interner;
    use sluice_rules::{Clause, CountField, CountRange, Expr};

    fn kw(s: &str) -> Expr {
        Expr::Clause(Clause::Keyword(s.into()))
    }

    #[test]
    fn and_anchors_on_the_rarest_child_or_on_all_children() {
        let mut interner = Interner::default();
        let mut index = Index::default();
        // Make "common" popular.
        for slot in 0..10 {
            let node = compile(&kw("common"), &mut interner);
            let keys = anchors(&node, &index, &interner);
            index.add(keys.as_deref(), slot, Hint::default(), &mut interner);
        }
        let node = compile(&Expr::And(vec![kw("common"), kw("rare")]), &mut interner);
        let rare = interner.get("rare").expect("interned");
        let keys = anchors(&node, &index, &interner).expect("anchored");
        assert_eq!(
            keys,
            vec![
                Key::Token(FieldKind::Text, rare),
                Key::Token(FieldKind::Url, rare)
            ]
        );

        let or = compile(&Expr::Or(vec![kw("common"), kw("rare")]), &mut interner);
        assert_eq!(anchors(&or, &index, &interner).expect("anchored").len(), 4);
    }

    #[test]
    fn negations_and_counts_give_no_anchor() {
        let mut interner = Interner::default();
        let index = Index::default();
        let count = Expr::Clause(Clause::Count {
            field: CountField::Followers,
            range: CountRange { min: 1, max: None },
        });
        let node = compile(
            &Expr::And(vec![Expr::Not(Box::new(kw("x"))), count]),
            &mut interner,
        );
        assert_eq!(anchors(&node, &index, &interner), None);
        let node = compile(
            &Expr::Or(vec![kw("x"), Expr::Not(Box::new(kw("y")))]),
            &mut interner,
        );
        assert_eq!(anchors(&node, &index, &interner), None);
    }

    #[test]
    fn clauses_that_never_match_are_never_candidates() {
        let mut interner = Interner::default();
        let index = Index::default();
        let v2 = |rule: &str, interner: &mut Interner| {
            let rule = sluice_rules::parse_with(rule, sluice_rules::Dialect::V2).expect("valid");
            compile(&rule.expr, interner)
        };
        // Alone or beside other clauses, they anchor the rule on nothing: never a candidate.
        for rule in [
            "context:10.*",
            "entity:Twitter",
            "embedding:\"dogs in snow\"",
            "cat context:10.5",
            "cat -is:retweet entity:\"Michael Jordan\"",
        ] {
            let node = v2(rule, &mut interner);
            assert_eq!(
                anchors(&node, &index, &interner),
                Some(Vec::new()),
                "{rule}"
            );
        }
        // Negated or ORed, they leave the rule on its other clauses' anchors.
        for rule in ["cat -context:10.*", "context:1.2 OR cat", "cat -entity:x"] {
            let node = v2(rule, &mut interner);
            let cat = interner.get("cat").expect("interned");
            let want = vec![
                Key::Token(FieldKind::Text, cat),
                Key::Token(FieldKind::Url, cat),
            ];
            assert_eq!(anchors(&node, &index, &interner), Some(want), "{rule}");
        }
    }

    #[test]
    fn add_then_remove_leaves_no_posting() {
        let mut interner = Interner::default();
        let mut index = Index::default();
        let node = compile(
            &Expr::Or(vec![
                kw("a"),
                Expr::Clause(Clause::Contains("xyzzy".into())),
                Expr::Clause(Clause::Contains("q".into())),
                Expr::Clause(Clause::Hashtag("Tag".into())),
            ]),
            &mut interner,
        );
        let keys = anchors(&node, &index, &interner);
        index.add(keys.as_deref(), 7, Hint::default(), &mut interner);
        assert_eq!(index.substrings[0].byte_lists, 1);
        index.remove(keys.as_deref(), 7, Hint::default(), &mut interner);
        assert!(index.tokens.is_empty());
        assert!(index.substrings[0].quadgrams.is_empty());
        assert_eq!(index.substrings[0].byte_lists, 0);
        assert!(index.strs.iter().all(HashMap::is_empty));
    }
}
