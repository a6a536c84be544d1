//! The filtered stream's rules API in X's v2 shapes: `GET /2/tweets/search/stream/rules`
//! (list: `ids`, `max_results`, `pagination_token`), `POST …/rules` (`{"add":[…]}` or
//! `{"delete":{"ids"|"values":[…]}}`, with `dry_run` and `delete_all`), and
//! `GET …/rules/counts`. This module parses the requests and renders the outcomes of
//! [`crate::api::rules_service`] (rules in the v2 dialect, all or nothing); the
//! decisions are in the module doc of [`super`] and docs/compatibility.md §7.
//!
//! Answers: a list without rules has no `data`; an add answers 200 with the created rules
//! in `data`, duplicates as `DuplicateRule` problems in `errors` and the counts in
//! `meta.summary`; an add with an invalid rule creates nothing and answers 400 with an
//! `invalid-rules` problem per invalid rule (`details` say why); an add past the app's
//! rule cap answers 400 with a `rule-cap` problem; a delete answers 200 with `deleted` and
//! `not_deleted`, and a problem for each entry that named no rule.

use std::future::Future;
use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;
use sluice_rules::Dialect;
use sluice_store::{AddOutcome, Product, StoredApp, StoredRule};
use sluice_wire::error::RULE_LIMIT_MESSAGE;
use sluice_wire::v2::{RuleProblem, StreamRule, problem_type};
use sluice_wire::v2_rules::{
    AddResponse, AddSummary, ChangeMeta, ChangeProblem, DeleteResponse, DeleteSummary,
    ListResponse, Missing, RulesChange,
};

use super::auth::authenticate;
use super::ensure_stream;
use super::query::{one, refuse_unknown};
use crate::api::body::UnreadBody;
use crate::api::error::{json_response, with_rate};
use crate::api::problem::ProblemError;
use crate::api::rules_service::{self, Named};
use crate::ratelimit::RateLimiter;
use crate::registry::LiveStream;
use crate::state::AppState;
use crate::telemetry;

/// The product whose rules these are.
const PRODUCT: Product = Product::V2Filtered;

/// Most rules a list page holds, and the default.
const MAX_RESULTS: usize = 1000;

/// Most ids a list may name.
const MAX_IDS: usize = 1000;

/// The filtered stream's rules API facts: its row of the product table.
fn spec() -> &'static sluice_store::RulesSpec {
    PRODUCT
        .spec()
        .rules
        .as_ref()
        .expect("the v2 filtered stream has a rules API")
}

fn dialect() -> Dialect {
    spec().dialect
}

fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    json_response(status, sluice_wire::to_vec(body), false)
}

fn sent() -> String {
    sluice_wire::sent::rules_sent_now()
}

/// What a rules handler gets once the app is authenticated and the request counted.
struct RulesCall {
    state: AppState,
    app: StoredApp,
    live: Arc<LiveStream>,
}

/// Runs `op` after auth and the app's rate limit of `limiter` (reads or changes); adds the
/// rate headers to whatever it answers and counts the request.
async fn run<F, Fut>(state: AppState, headers: &HeaderMap, reads: bool, op: F) -> Response
where
    F: FnOnce(RulesCall) -> Fut,
    Fut: Future<Output = Result<Response, ProblemError>>,
{
    let result = async {
        let app = authenticate(&state, headers).await?;
        let limiter: &RateLimiter = if reads {
            state.limits.rule_reads(PRODUCT)
        } else {
            state.limits.rules(PRODUCT)
        };
        let rate = limiter.check(&app.id).map_err(ProblemError::rate_limited)?;
        let outcome = async {
            let live = ensure_stream(&state, &app, PRODUCT).await?;
            op(RulesCall {
                state: state.clone(),
                app,
                live,
            })
            .await
        }
        .await;
        with_rate(outcome, rate)
    }
    .await;
    let response = result.unwrap_or_else(IntoResponse::into_response);
    telemetry::rules_request(PRODUCT.as_str(), response.status().as_u16());
    response
}

fn stream_rule(rule: StoredRule) -> StreamRule {
    StreamRule {
        id: rule.id,
        value: rule.value,
        tag: rule.tag,
    }
}

