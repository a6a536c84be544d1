//! # sluice-client
//!
//! What the client subcommands (`sluice rules`, `sluice stream`, `sluice record`,
//! `sluice ingest`) and the load generator (`sluice-bench`) share: talking HTTP(S) to a
//! sluice (or X) server and presenting what comes back. A crate of its own so that the
//! benchmark library can use the same client as the binary without depending on it.
//!
//! ## Layout
//! - [`http`]: the HTTP(S) client, credentials, replies and X's error texts, 429 waits.
//! - [`backoff`]: X's documented reconnect policy for streams.
//! - [`consume`]: a stream read for as long as it is wanted, reconnecting with that
//!   backoff; lines go to a [`consume::StreamSink`] (stdout, a file).
//! - [`lines`]: stream body chunks (gzip or identity) → lines, as each chunk arrives.
//! - [`message`]: heartbeat, system message or data, per stream line.
//! - [`output`]: server JSON printed pretty on a terminal, compact otherwise.
//! - [`signal`]: SIGINT/SIGTERM for a clean stop.

#![deny(missing_docs)]

pub mod backoff;
pub mod consume;
pub mod http;
pub mod lines;
pub mod message;
pub mod output;
pub mod signal;

/// A single-threaded tokio runtime: each client command does one thing at a time, and
/// blocking file reads happen on threads of their own.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}
