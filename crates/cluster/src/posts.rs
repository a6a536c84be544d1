//! Posts over JetStream: every node publishes the posts it accepts to one stream, and every
//! node consumes the whole stream (an ordered consumer per node) into its own pipeline, so a
//! post ingested anywhere reaches matching connections everywhere.

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use sluice_model::parse_post;
use sluice_server::cluster::ClusterError;
use sluice_server::cluster::ClusterNode;
use sluice_server::post::IngestedPost;
use sluice_server::telemetry;

use crate::names::{DATACENTER_HEADER, POSTS_STREAM, POSTS_SUBJECTS, post_subject};

/// How long JetStream remembers a post id to drop a second publish of it: the same window
/// a single node de-duplicates over (the longest backfill), capped by the retention.
const DUPLICATE_WINDOW: Duration = sluice_server::dedup::WINDOW;
/// Posts handed to the pipeline in one batch at most.
const BATCH: usize = 1_024;

/// Creates the posts stream, or updates its retention to `retention`.
pub async fn ensure_stream(
    js: &jetstream::Context,
    retention: Duration,
) -> anyhow::Result<stream::Stream> {
    let config = stream::Config {
        name: POSTS_STREAM.to_owned(),
        subjects: vec![POSTS_SUBJECTS.to_owned()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        max_age: retention,
        duplicate_window: DUPLICATE_WINDOW.min(retention),
        ..Default::default()
    };
    js.create_or_update_stream(config).await?;
    Ok(js.get_stream(POSTS_STREAM).await?)
}

/// Publishes posts with pipelined acknowledgements; returns once JetStream acknowledged
/// every one (a duplicate of an already stored post counts as acknowledged), with the
/// stream sequence of the last (`None` for no posts). JetStream acknowledges a message once
/// it has stored it, so the ingest API, which answers when this returns, acknowledges only
/// posts the posts stream holds: a crash of the node after the answer loses nothing.
pub async fn publish(
    js: &jetstream::Context,
    posts: Vec<IngestedPost>,
) -> Result<Option<u64>, ClusterError> {
    let mut acks = Vec::with_capacity(posts.len());
    for post in posts {
        let mut headers = HeaderMap::new();
        if let Some(id) = parse_post(&post.bytes)
            .ok()
            .and_then(|view| view.id_str.or(view.id))
        {
            headers.insert("Nats-Msg-Id", id.to_string().as_str());
        }
        headers.insert(DATACENTER_HEADER, &*post.datacenter);
        let ack = js
            .publish_with_headers(post_subject(&post.datacenter), headers, post.bytes)
            .await
            .map_err(|e| ClusterError(format!("publishing a post: {e}")))?;
        acks.push(ack);
    }
    let mut last = None;
    let mut duplicates = 0;
    for ack in futures_util::future::join_all(acks.into_iter().map(|a| a.into_future())).await {
        let ack =
            ack.map_err(|e| ClusterError(format!("JetStream did not acknowledge a post: {e}")))?;
        duplicates += u64::from(ack.duplicate);
        last = Some(ack.sequence);
    }
    telemetry::posts_duplicate(duplicates);
    Ok(last)
}

/// The origin datacenter a stream message carries in its header ("" when missing).
pub fn datacenter_of(message: &async_nats::Message) -> &str {
    message
        .headers
        .as_ref()
        .and_then(|h| h.get(DATACENTER_HEADER))
        .map(|v| v.as_str())
        .unwrap_or("")
}

/// The post a stream message carries.
pub fn ingested(message: &async_nats::Message) -> IngestedPost {
    IngestedPost {
        bytes: message.payload.clone(),
        datacenter: Arc::from(datacenter_of(message)),
    }
}

/// Where a node's consumer of the posts stream stands: the stream sequence of the next
/// post to feed the pipeline.
#[derive(Debug, Clone, Copy)]
pub struct Position {
    next: u64,
}

impl Position {
    /// The stream sequence number of the next post to consume.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// The post after the last one stored now: what a starting node consumes from.
    pub async fn now(stream: &mut stream::Stream) -> anyhow::Result<Position> {
        let info = stream.info().await?;
        Ok(Position {
            next: info.state.last_sequence + 1,
        })
    }
}

/// Why [`consume`] returned.
pub enum Stopped {
    /// The pipeline is gone (shutdown).
    Pipeline,
    /// The NATS connection came back: start a fresh consumer from the position.
    Reconnected,
}

/// Feeds posts from `position` on (published by any node) into this node's pipeline, in
/// stream order, until the pipeline stops or the connection to NATS is re-established
/// (`reconnected` turns true): the caller then starts again from the updated position, so
/// the node catches up with everything stored while it was cut off.
pub async fn consume(
    stream: &stream::Stream,
    node: &dyn ClusterNode,
    position: &mut Position,
    reconnected: &mut tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Stopped> {
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                start_sequence: position.next,
            },
            ..Default::default()
        })
        .await?;
    let mut batches = consumer.messages().await?.ready_chunks(BATCH);
    reconnected.borrow_and_update();
    loop {
        let batch = tokio::select! {
            batch = batches.next() => batch,
            changed = reconnected.changed() => {
                if changed.is_ok() && *reconnected.borrow_and_update() {
                    return Ok(Stopped::Reconnected);
                }
                continue;
            }
        };
        let Some(batch) = batch else {
            return Ok(Stopped::Reconnected);
        };
        let mut posts = Vec::with_capacity(batch.len());
        for message in batch {
            match message {
                Ok(message) => {
                    if let Ok(info) = message.info() {
                        position.next = info.stream_sequence + 1;
                    }
                    posts.push(ingested(&message));
                }
                Err(e) => tracing::warn!("reading the posts stream: {e}"),
            }
        }
        let consumed = posts.len() as u64;
        if node.deliver_posts(posts, position.next).await.is_err() {
            return Ok(Stopped::Pipeline);
        }
        telemetry::cluster_posts_consumed(consumed);
    }
}
