//! The one rules service behind every rules API: check the submitted rules in the
//! product's dialect, add or delete them (or, for a dry run, say what that would do), list
//! them. It decides nothing about the wire: each dialect (`powertrack/rules.rs`,
//! `powerstream/rules.rs`) parses its request bodies into the inputs here and renders the
//! outcomes in its own response shapes.
//!
//! Adds are all or nothing: any invalid rule refuses the batch ([`AddOutcome::Invalid`]),
//! and so does the stream's rule cap ([`AddOutcome::OverCap`]). Changes go through
//! [`crate::changes`], so an acknowledged rule is durable, replicated and in effect for
//! the next post ingested.

use std::sync::Arc;

use sluice_rules::{Dialect, Rule, RuleError};
use sluice_store::{NewRule, StoreError, StoredRule};
use sluice_wire::RuleInput;

use super::error::ApiError;
use crate::changes::{self, ChangeError, DeletedRules, RuleToAdd, RulesToDelete};
use crate::clock::now_ms;
use crate::registry::LiveStream;
use crate::state::AppState;

/// What checking one submitted rule found. Both parts are always computed; each dialect
/// reports them its own way.
#[derive(Debug)]
pub struct Verdict {
    /// The parsed rule, or why the text is not a rule of the dialect.
    pub parsed: Result<Rule, RuleError>,
    /// The tag is longer than X allows.
    pub tag_too_long: bool,
}

impl Verdict {
    /// Whether the rule may be added.
    pub fn is_valid(&self) -> bool {
        self.parsed.is_ok() && !self.tag_too_long
    }

    /// Each problem of the rule as a v2 `details` line (the text's, then the tag's), as
    /// the `/2/` rules APIs list them; empty for a valid rule.
    pub fn v2_details(&self) -> Vec<String> {
        let mut details = Vec::new();
        if let Err(e) = &self.parsed {
            details.extend(
                e.problems()
                    .iter()
                    .map(|p| format!("{} (at position {}).", p.text(), p.position())),
            );
        }
        if self.tag_too_long {
            details.push(format!(
                "Tags cannot be longer than {} characters.",
                sluice_wire::add::MAX_TAG_CHARS
            ));
        }
        details
    }
}

/// The rules of one request with their verdicts, in the order submitted.
#[derive(Debug)]
pub struct Checked {
    /// The rules as submitted.
    pub rules: Vec<RuleInput>,
    /// One verdict per rule.
    pub verdicts: Vec<Verdict>,
}

/// Checks one rule in `dialect`: its text, then its tag.
pub fn check_rule(rule: &RuleInput, dialect: Dialect) -> Verdict {
    Verdict {
        parsed: sluice_rules::parse_with(&rule.value, dialect),
        tag_too_long: rule
            .tag
            .as_deref()
            .is_some_and(|tag| !sluice_wire::add::tag_within_limit(tag)),
    }
}

/// Checks every rule (off the async workers: a 5 MB body holds thousands), changing
/// nothing: what a validation request answers, and the first step of an add.
pub async fn validate(rules: Vec<RuleInput>, dialect: Dialect) -> Result<Checked, ApiError> {
    tokio::task::spawn_blocking(move || {
        let verdicts = rules.iter().map(|r| check_rule(r, dialect)).collect();
        Checked { rules, verdicts }
    })
    .await
    .map_err(ApiError::internal)
}

/// What an add did (or, for a dry run, would do).
#[derive(Debug)]
pub enum AddOutcome {
    /// Some rule is invalid: nothing was added.
    Invalid(Checked),
    /// The rules would take the stream past its cap: nothing was added.
    OverCap {
        /// The rules as submitted.
        rules: Vec<RuleInput>,
        /// Rules the stream has.
        existing: u64,
        /// Rules the request would add.
        adding: u64,
        /// The stream's cap.
        limit: u64,
    },
    /// Every rule was added, or named the existing rule with its value.
    Applied {
        /// The rules as submitted.
        rules: Vec<RuleInput>,
        /// Per rule: created (with its id), or the rule that already had its value.
        outcomes: Vec<sluice_store::AddOutcome>,
    },
}

/// Adds `rules` to `live`, all or nothing; with `dry_run`, says what it would do and
/// changes nothing (the rules it would create carry fresh ids that are never stored).
pub async fn add(
    state: &AppState,
    live: &Arc<LiveStream>,
    rules: Vec<RuleInput>,
    dialect: Dialect,
    dry_run: bool,
) -> Result<AddOutcome, ApiError> {
    let checked = validate(rules, dialect).await?;
    if !checked.verdicts.iter().all(Verdict::is_valid) {
        return Ok(AddOutcome::Invalid(checked));
    }
    let Checked { rules, verdicts } = checked;
    let trees: Vec<Rule> = verdicts.into_iter().filter_map(|v| v.parsed.ok()).collect();
    let to_add = RuleToAdd::paired(&rules, trees);
    let outcome = if dry_run {
        preview_add(state, live, to_add).await
    } else {
        changes::add_rules(state, live, to_add).await
    };
    match outcome {
        Ok(outcomes) => Ok(AddOutcome::Applied { rules, outcomes }),
        Err(ChangeError::Store(StoreError::RuleLimit {
            existing,
            adding,
            limit,
        })) => Ok(AddOutcome::OverCap {
            rules,
            existing,
            adding,
            limit,
        }),
        Err(e) => Err(e.into()),
    }
}

