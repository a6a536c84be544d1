//! The console: a web UI for the operator and the customer at `/console/`
//! (docs/operator-interface.md, "Console").
//!
//! One page ([`assets`]: HTML, CSS and a small script, all in the binary) talks to JSON
//! endpoints under `/console/api/`, authenticated by a server-side session ([`session`]):
//! - [`signin`]: signing in (the admin token, or a basic-auth user of an account through
//!   the same bounded, throttled password checks as the APIs) and out;
//! - [`operator`]: the admin API's handlers called on the operator's behalf, and the
//!   node's health;
//! - [`customer`]: the signed-in user's account only: its streams with their URLs and
//!   curl commands ([`help`]), the rules of its PowerTrack streams through the rules
//!   service, so messages are X's;
//! - [`usage`]: the account's usage (posts delivered, connections, rule matches);
//! - [`live`]: a PowerTrack stream's matching posts as server-sent events, from a tap on
//!   the stream ([`crate::delivery::tap`]) that never slows its connections.
//!
//! Every state-changing request must come from the console's own origin and carry the
//! session's CSRF token ([`session::check_origin`], [`session::check_csrf`]).

mod assets;
mod customer;
mod help;
mod live;
mod operator;
pub(crate) mod session;
mod signin;
mod usage;

use std::time::Instant;

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{any, delete, get};
use serde_json::json;

use crate::api::error::{ApiError, json_response};
use crate::state::AppState;
use session::{Refused, Role, Session};

/// The console's routes (and `GET /` redirecting to it).
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console/") }))
        .route("/console", get(|| async { Redirect::to("/console/") }))
        .route("/console/", get(assets::page))
        .route("/console/assets/{file}", get(assets::asset))
        .route(
            "/console/api/session",
            get(signin::current)
                .post(signin::sign_in)
                .delete(signin::sign_out),
        )
        .route("/console/api/admin/health", get(operator::health))
        .route("/console/api/admin/accounts", any(operator::forward))
        .route(
            "/console/api/admin/accounts/{*call}",
            any(operator::forward),
        )
        .route("/console/api/account", get(customer::account))
        .route(
            "/console/api/streams/{label}/rules",
            get(customer::list_rules).post(customer::add_rules),
        )
        .route(
            "/console/api/streams/{label}/rules/{id}",
            delete(customer::delete_rule),
        )
        .route("/console/api/streams/{label}/live", get(live::live))
        .route("/console/api/usage", get(usage::usage))
}

/// A refusal or failure of a console endpoint: `{"error": "…"}` with its status.
#[derive(Debug)]
pub(crate) struct ConsoleError {
    status: StatusCode,
    message: String,
}

impl ConsoleError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
}

impl From<Refused> for ConsoleError {
    fn from(refused: Refused) -> Self {
        let status = match refused {
            Refused::SignedOut => StatusCode::UNAUTHORIZED,
            Refused::CrossOrigin | Refused::BadCsrf => StatusCode::FORBIDDEN,
        };
        Self::new(status, refused.message())
    }
}

impl From<ApiError> for ConsoleError {
    fn from(e: ApiError) -> Self {
        Self::new(e.status, e.message)
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        json_ok(self.status, &json!({ "error": self.message }))
    }
}

/// A JSON answer of the console, never cached.
fn json_ok(status: StatusCode, value: &serde_json::Value) -> Response {
    let mut response = json_response(status, sluice_wire::to_vec(value), false);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The session of a request, checked: signed in, not expired, its user not revoked since,
/// and, when `method` changes state, from the console's origin with the CSRF token.
fn signed_in(state: &AppState, headers: &HeaderMap, method: &Method) -> Result<Session, Refused> {
    let id = session::session_id(headers).ok_or(Refused::SignedOut)?;
    let session = state
        .console
        .get(id, Instant::now())
        .ok_or(Refused::SignedOut)?;
    if let Role::Customer {
        account,
        username,
        generation,
    } = &session.role
        && state
            .sessions
            .generation(&crate::sessions::Credential::user(account, username))
            != *generation
    {
        // The password changed or the user was deleted since sign-in.
        state.console.close(id);
        return Err(Refused::SignedOut);
    }
    if session::changes_state(method) {
        session::check_origin(headers)?;
        session::check_csrf(&session, headers)?;
    }
    Ok(session)
}

/// Whether the console is served over HTTPS (its cookie is then `Secure`): the public URL
/// the server hands out says so.
fn served_over_tls(state: &AppState) -> bool {
    state.settings.public_url.starts_with("https://")
}
