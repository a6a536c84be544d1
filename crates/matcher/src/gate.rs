//! A rule's gate: a few necessary conditions, checked before its plan is evaluated.
//!
//! Most candidates fail: a rule anchored on one word of `apple iphone -android` becomes a
//! candidate on every post saying `apple`. Evaluating it reads its entry and its program
//! (cache misses at 100k rules). The gate is a small fixed-size summary kept in one dense
//! array: flags the rule requires or forbids, tokens it requires or forbids, string
//! attributes (`#`, `lang:` …) and grams of a substring it requires, one of the
//! alternatives of an `OR` of words and hashtags it requires, derived from the clauses
//! every match must satisfy. A candidate whose gate fails cannot match and is dropped
//! without touching its plan.

use crate::compile::{Node, Pred, StrKind, SubstrSource};
use crate::features::{Features, token_bloom_bit};
use crate::grams::gram_bit;
use crate::index::quadgram;
use crate::intern::UNKNOWN;

/// How many required tokens a gate holds.
const NEED: usize = 2;

/// How many alternative tokens a gate's "one of" condition holds.
const ANY: usize = 4;

const _: () = assert!(size_of::<Gate>() == 64, "a gate is one cache line");

/// A required-grams condition, packed: the two [`gram_bit`]s (14 bits each), the
/// [`SubstrSource`] (bit 28) and a presence bit (bit 31); zero for none.
const GRAMS_SET: u32 = 1 << 31;

/// Packs a required-grams condition (see [`GRAMS_SET`]).
fn pack_grams(src: SubstrSource, bits: [u16; 2]) -> u32 {
    GRAMS_SET | (src as u32) << 28 | u32::from(bits[1]) << 14 | u32::from(bits[0])
}

/// Necessary conditions for a rule to match; the default gate passes every post.
///
/// One cache line: checking a candidate's gate costs at most one miss. The fields are
/// packed to fit (one mask for both required tokens, the grams in one word).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(align(64))]
pub(crate) struct Gate {
    /// Flags that must all be set.
    need_flags: u32,
    /// Flags that must all be clear.
    deny_flags: u32,
    /// Tokens that must occur in a field of a kind of `need_mask` ([`UNKNOWN`]: none). The
    /// mask is the union of each token's own: weaker when they differ, still necessary.
    need: [u32; NEED],
    need_mask: u16,
    /// A token that must not occur in a field of `deny_mask` ([`UNKNOWN`]: none).
    deny: u32,
    deny_mask: u16,
    /// The [`SubstrSource`] whose folded fields must hold two grams of a required
    /// substring pattern (by their [`gram_bit`]s), if any, packed ([`pack_grams`]).
    grams: u32,
    /// [`str_bit`]s of string attributes the post must have.
    need_strs: u64,
    /// "One of": an `Or` every match must satisfy, whose alternatives are phrases and
    /// string attributes — the post must have the first token of one of the phrases in a
    /// field of `any_mask`, or one of the attributes of `any_strs`. Inactive when both
    /// `any_mask` and `any_strs` are zero. `(apple OR pear) fruit` anchored on `fruit` (a
    /// word many posts say) becomes a candidate on all of them; this drops those without
    /// either name before their plans are read.
    any: [u32; ANY],
    any_mask: u16,
    any_strs: u64,
    /// The rule matches every post having one of its anchor keys (see [`is_exact`]): a
    /// candidate that passes the gate needs no evaluation.
    pub(crate) exact: bool,
}

/// A few of a gate's conditions in 32 bits, small enough to travel beside the rule's
/// slot in its token postings: up to two of the string attributes it requires (by
/// [`str_bit`]) and one of the tokens (by [`token_bloom_bit`]). Probing checks the hint of
/// each rule under a token the post has before it marks the rule a candidate, and so
/// drops most candidates that would fail their gate for a missing `lang:`, `#`, `from:`
/// or word without reading the gate (a cache miss at 100,000 rules). A hint is a
/// necessary condition, never more: every post a gate passes, its hint passes. One hint
/// is a sufficient condition instead: [`Hint::is_sure`], for a rule whose anchor alone
/// makes it match ([`Gate::is_sure`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Hint(u32);

