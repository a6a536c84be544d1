//! Bearer-token authentication of the `/2/` endpoints, shared by Powerstream (tokens from
//! the admin API name an account) and the v2 streams (app tokens name an app): the
//! lookup differs, the refusals are X's v2 ones.
//!
//! - no `Authorization`, `Bearer` without a token, or an unknown token: 401 `Unauthorized`
//!   with `WWW-Authenticate: Bearer`; unknown tokens spend the client address's attempt
//!   budget, and once it is spent the answer is 429 (docs/auth.md);
//! - another scheme (basic auth, OAuth 1.0a, …): 403 `unsupported-authentication`.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use sluice_store::{Store, StoreError};

use super::problem::ProblemError;
use crate::auth::throttle::Attempt;
use crate::auth::{bearer_token, token_hash};
use crate::client_addr;
use crate::state::AppState;
use crate::telemetry;

/// What the request's bearer token names, found by `lookup` from the token's hash. A token
/// is one hash lookup, so known tokens are never refused for the attempt budget.
pub async fn authenticate<T: Send + 'static>(
    state: &AppState,
    headers: &HeaderMap,
    lookup: impl FnOnce(&Store, &[u8; 32]) -> Result<Option<T>, StoreError> + Send + 'static,
) -> Result<T, ProblemError> {
    let Some(token) = bearer_token(headers) else {
        return Err(refusal(headers));
    };
    let hash = token_hash(token);
    if let Some(found) = state.blocking(move |s| lookup(s, &hash)).await? {
        return Ok(found);
    }
    let attempt = Attempt::anonymous(client_addr::current());
    Err(match state.auth_throttle.charge(&attempt) {
        Ok(()) => ProblemError::unauthorized(),
        Err(rate) => {
            telemetry::auth_throttled();
            ProblemError::rate_limited(rate)
        }
    })
}

/// The refusal of a request without a bearer token, by the scheme it used instead.
fn refusal(headers: &HeaderMap) -> ProblemError {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return ProblemError::unauthorized();
    };
    let scheme = value
        .to_str()
        .ok()
        .and_then(|v| v.split_whitespace().next())
        .unwrap_or("")
        .to_ascii_lowercase();
    match scheme.as_str() {
        // `Bearer` without a token.
        "bearer" => ProblemError::unauthorized(),
        "basic" => ProblemError::unsupported_authentication("HTTP Basic"),
        "oauth" => ProblemError::unsupported_authentication("OAuth 1.0a User Context"),
        _ => ProblemError::unsupported_authentication("Unknown"),
    }
}
