//! `sluice bench powertrack`: rules split over `bench-1` … `bench-N` PowerTrack streams,
//! connection `j` reading stream `j mod N`, each expecting what its own stream's rules
//! match; gzip, as X's PowerTrack always sends.

use std::time::Duration;

use serde_json::json;
use sluice_client::http::HttpClient;
use sluice_rules::Dialect;
use sluice_store::Product as Api;
use sluice_wire::AddResponse;

use crate::benchmark::{Benchmark, Connection, Encoding, LineFormat, Provisioned, RulePlan};
use crate::progress;
use crate::provision::{self, ACCOUNT, USER};
use crate::replication::{Expected, ExpectedStream};
use crate::report::Setup;
use crate::report::text::{rules_clause, thousands};
use crate::target::Target;
use crate::verdict::Goal;
use crate::workload::{Rules, SHARE_RULE, Share};

/// The label of the stream when the run has one.
const LABEL: &str = "bench";
/// Rules per add request (demian85/gnip's batch size, as `sluice rules add` uses).
const ADD_BATCH: usize = 5_000;
/// Rule cap the server applies unless told otherwise (PowerTrack's row of the product
/// table).
const DEFAULT_MAX_RULES: usize = match Api::PowerTrack.spec().rules {
    Some(rules) => rules.max_rules as usize,
    None => panic!("PowerTrack has a rules API"),
};

/// The PowerTrack benchmark's own parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Powertrack {
    /// Rules generated, split over the streams.
    pub rules: usize,
    /// Stream connections, spread over the streams (at least one per stream).
    pub connections: usize,
    /// PowerTrack streams, from 1 to `connections`.
    pub streams: usize,
}

impl Powertrack {
    /// X's customers hold a redundant pair of connections per stream: the default number
    /// of streams for `connections` connections.
    pub fn default_streams(connections: usize) -> usize {
        connections.div_ceil(2)
    }
}

/// How a run reaches one of its PowerTrack streams.
pub struct Stream {
    /// The rules URL.
    rules_url: url::Url,
    /// The credentials of [`USER`].
    auth: sluice_client::http::Auth,
}

/// PowerTrack's target: 1,000 rules, 100 gzip connections, 5,000 posts/s, p99 < 20 ms.
pub(super) const GOAL: Goal = Goal {
    rate: 5_000.0,
    rules: Some(1_000),
    connections: Some(100),
    identity: false,
    p99: Duration::from_millis(20),
};

impl Benchmark for Powertrack {
    type RulesApi = Vec<Stream>;

