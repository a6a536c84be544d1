//! `sluice serve --demo`: makes a fresh install useful at once (docs/operator-interface.md, "`--demo`").
//!
//! [`provision`] creates, idempotently, the account `demo` with the basic-auth user
//! `demo`/`demo`, a PowerTrack stream, a Decahose stream and a compliance firehose labelled
//! `prod`, a Powerstream
//! bearer token, a few example PowerTrack rules and a couple of Powerstream rules. [`start_firehose`] then feeds synthetic
//! posts from `sluice_synth` into the pipeline at a steady rate, exactly as the ingest API
//! would, until the server shuts down; one post in [`DELETED_ONE_IN`] is deleted a tick
//! later, so the compliance firehose has X's `delete` events to show. [`Demo::instructions`] is the text printed at start:
//! the URLs and ready-to-paste `curl` commands.
//!
//! Idempotence across restarts: existing records are reused and never overwritten (a
//! stream keeps the limits an operator gave it), except that the user's password is reset
//! to `demo` if it was changed, so the printed commands always work. Example rules whose
//! value already exists are skipped; one an operator deleted comes back at the next start.
//! The Powerstream token is kept in the store's settings table (in clear: it is a demo
//! credential, printed at every start) so that every start prints the same, valid token.
//! Likewise a v2 app `demo` (its consumer key and secret kept in the settings table), with
//! a few example rules on its filtered stream, so the X API v2 streams work at once.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use bytes::Bytes;
use sluice_model::{PostView, parse_post};
use sluice_rules::Dialect;
use sluice_store::{AddOutcome, Product, StoreError, StoredRule, StreamLimits, StreamRef};
use sluice_synth::PostGenerator;
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};

use crate::auth::{
    IssuedToken, hash_password, issue_powerstream_token, token_hash, verify_password,
};
use crate::changes::{self, ChangeError, RuleToAdd};
use crate::clock::now_ms;
use crate::pipeline::{DECAHOSE_PARTITIONS, PublishError};
use crate::post::{IngestedPost, ParsedPost, PostBody};
use crate::registry::LiveStream;
use crate::state::AppState;
use crate::{telemetry, urls};

/// The demo account.
pub const ACCOUNT: &str = "demo";
/// The demo account's basic-auth user.
pub const USERNAME: &str = "demo";
/// That user's password.
pub const PASSWORD: &str = "demo";
/// The label of the demo's PowerTrack and Decahose streams.
pub const LABEL: &str = "prod";

/// The example PowerTrack rules (value, tag): each matches a good share of the synthetic
/// firehose, and together they show hashtags, phrases, cashtags, negation and operators.
pub const EXAMPLE_RULES: &[(&str, &str)] = &[
    ("(#NFL OR #NBA OR #WorldCup) -is:retweet", "sports"),
    ("#AI OR \"artificial intelligence\"", "ai"),
    ("climate (change OR #ClimateChange)", "climate"),
    ("$TSLA OR $AAPL OR $NVDA", "markets"),
    ("has:media lang:en", "english-media"),
    ("amor (lang:es OR lang:pt)", "amor"),
    ("lang:ja has:links", "japanese-links"),
];

/// The example Powerstream rules (value, tag): only operators Powerstream offers.
pub const POWERSTREAM_EXAMPLE_RULES: &[(&str, &str)] = &[
    ("\"climate change\" -is:retweet", "climate"),
    ("coffee lang:en", "coffee"),
];

/// The example rules of the demo app's v2 filtered stream (value, tag).
pub const V2_EXAMPLE_RULES: &[(&str, &str)] = &[
    ("(#AI OR #NBA) -is:retweet", "ai-or-nba"),
    ("coffee lang:en", "coffee"),
];

/// Where the demo app's consumer key and secret are kept (store settings table).
const APP_SETTING: &str = "demo.v2_app";

/// The rule the printed "add a rule" command adds (not one of [`EXAMPLE_RULES`]).
const SAMPLE_NEW_RULE: &str = r##"{"rules":[{"value":"#NBA lang:en","tag":"nba"}]}"##;

/// Where the demo's Powerstream token is kept (store settings table).
const TOKEN_SETTING: &str = "demo.powerstream_token";

/// What `--demo` set up, for the start banner.
#[derive(Debug, Clone)]
pub struct Demo {
    /// The demo PowerTrack stream.
    pub powertrack: StreamRef,
    /// The demo Decahose stream.
    pub decahose: StreamRef,
    /// The compliance firehose.
    pub compliance: StreamRef,
    /// The Powerstream bearer token of the demo account.
    pub powerstream_token: String,
    /// The bearer token of the demo account's v2 app.
    pub v2_bearer_token: String,
    /// Example rules created by this start (0 when they all existed already).
    pub rules_added: usize,
    /// Rules on the PowerTrack stream now.
    pub rule_count: usize,
    /// The base URL the printed commands use.
    pub base_url: String,
}

