//! # sluice-store: the durable state of a sluice node
//!
//! Accounts, their basic-auth users, their streams, the streams' rules and the Powerstream
//! bearer tokens, in one embedded SQLite database in the data dir. The store only stores:
//! password and token hashing, id generation and validation happen in the server, which
//! hands the store finished records.
//!
//! Durability: the database runs in WAL mode with `synchronous=FULL`, so a rule whose add
//! returned is on disk, surviving a `kill -9` (and a power cut) right after.
//!
//! The API is synchronous (rusqlite); async callers run it on a blocking thread. One
//! connection behind a mutex is plenty for the rate of rule and admin changes (X allows 60
//! rules requests per minute per stream) and keeps transactions simple.
//!
//! ## Layout
//! - [`Store`]: opening, migrations, and every query.
//! - [`Product`]: which API a stream belongs to, and [`ProductSpec`], what each one is.
//! - [`StoredApp`]: v2 apps (app-only bearer auth), stored as hashes.
//! - [`UsageHour`]: what each stream delivered per UTC hour, and its peak connections.
//! - `schema`: the SQL schema and its migrations (`PRAGMA user_version`).

#![deny(missing_docs)]

mod apps;
mod compliance;
mod inventory;
mod product;
mod rules;
mod schema;
mod store;
mod usage;

pub use apps::{AppLimits, StoredApp};
pub use inventory::{AccountSummary, StoredToken};
pub use product::{
    AuthScheme, Content, Delivery, ErrorDialect, PRODUCTS, Product, ProductSpec, RateWindow,
    RulesSpec, Sample, UnknownProduct, Wire,
};
pub use store::{
    AddOutcome, FoundRules, NewRule, Store, StoreError, StoredRule, StoredStream, StreamLimits,
    StreamRef,
};
pub use usage::UsageHour;
