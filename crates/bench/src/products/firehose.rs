//! `sluice bench firehose`: the Firehose's 20 partitions, one connection each, every post
//! expected exactly once over all of them; no rules.
//!
//! X allows 10 connects per 60 s per volume stream, so 20 partition connections to one
//! stream would need a second rate-limit window (up to a minute of waiting). The bench
//! instead reads two Firehose streams of the same account, partitions 1–10 of the first and
//! 11–20 of the second. Both streams carry every post and a post's partition depends on its
//! id alone, so the 20 connections together receive every post exactly once, as one
//! customer's 20 partitions would, and the server's per-post work is the same (each post is
//! serialised to exactly one connection).

use std::time::Duration;

use serde_json::json;
use sluice_client::http::HttpClient;
use sluice_store::{Product as Api, ProductSpec};

use crate::benchmark::{Benchmark, Connection, Encoding, LineFormat, Provisioned, RulePlan};
use crate::provision::{self, ACCOUNT, USER};
use crate::replication::{Expected, ExpectedStream};
use crate::report::Setup;
use crate::target::Target;
use crate::verdict::Goal;
use crate::workload::{Rules, Share};

/// The Firehose as the server knows it: its row of the product table.
const SPEC: &ProductSpec = Api::Firehose.spec();
/// Partitions of the Firehose.
const PARTITIONS: u32 = match SPEC.partitions {
    Some(n) => n,
    None => panic!("the Firehose has partitions"),
};
/// Partitions read per stream: X's connects per 60 s per stream (10).
const PARTITIONS_PER_STREAM: u32 = match SPEC.connect_rate {
    Some(rate) => rate.limit,
    None => PARTITIONS,
};
/// The labels of the streams the partitions are read from.
const LABELS: [&str; 2] = ["bench-firehose-1", "bench-firehose-2"];
// Every partition is read exactly once over the streams.
const _: () = assert!(PARTITIONS_PER_STREAM * LABELS.len() as u32 == PARTITIONS);

/// The Firehose benchmark (it has no parameters of its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Firehose;

impl Benchmark for Firehose {
    /// No rules.
    type RulesApi = ();

    fn name(&self) -> &'static str {
        "firehose"
    }

    fn goal(&self) -> Goal {
        Goal {
            rate: 20_000.0,
            rules: None,
            connections: None,
            identity: false,
            p99: Duration::from_millis(50),
        }
    }

    fn rules(&self) -> Option<RulePlan> {
        None
    }

    /// Creates the account, the user (with a fresh password) and one new stream per label,
    /// each allowing one connection per partition (caps count per partition); connection
    /// `k` reads partition `k + 1`.
    async fn provision(
        &self,
        client: &HttpClient,
        target: &Target,
    ) -> anyhow::Result<Provisioned<()>> {
        let auth = provision::account(client, target).await?;
        let mut connections = Vec::with_capacity(PARTITIONS as usize);
        for (n, label) in LABELS.into_iter().enumerate() {
            let spec = json!({ "product": "firehose", "max_connections": 1 });
            provision::fresh_stream(client, target, label, spec).await?;
            let url = target.base.join(&format!(
                "stream/firehose/accounts/{ACCOUNT}/publishers/twitter/{label}.json"
            ))?;
            for p in 1..=PARTITIONS_PER_STREAM {
                let number = n as u32 * PARTITIONS_PER_STREAM + p;
                let mut url = url.clone();
                url.query_pairs_mut()
                    .append_pair("partition", &number.to_string());
                connections.push(Connection {
                    url,
                    gzip: true,
                    share: Share::Partition {
                        number,
                        of: PARTITIONS,
                    },
                    auth: auth.clone(),
                    lines: LineFormat::Native,
                });
            }
        }
        let replicated = Expected {
            users: vec![USER.to_owned()],
            streams: LABELS
                .iter()
                .map(|label| ExpectedStream {
                    label: (*label).to_owned(),
                    product: "firehose",
                    rules: None,
                })
                .collect(),
            token: None,
        };
        Ok(Provisioned {
            connections,
            replicated,
            rules_api: (),
        })
    }

    /// Never called: the Firehose has no rules ([`Benchmark::rules`] is `None`).
    async fn add_rules(&self, _: &HttpClient, (): &(), _: &Rules) -> anyhow::Result<()> {
        Ok(())
    }

    fn with_rules(&self, (): &(), _: &Rules) -> Expected {
        Expected::default()
    }

    async fn remove(&self, client: &HttpClient, target: &Target, (): &()) -> anyhow::Result<()> {
        for label in LABELS {
            provision::delete_stream(client, target, label, Some("firehose"), false).await?;
        }
        Ok(())
    }

    fn setup(&self, _share_rule: bool) -> Setup {
        let streams = LABELS.len();
        Setup {
            summary: format!(
                "{PARTITIONS} partitions ({streams} Firehose streams × {} partitions)",
                PARTITIONS as usize / streams
            ),
            rules: None,
            share_rule: None,
            streams,
            partitions: Some(PARTITIONS),
            connections: PARTITIONS as usize,
            encoding: Encoding::Gzip,
        }
    }
}
