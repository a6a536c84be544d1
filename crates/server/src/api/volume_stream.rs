//! The volume streams (spec Part B §4.1, Part A "Partitions"):
//! `GET /stream/sample10/accounts/{account}/publishers/twitter/{label}.json?partition=N`
//! (Decahose, 2 partitions) and `GET /stream/firehose/…?partition=N` (Firehose, 20).
//!
//! No rules: every post of the 10 % sample (or every post), split into disjoint
//! partitions by the post id (`sluice_model::sampling`); a client consumes all partitions
//! for the whole stream. Connection caps count per partition. Everything else is as on
//! PowerTrack: gzip, heartbeats, framing, slow consumers, `backfillMinutes`, recovery.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use sluice_store::Product;

use super::error::{ApiError, add_rate_headers};
use super::stream_query::StreamQuery;
use super::streaming::{GnipCloseMessages, Start, StreamOptions, admit_gnip, open_stream_at};
use crate::delivery::Encoding;
use crate::delivery::select::partitions_of;
use crate::state::{AppState, now_ms};

/// `GET /stream/sample10/accounts/{account}/publishers/twitter/{label}.json`: the Decahose.
pub async fn decahose(
    State(state): State<AppState>,
    Path((account, label)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    connect(state, Product::Decahose, &account, &label, &query, &headers).await
}

/// `GET /stream/firehose/accounts/{account}/publishers/twitter/{label}.json`: the Firehose.
pub async fn firehose(
    State(state): State<AppState>,
    Path((account, label)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    connect(state, Product::Firehose, &account, &label, &query, &headers).await
}

/// The checks of [`admit_gnip`] (auth, stream, 10 connects per 60 s, gzip), then the
/// query (`partition`, `backfillMinutes`, recovery window: 406), then the connection.
async fn connect(
    state: AppState,
    product: Product,
    account: &str,
    label: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let admitted = admit_gnip(
        &state,
        account,
        label,
        product,
        headers,
        &state.limits.volume_connects,
    )
    .await?;
    // Admitted requests accept gzip.
    let refuse = |e: ApiError| e.stream_sent().gzip(true);
    let now = u64::try_from(now_ms()).unwrap_or(0);
    let query = StreamQuery::parse(
        query,
        partitions_of(product),
        now,
        state.settings.post_log_retention,
    )
    .map_err(refuse)?;
    let start = Start::claim(query.start, &admitted.live).map_err(refuse)?;
    let options = StreamOptions {
        partition: query.partition,
        local_dc_only: false,
        encoding: Encoding::Gzip,
        prelude: None,
        messages: Arc::new(GnipCloseMessages),
    };
    let mut response = open_stream_at(&state, admitted.live, options, start);
    add_rate_headers(&mut response, admitted.rate);
    Ok(response)
}
