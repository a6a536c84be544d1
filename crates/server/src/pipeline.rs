//! The post pipeline: every accepted post is appended to the post log, then matched against
//! every live stream and put in the outboxes of the connections that should receive it.
//!
//! Two dedicated threads run it (the in-process post bus). Ingest handlers hand batches
//! through a bounded channel and wait until the first thread has appended the batch to the
//! post log ([`PostBus::publish`]): a post is acknowledged only once it is in the log, so a
//! crash of the process after the answer loses nothing. That thread drops the posts whose id
//! it accepted within the last [`dedup::WINDOW`] before appending, and then passes the batch
//! to the second, so that a post is either in the log before a connection registers
//! (backfill and recovery find it there) or delivered to that connection live (possibly
//! both: duplicates are allowed, gaps are not). In cluster mode the
//! backend's log already holds every post before its consumer hands it to the pipeline, which
//! then has nothing to append and runs on one thread. The delivering thread matches each
//! post at most once against the node-wide index of every stream's rules, and for each
//! stream with open connections decides what to send and to whom with
//! [`crate::delivery::select`] (the same decision replay makes): the post with
//! `matching_rules` for rules streams, the plain post for the connections of its partition
//! on volume streams. What a group of connections receives from a batch is framed and
//! compressed once and shared by all of them ([`crate::delivery::fanout`]). The matching of
//! a large batch, the costly step, is spread over matching threads, one per core by default
//! ([`crate::delivery::matching`]); routing stays on the delivering thread, in post order.
//!
//! What is read from a post, and where: the ingest API parses each post once, to validate
//! it, and the post travels on as an [`IngestedPost`] with its id and the datacenter it came
//! from. The append thread de-duplicates by that id, the cluster backend publishes it as
//! the JetStream message id (and a consuming node reads it back from that header), and
//! routing samples and partitions by it: none of them parses the post again. The view that
//! parse made of the bytes stored, the fields rules are evaluated on
//! ([`sluice_model::PostView`]), travels with the post too ([`IngestedPost::view`]), and
//! matching reads it instead of parsing the post again. Posts that come from the cluster
//! backend carry no view (it does not cross NATS): the matcher parses each of them, only
//! when a rules stream with connections needs it, once however many streams it is routed
//! to.
//!
//! Pushing never blocks (see [`crate::delivery::Outbox`]), so one stalled client cannot
//! delay the pipeline or anyone else.

use std::borrow::Cow;
use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use sluice_postlog::{LogError, NewPost, PostLog};
use tokio::sync::{mpsc, oneshot};

use crate::clock::now_ms;
use crate::cluster::{Cluster, ClusterError};
use crate::compliance::Compliance;
use crate::dedup::{self, RecentIds};
use crate::delivery::fanout::{BatchPost, Fanout};
pub use crate::delivery::select::{DECAHOSE_PARTITIONS, FIREHOSE_PARTITIONS};
use crate::delivery_mark::DeliveryMark;
pub use crate::post::IngestedPost;
use crate::registry::{LiveStream, StreamRegistry};
use crate::telemetry;

/// Where accepted posts go: straight to this node's pipeline, or (cluster mode) to the
/// cluster backend, whose per-node consumer hands every node's posts back to
/// [`PostBus::enqueue`].
#[derive(Clone)]
pub struct PostBus {
    tx: mpsc::Sender<Feed>,
    cluster: Option<Arc<dyn Cluster>>,
}

