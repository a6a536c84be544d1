//! The window of a Replay request (docs/compatibility.md "Replay"): `fromDate` (inclusive)
//! and `toDate` (exclusive), both `yyyyMMddHHmm` in UTC. Both are required; `fromDate` must
//! come before `toDate`, lie within the last [`REPLAY_DAYS`] days and be at least the
//! embargo and one minute old; `toDate` must be at least the embargo old
//! (`--replay-embargo`, X's 30 minutes by default). A bad value is a 406 with X's texts.

use std::time::Duration;

use axum::http::StatusCode;
use time::{Date, Month, PrimitiveDateTime, Time};

use crate::api::error::ApiError;
use crate::api::stream_query::QueryPairs;

/// How far back a Replay window may start, in days.
pub const REPLAY_DAYS: u64 = 5;
const MINUTE_MS: u64 = 60_000;
const DAY_MS: u64 = 24 * 60 * MINUTE_MS;

/// A checked Replay window, epoch milliseconds on whole minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayWindow {
    /// `fromDate`, inclusive.
    pub from_ms: u64,
    /// `toDate`, exclusive.
    pub end_ms: u64,
}

fn not_acceptable(message: String) -> ApiError {
    ApiError::new(StatusCode::NOT_ACCEPTABLE, message)
}

impl ReplayWindow {
    /// Parses and checks the query of a request made at `now_ms`.
    pub fn parse(
        pairs: &QueryPairs,
        now_ms: u64,
        embargo: Duration,
    ) -> Result<ReplayWindow, ApiError> {
        let from_ms = parse_date(pairs, "fromDate")?;
        let end_ms = parse_date(pairs, "toDate")?;
        let embargo_ms = u64::try_from(embargo.as_millis()).unwrap_or(u64::MAX);
        let latest_end = now_ms.saturating_sub(embargo_ms);
        let latest_from = latest_end.saturating_sub(MINUTE_MS);
        if from_ms > latest_from {
            return Err(too_recent("fromDate", embargo + Duration::from_secs(60)));
        }
        if end_ms > latest_end {
            return Err(too_recent("toDate", embargo));
        }
        if from_ms < now_ms.saturating_sub(REPLAY_DAYS * DAY_MS) {
            return Err(not_acceptable(format!(
                "Invalid date for query parameter 'fromDate'. Can't ask for tweets from \
                 more than {REPLAY_DAYS} days ago."
            )));
        }
        if from_ms >= end_ms {
            return Err(not_acceptable(
                "Invalid date range: 'fromDate' must be before 'toDate'.".to_owned(),
            ));
        }
        Ok(ReplayWindow { from_ms, end_ms })
    }
}

/// X's text for a date within the embargo.
fn too_recent(name: &str, embargo: Duration) -> ApiError {
    not_acceptable(format!(
        "Invalid date for query parameter '{name}'. Can't ask for tweets from within the \
         past {}.",
        span(embargo)
    ))
}

/// `30 minutes`, `1 minute`, or in seconds when not whole minutes (`90 seconds`).
fn span(d: Duration) -> String {
    let secs = d.as_secs();
    match (secs % 60, secs / 60) {
        (0, 1) => "1 minute".to_owned(),
        (0, minutes) => format!("{minutes} minutes"),
        _ => format!("{secs} seconds"),
    }
}

/// The parameter `name` (the first, if repeated) as epoch milliseconds.
fn parse_date(pairs: &QueryPairs, name: &str) -> Result<u64, ApiError> {
    let value = pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .ok_or_else(|| {
            not_acceptable(format!(
                "Missing query parameter '{name}'. Expected format is 'yyyyMMddHHmm'."
            ))
        })?;
    minute_ms(value).ok_or_else(|| {
        not_acceptable(format!(
            "Invalid date format for query parameter '{name}'. Expected format is \
             'yyyyMMddHHmm'."
        ))
    })
}

/// `yyyyMMddHHmm` (exactly twelve digits, a real date and time, UTC) as epoch
/// milliseconds.
fn minute_ms(value: &str) -> Option<u64> {
    if value.len() != 12 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let field = |range: std::ops::Range<usize>| value[range].parse::<u16>().ok();
    let month = Month::try_from(u8::try_from(field(4..6)?).ok()?).ok()?;
    let date = Date::from_calendar_date(
        i32::from(field(0..4)?),
        month,
        u8::try_from(field(6..8)?).ok()?,
    )
    .ok()?;
    let time = Time::from_hms(
        u8::try_from(field(8..10)?).ok()?,
        u8::try_from(field(10..12)?).ok()?,
        0,
    )
    .ok()?;
    let at = PrimitiveDateTime::new(date, time).assume_utc();
    u64::try_from(at.unix_timestamp()).ok()?.checked_mul(1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_twelve_digits_of_a_real_utc_minute() {
        assert_eq!(minute_ms("197001010001"), Some(60_000));
        assert_eq!(minute_ms("202612030805"), Some(1_796_285_100_000));
        for bad in [
            "",
            "20261203080",
            "2026120308050",
            "2026-12-03T08",
            "202613030805",
            "202602300805",
            "202612032405",
            "202612030860",
            "+02612030805",
            "２026120308０5",
        ] {
            assert_eq!(minute_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn embargo_spans_read_as_x_writes_them() {
        assert_eq!(span(Duration::from_secs(1800)), "30 minutes");
        assert_eq!(span(Duration::from_secs(60)), "1 minute");
        assert_eq!(span(Duration::from_secs(0)), "0 minutes");
        assert_eq!(span(Duration::from_secs(90)), "90 seconds");
    }
}
