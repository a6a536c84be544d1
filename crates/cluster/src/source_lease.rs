//! Exactly one node consumes a post source (`sluice serve --nats … --source …`): the node
//! that holds its lease, a key in the `sluice_source_leases` bucket whose entries expire
//! after [`LEASE_EXPIRES`]. A node takes a lease by creating the key (which succeeds only
//! when no entry is there: never held, released, or expired because its holder stopped
//! renewing it, e.g. died), renews it every [`RENEW_EVERY`] by compare-and-set on the
//! revision it last wrote (so a node that lost it to another cannot take it back by
//! accident), and deletes it when it stops. The source's cursor lives in
//! `sluice_source_cursors`, so whichever node takes over resumes where the last holder
//! saved it.
//!
//! Between a holder's death and the expiry nobody consumes: up to [`LEASE_EXPIRES`] of
//! events, which the taker reads from the saved cursor (Jetstream keeps a day or more).

use std::time::Duration;

use async_nats::jetstream::{self, kv};

use crate::names::{SOURCE_CURSORS_BUCKET, SOURCE_LEASES_BUCKET};

/// How long a lease lasts without renewal.
pub const LEASE_EXPIRES: Duration = Duration::from_secs(10);

/// How often the holder renews it: three tries before it expires.
pub const RENEW_EVERY: Duration = Duration::from_secs(3);

/// The leases and cursors of post sources, for one node.
#[derive(Clone)]
pub struct SourceLeases {
    leases: kv::Store,
    cursors: kv::Store,
    node: String,
}

/// A lease held: the revision to renew it from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    revision: u64,
}

impl SourceLeases {
    /// Connects to the NATS server at `url` (its own connection) as `node` (a name for
    /// logs and for the lease's value) and opens the two buckets.
    pub async fn connect(url: &str, node: &str) -> anyhow::Result<Self> {
        let client = async_nats::connect(url).await?;
        Self::open(&jetstream::new(client), node).await
    }

    /// Opens the two buckets on `js` for `node`.
    pub async fn open(js: &jetstream::Context, node: &str) -> anyhow::Result<Self> {
        let leases = crate::kv_bucket::open(
            js,
            SOURCE_LEASES_BUCKET,
            "sluice post source leases",
            LEASE_EXPIRES,
        )
        .await?;
        let cursors = crate::kv_bucket::open(
            js,
            SOURCE_CURSORS_BUCKET,
            "sluice post source cursors",
            Duration::ZERO,
        )
        .await?;
        Ok(Self {
            leases,
            cursors,
            node: node.to_owned(),
        })
    }

    /// This node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// Takes the lease of `source` if nobody holds it; `Ok(None)` when another node does.
    pub async fn try_take(&self, source: &str) -> anyhow::Result<Option<Held>> {
        match self.leases.create(source, self.node.clone().into()).await {
            Ok(revision) => Ok(Some(Held { revision })),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Renews `held`; an error means the lease is lost (taken by another node after it
    /// expired, or NATS unreachable long enough): stop consuming.
    pub async fn renew(&self, source: &str, held: Held) -> anyhow::Result<Held> {
        let revision = self
            .leases
            .update(source, self.node.clone().into(), held.revision)
            .await?;
        Ok(Held { revision })
    }

    /// Gives the lease up at once (another node may take it without waiting for it to
    /// expire), if this node still holds it.
    pub async fn release(&self, source: &str, held: Held) {
        if let Ok(Some(entry)) = self.leases.entry(source).await
            && entry.revision == held.revision
            && let Err(e) = self.leases.delete(source).await
        {
            tracing::warn!(source, "releasing the source lease failed: {e}");
        }
    }

    /// The cursor saved for `source`.
    pub async fn cursor(&self, source: &str) -> anyhow::Result<Option<u64>> {
        let Some(value) = self.cursors.get(source).await? else {
            return Ok(None);
        };
        let text = std::str::from_utf8(&value)?;
        Ok(Some(text.trim().parse().map_err(|_| {
            anyhow::anyhow!("the cursor of {source} is not a number: {text:?}")
        })?))
    }

    /// Saves the cursor of `source` (acknowledged by JetStream when this returns).
    pub async fn save_cursor(&self, source: &str, time_us: u64) -> anyhow::Result<()> {
        self.cursors.put(source, time_us.to_string().into()).await?;
        Ok(())
    }
}
