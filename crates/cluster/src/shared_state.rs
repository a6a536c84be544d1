//! The shared state in a JetStream KV bucket: one key per account, user, stream, rule (per
//! stream and value) and token, whose value is the [`Change`] that made it. Recording a
//! change writes its key; every node watches the bucket from the start (last value per
//! key, then every update) and applies what it sees to its store and registry. The bucket
//! also holds each stream's rule count ([`crate::rule_cap`]), which rule adds and deletes
//! keep and watchers pass over.

use std::collections::HashMap;

use async_nats::jetstream;
use async_nats::jetstream::kv::{self, CreateErrorKind, Operation};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use sluice_server::cluster::{
    Change, ClusterError, ClusterNode, RecordError, Recorded, RuleRecord, StreamKey,
};
use sluice_server::telemetry;
use sluice_store::StoredRule;

use crate::names::{
    COUNT_PREFIX, STATE_BUCKET, account_key, app_key, app_limits_key, rule_key, stream_key,
    token_key, user_key,
};
use crate::removals;
use crate::rule_cap;
use crate::rule_entry::{RuleEntry, rule_at};

/// Opens (creating if missing) the state bucket.
pub async fn bucket(js: &jetstream::Context) -> anyhow::Result<kv::Store> {
    crate::kv_bucket::open(
        js,
        STATE_BUCKET,
        "sluice accounts, users, streams, rules and tokens",
        std::time::Duration::ZERO,
    )
    .await
}

/// How many rule keys one change reads, writes or deletes at once: enough to hide the
/// round trips of a large batch, few enough not to flood the server.
const CONCURRENT_KEYS: usize = 64;

/// Attempts at creating a rule key that keeps being deleted right after another node
/// created it, before giving up.
const CREATE_ATTEMPTS: u32 = 10;

fn cluster_error(what: &str, e: impl std::fmt::Display) -> ClusterError {
    ClusterError(format!("{what}: {e}"))
}

fn json<T: Serialize>(value: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(value).expect("changes serialize to JSON"))
}

/// Writes a committed change to the bucket (see [`sluice_server::cluster::Cluster::record`]);
/// `client` is the connection the bucket is used over (counting a stream's rules reads
/// them with a consumer of its own); a [`Change::AddRules`] is capped by the `max_rules`
/// it carries (`None`: no cap).
pub async fn record(
    kv: &kv::Store,
    client: &async_nats::Client,
    change: Change,
) -> Result<Recorded, RecordError> {
    let mut recorded = Recorded::default();
    match &change {
        Change::PutAccount { account } => put(kv, account_key(account), &change).await?,
        Change::PutUser {
            account, username, ..
        } => put(kv, user_key(account, username), &change).await?,
        Change::DeleteUser { account, username } => kv
            .delete(user_key(account, username))
            .await
            .map_err(|e| cluster_error("deleting a user", e))?,
        Change::PutStream { stream, .. } => put(kv, stream_key(stream), &change).await?,
        Change::AddToken { hash_hex, .. } => put(kv, token_key(hash_hex), &change).await?,
        Change::AddApp { app_id, .. } => put(kv, app_key(app_id), &change).await?,
        Change::PutAppLimits { app_id, .. } => {
            put(kv, app_limits_key(app_id), &change).await?;
        }
        Change::DeleteStream { stream } => removals::delete_stream(kv, client, stream).await?,
        Change::DeleteAccount { account } => {
            removals::delete_account(kv, client, account).await?;
        }
        Change::RevokeToken { hash_hex } => kv
            .delete(token_key(hash_hex))
            .await
            .map_err(|e| cluster_error("revoking a token", e))?,
        Change::DeleteApp { app_id } => removals::delete_app(kv, client, app_id).await?,
        Change::AddRules {
            stream,
            rules,
            max_rules,
        } => {
            let keys: Vec<String> = rules.iter().map(|r| rule_key(stream, &r.value)).collect();
            let cap = max_rules.unwrap_or(u64::MAX);
            let reserved = rule_cap::reserve(kv, client, stream, &keys, cap).await?;
            let written = create_rules(kv, stream, rules, &keys, &reserved).await;
            // A write that failed may still have been stored: count it (too high is safe).
            let created = written.created + written.failures;
            if let Err(e) = rule_cap::settle(kv, stream, &reserved, created).await {
                // The reservation stays until a recount finds it expired.
                tracing::warn!("settling a rule count: {e}");
            }
            if let Some(e) = written.failed {
                return Err(e.into());
            }
            recorded.existing_rules = written.existing;
        }
        Change::DeleteRules { stream, rules } => {
            let deleted = delete_rules(kv, stream, rules).await?;
            if let Err(e) = rule_cap::release(kv, stream, deleted.epoch, deleted.deleted).await {
                // The count stays too high until a recount.
                tracing::warn!("releasing rule count slots: {e}");
            }
        }
    }
    Ok(recorded)
}

