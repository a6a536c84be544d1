//! # sluice-source
//!
//! Post sources: sluice consuming someone else's firehose and feeding what it converts
//! into the ingest path, so PowerTrack rules, streams, backfill and compliance work over
//! it. Today the one source is Bluesky's Jetstream (`sluice serve --source
//! jetstream=URL`, `sluice source jetstream URL --to BASE`); docs/bluesky.md describes it.
//!
//! The flow of a source ([`consumer::run`]): read events from the upstream, convert each
//! one (the pure `sluice-bluesky` crate), gather the lines into a [`batch::Batch`] of at
//! most ~1,000 lines or ~100 ms, hand it to a [`sink::Sink`] (the server in process, or a
//! server's `POST /ingest`), and only once the sink acknowledged it save the cursor of
//! its last event durably ([`cursor::CursorFile`]). A restart or a reconnect resumes from
//! that cursor minus a few seconds of overlap; ingest's de-duplication by id drops the
//! posts sent twice.
//!
//! ## Layout
//! - [`consumer`]: the loop above, with reconnects and a clean stop.
//! - [`batch`]: the lines waiting for the sink and the cursor they carry.
//! - [`sink`]: where batches go: [`sink::ServerSink`] (in process) and [`sink::HttpSink`].
//! - [`cursor`]: the cursor file, written atomically and synced.
//! - [`backoff`]: exponential reconnect waits with jitter.
//! - [`spec`]: `--source KIND=URL`.
//! - [`in_process`]: a source inside `sluice serve`, started and stopped with the server.
//! - [`leased`]: in cluster mode, one node at a time consumes, under a lease, with the
//!   cursor in the cluster's KV bucket.
//! - [`jetstream`]: Jetstream's protocol: the subscribe URL, the WebSocket connection,
//!   zstd frames with Jetstream's dictionary.

#![deny(missing_docs)]

pub mod backoff;
pub mod batch;
pub mod consumer;
pub mod cursor;
pub mod in_process;
pub mod jetstream;
pub mod leased;
pub mod sink;
pub mod spec;

/// The name a source's metrics and log lines carry.
pub const JETSTREAM: &str = "jetstream";
