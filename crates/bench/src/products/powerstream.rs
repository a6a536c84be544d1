//! `sluice bench powerstream`: the account's Powerstream with its rules, read by up to two
//! connections (the account's cap), each expecting every matching post; identity (the
//! target's setting) or gzip.

use std::time::Duration;

use sluice_client::http::{Auth, HttpClient};
use sluice_rules::Dialect;
use sluice_store::{Product as Api, RulesSpec};
use sluice_wire::v2;
use url::Url;

use crate::benchmark::{Benchmark, Connection, Encoding, LineFormat, Provisioned, RulePlan};
use crate::progress;
use crate::provision;
use crate::replication::{Expected, ExpectedStream};
use crate::report::Setup;
use crate::report::text::{rules_clause, thousands};
use crate::target::Target;
use crate::verdict::Goal;
use crate::workload::{POWERSTREAM_SHARE_RULE, Rules, Share};

/// Powerstream's rules API as the server knows it: its row of the product table.
const RULES: RulesSpec = match Api::Powerstream.spec().rules {
    Some(rules) => rules,
    None => panic!("Powerstream has a rules API"),
};
/// Powerstream connections per account (the server's connection cap, X's default).
pub const MAX_CONNECTIONS: u32 = Api::Powerstream.spec().max_connections;
/// Powerstream rules per account.
pub const MAX_RULES: usize = RULES.max_rules as usize;
/// The label and product of every account's Powerstream rule set on the server.
const LABEL: &str = "powerstream";
/// Rules per add request (X's maximum).
const ADD_BATCH: usize = match RULES.max_rules_per_add {
    Some(n) => n,
    None => MAX_RULES,
};

/// The Powerstream benchmark's own parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Powerstream {
    /// Rules generated, at most [`MAX_RULES`].
    pub rules: usize,
    /// Stream connections, at most [`MAX_CONNECTIONS`].
    pub connections: usize,
    /// What the connections ask for.
    pub encoding: Encoding,
}

/// How a run reaches the account's Powerstream rules.
pub struct RulesApi {
    /// `BASE/2/powerstream/rules`.
    rules_url: Url,
    /// A bearer token of the account, created for this run.
    auth: Auth,
}

impl Benchmark for Powerstream {
    type RulesApi = RulesApi;

    fn name(&self) -> &'static str {
        "powerstream"
    }

    fn goal(&self) -> Goal {
        Goal {
            rate: 5_000.0,
            rules: Some(1_000),
            connections: Some(2),
            identity: true,
            p99: Duration::from_millis(5),
        }
    }

    fn rules(&self) -> Option<RulePlan> {
        Some(RulePlan {
            count: self.rules,
            dialect: Dialect::Powerstream,
            streams: 1,
        })
    }

    /// Creates the account, deletes its Powerstream rule set left by an earlier run
    /// (through the admin API, which does not count against the 50 rules requests per
    /// 24 h), and creates a new bearer token. The rule set is created again, empty, by the
    /// first rules request.
    async fn provision(
        &self,
        client: &HttpClient,
        target: &Target,
    ) -> anyhow::Result<Provisioned<RulesApi>> {
        let account_path = provision::put_account(client, target).await?;
        provision::delete_stream(client, target, LABEL, Some("powerstream"), true).await?;
        let token = provision::new_powerstream_token(client, target, &account_path).await?;
        let auth = Auth::Bearer(token.clone());
        let stream_url = target.base.join("2/powerstream")?;
        let connections = (0..self.connections)
            .map(|_| Connection {
                url: stream_url.clone(),
                gzip: self.encoding == Encoding::Gzip,
                share: Share::Stream(0),
                auth: auth.clone(),
                lines: LineFormat::Native,
            })
            .collect();
        // The rule set itself is created by the first connection or rules request.
        let replicated = Expected {
            users: Vec::new(),
            streams: Vec::new(),
            token: Some(token),
        };
        Ok(Provisioned {
            connections,
            replicated,
            rules_api: RulesApi {
                rules_url: target.base.join("2/powerstream/rules")?,
                auth,
            },
        })
    }

    /// Adds the rules through the Powerstream rules API, 100 per request (each request
    /// counts against the account's 50 per 24 h); every one must be created.
    async fn add_rules(
        &self,
        client: &HttpClient,
        api: &RulesApi,
        rules: &Rules,
    ) -> anyhow::Result<()> {
        progress(&format!("adding {} rules", rules.rules.len()));
        anyhow::ensure!(
            rules.rules.len() <= MAX_RULES,
            "the generated rules match less than 5 % of the posts and the share rule would \
             make {} rules, over Powerstream's {MAX_RULES}: use fewer --rules",
            rules.rules.len()
        );
        for batch in rules.rules.chunks(ADD_BATCH) {
            let answer: v2::AddResponse =
                provision::add_batch(client, &api.rules_url, &api.auth, batch).await?;
            anyhow::ensure!(
                answer.meta.summary.created == batch.len(),
                "adding Powerstream rules: {} of {} created",
                answer.meta.summary.created,
                batch.len()
            );
        }
        Ok(())
    }

    fn with_rules(&self, _: &RulesApi, rules: &Rules) -> Expected {
        Expected {
            users: Vec::new(),
            streams: vec![ExpectedStream {
                label: LABEL.to_owned(),
                product: "powerstream",
                rules: Some(rules.rules.len()),
            }],
            token: None,
        }
    }

    /// Deletes the account's Powerstream rule set (its token stays: the admin API cannot
    /// revoke tokens).
    async fn remove(
        &self,
        client: &HttpClient,
        target: &Target,
        _: &RulesApi,
    ) -> anyhow::Result<()> {
        provision::delete_stream(client, target, LABEL, Some("powerstream"), true).await
    }

    fn setup(&self, share_rule: bool) -> Setup {
        let share_rule = share_rule.then_some(POWERSTREAM_SHARE_RULE);
        Setup {
            summary: format!(
                "{}, {} connections, {} encoding",
                rules_clause(self.rules, share_rule),
                thousands(self.connections as u64),
                self.encoding.name()
            ),
            rules: Some(self.rules),
            share_rule,
            streams: 1,
            partitions: None,
            connections: self.connections,
            encoding: self.encoding,
        }
    }
}
