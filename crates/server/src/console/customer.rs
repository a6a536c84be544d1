//! The customer's console endpoints. Every one works on the account of the signed-in user
//! and nothing else: the account comes from the session, never from the request, so a
//! customer cannot name another account's stream, even one with the same label.
//!
//! Rules go through [`crate::api::rules_service`] in the dialect of the stream's product
//! (a PowerTrack stream's, or the account's Powerstream rule set, `?product=powerstream`),
//! so the messages shown for invalid rules are X's, and adds are all or nothing as in the
//! rules API (an import of many rules is one add).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_rules::Dialect;
use sluice_store::{AddOutcome, Product, StoredRule, StreamRef};
use sluice_wire::add::TAG_TOO_LONG_MESSAGE;
use sluice_wire::error::RULE_LIMIT_MESSAGE;
use sluice_wire::{RuleInput, RulesRequest};

use super::session::Role;
use super::{ConsoleError, help, json_ok, signed_in};
use crate::api::accounts::usable_streams;
use crate::api::body::UnreadBody;
use crate::api::error::ApiError;
use crate::api::powerstream;
use crate::api::rules_service::{self, Named, Verdict};
use crate::registry::LiveStream;
use crate::state::AppState;

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
    account_stream(state, account, Product::PowerTrack, "PowerTrack", label)
}

/// The stream `label` of `product` of `account`, or a 404 that names the product as
/// `title` ("PowerTrack").
fn account_stream(
    state: &AppState,
    account: &str,
    product: Product,
    title: &str,
    label: &str,
) -> Result<Arc<LiveStream>, ConsoleError> {
    let key = StreamRef {
        account: account.to_owned(),
        product,
        label: label.to_owned(),
    };
    state.registry.get(&key).ok_or_else(|| {
        ConsoleError::not_found(format!("Your account has no {title} stream '{label}'."))
    })
}

/// Which rules a rules call is about: a PowerTrack stream's (the default), with
/// `?product=powertrack-replay` a PowerTrack Replay stream's, or with
/// `?product=powerstream` the account's Powerstream rule set (its label is
/// [`powerstream::LABEL`]).
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RulesQuery {
    product: Option<String>,
}

impl RulesQuery {
    /// The product named: PowerTrack, PowerTrack Replay or Powerstream, a 400 for
    /// anything else.
    fn product(&self) -> Result<Product, ConsoleError> {
        match self.product.as_deref() {
            None | Some("powertrack") => Ok(Product::PowerTrack),
            Some("powertrack-replay") => Ok(Product::PowerTrackReplay),
            Some("powerstream") => Ok(Product::Powerstream),
            Some(other) => Err(ConsoleError::new(
                StatusCode::BAD_REQUEST,
                format!(
                    "The console has no rules of product {other:?}: use powertrack, \
                     powertrack-replay or powerstream."
                ),
            )),
        }
    }
}

/// The rules stream of `account` that a rules call names: its PowerTrack or PowerTrack
/// Replay stream `label` (404 if it has none), or its Powerstream rule set (made on first
/// use, as the Powerstream rules API does).
async fn rules_stream(
    state: &AppState,
    account: &str,
    product: Product,
    label: &str,
) -> Result<Arc<LiveStream>, ConsoleError> {
    if product == Product::PowerTrack {
        return powertrack_stream(state, account, label);
    }
    if product == Product::PowerTrackReplay {
        return account_stream(state, account, product, "PowerTrack Replay", label);
    }
    if label != powerstream::LABEL {
        return Err(ConsoleError::not_found(format!(
            "The Powerstream rule set is labelled '{}'.",
            powerstream::LABEL
        )));
    }
    powerstream::ensure_stream(state, account)
        .await
        .map_err(|e| ConsoleError::from(ApiError::from(e)))
}

fn dialect(product: Product) -> Dialect {
    product
        .spec()
        .dialect()
        .expect("a product with a rules API")
}