impl PostBus {
    /// Publishes a batch of accepted posts and resolves once they are stored, so that the
    /// caller may acknowledge them. Single node: once the pipeline has appended the batch
    /// to the post log (written to the OS: see `SegmentLog` for when it is fsynced), with
    /// the posts whose id was accepted within [`dedup::WINDOW`] left out (they are stored
    /// already); the wait is longer when the pipeline is behind (backpressure). Cluster:
    /// once JetStream has acknowledged every post ([`Cluster::publish_posts`]). An error
    /// means none of the batch was stored or will be delivered.
    pub async fn publish(&self, posts: Vec<IngestedPost>) -> Result<(), PublishError> {
        if posts.is_empty() {
            return Ok(());
        }
        if let Some(cluster) = &self.cluster {
            return Ok(cluster.publish_posts(posts).await?);
        }
        let (stored, outcome) = oneshot::channel();
        self.send(Batch {
            posts,
            next_seq: None,
            stored: Some(stored),
        })
        .await?;
        match outcome.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(PublishError::NotStored(e)),
            // The pipeline ended without taking the batch up.
            Err(_) => Err(PipelineStopped.into()),
        }
    }

    /// Queues a batch for this node's pipeline (log, match, deliver), bypassing the
    /// cluster, and returns once it is queued (not delivered): for the cluster backend's
    /// consumer, which says where the batch ends in the backend's log (`next_seq`: the
    /// sequence number after its last post) so that backfill knows how far delivery has
    /// got ([`DeliveryMark`]).
    pub async fn enqueue(
        &self,
        posts: Vec<IngestedPost>,
        next_seq: Option<u64>,
    ) -> Result<(), PipelineStopped> {
        if posts.is_empty() {
            return Ok(());
        }
        self.send(Batch {
            posts,
            next_seq,
            stored: None,
        })
        .await
    }

    async fn send(&self, batch: Batch) -> Result<(), PipelineStopped> {
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
    Batch(Batch),
    /// Shutdown: refuse further batches, finish the ones queued.
    Stop,
}

