//! Live delivery of a batch of posts: what each stream sends ([`super::select`]), gathered
//! per group of connections that receive the same messages, framed into one buffer and
//! compressed once as a shared [`Segment`] (built by [`SegmentBuilder`], as
//! replay builds its own) that every connection of the group queues.
//!
//! A group is the connections of a stream with the same partition and `localDcOnly`
//! choice: they get exactly the same posts. What a volume stream sends depends only on its
//! product, so the connections of every Decahose (or Firehose) stream on one partition form
//! one group, however many customers' streams they belong to. Compressing per group and
//! batch instead of per connection and message is what lets one server feed many
//! connections: the deflate work no longer grows with the number of connections.
//!
//! A group's buffer is cut into a segment every [`MAX_SEGMENT_BYTES`], so a large ingest
//! batch is not one huge segment. The segments waiting are compressed and queued in order
//! at the end of the batch, or as soon as [`MAX_PENDING_BYTES`] of them wait, so that a
//! large batch reaches an outbox in steps its connection can drain rather than all at once
//! (the outbox bound stays a bound on what a connection is behind). Several large ones are
//! compressed on the matching threads at once ([`MatchWorkers::deflate`]), small ones on
//! this thread (see `queue_segments`). The compression ratio hardly suffers, as deflate
//! only looks back 32 KiB.
//!
//! It also counts usage ([`crate::usage`]): per stream, the posts at least one of its
//! connections got (once per stream, as X counts), and per rules stream, the matches of
//! each rule, tallied in the route's buffers and added to the streams once per batch.

use std::sync::Arc;

use bytes::Bytes;
use sluice_model::PostView;
use sluice_store::Delivery;

use super::encoding::Encoding;
use super::format::Format;
use super::gzip::Deflater;
use super::matching::{BatchMatches, MatchWorkers};
use super::outbox::Pushed;
use super::segment::{Segment, SegmentBuilder};
use super::select::{Routed, Selector, partitions_of};
use crate::clock::now_ms;
use crate::registry::{Connection, LiveStream, NodeRules};
use crate::telemetry;
use crate::usage::{hour_of, minute_of};

/// A group's buffer becomes a segment once it holds this many bytes.
pub const MAX_SEGMENT_BYTES: usize = 64 << 10;

/// A batch's segments are compressed and queued, mid-batch if need be, once this many bytes
/// of them wait (over all groups, with or without gzip): up to sixteen full segments to
/// share among the matching threads, few enough that a connection gets a large batch in
/// steps.
pub const MAX_PENDING_BYTES: usize = 16 * MAX_SEGMENT_BYTES;

/// The average size of the segments waiting from which they are compressed on the
/// matching threads rather than one by one on the delivering thread (see
/// `queue_segments`).
pub const MIN_SPREAD_SEGMENT_BYTES: usize = 16 << 10;

/// One post of a batch, as live delivery needs it.
#[derive(Debug, Clone, Copy)]
pub struct BatchPost<'a> {
    /// The post's JSON, one line, without line terminator.
    pub raw: &'a [u8],
    /// The post's id, as ingest read it (sampling and partitions go by it).
    pub id: u64,
    /// Whether the post originated in this node's datacenter.
    pub local: bool,
    /// The matcher's view of the post, when ingest parsed it
    /// ([`crate::post::IngestedPost::view`]); `None`: matching parses `raw`.
    pub view: Option<&'a PostView<'a>>,
}

/// Fills the outboxes of live connections, batch by batch; holds the selector, the
/// matching threads, the compressor and the group buffers, so one per delivering thread
/// (the pipeline's).
pub struct Fanout {
    selector: Selector,
    /// Match large batches ahead of routing, and compress their large segments, on every
    /// core (`None`: one thread).
    workers: Option<MatchWorkers>,
    /// The current batch's matches, when the workers found them.
    matches: BatchMatches,
    deflater: Deflater,
    active: Vec<Route>,
}

/// Streams with open connections that route a post the same way, during one batch: one
/// rules stream, or every stream of one volume product.
struct Route {
    /// The stream the routing is decided for (any of the route's streams).
    stream: Arc<LiveStream>,
    groups: Vec<Group>,
    /// The posts of the batch each of the route's streams delivered.
    tallies: Vec<Tally>,
    /// The rule ids matched by delivered posts, one entry per match (rules streams).
    rule_hits: Vec<u64>,
}

/// How many posts of the batch reached at least one connection of a stream.
struct Tally {
    stream: Arc<LiveStream>,
    delivered: u64,
    /// The 1-based number of the last post counted, so a post that reaches several
    /// groups of the stream counts once.
    last_post: usize,
}

