//! The PowerTrack rules API (docs/compatibility.md §2 and "Decisions"): list, add, delete, get one, get
//! many and validate the rules of one PowerTrack stream. PowerTrack Replay streams have the
//! same API at their own row's rules URL over their own rule set (docs/compatibility.md
//! "Replay"): [`routes`] serves it for either product.
//!
//! Every call: basic auth for the account in the path, the stream must exist (404), then
//! one request is counted against the stream's 60-per-minute window (429 past it); every
//! answer after that carries the `x-rate-limit-*` headers, and every answer is gzip-encoded
//! when the request accepted gzip. Adds and deletes take the stream's `rules_gate`, commit
//! to the store, then publish to matching before answering, so an acknowledged rule is
//! durable and in effect for the next post ingested.
//!
//! Decisions where the spec is silent (also in the route docs below):
//! - an add or validation with an empty `rules` list is malformed (400 Invalid JSON);
//!   an empty delete or get-many list is answered 200 with nothing done;
//! - over the rule cap: 422 with the add `summary`/`detail` envelope, every rule
//!   `created:false` with X's Rule Limit message;
//! - get one with an unknown id: 200 with an empty `rules` list (as get-many skips unknown
//!   ids); a malformed id segment is a 404;
//! - the 400 Invalid JSON body is stamped in the stream `sent` format, as X's example is;
//! - a tag over 255 characters makes the rule invalid with [`TAG_TOO_LONG_MESSAGE`].

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use sluice_rules::Dialect;
use sluice_store::{AddOutcome, Product};
use sluice_wire::add::TAG_TOO_LONG_MESSAGE;
use sluice_wire::error::RULE_LIMIT_MESSAGE;
use sluice_wire::{
    AddDetail, AddResponse, DeleteDetail, DeleteRequest, DeleteResponse, DeleteTarget,
    INVALID_JSON_MESSAGE, RuleIdsRequest, RuleInput, RuleValue, RulesRequest, RulesResponse,
    ValidationDetail, ValidationResponse,
};

use super::auth::authorize;
use crate::api::body::UnreadBody;
use crate::api::encoding::accepts_gzip;
use crate::api::error::{ApiError, json_response, with_rate};
use crate::api::gnip::label_of;
use crate::api::rules_service::{self, Named, Verdict};
use crate::registry::LiveStream;
use crate::state::AppState;
use crate::telemetry;

/// The routes of the rules API of `product` (PowerTrack or PowerTrack Replay) at its row's
/// rules URL: `{label}.json` (list, add, delete, get many), `{label}/rules/{rule_id}.json`
/// and `{label}/validation.json`.
pub fn routes(product: Product) -> Router<AppState> {
    let url = product
        .spec()
        .rules
        .expect("only products with a rules API have rules routes")
        .url;
    // `{label}.json` is one path segment: the handlers strip `.json` from it.
    let base = url
        .strip_suffix("{label}.json")
        .expect("a Gnip rules URL ends in '{label}.json'");
    Router::new()
        .route(
            &format!("{base}{{label}}"),
            get(
                move |state: State<AppState>, path: Path<(String, String)>, headers: HeaderMap| {
                    list(product, state, path, headers)
                },
            )
            .post(
                move |state: State<AppState>,
                      path: Path<(String, String)>,
                      query: RawQuery,
                      headers: HeaderMap,
                      bytes: UnreadBody| {
                    post(product, state, path, query, headers, bytes)
                },
            )
            .delete(
                move |state: State<AppState>,
                      path: Path<(String, String)>,
                      headers: HeaderMap,
                      bytes: UnreadBody| {
                    delete(product, state, path, headers, bytes)
                },
            ),
        )
        .route(
            &format!("{base}{{label}}/rules/{{rule_id}}"),
            get(
                move |state: State<AppState>,
                      path: Path<(String, String, String)>,
                      headers: HeaderMap| {
                    get_one(product, state, path, headers)
                },
            ),
        )
        .route(
            &format!("{base}{{label}}/validation.json"),
            axum::routing::post(
                move |state: State<AppState>,
                      path: Path<(String, String)>,
                      headers: HeaderMap,
                      bytes: UnreadBody| {
                    validate(product, state, path, headers, bytes)
                },
            ),
        )
}

/// The rules dialect of `product`, from its row of the product table.
fn dialect(product: Product) -> Dialect {
    product
        .spec()
        .dialect()
        .expect("only products with a rules API have rules handlers")
}

