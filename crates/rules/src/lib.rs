//! # sluice-rules: the PowerTrack rule language
//!
//! Turns rule text such as `(cat OR dog) lang:en -is:retweet` into a [`Rule`] tree, rejects
//! invalid rules with the exact messages X's rules API returns (1-based UTF-16 positions),
//! and prints a tree back in canonical form. No I/O, no async: the crate is a pure function
//! from text to tree, so it can be fuzzed and used by the server, the CLI and tests alike.
//!
//! ```
//! let rule = sluice_rules::parse("(cat OR dog) user_bio:vet -is:retweet").unwrap();
//! assert_eq!(rule.to_string(), "(cat OR dog) bio:vet -is:retweet");
//!
//! let err = sluice_rules::parse("fish AND bird").unwrap_err();
//! assert_eq!(
//!     err.powertrack_message(),
//!     "Ambiguous use of and as a keyword. Use a space to logically join two clauses, \
//!      or \"and\" to find occurrences of and in text (at position 6)\n"
//! );
//! ```
//!
//! ## Layout
//! - [`ast`]: the syntax tree (the contract with `sluice-matcher`).
//! - `lexer`: rule text → tokens, and the byte → UTF-16 position table.
//! - `parser`: tokens → tree (AND binds tighter than OR, groups, negation, operators).
//! - `validate`: the limits and rules X enforces beyond syntax (positive clause, `sample:`
//!   with a top-level OR, `source:` alone, geo ranges, …), dialect checks, and the refusal
//!   of control characters.
//! - `lang`: the `lang:` codes X accepts.
//! - `print`: the canonical printer (`Display for Rule`).
//! - `error`: [`RuleError`], whose text is X's message byte for byte.

#![deny(missing_docs)]

pub mod ast;
mod error;
mod lang;
mod lexer;
mod parser;
mod print;
mod validate;

pub use ast::*;
pub use error::{Problem, RuleError};

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
    /// The X API v2 filtered stream (`/2/tweets/search/stream/rules`): PowerTrack's
    /// operators plus v2's own (`has:cashtags`, `conversation_id:`, `context:`, `entity:`,
    /// `embedding:`), and `is:`/`has:`/`lang:` cannot stand alone.
    V2,
}

/// Longest rule accepted, in characters (Unicode scalar values).
pub const MAX_RULE_CHARS: usize = 2048;

/// Parses and validates a PowerTrack rule.
pub fn parse(rule: &str) -> Result<Rule, RuleError> {
    parse_with(rule, Dialect::PowerTrack)
}

/// Parses and validates a rule of the given dialect. The tree is normalized (see [`ast`]);
/// on failure the error carries X's message and every problem found.
pub fn parse_with(rule: &str, dialect: Dialect) -> Result<Rule, RuleError> {
    if rule.chars().nth(MAX_RULE_CHARS).is_some() {
        return Err(RuleError::new(vec![error::Problem::at(
            format!("Rules cannot be longer than {MAX_RULE_CHARS} characters"),
            1,
        )]));
    }
    let src = lexer::Source::new(rule);
    if let Some(problem) = validate::control_character(&src) {
        return Err(RuleError::new(vec![problem]));
    }
    let tree = parser::parse_tree(&src, dialect).map_err(RuleError::new)?;
    let problems = validate::validate(&tree, dialect);
    if !problems.is_empty() {
        return Err(RuleError::new(problems));
    }
    Ok(Rule {
        expr: tree.into_expr(),
    })
}
