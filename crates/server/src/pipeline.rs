//! The post pipeline: every accepted post is appended to the post log, then matched against
//! every live stream and put in the outboxes of the connections that should receive it.
//!
//! Two dedicated threads run it (the in-process post bus). Ingest handlers hand batches
//! through a bounded channel and return; the first thread appends each whole batch to the
//! post log and passes it to the second, so that a post is either in the log before a
//! connection registers (backfill and recovery find it there) or delivered to that
//! connection live (possibly both: duplicates are allowed, gaps are not). In cluster mode the
//! backend's log already holds every post before its consumer hands it to the pipeline, which
//! then has nothing to append and runs on one thread. The delivering thread parses each post
//! once, matches it once against the node-wide index of every stream's rules, and for each
//! stream with open connections decides what to send and to whom with
//! [`crate::delivery::select`] (the same decision replay makes): the post with `matching_rules` for rules streams, the plain post
//! for the connections of its partition on volume streams. What a group of connections
//! receives from a batch is framed and compressed once and shared by all of them
//! ([`crate::delivery::fanout`]).
//!
//! Pushing never blocks (see [`crate::delivery::Outbox`]), so one stalled client cannot
//! delay the pipeline or anyone else.

use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use sluice_postlog::{NewPost, PostLog};
use tokio::sync::mpsc;

use crate::cluster::{Cluster, ClusterError};
use crate::delivery::fanout::{BatchPost, Fanout};
pub use crate::delivery::select::{DECAHOSE_PARTITIONS, FIREHOSE_PARTITIONS};
use crate::registry::{LiveStream, StreamRegistry};
use crate::telemetry;

/// One accepted post on its way to the pipeline.
#[derive(Debug, Clone)]
pub struct IngestedPost {
    /// The post's JSON, one line, without line terminator.
    pub bytes: Bytes,
    /// The datacenter the post originated in.
    pub datacenter: Arc<str>,
}

/// Where accepted posts go: straight to this node's pipeline, or (cluster mode) to the
/// cluster backend, whose per-node consumer hands every node's posts back to
/// [`PostBus::deliver`].
#[derive(Clone)]
pub struct PostBus {
    tx: mpsc::Sender<Vec<IngestedPost>>,
    cluster: Option<Arc<dyn Cluster>>,
}

impl PostBus {
    /// Publishes a batch of accepted posts. Single node: hands it to the pipeline, waiting
    /// only when the pipeline is thousands of batches behind. Cluster: resolves once the
    /// backend has durably accepted every post.
    pub async fn publish(&self, posts: Vec<IngestedPost>) -> Result<(), PublishError> {
        if posts.is_empty() {
            return Ok(());
        }
        match &self.cluster {
            Some(cluster) => Ok(cluster.publish_posts(posts).await?),
            None => Ok(self.deliver(posts).await?),
        }
    }

    /// Hands a batch to this node's pipeline (log, match, deliver), bypassing the cluster:
    /// for the cluster backend's consumer.
    pub async fn deliver(&self, posts: Vec<IngestedPost>) -> Result<(), PipelineStopped> {
        if posts.is_empty() {
            return Ok(());
        }
        self.tx.send(posts).await.map_err(|_| PipelineStopped)
    }
}

/// The pipeline thread is gone (the server is shutting down).
#[derive(Debug, thiserror::Error)]
#[error("the post pipeline has stopped")]
pub struct PipelineStopped;

/// Why accepted posts could not be published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The pipeline has stopped.
    #[error(transparent)]
    Stopped(#[from] PipelineStopped),
    /// The cluster backend did not accept them.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// Starts the pipeline, which appends every batch to `log` (if any: a cluster backend's
/// log is filled before the pipeline sees a post) before delivering it. It ends when every
/// [`PostBus`] clone is dropped; the returned handle's thread ends last. With a `cluster`,
/// [`PostBus::publish`] goes to it instead of the pipeline.
///
/// With a log, the pipeline is two threads in a row: `sluice-append` appends a batch
/// (compressing and writing it) and passes it on to `sluice-pipeline`, which matches and
/// delivers it while the next batch is being appended. A batch is still in the log before
/// delivery looks at the connections, and the work of one post is spread over two cores.
pub fn start(
    registry: Arc<StreamRegistry>,
    log: Option<Arc<dyn PostLog>>,
    datacenter: Arc<str>,
    cluster: Option<Arc<dyn Cluster>>,
) -> (PostBus, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(4_096);
    let (logged, appender) = match log {
        Some(log) => {
            let (logged_tx, logged) = mpsc::channel(LOGGED_BATCHES);
            let appender = std::thread::Builder::new()
                .name("sluice-append".into())
                .spawn(move || append_all(&*log, rx, logged_tx))
                .expect("spawning the post log thread");
            (logged, Some(appender))
        }
        None => (rx, None),
    };
    let handle = std::thread::Builder::new()
        .name("sluice-pipeline".into())
        .spawn(move || {
            Pipeline::new(registry, datacenter).run(logged);
            if let Some(appender) = appender {
                // It ended first: its channel closed ours.
                let _ = appender.join();
            }
        })
        .expect("spawning the pipeline thread");
    (PostBus { tx, cluster }, handle)
}

/// Batches appended to the log and not yet delivered: a short queue, so that a slow
/// delivery holds back the log thread instead of piling up memory.
const LOGGED_BATCHES: usize = 64;

/// The post log thread: appends each batch, then hands it to delivery. A failing log costs
/// backfill and recovery, not live delivery: the failure is logged and counted, and the
/// batch still goes out.
fn append_all(
    log: &dyn PostLog,
    mut rx: mpsc::Receiver<Vec<IngestedPost>>,
    logged: mpsc::Sender<Vec<IngestedPost>>,
) {
    while let Some(batch) = rx.blocking_recv() {
        let posts: Vec<NewPost<'_>> = batch
            .iter()
            .map(|p| NewPost {
                datacenter: &p.datacenter,
                bytes: &p.bytes,
            })
            .collect();
        let now = u64::try_from(crate::state::now_ms()).unwrap_or(0);
        match log.append(&posts, now) {
            Ok(_) => telemetry::posts_logged(posts.len() as u64),
            Err(e) => {
                telemetry::post_log_error();
                tracing::error!(posts = posts.len(), "appending to the post log failed: {e}");
            }
        }
        drop(posts);
        if logged.blocking_send(batch).is_err() {
            return;
        }
    }
}

struct Pipeline {
    registry: Arc<StreamRegistry>,
    datacenter: Arc<str>,
    streams: Vec<Arc<LiveStream>>,
    streams_version: u64,
    fanout: Fanout,
}

impl Pipeline {
    fn new(registry: Arc<StreamRegistry>, datacenter: Arc<str>) -> Self {
        Self {
            fanout: Fanout::new(registry.rules()),
            registry,
            datacenter,
            streams: Vec::new(),
            streams_version: u64::MAX,
        }
    }

    fn run(mut self, mut rx: mpsc::Receiver<Vec<IngestedPost>>) {
        while let Some(batch) = rx.blocking_recv() {
            // The batch is in the log already; a stream or connection that appears after
            // this point finds it there.
            let version = self.registry.version();
            if version != self.streams_version {
                self.streams = self.registry.all();
                self.streams_version = version;
            }
            let datacenter = &*self.datacenter;
            let posts = batch.iter().map(|p| BatchPost {
                raw: &p.bytes,
                local: *p.datacenter == *datacenter,
            });
            self.fanout.deliver(&self.streams, posts);
        }
    }
}
