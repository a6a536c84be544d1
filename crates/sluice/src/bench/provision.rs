//! Setting the server up for a run through its public APIs: an account, a basic-auth user
//! and the streams (PowerTrack, Firehose) or a bearer token (Powerstream) through the admin
//! API (operator spec), then the rules through the product's rules API in batches, as a
//! customer would add them.

use anyhow::{Context as _, bail, ensure};
use hyper::header::CONTENT_TYPE;
use hyper::{Method, StatusCode};
use serde_json::json;
use sluice_wire::v2;
use sluice_wire::{AddResponse, RuleInput, RulesRequest};
use url::Url;

use super::target::Target;
use crate::client::http::{Auth, Credentials, HttpClient, Reply, Request, send_waiting_out_429};

/// The account the bench creates (or reuses) on the server.
pub const ACCOUNT: &str = "sluice-bench";
/// The basic-auth user of that account.
pub const USER: &str = "bench";
/// The label of the PowerTrack stream when the run has one.
pub const LABEL: &str = "bench";

/// The labels of a run's `streams` PowerTrack streams: [`LABEL`] alone for one stream (as
/// before `--streams` existed), `bench-1` … `bench-N` for more.
pub fn powertrack_labels(streams: usize) -> Vec<String> {
    if streams <= 1 {
        vec![LABEL.to_owned()]
    } else {
        (1..=streams).map(|n| format!("{LABEL}-{n}")).collect()
    }
}
/// The labels of the Firehose streams: the bench reads 20 partitions as two streams of 10
/// (see `cmd::bench`).
pub const FIREHOSE_LABELS: [&str; 2] = ["bench-firehose-1", "bench-firehose-2"];
/// The label and product of every account's Powerstream rule set on the server.
pub const POWERSTREAM_LABEL: &str = "powerstream";

/// Rules per add request (demian85/gnip's batch size, as `sluice rules add` uses).
const ADD_BATCH: usize = 5_000;
/// Rules per Powerstream add request (X's maximum, spec §6.2).
const POWERSTREAM_ADD_BATCH: usize = 100;
/// Rule cap the server applies unless told otherwise (spec Part A).
const DEFAULT_MAX_RULES: usize = 250_000;

/// The stream a run uses and how to reach it.
pub struct Stream {
    /// The stream URL.
    pub stream_url: Url,
    /// The rules URL.
    pub rules_url: Url,
    /// The credentials of [`USER`].
    pub auth: Auth,
}

/// Creates the account, the user (with a fresh password) and one new, empty PowerTrack
/// stream per label of [`powertrack_labels`]`(streams)`, each allowing `connections`
/// connections and at least `rules` rules. A stream left by an earlier run under the same
/// label is deleted first, so the rules are exactly the ones this run adds.
pub async fn streams(
    client: &HttpClient,
    target: &Target,
    streams: usize,
    connections: usize,
    rules: usize,
) -> anyhow::Result<Vec<Stream>> {
    let auth = account(client, target).await?;
    let mut created = Vec::with_capacity(streams);
    for label in powertrack_labels(streams) {
        fresh_stream(
            client,
            target,
            &label,
            json!({
                "product": "powertrack",
                "max_connections": connections,
                "max_rules": rules.max(DEFAULT_MAX_RULES),
            }),
        )
        .await?;
        // The paths are X's, so they are built from the base the bench reaches, not from
        // the server's public URL (which may name a proxy).
        let path = format!("accounts/{ACCOUNT}/publishers/twitter/{label}.json");
        created.push(Stream {
            stream_url: target.base.join(&format!("stream/powertrack/{path}"))?,
            rules_url: target.base.join(&format!("rules/powertrack/{path}"))?,
            auth: auth.clone(),
        });
    }
    Ok(created)
}

/// Creates the account, the user (with a fresh password) and one new Firehose stream per
/// label of [`FIREHOSE_LABELS`], each allowing one connection per partition (caps count
/// per partition); returns the credentials and each stream's URL (without `partition`).
pub async fn firehose(client: &HttpClient, target: &Target) -> anyhow::Result<(Auth, Vec<Url>)> {
    let auth = account(client, target).await?;
    let mut urls = Vec::with_capacity(FIREHOSE_LABELS.len());
    for label in FIREHOSE_LABELS {
        fresh_stream(
            client,
            target,
            label,
            json!({ "product": "firehose", "max_connections": 1 }),
        )
        .await?;
        urls.push(target.base.join(&format!(
            "stream/firehose/accounts/{ACCOUNT}/publishers/twitter/{label}.json"
        ))?);
    }
    Ok((auth, urls))
}

