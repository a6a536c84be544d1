//! Compliance events: the lines of X's compliance firehose (`delete`, `tweet_edit`,
//! `user_protect`, …), which a firehose of one's own feeds through the ingest API beside
//! its posts (docs/compliance.md).
//!
//! An event is a JSON object whose one key names its kind and holds its body, in X's
//! shapes, quirks included (`user_withheld` carries `timestampMs` as an ISO string; every
//! other kind `timestamp_ms` as a string of epoch milliseconds; `tweet_edit` ids are
//! strings). [`is_event`] tells an event from a post by its first key without parsing,
//! so lines read back from the post log are sorted cheaply; [`parse_event`] checks an
//! event in full and says what is wrong with one that is not right, naming the field.
//! Pure: no I/O.

use serde_json::{Map, Value};

/// What a compliance event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A post was deleted.
    Delete,
    /// A post is withheld in some countries.
    StatusWithheld,
    /// A post is hidden for a while (`drop`) …
    Drop,
    /// … and shown again (`undrop`).
    Undrop,
    /// A user's location data is removed from their posts up to one post.
    ScrubGeo,
    /// A user deleted their account …
    UserDelete,
    /// … and restored it.
    UserUndelete,
    /// A user is withheld in some countries.
    UserWithheld,
    /// A user made their posts private …
    UserProtect,
    /// … and public again.
    UserUnprotect,
    /// A user was suspended …
    UserSuspend,
    /// … and reinstated.
    UserUnsuspend,
    /// A post was edited: a new version with a new id.
    TweetEdit,
}

impl EventKind {
    /// Every kind, in X's documentation's order.
    pub const ALL: [EventKind; 13] = [
        EventKind::Delete,
        EventKind::StatusWithheld,
        EventKind::Drop,
        EventKind::Undrop,
        EventKind::ScrubGeo,
        EventKind::UserDelete,
        EventKind::UserUndelete,
        EventKind::UserWithheld,
        EventKind::UserProtect,
        EventKind::UserUnprotect,
        EventKind::UserSuspend,
        EventKind::UserUnsuspend,
        EventKind::TweetEdit,
    ];

    /// The event's key, as X writes it.
    pub fn key(self) -> &'static str {
        match self {
            EventKind::Delete => "delete",
            EventKind::StatusWithheld => "status_withheld",
            EventKind::Drop => "drop",
            EventKind::Undrop => "undrop",
            EventKind::ScrubGeo => "scrub_geo",
            EventKind::UserDelete => "user_delete",
            EventKind::UserUndelete => "user_undelete",
            EventKind::UserWithheld => "user_withheld",
            EventKind::UserProtect => "user_protect",
            EventKind::UserUnprotect => "user_unprotect",
            EventKind::UserSuspend => "user_suspend",
            EventKind::UserUnsuspend => "user_unsuspend",
            EventKind::TweetEdit => "tweet_edit",
        }
    }

    fn from_key(key: &[u8]) -> Option<EventKind> {
        EventKind::ALL
            .into_iter()
            .find(|kind| kind.key().as_bytes() == key)
    }
}

/// A checked compliance event: its kind and the ids it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComplianceEvent {
    /// What happened.
    pub kind: EventKind,
    /// The post it is about (`delete`, `status_withheld`, `drop`, `undrop`; for
    /// `tweet_edit` the new version; for `scrub_geo` the last post scrubbed).
    pub status_id: Option<u64>,
    /// The user it is about (the post's author for status events, when given).
    pub user_id: Option<u64>,
    /// `tweet_edit`: every version's id, oldest first, the new one last.
    pub edit_ids: Vec<u64>,
    /// `status_withheld`, `user_withheld`: the countries it is now withheld in (empty:
    /// withheld nowhere any more).
    pub countries: Vec<String>,
}

impl ComplianceEvent {
    /// The id the event is routed by (its partition on the compliance firehose): the post
    /// for post events, the user for user events.
    pub fn routing_id(&self) -> u64 {
        match self.kind {
            EventKind::ScrubGeo
            | EventKind::UserDelete
            | EventKind::UserUndelete
            | EventKind::UserWithheld
            | EventKind::UserProtect
            | EventKind::UserUnprotect
            | EventKind::UserSuspend
            | EventKind::UserUnsuspend => self.user_id.unwrap_or_default(),
            _ => self.status_id.unwrap_or_default(),
        }
    }
}

