//! The wall clock in the one unit the store, the post log and the cluster stamp things
//! with: a leaf every module can read the time from without importing the state.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the UNIX epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