/// The hint's first required string attribute: present bit; its [`str_bit`] index is bits
/// 0..6.
const HINT_STR_A: u32 = 1 << 31;
/// The second: present bit; index in bits 6..12.
const HINT_STR_B: u32 = 1 << 30;
/// A required token: present bit; its [`token_bloom_bit`] is bits 12..22.
const HINT_TOKEN: u32 = 1 << 29;
/// The rule is sure to match a post under this posting ([`Gate::is_sure`]); no other bit
/// is set.
const HINT_SURE: u32 = 1 << 28;

impl Hint {
    /// The hint of a rule whose gate is `gate`.
    pub(crate) fn of(gate: &Gate) -> Self {
        if gate.is_sure() {
            return Self(HINT_SURE);
        }
        let mut hint = 0;
        let mut strs = gate.need_strs;
        for (present, shift) in [(HINT_STR_A, 0), (HINT_STR_B, 6)] {
            if strs != 0 {
                hint |= present | strs.trailing_zeros() << shift;
                strs &= strs - 1;
            }
        }
        if let Some(&id) = gate.need.iter().find(|&&id| id != UNKNOWN) {
            hint |= HINT_TOKEN | token_bloom_bit(id) << 12;
        }
        Self(hint)
    }

    /// Whether the rule matches every post that has the key of the posting this hint is
    /// in: probing reports it without reading its gate or its plan.
    #[inline]
    pub(crate) fn is_sure(self) -> bool {
        self.0 == HINT_SURE
    }

    /// Whether a post with features `f` may pass the gate this hint was made of.
    #[inline]
    pub(crate) fn passes(self, f: &Features) -> bool {
        let h = self.0;
        let has_str =
            |present: u32, shift: u32| h & present == 0 || f.str_bits >> (h >> shift & 63) & 1 != 0;
        has_str(HINT_STR_A, 0)
            && has_str(HINT_STR_B, 6)
            && (h & HINT_TOKEN == 0 || {
                let bit = h >> 12 & 1023;
                f.token_bloom[bit as usize / 64] >> (bit % 64) & 1 != 0
            })
    }
}

/// Whether a post having any anchor key of `plan` (as `index::anchors` chooses them)
/// certainly satisfies it: `plan` is a leaf, or an `Or` of such, whose every key means the
/// leaf is true — a one-token phrase (its token in one of its field kinds), a string or
/// numeric attribute, a user (name or id), a flag.
pub(crate) fn is_exact(plan: &Node) -> bool {
    match plan {
        Node::Or(children) => children.iter().all(is_exact),
        Node::Leaf(Pred::Phrase { ids, .. }) => ids.len() == 1,
        Node::Leaf(Pred::Str { .. } | Pred::User { .. } | Pred::Num { .. } | Pred::Flag(_)) => true,
        Node::And(_) | Node::Not(_) | Node::Leaf(_) => false,
    }
}

/// The bit of a string attribute in a 64-bit summary of a post's attributes (FNV-1a,
/// then the MurmurHash3 finalizer).
pub(crate) fn str_bit(kind: StrKind, value: &str) -> u64 {
    let hash = value
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325 ^ kind as u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    // FNV's top bits barely depend on the last bytes of short strings: mix them in.
    let mixed = (hash ^ hash >> 33).wrapping_mul(0xff51_afd7_ed55_8ccd);
    1 << ((mixed ^ mixed >> 33) >> 58)
}

impl Default for Gate {
    fn default() -> Self {
        Self {
            need_flags: 0,
            deny_flags: 0,
            need: [UNKNOWN; NEED],
            need_mask: 0,
            deny: UNKNOWN,
            deny_mask: 0,
            grams: 0,
            need_strs: 0,
            any: [UNKNOWN; ANY],
            any_mask: 0,
            any_strs: 0,
            exact: false,
        }
    }
}

impl Gate {
    /// Whether every post having one of the rule's anchor keys matches it: the rule is
    /// [`exact`](Gate::exact) and the gate has no condition of its own. Hints live in token
    /// postings only, so what this decides is rules anchored on words: a single word, or an
    /// `OR` of words (with any attributes), anchored on those words. For those an exact
    /// rule's gate is already empty (its anchored words are not conditions); the check of
    /// the gate keeps the rule sound if that ever changes. At 100,000 rules such rules were
    /// a fifth of a post's candidates and about half of its matches; reading their gates
    /// only to pass them cost a cache miss each.
    pub(crate) fn is_sure(&self) -> bool {
        self.exact
            && Gate {
                exact: false,
                ..*self
            } == Gate::default()
    }

