//! Buckets of UTC time (hour, day, month) and the `yyyymmddhhmm` dates of X's Usage API:
//! which buckets a request covers, and the 400s for ranges that make no sense.
//!
//! Calendar arithmetic (month lengths, leap years) is the `time` crate's; what is written
//! here is the Usage API's own rules (docs/compatibility.md, "The Usage API").

use std::fmt;

use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// The unit usage is counted in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// A UTC hour.
    Hour,
    /// A UTC day.
    Day,
    /// A UTC calendar month.
    Month,
}

impl Bucket {
    /// Parses `hour`, `day` or `month`.
    pub fn parse(name: &str) -> Option<Bucket> {
        match name {
            "hour" => Some(Bucket::Hour),
            "day" => Some(Bucket::Day),
            "month" => Some(Bucket::Month),
            _ => None,
        }
    }

    /// The name, as requests give it.
    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Hour => "hour",
            Bucket::Day => "day",
            Bucket::Month => "month",
        }
    }

    /// The start of the bucket `t` is in.
    pub fn floor(self, t: OffsetDateTime) -> OffsetDateTime {
        let t = t.to_offset(time::UtcOffset::UTC);
        let date = t.date();
        let start = match self {
            Bucket::Hour => {
                PrimitiveDateTime::new(date, Time::from_hms(t.hour(), 0, 0).expect("valid"))
            }
            Bucket::Day => date.midnight(),
            Bucket::Month => first_of_month(date.year(), date.month()).midnight(),
        };
        start.assume_utc()
    }

    /// The start of the bucket after the one starting at `start`.
    pub fn next(self, start: OffsetDateTime) -> OffsetDateTime {
        match self {
            Bucket::Hour => start + Duration::HOUR,
            Bucket::Day => start + Duration::DAY,
            Bucket::Month => add_months(start, 1),
        }
    }

    /// `t` if it starts a bucket, else the start of the next bucket.
    pub fn ceil(self, t: OffsetDateTime) -> OffsetDateTime {
        let floor = self.floor(t);
        if floor == t { t } else { self.next(floor) }
    }

    /// The starts of the buckets in `from..to` (`from` a bucket start).
    pub fn starts(self, from: OffsetDateTime, to: OffsetDateTime) -> Vec<OffsetDateTime> {
        let mut out = Vec::new();
        let mut t = from;
        while t < to {
            out.push(t);
            t = self.next(t);
        }
        out
    }
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn first_of_month(year: i32, month: Month) -> Date {
    Date::from_calendar_date(year, month, 1).expect("the first of a month exists")
}

/// The first of the month `months` months after `t`'s month, at midnight UTC.
pub fn add_months(t: OffsetDateTime, months: i32) -> OffsetDateTime {
    let index = t.year() * 12 + (t.month() as i32 - 1) + months;
    let month = Month::try_from((index.rem_euclid(12) + 1) as u8).expect("1 to 12");
    first_of_month(index.div_euclid(12), month)
        .midnight()
        .assume_utc()
}

/// Parses X's `yyyymmddhhmm` (UTC); `None` unless it is 12 digits naming a real minute.
pub fn parse_date(text: &str) -> Option<OffsetDateTime> {
    if text.len() != 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |range: std::ops::Range<usize>| text[range].parse::<u32>().ok();
    let year = i32::try_from(n(0..4)?).ok()?;
    let month = Month::try_from(u8::try_from(n(4..6)?).ok()?).ok()?;
    let day = u8::try_from(n(6..8)?).ok()?;
    let hour = u8::try_from(n(8..10)?).ok()?;
    let minute = u8::try_from(n(10..12)?).ok()?;
    let date = Date::from_calendar_date(year, month, day).ok()?;
    let time = Time::from_hms(hour, minute, 0).ok()?;
    Some(PrimitiveDateTime::new(date, time).assume_utc())
}

