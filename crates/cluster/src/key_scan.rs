//! Listing the keys of the state bucket under a prefix, as they are now: the last message
//! of each key's subject, headers only, deleted keys left out. What a rule count's
//! recount and an account's delete read.

use std::collections::HashSet;
use std::time::Duration;

use async_nats::jetstream::consumer::{DeliverPolicy, ReplayPolicy, push};
use async_nats::jetstream::kv;
use futures_util::StreamExt;
use sluice_server::cluster::ClusterError;

/// The longest one scan may take.
const SCAN_TIMEOUT: Duration = Duration::from_secs(30);

/// The keys starting with `prefix` (which ends with `.`) in the bucket now; `what` names
/// the scan in errors.
pub async fn keys_under(
    kv: &kv::Store,
    client: &async_nats::Client,
    prefix: &str,
    what: &str,
) -> Result<HashSet<String>, ClusterError> {
    let fail = |e: &dyn std::fmt::Display| ClusterError(format!("{what}: {e}"));
    let consumer = kv
        .stream
        .create_consumer(push::OrderedConfig {
            deliver_subject: client.new_inbox(),
            description: Some(format!("sluice key scan ({what})")),
            filter_subject: format!("{}{prefix}>", kv.prefix),
            headers_only: true,
            replay_policy: ReplayPolicy::Instant,
            deliver_policy: DeliverPolicy::LastPerSubject,
            ..Default::default()
        })
        .await
        .map_err(|e| fail(&e))?;
    let mut keys = HashSet::new();
    if consumer.cached_info().num_pending == 0 {
        return Ok(keys);
    }
    let mut messages = consumer.messages().await.map_err(|e| fail(&e))?;
    let scan = async {
        while let Some(message) = messages.next().await {
            let message = message.map_err(|e| fail(&e))?;
            let pending = message.info().map_err(|e| fail(&e))?.pending;
            let operation = message
                .headers
                .as_ref()
                .and_then(|h| h.get("KV-Operation"))
                .map(|v| v.as_str());
            if let Some(key) = message.subject.as_str().strip_prefix(kv.prefix.as_str()) {
                if is_deletion(operation) {
                    keys.remove(key);
                } else {
                    keys.insert(key.to_owned());
                }
            }
            if pending == 0 {
                return Ok(());
            }
        }
        Err(fail(&"the scan ended early"))
    };
    tokio::time::timeout(SCAN_TIMEOUT, scan)
        .await
        .map_err(|_| fail(&"timed out"))??;
    Ok(keys)
}

/// Whether a KV message's `KV-Operation` header marks a deletion (`DEL`, `PURGE`).
fn is_deletion(operation: Option<&str>) -> bool {
    matches!(operation, Some("DEL" | "PURGE"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deletion_markers_are_told_from_values() {
        assert!(is_deletion(Some("DEL")));
        assert!(is_deletion(Some("PURGE")));
        assert!(!is_deletion(None));
        assert!(!is_deletion(Some("PUT")));
    }
}
