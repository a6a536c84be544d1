//! Moving the in-memory usage counts into the store: every [`FLUSH_INTERVAL`] on a thread
//! of its own, before each usage read and at shutdown.

use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use sluice_store::{Store, StoreError, UsageHour};

use super::hour_of;
use crate::clock::now_ms;
use crate::registry::StreamRegistry;

/// How often the counts are stored while the server runs.
pub const FLUSH_INTERVAL: Duration = Duration::from_secs(10);

/// Stores every stream's pending counts and its peak connections of the current hour
/// (the most open at once since the last flush, and at least those open now). Counts the
/// store refuses are kept for the next flush.
pub fn flush(registry: &StreamRegistry, store: &Store) -> Result<(), StoreError> {
    let hour = hour_of(now_ms());
    let mut rows = Vec::new();
    let streams = registry.all();
    for stream in &streams {
        let peak = u32::try_from(stream.connections.take_peak()).unwrap_or(u32::MAX);
        let mut pending = stream.usage.take_pending();
        if peak > 0 && !pending.iter().any(|p| p.hour == hour) {
            pending.push(super::counters::PendingHour {
                hour,
                activities: 0,
                replayed: 0,
            });
        }
        rows.extend(pending.into_iter().map(|p| UsageHour {
            stream: stream.key.clone(),
            hour: p.hour,
            activities: p.activities,
            replayed: p.replayed,
            peak_connections: if p.hour == hour { peak } else { 0 },
        }));
    }
    if let Err(e) = store.add_usage(&rows) {
        for row in rows {
            if let Some(stream) = streams.iter().find(|s| s.key == row.stream) {
                stream.usage.add(row.hour, row.activities, row.replayed);
            }
        }
        return Err(e);
    }
    Ok(())
}

/// Starts the thread that flushes every `interval`; it ends once the registry or the
/// store is dropped.
pub fn start_flusher(
    registry: &Arc<StreamRegistry>,
    store: &Arc<Store>,
    interval: Duration,
) -> JoinHandle<()> {
    let (registry, store): (Weak<StreamRegistry>, Weak<Store>) =
        (Arc::downgrade(registry), Arc::downgrade(store));
    std::thread::Builder::new()
        .name("sluice-usage".into())
        .spawn(move || {
            loop {
                std::thread::sleep(interval);
                let (Some(registry), Some(store)) = (registry.upgrade(), store.upgrade()) else {
                    return;
                };
                if let Err(e) = flush(&registry, &store) {
                    tracing::error!("storing usage counts failed, kept for the next try: {e}");
                }
            }
        })
        .expect("spawning the usage thread")
}
