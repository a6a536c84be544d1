//! The Gnip-style error body `{"error":{"message":"…","sent":"…"}}` (docs/compatibility.md, wire rule 4,
//! docs/compatibility.md §1.4 and §2.1) and the exact texts X puts in it.

use serde::{Deserialize, Serialize};

/// X's message for a rules API body that is not valid JSON or not of the expected shape
/// (HTTP 400, docs/compatibility.md §2.1), byte for byte.
pub const INVALID_JSON_MESSAGE: &str = r#"Invalid JSON. The body must be in the format {"rules":[{"value":"rule1", "tag":"tag1"}, {"value":"rule2"}]} or {"rule_ids": [rule_id1, rule_id2, rule_id3, rule_id4, rule_id5]}"#;

/// X's `detail` message for an added rule whose value already exists (docs/compatibility.md §2.1).
pub const RULE_EXISTS_MESSAGE: &str = "A rule with this value already exists";

/// X's `detail` message for a deleted rule that does not exist (docs/compatibility.md §2.5).
pub const RULE_DOES_NOT_EXIST_MESSAGE: &str = "Rule does not exist";

/// The message for an add that would exceed the stream's rule cap (docs/compatibility.md ("Decisions"), 422).
pub const RULE_LIMIT_MESSAGE: &str = "Request exceeds account's Rule Limit. Delete rules or contact your account manager to proceed.";

/// X's 406 text for a stream request that does not accept gzip (docs/compatibility.md §1.6).
pub const COMPRESSION_REQUIRED_MESSAGE: &str = "This connection requires compression. To enable compression, send an 'Accept-Encoding: gzip' header in your request and be ready to uncompress the stream as it is read on the client end.";

/// The in-stream message before closing a slow consumer (docs/compatibility.md, wire rule 7).
pub const SLOW_CONSUMER_MESSAGE: &str =
    "This stream has been disconnected because your client was unable to keep up with us.";

/// The in-stream message before closing for server shutdown (docs/compatibility.md, wire rule 7).
pub const OPERATIONAL_DISCONNECT_MESSAGE: &str =
    "This stream has been disconnected for operational reasons.";

/// The in-stream message before closing a stream whose credentials stopped working (the
/// user's password changed or the user was deleted). X documents no text for this; it is
/// worded like X's other disconnect messages.
pub const CREDENTIALS_REVOKED_MESSAGE: &str = "This stream has been disconnected because the credentials it was opened with were changed or revoked.";

/// The in-stream message before closing a connection over the stream's cap.
pub fn too_many_connections_message(allowed: u32) -> String {
    format!("Forced Disconnect: Too many connections. (Allowed Connections = {allowed})")
}

/// `{"error":{"message":"…","sent":"…"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The one key of the body.
    pub error: ErrorMessage,
}

/// The inside of [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorMessage {
    /// Human-readable text; clients show it and some match on it.
    pub message: String,
    /// When the body was produced (see [`crate::sent`] for the formats).
    pub sent: String,
}

impl ErrorBody {
    /// An error body with `message`, stamped `sent`.
    pub fn new(message: impl Into<String>, sent: impl Into<String>) -> Self {
        Self {
            error: ErrorMessage {
                message: message.into(),
                sent: sent.into(),
            },
        }
    }

    /// The 400 body for a malformed rules request. X's documented example stamps it in the
    /// stream format ([`crate::sent::stream_sent`]).
    pub fn invalid_json(sent: impl Into<String>) -> Self {
        Self::new(INVALID_JSON_MESSAGE, sent)
    }
}

/// A rules API request body that is not valid JSON or not of the expected shape. Answered
/// with [`ErrorBody::invalid_json`]; the inner error says what was wrong, for logs and
/// for the CLI.
#[derive(Debug, thiserror::Error)]
#[error("invalid rules request body: {0}")]
pub struct InvalidJson(#[from] pub serde_json::Error);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_json_body_matches_x_byte_for_byte() {
        let body = ErrorBody::invalid_json("2013-08-16T00:50:00+00:00");
        assert_eq!(
            crate::to_string(&body),
            r#"{"error":{"message":"Invalid JSON. The body must be in the format {\"rules\":[{\"value\":\"rule1\", \"tag\":\"tag1\"}, {\"value\":\"rule2\"}]} or {\"rule_ids\": [rule_id1, rule_id2, rule_id3, rule_id4, rule_id5]}","sent":"2013-08-16T00:50:00+00:00"}}"#
        );
    }

    #[test]
    fn in_stream_error_matches_x() {
        let body = ErrorBody::new(too_many_connections_message(2), "2017-01-11T18:12:52+00:00");
        assert_eq!(
            crate::to_string(&body),
            r#"{"error":{"message":"Forced Disconnect: Too many connections. (Allowed Connections = 2)","sent":"2017-01-11T18:12:52+00:00"}}"#
        );
    }

    #[test]
    fn error_bodies_read_back() {
        let body: ErrorBody =
            serde_json::from_str(r#"{"error":{"message":"m","sent":"2017-01-11T18:12:52+00:00"}}"#)
                .expect("parses");
        assert_eq!(body, ErrorBody::new("m", "2017-01-11T18:12:52+00:00"));
    }
}
