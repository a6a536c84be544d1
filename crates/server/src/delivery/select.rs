//! What a stream sends for one post, and to which of its connections: the one decision
//! live delivery (the pipeline) and replay (backfill, recovery) share, so a replayed post
//! reaches exactly the connections that would have received it live.
//!
//! - PowerTrack and Powerstream: the rules that match; if any, the post with
//!   `matching_rules` spliced in, for every connection of the stream (a `localDcOnly`
//!   Powerstream connection only gets posts of this node's datacenter);
//! - Decahose: posts of the 10 % sample, to the connections of the post's partition (of 2);
//! - Firehose: every post, to the connections of its partition (of 20).

use bytes::Bytes;
use sluice_matcher::Scratch;
use sluice_model::PostView;
use sluice_model::enrich::{MatchedRule, enrich_into};
use sluice_model::sampling::{in_decahose, partition};
use sluice_store::Product;

use crate::registry::LiveStream;

/// Partitions of the Decahose (spec Part A).
pub const DECAHOSE_PARTITIONS: u32 = 2;
/// Partitions of the Firehose (spec Part A).
pub const FIREHOSE_PARTITIONS: u32 = 20;

/// The number of partitions of a volume product; `None` for products without partitions.
pub fn partitions_of(product: Product) -> Option<u32> {
    match product {
        Product::Decahose => Some(DECAHOSE_PARTITIONS),
        Product::Firehose => Some(FIREHOSE_PARTITIONS),
        Product::PowerTrack | Product::Powerstream => None,
    }
}

/// How a stream routes one post to its connections.
#[derive(Debug, Clone)]
pub enum Routed {
    /// Rules matched: this framed message (the post with `matching_rules`) goes to every
    /// connection, except `localDcOnly` ones when the post is from another datacenter.
    Matched {
        /// The framed message.
        message: Bytes,
        /// Whether the post originated in this node's datacenter.
        local: bool,
    },
    /// Volume stream: the plain post (see [`frame_plain`]) goes to the connections of this
    /// partition (1-based).
    Partition(u32),
}

impl Routed {
    /// Whether a connection on `partition`, asking for `local_dc_only`, receives the post.
    pub fn reaches(&self, partition: Option<u32>, local_dc_only: bool) -> bool {
        match self {
            Routed::Matched { local, .. } => !local_dc_only || *local,
            Routed::Partition(p) => partition == Some(*p),
        }
    }
}

/// Routes posts for streams; holds the matcher's scratch space and buffers, so one per
/// thread (the pipeline has one, each replay has its own).
#[derive(Default)]
pub struct Selector {
    scratch: Scratch,
    rule_ids: Vec<u64>,
    buffer: Vec<u8>,
}

impl Selector {
    /// How `stream` routes the post `view` (whose JSON is `raw`, from this node's
    /// datacenter when `local`); `None` when no connection of the stream gets it.
    pub fn route(
        &mut self,
        stream: &LiveStream,
        view: &PostView<'_>,
        raw: &[u8],
        local: bool,
    ) -> Option<Routed> {
        match stream.product() {
            Product::PowerTrack | Product::Powerstream => {
                let message = self.enriched(stream, view, raw)?;
                Some(Routed::Matched { message, local })
            }
            product @ (Product::Decahose | Product::Firehose) => {
                let id = view.id()?;
                if product == Product::Decahose && !in_decahose(id) {
                    return None;
                }
                let partitions = partitions_of(product).expect("volume products have partitions");
                Some(Routed::Partition(partition(id, partitions)))
            }
        }
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
pub fn frame_plain(raw: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(raw.len() + 2);
    frame_plain_into(raw, &mut out);
    Bytes::from(out)
}

/// [`frame_plain`], appended to `out`.
pub fn frame_plain_into(raw: &[u8], out: &mut Vec<u8>) {
    sluice_model::json::escape_line_separators(raw, out);
    out.extend_from_slice(b"\r\n");
}