/// Connections that receive the same messages, and what they get so far.
struct Group {
    partition: Option<u32>,
    local_dc_only: bool,
    /// How the group's connections write posts (v2 connections with the same fields).
    format: Format,
    /// The streams whose connections on `partition` with `local_dc_only` are the group.
    streams: Vec<Arc<LiveStream>>,
    /// The route's tallies of `streams`.
    tallies: Vec<usize>,
    /// Some connection of the group writes gzip: compress its segments.
    gzip: bool,
    /// What the group gets from the batch since its last cut.
    framed: SegmentBuilder,
    /// The segments cut from `framed` and not yet queued, uncompressed, with their numbers
    /// of messages ([`queue_segments`]).
    pending: Vec<(Bytes, u64)>,
}

impl Fanout {
    /// A fanout matching against `rules` (the registry's node-wide index), on
    /// `match_threads` threads of its own (with 1, on the calling thread only).
    pub fn new(rules: &NodeRules, match_threads: usize) -> Self {
        Self {
            selector: Selector::new(rules),
            workers: MatchWorkers::new(rules, match_threads),
            matches: BatchMatches::default(),
            deflater: Deflater::default(),
            active: Vec::new(),
        }
    }

    /// Fans a batch out to live connections: routes every post for every stream in
    /// `streams` (each listed once) that has connections, and queues the results in their
    /// outboxes, in post order; then adds the batch to the streams' usage counts. Streams
    /// of a product fed only by replay jobs are passed over: their rules are not in the
    /// node-wide index and their connections are never registered.
    ///
    /// The groups are taken from the connections open when the batch starts (after it was
    /// logged); a connection that registers meanwhile still receives the segments of its
    /// group that are pushed after it registered. A large batch is then matched on the
    /// matching threads, restricted to the rules streams taken ([`super::matching`]),
    /// before any post is routed; a small one post by post as it is routed.
    ///
    /// Long on purpose: the per-batch loop of live delivery (group, route, frame and cut,
    /// then compress and push), whose steps share the batch's reusable buffers.
    pub fn fan_out(
        &mut self,
        streams: &[Arc<LiveStream>],
        posts: &[BatchPost<'_>],
        logged_below: Option<u64>,
    ) {
        self.active.clear();
        for stream in streams {
            if stream.product().spec().delivery != Delivery::Live {
                continue;
            }
            // Only a volume product's streams share a route: a rules stream never needs the
            // search (which would make this loop quadratic in the number of streams).
            let shared = partitions_of(stream.product()).is_some();
            let tapped = !shared && !stream.taps.is_empty();
            if stream.connections.is_empty() && !tapped {
                continue;
            }
            let existing = if shared {
                self.active
                    .iter()
                    .position(|r| r.stream.product() == stream.product())
            } else {
                None
            };
            let route = match existing {
                Some(at) => &mut self.active[at],
                None => {
                    self.active.push(Route {
                        stream: stream.clone(),
                        groups: Vec::new(),
                        tallies: Vec::new(),
                        rule_hits: Vec::new(),
                    });
                    self.active.last_mut().expect("just pushed")
                }
            };
            let tally = route.tally_of(stream);
            stream.connections.for_each(|c| {
                let gzip = c.outbox.encoding() == Encoding::Gzip;
                match route.groups.iter_mut().find(|g| g.receives_like(c)) {
                    Some(group) => {
                        group.gzip |= gzip;
                        if !group.streams.iter().any(|s| Arc::ptr_eq(s, stream)) {
                            group.streams.push(stream.clone());
                            group.tallies.push(tally);
                        }
                    }
                    None => route.groups.push(Group {
                        partition: c.partition,
                        local_dc_only: c.local_dc_only,
                        format: c.format.clone(),
                        streams: vec![stream.clone()],
                        tallies: vec![tally],
                        gzip,
                        framed: SegmentBuilder::default(),
                        pending: Vec::new(),
                    }),
                }
            });
        }
        self.active.retain(|r| {
            !r.groups.is_empty()
                || (partitions_of(r.stream.product()).is_none() && !r.stream.taps.is_empty())
        });
        if self.active.is_empty() {
            return;
        }
        self.selector.only(
            self.active
                .iter()
                .filter(|r| partitions_of(r.stream.product()).is_none())
                .map(|r| r.stream.rules.stream_number()),
        );
        let Self {
            selector,
            workers,
            matches,
            deflater,
            active,
        } = self;
        let workers = workers.as_ref();
        // Only rules streams need matches (`only` is empty with volume streams alone).
        let matched_ahead = match (workers, selector.only_streams()) {
            (Some(workers), Some(only)) if !only.is_empty() => {
                workers.match_batch(posts, only, matches)
            }
            _ => false,
        };
        // Bytes of the segments cut and not yet queued.
        let mut pending = 0;
        for (index, post) in posts.iter().enumerate() {
            let number = index + 1;
            // The view is not matched again; it still spares enrichment a search.
            let router = if matched_ahead {
                selector.post_matched(post.raw, post.id, post.local, matches.of(index))
            } else {
                selector.post(post.raw, Some(post.id), post.local)
            };
            let mut router = router.with_view(post.view);
            for route in active.iter_mut() {
                let Some(routed) = router.route(&route.stream) else {
                    continue;
                };
                if let Routed::Matched { message, .. } = &routed
                    && !route.stream.taps.is_empty()
                {
                    // Never waits: a tap that cannot keep up misses the message.
                    route.stream.taps.offer(&Bytes::copy_from_slice(message));
                }
                let matched = !matches!(routed, Routed::Partition(_));
                // Usage counts what reached a connection; a tap (the console's live view)
                // is not a delivery.
                let mut delivered = false;
                for group in route.groups.iter_mut() {
                    if !routed.reaches(group.partition, group.local_dc_only) {
                        continue;
                    }
                    delivered = true;
                    for &t in &group.tallies {
                        route.tallies[t].count(number);
                    }
                    group.framed.push(&routed, post.raw, &group.format);
                    if group.framed.len() >= MAX_SEGMENT_BYTES {
                        pending += group.cut_segment();
                    }
                }
                if delivered && matched {
                    route.rule_hits.extend_from_slice(router.matched_rule_ids());
                }
            }
            if pending >= MAX_PENDING_BYTES {
                queue_segments(active, workers, deflater, logged_below);
                pending = 0;
            }
        }
        for route in active.iter_mut() {
            for group in route.groups.iter_mut() {
                group.cut_segment();
            }
        }
        queue_segments(active, workers, deflater, logged_below);
        let now = now_ms();
        for route in active.iter_mut() {
            route.add_usage(hour_of(now), minute_of(now));
        }
        active.clear();
    }
}

impl Route {
    /// A new tally for `stream` (each stream comes once per batch); returns its index.
    fn tally_of(&mut self, stream: &Arc<LiveStream>) -> usize {
        self.tallies.push(Tally {
            stream: stream.clone(),
            delivered: 0,
            last_post: 0,
        });
        self.tallies.len() - 1
    }