/// What a handler gets once the caller is authenticated, the stream found and the request
/// counted.
struct Call {
    state: AppState,
    product: Product,
    live: Arc<LiveStream>,
    gzip: bool,
}

impl Call {
    /// A JSON answer, gzip-encoded when accepted.
    fn json<T: Serialize>(&self, status: StatusCode, body: &T) -> Response {
        json_response(status, sluice_wire::to_vec(body), self.gzip)
    }
}

/// Runs `op` for the stream `account`/`label` (label `None`: the URL names no stream),
/// after auth, stream lookup and rate limiting; adds the rate headers, gzips errors and
/// counts the request.
async fn run<F, Fut>(
    state: AppState,
    product: Product,
    account: &str,
    label: Option<&str>,
    headers: &HeaderMap,
    op: F,
) -> Response
where
    F: FnOnce(Call) -> Fut,
    Fut: Future<Output = Result<Response, ApiError>>,
{
    let gzip = accepts_gzip(headers);
    let result = async {
        let label = label
            .ok_or_else(|| ApiError::not_found("Not found: rules URLs end in '{label}.json'."))?;
        let live = authorize(&state, product, account, label, headers, gzip).await?;
        let rate = state
            .limits
            .rules(product)
            .check(&live.id.to_string())
            .map_err(ApiError::rate_limited)?;
        let call = Call {
            state,
            product,
            live,
            gzip,
        };
        with_rate(op(call).await, rate)
    }
    .await;
    let response = result.unwrap_or_else(|e| e.gzip(gzip).into_response());
    telemetry::rules_request(product.as_str(), response.status().as_u16());
    response
}

/// X's 400 for a body that is not JSON of the expected shape.
fn invalid_json(why: impl std::fmt::Display) -> ApiError {
    tracing::debug!("rules request refused: {why}");
    ApiError::bad_request(INVALID_JSON_MESSAGE).stream_sent()
}

/// The request body, read once the caller is authenticated: 413 past
/// `settings.rules_body_limit`, 408 past `settings.body_read_timeout`.
async fn body(call: &Call, body: UnreadBody) -> Result<Bytes, ApiError> {
    let settings = &call.state.settings;
    let bytes = body
        .read(settings.rules_body_limit, settings.body_read_timeout)
        .await?;
    Ok(bytes)
}

/// An add or validate body with at least one rule.
fn rules_request(bytes: &[u8]) -> Result<RulesRequest, ApiError> {
    let request = RulesRequest::from_slice(bytes).map_err(invalid_json)?;
    if request.rules.is_empty() {
        return Err(invalid_json("empty rules list"));
    }
    Ok(request)
}

/// X's message for why a rule is invalid (its text first, then its tag); `None` if valid.
fn invalid_message(verdict: &Verdict) -> Option<String> {
    match &verdict.parsed {
        Err(e) => Some(e.powertrack_message().to_owned()),
        Ok(_) if verdict.tag_too_long => Some(TAG_TOO_LONG_MESSAGE.to_owned()),
        Ok(_) => None,
    }
}

fn echo(rule: &RuleInput) -> RuleValue {
    RuleValue {
        value: rule.value.clone(),
        tag: rule.tag.clone(),
    }
}

/// `200 {"rules":[…],"sent":…}`: the body of a list and of the gets.
fn rules_listed(call: &Call, rules: Vec<sluice_store::StoredRule>) -> Response {
    let rules = rules.into_iter().map(wire_rule).collect();
    let sent = sluice_wire::sent::rules_sent_now();
    call.json(StatusCode::OK, &RulesResponse::new(rules, sent))
}

fn wire_rule(rule: sluice_store::StoredRule) -> sluice_wire::Rule {
    sluice_wire::Rule {
        value: rule.value,
        tag: rule.tag,
        id: rule.id,
    }
}

/// The `_method` query parameter, lower-cased: how a client that can only `POST` asks for
/// another operation. PowerTrack's convention, which the Powerstream rules API follows too.
pub(crate) fn method_override(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == "_method")
        .map(|(_, value)| value.to_ascii_lowercase())
}