    fn name(&self) -> &'static str {
        "powertrack"
    }

    fn goal(&self) -> Goal {
        GOAL
    }

    fn rules(&self) -> Option<RulePlan> {
        Some(RulePlan {
            count: self.rules,
            dialect: Dialect::PowerTrack,
            streams: self.streams,
        })
    }

    /// Creates the account, the user (with a fresh password) and one new, empty stream per
    /// label, each allowing its share of the connections and at least all the rules (plus
    /// the share rule). A stream left by an earlier run under the same label is deleted
    /// first, so the rules are exactly the ones this run adds.
    async fn provision(
        &self,
        client: &HttpClient,
        target: &Target,
    ) -> anyhow::Result<Provisioned<Vec<Stream>>> {
        let auth = provision::account(client, target).await?;
        let per_stream = self.connections.div_ceil(self.streams);
        let mut streams = Vec::with_capacity(self.streams);
        let mut stream_urls = Vec::with_capacity(self.streams);
        for label in labels(self.streams) {
            let spec = json!({
                "product": "powertrack",
                "max_connections": per_stream,
                "max_rules": (self.rules + 1).max(DEFAULT_MAX_RULES),
            });
            provision::fresh_stream(client, target, &label, spec).await?;
            // The paths are X's, so they are built from the base the bench reaches, not
            // from the server's public URL (which may name a proxy).
            let path = format!("accounts/{ACCOUNT}/publishers/twitter/{label}.json");
            stream_urls.push(target.base.join(&format!("stream/powertrack/{path}"))?);
            streams.push(Stream {
                rules_url: target.base.join(&format!("rules/powertrack/{path}"))?,
                auth: auth.clone(),
            });
        }
        // Connection j reads stream j mod N, so consecutive connects alternate streams and
        // each stream's connect rate limit is met as late as possible.
        let connections = (0..self.connections)
            .map(|j| Connection {
                url: stream_urls[j % self.streams].clone(),
                gzip: true,
                share: Share::Stream((j % self.streams) as u32),
                auth: auth.clone(),
                lines: LineFormat::Native,
            })
            .collect();
        let replicated = Expected {
            users: vec![USER.to_owned()],
            streams: labels(self.streams)
                .into_iter()
                .map(|label| ExpectedStream {
                    label,
                    product: "powertrack",
                    rules: None,
                })
                .collect(),
            token: None,
        };
        Ok(Provisioned {
            connections,
            replicated,
            rules_api: streams,
        })
    }

    /// Adds each stream's rules through its rules API, in batches; every one must be
    /// created.
    async fn add_rules(
        &self,
        client: &HttpClient,
        streams: &Vec<Stream>,
        rules: &Rules,
    ) -> anyhow::Result<()> {
        progress(&format!(
            "adding {} rules to {} streams",
            rules.rules.len(),
            streams.len()
        ));
        for (n, stream) in streams.iter().enumerate() {
            for batch in rules.of_stream(n).chunks(ADD_BATCH) {
                let answer: AddResponse =
                    provision::add_batch(client, &stream.rules_url, &stream.auth, batch).await?;
                anyhow::ensure!(
                    answer.summary.created == batch.len(),
                    "adding rules: {} of {} created",
                    answer.summary.created,
                    batch.len()
                );
            }
        }
        Ok(())
    }

    fn with_rules(&self, _: &Vec<Stream>, rules: &Rules) -> Expected {
        Expected {
            users: Vec::new(),
            streams: labels(self.streams)
                .into_iter()
                .enumerate()
                .map(|(n, label)| ExpectedStream {
                    label,
                    product: "powertrack",
                    rules: Some(rules.of_stream(n).len()),
                })
                .collect(),
            token: None,
        }
    }

    async fn remove(
        &self,
        client: &HttpClient,
        target: &Target,
        _: &Vec<Stream>,
    ) -> anyhow::Result<()> {
        for label in labels(self.streams) {
            provision::delete_stream(client, target, &label, Some("powertrack"), false).await?;
        }
        Ok(())
    }

    fn setup(&self, share_rule: bool) -> Setup {
        let streams = match self.streams {
            1 => "1 stream".to_owned(),
            n if share_rule => format!("{} streams (the share rule on each)", thousands(n as u64)),
            n => format!("{} streams", thousands(n as u64)),
        };
        let share_rule = share_rule.then_some(SHARE_RULE);
        Setup {
            summary: format!(
                "{}, {streams}, {} connections",
                rules_clause(self.rules, share_rule),
                thousands(self.connections as u64)
            ),
            rules: Some(self.rules),
            share_rule,
            streams: self.streams,
            partitions: None,
            connections: self.connections,
            encoding: Encoding::Gzip,
        }
    }
}

/// The labels of `streams` streams: `bench` alone for one stream (as before `--streams`
/// existed), `bench-1` … `bench-N` for more.
fn labels(streams: usize) -> Vec<String> {
    if streams <= 1 {
        vec![LABEL.to_owned()]
    } else {
        (1..=streams).map(|n| format!("{LABEL}-{n}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_stream_keeps_the_old_label_and_more_are_numbered() {
        assert_eq!(labels(1), ["bench"]);
        assert_eq!(labels(3), ["bench-1", "bench-2", "bench-3"]);
        assert_eq!(Powertrack::default_streams(100), 50);
        assert_eq!(Powertrack::default_streams(3), 2);
    }
}
