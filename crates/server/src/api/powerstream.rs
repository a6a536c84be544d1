//! Powerstream (spec Part B §6, Part A "Powerstream"): `GET /2/powerstream` and the rules
//! API `GET`/`POST`/`DELETE /2/powerstream/rules`, with OAuth 2.0 bearer tokens from the
//! admin API.
//!
//! Each account has one Powerstream rule set: a stream of product Powerstream labelled
//! [`LABEL`], created on the account's first Powerstream call with a cap of [`MAX_RULES`]
//! rules and the default connection cap. The pipeline delivers to it as to a PowerTrack
//! stream: every matching post once per connection, as one JSON object per line with
//! PowerTrack-style `matching_rules` (`{"tag":…,"id":N,"id_str":"N"}`; `id_str` is the
//! string id the rules API hands out).
//!
//! Decisions where the spec is silent:
//! - Auth: no `Authorization` header, or an unknown bearer token: 401 with X's
//!   `Unauthorized` problem and `WWW-Authenticate: Bearer`; other schemes (basic auth,
//!   …): 403 `unsupported-authentication`. Unknown tokens spend the client address's
//!   attempt budget; once it is spent, 429 (docs/auth.md).
//! - Rules: every rules call (list, add, delete, refused or not, once authenticated) counts
//!   against the account's 50 per 24 h; the answers carry the `x-rate-limit-*` headers.
//!   An add of 1 to [`MAX_RULES_PER_ADD`] rules is all or nothing: any invalid rule (bad
//!   syntax, an operator Powerstream does not offer, over 2,048 characters, a tag over 255)
//!   refuses the batch with 422 `invalid-rules` listing each invalid rule's `details`; over
//!   the cap, 422 `rule-cap`. Otherwise 201, with the created rules in `data.rules` and the
//!   duplicates (with the existing rule's id) as `duplicate-rules` problems in `errors`.
//!   Deletes are not capped at 100 entries (X suggests deleting everything in bulk); an
//!   entry with an `id` is deleted by id, else by `value`.
//! - `dry_run=true` (as v2 clients send it) on an add or a delete validates the request
//!   and answers 200 with what it would do, changing nothing; the rules an add would create
//!   carry fresh ids that are never stored. The rules endpoint's `POST` takes `dry_run` and
//!   `_method`, its `DELETE` `dry_run`; any other query parameter is a 400
//!   `invalid-request`, so that a parameter the server does not implement cannot go
//!   unnoticed. See docs/powerstream.md.
//! - List: `data.rules` is `[]` when there are no rules; `meta` has `sent` and
//!   `result_count`.
//! - Stream: connecting without rules is allowed (heartbeats only, as on PowerTrack). No
//!   connect rate limit (X: "no limit on streams"). Gzip when `Accept-Encoding` allows
//!   it, identity otherwise. The connection cap follows Part A (an over-cap connection is
//!   accepted; if the stream is still over its cap after the grace period the newest is
//!   closed) rather than refusing with 429, so that a client reconnecting while its dead
//!   connection still holds a slot is not refused. In-band closing lines are v2 errors
//!   (`{"errors":[{"title":"operational-disconnect","disconnect_type":…}]}`); a recovery
//!   ends with PowerTrack's `Recovery Request Completed` `info` line. `localDcOnly` must
//!   be `true` or `false`; bad `localDcOnly`, `backfillMinutes`, `startTime`/`endTime`
//!   values are 406 `invalid-request` problems.

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, RawQuery, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sluice_rules::{Dialect, Rule};
use sluice_store::{AddOutcome, NewRule, Product, StoreError, StreamLimits, StreamRef};
use sluice_wire::add::{MAX_TAG_CHARS, tag_within_limit};
use sluice_wire::error::{
    CREDENTIALS_REVOKED_MESSAGE, OPERATIONAL_DISCONNECT_MESSAGE, RULE_LIMIT_MESSAGE,
    SLOW_CONSUMER_MESSAGE, too_many_connections_message,
};
use sluice_wire::v2::{
    AddResponse, ConnectionMetadata, DeleteRequest, DeleteResponse, DeleteTarget, DisconnectType,
    ListResponse, RuleProblem, StreamErrors, StreamRule,
};
use sluice_wire::{RuleInput, RulesRequest};

use super::body::UnreadBody;
use super::encoding::accepts_gzip;
use super::error::{add_rate_headers, json_response};
use super::problem::ProblemError;
use super::stream_query::StreamQuery;
use super::streaming::{Start, StreamOptions, open_stream_at};
use crate::auth::throttle::Attempt;
use crate::auth::{bearer_token, token_hash};
use crate::changes::{self, ChangeError, DeletedRules, RuleToAdd, RulesToDelete};
use crate::client_addr;
use crate::delivery::{CloseMessages, CloseReason, Encoding};
use crate::registry::LiveStream;
use crate::state::{AppState, now_ms};
use crate::telemetry;

