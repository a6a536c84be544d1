//! Opening a KV bucket on nats-server 2.9.
//!
//! async-nats' `create_key_value` first asks for the account's JetStream info, whose 2.9
//! answer it cannot parse; so buckets are created here as the stream the KV convention
//! describes (`KV_<bucket>` on `$KV.<bucket>.>`, rollups allowed, deletes by marker, last
//! `history` values per key, direct gets) and then opened with `get_key_value`.

use std::time::Duration;

use async_nats::jetstream::kv;
use async_nats::jetstream::{self, stream};

/// Opens `bucket`, creating it if missing, keeping `history` values per key for `max_age`
/// (zero: forever).
pub async fn open(
    js: &jetstream::Context,
    bucket: &str,
    description: &str,
    max_age: Duration,
) -> anyhow::Result<kv::Store> {
    if let Ok(store) = js.get_key_value(bucket).await {
        return Ok(store);
    }
    let config = stream::Config {
        name: format!("KV_{bucket}"),
        description: Some(description.to_owned()),
        subjects: vec![format!("$KV.{bucket}.>")],
        max_messages_per_subject: 1,
        max_age,
        storage: stream::StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        deny_purge: false,
        allow_direct: true,
        num_replicas: 1,
        discard: stream::DiscardPolicy::New,
        duplicate_window: Duration::from_secs(120).min(if max_age.is_zero() {
            Duration::from_secs(120)
        } else {
            max_age
        }),
        ..Default::default()
    };
    // Another node may create it at the same time: then open theirs.
    if let Err(e) = js.get_or_create_stream(config).await {
        tracing::debug!(bucket, "creating the bucket: {e}");
    }
    Ok(js.get_key_value(bucket).await?)
}
