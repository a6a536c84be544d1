//! The JSON bodies of the `/2/` APIs sluice speaks (Powerstream, docs/compatibility.md §6 and §7.2,
//! docs/compatibility.md ("Decisions") "Powerstream"): v2 problem objects, the Powerstream rules requests and
//! responses (rule ids as strings), the in-band `{"errors":[…]}` disconnect line and the
//! `connection_metadata` line.
//!
//! Shapes follow X's v2 conventions: a rule without a tag has no `tag` key, ids are
//! strings, `meta.sent` uses the rules API `sent` format, and every error body is a problem
//! object `{"title","detail"?,"type","status"?}` (RFC 7807 style, extension members
//! allowed).

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// The problem types sluice uses (docs/compatibility.md §7.2 catalogue), as full `type` URLs.
pub mod problem_type {
    /// A request parameter or body is malformed.
    pub const INVALID_REQUEST: &str = "https://api.x.com/2/problems/invalid-request";
    /// An add would take the account over its rule cap.
    pub const RULE_CAP: &str = "https://api.x.com/2/problems/rule-cap";
    /// A submitted rule's value already exists.
    pub const DUPLICATE_RULES: &str = "https://api.x.com/2/problems/duplicate-rules";
    /// A submitted rule does not parse or uses an operator the API does not offer.
    pub const INVALID_RULES: &str = "https://api.x.com/2/problems/invalid-rules";
    /// The request authenticated in a way the endpoint does not accept.
    pub const UNSUPPORTED_AUTHENTICATION: &str =
        "https://api.x.com/2/problems/unsupported-authentication";
    /// A stream was closed by the server (in-band).
    pub const OPERATIONAL_DISCONNECT: &str = "https://api.x.com/2/problems/operational-disconnect";
    /// A stream connection was refused.
    pub const STREAMING_CONNECTION: &str = "https://api.x.com/2/problems/streaming-connection";
    /// A named resource (a rule to delete) does not exist.
    pub const RESOURCE_NOT_FOUND: &str = "https://api.x.com/2/problems/resource-not-found";
    /// The generic type X uses for plain HTTP errors (401, 429).
    pub const ABOUT_BLANK: &str = "about:blank";
}

/// A v2 problem body: `{"title":…,"detail":…,"type":…,"status":…}`, optionally with the
/// per-rule problems of a refused add in `errors`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Short name of the problem (`Invalid Request`, `Unauthorized`, …).
    pub title: String,
    /// What exactly went wrong, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The problem type URL (see [`problem_type`]).
    #[serde(rename = "type")]
    pub kind: String,
    /// The HTTP status, repeated in the body as X does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The rules that caused a refused add, one problem each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<RuleProblem>,
}

impl Problem {
    /// A problem with a detail and the HTTP status.
    pub fn new(title: &str, kind: &str, detail: impl Into<String>, status: u16) -> Self {
        Self {
            title: title.to_owned(),
            detail: Some(detail.into()),
            kind: kind.to_owned(),
            status: Some(status),
            errors: Vec::new(),
        }
    }
}

/// One rule's problem in an add response (docs/compatibility.md §7.2): a duplicate names the existing
/// rule's id, an invalid rule lists why in `details`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleProblem {
    /// The submitted rule text.
    pub value: String,
    /// The id of the rule that already has this value (duplicates).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "opt_id_string",
        deserialize_with = "opt_id"
    )]
    pub id: Option<u64>,
    /// Each thing wrong with the rule, e.g. `Reference to invalid operator 'sample' (at
    /// position 5).` (invalid rules).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
    /// `DuplicateRule` or `UnprocessableEntity`.
    pub title: String,
    /// [`problem_type::DUPLICATE_RULES`] or [`problem_type::INVALID_RULES`].
    #[serde(rename = "type")]
    pub kind: String,
}

impl RuleProblem {
    /// `value` already exists as rule `existing`.
    pub fn duplicate(value: impl Into<String>, existing: u64) -> Self {
        Self {
            value: value.into(),
            id: Some(existing),
            details: Vec::new(),
            title: "DuplicateRule".to_owned(),
            kind: problem_type::DUPLICATE_RULES.to_owned(),
        }
    }

    /// `value` is invalid for the reasons in `details`.
    pub fn invalid(value: impl Into<String>, details: Vec<String>) -> Self {
        Self {
            value: value.into(),
            id: None,
            details,
            title: "UnprocessableEntity".to_owned(),
            kind: problem_type::INVALID_RULES.to_owned(),
        }
    }
}

