//! What a stream sends for one post, and to which of its connections: the one decision
//! live delivery (the pipeline) and replay (backfill, recovery) share, so a replayed post
//! reaches exactly the connections that would have received it live.
//!
//! What a product sends is its row of the table ([`sluice_store::ProductSpec`]):
//! - a product with rules (PowerTrack, Powerstream, the v2 filtered stream): the rules that
//!   match; if any, the post with `matching_rules` spliced in (native products), or the
//!   v2 `matching_rules` the connection's v2 line will carry, for every connection of the
//!   stream (a `localDcOnly` Powerstream connection only gets posts of this node's
//!   datacenter);
//! - a product with partitions: the posts of its [`Sample`] (Decahose: the 10 %; Firehose:
//!   all; the v2 sample: 1 %), to the connections of the post's partition (of 2 and 20;
//!   the v2 sample has one);
//! - the compliance firehose: every compliance event, by partition (of 8) of the event's
//!   post or user; no other stream carries events (docs/compliance.md).
//!
//! The matches of a post are found by the router itself, once, when a rules stream first
//! needs them ([`Selector::post`]: replay, small live batches), or were found before
//! routing by the pipeline's matching threads ([`Selector::post_matched`]); both go
//! through [`match_view`], so they are the same.

use serde_json::{Value, json};
use sluice_matcher::{MatcherReader, Scratch};
use sluice_model::compliance::{is_event, routing_id};
use sluice_model::enrich::{enrich_knowing, write_rendered_matching_rules};
use sluice_model::sampling::{in_decahose, in_one_percent, partition};
use sluice_model::{PostView, parse_post};
use sluice_store::{Content, Product, Sample, Wire};

use crate::registry::{LiveStream, NodeRuleKey, NodeRules};

/// Partitions of the Decahose, from its row of the product table.
pub const DECAHOSE_PARTITIONS: u32 = volume_partitions(Product::Decahose);
/// Partitions of the Firehose, from its row of the product table.
pub const FIREHOSE_PARTITIONS: u32 = volume_partitions(Product::Firehose);

/// The partitions of a product that has them (a compile error for one that does not).
const fn volume_partitions(product: Product) -> u32 {
    match product.spec().partitions {
        Some(n) => n,
        None => panic!("not a volume product"),
    }
}

/// The number of partitions of a volume product; `None` for products without partitions.
pub fn partitions_of(product: Product) -> Option<u32> {
    product.spec().partitions
}

/// How a stream routes one post to its connections.
#[derive(Debug, Clone)]
pub enum Routed<'m> {
    /// Rules matched: this framed message (the post with `matching_rules`) goes to every
    /// connection, except `localDcOnly` ones when the post is from another datacenter.
    Matched {
        /// The framed message, in the selector's buffer until the next post is routed:
        /// each group copies it straight into its segment.
        message: &'m [u8],
        /// Whether the post originated in this node's datacenter.
        local: bool,
    },
    /// Rules matched on a v2 stream: each connection writes its own v2 line of the post
    /// with these `matching_rules` (`[{"id":"…","tag":"…"}]`), except `localDcOnly` ones
    /// when the post is from another datacenter.
    MatchedV2 {
        /// The `matching_rules` array.
        rules: Value,
        /// Whether the post originated in this node's datacenter.
        local: bool,
    },
    /// Volume stream: the plain post (see [`frame_plain_into`]) goes to the connections of this
    /// partition (1-based).
    Partition(u32),
}

impl Routed<'_> {
    /// Whether a connection on `partition`, asking for `local_dc_only`, receives the post.
    pub fn reaches(&self, partition: Option<u32>, local_dc_only: bool) -> bool {
        match self {
            Routed::Matched { local, .. } | Routed::MatchedV2 { local, .. } => {
                !local_dc_only || *local
            }
            Routed::Partition(p) => partition == Some(*p),
        }
    }
}

/// Routes posts for streams; holds a reader of the node-wide rules index, the matcher's
/// scratch space and buffers, so one per thread (the pipeline has one, each replay has its
/// own).
pub struct Selector {
    reader: MatcherReader<NodeRuleKey>,
    scratch: Scratch,
    /// The current post's matches in the node-wide index, sorted (grouped by stream).
    keys: Vec<NodeRuleKey>,
    /// The streams (numbers, sorted) whose rules are evaluated; `None`: all.
    only: Option<Vec<u32>>,
    rule_ids: Vec<u64>,
    buffer: Vec<u8>,
}

