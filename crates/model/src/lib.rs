//! # sluice-model: the post model
//!
//! What sluice knows about a post: a borrowed [`PostView`] of X's native JSON holding just
//! the fields matching reads, and (added alongside) the enrichment that splices
//! `matching_rules` into the original bytes without re-serialising the post.
//!
//! ## Layout
//! - [`post`]: [`parse_post`], the borrowed view, and [`read_post_id`] (just the id).
//! - [`ids`]: exact 64-bit ids from numbers or strings.
//! - [`ingest_line`]: [`check_line`], the stricter check a post passes to be ingested
//!   (X's `created_at` format, `id` and `id_str` agreeing).
//! - [`compliance`]: compliance events (`delete`, `tweet_edit`, …): telling them from
//!   posts, and checking them.
//! - [`edit`]: the edit metadata X gives an unedited post, added to posts that lack it.
//! - [`enrich`]: the `matching_rules` splice into the original post bytes.
//! - [`json`]: JSON output safe for line-splitting clients (U+2028/U+2029/U+0085 escaped).
//! - [`native`]: the entity objects of X's native post JSON, for the crates that write
//!   posts (synthetic and converted ones).
//! - [`snowflake`]: Snowflake-style rule ids.

#![deny(missing_docs)]

pub mod compliance;
pub mod edit;
pub mod enrich;
pub mod ids;
pub mod ingest_line;
pub mod json;
pub mod native;
pub mod post;
pub mod sampling;
pub mod snowflake;

pub use ingest_line::{IngestLineError, check_line};
pub use post::{PostError, PostView, parse_post, read_post_id};
