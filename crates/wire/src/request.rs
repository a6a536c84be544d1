//! Request bodies of the PowerTrack rules API (docs/compatibility.md §2.1, §2.4, §2.5 and "Decisions").
//!
//! Parsing is lenient where real clients differ and strict where the meaning would be
//! unclear: unknown keys are ignored everywhere (clients send whole rule objects back),
//! `tag` may be a string, `null` or absent, rule ids arrive as numbers or numeric strings.
//! Anything else (not JSON, not an object, no `rules` array of objects, a rule without a string `value`, a `rule_ids`
//! entry that is not an id) is [`InvalidJson`], answered with X's 400 body.

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use crate::error::InvalidJson;

/// The add and validate body: `{"rules":[{"value":"…","tag":"…"},…]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulesRequest {
    /// The submitted rules, in order.
    #[serde(deserialize_with = "crate::object::objects")]
    pub rules: Vec<RuleInput>,
}

/// One submitted rule. `id`/`id_str` are accepted (clients send rule objects back) but
/// carry no meaning on add or validate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleInput {
    /// The rule text.
    pub value: String,
    /// The tag, if any.
    #[serde(default)]
    pub tag: Option<String>,
    /// An id sent back by the client, if it was a number or numeric string.
    #[serde(
        default,
        deserialize_with = "sluice_model::ids::lenient_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub id: Option<u64>,
    /// An `id_str` sent back by the client, if numeric.
    #[serde(
        default,
        deserialize_with = "sluice_model::ids::lenient_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub id_str: Option<u64>,
}

impl RulesRequest {
    /// Parses an add or validate request body.
    pub fn from_slice(body: &[u8]) -> Result<Self, InvalidJson> {
        Ok(crate::object::from_slice(body)?)
    }
}

/// The get-many and delete-by-id body: `{"rule_ids":[734938587381145604,"734938587381174273"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleIdsRequest {
    /// The requested ids, from numbers or numeric strings.
    #[serde(deserialize_with = "rule_ids")]
    pub rule_ids: Vec<u64>,
}

impl RuleIdsRequest {
    /// Parses a `rule_ids` request body.
    pub fn from_slice(body: &[u8]) -> Result<Self, InvalidJson> {
        Ok(crate::object::from_slice(body)?)
    }
}

/// Reads a `rule_ids` array of numbers or numeric strings (shared with [`crate::delete`]).
pub(crate) fn rule_ids<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u64>, D::Error> {
    let ids: Vec<StrictId> = Vec::deserialize(deserializer)?;
    Ok(ids.into_iter().map(|StrictId(id)| id).collect())
}

/// A rule id that must be a non-negative integer or a string of one.
struct StrictId(u64);

impl<'de> Deserialize<'de> for StrictId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictIdVisitor)
    }
}

struct StrictIdVisitor;

impl Visitor<'_> for StrictIdVisitor {
    type Value = StrictId;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a rule id as a number or a numeric string")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<StrictId, E> {
        Ok(StrictId(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<StrictId, E> {
        v.parse()
            .map(StrictId)
            .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_body_from_the_spec() {
        let req = RulesRequest::from_slice(
            br#"{"rules":[{"value":"rule1","tag":"tag1"},{"value":"rule2","tag":"tag2"}]}"#,
        )
        .expect("valid");
        assert_eq!(req.rules.len(), 2);
        assert_eq!(req.rules[0].value, "rule1");
        assert_eq!(req.rules[1].tag.as_deref(), Some("tag2"));
    }

    #[test]
    fn tags_may_be_absent_or_null_and_extra_keys_are_ignored() {
        let req = RulesRequest::from_slice(
            br#"{"rules":[{"value":"a"},{"value":"b","tag":null},
                {"value":"c","tag":"t","id":961664522481119232,"id_str":"961664522481119232","x":[1]}],
                "other":true}"#,
        )
        .expect("valid");
        assert_eq!(req.rules[0].tag, None);
        assert_eq!(req.rules[1].tag, None);
        assert_eq!(req.rules[2].id, Some(961_664_522_481_119_232));
        assert_eq!(req.rules[2].id_str, Some(961_664_522_481_119_232));
    }

    #[test]
    fn malformed_add_bodies_are_invalid_json() {
        for body in [
            &b"{"[..],
            b"not json",
            b"{}",
            br#"{"rules":{}}"#,
            br#"{"rules":[{"tag":"t"}]}"#,
            br#"{"rules":[{"value":5}]}"#,
            br#"{"rules":[{"value":"a","tag":7}]}"#,
            br#"{"rule_ids":[1]}"#,
        ] {
            assert!(RulesRequest::from_slice(body).is_err(), "{body:?}");
        }
    }

    #[test]
    fn rule_ids_from_numbers_or_strings() {
        let req = RuleIdsRequest::from_slice(
            br#"{"rule_ids":[734938587381145604,"734938587381174273"]}"#,
        )
        .expect("valid");
        assert_eq!(
            req.rule_ids,
            [734_938_587_381_145_604, 734_938_587_381_174_273]
        );
        for body in [
            &br#"{"rule_ids":["abc"]}"#[..],
            br#"{"rule_ids":[-1]}"#,
            br#"{"rule_ids":[1.5]}"#,
            br#"{"rule_ids":[null]}"#,
            br#"{"rules":[]}"#,
        ] {
            assert!(RuleIdsRequest::from_slice(body).is_err(), "{body:?}");
        }
    }

    #[test]
    fn arrays_are_not_read_as_objects_by_position() {
        // serde reads a struct from an array by field order; X's bodies are objects only.
        for body in [
            &br#"[[{"value":"a","tag":"t"}]]"#[..],
            br#"{"rules":[["a","t"]]}"#,
            br#"{"rules":[{"value":"a"},["b"]]}"#,
        ] {
            assert!(RulesRequest::from_slice(body).is_err(), "{body:?}");
        }
        assert!(RuleIdsRequest::from_slice(b"[[15]]").is_err());
        assert!(RuleIdsRequest::from_slice(b" \n[[15]]").is_err());
    }
}
