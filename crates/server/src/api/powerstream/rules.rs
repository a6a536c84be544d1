//! The Powerstream rules API in X's v2 shapes: `GET`/`POST`/`DELETE /2/powerstream/rules`.
//! This module parses the requests (body, `_method`, `dry_run`) and renders the outcomes of
//! [`crate::api::rules_service`]; the decisions are in the module doc of [`super`].

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sluice_rules::Dialect;
use sluice_store::{AddOutcome, Product};
use sluice_wire::RulesRequest;
use sluice_wire::error::RULE_LIMIT_MESSAGE;
use sluice_wire::v2::{
    AddResponse, DeleteRequest, DeleteResponse, DeleteTarget, ListResponse, RuleProblem, StreamRule,
};

use super::auth::authenticate;
use super::ensure_stream;
use crate::api::body::UnreadBody;
use crate::api::error::{json_response, with_rate};
use crate::api::problem::ProblemError;
use crate::api::rules_service::{self, Named};
use crate::registry::LiveStream;
use crate::state::AppState;
use crate::telemetry;

/// Powerstream's rules API facts: its row of the product table.
fn spec() -> &'static sluice_store::RulesSpec {
    Product::Powerstream
        .spec()
        .rules
        .as_ref()
        .expect("Powerstream has a rules API")
}

/// What a rules handler gets once the caller is authenticated and the request counted.
struct RulesCall {
    state: AppState,
    live: Arc<LiveStream>,
}

fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    json_response(status, sluice_wire::to_vec(body), false)
}

/// Runs `op` after auth and the product's rules limit (50 per 24 h per account); adds the
/// rate headers to whatever it answers and counts the request.
async fn run_rules<F, Fut>(state: AppState, headers: &HeaderMap, op: F) -> Response
where
    F: FnOnce(RulesCall) -> Fut,
    Fut: Future<Output = Result<Response, ProblemError>>,
{
    let result = async {
        let account = authenticate(&state, headers).await?;
        let rate = state
            .limits
            .rules(Product::Powerstream)
            .check(&account)
            .map_err(ProblemError::rate_limited)?;
        let outcome = async {
            let live = ensure_stream(&state, &account).await?;
            op(RulesCall {
                state: state.clone(),
                live,
            })
            .await
        }
        .await;
        with_rate(outcome, rate)
    }
    .await;
    let response = result.unwrap_or_else(IntoResponse::into_response);
    telemetry::rules_request(Product::Powerstream.as_str(), response.status().as_u16());
    response
}

/// The request body, read once the caller is authenticated: 413 past
/// `settings.rules_body_limit`, 408 past `settings.body_read_timeout`.
async fn body(state: &AppState, body: UnreadBody) -> Result<Bytes, ProblemError> {
    let settings = &state.settings;
    let bytes = body
        .read(settings.rules_body_limit, settings.body_read_timeout)
        .await?;
    Ok(bytes)
}

/// `GET /2/powerstream/rules`: every rule of the account, oldest first.
pub async fn list_rules(State(state): State<AppState>, headers: HeaderMap) -> Response {
    run_rules(state, &headers, |call| async move {
        let rules = rules_service::list(&call.state, &call.live).await?;
        let rules = rules.into_iter().map(stream_rule).collect();
        let sent = sluice_wire::sent::rules_sent_now();
        Ok(json(StatusCode::OK, &ListResponse::new(rules, sent)))
    })
    .await
}

/// The query of a rules change: `_method` (`POST` only) and `dry_run`.
#[derive(Debug, Default, PartialEq, Eq)]
struct ChangeQuery {
    /// `_method`, lower-cased (the first one given).
    method: Option<String>,
    /// `dry_run=true`: validate and answer, change nothing.
    dry_run: bool,
}

impl ChangeQuery {
    /// Parses `raw`, accepting the parameters named in `accepted` (`_method` and/or
    /// `dry_run`); an unknown parameter, or a `dry_run` other than `true`/`false` (any
    /// case), is an `invalid-request` problem in X's v2 wording.
    fn parse(raw: Option<&str>, accepted: &[&str]) -> Result<Self, ProblemError> {
        let mut query = ChangeQuery::default();
        for (key, value) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            if !accepted.contains(&key.as_ref()) {
                return Err(ProblemError::invalid_request(format!(
                    "The query parameter [{key}] is not one of [{}]",
                    accepted.join(",")
                )));
            }
            match key.as_ref() {
                "dry_run" => {
                    query.dry_run = match value.to_ascii_lowercase().as_str() {
                        "true" => true,
                        "false" => false,
                        _ => {
                            return Err(ProblemError::invalid_request(format!(
                                "The `dry_run` query parameter value [{value}] is not one of \
                                 [true,false]"
                            )));
                        }
                    };
                }
                _ => {
                    query
                        .method
                        .get_or_insert_with(|| value.to_ascii_lowercase());
                }
            }
        }
        Ok(query)
    }
}

