//! X's documented reconnect policy for streaming clients (docs/compatibility.md §1.5, "Handling
//! disconnections"), as one small state machine so the stream loop only reports what
//! happened and sleeps for what it is told.
//!
//! - Network errors (refused, reset, timed out, a body that ended): linear backoff, +250 ms
//!   per consecutive failure, capped at 16 s.
//! - HTTP errors: exponential, 5 s doubling to at most 320 s.
//! - HTTP 429 (and the legacy 420): exponential from 60 s, same cap.
//! - A successful connect (HTTP 200) resets everything.
//!
//! These are the constants tweepy's `StreamingClient` uses, except that the first network
//! retry waits 250 ms rather than nothing, so a server that closes at once is not hammered.

use std::time::Duration;

/// Linear step and first wait after a network error.
const NETWORK_STEP: Duration = Duration::from_millis(250);
/// Longest wait after network errors.
const NETWORK_MAX: Duration = Duration::from_secs(16);
/// First wait after an HTTP error.
const HTTP_START: Duration = Duration::from_secs(5);
/// First wait after a 429.
const RATE_LIMITED_START: Duration = Duration::from_secs(60);
/// Longest wait after HTTP errors and 429s.
const HTTP_MAX: Duration = Duration::from_secs(320);

/// Why a connection attempt failed, which decides the backoff family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No HTTP answer, or the stream broke or ended after connecting.
    Network,
    /// The server answered with an error status other than 429/420.
    Http,
    /// The server answered 429 (or X's legacy 420).
    RateLimited,
}

/// The reconnect wait state of one stream client.
#[derive(Debug, Clone)]
pub struct Backoff {
    /// Multiplies every wait; 1.0 in real use, tiny in tests.
    scale: f64,
    network: Duration,
    http: Duration,
}

impl Backoff {
    /// A fresh policy whose waits are X's multiplied by `scale` (must be finite and ≥ 0;
    /// anything else is treated as 1.0).
    pub fn new(scale: f64) -> Self {
        let scale = if scale.is_finite() && scale >= 0.0 {
            scale
        } else {
            1.0
        };
        Self {
            scale,
            network: Duration::ZERO,
            http: Duration::ZERO,
        }
    }

    /// Records a successful connect: the next failure starts each family from its first
    /// step again.
    pub fn connected(&mut self) {
        self.network = Duration::ZERO;
        self.http = Duration::ZERO;
    }

    /// Records a failure and returns how long to wait before the next attempt.
    pub fn failed(&mut self, failure: Failure) -> Duration {
        let wait = match failure {
            Failure::Network => {
                self.network = (self.network + NETWORK_STEP).min(NETWORK_MAX);
                self.network
            }
            Failure::Http => {
                self.http = if self.http.is_zero() {
                    HTTP_START
                } else {
                    (self.http * 2).min(HTTP_MAX)
                };
                self.http
            }
            Failure::RateLimited => {
                self.http = if self.http < RATE_LIMITED_START {
                    RATE_LIMITED_START
                } else {
                    (self.http * 2).min(HTTP_MAX)
                };
                self.http
            }
        };
        wait.mul_f64(self.scale)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(waits: &[Duration]) -> Vec<f64> {
        waits.iter().map(Duration::as_secs_f64).collect()
    }

    #[test]
    fn network_errors_back_off_linearly_to_16_seconds() {
        let mut b = Backoff::new(1.0);
        let waits: Vec<_> = (0..70).map(|_| b.failed(Failure::Network)).collect();
        assert_eq!(secs(&waits[..4]), [0.25, 0.5, 0.75, 1.0]);
        assert_eq!(waits[63], Duration::from_secs(16));
        assert_eq!(waits[69], Duration::from_secs(16));
    }

    #[test]
    fn http_errors_back_off_exponentially_from_5_to_320_seconds() {
        let mut b = Backoff::new(1.0);
        let waits: Vec<_> = (0..9).map(|_| b.failed(Failure::Http)).collect();
        assert_eq!(
            secs(&waits),
            [5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 320.0, 320.0]
        );
    }

    #[test]
    fn rate_limits_start_at_60_seconds_and_double() {
        let mut b = Backoff::new(1.0);
        let waits: Vec<_> = (0..5).map(|_| b.failed(Failure::RateLimited)).collect();
        assert_eq!(secs(&waits), [60.0, 120.0, 240.0, 320.0, 320.0]);
    }

    #[test]
    fn a_429_after_http_errors_waits_at_least_60_seconds() {
        let mut b = Backoff::new(1.0);
        assert_eq!(b.failed(Failure::Http), Duration::from_secs(5));
        assert_eq!(b.failed(Failure::RateLimited), Duration::from_secs(60));
        assert_eq!(b.failed(Failure::Http), Duration::from_secs(120));
    }

    #[test]
    fn a_successful_connect_resets_every_family() {
        let mut b = Backoff::new(1.0);
        for _ in 0..5 {
            b.failed(Failure::Network);
            b.failed(Failure::Http);
        }
        b.connected();
        assert_eq!(b.failed(Failure::Network), Duration::from_millis(250));
        assert_eq!(b.failed(Failure::Http), Duration::from_secs(5));
    }

    #[test]
    fn scale_shrinks_every_wait_and_bad_scales_mean_real_time() {
        let mut b = Backoff::new(0.01);
        assert_eq!(b.failed(Failure::Http), Duration::from_millis(50));
        assert_eq!(b.failed(Failure::Network), Duration::from_micros(2500));
        let mut b = Backoff::new(f64::NAN);
        assert_eq!(b.failed(Failure::Http), Duration::from_secs(5));
        let mut b = Backoff::new(-1.0);
        assert_eq!(b.failed(Failure::Network), Duration::from_millis(250));
    }
}