/// What [`create_rules`] did.
#[derive(Debug, Default)]
struct Created {
    /// Rule keys this call created (the count's share of the add).
    created: u64,
    /// Rules that held some of the values already, which win over ours, in the add's
    /// order.
    existing: Vec<StoredRule>,
    /// Creates that failed: each may still have been stored (a timeout).
    failures: u64,
    /// The first failure, if any (the other keys were still tried).
    failed: Option<ClusterError>,
}

/// How creating one rule key went.
enum Outcome {
    /// This call created it.
    Created,
    /// This rule already held it (found by the reservation's recount).
    Ours,
    /// Another rule holds the value.
    Taken(RuleRecord),
}

/// Creates the rule keys of an add that [`rule_cap::reserve`] made room for, a bounded
/// number at a time.
async fn create_rules(
    kv: &kv::Store,
    stream: &StreamKey,
    rules: &[RuleRecord],
    keys: &[String],
    reserved: &rule_cap::Reserved,
) -> Created {
    let creates: Vec<_> = rules
        .iter()
        .zip(keys)
        .enumerate()
        .map(|(i, (rule, key))| {
            let taken = reserved.taken.iter().find(|t| t.index == i);
            create_unless_taken(kv, stream, rule, key, taken)
        })
        .collect();
    let outcomes: Vec<Result<Outcome, ClusterError>> = futures_util::stream::iter(creates)
        .buffered(CONCURRENT_KEYS)
        .collect()
        .await;
    let mut result = Created::default();
    for outcome in outcomes {
        match outcome {
            Ok(Outcome::Created) => result.created += 1,
            Ok(Outcome::Ours) => {}
            Ok(Outcome::Taken(holder)) => result.existing.push(StoredRule::from(holder)),
            Err(e) => {
                result.failures += 1;
                result.failed.get_or_insert(e);
            }
        }
    }
    result
}

/// Creates one rule key unless the reservation found it `taken`.
async fn create_unless_taken(
    kv: &kv::Store,
    stream: &StreamKey,
    rule: &RuleRecord,
    key: &str,
    taken: Option<&rule_cap::Taken>,
) -> Result<Outcome, ClusterError> {
    match taken {
        Some(taken) if taken.rule.id == rule.id => Ok(Outcome::Ours),
        Some(taken) => Ok(Outcome::Taken(taken.rule.clone())),
        None => create_rule(kv, stream, rule, key).await,
    }
}

/// Creates one rule key unless another rule holds the value.
async fn create_rule(
    kv: &kv::Store,
    stream: &StreamKey,
    rule: &RuleRecord,
    key: &str,
) -> Result<Outcome, ClusterError> {
    let entry = json(&RuleEntry {
        stream: stream.clone(),
        rule: rule.clone(),
    });
    for _ in 0..CREATE_ATTEMPTS {
        match kv.create(key, entry.clone()).await {
            Ok(_) => return Ok(Outcome::Created),
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => {}
            Err(e) => return Err(cluster_error("writing a rule", e)),
        }
        match rule_at(kv, key).await? {
            Some((holder, _)) if holder.rule.id != rule.id => {
                return Ok(Outcome::Taken(holder.rule));
            }
            // Our fresh id can only be there because this call wrote it (a create that
            // timed out but was stored): ours, and counted.
            Some(_) => return Ok(Outcome::Created),
            // Deleted meanwhile: create again (a create replaces a deletion marker by
            // compare-and-set, so of two nodes doing this at once only one wins).
            None => {}
        }
    }
    Err(ClusterError(format!(
        "creating the rule key {key}: deleted and re-created under us {CREATE_ATTEMPTS} times"
    )))
}

