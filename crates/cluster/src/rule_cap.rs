//! The rule cap held across nodes: each stream's rule count lives in the state bucket
//! under [`count_key`], changed only by compare-and-set on its revision, so that adds on
//! several nodes at the same moment cannot pass the stream's `max_rules` together (each
//! node's store only sees its own adds until the others replicate).
//!
//! The count is an upper bound on the stream's rule keys, never below it:
//! - an add first reserves slots for its rules ([`reserve`]), then creates the keys, then
//!   settles ([`settle`]): the rules it created are counted, the rest of its slots freed;
//! - a delete removes keys, then frees their slots ([`release`]);
//! - a missing count (a bucket written by an older version, a first add, a deleted
//!   stream's name used again) is the number of the stream's rule keys, counted once
//!   ([`rule_keys`]), at a random epoch ([`RuleCount::fresh`]).
//!
//! It can drift upwards: a node may die between reserving and settling, or between
//! deleting and releasing, and a recount running alongside an add counts its keys twice
//! for a while. So before refusing an add, the node recounts the keys and retries: drift
//! costs a recount, never a wrong refusal. A recount keeps the slots of adds in flight
//! (their keys may not exist yet) and drops reservations older than
//! [`RESERVATION_TTL_MS`], whose node died (the keys they did create are among those
//! counted); each recount bumps the count's epoch, and a delete that read an older epoch
//! before deleting frees nothing (the recount may already have left its keys out).
//!
//! Limits: reservations are timed by the adding node's clock, so node clocks must agree
//! to well within the TTL, and a node still writing keys past the TTL (NATS unreachable
//! for a minute mid-add) could see its slots given away. A recount reads the last
//! message (headers only) of each of the stream's rule keys, so it costs in proportion to
//! the stream's rules; it runs only when the node's own store let an add through and the
//! count would refuse it.

use std::collections::HashSet;
use std::time::Duration;

use async_nats::jetstream::kv::{self, CreateErrorKind, Operation, UpdateErrorKind};
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use sluice_server::clock::now_ms;
use sluice_server::cluster::{ClusterError, RecordError, RuleRecord, StreamKey};

use crate::key_scan;
use crate::names::{count_key, rule_prefix};
use crate::rule_entry::rule_at;

/// How long a reservation holds its slots unsettled before a recount drops it: its node
/// died between reserving and settling (a live node settles within milliseconds).
pub const RESERVATION_TTL_MS: i64 = 60_000;

/// Compare-and-set attempts on one count before giving up: each failure means another
/// node changed the count, that is, made progress.
const ATTEMPTS: u32 = 100;

/// Recounts one add may make: more means the count keeps changing under the recounts
/// (adds in flight at the cap), and the add is refused on the count as it stands.
const RECOUNTS: u32 = 3;

/// How many rule keys [`holders`] reads at once.
const CONCURRENT_READS: usize = 64;

/// The value of a stream's count key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleCount {
    /// The stream's rules, not counting adds in flight (at least its rule keys that no
    /// reservation below covers).
    pub rules: u64,
    /// Bumped by every recount (see [`RuleCount::release`]).
    pub epoch: u64,
    /// Slots held by adds in flight.
    #[serde(default)]
    pub pending: Vec<Reservation>,
}

/// Slots one add holds between reserving and settling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// Chosen at random by the adding node.
    pub id: u64,
    /// How many rules the add may create.
    pub slots: u64,
    /// When it was made, epoch milliseconds (the adding node's clock).
    pub at_ms: i64,
}

impl RuleCount {
    /// A count about to be made (no rules yet; a recount fills them in), at a random
    /// epoch: a delete that read the epoch of a count since deleted and made again must
    /// not find the same epoch and free slots the new count never counted (which a
    /// fresh count starting at 0 each time would allow).
    pub fn fresh() -> Self {
        Self {
            epoch: rand::random(),
            ..Self::default()
        }
    }

