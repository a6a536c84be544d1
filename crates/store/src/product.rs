//! The products a stream can belong to.

use std::fmt;
use std::str::FromStr;

/// Which API a stream serves. Part of a stream's identity: an account may have a PowerTrack
/// stream and a Decahose stream with the same label (`--demo` creates both as `prod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Product {
    /// PowerTrack: rules and a filtered stream.
    PowerTrack,
    /// Decahose: the 10 % sample, in 2 partitions.
    Decahose,
    /// Firehose: every post, in 20 partitions.
    Firehose,
    /// Powerstream: one rule set per account, reached with bearer tokens.
    Powerstream,
}

impl Product {
    /// Every product, in a stable order.
    pub const ALL: [Product; 4] = [
        Product::PowerTrack,
        Product::Decahose,
        Product::Firehose,
        Product::Powerstream,
    ];

    /// The name used in the admin API and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Product::PowerTrack => "powertrack",
            Product::Decahose => "decahose",
            Product::Firehose => "firehose",
            Product::Powerstream => "powerstream",
        }
    }
}

impl fmt::Display for Product {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A product name that is not one of [`Product::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown product {0:?}: expected powertrack, decahose, firehose or powerstream")]
pub struct UnknownProduct(pub String);

impl FromStr for Product {
    type Err = UnknownProduct;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Product::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownProduct(s.to_owned()))
    }
}
