//! The Replay stream (docs/compatibility.md "Replay"):
//! `GET /replay/powertrack/accounts/{account}/publishers/twitter/{label}.json?fromDate=…&toDate=…`.
//!
//! The checks of every Gnip-style connect ([`admit_gnip`]: account, basic auth, stream,
//! the row's connect limit of 5 per 5 minutes, gzip), then the window ([`ReplayWindow`]),
//! then that the post log still holds the whole window (406 otherwise), then the stream's
//! one job slot (429 while a job runs). The job streams the window's posts that match the
//! stream's own rules, oldest first, at the client's pace, off the async workers
//! ([`crate::delivery::replay`]), with heartbeats while nothing matches, and ends with
//! X's completion message.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use sluice_postlog::held;
use sluice_store::Product;

use super::query::ReplayWindow;
use crate::api::close::close_messages;
use crate::api::error::{ApiError, add_rate_headers};
use crate::api::recovery::RecoveryJob;
use crate::api::streaming::{Start, StreamOptions, admit_gnip, open_stream_at};
use crate::clock::now_ms;
use crate::delivery::{Encoding, Format};
use crate::state::AppState;

const MINUTE_MS: u64 = 60_000;

/// `GET /replay/powertrack/accounts/{account}/publishers/twitter/{label}.json`: one replay
/// job over `fromDate`/`toDate`.
pub async fn connect(
    State(state): State<AppState>,
    Path((account, label)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let product = Product::PowerTrackReplay;
    let admitted = admit_gnip(
        &state,
        &account,
        &label,
        product,
        None,
        &headers,
        state.limits.connects(product),
    )
    .await?;
    // Admitted requests accept gzip.
    let refuse = |e: ApiError| e.stream_sent().gzip(true);
    let now = u64::try_from(now_ms()).unwrap_or(0);
    let window = ReplayWindow::parse(&query, now, state.settings.replay_embargo).map_err(refuse)?;
    let log = state.post_log.clone();
    let from_ms = window.from_ms;
    let held = tokio::task::spawn_blocking(move || held::check_window(&*log, from_ms))
        .await
        .expect("searching the post log does not panic");
    match held {
        Ok(Ok(())) => {}
        Ok(Err(not_held)) => {
            let oldest = not_held.oldest_ms.unwrap_or(now);
            return Err(refuse(no_longer_held(oldest)));
        }
        Err(e) => {
            crate::telemetry::post_log_error();
            tracing::error!("reading the post log for a replay request failed: {e}");
            return Err(refuse(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "The post log cannot be read right now: retry the replay request later.",
            )));
        }
    }
    let job = RecoveryJob::acquire_replay(&admitted.live).map_err(refuse)?;
    let options = StreamOptions {
        partition: None,
        local_dc_only: false,
        format: Format::Native,
        encoding: Encoding::Gzip,
        prelude: None,
        messages: close_messages(product.spec().errors),
        user: Some(admitted.user),
    };
    let start = Start::Replay {
        from_ms: window.from_ms,
        end_ms: window.end_ms,
        job,
    };
    let mut response = open_stream_at(&state, admitted.live, options, start);
    if let Some(rate) = admitted.rate {
        add_rate_headers(&mut response, rate);
    }
    Ok(response)
}

/// 406: the window starts before what the log holds; names the first whole minute held.
fn no_longer_held(first_ms: u64) -> ApiError {
    let minute = first_ms.div_ceil(MINUTE_MS) * MINUTE_MS;
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(minute) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    ApiError::new(
        StatusCode::NOT_ACCEPTABLE,
        format!(
            "Invalid date for query parameter 'fromDate'. This server no longer holds the \
             tweets from before {}: ask for a window from then on.",
            sluice_wire::sent::stream_sent(at)
        ),
    )
}
