//! Budgets of authentication attempts, per user and per client address, in X's fixed
//! windows (so a refusal carries the `x-rate-limit-*` headers clients know).
//!
//! An attempt that needs real verification (a basic-auth password not in the cache, a
//! bearer token) is charged to the budget of the user it names and of the client address
//! it comes from *before* it is verified, and given back when it turns out valid. Charging
//! first means a burst of concurrent wrong passwords is cut off at the budget rather than
//! after it was all verified; giving back means a client whose credentials are right is
//! never refused for them. Unknown users are charged like existing ones, so the refusals
//! do not tell which names exist.

use std::net::IpAddr;
use std::time::Duration;

use crate::ratelimit::{RateInfo, RateLimiter};

/// The budgets of attempts that were not (yet) shown valid.
#[derive(Debug)]
pub struct AuthThrottle {
    per_user: RateLimiter,
    per_client: RateLimiter,
}

/// What an attempt is charged to.
#[derive(Debug, Clone)]
pub struct Attempt {
    user: Option<String>,
    client: Option<String>,
}

impl Attempt {
    /// An attempt on `user` of `account` (basic auth) from `client`, if known.
    pub fn user(account: &str, user: &str, client: Option<IpAddr>) -> Self {
        Self {
            user: Some(format!("{}:{account}:{user}", account.len())),
            client: client.map(|c| c.to_string()),
        }
    }

    /// An attempt naming no user (a bearer token) from `client`, if known.
    pub fn anonymous(client: Option<IpAddr>) -> Self {
        Self {
            user: None,
            client: client.map(|c| c.to_string()),
        }
    }
}

impl AuthThrottle {
    /// At most `per_user` unverified attempts per user and `per_client` per client address
    /// in each `window`.
    pub fn new(per_user: u32, per_client: u32, window: Duration) -> Self {
        Self {
            per_user: RateLimiter::new(per_user, window),
            per_client: RateLimiter::new(per_client, window),
        }
    }

    /// Charges `attempt` to its budgets; `Err` with the header values of the budget that is
    /// spent (and nothing charged).
    pub fn charge(&self, attempt: &Attempt) -> Result<(), RateInfo> {
        if let Some(user) = &attempt.user {
            self.per_user.check(user)?;
        }
        if let Some(client) = &attempt.client
            && let Err(info) = self.per_client.check(client)
        {
            if let Some(user) = &attempt.user {
                self.per_user.refund(user);
            }
            return Err(info);
        }
        Ok(())
    }

    /// Gives back a charge: the attempt was valid, or could not be verified at all.
    pub fn refund(&self, attempt: &Attempt) {
        if let Some(user) = &attempt.user {
            self.per_user.refund(user);
        }
        if let Some(client) = &attempt.client {
            self.per_client.refund(client);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_spent_user_or_client_budget_refuses_and_refunds_give_it_back() {
        let throttle = AuthThrottle::new(2, 3, Duration::from_secs(3600));
        let here = Some(IpAddr::from([127, 0, 0, 1]));
        let alice = Attempt::user("acme", "alice", here);
        assert!(throttle.charge(&alice).is_ok());
        assert!(throttle.charge(&alice).is_ok());
        let refused = throttle.charge(&alice).unwrap_err();
        assert_eq!((refused.limit, refused.remaining), (2, 0));
        // The same client has one attempt left, for another user.
        let bob = Attempt::user("acme", "bob", here);
        assert!(throttle.charge(&bob).is_ok());
        let refused = throttle.charge(&bob).unwrap_err();
        assert_eq!(refused.limit, 3, "the client's budget refuses");
        // Bob was not charged for the refused attempt: from elsewhere, he has one left.
        let elsewhere = Attempt::user("acme", "bob", Some(IpAddr::from([10, 0, 0, 1])));
        assert!(throttle.charge(&elsewhere).is_ok());
        assert!(throttle.charge(&elsewhere).is_err());
        // A valid attempt gives its charge back.
        throttle.refund(&alice);
        assert!(
            throttle
                .charge(&Attempt::user("acme", "alice", None))
                .is_ok()
        );
        assert!(throttle.charge(&Attempt::anonymous(here)).is_ok());
        assert!(throttle.charge(&Attempt::anonymous(here)).is_err());
    }
}
