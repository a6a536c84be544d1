//! The operator's admin API (docs/operator-interface.md, "Admin API"): what every admin
//! call shares (the admin token, name checks, bodies, the change log line), and accounts,
//! basic-auth users and streams; the account list and help view are in
//! [`super::accounts`], tokens in [`super::tokens`], v2 apps in [`super::apps`]. Every
//! call needs the admin token (401 with `WWW-Authenticate: Bearer` without it).

/// Logs a change made through the admin API at info level, with who made it:
/// `actor="admin"` (the admin token is the only credential of these calls), then the
/// fields and message given, as `tracing::info!` takes them. Every admin change logs
/// through here, so the line has one shape.
macro_rules! log_admin_change {
    ($($fields_and_message:tt)+) => {
        tracing::info!(actor = "admin", $($fields_and_message)+)
    };
}
pub(crate) use log_admin_change;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use sluice_store::{Product, StreamLimits, StreamRef};

use super::body::UnreadBody;
use super::error::{ApiError, json_response};
use crate::auth::{BEARER_CHALLENGE, hash_password};
use crate::changes;
use crate::state::AppState;
use crate::urls;

/// Checks the admin token.
pub fn require_admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    if state.admin_token.allows(headers) {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized: this endpoint needs 'Authorization: Bearer <admin token>'.",
        )
        .challenge(BEARER_CHALLENGE))
    }
}

/// Checks an account name, username or label: 1–64 characters of `[A-Za-z0-9_.-]`, not
/// starting with `.`. Names go into URL paths, where `.` and `..` are dot segments that
/// clients and proxies collapse (`/accounts/../streams` becomes `/streams`), so names made
/// of dots, and for simplicity any leading dot, are refused; the 400 names the field.
pub fn check_name(field: &str, value: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&value.len())
        && !value.starts_with('.')
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "Invalid {field} {value:?}: use 1 to 64 characters of A-Z, a-z, 0-9, '_', '.' and \
             '-', not starting with '.'."
        )))
    }
}

fn created_or_ok(created: bool) -> StatusCode {
    if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    }
}

pub(super) fn json(status: StatusCode, value: &serde_json::Value) -> Response {
    json_response(status, sluice_wire::to_vec(value), false)
}

/// Parses an optional JSON body (`{}`, empty, or the expected object).
fn body<T: for<'de> Deserialize<'de> + Default>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}")))
}

/// Reads the body (call it once the admin token is checked) within the admin body limit
/// and the read deadline, and parses it with [`body`].
pub(super) async fn read_body<T: for<'de> Deserialize<'de> + Default>(
    state: &AppState,
    raw: UnreadBody,
) -> Result<T, ApiError> {
    let settings = &state.settings;
    let bytes = raw
        .read(settings.admin_body_limit, settings.body_read_timeout)
        .await?;
    body(&bytes)
}

/// The body of calls that take `{}` (or nothing): anything else is a 400.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct EmptyBody {}

/// Checks the account name and that the account exists (404 otherwise).
pub(super) async fn require_account(state: &AppState, account: &str) -> Result<(), ApiError> {
    check_name("account", account)?;
    let name = account.to_owned();
    if state.blocking(move |s| s.account_exists(&name)).await? {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("Unknown account {account:?}.")))
    }
}

