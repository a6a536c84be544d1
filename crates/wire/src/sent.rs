//! The `sent` timestamps of X's bodies. X uses two formats (docs/compatibility.md §1.4):
//! the rules API writes `2016-06-01T15:52:37.341Z` (milliseconds, `Z`), stream messages
//! write `2017-01-11T18:12:52+00:00` (seconds, numeric offset). Both are in UTC.

use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

const RULES_FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
const STREAM_FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]+00:00");

/// `sent` as the rules API writes it: `YYYY-MM-DDTHH:MM:SS.sssZ`, in UTC.
pub fn rules_sent(at: OffsetDateTime) -> String {
    at.to_offset(UtcOffset::UTC)
        .format(RULES_FORMAT)
        .expect("a four-digit-year UTC time always formats")
}

/// `sent` as stream messages write it: `YYYY-MM-DDTHH:MM:SS+00:00`, in UTC.
pub fn stream_sent(at: OffsetDateTime) -> String {
    at.to_offset(UtcOffset::UTC)
        .format(STREAM_FORMAT)
        .expect("a four-digit-year UTC time always formats")
}

/// [`rules_sent`] for the current time.
pub fn rules_sent_now() -> String {
    rules_sent(OffsetDateTime::now_utc())
}

/// [`stream_sent`] for the current time.
pub fn stream_sent_now() -> String {
    stream_sent(OffsetDateTime::now_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn rules_format_has_milliseconds_and_z() {
        assert_eq!(
            rules_sent(datetime!(2016-06-01 15:52:37.341_9 UTC)),
            "2016-06-01T15:52:37.341Z"
        );
        assert_eq!(
            rules_sent(datetime!(2016-06-01 15:52:37 UTC)),
            "2016-06-01T15:52:37.000Z"
        );
    }

    #[test]
    fn stream_format_has_seconds_and_offset() {
        assert_eq!(
            stream_sent(datetime!(2017-01-11 18:12:52.999 UTC)),
            "2017-01-11T18:12:52+00:00"
        );
    }

    #[test]
    fn other_offsets_are_converted_to_utc() {
        assert_eq!(
            stream_sent(datetime!(2017-01-11 20:12:52 +02:00)),
            "2017-01-11T18:12:52+00:00"
        );
        assert_eq!(
            rules_sent(datetime!(2017-01-11 00:00:00.5 +01:00)),
            "2017-01-10T23:00:00.500Z"
        );
    }

    #[test]
    fn now_stamps_have_the_documented_shape() {
        let r = rules_sent_now();
        assert_eq!(r.len(), "2016-06-01T15:52:37.341Z".len());
        assert!(r.ends_with('Z'));
        let s = stream_sent_now();
        assert_eq!(s.len(), "2017-01-11T18:12:52+00:00".len());
        assert!(s.ends_with("+00:00"));
    }
}
