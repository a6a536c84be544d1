//! # sluice: the binary
//!
//! One binary with subcommands (operator contract: `docs/operator-interface.md`). `main` only
//! parses the command line and dispatches; each subcommand lives in its own module under
//! [`cmd`] and returns the process exit code.
//!
//! ## Layout
//! - `cmd::match_cmd`: `sluice match`, offline matching of an NDJSON posts file.
//! - `cmd::serve`: `sluice serve`, the server (flags, env, config file, demo, signals).
//! - `cmd::rules`, `cmd::stream`, `cmd::record`, `cmd::ingest`: clients of a running server
//!   (the rules API, a reconnecting stream consumer, a stream written to a file, NDJSON
//!   ingest, at once or at a recorded pace), built on `client` (the `sluice-client` crate).
//! - `cmd::source`: `sluice source jetstream`, a post source feeding a server's ingest API
//!   (the `sluice-source` crate).
//! - `progress`: the progress line `ingest --pace` and `record` share.
//! - `allocator`: the process's allocator (jemalloc) and the server's idle-time return of
//!   its threads' caches.
//! - `cmd::bench`: `sluice bench powertrack|firehose|powerstream|v2|connections`, the flags
//!   and output of the end-to-end load and latency benchmark, which is the `sluice-bench`
//!   library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod allocator;
mod cmd;
mod progress;

/// The HTTP client side the client subcommands share (its own crate, shared with the bench).
use sluice_client as client;

/// sluice: a self-hosted, wire-compatible implementation of X's enterprise streaming APIs
/// (PowerTrack rules and filtered stream, Decahose/Firehose, Powerstream).
#[derive(Debug, Parser)]
#[command(name = "sluice", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Match posts against PowerTrack rules offline, without a server.
    Match(cmd::match_cmd::MatchArgs),
    /// Run the server: PowerTrack, Decahose/Firehose, Powerstream, admin and ingest APIs.
    Serve(cmd::serve::ServeArgs),
    /// Manage a PowerTrack stream's or an X API v2 app's rules through its rules API.
    Rules(cmd::rules::RulesArgs),
    /// Consume a stream: one post per line, reconnecting with backoff and backfill.
    Stream(cmd::stream::StreamArgs),
    /// Record a stream to an NDJSON file that `ingest --pace` replays.
    Record(cmd::record::RecordArgs),
    /// Send NDJSON posts to a running server's ingest API, at once or at their recorded pace.
    Ingest(cmd::ingest::IngestArgs),
    /// Consume another firehose (Bluesky's Jetstream) into a running server's ingest API.
    Source(cmd::source::SourceArgs),
    /// Benchmark a server end to end: load, latency, lost posts, PASS/MISS against the target.
    Bench(cmd::bench::BenchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Match(args) => cmd::match_cmd::run(&args),
        Command::Serve(args) => cmd::serve::run(&args),
        Command::Rules(args) => cmd::rules::run(&args),
        Command::Stream(args) => cmd::stream::run(&args),
        Command::Record(args) => cmd::record::run(&args),
        Command::Ingest(args) => cmd::ingest::run(&args),
        Command::Bench(args) => cmd::bench::run(&args),
        Command::Source(args) => cmd::source::run(&args),
    }
}
