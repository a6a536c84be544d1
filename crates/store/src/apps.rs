//! v2 apps: the credentials of X's app-only (OAuth 2.0 client-credentials) auth. The
//! store keeps only hashes of the consumer secret and of the bearer token; the server
//! generates them and checks them.

use rusqlite::{OptionalExtension, params};

use crate::product::Product;
use crate::store::{Store, StoreError, StreamLimits, StreamRef, require_account};

/// An app as stored (no secret, only hashes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredApp {
    /// The app id (public).
    pub id: String,
    /// The account the app belongs to.
    pub account: String,
    /// The operator's name for the app.
    pub name: String,
    /// The consumer key (public: the user part of the client-credentials basic auth).
    pub consumer_key: String,
    /// SHA-256 of the consumer secret.
    pub consumer_secret_hash: Vec<u8>,
    /// SHA-256 of the app's bearer token.
    pub bearer_hash: Vec<u8>,
    /// Creation time, epoch milliseconds.
    pub created_ms: i64,
    /// The operator's limits for the app's v2 streams.
    pub limits: AppLimits,
}

/// The limits an operator sets for one app, as X sets them per access level; `None`: the
/// product table's figure (Enterprise).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AppLimits {
    /// Rules of the app's filtered stream.
    pub max_rules: Option<u64>,
    /// Longest rule, in characters (X: 512, 1,024 or 2,048 by access level).
    pub max_rule_chars: Option<u32>,
    /// Connections per stream (and partition) of the app.
    pub max_connections: Option<u32>,
}

impl StoredApp {
    /// The app's stream of `product` (one of [`Product::V2`]): a stream of its account
    /// labelled with the app id.
    pub fn stream(&self, product: Product) -> StreamRef {
        StreamRef {
            account: self.account.clone(),
            product,
            label: self.id.clone(),
        }
    }

    /// The limits of the app's stream of `product`: the operator's for the app where set,
    /// else the product's row.
    pub fn stream_limits(&self, product: Product) -> StreamLimits {
        let spec = product.spec();
        StreamLimits {
            max_connections: self.limits.max_connections.unwrap_or(spec.max_connections),
            max_rules: spec
                .rules
                .map_or(0, |rules| self.limits.max_rules.unwrap_or(rules.max_rules)),
        }
    }

    /// The longest rule the app may add, in characters: the operator's limit, at most the
    /// filtered stream's.
    pub fn max_rule_chars(&self) -> usize {
        let table = Product::V2Filtered
            .spec()
            .rules
            .map_or(sluice_rules::MAX_RULE_CHARS, |rules| rules.max_rule_chars);
        self.limits
            .max_rule_chars
            .map_or(table, |n| (n as usize).min(table))
    }
}

const COLUMNS: &str = "id, account, name, consumer_key, consumer_secret_hash, bearer_hash, \
                       created_ms, max_rules, max_rule_chars, max_connections";

fn read_app(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredApp> {
    Ok(StoredApp {
        id: row.get(0)?,
        account: row.get(1)?,
        name: row.get(2)?,
        consumer_key: row.get(3)?,
        consumer_secret_hash: row.get(4)?,
        bearer_hash: row.get(5)?,
        created_ms: row.get(6)?,
        limits: AppLimits {
            max_rules: row
                .get::<_, Option<i64>>(7)?
                .map(|n| u64::try_from(n).unwrap_or(0)),
            max_rule_chars: row.get(8)?,
            max_connections: row.get(9)?,
        },
    })
}

/// The app with this id, on `conn` (a transaction too).
pub(crate) fn find_app(
    conn: &rusqlite::Connection,
    id: &str,
) -> Result<Option<StoredApp>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM apps WHERE id = ?1");
    Ok(conn.query_row(&sql, [id], read_app).optional()?)
}

