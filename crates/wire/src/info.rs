//! The in-stream `info` message that ends a finite stream (docs/compatibility.md §1.4 and §5):
//! `{"info":{"message":"Recovery Request Completed","sent":"…","activity_count":N}}`, and
//! Replay's three endings: completed, completed with errors (`minutes_failed`), failed to
//! complete (`unprocessed_range`).

use serde::{Deserialize, Serialize};

/// The text of the message that ends a completed recovery (docs/compatibility.md §1.1, §5).
pub const RECOVERY_COMPLETED_MESSAGE: &str = "Recovery Request Completed";

/// The text of the message that ends a replay that read its whole window.
pub const REPLAY_COMPLETED_MESSAGE: &str = "Replay Request Completed";
/// The text of the message that ends a replay that skipped minutes it could not read.
pub const REPLAY_COMPLETED_WITH_ERRORS_MESSAGE: &str = "Replay Request Completed with Errors";
/// The text of the message that ends a replay that stopped before the end of its window.
pub const REPLAY_FAILED_MESSAGE: &str = "Replay Request Failed to Complete";

/// `{"info":{"message":"…","sent":"…","activity_count":N}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfoBody {
    /// The one key of the body.
    pub info: InfoMessage,
}

/// The inside of [`InfoBody`], in X's field order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfoMessage {
    /// What completed, e.g. [`RECOVERY_COMPLETED_MESSAGE`].
    pub message: String,
    /// When the message was written, in the stream format ([`crate::sent::stream_sent`]).
    pub sent: String,
    /// The part of a replay's window that was not delivered (`Replay Request Failed to
    /// Complete`), written before the count as X writes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unprocessed_range: Option<UnprocessedRange>,
    /// How many activities (posts) the finite stream delivered.
    pub activity_count: u64,
    /// The minutes a replay could not read (`Replay Request Completed with Errors`), each
    /// in the stream format.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minutes_failed: Option<Vec<String>>,
}

/// `{"fromDate":"…","toDate":"…"}`: the window a failed replay did not deliver, in the
/// stream format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnprocessedRange {
    /// The first minute not delivered.
    #[serde(rename = "fromDate")]
    pub from_date: String,
    /// The end of the window asked for (exclusive).
    #[serde(rename = "toDate")]
    pub to_date: String,
}

impl InfoBody {
    /// The message closing a completed recovery that delivered `activity_count` posts.
    pub fn recovery_completed(sent: impl Into<String>, activity_count: u64) -> Self {
        Self::counted(RECOVERY_COMPLETED_MESSAGE, sent, activity_count)
    }

    /// The message closing a replay: `Replay Request Completed` when `minutes_failed` is
    /// empty, else `Replay Request Completed with Errors` listing them.
    pub fn replay_completed(
        sent: impl Into<String>,
        activity_count: u64,
        minutes_failed: Vec<String>,
    ) -> Self {
        if minutes_failed.is_empty() {
            return Self::counted(REPLAY_COMPLETED_MESSAGE, sent, activity_count);
        }
        let mut body = Self::counted(REPLAY_COMPLETED_WITH_ERRORS_MESSAGE, sent, activity_count);
        body.info.minutes_failed = Some(minutes_failed);
        body
    }

    /// The message closing a replay that could not deliver `unprocessed` (the rest of its
    /// window) after `activity_count` posts.
    pub fn replay_failed(
        sent: impl Into<String>,
        unprocessed: UnprocessedRange,
        activity_count: u64,
    ) -> Self {
        let mut body = Self::counted(REPLAY_FAILED_MESSAGE, sent, activity_count);
        body.info.unprocessed_range = Some(unprocessed);
        body
    }

    fn counted(message: &str, sent: impl Into<String>, activity_count: u64) -> Self {
        Self {
            info: InfoMessage {
                message: message.to_owned(),
                sent: sent.into(),
                unprocessed_range: None,
                activity_count,
                minutes_failed: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_completed_has_x_shape_and_field_order() {
        let body = InfoBody::recovery_completed("2016-05-27T22:15:50+00:00", 8874);
        assert_eq!(
            crate::to_string(&body),
            r#"{"info":{"message":"Recovery Request Completed","sent":"2016-05-27T22:15:50+00:00","activity_count":8874}}"#
        );
    }

    #[test]
    fn replay_endings_have_x_shapes_and_field_orders() {
        let cases = [
            (
                InfoBody::replay_completed("2016-05-27T22:15:50+00:00", 8874, Vec::new()),
                r#"{"info":{"message":"Replay Request Completed","sent":"2016-05-27T22:15:50+00:00","activity_count":8874}}"#,
            ),
            (
                InfoBody::replay_completed(
                    "2016-05-27T16:00:02+00:00",
                    56333,
                    vec![
                        "2013-02-20T00:05:00+00:00".into(),
                        "2013-02-20T00:06:00+00:00".into(),
                    ],
                ),
                r#"{"info":{"message":"Replay Request Completed with Errors","sent":"2016-05-27T16:00:02+00:00","activity_count":56333,"minutes_failed":["2013-02-20T00:05:00+00:00","2013-02-20T00:06:00+00:00"]}}"#,
            ),
            (
                InfoBody::replay_failed(
                    "2016-06-27T16:37:13+00:00",
                    UnprocessedRange {
                        from_date: "2016-06-26T00:00:00+00:00".into(),
                        to_date: "2016-06-26T00:01:00+00:00".into(),
                    },
                    1822,
                ),
                r#"{"info":{"message":"Replay Request Failed to Complete","sent":"2016-06-27T16:37:13+00:00","unprocessed_range":{"fromDate":"2016-06-26T00:00:00+00:00","toDate":"2016-06-26T00:01:00+00:00"},"activity_count":1822}}"#,
            ),
        ];
        for (body, text) in cases {
            assert_eq!(crate::to_string(&body), text);
            let back: InfoBody = serde_json::from_str(text).unwrap();
            assert_eq!(back, body);
        }
    }
}