/// A Powerstream rule: `{"id":"…","value":"…","tag":"…"}`, the tag key absent when the rule
/// has none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRule {
    /// The rule id, written as a string.
    #[serde(serialize_with = "id_string", deserialize_with = "id")]
    pub id: u64,
    /// The rule text as submitted.
    pub value: String,
    /// The tag, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
}

/// `{"rules":[…]}`, the `data` of list and add responses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulesData {
    /// The rules.
    pub rules: Vec<StreamRule>,
}

/// The list response: `{"data":{"rules":[…]},"meta":{"sent":…,"result_count":N}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListResponse {
    /// Every rule of the account, oldest first (an empty list when there are none).
    pub data: RulesData,
    /// When and how many.
    pub meta: ListMeta,
}

/// The `meta` of a list response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListMeta {
    /// When the response was produced ([`crate::sent::rules_sent`] format).
    pub sent: String,
    /// The number of rules listed.
    pub result_count: usize,
}

impl ListResponse {
    /// The list of `rules`, stamped `sent`.
    pub fn new(rules: Vec<StreamRule>, sent: impl Into<String>) -> Self {
        let result_count = rules.len();
        Self {
            data: RulesData { rules },
            meta: ListMeta {
                sent: sent.into(),
                result_count,
            },
        }
    }
}

/// The add response (201): the created rules in `data.rules`, duplicates in `errors`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddResponse {
    /// The rules this request created, in request order.
    pub data: RulesData,
    /// When, and how many were created.
    pub meta: AddMeta,
    /// The submitted rules that were not created because their value exists.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<RuleProblem>,
}

/// The `meta` of an add response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddMeta {
    /// When the response was produced ([`crate::sent::rules_sent`] format).
    pub sent: String,
    /// Created and not created.
    pub summary: AddSummary,
}

/// `{"created":N,"not_created":M}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddSummary {
    /// Rules created.
    pub created: usize,
    /// Submitted rules not created (duplicates).
    pub not_created: usize,
}

impl AddResponse {
    /// The response for `created` rules and `duplicates`, stamped `sent`.
    pub fn new(
        created: Vec<StreamRule>,
        duplicates: Vec<RuleProblem>,
        sent: impl Into<String>,
    ) -> Self {
        let summary = AddSummary {
            created: created.len(),
            not_created: duplicates.len(),
        };
        Self {
            data: RulesData { rules: created },
            meta: AddMeta {
                sent: sent.into(),
                summary,
            },
            errors: duplicates,
        }
    }
}

/// The delete request: `{"rules":[{"id":"…"},{"value":"…"},…]}`. Clients send whole rule
/// objects back, so an entry may carry both; the id wins (X recommends deleting by id).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DeleteRequest {
    /// The rules to delete, in order.
    #[serde(deserialize_with = "crate::object::objects")]
    pub rules: Vec<DeleteEntry>,
}

/// One entry of a delete request. Unknown keys (`tag`, …) are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DeleteEntry {
    /// The rule id as sent (a number or a string); a string that is not a number names
    /// no rule.
    #[serde(default, deserialize_with = "opt_id_text")]
    pub id: Option<String>,
    /// The exact rule text (case-sensitive), used when no id is given.
    #[serde(default)]
    pub value: Option<String>,
}

impl DeleteRequest {
    /// Parses a delete body.
    pub fn from_slice(body: &[u8]) -> Result<Self, serde_json::Error> {
        crate::object::from_slice(body)
    }
}

/// The delete response (200):
/// `{"data":{"deleted":N,"not_deleted":M,"detail":[…]},"meta":{"sent":…}}`, where
/// `not_deleted` and `detail` appear only when some entry named no rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteResponse {
    /// Counts and failures.
    pub data: DeleteData,
    /// When.
    pub meta: SentMeta,
}

/// The `data` of a delete response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteData {
    /// Rules deleted.
    pub deleted: usize,
    /// Entries that named no rule (absent when 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_deleted: Option<usize>,
    /// Those entries, in request order (absent when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<Vec<DeleteFailure>>,
}

/// One entry that was not deleted: `{"rule":{"id":"…"},"deleted":false,"message":…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteFailure {
    /// The entry as it named the rule.
    pub rule: DeleteTarget,
    /// Always `false`.
    pub deleted: bool,
    /// Why ([`crate::error::RULE_DOES_NOT_EXIST_MESSAGE`]).
    pub message: String,
}

