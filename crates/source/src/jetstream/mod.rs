//! Bluesky Jetstream's subscribe protocol, as a client: JSON events over a WebSocket at
//! `/subscribe`, filtered to posts (and profiles) with `wantedCollections`, resumed from a `cursor` (an
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

/// The collections a source asks for: posts, and profiles (rare: a profile commit comes
/// only when one changes), whose display names and bios the converter gives posts as
/// `user.name` and `user.description`.
pub const WANTED_COLLECTIONS: [&str; 2] = ["app.bsky.feed.post", "app.bsky.actor.profile"];