/// Creates whatever of the demo setup is missing (see the module docs) and returns it.
pub async fn provision(state: &AppState) -> anyhow::Result<Demo> {
    changes::put_account(state, ACCOUNT)
        .await
        .context("creating the demo account")?;
    ensure_user(state).await?;
    let powertrack = ensure_stream(state, Product::PowerTrack).await?;
    let decahose = ensure_stream(state, Product::Decahose).await?;
    let compliance = ensure_stream(state, Product::Compliance).await?;
    let rules_added =
        add_example_rules(state, &powertrack, EXAMPLE_RULES, Dialect::PowerTrack).await?;
    let powerstream = crate::api::powerstream::ensure_stream(state, ACCOUNT)
        .await
        .context("creating the demo Powerstream rule set")?;
    add_example_rules(
        state,
        &powerstream,
        POWERSTREAM_EXAMPLE_RULES,
        Dialect::Powerstream,
    )
    .await?;
    let powerstream_token = ensure_token(state).await?;
    let app = ensure_app(state).await?;
    let filtered = crate::api::v2::ensure_stream(state, &app.stored, Product::V2Filtered)
        .await
        .context("creating the demo app's filtered stream")?;
    add_example_rules(state, &filtered, V2_EXAMPLE_RULES, Dialect::V2).await?;
    Ok(Demo {
        v2_bearer_token: app.bearer_token,
        powertrack: powertrack.key.clone(),
        decahose: decahose.key.clone(),
        compliance: compliance.key.clone(),
        powerstream_token,
        rules_added,
        rule_count: powertrack.rules.len(),
        base_url: state.settings.public_url.clone(),
    })
}

/// The user `demo` with password `demo`: created if missing, reset if changed.
async fn ensure_user(state: &AppState) -> anyhow::Result<()> {
    let stored = state
        .blocking(|s| s.password_hash(ACCOUNT, USERNAME))
        .await
        .context("reading the demo user")?;
    let current = tokio::task::spawn_blocking(move || {
        stored.is_some_and(|hash| verify_password(PASSWORD, &hash))
    })
    .await
    .context("verifying the demo password")?;
    if current {
        return Ok(());
    }
    let hash = tokio::task::spawn_blocking(|| hash_password(PASSWORD))
        .await
        .context("hashing the demo password")?;
    changes::put_user(state, ACCOUNT, USERNAME, hash)
        .await
        .context("creating the demo user")?;
    Ok(())
}

/// The demo stream of `product`: created with the default limits if missing (an existing
/// stream keeps its limits), and registered as live.
async fn ensure_stream(state: &AppState, product: Product) -> anyhow::Result<Arc<LiveStream>> {
    let key = StreamRef {
        account: ACCOUNT.to_owned(),
        product,
        label: LABEL.to_owned(),
    };
    let limits = StreamLimits {
        max_connections: state.settings.default_max_connections,
        max_rules: state.settings.default_max_rules,
    };
    changes::ensure_stream(state, &key, limits)
        .await
        .with_context(|| format!("creating the demo {product} stream"))
}

/// Adds the `examples` (parsed as `dialect`) whose values the stream does not have yet, the way the rules API
/// adds rules: under the stream's rules gate, store first, then the matcher. Returns how
/// many were created.
async fn add_example_rules(
    state: &AppState,
    live: &Arc<LiveStream>,
    examples: &[(&str, &str)],
    dialect: Dialect,
) -> anyhow::Result<usize> {
    let mut to_add = Vec::with_capacity(examples.len());
    for &(value, tag) in examples {
        let tree = sluice_rules::parse_with(value, dialect)
            .map_err(|e| anyhow!("example rule {value:?} is invalid: {e}"))?;
        to_add.push(RuleToAdd {
            value: value.to_owned(),
            tag: Some(tag.to_owned()),
            tree,
        });
    }
    let outcomes = match changes::add_rules(state, live, to_add).await {
        Ok(outcomes) => outcomes,
        Err(ChangeError::Store(StoreError::RuleLimit { .. })) => {
            tracing::warn!("the demo stream is at its rule limit: example rules not added");
            return Ok(0);
        }
        Err(e) => return Err(e).context("adding the example rules"),
    };
    let created: Vec<&StoredRule> = outcomes
        .iter()
        .filter_map(|outcome| match outcome {
            AddOutcome::Created(rule) => Some(rule),
            AddOutcome::Existing(_) => None,
        })
        .collect();
    if !created.is_empty() {
        tracing::info!(rules = created.len(), "added the demo's example rules");
    }
    Ok(created.len())
}

