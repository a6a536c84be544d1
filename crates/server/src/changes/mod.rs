//! Every change to the node's state is a [`Change`], and one function applies every
//! change: [`apply`] (store, live registry, sessions; idempotent). Handlers (admin API,
//! rules APIs, demo) call the functions here, one per kind of change, and nothing else to
//! mutate state; each builds the change and hands it to the source of truth:
//! - on a single node the source of truth is the SQLite store: the change is applied, and
//!   that is all;
//! - in cluster mode it is the backend (the [`Cluster`](crate::cluster::Cluster)): the
//!   change is recorded there first, then applied to this node with [`apply`]. The
//!   backend delivers it back later (and to every other node), where [`apply`] finds it
//!   applied already. A change the backend refuses or cannot record changes nothing here.
//!
//! What a change answers (was the account created, which rules did a delete find) is read
//! from the node's store before recording, or from [`apply`] itself, under a gate the
//! backend's deliveries also take ([`crate::state::Shared`]'s changes gate, a stream's rules
//! gate), so a change this node records is applied here before any later one the backend
//! delivers.
//!
//! Rules in a cluster: ids are Snowflake ids with a worker id per node, so they never
//! collide. A value stays unique per stream under concurrent adds on two nodes because the
//! backend records each rule under a key derived from (stream, value) with a
//! create-if-absent: the first add wins, and a node whose add lost adopts the winning rule
//! (applies the winning rule instead of its own, reports the value as an existing rule) —
//! see [`add_rules`]. The rule cap is checked twice: against the node's store (a dry run),
//! then by the backend against the stream's rules on every node, with the `max_rules` the
//! change carries (adds on several nodes at once cannot pass it together); either refusal
//! is reported as [`StoreError::RuleLimit`], so the APIs answer both alike.

use std::sync::Arc;

use sluice_rules::Rule;
use sluice_store::{AddOutcome, NewRule, Product, Store, StoreError, StoredRule, StoredStream};
use sluice_store::{AppLimits, StoredApp, StreamLimits, StreamRef};
use sluice_wire::RuleInput;

use crate::clock::now_ms;
use crate::cluster::{Change, ClusterError, RecordError, RuleRecord, StreamKey};
use crate::delivery::CloseReason;
use crate::registry::LiveStream;
use crate::state::AppState;

mod removals;
mod rules;
pub use removals::{delete_account, delete_app, revoke_token};
use rules::apply_rules;
pub use rules::{DeletedRules, RuleToAdd, RulesToDelete, add_rules, delete_rules};

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

/// What applying a change did: what the function that made the change answers with.
#[derive(Default)]
pub struct Applied {
    /// An account, user or stream put: whether it was created (it did not exist). A user,
    /// account, token or app deleted: whether it existed.
    pub changed: bool,
    /// A stream put: the live stream.
    pub live: Option<Arc<LiveStream>>,
    /// A stream deleted: the streams the store deleted.
    pub deleted_streams: Vec<StoredStream>,
    /// Rules added under a cap (a single node's add): per rule, created or the existing
    /// rule with its value.
    pub outcomes: Vec<AddOutcome>,
}