/// The query parameters of a request, refusing any not in `accepted` as X does.
fn query_pairs(
    raw: Option<&str>,
    accepted: &[&str],
) -> Result<Vec<(String, String)>, ProblemError> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    refuse_unknown(&pairs, accepted)?;
    Ok(pairs)
}

/// A `true`/`false` parameter (absent: false).
fn flag(pairs: &[(String, String)], name: &str) -> Result<bool, ProblemError> {
    match one(pairs, name) {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
        Some(v) => Err(ProblemError::invalid_parameters(&[(
            name,
            v,
            format!("The `{name}` query parameter value [{v}] is not one of [true,false]"),
        )])),
    }
}

/// A rule id as X writes them: 1 to 19 digits.
fn rule_id(text: &str) -> Option<u64> {
    let digits = !text.is_empty() && text.len() <= 19 && text.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| text.parse().ok()).flatten()
}

/// A page's `pagination_token`: the id of the last rule before it, 16 hex digits.
fn page_token(last: u64) -> String {
    format!("{last:016x}")
}

fn parse_page_token(token: &str) -> Option<u64> {
    (token.len() == 16)
        .then(|| u64::from_str_radix(token, 16).ok())
        .flatten()
}

/// What a list asks for.
#[derive(Debug, PartialEq, Eq)]
struct ListQuery {
    ids: Option<Vec<u64>>,
    max_results: usize,
    after: Option<u64>,
}

impl ListQuery {
    fn parse(raw: Option<&str>) -> Result<Self, ProblemError> {
        let pairs = query_pairs(raw, &["ids", "max_results", "pagination_token"])?;
        let mut errors = Vec::new();
        let ids = one(&pairs, "ids").map(|list| {
            let mut ids = Vec::new();
            for item in list.split(',') {
                match rule_id(item) {
                    Some(id) => ids.push(id),
                    None => errors.push((
                        "ids",
                        list,
                        format!("The `ids` query parameter value [{item}] is not a rule id"),
                    )),
                }
            }
            if ids.len() > MAX_IDS {
                errors.push((
                    "ids",
                    list,
                    format!("The `ids` query parameter names more than {MAX_IDS} rules"),
                ));
            }
            ids
        });
        let max_results = match one(&pairs, "max_results") {
            None => MAX_RESULTS,
            Some(v) => match v.parse::<usize>() {
                Ok(n) if (1..=MAX_RESULTS).contains(&n) => n,
                _ => {
                    errors.push((
                        "max_results",
                        v,
                        format!(
                            "The `max_results` query parameter value [{v}] is not between 1 \
                             and {MAX_RESULTS}"
                        ),
                    ));
                    MAX_RESULTS
                }
            },
        };
        let after = one(&pairs, "pagination_token").and_then(|token| {
            let after = parse_page_token(token);
            if after.is_none() {
                errors.push((
                    "pagination_token",
                    token,
                    format!("The `pagination_token` query parameter value [{token}] is not valid"),
                ));
            }
            after
        });
        if !errors.is_empty() {
            return Err(ProblemError::invalid_parameters(&errors));
        }
        Ok(Self {
            ids,
            max_results,
            after,
        })
    }
}

/// `GET /2/tweets/search/stream/rules`: the app's rules, oldest first, a page at a time.
pub async fn list_rules(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    run(state, &headers, true, |call| async move {
        let query = ListQuery::parse(query.as_deref())?;
        let mut rules = match query.ids {
            Some(ids) => rules_service::by_ids(&call.state, &call.live, ids).await?,
            None => rules_service::list(&call.state, &call.live).await?,
        };
        rules.sort_by_key(|r| r.id);
        if let Some(after) = query.after {
            rules.retain(|r| r.id > after);
        }
        let more = rules.len() > query.max_results;
        rules.truncate(query.max_results);
        let next = more
            .then(|| rules.last().map(|r| page_token(r.id)))
            .flatten();
        let rules = rules.into_iter().map(stream_rule).collect();
        Ok(json(
            StatusCode::OK,
            &ListResponse::new(rules, next, sent()),
        ))
    })
    .await
}

