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
//! [`crate::delivery::select`] (the same decision replay makes): the post with
//! `matching_rules` for rules streams, the plain post for the connections of its partition
//! on volume streams. What a group of connections
//! receives from a batch is framed and compressed once and shared by all of them
//! ([`crate::delivery::fanout`]).
//!
//! Pushing never blocks (see [`crate::delivery::Outbox`]), so one stalled client cannot
//! delay the pipeline or anyone else.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
    tx: mpsc::Sender<Feed>,
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
            None => Ok(self.deliver(posts, None).await?),
        }
    }

    /// Hands a batch to this node's pipeline (log, match, deliver), bypassing the cluster:
    /// for the cluster backend's consumer, which says where the batch ends in the
    /// backend's log (`next_seq`: the sequence number after its last post) so that
    /// backfill knows how far delivery has got ([`DeliveryMark`]).
    pub async fn deliver(
        &self,
        posts: Vec<IngestedPost>,
        next_seq: Option<u64>,
    ) -> Result<(), PipelineStopped> {
        if posts.is_empty() {
            return Ok(());
        }
        let batch = LoggedBatch { posts, next_seq };
        self.tx
            .send(Feed::Batch(batch))
            .await
            .map_err(|_| PipelineStopped)
    }

    /// Stops the pipeline at shutdown: batches handed over before this are still logged
    /// and delivered, later ones are refused ([`PipelineStopped`]), so no accepted post is
    /// lost. The pipeline's threads end once they have drained.
    pub async fn stop(&self) {
        // Already stopped is fine.
        let _ = self.tx.send(Feed::Stop).await;
    }
}

/// What the post bus carries to the pipeline.
enum Feed {
    /// Accepted posts.
    Batch(LoggedBatch),
    /// Shutdown: refuse further batches, finish the ones queued.
    Stop,
}

