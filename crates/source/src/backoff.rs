//! How long a source waits before reconnecting to its upstream: exponential, from
//! [`Backoff::new`]'s first wait doubling to its cap, each wait drawn at random between
//! half and all of that ("equal jitter"), so that many consumers cut off at once do not
//! come back in step. A connection that delivered events resets it.
//!
//! Not `sluice_client::backoff`: that one is X's documented policy for stream clients
//! (linear after network errors); an upstream firehose gets the usual exponential one.

use std::time::Duration;

use rand::Rng as _;

/// The reconnect wait state of one source.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    cap: Duration,
    failures: u32,
}

impl Backoff {
    /// Waits starting at `first`, doubling per consecutive failure up to `cap`.
    pub fn new(first: Duration, cap: Duration) -> Self {
        Self {
            first,
            cap: cap.max(first),
            failures: 0,
        }
    }

    /// The upstream delivered: the next failure waits `first` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Records a failure and returns how long to wait before the next attempt.
    pub fn failed(&mut self) -> Duration {
        let ceiling = self
            .first
            .saturating_mul(1 << self.failures.min(20))
            .min(self.cap);
        self.failures = self.failures.saturating_add(1);
        let half = ceiling / 2;
        half + half.mul_f64(rand::rng().random::<f64>())
    }
}

impl Default for Backoff {
    /// 500 ms doubling to 30 s.
    fn default() -> Self {
        Self::new(Duration::from_millis(500), Duration::from_secs(30))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_within_jitter_up_to_the_cap_and_reset() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(8));
        let ceilings = [1, 2, 4, 8, 8, 8];
        for ceiling in ceilings {
            let ceiling = Duration::from_secs(ceiling);
            let wait = b.failed();
            assert!(
                wait >= ceiling / 2 && wait <= ceiling,
                "{wait:?} vs {ceiling:?}"
            );
        }
        b.reset();
        assert!(b.failed() <= Duration::from_secs(1));
    }

    #[test]
    fn jitter_spreads_the_waits() {
        let waits: std::collections::HashSet<Duration> = (0..20)
            .map(|_| Backoff::new(Duration::from_secs(10), Duration::from_secs(10)).failed())
            .collect();
        assert!(waits.len() > 1, "20 draws gave one wait: no jitter");
    }
}
