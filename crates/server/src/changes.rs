//! Every change to the node's state goes through one function per kind of change here:
//! commit to the store, update the live registry, and (in cluster mode) record the change
//! with the [`Cluster`](crate::cluster::Cluster) so that every other node applies it with
//! [`apply_replicated`]. Handlers (admin API, rules APIs, demo) call these and nothing else
//! to mutate state.
//!
//! Rules in a cluster: ids are Snowflake ids with a worker id per node, so they never
//! collide. A value stays unique per stream under concurrent adds on two nodes because the
//! backend records each rule under a key derived from (stream, value) with a
//! create-if-absent: the first add wins, and a node whose add lost adopts the winning rule
//! (drops its own, reports the value as an existing rule) — see [`add_rules`]. The rule cap
//! is checked twice: against the node's store, then by the backend against the stream's
//! rules on every node (adds on several nodes at once cannot pass it together); either
//! refusal is reported as [`StoreError::RuleLimit`], so the APIs answer both alike.

use std::sync::Arc;

use sluice_rules::Rule;
use sluice_store::{AddOutcome, NewRule, Product, StoreError, StoredRule, StoredStream};
use sluice_store::{StreamLimits, StreamRef};
use sluice_wire::RuleInput;

use crate::clock::now_ms;
use crate::cluster::{Change, ClusterError, RecordError, RuleRecord, StreamKey};
use crate::delivery::CloseReason;
use crate::registry::LiveStream;
use crate::state::AppState;

/// Why a change failed: the store refused or failed, or the cluster could not record it.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    /// The local store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The cluster backend.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

impl From<RecordError> for ChangeError {
    /// The cluster-wide cap refuses like the store's, so callers handle one rule limit.
    fn from(e: RecordError) -> Self {
        match e {
            RecordError::Unavailable(e) => ChangeError::Cluster(e),
            RecordError::RuleLimit {
                existing,
                adding,
                limit,
            } => ChangeError::Store(StoreError::RuleLimit {
                existing,
                adding,
                limit,
            }),
        }
    }
}

/// Records `change` with the cluster (nothing on a single node); a [`Change::AddRules`] is
/// held to the `max_rules` it carries cluster-wide.
async fn record(state: &AppState, change: Change) -> Result<Vec<StoredRule>, RecordError> {
    match &state.cluster {
        Some(cluster) => Ok(cluster.record(change).await?.existing_rules),
        None => Ok(Vec::new()),
    }
}

/// Creates an account (no-op if it exists); returns whether it was created.
pub async fn put_account(state: &AppState, account: &str) -> Result<bool, ChangeError> {
    let name = account.to_owned();
    let created = state
        .blocking(move |s| s.put_account(&name, now_ms()))
        .await?;
    record(
        state,
        Change::PutAccount {
            account: account.to_owned(),
        },
    )
    .await?;
    Ok(created)
}

/// Creates a basic-auth user or sets its password hash; returns whether it was created.
pub async fn put_user(
    state: &AppState,
    account: &str,
    username: &str,
    password_hash: String,
) -> Result<bool, ChangeError> {
    let (a, u, h) = (
        account.to_owned(),
        username.to_owned(),
        password_hash.clone(),
    );
    let created = state.blocking(move |s| s.put_user(&a, &u, &h)).await?;
    if !created {
        revoke_user(state, account, username);
    }
    record(
        state,
        Change::PutUser {
            account: account.to_owned(),
            username: username.to_owned(),
            password_hash,
        },
    )
    .await?;
    Ok(created)
}

/// Deletes a basic-auth user, closing its open streams; returns whether it existed.
pub async fn delete_user(
    state: &AppState,
    account: &str,
    username: &str,
) -> Result<bool, ChangeError> {
    let (a, u) = (account.to_owned(), username.to_owned());
    let existed = state.blocking(move |s| s.delete_user(&a, &u)).await?;
    if existed {
        revoke_user(state, account, username);
        record(
            state,
            Change::DeleteUser {
                account: account.to_owned(),
                username: username.to_owned(),
            },
        )
        .await?;
    }
    Ok(existed)
}

/// A user's password changed or the user is gone (the store says so already): verified
/// passwords are forgotten and the streams opened with the old credentials are closed.
fn revoke_user(state: &AppState, account: &str, username: &str) {
    state.passwords.forget_verified();
    let closed = state.sessions.revoke(account, username);
    if closed > 0 {
        tracing::info!(
            account,
            username,
            closed,
            "closed the streams of a user whose credentials changed"
        );
    }
}