/// How a delete entry named a rule: by id or by value (or neither).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteTarget {
    /// The id as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The value as sent (only when no id was given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

/// `{"sent":…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentMeta {
    /// When the response was produced ([`crate::sent::rules_sent`] format).
    pub sent: String,
}

impl DeleteResponse {
    /// `deleted` rules deleted; `failed` entries that named no rule.
    pub fn new(deleted: usize, failed: Vec<DeleteTarget>, sent: impl Into<String>) -> Self {
        let (not_deleted, detail) = if failed.is_empty() {
            (None, None)
        } else {
            let detail = failed
                .into_iter()
                .map(|rule| DeleteFailure {
                    rule,
                    deleted: false,
                    message: crate::error::RULE_DOES_NOT_EXIST_MESSAGE.to_owned(),
                })
                .collect::<Vec<_>>();
            (Some(detail.len()), Some(detail))
        };
        Self {
            data: DeleteData {
                deleted,
                not_deleted,
                detail,
            },
            meta: SentMeta { sent: sent.into() },
        }
    }
}

/// Why the server ends a `/2/` stream: the `disconnect_type` of the in-band error (spec
/// §7.2 enum; the ones sluice sends).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DisconnectType {
    /// Server shutdown or the stream went away.
    OperationalDisconnect,
    /// The connection was closed by policy (over the connection cap).
    ForceDisconnect,
    /// The client did not keep up.
    SlowReader,
}

/// The in-band line written before the server ends a `/2/` stream:
/// `{"errors":[{"title":"operational-disconnect","disconnect_type":…,"detail":…,"type":…}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamErrors {
    /// One entry.
    pub errors: Vec<DisconnectError>,
}

/// The entry of [`StreamErrors`], in X's field order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisconnectError {
    /// `operational-disconnect`.
    pub title: String,
    /// Why.
    pub disconnect_type: DisconnectType,
    /// The human text.
    pub detail: String,
    /// [`problem_type::OPERATIONAL_DISCONNECT`].
    #[serde(rename = "type")]
    pub kind: String,
}

impl StreamErrors {
    /// The line for a disconnect of `kind` with `detail`.
    pub fn disconnect(kind: DisconnectType, detail: impl Into<String>) -> Self {
        Self {
            errors: vec![DisconnectError {
                title: "operational-disconnect".to_owned(),
                disconnect_type: kind,
                detail: detail.into(),
                kind: problem_type::OPERATIONAL_DISCONNECT.to_owned(),
            }],
        }
    }
}

/// The first line of a `localDcOnly=true` Powerstream connection (docs/compatibility.md §6.3):
/// `{"type":"connection_metadata","datacenter":"atla","timestamp":1762557264155}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionMetadata {
    /// Always `connection_metadata`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The datacenter serving the connection.
    pub datacenter: String,
    /// When the connection opened, epoch milliseconds.
    pub timestamp: i64,
}

impl ConnectionMetadata {
    /// The metadata of a connection served by `datacenter`, opened at `timestamp` (ms).
    pub fn new(datacenter: impl Into<String>, timestamp: i64) -> Self {
        Self {
            kind: "connection_metadata".to_owned(),
            datacenter: datacenter.into(),
            timestamp,
        }
    }
}

fn id_string<S: Serializer>(id: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(id)
}

fn opt_id_string<S: Serializer>(id: &Option<u64>, serializer: S) -> Result<S::Ok, S::Error> {
    match id {
        Some(id) => serializer.collect_str(id),
        None => serializer.serialize_none(),
    }
}

fn id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let text = deserializer.deserialize_any(IdText)?;
    text.parse()
        .map_err(|_| de::Error::invalid_value(de::Unexpected::Str(&text), &"a numeric id"))
}

fn opt_id<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    id(deserializer).map(Some)
}

fn opt_id_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    deserializer.deserialize_any(IdText).map(Some)
}

/// An id as a JSON number or string, kept as text.
struct IdText;