impl Selector {
    /// A selector matching against `rules` (the registry's node-wide index).
    pub fn new(rules: &NodeRules) -> Self {
        Self {
            reader: rules.reader(),
            scratch: Scratch::default(),
            keys: Vec::new(),
            only: None,
            rule_ids: Vec::new(),
            buffer: Vec::new(),
        }
    }

    /// Evaluates only the rules of these streams from now on (the streams with
    /// connections, or the one stream a replay is for): rules nobody would receive are not
    /// evaluated. Routing a rules stream left out gives nothing.
    pub fn only(&mut self, streams: impl IntoIterator<Item = u32>) {
        let mut only: Vec<u32> = streams.into_iter().collect();
        only.sort_unstable();
        only.dedup();
        self.only = Some(only);
    }

    /// The streams whose rules are evaluated (sorted), as [`Selector::only`] set them;
    /// `None`: all.
    pub fn only_streams(&self) -> Option<&[u32]> {
        self.only.as_deref()
    }

    /// Starts routing one post (whose JSON is `raw`, from this node's datacenter when
    /// `local`) to any number of streams.
    ///
    /// `id` is the post's id when it is known already: live posts carry the one the ingest
    /// API read ([`crate::pipeline::IngestedPost::id`]), and volume streams route by it
    /// without parsing the post. A post read back from the log has none (`None`); its id is
    /// then taken from the matcher's parse if there is one, or read on its own
    /// ([`routing_id`]). The matcher's parse ([`parse_post`], the fields rules are
    /// evaluated on) happens at most once, on the first rules stream the post is routed
    /// for, not at all when only volume streams are, and never when ingest's view is
    /// given ([`PostRouter::with_view`]).
    pub fn post<'s, 'p>(
        &'s mut self,
        raw: &'p [u8],
        id: Option<u64>,
        local: bool,
    ) -> PostRouter<'s, 'p> {
        PostRouter {
            selector: self,
            raw,
            id,
            local,
            view: View::Unread,
            event: None,
            matched: false,
            given: None,
        }
    }

    /// Like [`Selector::post`], for a post whose matches in the node-wide index were found
    /// already (`keys`, sorted, restricted to the streams of [`Selector::only`]): live
    /// delivery matches the posts of a large batch on worker threads first
    /// ([`super::matching`]), then routes them here, where nothing is parsed or matched.
    pub fn post_matched<'s, 'p>(
        &'s mut self,
        raw: &'p [u8],
        id: u64,
        local: bool,
        keys: &'p [NodeRuleKey],
    ) -> PostRouter<'s, 'p> {
        PostRouter {
            selector: self,
            raw,
            id: Some(id),
            local,
            view: View::Unread,
            event: None,
            matched: true,
            given: Some(keys),
        }
    }
}

/// One post being routed to streams: see [`Selector::post`].
pub struct PostRouter<'s, 'p> {
    selector: &'s mut Selector,
    raw: &'p [u8],
    /// The post's id, once known.
    id: Option<u64>,
    local: bool,
    /// The matcher's view of the post.
    view: View<'p>,
    /// Whether the line is a compliance event, once known.
    event: Option<bool>,
    /// Whether `selector.keys` holds this post's matches yet.
    matched: bool,
    /// The post's matches, when they were found before routing
    /// ([`Selector::post_matched`]); `selector.keys` is not used then.
    given: Option<&'p [NodeRuleKey]>,
}

/// The matcher's view of a post being routed or matched: the one ingest parsed, else
/// parsed here when first needed, at most once. Routing ([`PostRouter`]) and the matching
/// threads ([`super::matching`]) both read posts through it.
// The parsed variant is large, and boxing it would allocate once per post; a view lives
// on the stack for one post, so its size costs nothing.
#[allow(clippy::large_enum_variant)]
pub(super) enum View<'p> {
    /// Not needed yet.
    Unread,
    /// The view the ingest API parsed ([`crate::post::ParsedPost`]).
    Given(&'p PostView<'p>),
    /// Parsed here (`None`: the post does not parse).
    Parsed(Option<PostView<'p>>),
}

