//! One file per product benchmark, each implementing the `Benchmark` trait
//! (mini-redis's one command per file), and [`Product`], the choice among them.

mod firehose;
mod powerstream;
mod powertrack;
mod v2;

pub use firehose::Firehose;
pub use powerstream::{
    MAX_CONNECTIONS as POWERSTREAM_CONNECTIONS, MAX_RULES as POWERSTREAM_RULES, Powerstream,
};
pub use powertrack::Powertrack;
pub use v2::{
    CONNECTIONS_PER_APP as V2_CONNECTIONS_PER_APP, EXPANDED_QUERY as V2_EXPANDED_QUERY,
    MAX_RULES_PER_APP as V2_MAX_RULES_PER_APP, V2,
};

/// The benchmark a run is, with its own parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    /// `sluice bench powertrack`.
    Powertrack(Powertrack),
    /// `sluice bench firehose`.
    Firehose(Firehose),
    /// `sluice bench powerstream`.
    Powerstream(Powerstream),
    /// `sluice bench v2`.
    V2(V2),
}
