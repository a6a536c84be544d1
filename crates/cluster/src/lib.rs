//! # sluice-cluster: cluster mode on NATS JetStream
//!
//! `sluice serve --nats URL` runs a node as one of several identical nodes sharing one
//! NATS JetStream (2.9 or later):
//! - posts: every accepted post is published to the stream `SLUICE_POSTS` (subject
//!   `sluice.posts.<datacenter>`, deduplicated by post id with `Nats-Msg-Id`, kept for the
//!   post log retention); ingest answers once JetStream acknowledged. Every node consumes
//!   the whole stream with its own ordered consumer into its pipeline ([`posts`]);
//! - post log: the posts stream is every node's post log, so backfill and recovery on any
//!   node return posts ingested anywhere, before or after the node started ([`post_log`]);
//! - shared state: accounts, users, streams, rules and tokens live in the KV bucket
//!   `sluice_state`; every node watches it and applies each change to its store (a cache)
//!   and its live registry, and reports ready once it has loaded the bucket
//!   ([`shared_state`]); each stream's rule cap holds across nodes through a rule count
//!   kept in the same bucket by compare-and-set ([`rule_cap`]);
//! - rule ids: each node leases a distinct Snowflake worker id ([`workers`]);
//! - post sources (`--source`): one node at a time consumes each, under a lease that
//!   expires unless renewed, with the cursor in a bucket every node reads
//!   ([`source_lease`]).
//!
//! The server knows none of this: [`NatsCluster`] implements
//! [`sluice_server::cluster::Cluster`], given to the node with
//! [`AppState::open_with`](sluice_server::AppState::open_with). The cluster in turn sees
//! the node only through [`sluice_server::cluster::ClusterNode`]: deliver posts, apply
//! changes, readiness.

#![deny(missing_docs)]

pub mod compliance;
pub mod key_scan;
pub mod kv_bucket;
pub mod members;
pub mod names;
pub mod post_log;
pub mod posts;
pub mod removals;
pub mod rule_cap;
pub mod rule_entry;
pub mod shared_state;
pub mod source_lease;
pub mod workers;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, kv, stream};
use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use sluice_server::cluster::{
    Change, Cluster, ClusterError, ClusterNode, Member, RecordError, Recorded,
};
use sluice_server::post::IngestedPost;
use sluice_server::{BackendLog, Clustering};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How a node joins the cluster.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The NATS server, e.g. `nats://127.0.0.1:4222`.
    pub url: String,
    /// How long posts stay in the posts stream (the post log retention).
    pub retention: Duration,
    /// The posts stream's disk budget in bytes (`--post-log-max-bytes`; `None`: none).
    pub max_bytes: Option<u64>,
}

/// A node's connection to the cluster.
pub struct NatsCluster {
    client: async_nats::Client,
    js: jetstream::Context,
    posts: stream::Stream,
    /// Where this node's posts consumer starts: the first post stored after it connected.
    start: posts::Position,
    log: Arc<post_log::JetStreamLog>,
    state: kv::Store,
    worker_id: u16,
    /// This node's name in the worker id leases and the list of members.
    node: String,
    /// When this node joined, epoch milliseconds.
    joined_ms: i64,
    members: kv::Store,
    connected: watch::Receiver<bool>,
    renew: JoinHandle<()>,
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        self.renew.abort();
    }
}

/// How long to wait before retrying a consumer or watcher that failed.
const RETRY: Duration = Duration::from_millis(500);

