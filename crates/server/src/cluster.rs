//! The seam between the server and a cluster backend (`sluice-cluster`, NATS JetStream).
//!
//! A single node needs none of this: accepted posts go straight to the in-process
//! pipeline and state changes live in the node's SQLite store. In cluster mode the server
//! is given a [`Cluster`]: accepted posts are published to it (a per-node consumer feeds
//! them back through [`PostBus::enqueue`](crate::pipeline::PostBus::enqueue)), and every
//! committed state change is recorded with it so that the other nodes apply it with
//! [`crate::changes::apply_replicated`]. The server's handlers never see the backend: they
//! call [`crate::changes`] and [`PostBus::publish`](crate::pipeline::PostBus::publish).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sluice_store::{Product, StoredRule, StreamRef};

use crate::pipeline::IngestedPost;

/// A cluster backend: where accepted posts and committed state changes go so that every
/// node sees them.
pub trait Cluster: Send + Sync + 'static {
    /// Publishes accepted posts; resolves once the backend has durably accepted all of them
    /// (ingest answers only then).
    fn publish_posts(&self, posts: Vec<IngestedPost>) -> BoxFuture<'_, Result<(), ClusterError>>;

    /// Records a change this node has committed to its store, for the other nodes. For a
    /// [`Change::AddRules`], returns the rules another node already holds for some of the
    /// values (a concurrent add won the value); the caller adopts them instead of its own.
    /// `max_rules` is the stream's rule cap for a [`Change::AddRules`] (a setting of the
    /// request, not part of the replicated change): the add is recorded only if the
    /// stream's rules cluster-wide stay within it, else nothing is recorded
    /// ([`RecordError::RuleLimit`]). Other changes pass `None`.
    fn record(
        &self,
        change: Change,
        max_rules: Option<u64>,
    ) -> BoxFuture<'_, Result<Recorded, RecordError>>;
}

/// What [`Cluster::record`] found.
#[derive(Debug, Default)]
pub struct Recorded {
    /// For rule adds: rules that already held a value cluster-wide, which win over the
    /// rule this node created for the same value.
    pub existing_rules: Vec<StoredRule>,
}

/// The cluster backend failed (not reachable, timed out, refused).
#[derive(Debug, Clone, thiserror::Error)]
#[error("cluster unavailable: {0}")]
pub struct ClusterError(pub String);

/// Why [`Cluster::record`] recorded nothing: the backend failed, or a rule add would take
/// the stream past its cap counting every node's rules (the cluster-wide form of
/// [`sluice_store::StoreError::RuleLimit`], which the caller answers the same way).
#[derive(Debug, Clone, thiserror::Error)]
pub enum RecordError {
    /// The backend failed.
    #[error(transparent)]
    Unavailable(#[from] ClusterError),
    /// The rules would take the stream past its `max_rules` cluster-wide.
    #[error("rule limit exceeded cluster-wide: {existing} rules + {adding} new > {limit}")]
    RuleLimit {
        /// Rules the stream has (or has reserved by adds in flight) across the cluster.
        existing: u64,
        /// New rules in the request.
        adding: u64,
        /// The stream's `max_rules`.
        limit: u64,
    },
}

/// One change to the shared state, as replicated between nodes. Each is idempotent:
/// applying it twice leaves the same state as applying it once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// An account exists.
    PutAccount {
        /// Its name.
        account: String,
    },
    /// A basic-auth user exists with this password hash.
    PutUser {
        /// The account.
        account: String,
        /// The username.
        username: String,
        /// The argon2 PHC string.
        password_hash: String,
    },
    /// A basic-auth user is gone.
    DeleteUser {
        /// The account.
        account: String,
        /// The username.
        username: String,
    },
    /// A stream exists with these limits.
    PutStream {
        /// Which stream.
        stream: StreamKey,
        /// Its limits.
        max_connections: u32,
        /// Its rule cap.
        max_rules: u64,
    },
    /// A stream is gone, with its rules.
    DeleteStream {
        /// Which stream.
        stream: StreamKey,
    },
    /// Rules exist on a stream.
    AddRules {
        /// Which stream.
        stream: StreamKey,
        /// The rules, with their ids.
        rules: Vec<RuleRecord>,
    },
    /// Rules are gone from a stream.
    DeleteRules {
        /// Which stream.
        stream: StreamKey,
        /// The deleted rules (their values too: replication keys rules by value), each
        /// with the id this node resolved it to (a delete by value too): a backend deletes
        /// a value's rule only while it is still this rule, never a newer one with the
        /// same value that this node has not seen yet.
        rules: Vec<RuleRecord>,
    },
    /// A Powerstream bearer token (its hash) belongs to an account.
    AddToken {
        /// The account.
        account: String,
        /// SHA-256 of the token, hex.
        hash_hex: String,
        /// The displayable prefix.
        prefix: String,
    },
}

/// A stream's identity in serializable form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StreamKey {
    /// The account.
    pub account: String,
    /// The product (`powertrack`, `decahose`, `firehose`, `powerstream`).
    pub product: String,
    /// The label.
    pub label: String,
}

impl StreamKey {
    /// The key of a stream.
    pub fn of(stream: &StreamRef) -> Self {
        Self {
            account: stream.account.clone(),
            product: stream.product.as_str().to_owned(),
            label: stream.label.clone(),
        }
    }

    /// The stream, if the product is known.
    pub fn to_ref(&self) -> Option<StreamRef> {
        Some(StreamRef {
            account: self.account.clone(),
            product: self.product.parse::<Product>().ok()?,
            label: self.label.clone(),
        })
    }
}

/// A rule in serializable form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleRecord {
    /// The rule id.
    pub id: u64,
    /// The rule text.
    pub value: String,
    /// The tag.
    pub tag: Option<String>,
    /// Creation time, epoch milliseconds.
    pub created_ms: i64,
}

impl From<&StoredRule> for RuleRecord {
    fn from(rule: &StoredRule) -> Self {
        Self {
            id: rule.id,
            value: rule.value.clone(),
            tag: rule.tag.clone(),
            created_ms: rule.created_ms,
        }
    }
}

impl From<RuleRecord> for StoredRule {
    fn from(rule: RuleRecord) -> Self {
        Self {
            id: rule.id,
            value: rule.value,
            tag: rule.tag,
            created_ms: rule.created_ms,
        }
    }
}

/// Whether this node can serve: a clustered node is not ready until it has loaded the
/// shared state, and says why while it cannot reach the cluster.
#[derive(Debug)]
pub struct Readiness {
    loaded: AtomicBool,
    problem: Mutex<Option<String>>,
}

impl Readiness {
    /// Ready at once (a single node loads its store before serving).
    pub fn ready() -> Self {
        Self {
            loaded: AtomicBool::new(true),
            problem: Mutex::new(None),
        }
    }

    /// Not ready until [`Readiness::set_loaded`].
    pub fn loading() -> Self {
        Self {
            loaded: AtomicBool::new(false),
            problem: Mutex::new(None),
        }
    }

    /// The shared state is loaded.
    pub fn set_loaded(&self) {
        self.loaded.store(true, Ordering::Release);
    }

    /// Records (or clears, with `None`) why the node cannot reach the cluster.
    pub fn set_problem(&self, problem: Option<String>) {
        *self.problem.lock().unwrap_or_else(|e| e.into_inner()) = problem;
    }

    /// `Ok` when ready, else why not.
    pub fn check(&self) -> Result<(), String> {
        if !self.loaded.load(Ordering::Acquire) {
            return Err("loading the cluster state".into());
        }
        match &*self.problem.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(problem) => Err(problem.clone()),
            None => Ok(()),
        }
    }
}
