//! v2 apps, X's app-only auth (docs/compatibility.md §7.4): the operator creates an app for
//! an account (`POST /admin/accounts/{account}/apps`, secrets shown once) and lists them;
//! clients trade the consumer key and secret for the app's bearer token at
//! `POST /oauth2/token` (the client-credentials grant); `/2/` endpoints find the app of a
//! bearer token with [`authenticate_app`].

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use sluice_store::{Product, StoredApp};

use super::admin::{check_name, json, log_admin_change, read_body, require_account, require_admin};
use super::body::UnreadBody;
use super::error::{ApiError, json_response};
use super::problem::ProblemError;
use crate::auth::apps::{IssuedApp, bearer_for_secret, issue_app, secret_matches};
use crate::auth::basic_credentials;
use crate::changes;
use crate::clock::now_ms;
use crate::state::AppState;

/// The body of an app create: `{"name":"…"}`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AppBody {
    name: Option<String>,
}

/// `POST /admin/accounts/{account}/apps`: a new app of the account; its consumer key,
/// consumer secret and bearer token are in this answer only.
pub async fn create_app(
    State(state): State<AppState>,
    Path(account): Path<String>,
    headers: HeaderMap,
    raw: UnreadBody,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    require_account(&state, &account).await?;
    let AppBody { name } = read_body(&state, raw).await?;
    let name = name.ok_or_else(|| ApiError::bad_request("Missing \"name\" of the app."))?;
    check_name("name", &name)?;
    let issued = issue_app();
    let app = issued.to_stored(&account, &name, now_ms());
    let IssuedApp {
        app_id,
        consumer_key,
        consumer_secret,
        bearer_token,
    } = issued;
    changes::add_app(&state, &app).await?;
    log_admin_change!(account, app_id, consumer_key, "app created");
    Ok(json(
        StatusCode::CREATED,
        &json!({
            "app_id": app_id,
            "consumer_key": consumer_key,
            "consumer_secret": consumer_secret,
            "bearer_token": bearer_token,
        }),
    ))
}

/// `GET /admin/accounts/{account}/apps`: the account's apps, without secrets.
pub async fn list_apps(
    State(state): State<AppState>,
    Path(account): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    require_account(&state, &account).await?;
    let a = account.clone();
    let apps = state.blocking(move |s| s.apps(&a)).await?;
    let apps: Vec<serde_json::Value> = apps
        .iter()
        .map(|app| {
            let mut v = json!({
                "app_id": app.id,
                "name": app.name,
                "consumer_key": app.consumer_key,
                "created": rfc3339(app.created_ms),
            });
            v.as_object_mut()
                .expect("an object")
                .extend(limits_json(app).as_object().cloned().unwrap_or_default());
            v
        })
        .collect();
    Ok(json(StatusCode::OK, &json!({ "apps": apps })))
}

/// An app's limits in effect: the operator's where set, else the product table's.
fn limits_json(app: &StoredApp) -> serde_json::Value {
    let filtered = app.stream_limits(Product::V2Filtered);
    json!({
        "max_rules": filtered.max_rules,
        "max_rule_chars": app.max_rule_chars(),
        "max_connections": filtered.max_connections,
    })
}

/// The body of an app's limits: any of the three, `null` restoring the product's figure.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LimitsBody {
    #[serde(default, deserialize_with = "present")]
    max_rules: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present")]
    max_rule_chars: Option<Option<u32>>,
    #[serde(default, deserialize_with = "present")]
    max_connections: Option<Option<u32>>,
}

