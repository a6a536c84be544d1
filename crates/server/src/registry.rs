//! The live streams of this node: for each stream its rules and its open connections, kept
//! in step with the store.
//!
//! The rules of all streams are compiled into one node-wide index ([`NodeRules`]), each
//! under its stream's node-local number, so that matching a post costs one feature
//! extraction and one walk of the index however many streams the node serves; each
//! stream's [`RuleBook`] is its view of that index plus the tags its `matching_rules`
//! report. A stream of a product fed only by replay jobs ([`Delivery::Replay`]) has an
//! index of its own instead: live posts are never matched against its rules, and its
//! replay jobs match against them alone.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use indexmap::IndexMap;
use indexmap::map::Entry;
use sluice_matcher::{MatcherReader, MatcherWriter, Scratch, SharedMatcher};
use sluice_model::PostView;
use sluice_model::enrich::{MatchedRule, write_matching_rule};
use sluice_rules::Rule;
use sluice_store::{Delivery, Product, StoredStream, StreamLimits, StreamRef};

use crate::delivery::tap::Taps;
use crate::delivery::{Format, Outbox};
use crate::usage::StreamUsage;

/// Gives a map's spare room back once it is mostly empty (under a quarter of its
/// capacity): a map that held thousands of connections would otherwise keep room for all
/// of them after they closed. It keeps twice its length, so a map that loses and gains one
/// entry at a time does not reallocate each time, and never shrinks below a few entries
/// unless emptied: an empty map frees its memory altogether (a stream whose only client
/// reconnects allocates its small tables again). That matters for memory as much as the
/// room: a smaller table allocated while thousands of connections close lands in the
/// allocator's partly freed blocks and keeps their pages resident for as long as the
/// stream lives (docs/performance.md, "Registering and unregistering connections").
pub(crate) fn release_spare<K: Eq + Hash, V>(map: &mut IndexMap<K, V>) {
    const KEEP: usize = 16;
    if map.is_empty() {
        *map = IndexMap::default();
    } else if map.capacity() > KEEP && map.len() < map.capacity() / 4 {
        map.shrink_to((map.len() * 2).max(KEEP));
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Critical sections below never leave their data half-updated.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A stream that can be connected to: its identity, limits, rules and connections.
pub struct LiveStream {
    /// The store's row id.
    pub id: i64,
    /// Account, product and label.
    pub key: StreamRef,
    limits: Mutex<StreamLimits>,
    /// The compiled rules (PowerTrack and Powerstream streams).
    pub rules: RuleBook,
    /// The open connections.
    pub connections: Connections,
    /// Observers of the matched posts that are not connections (the console's live view).
    pub taps: Taps,
    /// Serializes rule changes on this stream: a second add waits for the first (spec
    /// docs/compatibility.md ("Decisions")), and store order equals matcher order.
    pub rules_gate: tokio::sync::Mutex<()>,
    /// Recovery requests (`startTime`/`endTime`) running on this stream, X allows 2 at once;
    /// on a Replay stream, its replay jobs (one at a time).
    pub recovery_jobs: AtomicU32,
    /// What the stream delivered and matched, not yet stored ([`crate::usage`]).
    pub usage: StreamUsage,
}

impl LiveStream {
    fn new(stored: &StoredStream, node_rules: &Arc<NodeRules>) -> Self {
        Self {
            id: stored.id,
            key: stored.stream.clone(),
            limits: Mutex::new(stored.limits),
            rules: RuleBook::new(node_rules.clone()),
            connections: Connections::default(),
            taps: Taps::default(),
            rules_gate: tokio::sync::Mutex::new(()),
            recovery_jobs: AtomicU32::new(0),
            usage: StreamUsage::default(),
        }
    }

    /// The operator's current limits for the stream.
    pub fn limits(&self) -> StreamLimits {
        *lock(&self.limits)
    }

    /// The product the stream belongs to.
    pub fn product(&self) -> Product {
        self.key.product
    }
}

/// The key of a rule in the node-wide index: its stream's node-local number
/// ([`RuleBook::stream_number`]) and its rule id. Matches come out sorted by key, so
/// grouped by stream and ascending by rule id within each.
pub type NodeRuleKey = (u32, u64);

/// The rules of every stream of the node in one index.
///
/// Matching a post against each stream's own index would extract the post's features
/// (tokenizing every text field) once per stream; with one index they are extracted once,
/// and each candidate rule found says which stream it belongs to. Rule changes of all
/// streams go through the one writer (serialized, each publish waiting at most for one
/// post's matching); readers are cloned per matching thread and never lock.
pub struct NodeRules {
    writer: Mutex<MatcherWriter<NodeRuleKey>>,
    /// Kept to clone readers from ([`MatcherReader`] is `Send` but not `Sync`).
    reader: Mutex<MatcherReader<NodeRuleKey>>,
    next_stream: AtomicU32,
}

impl Default for NodeRules {
    fn default() -> Self {
        let (writer, reader) = SharedMatcher::with_keys();
        Self {
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            next_stream: AtomicU32::new(0),
        }
    }
}

impl NodeRules {
    /// A reader of the published rules, for one matching thread.
    pub fn reader(&self) -> MatcherReader<NodeRuleKey> {
        lock(&self.reader).clone()
    }

    /// Number of rules of all streams in the index.
    pub fn len(&self) -> usize {
        lock(&self.reader).len()
    }

    /// Whether no stream has rules.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One stream's rules: its part of the node-wide index, and the tags `matching_rules`
/// reports.
///
/// Changes go to the store first, then here; the pipeline thread matches against the last
/// published set, so a rule is in effect for every post processed after `apply` returns.
pub struct RuleBook {
    node: Arc<NodeRules>,
    stream: u32,
    /// Rule id → tag, for the rules in effect. `None` once the stream is retired (set by
    /// [`RuleBook::retire`] under the node's writer lock). Looked up for every rule a
    /// delivered post matched; hashbrown's hasher rather than std's SipHash, which took 3 %
    /// of the server's CPU at 100,000 rules (the ids are the server's own, not a client's).
    tags: RwLock<Option<hashbrown::HashMap<u64, Tagged>>>,
}

/// A rule's tag, and its `matching_rules` entry rendered once: escaping the tag and
/// formatting the id for every delivered post was about 5 % of the delivering thread at
/// 100,000 rules.
struct Tagged {
    tag: Option<Arc<str>>,
    entry: Box<[u8]>,
}

impl Tagged {
    fn new(id: u64, tag: Option<&str>) -> Self {
        let mut entry = Vec::new();
        write_matching_rule(MatchedRule { id, tag }, &mut entry);
        Self {
            tag: tag.map(Arc::from),
            entry: entry.into_boxed_slice(),
        }
    }
}

impl RuleBook {
    fn new(node: Arc<NodeRules>) -> Self {
        let stream = node.next_stream.fetch_add(1, Ordering::Relaxed);
        Self {
            node,
            stream,
            tags: RwLock::new(Some(hashbrown::HashMap::new())),
        }
    }

    /// The stream's number in the node-wide index (the first element of its rules' keys).
    pub fn stream_number(&self) -> u32 {
        self.stream
    }

    /// The node-wide index the stream's rules are in.
    pub fn node(&self) -> &Arc<NodeRules> {
        &self.node
    }

    /// Adds and removes rules, visible to matching all at once when this returns. Does
    /// nothing once the stream has been retired.
    pub fn apply(&self, added: &[(u64, Rule, Option<String>)], removed: &[u64]) {
        {
            // Rendered before the lock, which delivery takes for every matched post.
            let tagged: Vec<(u64, Tagged)> = added
                .iter()
                .map(|(id, _, tag)| (*id, Tagged::new(*id, tag.as_deref())))
                .collect();
            // Tags are known before the matcher can report the rule...
            let mut tags = self.tags.write().unwrap_or_else(|e| e.into_inner());
            let Some(tags) = tags.as_mut() else {
                return;
            };
            tags.extend(tagged);
        }
        {
            let mut writer = lock(&self.node.writer);
            if self.is_retired() {
                // Retired meanwhile: `retire` took the tags, with any just inserted.
                return;
            }
            for (id, rule, _) in added {
                writer.insert((self.stream, *id), rule);
            }
            for id in removed {
                writer.remove((self.stream, *id));
            }
            writer.publish();
        }
        // ...and forgotten once it is out of the published index (a match that started
        // before may still report it: delivery skips rules it has no tag for).
        let mut tags = self.tags.write().unwrap_or_else(|e| e.into_inner());
        if let Some(tags) = tags.as_mut() {
            for id in removed {
                tags.remove(id);
            }
        }
    }

    /// Whether [`RuleBook::retire`] has run.
    fn is_retired(&self) -> bool {
        self.tags
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
    }

    /// Takes every rule of the stream out of the node-wide index, for good: a removed
    /// stream's rules must not cost matching time, and later changes are ignored.
    fn retire(&self) {
        // Under the writer lock, which `apply` checks for retirement under: an `apply`
        // either inserted its rules before (they are removed here, their tags are taken)
        // or finds the tags gone and inserts nothing.
        let mut writer = lock(&self.node.writer);
        let taken = self.tags.write().unwrap_or_else(|e| e.into_inner()).take();
        for id in taken.iter().flat_map(hashbrown::HashMap::keys) {
            writer.remove((self.stream, *id));
        }
        writer.publish();
    }

    /// The ids of this stream's rules matching `post`, ascending. Sets up a reader and
    /// scratch space per call: for checks and tools; delivery matches through
    /// [`crate::delivery::select::Selector`], once per post for all streams.
    pub fn match_post(&self, post: &PostView<'_>, out: &mut Vec<u64>) {
        let mut keys = Vec::new();
        self.node
            .reader()
            .match_post_with(post, &mut Scratch::default(), &mut keys);
        out.clear();
        out.extend(self.ids_in(&keys));
    }

    /// The rule ids of this stream among `keys` (node-wide matches, sorted by key).
    pub fn ids_in<'k>(&self, keys: &'k [NodeRuleKey]) -> impl Iterator<Item = u64> + 'k {
        let stream = self.stream;
        let start = keys.partition_point(|k| k.0 < stream);
        keys[start..]
            .iter()
            .take_while(move |k| k.0 == stream)
            .map(|k| k.1)
    }

    /// Calls `f` with the tag of each rule id in `ids` (skipping unknown ids).
    pub fn with_tags<R>(
        &self,
        ids: &[u64],
        f: impl FnOnce(&mut dyn Iterator<Item = (u64, Option<&str>)>) -> R,
    ) -> R {
        self.with_tagged(ids, |rules| {
            f(&mut rules.map(|(id, tagged)| (id, tagged.tag.as_deref())))
        })
    }

    /// Calls `f` with the rendered `matching_rules` entry ([`write_matching_rule`]) of each
    /// rule id in `ids` (skipping unknown ids): what a native message is made of.
    pub fn with_entries<R>(
        &self,
        ids: &[u64],
        f: impl FnOnce(&mut dyn Iterator<Item = &[u8]>) -> R,
    ) -> R {
        self.with_tagged(ids, |rules| f(&mut rules.map(|(_, tagged)| &*tagged.entry)))
    }

    /// Calls `f` with what is kept of each rule id in `ids` (skipping unknown ids), under
    /// the tags' read lock.
    fn with_tagged<R>(
        &self,
        ids: &[u64],
        f: impl FnOnce(&mut dyn Iterator<Item = (u64, &Tagged)>) -> R,
    ) -> R {
        let tags = self.tags.read().unwrap_or_else(|e| e.into_inner());
        // A retired stream has no tags: no rule of it is reported.
        let Some(tags) = tags.as_ref() else {
            return f(&mut std::iter::empty());
        };
        f(&mut ids.iter().filter_map(|id| tags.get(id).map(|t| (*id, t))))
    }

    /// Number of rules in effect.
    pub fn len(&self) -> usize {
        self.tags
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map_or(0, hashbrown::HashMap::len)
    }

    /// Whether the stream has no rules.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One open streaming connection.
pub struct Connection {
    /// Unique within the node.
    pub id: u64,
    /// Where the pipeline puts this connection's messages.
    pub outbox: Arc<Outbox>,
    /// The partition (1-based) of a volume-stream connection.
    pub partition: Option<u32>,
    /// Powerstream `localDcOnly=true`: only posts from this node's datacenter.
    pub local_dc_only: bool,
    /// How it writes posts (v2 connections: with the fields they asked for).
    pub format: Format,
    /// When it connected.
    pub opened: Instant,
}

impl Connection {
    /// Whether it counts towards the cap of `partition`: it is on it and not being closed.
    fn holds_slot_on(&self, partition: Option<u32>) -> bool {
        self.partition == partition && !self.outbox.is_closed()
    }
}

/// The open connections of one stream.
#[derive(Default)]
pub struct Connections {
    list: Mutex<ConnectionList>,
    /// The most connections open at once since [`Connections::take_peak`] last ran.
    peak: AtomicUsize,
}

/// The connections of a stream by id, and how many are on each partition: a connect or a
/// close then costs the same however many connections the stream holds, where a list
/// searched or counted on each made opening or closing N connections cost N² under the
/// stream's lock (`cargo bench -p sluice-server --bench connections`). They stay in the
/// order they opened (a close moves the last one into the gap): fan-out in that order,
/// which is also the order their memory was allocated in, cost the server about 2 µs less
/// per connection and post than in hash order (docs/performance.md, "Registering and
/// unregistering connections").
#[derive(Default)]
struct ConnectionList {
    by_id: IndexMap<u64, Arc<Connection>>,
    per_partition: IndexMap<Option<u32>, usize>,
}

static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

impl Connections {
    /// Registers a connection; returns it and the number of connections now open on the
    /// same partition (or on the stream, without partitions).
    pub fn open(
        &self,
        outbox: Arc<Outbox>,
        partition: Option<u32>,
        local_dc_only: bool,
        format: Format,
    ) -> (Arc<Connection>, usize) {
        let conn = Arc::new(Connection {
            id: NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed),
            outbox,
            partition,
            local_dc_only,
            format,
            opened: Instant::now(),
        });
        let mut list = lock(&self.list);
        list.by_id.insert(conn.id, conn.clone());
        self.peak.fetch_max(list.by_id.len(), Ordering::Relaxed);
        let same = list.per_partition.entry(partition).or_default();
        *same += 1;
        let same = *same;
        (conn, same)
    }

    /// Unregisters a connection.
    pub fn close(&self, id: u64) {
        let mut list = lock(&self.list);
        if let Some(conn) = list.by_id.swap_remove(&id)
            && let Entry::Occupied(mut count) = list.per_partition.entry(conn.partition)
        {
            *count.get_mut() -= 1;
            if *count.get() == 0 {
                count.swap_remove();
            }
        }
        release_spare(&mut list.per_partition);
        release_spare(&mut list.by_id);
    }

    /// The most connections open at once since the last call (at least those open now),
    /// for the usage counts ([`crate::usage::flush`]); starts the next period at the
    /// number open now.
    pub fn take_peak(&self) -> usize {
        // Under the lock, as `open` raises the peak: a connect between reading the count
        // and starting the next period would be missing from that period's peak.
        let list = lock(&self.list);
        let open = list.by_id.len();
        self.peak.swap(open, Ordering::Relaxed).max(open)
    }

    /// A snapshot of the open connections.
    pub fn snapshot(&self) -> Vec<Arc<Connection>> {
        lock(&self.list).by_id.values().cloned().collect()
    }

    /// Calls `f` for each open connection, under the lock (keep `f` short: it pushes).
    pub fn for_each(&self, mut f: impl FnMut(&Connection)) {
        for c in lock(&self.list).by_id.values() {
            f(c);
        }
    }

    /// Number of open connections.
    pub fn len(&self) -> usize {
        lock(&self.list).by_id.len()
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Connections holding a slot on `partition` (see [`Connections::over_cap`]): what a
    /// connect refused at the cap counts.
    pub fn holding_slots(&self, partition: Option<u32>) -> usize {
        lock(&self.list)
            .by_id
            .values()
            .filter(|c| c.holds_slot_on(partition))
            .count()
    }

    /// Connections on `partition` beyond the first `allowed`, newest first: the ones the
    /// over-cap policy closes. Connections already being closed (their outbox is closed,
    /// e.g. a slow consumer whose client has stopped reading) do not hold a slot.
    pub fn over_cap(&self, partition: Option<u32>, allowed: u32) -> Vec<Arc<Connection>> {
        let list = lock(&self.list);
        let mut same: Vec<_> = list
            .by_id
            .values()
            .filter(|c| c.holds_slot_on(partition))
            .cloned()
            .collect();
        same.sort_by_key(|c| c.id);
        let mut over = same.split_off((allowed as usize).min(same.len()));
        over.reverse();
        over
    }
}

/// Every live stream of the node, by account, product and label, and the node-wide index
/// of their rules.
#[derive(Default)]
pub struct StreamRegistry {
    streams: RwLock<HashMap<StreamRef, Arc<LiveStream>>>,
    version: AtomicU64,
    rules: Arc<NodeRules>,
}

impl StreamRegistry {
    /// Adds (or updates the limits of) a stream and returns it.
    pub fn upsert(&self, stored: &StoredStream) -> Arc<LiveStream> {
        let mut streams = self.streams.write().unwrap_or_else(|e| e.into_inner());
        let stream = streams
            .entry(stored.stream.clone())
            .or_insert_with(|| {
                let index = match stored.stream.product.spec().delivery {
                    Delivery::Live => self.rules.clone(),
                    Delivery::Replay => Arc::new(NodeRules::default()),
                };
                Arc::new(LiveStream::new(stored, &index))
            })
            .clone();
        *lock(&stream.limits) = stored.limits;
        self.version.fetch_add(1, Ordering::Release);
        stream
    }

    /// Removes a stream and takes its rules out of the node-wide index; returns it so its
    /// connections can be closed.
    pub fn remove(&self, key: &StreamRef) -> Option<Arc<LiveStream>> {
        let removed = self
            .streams
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        self.version.fetch_add(1, Ordering::Release);
        if let Some(stream) = &removed {
            stream.rules.retire();
        }
        removed
    }

    /// The node-wide index of every stream's rules.
    pub fn rules(&self) -> &Arc<NodeRules> {
        &self.rules
    }

    /// The stream, if it exists.
    pub fn get(&self, key: &StreamRef) -> Option<Arc<LiveStream>> {
        self.streams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned()
    }

    /// Every stream, in the order they were created (the store's row ids): live delivery
    /// goes through them in this order, so connections opened stream after stream are
    /// reached in about the order they opened (see [`Connections`]).
    pub fn all(&self) -> Vec<Arc<LiveStream>> {
        let mut all: Vec<_> = self
            .streams
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        all.sort_by_key(|s| s.id);
        all
    }

    /// A counter that changes whenever streams are added or removed, so the pipeline can
    /// cache [`StreamRegistry::all`].
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::atomic::AtomicBool;

    use sluice_store::{Product, StreamLimits};

    use super::*;

    #[test]
    fn a_mostly_empty_map_gives_its_room_back() {
        let mut list: IndexMap<u64, ()> = (0..10_000).map(|n| (n, ())).collect();
        list.retain(|&n, _| n < 3_000);
        release_spare(&mut list);
        assert_eq!(list.len(), 3_000);
        assert!(
            list.capacity() >= 10_000,
            "a map still over a quarter full keeps its room"
        );
        list.retain(|&n, _| n < 100);
        release_spare(&mut list);
        assert!(
            (200..=256).contains(&list.capacity()),
            "{}",
            list.capacity()
        );
        list.retain(|&n, _| n < 3);
        release_spare(&mut list);
        assert!(
            (16..100).contains(&list.capacity()),
            "never below a few entries while not empty: {}",
            list.capacity()
        );
        list.clear();
        release_spare(&mut list);
        assert_eq!(list.capacity(), 0, "an empty map frees its memory");
    }

    #[test]
    fn closing_connections_shrinks_the_stream_list() {
        use crate::delivery::Encoding;
        let connections = Connections::default();
        let opened: Vec<_> = (0..1_000)
            .map(|_| {
                let outbox = Arc::new(Outbox::new(1 << 20, Encoding::Identity));
                connections.open(outbox, None, false, Format::default()).0
            })
            .collect();
        for conn in &opened {
            connections.close(conn.id);
        }
        assert!(connections.snapshot().is_empty());
        let list = lock(&connections.list);
        assert_eq!(
            (list.by_id.capacity(), list.per_partition.capacity()),
            (0, 0),
            "a stream without connections holds no memory for them"
        );
    }

    #[test]
    fn connections_are_reached_in_the_order_they_opened_and_counted_per_partition() {
        use crate::delivery::Encoding;
        let connections = Connections::default();
        let open = |partition| {
            let outbox = Arc::new(Outbox::new(1 << 20, Encoding::Identity));
            connections.open(outbox, partition, false, Format::default())
        };
        let opened: Vec<_> = (0..200).map(|i| open(Some(i % 2)).0.id).collect();
        let mut reached = Vec::new();
        connections.for_each(|c| reached.push(c.id));
        assert_eq!(
            reached, opened,
            "fan-out goes in the order connections opened"
        );
        // Closing keeps the count of each partition.
        for id in opened.iter().step_by(4) {
            connections.close(*id);
        }
        // The closed ones were all on partition 0 (even indices): 50 remain there, 100 on
        // partition 1. Closing an unknown id, or the same one twice, changes no count.
        connections.close(u64::MAX);
        connections.close(opened[0]);
        assert_eq!(open(Some(0)).1, 51);
        assert_eq!(open(Some(1)).1, 101);
        assert_eq!(open(None).1, 1);
        assert_eq!(connections.len(), 200 - 50 + 3);
    }
    use crate::delivery::select::Selector;

    /// A PowerTrack stream of account `acme` as the store would describe it (tests).
    pub(crate) fn stored(id: i64, label: &str) -> StoredStream {
        StoredStream {
            id,
            stream: StreamRef {
                account: "acme".into(),
                product: Product::PowerTrack,
                label: label.into(),
            },
            limits: StreamLimits {
                max_connections: 2,
                max_rules: 1_000,
            },
        }
    }

    fn rules(ids: std::ops::Range<u64>) -> Vec<(u64, Rule, Option<String>)> {
        ids.map(|id| (id, sluice_rules::parse("hello").unwrap(), None))
            .collect()
    }

    #[test]
    fn rules_added_while_their_stream_is_removed_never_stay_in_the_index() {
        // A stress test of the interleaving: an add has recorded its tags when the stream is
        // retired, and reaches the index after.
        for round in 0..100 {
            let registry = Arc::new(StreamRegistry::default());
            let stream = registry.upsert(&stored(1, "prod"));
            let stop = Arc::new(AtomicBool::new(false));
            let adder = {
                let (stream, stop) = (stream.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut id = 0;
                    while !stop.load(Ordering::Acquire) {
                        stream.rules.apply(&rules(id..id + 1), &[]);
                        id += 1;
                    }
                })
            };
            while registry.rules().len() < 5 {
                std::thread::yield_now();
            }
            registry.remove(&stream.key);
            // Let the adder run on against the retired stream for a while.
            for _ in 0..50 {
                std::thread::yield_now();
            }
            stop.store(true, Ordering::Release);
            adder.join().unwrap();
            assert_eq!(registry.rules().len(), 0, "round {round}");
            assert!(stream.rules.is_empty());
        }
    }

    #[test]
    fn a_matched_rule_without_a_tag_entry_is_not_reported_or_sent() {
        let registry = StreamRegistry::default();
        let stream = registry.upsert(&stored(1, "prod"));
        // The index knows a rule the stream's tags no longer do: what a match that began
        // before a delete's publish can still report after the delete has returned.
        let rule = sluice_rules::parse("hello").unwrap();
        lock(&registry.rules().writer)
            .insert((stream.rules.stream, 7), &rule)
            .publish();
        let raw = br#"{"id":1,"text":"hello"}"#;
        let mut selector = Selector::new(registry.rules());
        assert!(selector.post(raw, Some(1), true).route(&stream).is_none());

        // With one tagged rule beside it, only the tagged one is reported.
        stream.rules.apply(&rules(9..10), &[]);
        let mut router = selector.post(raw, Some(1), true);
        let routed = router.route(&stream);
        let Some(crate::delivery::select::Routed::Matched { message, .. }) = routed else {
            panic!("the tagged rule matches");
        };
        let json: serde_json::Value = serde_json::from_slice(message).unwrap();
        assert_eq!(json["matching_rules"].as_array().unwrap().len(), 1);
        assert_eq!(json["matching_rules"][0]["id"], 9);
    }
}
