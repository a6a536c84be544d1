//! The PowerTrack stream (spec Part B §1, Part A):
//! `GET /stream/powertrack/accounts/{account}/publishers/twitter/{label}.json`.
//!
//! Every post matching at least one of the stream's rules, once per connection, with its
//! `matching_rules`; `\r\n` heartbeats; one gzip stream flushed per batch. Redundant
//! connections each get everything. `backfillMinutes` and recovery (`startTime`/`endTime`)
//! replay the post log matched against the stream's current rules.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use sluice_store::Product;

use super::error::{ApiError, add_rate_headers};
use super::stream_query::StreamQuery;
use super::streaming::{GnipCloseMessages, Start, StreamOptions, admit_gnip, open_stream_at};
use crate::delivery::Encoding;
use crate::state::{AppState, now_ms};

/// `GET /stream/powertrack/accounts/{account}/publishers/twitter/{label}.json`, with
/// optional `backfillMinutes` or a recovery window (`startTime`/`endTime`): replayed posts
/// are matched against the stream's current rules.
pub async fn connect(
    State(state): State<AppState>,
    Path((account, label)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let admitted = admit_gnip(
        &state,
        &account,
        &label,
        Product::PowerTrack,
        &headers,
        &state.limits.powertrack_connects,
    )
    .await?;
    // Admitted requests accept gzip.
    let refuse = |e: ApiError| e.stream_sent().gzip(true);
    let now = u64::try_from(now_ms()).unwrap_or(0);
    let query =
        StreamQuery::parse(&query, None, now, state.settings.post_log_retention).map_err(refuse)?;
    let start = Start::claim(query.start, &admitted.live).map_err(refuse)?;
    let options = StreamOptions {
        partition: None,
        local_dc_only: false,
        encoding: Encoding::Gzip,
        prelude: None,
        messages: Arc::new(GnipCloseMessages),
    };
    let mut response = open_stream_at(&state, admitted.live, options, start);
    add_rate_headers(&mut response, admitted.rate);
    Ok(response)
}
