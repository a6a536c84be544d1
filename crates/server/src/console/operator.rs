//! The operator's console endpoints: the admin API's own handlers, called in process on
//! behalf of the signed-in operator (with the admin token the operator signed in with), so
//! the console and the admin API cannot disagree on a name, a limit or a message; and the
//! node's health.

use axum::extract::{Path, Query, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sluice_postlog::PostLog;
use std::time::Duration;

use super::session::Role;
use super::{ConsoleError, json_ok, signed_in};
use crate::api::accounts;
use crate::api::admin::{self, DeleteStreamQuery};
use crate::api::apps;
use crate::api::body::UnreadBody;
use crate::api::error::ApiError;
use crate::api::tokens;
use crate::state::AppState;

/// The headers an admin handler needs for the operator's session: its admin token as a
/// bearer token. 401 without a session, 403 for a customer's.
fn as_operator(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
) -> Result<HeaderMap, ConsoleError> {
    let session = signed_in(state, headers, method)?;
    let Role::Operator { token } = session.role else {
        return Err(ConsoleError::new(
            StatusCode::FORBIDDEN,
            "Only the operator may do this.",
        ));
    };
    let mut admin = HeaderMap::new();
    let value = HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| ConsoleError::new(StatusCode::UNAUTHORIZED, "Sign in again."))?;
    admin.insert(AUTHORIZATION, value);
    Ok(admin)
}

/// An admin handler's answer as the console's: its JSON as is, its errors as
/// `{"error": …}`.
fn answer(result: Result<Response, ApiError>) -> Response {
    match result {
        Ok(response) => response,
        Err(e) => ConsoleError::from(e).into_response(),
    }
}

/// Runs an admin handler for the operator, or answers the refusal.
macro_rules! as_admin {
    ($state:ident, $method:ident, $headers:ident, |$admin:ident| $call:expr) => {
        match as_operator(&$state, &$headers, &$method) {
            Ok($admin) => answer($call.await),
            Err(e) => e.into_response(),
        }
    };
}

/// `PUT …/accounts/{account}`: [`admin::put_account`].
pub(super) async fn put_account(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    path: Path<String>,
    body: UnreadBody,
) -> Response {
    as_admin!(state, method, headers, |h| admin::put_account(
        State(state.clone()),
        path,
        h,
        body
    ))
}

/// `GET …/accounts/{account}`: [`accounts::get_account`].
pub(super) async fn get_account(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    path: Path<String>,
) -> Response {
    as_admin!(state, method, headers, |h| accounts::get_account(
        State(state.clone()),
        path,
        h
    ))
}

/// `PUT …/users/{username}`: [`admin::put_user`].
pub(super) async fn put_user(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    path: Path<(String, String)>,
    body: UnreadBody,
) -> Response {
    as_admin!(state, method, headers, |h| admin::put_user(
        State(state.clone()),
        path,
        h,
        body
    ))
}

/// `DELETE …/users/{username}`: [`admin::delete_user`].
pub(super) async fn delete_user(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    path: Path<(String, String)>,
) -> Response {
    as_admin!(state, method, headers, |h| admin::delete_user(
        State(state.clone()),
        path,
        h
    ))
}

/// `PUT …/streams/{label}`: [`admin::put_stream`].
pub(super) async fn put_stream(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    path: Path<(String, String)>,
    body: UnreadBody,
) -> Response {
    as_admin!(state, method, headers, |h| admin::put_stream(
        State(state.clone()),
        path,
        h,
        body
    ))
}

/// `DELETE …/streams/{label}?product=…`: [`admin::delete_stream`].
pub(super) async fn delete_stream(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    path: Path<(String, String)>,
    query: Query<DeleteStreamQuery>,
) -> Response {
    as_admin!(state, method, headers, |h| admin::delete_stream(
        State(state.clone()),
        path,
        query,
        h
    ))
}

/// `POST …/apps`: [`apps::create_app`] (its secrets are in this answer only).
pub(super) async fn create_app(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    path: Path<String>,
    body: UnreadBody,
) -> Response {
    as_admin!(state, method, headers, |h| apps::create_app(
        State(state.clone()),
        path,
        h,
        body
    ))
}

/// `GET …/apps`: [`apps::list_apps`].
pub(super) async fn list_apps(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    path: Path<String>,
) -> Response {
    as_admin!(state, method, headers, |h| apps::list_apps(
        State(state.clone()),
        path,
        h
    ))
}

/// `GET …/accounts?next_token=…&max_results=…`: [`accounts::list_accounts`].
pub(super) async fn list_accounts(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    query: Query<Vec<(String, String)>>,
) -> Response {
    as_admin!(state, method, headers, |h| accounts::list_accounts(
        State(state.clone()),
        query,
        h
    ))
}