/// What [`delete_rules`] did.
#[derive(Debug)]
struct Deleted {
    /// Rule keys this call deleted.
    deleted: u64,
    /// The count's epoch, read before the first key was deleted (`None`: no count then,
    /// or nothing deleted).
    epoch: Option<u64>,
}

/// Deletes the keys of `rules`, each only while it holds that rule (by id): a key another
/// node re-added with a newer rule since this node resolved the value stays.
async fn delete_rules(
    kv: &kv::Store,
    stream: &StreamKey,
    rules: &[RuleRecord],
) -> Result<Deleted, ClusterError> {
    // Which keys still hold their rule, read a bounded number at a time.
    let reads: Vec<_> = rules
        .iter()
        .map(|rule| held_key(kv, rule_key(stream, &rule.value), rule.id))
        .collect();
    let found: Vec<Option<HeldKey>> = futures_util::stream::iter(reads)
        .buffer_unordered(CONCURRENT_KEYS)
        .try_collect()
        .await?;
    let held: Vec<HeldKey> = found.into_iter().flatten().collect();
    if held.is_empty() {
        return Ok(Deleted {
            deleted: 0,
            epoch: None,
        });
    }
    // Before deleting anything: slots freed after a recount are not freed (see
    // `rule_cap`).
    let epoch = rule_cap::epoch(kv, stream).await?;
    let deletes: Vec<_> = held.into_iter().map(|held| delete_rule(kv, held)).collect();
    let deleted: Vec<bool> = futures_util::stream::iter(deletes)
        .buffer_unordered(CONCURRENT_KEYS)
        .try_collect()
        .await?;
    Ok(Deleted {
        deleted: deleted.into_iter().filter(|&d| d).count() as u64,
        epoch,
    })
}

/// The revision at which `key` holds the rule with `id` (`None`: deleted, or another
/// rule's).
async fn holding(kv: &kv::Store, key: &str, id: u64) -> Result<Option<u64>, ClusterError> {
    Ok(rule_at(kv, key)
        .await?
        .filter(|(held, _)| held.rule.id == id)
        .map(|(_, revision)| revision))
}

/// A rule key found holding the rule being deleted.
struct HeldKey {
    key: String,
    /// The rule's id.
    id: u64,
    /// The key's revision when it was read.
    revision: u64,
}

/// `key` if it holds the rule with `id`.
async fn held_key(kv: &kv::Store, key: String, id: u64) -> Result<Option<HeldKey>, ClusterError> {
    let revision = holding(kv, &key, id).await?;
    Ok(revision.map(|revision| HeldKey { key, id, revision }))
}

/// Deletes a rule key found holding the rule, if it still holds it; whether this call
/// deleted it (a concurrent delete on another node deletes it once, for one of them).
async fn delete_rule(kv: &kv::Store, mut held: HeldKey) -> Result<bool, ClusterError> {
    loop {
        match kv
            .delete_expect_revision(&held.key, Some(held.revision))
            .await
        {
            Ok(()) => return Ok(true),
            Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                match holding(kv, &held.key, held.id).await? {
                    Some(now) => held.revision = now,
                    None => return Ok(false),
                }
            }
            Err(e) => return Err(cluster_error("deleting a rule", e)),
        }
    }
}

async fn put(kv: &kv::Store, key: String, change: &Change) -> Result<(), ClusterError> {
    kv.put(key, json(change))
        .await
        .map_err(|e| cluster_error("writing the shared state", e))?;
    Ok(())
}