impl NatsCluster {
    /// Connects to NATS, creates the stream and buckets if missing and leases a worker
    /// id. NATS must be reachable now; later outages are survived (the client reconnects).
    pub async fn connect(config: &ClusterConfig) -> anyhow::Result<Arc<NatsCluster>> {
        let (tx, connected) = watch::channel(true);
        let client = async_nats::ConnectOptions::new()
            .name("sluice")
            .event_callback(move |event| {
                let tx = tx.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            let _ = tx.send(true);
                        }
                        async_nats::Event::Disconnected => {
                            let _ = tx.send(false);
                        }
                        _ => {}
                    }
                }
            })
            .connect(&config.url)
            .await
            .with_context(|| format!("connecting to NATS at {}", config.url))?;
        let js = jetstream::new(client.clone());
        let mut posts = posts::ensure_stream(&js, config.retention, config.max_bytes)
            .await
            .context("creating the posts stream")?;
        let start = posts::Position::now(&mut posts)
            .await
            .context("reading the posts stream")?;
        let log = Arc::new(post_log::JetStreamLog::new(
            js.clone(),
            posts.clone(),
            tokio::runtime::Handle::current(),
        ));
        let state = shared_state::bucket(&js)
            .await
            .context("opening the shared state bucket")?;
        let node = format!("sluice-{:016x}", rand::random::<u64>());
        let (worker_id, renew) = workers::lease(&js, &node)
            .await
            .context("leasing a rule id worker")?;
        let members = members::bucket(&js)
            .await
            .context("opening the members bucket")?;
        let joined_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        tracing::info!(url = config.url, worker_id, "joined the cluster");
        Ok(Arc::new(NatsCluster {
            client,
            js,
            posts,
            start,
            log,
            state,
            worker_id,
            node,
            joined_ms,
            members,
            connected,
            renew,
        }))
    }

    /// The Snowflake worker id this node's rule ids carry.
    pub fn worker_id(&self) -> u16 {
        self.worker_id
    }

    /// The post log every node shares: the posts stream (see [`post_log`]).
    pub fn post_log(&self) -> Arc<post_log::JetStreamLog> {
        self.log.clone()
    }

    /// What [`AppState::open_with`](sluice_server::AppState::open_with) needs to run the
    /// node in this cluster: the post log is the posts stream, which ingest fills.
    pub fn clustering(self: &Arc<Self>) -> Clustering {
        Clustering {
            cluster: Some(self.clone() as Arc<dyn Cluster>),
            post_log: Some(BackendLog {
                log: self.log.clone(),
                delivery_start: self.start.next(),
            }),
            worker_id: self.worker_id,
        }
    }

    /// Starts feeding the node: the posts consumer, the shared state watcher (which marks
    /// the node ready once loaded) and the connection monitor (which marks it unready
    /// while NATS is unreachable). They end when the node stops. The node is seen only
    /// through [`ClusterNode`] (the server's state implements it).
    pub fn start<N: ClusterNode + Clone>(self: &Arc<Self>, node: &N) -> ClusterTasks {
        let node: Arc<dyn ClusterNode> = Arc::new(node.clone());
        // The node reports ready only once it has the compliance events stored before it
        // started: replays must not send what they took away.
        let (caught_up, compliance_loaded) = tokio::sync::oneshot::channel::<()>();
        let consumer = {
            let (stream, node) = (self.posts.clone(), node.clone());
            let client = self.client.clone();
            let mut reconnected = self.connected.clone();
            let mut position = self.start;
            tokio::spawn(until_stopped(node.clone(), async move {
                match compliance::catch_up(&stream, &client, &*node, position).await {
                    Ok(events) => {
                        tracing::info!(events, "compliance events loaded from the posts stream")
                    }
                    Err(e) => tracing::error!(
                        "reading the compliance events stored before this node started failed; \
                         replays on this node may send what they took away: {e}"
                    ),
                }
                let _ = caught_up.send(());
                loop {
                    match posts::consume(&stream, &*node, &mut position, &mut reconnected).await {
                        Ok(posts::Stopped::Pipeline) => break,
                        Ok(posts::Stopped::Reconnected) => continue,
                        Err(e) => tracing::warn!("the posts consumer failed, retrying: {e}"),
                    }
                    tokio::time::sleep(RETRY).await;
                }
            }))
        };
        let watcher = {
            let (kv, node) = (self.state.clone(), node.clone());
            let mut reconnected = self.connected.clone();
            tokio::spawn(until_stopped(node.clone(), async move {
                let _ = compliance_loaded.await;
                let mut applier = shared_state::Applier::default();
                loop {
                    if let Err(e) =
                        shared_state::watch(&kv, &*node, &mut applier, &mut reconnected).await
                    {
                        tracing::warn!("the shared state watcher failed, retrying: {e}");
                        tokio::time::sleep(RETRY).await;
                    }
                }
            }))
        };
        let announcer = self.announcer(node.clone());
        let monitor = {
            let mut connected = self.connected.clone();
            tokio::spawn(until_stopped(node.clone(), async move {
                while connected.changed().await.is_ok() {
                    if *connected.borrow_and_update() {
                        tracing::info!("NATS connection restored");
                        node.set_problem(None);
                    } else {
                        tracing::error!("NATS connection lost: reconnecting");
                        node.set_problem(Some("NATS connection lost".to_owned()));
                    }
                }
            }))
        };
        ClusterTasks(vec![consumer, watcher, monitor, announcer])
    }
}