/// `DELETE …/accounts/{account}`: [`accounts::delete_account`] (the page asks for the
/// account's name again first).
pub(super) async fn delete_account(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    path: Path<String>,
) -> Response {
    as_admin!(state, method, headers, |h| accounts::delete_account(
        State(state.clone()),
        path,
        h
    ))
}

/// `POST …/tokens`: [`tokens::create_token`] (the token is in this answer only).
pub(super) async fn create_token(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    path: Path<String>,
    body: UnreadBody,
) -> Response {
    as_admin!(state, method, headers, |h| tokens::create_token(
        State(state.clone()),
        path,
        h,
        body
    ))
}

/// `GET …/tokens`: [`tokens::list_tokens`].
pub(super) async fn list_tokens(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    path: Path<String>,
) -> Response {
    as_admin!(state, method, headers, |h| tokens::list_tokens(
        State(state.clone()),
        path,
        h
    ))
}

/// `DELETE …/tokens/{prefix}`: [`tokens::revoke_token`].
pub(super) async fn revoke_token(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    path: Path<(String, String)>,
) -> Response {
    as_admin!(state, method, headers, |h| tokens::revoke_token(
        State(state.clone()),
        path,
        h
    ))
}

/// `PUT …/apps/{app_id}`: [`apps::put_app_limits`].
pub(super) async fn put_app_limits(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    path: Path<(String, String)>,
    body: UnreadBody,
) -> Response {
    as_admin!(state, method, headers, |h| apps::put_app_limits(
        State(state.clone()),
        path,
        h,
        body
    ))
}

/// `DELETE …/apps/{app_id}`: [`apps::delete_app`].
pub(super) async fn delete_app(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    path: Path<(String, String)>,
) -> Response {
    as_admin!(state, method, headers, |h| apps::delete_app(
        State(state.clone()),
        path,
        h
    ))
}

/// `GET /console/api/admin/health`: what `/healthz` says, with the node's streams, rules,
/// open connections and post log position (the page turns successive positions into the
/// ingest rate).
pub(super) async fn health(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ConsoleError> {
    as_operator(&state, &headers, &method)?;
    let not_ready = state.readiness.check().err();
    let ready = not_ready.is_none() && state.pipeline_running() && !state.shutdown.is_cancelled();
    let streams = state.registry.all();
    let connections: usize = streams.iter().map(|s| s.connections.len()).sum();
    let checks = state.passwords.stats();
    // A cluster's post log may read over the network: off the async threads.
    let log = state.post_log.clone();
    let retention = state.settings.post_log_retention;
    let post_log = tokio::task::spawn_blocking(move || post_log_json(&*log, retention))
        .await
        .map_err(|e| ConsoleError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let members = cluster_members(&state).await;
    Ok(json_ok(
        StatusCode::OK,
        &json!({
            "status": if ready { "ok" } else { "unavailable" },
            "reason": not_ready,
            "cluster": state.cluster.is_some(),
            "members": members,
            "datacenter": state.settings.datacenter,
            "streams": streams.len(),
            "rules": state.registry.rules().len(),
            "connections": connections,
            "post_log": post_log,
            "password_checks": { "total": checks.checks, "running": checks.running },
        }),
    ))
}

/// How long the node page waits for the cluster's list of members.
const MEMBERS_TIMEOUT: Duration = Duration::from_secs(3);

/// The cluster's members as the node page shows them: `null` on a single node,
/// `{"nodes":[…]}`, or `{"error":"…"}` when the backend cannot say now.
async fn cluster_members(state: &AppState) -> serde_json::Value {
    let Some(cluster) = &state.cluster else {
        return serde_json::Value::Null;
    };
    match tokio::time::timeout(MEMBERS_TIMEOUT, cluster.members()).await {
        Ok(Ok(members)) => json!({ "nodes": members }),
        Ok(Err(e)) => json!({ "error": e.to_string() }),
        Err(_) => json!({ "error": "the cluster did not answer in time" }),
    }
}

/// The post log's position, retention and what it holds now: how many posts and since
/// when (the oldest retained post's append time, `null` when empty).
fn post_log_json(log: &dyn PostLog, retention: Duration) -> serde_json::Value {
    let next_seq = log.next_seq();
    let first = log.seq_at_time(0).unwrap_or(next_seq);
    let oldest = log
        .read(first, 1)
        .ok()
        .and_then(|posts| posts.first().map(|p| p.appended_ms));
    json!({
        "next_seq": next_seq,
        "retention_seconds": retention.as_secs(),
        "posts": next_seq.saturating_sub(first),
        "oldest_ms": oldest,
    })
}
