//! The verdict of a run against the project's target for its benchmark: PowerTrack 5,000
//! posts/s, 1,000 rules, 100 connections, p99 under 20 ms; Firehose 20,000 posts/s on 20
//! partitions, p99 under 50 ms; Powerstream 5,000 posts/s, 1,000 rules, 2 connections,
//! identity encoding, p99 under 5 ms; nothing lost in every case. A cluster run
//! (`--cluster N`) is judged against the same targets.

use std::time::Duration;

use serde::Serialize;

use crate::benchmark::Encoding;
use crate::report::text::{ms, thousands};
use crate::report::{Loss, Setup};
use crate::stats::Latency;

/// What a benchmark's verdict requires.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Goal {
    /// Posts ingested per second.
    pub rate: f64,
    /// Rules on the stream, for the rules products.
    pub rules: Option<usize>,
    /// Stream connections, for the rules products (a volume stream always has its
    /// partitions).
    pub connections: Option<usize>,
    /// Whether the stream must be read without gzip.
    pub identity: bool,
    /// Ingest → client latency, 99th percentile, must be below this.
    #[serde(rename = "p99_ms", serialize_with = "crate::report::as_ms")]
    pub p99: Duration,
}

/// Share of [`Goal::rate`] an achieved rate may fall short by and still pass (pacing is
/// by 5 ms ticks, so a run ends a fraction of a tick early or late).
pub const RATE_TOLERANCE: f64 = 0.01;

/// One line of the verdict: a part of the goal, met or not.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// What the goal asks, e.g. `p99 < 20 ms`.
    pub target: String,
    /// Whether the run met it.
    pub pass: bool,
    /// What the run did, e.g. `p99 3.01 ms`.
    pub detail: String,
}

/// What a run did, as far as the goal cares.
pub(crate) struct Achieved<'a> {
    /// Posts ingested per second.
    pub rate: f64,
    /// The run's setup (rules, connections, encoding).
    pub setup: &'a Setup,
    /// Its latency figures.
    pub latency: Option<&'a Latency>,
    /// What was lost, duplicated, unexpected or not ingested.
    pub loss: &'a Loss,
}

/// Every part of `goal`, checked against what the run `did`.
pub(crate) fn checks(goal: &Goal, did: &Achieved<'_>) -> Vec<Check> {
    let mut checks = vec![Check {
        target: format!("{} posts/s ingested", thousands(goal.rate as u64)),
        pass: did.rate >= goal.rate * (1.0 - RATE_TOLERANCE),
        detail: format!("{} posts/s", thousands(did.rate.round() as u64)),
    }];
    if let Some(wanted) = goal.rules {
        let rules = did.setup.rules.unwrap_or(0);
        checks.push(Check {
            target: format!("{} rules", thousands(wanted as u64)),
            pass: rules >= wanted,
            detail: format!("{} rules", thousands(rules as u64)),
        });
    }
    if let Some(wanted) = goal.connections {
        let connections = did.setup.connections;
        checks.push(Check {
            target: format!("{} connections", thousands(wanted as u64)),
            pass: connections >= wanted,
            detail: format!("{} connections", thousands(connections as u64)),
        });
    }
    if goal.identity {
        let encoding = did.setup.encoding;
        checks.push(Check {
            target: "identity encoding".to_owned(),
            pass: encoding == Encoding::Identity,
            detail: encoding.name().to_owned(),
        });
    }
    checks.push(Check {
        target: format!("p99 < {} ms", goal.p99.as_millis()),
        pass: did.latency.is_some_and(|l| l.p99 < goal.p99),
        detail: did
            .latency
            .map_or("no samples".to_owned(), |l| format!("p99 {} ms", ms(l.p99))),
    });
    let loss = did.loss;
    checks.push(Check {
        target: "nothing lost".to_owned(),
        pass: loss.exact,
        detail: format!(
            "{} lost, {} duplicates, {} unexpected, {} not ingested",
            thousands(loss.lost),
            thousands(loss.duplicates),
            thousands(loss.unexpected),
            thousands(loss.not_ingested)
        ),
    });
    checks
}
