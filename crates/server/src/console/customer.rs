//! The customer's console endpoints. Every one works on the account of the signed-in user
//! and nothing else: the account comes from the session, never from the request, so a
//! customer cannot name another account's stream, even one with the same label.
//!
//! Rules go through [`crate::api::rules_service`] in the PowerTrack dialect, so the
//! messages shown for invalid rules are X's, and adds are all or nothing as in the rules
//! API (an import of many rules is one add).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sluice_rules::Dialect;
use sluice_store::{AddOutcome, Product, StoredRule, StreamRef};
use sluice_wire::add::TAG_TOO_LONG_MESSAGE;
use sluice_wire::error::RULE_LIMIT_MESSAGE;
use sluice_wire::{RuleInput, RulesRequest};

use super::session::Role;
use super::{ConsoleError, help, json_ok, signed_in};
use crate::api::body::UnreadBody;
use crate::api::rules_service::{self, Named, Verdict};
use crate::registry::LiveStream;
use crate::state::AppState;
use crate::urls;

/// The signed-in customer: account and username. 401 without a session, 403 for the
/// operator's (the operator has no account of its own).
pub(super) fn as_customer(
    state: &AppState,
    headers: &HeaderMap,
    method: &Method,
) -> Result<(String, String), ConsoleError> {
    match signed_in(state, headers, method)?.role {
        Role::Customer {
            account, username, ..
        } => Ok((account, username)),
        Role::Operator { .. } => Err(ConsoleError::new(
            StatusCode::FORBIDDEN,
            "Sign in as a user of an account to see its streams and rules.",
        )),
    }
}

/// The PowerTrack stream `label` of `account`, or 404.
pub(super) fn powertrack_stream(
    state: &AppState,
    account: &str,
    label: &str,
) -> Result<Arc<LiveStream>, ConsoleError> {
    let key = StreamRef {
        account: account.to_owned(),
        product: Product::PowerTrack,
        label: label.to_owned(),
    };
    state.registry.get(&key).ok_or_else(|| {
        ConsoleError::not_found(format!("Your account has no PowerTrack stream '{label}'."))
    })
}

fn dialect() -> Dialect {
    Product::PowerTrack
        .spec()
        .dialect()
        .expect("PowerTrack has a rules API")
}

/// A rule as the page shows it; ids as strings (they exceed JavaScript's exact integers).
fn rule_json(rule: &StoredRule) -> Value {
    json!({ "id": rule.id.to_string(), "value": rule.value, "tag": rule.tag })
}

