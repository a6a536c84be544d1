//! Powerstream's authentication ([`sluice_store::AuthScheme::Bearer`]): an OAuth 2.0
//! bearer token from the admin API names the account; other schemes are refused in X's v2
//! words.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

use crate::api::problem::ProblemError;
use crate::auth::throttle::Attempt;
use crate::auth::{bearer_token, token_hash};
use crate::client_addr;
use crate::state::AppState;
use crate::telemetry;

/// The account a request's bearer token belongs to. An unknown token is charged to the
/// client address's attempt budget: 401 while it lasts, 429 once it is spent (a token is
/// one hash lookup, so known tokens are never refused for it).
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<String, ProblemError> {
    if let Some(token) = bearer_token(headers) {
        let hash = token_hash(token);
        let account = state.blocking(move |s| s.token_account(&hash)).await?;
        if let Some(account) = account {
            return Ok(account);
        }
        let attempt = Attempt::anonymous(client_addr::current());
        return Err(match state.auth_throttle.charge(&attempt) {
            Ok(()) => ProblemError::unauthorized(),
            Err(rate) => {
                telemetry::auth_throttled();
                ProblemError::rate_limited(rate)
            }
        });
    }
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Err(ProblemError::unauthorized());
    };
    let scheme = value
        .to_str()
        .ok()
        .and_then(|v| v.split_whitespace().next())
        .unwrap_or("")
        .to_ascii_lowercase();
    Err(match scheme.as_str() {
        // `Bearer` without a token.
        "bearer" => ProblemError::unauthorized(),
        "basic" => ProblemError::unsupported_authentication("HTTP Basic"),
        "oauth" => ProblemError::unsupported_authentication("OAuth 1.0a User Context"),
        _ => ProblemError::unsupported_authentication("Unknown"),
    })
}
