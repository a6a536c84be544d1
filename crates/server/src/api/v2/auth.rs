//! The v2 streams' authentication: X's app-only bearer token names an app
//! (docs/compatibility.md §7.4); the refusals are [`crate::api::bearer`]'s.

use axum::http::HeaderMap;
use sluice_store::StoredApp;

use crate::api::apps::authenticate_app;
use crate::api::problem::ProblemError;
use crate::state::AppState;

/// The app a request's bearer token belongs to.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<StoredApp, ProblemError> {
    authenticate_app(state, headers).await
}