/// Formats `t` as `yyyymmddhhmm` (UTC).
pub fn format_date(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}{:02}{:02}",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// Hours since the UNIX epoch of `t` (the store's key).
pub fn hour_index(t: OffsetDateTime) -> i64 {
    t.unix_timestamp().div_euclid(3600)
}

/// The start of the hour with index `hour`.
pub fn hour_start(hour: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(hour * 3600).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// A request's range, resolved to whole buckets: `from..to`, both bucket starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// The unit.
    pub bucket: Bucket,
    /// The first bucket's start (inclusive).
    pub from: OffsetDateTime,
    /// The end (exclusive), the start of the bucket after the last.
    pub to: OffsetDateTime,
}

/// Why a range was refused (a 400, whose message this is).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    /// Not `hour`, `day` or `month`.
    #[error("Invalid bucket {0:?}: expected \"month\", \"day\" or \"hour\".")]
    Bucket(String),
    /// Not a `yyyymmddhhmm` date.
    #[error("Invalid {field} {value:?}: expected a UTC time as yyyymmddhhmm (e.g. 201810010000).")]
    Date {
        /// `fromDate` or `toDate` (or the console's names).
        field: &'static str,
        /// What was given.
        value: String,
    },
    /// The range is empty or backwards.
    #[error("{from_field} must be before {to_field}.")]
    Backwards {
        /// The name of the start parameter.
        from_field: &'static str,
        /// The name of the end parameter.
        to_field: &'static str,
    },
    /// The range has more buckets than one request may ask for.
    #[error("The range is too long: at most {0} per request.")]
    TooLong(&'static str),
}

/// The parameters of a usage request as given (names differ between the Usage API and
/// the console's endpoint).
#[derive(Debug, Clone, Copy)]
pub struct RangeQuery<'a> {
    /// `bucket`, if given.
    pub bucket: Option<&'a str>,
    /// The start, if given, and its parameter name.
    pub from: (Option<&'a str>, &'static str),
    /// The end, if given, and its parameter name.
    pub to: (Option<&'a str>, &'static str),
}

/// Hour buckets one request may cover (31 days).
pub const MAX_HOURS: i64 = 31 * 24;
/// Calendar months a month request may cover (X: three-month intervals).
pub const MAX_MONTHS: i32 = 3;
/// Days a day request may cover (three months at their longest).
pub const MAX_DAYS: i64 = 92;

impl RangeQuery<'_> {
    /// Resolves the range at `now`, with `default_bucket` when none is given.
    ///
    /// The start is rounded down to its bucket and the end up (a partial bucket at the end
    /// is included); without a start, month and day requests begin with the month two
    /// months back (X's "current month and the past two months"), hour requests 24 hours
    /// before the end; without an end, the range ends with the current bucket.
    pub fn resolve(
        &self,
        default_bucket: Bucket,
        now: OffsetDateTime,
    ) -> Result<Range, RangeError> {
        let bucket = match self.bucket {
            None => default_bucket,
            Some(name) => Bucket::parse(name).ok_or_else(|| RangeError::Bucket(name.to_owned()))?,
        };
        let date = |(value, field): (Option<&str>, &'static str)| {
            value
                .map(|v| {
                    parse_date(v).ok_or_else(|| RangeError::Date {
                        field,
                        value: v.to_owned(),
                    })
                })
                .transpose()
        };
        let (from, to) = (date(self.from)?, date(self.to)?);
        if let (Some(from), Some(to)) = (from, to)
            && from >= to
        {
            return Err(self.backwards());
        }
        let to = match to {
            Some(to) => bucket.ceil(to),
            None => bucket.next(bucket.floor(now)),
        };
        let from = match from {
            Some(from) => bucket.floor(from),
            None => match bucket {
                Bucket::Hour => to - Duration::DAY,
                Bucket::Day | Bucket::Month => add_months(now, -(MAX_MONTHS - 1)),
            },
        };
        if from >= to {
            return Err(self.backwards());
        }
        let too_long = match bucket {
            Bucket::Hour => (to - from).whole_hours() > MAX_HOURS,
            Bucket::Day => to - from > Duration::days(MAX_DAYS),
            Bucket::Month => to > add_months(from, MAX_MONTHS),
        };
        if too_long {
            return Err(RangeError::TooLong(match bucket {
                Bucket::Hour => "31 days of hours",
                Bucket::Day | Bucket::Month => "3 months",
            }));
        }
        Ok(Range { bucket, from, to })
    }

    fn backwards(&self) -> RangeError {
        RangeError::Backwards {
            from_field: self.from.1,
            to_field: self.to.1,
        }
    }
}