/// `POST /2/tweets/search/stream/rules[?dry_run=true][&delete_all=true]`: one add or one
/// delete.
pub async fn change_rules(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: UnreadBody,
) -> Response {
    run(state, &headers, false, |call| async move {
        let pairs = query_pairs(query.as_deref(), &["dry_run", "delete_all"])?;
        let dry_run = flag(&pairs, "dry_run")?;
        let delete_all = flag(&pairs, "delete_all")?;
        let settings = &call.state.settings;
        let bytes = body
            .read(settings.rules_body_limit, settings.body_read_timeout)
            .await?;
        let change = RulesChange::from_slice(&bytes).map_err(|e| {
            ProblemError::invalid_request(format!(
                "The body must be {{\"add\":[{{\"value\":\"…\",\"tag\":\"…\"}}]}} or \
                 {{\"delete\":{{\"ids\":[\"…\"]}}}}: {}",
                e.0
            ))
        })?;
        match (change, delete_all) {
            (RulesChange::Add(_), true) => Err(ProblemError::invalid_request(
                "`delete_all=true` deletes every rule: send {\"delete\":{}} with it, not `add`.",
            )),
            (RulesChange::Add(rules), false) => add(call, rules, dry_run).await,
            (_, true) => delete_all_rules(call, dry_run).await,
            (RulesChange::DeleteIds(ids), false) => delete_ids(call, ids, dry_run).await,
            (RulesChange::DeleteValues(values), false) => {
                let named = values.iter().cloned().map(Named::Value).collect();
                delete(call, values, named, dry_run).await
            }
            (RulesChange::DeleteNone, false) => Err(ProblemError::invalid_request(
                "`delete` must name the rules by `ids` or by `values` (or use delete_all=true).",
            )),
        }
    })
    .await
}

fn add_meta(
    created: usize,
    not_created: usize,
    valid: usize,
    invalid: usize,
) -> ChangeMeta<AddSummary> {
    ChangeMeta {
        sent: sent(),
        summary: AddSummary {
            created,
            not_created,
            valid,
            invalid,
        },
    }
}

/// The 400 of an add with invalid rules: an `invalid-rules` problem per invalid rule
/// (those longer than `most` characters too, when the app's limit is below the
/// dialect's), nothing created.
fn refuse_invalid(checked: &rules_service::Checked, most: Option<usize>) -> Response {
    let errors: Vec<ChangeProblem> = checked
        .rules
        .iter()
        .zip(&checked.verdicts)
        .filter_map(|(rule, verdict)| {
            let mut details = verdict.v2_details();
            if let Some(most) = most.filter(|&m| rule.value.chars().nth(m).is_some()) {
                details.insert(
                    0,
                    format!("Rules cannot be longer than {most} characters (at position 1)."),
                );
            }
            (!details.is_empty())
                .then(|| ChangeProblem::Rule(RuleProblem::invalid(rule.value.clone(), details)))
        })
        .collect();
    let count = checked.rules.len();
    let invalid = errors.len();
    let response = AddResponse {
        data: None,
        meta: add_meta(0, count, count - invalid, invalid),
        errors,
    };
    json(StatusCode::BAD_REQUEST, &response)
}

