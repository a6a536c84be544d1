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

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use sluice_postlog::{FIRST_SEQ, LogError, PostLog};
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
    let retention = state.settings.post_log_retention;
    let held = tokio::task::spawn_blocking(move || complete_from(&*log, now, retention))
        .await
        .expect("searching the post log does not panic");
    match held {
        Ok(Some(first_ms)) if window.from_ms < first_ms => {
            return Err(refuse(no_longer_held(first_ms)));
        }
        Ok(_) => {}
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

/// The earliest time from which `log` still holds every post appended, or `None` when it
/// has never dropped one. Posts leave the log oldest first, so it is the append time of
/// the oldest post held; a log that has dropped every post it had is complete only from
/// the retention's cut-off (`now_ms - retention`) on.
fn complete_from(
    log: &dyn PostLog,
    now_ms: u64,
    retention: Duration,
) -> Result<Option<u64>, LogError> {
    let first = log.seq_at_time(0)?;
    if first <= FIRST_SEQ {
        return Ok(None);
    }
    let oldest = log.read(first, 1)?;
    let cut_off = || now_ms.saturating_sub(u64::try_from(retention.as_millis()).unwrap_or(0));
    Ok(Some(
        oldest.first().map_or_else(cut_off, |post| post.appended_ms),
    ))
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

#[cfg(test)]
mod tests {
    use sluice_postlog::{MemoryLog, NewPost};

    use super::*;

    fn append(log: &MemoryLog, at_ms: u64) {
        let post = NewPost {
            datacenter: "local",
            bytes: br#"{"id":1}"#,
        };
        log.append(&[post], at_ms).unwrap();
    }

    #[test]
    fn a_log_is_complete_from_its_oldest_post_once_it_has_dropped_one() {
        let retention = Duration::from_secs(600);
        let log = MemoryLog::new();
        assert_eq!(complete_from(&log, 1_000_000, retention).unwrap(), None);
        append(&log, 100_000);
        append(&log, 200_000);
        assert_eq!(complete_from(&log, 1_000_000, retention).unwrap(), None);
        log.trim_before(150_000).unwrap();
        assert_eq!(
            complete_from(&log, 1_000_000, retention).unwrap(),
            Some(200_000)
        );
        // Everything dropped: complete from the retention's cut-off on.
        log.trim_before(300_000).unwrap();
        assert_eq!(
            complete_from(&log, 1_000_000, retention).unwrap(),
            Some(400_000)
        );
    }
}
