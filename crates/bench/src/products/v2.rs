//! `sluice bench v2`: the X API v2 filtered stream (`/2/tweets/search/stream`). Rules split
//! over `bench-v2-1` … `bench-v2-N` apps of the bench account (each app has one filtered
//! stream, whose rules are the app's rules, and at most 2 connections), connection `j`
//! reading with app `j mod N`'s bearer token, each expecting what its own app's rules
//! match; gzip, with field expansion on unless asked otherwise, so every post is converted
//! to its v2 line as a client asking for fields would get it.
//!
//! The flow differs from PowerTrack's in one step: the v2 filtered stream refuses a
//! connect while the app has no rules (409 `RuleConfigurationIssue`), so the rules are
//! added before the connections open ([`Benchmark::rules_before_connect`]).

use anyhow::{Context as _, ensure};
use hyper::header::CONTENT_TYPE;
use hyper::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sluice_client::http::{Auth, HttpClient, Request, send_waiting_out_429};
use sluice_rules::Dialect;
use sluice_store::{Product as Api, RulesSpec};
use sluice_wire::v2_rules::AddResponse;
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

/// The v2 filtered stream's rules API as the server knows it: its row of the product table.
const RULES: RulesSpec = match Api::V2Filtered.spec().rules {
    Some(rules) => rules,
    None => panic!("the v2 filtered stream has a rules API"),
};
/// Connections per app (each app has one filtered stream with this cap).
pub const CONNECTIONS_PER_APP: usize = Api::V2Filtered.spec().max_connections as usize;
/// Rules per app.
pub const MAX_RULES_PER_APP: usize = RULES.max_rules as usize;
/// How the admin API and the account view name the product.
const PRODUCT: &str = Api::V2Filtered.spec().name;
/// Rules per add request: X documents no per-request cap for v2; 1,000 keeps each body far
/// under the rules body limit and a 25,000-rule app within 25 of its 100 rule changes per
/// 15 minutes.
const ADD_BATCH: usize = 1_000;
/// The fields and expansions the connections ask for with [`V2::expansions`] on: the
/// post's time, author, entities and counts, and its author's user object in `includes`.
pub const EXPANDED_QUERY: &str = "tweet.fields=created_at,author_id,entities,public_metrics\
     &expansions=author_id&user.fields=username,public_metrics";

/// The v2 benchmark's own parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V2 {
    /// Rules generated, split over the apps.
    pub rules: usize,
    /// Stream connections, spread over the apps (at most [`CONNECTIONS_PER_APP`] each).
    pub connections: usize,
    /// Apps, each with its own filtered stream, from `connections / 2` (rounded up) to
    /// `connections`.
    pub apps: usize,
    /// Whether the connections ask for [`EXPANDED_QUERY`] (otherwise X's default line:
    /// `id`, `text`, `edit_history_tweet_ids`).
    pub expansions: bool,
}

impl V2 {
    /// The default number of apps for `connections` connections: as few as the per-app
    /// connection cap allows, which is also X's redundant pair per stream.
    pub fn default_apps(connections: usize) -> usize {
        connections.div_ceil(CONNECTIONS_PER_APP)
    }

    /// The stream URL every connection reads (with its field query).
    fn stream_url(&self, base: &Url) -> anyhow::Result<Url> {
        let mut url = base.join("2/tweets/search/stream")?;
        if self.expansions {
            url.set_query(Some(EXPANDED_QUERY));
        }
        Ok(url)
    }
}

/// One app the bench created: its id (the label of its filtered stream) and bearer token.
pub struct App {
    id: String,
    auth: Auth,
}

/// How a run reaches its apps' rules.
pub struct RulesApi {
    /// `BASE/2/tweets/search/stream/rules`.
    rules_url: Url,
    /// The apps, in order.
    apps: Vec<App>,
}

/// The answer of `POST /admin/accounts/{account}/apps` the bench reads.
#[derive(Deserialize)]
struct CreatedApp {
    app_id: String,
    bearer_token: String,
}

/// A rule of a v2 add request.
#[derive(Serialize)]
struct NewRule<'a> {
    value: &'a str,
    tag: &'a str,
}

impl Benchmark for V2 {
    type RulesApi = RulesApi;

