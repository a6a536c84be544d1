//! The v2 stream connects: the filtered stream (`/2/tweets/search/stream`), the 1 % sample
//! (`/2/tweets/sample/stream`) and the partitioned volume streams (`…/sample10/stream`,
//! `…/firehose/stream`). Every connection writes v2 lines with the fields and expansions
//! it asked for; the checks, in order: the app's token (401), the connect rate limit per
//! app and endpoint (429), the query (400), rules on the filtered stream (409), the
//! connection cap per partition (429).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{MethodRouter, get};
use sluice_store::Product;

use super::auth::authenticate;
use super::ensure_stream;
use super::query::V2StreamQuery;
use crate::api::close::close_messages;
use crate::api::encoding::accepts_gzip;
use crate::api::error::add_rate_headers;
use crate::api::problem::ProblemError;
use crate::api::stream_query::check_held;
use crate::api::streaming::{Start, StreamOptions, open_stream_at};
use crate::clock::now_ms;
use crate::delivery::{Encoding, Format};
use crate::state::AppState;

/// X's text for a filtered stream connect without rules.
pub const NO_RULES_DETAIL: &str = "You must define rules using the POST \
     /2/tweets/search/stream/rules endpoint before connecting to filtered stream.";

/// X's text for a connect beyond the stream's connection cap.
pub const TOO_MANY_CONNECTIONS_DETAIL: &str =
    "This stream is currently at the maximum allowed connection limit.";

type QueryPairs = Vec<(String, String)>;

/// The `GET` endpoint of the app's stream of `product` (one of [`Product::V2`]); the four
/// v2 streams differ only in their rows of the product table.
pub fn endpoint(product: Product) -> MethodRouter<AppState> {
    get(
        move |State(state): State<AppState>,
              Query(query): Query<QueryPairs>,
              headers: HeaderMap| async move {
            connect(&state, product, &query, &headers).await
        },
    )
}

/// Connects the app's stream of `product`; see the module doc for the checks.
async fn connect(
    state: &AppState,
    product: Product,
    query: &QueryPairs,
    headers: &HeaderMap,
) -> Result<Response, ProblemError> {
    let spec = product.spec();
    let app = authenticate(state, headers).await?;
    let rate = state
        .limits
        .connects(product)
        .map(|limiter| limiter.check(&app.id))
        .transpose()
        .map_err(ProblemError::rate_limited)?;
    let with_rate = |mut e: ProblemError| {
        e.rate = rate;
        e
    };
    let now = u64::try_from(now_ms()).unwrap_or(0);
    let parsed = V2StreamQuery::parse(
        query,
        spec.partitions,
        now,
        state.settings.post_log_retention,
    )
    .map_err(with_rate)?;
    check_held(&state.post_log, parsed.start, now)
        .await
        .map_err(|e| {
            with_rate(match e.status {
                // The window's other refusals are v2 invalid requests too (V2StreamQuery).
                StatusCode::NOT_ACCEPTABLE => ProblemError::invalid_request(e.message),
                _ => e.into(),
            })
        })?;
    let live = ensure_stream(state, &app, product)
        .await
        .map_err(|e| with_rate(e.into()))?;
    if spec.rules.is_some() && live.rules.is_empty() {
        return Err(with_rate(ProblemError::connection_exception(
            StatusCode::CONFLICT,
            "RuleConfigurationIssue",
            NO_RULES_DETAIL,
        )));
    }
    let open = live.connections.holding_slots(parsed.partition);
    if open >= live.limits().max_connections as usize {
        tracing::info!(
            account = live.key.account,
            app = app.id,
            product = product.as_str(),
            partition = parsed.partition,
            open,
            "v2 stream connect refused: too many connections"
        );
        return Err(with_rate(ProblemError::connection_exception(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyConnections",
            TOO_MANY_CONNECTIONS_DETAIL,
        )));
    }
    let start = Start::claim(parsed.start, &live).map_err(|e| with_rate(e.into()))?;
    let encoding = if accepts_gzip(headers) {
        Encoding::Gzip
    } else {
        Encoding::Identity
    };
    let options = StreamOptions {
        partition: parsed.partition,
        local_dc_only: false,
        format: Format::V2(Arc::new(parsed.fields)),
        encoding,
        prelude: None,
        messages: close_messages(spec.errors),
        user: None,
    };
    let mut response = open_stream_at(state, live, options, start);
    if let Some(rate) = rate {
        add_rate_headers(&mut response, rate);
    }
    Ok(response)
}
