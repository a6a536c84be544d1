//! The post log in cluster mode: the posts stream itself.
//!
//! Every accepted post is stored once, in [`POSTS_STREAM`](crate::names::POSTS_STREAM), before
//! any node's consumer hands it to its pipeline; so the stream already is a log of every post
//! ingested anywhere, kept for the retention (the stream's `max_age`), and it outlives the
//! nodes. [`JetStreamLog`] reads it through the [`PostLog`] contract, so that backfill and
//! recovery on any node return posts ingested on every node, including before this node
//! started:
//! - sequence number = the stream sequence (the stream's first message is 1 =
//!   [`sluice_postlog::FIRST_SEQ`], and expiry never renumbers);
//! - append time = the time JetStream stored the message (its timestamp), in milliseconds:
//!   one clock for all nodes, and the moment the post became readable, which is what replay
//!   windows are about. (A header stamped by the ingesting node would carry that node's
//!   clock, and times from several nodes could then go backwards in stream order.);
//! - datacenter = the `Sluice-Datacenter` header.
//!
//! Ingest publishes each post once ([`crate::posts::publish`]); the server's pipeline does
//! not append to this log (see [`sluice_server::Clustering::post_log`]). [`PostLog::append`]
//! still works (it publishes, as ingest does) for tools and tests. Old posts go by the
//! stream's `max_age`: [`PostLog::trim_before`] has nothing to do.
//!
//! The trait is synchronous and its callers run it on blocking threads (`spawn_blocking`,
//! the pipeline and trim threads): each call runs its NATS requests with
//! [`Handle::block_on`](tokio::runtime::Handle::block_on) on the runtime the cluster
//! connection was made in. Calling it from an async task panics (tokio refuses to block a
//! runtime worker): use `spawn_blocking`.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::consumer::{self, AckPolicy, DeliverPolicy};
use async_nats::jetstream::{self, stream};
use futures_util::StreamExt as _;
use sluice_postlog::{LogError, LoggedPost, NewPost, PostLog};
use time::OffsetDateTime;
use tokio::runtime::Handle;

use crate::posts;

/// How long one log call waits for NATS before it fails.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Messages asked for per fetch while reading.
const FETCH: usize = 1_024;
/// How long a fetch waits at most: the server answers at once, except when posts it counted
/// as pending expired meanwhile (then it would hold a fetch without a deadline forever).
const FETCH_WAIT: Duration = Duration::from_millis(500);
/// How long the server keeps a reader's consumer if deleting it failed.
const READER_IDLE: Duration = Duration::from_secs(30);

/// [`PostLog`] over the posts stream (see the module docs).
pub struct JetStreamLog {
    js: jetstream::Context,
    stream: stream::Stream,
    runtime: Handle,
    /// The last `next_seq` NATS reported: what [`PostLog::next_seq`] answers while NATS
    /// cannot be asked.
    known_next: AtomicU64,
}

impl JetStreamLog {
    /// The log of `stream` (the posts stream), running its NATS calls on `runtime`.
    pub fn new(js: jetstream::Context, stream: stream::Stream, runtime: Handle) -> Self {
        Self {
            js,
            stream,
            runtime,
            known_next: AtomicU64::new(sluice_postlog::FIRST_SEQ),
        }
    }

