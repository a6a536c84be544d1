//! Setting the server up for a run through its public APIs: an account, a basic-auth user
//! and a PowerTrack stream through the admin API (operator spec), then the rules through
//! the rules API in batches, as a customer would add them.

use anyhow::{Context as _, bail, ensure};
use hyper::header::CONTENT_TYPE;
use hyper::{Method, StatusCode};
use serde_json::json;
use sluice_wire::{AddResponse, RuleInput, RulesRequest};
use url::Url;

use super::target::Target;
use crate::client::http::{Auth, Credentials, HttpClient, Reply, Request, send_waiting_out_429};

/// The account the bench creates (or reuses) on the server.
pub const ACCOUNT: &str = "sluice-bench";
/// The basic-auth user of that account.
pub const USER: &str = "bench";
/// The label of the PowerTrack stream.
pub const LABEL: &str = "bench";

/// Rules per add request (demian85/gnip's batch size, as `sluice rules add` uses).
const ADD_BATCH: usize = 5_000;
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

/// Creates the account, the user (with a fresh password) and a new, empty PowerTrack
/// stream allowing `connections` connections. A stream left by an earlier run is deleted
/// first, so the rules are exactly the ones this run adds.
pub async fn stream(
    client: &HttpClient,
    target: &Target,
    connections: usize,
    rules: usize,
) -> anyhow::Result<Stream> {
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
    let stream_path = format!("{account_path}/streams/{LABEL}");
    let url = target
        .base
        .join(&stream_path)
        .context("building the admin URL")?;
    let reply = send_waiting_out_429(
        client,
        "deleting the previous bench stream",
        &Request::new(Method::DELETE, &url, &admin)?,
    )
    .await?;
    ensure!(
        reply.status.is_success() || reply.status == StatusCode::NOT_FOUND,
        "deleting the previous bench stream: HTTP {}: {}",
        reply.status,
        reply.error_message()
    );
    admin_call(
        client,
        target,
        &admin,
        Method::PUT,
        &stream_path,
        json!({
            "product": "powertrack",
            "max_connections": connections,
            "max_rules": rules.max(DEFAULT_MAX_RULES),
        }),
    )
    .await?;
    // The paths are X's, so they are built from the base the bench reaches, not from the
    // server's public URL (which may name a proxy).
    let path = format!("accounts/{ACCOUNT}/publishers/twitter/{LABEL}.json");
    Ok(Stream {
        stream_url: target.base.join(&format!("stream/powertrack/{path}"))?,
        rules_url: target.base.join(&format!("rules/powertrack/{path}"))?,
        auth: Auth::Basic(Credentials {
            user: USER.to_owned(),
            password,
        }),
    })
}

/// Deletes the bench stream and its rules (left tidy on a server the bench does not own).
pub async fn remove_stream(client: &HttpClient, target: &Target) -> anyhow::Result<()> {
    let admin = Auth::Bearer(target.admin_token.clone());
    let url = target
        .base
        .join(&format!("admin/accounts/{ACCOUNT}/streams/{LABEL}"))?;
    let reply = send_waiting_out_429(
        client,
        "deleting the bench stream",
        &Request::new(Method::DELETE, &url, &admin)?,
    )
    .await?;
    ensure!(
        reply.status.is_success(),
        "deleting the bench stream: HTTP {}: {}",
        reply.status,
        reply.error_message()
    );
    Ok(())
}

/// Adds `rules` (value, tag) through the rules API, in batches; every one must be created.
pub async fn add_rules(
    client: &HttpClient,
    stream: &Stream,
    rules: &[(String, String)],
) -> anyhow::Result<()> {
    for batch in rules.chunks(ADD_BATCH) {
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
        let request = Request::new(Method::POST, &stream.rules_url, &stream.auth)?
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
        let answer: AddResponse =
            serde_json::from_slice(&reply.body).context("adding rules: unexpected answer")?;
        ensure!(
            answer.summary.created == batch.len(),
            "adding rules: {} of {} created",
            answer.summary.created,
            batch.len()
        );
    }
    Ok(())
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
