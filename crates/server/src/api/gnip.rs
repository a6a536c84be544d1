//! What every Gnip-style endpoint (PowerTrack rules and stream, Decahose, Firehose) shares:
//! the `{label}.json` path segment, basic auth against the account in the path, and the
//! lookup of the stream.

use std::sync::Arc;

use axum::http::HeaderMap;
use sluice_store::{Product, StreamRef};

use super::error::ApiError;
use crate::auth::{basic_credentials, verify_password};
use crate::registry::LiveStream;
use crate::state::AppState;

/// `prod.json` → `prod`; `None` without the `.json` suffix.
pub fn label_of(segment: &str) -> Option<&str> {
    segment.strip_suffix(".json").filter(|l| !l.is_empty())
}

/// Checks HTTP basic auth for `account`: the user must belong to that account (no account
/// can reach another's rules or streams). `gzip` decides the encoding of the 401 body.
pub async fn require_basic(
    state: &AppState,
    account: &str,
    headers: &HeaderMap,
    gzip: bool,
) -> Result<(), ApiError> {
    let Some((user, password)) = basic_credentials(headers) else {
        return Err(ApiError::unauthorized().gzip(gzip));
    };
    if state.credentials.contains(account, &user, &password) {
        return Ok(());
    }
    let (a, u) = (account.to_owned(), user.clone());
    let hash = state.blocking(move |s| s.password_hash(&a, &u)).await?;
    let Some(hash) = hash else {
        return Err(ApiError::unauthorized().gzip(gzip));
    };
    let pw = password.clone();
    let ok = tokio::task::spawn_blocking(move || verify_password(&pw, &hash))
        .await
        .map_err(ApiError::internal)?;
    if !ok {
        return Err(ApiError::unauthorized().gzip(gzip));
    }
    state.credentials.insert(account, &user, &password);
    Ok(())
}

/// The live stream of `account`/`label` for `product`, or X-style 404.
pub fn find_stream(
    state: &AppState,
    account: &str,
    product: Product,
    label: &str,
    gzip: bool,
) -> Result<Arc<LiveStream>, ApiError> {
    let key = StreamRef {
        account: account.to_owned(),
        product,
        label: label.to_owned(),
    };
    state.registry.get(&key).ok_or_else(|| {
        ApiError::not_found(format!(
            "Stream '{label}' not found for account '{account}'."
        ))
        .gzip(gzip)
    })
}
