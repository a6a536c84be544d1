//! The validation endpoint's response (docs/compatibility.md §2.6):
//! `{"summary":{"valid":N,"not_valid":M},"detail":[…],"sent":"…"}`. Detail entries echo
//! only `value` and `tag` (no ids: nothing was created), and carry `message` only when the
//! rule is invalid.

use serde::{Deserialize, Serialize};

use crate::rule::RuleValue;

/// The whole validation response body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationResponse {
    /// Counts of valid and invalid rules.
    pub summary: ValidationSummary,
    /// One entry per submitted rule, in request order.
    pub detail: Vec<ValidationDetail>,
    /// When the response was produced, in the rules API format ([`crate::sent::rules_sent`]).
    pub sent: String,
}

/// `{"valid":N,"not_valid":M}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationSummary {
    /// Rules that passed validation.
    pub valid: usize,
    /// Rules that failed.
    pub not_valid: usize,
}

/// One rule's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationDetail {
    /// The submitted rule.
    pub rule: RuleValue,
    /// Whether it is valid.
    pub valid: bool,
    /// X's message for an invalid rule (with X's trailing newline); absent when valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl ValidationDetail {
    /// A rule that passed.
    pub fn valid(rule: RuleValue) -> Self {
        Self {
            rule,
            valid: true,
            message: None,
        }
    }

    /// A rule that failed with `message`.
    pub fn invalid(rule: RuleValue, message: impl Into<String>) -> Self {
        Self {
            rule,
            valid: false,
            message: Some(message.into()),
        }
    }
}

impl ValidationResponse {
    /// The response for `detail`, with the summary counted from it.
    pub fn new(detail: Vec<ValidationDetail>, sent: impl Into<String>) -> Self {
        let valid = detail.iter().filter(|d| d.valid).count();
        Self {
            summary: ValidationSummary {
                valid,
                not_valid: detail.len() - valid,
            },
            detail,
            sent: sent.into(),
        }
    }

    /// Whether every submitted rule is valid.
    pub fn all_valid(&self) -> bool {
        self.summary.not_valid == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(value: &str) -> RuleValue {
        RuleValue {
            value: value.into(),
            tag: None,
        }
    }

    #[test]
    fn matches_the_gnip4j_fixture_byte_for_byte() {
        let response = ValidationResponse::new(
            vec![ValidationDetail::invalid(
                rule("aaaaa OR"),
                "Cannot parse rule at '<EOF>' (position 9)\n",
            )],
            "2016-11-24T13:13:10.090Z",
        );
        assert_eq!(
            crate::to_string(&response),
            r#"{"summary":{"valid":0,"not_valid":1},"detail":[{"rule":{"value":"aaaaa OR","tag":null},"valid":false,"message":"Cannot parse rule at '<EOF>' (position 9)\n"}],"sent":"2016-11-24T13:13:10.090Z"}"#
        );
    }

    #[test]
    fn matches_the_spec_example_entries() {
        let response = ValidationResponse::new(
            vec![
                ValidationDetail::valid(rule("from:jack")),
                ValidationDetail::invalid(
                    rule("from:contains:heart"),
                    "Cannot parse rule at ':' (position 14)\n",
                ),
                ValidationDetail::invalid(
                    rule("(((\"#quotedhashtag\""),
                    "mismatched input 'EOF' expecting ')' (at position 20)\n\n",
                ),
            ],
            "2017-03-16T02:33:01.827Z",
        );
        assert!(!response.all_valid());
        assert_eq!(
            crate::to_string(&response),
            concat!(
                r#"{"summary":{"valid":1,"not_valid":2},"detail":["#,
                r#"{"rule":{"value":"from:jack","tag":null},"valid":true},"#,
                r#"{"rule":{"value":"from:contains:heart","tag":null},"valid":false,"message":"Cannot parse rule at ':' (position 14)\n"},"#,
                r##"{"rule":{"value":"(((\"#quotedhashtag\"","tag":null},"valid":false,"message":"mismatched input 'EOF' expecting ')' (at position 20)\n\n"}],"##,
                r#""sent":"2017-03-16T02:33:01.827Z"}"#
            )
        );
    }

    #[test]
    fn reads_back_what_it_writes() {
        let response = ValidationResponse::new(
            vec![ValidationDetail::valid(RuleValue {
                value: "cat".into(),
                tag: Some("pets".into()),
            })],
            "2017-03-16T02:33:01.827Z",
        );
        assert!(response.all_valid());
        let back: ValidationResponse =
            serde_json::from_slice(&crate::to_vec(&response)).expect("reads back");
        assert_eq!(back, response);
    }
}
