//! One file per product benchmark, each implementing [`crate::benchmark::Benchmark`]
//! (mini-redis's one command per file), and [`Product`], the choice among them.

mod firehose;
mod powerstream;
mod powertrack;

pub use firehose::Firehose;
pub use powerstream::{
    MAX_CONNECTIONS as POWERSTREAM_CONNECTIONS, MAX_RULES as POWERSTREAM_RULES, Powerstream,
};
pub use powertrack::Powertrack;

/// The benchmark a run is, with its own parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Product {
    /// `sluice bench powertrack`.
    Powertrack(Powertrack),
    /// `sluice bench firehose`.
    Firehose(Firehose),
    /// `sluice bench powerstream`.
    Powerstream(Powerstream),
}
