//! The list, get-one and get-many responses (docs/compatibility.md §2.2–§2.4): `{"rules":[…],"sent":"…"}`,
//! each rule with exactly `value`, `tag`, `id` and `id_str`.

use serde::{Deserialize, Serialize};

use crate::rule::Rule;

/// `{"rules":[…],"sent":"…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulesResponse {
    /// The rules, oldest first for a list, in the order asked for get-many.
    pub rules: Vec<Rule>,
    /// When the response was produced, in the rules API format ([`crate::sent::rules_sent`]).
    pub sent: String,
}

impl RulesResponse {
    /// The response listing `rules`.
    pub fn new(rules: Vec<Rule>, sent: impl Into<String>) -> Self {
        Self {
            rules,
            sent: sent.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_get_one_example_byte_for_byte() {
        let response = RulesResponse::new(
            vec![Rule {
                value: "from:twitterdev".into(),
                tag: Some("tweetsfromtwitterdev123".into()),
                id: 735_163_830_813_134_848,
            }],
            "2016-06-01T15:52:37.341Z",
        );
        assert_eq!(
            crate::to_string(&response),
            r#"{"rules":[{"value":"from:twitterdev","tag":"tweetsfromtwitterdev123","id":735163830813134848,"id_str":"735163830813134848"}],"sent":"2016-06-01T15:52:37.341Z"}"#
        );
    }

    #[test]
    fn empty_lists_keep_the_rules_key() {
        let response = RulesResponse::new(Vec::new(), "2016-06-01T15:52:37.341Z");
        assert_eq!(
            crate::to_string(&response),
            r#"{"rules":[],"sent":"2016-06-01T15:52:37.341Z"}"#
        );
    }
}
