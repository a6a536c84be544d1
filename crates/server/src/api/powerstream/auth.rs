//! Powerstream's authentication ([`sluice_store::AuthScheme::Bearer`]): an OAuth 2.0
//! bearer token from the admin API names the account; other schemes are refused in X's v2
//! words ([`crate::api::bearer`]). A token accepted is noted as used
//! ([`crate::token_use`]); a stream opened with it is held under the token
//! ([`crate::sessions`]), so revoking the token closes it.

use axum::http::HeaderMap;

use crate::api::bearer;
use crate::api::problem::ProblemError;
use crate::auth::{bearer_token, token_hash};
use crate::clock::now_ms;
use crate::sessions::{Checked, Credential};
use crate::state::AppState;

/// The account a request's bearer token belongs to.
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<String, ProblemError> {
    Ok(authenticate_token(state, headers).await?.0)
}

/// The account a request's bearer token belongs to, and the token as the credential to
/// hold the request's stream under.
pub async fn authenticate_token(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<(String, Checked), ProblemError> {
    let hash = bearer_token(headers).map(token_hash);
    // Read before the token is looked up: a revocation racing this request is seen.
    let generation = hash.map(|hash| state.sessions.generation(&Credential::Token { hash }));
    let account = bearer::authenticate(state, headers, |s, hash| s.token_account(hash)).await?;
    let (Some(hash), Some(generation)) = (hash, generation) else {
        return Err(ProblemError::unauthorized());
    };
    state.token_use.record(hash, now_ms());
    let checked = Checked {
        credential: Credential::Token { hash },
        generation,
    };
    Ok((account, checked))
}
