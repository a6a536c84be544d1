//! Decahose and Firehose over real HTTP (docs/compatibility.md ("Decisions") "Partitions", "Sampling"; docs/compatibility.md §4):
//! partitions are disjoint and together carry the whole stream, the Decahose is the
//! deterministic 10 % sample, bad partitions are 406s naming the range, the connect limit
//! is 10 per 60 s per partition, and connection caps count per partition.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;
use sluice_model::sampling::{in_decahose, partition};
use sluice_server::Settings;
use sluice_testkit::{StreamClient, error_message, error_response, id_of};
use sluice_testkit::{TestServer, post};

const FIREHOSE: &str = "/stream/firehose/accounts/acme/publishers/twitter/prod.json";
const DECAHOSE: &str = "/stream/sample10/accounts/acme/publishers/twitter/prod.json";

/// Snowflake-like ids: a timestamp in the high bits.
fn ids(n: u64) -> Vec<u64> {
    (0..n)
        .map(|i| 1_700_000_000_000_000_000 + (i << 22) + i % 5)
        .collect()
}

fn ndjson(ids: &[u64]) -> String {
    ids.iter()
        .map(|&id| post(id, &format!("post number {id}")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Short heartbeats: a heartbeat after the last post proves nothing more is queued.
fn quick() -> Settings {
    Settings {
        heartbeat: Duration::from_millis(300),
        ..Settings::default()
    }
}

async fn started(product: &str, settings: Settings) -> TestServer {
    let server = TestServer::start(settings).await;
    server.provision(product).await;
    server
}

async fn connect(server: &TestServer, path_and_query: &str) -> StreamClient {
    let response = server.gnip_get(path_and_query).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path_and_query}");
    assert_eq!(response.headers()["x-rate-limit-limit"], "10");
    StreamClient::new(response)
}

/// Reads each client until it has `expected` posts and then a heartbeat; returns the ids
/// each received, in order.
async fn drain(clients: &mut [StreamClient], expected: &[usize]) -> Vec<Vec<u64>> {
    let mut received = Vec::new();
    for (client, &want) in clients.iter_mut().zip(expected) {
        let mut got = Vec::new();
        while got.len() < want {
            got.extend(client.until_heartbeat().await.iter().map(id_of));
        }
        // Anything else queued arrives before the next heartbeat.
        got.extend(client.until_heartbeat().await.iter().map(id_of));
        received.push(got);
    }
    received
}

#[tokio::test]
async fn firehose_partitions_are_disjoint_and_together_carry_every_post() {
    let server = started("firehose", quick()).await;
    // All 20 partitions of one stream at once, as X's client libraries connect: the
    // connect limit counts per partition.
    let mut clients = Vec::new();
    for p in 1..=20 {
        clients.push(connect(&server, &format!("{FIREHOSE}?partition={p}")).await);
    }
    let all = ids(400);
    server.ingest(&ndjson(&all)).await;

    let mut expected = vec![0usize; 20];
    for &id in &all {
        expected[(partition(id, 20) - 1) as usize] += 1;
    }
    assert!(expected.iter().all(|&n| n > 0), "{expected:?}");
    let received = drain(&mut clients, &expected).await;

    let mut seen: HashMap<u64, u32> = HashMap::new();
    for (index, got) in received.iter().enumerate() {
        let p = index as u32 + 1;
        // Each partition gets its posts in ingest order.
        let want: Vec<u64> = all
            .iter()
            .copied()
            .filter(|&id| partition(id, 20) == p)
            .collect();
        assert_eq!(got, &want, "partition {p}");
        for &id in got {
            assert!(
                seen.insert(id, p).is_none(),
                "post {id} arrived on two partitions"
            );
        }
    }
    assert_eq!(
        seen.keys().copied().collect::<BTreeSet<_>>(),
        all.iter().copied().collect::<BTreeSet<_>>(),
        "the partitions together carry every post"
    );
    // Volume streams send the post as ingested: no `matching_rules`. (A new id: a second
    // post with an id already ingested is a duplicate, not delivered again.)
    let extra = ids(401)[400];
    server.ingest(&ndjson(&[extra])).await;
    let p = partition(extra, 20) as usize;
    let message = clients[p - 1].next_message().await;
    assert!(message.get("matching_rules").is_none(), "{message}");
    assert_eq!(id_of(&message), extra);
    server.stop().await;
}

#[tokio::test]
async fn decahose_is_the_deterministic_ten_percent_sample_split_in_two() {
    let server = started("decahose", quick()).await;
    let mut clients = vec![
        connect(&server, &format!("{DECAHOSE}?partition=1")).await,
        connect(&server, &format!("{DECAHOSE}?partition=2")).await,
    ];
    let all = ids(2_000);
    server.ingest(&ndjson(&all)).await;

    let sample: Vec<u64> = all.iter().copied().filter(|&id| in_decahose(id)).collect();
    assert!(
        (140..260).contains(&sample.len()),
        "about 10 %: {}",
        sample.len()
    );
    let want: Vec<Vec<u64>> = (1..=2)
        .map(|p| {
            sample
                .iter()
                .copied()
                .filter(|&id| partition(id, 2) == p)
                .collect()
        })
        .collect();
    let received = drain(&mut clients, &[want[0].len(), want[1].len()]).await;
    assert_eq!(received, want);
    server.stop().await;
}

#[tokio::test]
async fn a_missing_or_bad_partition_is_a_406_naming_the_range_after_auth() {
    let server = started("firehose", Settings::default()).await;
    server
        .admin(
            Method::PUT,
            "/admin/accounts/acme/streams/sample",
            json!({"product": "decahose"}),
        )
        .await;
    let decahose = "/stream/sample10/accounts/acme/publishers/twitter/sample.json";
    let cases = [
        (
            FIREHOSE.to_owned(),
            "The query parameter 'partition' is required: this stream has partitions 1 to 20.",
        ),
        (
            format!("{FIREHOSE}?partition=0"),
            "Invalid partition '0': this stream has partitions 1 to 20.",
        ),
        (
            format!("{FIREHOSE}?partition=21"),
            "Invalid partition '21': this stream has partitions 1 to 20.",
        ),
        (
            format!("{FIREHOSE}?partition=one"),
            "Invalid partition 'one': this stream has partitions 1 to 20.",
        ),
        (
            format!("{decahose}?partition=3"),
            "Invalid partition '3': this stream has partitions 1 to 2.",
        ),
        (
            decahose.to_owned(),
            "The query parameter 'partition' is required: this stream has partitions 1 to 2.",
        ),
    ];
    for (path, message) in cases {
        let response = server.gnip_get(&path).send().await.unwrap();
        assert_eq!(response.headers()["content-encoding"], "gzip");
        let (status, body) = error_response(response).await;
        assert_eq!(status, StatusCode::NOT_ACCEPTABLE, "{path}: {body}");
        assert_eq!(error_message(&body), message, "{path}");
    }
    // Authentication comes first.
    let response = server
        .http
        .get(format!("{}{FIREHOSE}", server.base))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // The PowerTrack path does not serve a volume stream, nor the reverse.
    let response = server
        .gnip_get("/stream/powertrack/accounts/acme/publishers/twitter/prod.json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test]
async fn the_eleventh_connect_in_a_minute_gets_429_with_rate_headers() {
    let server = started("decahose", Settings::default()).await;
    // Every authenticated connect counts, refused ones too (here: 406 for the missing
    // partition). A window boundary may fall inside the loop, hence two windows' worth.
    let mut refused = None;
    for _ in 0..21 {
        let response = server.gnip_get(DECAHOSE).send().await.unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(response);
            break;
        }
        assert_eq!(response.status(), StatusCode::NOT_ACCEPTABLE);
    }
    let refused = refused.expect("the connect limit applies");
    assert_eq!(refused.headers()["x-rate-limit-limit"], "10");
    assert_eq!(refused.headers()["x-rate-limit-remaining"], "0");
    assert!(refused.headers().contains_key("x-rate-limit-reset"));
    let (status, body) = error_response(refused).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(error_message(&body).contains("Rate limit"), "{body}");
    server.stop().await;
}

#[tokio::test]
async fn the_connect_limit_counts_each_partition_on_its_own() {
    let server = started("firehose", Settings::default()).await;
    // Connects refused for want of gzip still count (the limit comes first); a window
    // boundary may fall inside the loop, hence two windows' worth.
    let plain = |p: u32| {
        server
            .http
            .get(format!("{}{FIREHOSE}?partition={p}", server.base))
            .basic_auth("alice", Some("secret"))
    };
    let mut refused = None;
    for _ in 0..21 {
        let response = plain(3).send().await.unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(response);
            break;
        }
        assert_eq!(response.status(), StatusCode::NOT_ACCEPTABLE);
    }
    let refused = refused.expect("the connect limit applies to a partition");
    assert_eq!(refused.headers()["x-rate-limit-limit"], "10");
    assert_eq!(refused.headers()["x-rate-limit-remaining"], "0");
    assert!(refused.headers().contains_key("x-rate-limit-reset"));
    // Partition 3 is at its limit; partition 4 of the same stream is not.
    let _partition_4 = connect(&server, &format!("{FIREHOSE}?partition=4")).await;
    server.stop().await;
}

#[tokio::test]
async fn connection_caps_count_per_partition() {
    let server = TestServer::start(Settings {
        over_cap_grace: Duration::from_millis(300),
        ..Settings::default()
    })
    .await;
    server.provision("firehose").await;
    server
        .admin(
            Method::PUT,
            "/admin/accounts/acme/streams/prod",
            json!({"product": "firehose", "max_connections": 1}),
        )
        .await;
    let mut first = connect(&server, &format!("{FIREHOSE}?partition=1")).await;
    let mut other_partition = connect(&server, &format!("{FIREHOSE}?partition=2")).await;
    let mut second = connect(&server, &format!("{FIREHOSE}?partition=1")).await;

    // The second connection to partition 1 is over the cap of 1; partition 2's is not.
    let closing = second.next_message().await;
    assert_eq!(
        error_message(&closing),
        "Forced Disconnect: Too many connections. (Allowed Connections = 1)"
    );
    assert!(second.rest().await.is_empty());

    // The others stay and keep receiving their partitions.
    let all = ids(200);
    let on = |p: u32| {
        all.iter()
            .copied()
            .find(|&id| partition(id, 20) == p)
            .unwrap()
    };
    let (one, two) = (on(1), on(2));
    server.ingest(&ndjson(&[one, two])).await;
    assert_eq!(id_of(&first.next_message().await), one);
    assert_eq!(id_of(&other_partition.next_message().await), two);
    server.stop().await;
}
