//! What every Gnip-style endpoint (PowerTrack rules and stream, Decahose, Firehose) shares:
//! the `{label}.json` path segment, basic auth against the account in the path, and the
//! lookup of the stream.

use std::sync::Arc;

use axum::http::HeaderMap;
use sluice_store::{Product, StreamRef};

use super::error::ApiError;
use crate::auth::basic::{Outcome, Presented};
use crate::auth::basic_credentials;
use crate::client_addr;
use crate::registry::LiveStream;
use crate::sessions::{Checked, Credential};
use crate::state::AppState;

/// `prod.json` → `prod`; `None` without the `.json` suffix.
pub fn label_of(segment: &str) -> Option<&str> {
    segment.strip_suffix(".json").filter(|l| !l.is_empty())
}

/// A request that passed basic auth: its user, for holding its streams in
/// [`crate::sessions::Sessions`].
pub type Authenticated = Checked;

/// Checks HTTP basic auth for `account`: the user must belong to that account (no account
/// can reach another's rules or streams). `gzip` decides the encoding of the error body.
///
/// 401 (with `WWW-Authenticate: Basic`) for missing or wrong credentials, whether or not
/// the user exists (an unknown user costs a password check too); 429 with the
/// `x-rate-limit-*` headers when the user's or the client's attempt budget is spent; 503
/// when too many password checks are running or waiting (see [`crate::auth::basic`]).
pub async fn require_basic(
    state: &AppState,
    account: &str,
    headers: &HeaderMap,
    gzip: bool,
) -> Result<Authenticated, ApiError> {
    let Some((user, password)) = basic_credentials(headers) else {
        return Err(ApiError::unauthorized().gzip(gzip));
    };
    let credential = Credential::user(account, &user);
    let generation = state.sessions.generation(&credential);
    let presented = Presented {
        account,
        user: &user,
        password: &password,
        client: client_addr::current(),
    };
    let lookup = || {
        let (a, u) = (account.to_owned(), user.clone());
        state.blocking(move |s| s.password_hash(&a, &u))
    };
    match state.passwords.check(&presented, lookup).await {
        Outcome::Valid => Ok(Checked {
            credential,
            generation,
        }),
        Outcome::Invalid => Err(ApiError::unauthorized().gzip(gzip)),
        Outcome::Throttled(rate) => Err(ApiError::rate_limited(rate).gzip(gzip)),
        Outcome::Busy => Err(ApiError::auth_busy().gzip(gzip)),
        Outcome::Failed => Err(ApiError::internal("user lookup failed").gzip(gzip)),
    }
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
