//! The delete endpoint (docs/compatibility.md §2.5): its request, by value or by id, and its response
//! `{"summary":{"deleted":N,"not_deleted":M},"detail":[…],"sent":"…"}`, whose `detail`
//! lists only the rules that were not deleted.

use serde::de::Error as _;
use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{InvalidJson, RULE_DOES_NOT_EXIST_MESSAGE};

/// What a delete request names: rules by exact value, or rules by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteRequest {
    /// `{"rules":[{"value":"…"},…]}`: clients often send whole rule objects back; only
    /// `value` matters (`tag` is echoed, other keys are ignored). An entry without a value
    /// names no rule.
    Values(Vec<DeleteEntry>),
    /// `{"rule_ids":[…]}`, ids as numbers or numeric strings.
    Ids(Vec<u64>),
}

/// One entry of a delete-by-value body.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DeleteEntry {
    /// The exact rule text to delete (case-sensitive).
    #[serde(default)]
    pub value: Option<String>,
    /// The submitted tag; ignored for matching, echoed when the rule does not exist.
    #[serde(default)]
    pub tag: Option<String>,
}

#[derive(Deserialize)]
struct DeleteRepr {
    #[serde(default, deserialize_with = "crate::object::some_objects")]
    rules: Option<Vec<DeleteEntry>>,
    #[serde(default, deserialize_with = "some_rule_ids")]
    rule_ids: Option<Vec<u64>>,
}

fn some_rule_ids<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<u64>>, D::Error> {
    crate::request::rule_ids(deserializer).map(Some)
}

impl DeleteRequest {
    /// Parses a delete body. Exactly one of `rules` and `rule_ids` must be present: a body
    /// with both is ambiguous and, like a body with neither, is [`InvalidJson`].
    pub fn from_slice(body: &[u8]) -> Result<Self, InvalidJson> {
        let repr: DeleteRepr = crate::object::from_slice(body)?;
        match (repr.rules, repr.rule_ids) {
            (Some(rules), None) => Ok(Self::Values(rules)),
            (None, Some(ids)) => Ok(Self::Ids(ids)),
            (Some(_), Some(_)) => Err(InvalidJson(serde_json::Error::custom(
                "both `rules` and `rule_ids` given",
            ))),
            (None, None) => Err(InvalidJson(serde_json::Error::custom(
                "neither `rules` nor `rule_ids` given",
            ))),
        }
    }
}

/// The whole delete response body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteResponse {
    /// How many of the named rules were deleted and how many were not.
    pub summary: DeleteSummary,
    /// The rules not deleted, in request order (empty when all were).
    pub detail: Vec<DeleteDetail>,
    /// When the response was produced, in the rules API format ([`crate::sent::rules_sent`]).
    pub sent: String,
}

/// `{"deleted":N,"not_deleted":M}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteSummary {
    /// Rules deleted by this request.
    pub deleted: usize,
    /// Entries that named no rule.
    pub not_deleted: usize,
}

/// One entry that was not deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteDetail {
    /// The entry as submitted.
    pub rule: DeleteTarget,
    /// Always false: deleted rules are not listed.
    pub deleted: bool,
    /// Why: X's "Rule does not exist".
    pub message: String,
}

impl DeleteDetail {
    /// An entry that named no rule of the stream.
    pub fn missing(rule: DeleteTarget) -> Self {
        Self {
            rule,
            deleted: false,
            message: RULE_DOES_NOT_EXIST_MESSAGE.to_owned(),
        }
    }
}

/// The rule an entry named, echoed: `{"value":…,"tag":…}` for a by-value entry (`value`
/// `null` when the entry had none), `{"value":null,"tag":null,"id":N,"id_str":"N"}` for a
/// by-id entry (rule objects carry exactly these four keys).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct DeleteTarget {
    /// The submitted value.
    #[serde(default)]
    pub value: Option<String>,
    /// The submitted tag.
    #[serde(default)]
    pub tag: Option<String>,
    /// The submitted id.
    #[serde(default, deserialize_with = "sluice_model::ids::lenient_u64")]
    pub id: Option<u64>,
}

impl DeleteTarget {
    /// A by-value entry.
    pub fn by_value(entry: DeleteEntry) -> Self {
        Self {
            value: entry.value,
            tag: entry.tag,
            id: None,
        }
    }

    /// A by-id entry.
    pub fn by_id(id: u64) -> Self {
        Self {
            value: None,
            tag: None,
            id: Some(id),
        }
    }
}

