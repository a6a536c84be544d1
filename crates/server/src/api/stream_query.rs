//! The query parameters of Gnip-style streams (docs/compatibility.md ("Decisions") "Partitions", "Backfill";
//! docs/compatibility.md §1.1, §4.1, §5): `partition`, `backfillMinutes`, and the recovery window
//! `startTime`/`endTime` (also spelled `start_time`/`end_time`). A bad value is a 406 whose
//! `{"error":…}` message says what is accepted.
//!
//! Unknown parameters are ignored (clients send extras); of a repeated parameter the first
//! counts.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use sluice_postlog::PostLog;
use sluice_postlog::held::{self, NotHeld};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use super::error::ApiError;

/// The longest backfill a connection may ask for (docs/compatibility.md ("Decisions"): 1–5 minutes).
pub const MAX_BACKFILL_MINUTES: u32 = 5;

/// How far back a recovery window may start (X: 24 hours), whatever the retention; a
/// longer retention serves Replay.
pub const MAX_RECOVERY_REACH: Duration = Duration::from_secs(24 * 3600);

/// Where a connection's stream starts, as the query asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartRequest {
    /// Live posts from now on.
    Live,
    /// `backfillMinutes=N`: the posts of the last N minutes first, then live.
    Backfill {
        /// 1 to [`MAX_BACKFILL_MINUTES`].
        minutes: u32,
    },
    /// `startTime`/`endTime`: the posts that arrived in `[start_ms, end_ms)`, then the
    /// completion message; nothing live.
    Recovery {
        /// Window start, epoch milliseconds, inclusive.
        start_ms: u64,
        /// Window end, epoch milliseconds, exclusive (at most the time of the request).
        end_ms: u64,
    },
}

/// The parsed query of a Gnip-style stream request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamQuery {
    /// `partition`, checked against the product's range (volume streams only).
    pub partition: Option<u32>,
    /// Live, backfill or recovery.
    pub start: StartRequest,
}

/// The query's parameters, in order.
pub type QueryPairs = [(String, String)];

fn param<'a>(pairs: &'a QueryPairs, names: &[&str]) -> Option<(&'a str, &'a str)> {
    names.iter().find_map(|name| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(k, v)| (k.as_str(), v.as_str()))
    })
}

fn not_acceptable(message: String) -> ApiError {
    ApiError::new(StatusCode::NOT_ACCEPTABLE, message)
}

impl StreamQuery {
    /// Parses and checks the query. `partitions` is the product's partition count (`None`:
    /// no partitions, `partition` is ignored); `now_ms` the time of the request;
    /// `retention` how far back the post log reaches (recovery windows must start within
    /// it).
    pub fn parse(
        pairs: &QueryPairs,
        partitions: Option<u32>,
        now_ms: u64,
        retention: Duration,
    ) -> Result<StreamQuery, ApiError> {
        let partition = match partitions {
            Some(count) => Some(parse_partition(
                param(pairs, &["partition"]).map(|(_, v)| v),
                count,
            )?),
            None => None,
        };
        let backfill = param(pairs, &["backfillMinutes"]).map(|(_, v)| v);
        let start = param(pairs, &["startTime", "start_time"]);
        let end = param(pairs, &["endTime", "end_time"]);
        let start = match (backfill, start, end) {
            (None, None, None) => StartRequest::Live,
            (Some(minutes), None, None) => StartRequest::Backfill {
                minutes: parse_backfill(minutes)?,
            },
            (Some(_), Some((name, _)), _) | (Some(_), None, Some((name, _))) => {
                return Err(not_acceptable(format!(
                    "The query parameters 'backfillMinutes' and '{name}' cannot be combined: \
                     backfill starts a live stream, recovery re-streams a past window."
                )));
            }
            (None, None, Some((name, _))) => {
                return Err(not_acceptable(format!(
                    "The query parameter '{name}' requires 'startTime'."
                )));
            }
            (None, Some(start), end) => recovery_window(start, end, now_ms, retention)?,
        };
        Ok(StreamQuery { partition, start })
    }
}