/// A member that is present (`Some`), possibly `null` (`Some(None)`).
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// `PUT /admin/accounts/{account}/apps/{app_id}`: the app's limits, as X sets them per
/// access level (`max_rules`, `max_rule_chars` up to 2,048, `max_connections`); members
/// left out keep their value, `null` restores the product's figure. Open streams get the
/// new caps at once. Answers the app with its limits in effect.
pub async fn put_app_limits(
    State(state): State<AppState>,
    Path((account, app_id)): Path<(String, String)>,
    headers: HeaderMap,
    raw: UnreadBody,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    require_account(&state, &account).await?;
    let body: LimitsBody = read_body(&state, raw).await?;
    let id = app_id.clone();
    let not_found =
        || ApiError::not_found(format!("App '{app_id}' not found for account '{account}'."));
    let app = state
        .blocking(move |s| s.app(&id))
        .await?
        .filter(|app| app.account == account)
        .ok_or_else(not_found)?;
    let mut limits = app.limits;
    if let Some(v) = body.max_rules {
        limits.max_rules = v;
    }
    if let Some(v) = body.max_rule_chars {
        limits.max_rule_chars = v;
    }
    if let Some(v) = body.max_connections {
        limits.max_connections = v;
    }
    let most_chars = sluice_rules::MAX_RULE_CHARS as u32;
    if limits
        .max_rule_chars
        .is_some_and(|n| n == 0 || n > most_chars)
    {
        return Err(ApiError::bad_request(format!(
            "max_rule_chars must be from 1 to {most_chars}."
        )));
    }
    if limits.max_connections == Some(0) {
        return Err(ApiError::bad_request("max_connections must be at least 1."));
    }
    if !changes::set_app_limits(&state, &account, &app_id, limits).await? {
        return Err(not_found());
    }
    log_admin_change!(account, app_id, ?limits, "app limits set");
    let id = app_id.clone();
    let app = state
        .blocking(move |s| s.app(&id))
        .await?
        .ok_or_else(not_found)?;
    let mut answer = json!({ "app_id": app.id, "name": app.name });
    if let (Some(a), Some(l)) = (answer.as_object_mut(), limits_json(&app).as_object()) {
        a.extend(l.clone());
    }
    Ok(json(StatusCode::OK, &answer))
}

/// `DELETE /admin/accounts/{account}/apps/{app_id}`: revokes the app. Its bearer token
/// and consumer credentials are refused from this moment; its v2 streams are deleted with
/// their rules, their open connections closed with the credentials-revoked message.
pub async fn delete_app(
    State(state): State<AppState>,
    Path((account, app_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    require_account(&state, &account).await?;
    if !changes::delete_app(&state, &account, &app_id).await? {
        return Err(ApiError::not_found(format!(
            "App '{app_id}' not found for account '{account}'."
        )));
    }
    log_admin_change!(account, app_id, "app deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Epoch milliseconds as an RFC 3339 UTC time.
pub(super) fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// An error of `/oauth2/token`, in the `{"errors":[{"code","label","message"}]}` shape X's
/// token endpoint answers with (403 for every refusal).
fn token_error(code: u32, label: &str, message: &str) -> Response {
    let body = json!({ "errors": [{ "code": code, "label": label, "message": message }] });
    json_response(StatusCode::FORBIDDEN, sluice_wire::to_vec(&body), false)
}

fn bad_credentials() -> Response {
    token_error(
        99,
        "authenticity_token_error",
        "Unable to verify your credentials",
    )
}

/// `POST /oauth2/token`: the client-credentials grant. Basic auth of consumer key and
/// secret, form body `grant_type=client_credentials` → the app's bearer token.
pub async fn oauth2_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    raw: UnreadBody,
) -> Result<Response, ApiError> {
    let Some((key, secret)) = basic_credentials(&headers) else {
        return Ok(bad_credentials());
    };
    let app = state.blocking(move |s| s.app_by_consumer_key(&key)).await?;
    let Some(app) = app.filter(|app| secret_matches(&secret, &app.consumer_secret_hash)) else {
        return Ok(bad_credentials());
    };
    let settings = &state.settings;
    let form = raw
        .read(settings.admin_body_limit, settings.body_read_timeout)
        .await?;
    let grant = url::form_urlencoded::parse(&form)
        .find(|(k, _)| k == "grant_type")
        .map(|(_, v)| v.into_owned());
    if grant.as_deref() != Some("client_credentials") {
        return Ok(token_error(
            170,
            "forbidden_missing_parameter",
            "Missing required parameter: grant_type",
        ));
    }
    let body = json!({ "token_type": "bearer", "access_token": bearer_for_secret(&secret) });
    tracing::debug!(
        account = app.account,
        app_id = app.id,
        "bearer token issued"
    );
    Ok(json_response(
        StatusCode::OK,
        sluice_wire::to_vec(&body),
        false,
    ))
}

/// The app of a `/2/` request's `Authorization: Bearer …` ([`super::bearer`]: a missing
/// or unknown token is X's 401 problem with `WWW-Authenticate: Bearer`).
pub async fn authenticate_app(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<StoredApp, ProblemError> {
    super::bearer::authenticate(state, headers, |s, hash| s.app_by_bearer_hash(hash)).await
}
