//! # sluice-matcher: which rules match a post
//!
//! A stream holds up to hundreds of thousands of PowerTrack rules and must decide, for each
//! post, which of them match — at tens of thousands of posts per second, while rules are
//! added and deleted. [`Matcher`] does that with an index whose cost per post grows with
//! the post, not with the number of rules; [`NaiveMatcher`] is the obviously-correct
//! reference it is tested against; [`SharedMatcher`] lets a rules writer update the set
//! while matching threads keep reading. What each clause means is
//! `docs/matching-semantics.md`; text is normalized only by `sluice_text`.
//!
//! ## Design
//! **Compile** (`compile`). Each rule's AST becomes a plan: the same boolean tree with
//! predicates at the leaves, values folded, phrases tokenized and their tokens interned to
//! integer ids (`intern`, reference counted so removed rules free their vocabulary). The
//! matcher keeps each plan laid out flat, its nodes in preorder in one allocation
//! (`program`), so that a candidate's plan is requested at once instead of a node at a time.
//!
//! **Anchor** (`index`). Each rule gets a set of *anchor keys* such that it can only match a
//! post that has one of them: an `And` is anchored on one child — the one whose keys have
//! the shortest posting lists right now plus, for tokens, the number of rule references to
//! them (rules and posts share a Zipf-like vocabulary, so a token rare among rules is
//! usually rare among posts, and a word many rules mention, if only as `-word` or as the
//! second word of an AND, is a common one), with priors that keep flags and languages last;
//! an `Or` on the union of its children; a `Not` gives none. Keys are tokens
//! per field kind, exact attribute values (`#`, `@`, `$`, `from:`, `lang:`, place and
//! profile values, ids), `has:`/`is:` flags, one-degree geo grid cells for geo regions
//! (regions too large for 64 cells fall back to `has:geo`/`has:profile_geo`), and for
//! `contains:`/`url_contains:` one chosen four-byte gram of the folded pattern (a 3-byte
//! pattern: itself; shorter: its first byte). Only rules with no anchor at all — count
//! ranges, `sample:`, pure negations — are "always candidates"; a rule that cannot match (an
//! `And` holding a clause that never does, such as v2's `context:`) has an empty anchor set
//! and is never a candidate. Every table is a hash map or list updated in
//! place, so inserting or removing a rule costs a few hash operations whatever the number of
//! rules: no automaton to rebuild.
//!
//! **Match** (`features`, `gate`, `eval`). A post's features are extracted once into a
//! reusable [`Scratch`]: every text-like field some rule reads (per-kind rule counters say
//! which) tokenized and mapped to interned ids, folded attribute values, flags, counters,
//! locations and their grid cells. Walking them against the index (each distinct token per
//! field kind once, each attribute value, each set flag, each cell, each 4-gram, 3-gram and
//! byte of the folded text and URL fields; 4-grams go through a counting filter first and
//! fill a per-post gram set, and a 4-gram's posting keeps beside each rule two more grams of
//! its pattern, checked against that set; a token's posting keeps beside each rule a
//! 32-bit *hint* of its gate, up to two of the string attributes and one of the words it
//! requires, checked against the post's attribute bits and a Bloom filter of its tokens)
//! collects candidate rules, deduplicated in a small
//! per-post table tagged with the post's epoch (`epoch_map`). Each new candidate first
//! meets its *gate* (`gate`): a fixed-size summary in a dense array of conditions every
//! match needs (flags, tokens, string attributes, substring
//! grams required or forbidden, one of the words or hashtags of an `OR`), a cache line per
//! rule, so most non-matching candidates are dropped without touching their plans; rules
//! that every post with one of their anchors satisfies (a keyword, an `OR` of keywords, a
//! hashtag …) are reported without evaluation, their keys read from a dense array too, and
//! those whose gate adds nothing to their anchor words are reported from their token
//! posting without reading the gate at all. Only the remaining candidates' plans are
//! evaluated: phrases and proximity compare token-id
//! positions, substrings use a prepared `memchr::memmem` finder after the gram set says
//! the pattern may be there. Steady-state matching allocates nothing.
//!
//! **Share** (`shared`). [`SharedMatcher::new`] returns a [`MatcherWriter`] and a
//! [`MatcherReader`] over a `left_right` pair of matchers: readers match against the last
//! published copy without locks, the writer applies a batch to the other copy and
//! publishes. Chosen over `ArcSwap` + clone-on-write because cloning a 100k-rule index per
//! change would make each update cost milliseconds; left-right applies each change twice
//! instead, in microseconds, at the price of holding two copies.
//!
//! ## Layout
//! - `intern`: rule tokens ↔ dense ids.
//! - `compile`: AST → plan (predicates and the kinds they read).
//! - `index`: anchor keys, their choice per rule, and the posting tables.
//! - `features`: a post's fields and attributes, extracted once, in reusable buffers.
//! - `gate`: per-rule necessary conditions checked before evaluation.
//! - `grams`: fixed-size filters over four-byte grams (post gram sets, rule gram counts).
//! - `program`: a plan laid out flat in one allocation, the form the matcher keeps.
//! - `eval`: program evaluation, with phrase and proximity checks over token positions.
//! - `geo`: haversine distance, boxes, and the grid cells covering a region.
//! - `matcher`: [`Matcher`] and [`Scratch`].
//! - `naive`: [`NaiveMatcher`].
//! - `shared`: [`SharedMatcher`], [`MatcherWriter`], [`MatcherReader`].

#![deny(missing_docs)]

mod compile;
mod epoch_map;
mod eval;
mod features;
mod gate;
mod geo;
mod grams;
mod index;
mod intern;
mod matcher;
mod naive;
mod program;
mod shared;
mod table;

pub use matcher::{Matcher, RuleKey, Scratch};
pub use naive::NaiveMatcher;
pub use shared::{MatcherReader, MatcherWriter, SharedMatcher};

/// Hints the CPU to bring `value`'s cache line in, without waiting for it.
#[inline(always)]
pub(crate) fn prefetch<T>(value: &T) {
    prefetch_address((value as *const T).cast::<u8>());
}

/// Hints the CPU to bring the cache line holding `address` in, without waiting for it. Any
/// address will do: a prefetch reads nothing and cannot fault.
#[inline(always)]
pub(crate) fn prefetch_address(address: *const u8) {
    #[cfg(target_arch = "x86_64")]
    {
        use core::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: SSE is part of the x86_64 baseline, so the instruction exists; a
        // prefetch is only a hint, reads nothing and cannot fault.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(address.cast::<i8>()) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = address;
}
