//! Rule changes: adding rules to a stream (checked against its cap, and in a cluster against
//! every node's rules, adopting the rule another node won a value with) and deleting them
//! by id or value. Split from the other changes because a rule add is the one change with
//! outcomes per item (created, existing, adopted) and a cap to reserve; it is still built
//! as a [`Change`] and applied by [`apply`] like every other.

use super::*;

/// A rule to add: its text, tag and parsed form.
pub struct RuleToAdd {
    /// The rule text as the customer sent it.
    pub value: String,
    /// The tag.
    pub tag: Option<String>,
    /// The parsed rule.
    pub tree: Rule,
}

impl RuleToAdd {
    /// Pairs each submitted rule with its parsed form, in order: what both rules APIs
    /// (PowerTrack, Powerstream) hand to [`add_rules`] once every rule has parsed.
    pub fn paired(submitted: &[RuleInput], trees: Vec<Rule>) -> Vec<RuleToAdd> {
        submitted
            .iter()
            .zip(trees)
            .map(|(rule, tree)| RuleToAdd {
                value: rule.value.clone(),
                tag: rule.tag.clone(),
                tree,
            })
            .collect()
    }
}

/// Adds rules to a live stream under its rules gate: each either creates a rule (with a
/// new id) or names the rule that already has its value. All or nothing against the cap
/// ([`StoreError::RuleLimit`]), in cluster mode counting every node's rules. When this
/// returns, every created rule is in effect for matching on this node (and recorded for
/// the others).
///
/// In cluster mode the node's store is asked first what the add would do (a dry run under
/// the gate: the node's own cap and the values it has), the new rules are recorded with
/// the backend (which may refuse them against the cap counting every node's rules, or
/// answer that another node's rule holds a value already), and only then applied: the
/// node's own rules, and the winners of the values another node took.
pub async fn add_rules(
    state: &AppState,
    live: &Arc<LiveStream>,
    rules: Vec<RuleToAdd>,
) -> Result<Vec<AddOutcome>, ChangeError> {
    let _gate = live.rules_gate.lock().await;
    let (new_rules, trees): (Vec<NewRule>, Vec<Rule>) = rules
        .into_iter()
        .map(|r| {
            let new = NewRule {
                id: state.ids.next_id(),
                value: r.value,
                tag: r.tag,
            };
            (new, r.tree)
        })
        .unzip();
    let max_rules = live.limits().max_rules;
    let now = now_ms();
    let stream = StreamKey::of(&live.key);
    let records = |rules: &[NewRule]| -> Vec<RuleRecord> {
        rules
            .iter()
            .map(|r| RuleRecord {
                id: r.id,
                value: r.value.clone(),
                tag: r.tag.clone(),
                created_ms: now,
            })
            .collect()
    };
    if state.cluster.is_none() {
        let change = Change::AddRules {
            stream,
            rules: records(&new_rules),
            max_rules: Some(max_rules),
        };
        return Ok(apply_rules(state, live, change, trees).await?.outcomes);
    }
    add_recorded(state, live, stream, new_rules, trees, max_rules, now).await
}

/// [`add_rules`] in cluster mode (under the gate): a dry run against the node's store,
/// recorded with the backend, then applied.
async fn add_recorded(
    state: &AppState,
    live: &Arc<LiveStream>,
    stream: StreamKey,
    new_rules: Vec<NewRule>,
    trees: Vec<Rule>,
    max_rules: u64,
    now: i64,
) -> Result<Vec<AddOutcome>, ChangeError> {
    let stream_id = live.id;
    let mut outcomes = state
        .blocking(move |s| s.preview_add_rules(stream_id, &new_rules, max_rules, now))
        .await?;
    let mut created = Vec::new();
    let mut created_trees = Vec::new();
    for (outcome, tree) in outcomes.iter().zip(trees) {
        if let AddOutcome::Created(rule) = outcome {
            created.push(RuleRecord::from(rule));
            created_trees.push(tree);
        }
    }
    if created.is_empty() {
        return Ok(outcomes);
    }
    let change = Change::AddRules {
        stream: stream.clone(),
        rules: created.clone(),
        max_rules: Some(max_rules),
    };
    let winners = record(state, change).await?;
    // Ours, admitted by the backend: in one batch, held to no cap here (the node's was
    // checked above). A value another node won matches with the winner's rule, never with
    // ours.
    let (mut mine, mut mine_trees) = (Vec::new(), Vec::new());
    for (rule, tree) in created.into_iter().zip(created_trees) {
        if !winners.iter().any(|w| w.value == rule.value) {
            mine.push(rule);
            mine_trees.push(tree);
        }
    }
    let ours = Change::AddRules {
        stream: stream.clone(),
        rules: mine,
        max_rules: Some(u64::MAX),
    };
    apply_rules(state, live, ours, mine_trees).await?;
    if !winners.is_empty() {
        let theirs = Change::AddRules {
            stream,
            rules: winners.iter().map(RuleRecord::from).collect(),
            max_rules: None,
        };
        apply_rules(state, live, theirs, Vec::new()).await?;
    }
    for outcome in &mut outcomes {
        if let AddOutcome::Created(mine) = outcome
            && let Some(winner) = winners.iter().find(|w| w.value == mine.value)
        {
            *outcome = AddOutcome::Existing(winner.clone());
        }
    }
    Ok(outcomes)
}

