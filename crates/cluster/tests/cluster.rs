//! Cluster mode against a real `nats-server` (each test starts its own; skipped with a
//! notice when `nats-server` is not installed).

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sluice_server::cluster::Cluster as _;
use sluice_testkit as common;
use sluice_testkit::id_of;
use sluice_testkit::{Killable, Nats, Node, eventually, post, read_log, rule_id, rule_ids};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rules_added_on_one_node_match_posts_ingested_on_another_on_every_node() {
    let nats = Nats::start();
    let a = Node::start(&nats, "east").await;
    let b = Node::start(&nats, "east").await;
    let c = Node::start(&nats, "west").await;
    a.provision().await;
    // The account, user and stream made on `a` reach the other nodes.
    eventually("the stream reaches b and c", || async {
        b.state.registry.all().len() == 1 && c.state.registry.all().len() == 1
    })
    .await;

    let id = b.add_rule("cats", "pets").await;
    // Acknowledged on b: listed everywhere, with b's id.
    for node in [&a, &c] {
        eventually("the rule reaches every node", || async {
            node.rules().await.iter().any(|r| rule_id(r) == id)
        })
        .await;
    }
    let mut streams = vec![
        a.connect("").await,
        b.connect("").await,
        c.connect("").await,
    ];
    let (status, body) = c
        .ingest(&format!(
            "{}\n{}\n",
            post(1, "dogs only"),
            post(2, "cats rule")
        ))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["accepted"], 2);
    for stream in &mut streams {
        let message = stream.next_message().await;
        assert_eq!(id_of(&message), 2);
        assert_eq!(message["matching_rules"][0]["tag"], "pets");
    }
    // The cluster's own work is visible to the operator.
    let metrics = a.metrics().await;
    for name in [
        "sluice_cluster_posts_consumed_total",
        "sluice_cluster_changes_applied_total{outcome=\"ok\"}",
        "sluice_rules_indexed",
        "sluice_ready",
    ] {
        assert!(metrics.contains(name), "{name} missing from {metrics}");
    }
    a.stop().await;
    b.stop().await;
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rule_acknowledged_on_one_node_is_matched_on_another_within_100_ms() {
    let nats = Nats::start();
    let a = Node::start(&nats, "dc1").await;
    let b = Node::start(&nats, "dc1").await;
    a.provision().await;
    eventually("the stream reaches b", || async {
        b.state.registry.all().len() == 1
    })
    .await;
    let live = b.state.registry.all().pop().unwrap();
    a.add_rule("fast", "t").await;
    let acked = Instant::now();
    while live.rules.is_empty() {
        tokio::time::sleep(Duration::from_millis(1)).await;
        assert!(
            acked.elapsed() < Duration::from_millis(100),
            "rule not in effect on b within 100 ms"
        );
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_that_starts_later_has_the_whole_state_once_it_reports_ready() {
    let nats = Nats::start();
    let a = Node::start(&nats, "dc1").await;
    a.provision().await;
    let first = a.add_rule("alpha", "a").await;
    let second = a.add_rule("beta", "b").await;
    // Node::start returns once /healthz says 200: no waiting after that.
    let late = Node::start(&nats, "dc1").await;
    assert_eq!(rule_ids(&late.rules().await), [first, second]);
    let mut stream = late.connect("").await;
    a.ingest(&post(7, "beta test")).await;
    assert_eq!(id_of(&stream.next_message().await), 7);
    // Rule ids never collide: every node leases its own worker id.
    assert_ne!(a.cluster.worker_id(), late.cluster.worker_id());
    a.stop().await;
    late.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_value_added_on_two_nodes_at_once_becomes_one_rule() {
    let nats = Nats::start();
    let a = Node::start(&nats, "dc1").await;
    let b = Node::start(&nats, "dc1").await;
    a.provision().await;
    eventually("the stream reaches b", || async {
        b.state.registry.all().len() == 1
    })
    .await;
    for round in 0..5 {
        let value = format!("race{round}");
        let (x, y) = tokio::join!(a.add_rule(&value, "a"), b.add_rule(&value, "b"));
        assert_eq!(x, y, "both adds name one rule");
        for node in [&a, &b] {
            eventually("both nodes hold exactly the winner", || async {
                let rules = node.rules().await;
                let same: Vec<_> = rules
                    .iter()
                    .filter(|r| r["value"] == value.as_str())
                    .collect();
                same.len() == 1 && rule_id(same[0]) == x
            })
            .await;
        }
    }
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn posts_keep_their_origin_datacenter_across_nodes() {
    let nats = Nats::start();
    let east = Node::start(&nats, "east").await;
    let west = Node::start(&nats, "west").await;
    // Posts keep their origin datacenter on the way through JetStream: west logs (and
    // matches) each with the datacenter it was ingested for, wherever that was.
    east.ingest(&post(11, "from east")).await;
    let response = west
        .http
        .post(format!("{}/ingest?datacenter=east", west.base))
        .bearer_auth(common::ADMIN)
        .body(post(12, "also east"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    west.ingest(&post(13, "from west")).await;
    let log = west.state.post_log.clone();
    eventually("west logged all three", || async {
        read_log(log.clone(), 0, 10).await.len() == 3
    })
    .await;
    let mut seen: Vec<(u64, String)> = read_log(log.clone(), 0, 10)
        .await
        .iter()
        .map(|p| {
            let post: serde_json::Value = serde_json::from_slice(&p.bytes).unwrap();
            (post["id"].as_u64().unwrap(), p.datacenter.to_string())
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (11, "east".into()),
            (12, "east".into()),
            (13, "west".into())
        ]
    );
    east.stop().await;
    west.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backfill_on_another_node_returns_posts_ingested_elsewhere() {
    let nats = Nats::start();
    let a = Node::start(&nats, "dc1").await;
    let b = Node::start(&nats, "dc1").await;
    a.provision().await;
    a.add_rule("news", "n").await;
    eventually("the rule reaches b", || async {
        b.rules().await.len() == 1
    })
    .await;
    let (status, _) = a
        .ingest(&format!(
            "{}\n{}\n",
            post(21, "news one"),
            post(22, "news two")
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    let mut stream = b.connect("?backfillMinutes=1").await;
    let ids = [
        id_of(&stream.next_message().await),
        id_of(&stream.next_message().await),
    ];
    assert_eq!(ids, [21, 22]);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_posted_duplicate_id_is_delivered_once() {
    let nats = Nats::start();
    let a = Node::start(&nats, "dc1").await;
    let b = Node::start(&nats, "dc1").await;
    a.provision().await;
    a.add_rule("dup", "d").await;
    eventually("the rule reaches b", || async {
        b.rules().await.len() == 1
    })
    .await;
    let mut stream = b.connect("").await;
    a.ingest(&post(31, "dup")).await;
    b.ingest(&post(31, "dup")).await;
    a.ingest(&post(32, "dup")).await;
    assert_eq!(id_of(&stream.next_message().await), 31);
    assert_eq!(id_of(&stream.next_message().await), 32);
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ingest_answers_once_jetstream_holds_the_posts_and_stores_a_repeated_id_once() {
    let nats = Nats::start();
    let a = Node::start(&nats, "dc1").await;
    a.provision().await;
    let logged_ids = || async {
        read_log(a.state.post_log.clone(), 0, 100)
            .await
            .iter()
            .map(|p| serde_json::from_slice::<serde_json::Value>(&p.bytes).unwrap()["id"].clone())
            .collect::<Vec<_>>()
    };
    // A repeated line of one body: both accepted, stored once.
    let body = [post(71, "one"), post(72, "two"), post(71, "one")].join("\n");
    let (status, answer) = a.ingest(&body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["accepted"], 3);
    // Read at once, without waiting: the answer came after JetStream stored every post.
    assert_eq!(logged_ids().await, [71, 72]);
    // The same id in a later body.
    let (status, answer) = a.ingest(&post(72, "two")).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["accepted"], 1);
    assert_eq!(logged_ids().await, [71, 72]);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nodes_survive_a_nats_restart_and_lose_nothing_acknowledged() {
    let mut nats = Nats::start();
    let a = Node::start(&nats, "dc1").await;
    let b = Node::start(&nats, "dc1").await;
    a.provision().await;
    let rule = a.add_rule("keep", "k").await;
    eventually("the rule reaches b", || async {
        b.rules().await.len() == 1
    })
    .await;
    let mut stream = b.connect("").await;
    a.ingest(&post(41, "keep before")).await;
    assert_eq!(id_of(&stream.next_message().await), 41);

    let t = Instant::now();
    nats.kill();
    eventually("a says it lost NATS", || async {
        let (status, body) = a.health().await;
        status == StatusCode::SERVICE_UNAVAILABLE && body["reason"] == "NATS connection lost"
    })
    .await;
    // Nothing is accepted that JetStream did not acknowledge.
    let (status, _) = a.ingest(&post(42, "keep during")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);

    nats.restart();
    a.wait_ready().await;
    b.wait_ready().await;
    // The acknowledged rule survived; b's client kept streaming and gets new posts.
    assert_eq!(a.rules().await.len(), 1);
    assert!(rule_ids(&b.rules().await).contains(&rule));
    eventually("ingest works again", || async {
        a.ingest(&post(43, "keep after")).await.0 == StatusCode::OK
    })
    .await;
    assert_eq!(id_of(&stream.next_message().await), 43);
    // Rules added after the outage replicate too.
    let later = b.add_rule("after", "x").await;
    eventually("the new rule reaches a", || async {
        rule_ids(&a.rules().await).contains(&later)
    })
    .await;
    // Within seconds, not after the client library's own slow recovery.
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "recovery took {:?}",
        t.elapsed()
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn backfill_on_a_node_started_later_returns_posts_ingested_before_it_started() {
    let nats = Nats::start();
    let a = Node::start(&nats, "dc1").await;
    a.provision().await;
    a.add_rule("early", "e").await;
    let (status, _) = a
        .ingest(&format!(
            "{}\n{}\n{}\n",
            post(51, "early one"),
            post(52, "not matching"),
            post(53, "early two")
        ))
        .await;
    assert_eq!(status, StatusCode::OK);
    // b did not exist when the posts were acknowledged.
    let b = Node::start(&nats, "dc1").await;
    let mut stream = b.connect("?backfillMinutes=1").await;
    assert_eq!(id_of(&stream.next_message().await), 51);
    assert_eq!(id_of(&stream.next_message().await), 53);
    // Then live: a post ingested on a reaches b's backfilled connection.
    a.ingest(&post(54, "early three")).await;
    assert_eq!(id_of(&stream.next_message().await), 54);
    // b's log is the shared one: every post, with its stream sequence and time.
    let logged = read_log(b.state.post_log.clone(), 0, 10).await;
    assert_eq!(logged.len(), 4);
    assert!(logged.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    assert!(
        logged
            .windows(2)
            .all(|w| w[1].appended_ms >= w[0].appended_ms)
    );
    a.stop().await;
    b.stop().await;
}

/// Compliance events travel with the posts: a node that starts after a delete still
/// leaves the deleted post out of backfill, and an event ingested on one node reaches the
/// compliance firehose of another.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_started_after_a_delete_leaves_the_deleted_post_out_of_backfill() {
    let nats = Nats::start();
    let a = Node::start(&nats, "dc1").await;
    a.provision().await;
    a.add_rule("early", "e").await;
    let delete = serde_json::json!({"delete": {"status": {"id": 62, "id_str": "62",
        "user_id": 12, "user_id_str": "12"}, "timestamp_ms": "1432228155593"}});
    let (status, body) = a
        .ingest(&format!(
            "{}\n{}\n{}\n{delete}\n",
            post(61, "early one"),
            post(62, "early two"),
            post(63, "early three"),
        ))
        .await;
    assert_eq!(
        (status, body["accepted"].as_u64()),
        (StatusCode::OK, Some(4))
    );
    let b = Node::start(&nats, "dc1").await;
    let mut stream = b.connect("?backfillMinutes=1").await;
    assert_eq!(id_of(&stream.next_message().await), 61);
    assert_eq!(id_of(&stream.next_message().await), 63);

    // The compliance firehose of b gets an event ingested on a, on the post's partition.
    let (status, _) = b
        .admin(
            reqwest::Method::PUT,
            "/admin/accounts/acme/streams/prod",
            serde_json::json!({"product": "compliance"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let partition = sluice_model::sampling::partition(64, 8);
    let response = b
        .http
        .get(format!(
            "{}/stream/compliance/accounts/acme/publishers/twitter/prod.json?partition={partition}",
            b.base
        ))
        .basic_auth("alice", Some("secret"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut compliance = sluice_testkit::StreamClient::new(response);
    let later = delete.to_string().replace("62", "64");
    a.ingest(&later).await;
    assert_eq!(
        compliance.next_message().await["delete"]["status"]["id_str"],
        "64"
    );
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_node_restarts_with_the_state_and_its_clients_get_every_acknowledged_post() {
    let nats = Nats::start();
    let dir = tempfile::tempdir().unwrap();
    let a = Killable::start_in(&nats, "dc1", dir.path()).await;
    let b = Node::start(&nats, "dc1").await;
    a.node.provision().await;
    let first = a.node.add_rule("crash", "c").await;
    eventually("the rule reaches b", || async {
        b.rules().await.len() == 1
    })
    .await;
    let mut before = a.node.connect("").await;
    b.ingest(&post(61, "crash before")).await;
    assert_eq!(id_of(&before.next_message().await), 61);

    // The client of the dead node loses its connection (it would reconnect to another
    // node or to the restarted one).
    drop(before);
    let dead = a.node.base.clone();
    a.kill();
    assert!(
        reqwest::get(format!("{dead}/healthz")).await.is_err(),
        "the killed node still answers"
    );
    // While a is dead, b acknowledges a rule and posts.
    let second = b.add_rule("down", "d").await;
    let (status, _) = b
        .ingest(&format!(
            "{}\n{}\n",
            post(62, "crash during"),
            post(63, "down during")
        ))
        .await;
    assert_eq!(status, StatusCode::OK);

    // Restarted on the same data dir: ready only with the whole state, including what
    // changed while it was dead.
    let a = Node::start_in(&nats, "dc1", dir.path()).await;
    assert_eq!(rule_ids(&a.rules().await), [first, second]);
    // A client reconnecting with backfill gets every acknowledged post, then live ones.
    let mut after = a.connect("?backfillMinutes=1").await;
    let replayed = [
        id_of(&after.next_message().await),
        id_of(&after.next_message().await),
        id_of(&after.next_message().await),
    ];
    assert_eq!(replayed, [61, 62, 63]);
    b.ingest(&post(64, "down after")).await;
    assert_eq!(id_of(&after.next_message().await), 64);
    // And a rule added on the restarted node reaches b.
    let third = a.add_rule("again", "g").await;
    eventually("the new rule reaches b", || async {
        rule_ids(&b.rules().await).contains(&third)
    })
    .await;
    a.stop().await;
    b.stop().await;
}

/// X's body for an add refused by the rule cap: every submitted rule, none created.
fn rule_limit_body(values: &[String]) -> serde_json::Value {
    let limit = "Request exceeds account's Rule Limit. Delete rules or contact your account manager to proceed.";
    let detail: Vec<_> = values
        .iter()
        .map(|v| {
            serde_json::json!({
                "rule": {"value": v, "tag": null},
                "created": false,
                "message": limit,
            })
        })
        .collect();
    serde_json::json!({
        "summary": {"created": 0, "not_created": values.len()},
        "detail": detail,
    })
}

/// Asserts a rule-cap refusal: 422 with X's body (its `sent` stamp aside).
fn assert_rule_limit(status: StatusCode, body: &serde_json::Value, values: &[String]) {
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let mut body = body.clone();
    assert!(body["sent"].is_string(), "{body}");
    body.as_object_mut().unwrap().remove("sent");
    assert_eq!(body, rule_limit_body(values));
}

fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_rule_cap_holds_across_nodes_adding_at_once() {
    let nats = Nats::start();
    let a = Node::start(&nats, "dc1").await;
    let b = Node::start(&nats, "dc1").await;
    let c = Node::start(&nats, "dc1").await;
    a.provision().await;
    a.set_max_rules(10).await;
    let nodes = [&a, &b, &c];
    for node in nodes {
        eventually("every node knows the cap", || async {
            node.max_rules() == Some(10)
        })
        .await;
    }

    for round in 0..3 {
        let batches = [
            values(&format!("r{round}a"), 4),
            values(&format!("r{round}b"), 4),
            values(&format!("r{round}c"), 4),
        ];
        // Each node alone would take its 4 (its store has seen at most the others'
        // rules that replicated already); together only two batches fit.
        let (x, y, z) = tokio::join!(
            a.add_rules(&batches[0]),
            b.add_rules(&batches[1]),
            c.add_rules(&batches[2])
        );
        let mut kept = Vec::new();
        for ((status, body), batch) in [x, y, z].iter().zip(&batches) {
            if *status == StatusCode::CREATED {
                assert_eq!(body["summary"]["created"], 4, "{body}");
                kept.extend(batch.iter().cloned());
            } else {
                assert_rule_limit(*status, body, batch);
            }
        }
        assert_eq!(kept.len(), 8, "round {round}: exactly two batches fit");
        kept.sort();
        for node in nodes {
            eventually("every node holds exactly the accepted rules", || async {
                node.rule_values().await == kept
            })
            .await;
        }
        // Deleting frees the slots for the next round (once every node has seen the
        // deletes, so that no node's own store refuses first).
        let (status, body) = a.delete_rules(&kept).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["summary"]["deleted"], 8, "{body}");
        for node in nodes {
            eventually("every node has seen the deletes", || async {
                node.rules().await.is_empty()
            })
            .await;
        }
    }

    // Up to the cap exactly, then no further, whichever node is asked.
    let (status, body) = a.add_rules(&values("fill", 10)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for node in nodes {
        eventually("every node holds the ten", || async {
            node.rules().await.len() == 10
        })
        .await;
    }
    let one = values("over", 1);
    for node in nodes {
        let (status, body) = node.add_rules(&one).await;
        assert_rule_limit(status, &body, &one);
    }
    // Deleting on one node frees slots on another.
    let (status, _) = c.delete_rules(&values("fill", 4)).await;
    assert_eq!(status, StatusCode::OK);
    eventually("b has seen the deletes", || async {
        b.rules().await.len() == 6
    })
    .await;
    let (status, body) = b.add_rules(&values("again", 4)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for node in nodes {
        eventually("every node holds ten again", || async {
            node.rules().await.len() == 10
        })
        .await;
    }
    a.stop().await;
    b.stop().await;
    c.stop().await;
}

/// Writes the rule count of `acme`'s PowerTrack stream `prod` as a node would find it.
async fn write_count(nats: &Nats, count: Option<serde_json::Value>) {
    let client = async_nats::connect(nats.url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let kv = sluice_cluster::shared_state::bucket(&js).await.unwrap();
    let key = sluice_cluster::names::count_key(&sluice_server::cluster::StreamKey {
        account: "acme".into(),
        product: "powertrack".into(),
        label: "prod".into(),
    });
    match count {
        Some(count) => {
            kv.put(key, serde_json::to_vec(&count).unwrap().into())
                .await
                .unwrap();
        }
        None => kv.delete(key).await.unwrap(),
    }
}

fn now_ms() -> i64 {
    sluice_server::clock::now_ms()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rule_count_that_drifted_or_is_missing_costs_a_recount_never_a_refusal() {
    let nats = Nats::start();
    let a = Node::start(&nats, "dc1").await;
    a.provision().await;
    a.set_max_rules(10).await;
    let (status, _) = a.add_rules(&values("base", 3)).await;
    assert_eq!(status, StatusCode::CREATED);

    // Too high: a node died holding a reservation (a minute old) and another between
    // deleting rules and freeing their slots.
    let dead = serde_json::json!({
        "rules": 9, "epoch": 0,
        "pending": [{"id": 1, "slots": 5, "at_ms": now_ms() - 120_000}],
    });
    write_count(&nats, Some(dead)).await;
    let (status, body) = a.add_rules(&values("more", 7)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let one = values("over", 1);
    let (status, body) = a.add_rules(&one).await;
    assert_rule_limit(status, &body, &one);

    // Missing, as in a bucket an older version wrote: counted from the rule keys.
    let (status, _) = a.delete_rules(&values("more", 2)).await;
    assert_eq!(status, StatusCode::OK);
    write_count(&nats, None).await;
    let (status, body) = a.add_rules(&values("late", 2)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = a.add_rules(&one).await;
    assert_rule_limit(status, &body, &one);

    // A fresh reservation is an add in flight on another node: a recount keeps it.
    let (status, _) = a.delete_rules(&values("late", 2)).await;
    assert_eq!(status, StatusCode::OK);
    let in_flight = serde_json::json!({
        "rules": 8, "epoch": 0,
        "pending": [{"id": 2, "slots": 2, "at_ms": now_ms()}],
    });
    write_count(&nats, Some(in_flight)).await;
    let (status, body) = a.add_rules(&one).await;
    assert_rule_limit(status, &body, &one);
    assert_eq!(a.rules().await.len(), 8, "the refused rule was taken back");
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_delete_that_cannot_be_recorded_leaves_the_rules_in_effect() {
    let mut nats = Nats::start();
    let a = Node::start(&nats, "dc1").await;
    a.provision().await;
    let (status, body) = a.add_rules(&values("keep", 3)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    nats.kill();
    eventually("a says it lost NATS", || async {
        a.health().await.0 == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    let (status, body) = a.delete_rules(&values("keep", 2)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    // Like every other node: listed and matching still.
    assert_eq!(a.rule_values().await, values("keep", 3));
    let live = a.state.registry.all().pop().unwrap();
    assert_eq!(live.rules.len(), 3, "the rules still match");

    nats.restart();
    a.wait_ready().await;
    eventually("the delete goes through once NATS is back", || async {
        a.delete_rules(&values("keep", 2)).await.0 == StatusCode::OK
    })
    .await;
    assert_eq!(a.rule_values().await, ["keep2"]);
    assert_eq!(live.rules.len(), 1);
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_change_that_cannot_be_recorded_changes_nothing_on_the_node() {
    let mut nats = Nats::start();
    let a = Node::start(&nats, "dc1").await;
    a.provision().await;

    nats.kill();
    eventually("a says it lost NATS", || async {
        a.health().await.0 == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    let (status, body) = a
        .admin(
            reqwest::Method::PUT,
            "/admin/accounts/acme/streams/dev",
            serde_json::json!({"product": "powertrack"}),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    let (status, body) = a
        .admin(
            reqwest::Method::PUT,
            "/admin/accounts/acme/users/bob",
            serde_json::json!({"password": "secret"}),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    // The backend is the source of truth: what it did not record, the node does not have.
    let streams = a.state.store.streams("acme").unwrap();
    assert_eq!(streams.len(), 1, "only prod: {streams:?}");
    assert_eq!(a.state.registry.all().len(), 1);
    assert_eq!(a.state.store.password_hash("acme", "bob").unwrap(), None);
    a.stop().await;
}

/// The node's health as the operator's console page gets it (signed in with the admin
/// token, from the console's origin).
async fn console_health(node: &Node) -> serde_json::Value {
    let signed_in = node
        .http
        .post(format!("{}/console/api/session", node.base))
        .header("origin", &node.base)
        .json(&serde_json::json!({ "admin_token": sluice_testkit::ADMIN }))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::OK);
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    node.http
        .get(format!("{}/console/api/admin/health", node.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_node_lists_the_running_members_and_a_stopped_one_leaves() {
    let nats = Nats::start();
    let a = Node::start(&nats, "east").await;
    let b = Node::start(&nats, "west").await;
    eventually("both nodes are members", || async {
        a.cluster.members().await.is_ok_and(|m| m.len() == 2)
    })
    .await;
    let members = b.cluster.members().await.unwrap();
    let described: Vec<(&str, &str, u16)> = members
        .iter()
        .map(|m| (m.datacenter.as_str(), m.public_url.as_str(), m.worker_id))
        .collect();
    assert_eq!(
        described,
        [
            ("east", a.base.as_str(), a.cluster.worker_id()),
            ("west", b.base.as_str(), b.cluster.worker_id()),
        ]
    );
    // The operator's node page shows them.
    let health = console_health(&a).await;
    assert_eq!(health["cluster"], true);
    assert_eq!(
        health["members"]["nodes"][1]["public_url"],
        b.base.as_str(),
        "{health}"
    );

    // A node's stop returns once it has taken itself off the list: no waiting for expiry.
    b.stop().await;
    let members = a.cluster.members().await.unwrap();
    assert_eq!(members.len(), 1, "{members:?}");
    assert_eq!(members[0].datacenter, "east");
    a.stop().await;
}