    /// The slots taken: rules plus reservations.
    pub fn used(&self) -> u64 {
        self.pending
            .iter()
            .fold(self.rules, |used, r| used.saturating_add(r.slots))
    }

    /// Reserves `slots` under `id` if they fit within `max_rules`; whether they did.
    pub fn reserve(&mut self, id: u64, slots: u64, now_ms: i64, max_rules: u64) -> bool {
        if self.used().saturating_add(slots) > max_rules {
            return false;
        }
        self.pending.push(Reservation {
            id,
            slots,
            at_ms: now_ms,
        });
        true
    }

    /// Ends reservation `id`, counting the `created` rules it made and freeing the rest of
    /// its slots. Rules of a reservation a recount dropped meanwhile are counted too: a
    /// recount that saw them counts them twice, which is safe (an upper bound), and the
    /// next recount corrects it.
    pub fn settle(&mut self, id: u64, created: u64) {
        self.pending.retain(|r| r.id != id);
        self.rules = self.rules.saturating_add(created);
    }

    /// Frees the slots of `deleted` rules whose keys were deleted after `epoch` was read.
    /// After a recount (another epoch) it frees nothing: the recount may not have seen
    /// the keys, and freeing them again would put the count below the keys. Whether the
    /// count changed.
    pub fn release(&mut self, deleted: u64, epoch: u64) -> bool {
        if deleted == 0 || self.epoch != epoch {
            return false;
        }
        self.rules = self.rules.saturating_sub(deleted);
        true
    }

    /// Replaces the rules with the `keys` a scan found, keeping the reservations of adds
    /// in flight and dropping those older than [`RESERVATION_TTL_MS`].
    pub fn recounted(&mut self, keys: u64, now_ms: i64) {
        self.rules = keys;
        self.epoch = self.epoch.wrapping_add(1);
        self.pending
            .retain(|r| now_ms.saturating_sub(r.at_ms) < RESERVATION_TTL_MS);
    }
}

/// What [`reserve`] got: slots to [`settle`], and the rules found holding some of the
/// values already (those are not to be created: they are existing rules).
#[derive(Debug)]
pub struct Reserved {
    id: u64,
    slots: u64,
    /// The add's values that a rule holds in the bucket already, each once.
    pub taken: Vec<Taken>,
}

/// A value of an add that a rule holds in the bucket already.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Taken {
    /// Index into the add's rules (and keys).
    pub index: usize,
    /// The rule holding the value.
    pub rule: RuleRecord,
}

/// Reserves slots for rules to be created under `keys` on `stream`, within `max_rules`.
/// When they do not fit, recounts the stream's rule keys (leaving out the values some
/// rule already holds, which need no slot) and tries again; refuses when they do not fit
/// right after a recount, or after `RECOUNTS` recounts the count changed under each
/// time (adds in flight on other nodes at the cap).
pub async fn reserve(
    kv: &kv::Store,
    client: &async_nats::Client,
    stream: &StreamKey,
    keys: &[String],
    max_rules: u64,
) -> Result<Reserved, RecordError> {
    let key = count_key(stream);
    let mut reserved = Reserved {
        id: rand::random::<u64>(),
        slots: keys.len() as u64,
        taken: Vec::new(),
    };
    let mut recounted_at = None;
    let mut recounts = 0;
    for attempt in 0..ATTEMPTS {
        reserved.slots = (keys.len() - reserved.taken.len()) as u64;
        // The recount to write, and the revision it replaces (`None`: no count yet).
        let (recounted, revision) = match read(kv, &key).await? {
            Stored::Count(count, revision) => {
                match try_reserve(kv, &key, &count, revision, &reserved, max_rules).await? {
                    Attempt::Reserved => return Ok(reserved),
                    Attempt::Conflict => {
                        back_off(attempt).await;
                        continue;
                    }
                    Attempt::Full => {}
                }
                if recounted_at == Some(revision) || recounts == RECOUNTS {
                    return Err(RecordError::RuleLimit {
                        // Adds in flight counted twice for a moment may take it past the
                        // cap; no stream has more rules than its cap.
                        existing: count.used().min(max_rules),
                        adding: reserved.slots,
                        limit: max_rules,
                    });
                }
                (
                    recount(kv, client, stream, keys, count).await?,
                    Some(revision),
                )
            }
            Stored::Missing => (
                recount(kv, client, stream, keys, RuleCount::fresh()).await?,
                None,
            ),
            Stored::Undecodable(revision) => (
                recount(kv, client, stream, keys, RuleCount::fresh()).await?,
                Some(revision),
            ),
        };
        reserved.taken = recounted.taken;
        recounts += 1;
        match write(kv, &key, &recounted.count, revision).await? {
            Written::Done(revision) => recounted_at = Some(revision),
            Written::Conflict => back_off(attempt).await,
        }
    }
    Err(ClusterError(format!("the rule count of {key} stayed contended")).into())
}

