//! The admin API's accounts as a whole (docs/operator-interface.md, "Admin API"): the
//! paged list of accounts, an account's delete with everything it owns, and the "API
//! help" view of one account (`GET /admin/accounts/{account}`): every product the account
//! may use, with its URLs and ready `curl` commands, whether or not anything was called
//! yet.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sluice_store::{AccountSummary, Product, StoredApp, StoredStream, StreamRef};

use super::admin::{
    check_name, describe_stored, json, log_admin_change, require_account, require_admin,
};
use super::apps::rfc3339;
use super::error::ApiError;
use super::powerstream;
use crate::auth::displayable_prefix;
use crate::changes;
use crate::state::AppState;
use crate::urls;

/// Accounts per page unless `max_results` says otherwise.
const DEFAULT_PAGE: u32 = 100;
/// The most accounts one page may hold.
const MAX_PAGE: u32 = 1_000;

/// The query of the account list: where the page starts and how long it is.
#[derive(Debug, PartialEq, Eq)]
struct PageQuery {
    /// The last account of the previous page.
    after: Option<String>,
    /// Accounts on this page.
    max_results: u32,
}

/// Reads `next_token` (a previous page's, naming its last account) and `max_results`
/// (1 to 1,000); anything else is a 400 naming the parameter.
fn page_query(pairs: &[(String, String)]) -> Result<PageQuery, ApiError> {
    let mut query = PageQuery {
        after: None,
        max_results: DEFAULT_PAGE,
    };
    for (key, value) in pairs {
        match key.as_str() {
            "next_token" => query.after = Some(decode_next_token(value)?),
            "max_results" => {
                query.max_results = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_PAGE).contains(n))
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "Invalid max_results {value:?}: use a number from 1 to {MAX_PAGE}."
                        ))
                    })?;
            }
            _ => {
                return Err(ApiError::bad_request(format!(
                    "Unknown query parameter {key:?}: the account list takes next_token and \
                     max_results."
                )));
            }
        }
    }
    Ok(query)
}

/// The `next_token` after a page ending with `account`: the name, base64url-encoded, so
/// that clients treat it as opaque.
fn encode_next_token(account: &str) -> String {
    URL_SAFE_NO_PAD.encode(account)
}

fn decode_next_token(token: &str) -> Result<String, ApiError> {
    let invalid = || {
        ApiError::bad_request(format!(
            "Invalid next_token {token:?}: use the next_token of a previous page as it was \
             given."
        ))
    };
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let name = String::from_utf8(bytes).map_err(|_| invalid())?;
    check_name("account", &name).map_err(|_| invalid())?;
    Ok(name)
}

fn summary_json(account: &AccountSummary) -> Value {
    json!({
        "account": account.name,
        "created": rfc3339(account.created_ms),
        "users": account.users,
        "streams": account.streams,
        "tokens": account.tokens,
        "apps": account.apps,
    })
}

/// `GET /admin/accounts[?next_token=…][&max_results=N]`: accounts in name order, with
/// what each owns; `next_token` is `null` on the last page.
pub async fn list_accounts(
    State(state): State<AppState>,
    Query(pairs): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    let PageQuery { after, max_results } = page_query(&pairs)?;
    let mut page = state
        .blocking(move |s| s.accounts_page(after.as_deref(), max_results + 1))
        .await?;
    let more = page.len() > max_results as usize;
    page.truncate(max_results as usize);
    let next_token = more
        .then(|| page.last().map(|a| encode_next_token(&a.name)))
        .flatten();
    let accounts: Vec<Value> = page.iter().map(summary_json).collect();
    Ok(json(
        StatusCode::OK,
        &json!({ "accounts": accounts, "next_token": next_token }),
    ))
}

