//! # sluice-rules: the PowerTrack rule language
//!
//! Turns rule text such as `(cat OR dog) lang:en -is:retweet` into a [`Rule`] tree, rejects
//! invalid rules with the exact messages X's rules API returns (1-based UTF-16 positions),
//! and prints a tree back in canonical form. No I/O, no async: the crate is a pure function
//! from text to tree, so it can be fuzzed and used by the server, the CLI and tests alike.
//!
//! ## Layout
//! - [`ast`]: the syntax tree (the contract with `sluice-matcher`).
//! - `lexer`: rule text → tokens with UTF-16 positions.
//! - `parser`: tokens → tree (AND binds tighter than OR, groups, negation, operators).
//! - `validate`: the limits and rules X enforces beyond syntax (length, positive clause,
//!   `sample:` with a top-level OR, `source:` alone, geo ranges, …) and dialect checks.
//! - `print`: the canonical printer (`Display for Rule`).
//! - `error`: [`RuleError`], whose text is X's message byte for byte.

pub mod ast;

pub use ast::*;

/// Which API's rules are being parsed: the grammar is shared, the accepted operators and the
/// standalone rules differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dialect {
    /// PowerTrack 2.0 (the Gnip-style rules API): every operator of the catalogue.
    #[default]
    PowerTrack,
    /// Powerstream (`/2/powerstream/rules`): the documented subset, and `is:`/`has:`/`lang:`
    /// cannot stand alone.
    Powerstream,
}

/// Longest rule accepted, in characters (Unicode scalar values).
pub const MAX_RULE_CHARS: usize = 2048;