/// `PUT /admin/accounts/{account}`.
pub async fn put_account(
    State(state): State<AppState>,
    Path(account): Path<String>,
    headers: HeaderMap,
    raw: UnreadBody,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    check_name("account", &account)?;
    let EmptyBody {} = read_body(&state, raw).await?;
    let created = changes::put_account(&state, &account).await?;
    if created {
        log_admin_change!(account, "account created");
    }
    Ok(json(created_or_ok(created), &json!({ "account": account })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct UserBody {
    password: Option<String>,
}

/// `PUT /admin/accounts/{account}/users/{username}`.
pub async fn put_user(
    State(state): State<AppState>,
    Path((account, username)): Path<(String, String)>,
    headers: HeaderMap,
    raw: UnreadBody,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    check_name("username", &username)?;
    require_account(&state, &account).await?;
    let UserBody { password } = read_body(&state, raw).await?;
    let password = password.filter(|p| !p.is_empty()).ok_or_else(|| {
        ApiError::bad_request("The body must be {\"password\":\"…\"} with a non-empty password.")
    })?;
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(ApiError::internal)?;
    let created = changes::put_user(&state, &account, &username, hash).await?;
    if created {
        log_admin_change!(account, username, "user created");
    } else {
        log_admin_change!(account, username, "user password set");
    }
    Ok(json(
        created_or_ok(created),
        &json!({ "account": account, "username": username }),
    ))
}

/// `DELETE /admin/accounts/{account}/users/{username}`: deletes a basic-auth user; its
/// open streams are closed with the credentials-revoked message. 204; 404 if unknown.
pub async fn delete_user(
    State(state): State<AppState>,
    Path((account, username)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    check_name("username", &username)?;
    require_account(&state, &account).await?;
    if !changes::delete_user(&state, &account, &username).await? {
        return Err(ApiError::not_found(format!(
            "Unknown user {username:?} of account {account:?}."
        )));
    }
    log_admin_change!(account, username, "user deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /admin/accounts/{account}/users`: the account's basic-auth users, by name.
pub async fn list_users(
    State(state): State<AppState>,
    Path(account): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    require_account(&state, &account).await?;
    let a = account.clone();
    let names = state.blocking(move |s| s.usernames(&a)).await?;
    let users: Vec<serde_json::Value> = names
        .iter()
        .map(|username| json!({ "username": username }))
        .collect();
    Ok(json(StatusCode::OK, &json!({ "users": users })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StreamBody {
    product: Option<String>,
    max_connections: Option<u32>,
    max_rules: Option<u64>,
}

/// `PUT /admin/accounts/{account}/streams/{label}`.
pub async fn put_stream(
    State(state): State<AppState>,
    Path((account, label)): Path<(String, String)>,
    headers: HeaderMap,
    raw: UnreadBody,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    check_name("label", &label)?;
    require_account(&state, &account).await?;
    let spec: StreamBody = read_body(&state, raw).await?;
    let product = match spec.product.as_deref() {
        Some(POWERSTREAM) => powerstream_rule_set(&label)?,
        name => admin_product(name)?,
    };
    if spec.max_connections == Some(0) {
        return Err(ApiError::bad_request("max_connections must be at least 1."));
    }
    let default_max_rules = match product {
        Product::Powerstream => super::powerstream::limits(&state).max_rules,
        _ => state.settings.default_max_rules,
    };
    let limits = StreamLimits {
        max_connections: spec
            .max_connections
            .unwrap_or(state.settings.default_max_connections),
        max_rules: spec.max_rules.unwrap_or(default_max_rules),
    };
    let key = StreamRef {
        account: account.clone(),
        product,
        label: label.clone(),
    };
    let (live, created) = changes::put_stream(&state, &key, limits).await?;
    let what = if created {
        "stream created"
    } else {
        "stream limits set"
    };
    log_admin_change!(
        account,
        label,
        %product,
        max_connections = limits.max_connections,
        max_rules = limits.max_rules,
        "{what}"
    );
    let description = urls::describe_stream(
        &state,
        &key,
        live.rules.len(),
        live.connections.len(),
        limits,
    );
    Ok(json(created_or_ok(created), &description))
}

/// The product name of the account's Powerstream rule set.
const POWERSTREAM: &str = "powerstream";

/// Powerstream, when `label` names the account's one Powerstream rule set: the admin API
/// does not create Powerstreams under other labels (the first Powerstream call creates the
/// rule set), but it may set the rule set's limits, e.g. raise its connection cap for a
/// customer that holds many connections (and for `sluice bench connections`).
fn powerstream_rule_set(label: &str) -> Result<Product, ApiError> {
    if label == super::powerstream::LABEL {
        Ok(Product::Powerstream)
    } else {
        Err(ApiError::bad_request(format!(
            "An account has one Powerstream rule set, labelled {:?}: PUT \
             /admin/accounts/{{account}}/streams/{} sets its limits.",
            super::powerstream::LABEL,
            super::powerstream::LABEL
        )))
    }
}

/// The product of a stream the admin API creates: one whose row says so
/// ([`sluice_store::ProductSpec::admin_created`]); a 400 naming them otherwise.
fn admin_product(name: Option<&str>) -> Result<Product, ApiError> {
    let creatable = || Product::ALL.into_iter().filter(|p| p.spec().admin_created);
    let name = name.unwrap_or("");
    if let Some(product) = creatable().find(|p| p.as_str() == name) {
        return Ok(product);
    }
    let quoted: Vec<String> = creatable().map(|p| format!("{:?}", p.as_str())).collect();
    let expected = match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    };
    Err(ApiError::bad_request(format!(
        "Invalid product {name:?}: expected {expected}."
    )))
}

/// The query of a stream delete: which product, when several share the label.
#[derive(Deserialize)]
pub struct DeleteStreamQuery {
    product: Option<String>,
}

/// `DELETE /admin/accounts/{account}/streams/{label}[?product=…]`: deletes the label's
/// stream with its rules, closing its connections with the operational message. Without
/// `product`, when several products share the label, nothing is deleted: 409 naming them.
pub async fn delete_stream(
    State(state): State<AppState>,
    Path((account, label)): Path<(String, String)>,
    Query(query): Query<DeleteStreamQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    check_name("label", &label)?;
    require_account(&state, &account).await?;
    let product = match query.product.as_deref() {
        None => None,
        Some(p) => Some(
            p.parse::<Product>()
                .map_err(|e| ApiError::bad_request(e.to_string()))?,
        ),
    };
    let product = match product {
        Some(product) => Some(product),
        None => only_product(&state, &account, &label).await?,
    };
    let deleted = changes::delete_streams(&state, &account, &label, product).await?;
    if deleted.is_empty() {
        return Err(ApiError::not_found(format!(
            "Unknown stream {label:?} of account {account:?}."
        )));
    }
    for stored in deleted {
        log_admin_change!(account, label, product = %stored.stream.product, "stream deleted");
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The product of the account's one stream labelled `label` (`None`: no such stream); 409
/// naming the products when several carry the label. The delete then names the product,
/// so a stream of another product made meanwhile is never deleted with it.
async fn only_product(
    state: &AppState,
    account: &str,
    label: &str,
) -> Result<Option<Product>, ApiError> {
    let a = account.to_owned();
    let streams = state.blocking(move |s| s.streams(&a)).await?;
    let products: Vec<Product> = streams
        .iter()
        .filter(|s| s.stream.label == label)
        .map(|s| s.stream.product)
        .collect();
    if let [] | [_] = products[..] {
        return Ok(products.first().copied());
    }
    let products: Vec<&str> = products.iter().map(|p| p.as_str()).collect();
    Err(ApiError::new(
        StatusCode::CONFLICT,
        format!(
            "Several streams of account {account:?} are labelled {label:?}: {}. Name the one \
             to delete with ?product=, e.g. ?product={}.",
            products.join(", "),
            products[0]
        ),
    ))
}

/// `GET /admin/accounts/{account}/streams`: the account's streams as they exist (label,
/// product, URLs, limits, rule count, open connections).
pub async fn list_streams(
    State(state): State<AppState>,
    Path(account): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    require_account(&state, &account).await?;
    let a = account.clone();
    let stored = state.blocking(move |s| s.streams(&a)).await?;
    let streams: Vec<serde_json::Value> = stored
        .iter()
        .map(|stored| describe_stored(&state, stored))
        .collect();
    Ok(json(StatusCode::OK, &json!({ "streams": streams })))
}

/// A stored stream's description, with its live rule and connection counts.
pub(super) fn describe_stored(
    state: &AppState,
    stored: &sluice_store::StoredStream,
) -> serde_json::Value {
    let live = state.registry.get(&stored.stream);
    let (rules, connections) = live
        .map(|l| (l.rules.len(), l.connections.len()))
        .unwrap_or_default();
    let mut v = urls::describe_stream(state, &stored.stream, rules, connections, stored.limits);
    v["exists"] = json!(true);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_api_creates_the_products_of_its_rows() {
        assert_eq!(admin_product(Some("decahose")).unwrap(), Product::Decahose);
        for refused in [Some("powerstream"), Some("x"), None] {
            assert_eq!(
                admin_product(refused).unwrap_err().message,
                format!(
                    "Invalid product {:?}: expected \"powertrack\", \"decahose\", \"firehose\", \
                     \"powertrack-replay\" or \"compliance\".",
                    refused.unwrap_or("")
                )
            );
        }
    }

    #[test]
    fn the_admin_api_sets_the_limits_of_the_powerstream_rule_set_only() {
        assert_eq!(
            powerstream_rule_set("powerstream").unwrap(),
            Product::Powerstream
        );
        let refused = powerstream_rule_set("prod").unwrap_err();
        assert_eq!(refused.status, StatusCode::BAD_REQUEST);
        assert!(
            refused.message.contains("labelled \"powerstream\""),
            "{}",
            refused.message
        );
    }

    #[test]
    fn names_are_url_safe_and_never_dot_segments() {
        #[rustfmt::skip]
        let cases: &[(&str, bool)] = &[
            ("acme", true), ("a", true), ("prod.v2", true), ("a..b", true), ("x.", true),
            ("_-", true), ("-", true), (&"a".repeat(64), true),
            (".", false), ("..", false), ("...", false), (".hidden", false), ("..a", false),
            ("", false), (&"a".repeat(65), false), ("a/b", false), ("a b", false),
            ("é", false), ("a%2e", false),
        ];
        for &(name, ok) in cases {
            let checked = check_name("label", name);
            assert_eq!(checked.is_ok(), ok, "{name:?}");
            if let Err(e) = checked {
                assert_eq!(e.status, StatusCode::BAD_REQUEST);
                assert!(
                    e.message.starts_with(&format!("Invalid label {name:?}: ")),
                    "{}",
                    e.message
                );
            }
        }
    }
}
