//! # sluice-bluesky: Bluesky posts as X's
//!
//! Turns the events of Bluesky's Jetstream (JSON over WebSocket: records created and
//! deleted, handle changes) into lines for sluice's ingest API: each new post as a post in
//! X's native format, each deleted post as X's compliance `delete` event. Pure: no I/O; the
//! WebSocket consumer lives elsewhere and calls [`Converter::convert`] per message.
//! docs/bluesky.md says what each X field holds for a Bluesky post.
//!
//! ## Layout
//! - [`convert`]: [`Converter`] (with its handle and recent-post caches), [`Converted`],
//!   [`Output`].
//! - [`ids`]: the post and user ids ([`post_id`], [`user_id`]).
//! - [`tid`]: record keys that are TIDs.
//! - [`at_uri`]: `at://` URIs.
//! - `jetstream`: the events' shapes; `x_post`: the output's; `facets`: rich text to
//!   entities; `embed`: images, video, link cards and quotes; `created`: times; `lang`:
//!   language codes.
//! - [`error`]: [`ConvertError`], what went wrong with an event.

#![deny(missing_docs)]

pub mod at_uri;
pub mod convert;
mod created;
mod embed;
pub mod error;
mod facets;
pub mod ids;
mod jetstream;
mod lang;
pub mod tid;
mod x_post;

pub use convert::{Converted, Converter, Output};
pub use error::ConvertError;
pub use ids::{post_id, user_id};
