//! Opening the database and every query sluice makes of it.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, params};

use crate::product::Product;
use crate::schema;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite failed (I/O error, corrupt file, …).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Creating the database file failed.
    #[error("creating the database file: {0}")]
    Create(#[from] std::io::Error),
    /// The account named does not exist.
    #[error("no such account: {0}")]
    NoSuchAccount(String),
    /// Adding the rules would take the stream over its `max_rules`.
    #[error("rule limit exceeded: {existing} rules + {adding} new > {limit}")]
    RuleLimit {
        /// Rules the stream has now.
        existing: u64,
        /// Distinct new rules in the request.
        adding: u64,
        /// The stream's `max_rules`.
        limit: u64,
    },
}

/// Names a stream: an account has at most one stream per product and label.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamRef {
    /// The account name.
    pub account: String,
    /// The product.
    pub product: Product,
    /// The stream label (`prod`, `dev`, …).
    pub label: String,
}

/// The operator's limits for one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamLimits {
    /// Concurrent connections allowed (per partition on volume streams).
    pub max_connections: u32,
    /// Rules allowed on the stream.
    pub max_rules: u64,
}

/// A stream as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredStream {
    /// Internal row id, the key of the stream's rules.
    pub id: i64,
    /// Which stream this is.
    pub stream: StreamRef,
    /// Its limits.
    pub limits: StreamLimits,
}

/// A rule as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRule {
    /// The rule id (Snowflake-style, assigned by the server).
    pub id: u64,
    /// The rule text exactly as the customer sent it (the uniqueness key).
    pub value: String,
    /// The tag, if any.
    pub tag: Option<String>,
    /// Creation time, epoch milliseconds.
    pub created_ms: i64,
}

/// A rule to add, with the id the server assigned to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRule {
    /// The id to give the rule if it is created.
    pub id: u64,
    /// The rule text.
    pub value: String,
    /// The tag, if any.
    pub tag: Option<String>,
}

/// What happened to one rule of an add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddOutcome {
    /// The rule was created.
    Created(StoredRule),
    /// A rule with this value already existed (or came earlier in the same batch); nothing
    /// was created and this is the existing rule.
    Existing(StoredRule),
}

/// Per id or value a delete names, in order: the rule it finds, or `None`.
pub type FoundRules = Vec<Option<StoredRule>>;
/// Creates an empty file at `path`, readable and writable by the owner only, unless a file
/// is there already (whose mode is left alone).
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// The node's database. Cheap to share behind an `Arc`; every method takes `&self`.
pub struct Store {
    conn: Mutex<Connection>,
}

