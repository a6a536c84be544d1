//! The one model of a benchmark: what a product's run provisions, which connections it
//! opens and which posts each of them must receive, where its rules go, how the report
//! describes it, and the project's target for it. Each product implements [`Benchmark`]
//! once (`products/`); the flow every run follows (`run.rs`) only talks to this trait.

use std::future::Future;

use serde::Serialize;
use sluice_client::http::{Auth, HttpClient};
use sluice_rules::Dialect;
use url::Url;

use crate::replication::Expected;
use crate::report::Setup;
use crate::target::Target;
use crate::verdict::Goal;
use crate::workload::{Rules, Share};

/// One product's benchmark.
///
/// The futures are awaited in place by the run (never spawned), so they need not be `Send`.
pub(crate) trait Benchmark {
    /// What provisioning leaves for adding the rules (the rules URLs and credentials).
    type RulesApi;

    /// The benchmark's subcommand name (`powertrack`, `firehose`, `powerstream`, `v2`).
    fn name(&self) -> &'static str;

    /// The project's target for this benchmark, which the verdict checks.
    fn goal(&self) -> Goal;

    /// The rules to generate: every connection then expects the posts its stream's rules
    /// match. `None` for a volume stream, where every post is expected on the connection of
    /// its partition.
    fn rules(&self) -> Option<RulePlan>;

    /// Creates what the run needs on the server (through its first node): the account, its
    /// streams or token; says which connections to open.
    fn provision(
        &self,
        client: &HttpClient,
        target: &Target,
    ) -> impl Future<Output = anyhow::Result<Provisioned<Self::RulesApi>>>;

    /// Adds the generated `rules` through the product's rules API.
    fn add_rules(
        &self,
        client: &HttpClient,
        api: &Self::RulesApi,
        rules: &Rules,
    ) -> impl Future<Output = anyhow::Result<()>>;

    /// Whether the rules must be in before the first connection: X's v2 filtered stream
    /// refuses a connect while its app has no rules. The other products connect first, so
    /// generating the posts overlaps with opening the connections.
    fn rules_before_connect(&self) -> bool {
        false
    }

    /// What every node of a cluster must show once `rules` are in (through `api`), before
    /// any post is ingested or, for [`Benchmark::rules_before_connect`], any connection
    /// opened.
    fn with_rules(&self, api: &Self::RulesApi, rules: &Rules) -> Expected;

    /// Deletes what the run created on a server the bench does not own (the account stays).
    fn remove(
        &self,
        client: &HttpClient,
        target: &Target,
        api: &Self::RulesApi,
    ) -> impl Future<Output = anyhow::Result<()>>;

    /// How the report describes the run; `share_rule` says whether the bench added its
    /// share rule because the generated rules matched too little.
    fn setup(&self, share_rule: bool) -> Setup;
}

/// The rules a rules product generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RulePlan {
    /// How many.
    pub count: usize,
    /// The rule language of the product's rules API.
    pub dialect: Dialect,
    /// The streams they are split over (generated rule `i` goes to stream `i mod streams`).
    pub streams: usize,
}

/// A provisioned server, before any connection is open.
pub(crate) struct Provisioned<R> {
    /// The connections to open, in order (connection `i` goes to node `i mod N`).
    pub connections: Vec<Connection>,
    /// What every node of a cluster must show before the first connection.
    pub replicated: Expected,
    /// Where the rules go.
    pub rules_api: R,
}

/// One connection to open.
pub(crate) struct Connection {
    /// The stream URL, on the first node.
    pub url: Url,
    /// Whether it asks for gzip.
    pub gzip: bool,
    /// Which expected posts it must receive.
    pub share: Share,
    /// Its credentials (each v2 app has its own token).
    pub auth: Auth,
    /// The shape of the posts it delivers.
    pub lines: LineFormat,
}

/// The shape of a stream's post lines, which decides where the reader finds a post's id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LineFormat {
    /// X's native post (`{"created_at":…,"id":N,…}`), as PowerTrack, the volume streams and
    /// Powerstream deliver it.
    Native,
    /// The X API v2 line (`{"data":{…,"id":"N",…},"includes":…}`).
    V2,
}

/// The body encoding the stream connections ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// Uncompressed (no `Accept-Encoding: gzip`).
    Identity,
    /// `Accept-Encoding: gzip`.
    Gzip,
}

impl Encoding {
    /// The name the report prints.
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Identity => "identity",
            Encoding::Gzip => "gzip",
        }
    }
}