/// The tasks [`NatsCluster::start`] runs for a node. They end once the node stops; the
/// announcer's last act is to take the node off the list of members, so whoever stops a
/// node waits for them ([`ClusterTasks::finished`]) before the runtime goes away.
#[must_use = "wait for `finished` after the node stops, or it may stay listed as a member"]
pub struct ClusterTasks(Vec<JoinHandle<()>>);

impl ClusterTasks {
    /// Waits, at most `within`, for every task to end after the node stopped; whether
    /// they all did.
    pub async fn finished(self, within: Duration) -> bool {
        tokio::time::timeout(within, futures_util::future::join_all(self.0))
            .await
            .is_ok()
    }
}

async fn until_stopped(node: Arc<dyn ClusterNode>, task: impl Future<Output = ()>) {
    tokio::select! {
        () = task => {}
        () = node.stopped() => {}
    }
}

impl NatsCluster {
    /// The task that keeps this node on the cluster's list of members while it runs
    /// ([`members`]), and takes it off when it stops.
    fn announcer(&self, node: Arc<dyn ClusterNode>) -> JoinHandle<()> {
        let whereabouts = node.whereabouts();
        let member = Member {
            node: self.node.clone(),
            worker_id: self.worker_id,
            datacenter: whereabouts.datacenter,
            public_url: whereabouts.public_url,
            joined_ms: self.joined_ms,
        };
        let (bucket, client) = (self.members.clone(), self.client.clone());
        tokio::spawn(async move {
            until_stopped(node, members::announce(&bucket, &member)).await;
            members::leave(&bucket, &client, &member).await;
        })
    }

    /// Refuses at once while disconnected: the client would otherwise buffer the publish
    /// and send it after the caller has been told it failed.
    fn require_connection(&self) -> Result<(), ClusterError> {
        match self.client.connection_state() {
            async_nats::connection::State::Connected => Ok(()),
            _ => Err(ClusterError("not connected to NATS".to_owned())),
        }
    }
}

impl Cluster for NatsCluster {
    fn publish_posts(&self, posts: Vec<IngestedPost>) -> BoxFuture<'_, Result<(), ClusterError>> {
        async move {
            self.require_connection()?;
            posts::publish(&self.js, posts).await.map(drop)
        }
        .boxed()
    }

    fn record(&self, change: Change) -> BoxFuture<'_, Result<Recorded, RecordError>> {
        async move {
            self.require_connection()?;
            shared_state::record(&self.state, &self.client, change).await
        }
        .boxed()
    }

    fn members(&self) -> BoxFuture<'_, Result<Vec<Member>, ClusterError>> {
        async move {
            self.require_connection()?;
            members::list(&self.members, &self.client).await
        }
        .boxed()
    }
}
