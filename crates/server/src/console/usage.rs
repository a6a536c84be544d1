//! The customer's usage page as JSON: the admin API's usage view
//! ([`crate::api::admin_usage::console_usage`], docs/operator-interface.md, "Usage") of the
//! signed-in user's account, never another: posts delivered per stream and bucket,
//! connections now and at their peak, rules, and the last hour's rule matches.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use time::OffsetDateTime;

use super::customer::as_customer;
use super::{ConsoleError, json_ok};
use crate::api::admin_usage::console_usage;
use crate::clock::now_ms;
use crate::state::AppState;
use crate::usage::bucket::{Bucket, RangeQuery};

/// The period of the usage page: as the admin API's usage view takes it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UsageQuery {
    bucket: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

/// `GET /console/api/usage?bucket=hour|day|month&from=…&to=…` (dates `yyyymmddhhmm`,
/// UTC; default: the last 24 hours by hour).
pub(super) async fn usage(
    State(state): State<AppState>,
    method: Method,
    headers: HeaderMap,
    Query(query): Query<UsageQuery>,
) -> Result<Response, ConsoleError> {
    let (account, _) = as_customer(&state, &headers, &method)?;
    let now = OffsetDateTime::from_unix_timestamp_nanos(i128::from(now_ms()) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let range = RangeQuery {
        bucket: query.bucket.as_deref(),
        from: (query.from.as_deref(), "from"),
        to: (query.to.as_deref(), "to"),
    }
    .resolve(Bucket::Hour, now)
    .map_err(|e| ConsoleError::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    let body = console_usage(&state, &account, range).await?;
    Ok(json_ok(StatusCode::OK, &body))
}