impl Range {
    /// The starts of the range's buckets.
    pub fn starts(&self) -> Vec<OffsetDateTime> {
        self.bucket.starts(self.from, self.to)
    }

    /// The range in store hours: `from..to`.
    pub fn hours(&self) -> std::ops::Range<i64> {
        hour_index(self.from)..hour_index(self.to)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    fn query<'a>(
        bucket: Option<&'a str>,
        from: Option<&'a str>,
        to: Option<&'a str>,
    ) -> RangeQuery<'a> {
        RangeQuery {
            bucket,
            from: (from, "fromDate"),
            to: (to, "toDate"),
        }
    }

    #[test]
    fn dates_parse_only_as_twelve_digits_of_a_real_minute() {
        assert_eq!(
            parse_date("201810010000"),
            Some(datetime!(2018-10-01 00:00 UTC))
        );
        assert_eq!(
            parse_date("202402292359"),
            Some(datetime!(2024-02-29 23:59 UTC))
        );
        #[rustfmt::skip]
        let refused = [
            "", "2018100100", "2018100100000", "20181001000a", "202302290000", "201813010000",
            "201800010000", "201810000000", "201810012400", "201810010060", "+01810010000",
            "2018-10-0100", " 01810010000", "２０１８10010000",
        ];
        for text in refused {
            assert_eq!(parse_date(text), None, "{text:?}");
        }
        assert_eq!(format_date(datetime!(2018-10-01 07:05 UTC)), "201810010705");
    }

    #[test]
    fn buckets_round_and_step_through_the_calendar() {
        let t = datetime!(2024-02-29 13:45 UTC);
        assert_eq!(Bucket::Hour.floor(t), datetime!(2024-02-29 13:00 UTC));
        assert_eq!(Bucket::Day.floor(t), datetime!(2024-02-29 00:00 UTC));
        assert_eq!(Bucket::Month.floor(t), datetime!(2024-02-01 00:00 UTC));
        assert_eq!(Bucket::Hour.ceil(t), datetime!(2024-02-29 14:00 UTC));
        assert_eq!(Bucket::Day.ceil(t), datetime!(2024-03-01 00:00 UTC));
        assert_eq!(Bucket::Month.ceil(t), datetime!(2024-03-01 00:00 UTC));
        let start = datetime!(2024-03-01 00:00 UTC);
        assert_eq!(Bucket::Day.ceil(start), start);
        assert_eq!(
            Bucket::Month.next(datetime!(2024-12-01 00:00 UTC)),
            datetime!(2025-01-01 00:00 UTC)
        );
        assert_eq!(
            add_months(datetime!(2024-01-31 10:00 UTC), -2),
            datetime!(2023-11-01 00:00 UTC)
        );
        let days = Bucket::Day.starts(
            datetime!(2024-02-28 00:00 UTC),
            datetime!(2024-03-02 00:00 UTC),
        );
        assert_eq!(days.len(), 3, "28, 29 Feb and 1 Mar of a leap year");
        let months = Bucket::Month.starts(
            datetime!(2023-11-01 00:00 UTC),
            datetime!(2024-02-01 00:00 UTC),
        );
        assert_eq!(
            months.iter().map(|m| format_date(*m)).collect::<Vec<_>>(),
            ["202311010000", "202312010000", "202401010000"]
        );
        assert_eq!(hour_start(hour_index(t)), datetime!(2024-02-29 13:00 UTC));
    }

    #[test]
    fn ranges_resolve_to_whole_buckets_with_x_defaults() {
        let now = datetime!(2026-12-02 13:20 UTC);
        let range = |b, f, t| query(b, f, t).resolve(Bucket::Month, now);
        // No parameters: months, this one and the two before.
        let r = range(None, None, None).unwrap();
        assert_eq!(
            (r.bucket, r.from, r.to),
            (
                Bucket::Month,
                datetime!(2026-10-01 00:00 UTC),
                datetime!(2027-01-01 00:00 UTC)
            )
        );
        assert_eq!(r.starts().len(), 3);
        // Days: the start rounds down, a partial last day is included.
        let r = range(Some("day"), Some("202612011200"), Some("202612021320")).unwrap();
        assert_eq!(
            (r.from, r.to),
            (
                datetime!(2026-12-01 00:00 UTC),
                datetime!(2026-12-03 00:00 UTC)
            )
        );
        // An exact end is exclusive.
        let r = range(Some("day"), Some("202612010000"), Some("202612020000")).unwrap();
        assert_eq!(r.starts(), [datetime!(2026-12-01 00:00 UTC)]);
        // Hours default to the 24 up to the current one.
        let r = range(Some("hour"), None, None).unwrap();
        assert_eq!(
            (r.from, r.to),
            (
                datetime!(2026-12-01 14:00 UTC),
                datetime!(2026-12-02 14:00 UTC)
            )
        );
        assert_eq!(r.hours().end - r.hours().start, 24);
        // Both ends within one day, with day buckets: that day.
        let r = range(Some("day"), Some("202612020100"), Some("202612020200")).unwrap();
        assert_eq!(r.starts(), [datetime!(2026-12-02 00:00 UTC)]);
        // Exactly three months is allowed.
        assert!(range(Some("month"), Some("202610010000"), Some("202701010000")).is_ok());
        assert!(range(Some("hour"), Some("202611010000"), Some("202612020000")).is_ok());
    }

    /// `bucket`, `fromDate`, `toDate` and the 400's message.
    type Case<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>, &'a str);

    #[test]
    fn bad_ranges_are_refused_with_their_reason() {
        let now = datetime!(2026-12-02 13:20 UTC);
        let error = |b, f, t| {
            query(b, f, t)
                .resolve(Bucket::Month, now)
                .unwrap_err()
                .to_string()
        };
        #[rustfmt::skip]
        let cases: &[Case] = &[
            (Some("week"), None, None, "Invalid bucket \"week\": expected \"month\", \"day\" or \"hour\"."),
            (Some(""), None, None, "Invalid bucket \"\": expected \"month\", \"day\" or \"hour\"."),
            (Some("DAY"), None, None, "Invalid bucket \"DAY\": expected \"month\", \"day\" or \"hour\"."),
            (None, Some("2026-12-01"), None, "Invalid fromDate \"2026-12-01\": expected a UTC time as yyyymmddhhmm (e.g. 201810010000)."),
            (None, None, Some("202613010000"), "Invalid toDate \"202613010000\": expected a UTC time as yyyymmddhhmm (e.g. 201810010000)."),
            (Some("day"), Some("202612020000"), Some("202612010000"), "fromDate must be before toDate."),
            (Some("day"), Some("202612010000"), Some("202612010000"), "fromDate must be before toDate."),
            (Some("hour"), Some("202701010000"), None, "fromDate must be before toDate."),
            (Some("day"), Some("202601010000"), Some("202612010000"), "The range is too long: at most 3 months per request."),
            (Some("month"), Some("202609010000"), Some("202701010000"), "The range is too long: at most 3 months per request."),
            (Some("hour"), Some("202610010000"), Some("202612010000"), "The range is too long: at most 31 days of hours per request."),
        ];
        for &(bucket, from, to, message) in cases {
            assert_eq!(
                error(bucket, from, to),
                message,
                "{bucket:?} {from:?} {to:?}"
            );
        }
    }
}