    /// Runs `work` on the cluster's runtime from this (blocking) thread, within [`TIMEOUT`].
    fn run<T>(
        &self,
        what: &str,
        work: impl Future<Output = anyhow::Result<T>>,
    ) -> Result<T, LogError> {
        match self
            .runtime
            .block_on(async { tokio::time::timeout(TIMEOUT, work).await })
        {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(LogError::Io(io::Error::other(format!("{what}: {e:#}")))),
            Err(_) => Err(LogError::Io(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{what}: NATS did not answer within {TIMEOUT:?}"),
            ))),
        }
    }

    /// The stream's current state; remembers its next sequence number.
    async fn state(&self) -> anyhow::Result<stream::State> {
        let info = self.stream.get_info().await?;
        self.known_next
            .fetch_max(info.state.last_sequence + 1, Ordering::AcqRel);
        Ok(info.state)
    }

    /// A short-lived consumer of the whole stream from `deliver`, which acknowledges
    /// nothing: a reader, not a subscriber.
    async fn reader(&self, deliver: DeliverPolicy) -> anyhow::Result<Reader> {
        let consumer = self
            .stream
            .create_consumer(consumer::pull::Config {
                deliver_policy: deliver,
                ack_policy: AckPolicy::None,
                inactive_threshold: READER_IDLE,
                memory_storage: true,
                num_replicas: 1,
                ..Default::default()
            })
            .await
            .context("creating a reader of the posts stream")?;
        Ok(Reader {
            consumer,
            stream: self.stream.clone(),
        })
    }

    async fn read_async(&self, from: u64, max: usize) -> anyhow::Result<Vec<LoggedPost>> {
        if max == 0 {
            return Ok(Vec::new());
        }
        let state = self.state().await?;
        if state.messages == 0 || from > state.last_sequence {
            return Ok(Vec::new());
        }
        let start = from.max(state.first_sequence);
        // Posts appended after the state was read are left to the next read.
        let stored = usize::try_from(state.last_sequence - start + 1).unwrap_or(usize::MAX);
        let want = max.min(stored);
        let mut reader = self
            .reader(DeliverPolicy::ByStartSequence {
                start_sequence: start,
            })
            .await?;
        let mut posts = Vec::with_capacity(want.min(FETCH));
        let result = async {
            while posts.len() < want {
                let batch = (want - posts.len()).min(FETCH);
                let mut messages = reader
                    .consumer
                    .fetch()
                    .max_messages(batch)
                    .expires(FETCH_WAIT)
                    .messages()
                    .await
                    .context("fetching posts")?;
                let mut got = 0;
                while let Some(message) = messages.next().await {
                    let message = message.map_err(|e| anyhow::anyhow!("fetching posts: {e}"))?;
                    posts.push(logged(&message)?);
                    got += 1;
                }
                // Fewer than asked: nothing more is stored (expired meanwhile, or gaps).
                if got < batch {
                    break;
                }
            }
            anyhow::Ok(())
        }
        .await;
        reader.dismiss(&self.runtime);
        result?;
        posts.truncate(want);
        Ok(posts)
    }

    async fn seq_at_time_async(&self, ms: u64) -> anyhow::Result<u64> {
        let state = self.state().await?;
        if state.messages == 0 || ms > ms_of(state.last_timestamp) {
            return Ok(state.last_sequence + 1);
        }
        if ms <= ms_of(state.first_timestamp) {
            return Ok(state.first_sequence);
        }
        let start_time = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .context("a time within the stream's range")?;
        let mut reader = self
            .reader(DeliverPolicy::ByStartTime { start_time })
            .await?;
        let first = async {
            let mut messages = reader
                .consumer
                .fetch()
                .max_messages(1)
                .expires(FETCH_WAIT)
                .messages()
                .await
                .context("fetching a post")?;
            match messages.next().await {
                Some(message) => {
                    let message = message.map_err(|e| anyhow::anyhow!("fetching a post: {e}"))?;
                    let info = message
                        .info()
                        .map_err(|e| anyhow::anyhow!("a post without stream metadata: {e}"))?;
                    anyhow::Ok(Some(info.stream_sequence))
                }
                None => Ok(None),
            }
        }
        .await;
        reader.dismiss(&self.runtime);
        // None: everything from `ms` on expired between the two requests.
        Ok(first?.unwrap_or(state.last_sequence + 1))
    }

    async fn append_async(&self, posts: &[NewPost<'_>]) -> anyhow::Result<u64> {
        // Not from the ingest API: the ids are read here, once.
        let outgoing = posts.iter().map(|p| posts::Outgoing {
            id: sluice_model::read_post_id(p.bytes),
            datacenter: Arc::from(p.datacenter),
            bytes: bytes::Bytes::copy_from_slice(p.bytes),
        });
        match posts::publish_outgoing(&self.js, outgoing).await? {
            Some(last) => {
                self.known_next.fetch_max(last + 1, Ordering::AcqRel);
                Ok(last)
            }
            None => Ok(self.state().await?.last_sequence),
        }
    }
}

/// An ephemeral consumer reading the stream for one call.
struct Reader {
    consumer: consumer::Consumer<consumer::pull::Config>,
    stream: stream::Stream,
}

impl Reader {
    /// Deletes the consumer in the background (the caller need not wait for it; the server
    /// drops it after [`READER_IDLE`] anyway).
    fn dismiss(&mut self, runtime: &Handle) {
        let name = self.consumer.cached_info().name.clone();
        let stream = self.stream.clone();
        runtime.spawn(async move {
            if let Err(e) = stream.delete_consumer(&name).await {
                tracing::debug!(consumer = name, "deleting a posts reader: {e}");
            }
        });
    }
}

/// Epoch milliseconds of a JetStream time (clamped to zero before 1970).
fn ms_of(time: OffsetDateTime) -> u64 {
    u64::try_from(time.unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
}

/// The logged post a stream message carries.
fn logged(message: &jetstream::Message) -> anyhow::Result<LoggedPost> {
    let info = message
        .info()
        .map_err(|e| anyhow::anyhow!("a post without stream metadata: {e}"))?;
    let datacenter = posts::datacenter_of(message);
    Ok(LoggedPost {
        seq: info.stream_sequence,
        appended_ms: ms_of(info.published),
        datacenter: Arc::from(datacenter),
        bytes: message.payload.clone(),
    })
}

impl PostLog for JetStreamLog {
    /// Publishes the posts to the stream (as ingest does) and returns the stream sequence
    /// of the last; `now_ms` is ignored: JetStream stamps each post when it stores it. A
    /// post whose id is already stored (within the duplicate window) is not stored again,
    /// and the returned sequence is then that of the stored copy.
    fn append(&self, posts: &[NewPost<'_>], _now_ms: u64) -> Result<u64, LogError> {
        self.run("appending to the posts stream", self.append_async(posts))
    }

    /// Asks NATS; while it cannot be reached, the last answer it gave.
    fn next_seq(&self) -> u64 {
        match self.run("reading the posts stream", self.state()) {
            Ok(state) => state.last_sequence + 1,
            Err(e) => {
                tracing::warn!("{e}");
                self.known_next.load(Ordering::Acquire)
            }
        }
    }

    fn seq_at_time(&self, ms: u64) -> Result<u64, LogError> {
        self.run("seeking in the posts stream", self.seq_at_time_async(ms))
    }

    fn read(&self, from: u64, max: usize) -> Result<Vec<LoggedPost>, LogError> {
        self.run("reading the posts stream", self.read_async(from, max))
    }

    /// Nothing to do: the stream's `max_age` expires posts past the retention.
    fn trim_before(&self, _ms: u64) -> Result<(), LogError> {
        Ok(())
    }
}