/// Adds rules, all or nothing; with `dry_run`, only says what it would do.
async fn add(
    call: RulesCall,
    rules: Vec<sluice_wire::RuleInput>,
    dry_run: bool,
) -> Result<Response, ProblemError> {
    if rules.is_empty() {
        return Err(ProblemError::invalid_request(
            "The `add` list is empty: name at least one rule.",
        ));
    }
    let count = rules.len();
    let most = call.app.max_rule_chars();
    if rules.iter().any(|r| r.value.chars().nth(most).is_some()) {
        // The app's access level allows shorter rules than the dialect: checked here, with
        // every other problem of the batch.
        let checked = rules_service::validate(rules, dialect()).await?;
        return Ok(refuse_invalid(&checked, Some(most)));
    }
    let live = call.live.clone();
    let outcome = rules_service::add(&call.state, &live, rules, dialect(), dry_run).await?;
    let (rules, outcomes) = match outcome {
        rules_service::AddOutcome::Invalid(checked) => return Ok(refuse_invalid(&checked, None)),
        rules_service::AddOutcome::OverCap {
            existing,
            adding,
            limit,
            ..
        } => {
            tracing::info!(
                account = %live.key.account, app = %call.app.id,
                existing, adding, limit,
                "v2 rules add refused: rule limit"
            );
            let body = json!({
                "errors": [{
                    "title": "Rule Cap Exceeded",
                    "type": problem_type::RULE_CAP,
                    "detail": format!(
                        "{RULE_LIMIT_MESSAGE} The app has {existing} rules, this request adds \
                         {adding} and the limit is {limit}."
                    ),
                }],
                "meta": add_meta(0, count, count, 0),
            });
            return Ok(json(StatusCode::BAD_REQUEST, &body));
        }
        rules_service::AddOutcome::Applied { rules, outcomes } => (rules, outcomes),
    };
    let mut created = Vec::new();
    let mut errors = Vec::new();
    for (submitted, outcome) in rules.into_iter().zip(outcomes) {
        match outcome {
            AddOutcome::Created(rule) => created.push(stream_rule(rule)),
            AddOutcome::Existing(found) => errors.push(ChangeProblem::Rule(
                RuleProblem::duplicate(submitted.value, found.id),
            )),
        }
    }
    let response = AddResponse {
        meta: add_meta(created.len(), errors.len(), count, 0),
        data: (!created.is_empty()).then_some(created),
        errors,
    };
    tracing::info!(
        account = %live.key.account,
        app = %call.app.id,
        created = response.meta.summary.created,
        not_created = response.meta.summary.not_created,
        rules = live.rules.len(),
        dry_run,
        "v2 rules added"
    );
    Ok(json(StatusCode::OK, &response))
}

/// Deletes by id; an entry that is not an id is a 400 naming it.
async fn delete_ids(
    call: RulesCall,
    ids: Vec<String>,
    dry_run: bool,
) -> Result<Response, ProblemError> {
    let mut named = Vec::with_capacity(ids.len());
    for id in &ids {
        match rule_id(id) {
            Some(id) => named.push(Named::Id(id)),
            None => {
                return Err(ProblemError::invalid_request(format!(
                    "The rule id [{id}] in `delete.ids` is not a rule id: 1 to 19 digits."
                )));
            }
        }
    }
    delete(call, ids, named, dry_run).await
}

/// Deletes every rule of the app (`delete_all=true`).
async fn delete_all_rules(call: RulesCall, dry_run: bool) -> Result<Response, ProblemError> {
    let rules = rules_service::list(&call.state, &call.live).await?;
    let ids: Vec<String> = rules.iter().map(|r| r.id.to_string()).collect();
    let named = rules.iter().map(|r| Named::Id(r.id)).collect();
    delete(call, ids, named, dry_run).await
}

/// Deletes the rules `named` (`sent` as the client wrote each entry); 200 with the counts
/// and a problem for each entry that named no rule.
async fn delete(
    call: RulesCall,
    sent_entries: Vec<String>,
    named: Vec<Named>,
    dry_run: bool,
) -> Result<Response, ProblemError> {
    if named.is_empty() && sent_entries.is_empty() {
        let response = DeleteResponse {
            data: None,
            meta: ChangeMeta {
                sent: sent(),
                summary: DeleteSummary {
                    deleted: 0,
                    not_deleted: 0,
                },
            },
            errors: Vec::new(),
        };
        return Ok(json(StatusCode::OK, &response));
    }
    let live = call.live.clone();
    let found = rules_service::delete(&call.state, &live, &named, dry_run).await?;
    let mut deleted = 0;
    let mut errors = Vec::new();
    for (entry, found) in sent_entries.into_iter().zip(found) {
        match found {
            Some(_) => deleted += 1,
            None => errors.push(ChangeProblem::NotFound(Missing::rule(entry))),
        }
    }
    let response = DeleteResponse {
        data: None,
        meta: ChangeMeta {
            sent: sent(),
            summary: DeleteSummary {
                deleted,
                not_deleted: errors.len(),
            },
        },
        errors,
    };
    tracing::info!(
        account = %live.key.account,
        app = %call.app.id,
        deleted,
        not_deleted = response.meta.summary.not_deleted,
        rules = live.rules.len(),
        dry_run,
        "v2 rules deleted"
    );
    Ok(json(StatusCode::OK, &response))
}