/// Applies the bucket to this node, then every change to it, until the server stops or
/// the connection to NATS is re-established (`reconnected` turns true; the caller starts
/// again from the revision after the last one applied). Marks the node ready once the
/// bucket's content at start has been applied.
pub async fn watch(
    kv: &kv::Store,
    node: &dyn ClusterNode,
    applier: &mut Applier,
    reconnected: &mut tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let watch = if applier.next_revision == 0 {
        if kv.status().await?.values() == 0 {
            node.set_loaded();
        }
        kv.watch_with_history(">").await?
    } else {
        kv.watch_all_from_revision(applier.next_revision).await?
    };
    let mut entries = watch.ready_chunks(1_024);
    reconnected.borrow_and_update();
    loop {
        let batch = tokio::select! {
            batch = entries.next() => batch,
            changed = reconnected.changed() => {
                if changed.is_ok() && *reconnected.borrow_and_update() {
                    return Ok(());
                }
                continue;
            }
        };
        let Some(batch) = batch else {
            return Ok(());
        };
        let mut caught_up = false;
        let mut changes = Vec::with_capacity(batch.len());
        for entry in batch {
            match entry {
                Ok(entry) => {
                    caught_up |= entry.delta == 0;
                    applier.next_revision = applier.next_revision.max(entry.revision + 1);
                    if let Some(change) = applier.change_of(&entry) {
                        changes.push(change);
                    }
                }
                Err(e) => tracing::warn!("watching the shared state: {e}"),
            }
        }
        for change in merge_rule_adds(changes) {
            let applied = node.apply(change).await;
            telemetry::cluster_changes_applied(applied.is_ok());
            if let Err(e) = applied {
                tracing::error!("applying a replicated change failed: {e}");
            }
        }
        if caught_up {
            node.set_loaded();
        }
    }
}

/// Turns KV entries into changes; remembers each rule key's rule so that a deleted key
/// names the rule it deleted (kept across watcher restarts).
#[derive(Default)]
pub struct Applier {
    rules: HashMap<String, RuleEntry>,
    /// The revision after the last entry seen (0: nothing seen yet).
    next_revision: u64,
}

impl Applier {
    fn change_of(&mut self, entry: &kv::Entry) -> Option<Change> {
        // Rule counts are bookkeeping of the recording nodes, not state to apply.
        if entry.key.starts_with(COUNT_PREFIX) {
            return None;
        }
        let is_rule = entry.key.starts_with("rule.");
        match entry.operation {
            Operation::Put if is_rule => {
                let rule: RuleEntry = decode(entry)?;
                self.rules.insert(entry.key.clone(), rule.clone());
                Some(Change::AddRules {
                    stream: rule.stream,
                    rules: vec![rule.rule],
                    max_rules: None,
                })
            }
            Operation::Put => decode(entry),
            Operation::Delete | Operation::Purge if is_rule => {
                let rule = self.rules.remove(&entry.key)?;
                Some(Change::DeleteRules {
                    stream: rule.stream,
                    rules: vec![rule.rule],
                })
            }
            Operation::Delete | Operation::Purge => deleted_key(&entry.key),
        }
    }
}

/// The change a deleted key stands for: users, streams, accounts, tokens and apps are
/// deleted by key (an app's limits go with its app).
fn deleted_key(key: &str) -> Option<Change> {
    if let Some((account, username)) = parse_user_key(key) {
        return Some(Change::DeleteUser { account, username });
    }
    if let Some(stream) = parse_stream_key(key) {
        return Some(Change::DeleteStream { stream });
    }
    let (kind, name) = key.split_once('.')?;
    let name = unescape(name)?;
    match kind {
        "acct" => Some(Change::DeleteAccount { account: name }),
        "token" => Some(Change::RevokeToken { hash_hex: name }),
        "app" => Some(Change::DeleteApp { app_id: name }),
        _ => None,
    }
}

fn decode<T: for<'de> Deserialize<'de>>(entry: &kv::Entry) -> Option<T> {
    match serde_json::from_slice(&entry.value) {
        Ok(value) => Some(value),
        Err(e) => {
            tracing::warn!(key = entry.key, "undecodable shared state entry: {e}");
            None
        }
    }
}

