//! What the log still holds: the time of its oldest post, and whether the posts of a window
//! starting at a given time are all still there. Recovery and replay refuse a window that
//! is not whole rather than deliver it with a silent hole at its start.
//!
//! Built on the [`PostLog`] contract only, so every backend answers the same way. A log
//! knows its oldest post but not when the posts before it were dropped, so a window is
//! whole when nothing was ever dropped (the oldest post is the log's first, [`FIRST_SEQ`])
//! or when it starts at or after the oldest post's time.

use crate::{FIRST_SEQ, LogError, PostLog};

/// When the oldest post the log still holds was appended, epoch ms (`None`: it holds none).
pub fn oldest_held_ms(log: &dyn PostLog) -> Result<Option<u64>, LogError> {
    let first = log.seq_at_time(0)?;
    Ok(log.read(first, 1)?.first().map(|post| post.appended_ms))
}

/// A window the log no longer holds whole: posts appended before its start are gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotHeld {
    /// When the oldest post still held was appended, epoch ms; `None` when the log holds
    /// no post at all (every post it had was dropped).
    pub oldest_ms: Option<u64>,
}

/// Whether every post appended at or after `start_ms` is still in `log`.
pub fn check_window(log: &dyn PostLog, start_ms: u64) -> Result<Result<(), NotHeld>, LogError> {
    let first = log.seq_at_time(0)?;
    let Some(oldest) = log.read(first, 1)?.into_iter().next() else {
        // Empty: fine if it never held anything, otherwise everything was dropped.
        if log.next_seq() <= FIRST_SEQ {
            return Ok(Ok(()));
        }
        return Ok(Err(NotHeld { oldest_ms: None }));
    };
    if oldest.seq <= FIRST_SEQ || start_ms >= oldest.appended_ms {
        return Ok(Ok(()));
    }
    Ok(Err(NotHeld {
        oldest_ms: Some(oldest.appended_ms),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MemoryLog, NewPost};

    fn append(log: &MemoryLog, ms: u64) {
        let post = NewPost {
            datacenter: "dc",
            bytes: b"{}",
        };
        log.append(&[post], ms).unwrap();
    }

    #[test]
    fn a_log_that_never_dropped_a_post_holds_every_window() {
        let log = MemoryLog::new();
        assert_eq!(oldest_held_ms(&log).unwrap(), None);
        assert_eq!(check_window(&log, 0).unwrap(), Ok(()));
        append(&log, 1_000);
        append(&log, 2_000);
        assert_eq!(oldest_held_ms(&log).unwrap(), Some(1_000));
        // Nothing older was ever appended: an earlier start misses nothing.
        assert_eq!(check_window(&log, 10).unwrap(), Ok(()));
    }

    #[test]
    fn windows_starting_before_the_oldest_post_held_are_not_whole() {
        let log = MemoryLog::new();
        for ms in [1_000, 2_000, 3_000] {
            append(&log, ms);
        }
        log.trim_before(1_500).unwrap();
        assert_eq!(oldest_held_ms(&log).unwrap(), Some(2_000));
        let gone = NotHeld {
            oldest_ms: Some(2_000),
        };
        assert_eq!(check_window(&log, 1_999).unwrap(), Err(gone));
        assert_eq!(check_window(&log, 500).unwrap(), Err(gone));
        assert_eq!(check_window(&log, 2_000).unwrap(), Ok(()));
        assert_eq!(check_window(&log, 2_500).unwrap(), Ok(()));
    }

    #[test]
    fn a_log_whose_posts_were_all_dropped_holds_no_past_window() {
        let log = MemoryLog::new();
        append(&log, 1_000);
        log.trim_before(5_000).unwrap();
        assert_eq!(oldest_held_ms(&log).unwrap(), None);
        assert_eq!(
            check_window(&log, 4_000).unwrap(),
            Err(NotHeld { oldest_ms: None })
        );
    }
}