/// How one attempt at reserving slots on a count went.
enum Attempt {
    /// The slots are reserved (or none were needed).
    Reserved,
    /// Another node changed the count first: read it again.
    Conflict,
    /// The slots do not fit within the cap on this count.
    Full,
}

/// Reserves `reserved`'s slots on `count` (read at `revision`) by compare-and-set.
async fn try_reserve(
    kv: &kv::Store,
    key: &str,
    count: &RuleCount,
    revision: u64,
    reserved: &Reserved,
    max_rules: u64,
) -> Result<Attempt, ClusterError> {
    if reserved.slots == 0 {
        return Ok(Attempt::Reserved);
    }
    let mut next = count.clone();
    if !next.reserve(reserved.id, reserved.slots, now_ms(), max_rules) {
        return Ok(Attempt::Full);
    }
    Ok(match write(kv, key, &next, Some(revision)).await? {
        Written::Done(_) => Attempt::Reserved,
        Written::Conflict => Attempt::Conflict,
    })
}

/// What a [`recount`] found.
struct Recount {
    /// The count to write: the stream's rule keys now, with `base`'s adds in flight.
    count: RuleCount,
    /// The add's values that a rule holds already.
    taken: Vec<Taken>,
}

/// Recounts the stream's rule keys into `base` (the count as read, or a new one), and
/// finds which of the add's `keys` are taken.
async fn recount(
    kv: &kv::Store,
    client: &async_nats::Client,
    stream: &StreamKey,
    keys: &[String],
    mut base: RuleCount,
) -> Result<Recount, ClusterError> {
    let live = rule_keys(kv, client, stream).await?;
    base.recounted(live.len() as u64, now_ms());
    let taken = holders(kv, keys, &live).await?;
    Ok(Recount { count: base, taken })
}

/// Ends a reservation once its rule keys are written: `created` of them were.
pub async fn settle(
    kv: &kv::Store,
    stream: &StreamKey,
    reserved: &Reserved,
    created: u64,
) -> Result<(), ClusterError> {
    if reserved.slots == 0 && created == 0 {
        return Ok(());
    }
    update(kv, stream, |count| {
        count.settle(reserved.id, created);
        true
    })
    .await
}

/// The count's epoch, read before deleting rule keys (`None`: no count yet).
pub async fn epoch(kv: &kv::Store, stream: &StreamKey) -> Result<Option<u64>, ClusterError> {
    Ok(match read(kv, &count_key(stream)).await? {
        Stored::Count(count, _) => Some(count.epoch),
        Stored::Missing | Stored::Undecodable(_) => None,
    })
}

/// Frees the slots of `deleted` rule keys deleted after [`epoch`] returned `epoch`.
pub async fn release(
    kv: &kv::Store,
    stream: &StreamKey,
    epoch: Option<u64>,
    deleted: u64,
) -> Result<(), ClusterError> {
    // No count before the delete: whoever makes one counts the keys left.
    let Some(epoch) = epoch else {
        return Ok(());
    };
    if deleted == 0 {
        return Ok(());
    }
    update(kv, stream, |count| count.release(deleted, epoch)).await
}

