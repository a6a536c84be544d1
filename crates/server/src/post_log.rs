//! The server's post log: which implementation a server opens, and the background trim that
//! enforces [`Settings::post_log_retention`] and the disk budget
//! [`Settings::post_log_max_bytes`] (docs/retention.md).

use std::path::Path;
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;
use sluice_postlog::{MemoryLog, PostLog, SegmentLog, SegmentOptions, Trimmed};

use crate::Settings;
use crate::clock::now_ms;
use crate::telemetry;

/// Segments are at most this share of the disk budget, so that the active segment (which
/// the budget never drops) overshoots it by little.
const SEGMENTS_PER_BUDGET: u64 = 16;
/// The smallest segment a budget makes (tests use budgets of a few hundred KiB).
const MIN_SEGMENT_BYTES: u64 = 4 << 10;

/// The post log of a server with a data directory (segment files in `DATA_DIR/postlog/`,
/// survives restarts) or in memory (`None`: tests). With a disk budget of `max_bytes`,
/// segments are cut at a sixteenth of it (at most the default 64 MiB).
pub fn open(data_dir: Option<&Path>, max_bytes: Option<u64>) -> anyhow::Result<Arc<dyn PostLog>> {
    match data_dir {
        Some(dir) => {
            let dir = dir.join("postlog");
            let log = SegmentLog::open_with(&dir, segment_options(max_bytes))
                .with_context(|| format!("opening the post log in {}", dir.display()))?;
            tracing::info!(next_seq = log.next_seq(), "opened the post log");
            Ok(Arc::new(log))
        }
        None => Ok(Arc::new(MemoryLog::new())),
    }
}

fn segment_options(max_bytes: Option<u64>) -> SegmentOptions {
    let default = SegmentOptions::default();
    let max_segment_bytes = match max_bytes {
        Some(budget) => {
            (budget / SEGMENTS_PER_BUDGET).clamp(MIN_SEGMENT_BYTES, default.max_segment_bytes)
        }
        None => default.max_segment_bytes,
    };
    SegmentOptions {
        max_segment_bytes,
        ..default
    }
}

/// Starts the thread that, every [`Settings::post_log_trim_interval`], drops posts older
/// than the retention from `log`, then its oldest segments while it is over the disk
/// budget, and syncs it to disk (the first time at once, so a restarted server sheds what
/// expired while it was down). It ends when the log is dropped.
pub fn start_trimmer(log: &Arc<dyn PostLog>, settings: &Settings) -> JoinHandle<()> {
    let log: Weak<dyn PostLog> = Arc::downgrade(log);
    let retention = settings.post_log_retention;
    let max_bytes = settings.post_log_max_bytes;
    let interval = settings.post_log_trim_interval;
    std::thread::Builder::new()
        .name("sluice-postlog-trim".into())
        .spawn(move || {
            while let Some(log) = log.upgrade() {
                trim_once(&*log, retention, max_bytes);
                drop(log);
                std::thread::sleep(interval);
            }
        })
        .expect("spawning the post log trim thread")
}

/// One round of the trimmer: age, budget, size gauge, sync.
fn trim_once(log: &dyn PostLog, retention: Duration, max_bytes: Option<u64>) {
    let now = u64::try_from(now_ms()).unwrap_or(0);
    let cutoff = now.saturating_sub(retention.as_millis() as u64);
    if let Err(e) = log.trim_before(cutoff) {
        telemetry::post_log_error();
        tracing::error!("trimming the post log failed: {e}");
    }
    if let Some(budget) = max_bytes {
        match log.trim_to_bytes(budget) {
            Ok(trimmed) if trimmed.segments > 0 => report_budget_trim(log, budget, trimmed),
            Ok(_) => {}
            Err(e) => {
                telemetry::post_log_error();
                tracing::error!("trimming the post log to its disk budget failed: {e}");
            }
        }
    }
    if let Some(bytes) = log.stored_bytes() {
        telemetry::post_log_bytes(bytes);
    }
    if let Err(e) = log.sync() {
        telemetry::post_log_error();
        tracing::error!("syncing the post log to disk failed: {e}");
    }
}

/// Counts a trim for the budget and says so in the log, with how far back the log now
/// reaches (recovery and replay windows before that are refused).
fn report_budget_trim(log: &dyn PostLog, budget: u64, trimmed: Trimmed) {
    telemetry::post_log_budget_trimmed(trimmed.segments, trimmed.posts);
    let oldest_held_ms = sluice_postlog::held::oldest_held_ms(log).ok().flatten();
    let held_for_s =
        oldest_held_ms.map(|ms| u64::try_from(now_ms()).unwrap_or(0).saturating_sub(ms) / 1000);
    tracing::warn!(
        budget_bytes = budget,
        segments = trimmed.segments,
        posts = trimmed.posts,
        bytes = trimmed.bytes,
        oldest_held_ms,
        held_for_s,
        "post log over its disk budget: dropped its oldest segments before their retention"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_a_sixteenth_of_the_budget_within_bounds() {
        let default = SegmentOptions::default().max_segment_bytes;
        assert_eq!(segment_options(None).max_segment_bytes, default);
        assert_eq!(segment_options(Some(1 << 20)).max_segment_bytes, 64 << 10);
        assert_eq!(segment_options(Some(1 << 10)).max_segment_bytes, 4 << 10);
        assert_eq!(segment_options(Some(1 << 40)).max_segment_bytes, default);
    }
}
