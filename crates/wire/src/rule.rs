//! Rule objects as PowerTrack responses carry them.
//!
//! docs/compatibility.md ("Decisions"): a rule object in any PowerTrack response has exactly `value`, `tag` (string
//! or `null`), `id` (number) and `id_str` (string), in that order; some clients reject any
//! other key. Ids are read back from numbers or numeric strings.

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

/// A stored rule: `{"value":…,"tag":…,"id":N,"id_str":"N"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "IdentifiedRepr")]
pub struct Rule {
    /// The rule text, exactly as submitted (the uniqueness key within a stream).
    pub value: String,
    /// The tag; `None` is written as `null`.
    pub tag: Option<String>,
    /// The Snowflake id; written as `id` and as `id_str`.
    pub id: u64,
}

impl Serialize for Rule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Rule", 4)?;
        s.serialize_field("value", &self.value)?;
        s.serialize_field("tag", &self.tag)?;
        s.serialize_field("id", &self.id)?;
        s.serialize_field("id_str", &IdStr(self.id))?;
        s.end()
    }
}

/// A rule without an id, as validation responses and rejected adds echo it:
/// `{"value":…,"tag":…}` with `tag` `null` when absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleValue {
    /// The rule text as submitted.
    pub value: String,
    /// The submitted tag, `null` when none.
    #[serde(default)]
    pub tag: Option<String>,
}

/// One entry of a delivered post's `matching_rules`: `{"tag":…,"id":N,"id_str":"N"}`
/// (docs/compatibility.md §8.6). The server writes these with `sluice_model::enrich`; this type is for
/// building and reading them elsewhere (CLI, clients, tests).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "MatchingRuleRepr")]
pub struct MatchingRule {
    /// The rule's tag; `None` is written as `null`.
    pub tag: Option<String>,
    /// The rule id; written as `id` and as `id_str`.
    pub id: u64,
}

impl Serialize for MatchingRule {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("MatchingRule", 3)?;
        s.serialize_field("tag", &self.tag)?;
        s.serialize_field("id", &self.id)?;
        s.serialize_field("id_str", &IdStr(self.id))?;
        s.end()
    }
}

/// Writes an id as a JSON string without allocating.
struct IdStr(u64);

impl Serialize for IdStr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// A rule object missing both `id` and `id_str`.
#[derive(Debug, thiserror::Error)]
#[error("rule object has no numeric id or id_str")]
pub struct MissingRuleId;

#[derive(Deserialize)]
struct IdentifiedRepr {
    value: String,
    #[serde(default)]
    tag: Option<String>,
    #[serde(default, deserialize_with = "sluice_model::ids::lenient_u64")]
    id: Option<u64>,
    #[serde(default, deserialize_with = "sluice_model::ids::lenient_u64")]
    id_str: Option<u64>,
}

impl TryFrom<IdentifiedRepr> for Rule {
    type Error = MissingRuleId;

    fn try_from(r: IdentifiedRepr) -> Result<Self, Self::Error> {
        Ok(Self {
            value: r.value,
            tag: r.tag,
            id: r.id_str.or(r.id).ok_or(MissingRuleId)?,
        })
    }
}

#[derive(Deserialize)]
struct MatchingRuleRepr {
    #[serde(default)]
    tag: Option<String>,
    #[serde(default, deserialize_with = "sluice_model::ids::lenient_u64")]
    id: Option<u64>,
    #[serde(default, deserialize_with = "sluice_model::ids::lenient_u64")]
    id_str: Option<u64>,
}

impl TryFrom<MatchingRuleRepr> for MatchingRule {
    type Error = MissingRuleId;

    fn try_from(r: MatchingRuleRepr) -> Result<Self, Self::Error> {
        Ok(Self {
            tag: r.tag,
            id: r.id_str.or(r.id).ok_or(MissingRuleId)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_object_has_exactly_four_keys_in_x_order() {
        let rule = Rule {
            value: "from:twitterdev".into(),
            tag: Some("tweetsfromtwitterdev123".into()),
            id: 735_163_830_813_134_848,
        };
        assert_eq!(
            crate::to_string(&rule),
            r#"{"value":"from:twitterdev","tag":"tweetsfromtwitterdev123","id":735163830813134848,"id_str":"735163830813134848"}"#
        );
        let untagged = Rule {
            value: "fish OR 🐟".into(),
            tag: None,
            id: 738_034_522_583_769_088,
        };
        assert_eq!(
            crate::to_string(&untagged),
            r#"{"value":"fish OR 🐟","tag":null,"id":738034522583769088,"id_str":"738034522583769088"}"#
        );
    }

    #[test]
    fn rule_objects_read_ids_from_numbers_or_strings() {
        let a: Rule =
            serde_json::from_str(r#"{"value":"a","id":734938587381145604}"#).expect("number id");
        assert_eq!(a.id, 734_938_587_381_145_604);
        assert_eq!(a.tag, None);
        let b: Rule = serde_json::from_str(
            r#"{"value":"a","tag":"t","id_str":"734938587381145604","extra":1}"#,
        )
        .expect("string id");
        assert_eq!(b.id, 734_938_587_381_145_604);
        assert!(serde_json::from_str::<Rule>(r#"{"value":"a"}"#).is_err());
    }

    #[test]
    fn matching_rule_entry_matches_x() {
        let entry = MatchingRule {
            tag: None,
            id: 1_128_017_341_835_464_704,
        };
        let json = crate::to_string(&entry);
        assert_eq!(
            json,
            r#"{"tag":null,"id":1128017341835464704,"id_str":"1128017341835464704"}"#
        );
        let back: MatchingRule = serde_json::from_str(&json).expect("reads back");
        assert_eq!(back, entry);
    }

    #[test]
    fn tags_are_written_with_wire_escaping() {
        let rule = RuleValue {
            value: "a".into(),
            tag: Some("x\u{2028}\"y\"".into()),
        };
        assert_eq!(
            crate::to_string(&rule),
            r#"{"value":"a","tag":"x\u2028\"y\""}"#
        );
    }
}