/// Forgets a deleted stream's count.
pub async fn remove(kv: &kv::Store, stream: &StreamKey) -> Result<(), ClusterError> {
    kv.delete(count_key(stream))
        .await
        .map_err(|e| ClusterError(format!("deleting a rule count: {e}")))
}

/// Applies `change` to the stream's count by compare-and-set (nothing when there is no
/// count, or `change` changes nothing).
async fn update(
    kv: &kv::Store,
    stream: &StreamKey,
    change: impl Fn(&mut RuleCount) -> bool,
) -> Result<(), ClusterError> {
    let key = count_key(stream);
    for attempt in 0..ATTEMPTS {
        let Stored::Count(mut count, revision) = read(kv, &key).await? else {
            return Ok(());
        };
        if !change(&mut count) {
            return Ok(());
        }
        match write(kv, &key, &count, Some(revision)).await? {
            Written::Done(_) => return Ok(()),
            Written::Conflict => back_off(attempt).await,
        }
    }
    Err(ClusterError(format!(
        "the rule count of {key} stayed contended"
    )))
}

/// A count key's content.
enum Stored {
    /// Absent or deleted.
    Missing,
    /// Holds something else, at this revision.
    Undecodable(u64),
    /// The count at this revision.
    Count(RuleCount, u64),
}

/// Reads a count key (a value that is not a count reads as [`Stored::Undecodable`], to
/// be replaced by a recount).
async fn read(kv: &kv::Store, key: &str) -> Result<Stored, ClusterError> {
    let entry = kv
        .entry(key)
        .await
        .map_err(|e| ClusterError(format!("reading a rule count: {e}")))?;
    Ok(match entry {
        Some(entry) if entry.operation == Operation::Put => {
            match serde_json::from_slice(&entry.value) {
                Ok(count) => Stored::Count(count, entry.revision),
                Err(e) => {
                    tracing::warn!(key, "undecodable rule count, recounting: {e}");
                    Stored::Undecodable(entry.revision)
                }
            }
        }
        _ => Stored::Missing,
    })
}

/// How a compare-and-set went.
enum Written {
    /// Stored, at this revision.
    Done(u64),
    /// Another node changed the key first.
    Conflict,
}

/// Writes `count` if the key is still at `revision` (`None`: still absent or deleted).
async fn write(
    kv: &kv::Store,
    key: &str,
    count: &RuleCount,
    revision: Option<u64>,
) -> Result<Written, ClusterError> {
    let value = Bytes::from(serde_json::to_vec(count).expect("counts serialize to JSON"));
    let fail = |e: &dyn std::fmt::Display| ClusterError(format!("writing a rule count: {e}"));
    match revision {
        Some(revision) => match kv.update(key, value, revision).await {
            Ok(revision) => Ok(Written::Done(revision)),
            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => Ok(Written::Conflict),
            Err(e) => Err(fail(&e)),
        },
        None => match kv.create(key, value).await {
            Ok(revision) => Ok(Written::Done(revision)),
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => Ok(Written::Conflict),
            Err(e) => Err(fail(&e)),
        },
    }
}

/// A short random pause after a lost compare-and-set, growing with the attempts, so that
/// nodes racing for one count spread out.
async fn back_off(attempt: u32) {
    let ceiling = 200 * u64::from(attempt.min(25) + 1);
    tokio::time::sleep(Duration::from_micros(rand::random_range(0..ceiling))).await;
}

/// The keys of the stream's rules in the bucket now, deleted ones left out.
pub async fn rule_keys(
    kv: &kv::Store,
    client: &async_nats::Client,
    stream: &StreamKey,
) -> Result<HashSet<String>, ClusterError> {
    key_scan::keys_under(kv, client, &rule_prefix(stream), "counting rules").await
}