    /// The gate of a rule with `plan`, anchored on tokens `anchored` (which every candidate
    /// is likely to have, so they are not worth a slot).
    pub(crate) fn of(plan: &Node, anchored: &[u32]) -> Self {
        let mut gate = Gate {
            exact: is_exact(plan),
            ..Gate::default()
        };
        gate.collect(plan, anchored);
        gate
    }

    /// Adds the conditions of `node`, a node every match must satisfy.
    fn collect(&mut self, node: &Node, anchored: &[u32]) {
        match node {
            Node::And(children) => children.iter().for_each(|c| self.collect(c, anchored)),
            Node::Leaf(Pred::Flag(flag)) => self.need_flags |= 1 << flag,
            Node::Leaf(Pred::Phrase { fields, ids }) => {
                for &id in ids.iter() {
                    self.require(id, *fields, anchored);
                }
            }
            Node::Leaf(Pred::Proximity { ids, .. }) => {
                for &id in ids.iter() {
                    self.require(id, crate::compile::FieldKind::Text.bit(), anchored);
                }
            }
            Node::Leaf(Pred::Str { kind, value }) => self.need_strs |= str_bit(*kind, value),
            Node::Leaf(Pred::Substring { src, finder }) => {
                let pattern = finder.needle();
                if self.grams == 0 && pattern.len() >= 4 {
                    let first = quadgram(&pattern[..4]);
                    let last = quadgram(&pattern[pattern.len() - 4..]);
                    self.grams = pack_grams(*src, [gram_bit(first), gram_bit(last)]);
                }
            }
            Node::Not(child) => match &**child {
                Node::Leaf(Pred::Flag(flag)) => self.deny_flags |= 1 << flag,
                // A one-token phrase is false exactly when its token is absent from its
                // fields; longer phrases can be false with every token present.
                Node::Leaf(Pred::Phrase { fields, ids })
                    if ids.len() == 1 && self.deny == UNKNOWN =>
                {
                    self.deny = ids[0];
                    self.deny_mask = *fields;
                }
                _ => {}
            },
            Node::Or(alternatives) => self.one_of(alternatives, anchored),
            Node::Leaf(_) => {}
        }
    }

    /// Records `alternatives` (of an `Or` every match satisfies) as the gate's "one of"
    /// condition, when the gate has none yet, each alternative is a phrase or a string
    /// attribute, there are at most [`ANY`] phrases, and none of them is anchored (when
    /// the `Or` is the anchor, every candidate satisfies it already).
    fn one_of(&mut self, alternatives: &[Node], anchored: &[u32]) {
        if self.any_mask != 0 || self.any_strs != 0 {
            return;
        }
        let mut any = [UNKNOWN; ANY];
        let (mut mask, mut strs, mut phrases) = (0u16, 0u64, 0);
        for alternative in alternatives {
            match alternative {
                Node::Leaf(Pred::Phrase { fields, ids }) if phrases < ANY => {
                    if anchored.contains(&ids[0]) {
                        return;
                    }
                    any[phrases] = ids[0];
                    phrases += 1;
                    mask |= fields;
                }
                Node::Leaf(Pred::Str { kind, value }) => strs |= str_bit(*kind, value),
                _ => return,
            }
        }
        if mask == 0 && strs == 0 {
            return;
        }
        self.any = any;
        self.any_mask = mask;
        self.any_strs = strs;
    }

    fn require(&mut self, id: u32, mask: u16, anchored: &[u32]) {
        if anchored.contains(&id) || self.need.contains(&id) {
            return;
        }
        if let Some(free) = self.need.iter().position(|&n| n == UNKNOWN) {
            self.need[free] = id;
            self.need_mask |= mask;
        }
    }