/// Why a line that names a compliance event is not a valid one; the message is what the
/// ingest answer reports for the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} event: {problem}")]
pub struct EventError {
    /// The event's key (`delete`, …), or `compliance` when the line is not even an object.
    pub kind: &'static str,
    /// What is wrong, naming the field.
    pub problem: String,
}

/// Whether the JSON object in `raw` is a compliance event: its first key is one of
/// [`EventKind`]'s. Posts never begin so (X writes `created_at` or `id` first), and the
/// ingest API refuses a post whose first key is an event's unless it is a valid event, so
/// this peek is how lines read back from the post log are told apart without a parse.
pub fn is_event(raw: &[u8]) -> bool {
    event_kind(raw).is_some()
}

/// The kind named by the first key of the object in `raw`, if it names one.
pub fn event_kind(raw: &[u8]) -> Option<EventKind> {
    let mut rest = skip_space(raw);
    rest = skip_space(rest.strip_prefix(b"{")?);
    let rest = rest.strip_prefix(b"\"")?;
    // Event keys are short lower-case ASCII: no escapes to decode.
    let end = rest.iter().take(16).position(|&b| b == b'"')?;
    EventKind::from_key(&rest[..end])
}

/// The id a line read back from storage routes by: an event's [`ComplianceEvent::routing_id`],
/// a post's id ([`crate::read_post_id`]); `None` for neither.
pub fn routing_id(raw: &[u8]) -> Option<u64> {
    if is_event(raw) {
        parse_event(raw).ok().map(|event| event.routing_id())
    } else {
        crate::read_post_id(raw)
    }
}

fn skip_space(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    &bytes[start..]
}

/// Checks the event in `raw` (a line whose first key names an event, see [`is_event`])
/// and returns what it is about.
pub fn parse_event(raw: &[u8]) -> Result<ComplianceEvent, EventError> {
    let fail = |kind: &'static str, problem: String| EventError { kind, problem };
    let value: Value = serde_json::from_slice(raw)
        .map_err(|e| fail("compliance", format!("invalid JSON ({e})")))?;
    let Value::Object(outer) = value else {
        return Err(fail("compliance", "not a JSON object".to_owned()));
    };
    // The kind is the first key as written (the parsed map sorts its keys).
    let kind = event_kind(raw).ok_or_else(|| {
        let first = outer.keys().next().map(String::as_str).unwrap_or_default();
        fail(
            "compliance",
            format!("unknown event kind {:?}", short(first)),
        )
    })?;
    let name = kind.key();
    let body = &outer[name];
    if outer.len() > 1 {
        // A few of them, each cut short: the message goes back per line.
        let extra: Vec<&str> = outer
            .keys()
            .filter(|k| *k != name)
            .take(3)
            .map(|k| short(k))
            .collect();
        return Err(fail(
            name,
            format!("the event's object must be its only key (also found {extra:?})"),
        ));
    }
    let Value::Object(body) = body else {
        return Err(fail(name, format!("\"{name}\" is not an object")));
    };
    read_body(kind, body).map_err(|problem| fail(name, problem))
}

