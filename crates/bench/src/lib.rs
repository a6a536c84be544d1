//! # sluice-bench
//!
//! The load generator and latency benchmark behind `sluice bench powertrack|firehose|
//! powerstream|v2` (the command itself, its flags and help, is the binary's `cmd::bench`). It
//! drives a real server through its public APIs only (admin, rules, ingest, stream), exactly
//! as customers and operators would, and counts every lost, duplicated or unexpected post:
//! the exact set of posts each connection must receive is computed locally (with the
//! server's own matcher for the rules products, with the server's partition function for
//! the Firehose).
//!
//! One model of a benchmark: the `Benchmark` trait (`benchmark.rs`), implemented
//! once per product in `products/`, and one flow that every run follows (`run.rs`). The
//! result is one [`Report`], printed as text or JSON.
//!
//! ## How a run works
//! 1. `target`: start `sluice serve` as a child process on a free loopback port with a
//!    temporary data dir and a fresh admin token, or a cluster of them sharing a
//!    `nats-server` the bench starts too (`nats`), or use a running server.
//! 2. `workload`: generate the rules and the posts (`sluice_synth`, seeded) and compute
//!    exactly which posts every connection must receive.
//! 3. `products/` and `provision`: account, user, streams, Powerstream token or v2 apps,
//!    and rules through the admin and rules APIs (before the connections open for v2,
//!    whose filtered stream refuses a connect without rules); in a cluster, through the first node, and
//!    `replication` waits until every node has them.
//! 4. `reader`: hold the stream connections; decode gzip or identity chunk by chunk,
//!    timestamp every post on arrival, count what was received, duplicated or unexpected.
//! 5. `ingest`: send the posts at the target rate in small batches on a thread of its
//!    own, recording when each request started.
//! 6. [`stats`], `cpu`, [`verdict`], [`report`]: latency percentiles, CPU used by the
//!    server (per thread group) and the bench, the verdict against the project's target,
//!    and the report.
//!
//! `sluice bench connections` is a benchmark of another kind, with a flow of its own
//! ([`connections`]): the server's memory per held connection and the delivery latency of
//! a post to all of them, at up to tens of thousands of connections.
//!
//! Threads: the readers run on the caller's runtime, the ingest loop on a single-threaded
//! runtime of its own, so that the readers' decoding never delays a tick.

#![deny(missing_docs)]

mod benchmark;
pub mod config;
pub mod connections;
mod cpu;
mod ingest;
mod nats;
pub mod products;
mod provision;
mod reader;
mod replication;
pub mod report;
mod run;
pub mod stats;
mod target;
pub mod verdict;
mod workload;

use std::io::Write as _;

pub use benchmark::Encoding;
pub use config::{Config, Pacing, Serve, ServerChoice};
pub use products::Product;
pub use report::Report;

/// Runs the benchmark `config` describes and returns its report. Dropping the future stops
/// (and reaps) every process the bench started.
pub async fn run(config: &Config) -> anyhow::Result<Report> {
    // The one place where the product is chosen.
    match &config.product {
        Product::Powertrack(bench) => run::run(bench, config).await,
        Product::Firehose(bench) => run::run(bench, config).await,
        Product::Powerstream(bench) => run::run(bench, config).await,
        Product::V2(bench) => run::run(bench, config).await,
    }
}

/// Says what the bench is doing, on stderr (stdout has only the report).
pub(crate) fn progress(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "sluice bench: {text}");
}
