//! The bodies of the X API v2 filtered stream's rules API (`/2/tweets/search/stream/rules`,
//! docs/compatibility.md §7.2): the one-operation request (`{"add":[…]}` or
//! `{"delete":{"ids":[…]}}` / `{"delete":{"values":[…]}}`) and the list, add and delete
//! responses.
//!
//! X's v2 conventions: rule ids are strings; a rule without a tag has no `tag` key; a
//! response with no rules has no `data` key; per-rule problems go in `errors` beside
//! `meta`.

use serde::{Deserialize, Serialize};

use crate::RuleInput;
use crate::error::InvalidJson;
use crate::object::{from_slice, objects};
use crate::v2::{RuleProblem, StreamRule};

/// What a `POST` asks for: exactly one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RulesChange {
    /// Add these rules.
    Add(Vec<RuleInput>),
    /// Delete the rules with these ids (as sent: strings that may not be ids at all).
    DeleteIds(Vec<String>),
    /// Delete the rules with these values.
    DeleteValues(Vec<String>),
    /// `{"delete":{}}`: no rule named (only meaningful with `delete_all=true`).
    DeleteNone,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    #[serde(default, deserialize_with = "some_rules")]
    add: Option<Vec<RuleInput>>,
    #[serde(default)]
    delete: Option<DeleteBody>,
}

fn some_rules<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<RuleInput>>, D::Error> {
    objects(d).map(Some)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteBody {
    #[serde(default)]
    ids: Option<Vec<String>>,
    #[serde(default)]
    values: Option<Vec<String>>,
}

impl RulesChange {
    /// Parses a `POST` body. Both `add` and `delete`, neither, or a `delete` naming both
    /// `ids` and `values` is ambiguous: [`InvalidJson`] with a message saying so.
    pub fn from_slice(body: &[u8]) -> Result<Self, InvalidJson> {
        use serde::de::Error as _;
        let body: Body = from_slice(body).map_err(InvalidJson)?;
        let refuse = |m: &str| Err(InvalidJson(serde_json::Error::custom(m)));
        match (body.add, body.delete) {
            (Some(add), None) => Ok(RulesChange::Add(add)),
            (None, Some(delete)) => match (delete.ids, delete.values) {
                (Some(ids), None) => Ok(RulesChange::DeleteIds(ids)),
                (None, Some(values)) => Ok(RulesChange::DeleteValues(values)),
                (None, None) => Ok(RulesChange::DeleteNone),
                (Some(_), Some(_)) => {
                    refuse("`delete` names rules by `ids` or by `values`, not both")
                }
            },
            (Some(_), Some(_)) => refuse("a request either adds or deletes rules, not both"),
            (None, None) => refuse("the body must have `add` or `delete`"),
        }
    }
}

/// `meta` of a list response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListMeta {
    /// When the response was made.
    pub sent: String,
    /// Rules in this page.
    pub result_count: usize,
    /// The `pagination_token` of the next page, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// `GET …/rules`: `{"data":[…],"meta":{…}}`, no `data` when there are no rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListResponse {
    /// The rules of the page, oldest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Vec<StreamRule>>,
    /// Counts and paging.
    pub meta: ListMeta,
}

impl ListResponse {
    /// A page of `rules`, with the token of the next page if any.
    pub fn new(rules: Vec<StreamRule>, next_token: Option<String>, sent: String) -> Self {
        Self {
            meta: ListMeta {
                sent,
                result_count: rules.len(),
                next_token,
            },
            data: (!rules.is_empty()).then_some(rules),
        }
    }
}

/// `meta.summary` of an add.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddSummary {
    /// Rules created.
    pub created: usize,
    /// Rules not created (duplicates, and every rule of a refused request).
    pub not_created: usize,
    /// Rules that are valid.
    pub valid: usize,
    /// Rules that are not.
    pub invalid: usize,
}

/// `meta.summary` of a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteSummary {
    /// Rules deleted.
    pub deleted: usize,
    /// Entries that named no rule.
    pub not_deleted: usize,
}

/// `meta` of an add or delete, with its summary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeMeta<S> {
    /// When the response was made.
    pub sent: String,
    /// What was done.
    pub summary: S,
}

/// The answer to an add or a delete: created rules in `data` (adds), counts in `meta`,
/// per-rule problems in `errors`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeResponse<S> {
    /// The rules created (adds only; absent when none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Vec<StreamRule>>,
    /// What was done.
    pub meta: ChangeMeta<S>,
    /// Why some rules were not created or deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ChangeProblem>,
}