/// How a run reaches the account's Powerstream.
pub struct Powerstream {
    /// `BASE/2/powerstream`.
    pub stream_url: Url,
    /// `BASE/2/powerstream/rules`.
    pub rules_url: Url,
    /// A bearer token of the account, created for this run.
    pub auth: Auth,
}

/// Creates the account, deletes its Powerstream rule set left by an earlier run (through
/// the admin API, which does not count against the 50 rules requests per 24 h), and creates
/// a new bearer token. The rule set is created again, empty, by the first rules request.
pub async fn powerstream(client: &HttpClient, target: &Target) -> anyhow::Result<Powerstream> {
    let (admin, account_path) = put_account(client, target).await?;
    delete_stream(client, target, POWERSTREAM_LABEL, Some("powerstream"), true).await?;
    let reply = admin_call(
        client,
        target,
        &admin,
        Method::POST,
        &format!("{account_path}/tokens"),
        json!({}),
    )
    .await?;
    #[derive(serde::Deserialize)]
    struct Created {
        token: String,
    }
    let created: Created = serde_json::from_slice(&reply.body)
        .context("creating a Powerstream token: unexpected answer")?;
    Ok(Powerstream {
        stream_url: target.base.join("2/powerstream")?,
        rules_url: target.base.join("2/powerstream/rules")?,
        auth: Auth::Bearer(created.token),
    })
}

/// Adds `rules` (value, tag) through the Powerstream rules API, 100 per request (each
/// request counts against the account's 50 per 24 h); every one must be created.
pub async fn add_powerstream_rules(
    client: &HttpClient,
    stream: &Powerstream,
    rules: &[(String, String)],
) -> anyhow::Result<()> {
    for batch in rules.chunks(POWERSTREAM_ADD_BATCH) {
        let answer: v2::AddResponse =
            add_batch(client, &stream.rules_url, &stream.auth, batch).await?;
        ensure!(
            answer.meta.summary.created == batch.len(),
            "adding Powerstream rules: {} of {} created",
            answer.meta.summary.created,
            batch.len()
        );
    }
    Ok(())
}

/// Creates (or keeps) the bench account; returns the admin credential and the account's
/// admin API path.
async fn put_account(client: &HttpClient, target: &Target) -> anyhow::Result<(Auth, String)> {
    let admin = Auth::Bearer(target.admin_token.clone());
    let account_path = format!("admin/accounts/{ACCOUNT}");
    admin_call(
        client,
        target,
        &admin,
        Method::PUT,
        &account_path,
        json!({}),
    )
    .await?;
    Ok((admin, account_path))
}

/// The account and its basic-auth user [`USER`] with a fresh password.
async fn account(client: &HttpClient, target: &Target) -> anyhow::Result<Auth> {
    let (admin, account_path) = put_account(client, target).await?;
    let password = sluice_server::auth::generate_token("pw");
    admin_call(
        client,
        target,
        &admin,
        Method::PUT,
        &format!("{account_path}/users/{USER}"),
        json!({ "password": password }),
    )
    .await?;
    Ok(Auth::Basic(Credentials {
        user: USER.to_owned(),
        password,
    }))
}

/// Deletes the streams labelled `label` (left by an earlier run), then creates one as
/// `spec` says.
async fn fresh_stream(
    client: &HttpClient,
    target: &Target,
    label: &str,
    spec: serde_json::Value,
) -> anyhow::Result<()> {
    let admin = Auth::Bearer(target.admin_token.clone());
    delete_stream(client, target, label, None, true).await?;
    admin_call(
        client,
        target,
        &admin,
        Method::PUT,
        &format!("admin/accounts/{ACCOUNT}/streams/{label}"),
        spec,
    )
    .await?;
    Ok(())
}