/// Applies a change to this node: its store, its live registry and matcher, the sessions of
/// a user whose credentials changed. Every change goes through here: this node's own (a
/// single node's, or one this node has just recorded with the backend) and every change
/// the backend delivers. Applying a change again changes nothing.
pub async fn apply(state: &AppState, change: Change) -> Result<Applied, StoreError> {
    match change {
        Change::AddRules { ref stream, .. } => {
            let Some(live) = live_stream(state, stream).await? else {
                return Ok(Applied::default());
            };
            let _gate = live.rules_gate.lock().await;
            apply_rules(state, &live, change, Vec::new()).await
        }
        Change::DeleteRules { ref stream, .. } => {
            let Some(live) = known_stream(stream).and_then(|key| state.registry.get(&key)) else {
                return Ok(Applied::default());
            };
            let _gate = live.rules_gate.lock().await;
            apply_rules(state, &live, change, Vec::new()).await
        }
        other => {
            let _gate = state.changes_gate.lock().await;
            apply_locked(state, other).await
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

/// A change to accounts, users, streams or tokens made by this node: recorded with the
/// source of truth, then applied. The caller holds the changes gate.
async fn commit(state: &AppState, change: Change) -> Result<Applied, ChangeError> {
    record(state, change.clone()).await?;
    Ok(apply_locked(state, change).await?)
}

/// Refuses a change naming an account this node does not have (the store's answer).
async fn require_account(state: &AppState, account: &str) -> Result<(), StoreError> {
    let name = account.to_owned();
    if state.blocking(move |s| s.account_exists(&name)).await? {
        Ok(())
    } else {
        Err(StoreError::NoSuchAccount(account.to_owned()))
    }
}

/// Creates an account (no-op if it exists); returns whether it was created.
pub async fn put_account(state: &AppState, account: &str) -> Result<bool, ChangeError> {
    let _gate = state.changes_gate.lock().await;
    let change = Change::PutAccount {
        account: account.to_owned(),
    };
    Ok(commit(state, change).await?.changed)
}

/// Creates a basic-auth user or sets its password hash; returns whether it was created.
pub async fn put_user(
    state: &AppState,
    account: &str,
    username: &str,
    password_hash: String,
) -> Result<bool, ChangeError> {
    let _gate = state.changes_gate.lock().await;
    require_account(state, account).await?;
    let change = Change::PutUser {
        account: account.to_owned(),
        username: username.to_owned(),
        password_hash,
    };
    Ok(commit(state, change).await?.changed)
}

/// Deletes a basic-auth user, closing its open streams; returns whether it existed.
pub async fn delete_user(
    state: &AppState,
    account: &str,
    username: &str,
) -> Result<bool, ChangeError> {
    let _gate = state.changes_gate.lock().await;
    let (a, u) = (account.to_owned(), username.to_owned());
    if state
        .blocking(move |s| s.password_hash(&a, &u))
        .await?
        .is_none()
    {
        return Ok(false);
    }
    let change = Change::DeleteUser {
        account: account.to_owned(),
        username: username.to_owned(),
    };
    Ok(commit(state, change).await?.changed)
}

/// A user's password changed or the user is gone (the store says so already): verified
/// passwords are forgotten and the streams opened with the old credentials are closed.
fn revoke_user(state: &AppState, account: &str, username: &str) {
    state.passwords.forget_verified();
    let closed = state
        .sessions
        .revoke(&crate::sessions::Credential::user(account, username));
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
    let _gate = state.changes_gate.lock().await;
    require_account(state, &key.account).await?;
    let change = Change::PutStream {
        stream: StreamKey::of(key),
        max_connections: limits.max_connections,
        max_rules: limits.max_rules,
    };
    let applied = commit(state, change).await?;
    let live = applied
        .live
        .expect("a stream this node names has a known product");
    Ok((live, applied.changed))
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
    let _gate = state.changes_gate.lock().await;
    let a = account.to_owned();
    let doomed: Vec<StoredStream> = state
        .blocking(move |s| s.streams(&a))
        .await?
        .into_iter()
        .filter(|s| s.stream.label == label && product.is_none_or(|p| p == s.stream.product))
        .collect();
    let mut deleted = Vec::with_capacity(doomed.len());
    for stored in doomed {
        let change = Change::DeleteStream {
            stream: StreamKey::of(&stored.stream),
        };
        deleted.extend(commit(state, change).await?.deleted_streams);
    }
    Ok(deleted)
}

fn unregister(state: &AppState, key: &StreamRef) {
    if let Some(live) = state.registry.remove(key) {
        live.connections
            .for_each(|c| c.outbox.close(CloseReason::Operational));
    }
}

/// Stores a Powerstream bearer token's hash for an account, with the operator's label.
pub async fn add_token(
    state: &AppState,
    account: &str,
    hash: [u8; 32],
    prefix: &str,
    label: Option<&str>,
) -> Result<(), ChangeError> {
    let _gate = state.changes_gate.lock().await;
    require_account(state, account).await?;
    let change = Change::AddToken {
        account: account.to_owned(),
        hash_hex: to_hex(&hash),
        prefix: prefix.to_owned(),
        label: label.map(str::to_owned),
    };
    commit(state, change).await?;
    Ok(())
}

/// Stores a v2 app of an account (its secrets only as hashes).
pub async fn add_app(state: &AppState, app: &StoredApp) -> Result<(), ChangeError> {
    let _gate = state.changes_gate.lock().await;
    require_account(state, &app.account).await?;
    let change = Change::AddApp {
        account: app.account.clone(),
        app_id: app.id.clone(),
        name: app.name.clone(),
        consumer_key: app.consumer_key.clone(),
        consumer_secret_hash_hex: to_hex(&app.consumer_secret_hash),
        bearer_hash_hex: to_hex(&app.bearer_hash),
    };
    commit(state, change).await?;
    Ok(())
}

/// Sets an app's limits and applies them to the app's existing v2 streams at once (rule
/// caps and connection caps; the rule length is checked on each add). Returns false when
/// the account has no such app.
pub async fn set_app_limits(
    state: &AppState,
    account: &str,
    app_id: &str,
    limits: AppLimits,
) -> Result<bool, ChangeError> {
    let _gate = state.changes_gate.lock().await;
    let id = app_id.to_owned();
    let app = state.blocking(move |s| s.app(&id)).await?;
    if app.is_none_or(|app| app.account != account) {
        return Ok(false);
    }
    let change = Change::PutAppLimits {
        account: account.to_owned(),
        app_id: app_id.to_owned(),
        max_rules: limits.max_rules,
        max_rule_chars: limits.max_rule_chars,
        max_connections: limits.max_connections,
    };
    Ok(commit(state, change).await?.changed)
}

/// [`apply`] for a change to accounts, users, streams, tokens or apps, under the changes gate.
///
/// Long on purpose: one arm per kind of change, so what applying each does (store, live
/// registry, sessions) reads in one place, the one place every change is applied.
async fn apply_locked(state: &AppState, change: Change) -> Result<Applied, StoreError> {
    let mut applied = Applied::default();
    match change {
        Change::PutAccount { account } => {
            applied.changed = state
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
            applied.changed = current.is_none();
        }
        Change::DeleteUser { account, username } => {
            let (a, u) = (account.clone(), username.clone());
            applied.changed = state.blocking(move |s| s.delete_user(&a, &u)).await?;
            if applied.changed {
                revoke_user(state, &account, &username);
            }
        }
        Change::PutStream {
            stream,
            max_connections,
            max_rules,
        } => {
            let Some(key) = known_stream(&stream) else {
                return Ok(applied);
            };
            let limits = StreamLimits {
                max_connections,
                max_rules,
            };
            let (stored, created) = state
                .blocking(move |s| {
                    s.put_account(&key.account, now_ms())?;
                    s.put_stream(&key, limits, now_ms())
                })
                .await?;
            applied.live = Some(state.registry.upsert(&stored));
            applied.changed = created;
        }
        Change::DeleteStream { stream } => {
            let Some(key) = known_stream(&stream) else {
                return Ok(applied);
            };
            let k = key.clone();
            applied.deleted_streams = state
                .blocking(move |s| s.delete_streams(&k.account, &k.label, Some(k.product)))
                .await?;
            unregister(state, &key);
        }
        Change::AddToken {
            account,
            hash_hex,
            prefix,
            label,
        } => {
            let Some(hash) = from_hex(&hash_hex) else {
                tracing::warn!(account, "replicated token hash is not hex");
                return Ok(applied);
            };
            state
                .blocking(move |s| {
                    if s.token_account(&hash)?.is_none() {
                        s.put_account(&account, now_ms())?;
                        s.add_token(&account, &hash, &prefix, now_ms())?;
                        s.set_token_label(&hash, label.as_deref())?;
                    }
                    Ok::<_, StoreError>(())
                })
                .await?;
        }
        Change::AddApp {
            account,
            app_id,
            name,
            consumer_key,
            consumer_secret_hash_hex,
            bearer_hash_hex,
        } => {
            let (Some(consumer_secret_hash), Some(bearer_hash)) = (
                from_hex(&consumer_secret_hash_hex),
                from_hex(&bearer_hash_hex),
            ) else {
                tracing::warn!(account, "replicated app hashes are not hex");
                return Ok(applied);
            };
            let app = StoredApp {
                id: app_id,
                account,
                name,
                consumer_key,
                consumer_secret_hash,
                bearer_hash,
                created_ms: now_ms(),
                limits: AppLimits::default(),
            };
            applied.changed = state
                .blocking(move |s| {
                    s.put_account(&app.account, now_ms())?;
                    s.add_app(&app)
                })
                .await?;
        }
        Change::PutAppLimits {
            account,
            app_id,
            max_rules,
            max_rule_chars,
            max_connections,
        } => {
            let limits = AppLimits {
                max_rules,
                max_rule_chars,
                max_connections,
            };
            let id = app_id.clone();
            let Some(app) = state
                .blocking(move |s| {
                    s.set_app_limits(&id, limits)?;
                    s.app(&id)
                })
                .await?
            else {
                tracing::warn!(account, app_id, "limits for an unknown app");
                return Ok(applied);
            };
            applied.changed = true;
            for product in Product::V2 {
                let key = app.stream(product);
                let limits = app.stream_limits(product);
                let stored = state
                    .blocking(move |s| match s.stream(&key)? {
                        Some(_) => s.put_stream(&key, limits, now_ms()).map(Some),
                        None => Ok(None),
                    })
                    .await?;
                if let Some((stored, _)) = stored {
                    state.registry.upsert(&stored);
                }
            }
        }
        Change::DeleteAccount { account } => {
            return removals::apply_delete_account(state, account).await;
        }
        Change::RevokeToken { hash_hex } => {
            return removals::apply_revoke_token(state, &hash_hex).await;
        }
        Change::DeleteApp { app_id } => return removals::apply_delete_app(state, app_id).await,
        Change::AddRules { .. } | Change::DeleteRules { .. } => {
            unreachable!("rule changes are applied under their stream's rules gate")
        }
    }
    Ok(applied)
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
