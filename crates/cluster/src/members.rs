//! The cluster's members: each running node announces itself (name, worker id, datacenter,
//! public URL, when it joined) in a KV bucket whose entries expire [`EXPIRES`] after their
//! last write, and rewrites its entry every [`ANNOUNCE_EVERY`]. The list of members is
//! the bucket's keys: a node that stops deletes its entry; one that crashed drops out
//! once its entry expires.

use std::time::Duration;

use async_nats::jetstream::{self, kv};
use sluice_server::cluster::{ClusterError, Member};

use crate::key_scan::keys_under;
use crate::names::MEMBERS_BUCKET;

/// How often a running node rewrites its announcement.
pub const ANNOUNCE_EVERY: Duration = Duration::from_secs(5);
/// How long an announcement lasts without being rewritten.
pub const EXPIRES: Duration = Duration::from_secs(20);

/// The prefix of every member's key.
const PREFIX: &str = "node.";

/// Opens (or creates) the members bucket.
pub async fn bucket(js: &jetstream::Context) -> anyhow::Result<kv::Store> {
    crate::kv_bucket::open(js, MEMBERS_BUCKET, "sluice running nodes", EXPIRES).await
}

fn key(member: &Member) -> String {
    format!("{PREFIX}{}", member.node)
}

/// Announces `member` now and every [`ANNOUNCE_EVERY`]; runs until dropped.
pub async fn announce(bucket: &kv::Store, member: &Member) {
    let key = key(member);
    let value = serde_json::to_vec(member).expect("a member is JSON");
    loop {
        if let Err(e) = bucket.put(&key, value.clone().into()).await {
            tracing::warn!("announcing this node to the cluster failed: {e}");
        }
        tokio::time::sleep(ANNOUNCE_EVERY).await;
    }
}

/// How many times a stopping node tries to take itself off the list before leaving its
/// entry to expire.
const LEAVE_ATTEMPTS: u32 = 3;
/// How long one try may take.
const LEAVE_ATTEMPT: Duration = Duration::from_secs(2);

/// Takes `member` off the list (its node is stopping). A failed delete (an ack lost to a
/// busy server) is retried: an entry left behind lists a stopped node for up to
/// [`EXPIRES`]. Without a connection to NATS there is nothing to try: the entry expires.
pub async fn leave(bucket: &kv::Store, client: &async_nats::Client, member: &Member) {
    for attempt in 1..=LEAVE_ATTEMPTS {
        if !matches!(
            client.connection_state(),
            async_nats::connection::State::Connected
        ) {
            tracing::warn!("not connected to NATS: this node stays listed until its entry expires");
            return;
        }
        match tokio::time::timeout(LEAVE_ATTEMPT, bucket.delete(key(member))).await {
            Ok(Ok(())) => return,
            Ok(Err(e)) => {
                tracing::warn!(attempt, "leaving the cluster's list of members failed: {e}")
            }
            Err(_) => tracing::warn!(attempt, "leaving the cluster's list of members timed out"),
        }
    }
}

/// The members announced and not expired, by datacenter, then public URL.
pub async fn list(
    bucket: &kv::Store,
    client: &async_nats::Client,
) -> Result<Vec<Member>, ClusterError> {
    let keys = keys_under(bucket, client, PREFIX, "listing the cluster's members").await?;
    let mut members = Vec::with_capacity(keys.len());
    for key in keys {
        let entry = bucket
            .get(&key)
            .await
            .map_err(|e| ClusterError(format!("reading member {key}: {e}")))?;
        // Gone (left or expired) since the keys were listed, or not a member's entry.
        if let Some(member) = entry.and_then(|v| serde_json::from_slice::<Member>(&v).ok()) {
            members.push(member);
        }
    }
    members.sort_by(|a, b| {
        (&a.datacenter, &a.public_url, &a.node).cmp(&(&b.datacenter, &b.public_url, &b.node))
    });
    Ok(members)
}
