//! The PowerTrack stream (spec Part B §1, Part A):
//! `GET /stream/powertrack/accounts/{account}/publishers/twitter/{label}.json`.
//!
//! Every post matching at least one of the stream's rules, once per connection, with its
//! `matching_rules`; `\r\n` heartbeats; one gzip stream flushed per batch. Redundant
//! connections each get everything.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use sluice_store::Product;

use super::error::{ApiError, add_rate_headers};
use super::streaming::{GnipCloseMessages, StreamOptions, admit_gnip, open_stream};
use crate::delivery::Encoding;
use crate::state::AppState;

/// `GET /stream/powertrack/accounts/{account}/publishers/twitter/{label}.json`.
pub async fn connect(
    State(state): State<AppState>,
    Path((account, label)): Path<(String, String)>,
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
    let options = StreamOptions {
        partition: None,
        local_dc_only: false,
        encoding: Encoding::Gzip,
        prelude: None,
        messages: Arc::new(GnipCloseMessages),
    };
    let mut response = open_stream(&state, admitted.live, options);
    add_rate_headers(&mut response, admitted.rate);
    Ok(response)
}