/// A rule as the page shows it; ids as strings (they exceed JavaScript's exact integers).
fn rule_json(rule: &StoredRule) -> Value {
    json!({ "id": rule.id.to_string(), "value": rule.value, "tag": rule.tag })
}

/// `GET /console/api/account`: the API help page: every stream the account may use (as
/// the admin API's help view lists them: its streams, its Powerstream rule set, its v2
/// apps' streams), each with its URLs, limits, rule count and curl commands.
pub(super) async fn account(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, ConsoleError> {
    let (account, username) = as_customer(&state, &headers, &method)?;
    let a = account.clone();
    let (stored, apps) = state
        .blocking(move |s| Ok::<_, sluice_store::StoreError>((s.streams(&a)?, s.apps(&a)?)))
        .await
        .map_err(|e| ConsoleError::from(ApiError::from(e)))?;
    let mut streams = usable_streams(&state, &account, &stored, &apps);
    for v in &mut streams {
        let key = StreamRef {
            account: account.clone(),
            product: v["product"]
                .as_str()
                .and_then(|p| p.parse().ok())
                .unwrap_or(Product::PowerTrack),
            label: v["label"].as_str().unwrap_or_default().to_owned(),
        };
        if let Some(app) = apps.iter().find(|app| app.id == key.label) {
            v["app"] = json!(app.name);
        }
        v["curl"] = help::for_customer(&key, &username, v);
    }
    Ok(json_ok(
        StatusCode::OK,
        &json!({ "account": account, "username": username, "streams": streams }),
    ))
}

/// `GET /console/api/streams/{label}/rules[?product=powerstream]`: the stream's rules,
/// oldest first.
pub(super) async fn list_rules(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path(label): Path<String>,
    Query(query): Query<RulesQuery>,
) -> Result<Response, ConsoleError> {
    let (account, _) = as_customer(&state, &headers, &method)?;
    let live = rules_stream(&state, &account, query.product()?, &label).await?;
    let rules = rules_service::list(&state, &live).await?;
    let rules: Vec<Value> = rules.iter().map(rule_json).collect();
    Ok(json_ok(StatusCode::OK, &json!({ "rules": rules })))
}

/// X's message for why a rule is invalid, as the product's rules API words it (its text
/// first, then its tag); `None` if valid.
fn invalid_message(product: Product, verdict: &Verdict) -> Option<String> {
    if product == Product::Powerstream {
        let details = verdict.v2_details();
        return (!details.is_empty()).then(|| details.join(" "));
    }
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
    Query(query): Query<RulesQuery>,
    raw: UnreadBody,
) -> Result<Response, ConsoleError> {
    let (account, _) = as_customer(&state, &headers, &method)?;
    let product = query.product()?;
    let live = rules_stream(&state, &account, product, &label).await?;
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
    let most = product.spec().rules.and_then(|r| r.max_rules_per_add);
    if let Some(most) = most.filter(|most| request.rules.len() > *most) {
        return Err(ConsoleError::new(
            StatusCode::BAD_REQUEST,
            format!(
                "Too many rules in one request: {} given, at most {most} may be added at once.",
                request.rules.len()
            ),
        ));
    }
    let outcome = rules_service::add(&state, &live, request.rules, dialect(product), false).await?;
    Ok(match outcome {
        rules_service::AddOutcome::Invalid(checked) => {
            let detail: Vec<Value> = checked
                .rules
                .iter()
                .zip(&checked.verdicts)
                .map(|(rule, verdict)| detail(rule, invalid_message(product, verdict)))
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

/// `DELETE /console/api/streams/{label}/rules/{id}[?product=powerstream]`: 204, or 404
/// for a rule the stream does not have.
pub(super) async fn delete_rule(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Path((label, id)): Path<(String, String)>,
    Query(query): Query<RulesQuery>,
) -> Result<Response, ConsoleError> {
    let (account, _) = as_customer(&state, &headers, &method)?;
    let live = rules_stream(&state, &account, query.product()?, &label).await?;
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
