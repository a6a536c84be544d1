//! Bluesky Jetstream's subscribe protocol, as a client: JSON events over a WebSocket at
//! `/subscribe`, filtered to posts with `wantedCollections`, resumed from a `cursor` (an
//! event's `time_us`, microseconds since the epoch), optionally zstd-compressed with
//! Jetstream's own dictionary (`compress=true`).
//!
//! - [`subscribe`]: the subscribe URL from the one the operator gave.
//! - [`compression`]: the dictionary and one frame's decompression (and compression, for
//!   test servers).
//! - [`connection`]: opening the WebSocket (ws:// or wss:// with the system's roots) and
//!   reading events from it.

pub mod compression;
pub mod connection;
pub mod subscribe;

/// The collection a source asks for: Bluesky posts.
pub const POST_COLLECTION: &str = "app.bsky.feed.post";
