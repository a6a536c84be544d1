//! What every product's provisioning shares: the bench account and its basic-auth user,
//! fresh streams and their deletion through the admin API, and one batch of rules through
//! a rules API, as an operator and a customer would do it. What each product creates is in
//! its own file under `products/`.

use anyhow::{Context as _, bail, ensure};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hyper::header::CONTENT_TYPE;
use hyper::{Method, StatusCode};
use serde_json::json;
use sluice_wire::{RuleInput, RulesRequest};
use url::Url;

use crate::target::Target;
use sluice_client::http::{Auth, Credentials, HttpClient, Reply, Request, send_waiting_out_429};

/// The account the bench creates (or reuses) on the server.
pub const ACCOUNT: &str = "sluice-bench";
/// The basic-auth user of that account.
pub const USER: &str = "bench";

/// Creates (or keeps) the bench account; returns its admin API path.
pub(crate) async fn put_account(client: &HttpClient, target: &Target) -> anyhow::Result<String> {
    let account_path = format!("admin/accounts/{ACCOUNT}");
    admin_call(client, target, Method::PUT, &account_path, json!({})).await?;
    Ok(account_path)
}

/// The account and its basic-auth user [`USER`] with a fresh password.
pub(crate) async fn account(client: &HttpClient, target: &Target) -> anyhow::Result<Auth> {
    let account_path = put_account(client, target).await?;
    let password = secret("pw");
    admin_call(
        client,
        target,
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

/// Deletes the stream of `spec`'s product labelled `label` (left by an earlier run), then
/// creates one as `spec` says.
pub(crate) async fn fresh_stream(
    client: &HttpClient,
    target: &Target,
    label: &str,
    spec: serde_json::Value,
) -> anyhow::Result<()> {
    let product = spec["product"].as_str();
    delete_stream(client, target, label, product, true).await?;
    admin_call(
        client,
        target,
        Method::PUT,
        &format!("admin/accounts/{ACCOUNT}/streams/{label}"),
        spec,
    )
    .await?;
    Ok(())
}

/// Deletes the bench account's stream labelled `label` (of `product`; without it, the
/// server refuses when several products share the label), with its rules; a stream that
/// does not exist is an error unless `missing_ok`.
pub(crate) async fn delete_stream(
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

/// Deletes the bench account's v2 app `app_id` with its streams and rules.
pub(crate) async fn delete_app(
    client: &HttpClient,
    target: &Target,
    app_id: &str,
) -> anyhow::Result<()> {
    let admin = Auth::Bearer(target.admin_token.clone());
    let url = target
        .base
        .join(&format!("admin/accounts/{ACCOUNT}/apps/{app_id}"))
        .context("building the admin URL")?;
    let reply = send_waiting_out_429(
        client,
        "deleting a bench app",
        &Request::new(Method::DELETE, &url, &admin)?,
    )
    .await?;
    ensure!(
        reply.status.is_success() || reply.status == StatusCode::NOT_FOUND,
        "deleting the bench app {app_id:?}: HTTP {}: {}",
        reply.status,
        reply.error_message()
    );
    Ok(())
}

/// One add request of `batch` to `url` (PowerTrack's and Powerstream's bodies are the
/// same); it must be answered 201 with a body of type `T`.
pub(crate) async fn add_batch<T: serde::de::DeserializeOwned>(
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
pub(crate) async fn admin_call(
    client: &HttpClient,
    target: &Target,
    method: Method,
    path: &str,
    body: serde_json::Value,
) -> anyhow::Result<Reply> {
    let admin = Auth::Bearer(target.admin_token.clone());
    let url = target.base.join(path).context("building the admin URL")?;
    let request = Request::new(method.clone(), &url, &admin)?
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

/// A fresh random secret (a password or an admin token): `prefix` and 24 random bytes in
/// URL-safe base64, as the server makes its own tokens.
pub(crate) fn secret(prefix: &str) -> String {
    let mut bytes = [0u8; 24];
    rand::fill(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// Issues a Powerstream token for the account at `account_path` (as [`put_account`]
/// returns it) through the admin API; returns the token, which is shown only once.
pub async fn new_powerstream_token(
    client: &HttpClient,
    target: &Target,
    account_path: &str,
) -> anyhow::Result<String> {
    let reply = admin_call(
        client,
        target,
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
    Ok(created.token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_and_fresh() {
        let (a, b) = (secret("pw"), secret("pw"));
        assert!(a.starts_with("pw") && a.len() == 2 + 32, "{a}");
        assert_ne!(a, b);
    }
}