impl Store {
    /// Opens (creating if missing) the database at `path` and brings its schema up to date.
    ///
    /// The database holds password hashes and token hashes, so a new file is readable by
    /// its owner only; SQLite gives the `-wal` and `-shm` files it creates beside it the
    /// same mode.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        create_private(path)?;
        Self::setup(Connection::open(path)?)
    }

    /// A private, empty in-memory database (tests, `sluice match`).
    pub fn open_in_memory() -> Result<Store, StoreError> {
        Self::setup(Connection::open_in_memory()?)
    }

    fn setup(mut conn: Connection) -> Result<Store, StoreError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        schema::migrate(&mut conn)?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite consistent (transactions roll back
        // on drop), so a poisoned lock is safe to reuse.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    // ---- accounts and users -------------------------------------------------------------

    /// Creates the account if it does not exist. Returns true when it was created.
    pub fn put_account(&self, name: &str, now_ms: i64) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "INSERT INTO accounts (name, created_ms) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            params![name, now_ms],
        )?;
        Ok(n == 1)
    }

    /// Whether the account exists.
    pub fn account_exists(&self, name: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT 1 FROM accounts WHERE name = ?1", [name], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Sets a basic-auth user's password hash, creating the user if needed. Returns true
    /// when the user was created.
    pub fn put_user(
        &self,
        account: &str,
        username: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        require_account(&tx, account)?;
        let existed = tx
            .query_row(
                "SELECT 1 FROM users WHERE account = ?1 AND username = ?2",
                [account, username],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        tx.execute(
            "INSERT INTO users (account, username, password_hash) VALUES (?1, ?2, ?3)
             ON CONFLICT (account, username) DO UPDATE SET password_hash = excluded.password_hash",
            params![account, username, password_hash],
        )?;
        tx.commit()?;
        Ok(!existed)
    }

    /// The stored password hash of a user of an account.
    pub fn password_hash(
        &self,
        account: &str,
        username: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT password_hash FROM users WHERE account = ?1 AND username = ?2",
                [account, username],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Deletes a basic-auth user of an account; returns whether it existed.
    pub fn delete_user(&self, account: &str, username: &str) -> Result<bool, StoreError> {
        let n = self.conn().execute(
            "DELETE FROM users WHERE account = ?1 AND username = ?2",
            [account, username],
        )?;
        Ok(n == 1)
    }

    /// The usernames of an account, sorted.
    pub fn usernames(&self, account: &str) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached("SELECT username FROM users WHERE account = ?1 ORDER BY username")?;
        let rows = stmt.query_map([account], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    // ---- streams ------------------------------------------------------------------------

    /// Creates the stream, or updates its limits if it exists. Returns the stream and
    /// whether it was created.
    pub fn put_stream(
        &self,
        stream: &StreamRef,
        limits: StreamLimits,
        now_ms: i64,
    ) -> Result<(StoredStream, bool), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        require_account(&tx, &stream.account)?;
        let existing = find_stream(&tx, stream)?;
        tx.execute(
            "INSERT INTO streams (account, product, label, max_connections, max_rules, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (account, product, label) DO UPDATE SET
                max_connections = excluded.max_connections, max_rules = excluded.max_rules",
            params![
                stream.account,
                stream.product.as_str(),
                stream.label,
                limits.max_connections,
                sql_count(limits.max_rules),
                now_ms
            ],
        )?;
        let stored = find_stream(&tx, stream)?.expect("the stream was just written");
        tx.commit()?;
        Ok((stored, existing.is_none()))
    }

    /// The stream, if it exists.
    pub fn stream(&self, stream: &StreamRef) -> Result<Option<StoredStream>, StoreError> {
        find_stream(&self.conn(), stream)
    }

    /// Deletes the account's streams with this label (of one product, or of every product
    /// when `product` is `None`) and their rules. Returns the streams deleted.
    pub fn delete_streams(
        &self,
        account: &str,
        label: &str,
        product: Option<Product>,
    ) -> Result<Vec<StoredStream>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let doomed: Vec<StoredStream> = select_streams(&tx, Some(account))?
            .into_iter()
            .filter(|s| s.stream.label == label && product.is_none_or(|p| p == s.stream.product))
            .collect();
        for s in &doomed {
            tx.execute("DELETE FROM streams WHERE id = ?1", [s.id])?;
        }
        tx.commit()?;
        Ok(doomed)
    }

    /// The account's streams, ordered by product then label.
    pub fn streams(&self, account: &str) -> Result<Vec<StoredStream>, StoreError> {
        select_streams(&self.conn(), Some(account))
    }

    /// Every stream of every account (loaded at start).
    pub fn all_streams(&self) -> Result<Vec<StoredStream>, StoreError> {
        select_streams(&self.conn(), None)
    }

    // ---- tokens and settings ------------------------------------------------------------

    /// Stores a bearer token's hash for an account, with a displayable prefix.
    pub fn add_token(
        &self,
        account: &str,
        hash: &[u8],
        prefix: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        require_account(&tx, account)?;
        tx.execute(
            "INSERT INTO tokens (hash, account, prefix, created_ms) VALUES (?1, ?2, ?3, ?4)",
            params![hash, account, prefix, now_ms],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The account a token hash belongs to.
    pub fn token_account(&self, hash: &[u8]) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT account FROM tokens WHERE hash = ?1", [hash], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// The prefixes of an account's tokens, oldest first.
    pub fn token_prefixes(&self, account: &str) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT prefix FROM tokens WHERE account = ?1 ORDER BY created_ms, rowid",
        )?;
        let rows = stmt.query_map([account], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A node setting (e.g. the admin token's hash).
    pub fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn()
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Sets a node setting.
    pub fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [key, value],
        )?;
        Ok(())
    }
}

pub(crate) fn require_account(conn: &Connection, account: &str) -> Result<(), StoreError> {
    let found = conn
        .query_row("SELECT 1 FROM accounts WHERE name = ?1", [account], |_| {
            Ok(())
        })
        .optional()?;
    found.ok_or_else(|| StoreError::NoSuchAccount(account.to_owned()))
}

fn find_stream(conn: &Connection, stream: &StreamRef) -> Result<Option<StoredStream>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, account, product, label, max_connections, max_rules FROM streams
         WHERE account = ?1 AND product = ?2 AND label = ?3",
    )?;
    Ok(stmt
        .query_row(
            params![stream.account, stream.product.as_str(), stream.label],
            read_stream,
        )
        .optional()?)
}

fn select_streams(
    conn: &Connection,
    account: Option<&str>,
) -> Result<Vec<StoredStream>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, account, product, label, max_connections, max_rules FROM streams
         WHERE ?1 IS NULL OR account = ?1 ORDER BY account, product, label",
    )?;
    let rows = stmt.query_map([account], read_stream)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn read_stream(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredStream> {
    let product: String = row.get(2)?;
    let product = product.parse::<Product>().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, Box::new(e))
    })?;
    Ok(StoredStream {
        id: row.get(0)?,
        stream: StreamRef {
            account: row.get(1)?,
            product,
            label: row.get(3)?,
        },
        limits: StreamLimits {
            max_connections: row.get(4)?,
            max_rules: row.get::<_, i64>(5)?.unsigned_abs(),
        },
    })
}

/// SQLite integers are signed; counts beyond `i64::MAX` mean "unlimited" anyway.
fn sql_count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
