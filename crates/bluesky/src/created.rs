//! Times: Bluesky's `createdAt` (RFC 3339, as the author's client wrote it) read, and X's
//! `created_at` written.

use time::format_description::FormatItem;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

/// X's `created_at` layout (`Wed Oct 10 20:19:24 +0000 2018`), the one
/// `sluice_model::check_line` accepts.
const X_CREATED_AT: &[FormatItem<'static>] = format_description!(
    "[weekday repr:short] [month repr:short] [day] [hour]:[minute]:[second] +0000 [year]"
);

/// Years X's format can carry as `check_line` reads it back (four digits).
const YEARS: std::ops::RangeInclusive<i32> = 1..=9999;

/// A post's time in both forms X gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PostTime {
    /// `created_at`, in X's format.
    pub created_at: String,
    /// Milliseconds since the UNIX epoch (`timestamp_ms`).
    pub unix_ms: u64,
}

/// `createdAt` read as RFC 3339 (any offset; converted to UTC). `None` when it is not
/// RFC 3339, or out of the years X's format holds, or before 1970.
pub(crate) fn parse_created_at(text: &str) -> Option<PostTime> {
    let at = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    from_time(at)
}

/// The time `unix_micros` (a TID's, or Jetstream's cursor).
pub(crate) fn from_unix_micros(unix_micros: u64) -> Option<PostTime> {
    let nanos = i128::from(unix_micros) * 1000;
    from_time(OffsetDateTime::from_unix_timestamp_nanos(nanos).ok()?)
}

fn from_time(at: OffsetDateTime) -> Option<PostTime> {
    let at = at.to_offset(UtcOffset::UTC);
    if !YEARS.contains(&at.year()) {
        return None;
    }
    let unix_ms = u64::try_from(at.unix_timestamp_nanos() / 1_000_000).ok()?;
    let created_at = at.format(X_CREATED_AT).ok()?;
    Some(PostTime {
        created_at,
        unix_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_3339_times_become_x_s_format() {
        for (text, want, ms) in [
            (
                "2018-10-10T20:19:24.000Z",
                "Wed Oct 10 20:19:24 +0000 2018",
                1_539_202_764_000,
            ),
            (
                "2024-11-20T10:26:57.590112Z",
                "Wed Nov 20 10:26:57 +0000 2024",
                1_732_098_417_590,
            ),
            // Offsets are converted to UTC.
            (
                "2024-11-20T12:26:57+02:00",
                "Wed Nov 20 10:26:57 +0000 2024",
                1_732_098_417_000,
            ),
        ] {
            let time = parse_created_at(text).expect(text);
            assert_eq!(time.created_at, want);
            assert_eq!(time.unix_ms, ms);
            assert!(sluice_model::ingest_line::parse_created_at(&time.created_at).is_some());
        }
    }

    #[test]
    fn a_space_for_the_t_is_accepted_as_rfc_3339_allows() {
        assert!(parse_created_at("2024-11-20 10:26:57Z").is_some());
    }

    #[test]
    fn other_texts_are_refused() {
        for text in [
            "",
            "yesterday",
            "2024-11-20",
            "2024-11-20T10:26:57",
            "1960-01-01T00:00:00Z",
        ] {
            assert_eq!(parse_created_at(text), None, "{text:?}");
        }
    }

    #[test]
    fn microseconds_read_as_the_same_instant() {
        let time = from_unix_micros(1_732_098_417_590_112).unwrap();
        assert_eq!(time.created_at, "Wed Nov 20 10:26:57 +0000 2024");
        assert_eq!(time.unix_ms, 1_732_098_417_590);
        assert_eq!(from_unix_micros(u64::MAX), None);
    }
}
