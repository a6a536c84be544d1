//! A source in cluster mode (`sluice serve --nats … --source …`): every node runs this,
//! and only the node holding the source's lease ([`sluice_cluster::source_lease`])
//! consumes; the others try to take it every [`TAKE_EVERY`]. The holder renews the lease
//! while it consumes; losing it (not renewed in time, NATS unreachable) stops its consumer,
//! which hands over its batch in hand first; so does a cursor that cannot be read or saved
//! in NATS (the node then gives the lease up and tries again). The cursor lives in the
//! cluster's KV bucket ([`KvCursor`]), so the node that takes over resumes where the last
//! holder saved it.
//! A stopping node gives the lease up at once; a dead one's expires.

use std::io;
use std::time::Duration;

use sluice_cluster::source_lease::{Held, RENEW_EVERY, SourceLeases};
use tokio_util::sync::CancellationToken;

use crate::consumer::{self, Config, SourceError};
use crate::cursor::CursorStore;
use crate::sink::Sink;

/// How often a node without the lease tries to take it.
pub const TAKE_EVERY: Duration = Duration::from_secs(2);

/// A source's cursor in the cluster's KV bucket.
pub struct KvCursor {
    leases: SourceLeases,
    source: &'static str,
}

impl KvCursor {
    /// The cursor of `source` in `leases`' bucket.
    pub fn new(leases: SourceLeases, source: &'static str) -> Self {
        Self { leases, source }
    }
}

impl CursorStore for KvCursor {
    async fn load(&self) -> io::Result<Option<u64>> {
        self.leases
            .cursor(self.source)
            .await
            .map_err(|e| io::Error::other(format!("reading the cursor from NATS: {e:#}")))
    }

    async fn save(&self, time_us: u64) -> io::Result<()> {
        self.leases
            .save_cursor(self.source, time_us)
            .await
            .map_err(|e| io::Error::other(format!("saving the cursor in NATS: {e:#}")))
    }
}

/// Consumes `source` whenever this node holds its lease, until `stop`.
pub async fn run<S: Sink>(
    config: Config,
    sink: &mut S,
    leases: SourceLeases,
    source: &'static str,
    stop: CancellationToken,
) -> Result<(), SourceError> {
    let cursor = KvCursor::new(leases.clone(), source);
    loop {
        let Some(held) = take(&leases, source, &stop).await else {
            return Ok(());
        };
        tracing::info!(
            source,
            node = leases.node(),
            "took the source's lease: consuming"
        );
        let holding = stop.child_token();
        // In one task, so that when this node dies its renewals die with it.
        let (outcome, still_held) = tokio::join!(
            async {
                let outcome = consumer::run(config.clone(), sink, &cursor, holding.clone()).await;
                holding.cancel();
                outcome
            },
            renew(&leases, source, held, &holding)
        );
        if let Some(held) = still_held {
            leases.release(source, held).await;
        }
        match outcome {
            // A sink that refuses for good is not this node's problem alone: stop.
            Err(SourceError::Sink(e)) => return Err(SourceError::Sink(e)),
            // The cursor in NATS could not be read or saved: NATS may be back soon, and
            // another node may do better meanwhile (the lease was given up).
            Err(SourceError::Cursor(e)) => {
                tracing::warn!(source, "consuming stopped: {e}; trying again");
            }
            Ok(_) if stop.is_cancelled() => return Ok(()),
            Ok(_) => {
                tracing::warn!(
                    source,
                    "lost the source's lease: another node may consume it now"
                );
            }
        }
        tokio::select! {
            () = tokio::time::sleep(TAKE_EVERY) => {}
            () = stop.cancelled() => return Ok(()),
        }
    }
}

/// Waits until this node takes the lease (`None`: stop came first).
async fn take(leases: &SourceLeases, source: &str, stop: &CancellationToken) -> Option<Held> {
    loop {
        if stop.is_cancelled() {
            return None;
        }
        match leases.try_take(source).await {
            Ok(Some(held)) => return Some(held),
            Ok(None) => {}
            Err(e) => tracing::warn!(source, "taking the source's lease failed: {e:#}"),
        }
        tokio::select! {
            () = tokio::time::sleep(TAKE_EVERY) => {}
            () = stop.cancelled() => return None,
        }
    }
}

/// Renews the lease until `holding` is cancelled (returns it, still held) or a renewal
/// fails (cancels `holding`, returns `None`).
async fn renew(
    leases: &SourceLeases,
    source: &str,
    mut held: Held,
    holding: &CancellationToken,
) -> Option<Held> {
    loop {
        tokio::select! {
            () = tokio::time::sleep(RENEW_EVERY) => {}
            () = holding.cancelled() => return Some(held),
        }
        match leases.renew(source, held).await {
            Ok(renewed) => held = renewed,
            Err(e) => {
                tracing::warn!(source, "renewing the source's lease failed: {e:#}");
                holding.cancel();
                return None;
            }
        }
    }
}
