//! Which open stream connections each basic-auth user holds, so that a password change
//! or the user's deletion closes them (with [`CloseReason::CredentialsRevoked`]): a
//! credential that no longer works must not keep a stream flowing.
//!
//! Every connection opened with a user's credentials is held here for as long as its body
//! lives (live, backfilling or recovering). Revoking a user closes the connections held
//! and moves the user to a new generation; a request that was authenticated in an older
//! generation (it raced the change) has its connection closed as soon as it opens.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use crate::delivery::{CloseReason, Outbox};

/// The open connections of every user, by account and username.
#[derive(Default)]
pub struct Sessions {
    users: Arc<Mutex<HashMap<UserKey, UserSessions>>>,
}

type UserKey = (String, String);

#[derive(Default)]
struct UserSessions {
    generation: u64,
    open: Vec<(u64, Weak<Outbox>)>,
}

static NEXT_SESSION: AtomicU64 = AtomicU64::new(1);

fn key(account: &str, user: &str) -> UserKey {
    (account.to_owned(), user.to_owned())
}

impl Sessions {
    fn users(&self) -> std::sync::MutexGuard<'_, HashMap<UserKey, UserSessions>> {
        self.users.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The user's generation: read it before the user's credentials are checked, and hand
    /// it to [`Sessions::open`].
    pub fn generation(&self, account: &str, user: &str) -> u64 {
        self.users()
            .get(&key(account, user))
            .map_or(0, |u| u.generation)
    }

    /// Holds `outbox` as a connection of the user until the returned guard is dropped. If
    /// the user was revoked since `generation`, the connection is closed at once.
    pub fn open(
        &self,
        account: &str,
        user: &str,
        generation: u64,
        outbox: &Arc<Outbox>,
    ) -> SessionGuard {
        let id = NEXT_SESSION.fetch_add(1, Ordering::Relaxed);
        let key = key(account, user);
        let mut users = self.users();
        let sessions = users.entry(key.clone()).or_default();
        if sessions.generation != generation {
            outbox.close(CloseReason::CredentialsRevoked);
        }
        sessions.open.push((id, Arc::downgrade(outbox)));
        SessionGuard {
            users: Arc::downgrade(&self.users),
            key,
            id,
        }
    }

    /// Closes every connection of the user and starts its next generation; returns how
    /// many connections were closed.
    pub fn revoke(&self, account: &str, user: &str) -> usize {
        let mut users = self.users();
        let sessions = users.entry(key(account, user)).or_default();
        sessions.generation += 1;
        let mut closed = 0;
        for outbox in sessions.open.iter().filter_map(|(_, o)| o.upgrade()) {
            outbox.close(CloseReason::CredentialsRevoked);
            closed += 1;
        }
        closed
    }

    /// Number of connections held for the user.
    pub fn open_count(&self, account: &str, user: &str) -> usize {
        self.users()
            .get(&key(account, user))
            .map_or(0, |u| u.open.len())
    }
}

/// A connection held in [`Sessions`]; dropping it (when the connection's body ends)
/// lets go of the connection.
pub struct SessionGuard {
    users: Weak<Mutex<HashMap<UserKey, UserSessions>>>,
    key: UserKey,
    id: u64,
}

impl Drop for SessionGuard {
    fn drop(&mut self) {
        let Some(users) = self.users.upgrade() else {
            return;
        };
        let mut users = users.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sessions) = users.get_mut(&self.key) {
            sessions.open.retain(|(id, _)| *id != self.id);
            // A user never revoked needs no entry once it holds no connection.
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

    fn outbox() -> Arc<Outbox> {
        Arc::new(Outbox::new(1 << 10, Encoding::Gzip))
    }

    #[test]
    fn revoking_a_user_closes_its_connections_only() {
        let sessions = Sessions::default();
        let (a, b, other) = (outbox(), outbox(), outbox());
        let _ga = sessions.open("acme", "alice", 0, &a);
        let gb = sessions.open("acme", "alice", 0, &b);
        let _go = sessions.open("acme", "bob", 0, &other);
        drop(gb);
        assert_eq!(sessions.open_count("acme", "alice"), 1);
        assert_eq!(sessions.revoke("acme", "alice"), 1);
        assert!(a.is_closed());
        assert!(!b.is_closed(), "its body had ended: not held any more");
        assert!(!other.is_closed());
        assert_eq!(sessions.generation("acme", "alice"), 1);
        assert_eq!(sessions.generation("acme", "bob"), 0);
    }

    #[test]
    fn a_connection_authenticated_before_a_revocation_is_closed_when_it_opens() {
        let sessions = Sessions::default();
        let seen = sessions.generation("acme", "alice");
        sessions.revoke("acme", "alice");
        let late = outbox();
        let _guard = sessions.open("acme", "alice", seen, &late);
        assert!(late.is_closed());
        let fresh = outbox();
        let _guard = sessions.open(
            "acme",
            "alice",
            sessions.generation("acme", "alice"),
            &fresh,
        );
        assert!(!fresh.is_closed());
    }

    #[test]
    fn users_never_revoked_leave_no_entry_behind() {
        let sessions = Sessions::default();
        drop(sessions.open("acme", "alice", 0, &outbox()));
        assert!(sessions.users().is_empty());
    }
}