/// The account and username a `user.` key names.
fn parse_user_key(key: &str) -> Option<(String, String)> {
    let mut parts = key.strip_prefix("user.")?.split('.');
    let (account, username) = (parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    Some((unescape(account)?, unescape(username)?))
}

/// The stream a `stream.` key names.
pub(crate) fn parse_stream_key(key: &str) -> Option<StreamKey> {
    let mut parts = key.strip_prefix("stream.")?.split('.');
    let (account, product, label) = (parts.next()?, parts.next()?, parts.next()?);
    Some(StreamKey {
        account: unescape(account)?,
        product: unescape(product)?,
        label: unescape(label)?,
    })
}

fn unescape(token: &str) -> Option<String> {
    if token == "=" {
        return Some(String::new());
    }
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            let hex = token.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Consecutive rule adds to the same stream become one change (one matcher publish for a
/// batch of rules instead of one per rule, which matters when loading many rules).
fn merge_rule_adds(changes: Vec<Change>) -> Vec<Change> {
    let mut out: Vec<Change> = Vec::with_capacity(changes.len());
    for change in changes {
        if let (
            Some(Change::AddRules { stream, rules, .. }),
            Change::AddRules {
                stream: next_stream,
                rules: next_rules,
                ..
            },
        ) = (out.last_mut(), &change)
            && stream == next_stream
        {
            rules.extend(next_rules.iter().cloned());
            continue;
        }
        out.push(change);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::names::token;

    #[test]
    fn stream_keys_round_trip_through_escaping() {
        let stream = StreamKey {
            account: "a.b=c".into(),
            product: "powertrack".into(),
            label: "x-y_z".into(),
        };
        assert_eq!(parse_stream_key(&stream_key(&stream)), Some(stream));
        assert_eq!(unescape(&token("")).as_deref(), Some(""));
        assert_eq!(parse_stream_key("rule.a.b.c"), None);
    }

    fn entry(key: String, value: &[u8], operation: Operation) -> kv::Entry {
        kv::Entry {
            bucket: STATE_BUCKET.into(),
            key,
            value: Bytes::copy_from_slice(value),
            revision: 1,
            delta: 0,
            created: time::OffsetDateTime::UNIX_EPOCH,
            operation,
            seen_current: true,
        }
    }

    #[test]
    fn watchers_pass_over_rule_counts() {
        let stream = StreamKey {
            account: "acme".into(),
            product: "powertrack".into(),
            label: "prod".into(),
        };
        let count = crate::names::count_key(&stream);
        let mut applier = Applier::default();
        let value = br#"{"rules":3,"epoch":0,"pending":[]}"#;
        assert_eq!(
            applier.change_of(&entry(count.clone(), value, Operation::Put)),
            None
        );
        assert_eq!(
            applier.change_of(&entry(count, b"", Operation::Delete)),
            None
        );
        // A stream's own key still deletes the stream.
        assert_eq!(
            applier.change_of(&entry(stream_key(&stream), b"", Operation::Delete)),
            Some(Change::DeleteStream { stream })
        );
    }

    #[test]
    fn a_deleted_user_key_deletes_the_user() {
        let mut applier = Applier::default();
        let key = user_key("a.b", "alice=1");
        assert_eq!(
            applier.change_of(&entry(key, b"", Operation::Delete)),
            Some(Change::DeleteUser {
                account: "a.b".into(),
                username: "alice=1".into(),
            })
        );
    }

    #[test]
    fn deleted_account_token_and_app_keys_delete_them() {
        let mut applier = Applier::default();
        let mut deleted = |key: String| applier.change_of(&entry(key, b"", Operation::Delete));
        assert_eq!(
            deleted(crate::names::account_key("a.b")),
            Some(Change::DeleteAccount {
                account: "a.b".into()
            })
        );
        assert_eq!(
            deleted(token_key("00ff")),
            Some(Change::RevokeToken {
                hash_hex: "00ff".into()
            })
        );
        assert_eq!(
            deleted(app_key("123")),
            Some(Change::DeleteApp {
                app_id: "123".into()
            })
        );
        assert_eq!(deleted(crate::names::app_limits_key("123")), None);
    }

    #[test]
    fn consecutive_adds_to_one_stream_merge() {
        let s = |l: &str| StreamKey {
            account: "a".into(),
            product: "powertrack".into(),
            label: l.into(),
        };
        let add = |l: &str, id| Change::AddRules {
            stream: s(l),
            rules: vec![RuleRecord {
                id,
                value: format!("v{id}"),
                tag: None,
                created_ms: 0,
            }],
            max_rules: None,
        };
        let merged = merge_rule_adds(vec![add("x", 1), add("x", 2), add("y", 3), add("x", 4)]);
        assert_eq!(merged.len(), 3);
        match &merged[0] {
            Change::AddRules { rules, .. } => assert_eq!(rules.len(), 2),
            other => panic!("unexpected {other:?}"),
        }
    }
}
