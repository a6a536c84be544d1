//! The add endpoint's response (docs/compatibility.md §2.1):
//! `{"summary":{"created":N,"not_created":M},"detail":[…],"sent":"…"}`.
//!
//! A created rule is echoed with its new `id`/`id_str`; a duplicate with the id of the
//! rule that already has the value and X's "already exists" message; rules of a refused
//! batch (422) without ids, with a `message` only when the rule itself is the problem.

use serde::{Deserialize, Serialize};

use crate::error::RULE_EXISTS_MESSAGE;
use crate::rule::{Rule, RuleValue};

/// Longest tag accepted, in characters (docs/compatibility.md ("Decisions"): tags ≤ 255).
pub const MAX_TAG_CHARS: usize = 255;

/// The `message` of a rule whose tag is over [`MAX_TAG_CHARS`] (X documents the limit but
/// not its message; this one follows the shape of X's rule messages, newline included).
pub const TAG_TOO_LONG_MESSAGE: &str = "Tags cannot be longer than 255 characters\n";

/// Whether `tag` is within [`MAX_TAG_CHARS`] characters (Unicode scalar values).
pub fn tag_within_limit(tag: &str) -> bool {
    tag.chars().nth(MAX_TAG_CHARS).is_none()
}

/// The whole add response body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddResponse {
    /// How many rules were created and how many were not.
    pub summary: AddSummary,
    /// One entry per submitted rule, in request order.
    pub detail: Vec<AddDetail>,
    /// When the response was produced, in the rules API format ([`crate::sent::rules_sent`]).
    pub sent: String,
}

/// `{"created":N,"not_created":M}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddSummary {
    /// Rules created by this request.
    pub created: usize,
    /// Rules not created (duplicates, or every rule of a refused batch).
    pub not_created: usize,
}

/// One submitted rule's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddDetail {
    /// The rule as echoed back: with an id when one exists, without one otherwise.
    pub rule: EchoedRule,
    /// Whether this request created it.
    pub created: bool,
    /// Why it was not created; absent when created and for the valid rules of a refused
    /// batch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A rule in an add response: `{"value","tag","id","id_str"}` when the rule exists,
/// `{"value","tag"}` when nothing was stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EchoedRule {
    /// A stored rule (created now, or the existing rule a duplicate names).
    Identified(Rule),
    /// A rule of a refused batch.
    Unidentified(RuleValue),
}

impl AddDetail {
    /// A rule this request created.
    pub fn created(rule: Rule) -> Self {
        Self {
            rule: EchoedRule::Identified(rule),
            created: true,
            message: None,
        }
    }

    /// A rule whose value already existed: `rule` carries the existing rule's id with the
    /// submitted value and tag (as X's 2018 example does).
    pub fn existing(rule: Rule) -> Self {
        Self {
            rule: EchoedRule::Identified(rule),
            created: false,
            message: Some(RULE_EXISTS_MESSAGE.to_owned()),
        }
    }

    /// A rule of a refused batch, with `message` when it is itself the reason.
    pub fn refused(rule: RuleValue, message: Option<String>) -> Self {
        Self {
            rule: EchoedRule::Unidentified(rule),
            created: false,
            message,
        }
    }
}

impl AddResponse {
    /// The response for `detail`, with the summary counted from it.
    pub fn new(detail: Vec<AddDetail>, sent: impl Into<String>) -> Self {
        let created = detail.iter().filter(|d| d.created).count();
        Self {
            summary: AddSummary {
                created,
                not_created: detail.len() - created,
            },
            detail,
            sent: sent.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(v: &str, tag: Option<&str>) -> RuleValue {
        RuleValue {
            value: v.into(),
            tag: tag.map(Into::into),
        }
    }

    #[test]
    fn duplicate_matches_the_2018_example_byte_for_byte() {
        let response = AddResponse::new(
            vec![AddDetail::existing(Rule {
                value: "#TwitterData".into(),
                tag: Some("tagtextB".into()),
                id: 961_664_522_481_119_232,
            })],
            "2018-02-08T18:14:23.691Z",
        );
        assert_eq!(
            crate::to_string(&response),
            r##"{"summary":{"created":0,"not_created":1},"detail":[{"rule":{"value":"#TwitterData","tag":"tagtextB","id":961664522481119232,"id_str":"961664522481119232"},"created":false,"message":"A rule with this value already exists"}],"sent":"2018-02-08T18:14:23.691Z"}"##
        );
    }

    #[test]
    fn refused_batch_matches_the_422_example_byte_for_byte() {
        let response = AddResponse::new(
            vec![
                AddDetail::refused(
                    value("streaming gnip contains:$twtr", None),
                    Some("no viable alternative at input '$twtr' (at position 25)\n".into()),
                ),
                AddDetail::refused(value("streaming gnip contains:\"$twtr\"", None), None),
            ],
            "2016-06-01T15:41:27.451Z",
        );
        assert_eq!(
            crate::to_string(&response),
            r#"{"summary":{"created":0,"not_created":2},"detail":[{"rule":{"value":"streaming gnip contains:$twtr","tag":null},"created":false,"message":"no viable alternative at input '$twtr' (at position 25)\n"},{"rule":{"value":"streaming gnip contains:\"$twtr\"","tag":null},"created":false}],"sent":"2016-06-01T15:41:27.451Z"}"#
        );
    }

    #[test]
    fn created_rules_carry_id_and_id_str_and_read_back() {
        let response = AddResponse::new(
            vec![AddDetail::created(Rule {
                value: "robot OR 🤖".into(),
                tag: None,
                id: 734_861_971_116_285_952,
            })],
            "2016-05-23T21:42:01.661Z",
        );
        let json = crate::to_string(&response);
        assert_eq!(
            json,
            r#"{"summary":{"created":1,"not_created":0},"detail":[{"rule":{"value":"robot OR 🤖","tag":null,"id":734861971116285952,"id_str":"734861971116285952"},"created":true}],"sent":"2016-05-23T21:42:01.661Z"}"#
        );
        let back: AddResponse = serde_json::from_str(&json).expect("reads back");
        assert_eq!(back, response);
    }

    #[test]
    fn tag_limit_counts_characters() {
        assert!(tag_within_limit(&"é".repeat(255)));
        assert!(!tag_within_limit(&"a".repeat(256)));
    }
}