/// The start of `text` (at most 40 bytes, on a character boundary), for messages.
fn short(text: &str) -> &str {
    let mut end = text.len().min(40);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The ids of one kind's body, and the checks of its fields.
fn read_body(kind: EventKind, body: &Map<String, Value>) -> Result<ComplianceEvent, String> {
    let mut event = ComplianceEvent {
        kind,
        status_id: None,
        user_id: None,
        edit_ids: Vec::new(),
        countries: Vec::new(),
    };
    match kind {
        EventKind::Delete | EventKind::StatusWithheld | EventKind::Drop | EventKind::Undrop => {
            let status = object(body, "status")?;
            event.status_id = Some(id_pair(status, "status.", "id")?);
            event.user_id = optional_id_pair(status, "status.", "user_id")?;
            if kind == EventKind::StatusWithheld {
                event.countries = countries(body)?;
            }
            epoch_ms(body)?;
        }
        EventKind::ScrubGeo => {
            event.user_id = Some(id_pair(body, "", "user_id")?);
            event.status_id = Some(id_pair(body, "", "up_to_status_id")?);
            epoch_ms(body)?;
        }
        EventKind::UserWithheld => {
            let user = object(body, "user")?;
            event.user_id = Some(id_pair(user, "user.", "id")?);
            event.countries = countries(body)?;
            match body.get("timestampMs") {
                Some(Value::String(s)) if time_is_iso(s) => {}
                Some(_) => return Err("timestampMs must be an ISO 8601 time string".to_owned()),
                None => return Err("timestampMs is missing".to_owned()),
            }
        }
        EventKind::TweetEdit => {
            event.status_id = Some(string_id(body, "id")?);
            let initial = string_id(body, "initial_tweet_id")?;
            let ids = match body.get("edit_tweet_ids") {
                Some(Value::Array(ids)) if !ids.is_empty() => ids,
                _ => return Err("edit_tweet_ids must be a non-empty array of ids".to_owned()),
            };
            for id in ids {
                let id = id
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .ok_or("edit_tweet_ids must hold ids as strings of digits")?;
                event.edit_ids.push(id);
            }
            if event.edit_ids.first() != Some(&initial) {
                return Err("edit_tweet_ids must begin with initial_tweet_id".to_owned());
            }
            if event.edit_ids.last() != event.status_id.as_ref() {
                return Err("edit_tweet_ids must end with id".to_owned());
            }
            if !event.edit_ids.is_sorted_by(|a, b| a < b) {
                return Err("edit_tweet_ids must be in ascending order".to_owned());
            }
            epoch_ms(body)?;
        }
        EventKind::UserDelete
        | EventKind::UserUndelete
        | EventKind::UserProtect
        | EventKind::UserUnprotect
        | EventKind::UserSuspend
        | EventKind::UserUnsuspend => {
            event.user_id = Some(id_pair(body, "", "id")?);
            epoch_ms(body)?;
        }
    }
    Ok(event)
}

fn object<'a>(body: &'a Map<String, Value>, field: &str) -> Result<&'a Map<String, Value>, String> {
    match body.get(field) {
        Some(Value::Object(object)) => Ok(object),
        Some(_) => Err(format!("{field} is not an object")),
        None => Err(format!("{field} is missing")),
    }
}

/// An id given as `field` (a number or a string of digits) and/or `field_str`.
fn id_pair(body: &Map<String, Value>, path: &str, field: &str) -> Result<u64, String> {
    optional_id_pair(body, path, field)?.ok_or_else(|| format!("{path}{field} is missing"))
}

fn optional_id_pair(
    body: &Map<String, Value>,
    path: &str,
    field: &str,
) -> Result<Option<u64>, String> {
    let read = |name: &str| -> Result<Option<u64>, String> {
        match body.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| format!("{path}{name} is not an id")),
            Some(Value::String(s)) => s
                .parse()
                .map(Some)
                .map_err(|_| format!("{path}{name} is not an id")),
            Some(_) => Err(format!("{path}{name} is not an id")),
        }
    };
    let number = read(field)?;
    let string = read(&format!("{field}_str"))?;
    // The string wins: X's own examples carry numbers rounded by JavaScript beside the
    // exact strings, and X tells clients to read `…_str`.
    Ok(string.or(number))
}

/// A `tweet_edit` id: a string of digits, as X writes them there.
fn string_id(body: &Map<String, Value>, field: &str) -> Result<u64, String> {
    match body.get(field) {
        Some(Value::String(s)) => s
            .parse()
            .map_err(|_| format!("{field} is not a string of digits")),
        Some(_) => Err(format!("{field} must be a string of digits")),
        None => Err(format!("{field} is missing")),
    }
}

fn countries(body: &Map<String, Value>) -> Result<Vec<String>, String> {
    match body.get("withheld_in_countries") {
        Some(Value::Array(codes)) if codes.iter().all(Value::is_string) => Ok(codes
            .iter()
            .filter_map(|code| code.as_str().map(str::to_owned))
            .collect()),
        Some(_) => Err("withheld_in_countries must be an array of country codes".to_owned()),
        None => Err("withheld_in_countries is missing".to_owned()),
    }
}

/// `timestamp_ms`: epoch milliseconds, as X's string of digits (a number is accepted).
fn epoch_ms(body: &Map<String, Value>) -> Result<u64, String> {
    match body.get("timestamp_ms") {
        Some(Value::String(s)) => s
            .parse()
            .map_err(|_| "timestamp_ms is not epoch milliseconds".to_owned()),
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| "timestamp_ms is not epoch milliseconds".to_owned()),
        Some(_) => Err("timestamp_ms is not epoch milliseconds".to_owned()),
        None => Err("timestamp_ms is missing".to_owned()),
    }
}

