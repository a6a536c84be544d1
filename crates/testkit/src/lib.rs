//! What the workspace's tests share, in one place instead of a copy per crate: a sluice
//! server on loopback and the HTTP calls tests make to it (`server`), a Gnip-style stream
//! client (`server`), a private `nats-server` and cluster nodes joined to it (`cluster`), a fake Bluesky
//! Jetstream (`jetstream`),
//! and the [`PostLog`](sluice_postlog::PostLog) contract every post log is checked against
//! (always).
//!
//! Only ever a dev-dependency: `sluice-server` and `sluice-cluster` use it for their tests
//! while it depends on them (cargo allows that cycle for dev-dependencies). The harnesses
//! are behind features so that a crate's tests build only what they use: the post log's
//! tests need neither a server nor NATS.
//!
//! Everything is re-exported at the crate root, so a test names `sluice_testkit::TestServer`
//! or `sluice_testkit::Node` without knowing the module.
#![deny(missing_docs)]

pub mod post_log_contract;

#[cfg(feature = "server")]
mod http;
#[cfg(feature = "server")]
mod server;
#[cfg(feature = "server")]
mod stream;

#[cfg(feature = "cluster")]
mod cluster;
#[cfg(feature = "cluster")]
mod nats;

#[cfg(feature = "jetstream")]
mod jetstream;

#[cfg(feature = "cluster")]
pub use cluster::*;
#[cfg(feature = "server")]
pub use http::{ADMIN, post};
#[cfg(feature = "jetstream")]
pub use jetstream::{FakeJetstream, SessionRequest, events as jetstream_events};
#[cfg(feature = "cluster")]
pub use nats::Nats;
#[cfg(feature = "server")]
pub use server::TestServer;
#[cfg(feature = "server")]
pub use stream::*;