/// `DELETE /admin/accounts/{account}`: the account and everything it owns (users, streams
/// and their rules, tokens, apps); open streams are closed with the operational message.
pub async fn delete_account(
    State(state): State<AppState>,
    Path(account): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    check_name("account", &account)?;
    if !changes::delete_account(&state, &account).await? {
        return Err(ApiError::not_found(format!("Unknown account {account:?}.")));
    }
    log_admin_change!(account, "account deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /admin/accounts/{account}`: the "API help" view. Users (names), token prefixes,
/// apps, and every stream the account may use: its streams as they exist, plus those made
/// on first use that do not exist yet (its Powerstream rule set, each app's v2 streams),
/// marked `"exists": false`, each with its URLs and `curl` commands.
pub async fn get_account(
    State(state): State<AppState>,
    Path(account): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    require_account(&state, &account).await?;
    let a = account.clone();
    let (users, stored, tokens, apps) = state
        .blocking(move |s| {
            Ok::<_, sluice_store::StoreError>((
                s.usernames(&a)?,
                s.streams(&a)?,
                s.token_prefixes(&a)?,
                s.apps(&a)?,
            ))
        })
        .await?;
    let tokens: Vec<&str> = tokens.iter().map(|p| displayable_prefix(p)).collect();
    let streams = usable_streams(&state, &account, &stored, &apps);
    let apps: Vec<Value> = apps
        .iter()
        .map(|app| json!({ "app_id": app.id, "name": app.name }))
        .collect();
    Ok(json(
        StatusCode::OK,
        &json!({
            "account": account,
            "users": users,
            "streams": streams,
            "tokens": tokens,
            "apps": apps,
        }),
    ))
}

/// Every stream `account` may use, described with URLs and `curl` commands: `stored` (its
/// streams as they exist), then those made on first use that do not exist yet (its
/// Powerstream rule set, each of `apps`' v2 streams), marked `"exists": false`. The help
/// view and the customer's console page both show this list.
pub(crate) fn usable_streams(
    state: &AppState,
    account: &str,
    stored: &[StoredStream],
    apps: &[StoredApp],
) -> Vec<Value> {
    let mut streams: Vec<Value> = stored.iter().map(|s| describe_stored(state, s)).collect();
    let exists = |key: &StreamRef| stored.iter().any(|s| &s.stream == key);
    let mut first_use = vec![(powerstream::stream_ref(account), powerstream::limits(state))];
    for app in apps {
        for product in Product::V2 {
            first_use.push((app.stream(product), app.stream_limits(product)));
        }
    }
    for (key, limits) in first_use.into_iter().filter(|(key, _)| !exists(key)) {
        let mut v = urls::describe_stream(state, &key, 0, 0, limits);
        v["exists"] = json!(false);
        streams.push(v);
    }
    streams
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &[(&str, &str)]) -> Vec<(String, String)> {
        query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn page_queries_are_checked() {
        let token = encode_next_token("acme");
        assert_eq!(
            page_query(&pairs(&[("next_token", &token), ("max_results", "5")])).unwrap(),
            PageQuery {
                after: Some("acme".into()),
                max_results: 5
            }
        );
        assert_eq!(page_query(&[]).unwrap().max_results, DEFAULT_PAGE);
        let dotted = encode_next_token("..");
        let latin1 = URL_SAFE_NO_PAD.encode([0xe9]);
        #[rustfmt::skip]
        let refused: &[(&str, &str, &str)] = &[
            ("next_token", "!!", "Invalid next_token"),
            ("next_token", "", "Invalid next_token"),
            ("next_token", &dotted, "Invalid next_token"),
            ("next_token", &latin1, "Invalid next_token"),
            ("max_results", "0", "Invalid max_results"),
            ("max_results", "1001", "Invalid max_results"),
            ("max_results", "-1", "Invalid max_results"),
            ("max_results", "ten", "Invalid max_results"),
            ("page", "2", "Unknown query parameter \"page\""),
        ];
        for (key, value, message) in refused {
            let e = page_query(&pairs(&[(key, value)])).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
            assert!(
                e.message.starts_with(message),
                "{key}={value}: {}",
                e.message
            );
        }
    }
}
