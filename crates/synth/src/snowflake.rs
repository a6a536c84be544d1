//! Time on X's terms: Snowflake ids and the `created_at` date format.

use time::OffsetDateTime;
use time::macros::format_description;

/// X's Snowflake epoch (2010-11-04T01:42:54.657Z) in Unix milliseconds.
pub const SNOWFLAKE_EPOCH_MS: u64 = 1_288_834_974_657;

/// Builds a Snowflake id: milliseconds since [`SNOWFLAKE_EPOCH_MS`] in the high bits, then a
/// 10-bit worker and a 12-bit sequence. Ids therefore sort by time, and `timestamp_ms` is
/// recoverable from the id, as on X.
pub fn snowflake(timestamp_ms: u64, worker: u16, sequence: u16) -> u64 {
    (timestamp_ms.saturating_sub(SNOWFLAKE_EPOCH_MS) << 22)
        | (u64::from(worker & 0x3ff) << 12)
        | u64::from(sequence & 0xfff)
}

/// The Unix time in milliseconds that a Snowflake id encodes.
pub fn snowflake_time_ms(id: u64) -> u64 {
    (id >> 22) + SNOWFLAKE_EPOCH_MS
}

/// Formats Unix milliseconds as X's `created_at` (`Wed Oct 10 20:19:24 +0000 2018`).
pub(crate) fn created_at(timestamp_ms: u64) -> String {
    let nanos = i128::from(timestamp_ms) * 1_000_000;
    let time = OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .expect("generated timestamps lie in years 2008..2100");
    time.format(format_description!(
        "[weekday repr:short] [month repr:short] [day] [hour]:[minute]:[second] +0000 [year]"
    ))
    .expect("formatting a UTC date into a String cannot fail")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snowflake_round_trips_time_and_sorts() {
        let t = 1_539_202_764_000; // 2018-10-10T20:19:24Z
        let a = snowflake(t, 5, 0);
        assert_eq!(snowflake_time_ms(a), t);
        assert!(snowflake(t, 5, 1) > a);
        assert!(snowflake(t + 1, 0, 0) > snowflake(t, 1023, 4095));
    }

    #[test]
    fn created_at_uses_x_format() {
        assert_eq!(
            created_at(1_539_202_764_000),
            "Wed Oct 10 20:19:24 +0000 2018"
        );
        assert_eq!(
            created_at(1_793_491_200_000),
            "Sun Nov 01 00:00:00 +0000 2026"
        );
    }
}
