//! The schema, applied by version with `PRAGMA user_version` (no migration framework needed
//! for a handful of tables).

use rusqlite::Connection;

/// Each entry upgrades the database from version `index` to `index + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: accounts, users, streams, rules, tokens, settings.
    "
    CREATE TABLE accounts (
        name        TEXT PRIMARY KEY,
        created_ms  INTEGER NOT NULL
    );
    CREATE TABLE users (
        account        TEXT NOT NULL REFERENCES accounts(name) ON DELETE CASCADE,
        username       TEXT NOT NULL,
        password_hash  TEXT NOT NULL,
        PRIMARY KEY (account, username)
    );
    CREATE TABLE streams (
        id               INTEGER PRIMARY KEY,
        account          TEXT NOT NULL REFERENCES accounts(name) ON DELETE CASCADE,
        product          TEXT NOT NULL,
        label            TEXT NOT NULL,
        max_connections  INTEGER NOT NULL,
        max_rules        INTEGER NOT NULL,
        created_ms       INTEGER NOT NULL,
        UNIQUE (account, product, label)
    );
    CREATE TABLE rules (
        id          INTEGER PRIMARY KEY,
        stream_id   INTEGER NOT NULL REFERENCES streams(id) ON DELETE CASCADE,
        value       TEXT NOT NULL,
        tag         TEXT,
        created_ms  INTEGER NOT NULL,
        UNIQUE (stream_id, value)
    );
    CREATE TABLE tokens (
        hash        BLOB PRIMARY KEY,
        account     TEXT NOT NULL REFERENCES accounts(name) ON DELETE CASCADE,
        prefix      TEXT NOT NULL,
        created_ms  INTEGER NOT NULL
    );
    CREATE TABLE settings (
        key    TEXT PRIMARY KEY,
        value  TEXT NOT NULL
    );
    ",
    // 2: v2 apps (app-only bearer auth).
    "
    CREATE TABLE apps (
        id                   TEXT PRIMARY KEY,
        account              TEXT NOT NULL REFERENCES accounts(name) ON DELETE CASCADE,
        name                 TEXT NOT NULL,
        consumer_key         TEXT NOT NULL UNIQUE,
        consumer_secret_hash BLOB NOT NULL,
        bearer_hash          BLOB NOT NULL UNIQUE,
        created_ms           INTEGER NOT NULL
    );
    CREATE INDEX apps_account ON apps (account);
    ",
    // 3: the operator's limits per app (NULL: the product table's figure).
    "
    ALTER TABLE apps ADD COLUMN max_rules INTEGER;
    ALTER TABLE apps ADD COLUMN max_rule_chars INTEGER;
    ALTER TABLE apps ADD COLUMN max_connections INTEGER;
    ",
    // 4: the operator's label of a token (NULL: none).
    "
    ALTER TABLE tokens ADD COLUMN label TEXT;
    ",
    // 5: usage per stream and UTC hour (the Usage API and the console's usage view).
    // Keyed by the stream's name, not its row id, so a stream deleted and created again
    // keeps its history; the account's deletion takes it along.
    "
    CREATE TABLE usage_hours (
        account           TEXT NOT NULL REFERENCES accounts(name) ON DELETE CASCADE,
        product           TEXT NOT NULL,
        label             TEXT NOT NULL,
        hour              INTEGER NOT NULL,
        activities        INTEGER NOT NULL,
        replayed          INTEGER NOT NULL,
        peak_connections  INTEGER NOT NULL,
        PRIMARY KEY (account, hour, product, label)
    ) WITHOUT ROWID;
    ",
    // 6: the compliance events a node received (their lines as ingested), so that what
    // they hide from replays survives a restart; pruned with the post log's retention.
    "
    CREATE TABLE compliance_events (
        seq          INTEGER PRIMARY KEY,
        received_ms  INTEGER NOT NULL,
        line         BLOB NOT NULL
    );
    CREATE INDEX compliance_events_received ON compliance_events (received_ms);
    ",
];

/// Brings the database to the newest schema.
pub(crate) fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let current = usize::try_from(current).unwrap_or(0);
    for (version, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (version + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}