/// Deletes the bench account's streams labelled `label` (of `product` only, when given),
/// with their rules; a stream that does not exist is an error unless `missing_ok`.
async fn delete_stream(
    client: &HttpClient,
    target: &Target,
    label: &str,
    product: Option<&str>,
    missing_ok: bool,
) -> anyhow::Result<()> {
    let admin = Auth::Bearer(target.admin_token.clone());
    let mut url = target
        .base
        .join(&format!("admin/accounts/{ACCOUNT}/streams/{label}"))
        .context("building the admin URL")?;
    if let Some(product) = product {
        url.query_pairs_mut().append_pair("product", product);
    }
    let reply = send_waiting_out_429(
        client,
        "deleting a bench stream",
        &Request::new(Method::DELETE, &url, &admin)?,
    )
    .await?;
    ensure!(
        reply.status.is_success() || (missing_ok && reply.status == StatusCode::NOT_FOUND),
        "deleting the bench stream {label:?}: HTTP {}: {}",
        reply.status,
        reply.error_message()
    );
    Ok(())
}

/// What a run leaves on a server it does not own, to be removed at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leftover {
    /// The PowerTrack streams of [`powertrack_labels`] for this many streams.
    PowertrackStreams(usize),
    /// The Firehose streams [`FIREHOSE_LABELS`].
    FirehoseStreams,
    /// The account's Powerstream rule set (its token stays: the admin API cannot revoke
    /// tokens).
    PowerstreamRules,
}

/// Deletes what a run created, with its rules (left tidy on a server the bench does not
/// own); the account stays.
pub async fn remove(
    client: &HttpClient,
    target: &Target,
    leftover: Leftover,
) -> anyhow::Result<()> {
    match leftover {
        Leftover::PowertrackStreams(streams) => {
            for label in powertrack_labels(streams) {
                delete_stream(client, target, &label, None, false).await?;
            }
            Ok(())
        }
        Leftover::FirehoseStreams => {
            for label in FIREHOSE_LABELS {
                delete_stream(client, target, label, None, false).await?;
            }
            Ok(())
        }
        Leftover::PowerstreamRules => {
            delete_stream(client, target, POWERSTREAM_LABEL, Some("powerstream"), true).await
        }
    }
}

/// Adds `rules` (value, tag) through the rules API, in batches; every one must be created.
pub async fn add_rules(
    client: &HttpClient,
    stream: &Stream,
    rules: &[(String, String)],
) -> anyhow::Result<()> {
    for batch in rules.chunks(ADD_BATCH) {
        let answer: AddResponse = add_batch(client, &stream.rules_url, &stream.auth, batch).await?;
        ensure!(
            answer.summary.created == batch.len(),
            "adding rules: {} of {} created",
            answer.summary.created,
            batch.len()
        );
    }
    Ok(())
}

/// One add request of `batch` to `url` (PowerTrack's and Powerstream's bodies are the
/// same); it must be answered 201 with a body of type `T`.
async fn add_batch<T: serde::de::DeserializeOwned>(
    client: &HttpClient,
    url: &Url,
    auth: &Auth,
    batch: &[(String, String)],
) -> anyhow::Result<T> {
    let body = RulesRequest {
        rules: batch
            .iter()
            .map(|(value, tag)| RuleInput {
                value: value.clone(),
                tag: Some(tag.clone()),
                id: None,
                id_str: None,
            })
            .collect(),
    };
    let request = Request::new(Method::POST, url, auth)?
        .header(CONTENT_TYPE, "application/json")
        .body(sluice_wire::to_vec(&body));
    let reply = send_waiting_out_429(client, "adding rules", &request).await?;
    if reply.status != StatusCode::CREATED {
        bail!(
            "adding rules: HTTP {}: {}",
            reply.status,
            reply.error_message()
        );
    }
    serde_json::from_slice(&reply.body).context("adding rules: unexpected answer")
}

/// One admin API call that must succeed (200 or 201).
async fn admin_call(
    client: &HttpClient,
    target: &Target,
    admin: &Auth,
    method: Method,
    path: &str,
    body: serde_json::Value,
) -> anyhow::Result<Reply> {
    let url = target.base.join(path).context("building the admin URL")?;
    let request = Request::new(method.clone(), &url, admin)?
        .header(CONTENT_TYPE, "application/json")
        .body(body.to_string());
    let reply = send_waiting_out_429(client, "admin API", &request).await?;
    ensure!(
        reply.status.is_success(),
        "{method} {url}: HTTP {}: {}",
        reply.status,
        reply.error_message()
    );
    Ok(reply)
}