    /// Adds the batch's counts to the streams' usage: one lock per stream and batch.
    fn add_usage(&mut self, hour: i64, minute: i64) {
        for tally in &self.tallies {
            tally.stream.usage.add(hour, tally.delivered, 0);
        }
        if self.rule_hits.is_empty() {
            return;
        }
        self.rule_hits.sort_unstable();
        let mut counts: Vec<(u64, u32)> = Vec::new();
        for &id in &self.rule_hits {
            match counts.last_mut() {
                Some((last, n)) if *last == id => *n += 1,
                _ => counts.push((id, 1)),
            }
        }
        self.stream.usage.add_rule_matches(minute, &counts);
    }
}

impl Tally {
    /// Counts post `number` unless it was counted already.
    fn count(&mut self, number: usize) {
        if self.last_post != number {
            self.last_post = number;
            self.delivered += 1;
        }
    }
}

impl Group {
    /// Cuts what the group has gathered since its last cut into a pending segment, if
    /// anything; returns its length.
    fn cut_segment(&mut self) -> usize {
        let Some((plain, messages)) = self.framed.take_plain() else {
            return 0;
        };
        let len = plain.len();
        self.pending.push((plain, messages));
        len
    }

    /// Whether connection `c` receives exactly what this group receives.
    fn receives_like(&self, c: &Connection) -> bool {
        self.partition == c.partition
            && self.local_dc_only == c.local_dc_only
            && self.format == c.format
    }
}

/// Compresses the pending segments of the groups with gzip connections and queues every
/// group's pending segments, in order, for its connections; `logged_below` is the batch's
/// end in the log (see [`Outbox::push_live`](super::outbox::Outbox::push_live)).
///
/// Several large segments are compressed on the matching threads, all at once, and then
/// queued. Otherwise (no matching threads, a single segment, segments under
/// [`MIN_SPREAD_SEGMENT_BYTES`] on average or under a segment's worth in all) each is
/// compressed here and queued as soon as it is made, as before the threads took the
/// work: with one post to many streams, every segment is one small message, the
/// compressor's reset costs more than its compression, and what matters is that the
/// first groups' connections start writing while the next groups are compressed.
fn queue_segments(
    active: &mut [Route],
    workers: Option<&MatchWorkers>,
    deflater: &mut Deflater,
    logged_below: Option<u64>,
) {
    let gzip_pending = || {
        active
            .iter()
            .flat_map(|route| &route.groups)
            .filter(|group| group.gzip)
            .flat_map(|group| group.pending.iter().map(|(plain, _)| plain))
    };
    let (count, bytes) = gzip_pending().fold((0, 0), |(n, b), plain| (n + 1, b + plain.len()));
    let spread =
        count > 1 && bytes >= MAX_SEGMENT_BYTES && bytes / count >= MIN_SPREAD_SEGMENT_BYTES;
    let mut deflated = match workers {
        Some(workers) if spread => {
            let plains: Vec<Bytes> = gzip_pending().cloned().collect();
            workers.deflate(&plains)
        }
        _ => Vec::new(),
    }
    .into_iter();
    for group in active.iter_mut().flat_map(|route| route.groups.iter_mut()) {
        for (plain, messages) in std::mem::take(&mut group.pending) {
            let segment = if !group.gzip {
                Segment::plain(plain)
            } else if let Some(compressed) = deflated.next() {
                Segment::with_deflated(plain, compressed)
            } else {
                Segment::compressed(plain, deflater)
            };
            push_segment(group, segment, messages, logged_below);
        }
    }
    debug_assert!(
        deflated.next().is_none(),
        "every compressed form was queued"
    );
}

/// Queues `segment`, of `messages` messages, for every connection of `group`.
fn push_segment(group: &Group, segment: Segment, messages: u64, logged_below: Option<u64>) {
    let mut queued = 0;
    for stream in &group.streams {
        stream.connections.for_each(|c| {
            if !group.receives_like(c) {
                return;
            }
            match c.outbox.push_live(segment.clone(), logged_below) {
                Pushed::Queued => queued += messages,
                Pushed::Overflowed => telemetry::slow_consumer(),
                Pushed::Closed | Pushed::Replayed => {}
            }
        });
    }
    telemetry::messages_queued(queued);
}

#[cfg(test)]
mod tests {
    use sluice_store::{Product, StoredStream, StreamLimits, StreamRef};

