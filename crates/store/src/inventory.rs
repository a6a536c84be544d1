//! What the operator lists and removes: accounts page by page with what each owns,
//! an account with everything it owns, an account's tokens (listed and revoked), an app.
//! The foreign keys of the schema (`ON DELETE CASCADE`) make an account's delete take its
//! users, streams, rules, tokens and apps in one statement.

use rusqlite::{OptionalExtension, params};

use crate::apps::StoredApp;
use crate::store::{Store, StoreError};

/// An account as the operator's list shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSummary {
    /// The account name.
    pub name: String,
    /// Creation time, epoch milliseconds.
    pub created_ms: i64,
    /// Basic-auth users.
    pub users: u64,
    /// Streams of every product (Powerstream's and the apps' v2 streams included).
    pub streams: u64,
    /// Powerstream tokens.
    pub tokens: u64,
    /// v2 apps.
    pub apps: u64,
}

/// A Powerstream token as stored: its hash and public prefix, never the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredToken {
    /// SHA-256 of the token.
    pub hash: Vec<u8>,
    /// The prefix stored with it (see the server's `displayable_prefix`).
    pub prefix: String,
    /// Creation time, epoch milliseconds.
    pub created_ms: i64,
    /// The operator's label, if it gave one.
    pub label: Option<String>,
}

impl Store {
    /// Up to `limit` accounts in name order, starting after `after` (exclusive).
    pub fn accounts_page(
        &self,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AccountSummary>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT a.name, a.created_ms,
                (SELECT COUNT(*) FROM users u WHERE u.account = a.name),
                (SELECT COUNT(*) FROM streams s WHERE s.account = a.name),
                (SELECT COUNT(*) FROM tokens t WHERE t.account = a.name),
                (SELECT COUNT(*) FROM apps p WHERE p.account = a.name)
             FROM accounts a WHERE ?1 IS NULL OR a.name > ?1 ORDER BY a.name LIMIT ?2",
        )?;
        let count = |row: &rusqlite::Row<'_>, i| row.get::<_, i64>(i).map(i64::unsigned_abs);
        let rows = stmt.query_map(params![after, limit], |row| {
            Ok(AccountSummary {
                name: row.get(0)?,
                created_ms: row.get(1)?,
                users: count(row, 2)?,
                streams: count(row, 3)?,
                tokens: count(row, 4)?,
                apps: count(row, 5)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes an account with its users, streams, rules, tokens and apps; returns
    /// whether it existed.
    pub fn delete_account(&self, name: &str) -> Result<bool, StoreError> {
        let n = self
            .conn()
            .execute("DELETE FROM accounts WHERE name = ?1", [name])?;
        Ok(n == 1)
    }

    /// The account's tokens, oldest first.
    pub fn tokens(&self, account: &str) -> Result<Vec<StoredToken>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT hash, prefix, created_ms, label FROM tokens WHERE account = ?1
             ORDER BY created_ms, rowid",
        )?;
        let rows = stmt.query_map([account], |row| {
            Ok(StoredToken {
                hash: row.get(0)?,
                prefix: row.get(1)?,
                created_ms: row.get(2)?,
                label: row.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Sets (or clears, with `None`) a token's label; returns whether the token exists.
    pub fn set_token_label(&self, hash: &[u8], label: Option<&str>) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "UPDATE tokens SET label = ?2 WHERE hash = ?1",
            params![hash, label],
        )?;
        Ok(n == 1)
    }

    /// Deletes a token by its hash; returns the account it belonged to.
    pub fn delete_token(&self, hash: &[u8]) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "DELETE FROM tokens WHERE hash = ?1 RETURNING account",
                [hash],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Deletes an app (its streams are the server's to delete: they are streams of the
    /// account labelled with the app id); returns it if it existed.
    pub fn delete_app(&self, id: &str) -> Result<Option<StoredApp>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let app = crate::apps::find_app(&tx, id)?;
        tx.execute("DELETE FROM apps WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(app)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Product, StreamLimits, StreamRef};

    fn store_with(accounts: &[&str]) -> Store {
        let store = Store::open_in_memory().unwrap();
        for (i, name) in accounts.iter().enumerate() {
            store.put_account(name, i as i64).unwrap();
        }
        store
    }

    #[test]
    fn accounts_are_paged_in_name_order_with_what_they_own() {
        let store = store_with(&["b", "a", "c"]);
        store.put_user("a", "alice", "h").unwrap();
        store.add_token("a", &[1; 32], "sl_ps_00000000", 5).unwrap();
        let first = store.accounts_page(None, 2).unwrap();
        let names: Vec<&str> = first.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!((first[0].users, first[0].tokens), (1, 1));
        assert_eq!((first[1].users, first[1].created_ms), (0, 0));
        let rest = store.accounts_page(Some("b"), 2).unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].name, "c");
        assert!(store.accounts_page(Some("c"), 2).unwrap().is_empty());
    }

    #[test]
    fn deleting_an_account_takes_everything_it_owns() {
        let store = store_with(&["acme", "other"]);
        store.put_user("acme", "alice", "h").unwrap();
        store.add_token("acme", &[1; 32], "p", 0).unwrap();
        let stream = StreamRef {
            account: "acme".into(),
            product: Product::PowerTrack,
            label: "prod".into(),
        };
        let limits = StreamLimits {
            max_connections: 1,
            max_rules: 1,
        };
        store.put_stream(&stream, limits, 0).unwrap();
        store.put_user("other", "bob", "h").unwrap();
        assert!(store.delete_account("acme").unwrap());
        assert!(!store.delete_account("acme").unwrap());
        assert!(!store.account_exists("acme").unwrap());
        assert_eq!(store.password_hash("acme", "alice").unwrap(), None);
        assert_eq!(store.token_account(&[1; 32]).unwrap(), None);
        assert!(store.streams("acme").unwrap().is_empty());
        assert_eq!(
            store.password_hash("other", "bob").unwrap().as_deref(),
            Some("h")
        );
    }

    #[test]
    fn tokens_are_listed_and_deleted_by_hash() {
        let store = store_with(&["acme"]);
        store
            .add_token("acme", &[2; 32], "sl_ps_bbbbbbbb", 2)
            .unwrap();
        store
            .add_token("acme", &[1; 32], "sl_ps_aaaaaaaa", 1)
            .unwrap();
        let tokens = store.tokens("acme").unwrap();
        let prefixes: Vec<&str> = tokens.iter().map(|t| t.prefix.as_str()).collect();
        assert_eq!(prefixes, ["sl_ps_aaaaaaaa", "sl_ps_bbbbbbbb"]);
        assert_eq!(tokens[0].hash, vec![1; 32]);
        assert_eq!(tokens[0].label, None);
        assert!(store.set_token_label(&[2; 32], Some("ci")).unwrap());
        assert!(!store.set_token_label(&[3; 32], Some("ci")).unwrap());
        assert_eq!(
            store.tokens("acme").unwrap()[1].label.as_deref(),
            Some("ci")
        );
        assert_eq!(
            store.delete_token(&[1; 32]).unwrap().as_deref(),
            Some("acme")
        );
        assert_eq!(store.delete_token(&[1; 32]).unwrap(), None);
        assert_eq!(store.token_account(&[1; 32]).unwrap(), None);
        assert_eq!(store.tokens("acme").unwrap().len(), 1);
    }
}