/// The valid `partition` a volume-stream request names (`partitions` is the product's
/// count), or `None` (no partitions, or missing or out of range: the request is refused
/// later by [`StreamQuery::parse`]). What the connect rate limit is counted by.
pub fn requested_partition(pairs: &QueryPairs, partitions: Option<u32>) -> Option<u32> {
    let count = partitions?;
    parse_partition(param(pairs, &["partition"]).map(|(_, v)| v), count).ok()
}

fn parse_partition(value: Option<&str>, count: u32) -> Result<u32, ApiError> {
    let range = format!("this stream has partitions 1 to {count}");
    match value {
        None => Err(not_acceptable(format!(
            "The query parameter 'partition' is required: {range}."
        ))),
        Some(v) => match v.parse::<u32>() {
            Ok(p) if (1..=count).contains(&p) => Ok(p),
            _ => Err(not_acceptable(format!("Invalid partition '{v}': {range}."))),
        },
    }
}

fn parse_backfill(value: &str) -> Result<u32, ApiError> {
    match value.parse::<u32>() {
        Ok(m) if (1..=MAX_BACKFILL_MINUTES).contains(&m) => Ok(m),
        _ => Err(not_acceptable(format!(
            "Invalid value '{value}' for query parameter 'backfillMinutes': \
             it must be a whole number from 1 to {MAX_BACKFILL_MINUTES}."
        ))),
    }
}

/// Parses one ISO-8601 time: `YYYY-MM-DDTHH:mm:ssZ`, with optional fractional seconds and
/// `Z` or a numeric offset (`+00:00`); returns epoch milliseconds.
fn parse_time(name: &str, value: &str) -> Result<u64, ApiError> {
    OffsetDateTime::parse(value, &Rfc3339)
        .ok()
        .and_then(|t| u64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok())
        .ok_or_else(|| {
            not_acceptable(format!(
                "Invalid date format for query parameter '{name}'. Expected format is \
                 'YYYY-MM-DDTHH:mm:ssZ' (UTC), for example '2017-01-01T23:15:00Z'."
            ))
        })
}

fn recovery_window(
    (start_name, start): (&str, &str),
    end: Option<(&str, &str)>,
    now_ms: u64,
    retention: Duration,
) -> Result<StartRequest, ApiError> {
    let start_ms = parse_time(start_name, start)?;
    // The window's end is exclusive; one that is open or in the future ends after the
    // current millisecond, so every post received before the request is in it (posts that
    // arrive after the request are live, not recovered).
    let until_now = now_ms + 1;
    let end_ms = match end {
        Some((name, value)) => parse_time(name, value)?.min(until_now),
        None => until_now,
    };
    if start_ms >= now_ms {
        return Err(not_acceptable(format!(
            "Invalid recovery window: '{start_name}' must be in the past."
        )));
    }
    if start_ms >= end_ms {
        return Err(not_acceptable(format!(
            "Invalid recovery window: '{start_name}' must be before the end of the window."
        )));
    }
    // X's Recovery reaches back 24 hours; a shorter retention reaches less far.
    let (reach, why) = if retention < MAX_RECOVERY_REACH {
        (retention, "the post log retention of this server")
    } else {
        (MAX_RECOVERY_REACH, "the longest a recovery reaches back")
    };
    let oldest = now_ms.saturating_sub(reach.as_millis() as u64);
    if start_ms < oldest {
        return Err(not_acceptable(format!(
            "Invalid recovery window: '{start_name}' must be within the last {}, {why}.",
            describe(reach)
        )));
    }
    Ok(StartRequest::Recovery { start_ms, end_ms })
}

/// Refuses (406) a recovery window that starts before the oldest post the post log still
/// holds (dropped by age or by the disk budget), naming the oldest time it still holds;
/// live and backfill requests pass (a backfill delivers what is held). Reads the log on a
/// blocking thread. Any API that re-streams a past window checks it the same way (see
/// [`sluice_postlog::held`] and [`not_held_message`]).
pub async fn check_held(
    log: &Arc<dyn PostLog>,
    start: StartRequest,
    now_ms: u64,
) -> Result<(), ApiError> {
    let StartRequest::Recovery { start_ms, .. } = start else {
        return Ok(());
    };
    let log = log.clone();
    let held = tokio::task::spawn_blocking(move || held::check_window(&*log, start_ms))
        .await
        .map_err(ApiError::internal)?;
    match held {
        Ok(Ok(())) => Ok(()),
        Ok(Err(not_held)) => Err(not_acceptable(not_held_message(
            "Invalid recovery window",
            not_held,
            now_ms,
        ))),
        Err(e) => {
            crate::telemetry::post_log_error();
            tracing::error!("reading the post log's oldest post failed: {e}");
            Err(ApiError::internal(e))
        }
    }
}

