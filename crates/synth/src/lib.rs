//! # sluice-synth: deterministic synthetic data
//!
//! Realistic posts in X's native enriched JSON and realistic PowerTrack rules, drawn from one
//! shared Zipf vocabulary so that the rules actually match the posts. Everything is a pure
//! function of a seed (the portable PCG generator from `rand_pcg`), so a benchmark, a test
//! or a demo firehose sees the same data on every run and every machine.
//!
//! Users: the matcher benchmark (`crates/matcher/benches`), `sluice bench`, and the server's
//! `--demo` firehose.
//!
//! ```
//! use sluice_synth::{PostGenerator, RuleGenerator};
//!
//! let posts: Vec<String> = PostGenerator::new(7).take(3).collect();
//! let rules: Vec<String> = RuleGenerator::new(7).take(3).collect();
//! assert_eq!(posts, PostGenerator::new(7).take(3).collect::<Vec<_>>());
//! assert!(posts[0].starts_with("{\"created_at\":"));
//! assert_eq!(rules.len(), 3);
//! ```
//!
//! ## Layout
//! - [`vocab`]: the [`Vocabulary`] — Zipf-ranked words (English with a long made-up tail,
//!   Spanish, Portuguese, Japanese), emoji, hashtags, cashtags, domains, phrases.
//! - `words`: the fixed word lists behind it.
//! - `users`: the user population; a profile is a function of the user's index.
//! - `compose`: writing text and entities together, so entity indices are right.
//! - `native`: the output model, X's native post JSON.
//! - [`snowflake`]: Snowflake ids and the `created_at` format.
//! - [`posts`]: [`PostGenerator`] and its documented mix of post kinds.
//! - [`rules`]: [`RuleGenerator`] and its documented mix of rule shapes.

#![deny(missing_docs)]

mod compose;
mod native;
pub mod posts;
pub mod rules;
pub mod snowflake;
mod users;
pub mod vocab;
mod words;

pub use posts::PostGenerator;
pub use rules::RuleGenerator;
pub use vocab::{Language, Vocabulary};
