//! Cluster mode: two nodes run the same source against the testkit's private nats-server;
//! only the lease holder consumes; when it dies (its task dropped: no release, no more
//! renewals) the other takes the lease once it expires and resumes from the cursor the
//! holder saved in the shared bucket, so no post is lost.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;
use sluice_cluster::source_lease::{LEASE_EXPIRES, SourceLeases};
use sluice_source::backoff::Backoff;
use sluice_source::batch::Limits;
use sluice_source::consumer::Config;
use sluice_source::jetstream::subscribe;
use sluice_source::leased;
use sluice_source::sink::{Acknowledged, Sink, SinkError};
use sluice_testkit::jetstream_events as events;
use sluice_testkit::{FakeJetstream, Nats};
use tokio_util::sync::CancellationToken;

const ALICE: &str = "did:plc:alice";
const T0: u64 = 1_733_011_200_000_000;
const SECOND: u64 = 1_000_000;

fn t(i: u64) -> u64 {
    T0 + i * SECOND
}

fn post(i: u64) -> Vec<u8> {
    events::post(ALICE, t(i), &format!("hello number {i}"), "en")
}

fn id(i: u64) -> u64 {
    sluice_bluesky::post_id(ALICE, &events::post_rkey(t(i)))
}

/// A sink that keeps the ids of the posts it is given.
#[derive(Clone, Default)]
struct Ids(Arc<Mutex<Vec<u64>>>);

impl Ids {
    fn get(&self) -> Vec<u64> {
        self.0.lock().unwrap().clone()
    }
}

impl Sink for Ids {
    async fn deliver(&mut self, body: Bytes) -> Result<Acknowledged, SinkError> {
        let mut ids = self.0.lock().unwrap();
        let mut accepted = 0;
        for line in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            let post: Value = serde_json::from_slice(line).unwrap();
            ids.push(post["id_str"].as_str().unwrap().parse().unwrap());
            accepted += 1;
        }
        Ok(Acknowledged {
            accepted,
            rejected: Vec::new(),
        })
    }
}

fn config(fake: &FakeJetstream) -> Config {
    let mut config = Config::new(subscribe::instance(&fake.url()).unwrap());
    config.limits = Limits {
        max_lines: 1_000,
        max_wait: Duration::from_millis(20),
    };
    config.backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(100));
    config
}

async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn one_node_consumes_and_another_takes_over_from_its_cursor_when_it_dies() {
    let nats = Nats::start();
    let fake = FakeJetstream::start((0..5).map(post)).await;
    let mut nodes = Vec::new();
    for name in ["a", "b"] {
        let leases = SourceLeases::connect(&nats.url(), name).await.unwrap();
        let sink = Ids::default();
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let (config, mut sink, stop) = (config(&fake), sink.clone(), stop.clone());
            async move { leased::run(config, &mut sink, leases, "jetstream", stop).await }
        });
        nodes.push((sink, stop, task));
    }
    wait_until("the first five posts", Duration::from_secs(10), || {
        nodes
            .iter()
            .map(|(sink, ..)| sink.get().len())
            .sum::<usize>()
            >= 5
    })
    .await;
    // Renewals keep the lease with its holder: nobody else connects meanwhile.
    tokio::time::sleep(LEASE_EXPIRES / 2).await;
    assert_eq!(fake.sessions().len(), 1, "one node consumes");
    let holder = nodes
        .iter()
        .position(|(sink, ..)| !sink.get().is_empty())
        .unwrap();
    assert_eq!(nodes[holder].0.get(), (0..5).map(id).collect::<Vec<_>>());
    let leases = SourceLeases::connect(&nats.url(), "observer")
        .await
        .unwrap();
    assert_eq!(leases.cursor("jetstream").await.unwrap(), Some(t(4)));

    // The holder dies: its task ends without releasing the lease.
    let (dead_sink, _, dead) = nodes.remove(holder);
    dead.abort();
    let _ = dead.await;
    let died = Instant::now();
    for i in 5..8 {
        fake.push(&post(i));
    }
    let (taker, stop, task) = nodes.remove(0);
    wait_until(
        "the other node to take over",
        LEASE_EXPIRES + Duration::from_secs(10),
        || taker.get().contains(&id(7)),
    )
    .await;
    assert!(
        died.elapsed() >= LEASE_EXPIRES - Duration::from_secs(4),
        "taken over before the lease could have expired"
    );
    let sessions = fake.sessions();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[1].cursor, Some(t(4) - 5 * SECOND));
    // Nothing lost: every post reached one node or the other (the overlap's repeats are
    // ingest's to drop).
    let all: BTreeSet<u64> = dead_sink.get().into_iter().chain(taker.get()).collect();
    assert_eq!(all, (0..8).map(id).collect());
    stop.cancel();
    task.await.unwrap().unwrap();
    // A stopping holder gives the lease up at once.
    assert!(leases.try_take("jetstream").await.unwrap().is_some());
    assert_eq!(leases.cursor("jetstream").await.unwrap(), Some(t(7)));
}
