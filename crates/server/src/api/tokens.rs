//! The admin API's Powerstream tokens (docs/operator-interface.md, "Admin API"): issue
//! one (shown once, with an optional label), list them (public prefix, label, creation,
//! last use), revoke one by its prefix: refused at once, its open streams closed with the
//! credentials-revoked message.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::admin::{check_name, json, log_admin_change, read_body, require_account, require_admin};
use super::apps::rfc3339;
use super::body::UnreadBody;
use super::error::ApiError;
use crate::auth::{
    IssuedToken, POWERSTREAM_TOKEN_SCHEME, displayable_prefix, issue_powerstream_token, token_hash,
};
use crate::changes;
use crate::state::AppState;

/// The body of a token's creation: `{}`, or `{"label":"…"}` to tell tokens apart.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TokenBody {
    label: Option<String>,
}

/// `POST /admin/accounts/{account}/tokens`: a new Powerstream bearer token, shown once.
pub async fn create_token(
    State(state): State<AppState>,
    Path(account): Path<String>,
    headers: HeaderMap,
    raw: UnreadBody,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    require_account(&state, &account).await?;
    let TokenBody { label } = read_body(&state, raw).await?;
    if let Some(label) = &label {
        check_name("label", label)?;
    }
    let IssuedToken { token, prefix } = issue_powerstream_token();
    let hash = token_hash(&token);
    changes::add_token(&state, &account, hash, &prefix, label.as_deref()).await?;
    log_admin_change!(account, prefix, label, "powerstream token created");
    Ok(json(StatusCode::CREATED, &json!({ "token": token })))
}

/// `GET /admin/accounts/{account}/tokens`: each token's prefix, label (`null`: none),
/// creation time and last use (`null`: not used since this node started).
pub async fn list_tokens(
    State(state): State<AppState>,
    Path(account): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    require_account(&state, &account).await?;
    let a = account.clone();
    let tokens = state.blocking(move |s| s.tokens(&a)).await?;
    let tokens: Vec<Value> = tokens
        .iter()
        .map(|t| {
            json!({
                "prefix": displayable_prefix(&t.prefix),
                "label": t.label,
                "created": rfc3339(t.created_ms),
                "last_used": state.token_use.last_used(&t.hash).map(rfc3339),
            })
        })
        .collect();
    Ok(json(StatusCode::OK, &json!({ "tokens": tokens })))
}

/// Checks a token prefix as the list shows it: `sl_ps_` and the 8 hex characters of the
/// token's public id (tokens from before public ids show only `sl_ps_` and cannot be
/// named one by one).
fn check_prefix(prefix: &str) -> Result<(), ApiError> {
    if prefix != POWERSTREAM_TOKEN_SCHEME && displayable_prefix(prefix) == prefix {
        return Ok(());
    }
    Err(ApiError::bad_request(format!(
        "Invalid token prefix {prefix:?}: use the prefix the token list shows, \
         {POWERSTREAM_TOKEN_SCHEME} and 8 hexadecimal characters."
    )))
}

/// `DELETE /admin/accounts/{account}/tokens/{prefix}`: revokes the token; it is refused
/// from this moment and its open Powerstream streams are closed.
pub async fn revoke_token(
    State(state): State<AppState>,
    Path((account, prefix)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    check_prefix(&prefix)?;
    require_account(&state, &account).await?;
    if !changes::revoke_token(&state, &account, &prefix).await? {
        return Err(ApiError::not_found(format!(
            "Unknown token {prefix:?} of account {account:?}."
        )));
    }
    log_admin_change!(account, prefix, "powerstream token revoked");
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_prefixes_name_a_token() {
        #[rustfmt::skip]
        let cases: &[(&str, bool)] = &[
            ("sl_ps_0123abcd", true), ("sl_ps_", false), ("sl_ps_0123ABCD", false),
            ("sl_ps_0123abc", false), ("sl_ps_0123abcde", false), ("sl_admin_x", false),
            ("", false), ("sl_ps_0123abcd_secret", false),
        ];
        for &(prefix, ok) in cases {
            let checked = check_prefix(prefix);
            assert_eq!(checked.is_ok(), ok, "{prefix:?}");
            if let Err(e) = checked {
                assert_eq!(e.status, StatusCode::BAD_REQUEST);
                assert!(
                    e.message.starts_with("Invalid token prefix"),
                    "{}",
                    e.message
                );
            }
        }
    }
}
