//! The PowerTrack stream (docs/compatibility.md §1 and "Decisions"):
//! `GET /stream/powertrack/accounts/{account}/publishers/twitter/{label}.json`.
//!
//! Every post matching at least one of the stream's rules, once per connection, with its
//! `matching_rules`; `\r\n` heartbeats; one gzip stream flushed per batch. Redundant
//! connections each get everything. `backfillMinutes` and recovery (`startTime`/`endTime`)
//! replay the post log matched against the stream's current rules.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use sluice_store::Product;

use crate::api::error::ApiError;
use crate::api::streaming::connect_gnip;
use crate::state::AppState;

/// `GET /stream/powertrack/accounts/{account}/publishers/twitter/{label}.json`, with
/// optional `backfillMinutes` or a recovery window (`startTime`/`endTime`): replayed posts
/// are matched against the stream's current rules. Connects are limited by the product's
/// row of the table (60 per minute per stream).
pub async fn connect(
    State(state): State<AppState>,
    Path((account, label)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    connect_gnip(
        &state,
        Product::PowerTrack,
        &account,
        &label,
        &query,
        &headers,
    )
    .await
}