/// A problem with one entry of an add or delete.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ChangeProblem {
    /// A duplicate or invalid rule of an add.
    Rule(RuleProblem),
    /// A delete entry that named no rule: `{"value":"<id or value>","title":"…",…}`.
    NotFound(Missing),
}

/// A delete entry that named no rule of the app.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Missing {
    /// The id or value as sent.
    pub value: String,
    /// What was wrong.
    pub detail: String,
    /// `Not Found Error`.
    pub title: String,
    /// The problem type URL.
    #[serde(rename = "type")]
    pub kind: String,
}

impl Missing {
    /// `value` (an id or a rule text) names no rule of the app.
    pub fn rule(value: impl Into<String>) -> Self {
        Self {
            value: value.into(),
            detail: "This rule does not exist.".to_owned(),
            title: "Not Found Error".to_owned(),
            kind: crate::v2::problem_type::RESOURCE_NOT_FOUND.to_owned(),
        }
    }
}

/// The answer to an add.
pub type AddResponse = ChangeResponse<AddSummary>;
/// The answer to a delete.
pub type DeleteResponse = ChangeResponse<DeleteSummary>;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn each_body_is_exactly_one_operation() {
        let parse = |body: &str| RulesChange::from_slice(body.as_bytes());
        assert!(matches!(
            parse(r#"{"add":[{"value":"cat","tag":"t"}]}"#),
            Ok(RulesChange::Add(rules)) if rules.len() == 1 && rules[0].tag.as_deref() == Some("t")
        ));
        assert_eq!(
            parse(r#"{"delete":{"ids":["1","x"]}}"#).unwrap(),
            RulesChange::DeleteIds(vec!["1".into(), "x".into()])
        );
        assert_eq!(
            parse(r#"{"delete":{"values":["cat"]}}"#).unwrap(),
            RulesChange::DeleteValues(vec!["cat".into()])
        );
        assert_eq!(parse(r#"{"delete":{}}"#).unwrap(), RulesChange::DeleteNone);
        for bad in [
            r#"{}"#,
            r#"{"add":[],"delete":{"ids":[]}}"#,
            r#"{"delete":{"ids":["1"],"values":["a"]}}"#,
            r#"{"rules":[{"value":"a"}]}"#,
            r#"{"add":[["cat","t"]]}"#,
            r#"{"add":{"value":"cat"}}"#,
            r#"{"delete":{"ids":[1]}}"#,
            r#"[]"#,
            r#"not json"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn responses_have_x_shapes() {
        let empty = ListResponse::new(Vec::new(), None, "s".into());
        assert_eq!(
            serde_json::to_value(&empty).unwrap(),
            json!({"meta":{"sent":"s","result_count":0}})
        );
        let rule = StreamRule {
            id: 7,
            value: "cat".into(),
            tag: None,
        };
        let page = ListResponse::new(vec![rule.clone()], Some("t".into()), "s".into());
        assert_eq!(
            serde_json::to_value(&page).unwrap(),
            json!({"data":[{"id":"7","value":"cat"}],
                   "meta":{"sent":"s","result_count":1,"next_token":"t"}})
        );
        let added = AddResponse {
            data: Some(vec![rule]),
            meta: ChangeMeta {
                sent: "s".into(),
                summary: AddSummary {
                    created: 1,
                    not_created: 1,
                    valid: 2,
                    invalid: 0,
                },
            },
            errors: vec![ChangeProblem::Rule(RuleProblem::duplicate("dog", 3))],
        };
        let v = serde_json::to_value(&added).unwrap();
        assert_eq!(v["errors"][0]["id"], "3");
        assert_eq!(v["errors"][0]["title"], "DuplicateRule");
        assert_eq!(v["meta"]["summary"]["not_created"], 1);
        let deleted = DeleteResponse {
            data: None,
            meta: ChangeMeta {
                sent: "s".into(),
                summary: DeleteSummary {
                    deleted: 0,
                    not_deleted: 1,
                },
            },
            errors: vec![ChangeProblem::NotFound(Missing::rule("9"))],
        };
        let v = serde_json::to_value(&deleted).unwrap();
        assert!(v.get("data").is_none());
        assert_eq!(v["errors"][0]["value"], "9");
    }
}