impl Serialize for DeleteTarget {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let len = if self.id.is_some() { 4 } else { 2 };
        let mut s = serializer.serialize_struct("DeleteTarget", len)?;
        s.serialize_field("value", &self.value)?;
        s.serialize_field("tag", &self.tag)?;
        if let Some(id) = self.id {
            s.serialize_field("id", &id)?;
            s.serialize_field("id_str", &id.to_string())?;
        }
        s.end()
    }
}

impl DeleteResponse {
    /// The response for `deleted` rules deleted and `detail` entries not deleted.
    pub fn new(deleted: usize, detail: Vec<DeleteDetail>, sent: impl Into<String>) -> Self {
        Self {
            summary: DeleteSummary {
                deleted,
                not_deleted: detail.len(),
            },
            detail,
            sent: sent.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_value_ignores_extra_keys_and_allows_tag_only_entries() {
        let req = DeleteRequest::from_slice(
            br#"{"rules":[{"value":"Pizza","tag":null,"id":1,"id_str":"1"},{"tag":"t"}]}"#,
        )
        .expect("valid");
        assert_eq!(
            req,
            DeleteRequest::Values(vec![
                DeleteEntry {
                    value: Some("Pizza".into()),
                    tag: None
                },
                DeleteEntry {
                    value: None,
                    tag: Some("t".into())
                },
            ])
        );
    }

    #[test]
    fn by_id_accepts_numbers_and_strings() {
        let req =
            DeleteRequest::from_slice(br#"{"rule_ids":[734938587381145604,"7"]}"#).expect("valid");
        assert_eq!(req, DeleteRequest::Ids(vec![734_938_587_381_145_604, 7]));
    }

    #[test]
    fn malformed_delete_bodies_are_invalid_json() {
        for body in [
            &b"not json"[..],
            b"{}",
            b"[]",
            br#"{"rules":[1]}"#,
            br#"{"rules":[{"value":5}]}"#,
            br#"{"rule_ids":["x"]}"#,
            br#"{"rule_ids":null}"#,
            br#"{"rules":[],"rule_ids":[]}"#,
        ] {
            assert!(DeleteRequest::from_slice(body).is_err(), "{body:?}");
        }
    }

    #[test]
    fn responses_match_the_spec_examples_byte_for_byte() {
        let all = DeleteResponse::new(3, Vec::new(), "2016-06-01T15:46:48.654Z");
        assert_eq!(
            crate::to_string(&all),
            r#"{"summary":{"deleted":3,"not_deleted":0},"detail":[],"sent":"2016-06-01T15:46:48.654Z"}"#
        );
        let none = DeleteResponse::new(
            0,
            vec![DeleteDetail::missing(DeleteTarget::by_value(DeleteEntry {
                value: Some("Pizza".into()),
                tag: None,
            }))],
            "2016-06-01T15:49:15.951Z",
        );
        assert_eq!(
            crate::to_string(&none),
            r#"{"summary":{"deleted":0,"not_deleted":1},"detail":[{"rule":{"value":"Pizza","tag":null},"deleted":false,"message":"Rule does not exist"}],"sent":"2016-06-01T15:49:15.951Z"}"#
        );
    }

    #[test]
    fn missing_ids_are_echoed_as_four_key_rule_objects_and_read_back() {
        let response = DeleteResponse::new(
            0,
            vec![DeleteDetail::missing(DeleteTarget::by_id(42))],
            "2016-06-01T15:49:15.951Z",
        );
        let json = crate::to_string(&response);
        assert_eq!(
            json,
            r#"{"summary":{"deleted":0,"not_deleted":1},"detail":[{"rule":{"value":null,"tag":null,"id":42,"id_str":"42"},"deleted":false,"message":"Rule does not exist"}],"sent":"2016-06-01T15:49:15.951Z"}"#
        );
        let back: DeleteResponse = serde_json::from_str(&json).expect("reads back");
        assert_eq!(back, response);
    }

    #[test]
    fn a_null_list_is_an_absent_list() {
        let req = DeleteRequest::from_slice(br#"{"rules":null,"rule_ids":[1]}"#).expect("valid");
        assert_eq!(req, DeleteRequest::Ids(vec![1]));
    }

    #[test]
    fn arrays_are_not_read_as_objects_by_position() {
        for body in [
            &b"[[15]]"[..],
            br#"[[{"value":"a"}]]"#,
            br#"[null,[15]]"#,
            br#"{"rules":[["a","t"]]}"#,
        ] {
            assert!(DeleteRequest::from_slice(body).is_err(), "{body:?}");
        }
    }
}