impl Store {
    /// Stores an app unless one with its id exists already (replicated changes repeat).
    /// Returns true when it was created.
    pub fn add_app(&self, app: &StoredApp) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        require_account(&tx, &app.account)?;
        let n = tx.execute(
            "INSERT INTO apps (id, account, name, consumer_key, consumer_secret_hash,
                               bearer_hash, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING",
            params![
                app.id,
                app.account,
                app.name,
                app.consumer_key,
                app.consumer_secret_hash,
                app.bearer_hash,
                app.created_ms
            ],
        )?;
        tx.commit()?;
        Ok(n == 1)
    }

    /// The app with this consumer key (the client-credentials grant).
    pub fn app_by_consumer_key(&self, key: &str) -> Result<Option<StoredApp>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM apps WHERE consumer_key = ?1");
        Ok(self.conn().query_row(&sql, [key], read_app).optional()?)
    }

    /// The app whose bearer token has this hash (a `/2/` request).
    pub fn app_by_bearer_hash(&self, hash: &[u8]) -> Result<Option<StoredApp>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM apps WHERE bearer_hash = ?1");
        Ok(self.conn().query_row(&sql, [hash], read_app).optional()?)
    }

    /// The app with this id.
    pub fn app(&self, id: &str) -> Result<Option<StoredApp>, StoreError> {
        find_app(&self.conn(), id)
    }

    /// Sets an app's limits (all three: `None` restores the product's figure). Returns
    /// false when there is no such app.
    pub fn set_app_limits(&self, id: &str, limits: AppLimits) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "UPDATE apps SET max_rules = ?2, max_rule_chars = ?3, max_connections = ?4
             WHERE id = ?1",
            params![
                id,
                limits
                    .max_rules
                    .map(|n| i64::try_from(n).unwrap_or(i64::MAX)),
                limits.max_rule_chars,
                limits.max_connections
            ],
        )?;
        Ok(n == 1)
    }

    /// The account's apps, oldest first (in the order they were added within a millisecond).
    pub fn apps(&self, account: &str) -> Result<Vec<StoredApp>, StoreError> {
        let conn = self.conn();
        let sql =
            format!("SELECT {COLUMNS} FROM apps WHERE account = ?1 ORDER BY created_ms, rowid");
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([account], read_app)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(id: &str, account: &str, key: &str) -> StoredApp {
        StoredApp {
            id: id.to_owned(),
            account: account.to_owned(),
            name: format!("app {id}"),
            consumer_key: key.to_owned(),
            consumer_secret_hash: vec![1; 32],
            bearer_hash: format!("bearer-{id}").into_bytes(),
            created_ms: 5,
            limits: AppLimits::default(),
        }
    }

    #[test]
    fn limits_are_set_and_cleared() {
        let store = Store::open_in_memory().unwrap();
        store.put_account("acme", 1).unwrap();
        store.add_app(&app("1", "acme", "k")).unwrap();
        let limits = AppLimits {
            max_rules: Some(1000),
            max_rule_chars: Some(512),
            max_connections: Some(1),
        };
        assert!(store.set_app_limits("1", limits).unwrap());
        assert_eq!(store.app("1").unwrap().unwrap().limits, limits);
        assert!(store.set_app_limits("1", AppLimits::default()).unwrap());
        assert_eq!(
            store.app("1").unwrap().unwrap().limits,
            AppLimits::default()
        );
        assert!(!store.set_app_limits("2", limits).unwrap());
        assert_eq!(store.app("2").unwrap(), None);
    }

    #[test]
    fn apps_are_stored_found_and_listed_per_account() {
        let store = Store::open_in_memory().unwrap();
        store.put_account("acme", 1).unwrap();
        store.put_account("other", 1).unwrap();
        let a = app("1", "acme", "key-a");
        assert!(store.add_app(&a).unwrap());
        assert!(
            !store.add_app(&a).unwrap(),
            "adding the same app again is a no-op"
        );
        store.add_app(&app("2", "other", "key-b")).unwrap();
        assert_eq!(store.app_by_consumer_key("key-a").unwrap(), Some(a.clone()));
        assert_eq!(
            store.app_by_bearer_hash(b"bearer-1").unwrap(),
            Some(a.clone())
        );
        assert_eq!(store.app_by_consumer_key("nope").unwrap(), None);
        assert_eq!(store.apps("acme").unwrap(), vec![a]);
        assert_eq!(store.apps("other").unwrap().len(), 1);
    }

    #[test]
    fn apps_made_in_the_same_millisecond_are_listed_in_the_order_they_were_added() {
        let store = Store::open_in_memory().unwrap();
        store.put_account("acme", 1).unwrap();
        // Random ids: the later app's id sorts first.
        store.add_app(&app("9", "acme", "k9")).unwrap();
        store.add_app(&app("1", "acme", "k1")).unwrap();
        let ids: Vec<String> = store
            .apps("acme")
            .unwrap()
            .into_iter()
            .map(|a| a.id)
            .collect();
        assert_eq!(ids, ["9", "1"]);
    }

    #[test]
    fn an_app_needs_its_account() {
        let store = Store::open_in_memory().unwrap();
        let err = store.add_app(&app("1", "ghost", "k")).unwrap_err();
        assert!(matches!(err, StoreError::NoSuchAccount(a) if a == "ghost"));
    }

    #[test]
    fn consumer_keys_are_unique() {
        let store = Store::open_in_memory().unwrap();
        store.put_account("acme", 1).unwrap();
        store.add_app(&app("1", "acme", "k")).unwrap();
        assert!(store.add_app(&app("2", "acme", "k")).is_err());
    }
}
