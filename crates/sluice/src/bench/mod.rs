//! The parts of `sluice bench powertrack|firehose|powerstream` (the command itself is
//! `cmd::bench`): a load generator and latency benchmark that drives a real server through
//! its public APIs only (admin, rules, ingest, stream), exactly as customers and operators
//! would. The three benchmarks share every part; they differ in what they provision, which
//! connections they open and which posts each connection must receive.
//!
//! ## How a run works
//! 1. [`target`]: start `sluice serve` as a child process on a free loopback port with a
//!    temporary data dir and a fresh admin token, or a cluster of them sharing a
//!    `nats-server` the bench starts too ([`nats`]), or use a running server.
//! 2. [`workload`]: generate the rules and the posts (`sluice_synth`, seeded) and compute
//!    exactly which posts every connection must receive: with the same matcher the server
//!    uses (PowerTrack, Powerstream), or by the post's partition (Firehose).
//! 3. [`provision`]: account, user, streams or Powerstream token, and rules through the
//!    admin and rules APIs; in a cluster, through the first node, and [`replication`]
//!    waits until every node has them.
//! 4. [`reader`]: hold the stream connections; decode gzip or identity chunk by chunk,
//!    timestamp every post on arrival, count what was received, duplicated or unexpected.
//! 5. [`ingest`]: send the posts at the target rate in small batches on a thread of its
//!    own, recording when each request started.
//! 6. [`stats`], [`cpu`], [`report`]: latency percentiles, CPU used by the server (per
//!    thread group) and the bench, and the printed report with its verdict.

pub mod cpu;
pub mod ingest;
pub mod nats;
pub mod provision;
pub mod reader;
pub mod replication;
pub mod report;
pub mod stats;
pub mod target;
pub mod workload;
