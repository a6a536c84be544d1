//! The server's post log: which implementation a server opens, and the background trim that
//! enforces [`Settings::post_log_retention`](crate::Settings::post_log_retention).

use std::path::Path;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;
use sluice_postlog::{MemoryLog, PostLog, SegmentLog};

use crate::clock::now_ms;
use crate::telemetry;

/// The post log of a server with a data directory (segment files in `DATA_DIR/postlog/`,
/// survives restarts) or in memory (`None`: tests).
pub fn open(data_dir: Option<&Path>) -> anyhow::Result<Arc<dyn PostLog>> {
    match data_dir {
        Some(dir) => {
            let dir = dir.join("postlog");
            let log = SegmentLog::open(&dir)
                .with_context(|| format!("opening the post log in {}", dir.display()))?;
            tracing::info!(next_seq = log.next_seq(), "opened the post log");
            Ok(Arc::new(log))
        }
        None => Ok(Arc::new(MemoryLog::new())),
    }
}

/// Starts the thread that, every `interval`, drops posts older than `retention` from `log`
/// and syncs it to disk (the first time at once, so a restarted server sheds what expired
/// while it was down). It ends when the log is dropped.
pub fn start_trimmer(
    log: &Arc<dyn PostLog>,
    retention: Duration,
    interval: Duration,
) -> JoinHandle<()> {
    let log: Weak<dyn PostLog> = Arc::downgrade(log);
    std::thread::Builder::new()
        .name("sluice-postlog-trim".into())
        .spawn(move || {
            while let Some(log) = log.upgrade() {
                let now = u64::try_from(now_ms()).unwrap_or(0);
                let cutoff = now.saturating_sub(retention.as_millis() as u64);
                if let Err(e) = log.trim_before(cutoff) {
                    telemetry::post_log_error();
                    tracing::error!("trimming the post log failed: {e}");
                }
                if let Err(e) = log.sync() {
                    telemetry::post_log_error();
                    tracing::error!("syncing the post log to disk failed: {e}");
                }
                drop(log);
                std::thread::sleep(interval);
            }
        })
        .expect("spawning the post log trim thread")
}