    /// Whether a post with features `f` may satisfy the rule (false: it certainly cannot).
    #[inline]
    pub(crate) fn passes(&self, f: &Features) -> bool {
        f.flags & self.need_flags == self.need_flags
            && f.str_bits & self.need_strs == self.need_strs
            && f.flags & self.deny_flags == 0
            && self
                .need
                .iter()
                .all(|&id| id == UNKNOWN || f.token_in(id, self.need_mask))
            && (self.deny == UNKNOWN || !f.token_in(self.deny, self.deny_mask))
            && (self.any_mask == 0 && self.any_strs == 0
                || f.str_bits & self.any_strs != 0
                || self
                    .any
                    .iter()
                    .any(|&id| id != UNKNOWN && f.token_in(id, self.any_mask)))
            && (self.grams == 0 || {
                let set = &f.grams[(self.grams >> 28 & 1) as usize];
                let bit = |shift: u32| (self.grams >> shift & 0x3FFF) as u16;
                set.may_have_bit(bit(0)) && set.may_have_bit(bit(14))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::compile;
    use crate::eval::eval;
    use crate::intern::Interner;
    use crate::program::Program;
    use sluice_model::parse_post;
    use sluice_rules::parse;

    /// The field kinds `plan` reads, as the matcher counts them.
    fn fields_read(plan: &Node) -> u16 {
        Program::new(plan.clone()).fields_read()
    }

    /// Whether `plan` is true for `features`, as the matcher evaluates it.
    fn holds(plan: &Node, features: &Features) -> bool {
        eval(&Program::new(plan.clone()), features)
    }

    #[test]
    fn gates_drop_posts_that_cannot_match_and_keep_the_rest() {
        let mut interner = Interner::default();
        let rules = [
            "apple iphone -android",
            "#ai lang:en -is:retweet",
            "launch has:links",
            // An alternative the "one of" condition cannot summarize: the gate passes all.
            "zentrix OR from:ai",
        ];
        let plans: Vec<Node> = rules
            .iter()
            .map(|r| compile(&parse(r).expect("valid rule").expr, &mut interner))
            .collect();
        let gates: Vec<Gate> = plans.iter().map(|p| Gate::of(p, &[])).collect();
        let wanted = plans.iter().fold(0, |m, p| m | fields_read(p));
        let tag = |t: &str| format!(r#""entities":{{"hashtags":[{{"text":"{t}"}}]}}"#);
        // (post, which gates pass, which rules match)
        let cases = [
            (
                r#"{"id":1,"text":"apple pie"}"#.to_owned(),
                [false, false, false, true],
            ),
            (
                r#"{"id":2,"text":"apple iPhone"}"#.to_owned(),
                [true, false, false, true],
            ),
            (
                r#"{"id":3,"text":"apple iphone android"}"#.to_owned(),
                [false, false, false, true],
            ),
            (
                format!(r#"{{"id":4,"text":"x","lang":"en",{}}}"#, tag("AI")),
                [false, true, false, true],
            ),
            (
                format!(r#"{{"id":5,"text":"x","lang":"es",{}}}"#, tag("AI")),
                [false, false, false, true],
            ),
            (
                r#"{"id":6,"text":"launch","entities":{"urls":[{"expanded_url":"https://a.b"}]}}"#
                    .to_owned(),
                [false, false, true, true],
            ),
        ];
        let mut features = Features::default();
        for (json, want) in &cases {
            let post = parse_post(json.as_bytes()).expect("valid post");
            features.load(&post, &interner, wanted);
            for ((plan, gate), want) in plans.iter().zip(&gates).zip(want) {
                assert_eq!(gate.passes(&features), *want, "{json}");
                if holds(plan, &features) {
                    assert!(gate.passes(&features), "a gate never drops a match: {json}");
                }
                if gate.passes(&features) {
                    assert!(Hint::of(gate).passes(&features), "nor a hint: {json}");
                }
            }
        }
        assert_eq!(
            plans.iter().map(is_exact).collect::<Vec<_>>(),
            [false, false, false, true]
        );
    }

    #[test]
    fn only_a_rule_that_its_anchor_words_alone_make_match_is_sure() {
        // (rule, its anchor words, sure)
        let cases: [(&str, &[&str], bool); 10] = [
            ("apple", &["apple"], true),
            ("apple OR pear", &["apple", "pear"], true),
            ("apple OR #ai", &["apple"], true),
            ("apple pie", &["pie"], false),
            ("\"apple pie\"", &["pie"], false),
            ("apple -pie", &["apple"], false),
            ("apple has:links", &["apple"], false),
            // Exact, but each has a gate condition (and is not anchored on a word).
            ("#ai", &[], false),
            ("has:links", &[], false),
            ("#a OR #b", &[], false),
        ];
        for (rule, anchors, want) in cases {
            let mut interner = Interner::default();
            let plan = compile(&parse(rule).expect("valid rule").expr, &mut interner);
            let anchored: Vec<u32> = anchors
                .iter()
                .map(|word| interner.get(word).expect("interned"))
                .collect();
            let gate = Gate::of(&plan, &anchored);
            assert_eq!(gate.is_sure(), want, "{rule}");
            assert_eq!(Hint::of(&gate).is_sure(), want, "{rule}");
        }
    }

    #[test]
    fn a_hint_drops_posts_missing_a_required_attribute_or_word_as_its_gate_does() {
        let mut interner = Interner::default();
        let plan = compile(
            &parse("#ai lang:en apple pie").expect("valid rule").expr,
            &mut interner,
        );
        let pie = interner.get("pie").expect("interned");
        let apple = interner.get("apple").expect("interned");
        assert_ne!(token_bloom_bit(apple), token_bloom_bit(pie));
        // Anchored on "pie": the gate needs "apple", and so does the hint.
        let gate = Gate::of(&plan, &[pie]);
        let hint = Hint::of(&gate);
        let wanted = fields_read(&plan);
        let post = |text: &str, lang: &str, tag: &str| {
            format!(
                r#"{{"id":1,"text":"{text}","lang":"{lang}","entities":{{"hashtags":[{{"text":"{tag}"}}]}}}}"#
            )
        };
        // (post, whether the gate and the hint pass)
        let cases = [
            (post("apple pie", "en", "AI"), true),
            (post("pie", "en", "AI"), false),
            (post("apple pie", "fr", "AI"), false),
            (post("apple pie", "en", "ml"), false),
        ];
        let mut features = Features::default();
        for (json, want) in &cases {
            let view = parse_post(json.as_bytes()).expect("valid post");
            features.load(&view, &interner, wanted);
            assert_eq!(gate.passes(&features), *want, "{json}");
            assert_eq!(hint.passes(&features), *want, "{json}");
        }
        // A gate without conditions the hint holds: every post passes.
        let open = Hint::of(&Gate::default());
        assert_eq!(open, Hint::default());
        assert!(open.passes(&features));
    }

    #[test]
    fn an_or_of_words_and_hashtags_needs_one_of_them() {
        let mut interner = Interner::default();
        let rules = [
            "(apple OR \"red pear\" OR #fruit) market",
            // Too many phrases for the gate, or an alternative it cannot summarize: no
            // condition, every post passes.
            "(a1 OR a2 OR a3 OR a4 OR a5) market",
            "(apple OR from:grocer) market",
        ];
        let plans: Vec<Node> = rules
            .iter()
            .map(|r| compile(&parse(r).expect("valid rule").expr, &mut interner))
            .collect();
        let market = interner.get("market").expect("interned");
        let gates: Vec<Gate> = plans.iter().map(|p| Gate::of(p, &[market])).collect();
        let wanted = plans.iter().fold(0, |m, p| m | fields_read(p));
        let cases = [
            (r#"{"id":1,"text":"market day"}"#, [false, true, true]),
            (r#"{"id":2,"text":"apple market"}"#, [true, true, true]),
            // "red" starts the phrase: the gate passes, evaluation decides.
            (r#"{"id":3,"text":"red market"}"#, [true, true, true]),
            (r#"{"id":4,"text":"red pear market"}"#, [true, true, true]),
            (
                r#"{"id":5,"text":"market","entities":{"hashtags":[{"text":"Fruit"}]}}"#,
                [true, true, true],
            ),
            (
                r#"{"id":6,"text":"https://apple.com/x market"}"#,
                [true, true, true],
            ),
        ];
        let mut features = Features::default();
        for (json, want) in &cases {
            let post = parse_post(json.as_bytes()).expect("valid post");
            features.load(&post, &interner, wanted);
            for ((plan, gate), want) in plans.iter().zip(&gates).zip(want) {
                assert_eq!(gate.passes(&features), *want, "{json}");
                if holds(plan, &features) {
                    assert!(gate.passes(&features), "a gate never drops a match: {json}");
                }
            }
        }
    }
}