/// `POST /2/powerstream/rules`: add; with `?_method=delete`, delete; with `dry_run=true`,
/// either one validated and answered without changing anything.
pub async fn post_rules(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    bytes: UnreadBody,
) -> Response {
    run_rules(state, &headers, |call| async move {
        let query = ChangeQuery::parse(query.as_deref(), &["dry_run", "_method"])?;
        let bytes = body(&call.state, bytes).await?;
        match query.method.as_deref() {
            None => add(call, &bytes, query.dry_run).await,
            Some("delete") => delete(call, &bytes, query.dry_run).await,
            Some(other) => Err(ProblemError::invalid_request(format!(
                "Unsupported _method '{other}': use 'delete', or no _method to add rules."
            ))),
        }
    })
    .await
}

/// `DELETE /2/powerstream/rules[?dry_run=true]`.
pub async fn delete_rules(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    bytes: UnreadBody,
) -> Response {
    run_rules(state, &headers, |call| async move {
        let query = ChangeQuery::parse(query.as_deref(), &["dry_run"])?;
        let bytes = body(&call.state, bytes).await?;
        delete(call, &bytes, query.dry_run).await
    })
    .await
}

/// The rules dialect of Powerstream, from its row of the product table.
fn dialect() -> Dialect {
    spec().dialect
}

fn stream_rule(rule: sluice_store::StoredRule) -> StreamRule {
    StreamRule {
        id: rule.id,
        value: rule.value,
        tag: rule.tag,
    }
}

