//! Powerstream's authentication ([`sluice_store::AuthScheme::Bearer`]): an OAuth 2.0
//! bearer token from the admin API names the account; other schemes are refused in X's v2
//! words ([`crate::api::bearer`]).

use axum::http::HeaderMap;

use crate::api::bearer;
use crate::api::problem::ProblemError;
use crate::state::AppState;

/// The account a request's bearer token belongs to.
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<String, ProblemError> {
    bearer::authenticate(state, headers, |s, hash| s.token_account(hash)).await
}
