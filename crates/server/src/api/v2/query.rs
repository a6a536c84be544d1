//! The query of a v2 stream connect: the fields and expansions of the v2 line
//! ([`V2Fields`]), `backfill_minutes` (0–5), the recovery window `start_time`/`end_time`,
//! and `partition` on the partitioned streams. X refuses what it does not know, so any
//! other parameter, an unknown field name or a bad value is a 400 `invalid-request` naming
//! it ([`ProblemError::invalid_parameters`]).

use std::time::Duration;

use sluice_wire::v2_post::V2Fields;

use crate::api::problem::ProblemError;
use crate::api::stream_query::{MAX_BACKFILL_MINUTES, StartRequest, StreamQuery};

/// The field and expansion parameters every v2 stream takes.
const FIELD_PARAMETERS: &[&str] = &[
    "expansions",
    "tweet.fields",
    "user.fields",
    "media.fields",
    "poll.fields",
    "place.fields",
];

/// The parsed query of a v2 stream connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V2StreamQuery {
    /// What each line carries.
    pub fields: V2Fields,
    /// The partition (1-based) on a partitioned stream; 1 on the sample stream.
    pub partition: Option<u32>,
    /// Live, backfill or recovery.
    pub start: StartRequest,
}

impl V2StreamQuery {
    /// Parses `pairs` for a stream with `partitions` (`None`: the filtered stream;
    /// `Some(1)`: the sample stream, which takes no `partition`).
    pub fn parse(
        pairs: &[(String, String)],
        partitions: Option<u32>,
        now_ms: u64,
        retention: Duration,
    ) -> Result<Self, ProblemError> {
        let takes_partition = partitions.is_some_and(|n| n > 1);
        let mut allowed: Vec<&str> = FIELD_PARAMETERS.to_vec();
        allowed.extend(["backfill_minutes", "start_time", "end_time"]);
        if takes_partition {
            allowed.push("partition");
        }
        refuse_unknown(pairs, &allowed)?;
        let fields = V2Fields::parse(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .map_err(|unknown| ProblemError::invalid_request_body(unknown.to_problem()))?;
        let partition = match partitions {
            Some(1) => Some(1),
            Some(count) => Some(parse_partition(pairs, count)?),
            None => None,
        };
        let backfill = one(pairs, "backfill_minutes")
            .map(parse_backfill)
            .transpose()?
            .filter(|&minutes| minutes > 0);
        // The Gnip streams' parser checks the recovery window (and that it is not combined
        // with a backfill); its messages are reused, as v2 problems.
        let mut gnip: Vec<(String, String)> = pairs
            .iter()
            .filter(|(k, _)| k == "start_time" || k == "end_time")
            .cloned()
            .collect();
        if let Some(minutes) = backfill {
            gnip.push(("backfillMinutes".to_owned(), minutes.to_string()));
        }
        let start = StreamQuery::parse(&gnip, None, now_ms, retention)
            .map_err(|e| ProblemError::invalid_request(e.message))?
            .start;
        Ok(Self {
            fields,
            partition,
            start,
        })
    }
}

/// Refuses, as X does, any parameter not in `allowed`: a 400 naming each with the list
/// of those the endpoint takes. Every v2 endpoint checks its query with it.
pub(super) fn refuse_unknown(
    pairs: &[(String, String)],
    allowed: &[&str],
) -> Result<(), ProblemError> {
    let unknown: Vec<(&str, &str, String)> = pairs
        .iter()
        .filter(|(k, _)| !allowed.contains(&k.as_str()))
        .map(|(k, v)| {
            let message = format!(
                "The query parameter [{k}] is not one of [{}]",
                allowed.join(",")
            );
            (k.as_str(), v.as_str(), message)
        })
        .collect();
    if unknown.is_empty() {
        Ok(())
    } else {
        Err(ProblemError::invalid_parameters(&unknown))
    }
}

/// The first value of parameter `name`.
pub(super) fn one<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn parse_partition(pairs: &[(String, String)], count: u32) -> Result<u32, ProblemError> {
    let Some(value) = one(pairs, "partition") else {
        return Err(ProblemError::invalid_request(format!(
            "The `partition` query parameter is required: this stream has partitions 1 to \
             {count}."
        )));
    };
    match value.parse::<u32>() {
        Ok(p) if (1..=count).contains(&p) => Ok(p),
        _ => Err(ProblemError::invalid_parameters(&[(
            "partition",
            value,
            format!("The `partition` query parameter value [{value}] is not between 1 and {count}"),
        )])),
    }
}

fn parse_backfill(value: &str) -> Result<u32, ProblemError> {
    match value.parse::<u32>() {
        Ok(m) if m <= MAX_BACKFILL_MINUTES => Ok(m),
        _ => Err(ProblemError::invalid_parameters(&[(
            "backfill_minutes",
            value,
            format!(
                "The `backfill_minutes` query parameter value [{value}] is not between 0 and \
                 {MAX_BACKFILL_MINUTES}"
            ),
        )])),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;

    use super::*;

    const NOW: u64 = 1_700_000_000_000; // 2023-11-14T22:13:20Z
    const RETENTION: Duration = Duration::from_secs(600);

    fn parse(
        query: &[(&str, &str)],
        partitions: Option<u32>,
    ) -> Result<V2StreamQuery, ProblemError> {
        let pairs: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        V2StreamQuery::parse(&pairs, partitions, NOW, RETENTION)
    }

    async fn body(e: ProblemError) -> (StatusCode, serde_json::Value) {
        let response = e.into_response();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, serde_json::from_slice(&bytes).unwrap())
    }

    #[test]
    fn good_queries_parse() {
        let q = parse(&[], None).unwrap();
        assert_eq!((q.partition, q.start), (None, StartRequest::Live));
        let q = parse(&[("backfill_minutes", "0")], None).unwrap();
        assert_eq!(q.start, StartRequest::Live);
        let q = parse(&[("backfill_minutes", "5")], None).unwrap();
        assert_eq!(q.start, StartRequest::Backfill { minutes: 5 });
        assert_eq!(parse(&[], Some(1)).unwrap().partition, Some(1));
        assert_eq!(
            parse(&[("partition", "20")], Some(20)).unwrap().partition,
            Some(20)
        );
        let q = parse(
            &[
                ("start_time", "2023-11-14T22:10:00Z"),
                ("end_time", "2023-11-14T22:12:00.000Z"),
                ("expansions", "author_id"),
            ],
            None,
        )
        .unwrap();
        assert!(matches!(q.start, StartRequest::Recovery { .. }));
        assert_ne!(q.fields, V2Fields::default());
    }

    /// A query, the stream's partitions, and text the refusal must contain.
    type Case<'a> = (&'a [(&'a str, &'a str)], Option<u32>, &'a str);

    #[tokio::test]
    async fn hostile_queries_get_400_problems_naming_the_parameter() {
        #[rustfmt::skip]
        let cases: &[Case] = &[
            (&[("foo", "bar")], None, "The query parameter [foo] is not one of"),
            (&[("partition", "1")], None, "The query parameter [partition] is not one of"),
            (&[("partition", "1")], Some(1), "The query parameter [partition] is not one of"),
            (&[("backfillMinutes", "1")], None, "The query parameter [backfillMinutes]"),
            (&[("tweet.fields", "nope")], None, "The `tweet.fields` query parameter value [nope]"),
            (&[("expansions", "author_id,x")], None, "The `expansions` query parameter value [x]"),
            (&[("backfill_minutes", "6")], None, "[6] is not between 0 and 5"),
            (&[("backfill_minutes", "-1")], None, "[-1] is not between 0 and 5"),
            (&[("backfill_minutes", "1.5")], None, "[1.5] is not between 0 and 5"),
            (&[], Some(20), "The `partition` query parameter is required"),
            (&[("partition", "0")], Some(2), "[0] is not between 1 and 2"),
            (&[("partition", "21")], Some(20), "[21] is not between 1 and 20"),
            (&[("partition", "x")], Some(20), "[x] is not between 1 and 20"),
            (&[("start_time", "yesterday")], None, "Invalid date format"),
            (&[("end_time", "2023-11-14T22:12:00Z")], None, "requires 'startTime'"),
            (&[("start_time", "2023-11-14T21:00:00Z")], None, "within the last 10 minutes"),
            (&[("start_time", "2030-01-01T00:00:00Z")], None, "must be in the past"),
            (
                &[("start_time", "2023-11-14T22:10:00Z"), ("backfill_minutes", "2")],
                None,
                "cannot be combined",
            ),
        ];
        for (query, partitions, want) in cases {
            let e = parse(query, *partitions).unwrap_err();
            let (status, body) = body(e).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query:?}");
            assert_eq!(body["title"], "Invalid Request", "{query:?}");
            assert_eq!(
                body["type"], "https://api.x.com/2/problems/invalid-request",
                "{query:?}"
            );
            let text = body.to_string();
            assert!(text.contains(want), "{query:?}: {text}");
        }
    }
}