/// Receives batches until [`Feed::Stop`], then closes the channel (senders get an error from
/// then on) and takes what was queued before the close; `None` at the end.
fn next_batch(rx: &mut mpsc::Receiver<Feed>) -> Option<LoggedBatch> {
    loop {
        match rx.blocking_recv()? {
            Feed::Batch(batch) => return Some(batch),
            Feed::Stop => rx.close(),
        }
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

/// How far live delivery has got in the post log: every post with a sequence number below
/// [`DeliveryMark::below`] has been handed to delivery for the connections registered at
/// that moment.
///
/// A backfill that has just registered its connection replays the log up to here, not to
/// the log's end: posts above the mark were appended but not yet delivered, and will reach
/// the new connection live. Reading to the end would send them twice whenever delivery
/// lags behind the appends. The pipeline moves the mark before it looks at a batch's
/// connections, and a connection registers under the lock delivery reads connections
/// under, so a batch that missed the connection is always below the mark the backfill
/// reads afterwards (no gap); a duplicate needs the registration to fall between the two
/// steps.
#[derive(Debug)]
pub struct DeliveryMark(AtomicU64);

impl DeliveryMark {
    /// A mark at `next_seq`: everything before it in the log predates every connection.
    pub fn at(next_seq: u64) -> Self {
        Self(AtomicU64::new(next_seq))
    }

    /// The first sequence number live delivery has not taken up yet.
    pub fn below(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Moves the mark up to `next_seq` (never down).
    pub fn advance_to(&self, next_seq: u64) {
        self.0.fetch_max(next_seq, Ordering::AcqRel);
    }
}

/// Starts the pipeline, which appends every batch to `log` (if any: a cluster backend's
/// log is filled before the pipeline sees a post) before delivering it. It ends when every
/// [`PostBus`] clone is dropped; the returned handle's thread ends last. With a `cluster`,
/// [`PostBus::publish`] goes to it instead of the pipeline. The returned [`DeliveryMark`]
/// starts at `delivery_start`: the end of the node's own log, or where the cluster backend
/// starts delivering its log to this node.
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
    delivery_start: u64,
) -> (PostBus, Arc<DeliveryMark>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(4_096);
    let (input, appender) = match log {
        Some(log) => {
            let (logged_tx, logged) = mpsc::channel(LOGGED_BATCHES);
            let appender = std::thread::Builder::new()
                .name("sluice-append".into())
                .spawn(move || append_all(&*log, rx, logged_tx))
                .expect("spawning the post log thread");
            (Input::Logged(logged), Some(appender))
        }
        None => (Input::Bus(rx), None),
    };
    let mark = Arc::new(DeliveryMark::at(delivery_start));
    let delivery_mark = mark.clone();
    let handle = std::thread::Builder::new()
        .name("sluice-pipeline".into())
        .spawn(move || {
            Pipeline::new(registry, datacenter, delivery_mark).run(input);
            if let Some(appender) = appender {
                // It ended first: its channel closed ours.
                let _ = appender.join();
            }
        })
        .expect("spawning the pipeline thread");
    (PostBus { tx, cluster }, mark, handle)
}

/// A batch on its way to delivery, with the sequence number after its last post in the
/// log once it is there.
struct LoggedBatch {
    posts: Vec<IngestedPost>,
    next_seq: Option<u64>,
}

/// Batches appended to the log and not yet delivered: a short queue, so that a slow
/// delivery holds back the log thread instead of piling up memory.
const LOGGED_BATCHES: usize = 64;

/// The post log thread: appends each batch, then hands it to delivery. A failing log costs
/// backfill and recovery, not live delivery: the failure is logged and counted, and the
/// batch still goes out.
fn append_all(log: &dyn PostLog, mut rx: mpsc::Receiver<Feed>, logged: mpsc::Sender<LoggedBatch>) {
    while let Some(LoggedBatch { posts: batch, .. }) = next_batch(&mut rx) {
        let posts: Vec<NewPost<'_>> = batch
            .iter()
            .map(|p| NewPost {
                datacenter: &p.datacenter,
                bytes: &p.bytes,
            })
            .collect();
        let now = u64::try_from(crate::state::now_ms()).unwrap_or(0);
        let next_seq = match log.append(&posts, now) {
            Ok(last) => {
                telemetry::posts_logged(posts.len() as u64);
                Some(last + 1)
            }
            Err(e) => {
                telemetry::post_log_error();
                tracing::error!(posts = posts.len(), "appending to the post log failed: {e}");
                None
            }
        };
        drop(posts);
        let batch = LoggedBatch {
            posts: batch,
            next_seq,
        };
        if logged.blocking_send(batch).is_err() {
            return;
        }
    }
    if let Err(e) = log.sync() {
        tracing::error!("syncing the post log at shutdown failed: {e}");
    }
}

/// Where delivery takes its batches from: the post log thread, or (nothing to append) the
/// post bus itself.
enum Input {
    Logged(mpsc::Receiver<LoggedBatch>),
    Bus(mpsc::Receiver<Feed>),
}

impl Input {
    fn next(&mut self) -> Option<LoggedBatch> {
        match self {
            Input::Logged(rx) => rx.blocking_recv(),
            Input::Bus(rx) => next_batch(rx),
        }
    }
}

struct Pipeline {
    registry: Arc<StreamRegistry>,
    datacenter: Arc<str>,
    mark: Arc<DeliveryMark>,
    streams: Vec<Arc<LiveStream>>,
    streams_version: u64,
    fanout: Fanout,
}

impl Pipeline {
    fn new(registry: Arc<StreamRegistry>, datacenter: Arc<str>, mark: Arc<DeliveryMark>) -> Self {
        Self {
            fanout: Fanout::new(registry.rules()),
            registry,
            datacenter,
            mark,
            streams: Vec::new(),
            streams_version: u64::MAX,
        }
    }

    fn run(mut self, mut input: Input) {
        while let Some(LoggedBatch {
            posts: batch,
            next_seq,
        }) = input.next()
        {
            // The batch is in the log already; a stream or connection that appears after
            // this point finds it there, below the mark (moved before delivery looks at the
            // connections: see `DeliveryMark`).
            if let Some(next_seq) = next_seq {
                self.mark.advance_to(next_seq);
            }
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