    fn name(&self) -> &'static str {
        "v2"
    }

    /// PowerTrack's target: the v2 stream delivers the same matches in another shape.
    fn goal(&self) -> Goal {
        super::powertrack::GOAL
    }

    fn rules(&self) -> Option<RulePlan> {
        Some(RulePlan {
            count: self.rules,
            dialect: Dialect::V2,
            streams: self.apps,
        })
    }

    /// The v2 filtered stream refuses a connect while its app has no rules.
    fn rules_before_connect(&self) -> bool {
        true
    }

    /// Creates the account and one new app per `bench-v2-n` (deleted with their streams
    /// by [`Benchmark::remove`]). The apps' filtered streams are created by their first rules
    /// request.
    async fn provision(
        &self,
        client: &HttpClient,
        target: &Target,
    ) -> anyhow::Result<Provisioned<RulesApi>> {
        let account_path = provision::put_account(client, target).await?;
        let mut apps = Vec::with_capacity(self.apps);
        for n in 1..=self.apps {
            let reply = provision::admin_call(
                client,
                target,
                Method::POST,
                &format!("{account_path}/apps"),
                json!({ "name": format!("bench-v2-{n}") }),
            )
            .await?;
            let created: CreatedApp = serde_json::from_slice(&reply.body)
                .context("creating a v2 app: unexpected answer")?;
            apps.push(App {
                id: created.app_id,
                auth: Auth::Bearer(created.bearer_token),
            });
        }
        let url = self.stream_url(&target.base)?;
        // Connection j reads with app j mod N, as PowerTrack's connection j reads stream
        // j mod N.
        let connections = (0..self.connections)
            .map(|j| Connection {
                url: url.clone(),
                gzip: true,
                share: Share::Stream((j % self.apps) as u32),
                auth: apps[j % self.apps].auth.clone(),
                lines: LineFormat::V2,
            })
            .collect();
        Ok(Provisioned {
            connections,
            // The apps replicate with the account; their streams come with the rules.
            replicated: Expected::default(),
            rules_api: RulesApi {
                rules_url: target.base.join("2/tweets/search/stream/rules")?,
                apps,
            },
        })
    }

    /// Adds each app's rules through the v2 rules API, [`ADD_BATCH`] per request; every
    /// one must be created.
    async fn add_rules(
        &self,
        client: &HttpClient,
        api: &RulesApi,
        rules: &Rules,
    ) -> anyhow::Result<()> {
        progress(&format!(
            "adding {} rules to {} apps",
            rules.rules.len(),
            api.apps.len()
        ));
        for (n, app) in api.apps.iter().enumerate() {
            let own = rules.of_stream(n);
            ensure!(
                own.len() <= MAX_RULES_PER_APP,
                "app {} would get {} rules, over the v2 filtered stream's {MAX_RULES_PER_APP}: \
                 use more --apps or fewer --rules",
                n + 1,
                own.len()
            );
            for batch in own.chunks(ADD_BATCH) {
                let answer = add_batch(client, &api.rules_url, &app.auth, batch).await?;
                ensure!(
                    answer.meta.summary.created == batch.len(),
                    "adding v2 rules: {} of {} created",
                    answer.meta.summary.created,
                    batch.len()
                );
            }
        }
        Ok(())
    }

    fn with_rules(&self, api: &RulesApi, rules: &Rules) -> Expected {
        Expected {
            users: Vec::new(),
            streams: api
                .apps
                .iter()
                .enumerate()
                .map(|(n, app)| ExpectedStream {
                    label: app.id.clone(),
                    product: PRODUCT,
                    rules: Some(rules.of_stream(n).len()),
                })
                .collect(),
            token: None,
        }
    }

    /// Deletes the apps, with their streams and rules.
    async fn remove(
        &self,
        client: &HttpClient,
        target: &Target,
        api: &RulesApi,
    ) -> anyhow::Result<()> {
        for app in &api.apps {
            provision::delete_app(client, target, &app.id).await?;
        }
        Ok(())
    }

    fn setup(&self, share_rule: bool) -> Setup {
        let apps = match self.apps {
            1 => "1 app".to_owned(),
            n if share_rule => format!("{} apps (the share rule on each)", thousands(n as u64)),
            n => format!("{} apps", thousands(n as u64)),
        };
        let fields = if self.expansions {
            EXPANDED_QUERY
        } else {
            "default fields"
        };
        let share_rule = share_rule.then_some(POWERSTREAM_SHARE_RULE);
        Setup {
            summary: format!(
                "{}, {apps}, {} connections, {fields}",
                rules_clause(self.rules, share_rule),
                thousands(self.connections as u64)
            ),
            rules: Some(self.rules),
            share_rule,
            streams: self.apps,
            partitions: None,
            connections: self.connections,
            encoding: Encoding::Gzip,
        }
    }
}

/// One v2 add request of `batch` (value, tag) to `url`; it must be answered 200 with X's
/// add response.
async fn add_batch(
    client: &HttpClient,
    url: &Url,
    auth: &Auth,
    batch: &[(String, String)],
) -> anyhow::Result<AddResponse> {
    let add: Vec<NewRule<'_>> = batch
        .iter()
        .map(|(value, tag)| NewRule { value, tag })
        .collect();
    let request = Request::new(Method::POST, url, auth)?
        .header(CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(&json!({ "add": add }))?);
    let reply = send_waiting_out_429(client, "adding v2 rules", &request).await?;
    ensure!(
        reply.status == StatusCode::OK,
        "adding v2 rules: HTTP {}: {}",
        reply.status,
        reply.error_message()
    );
    serde_json::from_slice(&reply.body).context("adding v2 rules: unexpected answer")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_default_to_pairs_of_connections() {
        assert_eq!(V2::default_apps(1), 1);
        assert_eq!(V2::default_apps(2), 1);
        assert_eq!(V2::default_apps(3), 2);
        assert_eq!(V2::default_apps(100), 50);
    }

    #[test]
    fn connections_ask_for_the_expanded_fields_or_none() {
        let base = Url::parse("http://127.0.0.1:9/").expect("valid URL");
        let mut bench = V2 {
            rules: 10,
            connections: 2,
            apps: 1,
            expansions: true,
        };
        let url = bench.stream_url(&base).expect("joins");
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(url.path(), "/2/tweets/search/stream");
        assert_eq!(
            pairs,
            [
                (
                    "tweet.fields".to_owned(),
                    "created_at,author_id,entities,public_metrics".to_owned()
                ),
                ("expansions".to_owned(), "author_id".to_owned()),
                (
                    "user.fields".to_owned(),
                    "username,public_metrics".to_owned()
                ),
            ]
        );
        // Every name is one the server knows (an unknown one is a 400 at connect).
        let fields = sluice_wire::v2_post::V2Fields::parse(
            pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        );
        assert!(fields.is_ok());
        bench.expansions = false;
        assert_eq!(bench.stream_url(&base).expect("joins").query(), None);
    }
}