/// Adds 1 to 100 rules, all or nothing; with `dry_run`, only says what it would do (200).
async fn add(call: RulesCall, bytes: &[u8], dry_run: bool) -> Result<Response, ProblemError> {
    let request = RulesRequest::from_slice(bytes).map_err(|e| {
        ProblemError::invalid_request(format!(
            "The body must be {{\"rules\":[{{\"value\":\"…\",\"tag\":\"…\"}}]}}: {}",
            e.0
        ))
    })?;
    let count = request.rules.len();
    let most = spec().max_rules_per_add.unwrap_or(usize::MAX);
    if count == 0 {
        return Err(ProblemError::invalid_request(format!(
            "The rules list is empty: add 1 to {most} rules per request."
        )));
    }
    if count > most {
        return Err(ProblemError::invalid_request(format!(
            "Too many rules in one request: {count} given, at most {most} rules \
             may be added per request."
        )));
    }
    let live = call.live.clone();
    let outcome = rules_service::add(&call.state, &live, request.rules, dialect(), dry_run).await?;
    let (rules, outcomes) = match outcome {
        rules_service::AddOutcome::Invalid(checked) => {
            let errors = checked
                .rules
                .iter()
                .zip(&checked.verdicts)
                .filter(|(_, verdict)| !verdict.is_valid())
                .map(|(rule, verdict)| {
                    RuleProblem::invalid(rule.value.clone(), verdict.v2_details())
                })
                .collect();
            return Err(ProblemError::invalid_rules(errors));
        }
        rules_service::AddOutcome::OverCap {
            existing,
            adding,
            limit,
            ..
        } => {
            tracing::info!(
                account = %live.key.account,
                existing, adding, limit,
                "powerstream rules add refused: rule limit"
            );
            return Err(ProblemError::rule_cap(format!(
                "{RULE_LIMIT_MESSAGE} The account has {existing} rules, this request adds \
                 {adding} and the limit is {limit}."
            )));
        }
        rules_service::AddOutcome::Applied { rules, outcomes } => (rules, outcomes),
    };
    let mut created = Vec::new();
    let mut duplicates = Vec::new();
    for (submitted, outcome) in rules.into_iter().zip(outcomes) {
        match outcome {
            AddOutcome::Created(rule) => created.push(stream_rule(rule)),
            AddOutcome::Existing(found) => {
                duplicates.push(RuleProblem::duplicate(submitted.value, found.id));
            }
        }
    }
    let response = AddResponse::new(created, duplicates, sluice_wire::sent::rules_sent_now());
    tracing::info!(
        account = %live.key.account,
        created = response.meta.summary.created,
        not_created = response.meta.summary.not_created,
        rules = live.rules.len(),
        dry_run,
        "powerstream rules added"
    );
    let status = if dry_run {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok(json(status, &response))
}

/// Deletes by id or value; 200 with the entries that named no rule. With `dry_run`, the
/// same answer, deleting nothing.
async fn delete(call: RulesCall, bytes: &[u8], dry_run: bool) -> Result<Response, ProblemError> {
    let request = DeleteRequest::from_slice(bytes).map_err(|e| {
        ProblemError::invalid_request(format!(
            "The body must be {{\"rules\":[{{\"id\":\"…\"}},{{\"value\":\"…\"}}]}}: {e}"
        ))
    })?;
    if request.rules.is_empty() {
        return Err(ProblemError::invalid_request(
            "The rules list is empty: name the rules to delete by id or by value.",
        ));
    }
    let live = call.live.clone();
    let named: Vec<Named> = request
        .rules
        .iter()
        .map(|entry| match (&entry.id, &entry.value) {
            (Some(id), _) => id.parse().map_or(Named::Nothing, Named::Id),
            (None, Some(value)) => Named::Value(value.clone()),
            (None, None) => Named::Nothing,
        })
        .collect();
    let found = rules_service::delete(&call.state, &live, &named, dry_run).await?;
    let mut deleted = 0;
    let mut failed = Vec::new();
    for (entry, found) in request.rules.into_iter().zip(found) {
        match found {
            Some(_) => deleted += 1,
            None => failed.push(DeleteTarget {
                value: entry.value.filter(|_| entry.id.is_none()),
                id: entry.id,
            }),
        }
    }
    let response = DeleteResponse::new(deleted, failed, sluice_wire::sent::rules_sent_now());
    tracing::info!(
        account = %live.key.account,
        deleted,
        not_deleted = response.data.not_deleted.unwrap_or(0),
        rules = live.rules.len(),
        dry_run,
        "powerstream rules deleted"
    );
    Ok(json(StatusCode::OK, &response))
}

#[cfg(test)]
mod tests {
    use sluice_wire::RuleInput;

    use super::*;

    #[test]
    fn change_queries_take_dry_run_and_method_and_refuse_the_rest() {
        let both = &["dry_run", "_method"];
        let parse = |raw: &str, accepted: &[&str]| ChangeQuery::parse(Some(raw), accepted);
        assert_eq!(
            ChangeQuery::parse(None, both).unwrap(),
            ChangeQuery::default()
        );
        assert_eq!(
            parse("dry_run=TRUE&_method=Delete&_method=get", both).unwrap(),
            ChangeQuery {
                method: Some("delete".into()),
                dry_run: true
            }
        );
        assert!(!parse("dry_run=false", &["dry_run"]).unwrap().dry_run);
        let detail = |raw: &str, accepted: &[&str]| {
            let e = parse(raw, accepted).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
            e.problem.detail.unwrap()
        };
        assert_eq!(
            detail("dryRun=true", both),
            "The query parameter [dryRun] is not one of [dry_run,_method]"
        );
        assert_eq!(
            detail("_method=delete", &["dry_run"]),
            "The query parameter [_method] is not one of [dry_run]"
        );
        assert_eq!(
            detail("dry_run=yes", both),
            "The `dry_run` query parameter value [yes] is not one of [true,false]"
        );
    }

    #[test]
    fn rule_problems_are_listed_one_per_line_with_positions() {
        let input = |value: &str, tag: Option<&str>| RuleInput {
            value: value.into(),
            tag: tag.map(Into::into),
            id: None,
            id_str: None,
        };
        let check = |rule: &RuleInput| rules_service::check_rule(rule, dialect());
        assert!(check(&input("(cat OR dog) lang:en -is:retweet", None)).is_valid());
        let details = check(&input("cat sample:10", Some(&"t".repeat(256)))).v2_details();
        assert_eq!(
            details,
            [
                "Reference to invalid operator 'sample' (at position 5).",
                "Tags cannot be longer than 255 characters."
            ]
        );
    }
}
