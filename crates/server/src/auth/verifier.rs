//! Running argon2 password checks without letting them exhaust the node.
//!
//! One check of a default argon2id hash takes about 19 MiB and tens of milliseconds of a
//! core. Wrong passwords are never cached, so unbounded, a burst of them runs hundreds of
//! checks at once: gigabytes, which the allocator keeps after the burst (each check's
//! blocks come and go in its thread's malloc arena). Here:
//! - at most `permits` checks run at once, each in one of `permits` work areas that are
//!   allocated once and reused, so memory for checks is at most `permits` × 19 MiB and the
//!   allocator never sees the 19 MiB blocks come and go;
//! - a check waits at most `wait` for a permit, and at most `max_waiting` checks wait;
//!   beyond either the answer is [`Checked::Busy`] (the caller refuses with 503);
//! - a user that does not exist is checked against [`DUMMY_HASH`], which has the
//!   parameters of every stored hash, so an unknown user takes as long as a wrong
//!   password and response times do not tell which user names exist.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use subtle::ConstantTimeEq as _;
use tokio::sync::Semaphore;

use crate::telemetry;

/// An argon2id hash (default parameters, as [`super::hash_password`] makes them) of a
/// random password nobody knows: what users that do not exist are checked against.
pub const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$2SNXsmjYkTsQz7cJTS3jPw$7JC5tlFGwcjVHw6Me4EFl89Z/544dM6dtb4CIDZxW+M";

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// The password matches the user's hash.
    Valid,
    /// It does not, or there is no such user.
    Invalid,
    /// Too many checks are running or waiting: nothing was checked.
    Busy,
}

/// Counts of the checks a verifier ran, for `/metrics`-independent assertions in tests
/// and for the operator's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifierStats {
    /// Checks started (argon2 runs), dummy ones included.
    pub checks: u64,
    /// Checks running now.
    pub running: usize,
    /// The most checks that ever ran at once.
    pub max_running: usize,
}

#[derive(Default)]
struct Counters {
    checks: AtomicU64,
    running: AtomicUsize,
    max_running: AtomicUsize,
}

/// Runs argon2 checks, at most `permits` at once (see the module docs).
pub struct PasswordVerifier {
    permits: Arc<Semaphore>,
    wait: Duration,
    max_waiting: usize,
    waiting: Arc<AtomicUsize>,
    areas: Arc<Mutex<Vec<Vec<Block>>>>,
    counters: Arc<Counters>,
}