/// Receives batches until [`Feed::Stop`], then closes the channel (senders get an error from
/// then on) and takes what was queued before the close; `None` at the end.
fn next_batch(rx: &mut mpsc::Receiver<Feed>) -> Option<Batch> {
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
    /// Appending them to the post log failed: they were not accepted (nor delivered).
    #[error("the posts could not be stored in the post log, none was accepted: {0}")]
    NotStored(LogError),
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
/// With `match_threads` of 2 or more, `sluice-pipeline` hands the matching of a large
/// batch to that many threads `sluice-match-N` ([`crate::delivery::matching`]) and waits
/// for them before it routes and frames the batch, then hands them the batch's gzip
/// segments to compress and queues them in order; with 1 it does all of it itself.
pub fn start(
    registry: Arc<StreamRegistry>,
    compliance: Arc<Compliance>,
    log: Option<Arc<dyn PostLog>>,
    datacenter: Arc<str>,
    cluster: Option<Arc<dyn Cluster>>,
    delivery_start: u64,
    match_threads: usize,
) -> (PostBus, Arc<DeliveryMark>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(4_096);
    let (input, appender) = match log {
        Some(log) => {
            let (logged_tx, logged) = mpsc::channel(LOGGED_BATCHES);
            let compliance = compliance.clone();
            let appender = std::thread::Builder::new()
                .name("sluice-append".into())
                .spawn(move || append_all(&*log, &compliance, rx, logged_tx))
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
            Pipeline::new(
                registry,
                compliance,
                datacenter,
                delivery_mark,
                match_threads,
            )
            .run(input);
            if let Some(appender) = appender {
                // It ended first: its channel closed ours.
                let _ = appender.join();
            }
        })
        .expect("spawning the pipeline thread");
    (PostBus { tx, cluster }, mark, handle)
}

/// A batch on its way through the pipeline.
struct Batch {
    posts: Vec<IngestedPost>,
    /// The sequence number after its last post in the log, once it is there.
    next_seq: Option<u64>,
    /// Told when the batch is stored, or could not be ([`PostBus::publish`] waits for it).
    stored: Option<oneshot::Sender<Result<(), LogError>>>,
}

/// Batches appended to the log and not yet delivered: a short queue, so that a slow
/// delivery holds back the log thread instead of piling up memory.
const LOGGED_BATCHES: usize = 64;

/// The post log thread: drops the posts accepted before (by id, within
/// [`dedup::WINDOW`]), appends the rest of each batch, puts the batch's compliance events
/// in force, tells the publisher, then hands the batch to delivery. Events are in force
/// before the publisher is answered, so that a client that sends a delete and then asks
/// for backfill never gets the deleted post (delivery runs later, on another thread). A
/// batch whose append failed is answered with the error and neither delivered nor
/// remembered: the publisher was told it was not accepted, so it may send it again, and
/// only what the log holds is ever delivered (what a client got live, backfill and
/// recovery find too).
fn append_all(
    log: &dyn PostLog,
    compliance: &Compliance,
    mut rx: mpsc::Receiver<Feed>,
    logged: mpsc::Sender<Batch>,
) {
    let started = std::time::Instant::now();
    let mut recent =
        RecentIds::rebuild(log, now(), dedup::WINDOW, dedup::MAX_IDS).unwrap_or_else(|e| {
            telemetry::post_log_error();
            tracing::error!(
                "reading the ids of the last minutes' posts from the post log failed, \
                 a post sent again may be delivered twice: {e}"
            );
            RecentIds::new(dedup::WINDOW, dedup::MAX_IDS)
        });
    tracing::info!(
        ids = recent.len(),
        ms = started.elapsed().as_millis() as u64,
        "de-duplication window loaded from the post log"
    );
    while let Some(Batch { posts, stored, .. }) = next_batch(&mut rx) {
        let appended = append_new(log, compliance, &mut recent, posts, now());
        let (outcome, batch) = match appended {
            Ok(batch) => (Ok(()), batch),
            Err(e) => (Err(e), None),
        };
        if let Some(stored) = stored {
            // The publisher may have given up waiting (its client went away): the batch is
            // stored all the same.
            let _ = stored.send(outcome);
        }
        if let Some(batch) = batch
            && logged.blocking_send(batch).is_err()
        {
            return;
        }
    }
    if let Err(e) = log.sync() {
        tracing::error!("syncing the post log at shutdown failed: {e}");
    }
}

/// Appends the posts of `posts` whose id `recent` does not hold (nor an earlier post of the
/// batch), records their ids and puts the batch's compliance events in force; returns
/// them as a batch for delivery (`None`: all were duplicates). On failure nothing is
/// appended, recorded or put in force.
fn append_new(
    log: &dyn PostLog,
    compliance: &Compliance,
    recent: &mut RecentIds,
    mut posts: Vec<IngestedPost>,
    now: u64,
) -> Result<Option<Batch>, LogError> {
    recent.expire(now);
    let received = posts.len();
    let mut recorded = 0;
    posts.retain(|post| {
        // Events have no id of their own (theirs is their post's or user's): never
        // de-duplicated.
        if sluice_model::compliance::is_event(post.bytes()) {
            return true;
        }
        let new = recent.insert(post.id, now);
        recorded += usize::from(new);
        new
    });
    if posts.is_empty() {
        telemetry::posts_duplicate(received as u64);
        return Ok(None);
    }
    let new: Vec<NewPost<'_>> = posts
        .iter()
        .map(|p| NewPost {
            datacenter: &p.datacenter,
            bytes: p.bytes(),
        })
        .collect();
    match log.append(&new, now) {
        Ok(last) => {
            telemetry::posts_logged(new.len() as u64);
            telemetry::posts_duplicate((received - new.len()) as u64);
            drop(new);
            compliance.receive_logged(posts.iter().map(|p| p.bytes().as_ref()), last + 1);
            Ok(Some(Batch {
                posts,
                next_seq: Some(last + 1),
                stored: None,
            }))
        }
        Err(e) => {
            recent.forget_newest(recorded);
            telemetry::post_log_error();
            tracing::error!(posts = new.len(), "appending to the post log failed: {e}");
            Err(e)
        }
    }
}

/// Now in epoch milliseconds, as the post log stamps appends.
fn now() -> u64 {
    u64::try_from(now_ms()).unwrap_or(0)
}

/// Where delivery takes its batches from: the post log thread, or (nothing to append) the
/// post bus itself.
enum Input {
    Logged(mpsc::Receiver<Batch>),
    Bus(mpsc::Receiver<Feed>),
}

impl Input {
    /// Whether batches come straight from the bus: no append thread saw them before.
    fn is_bus(&self) -> bool {
        matches!(self, Input::Bus(_))
    }

    /// The next batch to deliver. Straight from the bus (no log to append to), a batch is
    /// stored as far as this node can store it once the pipeline has it.
    fn next(&mut self) -> Option<Batch> {
        match self {
            Input::Logged(rx) => rx.blocking_recv(),
            Input::Bus(rx) => {
                let mut batch = next_batch(rx)?;
                if let Some(stored) = batch.stored.take() {
                    let _ = stored.send(Ok(()));
                }
                Some(batch)
            }
        }
    }
}

struct Pipeline {
    registry: Arc<StreamRegistry>,
    compliance: Arc<Compliance>,
    datacenter: Arc<str>,
    mark: Arc<DeliveryMark>,
    streams: Vec<Arc<LiveStream>>,
    streams_version: u64,
    fanout: Fanout,
}

impl Pipeline {
    fn new(
        registry: Arc<StreamRegistry>,
        compliance: Arc<Compliance>,
        datacenter: Arc<str>,
        mark: Arc<DeliveryMark>,
        match_threads: usize,
    ) -> Self {
        Self {
            fanout: Fanout::new(registry.rules(), match_threads),
            registry,
            compliance,
            datacenter,
            mark,
            streams: Vec::new(),
            streams_version: u64::MAX,
        }
    }

    fn run(mut self, mut input: Input) {
        while let Some(Batch {
            posts: batch,
            next_seq,
            ..
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
            let batch = self.compliance_checked(batch, next_seq, input.is_bus());
            let posts = batch_posts(&batch, &self.datacenter);
            self.fanout.fan_out(&self.streams, &posts, next_seq);
        }
    }

    /// `batch` (ending at `next_seq` in the log) with its events in force before it is
    /// delivered, so that a replay that reads past them finds them in force: taken in here
    /// when it comes `from_bus`, by the append thread otherwise. A batch logged before
    /// events already in force (delivery lags behind the log) is sent as a replay would
    /// send it.
    fn compliance_checked(
        &self,
        batch: Vec<IngestedPost>,
        next_seq: Option<u64>,
        from_bus: bool,
    ) -> Vec<IngestedPost> {
        if from_bus {
            self.compliance
                .receive(batch.iter().map(|p| p.bytes().as_ref()));
            return batch;
        }
        match next_seq {
            Some(next_seq) if self.compliance.events_logged_after(next_seq) => {
                self.as_compliance_lets(batch)
            }
            _ => batch,
        }
    }

    /// `batch` as compliance lets it be sent now, each post checked by the id and author
    /// of the view it came with (parsed again only without one): so that a post that
    /// delivery reaches after its delete was accepted does not go out live. Rewritten
    /// posts lose the view they came with (matching parses them).
    fn as_compliance_lets(&self, batch: Vec<IngestedPost>) -> Vec<IngestedPost> {
        batch
            .into_iter()
            .filter_map(|post| {
                let sendable = self.compliance.sendable(post.bytes(), post.view(), false)?;
                let rewritten = match sendable {
                    Cow::Borrowed(_) => None,
                    Cow::Owned(bytes) => Some(bytes),
                };
                Some(match rewritten {
                    None => post,
                    Some(bytes) => IngestedPost {
                        body: Bytes::from(bytes).into(),
                        ..post
                    },
                })
            })
            .collect()
    }
}

/// A batch as delivery reads it: each post's bytes and id, whether it came from this
/// node's `datacenter`, and the view ingest parsed, if any (matching reads it instead of
/// parsing the post).
fn batch_posts<'a>(batch: &'a [IngestedPost], datacenter: &str) -> Vec<BatchPost<'a>> {
    batch
        .iter()
        .map(|p| BatchPost {
            raw: p.bytes(),
            id: p.id,
            local: *p.datacenter == *datacenter,
            view: p.view(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Condvar, Mutex};
    use std::task::Poll;

    use bytes::Bytes;
    use futures_util::poll;
    use serde_json::Value;
    use sluice_postlog::{LoggedPost, MemoryLog};

    use super::*;
    use crate::compliance::Verdict;
    use crate::post::{ParsedPost, PostBody};

    /// A memory log whose appends wait for a gate and can be made to fail.
    #[derive(Default)]
    struct TestLog {
        log: MemoryLog,
        open: Mutex<bool>,
        opened: Condvar,
        fail: AtomicBool,
    }

    impl TestLog {
        fn open() -> Arc<Self> {
            let log = Arc::new(Self::default());
            log.set_open(true);
            log
        }

        fn set_open(&self, open: bool) {
            *self.open.lock().unwrap() = open;
            self.opened.notify_all();
        }

        fn ids(&self) -> Vec<u64> {
            let posts: Vec<LoggedPost> = self.log.read(0, usize::MAX).unwrap();
            posts
                .iter()
                .map(|p| sluice_model::read_post_id(&p.bytes).unwrap())
                .collect()
        }
    }

    impl PostLog for TestLog {
        fn append(&self, posts: &[NewPost<'_>], now_ms: u64) -> Result<u64, LogError> {
            let open = self.open.lock().unwrap();
            drop(self.opened.wait_while(open, |open| !*open).unwrap());
            if self.fail.load(Ordering::SeqCst) {
                return Err(LogError::Io(std::io::Error::other("disk full")));
            }
            self.log.append(posts, now_ms)
        }
        fn next_seq(&self) -> u64 {
            self.log.next_seq()
        }
        fn seq_at_time(&self, ms: u64) -> Result<u64, LogError> {
            self.log.seq_at_time(ms)
        }
        fn read(&self, from: u64, max: usize) -> Result<Vec<LoggedPost>, LogError> {
            self.log.read(from, max)
        }
        fn trim_before(&self, ms: u64) -> Result<(), LogError> {
            self.log.trim_before(ms)
        }
    }

    fn start_on(log: &Arc<TestLog>) -> (PostBus, JoinHandle<()>) {
        let log: Arc<dyn PostLog> = log.clone();
        let registry = Arc::new(StreamRegistry::default());
        let (bus, _, handle) = start(
            registry,
            Compliance::in_memory(),
            Some(log),
            "local".into(),
            None,
            1,
            2,
        );
        (bus, handle)
    }

    fn posts(ids: &[u64]) -> Vec<IngestedPost> {
        ids.iter()
            .map(|&id| IngestedPost {
                body: Bytes::from(format!(r#"{{"id":{id},"created_at":"x"}}"#)).into(),
                id,
                datacenter: "local".into(),
            })
            .collect()
    }

    async fn stop(bus: PostBus, handle: JoinHandle<()>) {
        bus.stop().await;
        drop(bus);
        tokio::task::spawn_blocking(move || handle.join().unwrap())
            .await
            .unwrap();
    }

    #[test]
    fn delivery_reads_the_view_each_post_came_with() {
        let viewed = Bytes::from_static(br#"{"id":1,"text":"hello"}"#);
        let parsed = ParsedPost::try_new(viewed, |b| sluice_model::parse_post(b)).unwrap();
        let batch = [
            IngestedPost {
                body: PostBody::Parsed(parsed),
                id: 1,
                datacenter: "local".into(),
            },
            IngestedPost {
                body: PostBody::Raw(Bytes::from_static(br#"{"id":2,"text":"bye"}"#)),
                id: 2,
                datacenter: "pdx".into(),
            },
        ];
        let posts = batch_posts(&batch, "local");
        // The very view the post came with, not a parse of its bytes.
        let view = posts[0].view.expect("the view it came with");
        assert!(std::ptr::eq(view, batch[0].view().unwrap()));
        assert_eq!(view.text.as_deref(), Some("hello"));
        assert_eq!(posts[0].raw, &batch[0].bytes()[..]);
        assert!(posts[1].view.is_none());
        assert_eq!((posts[0].id, posts[1].id), (1, 2));
        assert_eq!((posts[0].local, posts[1].local), (true, false));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn publish_resolves_only_once_the_batch_is_in_the_log() {
        let log = Arc::new(TestLog::default());
        let (bus, handle) = start_on(&log);
        let mut published = Box::pin(bus.publish(posts(&[1, 2])));
        // Handed over (the channel has room), but the append is held back.
        assert!(
            poll!(&mut published).is_pending(),
            "answered before the append"
        );
        assert!(log.ids().is_empty());
        log.set_open(true);
        published.await.unwrap();
        assert_eq!(log.ids(), [1, 2]);
        stop(bus, handle).await;
    }

    #[test]
    fn a_batch_delivery_reaches_after_a_later_event_is_sent_as_a_replay_would_send_it() {
        let compliance = Compliance::in_memory();
        let pipeline = Pipeline::new(
            Arc::new(StreamRegistry::default()),
            compliance.clone(),
            "local".into(),
            Arc::new(DeliveryMark::at(0)),
            1,
        );
        // Posts as ingest hands them on, each with the view it parsed.
        let by = |id: u64, user: u64| {
            let bytes = Bytes::from(format!(
                r#"{{"id":{id},"id_str":"{id}","user":{{"id":{user},"id_str":"{user}"}},"place":{{"id":"01"}},"created_at":"x"}}"#
            ));
            let parsed = ParsedPost::try_new(bytes, |b| sluice_model::parse_post(b)).unwrap();
            IngestedPost {
                body: PostBody::Parsed(parsed),
                id,
                datacenter: "local".into(),
            }
        };
        // Posts 7, 8 and 9 are logged at 0..3; a delete of 7 and a scrub of user 6's
        // location at 3..5, and taken in.
        let events = [
            br#"{"delete":{"status":{"id":7,"id_str":"7","user_id":5,"user_id_str":"5"},"timestamp_ms":"1"}}"#.as_slice(),
            br#"{"scrub_geo":{"user_id":6,"user_id_str":"6","up_to_status_id":9,"up_to_status_id_str":"9","timestamp_ms":"1"}}"#,
        ];
        compliance.receive_logged(events, 5);
        assert!(compliance.events_logged_after(3), "the posts' batch lags");
        assert!(!compliance.events_logged_after(5), "the events' own batch");

        let batch = || vec![by(7, 5), by(8, 6), by(9, 4)];
        let ids = |sent: &[IngestedPost]| sent.iter().map(|p| p.id).collect::<Vec<u64>>();
        // Logged with the events (before them), or from the cluster's bus: as it was
        // logged.
        assert_eq!(
            ids(&pipeline.compliance_checked(batch(), Some(5), false)),
            [7, 8, 9]
        );
        assert_eq!(
            ids(&pipeline.compliance_checked(batch(), Some(3), true)),
            [7, 8, 9]
        );
        let sent = pipeline.compliance_checked(batch(), Some(3), false);
        assert_eq!(ids(&sent), [8, 9], "the deleted post is left out");
        let scrubbed: Value = serde_json::from_slice(sent[0].bytes()).unwrap();
        assert!(scrubbed["place"].is_null(), "{scrubbed}");
        assert!(sent[0].view().is_none(), "a rewritten post is parsed again");
        let untouched: Value = serde_json::from_slice(sent[1].bytes()).unwrap();
        assert_eq!(untouched["place"]["id"], "01");
        assert!(
            sent[1].view().is_some(),
            "a post sent as it is keeps its view"
        );
    }

    #[test]
    fn a_batchs_events_are_in_force_once_it_is_appended_and_not_if_the_append_fails() {
        // `append_all` answers the publisher with what `append_new` returned, so an event
        // is in force before ingest answers for it.
        let log = TestLog::open();
        let compliance = Compliance::in_memory();
        let mut recent = RecentIds::new(dedup::WINDOW, dedup::MAX_IDS);
        let delete = |id: u64| {
            IngestedPost {
            body: Bytes::from(format!(
                r#"{{"delete":{{"status":{{"id":{id},"id_str":"{id}","user_id":5,"user_id_str":"5"}},"timestamp_ms":"1"}}}}"#
            ))
            .into(),
            id: 0,
            datacenter: "local".into(),
        }
        };
        let mut batch = posts(&[1, 2]);
        batch.push(delete(7));
        let appended = append_new(&*log, &compliance, &mut recent, batch, 1).unwrap();
        let next_seq = appended
            .and_then(|b| b.next_seq)
            .expect("a batch to deliver");
        assert_eq!(compliance.verdict(7, Some(5), false), Verdict::Withhold);
        assert!(
            compliance.events_logged_after(next_seq - 1),
            "delivery checks an earlier batch"
        );
        assert!(
            !compliance.events_logged_after(next_seq),
            "and not this one: its posts come before its events"
        );

        log.fail.store(true, Ordering::SeqCst);
        assert!(append_new(&*log, &compliance, &mut recent, vec![delete(8)], 2).is_err());
        assert_eq!(compliance.verdict(8, Some(5), false), Verdict::Send);
        assert!(!compliance.events_logged_after(next_seq));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_the_log_refuses_is_refused_and_can_be_sent_again() {
        let log = TestLog::open();
        log.fail.store(true, Ordering::SeqCst);
        let (bus, handle) = start_on(&log);
        let refused = bus.publish(posts(&[1, 2])).await;
        assert!(
            matches!(refused, Err(PublishError::NotStored(_))),
            "{refused:?}"
        );
        log.fail.store(false, Ordering::SeqCst);
        // Its ids were not remembered: the retry is stored, not taken for a duplicate.
        bus.publish(posts(&[2, 1])).await.unwrap();
        assert_eq!(log.ids(), [2, 1]);
        stop(bus, handle).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_id_is_logged_once_within_a_batch_across_batches_and_across_a_restart() {
        let log = TestLog::open();
        let (bus, handle) = start_on(&log);
        bus.publish(posts(&[1, 2, 1])).await.unwrap();
        bus.publish(posts(&[2, 3])).await.unwrap();
        bus.publish(posts(&[3])).await.unwrap();
        assert_eq!(log.ids(), [1, 2, 3]);
        stop(bus, handle).await;

        // A new pipeline on the same log remembers the window.
        let (bus, handle) = start_on(&log);
        bus.publish(posts(&[3, 4, 1])).await.unwrap();
        assert_eq!(log.ids(), [1, 2, 3, 4]);
        stop(bus, handle).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn duplicates_are_found_by_the_id_the_post_carries_without_reading_the_bytes() {
        let log = TestLog::open();
        let (bus, handle) = start_on(&log);
        // Bytes without an id field: only the id read at ingest can tell them apart.
        let post = |id: u64, n: u32| IngestedPost {
            body: Bytes::from(format!(r#"{{"created_at":"x","n":{n}}}"#)).into(),
            id,
            datacenter: "local".into(),
        };
        bus.publish(vec![post(1, 1), post(2, 2), post(1, 3)])
            .await
            .unwrap();
        bus.publish(vec![post(2, 4), post(3, 5)]).await.unwrap();
        let logged: Vec<Bytes> = log
            .log
            .read(0, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|p| p.bytes)
            .collect();
        let n = |n: u32| Bytes::from(format!(r#"{{"created_at":"x","n":{n}}}"#));
        assert_eq!(logged, [n(1), n(2), n(5)]);
        stop(bus, handle).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_publish_waiting_at_shutdown_is_answered_once_stored_later_ones_refused() {
        let log = Arc::new(TestLog::default());
        let (bus, handle) = start_on(&log);
        let mut early = Box::pin(bus.publish(posts(&[1])));
        assert!(matches!(poll!(&mut early), Poll::Pending));
        bus.stop().await;
        log.set_open(true);
        early.await.unwrap();
        assert_eq!(log.ids(), [1]);
        tokio::task::spawn_blocking(move || handle.join().unwrap())
            .await
            .unwrap();
        let late = bus.publish(posts(&[2])).await;
        assert!(matches!(late, Err(PublishError::Stopped(_))), "{late:?}");
        assert_eq!(log.ids(), [1]);
    }
}
