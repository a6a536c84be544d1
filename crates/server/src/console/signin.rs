//! Signing in and out of the console. The operator presents the admin token; a customer
//! presents an account, a username and a password, checked by [`crate::auth::basic`]
//! exactly as a basic-auth API request is (the same cache, attempt budgets and bounded
//! verifier), so the console is no way around the attempt throttle.

use std::time::Instant;

use axum::extract::State;
use axum::http::header::{AUTHORIZATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::session::{self, Role, Session};
use super::{ConsoleError, json_ok, served_over_tls, signed_in};
use crate::api::body::UnreadBody;
use crate::auth::basic::{Outcome, Presented};
use crate::client_addr;
use crate::state::AppState;

/// A sign-in: the admin token, or a customer's credentials.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SignIn {
    admin_token: Option<String>,
    account: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// What the page learns about its session: who, and the CSRF token to send back.
fn describe(session: &Session) -> Value {
    match &session.role {
        Role::Operator { .. } => json!({ "role": "operator", "csrf": session.csrf }),
        Role::Customer {
            account, username, ..
        } => json!({
            "role": "customer",
            "account": account,
            "username": username,
            "csrf": session.csrf,
        }),
    }
}

/// `GET /console/api/session`: the current session, or 401.
pub(super) async fn current(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ConsoleError> {
    let session = signed_in(&state, &headers, &method)?;
    Ok(json_ok(StatusCode::OK, &describe(&session)))
}

/// `POST /console/api/session`: signs in (from the console's origin only, so no other
/// site can sign a browser in); sets the session cookie. 401 for wrong credentials, 429
/// past the attempt budgets, 503 when password checks are saturated.
pub(super) async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    raw: UnreadBody,
) -> Result<Response, ConsoleError> {
    session::check_origin(&headers)?;
    let settings = &state.settings;
    let bytes = raw
        .read(settings.admin_body_limit, settings.body_read_timeout)
        .await
        .map_err(|e| ConsoleError::new(e.status(), e.message()))?;
    let request: SignIn = serde_json::from_slice(&bytes).map_err(|e| {
        ConsoleError::new(StatusCode::BAD_REQUEST, format!("Invalid JSON body: {e}"))
    })?;
    let role = match request {
        SignIn {
            admin_token: Some(token),
            account: None,
            username: None,
            password: None,
        } => operator(&state, token)?,
        SignIn {
            admin_token: None,
            account: Some(account),
            username: Some(username),
            password: Some(password),
        } => customer(&state, account, username, &password).await?,
        _ => {
            return Err(ConsoleError::new(
                StatusCode::BAD_REQUEST,
                "Sign in with {\"admin_token\"} or with {\"account\",\"username\",\"password\"}.",
            ));
        }
    };
    let (id, session) = state.console.open(role, Instant::now());
    let cookie = session::set_cookie(Some(&id), served_over_tls(&state), session::SESSION_TTL);
    let mut response = json_ok(StatusCode::OK, &describe(&session));
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    Ok(response)
}

fn wrong_credentials() -> ConsoleError {
    ConsoleError::new(
        StatusCode::UNAUTHORIZED,
        "Sign-in failed: wrong token, or wrong account, username or password.",
    )
}

/// The operator's role, if `token` is the admin token.
fn operator(state: &AppState, token: String) -> Result<Role, ConsoleError> {
    let mut headers = HeaderMap::new();
    let value = HeaderValue::from_str(&format!("Bearer {}", token.trim()))
        .map_err(|_| wrong_credentials())?;
    headers.insert(AUTHORIZATION, value);
    if state.admin_token.allows(&headers) {
        Ok(Role::Operator {
            token: token.trim().to_owned(),
        })
    } else {
        Err(wrong_credentials())
    }
}

/// A customer's role, if the password is the user's (through the bounded verifier).
async fn customer(
    state: &AppState,
    account: String,
    username: String,
    password: &str,
) -> Result<Role, ConsoleError> {
    let generation = state
        .sessions
        .generation(&crate::sessions::Credential::user(&account, &username));
    let presented = Presented {
        account: &account,
        user: &username,
        password,
        client: client_addr::current(),
    };
    let lookup = || {
        let (a, u) = (account.clone(), username.clone());
        state.blocking(move |s| s.password_hash(&a, &u))
    };
    match state.passwords.check(&presented, lookup).await {
        Outcome::Valid => Ok(Role::Customer {
            account,
            username,
            generation,
        }),
        Outcome::Invalid => Err(wrong_credentials()),
        Outcome::Throttled(_) => Err(ConsoleError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many sign-in attempts: wait a minute and try again.",
        )),
        Outcome::Busy => Err(ConsoleError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "The server is busy checking passwords: try again shortly.",
        )),
        Outcome::Failed => Err(ConsoleError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The user could not be looked up.",
        )),
    }
}

/// `DELETE /console/api/session`: signs out and clears the cookie.
pub(super) async fn sign_out(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ConsoleError> {
    signed_in(&state, &headers, &method)?;
    if let Some(id) = session::session_id(&headers) {
        state.console.close(id);
    }
    let cookie = session::set_cookie(None, served_over_tls(&state), session::SESSION_TTL);
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(SET_COOKIE, value);
    }
    Ok(response)
}