/// The label of every account's Powerstream rule set.
pub const LABEL: &str = "powerstream";
/// Rules an account may have (spec §6.2).
pub const MAX_RULES: u64 = 1_000;
/// Rules one add request may carry (spec §6.2).
pub const MAX_RULES_PER_ADD: usize = 100;
/// Header naming the datacenter of a `localDcOnly` connection.
pub const DATACENTER_HEADER: &str = "x-powerstream-datacenter";
/// Header confirming `localDcOnly`.
pub const LOCAL_DC_ONLY_HEADER: &str = "x-powerstream-localdconly";

/// The Powerstream rule set of `account`.
pub fn stream_ref(account: &str) -> StreamRef {
    StreamRef {
        account: account.to_owned(),
        product: Product::Powerstream,
        label: LABEL.to_owned(),
    }
}

/// The account's Powerstream stream, created (with [`MAX_RULES`] and the default
/// connection cap) and registered if it does not exist yet. The account must exist.
pub async fn ensure_stream(
    state: &AppState,
    account: &str,
) -> Result<Arc<LiveStream>, ChangeError> {
    let key = stream_ref(account);
    if let Some(live) = state.registry.get(&key) {
        return Ok(live);
    }
    let limits = StreamLimits {
        max_connections: state.settings.default_max_connections,
        max_rules: MAX_RULES,
    };
    changes::ensure_stream(state, &key, limits).await
}

/// The account a request's bearer token belongs to. An unknown token is charged to the
/// client address's attempt budget: 401 while it lasts, 429 once it is spent (a token is
/// one hash lookup, so known tokens are never refused for it).
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<String, ProblemError> {
    if let Some(token) = bearer_token(headers) {
        let hash = token_hash(token);
        let account = state.blocking(move |s| s.token_account(&hash)).await?;
        if let Some(account) = account {
            return Ok(account);
        }
        let attempt = Attempt::anonymous(client_addr::current());
        return Err(match state.auth_throttle.charge(&attempt) {
            Ok(()) => ProblemError::unauthorized(),
            Err(rate) => {
                telemetry::auth_throttled();
                ProblemError::rate_limited(rate)
            }
        });
    }
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Err(ProblemError::unauthorized());
    };
    let scheme = value
        .to_str()
        .ok()
        .and_then(|v| v.split_whitespace().next())
        .unwrap_or("")
        .to_ascii_lowercase();
    Err(match scheme.as_str() {
        // `Bearer` without a token.
        "bearer" => ProblemError::unauthorized(),
        "basic" => ProblemError::unsupported_authentication("HTTP Basic"),
        "oauth" => ProblemError::unsupported_authentication("OAuth 1.0a User Context"),
        _ => ProblemError::unsupported_authentication("Unknown"),
    })
}

// ---- rules ----------------------------------------------------------------------------

/// What a rules handler gets once the caller is authenticated and the request counted.
struct RulesCall {
    state: AppState,
    live: Arc<LiveStream>,
}

fn json<T: Serialize>(status: StatusCode, body: &T) -> Response {
    json_response(status, sluice_wire::to_vec(body), false)
}