impl PasswordVerifier {
    /// A verifier running at most `permits` (at least 1) checks at once; a check waits at
    /// most `wait` for its turn, behind at most `max_waiting` others.
    pub fn new(permits: usize, wait: Duration, max_waiting: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(permits.max(1))),
            wait,
            max_waiting,
            waiting: Arc::new(AtomicUsize::new(0)),
            areas: Arc::new(Mutex::new(Vec::new())),
            counters: Arc::new(Counters::default()),
        }
    }

    /// Checks `password` against `hash` (`None`: the user does not exist, and the check
    /// runs against [`DUMMY_HASH`] and fails).
    pub async fn verify(&self, password: String, hash: Option<String>) -> Checked {
        let Some(_waiting) = WaitingSlot::take(&self.waiting, self.max_waiting) else {
            telemetry::password_check_refused("queue full");
            return Checked::Busy;
        };
        let permit = tokio::time::timeout(self.wait, self.permits.clone().acquire_owned()).await;
        let Ok(Ok(permit)) = permit else {
            telemetry::password_check_refused("waited too long");
            return Checked::Busy;
        };
        drop(_waiting);
        let areas = self.areas.clone();
        let counters = self.counters.clone();
        // The permit goes with the work: it is released when argon2 is done, even if the
        // request that asked has gone away meanwhile.
        let checked = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut area = lock(&areas).pop().unwrap_or_default();
            counters.checks.fetch_add(1, Ordering::Relaxed);
            let running = counters.running.fetch_add(1, Ordering::SeqCst) + 1;
            counters.max_running.fetch_max(running, Ordering::SeqCst);
            telemetry::password_check();
            let phc = hash.as_deref().unwrap_or(DUMMY_HASH);
            let valid = verify_in(password.as_bytes(), phc, &mut area) && hash.is_some();
            counters.running.fetch_sub(1, Ordering::SeqCst);
            lock(&areas).push(area);
            valid
        })
        .await;
        match checked {
            Ok(true) => Checked::Valid,
            Ok(false) => Checked::Invalid,
            Err(e) => {
                tracing::error!("a password check failed: {e}");
                Checked::Invalid
            }
        }
    }

    /// What the verifier has run so far.
    pub fn stats(&self) -> VerifierStats {
        VerifierStats {
            checks: self.counters.checks.load(Ordering::Relaxed),
            running: self.counters.running.load(Ordering::SeqCst),
            max_running: self.counters.max_running.load(Ordering::SeqCst),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One of the `max_waiting` places in the queue for a permit, given back on drop (also
/// when the waiting request goes away).
struct WaitingSlot<'a>(&'a AtomicUsize);

impl<'a> WaitingSlot<'a> {
    fn take(waiting: &'a AtomicUsize, max: usize) -> Option<Self> {
        let before = waiting.fetch_add(1, Ordering::SeqCst);
        let slot = WaitingSlot(waiting);
        (before < max).then_some(slot)
    }
}

impl Drop for WaitingSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Whether `password` matches the PHC string `phc`, computing argon2 in `area` (grown to
/// the hash's memory cost if needed, and kept for the next check).
fn verify_in(password: &[u8], phc: &str, area: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    if area.len() < params.block_count() {
        area.resize(params.block_count(), Block::default());
    }
    let mut computed = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, &mut computed, &mut area[..])
        .is_ok_and(|()| computed.ct_eq(expected.as_bytes()).into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::hash_password;

    #[test]
    fn checks_in_a_reused_area_agree_with_argon2() {
        let hash = hash_password("s3cret");
        let mut area = Vec::new();
        assert!(verify_in(b"s3cret", &hash, &mut area));
        let size = area.len();
        assert!(!verify_in(b"s3cret ", &hash, &mut area));
        assert!(verify_in(b"s3cret", &hash, &mut area));
        assert_eq!(area.len(), size, "the area is reused, not regrown");
        assert!(!verify_in(b"s3cret", "not a hash", &mut area));
    }

    #[test]
    fn the_dummy_hash_costs_what_a_stored_hash_costs() {
        let stored = PasswordHash::new(&hash_password("x")).unwrap().to_string();
        let stored = PasswordHash::new(&stored).unwrap();
        let dummy = PasswordHash::new(DUMMY_HASH).unwrap();
        assert_eq!(dummy.algorithm, stored.algorithm);
        assert_eq!(dummy.version, stored.version);
        assert_eq!(dummy.params, stored.params);
        assert_eq!(dummy.hash.unwrap().len(), stored.hash.unwrap().len());
        assert_eq!(
            dummy.salt.unwrap().as_str().len(),
            stored.salt.unwrap().as_str().len()
        );
    }

    #[tokio::test]
    async fn an_unknown_user_runs_a_check_and_fails() {
        let verifier = PasswordVerifier::new(1, Duration::from_secs(5), 10);
        assert_eq!(verifier.verify("x".into(), None).await, Checked::Invalid);
        assert_eq!(verifier.stats().checks, 1);
        let hash = hash_password("x");
        assert_eq!(
            verifier.verify("x".into(), Some(hash)).await,
            Checked::Valid
        );
        assert_eq!(verifier.stats().checks, 2);
    }

    #[tokio::test]
    async fn a_check_that_cannot_get_a_permit_in_time_is_refused_as_busy() {
        let verifier = PasswordVerifier::new(1, Duration::from_millis(20), 10);
        let held = verifier.permits.clone().acquire_owned().await.unwrap();
        assert_eq!(verifier.verify("x".into(), None).await, Checked::Busy);
        assert_eq!(verifier.stats().checks, 0);
        drop(held);
        assert_eq!(verifier.verify("x".into(), None).await, Checked::Invalid);
    }

    #[tokio::test]
    async fn checks_beyond_the_queue_are_refused_at_once() {
        let verifier = Arc::new(PasswordVerifier::new(1, Duration::from_secs(30), 1));
        let held = verifier.permits.clone().acquire_owned().await.unwrap();
        let queued = tokio::spawn({
            let verifier = verifier.clone();
            async move { verifier.verify("x".into(), None).await }
        });
        while verifier.waiting.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        assert_eq!(verifier.verify("y".into(), None).await, Checked::Busy);
        drop(held);
        assert_eq!(queued.await.unwrap(), Checked::Invalid);
    }
}
