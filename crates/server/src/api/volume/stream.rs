//! The volume streams (docs/compatibility.md §4.1 and "Decisions" "Partitions"):
//! `GET /stream/sample10/accounts/{account}/publishers/twitter/{label}.json?partition=N`
//! (Decahose, 2 partitions), `GET /stream/firehose/…?partition=N` (Firehose, 20) and
//! `GET /stream/compliance/…?partition=N` (the compliance firehose, 8, which carries
//! compliance events instead of posts).
//!
//! No rules: every post of the 10 % sample (or every post), split into disjoint
//! partitions by the post id (`sluice_model::sampling`); a client consumes all partitions
//! for the whole stream. Connection caps count per partition. Everything else is as on
//! PowerTrack: gzip, heartbeats, framing, slow consumers, `backfillMinutes`, recovery.
//! Partitions, sample and the connect limit (10 per 60 s per stream and partition) are
//! each product's row of the table; the query's `partition` is required.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use sluice_store::Product;

use crate::api::error::ApiError;
use crate::api::streaming::connect_gnip;
use crate::state::AppState;

/// `GET /stream/sample10/accounts/{account}/publishers/twitter/{label}.json`: the Decahose.
pub async fn decahose(
    State(state): State<AppState>,
    Path((account, label)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    connect_gnip(
        &state,
        Product::Decahose,
        &account,
        &label,
        &query,
        &headers,
    )
    .await
}

/// `GET /stream/firehose/accounts/{account}/publishers/twitter/{label}.json`: the Firehose.
pub async fn firehose(
    State(state): State<AppState>,
    Path((account, label)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    connect_gnip(
        &state,
        Product::Firehose,
        &account,
        &label,
        &query,
        &headers,
    )
    .await
}

/// `GET /stream/compliance/accounts/{account}/publishers/twitter/{label}.json`: the
/// compliance firehose (events, not posts; docs/compliance.md).
pub async fn compliance(
    State(state): State<AppState>,
    Path((account, label)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    connect_gnip(
        &state,
        Product::Compliance,
        &account,
        &label,
        &query,
        &headers,
    )
    .await
}
