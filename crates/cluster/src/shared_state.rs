//! The shared state in a JetStream KV bucket: one key per account, user, stream, rule (per
//! stream and value) and token, whose value is the [`Change`] that made it. Recording a
//! change writes its key; every node watches the bucket from the start (last value per
//! key, then every update) and applies what it sees to its store and registry.

use std::collections::HashMap;

use async_nats::jetstream;
use async_nats::jetstream::kv::{self, CreateErrorKind, Operation};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use sluice_server::AppState;
use sluice_server::changes::apply_replicated;
use sluice_server::cluster::{Change, ClusterError, Recorded, RuleRecord, StreamKey};
use sluice_store::StoredRule;

use crate::names::{
    STATE_BUCKET, account_key, rule_key, rule_prefix, stream_key, token_key, user_key,
};

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

/// The value of a rule's key: the rule and its stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct RuleEntry {
    stream: StreamKey,
    rule: RuleRecord,
}

fn cluster_error(what: &str, e: impl std::fmt::Display) -> ClusterError {
    ClusterError(format!("{what}: {e}"))
}

fn json<T: Serialize>(value: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(value).expect("changes serialize to JSON"))
}

/// Writes a committed change to the bucket (see [`sluice_server::cluster::Cluster::record`]).
pub async fn record(kv: &kv::Store, change: Change) -> Result<Recorded, ClusterError> {
    let mut recorded = Recorded::default();
    match &change {
        Change::PutAccount { account } => put(kv, account_key(account), &change).await?,
        Change::PutUser {
            account, username, ..
        } => put(kv, user_key(account, username), &change).await?,
        Change::PutStream { stream, .. } => put(kv, stream_key(stream), &change).await?,
        Change::AddToken { hash_hex, .. } => put(kv, token_key(hash_hex), &change).await?,
        Change::DeleteStream { stream } => {
            kv.delete(stream_key(stream))
                .await
                .map_err(|e| cluster_error("deleting a stream", e))?;
            let prefix = rule_prefix(stream);
            let mut keys = kv
                .keys()
                .await
                .map_err(|e| cluster_error("listing rules", e))?;
            let mut doomed = Vec::new();
            while let Some(key) = keys.next().await {
                let key = key.map_err(|e| cluster_error("listing rules", e))?;
                if key.starts_with(&prefix) {
                    doomed.push(key);
                }
            }
            for key in doomed {
                kv.delete(&key)
                    .await
                    .map_err(|e| cluster_error("deleting a rule", e))?;
            }
        }
        Change::AddRules { stream, rules } => {
            for rule in rules {
                let entry = RuleEntry {
                    stream: stream.clone(),
                    rule: rule.clone(),
                };
                let key = rule_key(stream, &rule.value);
                match kv.create(&key, json(&entry)).await {
                    Ok(_) => {}
                    Err(e) if e.kind() == CreateErrorKind::AlreadyExists => {
                        let current = kv
                            .entry(key.as_str())
                            .await
                            .map_err(|e| cluster_error("reading a rule", e))?;
                        let winner = current
                            .filter(|e| e.operation == Operation::Put)
                            .and_then(|e| serde_json::from_slice::<RuleEntry>(&e.value).ok());
                        match winner {
                            Some(winner) if winner.rule.id != rule.id => {
                                recorded.existing_rules.push(StoredRule::from(winner.rule));
                            }
                            Some(_) => {}
                            // Deleted meanwhile: take the value.
                            None => {
                                kv.put(&key, json(&entry))
                                    .await
                                    .map_err(|e| cluster_error("writing a rule", e))?;
                            }
                        }
                    }
                    Err(e) => return Err(cluster_error("writing a rule", e)),
                }
            }
        }
        Change::DeleteRules { stream, rules } => {
            for rule in rules {
                kv.delete(rule_key(stream, &rule.value))
                    .await
                    .map_err(|e| cluster_error("deleting a rule", e))?;
            }
        }
    }
    Ok(recorded)
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
    state: &AppState,
    applier: &mut Applier,
    reconnected: &mut tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let watch = if applier.next_revision == 0 {
        if kv.status().await?.values() == 0 {
            state.readiness.set_loaded();
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
            if let Err(e) = apply_replicated(state, change).await {
                tracing::error!("applying a replicated change failed: {e}");
            }
        }
        if caught_up {
            state.readiness.set_loaded();
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
        let is_rule = entry.key.starts_with("rule.");
        match entry.operation {
            Operation::Put if is_rule => {
                let rule: RuleEntry = decode(entry)?;
                self.rules.insert(entry.key.clone(), rule.clone());
                Some(Change::AddRules {
                    stream: rule.stream,
                    rules: vec![rule.rule],
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
            Operation::Delete | Operation::Purge => {
                let stream = parse_stream_key(&entry.key)?;
                Some(Change::DeleteStream { stream })
            }
        }
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

/// The stream a `stream.` key names (only streams are ever deleted by key).
fn parse_stream_key(key: &str) -> Option<StreamKey> {
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
            Some(Change::AddRules { stream, rules }),
            Change::AddRules {
                stream: next_stream,
                rules: next_rules,
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
        };
        let merged = merge_rule_adds(vec![add("x", 1), add("x", 2), add("y", 3), add("x", 4)]);
        assert_eq!(merged.len(), 3);
        match &merged[0] {
            Change::AddRules { rules, .. } => assert_eq!(rules.len(), 2),
            other => panic!("unexpected {other:?}"),
        }
    }
}
