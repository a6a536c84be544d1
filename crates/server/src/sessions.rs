//! Which open stream connections each credential holds (a basic-auth user, a Powerstream
//! token), so that a password change, the user's deletion or the token's revocation closes
//! them (with [`CloseReason::CredentialsRevoked`]): a credential that no longer works must
//! not keep a stream flowing.
//!
//! Every connection opened with a credential is held here for as long as its body lives
//! (live, backfilling or recovering). Revoking a credential closes the connections held
//! and moves it to a new generation; a request that was authenticated in an older
//! generation (it raced the change) has its connection closed as soon as it opens.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use indexmap::IndexMap;

use crate::delivery::{CloseReason, Outbox};

/// The open connections of every credential.
#[derive(Default)]
pub struct Sessions {
    users: Arc<Mutex<HashMap<Credential, UserSessions>>>,
}

/// What a stream connection was opened with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Credential {
    /// A basic-auth user of an account (the Gnip-style streams).
    User {
        /// The account.
        account: String,
        /// The username.
        username: String,
    },
    /// A Powerstream bearer token, by the SHA-256 of the token.
    Token {
        /// The token's hash.
        hash: [u8; 32],
    },
}

impl Credential {
    /// A basic-auth user of `account`.
    pub fn user(account: &str, username: &str) -> Self {
        Credential::User {
            account: account.to_owned(),
            username: username.to_owned(),
        }
    }
}

/// A credential a request was authenticated with, and its generation read before the
/// check: what [`Sessions::open`] holds the request's stream under.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The credential.
    pub credential: Credential,
    /// Its generation when the request was checked.
    pub generation: u64,
}

/// A credential's generation and its connections by session id (a map: with thousands
/// of connections under one credential, a list searched on each close made closing them
/// all cost N² under the lock every connect takes).
#[derive(Default)]
struct UserSessions {
    generation: u64,
    open: IndexMap<u64, Weak<Outbox>>,
}

static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

impl Sessions {
    fn users(&self) -> std::sync::MutexGuard<'_, HashMap<Credential, UserSessions>> {
        self.users.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The credential's generation: read it before the credential is checked, and hand
    /// it to [`Sessions::open`] (in a [`Checked`]).
    pub fn generation(&self, credential: &Credential) -> u64 {
        self.users().get(credential).map_or(0, |u| u.generation)
    }

    /// Holds `outbox` as a connection of the credential until the returned guard is
    /// dropped. If the credential was revoked since it was checked, the connection is
    /// closed at once.
    pub fn open(&self, checked: &Checked, outbox: &Arc<Outbox>) -> SessionGuard {
        let id = NEXT_SESSION.fetch_add(1, Ordering::Relaxed);
        let key = checked.credential.clone();
        let mut users = self.users();
        let sessions = users.entry(key.clone()).or_default();
        if sessions.generation != checked.generation {
            outbox.close(CloseReason::CredentialsRevoked);
        }
        sessions.open.insert(id, Arc::downgrade(outbox));
        SessionGuard {
            users: Arc::downgrade(&self.users),
            key,
            id,
        }
    }

    /// Closes every connection of the credential and starts its next generation; returns
    /// how many connections were closed.
    pub fn revoke(&self, credential: &Credential) -> usize {
        let mut users = self.users();
        let sessions = users.entry(credential.clone()).or_default();
        sessions.generation += 1;
        let mut closed = 0;
        for outbox in sessions.open.values().filter_map(Weak::upgrade) {
            outbox.close(CloseReason::CredentialsRevoked);
            closed += 1;
        }
        closed
    }

    /// Number of connections held for the credential.
    pub fn open_count(&self, credential: &Credential) -> usize {
        self.users().get(credential).map_or(0, |u| u.open.len())
    }
}

/// A connection held in [`Sessions`]; dropping it (when the connection's body ends)
/// lets go of the connection.
pub struct SessionGuard {
    users: Weak<Mutex<HashMap<Credential, UserSessions>>>,
    key: Credential,
    id: u64,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        let Some(users) = self.users.upgrade() else {
            return;
        };
        let mut users = users.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sessions) = users.get_mut(&self.key) {
            sessions.open.swap_remove(&self.id);
            crate::registry::release_spare(&mut sessions.open);
            // A credential never revoked needs no entry once it holds no connection.
            if sessions.open.is_empty() && sessions.generation == 0 {
                users.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::Encoding;

    fn alice() -> Credential {
        Credential::user("acme", "alice")
    }

    fn checked(credential: Credential, generation: u64) -> Checked {
        Checked {
            credential,
            generation,
        }
    }

    fn outbox() -> Arc<Outbox> {
        Arc::new(Outbox::new(1 << 10, Encoding::Gzip))
    }

    #[test]
    fn revoking_a_user_closes_its_connections_only() {
        let sessions = Sessions::default();
        let (a, b, other) = (outbox(), outbox(), outbox());
        let bob = Credential::user("acme", "bob");
        let token = Credential::Token { hash: [7; 32] };
        let _ga = sessions.open(&checked(alice(), 0), &a);
        let gb = sessions.open(&checked(alice(), 0), &b);
        let _go = sessions.open(&checked(bob.clone(), 0), &other);
        let by_token = outbox();
        let _gt = sessions.open(&checked(token.clone(), 0), &by_token);
        drop(gb);
        assert_eq!(sessions.open_count(&alice()), 1);
        assert_eq!(sessions.revoke(&alice()), 1);
        assert!(a.is_closed());
        assert!(!b.is_closed(), "its body had ended: not held any more");
        assert!(!other.is_closed());
        assert!(!by_token.is_closed());
        assert_eq!(sessions.generation(&alice()), 1);
        assert_eq!(sessions.generation(&bob), 0);
        assert_eq!(sessions.revoke(&token), 1);
        assert!(by_token.is_closed());
    }

    #[test]
    fn a_connection_authenticated_before_a_revocation_is_closed_when_it_opens() {
        let sessions = Sessions::default();
        let seen = sessions.generation(&alice());
        sessions.revoke(&alice());
        let late = outbox();
        let _guard = sessions.open(&checked(alice(), seen), &late);
        assert!(late.is_closed());
        let fresh = outbox();
        let now = sessions.generation(&alice());
        let _guard = sessions.open(&checked(alice(), now), &fresh);
        assert!(!fresh.is_closed());
    }

    #[test]
    fn users_never_revoked_leave_no_entry_behind() {
        let sessions = Sessions::default();
        drop(sessions.open(&checked(alice(), 0), &outbox()));
        assert!(sessions.users().is_empty());
    }
}