/// How one entry of a delete request names a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Named {
    /// By id.
    Id(u64),
    /// By exact value.
    Value(String),
    /// By nothing usable: it names no rule.
    Nothing,
}

/// Deletes the rules `named` (ids first, then values); per entry, in order, the rule
/// deleted or `None` when it named none. With `dry_run`, what it would find, deleting
/// nothing.
pub async fn delete(
    state: &AppState,
    live: &Arc<LiveStream>,
    named: &[Named],
    dry_run: bool,
) -> Result<Vec<Option<StoredRule>>, ApiError> {
    let mut targets = RulesToDelete::default();
    for n in named {
        match n {
            Named::Id(id) => targets.ids.push(*id),
            Named::Value(v) => targets.values.push(v.clone()),
            Named::Nothing => {}
        }
    }
    let found = if dry_run {
        preview_delete(state, live, targets).await?
    } else {
        changes::delete_rules(state, live, targets).await?
    };
    let mut by_id = found.by_id.into_iter();
    let mut by_value = found.by_value.into_iter();
    Ok(named
        .iter()
        .map(|n| match n {
            Named::Id(_) => by_id.next().flatten(),
            Named::Value(_) => by_value.next().flatten(),
            Named::Nothing => None,
        })
        .collect())
}

/// Every rule of `live`, oldest first.
pub async fn list(state: &AppState, live: &LiveStream) -> Result<Vec<StoredRule>, ApiError> {
    let stream_id = live.id;
    Ok(state.blocking(move |s| s.rules(stream_id)).await?)
}

/// The rules of `live` with these ids, in the order asked (unknown ids skipped).
pub async fn by_ids(
    state: &AppState,
    live: &LiveStream,
    ids: Vec<u64>,
) -> Result<Vec<StoredRule>, ApiError> {
    let stream_id = live.id;
    Ok(state
        .blocking(move |s| s.rules_by_ids(stream_id, &ids))
        .await?)
}

/// What adding `rules` would answer now, adding nothing (`dry_run`): the store's preview
/// of the add, the new rules with fresh ids that are never stored.
async fn preview_add(
    state: &AppState,
    live: &LiveStream,
    rules: Vec<RuleToAdd>,
) -> Result<Vec<sluice_store::AddOutcome>, ChangeError> {
    let new_rules: Vec<NewRule> = rules
        .into_iter()
        .map(|r| NewRule {
            id: state.ids.next_id(),
            value: r.value,
            tag: r.tag,
        })
        .collect();
    let (stream_id, max_rules) = (live.id, live.limits().max_rules);
    let now = now_ms();
    let outcomes = state
        .blocking(move |s| s.preview_add_rules(stream_id, &new_rules, max_rules, now))
        .await?;
    Ok(outcomes)
}

/// What deleting `targets` would find now, deleting nothing (`dry_run`).
async fn preview_delete(
    state: &AppState,
    live: &LiveStream,
    targets: RulesToDelete,
) -> Result<DeletedRules, ChangeError> {
    let stream_id = live.id;
    let (by_id, by_value) = state
        .blocking(move |s| {
            let values: Vec<&str> = targets.values.iter().map(String::as_str).collect();
            s.preview_delete_rules(stream_id, &targets.ids, &values)
        })
        .await?;
    Ok(DeletedRules { by_id, by_value })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(value: &str, tag: Option<&str>) -> RuleInput {
        RuleInput {
            value: value.into(),
            tag: tag.map(Into::into),
            id: None,
            id_str: None,
        }
    }

    #[test]
    fn verdicts_follow_the_dialect_and_check_the_tag_either_way() {
        let sample = input("cat sample:10", None);
        assert!(check_rule(&sample, Dialect::PowerTrack).is_valid());
        assert!(!check_rule(&sample, Dialect::Powerstream).is_valid());
        let long_tag = input("cat", Some(&"t".repeat(256)));
        let verdict = check_rule(&long_tag, Dialect::PowerTrack);
        assert!(verdict.parsed.is_ok() && verdict.tag_too_long && !verdict.is_valid());
        let both = check_rule(
            &input("cat sample:10", Some(&"t".repeat(256))),
            Dialect::Powerstream,
        );
        assert!(both.parsed.is_err() && both.tag_too_long);
    }
}