/// [`apply`] for a rule change, under the stream's rules gate. `trees` are the parsed
/// forms of an add's rules, in order, when the caller has them (else each is parsed).
///
/// An add carrying a `max_rules` is a new add of this node held to that cap here: the
/// store creates each value's rule or names the one it has ([`Applied::outcomes`]). One
/// without is an add the backend holds (any node's): rules this node has (by id) are left
/// alone, and a rule whose value this node holds under another id replaces that rule.
pub(super) async fn apply_rules(
    state: &AppState,
    live: &Arc<LiveStream>,
    change: Change,
    trees: Vec<Rule>,
) -> Result<Applied, StoreError> {
    let mut applied = Applied::default();
    match change {
        Change::AddRules {
            rules,
            max_rules: Some(max_rules),
            ..
        } => {
            applied.outcomes = add_capped(state, live, rules, trees, max_rules).await?;
        }
        Change::AddRules { rules, .. } => {
            let rules = rules.into_iter().map(StoredRule::from).collect();
            let parsed = trees.into_iter().map(Some).collect();
            adopt_missing(state, live, rules, parsed).await?;
        }
        Change::DeleteRules { rules, .. } => {
            let ids: Vec<u64> = rules.iter().map(|r| r.id).collect();
            let (stream_id, target) = (live.id, live.clone());
            state
                .blocking_then(
                    move |s| s.delete_rules_by_ids(stream_id, &ids),
                    move |deleted| {
                        let removed: Vec<u64> =
                            deleted?.into_iter().flatten().map(|r| r.id).collect();
                        if !removed.is_empty() {
                            // Publishing waits for matching in progress: off the async
                            // workers.
                            target.rules.apply(&[], &removed);
                        }
                        Ok::<_, StoreError>(())
                    },
                )
                .await?;
        }
        _ => {}
    }
    Ok(applied)
}

/// A new add on a single node: all or nothing against `max_rules`, each created rule in
/// effect for matching before this returns.
async fn add_capped(
    state: &AppState,
    live: &Arc<LiveStream>,
    rules: Vec<RuleRecord>,
    trees: Vec<Rule>,
    max_rules: u64,
) -> Result<Vec<AddOutcome>, StoreError> {
    let created_ms = rules.first().map_or_else(now_ms, |r| r.created_ms);
    let new_rules: Vec<NewRule> = rules
        .into_iter()
        .map(|r| NewRule {
            id: r.id,
            value: r.value,
            tag: r.tag,
        })
        .collect();
    let (stream_id, target) = (live.id, live.clone());
    // One call: rules stored are published even if the request goes away meanwhile.
    state
        .blocking_then(
            move |s| s.add_rules(stream_id, &new_rules, max_rules, created_ms),
            move |outcomes| {
                let outcomes = outcomes?;
                let added = created(&outcomes, trees);
                if !added.is_empty() {
                    // Publishing waits for matching in progress.
                    target.rules.apply(&added, &[]);
                }
                Ok(outcomes)
            },
        )
        .await
}

/// The rules an add created, each with its parsed form (`trees`, in the add's order, or
/// parsed now), to publish to the matcher.
fn created(outcomes: &[AddOutcome], trees: Vec<Rule>) -> Vec<(u64, Rule, Option<String>)> {
    let mut trees = trees.into_iter().map(Some).collect::<Vec<_>>().into_iter();
    outcomes
        .iter()
        .filter_map(|outcome| {
            let tree = trees.next().flatten();
            match outcome {
                AddOutcome::Created(rule) => {
                    let tree = tree.or_else(|| parse_stored(rule))?;
                    Some((rule.id, tree, rule.tag.clone()))
                }
                AddOutcome::Existing(_) => None,
            }
        })
        .collect()
}