impl<'p> View<'p> {
    /// The view ingest parsed ([`crate::post::IngestedPost::view`]), if any; else the post
    /// is parsed when first needed.
    pub(super) fn new(given: Option<&'p PostView<'p>>) -> Self {
        given.map_or(View::Unread, View::Given)
    }

    /// The view of `raw`, parsed now if it was neither given nor parsed before; `None`
    /// when the post does not parse.
    pub(super) fn get(&mut self, raw: &'p [u8]) -> Option<&PostView<'p>> {
        if let View::Unread = self {
            *self = View::Parsed(parse_post(raw).ok());
        }
        self.read()
    }

    /// The view if it was given or parsed already, without parsing the post.
    fn read(&self) -> Option<&PostView<'p>> {
        match self {
            View::Given(view) => Some(view),
            View::Parsed(view) => view.as_ref(),
            View::Unread => None,
        }
    }
}

impl<'p> PostRouter<'_, 'p> {
    /// Gives the router the matcher's view of the post when ingest parsed it already
    /// ([`crate::post::IngestedPost::view`]), so that matching does not parse the post
    /// again and enrichment need not search it for a `matching_rules` member; `None`
    /// changes nothing.
    pub fn with_view(mut self, view: Option<&'p PostView<'p>>) -> Self {
        if let Some(view) = view {
            self.view = View::Given(view);
        }
        self
    }
}

impl PostRouter<'_, '_> {
    /// How `stream` routes the post; `None` when no connection of the stream gets it.
    pub fn route(&mut self, stream: &LiveStream) -> Option<Routed<'_>> {
        let spec = stream.product().spec();
        // Compliance streams carry the events, every other stream the posts.
        if (spec.content == Content::Compliance) != self.is_event() {
            return None;
        }
        let Some(partitions) = spec.partitions else {
            let local = self.local;
            return Some(match spec.wire {
                Wire::Native => Routed::Matched {
                    message: self.enriched(stream)?,
                    local,
                },
                Wire::V2 => Routed::MatchedV2 {
                    rules: self.v2_rules(stream)?,
                    local,
                },
            });
        };
        let id = self.id()?;
        let sampled = match spec.sample {
            Sample::All => true,
            Sample::Decahose => in_decahose(id),
            Sample::OnePercent => in_one_percent(id),
        };
        sampled.then(|| Routed::Partition(partition(id, partitions)))
    }

    /// The ids of the rules the last [`PostRouter::route`] of a rules stream found
    /// matching (for the usage counts); meaningless after routing a volume stream.
    pub fn matched_rule_ids(&self) -> &[u64] {
        &self.selector.rule_ids
    }

    /// Whether the line is a compliance event rather than a post (a peek at its first
    /// key, once).
    fn is_event(&mut self) -> bool {
        *self.event.get_or_insert_with(|| is_event(self.raw))
    }

    /// The post's id: the one it came with, else the matcher's view's, else read from the
    /// bytes (an event's is its post's or user's).
    fn id(&mut self) -> Option<u64> {
        if self.id.is_none() {
            self.id = match &self.view {
                View::Unread => routing_id(self.raw),
                View::Given(view) => view.id(),
                View::Parsed(view) => view.as_ref().and_then(PostView::id),
            };
        }
        self.id
    }

    /// The post with its `matching_rules` for `stream`, framed, in the selector's buffer;
    /// `None` when no rule matches.
    fn enriched(&mut self, stream: &LiveStream) -> Option<&[u8]> {
        if !self.matched_rules(stream) {
            return None;
        }
        let selector = &mut *self.selector;
        selector.buffer.clear();
        let raw = self.raw;
        // A post parsed already says whether it has a `matching_rules` to replace; one that
        // was not is searched for it (see `enrich_knowing`).
        let may_have_key = self.view.read().is_none_or(|v| v.has_matching_rules);
        let buffer = &mut selector.buffer;
        let ok = stream.rules.with_entries(&selector.rule_ids, |entries| {
            // A rule deleted while the post was being matched has no entry any more: it is
            // not reported, and a post that matched only such rules is not sent.
            let mut entries = entries.peekable();
            entries.peek().is_some()
                && enrich_knowing(
                    raw,
                    may_have_key,
                    |out| write_rendered_matching_rules(entries, out),
                    buffer,
                )
                .is_ok()
        });
        if !ok {
            return None;
        }
        buffer.extend_from_slice(b"\r\n");
        Some(buffer)
    }

    /// The v2 `matching_rules` of the post for `stream` (ids as strings, `tag` always
    /// present, `""` when the rule has none); `None` when no rule matches.
    fn v2_rules(&mut self, stream: &LiveStream) -> Option<Value> {
        if !self.matched_rules(stream) {
            return None;
        }
        let selector = &mut *self.selector;
        let rules: Vec<Value> = stream.rules.with_tags(&selector.rule_ids, |tags| {
            tags.map(|(id, tag)| json!({"id": id.to_string(), "tag": tag.unwrap_or("")}))
                .collect()
        });
        // Rules deleted while the post was being matched are not reported.
        (!rules.is_empty()).then_some(Value::Array(rules))
    }

    /// Puts the ids of `stream`'s rules that match the post in `selector.rule_ids`;
    /// whether there are any.
    fn matched_rules(&mut self, stream: &LiveStream) -> bool {
        self.match_once();
        let selector = &mut *self.selector;
        let keys = self.given.unwrap_or(&selector.keys);
        selector.rule_ids.clear();
        selector.rule_ids.extend(stream.rules.ids_in(keys));
        !selector.rule_ids.is_empty()
    }

    /// Matches the post against the node-wide index, once for all the streams it is
    /// routed for.
    fn match_once(&mut self) {
        let selector = &mut *self.selector;
        if !self.matched {
            // Posts are validated at ingest; one that does not parse matches nothing.
            let view = self.view.get(self.raw);
            selector.keys.clear();
            if let Some(view) = view {
                match_view(
                    &selector.reader,
                    &mut selector.scratch,
                    view,
                    selector.only.as_deref(),
                    &mut selector.keys,
                );
            }
            self.matched = true;
        }
    }
}