    use std::io::Read as _;

    use super::*;
    use crate::delivery::gzip::{Deflated, GzipMember};
    use crate::delivery::{Outbox, Segment};
    use crate::registry::StreamRegistry;

    fn post(id: u64, text: &str) -> String {
        format!(
            r#"{{"id":{id},"id_str":"{id}","text":"{text}","created_at":"Wed Oct 10 20:19:24 +0000 2018"}}"#
        )
    }

    /// Registers stream `id`, `account`'s `prod` of `product` (5 connections, 10 rules).
    fn stream(
        registry: &StreamRegistry,
        id: i64,
        account: &str,
        product: Product,
    ) -> Arc<LiveStream> {
        registry.upsert(&StoredStream {
            id,
            stream: StreamRef {
                account: account.into(),
                product,
                label: "prod".into(),
            },
            limits: StreamLimits {
                max_connections: 5,
                max_rules: 10,
            },
        })
    }

    async fn queued(outbox: &Outbox) -> Vec<Segment> {
        outbox.close(crate::delivery::CloseReason::Operational);
        let mut batch = Vec::new();
        outbox.next_batch(&mut batch, usize::MAX).await;
        batch
    }

    #[tokio::test]
    async fn a_batch_is_compressed_once_per_group_of_connections() {
        let registry = StreamRegistry::default();
        let stream = stream(&registry, 1, "acme", Product::Powerstream);
        stream
            .rules
            .apply(&[(7, sluice_rules::parse("hello").unwrap(), None)], &[]);
        let outbox = |encoding| Arc::new(Outbox::new(1 << 20, encoding));
        let (gzip_a, gzip_b, local_identity) = (
            outbox(Encoding::Gzip),
            outbox(Encoding::Gzip),
            outbox(Encoding::Identity),
        );
        stream
            .connections
            .open(gzip_a.clone(), None, false, Format::Native);
        stream
            .connections
            .open(gzip_b.clone(), None, false, Format::Native);
        stream
            .connections
            .open(local_identity.clone(), None, true, Format::Native);

        let posts = [post(1, "hello 1"), post(2, "hello 2"), post(3, "bye")];
        let batch: Vec<BatchPost<'_>> = posts
            .iter()
            .enumerate()
            .map(|(i, p)| BatchPost {
                raw: p.as_bytes(),
                id: i as u64 + 1,
                local: i != 1,
                view: None,
            })
            .collect();
        Fanout::new(registry.rules(), 1).fan_out(std::slice::from_ref(&stream), &batch, None);

        // Usage: the two matching posts, once each however many connections got them;
        // rule 7 matched both.
        let pending = stream.usage.take_pending();
        assert_eq!(pending.len(), 1);
        assert_eq!((pending[0].activities, pending[0].replayed), (2, 0));
        let now_minute = crate::usage::minute_of(crate::clock::now_ms());
        let matches = stream.usage.rule_matches_last_hour(now_minute);
        assert_eq!(matches.into_iter().collect::<Vec<_>>(), [(7, 2)]);

        let (a, b) = (queued(&gzip_a).await, queued(&gzip_b).await);
        assert_eq!((a.len(), b.len()), (1, 1));
        let text = std::str::from_utf8(a[0].plain_bytes()).unwrap();
        let ids: Vec<u64> = text
            .split_terminator("\r\n")
            .map(|line| {
                serde_json::from_str::<serde_json::Value>(line).unwrap()["id"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(ids, [1, 2]);
        let (shared_a, shared_b) = (a[0].deflated().unwrap(), b[0].deflated().unwrap());
        assert_eq!(
            shared_a.bytes.as_ptr(),
            shared_b.bytes.as_ptr(),
            "compressed once"
        );
        assert_eq!(shared_a.crc, crc32fast::hash(text.as_bytes()));

        // The localDcOnly identity connection gets the local post only, uncompressed.
        let local = queued(&local_identity).await;
        assert_eq!(local.len(), 1);
        assert!(local[0].deflated().is_none());
        assert!(local[0].plain_bytes().starts_with(br#"{"id":1,"#));
        assert_eq!(local[0].plain_bytes().split(|&b| b == b'\n').count(), 2);
    }

    /// What the connections of two rules streams receive from a batch large enough for
    /// the matching threads, with the usage counted: the same bytes and counts as when the
    /// pipeline thread matches alone; a stream without connections is not delivered to.
    /// The batch fills several segments per stream, queued in several steps, which the two
    /// threads compress: each gzip connection (two groups, after a group without gzip) gets
    /// the same compressed bytes as with one thread, in order.
    #[tokio::test]
    async fn a_batch_matched_on_two_threads_delivers_what_one_thread_does() {
        let registry = StreamRegistry::default();
        let stream = |id, account| stream(&registry, id, account, Product::PowerTrack);
        let (acme, globex, idle) = (stream(1, "acme"), stream(2, "globex"), stream(3, "idle"));
        let rule = |id, value: &str| (id, sluice_rules::parse(value).unwrap(), None);
        acme.rules.apply(&[rule(7, "even"), rule(8, "seven")], &[]);
        globex.rules.apply(&[rule(7, "seven")], &[]);
        idle.rules.apply(&[rule(9, "even")], &[]);
        // About 1 KB a post and 2,000 posts: each stream's share spans several segments,
        // and the batch's segments are queued in more than one step (`MAX_PENDING_BYTES`).
        let filler = (0..150)
            .map(|w| format!("w{w}"))
            .collect::<Vec<_>>()
            .join(" ");
        let total = 2_000_u64;
        let posts: Vec<String> = (1..=total)
            .map(|i| {
                let seven = if i.is_multiple_of(7) { " seven" } else { "" };
                post(
                    i,
                    &format!(
                        "{}{seven} {filler}",
                        if i.is_multiple_of(2) { "even" } else { "odd" }
                    ),
                )
            })
            .collect();
        assert!(posts.iter().map(String::len).sum::<usize>() > MAX_PENDING_BYTES);
        let batch: Vec<BatchPost<'_>> = posts
            .iter()
            .zip(1..)
            .map(|(p, id)| BatchPost {
                raw: p.as_bytes(),
                id,
                local: true,
                view: None,
            })
            .collect();
        let text = |segments: &[Segment]| -> String {
            segments
                .iter()
                .map(|s| std::str::from_utf8(s.plain_bytes()).unwrap())
                .collect()
        };
        // A gzip connection's segments: their compressed forms, and what the gzip body made
        // of them decodes to, which must be their plain bytes in order.
        let unzip = |segments: &[Segment]| -> (Vec<Deflated>, String) {
            assert!(segments.len() > 2, "the batch spans several segments");
            let deflated: Vec<Deflated> = segments
                .iter()
                .map(|s| s.deflated().expect("compressed for gzip").clone())
                .collect();
            let mut member = GzipMember::new();
            let mut body = Vec::new();
            for segment in &deflated {
                member.append(segment, &mut body);
            }
            member.finish(&mut body);
            let mut unzipped = String::new();
            flate2::read::GzDecoder::new(&body[..])
                .read_to_string(&mut unzipped)
                .unwrap();
            // (Not `assert_eq!`: the texts are megabytes.)
            assert!(
                unzipped == text(segments),
                "each segment decodes to its own plain bytes, in order"
            );
            (deflated, unzipped)
        };

        let mut delivered = Vec::new();
        let mut compressed = Vec::new();
        for threads in [1, 2] {
            // Three groups, in this order: acme's identity connection, acme's localDcOnly
            // gzip one (every post is local, so it gets the same posts), globex's gzip one.
            let open = |stream: &Arc<LiveStream>, encoding, local_dc_only| {
                let outbox = Arc::new(Outbox::new(8 << 20, encoding));
                let (connection, _) =
                    stream
                        .connections
                        .open(outbox.clone(), None, local_dc_only, Format::Native);
                (connection, outbox)
            };
            let (acme_connection, acme_outbox) = open(&acme, Encoding::Identity, false);
            let (acme_gzip_connection, acme_gzip) = open(&acme, Encoding::Gzip, true);
            let (globex_connection, globex_gzip) = open(&globex, Encoding::Gzip, false);
            Fanout::new(registry.rules(), threads).fan_out(&registry.all(), &batch, None);
            acme.connections.close(acme_connection.id);
            acme.connections.close(acme_gzip_connection.id);
            globex.connections.close(globex_connection.id);
            let usage = |stream: &LiveStream| {
                let pending = stream.usage.take_pending();
                pending.iter().map(|p| p.activities).sum::<u64>()
            };
            let (acme_deflated, acme_unzipped) = unzip(&queued(&acme_gzip).await);
            let (globex_deflated, globex_unzipped) = unzip(&queued(&globex_gzip).await);
            compressed.push((acme_deflated, globex_deflated));
            delivered.push((
                text(&queued(&acme_outbox).await),
                acme_unzipped,
                globex_unzipped,
                usage(&acme),
                usage(&globex),
                usage(&idle),
            ));
        }
        let ids = |text: &str| -> Vec<u64> {
            text.split_terminator("\r\n")
                .map(|line| {
                    serde_json::from_str::<serde_json::Value>(line).unwrap()["id"]
                        .as_u64()
                        .unwrap()
                })
                .collect()
        };
        let (acme_text, acme_unzipped, globex_text, acme_count, globex_count, idle_count) =
            &delivered[0];
        let acme_want: Vec<u64> = (1..=total)
            .filter(|&i| i.is_multiple_of(2) || i.is_multiple_of(7))
            .collect();
        let globex_want: Vec<u64> = (1..=total).filter(|&i| i.is_multiple_of(7)).collect();
        assert_eq!(ids(acme_text), acme_want);
        assert!(
            acme_unzipped == acme_text,
            "acme's gzip and identity connections get the same posts"
        );
        assert_eq!(ids(globex_text), globex_want);
        assert_eq!(
            (*acme_count, *globex_count, *idle_count),
            (acme_want.len() as u64, globex_want.len() as u64, 0)
        );
        assert!(
            delivered[1] == delivered[0],
            "two threads deliver what one does"
        );
        assert!(
            compressed[1] == compressed[0],
            "two threads compress what one does"
        );
    }

    #[tokio::test]
    async fn a_tap_gets_the_matched_posts_of_a_stream_without_connections() {
        let registry = StreamRegistry::default();
        let stream = stream(&registry, 1, "acme", Product::PowerTrack);
        stream.rules.apply(
            &[(
                7,
                sluice_rules::parse("hello").unwrap(),
                Some("greet".into()),
            )],
            &[],
        );
        let mut tap = stream.taps.attach().unwrap();
        let posts = [post(1, "hello there"), post(2, "bye")];
        let batch: Vec<BatchPost<'_>> = posts
            .iter()
            .enumerate()
            .map(|(i, p)| BatchPost {
                raw: p.as_bytes(),
                id: i as u64 + 1,
                local: true,
                view: None,
            })
            .collect();
        Fanout::new(registry.rules(), 1).fan_out(std::slice::from_ref(&stream), &batch, None);
        let message = tap.try_recv().unwrap();
        let json: serde_json::Value = serde_json::from_slice(&message).unwrap();
        assert_eq!(json["id"], 1);
        assert_eq!(json["matching_rules"][0]["tag"], "greet");
        assert!(tap.try_recv().is_err(), "only the matching post");
        assert!(stream.connections.is_empty(), "a tap is not a connection");
    }

    /// A batch of `raws` (post ids 1, 2, …) where the first, third, … post comes with the
    /// matching view in `views`, as if ingest had parsed it, and the others with none.
    fn every_other_with_a_view<'a>(
        raws: &'a [String],
        views: &'a [PostView<'a>],
    ) -> Vec<BatchPost<'a>> {
        raws.iter()
            .zip(views)
            .enumerate()
            .map(|(i, (raw, view))| BatchPost {
                raw: raw.as_bytes(),
                id: i as u64 + 1,
                local: true,
                view: (i % 2 == 0).then_some(view),
            })
            .collect()
    }

    /// The plain bytes one identity connection of a PowerTrack stream with the rule
    /// `hello` (id 7) receives for `batch`, fanned out with `threads` matching threads.
    async fn delivered_to_a_hello_stream(batch: &[BatchPost<'_>], threads: usize) -> Vec<u8> {
        let registry = StreamRegistry::default();
        let stream = stream(&registry, 1, "acme", Product::PowerTrack);
        stream
            .rules
            .apply(&[(7, sluice_rules::parse("hello").unwrap(), None)], &[]);
        let outbox = Arc::new(Outbox::new(1 << 20, Encoding::Identity));
        stream
            .connections
            .open(outbox.clone(), None, false, Format::Native);
        Fanout::new(registry.rules(), threads).fan_out(&registry.all(), batch, None);
        queued(&outbox)
            .await
            .iter()
            .flat_map(|segment| segment.plain_bytes().to_vec())
            .collect()
    }

    /// The post views of `posts`.
    fn views_of(posts: &[String]) -> Vec<PostView<'_>> {
        posts
            .iter()
            .map(|p| sluice_model::parse_post(p.as_bytes()).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn posts_are_matched_on_the_view_ingest_parsed_without_parsing_them_again() {
        // Each post's bytes say "bye"; the odd ones come with the view of a post that
        // says "hello", as if ingest had parsed it. Only those match: the view is what is
        // matched, on the delivering thread (one thread) and on the matching threads.
        let hello: Vec<String> = (1..=10).map(|id| post(id, "hello there")).collect();
        let views = views_of(&hello);
        let bye: Vec<String> = (1..=10).map(|id| post(id, "bye")).collect();
        let batch = every_other_with_a_view(&bye, &views);
        for threads in [1, 2] {
            let plain = delivered_to_a_hello_stream(&batch, threads).await;
            let delivered: Vec<serde_json::Value> = plain
                .split(|&b| b == b'\n')
                .filter(|line| line.len() > 1)
                .map(|line| serde_json::from_slice(line).unwrap())
                .collect();
            let ids: Vec<u64> = delivered
                .iter()
                .map(|m| m["id"].as_u64().unwrap())
                .collect();
            assert_eq!(ids, [1, 3, 5, 7, 9], "{threads} thread(s)");
            assert!(
                delivered.iter().all(|m| m["text"] == "bye"),
                "the bytes are sent"
            );
            assert!(delivered.iter().all(|m| m["matching_rules"][0]["id"] == 7));
        }
    }

    #[tokio::test]
    async fn enrichment_trusts_the_view_on_a_matching_rules_member_on_every_path() {
        // The bytes carry a `matching_rules` of their own; the views given with the odd
        // posts are of the same post without it. Where a view came, the post is not
        // searched for the member, so it is kept (a real view is always of its bytes,
        // which makes this a test of whether the view reached enrichment); without one,
        // the search finds it and it is replaced. On one thread and on the matching
        // threads alike.
        let plain: Vec<String> = (1..=10).map(|id| post(id, "hello there")).collect();
        let views = views_of(&plain);
        let carrying: Vec<String> = plain
            .iter()
            .map(|p| format!(r#"{},"matching_rules":[]}}"#, &p[..p.len() - 1]))
            .collect();
        let batch = every_other_with_a_view(&carrying, &views);
        for threads in [1, 2] {
            let plain = delivered_to_a_hello_stream(&batch, threads).await;
            let keys: Vec<(u64, usize)> = plain
                .split(|&b| b == b'\n')
                .filter(|line| line.len() > 1)
                .map(|line| {
                    let id = sluice_model::read_post_id(line).unwrap();
                    let keys = memchr::memmem::find_iter(line, b"\"matching_rules\"").count();
                    (id, keys)
                })
                .collect();
            let want: Vec<(u64, usize)> = (1..=10).map(|id| (id, 1 + (id % 2) as usize)).collect();
            assert_eq!(keys, want, "{threads} thread(s)");
        }
    }

    #[tokio::test]
    async fn volume_streams_route_by_the_id_the_post_carries_without_parsing_it() {
        use sluice_model::sampling::partition;

        use crate::delivery::select::FIREHOSE_PARTITIONS;

        let registry = StreamRegistry::default();
        let firehose = registry.upsert(&StoredStream {
            id: 1,
            stream: StreamRef {
                account: "acme".into(),
                product: Product::Firehose,
                label: "prod".into(),
            },
            limits: StreamLimits {
                max_connections: 5,
                max_rules: 0,
            },
        });
        let id = (1_700_000_000_000_000_000..)
            .find(|&id| partition(id, FIREHOSE_PARTITIONS) == 3)
            .unwrap();
        let (on_3, on_4) = (
            Arc::new(Outbox::new(1 << 20, Encoding::Identity)),
            Arc::new(Outbox::new(1 << 20, Encoding::Identity)),
        );
        firehose
            .connections
            .open(on_3.clone(), Some(3), false, Format::Native);
        firehose
            .connections
            .open(on_4.clone(), Some(4), false, Format::Native);
        // No id in the bytes: the matcher's parse would refuse this post.
        let raw = br#"{"text":"routed by its carried id"}"#;
        let batch = [BatchPost {
            raw,
            id,
            local: true,
            view: None,
        }];
        Fanout::new(registry.rules(), 1).fan_out(&registry.all(), &batch, None);
        let got = queued(&on_3).await;
        assert_eq!(got.len(), 1);
        assert_eq!(&got[0].plain_bytes()[..], [&raw[..], b"\r\n"].concat());
        assert!(queued(&on_4).await.is_empty());
    }

    #[tokio::test]
    async fn one_partition_of_several_firehose_streams_is_compressed_once() {
        use sluice_model::sampling::partition;

        use crate::delivery::select::FIREHOSE_PARTITIONS;

        let registry = StreamRegistry::default();
        let firehose = |id, label: &str| {
            registry.upsert(&StoredStream {
                id,
                stream: StreamRef {
                    account: label.into(),
                    product: Product::Firehose,
                    label: "prod".into(),
                },
                limits: StreamLimits {
                    max_connections: 5,
                    max_rules: 0,
                },
            })
        };
        let (acme, globex) = (firehose(1, "acme"), firehose(2, "globex"));
        let outbox = || Arc::new(Outbox::new(1 << 20, Encoding::Gzip));
        let (acme_3, globex_3, globex_4) = (outbox(), outbox(), outbox());
        acme.connections
            .open(acme_3.clone(), Some(3), false, Format::Native);
        globex
            .connections
            .open(globex_3.clone(), Some(3), false, Format::Native);
        globex
            .connections
            .open(globex_4.clone(), Some(4), false, Format::Native);

        let ids: Vec<u64> = (1_700_000_000_000_000_000..)
            .filter(|&id| matches!(partition(id, FIREHOSE_PARTITIONS), 3 | 4))
            .take(6)
            .collect();
        let posts: Vec<String> = ids.iter().map(|&id| post(id, "anything")).collect();
        let batch: Vec<BatchPost<'_>> = posts
            .iter()
            .zip(&ids)
            .map(|(p, &id)| BatchPost {
                raw: p.as_bytes(),
                id,
                local: true,
                view: None,
            })
            .collect();
        Fanout::new(registry.rules(), 1).fan_out(&registry.all(), &batch, None);

        let ids_in = |segments: &[Segment]| -> Vec<u64> {
            std::str::from_utf8(segments[0].plain_bytes())
                .unwrap()
                .split_terminator("\r\n")
                .map(|line| {
                    serde_json::from_str::<serde_json::Value>(line).unwrap()["id"]
                        .as_u64()
                        .unwrap()
                })
                .collect()
        };
        let want = |p: u32| -> Vec<u64> {
            ids.iter()
                .copied()
                .filter(|&id| partition(id, FIREHOSE_PARTITIONS) == p)
                .collect()
        };
        let (a3, g3, g4) = (
            queued(&acme_3).await,
            queued(&globex_3).await,
            queued(&globex_4).await,
        );
        assert_eq!((a3.len(), g3.len(), g4.len()), (1, 1, 1));
        // Usage: each stream counts the posts of the partitions it has connections on.
        let delivered = |stream: &LiveStream| {
            stream
                .usage
                .take_pending()
                .iter()
                .map(|h| h.activities)
                .sum::<u64>()
        };
        assert_eq!(delivered(&acme), want(3).len() as u64);
        assert_eq!(delivered(&globex), 6);
        assert_eq!(ids_in(&a3), want(3));
        assert_eq!(ids_in(&g3), want(3));
        assert_eq!(ids_in(&g4), want(4));
        assert_eq!(
            a3[0].deflated().unwrap().bytes.as_ptr(),
            g3[0].deflated().unwrap().bytes.as_ptr(),
            "partition 3 compressed once for both customers' streams"
        );
    }
}