/// `GET /2/tweets/search/stream/rules/counts`: the app's rules and cap, and the project's
/// (the account's apps together). `rules_count.fields` picks the members; all by default.
pub async fn counts(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    run(state, &headers, true, |call| async move {
        const FIELDS: &[&str] = &[
            "all_project_client_apps",
            "cap_per_client_app",
            "cap_per_project",
            "client_app_rules_count",
            "project_rules_count",
        ];
        let pairs = query_pairs(query.as_deref(), &["rules_count.fields"])?;
        let mut wanted: Vec<&str> = Vec::new();
        if let Some(list) = one(&pairs, "rules_count.fields") {
            for name in list.split(',').filter(|n| !n.is_empty()) {
                match FIELDS.iter().find(|f| **f == name) {
                    Some(f) => wanted.push(f),
                    None => {
                        return Err(ProblemError::invalid_parameters(&[(
                            "rules_count.fields",
                            name,
                            format!(
                                "The `rules_count.fields` query parameter value [{name}] is \
                                 not one of [{}]",
                                FIELDS.join(",")
                            ),
                        )]));
                    }
                }
            }
        }
        let account = call.app.account.clone();
        let apps = call.state.blocking(move |s| s.apps(&account)).await?;
        let per_app: Vec<serde_json::Value> = apps
            .iter()
            .map(|app| {
                let rules = call
                    .state
                    .registry
                    .get(&app.stream(PRODUCT))
                    .map_or(0, |live| live.rules.len());
                json!({"client_app_id": app.id, "rule_count": rules})
            })
            .collect();
        let cap = call.live.limits().max_rules;
        let total: u64 = per_app
            .iter()
            .map(|a| a["rule_count"].as_u64().unwrap_or(0))
            .sum();
        let mut data = json!({
            "all_project_client_apps": per_app,
            "cap_per_client_app": cap,
            "cap_per_project": cap.saturating_mul(apps.len().max(1) as u64),
            "client_app_rules_count": {
                "client_app_id": call.app.id,
                "rule_count": call.live.rules.len(),
            },
            "project_rules_count": total,
        });
        if !wanted.is_empty()
            && let Some(map) = data.as_object_mut()
        {
            map.retain(|k, _| wanted.contains(&k.as_str()));
        }
        Ok(json(StatusCode::OK, &json!({ "data": data })))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_ids_are_1_to_19_digits() {
        assert_eq!(
            rule_id("1571785499026784257"),
            Some(1_571_785_499_026_784_257)
        );
        for bad in [
            "",
            "x",
            "-1",
            "1.0",
            " 1",
            "12345678901234567890",
            "99999999999999999999",
        ] {
            assert_eq!(rule_id(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn page_tokens_are_16_hex_digits_and_round_trip() {
        for id in [0, 1, 1_571_785_499_026_784_257, u64::MAX] {
            let token = page_token(id);
            assert_eq!(token.len(), 16);
            assert_eq!(parse_page_token(&token), Some(id));
        }
        for bad in ["", "abc", "zzzzzzzzzzzzzzzz", "00000000000000001"] {
            assert_eq!(parse_page_token(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn list_queries_check_every_parameter() {
        let parse = |q: &str| ListQuery::parse(Some(q));
        assert_eq!(
            parse("").unwrap(),
            ListQuery {
                ids: None,
                max_results: MAX_RESULTS,
                after: None
            }
        );
        let q = parse("ids=1,2&max_results=5&pagination_token=0000000000000002").unwrap();
        assert_eq!(q.ids, Some(vec![1, 2]));
        assert_eq!((q.max_results, q.after), (5, Some(2)));
        for bad in [
            "ids=1,x",
            "ids=",
            "max_results=0",
            "max_results=1001",
            "max_results=ten",
            "pagination_token=short",
            "foo=1",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
            assert!(e.body.is_some(), "{bad}");
        }
    }
}