/// `GET /console/api/account`: the API help page: the account's streams, each with its
/// URLs, limits, rule count and curl commands.
pub(super) async fn account(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ConsoleError> {
    let (account, username) = as_customer(&state, &headers, &method)?;
    let a = account.clone();
    let stored = state
        .blocking(move |s| s.streams(&a))
        .await
        .map_err(|e| ConsoleError::from(crate::api::error::ApiError::from(e)))?;
    let streams: Vec<Value> = stored
        .iter()
        .map(|stored| {
            let live = state.registry.get(&stored.stream);
            let (rules, connections) = live
                .map(|l| (l.rules.len(), l.connections.len()))
                .unwrap_or_default();
            let mut v =
                urls::describe_stream(&state, &stored.stream, rules, connections, stored.limits);
            let stream_url = v["stream_url"].as_str().unwrap_or_default().to_owned();
            let rules_url = v["rules_url"].as_str().map(str::to_owned);
            v["curl"] =
                help::commands(&stored.stream, &username, &stream_url, rules_url.as_deref());
            v
        })
        .collect();
    Ok(json_ok(
        StatusCode::OK,
        &json!({ "account": account, "username": username, "streams": streams }),
    ))
}

/// `GET /console/api/streams/{label}/rules`: the stream's rules, oldest first.
pub(super) async fn list_rules(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path(label): Path<String>,
) -> Result<Response, ConsoleError> {
    let (account, _) = as_customer(&state, &headers, &method)?;
    let live = powertrack_stream(&state, &account, &label)?;
    let rules = rules_service::list(&state, &live).await?;
    let rules: Vec<Value> = rules.iter().map(rule_json).collect();
    Ok(json_ok(StatusCode::OK, &json!({ "rules": rules })))
}

/// X's message for why a rule is invalid (its text first, then its tag); `None` if valid.
fn invalid_message(verdict: &Verdict) -> Option<String> {
    match &verdict.parsed {
        Err(e) => Some(e.powertrack_message().to_owned()),
        Ok(_) if verdict.tag_too_long => Some(TAG_TOO_LONG_MESSAGE.to_owned()),
        Ok(_) => None,
    }
}

/// `POST /console/api/streams/{label}/rules` with `{"rules":[{"value","tag"},…]}` (one
/// rule from the form, many from an import): all added (201), or none, with X's message
/// for each invalid rule (422).
pub(super) async fn add_rules(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path(label): Path<String>,
    raw: UnreadBody,
) -> Result<Response, ConsoleError> {
    let (account, _) = as_customer(&state, &headers, &method)?;
    let live = powertrack_stream(&state, &account, &label)?;
    let settings = &state.settings;
    let bytes = raw
        .read(settings.rules_body_limit, settings.body_read_timeout)
        .await
        .map_err(|e| ConsoleError::new(e.status(), e.message()))?;
    let request = RulesRequest::from_slice(&bytes).map_err(|e| {
        ConsoleError::new(
            StatusCode::BAD_REQUEST,
            format!("Expected {{\"rules\":[{{\"value\":\"…\",\"tag\":\"…\"}}]}}: {e}"),
        )
    })?;
    if request.rules.is_empty() {
        return Err(ConsoleError::new(
            StatusCode::BAD_REQUEST,
            "No rules to add.",
        ));
    }
    let outcome = rules_service::add(&state, &live, request.rules, dialect(), false).await?;
    Ok(match outcome {
        rules_service::AddOutcome::Invalid(checked) => {
            let detail: Vec<Value> = checked
                .rules
                .iter()
                .zip(&checked.verdicts)
                .map(|(rule, verdict)| detail(rule, invalid_message(verdict)))
                .collect();
            let invalid = detail.iter().filter(|d| !d["message"].is_null()).count();
            json_ok(
                StatusCode::UNPROCESSABLE_ENTITY,
                &json!({
                    "error": format!("{invalid} of {} rules are invalid: nothing was added.", detail.len()),
                    "detail": detail,
                }),
            )
        }
        rules_service::AddOutcome::OverCap { rules, .. } => json_ok(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!({
                "error": RULE_LIMIT_MESSAGE,
                "detail": rules.iter().map(|r| detail(r, Some(RULE_LIMIT_MESSAGE.to_owned()))).collect::<Vec<_>>(),
            }),
        ),
        rules_service::AddOutcome::Applied { outcomes, .. } => {
            let created = outcomes
                .iter()
                .filter(|o| matches!(o, AddOutcome::Created(_)))
                .count();
            tracing::info!(account, label, created, "console: rules added");
            json_ok(
                StatusCode::CREATED,
                &json!({ "created": created, "existing": outcomes.len() - created }),
            )
        }
    })
}

fn detail(rule: &RuleInput, message: Option<String>) -> Value {
    json!({ "value": rule.value, "tag": rule.tag, "message": message })
}

/// `DELETE /console/api/streams/{label}/rules/{id}`: 204, or 404 for a rule the stream
/// does not have.
pub(super) async fn delete_rule(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path((label, id)): Path<(String, String)>,
) -> Result<Response, ConsoleError> {
    let (account, _) = as_customer(&state, &headers, &method)?;
    let live = powertrack_stream(&state, &account, &label)?;
    let no_rule = || ConsoleError::not_found(format!("Stream '{label}' has no rule {id}."));
    let id: u64 = id.parse().map_err(|_| no_rule())?;
    let deleted = rules_service::delete(&state, &live, &[Named::Id(id)], false).await?;
    if deleted.first().is_some_and(Option::is_some) {
        tracing::info!(account, label, rule = id, "console: rule deleted");
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(no_rule())
    }
}
