//! What a rule key of the state bucket holds (`RuleEntry`) and reading it: shared by
//! recording changes ([`crate::shared_state`]) and by the rule cap ([`crate::rule_cap`]),
//! a leaf so that neither imports the other for it.

use async_nats::jetstream::kv::{self, Operation};
use serde::{Deserialize, Serialize};
use sluice_server::cluster::{ClusterError, RuleRecord, StreamKey};

/// The value of a rule's key: the rule and its stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RuleEntry {
    /// The stream the rule belongs to (the key only holds a digest of it).
    pub(crate) stream: StreamKey,
    /// The rule holding the key's value, with its id: the first add of the value wins
    /// the key, and deletes check the id before deleting.
    pub(crate) rule: RuleRecord,
}

/// The rule `key` holds now and the key's revision; `None` when deleted (or unreadable).
pub(crate) async fn rule_at(
    kv: &kv::Store,
    key: &str,
) -> Result<Option<(RuleEntry, u64)>, ClusterError> {
    let entry = kv
        .entry(key)
        .await
        .map_err(|e| ClusterError(format!("reading a rule: {e}")))?;
    Ok(entry
        .filter(|e| e.operation == Operation::Put)
        .and_then(|e| {
            serde_json::from_slice::<RuleEntry>(&e.value)
                .ok()
                .map(|held| (held, e.revision))
        }))
}