/// `GET /rules/powertrack/accounts/{account}/publishers/twitter/{label}.json`: every rule,
/// oldest first.
pub async fn list(
    product: Product,
    State(state): State<AppState>,
    Path((account, segment)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    run(
        state,
        product,
        &account,
        label_of(&segment),
        &headers,
        |call| async move {
            let rules = rules_service::list(&call.state, &call.live).await?;
            Ok(rules_listed(&call, rules))
        },
    )
    .await
}

/// `POST …/{label}.json`: add; with `?_method=delete` delete, with `?_method=get` get many.
pub async fn post(
    product: Product,
    State(state): State<AppState>,
    Path((account, segment)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    bytes: UnreadBody,
) -> Response {
    let method = method_override(query.as_deref());
    run(
        state,
        product,
        &account,
        label_of(&segment),
        &headers,
        |call| async move {
            let bytes = body(&call, bytes).await?;
            match method.as_deref() {
                None => add(call, &bytes).await,
                Some("delete") => delete_rules(call, &bytes).await,
                Some("get") => get_many(call, &bytes).await,
                Some(other) => Err(ApiError::bad_request(format!(
                    "Unsupported _method '{other}': use 'get' or 'delete'."
                ))),
            }
        },
    )
    .await
}

/// `DELETE …/{label}.json` with a delete body (PT1.0 clients).
pub async fn delete(
    product: Product,
    State(state): State<AppState>,
    Path((account, segment)): Path<(String, String)>,
    headers: HeaderMap,
    bytes: UnreadBody,
) -> Response {
    run(
        state,
        product,
        &account,
        label_of(&segment),
        &headers,
        |call| async move {
            let bytes = body(&call, bytes).await?;
            delete_rules(call, &bytes).await
        },
    )
    .await
}

/// `GET …/{label}/rules/{rule_id}.json`: one rule; an unknown id gives an empty list.
pub async fn get_one(
    product: Product,
    State(state): State<AppState>,
    Path((account, label, segment)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let label = Some(label.as_str()).filter(|l| !l.is_empty());
    run(
        state,
        product,
        &account,
        label,
        &headers,
        |call| async move {
            let id: u64 = segment
                .strip_suffix(".json")
                .and_then(|id| id.parse().ok())
                .ok_or_else(|| {
                    ApiError::not_found("Not found: rule URLs end in '/rules/{rule_id}.json'.")
                })?;
            let rules = rules_service::by_ids(&call.state, &call.live, vec![id]).await?;
            Ok(rules_listed(&call, rules))
        },
    )
    .await
}

/// `POST …/{label}/validation.json`: checks the rules without touching the stream.
pub async fn validate(
    product: Product,
    State(state): State<AppState>,
    Path((account, label)): Path<(String, String)>,
    headers: HeaderMap,
    bytes: UnreadBody,
) -> Response {
    let label = Some(label.as_str()).filter(|l| !l.is_empty());
    run(
        state,
        product,
        &account,
        label,
        &headers,
        |call| async move {
            let bytes = body(&call, bytes).await?;
            let request = rules_request(&bytes)?;
            let checked = rules_service::validate(request.rules, dialect(call.product)).await?;
            let detail = checked
                .rules
                .iter()
                .zip(&checked.verdicts)
                .map(|(rule, verdict)| match invalid_message(verdict) {
                    None => ValidationDetail::valid(echo(rule)),
                    Some(message) => ValidationDetail::invalid(echo(rule), message),
                })
                .collect();
            let sent = sluice_wire::sent::rules_sent_now();
            Ok(call.json(StatusCode::OK, &ValidationResponse::new(detail, sent)))
        },
    )
    .await
}

/// Adds a batch: 422 (nothing created) when any rule is invalid or the batch would pass
/// the rule cap, else 201 with duplicates named by their existing rule.
async fn add(call: Call, bytes: &[u8]) -> Result<Response, ApiError> {
    let request = rules_request(bytes)?;
    let live = call.live.clone();
    let outcome = rules_service::add(
        &call.state,
        &live,
        request.rules,
        dialect(call.product),
        false,
    )
    .await?;
    let sent = sluice_wire::sent::rules_sent_now();
    let (rules, outcomes) = match outcome {
        rules_service::AddOutcome::Invalid(checked) => {
            let detail = checked
                .rules
                .iter()
                .zip(&checked.verdicts)
                .map(|(rule, verdict)| AddDetail::refused(echo(rule), invalid_message(verdict)))
                .collect();
            return Ok(call.json(
                StatusCode::UNPROCESSABLE_ENTITY,
                &AddResponse::new(detail, sent),
            ));
        }
        rules_service::AddOutcome::OverCap {
            rules,
            existing,
            adding,
            limit,
        } => {
            tracing::info!(
                account = %live.key.account,
                label = %live.key.label,
                product = call.product.as_str(),
                existing, adding, limit,
                "rules add refused: rule limit"
            );
            let detail = rules
                .iter()
                .map(|rule| AddDetail::refused(echo(rule), Some(RULE_LIMIT_MESSAGE.to_owned())))
                .collect();
            return Ok(call.json(
                StatusCode::UNPROCESSABLE_ENTITY,
                &AddResponse::new(detail, sent),
            ));
        }
        rules_service::AddOutcome::Applied { rules, outcomes } => (rules, outcomes),
    };
    let detail: Vec<AddDetail> = rules
        .into_iter()
        .zip(outcomes)
        .map(|(submitted, outcome)| match outcome {
            AddOutcome::Created(rule) => AddDetail::created(wire_rule(rule)),
            AddOutcome::Existing(found) => AddDetail::existing(sluice_wire::Rule {
                value: submitted.value,
                tag: submitted.tag,
                id: found.id,
            }),
        })
        .collect();
    let response = AddResponse::new(detail, sent);
    tracing::info!(
        account = %live.key.account,
        label = %live.key.label,
        created = response.summary.created,
        not_created = response.summary.not_created,
        rules = live.rules.len(),
        product = call.product.as_str(),
        "rules added"
    );
    Ok(call.json(StatusCode::CREATED, &response))
}

/// Deletes by value or by id; always 200, listing the entries that named no rule.
async fn delete_rules(call: Call, bytes: &[u8]) -> Result<Response, ApiError> {
    let request = DeleteRequest::from_slice(bytes).map_err(invalid_json)?;
    let live = call.live.clone();
    let (deleted, detail) = match request {
        DeleteRequest::Values(entries) => {
            // Entries without a value name no rule.
            let named: Vec<Named> = entries
                .iter()
                .map(|e| e.value.clone().map_or(Named::Nothing, Named::Value))
                .collect();
            let found = rules_service::delete(&call.state, &live, &named, false).await?;
            missing(entries.into_iter().zip(found), DeleteTarget::by_value)
        }
        DeleteRequest::Ids(ids) => {
            let named: Vec<Named> = ids.iter().copied().map(Named::Id).collect();
            let found = rules_service::delete(&call.state, &live, &named, false).await?;
            missing(ids.into_iter().zip(found), DeleteTarget::by_id)
        }
    };
    let response = DeleteResponse::new(deleted, detail, sluice_wire::sent::rules_sent_now());
    tracing::info!(
        account = %live.key.account,
        label = %live.key.label,
        deleted = response.summary.deleted,
        not_deleted = response.summary.not_deleted,
        rules = live.rules.len(),
        product = call.product.as_str(),
        "rules deleted"
    );
    Ok(call.json(StatusCode::OK, &response))
}

/// The number of entries that found a rule, and a detail for each that did not.
fn missing<T, R>(
    entries: impl Iterator<Item = (T, Option<R>)>,
    target: impl Fn(T) -> DeleteTarget,
) -> (usize, Vec<DeleteDetail>) {
    let mut deleted = 0;
    let mut detail = Vec::new();
    for (entry, found) in entries {
        match found {
            Some(_) => deleted += 1,
            None => detail.push(DeleteDetail::missing(target(entry))),
        }
    }
    (deleted, detail)
}

/// The rules with the given ids, in the order asked (unknown ids and repeats skipped).
async fn get_many(call: Call, bytes: &[u8]) -> Result<Response, ApiError> {
    let RuleIdsRequest { rule_ids } = RuleIdsRequest::from_slice(bytes).map_err(invalid_json)?;
    let mut seen = std::collections::HashSet::with_capacity(rule_ids.len());
    let ids: Vec<u64> = rule_ids.into_iter().filter(|id| seen.insert(*id)).collect();
    let rules = rules_service::by_ids(&call.state, &call.live, ids).await?;
    Ok(rules_listed(&call, rules))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_override_is_found_among_other_parameters() {
        assert_eq!(
            method_override(Some("_method=delete")).as_deref(),
            Some("delete")
        );
        assert_eq!(
            method_override(Some("a=1&_method=GET")).as_deref(),
            Some("get")
        );
        assert_eq!(method_override(Some("a=1")), None);
        assert_eq!(method_override(None), None);
    }
}