/// Creates a stream or updates its limits, and makes it live; returns it and whether it
/// was created.
pub async fn put_stream(
    state: &AppState,
    key: &StreamRef,
    limits: StreamLimits,
) -> Result<(Arc<LiveStream>, bool), ChangeError> {
    let k = key.clone();
    let (stored, created) = state
        .blocking(move |s| s.put_stream(&k, limits, now_ms()))
        .await?;
    let live = state.registry.upsert(&stored);
    record(state, put_stream_change(key, limits)).await?;
    Ok((live, created))
}

fn put_stream_change(key: &StreamRef, limits: StreamLimits) -> Change {
    Change::PutStream {
        stream: StreamKey::of(key),
        max_connections: limits.max_connections,
        max_rules: limits.max_rules,
    }
}

/// The stream, created with `limits` if it does not exist (an existing stream keeps its
/// limits), and live.
pub async fn ensure_stream(
    state: &AppState,
    key: &StreamRef,
    limits: StreamLimits,
) -> Result<Arc<LiveStream>, ChangeError> {
    if let Some(live) = state.registry.get(key) {
        return Ok(live);
    }
    let k = key.clone();
    let existing = state.blocking(move |s| s.stream(&k)).await?;
    match existing {
        Some(stored) => Ok(state.registry.upsert(&stored)),
        None => Ok(put_stream(state, key, limits).await?.0),
    }
}

/// Deletes the account's streams with `label` (of `product`, or of every product) and
/// their rules, closing their connections with the operational message. Returns the
/// streams deleted.
pub async fn delete_streams(
    state: &AppState,
    account: &str,
    label: &str,
    product: Option<Product>,
) -> Result<Vec<StoredStream>, ChangeError> {
    let (a, l) = (account.to_owned(), label.to_owned());
    let deleted = state
        .blocking(move |s| s.delete_streams(&a, &l, product))
        .await?;
    for stored in &deleted {
        unregister(state, &stored.stream);
        record(
            state,
            Change::DeleteStream {
                stream: StreamKey::of(&stored.stream),
            },
        )
        .await?;
    }
    Ok(deleted)
}

fn unregister(state: &AppState, key: &StreamRef) {
    if let Some(live) = state.registry.remove(key) {
        live.connections
            .for_each(|c| c.outbox.close(CloseReason::Operational));
    }
}

/// Stores a Powerstream bearer token's hash for an account.
pub async fn add_token(
    state: &AppState,
    account: &str,
    hash: [u8; 32],
    prefix: &str,
) -> Result<(), ChangeError> {
    let (a, p) = (account.to_owned(), prefix.to_owned());
    state
        .blocking(move |s| s.add_token(&a, &hash, &p, now_ms()))
        .await?;
    record(
        state,
        Change::AddToken {
            account: account.to_owned(),
            hash_hex: to_hex(&hash),
            prefix: prefix.to_owned(),
        },
    )
    .await?;
    Ok(())
}

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
    let stream_id = live.id;
    let mut outcomes = state
        .blocking(move |store| store.add_rules(stream_id, &new_rules, max_rules, now_ms()))
        .await?;
    let created: Vec<RuleRecord> = outcomes
        .iter()
        .filter_map(|o| match o {
            AddOutcome::Created(rule) => Some(RuleRecord::from(rule)),
            AddOutcome::Existing(_) => None,
        })
        .collect();
    let mut winners = Vec::new();
    if !created.is_empty() && state.cluster.is_some() {
        let change = Change::AddRules {
            stream: StreamKey::of(&live.key),
            rules: created.clone(),
            max_rules: Some(max_rules),
        };
        match record(state, change).await {
            Ok(found) => winners = found,
            Err(e) => {
                // Not recorded (the backend failed, or the rules would pass the cap
                // counting the other nodes' rules): the other nodes would never hear of
                // these rules, so take them back (they never matched) and fail the request.
                let ids: Vec<u64> = created.iter().map(|r| r.id).collect();
                let undo = state
                    .blocking(move |s| s.delete_rules_by_ids(stream_id, &ids))
                    .await;
                if let Err(undo) = undo {
                    tracing::error!("taking back unrecorded rules failed: {undo}");
                }
                return Err(e.into());
            }
        }
    }
    // Committed (and recorded): in effect for matching before the caller answers. A value
    // another node won matches with the winner's rule (adopted below), never with ours.
    let added: Vec<_> = outcomes
        .iter()
        .zip(trees)
        .filter_map(|(outcome, tree)| match outcome {
            AddOutcome::Created(rule) if !winners.iter().any(|w| w.value == rule.value) => {
                Some((rule.id, tree, rule.tag.clone()))
            }
            _ => None,
        })
        .collect();
    if !added.is_empty() {
        // Publishing waits for matching in progress: off the async workers.
        let target = live.clone();
        state
            .blocking(move |_| target.rules.apply(&added, &[]))
            .await;
    }
    if !winners.is_empty() {
        adopt(state, live, &winners).await?;
        for outcome in &mut outcomes {
            if let AddOutcome::Created(mine) = outcome
                && let Some(winner) = winners.iter().find(|w| w.value == mine.value)
            {
                *outcome = AddOutcome::Existing(winner.clone());
            }
        }
    }
    Ok(outcomes)
}

