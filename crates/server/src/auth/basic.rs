//! Basic-auth passwords as requests present them: from the cache when verified recently,
//! else verified once however many requests present the same credentials at the same
//! time, after being charged to the user's and the client's attempt budgets.
//!
//! Gnip clients send basic auth on every request and reconnect all at once after an
//! outage: a storm of requests with the same (right) credentials waits on one argon2
//! check (a single flight per credentials) and the cache answers every request after it.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use super::throttle::{Attempt, AuthThrottle};
use super::verifier::{Checked, PasswordVerifier, VerifierStats};
use super::{AuthSettings, CredentialCache};
use crate::ratelimit::RateInfo;
use crate::telemetry;

/// Credentials from an `Authorization: Basic` header, for an account.
#[derive(Debug, Clone, Copy)]
pub struct Presented<'a> {
    /// The account of the URL.
    pub account: &'a str,
    /// The username.
    pub user: &'a str,
    /// The password.
    pub password: &'a str,
    /// The client's address, when known.
    pub client: Option<IpAddr>,
}

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The user exists and the password is right.
    Valid,
    /// No such user, or a wrong password.
    Invalid,
    /// The user's or the client's attempt budget is spent (429 with these headers).
    Throttled(RateInfo),
    /// Too many password checks running or waiting (503).
    Busy,
    /// The user could not be looked up (500).
    Failed,
}

/// The cache, the checks in flight, the budgets and the bounded verifier together.
pub struct Passwords {
    cache: CredentialCache,
    in_flight: Mutex<HashMap<FlightKey, Arc<OnceCell<Outcome>>>>,
    verifier: PasswordVerifier,
    throttle: Arc<AuthThrottle>,
}

/// Credentials and the cache epoch they are verified in: after a password change,
/// requests never join a check that started before it.
type FlightKey = ([u8; 32], u64);

impl Passwords {
    /// Passwords checked as `settings` says, charging attempts to `throttle`.
    pub fn new(settings: &AuthSettings, throttle: Arc<AuthThrottle>) -> Self {
        Self {
            cache: CredentialCache::default(),
            in_flight: Mutex::new(HashMap::new()),
            verifier: PasswordVerifier::new(
                settings.password_checks,
                settings.password_check_wait,
                settings.password_check_queue,
            ),
            throttle,
        }
    }

    /// Checks `presented`; `lookup` fetches the user's stored hash (`None`: no such user or
    /// account) when a check has to run.
    pub async fn check<F, Fut>(&self, presented: &Presented<'_>, lookup: F) -> Outcome
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<String>, sluice_store::StoreError>>,
    {
        let Presented {
            account,
            user,
            password,
            ..
        } = *presented;
        if self.cache.contains(account, user, password) {
            return Outcome::Valid;
        }
        let epoch = self.cache.epoch();
        let key = (CredentialCache::key(account, user, password), epoch);
        let flight = lock(&self.in_flight).entry(key).or_default().clone();
        let _landing = Landing {
            in_flight: &self.in_flight,
            key,
            flight: &flight,
        };
        *flight
            .get_or_init(|| self.verify(presented, epoch, lookup))
            .await
    }

    /// One check: charge, look up, verify, cache.
    async fn verify<F, Fut>(&self, presented: &Presented<'_>, epoch: u64, lookup: F) -> Outcome
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<String>, sluice_store::StoreError>>,
    {
        let Presented {
            account,
            user,
            password,
            client,
        } = *presented;
        let attempt = Attempt::user(account, user, client);
        if let Err(rate) = self.throttle.charge(&attempt) {
            telemetry::auth_throttled();
            return Outcome::Throttled(rate);
        }
        let hash = match lookup().await {
            Ok(hash) => hash,
            Err(e) => {
                self.throttle.refund(&attempt);
                tracing::error!("looking up a user failed: {e}");
                return Outcome::Failed;
            }
        };
        match self.verifier.verify(password.to_owned(), hash).await {
            Checked::Valid => {
                self.throttle.refund(&attempt);
                self.cache.insert_in(epoch, account, user, password);
                Outcome::Valid
            }
            Checked::Invalid => Outcome::Invalid,
            Checked::Busy => {
                self.throttle.refund(&attempt);
                Outcome::Busy
            }
        }
    }

    /// Forgets every verified password (one changed, or a user was deleted); checks in
    /// flight no longer fill the cache.
    pub fn forget_verified(&self) {
        self.cache.clear();
    }

    /// The password checks run so far.
    pub fn stats(&self) -> VerifierStats {
        self.verifier.stats()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes a finished (or abandoned) flight out of the map when its request is done with it,
/// unless a newer flight has taken its place.
struct Landing<'a> {
    in_flight: &'a Mutex<HashMap<FlightKey, Arc<OnceCell<Outcome>>>>,
    key: FlightKey,
    flight: &'a Arc<OnceCell<Outcome>>,
}

impl Drop for Landing<'_> {
    fn drop(&mut self) {
        let mut in_flight = lock(self.in_flight);
        if in_flight
            .get(&self.key)
            .is_some_and(|f| Arc::ptr_eq(f, self.flight))
        {
            in_flight.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::auth::hash_password;

    fn passwords(per_user: u32) -> Passwords {
        let settings = AuthSettings {
            password_checks: 2,
            attempts_per_user: per_user,
            ..AuthSettings::default()
        };
        let throttle = AuthThrottle::new(per_user, 1_000, Duration::from_secs(3600));
        Passwords::new(&settings, Arc::new(throttle))
    }

    fn alice(password: &str) -> Presented<'_> {
        Presented {
            account: "acme",
            user: "alice",
            password,
            client: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_with_the_same_credentials_share_one_check() {
        let passwords = Arc::new(passwords(100));
        let hash = hash_password("secret");
        let lookups = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (passwords, hash, lookups) = (passwords.clone(), hash.clone(), lookups.clone());
                tokio::spawn(async move {
                    passwords
                        .check(&alice("secret"), || async move {
                            lookups.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            Ok(Some(hash))
                        })
                        .await
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap(), Outcome::Valid);
        }
        assert_eq!(passwords.stats().checks, 1);
        assert_eq!(lookups.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(lock(&passwords.in_flight).is_empty());
    }

    #[tokio::test]
    async fn wrong_passwords_spend_the_budget_and_a_right_one_gives_its_charge_back() {
        let passwords = passwords(2);
        let hash = hash_password("secret");
        let lookup = || async { Ok(Some(hash.clone())) };
        assert_eq!(passwords.check(&alice("a"), lookup).await, Outcome::Invalid);
        assert_eq!(
            passwords.check(&alice("secret"), lookup).await,
            Outcome::Valid
        );
        passwords.forget_verified();
        // The wrong attempt is charged, the right one was given back: one more is allowed.
        assert_eq!(passwords.check(&alice("b"), lookup).await, Outcome::Invalid);
        assert!(matches!(
            passwords.check(&alice("c"), lookup).await,
            Outcome::Throttled(rate) if rate.limit == 2 && rate.remaining == 0
        ));
        // Throttled attempts run no check, and cached credentials pass regardless.
        assert_eq!(passwords.stats().checks, 3);
    }

    #[tokio::test]
    async fn a_check_that_started_before_a_password_change_does_not_fill_the_cache() {
        let passwords = passwords(100);
        let old = hash_password("old");
        let outcome = passwords
            .check(&alice("old"), || async {
                // The password changes while the old hash is being checked.
                passwords.forget_verified();
                Ok(Some(old.clone()))
            })
            .await;
        assert_eq!(outcome, Outcome::Valid);
        assert!(!passwords.cache.contains("acme", "alice", "old"));
    }
}