impl Visitor<'_> for IdText {
    type Value = String;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a rule id as a string or a number")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_carry_string_ids_and_omit_missing_tags() {
        let body = ListResponse::new(
            vec![
                StreamRule {
                    id: 1_571_785_499_026_784_257,
                    value: "cat lang:en".into(),
                    tag: Some("pets".into()),
                },
                StreamRule {
                    id: 7,
                    value: "dog".into(),
                    tag: None,
                },
            ],
            "2022-09-19T08:57:20.343Z",
        );
        assert_eq!(
            crate::to_string(&body),
            r#"{"data":{"rules":[{"id":"1571785499026784257","value":"cat lang:en","tag":"pets"},{"id":"7","value":"dog"}]},"meta":{"sent":"2022-09-19T08:57:20.343Z","result_count":2}}"#
        );
        let back: ListResponse = serde_json::from_str(&crate::to_string(&body)).unwrap();
        assert_eq!(back, body);
    }

    #[test]
    fn add_response_lists_duplicates_as_problems() {
        let body = AddResponse::new(
            vec![StreamRule {
                id: 5,
                value: "a".into(),
                tag: None,
            }],
            vec![RuleProblem::duplicate("b", 4)],
            "2022-09-19T08:57:20.343Z",
        );
        assert_eq!(
            crate::to_string(&body),
            r#"{"data":{"rules":[{"id":"5","value":"a"}]},"meta":{"sent":"2022-09-19T08:57:20.343Z","summary":{"created":1,"not_created":1}},"errors":[{"value":"b","id":"4","title":"DuplicateRule","type":"https://api.x.com/2/problems/duplicate-rules"}]}"#
        );
    }

    #[test]
    fn delete_requests_take_ids_as_strings_or_numbers_and_values() {
        let request = DeleteRequest::from_slice(
            br#"{"rules":[{"id":"12"},{"id":13,"value":"x"},{"value":"y","tag":"t"},{"tag":"t"}]}"#,
        )
        .unwrap();
        let ids: Vec<_> = request.rules.iter().map(|e| e.id.as_deref()).collect();
        assert_eq!(ids, [Some("12"), Some("13"), None, None]);
        assert_eq!(request.rules[2].value.as_deref(), Some("y"));
        for bad in [&br#"{"rules":[{"id":true}]}"#[..], b"{}", b"[1]", b"{"] {
            assert!(DeleteRequest::from_slice(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn delete_response_reports_not_deleted_only_when_non_zero() {
        let ok = DeleteResponse::new(2, Vec::new(), "2022-09-19T08:57:19.453Z");
        assert_eq!(
            crate::to_string(&ok),
            r#"{"data":{"deleted":2},"meta":{"sent":"2022-09-19T08:57:19.453Z"}}"#
        );
        let partial = DeleteResponse::new(
            0,
            vec![DeleteTarget {
                id: Some("9".into()),
                value: None,
            }],
            "2022-09-19T08:57:19.453Z",
        );
        assert_eq!(
            crate::to_string(&partial),
            r#"{"data":{"deleted":0,"not_deleted":1,"detail":[{"rule":{"id":"9"},"deleted":false,"message":"Rule does not exist"}]},"meta":{"sent":"2022-09-19T08:57:19.453Z"}}"#
        );
    }

    #[test]
    fn problems_and_stream_lines_have_x_shapes() {
        let problem = Problem::new(
            "Unsupported Authentication",
            problem_type::UNSUPPORTED_AUTHENTICATION,
            "no",
            403,
        );
        assert_eq!(
            crate::to_string(&problem),
            r#"{"title":"Unsupported Authentication","detail":"no","type":"https://api.x.com/2/problems/unsupported-authentication","status":403}"#
        );
        assert_eq!(
            crate::to_string(&StreamErrors::disconnect(
                DisconnectType::SlowReader,
                "slow"
            )),
            r#"{"errors":[{"title":"operational-disconnect","disconnect_type":"SlowReader","detail":"slow","type":"https://api.x.com/2/problems/operational-disconnect"}]}"#
        );
        assert_eq!(
            crate::to_string(&ConnectionMetadata::new("atla", 1_762_557_264_155)),
            r#"{"type":"connection_metadata","datacenter":"atla","timestamp":1762557264155}"#
        );
        let invalid = RuleProblem::invalid("h:m", vec!["x (at position 1).".into()]);
        assert_eq!(
            crate::to_string(&invalid),
            r#"{"value":"h:m","details":["x (at position 1)."],"title":"UnprocessableEntity","type":"https://api.x.com/2/problems/invalid-rules"}"#
        );
    }

    #[test]
    fn delete_requests_are_objects_not_arrays() {
        for body in [
            &br#"[[{"id":"1"}]]"#[..],
            br#"{"rules":[["1","x"]]}"#,
            br#"{"rules":[{"id":"1"},[null,"x"]]}"#,
        ] {
            assert!(DeleteRequest::from_slice(body).is_err(), "{body:?}");
        }
    }
}
