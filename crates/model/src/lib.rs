//! # sluice-model: the post model
//!
//! What sluice knows about a post: a borrowed [`PostView`] of X's native JSON holding just
//! the fields matching reads, and (added alongside) the enrichment that splices
//! `matching_rules` into the original bytes without re-serialising the post.
//!
//! ## Layout
//! - [`post`]: [`parse_post`] and the borrowed view.
//! - [`ids`]: exact 64-bit ids from numbers or strings.

pub mod ids;
pub mod post;
pub mod sampling;

pub use post::{PostError, PostView, parse_post};