/// Runs `op` after auth and the 50-per-24-h limit; adds the rate headers to whatever it
/// answers and counts the request.
async fn run_rules<F, Fut>(state: AppState, headers: &HeaderMap, op: F) -> Response
where
    F: FnOnce(RulesCall) -> Fut,
    Fut: Future<Output = Result<Response, ProblemError>>,
{
    let result = async {
        let account = authenticate(&state, headers).await?;
        let rate = state
            .limits
            .powerstream_rules
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
        match outcome {
            Ok(mut response) => {
                add_rate_headers(&mut response, rate);
                Ok(response)
            }
            Err(mut e) => {
                e.rate = Some(rate);
                Err(e)
            }
        }
    }
    .await;
    let response = result.unwrap_or_else(IntoResponse::into_response);
    telemetry::rules_request("powerstream", response.status().as_u16());
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
        let stream_id = call.live.id;
        let rules = call.state.blocking(move |s| s.rules(stream_id)).await?;
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

fn stream_rule(rule: sluice_store::StoredRule) -> StreamRule {
    StreamRule {
        id: rule.id,
        value: rule.value,
        tag: rule.tag,
    }
}

/// Parses a rule as Powerstream does; on failure, each problem as a v2 `details` line.
fn check_rule(rule: &RuleInput) -> Result<Rule, Vec<String>> {
    let mut details = Vec::new();
    let tree = match sluice_rules::parse_with(&rule.value, Dialect::Powerstream) {
        Ok(tree) => Some(tree),
        Err(e) => {
            details.extend(
                e.problems()
                    .iter()
                    .map(|p| format!("{} (at position {}).", p.text(), p.position())),
            );
            None
        }
    };
    if rule
        .tag
        .as_deref()
        .is_some_and(|tag| !tag_within_limit(tag))
    {
        details.push(format!(
            "Tags cannot be longer than {MAX_TAG_CHARS} characters."
        ));
    }
    match tree {
        Some(tree) if details.is_empty() => Ok(tree),
        _ => Err(details),
    }
}

/// What adding `rules` would answer now, adding nothing (`dry_run`): the store's preview
/// of the add, the new rules with fresh ids that are never stored.
async fn preview_add(
    state: &AppState,
    live: &LiveStream,
    rules: Vec<RuleToAdd>,
) -> Result<Vec<AddOutcome>, ChangeError> {
    let new_rules: Vec<NewRule> = rules
        .into_iter()
        .map(|r| NewRule {
            id: state.ids.next_id(),
            value: r.value,
            tag: r.tag,
        })
        .collect();
    let (stream_id, max_rules) = (live.id, live.limits().max_rules);
    let now = now_ms();
    let outcomes = state
        .blocking(move |s| s.preview_add_rules(stream_id, &new_rules, max_rules, now))
        .await?;
    Ok(outcomes)
}

/// What deleting `targets` would find now, deleting nothing (`dry_run`).
async fn preview_delete(
    state: &AppState,
    live: &LiveStream,
    targets: RulesToDelete,
) -> Result<DeletedRules, ChangeError> {
    let stream_id = live.id;
    let (by_id, by_value) = state
        .blocking(move |s| {
            let values: Vec<&str> = targets.values.iter().map(String::as_str).collect();
            s.preview_delete_rules(stream_id, &targets.ids, &values)
        })
        .await?;
    Ok(DeletedRules { by_id, by_value })
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
    if count == 0 {
        return Err(ProblemError::invalid_request(format!(
            "The rules list is empty: add 1 to {MAX_RULES_PER_ADD} rules per request."
        )));
    }
    if count > MAX_RULES_PER_ADD {
        return Err(ProblemError::invalid_request(format!(
            "Too many rules in one request: {count} given, at most {MAX_RULES_PER_ADD} rules \
             may be added per request."
        )));
    }
    let (request, checked) = tokio::task::spawn_blocking(move || {
        let checked: Vec<_> = request.rules.iter().map(check_rule).collect();
        (request, checked)
    })
    .await
    .map_err(ProblemError::internal)?;
    if checked.iter().any(Result::is_err) {
        let errors = request
            .rules
            .iter()
            .zip(&checked)
            .filter_map(|(rule, verdict)| match verdict {
                Ok(_) => None,
                Err(details) => Some(RuleProblem::invalid(rule.value.clone(), details.clone())),
            })
            .collect();
        return Err(ProblemError::invalid_rules(errors));
    }
    let trees: Vec<Rule> = checked.into_iter().flatten().collect();
    let to_add = RuleToAdd::paired(&request.rules, trees);
    let live = call.live.clone();
    let outcome = if dry_run {
        preview_add(&call.state, &live, to_add).await
    } else {
        changes::add_rules(&call.state, &live, to_add).await
    };
    let outcomes = match outcome {
        Ok(outcomes) => outcomes,
        Err(ChangeError::Store(StoreError::RuleLimit {
            existing,
            adding,
            limit,
        })) => {
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
        Err(e) => return Err(e.into()),
    };
    let mut created = Vec::new();
    let mut duplicates = Vec::new();
    for (submitted, outcome) in request.rules.into_iter().zip(outcomes) {
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

/// How a delete entry names a rule.
enum Named {
    Id(u64),
    Value(String),
    Nothing,
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
    let mut targets = RulesToDelete::default();
    for n in &named {
        match n {
            Named::Id(id) => targets.ids.push(*id),
            Named::Value(v) => targets.values.push(v.clone()),
            Named::Nothing => {}
        }
    }
    let found = if dry_run {
        preview_delete(&call.state, &live, targets).await?
    } else {
        changes::delete_rules(&call.state, &live, targets).await?
    };
    let mut by_id = found.by_id.into_iter();
    let mut by_value = found.by_value.into_iter();
    let mut deleted = 0;
    let mut failed = Vec::new();
    for (entry, named) in request.rules.into_iter().zip(&named) {
        let found = match named {
            Named::Id(_) => by_id.next().flatten(),
            Named::Value(_) => by_value.next().flatten(),
            Named::Nothing => None,
        };
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

// ---- stream ---------------------------------------------------------------------------

/// The in-band lines of `/2/` streams (spec §7.2): one
/// `{"errors":[{"title":"operational-disconnect","disconnect_type":…,"detail":…,"type":…}]}`
/// line before the server ends the stream, with Part A's texts as `detail`.
pub struct PowerstreamCloseMessages;

impl CloseMessages for PowerstreamCloseMessages {
    fn close_line(&self, reason: &CloseReason) -> Option<Bytes> {
        let (kind, detail) = match reason {
            CloseReason::SlowConsumer => (DisconnectType::SlowReader, SLOW_CONSUMER_MESSAGE.into()),
            CloseReason::TooManyConnections { allowed } => (
                DisconnectType::ForceDisconnect,
                too_many_connections_message(*allowed),
            ),
            CloseReason::Operational => (
                DisconnectType::OperationalDisconnect,
                OPERATIONAL_DISCONNECT_MESSAGE.to_owned(),
            ),
            CloseReason::CredentialsRevoked => (
                DisconnectType::ForceDisconnect,
                CREDENTIALS_REVOKED_MESSAGE.to_owned(),
            ),
            CloseReason::Completed(line) => return Some(line.clone()),
        };
        let line = StreamErrors::disconnect(kind, detail);
        Some(Bytes::from(sluice_wire::to_vec(&line)))
    }
}

/// `localDcOnly`: `true` or `false` (any case); absent is `false`.
fn local_dc_only(query: &[(String, String)]) -> Result<bool, ProblemError> {
    let Some((_, value)) = query.iter().find(|(k, _)| k == "localDcOnly") else {
        return Ok(false);
    };
    match value.to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(ProblemError::invalid_request(format!(
            "Invalid value '{value}' for query parameter 'localDcOnly': use 'true' or 'false'."
        ))
        .with_status(StatusCode::NOT_ACCEPTABLE)),
    }
}

/// `GET /2/powerstream[?localDcOnly=true][&backfillMinutes=N|&startTime=…&endTime=…]`.
pub async fn connect(
    State(state): State<AppState>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Response, ProblemError> {
    let account = authenticate(&state, &headers).await?;
    let local_dc_only = local_dc_only(&query)?;
    let now = now_ms();
    let parsed = StreamQuery::parse(
        &query,
        None,
        u64::try_from(now).unwrap_or(0),
        state.settings.post_log_retention,
    )?;
    let datacenter = state.settings.datacenter.as_str();
    let datacenter_header = HeaderValue::from_str(datacenter).map_err(ProblemError::internal)?;
    let live = ensure_stream(&state, &account).await?;
    let start = Start::claim(parsed.start, &live)?;
    let encoding = if accepts_gzip(&headers) {
        Encoding::Gzip
    } else {
        Encoding::Identity
    };
    let prelude = local_dc_only.then(|| {
        let mut line = sluice_wire::to_vec(&ConnectionMetadata::new(datacenter, now));
        line.extend_from_slice(b"\r\n");
        Bytes::from(line)
    });
    let options = StreamOptions {
        partition: None,
        local_dc_only,
        encoding,
        prelude,
        messages: Arc::new(PowerstreamCloseMessages),
        user: None,
    };
    let mut response = open_stream_at(&state, live, options, start);
    if local_dc_only {
        let headers = response.headers_mut();
        headers.insert(DATACENTER_HEADER, datacenter_header);
        headers.insert(LOCAL_DC_ONLY_HEADER, HeaderValue::from_static("true"));
    }
    Ok(response)
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
    fn local_dc_only_is_a_strict_boolean() {
        assert!(!local_dc_only(&pairs(&[])).unwrap());
        assert!(local_dc_only(&pairs(&[("localDcOnly", "TRUE")])).unwrap());
        assert!(!local_dc_only(&pairs(&[("localDcOnly", "false")])).unwrap());
        let refused = local_dc_only(&pairs(&[("localDcOnly", "yes")])).unwrap_err();
        assert_eq!(refused.status, StatusCode::NOT_ACCEPTABLE);
        assert_eq!(refused.problem.status, Some(406));
    }

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
        assert!(check_rule(&input("(cat OR dog) lang:en -is:retweet", None)).is_ok());
        let details = check_rule(&input("cat sample:10", Some(&"t".repeat(256)))).unwrap_err();
        assert_eq!(
            details,
            [
                "Reference to invalid operator 'sample' (at position 5).",
                "Tags cannot be longer than 255 characters."
            ]
        );
    }
}
