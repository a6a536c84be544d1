//! The console's usage view as JSON: `GET /admin/accounts/{account}/usage` (admin token),
//! with the Usage API's numbers in a flatter shape, plus what only a live server knows:
//! connections open now, rules per stream, and how often each rule matched in the last
//! hour (docs/operator-interface.md, "Usage").

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_store::StoredRule;
use time::OffsetDateTime;

use super::admin::{json, require_account, require_admin};
use super::error::ApiError;
use crate::clock::now_ms;
use crate::state::AppState;
use crate::usage::bucket::{Bucket, Range, RangeQuery, format_date};
use crate::usage::minute_of;
use crate::usage::report::{BucketCounts, StreamSeries, account_usage};

/// Rules listed as matching most, per stream.
pub const TOP_RULES: usize = 10;
/// Never-matched rules listed per stream (all are counted).
pub const NEVER_MATCHED_LISTED: usize = 50;

/// The query of the console's usage view.
#[derive(Debug, Deserialize)]
pub struct ConsoleUsageQuery {
    bucket: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// `GET /admin/accounts/{account}/usage?bucket=hour|day|month&from=…&to=…` (dates
/// `yyyymmddhhmm`, UTC; default: the last 24 hours by hour).
pub async fn get_usage(
    State(state): State<AppState>,
    Path(account): Path<String>,
    Query(query): Query<ConsoleUsageQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    require_admin(&state, &headers)?;
    require_account(&state, &account).await?;
    let now = OffsetDateTime::from_unix_timestamp_nanos(i128::from(now_ms()) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let range = RangeQuery {
        bucket: query.bucket.as_deref(),
        from: (query.from.as_deref(), "from"),
        to: (query.to.as_deref(), "to"),
    }
    .resolve(Bucket::Hour, now)
    .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let body = console_usage(&state, &account, range).await?;
    Ok(json(StatusCode::OK, &body))
}

/// The console's usage view of `account` over `range` (the account must exist; callers
/// check who may see it).
pub async fn console_usage(
    state: &AppState,
    account: &str,
    range: Range,
) -> Result<Value, ApiError> {
    let usage = account_usage(state, account, range).await?;
    let now_minute = minute_of(now_ms());
    let mut streams = Vec::with_capacity(usage.streams.len());
    for series in &usage.streams {
        streams.push(stream_view(state, series, now_minute).await?);
    }
    let totals: Vec<Value> = usage
        .totals()
        .iter()
        .map(|t| json!({ "activities": t.activities, "replayed": t.replayed }))
        .collect();
    Ok(json!({
        "account": account,
        "bucket": range.bucket.as_str(),
        "from": format_date(range.from),
        "to": format_date(range.to),
        "buckets": usage.starts.iter().map(|s| format_date(*s)).collect::<Vec<_>>(),
        "totals": totals,
        "streams": streams,
    }))
}

fn counts(b: &BucketCounts) -> Value {
    json!({
        "activities": b.activities,
        "replayed": b.replayed,
        "peak_connections": b.peak_connections,
    })
}

/// One stream: its series, and, if it still exists, its connections, rules and rule
/// matches now.
async fn stream_view(
    state: &AppState,
    series: &StreamSeries,
    now_minute: i64,
) -> Result<Value, ApiError> {
    let key = &series.stream;
    let mut view = json!({
        "product": key.product.as_str(),
        "label": key.label,
        "usage": series.buckets.iter().map(counts).collect::<Vec<_>>(),
        "total": counts(&series.total()),
    });
    let Some(live) = state.registry.get(key) else {
        view["deleted"] = json!(true);
        return Ok(view);
    };
    view["deleted"] = json!(false);
    view["connections"] = json!(live.connections.len());
    view["rules"] = json!(live.rules.len());
    if key.product.spec().rules.is_some() {
        let id = live.id;
        let rules = state.blocking(move |s| s.rules(id)).await?;
        let matches = live.usage.rule_matches_last_hour(now_minute);
        view["rule_matches_last_hour"] = rule_matches(&rules, &matches);
    }
    Ok(view)
}

/// The rules that matched most in the last hour and those that did not match at all.
fn rule_matches(rules: &[StoredRule], matches: &HashMap<u64, u64>) -> Value {
    let rule = |r: &StoredRule| json!({ "id": r.id.to_string(), "value": r.value, "tag": r.tag });
    let mut matched: Vec<(&StoredRule, u64)> = rules
        .iter()
        .filter_map(|r| matches.get(&r.id).map(|&n| (r, n)))
        .collect();
    matched.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.id.cmp(&b.0.id)));
    let top: Vec<Value> = matched
        .iter()
        .take(TOP_RULES)
        .map(|(r, n)| {
            let mut v = rule(r);
            v["matches"] = json!(n);
            v
        })
        .collect();
    let never: Vec<&StoredRule> = rules
        .iter()
        .filter(|r| !matches.contains_key(&r.id))
        .collect();
    json!({
        "matched_rules": matched.len(),
        "total_matches": matched.iter().map(|(_, n)| n).sum::<u64>(),
        "top": top,
        "never_matched_count": never.len(),
        "never_matched": never.iter().take(NEVER_MATCHED_LISTED).map(|r| rule(r)).collect::<Vec<_>>(),
    })
}