/// The demo account's Powerstream token: the one saved by an earlier start if the store
/// still knows it, else a new one.
async fn ensure_token(state: &AppState) -> anyhow::Result<String> {
    let saved = state
        .blocking(|s| {
            let Some(token) = s.setting(TOKEN_SETTING)? else {
                return Ok(None);
            };
            let ours = s.token_account(&token_hash(&token))?.as_deref() == Some(ACCOUNT);
            Ok::<_, StoreError>(ours.then_some(token))
        })
        .await
        .context("reading the demo Powerstream token")?;
    if let Some(token) = saved {
        return Ok(token);
    }
    let IssuedToken { token, prefix } = issue_powerstream_token();
    changes::add_token(state, ACCOUNT, token_hash(&token), &prefix, Some("demo"))
        .await
        .context("creating the demo Powerstream token")?;
    let saved = token.clone();
    state
        .blocking(move |s| s.set_setting(TOKEN_SETTING, &saved))
        .await
        .context("saving the demo Powerstream token")?;
    Ok(token)
}

/// The demo app and its bearer token.
struct DemoApp {
    stored: sluice_store::StoredApp,
    bearer_token: String,
}

/// The demo account's v2 app: the one saved by an earlier start if the store still knows
/// it (and its secret), else a new one.
async fn ensure_app(state: &AppState) -> anyhow::Result<DemoApp> {
    use crate::auth::apps::{IssuedApp, bearer_for_secret, issue_app, secret_matches};
    let saved = state
        .blocking(|s| {
            let Some(saved) = s.setting(APP_SETTING)? else {
                return Ok(None);
            };
            let Some((key, secret)) = saved.split_once(':') else {
                return Ok(None);
            };
            let app = s.app_by_consumer_key(key)?.filter(|app| {
                app.account == ACCOUNT && secret_matches(secret, &app.consumer_secret_hash)
            });
            Ok::<_, StoreError>(app.map(|app| (app, secret.to_owned())))
        })
        .await
        .context("reading the demo app")?;
    if let Some((stored, secret)) = saved {
        return Ok(DemoApp {
            stored,
            bearer_token: bearer_for_secret(&secret),
        });
    }
    let issued = issue_app();
    let stored = issued.to_stored(ACCOUNT, "demo", now_ms());
    let IssuedApp {
        consumer_key,
        consumer_secret,
        bearer_token,
        ..
    } = issued;
    changes::add_app(state, &stored)
        .await
        .context("creating the demo app")?;
    let saved = format!("{consumer_key}:{consumer_secret}");
    state
        .blocking(move |s| s.set_setting(APP_SETTING, &saved))
        .await
        .context("saving the demo app")?;
    Ok(DemoApp {
        stored,
        bearer_token,
    })
}

/// Starts the synthetic firehose: `posts_per_second` posts (on average over each second)
/// from [`PostGenerator`], stamped with the current time, handed to the pipeline like
/// ingested posts from this node's datacenter. Ends when the server shuts down.
///
/// # Panics
/// If `posts_per_second` is not positive and finite (the binary validates the flag).
pub fn start_firehose(state: AppState, posts_per_second: f64) -> JoinHandle<()> {
    assert!(
        posts_per_second.is_finite() && posts_per_second > 0.0,
        "the demo rate must be positive"
    );
    tokio::spawn(run_firehose(state, posts_per_second))
}

/// One demo post in this many is deleted a tick after it was published.
pub const DELETED_ONE_IN: u64 = 50;

/// The compliance firehose's partitions, from its row of the table.
const COMPLIANCE_PARTITIONS: u32 = match Product::Compliance.spec().partitions {
    Some(n) => n,
    None => panic!("the compliance firehose has partitions"),
};

/// How often the firehose wakes up to publish the posts that are due.
const TICK: Duration = Duration::from_millis(50);

