//! What a stream line is: a heartbeat, a system message, or data.
//!
//! Gnip-style streams send system messages as single-key objects, `{"error":{…}}` and
//! `{"info":{…}}` (docs/compatibility.md §1.4); Powerstream starts with
//! `{"type":"connection_metadata",…}` (§6.3) and ends with v2's `{"errors":[…]}` (§7.2). Posts (and a volume stream's compliance
//! events) never begin with those keys, so looking at the first key is enough and data
//! lines are passed on without being parsed.

use serde::Deserialize;

/// The kind of one stream line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// A bare line end: the keep-alive.
    Heartbeat,
    /// A message from the stream itself (errors, info, connection metadata).
    System,
    /// A post or another data object, to pass on.
    Data,
}

/// The first keys that mark a system message.
const SYSTEM_KEYS: [&[u8]; 4] = [b"\"error\"", b"\"errors\"", b"\"info\"", b"\"type\""];

/// Classifies one line (without its line end).
pub fn classify(line: &[u8]) -> Line {
    let line = line.trim_ascii();
    if line.is_empty() {
        return Line::Heartbeat;
    }
    let Some(rest) = line.strip_prefix(b"{") else {
        return Line::Data;
    };
    let rest = rest.trim_ascii_start();
    if SYSTEM_KEYS.iter().any(|key| rest.starts_with(key)) {
        Line::System
    } else {
        Line::Data
    }
}

/// The reason of a v2 `{"errors":[…]}` line that announces the end of the stream (an
/// entry with a `disconnect_type`), e.g. `OperationalDisconnect: This stream has been
/// disconnected for operational reasons.`; `None` for any other line.
pub fn v2_disconnect(line: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<Problem>,
    }
    #[derive(Deserialize)]
    struct Problem {
        disconnect_type: Option<String>,
        detail: Option<String>,
        title: Option<String>,
    }
    let Errors { errors } = serde_json::from_slice(line).ok()?;
    let problem = errors.into_iter().find(|p| p.disconnect_type.is_some())?;
    let kind = problem.disconnect_type?;
    Some(match problem.detail.or(problem.title) {
        Some(why) => format!("the server closes the stream ({kind}: {why})"),
        None => format!("the server closes the stream ({kind})"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeats_system_messages_and_posts_are_told_apart() {
        let cases: [(&str, Line); 9] = [
            ("", Line::Heartbeat),
            ("  ", Line::Heartbeat),
            (
                r#"{"error":{"message":"Forced Disconnect: Too many connections. (Allowed Connections = 2)","sent":"2017-01-11T18:12:52+00:00"}}"#,
                Line::System,
            ),
            (
                r#"{ "info" : {"message":"Replay Request Completed"}}"#,
                Line::System,
            ),
            (
                r#"{"type":"connection_metadata","datacenter":"atla"}"#,
                Line::System,
            ),
            (
                r#"{"errors":[{"title":"operational-disconnect","disconnect_type":"SlowReader"}]}"#,
                Line::System,
            ),
            (
                r#"{"created_at":"Wed Oct 10 20:19:24 +0000 2018","id":1,"text":"error"}"#,
                Line::Data,
            ),
            (r#"{"delete":{"status":{"id":1}}}"#, Line::Data),
            (r#"[{"id":1}]"#, Line::Data),
        ];
        for (line, kind) in cases {
            assert_eq!(classify(line.as_bytes()), kind, "{line}");
        }
    }

    #[test]
    fn only_v2_errors_lines_with_a_disconnect_type_end_the_connection() {
        #[rustfmt::skip]
        let cases: &[(&str, Option<&str>)] = &[
            (
                r#"{"errors":[{"title":"operational-disconnect","disconnect_type":"OperationalDisconnect","detail":"This stream has been disconnected for operational reasons.","type":"https://api.x.com/2/problems/operational-disconnect"}]}"#,
                Some("the server closes the stream (OperationalDisconnect: This stream has been disconnected for operational reasons.)"),
            ),
            (
                r#"{"errors":[{"title":"ConnectionException"},{"disconnect_type":"SlowReader"}]}"#,
                Some("the server closes the stream (SlowReader)"),
            ),
            (r#"{"errors":[{"title":"Not Found Error","detail":"gone"}]}"#, None),
            (r#"{"errors":[]}"#, None),
            (r#"{"errors":{"disconnect_type":"OperationalDisconnect"}}"#, None),
            (r#"{"error":{"message":"Forced Disconnect"}}"#, None),
            ("not json", None),
        ];
        for (line, want) in cases {
            assert_eq!(v2_disconnect(line.as_bytes()).as_deref(), *want, "{line}");
        }
    }
}
