//! Snowflake worker ids for rule ids: each node leases a distinct one from a KV bucket, so
//! that two live nodes never issue the same rule id.
//!
//! The bucket's entries expire an hour after their last write; a node renews its lease
//! every ten minutes while it runs. A crashed node's id becomes free an hour later, and a
//! node reusing it cannot collide with the dead one: Snowflake ids carry their time, and
//! the new holder only issues ids later than anything the old one issued.

use std::time::Duration;

use async_nats::jetstream;
use sluice_model::snowflake::MAX_WORKER_ID;

use crate::names::WORKERS_BUCKET;

const LEASE: Duration = Duration::from_secs(3600);
const RENEW_EVERY: Duration = Duration::from_secs(600);

/// Leases a free worker id for `node` (a name unique to this process); the returned task
/// renews it until aborted.
pub async fn lease(
    js: &jetstream::Context,
    node: &str,
) -> anyhow::Result<(u16, tokio::task::JoinHandle<()>)> {
    let bucket = crate::kv_bucket::open(
        js,
        WORKERS_BUCKET,
        "sluice Snowflake worker id leases",
        LEASE,
    )
    .await?;
    // Worker 0 is what single nodes use; cluster nodes take 1..=MAX_WORKER_ID.
    for worker in 1..=MAX_WORKER_ID {
        let key = worker.to_string();
        if bucket.create(&key, node.to_owned().into()).await.is_ok() {
            let node = node.to_owned();
            let renew = tokio::spawn(async move {
                loop {
                    tokio::time::sleep(RENEW_EVERY).await;
                    if let Err(e) = bucket.put(&key, node.clone().into()).await {
                        tracing::warn!(worker, "renewing the worker id lease failed: {e}");
                    }
                }
            });
            return Ok((worker, renew));
        }
    }
    anyhow::bail!("every Snowflake worker id (1..={MAX_WORKER_ID}) is leased")
}