async fn run_firehose(state: AppState, rate: f64) {
    let seed = u64::try_from(now_ms()).unwrap_or_default();
    let mut generator = PostGenerator::new(seed);
    let datacenter: Arc<str> = state.settings.datacenter.as_str().into();
    // After a stall (a suspended laptop) catch up by at most one second's worth.
    let max_batch = rate.ceil().max(1.0) as u64;
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let start = Instant::now();
    let mut sent: u64 = 0;
    let mut deletes: Vec<IngestedPost> = Vec::new();
    tracing::info!(posts_per_second = rate, "demo firehose started");
    loop {
        tokio::select! {
            biased;
            () = state.shutdown.cancelled() => break,
            _ = ticks.tick() => {}
        }
        let due = (start.elapsed().as_secs_f64() * rate) as u64;
        sent = sent.max(due.saturating_sub(max_batch));
        if due <= sent {
            continue;
        }
        let now = u64::try_from(now_ms()).unwrap_or_default();
        // Last tick's deletes first, then this tick's posts.
        let mut posts: Vec<IngestedPost> = std::mem::take(&mut deletes);
        posts.extend((sent..due).filter_map(|n| {
            let bytes = Bytes::from(generator.next_post_at(now));
            // The demo's posts enter here rather than through ingest: they are parsed
            // here, once, for their id and for matching. Every generated post parses and
            // has an id.
            let parsed = ParsedPost::try_new(bytes, |b| parse_post(b)).ok()?;
            let view = parsed.borrow_dependent();
            let id = view.id()?;
            if n % DELETED_ONE_IN == 0
                && let Some(delete) = delete_event(view, now)
            {
                deletes.push(IngestedPost {
                    body: PostBody::Raw(delete),
                    id,
                    datacenter: datacenter.clone(),
                });
            }
            Some(IngestedPost {
                body: PostBody::Parsed(parsed),
                id,
                datacenter: datacenter.clone(),
            })
        }));
        sent = due;
        telemetry::posts_ingested(posts.len() as u64);
        match state.bus.publish(posts).await {
            Ok(()) => {}
            // Logged where it failed; the next batch may get through.
            Err(PublishError::NotStored(_) | PublishError::Cluster(_)) => {}
            Err(PublishError::Stopped(_)) => break,
        }
    }
    tracing::info!(posts = sent, "demo firehose stopped");
}

/// X's `delete` event for `post`, stamped `now_ms`.
fn delete_event(post: &PostView<'_>, now_ms: u64) -> Option<Bytes> {
    let id = post.id()?;
    let user = post.user.as_ref().and_then(|u| u.id_str.or(u.id))?;
    let event = serde_json::json!({"delete": {
        "status": {"id": id, "id_str": id.to_string(), "user_id": user, "user_id_str": user.to_string()},
        "timestamp_ms": now_ms.to_string(),
    }});
    Some(Bytes::from(event.to_string()))
}

impl Demo {
    /// The URLs and ready-to-paste `curl` commands printed at start. `ca_cert` is the
    /// certificate clients must trust (self-signed TLS), added to every command as
    /// `--cacert`.
    pub fn instructions(&self, ca_cert: Option<&Path>) -> String {
        let base = self.base_url.as_str();
        let stream = urls::stream_url(base, &self.powertrack);
        let rules =
            urls::rules_url(base, &self.powertrack).expect("PowerTrack streams have a rules URL");
        let decahose = urls::stream_url(base, &self.decahose);
        let compliance = urls::stream_url(base, &self.compliance);
        let curl = match ca_cert {
            Some(cert) => format!("curl --cacert '{}'", cert.display()),
            None => "curl".to_owned(),
        };
        let auth = format!("--compressed -u {USERNAME}:{PASSWORD}");
        let token = &self.powerstream_token;
        let v2 = &self.v2_bearer_token;
        format!(
            "\
Demo: account '{ACCOUNT}', basic auth {USERNAME}:{PASSWORD}, a synthetic firehose running.
  Console            {base}/console/  (customer: account {ACCOUNT}, username {USERNAME}, password {PASSWORD})
  PowerTrack stream  {stream}
  PowerTrack rules   {rules}  ({rule_count} rules)
  Decahose stream    {decahose}?partition=N  (N = 1..{DECAHOSE_PARTITIONS})
  Compliance         {compliance}?partition=N  (N = 1..{COMPLIANCE_PARTITIONS}; deletes of demo posts)
  Powerstream        {base}/2/powerstream  (Authorization: Bearer {token})
  X API v2           {base}/2/tweets/search/stream  (app 'demo', Authorization: Bearer {v2})

Try:
  # the PowerTrack stream: matching posts with their matching_rules
  {curl} {auth} '{stream}'
  # list the rules
  {curl} {auth} '{rules}'
  # add a rule
  {curl} {auth} -H 'Content-Type: application/json' -d '{SAMPLE_NEW_RULE}' '{rules}'
  # the Decahose, partition 1 (and 2)
  {curl} {auth} '{decahose}?partition=1'
  # the compliance firehose, partition 1 (of {COMPLIANCE_PARTITIONS}): the demo's deletes
  {curl} {auth} '{compliance}?partition=1'
  # Powerstream: its rules, then the stream
  {curl} -H 'Authorization: Bearer {token}' '{base}/2/powerstream/rules'
  {curl} -H 'Authorization: Bearer {token}' '{base}/2/powerstream'
  # X API v2: the demo app's rules, its filtered stream with the authors expanded, the 1 % sample
  {curl} -H 'Authorization: Bearer {v2}' '{base}/2/tweets/search/stream/rules'
  {curl} -H 'Authorization: Bearer {v2}' '{base}/2/tweets/search/stream?expansions=author_id&user.fields=username'
  {curl} -H 'Authorization: Bearer {v2}' '{base}/2/tweets/sample/stream'
",
            rule_count = self.rule_count,
        )
    }
}
