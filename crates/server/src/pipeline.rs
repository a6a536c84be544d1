//! The post pipeline: every accepted post is matched against every live stream and put in
//! the outboxes of the connections that should receive it.
//!
//! One dedicated thread runs it (the in-process post bus). Ingest handlers hand it batches
//! through a bounded channel and return; the thread parses each post once, and for each
//! stream with open connections decides what to send:
//! - PowerTrack and Powerstream: the rules that match; if any, the post with
//!   `matching_rules` spliced in, built once and shared by every connection of the stream;
//! - Decahose: posts of the 10 % sample, to the connections of the post's partition (of 2);
//! - Firehose: every post, to the connections of its partition (of 20).
//!
//! Pushing never blocks (see [`crate::delivery::Outbox`]), so one stalled client cannot
//! delay the pipeline or anyone else.

use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use sluice_matcher::Scratch;
use sluice_model::enrich::{MatchedRule, enrich_into};
use sluice_model::sampling::{in_decahose, partition};
use sluice_model::{PostView, parse_post};
use sluice_store::Product;
use tokio::sync::mpsc;

use crate::delivery::Pushed;
use crate::registry::{LiveStream, StreamRegistry};
use crate::telemetry;

/// Partitions of the Decahose (spec Part A).
pub const DECAHOSE_PARTITIONS: u32 = 2;
/// Partitions of the Firehose (spec Part A).
pub const FIREHOSE_PARTITIONS: u32 = 20;

/// One accepted post on its way to the pipeline.
#[derive(Debug, Clone)]
pub struct IngestedPost {
    /// The post's JSON, one line, without line terminator.
    pub bytes: Bytes,
    /// The datacenter the post originated in.
    pub datacenter: Arc<str>,
}

/// The sending side of the in-process post bus.
#[derive(Clone)]
pub struct PostBus {
    tx: mpsc::Sender<Vec<IngestedPost>>,
}

impl PostBus {
    /// Hands a batch of accepted posts to the pipeline; waits only when the pipeline is
    /// thousands of batches behind.
    pub async fn publish(&self, posts: Vec<IngestedPost>) -> Result<(), PipelineStopped> {
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

/// Starts the pipeline thread. It ends when every [`PostBus`] clone is dropped.
pub fn start(registry: Arc<StreamRegistry>, datacenter: Arc<str>) -> (PostBus, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(4_096);
    let handle = std::thread::Builder::new()
        .name("sluice-pipeline".into())
        .spawn(move || Pipeline::new(registry, datacenter).run(rx))
        .expect("spawning the pipeline thread");
    (PostBus { tx }, handle)
}

struct Pipeline {
    registry: Arc<StreamRegistry>,
    datacenter: Arc<str>,
    streams: Vec<Arc<LiveStream>>,
    streams_version: u64,
    scratch: Scratch,
    rule_ids: Vec<u64>,
    buffer: Vec<u8>,
}

impl Pipeline {
    fn new(registry: Arc<StreamRegistry>, datacenter: Arc<str>) -> Self {
        Self {
            registry,
            datacenter,
            streams: Vec::new(),
            streams_version: u64::MAX,
            scratch: Scratch::default(),
            rule_ids: Vec::new(),
            buffer: Vec::new(),
        }
    }

    fn run(mut self, mut rx: mpsc::Receiver<Vec<IngestedPost>>) {
        while let Some(batch) = rx.blocking_recv() {
            let version = self.registry.version();
            if version != self.streams_version {
                self.streams = self.registry.all();
                self.streams_version = version;
            }
            for post in &batch {
                self.deliver(post);
            }
        }
    }

    fn deliver(&mut self, post: &IngestedPost) {
        let Ok(view) = parse_post(&post.bytes) else {
            // Ingest validated it; nothing else can produce an unparsable post.
            return;
        };
        let Some(id) = view.id() else { return };
        let local = *post.datacenter == *self.datacenter;
        let mut plain: Option<Bytes> = None;
        // Taken out for the loop so that `self.enriched` may borrow the buffers mutably.
        let streams = std::mem::take(&mut self.streams);
        for stream in &streams {
            if stream.connections.is_empty() {
                continue;
            }
            match stream.product() {
                Product::PowerTrack | Product::Powerstream => {
                    let Some(message) = self.enriched(stream, &view, &post.bytes) else {
                        continue;
                    };
                    stream.connections.for_each(|c| {
                        if !c.local_dc_only || local {
                            push(c.outbox.push(message.clone()));
                        }
                    });
                }
                Product::Decahose | Product::Firehose => {
                    let partitions = if stream.product() == Product::Decahose {
                        if !in_decahose(id) {
                            continue;
                        }
                        DECAHOSE_PARTITIONS
                    } else {
                        FIREHOSE_PARTITIONS
                    };
                    let p = partition(id, partitions);
                    let message = plain
                        .get_or_insert_with(|| frame_plain(&post.bytes))
                        .clone();
                    stream.connections.for_each(|c| {
                        if c.partition == Some(p) {
                            push(c.outbox.push(message.clone()));
                        }
                    });
                }
            }
        }
        self.streams = streams;
    }

    /// The post with its `matching_rules` for `stream`, framed; `None` when no rule matches.
    fn enriched(&mut self, stream: &LiveStream, view: &PostView<'_>, raw: &[u8]) -> Option<Bytes> {
        stream
            .rules
            .match_post(view, &mut self.scratch, &mut self.rule_ids);
        if self.rule_ids.is_empty() {
            return None;
        }
        self.buffer.clear();
        let ok = stream.rules.with_tags(&self.rule_ids, |tags| {
            enrich_into(
                raw,
                tags.map(|(id, tag)| MatchedRule { id, tag }),
                &mut self.buffer,
            )
            .is_ok()
        });
        if !ok {
            return None;
        }
        self.buffer.extend_from_slice(b"\r\n");
        Some(Bytes::copy_from_slice(&self.buffer))
    }
}

/// A post as volume streams send it: the original bytes made line-safe, framed.
fn frame_plain(raw: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(raw.len() + 2);
    sluice_model::json::escape_line_separators(raw, &mut out);
    out.extend_from_slice(b"\r\n");
    Bytes::from(out)
}

fn push(result: Pushed) {
    match result {
        Pushed::Queued => telemetry::message_queued(),
        Pushed::Overflowed => telemetry::slow_consumer(),
        Pushed::Closed => {}
    }
}
