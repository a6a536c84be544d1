//! Posts over JetStream: every node publishes the posts it accepts to one stream, and every
//! node consumes the whole stream (an ordered consumer per node) into its own pipeline, so a
//! post ingested anywhere reaches matching connections everywhere.
//!
//! A post's id travels in its message's `Nats-Msg-Id` header (which JetStream
//! de-duplicates by) and its origin datacenter in `Sluice-Datacenter`: the publishing node
//! writes the id the ingest API read, and a consuming node reads it back from the header,
//! so neither parses the post for it. The payload is the post's bytes, unchanged.

use std::sync::Arc;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::header::NATS_MESSAGE_ID;
use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use sluice_server::cluster::ClusterError;
use sluice_server::cluster::ClusterNode;
use sluice_server::post::{IngestedPost, PostBody};
use sluice_server::telemetry;

use crate::names::{
    DATACENTER_HEADER, POSTS_STREAM, POSTS_SUBJECTS, compliance_subject, post_subject,
};

/// How long JetStream remembers a post id to drop a second publish of it: the same window
/// a single node de-duplicates over (the longest backfill), capped by the retention.
const DUPLICATE_WINDOW: Duration = sluice_server::dedup::WINDOW;
/// Posts handed to the pipeline in one batch at most.
const BATCH: usize = 1_024;

/// Creates the posts stream, or updates its limits: posts older than `retention` expire,
/// and with a disk budget (`max_bytes`) the oldest posts go first once the stream would
/// take more (JetStream's `max_bytes` with discard-old: the cluster's post log budget).
pub async fn ensure_stream(
    js: &jetstream::Context,
    retention: Duration,
    max_bytes: Option<u64>,
) -> anyhow::Result<stream::Stream> {
    let config = stream::Config {
        name: POSTS_STREAM.to_owned(),
        subjects: vec![POSTS_SUBJECTS.to_owned()],
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        discard: stream::DiscardPolicy::Old,
        max_age: retention,
        max_bytes: max_bytes.map_or(-1, |bytes| i64::try_from(bytes).unwrap_or(i64::MAX)),
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
    let outgoing = posts.into_iter().map(|post| Outgoing {
        // A compliance event's id is its post's or user's, not its own: events are
        // published without a message id, so JetStream never drops one as a repeat.
        id: (!sluice_model::compliance::is_event(post.bytes())).then_some(post.id),
        datacenter: post.datacenter,
        bytes: post.body.into_bytes(),
    });
    publish_outgoing(js, outgoing).await
}

/// A post to publish; `id: None` for one without an id (only [`PostLog::append`] can have
/// such a post: the ingest API refuses them), which is then published without a message id.
///
/// [`PostLog::append`]: sluice_postlog::PostLog::append
pub(crate) struct Outgoing {
    pub(crate) id: Option<u64>,
    pub(crate) datacenter: Arc<str>,
    pub(crate) bytes: Bytes,
}

/// [`publish`] for posts whose id may be unknown.
pub(crate) async fn publish_outgoing(
    js: &jetstream::Context,
    posts: impl ExactSizeIterator<Item = Outgoing>,
) -> Result<Option<u64>, ClusterError> {
    let mut acks = Vec::with_capacity(posts.len());
    for post in posts {
        let mut headers = HeaderMap::new();
        if let Some(id) = post.id {
            headers.insert(NATS_MESSAGE_ID, id.to_string().as_str());
        }
        headers.insert(DATACENTER_HEADER, &*post.datacenter);
        let subject = if sluice_model::compliance::is_event(&post.bytes) {
            compliance_subject(&post.datacenter)
        } else {
            post_subject(&post.datacenter)
        };
        let ack = js
            .publish_with_headers(subject, headers, post.bytes)
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

/// The id of the post a stream message carries, from its message id header (see the module
/// docs). A message without the header (a compliance event, or a post published through
/// [`PostLog::append`] without one) has its id read from the bytes.
///
/// [`PostLog::append`]: sluice_postlog::PostLog::append
pub fn id_of(message: &async_nats::Message) -> Option<u64> {
    let header = message
        .headers
        .as_ref()
        .and_then(|h| h.get(NATS_MESSAGE_ID))
        .and_then(|v| v.as_str().parse().ok());
    header.or_else(|| sluice_model::compliance::routing_id(&message.payload))
}

/// The post a stream message carries; `None` for a post without an id, which delivery has
/// nothing to route by (only [`PostLog::append`] can store one).
///
/// [`PostLog::append`]: sluice_postlog::PostLog::append
pub fn ingested(message: &async_nats::Message) -> Option<IngestedPost> {
    Some(IngestedPost {
        id: id_of(message)?,
        // Nodes parse what they consume for matching: a view does not cross NATS.
        body: PostBody::Raw(message.payload.clone()),
        datacenter: Arc::from(datacenter_of(message)),
    })
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
                    match ingested(&message) {
                        Some(post) => posts.push(post),
                        None => tracing::debug!("a post without an id in the posts stream"),
                    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn message(headers: &[(&str, &str)], payload: &'static [u8]) -> async_nats::Message {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.insert(*name, *value);
        }
        async_nats::Message {
            subject: "sluice.posts.local".into(),
            reply: None,
            payload: Bytes::from_static(payload),
            headers: Some(map),
            status: None,
            description: None,
            length: payload.len(),
        }
    }

    #[test]
    fn a_consumed_post_takes_its_id_from_the_message_id_header() {
        // The header wins: the bytes are not read for the id.
        let carried = message(
            &[("Nats-Msg-Id", "7"), (DATACENTER_HEADER, "pdx")],
            br#"{"text":"no id in the bytes"}"#,
        );
        let post = ingested(&carried).unwrap();
        assert_eq!((post.id, &*post.datacenter), (7, "pdx"));
        // Without the header (appended through the log), the bytes are read.
        let bare = message(&[], br#"{"id_str":"9","text":"x"}"#);
        assert_eq!(ingested(&bare).unwrap().id, 9);
        assert!(ingested(&message(&[], br#"{"text":"x"}"#)).is_none());
    }
}
