//! The operator's console endpoints: the admin API itself, called in process on behalf of
//! the signed-in operator (with the admin token the operator signed in with) through one
//! forwarding handler, so the console and the admin API cannot disagree on a name, a limit
//! or a message; and the node's health.

use axum::extract::{Request, State};
use axum::http::header::{AUTHORIZATION, COOKIE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use sluice_postlog::PostLog;
use std::time::Duration;

use super::session::Role;
use super::{ConsoleError, json_ok, signed_in};
use tower::ServiceExt as _;

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

/// The most a forwarded admin answer may hold: the console reads it back to turn an
/// error into its own shape.
const MAX_ANSWER_BYTES: usize = 16 << 20;

/// `/console/api/admin/accounts…`: the operator's admin calls, one dispatch point. The
/// request goes, as it is, to the admin API's own router under `/admin/accounts…`, with
/// the session's admin token as its bearer token and without the browser's cookies; its
/// JSON answers come back as they are, its errors as the console's `{"error": …}`.
pub(super) async fn forward(State(state): State<AppState>, request: Request) -> Response {
    let (mut parts, body) = request.into_parts();
    let admin = match as_operator(&state, &parts.headers, &parts.method) {
        Ok(admin) => admin,
        Err(e) => return e.into_response(),
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("", |p| p.as_str())
        .strip_prefix("/console/api")
        .unwrap_or("");
    let Ok(uri) = path_and_query.parse::<Uri>() else {
        return ConsoleError::not_found("No such admin call.").into_response();
    };
    parts.uri = uri;
    // A fresh request to the admin router: none of this route's extensions (its path
    // parameters would be read as the admin route's).
    parts.extensions = Default::default();
    parts.headers.remove(COOKIE);
    parts.headers.extend(admin);
    let request = Request::from_parts(parts, body);
    let response = match crate::api::router(state).oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    if !response.status().is_client_error() && !response.status().is_server_error() {
        return response;
    }
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), MAX_ANSWER_BYTES)
        .await
        .unwrap_or_default();
    let message = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("Error").to_owned());
    ConsoleError::new(status, message).into_response()
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
    let ready = not_ready.is_none() && state.pipeline_running() && !state.shutdown.has_begun();
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