/// The refusal of a window the post log no longer holds whole, after `what` ("Invalid
/// recovery window"): names the oldest time still held, to the millisecond, so that a
/// window starting exactly there is accepted (`now_ms` when nothing is held).
pub fn not_held_message(what: &str, not_held: NotHeld, now_ms: u64) -> String {
    let (oldest, why) = match not_held.oldest_ms {
        Some(ms) => (ms, "the oldest post it still holds"),
        None => (now_ms, "it holds no earlier post"),
    };
    format!(
        "{what}: posts before {} are no longer held by this server ({why}); \
         the window must start at or after that time.",
        iso_millis(oldest)
    )
}

/// `ms` as `YYYY-MM-DDTHH:mm:ss.sssZ` (UTC).
fn iso_millis(ms: u64) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| format!("{ms} ms after the epoch"))
}

/// `10 minutes`, `1 hour`, `90 seconds`.
fn describe(duration: Duration) -> String {
    let secs = duration.as_secs();
    let (n, unit) = if secs.is_multiple_of(86_400) && secs > 86_400 {
        (secs / 86_400, "day")
    } else if secs.is_multiple_of(3600) && secs > 0 {
        (secs / 3600, "hour")
    } else if secs.is_multiple_of(60) && secs > 0 {
        (secs / 60, "minute")
    } else {
        (secs, "second")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000; // 2023-11-14T22:13:20Z
    const TEN_MINUTES: Duration = Duration::from_secs(600);

    fn pairs(query: &[(&str, &str)]) -> Vec<(String, String)> {
        query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn parse(query: &[(&str, &str)], partitions: Option<u32>) -> Result<StreamQuery, ApiError> {
        StreamQuery::parse(&pairs(query), partitions, NOW, TEN_MINUTES)
    }

    fn refusal(query: &[(&str, &str)], partitions: Option<u32>) -> String {
        let e = parse(query, partitions).unwrap_err();
        assert_eq!(e.status, StatusCode::NOT_ACCEPTABLE);
        e.message
    }

    #[test]
    fn partitions_are_required_on_volume_streams_and_name_the_range() {
        assert_eq!(
            parse(&[("partition", "20")], Some(20)).unwrap().partition,
            Some(20)
        );
        assert_eq!(parse(&[("partition", "7")], None).unwrap().partition, None);
        assert_eq!(
            refusal(&[], Some(2)),
            "The query parameter 'partition' is required: this stream has partitions 1 to 2."
        );
        for bad in ["0", "21", "-1", "x", ""] {
            assert_eq!(
                refusal(&[("partition", bad)], Some(20)),
                format!("Invalid partition '{bad}': this stream has partitions 1 to 20.")
            );
        }
    }

    #[test]
    fn backfill_is_a_whole_number_of_minutes_from_one_to_five() {
        for m in 1..=5 {
            let q = parse(&[("backfillMinutes", &m.to_string())], None).unwrap();
            assert_eq!(q.start, StartRequest::Backfill { minutes: m });
        }
        for bad in ["0", "6", "2.5", "-1", "five", ""] {
            assert!(
                refusal(&[("backfillMinutes", bad)], None).contains("from 1 to 5"),
                "{bad}"
            );
        }
        assert_eq!(parse(&[], None).unwrap().start, StartRequest::Live);
    }

    #[test]
    fn recovery_windows_accept_both_spellings_fractions_and_offsets() {
        let q = parse(
            &[
                ("startTime", "2023-11-14T22:05:00Z"),
                ("endTime", "2023-11-14T22:06:00.250+00:00"),
            ],
            None,
        )
        .unwrap();
        assert_eq!(
            q.start,
            StartRequest::Recovery {
                start_ms: NOW - 500_000,
                end_ms: NOW - 440_000 + 250,
            }
        );
        let q = parse(&[("start_time", "2023-11-14T22:10:00.5Z")], None).unwrap();
        // Without an end, and with an end in the future, the window ends after this
        // millisecond.
        assert_eq!(
            q.start,
            StartRequest::Recovery {
                start_ms: NOW - 200_000 + 500,
                end_ms: NOW + 1,
            }
        );
        let q = parse(
            &[
                ("start_time", "2023-11-14T22:10:00Z"),
                ("end_time", "2023-11-15T00:00:00Z"),
            ],
            None,
        )
        .unwrap();
        assert_eq!(
            q.start,
            StartRequest::Recovery {
                start_ms: NOW - 200_000,
                end_ms: NOW + 1,
            }
        );
    }

    #[test]
    fn bad_recovery_windows_are_refused_with_the_reason() {
        assert!(
            refusal(&[("startTime", "2023-11-14 22:05:00")], None)
                .starts_with("Invalid date format for query parameter 'startTime'.")
        );
        assert!(
            refusal(
                &[("startTime", "2023-11-14T22:05:00Z"), ("end_time", "soon")],
                None
            )
            .starts_with("Invalid date format for query parameter 'end_time'.")
        );
        assert!(
            refusal(&[("startTime", "2023-11-14T21:50:00Z")], None)
                .contains("within the last 10 minutes")
        );
        assert!(refusal(&[("startTime", "2023-11-14T22:20:00Z")], None).contains("in the past"));
        assert!(
            refusal(
                &[
                    ("startTime", "2023-11-14T22:06:00Z"),
                    ("endTime", "2023-11-14T22:06:00Z")
                ],
                None
            )
            .contains("before the end")
        );
        assert!(refusal(&[("endTime", "2023-11-14T22:06:00Z")], None).contains("requires"));
        assert!(
            refusal(
                &[
                    ("backfillMinutes", "2"),
                    ("startTime", "2023-11-14T22:05:00Z")
                ],
                None
            )
            .contains("cannot be combined")
        );
    }

    #[test]
    fn refusals_of_windows_not_held_name_the_oldest_time_held() {
        let oldest = NotHeld {
            oldest_ms: Some(NOW - 299_500),
        };
        assert_eq!(
            not_held_message("Invalid recovery window", oldest, NOW),
            "Invalid recovery window: posts before 2023-11-14T22:08:20.500Z are no longer \
             held by this server (the oldest post it still holds); the window must start at \
             or after that time."
        );
        let exact = NotHeld {
            oldest_ms: Some(NOW),
        };
        assert!(not_held_message("x", exact, NOW).contains("before 2023-11-14T22:13:20.000Z"));
        let none = NotHeld { oldest_ms: None };
        assert!(
            not_held_message("x", none, NOW + 1)
                .contains("before 2023-11-14T22:13:20.001Z are no longer held by this server (it holds no earlier post)")
        );
    }

    #[test]
    fn recovery_reaches_back_24_hours_at_most_and_never_past_the_retention() {
        let query = |hours_ago: u64| {
            let start = NOW - hours_ago * 3_600_000 - 1_000;
            let start = OffsetDateTime::from_unix_timestamp_nanos(i128::from(start) * 1_000_000)
                .unwrap()
                .format(&Rfc3339)
                .unwrap();
            pairs(&[("startTime", &start)])
        };
        let five_days = Duration::from_secs(5 * 86_400);
        assert!(StreamQuery::parse(&query(23), None, NOW, five_days).is_ok());
        let refused = StreamQuery::parse(&query(24), None, NOW, five_days).unwrap_err();
        assert_eq!(
            refused.message,
            "Invalid recovery window: 'startTime' must be within the last 24 hours, the \
             longest a recovery reaches back."
        );
        let two_hours = Duration::from_secs(7_200);
        let refused = StreamQuery::parse(&query(2), None, NOW, two_hours).unwrap_err();
        assert!(
            refused
                .message
                .ends_with("within the last 2 hours, the post log retention of this server.")
        );
    }

    #[test]
    fn retention_reads_naturally() {
        assert_eq!(describe(Duration::from_secs(600)), "10 minutes");
        assert_eq!(describe(Duration::from_secs(3600)), "1 hour");
        assert_eq!(describe(Duration::from_secs(86_400)), "24 hours");
        assert_eq!(describe(Duration::from_secs(5 * 86_400)), "5 days");
        assert_eq!(describe(Duration::from_secs(90)), "90 seconds");
    }
}