/// Puts the matches of `view` in the node-wide index into `out` (cleared first), sorted,
/// keeping only the rules of the streams in `only` (sorted; `None`: all): the one
/// matching step of the selector and of the pipeline's matching threads.
pub fn match_view(
    reader: &MatcherReader<NodeRuleKey>,
    scratch: &mut Scratch,
    view: &PostView<'_>,
    only: Option<&[u32]>,
    out: &mut Vec<NodeRuleKey>,
) {
    reader.match_post_where(view, scratch, out, |key| {
        only.is_none_or(|only| only.binary_search(&key.0).is_ok())
    });
}

/// A post as volume streams send it, appended to `out`: the original bytes made line-safe,
/// framed.
pub fn frame_plain_into(raw: &[u8], out: &mut Vec<u8>) {
    sluice_model::json::escape_line_separators(raw, out);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::StreamRegistry;

    fn stream(registry: &StreamRegistry, id: i64, label: &str) -> std::sync::Arc<LiveStream> {
        registry.upsert(&crate::registry::tests::stored(id, label))
    }

    fn rule(id: u64, value: &str, tag: &str) -> (u64, sluice_rules::Rule, Option<String>) {
        (id, sluice_rules::parse(value).unwrap(), Some(tag.into()))
    }

    /// The `matching_rules` of a routed message, as (id, tag) pairs.
    fn matching_rules(routed: Option<Routed<'_>>) -> Vec<(String, String)> {
        let Some(Routed::Matched { message, .. }) = routed else {
            return Vec::new();
        };
        let json: serde_json::Value = serde_json::from_slice(message).unwrap();
        json["matching_rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["id_str"].as_str().unwrap().to_owned(),
                    r["tag"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn a_message_is_the_post_enriched_with_its_rules_as_they_are_formatted() {
        let registry = StreamRegistry::default();
        let a = stream(&registry, 1, "a");
        let tag = "say \"hi\"\\\n\u{2028}";
        a.rules.apply(
            &[
                rule(u64::MAX, "hello", tag),
                (3, sluice_rules::parse("bye").unwrap(), None),
            ],
            &[],
        );
        let raw = b"{\"id\":1,\"text\":\"hello and bye\"}\r\n";
        let mut selector = Selector::new(registry.rules());
        let mut router = selector.post(raw, Some(1), true);
        let Some(Routed::Matched { message, .. }) = router.route(&a) else {
            panic!("both rules match");
        };
        let rules = [
            sluice_model::enrich::MatchedRule { id: 3, tag: None },
            sluice_model::enrich::MatchedRule {
                id: u64::MAX,
                tag: Some(tag),
            },
        ];
        let mut expected = Vec::new();
        sluice_model::enrich::enrich_into(raw, rules, &mut expected).unwrap();
        expected.extend_from_slice(b"\r\n");
        assert_eq!(
            String::from_utf8_lossy(message),
            String::from_utf8_lossy(&expected)
        );
    }

    #[test]
    fn a_posts_own_matching_rules_are_replaced_whether_its_view_came_with_it_or_not() {
        let registry = StreamRegistry::default();
        let a = stream(&registry, 1, "a");
        a.rules.apply(&[rule(7, "hello", "ours")], &[]);
        let mut selector = Selector::new(registry.rules());
        let own =
            br#"{"id":1, "matching_rules":[{"tag":"theirs","id":5,"id_str":"5"}], "text":"hello"}"#;
        let nested = br#"{"id":2, "text":"hello", "quoted_status":{"id":3,"matching_rules":[]}}"#;
        for raw in [&own[..], &nested[..]] {
            let view = sluice_model::parse_post(raw).unwrap();
            let mut message = |given: Option<&PostView<'_>>| {
                let mut router = selector.post(raw, view.id(), true).with_view(given);
                let Some(Routed::Matched { message, .. }) = router.route(&a) else {
                    panic!("the rule matches");
                };
                message.to_vec()
            };
            let searched = message(None);
            // The view says whether the post has the member; the bytes are the same.
            assert_eq!(message(Some(&view)), searched);
            let json: serde_json::Value = serde_json::from_slice(&searched).unwrap();
            assert_eq!(json["matching_rules"][0]["id"], 7);
            assert_eq!(json["matching_rules"].as_array().unwrap().len(), 1);
            if raw == nested {
                assert_eq!(
                    json["quoted_status"]["matching_rules"],
                    serde_json::json!([])
                );
            }
        }
    }

    #[test]
    fn streams_share_one_index_but_each_reports_only_its_own_rules() {
        let registry = StreamRegistry::default();
        let (a, b, c) = (
            stream(&registry, 1, "a"),
            stream(&registry, 2, "b"),
            stream(&registry, 3, "c"),
        );
        // The same rule id and value on two streams, with different tags.
        a.rules
            .apply(&[rule(7, "hello", "a7"), rule(9, "bye", "a9")], &[]);
        b.rules.apply(&[rule(7, "hello", "b7")], &[]);
        c.rules.apply(&[rule(8, "nothing", "c8")], &[]);
        assert_eq!(registry.rules().len(), 4);

        let raw = br#"{"id":1,"text":"hello and bye"}"#;
        let mut selector = Selector::new(registry.rules());
        let mut router = selector.post(raw, Some(1), true);
        let pair = |id: &str, tag: &str| (id.to_owned(), tag.to_owned());
        assert_eq!(
            matching_rules(router.route(&a)),
            [pair("7", "a7"), pair("9", "a9")]
        );
        assert_eq!(matching_rules(router.route(&b)), [pair("7", "b7")]);
        assert!(router.route(&c).is_none());

        // Removing a rule of one stream leaves the other's rule with the same id alone.
        a.rules.apply(&[], &[7]);
        let mut router = selector.post(raw, Some(1), true);
        assert_eq!(matching_rules(router.route(&a)), [pair("9", "a9")]);
        assert_eq!(matching_rules(router.route(&b)), [pair("7", "b7")]);

        // Evaluating only some streams' rules (the ones with connections) leaves the
        // others out.
        let mut only_b = Selector::new(registry.rules());
        only_b.only([b.rules.stream_number()]);
        let mut router = only_b.post(raw, Some(1), true);
        assert!(router.route(&a).is_none());
        assert_eq!(matching_rules(router.route(&b)), [pair("7", "b7")]);

        // A removed stream takes its rules out of the index and ignores later changes.
        registry.remove(&a.key);
        assert_eq!(registry.rules().len(), 2);
        a.rules.apply(&[rule(10, "hello", "late")], &[]);
        assert_eq!(registry.rules().len(), 2);
        let mut router = selector.post(raw, Some(1), true);
        assert!(router.route(&a).is_none());
        assert_eq!(matching_rules(router.route(&b)), [pair("7", "b7")]);
    }
}
