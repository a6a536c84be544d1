//! Fixed-window rate limits with X's `x-rate-limit-*` headers.
//!
//! X documents its limits as "N requests per window" and reports a window reset time, so a
//! fixed window counter is the faithful model (a smoothing algorithm such as GCRA would
//! report different numbers than clients expect).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The state of one key's window after a request, as the headers report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateInfo {
    /// `x-rate-limit-limit`: requests allowed per window.
    pub limit: u32,
    /// `x-rate-limit-remaining`: requests left in this window.
    pub remaining: u32,
    /// `x-rate-limit-reset`: when the window resets, UNIX seconds.
    pub reset: u64,
}

/// Counts requests per key in fixed windows.
#[derive(Debug)]
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    windows: Mutex<HashMap<String, (u64, u32)>>,
}

impl RateLimiter {
    /// At most `limit` requests per key per `window`.
    pub fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a request for `key` now. `Ok` when allowed, `Err` when over the limit; both
    /// carry the header values.
    pub fn check(&self, key: &str) -> Result<RateInfo, RateInfo> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.check_at(key, now)
    }

    /// [`RateLimiter::check`] at a given time since the UNIX epoch (for tests).
    pub fn check_at(&self, key: &str, now: Duration) -> Result<RateInfo, RateInfo> {
        let window_ms = self.window.as_millis().max(1) as u64;
        let now_ms = now.as_millis() as u64;
        let start = now_ms - now_ms % window_ms;
        let reset = (start + window_ms).div_ceil(1000);
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if windows.len() > 10_000 {
            windows.retain(|_, (s, _)| *s == start);
        }
        let entry = windows.entry(key.to_owned()).or_insert((start, 0));
        if entry.0 != start {
            *entry = (start, 0);
        }
        if entry.1 >= self.limit {
            return Err(RateInfo {
                limit: self.limit,
                remaining: 0,
                reset,
            });
        }
        entry.1 += 1;
        Ok(RateInfo {
            limit: self.limit,
            remaining: self.limit - entry.1,
            reset,
        })
    }

    /// Gives back a request counted by [`RateLimiter::check`] that turned out not to count
    /// (a password that verified); nothing if its window has ended since.
    pub fn refund(&self, key: &str) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        self.refund_at(key, now);
    }

    /// [`RateLimiter::refund`] at a given time since the UNIX epoch (for tests).
    pub fn refund_at(&self, key: &str, now: Duration) {
        let window_ms = self.window.as_millis().max(1) as u64;
        let now_ms = now.as_millis() as u64;
        let start = now_ms - now_ms % window_ms;
        let mut windows = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(entry) = windows.get_mut(key)
            && entry.0 == start
        {
            entry.1 = entry.1.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_key_and_resets_with_the_window() {
        let limiter = RateLimiter::new(2, Duration::from_secs(60));
        let t = Duration::from_secs(600);
        assert_eq!(limiter.check_at("a", t).unwrap().remaining, 1);
        assert_eq!(limiter.check_at("a", t).unwrap().remaining, 0);
        let refused = limiter.check_at("a", t).unwrap_err();
        assert_eq!(
            (refused.limit, refused.remaining, refused.reset),
            (2, 0, 660)
        );
        assert!(limiter.check_at("b", t).is_ok());
        assert!(limiter.check_at("a", t + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn a_refund_gives_a_request_back_within_its_window_only() {
        let limiter = RateLimiter::new(1, Duration::from_secs(60));
        let t = Duration::from_secs(600);
        assert!(limiter.check_at("a", t).is_ok());
        assert!(limiter.check_at("a", t).is_err());
        limiter.refund_at("a", t);
        assert!(limiter.check_at("a", t).is_ok());
        // A refund in the next window does not add to that window's allowance.
        limiter.refund_at("a", t + Duration::from_secs(60));
        assert!(limiter.check_at("a", t + Duration::from_secs(60)).is_ok());
        assert!(limiter.check_at("a", t + Duration::from_secs(60)).is_err());
    }
}
