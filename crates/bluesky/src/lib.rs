//! # sluice-bluesky: Bluesky posts as X's
//!
//! Turns the events of Bluesky's Jetstream (JSON over WebSocket: records created and
//! deleted, handle changes) into lines for sluice's ingest API: each new post as a post in
//! X's native format, each deleted post as X's compliance `delete` event. Pure: no I/O; the
//! WebSocket consumer lives elsewhere and calls [`Converter::convert`] per message.
//! docs/bluesky.md says what each X field holds for a Bluesky post.
//!
//! ```
//! use sluice_bluesky::{Converter, Output, post_id};
//!
//! let event = br#"{"did":"did:plc:4qzn7cxlmx2bzvefqkhcqo3y","time_us":1732098417801000,
//!     "kind":"commit","commit":{"rev":"3lbeqfifhh225","operation":"create",
//!     "collection":"app.bsky.feed.post","rkey":"3lbeqfifnck2l","cid":"bafyrei",
//!     "record":{"text":"hello #rust","createdAt":"2024-11-20T10:26:57.610Z","langs":["en"],
//!     "facets":[{"index":{"byteStart":6,"byteEnd":11},
//!     "features":[{"$type":"app.bsky.richtext.facet#tag","tag":"rust"}]}]}}}"#;
//! let mut converter = Converter::new();
//! let converted = converter.convert(event).expect("a post event");
//! assert_eq!(converted.time_us, 1_732_098_417_801_000);
//! let Output::Post { id, line } = converted.output else { panic!("a post") };
//! assert_eq!(id, post_id("did:plc:4qzn7cxlmx2bzvefqkhcqo3y", "3lbeqfifnck2l"));
//! let line = String::from_utf8(line).unwrap();
//! assert!(line.starts_with(r#"{"created_at":"Wed Nov 20 10:26:57 +0000 2024","id":"#));
//! assert!(line.contains(r#""hashtags":[{"text":"rust","indices":[6,11]}]"#));
//! ```
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
