//! The seam between the server and a cluster backend (`sluice-cluster`, NATS JetStream),
//! in both directions.
//!
//! A single node needs none of this: accepted posts go straight to the in-process
//! pipeline and state changes live in the node's SQLite store. In cluster mode the server
//! is given a [`Cluster`]: accepted posts are published to it and every state change is
//! recorded with it. The backend in turn is given a [`ClusterNode`], the narrow view of
//! the node it needs: it hands back every node's posts ([`ClusterNode::deliver_posts`]),
//! applies every recorded change ([`ClusterNode::apply`]) and reports readiness. The
//! server's handlers never see the backend: they call [`crate::changes`] and
//! [`PostBus::publish`](crate::pipeline::PostBus::publish).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use sluice_store::{Product, StoreError, StoredRule, StreamRef};

use crate::post::IngestedPost;

/// A cluster backend: where accepted posts and committed state changes go so that every
/// node sees them.
pub trait Cluster: Send + Sync + 'static {
    /// Publishes accepted posts; resolves once the backend has durably accepted all of them
    /// (ingest answers only then).
    fn publish_posts(&self, posts: Vec<IngestedPost>) -> BoxFuture<'_, Result<(), ClusterError>>;

    /// Records a change this node has committed to its store, for the other nodes. For a
    /// [`Change::AddRules`], returns the rules another node already holds for some of the
    /// values (a concurrent add won the value); the caller adopts them instead of its own.
    /// A [`Change::AddRules`] carrying a `max_rules` is recorded only if the stream's rules
    /// cluster-wide stay within it, else nothing is recorded ([`RecordError::RuleLimit`]).
    fn record(&self, change: Change) -> BoxFuture<'_, Result<Recorded, RecordError>>;

    /// The nodes running in the cluster now, this one included, as each announces itself
    /// (the operator's list of members).
    fn members(&self) -> BoxFuture<'_, Result<Vec<Member>, ClusterError>>;
}

/// A node of the cluster as it announces itself to the others, for the operator's list of
/// members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// The node's name, unique to its process.
    pub node: String,
    /// The Snowflake worker id of its rule ids.
    pub worker_id: u16,
    /// Its datacenter.
    pub datacenter: String,
    /// Its public URL.
    pub public_url: String,
    /// When it joined the cluster, epoch milliseconds.
    pub joined_ms: i64,
}

/// Where a node is, as it tells the cluster's other members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Whereabouts {
    /// The node's datacenter.
    pub datacenter: String,
    /// The node's public URL.
    pub public_url: String,
}

/// What a cluster backend may do to the node it runs in: hand it posts, apply changes,
/// say whether it can serve, and learn when it stops. The server implements it over its
/// state ([`crate::AppState`]); the backend sees nothing else of the node.
pub trait ClusterNode: Send + Sync + 'static {
    /// Hands posts the backend delivers (published by any node) to this node's pipeline;
    /// `next_seq` is the sequence number after the batch's last post in the backend's
    /// log, so that backfill knows how far delivery has got. Fails once the pipeline has
    /// stopped (the node is shutting down).
    fn deliver_posts(
        &self,
        posts: Vec<IngestedPost>,
        next_seq: u64,
    ) -> BoxFuture<'_, Result<(), NodeStopped>>;

    /// Takes in compliance events the backend held before this node started consuming
    /// (its pipeline takes in later ones as it delivers them), oldest first.
    fn receive_compliance(&self, lines: Vec<Bytes>);

    /// Applies a change the backend holds (recorded by any node, this one included) to
    /// the node's store and live registry; idempotent.
    fn apply(&self, change: Change) -> BoxFuture<'_, Result<(), StoreError>>;

    /// The node has loaded the backend's shared state: it may report ready.
    fn set_loaded(&self);

    /// Records (or clears, with `None`) why the node cannot reach the backend.
    fn set_problem(&self, problem: Option<String>);

    /// The node's datacenter and public URL, for the list of members.
    fn whereabouts(&self) -> Whereabouts;

    /// Resolves once the node shuts down: the backend's tasks end then.
    fn stopped(&self) -> BoxFuture<'static, ()>;
}

/// The node's pipeline has stopped taking posts (it is shutting down).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the node has stopped taking posts")]
pub struct NodeStopped;

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
        /// The stream's rule cap the add must keep to, counting every node's rules (the
        /// adding node's limit at the time of the request); `None` for a change that is
        /// not held to a cap (one read back from the backend, already counted). Absent
        /// in changes written before the cap travelled in the change.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_rules: Option<u64>,
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
        /// The operator's label (absent in changes written before tokens had labels).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
    },
    /// A v2 app (app-only bearer auth) belongs to an account.
    AddApp {
        /// The account.
        account: String,
        /// The app id.
        app_id: String,
        /// The operator's name for the app.
        name: String,
        /// The consumer key (public).
        consumer_key: String,
        /// SHA-256 of the consumer secret, hex.
        consumer_secret_hash_hex: String,
        /// SHA-256 of the bearer token, hex.
        bearer_hash_hex: String,
    },
    /// An account is gone, with its users, streams, rules, tokens and apps.
    DeleteAccount {
        /// The account.
        account: String,
    },
    /// A Powerstream token is revoked.
    RevokeToken {
        /// SHA-256 of the token, hex.
        hash_hex: String,
    },
    /// A v2 app is gone, with its streams and their rules.
    DeleteApp {
        /// The app id.
        app_id: String,
    },
    /// An app's limits, as the operator set them (`None`: the product table's figure).
    PutAppLimits {
        /// The account.
        account: String,
        /// The app id.
        app_id: String,
        /// Rules of the app's filtered stream.
        #[serde(default)]
        max_rules: Option<u64>,
        /// Longest rule, in characters.
        #[serde(default)]
        max_rule_chars: Option<u32>,
        /// Connections per stream and partition.
        #[serde(default)]
        max_connections: Option<u32>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_their_label_and_read_without_one() {
        let older = r#"{"kind":"add_token","account":"acme","hash_hex":"00","prefix":"p"}"#;
        let change: Change = serde_json::from_str(older).unwrap();
        assert_eq!(
            change,
            Change::AddToken {
                account: "acme".into(),
                hash_hex: "00".into(),
                prefix: "p".into(),
                label: None,
            }
        );
        assert_eq!(serde_json::to_string(&change).unwrap(), older);
        let removal = Change::RevokeToken {
            hash_hex: "00".into(),
        };
        assert_eq!(
            serde_json::to_string(&removal).unwrap(),
            r#"{"kind":"revoke_token","hash_hex":"00"}"#
        );
    }

    #[test]
    fn rule_adds_carry_their_cap_and_read_without_one() {
        let stream = StreamKey {
            account: "acme".into(),
            product: "powertrack".into(),
            label: "prod".into(),
        };
        let capped = Change::AddRules {
            stream: stream.clone(),
            rules: Vec::new(),
            max_rules: Some(5),
        };
        let json = serde_json::to_string(&capped).unwrap();
        assert_eq!(serde_json::from_str::<Change>(&json).unwrap(), capped);
        let older = r#"{"kind":"add_rules","stream":{"account":"acme","product":"powertrack","label":"prod"},"rules":[]}"#;
        assert_eq!(
            serde_json::from_str::<Change>(older).unwrap(),
            Change::AddRules {
                stream,
                rules: Vec::new(),
                max_rules: None,
            }
        );
    }
}