/// The rules holding some of `keys` among the `live` rule keys (read a bounded number at
/// a time), in the order of `keys`.
async fn holders(
    kv: &kv::Store,
    keys: &[String],
    live: &HashSet<String>,
) -> Result<Vec<Taken>, ClusterError> {
    let reads: Vec<_> = keys
        .iter()
        .enumerate()
        .filter(|(_, key)| live.contains(*key))
        .map(|(index, key)| holder(kv, index, key))
        .collect();
    let found: Vec<Option<Taken>> = futures_util::stream::iter(reads)
        .buffered(CONCURRENT_READS)
        .try_collect()
        .await?;
    Ok(found.into_iter().flatten().collect())
}

/// The rule holding `key` (the add's `index`th), if any.
async fn holder(kv: &kv::Store, index: usize, key: &str) -> Result<Option<Taken>, ClusterError> {
    // Deleted since the scan (or unreadable): the add creates it, with a slot.
    Ok(rule_at(kv, key).await?.map(|(held, _)| Taken {
        index,
        rule: held.rule,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(rules: u64) -> RuleCount {
        RuleCount {
            rules,
            ..RuleCount::default()
        }
    }

    #[test]
    fn reservations_fill_up_to_the_cap_and_no_further() {
        let mut c = count(2);
        assert!(c.reserve(1, 4, 0, 10));
        assert!(c.reserve(2, 4, 0, 10));
        assert_eq!(c.used(), 10);
        assert!(!c.reserve(3, 1, 0, 10));
        assert_eq!(c.pending.len(), 2, "a refused reservation leaves no trace");
        // Nothing reserved fits even a full stream.
        assert!(c.reserve(4, 0, 0, 10));
    }

    #[test]
    fn settling_counts_what_was_created_and_frees_the_rest() {
        let mut c = count(2);
        assert!(c.reserve(7, 4, 0, 10));
        c.settle(7, 3);
        assert_eq!(c, count(5));
        // A reservation a recount dropped still counts its rules (possibly twice).
        c.settle(99, 1);
        assert_eq!(c.rules, 6);
    }

    #[test]
    fn releases_free_slots_only_within_the_epoch_they_were_read_in() {
        let mut c = count(5);
        assert!(c.release(2, 0));
        assert_eq!(c.rules, 3);
        c.recounted(3, 0);
        assert!(
            !c.release(1, 0),
            "a recount happened since the epoch was read"
        );
        assert_eq!(c.rules, 3);
        assert!(c.release(9, 1));
        assert_eq!(c.rules, 0, "never below zero");
        assert!(!c.release(0, 1));
    }

    #[test]
    fn a_recount_keeps_adds_in_flight_and_drops_dead_ones() {
        let mut c = count(9);
        assert!(c.reserve(1, 4, 1_000, 100));
        assert!(c.reserve(2, 2, 1_000 + RESERVATION_TTL_MS, 100));
        c.recounted(3, 1_000 + RESERVATION_TTL_MS);
        assert_eq!(c.rules, 3);
        assert_eq!(c.epoch, 1);
        assert_eq!(c.pending.iter().map(|r| r.id).collect::<Vec<_>>(), [2]);
        assert_eq!(c.used(), 5);
    }

    #[test]
    fn counts_round_trip_through_json_and_old_values_read() {
        let mut c = count(4);
        assert!(c.reserve(3, 2, 5, 10));
        let bytes = serde_json::to_vec(&c).unwrap();
        assert_eq!(serde_json::from_slice::<RuleCount>(&bytes).unwrap(), c);
        let bare: RuleCount = serde_json::from_str(r#"{"rules":4,"epoch":2}"#).unwrap();
        assert_eq!(bare.used(), 4);
    }

    #[test]
    fn new_counts_start_at_random_epochs() {
        // A count deleted and made again must not meet deletes that read the old one's
        // epoch with the same epoch.
        let epochs: HashSet<u64> = (0..8).map(|_| RuleCount::fresh().epoch).collect();
        assert_eq!(epochs.len(), 8);
        assert_eq!(RuleCount::fresh().used(), 0);
    }
}