/// Whether `text` reads as an ISO 8601 time such as `2014-08-27T23:49:41.839+00:00`.
fn time_is_iso(text: &str) -> bool {
    time::OffsetDateTime::parse(
        text,
        &time::format_description::well_known::Iso8601::DEFAULT,
    )
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// X's own examples (docs/compliance.md) and what each is about:
    /// (line, kind, status id, user id).
    const X_EXAMPLES: &[(&str, EventKind, Option<u64>, Option<u64>)] = &[
        (
            r#"{"delete":{"status":{"id":601430178305220600,"id_str":"601430178305220608","user_id":3198576760,"user_id_str":"3198576760"},"timestamp_ms":"1432228155593"}}"#,
            // The number is X's example's, rounded by JavaScript; the string is exact.
            EventKind::Delete,
            Some(601_430_178_305_220_608),
            Some(3_198_576_760),
        ),
        (
            r#"{"status_withheld":{"status":{"id":1,"id_str":"1","user_id":2,"user_id_str":"2"},"withheld_in_countries":["XY"],"timestamp_ms":"1432228155593"}}"#,
            EventKind::StatusWithheld,
            Some(1),
            Some(2),
        ),
        (
            r#"{"drop":{"status":{"id":3,"id_str":"3","user_id":4,"user_id_str":"4"},"timestamp_ms":"1432228155593"}}"#,
            EventKind::Drop,
            Some(3),
            Some(4),
        ),
        (
            r#"{"undrop":{"status":{"id":3,"id_str":"3","user_id":4,"user_id_str":"4"},"timestamp_ms":"1432228155593"}}"#,
            EventKind::Undrop,
            Some(3),
            Some(4),
        ),
        (
            r#"{"scrub_geo":{"user_id":519761961,"up_to_status_id":411552403083628544,"up_to_status_id_str":"411552403083628544","user_id_str":"519761961","timestamp_ms":"1432228180345"}}"#,
            EventKind::ScrubGeo,
            Some(411_552_403_083_628_544),
            Some(519_761_961),
        ),
        (
            r#"{"user_delete":{"id":771136850,"timestamp_ms":"1432228153548"}}"#,
            EventKind::UserDelete,
            None,
            Some(771_136_850),
        ),
        (
            r#"{"user_undelete":{"id":796250066,"timestamp_ms":"1432228149062"}}"#,
            EventKind::UserUndelete,
            None,
            Some(796_250_066),
        ),
        (
            r#"{"user_withheld":{"user":{"id":1375036644,"id_str":"1375036644"},"withheld_in_countries":["XY"],"timestampMs":"2014-08-27T23:49:41.839+00:00"}}"#,
            EventKind::UserWithheld,
            None,
            Some(1_375_036_644),
        ),
        (
            r#"{"user_protect":{"id":3182003550,"timestamp_ms":"1432228177137"}}"#,
            EventKind::UserProtect,
            None,
            Some(3_182_003_550),
        ),
        (
            r#"{"user_unprotect":{"id":2911076065,"timestamp_ms":"1432228180113"}}"#,
            EventKind::UserUnprotect,
            None,
            Some(2_911_076_065),
        ),
        (
            r#"{"user_suspend":{"id":3120539094,"timestamp_ms":"1432228194217"}}"#,
            EventKind::UserSuspend,
            None,
            Some(3_120_539_094),
        ),
        (
            r#"{"user_unsuspend":{"id":3293130873,"timestamp_ms":"1432228193828"}}"#,
            EventKind::UserUnsuspend,
            None,
            Some(3_293_130_873),
        ),
        (
            r#"{"tweet_edit":{"id":"1557445923210514432","initial_tweet_id":"1557433858676740098","edit_tweet_ids":["1557433858676740098","1557445923210514432"],"timestamp_ms":"1660155761384"}}"#,
            EventKind::TweetEdit,
            Some(1_557_445_923_210_514_432),
            None,
        ),
    ];

    #[test]
    fn x_examples_are_events_of_their_kind() {
        for &(line, kind, status, user) in X_EXAMPLES {
            assert_eq!(event_kind(line.as_bytes()), Some(kind), "{line}");
            let event = parse_event(line.as_bytes()).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(
                (event.kind, event.status_id, event.user_id),
                (kind, status, user),
                "{line}"
            );
            let withheld = matches!(kind, EventKind::StatusWithheld | EventKind::UserWithheld);
            let expected: &[&str] = if withheld { &["XY"] } else { &[] };
            assert_eq!(event.countries, expected, "{line}");
        }
    }

    #[test]
    fn posts_and_other_objects_are_not_events() {
        for line in [
            r#"{"created_at":"Wed Oct 10 20:19:24 +0000 2018","id":1}"#,
            r#"{"id":1,"delete":{}}"#,
            r#"{"deleted":{}}"#,
            r#"["delete"]"#,
            r#"{}"#,
            "",
            r#"{"delete_everything_and_more_too":1}"#,
        ] {
            assert!(!is_event(line.as_bytes()), "{line}");
        }
        assert!(is_event(b" \t{ \"delete\" : {}}"));
    }

    /// (line, a fragment of the error).
    const MALFORMED: &[(&str, &str)] = &[
        (
            r#"{"delete":1}"#,
            "delete event: \"delete\" is not an object",
        ),
        (r#"{"delete":{}}"#, "delete event: status is missing"),
        (
            r#"{"delete":{"status":{"id":"x"},"timestamp_ms":"1"}}"#,
            "status.id is not an id",
        ),
        (
            r#"{"delete":{"status":{"user_id":5},"timestamp_ms":"1"}}"#,
            "status.id is missing",
        ),
        (
            r#"{"delete":{"status":{"id":5}}}"#,
            "delete event: timestamp_ms is missing",
        ),
        (
            r#"{"delete":{"status":{"id":5},"timestamp_ms":"soon"}}"#,
            "timestamp_ms is not epoch milliseconds",
        ),
        (
            r#"{"delete":{"status":{"id":5},"timestamp_ms":"1"},"extra":1}"#,
            "its only key",
        ),
        (
            r#"{"status_withheld":{"status":{"id":5},"timestamp_ms":"1"}}"#,
            "withheld_in_countries is missing",
        ),
        (
            r#"{"scrub_geo":{"user_id":1,"timestamp_ms":"1"}}"#,
            "up_to_status_id is missing",
        ),
        (
            r#"{"user_delete":{"timestamp_ms":"1"}}"#,
            "user_delete event: id is missing",
        ),
        (
            r#"{"user_withheld":{"user":{"id":1},"withheld_in_countries":[],"timestamp_ms":"1"}}"#,
            "timestampMs is missing",
        ),
        (
            r#"{"user_withheld":{"user":{"id":1},"withheld_in_countries":[],"timestampMs":"yesterday"}}"#,
            "ISO 8601",
        ),
        (
            r#"{"tweet_edit":{"id":2,"initial_tweet_id":"1","edit_tweet_ids":["1","2"],"timestamp_ms":"1"}}"#,
            "id must be a string of digits",
        ),
        (
            r#"{"tweet_edit":{"id":"2","initial_tweet_id":"1","edit_tweet_ids":[],"timestamp_ms":"1"}}"#,
            "non-empty array",
        ),
        (
            r#"{"tweet_edit":{"id":"2","initial_tweet_id":"1","edit_tweet_ids":["3","2"],"timestamp_ms":"1"}}"#,
            "begin with initial_tweet_id",
        ),
        (
            r#"{"tweet_edit":{"id":"3","initial_tweet_id":"1","edit_tweet_ids":["1","2"],"timestamp_ms":"1"}}"#,
            "end with id",
        ),
        (
            r#"{"tweet_edit":{"id":"2","initial_tweet_id":"1","edit_tweet_ids":["1",2],"timestamp_ms":"1"}}"#,
            "as strings of digits",
        ),
        (r#"{"delete":{"status":{"id":5},"#, "invalid JSON"),
    ];

    #[test]
    fn malformed_events_name_what_is_wrong() {
        let mut failures = Vec::new();
        for (line, fragment) in MALFORMED {
            match parse_event(line.as_bytes()) {
                Err(e) if e.to_string().contains(fragment) => {}
                other => failures.push(format!("{line}\n  want …{fragment}…\n  got {other:?}")),
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn events_route_by_their_post_or_their_user() {
        let delete =
            parse_event(br#"{"delete":{"status":{"id":7,"user_id":9},"timestamp_ms":"1"}}"#)
                .unwrap();
        assert_eq!(delete.routing_id(), 7);
        let protect = parse_event(br#"{"user_protect":{"id":9,"timestamp_ms":"1"}}"#).unwrap();
        assert_eq!(protect.routing_id(), 9);
    }
}