/// Replaces this node's rules with the same values as `winners` by the winners.
async fn adopt(
    state: &AppState,
    live: &Arc<LiveStream>,
    winners: &[StoredRule],
) -> Result<(), StoreError> {
    let stream_id = live.id;
    let target = live.clone();
    let winners = winners.to_vec();
    state
        .blocking(move |s| {
            let mut removed = Vec::new();
            let mut added = Vec::new();
            for winner in winners {
                let lost = s.delete_rules_by_values(stream_id, &[winner.value.as_str()])?;
                removed.extend(lost.into_iter().flatten().map(|r| r.id));
                if let Some(tree) = insert_rule(s, stream_id, &winner)? {
                    added.push((winner.id, tree, winner.tag.clone()));
                }
            }
            target.rules.apply(&added, &removed);
            Ok(())
        })
        .await
}

/// Inserts a rule with its id and creation time (if the value is free); returns its
/// parsed form when it was inserted and parses.
fn insert_rule(
    s: &sluice_store::Store,
    stream_id: i64,
    rule: &StoredRule,
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
    // Like the loader at start: the PowerTrack dialect accepts every Powerstream rule.
    match sluice_rules::parse(&rule.value) {
        Ok(tree) => Ok(Some(tree)),
        Err(e) => {
            tracing::warn!(rule = rule.id, "replicated rule does not parse: {e}");
            Ok(None)
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
/// In cluster mode the rules stop matching only once the deletion is recorded: if
/// recording fails, the store gets the rules back and the node keeps matching them, like
/// the other nodes (the keys the backend did delete before failing come back through the
/// watcher as deletions, applied after this call releases the gate).
pub async fn delete_rules(
    state: &AppState,
    live: &Arc<LiveStream>,
    targets: RulesToDelete,
) -> Result<DeletedRules, ChangeError> {
    let _gate = live.rules_gate.lock().await;
    let stream_id = live.id;
    let deleted = state
        .blocking(move |store| {
            let by_id = store.delete_rules_by_ids(stream_id, &targets.ids)?;
            let values: Vec<&str> = targets.values.iter().map(String::as_str).collect();
            let by_value = store.delete_rules_by_values(stream_id, &values)?;
            Ok::<_, StoreError>(DeletedRules { by_id, by_value })
        })
        .await?;
    let rules: Vec<StoredRule> = deleted
        .by_id
        .iter()
        .chain(&deleted.by_value)
        .flatten()
        .cloned()
        .collect();
    if rules.is_empty() {
        return Ok(deleted);
    }
    let change = Change::DeleteRules {
        stream: StreamKey::of(&live.key),
        rules: rules.iter().map(RuleRecord::from).collect(),
    };
    if let Err(e) = record(state, change).await {
        put_back(state, stream_id, rules).await;
        return Err(e.into());
    }
    // Committed (and recorded): stop matching before answering.
    let removed: Vec<u64> = rules.iter().map(|r| r.id).collect();
    let target = live.clone();
    state
        .blocking(move |_| target.rules.apply(&[], &removed))
        .await;
    Ok(deleted)
}

/// Restores rules deleted from the store whose deletion could not be recorded (they
/// never stopped matching). Runs under the stream's rules gate.
async fn put_back(state: &AppState, stream_id: i64, rules: Vec<StoredRule>) {
    let restored = state
        .blocking(move |s| {
            rules
                .iter()
                .try_for_each(|rule| insert_rule(s, stream_id, rule).map(drop))
        })
        .await;
    if let Err(e) = restored {
        tracing::error!("restoring rules whose deletion was not recorded failed: {e}");
    }
}

/// Applies a change another node committed (cluster mode: the backend's watcher calls
/// this for every change it sees, its own included; applying is idempotent).
pub async fn apply_replicated(state: &AppState, change: Change) -> Result<(), StoreError> {
    match change {
        Change::PutAccount { account } => {
            state
                .blocking(move |s| s.put_account(&account, now_ms()))
                .await?;
        }
        Change::PutUser {
            account,
            username,
            password_hash,
        } => {
            let current = {
                let (a, u) = (account.clone(), username.clone());
                state.blocking(move |s| s.password_hash(&a, &u)).await?
            };
            if current.as_deref() != Some(password_hash.as_str()) {
                let (a, u) = (account.clone(), username.clone());
                state
                    .blocking(move |s| {
                        s.put_account(&a, now_ms())?;
                        s.put_user(&a, &u, &password_hash)
                    })
                    .await?;
                if current.is_some() {
                    revoke_user(state, &account, &username);
                }
            }
        }
        Change::DeleteUser { account, username } => {
            let (a, u) = (account.clone(), username.clone());
            if state.blocking(move |s| s.delete_user(&a, &u)).await? {
                revoke_user(state, &account, &username);
            }
        }
        Change::PutStream {
            stream,
            max_connections,
            max_rules,
        } => {
            let Some(key) = known_stream(&stream) else {
                return Ok(());
            };
            let limits = StreamLimits {
                max_connections,
                max_rules,
            };
            let stored = state
                .blocking(move |s| {
                    s.put_account(&key.account, now_ms())?;
                    s.put_stream(&key, limits, now_ms())
                })
                .await?
                .0;
            state.registry.upsert(&stored);
        }
        Change::DeleteStream { stream } => {
            let Some(key) = known_stream(&stream) else {
                return Ok(());
            };
            let k = key.clone();
            state
                .blocking(move |s| s.delete_streams(&k.account, &k.label, Some(k.product)))
                .await?;
            unregister(state, &key);
        }
        Change::AddRules { stream, rules, .. } => {
            let Some(live) = live_stream(state, &stream).await? else {
                return Ok(());
            };
            let winners: Vec<StoredRule> = rules.into_iter().map(StoredRule::from).collect();
            let _gate = live.rules_gate.lock().await;
            adopt_missing(state, &live, winners).await?;
        }
        Change::DeleteRules { stream, rules } => {
            let Some(key) = known_stream(&stream) else {
                return Ok(());
            };
            let Some(live) = state.registry.get(&key) else {
                return Ok(());
            };
            let _gate = live.rules_gate.lock().await;
            let ids: Vec<u64> = rules.iter().map(|r| r.id).collect();
            let target = live.clone();
            state
                .blocking(move |s| {
                    let deleted = s.delete_rules_by_ids(target.id, &ids)?;
                    let removed: Vec<u64> = deleted.into_iter().flatten().map(|r| r.id).collect();
                    if !removed.is_empty() {
                        target.rules.apply(&[], &removed);
                    }
                    Ok::<_, StoreError>(())
                })
                .await?;
        }
        Change::AddToken {
            account,
            hash_hex,
            prefix,
        } => {
            let Some(hash) = from_hex(&hash_hex) else {
                tracing::warn!(account, "replicated token hash is not hex");
                return Ok(());
            };
            state
                .blocking(move |s| {
                    if s.token_account(&hash)?.is_none() {
                        s.put_account(&account, now_ms())?;
                        s.add_token(&account, &hash, &prefix, now_ms())?;
                    }
                    Ok::<_, StoreError>(())
                })
                .await?;
        }
    }
    Ok(())
}

/// Like [`adopt`], but leaves rules this node already has with the same id alone.
async fn adopt_missing(
    state: &AppState,
    live: &Arc<LiveStream>,
    rules: Vec<StoredRule>,
) -> Result<(), StoreError> {
    let stream_id = live.id;
    let ids: Vec<u64> = rules.iter().map(|r| r.id).collect();
    let have = state
        .blocking(move |s| s.rules_by_ids(stream_id, &ids))
        .await?;
    let missing: Vec<StoredRule> = rules
        .into_iter()
        .filter(|r| !have.iter().any(|h| h.id == r.id))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    adopt(state, live, &missing).await
}

fn known_stream(stream: &StreamKey) -> Option<StreamRef> {
    let key = stream.to_ref();
    if key.is_none() {
        tracing::warn!(
            product = stream.product,
            "replicated change names an unknown product"
        );
    }
    key
}

/// The live stream a replicated change names, loaded from the store if only the store
/// has it.
async fn live_stream(
    state: &AppState,
    stream: &StreamKey,
) -> Result<Option<Arc<LiveStream>>, StoreError> {
    let Some(key) = known_stream(stream) else {
        return Ok(None);
    };
    if let Some(live) = state.registry.get(&key) {
        return Ok(Some(live));
    }
    let stored = state.blocking(move |s| s.stream(&key)).await?;
    Ok(stored.map(|stored| state.registry.upsert(&stored)))
}

fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

fn from_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_hashes_survive_hex() {
        let hash = [0u8, 1, 0xab, 0xff];
        assert_eq!(to_hex(&hash), "0001abff");
        assert_eq!(from_hex("0001abff").as_deref(), Some(&hash[..]));
        assert_eq!(from_hex("0g"), None);
        assert_eq!(from_hex("abc"), None);
    }
}
