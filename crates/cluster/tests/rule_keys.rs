//! Recording rule changes in the state bucket against a real `nats-server` (each test
//! starts its own; skipped with a notice when `nats-server` is not installed): rule keys
//! and the stream's rule count, without nodes.

use async_nats::jetstream::kv;
use sluice_cluster::names::{count_key, rule_key};
use sluice_cluster::rule_cap::{self, RuleCount};
use sluice_cluster::shared_state;
use sluice_server::cluster::{Change, Recorded, RuleRecord, StreamKey};
use sluice_store::StoredRule;
use sluice_testkit::Nats;

/// A connection to the test's NATS and its state bucket.
struct Bucket {
    client: async_nats::Client,
    kv: kv::Store,
}

impl Bucket {
    async fn open(nats: &Nats) -> Bucket {
        let client = async_nats::connect(nats.url()).await.unwrap();
        let js = async_nats::jetstream::new(client.clone());
        let kv = shared_state::bucket(&js).await.unwrap();
        Bucket { client, kv }
    }

    async fn add(&self, stream: &StreamKey, rules: &[RuleRecord]) -> Recorded {
        let change = Change::AddRules {
            stream: stream.clone(),
            rules: rules.to_vec(),
            max_rules: Some(1_000_000),
        };
        shared_state::record(&self.kv, &self.client, change)
            .await
            .unwrap()
    }

    async fn delete(&self, stream: &StreamKey, rules: &[RuleRecord]) {
        let change = Change::DeleteRules {
            stream: stream.clone(),
            rules: rules.to_vec(),
        };
        shared_state::record(&self.kv, &self.client, change)
            .await
            .unwrap();
    }

    /// The stream's count as stored (`None`: no count).
    async fn count(&self, stream: &StreamKey) -> Option<RuleCount> {
        let entry = self.kv.entry(count_key(stream)).await.unwrap()?;
        if entry.operation != kv::Operation::Put {
            return None;
        }
        Some(serde_json::from_slice(&entry.value).unwrap())
    }

    /// The stream's rule keys now.
    async fn keys(&self, stream: &StreamKey) -> usize {
        rule_cap::rule_keys(&self.kv, &self.client, stream)
            .await
            .unwrap()
            .len()
    }

    /// The id of the rule holding `value` (`None`: no rule holds it).
    async fn holder(&self, stream: &StreamKey, value: &str) -> Option<u64> {
        let entry = self.kv.entry(rule_key(stream, value)).await.unwrap()?;
        if entry.operation != kv::Operation::Put {
            return None;
        }
        let held: serde_json::Value = serde_json::from_slice(&entry.value).unwrap();
        held["rule"]["id"].as_u64()
    }
}

fn stream(label: &str) -> StreamKey {
    StreamKey {
        account: "acme".into(),
        product: "powertrack".into(),
        label: label.into(),
    }
}

fn rule(id: u64, value: &str) -> RuleRecord {
    RuleRecord {
        id,
        value: value.into(),
        tag: None,
        created_ms: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_add_keeps_its_order_and_count_and_a_delete_frees_only_its_own_keys() {
    let nats = Nats::start();
    let bucket = Bucket::open(&nats).await;
    let s = stream("prod");
    // Another node's rules hold three of the values already.
    let others = [rule(5_001, "v5"), rule(5_002, "v100"), rule(5_003, "v200")];
    bucket.add(&s, &others).await;
    let mine: Vec<RuleRecord> = (0..250).map(|i| rule(i + 1, &format!("v{i}"))).collect();
    let recorded = bucket.add(&s, &mine).await;
    let expected: Vec<StoredRule> = others.iter().cloned().map(StoredRule::from).collect();
    assert_eq!(
        recorded.existing_rules, expected,
        "the existing rules, in the add's order"
    );
    assert_eq!(bucket.keys(&s).await, 250);
    assert_eq!(bucket.count(&s).await.unwrap().used(), 250);

    // Deleting all of "mine" leaves the three values other rules hold.
    bucket.delete(&s, &mine).await;
    assert_eq!(bucket.keys(&s).await, 3);
    assert_eq!(bucket.count(&s).await.unwrap().used(), 3);
    assert_eq!(bucket.holder(&s, "v100").await, Some(5_002));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_from_a_node_that_has_not_seen_a_re_add_leaves_the_newer_rule() {
    let nats = Nats::start();
    let bucket = Bucket::open(&nats).await;
    let s = stream("prod");
    bucket.add(&s, &[rule(1, "cats")]).await;
    bucket.delete(&s, &[rule(1, "cats")]).await;
    // Another node adds the value again, with a new rule.
    bucket.add(&s, &[rule(2, "cats")]).await;
    // A node that missed both still has rule 1 and deletes it (by id or by value).
    bucket.delete(&s, &[rule(1, "cats")]).await;
    assert_eq!(bucket.holder(&s, "cats").await, Some(2));
    assert_eq!(bucket.count(&s).await.unwrap().used(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rule_key_an_earlier_failed_attempt_stored_counts_as_created() {
    let nats = Nats::start();
    let bucket = Bucket::open(&nats).await;
    let s = stream("prod");
    bucket.add(&s, &[rule(1, "first")]).await;
    // A create of rule 2 that timed out was stored all the same: the add finds its own
    // rule when it reads the key.
    let entry = serde_json::json!({
        "stream": s,
        "rule": rule(2, "second"),
    });
    bucket
        .kv
        .create(
            rule_key(&s, "second"),
            serde_json::to_vec(&entry).unwrap().into(),
        )
        .await
        .unwrap();
    let recorded = bucket.add(&s, &[rule(2, "second")]).await;
    assert!(recorded.existing_rules.is_empty(), "the rule is ours");
    let count = bucket.count(&s).await.unwrap();
    assert_eq!(count.used(), 2, "counted, never below the keys: {count:?}");
    assert_eq!(bucket.keys(&s).await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_read_before_the_count_was_made_again_frees_nothing() {
    let nats = Nats::start();
    let bucket = Bucket::open(&nats).await;
    let s = stream("prod");
    bucket.add(&s, &[rule(1, "one")]).await;
    // A delete reads the epoch, then stalls; meanwhile the count is deleted and made
    // again (recounting the keys), and the delete's key never went.
    let stale = rule_cap::epoch(&bucket.kv, &s).await.unwrap();
    assert!(stale.is_some());
    rule_cap::remove(&bucket.kv, &s).await.unwrap();
    bucket.add(&s, &[rule(2, "two")]).await;
    assert_eq!(bucket.count(&s).await.unwrap().used(), 2);
    rule_cap::release(&bucket.kv, &s, stale, 1).await.unwrap();
    assert_eq!(
        bucket.count(&s).await.unwrap().used(),
        2,
        "the new count never counted a slot for that delete"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_stream_deletes_its_rule_keys_and_count_and_no_others() {
    let nats = Nats::start();
    let bucket = Bucket::open(&nats).await;
    let (gone, kept) = (stream("gone"), stream("kept"));
    let rules: Vec<RuleRecord> = (0..100).map(|i| rule(i + 1, &format!("r{i}"))).collect();
    bucket.add(&gone, &rules).await;
    bucket.add(&kept, &rules[..10]).await;
    let change = Change::DeleteStream {
        stream: gone.clone(),
    };
    shared_state::record(&bucket.kv, &bucket.client, change)
        .await
        .unwrap();
    assert_eq!(bucket.keys(&gone).await, 0);
    assert!(bucket.count(&gone).await.is_none());
    assert_eq!(bucket.keys(&kept).await, 10);
    assert_eq!(bucket.count(&kept).await.unwrap().used(), 10);
}