/// Applies rules the backend admitted: each this node lacks (by id) replaces the rule
/// holding its value here, if any. `trees` are their parsed forms where known.
async fn adopt_missing(
    state: &AppState,
    live: &Arc<LiveStream>,
    rules: Vec<StoredRule>,
    trees: Vec<Option<Rule>>,
) -> Result<(), StoreError> {
    let stream_id = live.id;
    let ids: Vec<u64> = rules.iter().map(|r| r.id).collect();
    let have = state
        .blocking(move |s| s.rules_by_ids(stream_id, &ids))
        .await?;
    let mut trees = trees.into_iter();
    let missing: Vec<(StoredRule, Option<Rule>)> = rules
        .into_iter()
        .map(|r| (r, trees.next().flatten()))
        .filter(|(r, _)| !have.iter().any(|h| h.id == r.id))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let target = live.clone();
    state
        .blocking_then(
            move |s| {
                let mut removed = Vec::new();
                let mut added = Vec::new();
                for (rule, tree) in missing {
                    let lost = s.delete_rules_by_values(stream_id, &[rule.value.as_str()])?;
                    removed.extend(lost.into_iter().flatten().map(|r| r.id));
                    if let Some(tree) = insert_rule(s, stream_id, &rule, tree)? {
                        added.push((rule.id, tree, rule.tag.clone()));
                    }
                }
                Ok((added, removed))
            },
            move |changed: Result<_, StoreError>| {
                let (added, removed) = changed?;
                // Publishing waits for matching in progress.
                target.rules.apply(&added, &removed);
                Ok(())
            },
        )
        .await
}

/// Inserts a rule with its id and creation time (if the value is free); returns its
/// parsed form (`tree`, or parsed now) when it was inserted and parses.
fn insert_rule(
    s: &Store,
    stream_id: i64,
    rule: &StoredRule,
    tree: Option<Rule>,
) -> Result<Option<Rule>, StoreError> {
    let new = NewRule {
        id: rule.id,
        value: rule.value.clone(),
        tag: rule.tag.clone(),
    };
    let outcome = s.add_rules(stream_id, &[new], u64::MAX, rule.created_ms)?;
    if !matches!(outcome.first(), Some(AddOutcome::Created(_))) {
        return Ok(None);
    }
    Ok(tree.or_else(|| parse_stored(rule)))
}

/// A rule's parsed form, like the loader at start: the PowerTrack dialect accepts every
/// Powerstream rule.
fn parse_stored(rule: &StoredRule) -> Option<Rule> {
    match sluice_rules::parse(&rule.value) {
        Ok(tree) => Some(tree),
        Err(e) => {
            tracing::warn!(rule = rule.id, "replicated rule does not parse: {e}");
            None
        }
    }
}

/// Which rules a delete names.
#[derive(Debug, Default)]
pub struct RulesToDelete {
    /// By id.
    pub ids: Vec<u64>,
    /// By exact value.
    pub values: Vec<String>,
}

/// What a delete found, in the order asked: the deleted rule, or `None` when nothing had
/// the id or value.
#[derive(Debug, Default)]
pub struct DeletedRules {
    /// Per id asked.
    pub by_id: Vec<Option<StoredRule>>,
    /// Per value asked.
    pub by_value: Vec<Option<StoredRule>>,
}

/// Deletes rules of a live stream under its rules gate (ids first, then values); when
/// this returns they no longer match on this node (and the deletion is recorded).
///
/// The rules a delete names are found in the node's store first (a dry run under the
/// gate); the deletion is recorded with the backend (cluster mode), and only then applied:
/// if recording fails, nothing was deleted here and the rules keep matching, like on the
/// other nodes (the keys the backend did delete before failing come back through the
/// backend as deletions, applied after this call releases the gate).
pub async fn delete_rules(
    state: &AppState,
    live: &Arc<LiveStream>,
    targets: RulesToDelete,
) -> Result<DeletedRules, ChangeError> {
    let _gate = live.rules_gate.lock().await;
    let stream_id = live.id;
    let (by_id, by_value) = state
        .blocking(move |store| {
            let values: Vec<&str> = targets.values.iter().map(String::as_str).collect();
            store.preview_delete_rules(stream_id, &targets.ids, &values)
        })
        .await?;
    let deleted = DeletedRules { by_id, by_value };
    let rules: Vec<RuleRecord> = deleted
        .by_id
        .iter()
        .chain(&deleted.by_value)
        .flatten()
        .map(RuleRecord::from)
        .collect();
    if rules.is_empty() {
        return Ok(deleted);
    }
    let change = Change::DeleteRules {
        stream: StreamKey::of(&live.key),
        rules,
    };
    record(state, change.clone()).await?;
    // Recorded: stop matching before answering.
    apply_rules(state, live, change, Vec::new()).await?;
    Ok(deleted)
}
