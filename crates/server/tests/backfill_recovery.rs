//! Backfill and recovery over real HTTP (docs/compatibility.md ("Decisions") "Backfill"; docs/compatibility.md §1.1, §5):
//! a client that reconnects with `backfillMinutes` gets every post it missed, oldest first,
//! then live posts with no gap at the switch, also across a server restart; PowerTrack
//! backfill is matched against the stream's current rules; recovery re-streams exactly the
//! window (by arrival time) and ends with `Recovery Request Completed`; a third concurrent
//! recovery is a 429; bad values are 406s.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sluice_model::sampling::{in_decahose, partition};
use sluice_postlog::FIRST_SEQ;
use sluice_server::Settings;
use sluice_testkit::{StreamClient, WAIT, error_message, error_response, id_of};
use sluice_testkit::{TestServer, post};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

const POWERTRACK: &str = "/stream/powertrack/accounts/acme/publishers/twitter/prod.json";
const RULES: &str = "/rules/powertrack/accounts/acme/publishers/twitter/prod.json";
const DECAHOSE: &str = "/stream/sample10/accounts/acme/publishers/twitter/prod.json";

const BASE_ID: u64 = 1_700_000_000_000_000_000;

fn id(i: u64) -> u64 {
    BASE_ID + (i << 22)
}

fn quick() -> Settings {
    Settings {
        heartbeat: Duration::from_millis(300),
        ..Settings::default()
    }
}

/// Adds or deletes PowerTrack rules through the rules API.
async fn rules(server: &TestServer, delete: bool, values: &[&str]) {
    let body = json!({"rules": values.iter().map(|v| json!({"value": v})).collect::<Vec<_>>()});
    let url = if delete {
        format!("{}{RULES}?_method=delete", server.base)
    } else {
        format!("{}{RULES}", server.base)
    };
    let response = server
        .http
        .post(url)
        .basic_auth("alice", Some("secret"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
}

/// Waits until the pipeline has logged `n` posts in all.
async fn logged(server: &TestServer, n: u64) {
    let started = Instant::now();
    while server.state.post_log.next_seq() < n {
        assert!(started.elapsed() < WAIT, "posts were not logged");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn now_ms() -> u64 {
    u64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap()
}

fn iso(ms: u64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap()
        .format(&Rfc3339)
        .unwrap()
}

/// Posts with ids `range`, texts "hello N".
fn hellos(range: std::ops::Range<u64>) -> String {
    range
        .map(|i| post(id(i), &format!("hello {i}")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads posts until `last` arrives; returns the ids in order.
async fn read_until(client: &mut StreamClient, last: u64) -> Vec<u64> {
    let mut got = Vec::new();
    loop {
        let message = client.next_message().await;
        let id = id_of(&message);
        got.push(id);
        if id == last {
            return got;
        }
    }
}

/// No gaps, oldest first: every id of `expected` is in `got`, and the first occurrences
/// appear in ascending order (replayed posts may repeat at the switch to live).
fn assert_complete_in_order(got: &[u64], expected: &[u64]) {
    let mut seen = HashSet::new();
    let firsts: Vec<u64> = got.iter().copied().filter(|id| seen.insert(*id)).collect();
    assert!(
        firsts.windows(2).all(|w| w[0] < w[1]),
        "out of order: {firsts:?}"
    );
    let missing: Vec<u64> = expected
        .iter()
        .copied()
        .filter(|id| !seen.contains(id))
        .collect();
    assert!(missing.is_empty(), "gaps: {missing:?}");
}

#[tokio::test]
async fn reconnecting_with_backfill_delivers_every_missed_post_then_live_without_a_gap() {
    backfill_then_live_without_a_gap(1, 3).await;
}

/// The same with the live posts matched ahead on two matching threads (batches of 12 are
/// large enough to be handed to them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_switches_to_live_without_a_gap_when_matching_on_two_threads() {
    backfill_then_live_without_a_gap(2, 12).await;
}

/// A client reads, goes away while posts keep arriving (`per_batch` per ingest request),
/// reconnects with backfill and must get every post, oldest first, then live ones.
async fn backfill_then_live_without_a_gap(match_threads: usize, per_batch: u64) {
    let server = Arc::new(
        TestServer::start(Settings {
            match_threads,
            ..quick()
        })
        .await,
    );
    server.provision("powertrack").await;
    rules(&server, false, &["hello"]).await;

    // Posts keep arriving, a few at a time, for the whole test.
    let next = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let ingester = {
        let (server, next, stop) = (server.clone(), next.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Acquire) {
                let from = next.load(Ordering::Acquire);
                server.ingest(&hellos(from..from + per_batch)).await;
                next.store(from + per_batch, Ordering::Release);
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
        })
    };

    let mut first = server.gnip_connect(POWERTRACK).await;
    for _ in 0..20 {
        first.next_message().await;
    }
    drop(first);
    // Posts go by while the client is away...
    tokio::time::sleep(Duration::from_millis(300)).await;
    // ...and while it reconnects, backfills and switches to live.
    let mut second = server
        .gnip_connect(&format!("{POWERTRACK}?backfillMinutes=1"))
        .await;
    let mut got = Vec::new();
    let until = next.load(Ordering::Acquire) + 300;
    while got.last().is_none_or(|&last| last < id(until)) {
        got.push(id_of(&second.next_message().await));
    }
    stop.store(true, Ordering::Release);
    ingester.await.unwrap();
    let end = next.load(Ordering::Acquire);
    server.ingest(&hellos(end..end + 1)).await;
    got.extend(read_until(&mut second, id(end)).await);

    // Everything ingested since the start is within the minute: all of it arrives.
    let expected: Vec<u64> = (0..=end).map(id).collect();
    assert_complete_in_order(&got, &expected);
    Arc::try_unwrap(server).ok().unwrap().stop().await;
}

#[tokio::test]
async fn volume_backfill_replays_the_partition_of_the_window_then_goes_live() {
    let server = TestServer::start(quick()).await;
    server.provision("decahose").await;
    server.ingest(&hellos(0..1_000)).await;
    logged(&server, 1_000).await;

    let mut client = server
        .gnip_connect(&format!("{DECAHOSE}?partition=2&backfillMinutes=5"))
        .await;
    let want: Vec<u64> = (0..1_000)
        .map(id)
        .filter(|&id| in_decahose(id) && partition(id, 2) == 2)
        .collect();
    assert!(!want.is_empty());
    let mut got = Vec::new();
    while got.len() < want.len() {
        got.extend(client.until_heartbeat().await.iter().map(id_of));
    }
    assert_eq!(got, want, "exactly the partition's sample, oldest first");

    let live = (1_000..3_000)
        .map(id)
        .find(|&id| in_decahose(id) && partition(id, 2) == 2)
        .unwrap();
    server.ingest(&post(live, "live")).await;
    assert_eq!(id_of(&client.next_message().await), live);
    server.stop().await;
}

#[tokio::test]
async fn a_backfill_larger_than_the_outbox_waits_for_the_client_instead_of_dropping_it() {
    // Live delivery closes a connection whose queue passes 16 KiB; the backfill, hundreds
    // of KiB here, is paced by the client instead.
    let server = TestServer::start(Settings {
        outbox_bytes: 16 << 10,
        ..quick()
    })
    .await;
    server.provision("powertrack").await;
    rules(&server, false, &["hello"]).await;
    for batch in 0..6 {
        server.ingest(&hellos(batch * 500..(batch + 1) * 500)).await;
    }
    logged(&server, 3_000).await;

    let mut client = server
        .gnip_connect(&format!("{POWERTRACK}?backfillMinutes=1"))
        .await;
    // A client that starts reading late.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let got = read_until(&mut client, id(2_999)).await;
    assert_eq!(got, (0..3_000).map(id).collect::<Vec<_>>());
    server.ingest(&hellos(3_000..3_001)).await;
    assert_eq!(id_of(&client.next_message().await), id(3_000));
    server.stop().await;
}

#[tokio::test]
async fn backfill_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path(), quick()).await;
    server.provision("powertrack").await;
    rules(&server, false, &["hello"]).await;
    server.ingest(&hellos(0..50)).await;
    logged(&server, 50).await;
    server.stop().await;

    let server = TestServer::start_in(dir.path(), quick()).await;
    let mut client = server
        .gnip_connect(&format!("{POWERTRACK}?backfillMinutes=2"))
        .await;
    let got = read_until(&mut client, id(49)).await;
    assert_eq!(got, (0..50).map(id).collect::<Vec<_>>());
    server.ingest(&hellos(50..51)).await;
    assert_eq!(id_of(&client.next_message().await), id(50));
    server.stop().await;
}

#[tokio::test]
async fn every_acknowledged_post_is_in_the_log_after_an_immediate_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path(), quick()).await;
    server.provision("powertrack").await;
    rules(&server, false, &["hello"]).await;
    // Acknowledged, then the server is stopped at once: no waiting for the log.
    for batch in 0..10 {
        server.ingest(&hellos(batch * 300..(batch + 1) * 300)).await;
    }
    let state = server.state.clone();
    server.stop().await;
    // When the server has stopped, the pipeline has drained (the process may exit now).
    assert!(!state.pipeline_running());
    assert_eq!(state.post_log.next_seq(), FIRST_SEQ + 3_000);
    drop(state);

    let server = TestServer::start_in(dir.path(), quick()).await;
    assert_eq!(server.state.post_log.next_seq(), FIRST_SEQ + 3_000);
    let mut client = server
        .gnip_connect(&format!("{POWERTRACK}?backfillMinutes=1"))
        .await;
    let got = read_until(&mut client, id(2_999)).await;
    assert_eq!(got, (0..3_000).map(id).collect::<Vec<_>>());
    server.stop().await;
}

#[tokio::test]
async fn powertrack_backfill_is_matched_against_the_current_rules() {
    let server = TestServer::start(quick()).await;
    server.provision("powertrack").await;
    rules(&server, false, &["apple"]).await;
    let posts: Vec<String> = (0..20)
        .map(|i| {
            post(
                id(i),
                if i % 2 == 0 {
                    "apple pie"
                } else {
                    "banana split"
                },
            )
        })
        .collect();
    server.ingest(&posts.join("\n")).await;
    logged(&server, 20).await;
    rules(&server, true, &["apple"]).await;
    rules(&server, false, &["banana"]).await;

    let mut client = server
        .gnip_connect(&format!("{POWERTRACK}?backfillMinutes=1"))
        .await;
    let mut messages: Vec<Value> = Vec::new();
    while messages.len() < 10 {
        messages.extend(client.until_heartbeat().await);
    }
    let got: Vec<u64> = messages.iter().map(id_of).collect();
    assert_eq!(got, (1..20).step_by(2).map(id).collect::<Vec<_>>());
    for message in &messages {
        let rules = message["matching_rules"].as_array().unwrap();
        assert_eq!(rules.len(), 1, "{message}");
        assert!(rules[0]["id_str"].is_string(), "{message}");
    }
    server.stop().await;
}

#[tokio::test]
async fn recovery_streams_exactly_the_window_then_completes_and_closes() {
    let server = TestServer::start(quick()).await;
    server.provision("powertrack").await;
    rules(&server, false, &["hello"]).await;

    // Three batches with a clear time between them: before, inside, after the window.
    server.ingest(&hellos(0..10)).await;
    logged(&server, 10).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let start = now_ms();
    server.ingest(&hellos(10..25)).await;
    logged(&server, 25).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let end = now_ms();
    tokio::time::sleep(Duration::from_millis(5)).await;
    server.ingest(&hellos(25..30)).await;
    logged(&server, 30).await;

    let mut client = server
        .gnip_connect(&format!(
            "{POWERTRACK}?startTime={}&endTime={}",
            iso(start),
            iso(end)
        ))
        .await;
    let messages = client.rest().await;
    let (info, posts) = messages.split_last().expect("a completion message");
    let got: Vec<u64> = posts.iter().map(id_of).collect();
    assert_eq!(got, (10..25).map(id).collect::<Vec<_>>());
    let info = &info["info"];
    assert_eq!(info["message"], "Recovery Request Completed");
    assert_eq!(info["activity_count"], 15);
    let sent = info["sent"].as_str().unwrap();
    assert!(sent.len() == 25 && sent.ends_with("+00:00"), "{sent}");
    assert_eq!(info.as_object().unwrap().len(), 3, "{info}");

    // The other spelling, on a volume stream: the window's sampled posts of the partition.
    server
        .admin(
            reqwest::Method::PUT,
            "/admin/accounts/acme/streams/sample",
            json!({"product": "decahose"}),
        )
        .await;
    let path = "/stream/sample10/accounts/acme/publishers/twitter/sample.json";
    let mut client = server
        .gnip_connect(&format!(
            "{path}?partition=1&start_time={}&end_time={}",
            iso(start),
            iso(end)
        ))
        .await;
    let messages = client.rest().await;
    let want: Vec<u64> = (10..25)
        .map(id)
        .filter(|&id| in_decahose(id) && partition(id, 2) == 1)
        .collect();
    let (info, posts) = messages.split_last().unwrap();
    assert_eq!(posts.iter().map(id_of).collect::<Vec<_>>(), want);
    assert_eq!(info["info"]["activity_count"], want.len());
    server.stop().await;
}

#[tokio::test]
async fn a_third_concurrent_recovery_is_refused_with_429() {
    let server = TestServer::start(quick()).await;
    server.provision("powertrack").await;
    rules(&server, false, &["hello"]).await;
    server.ingest(&hellos(0..5)).await;
    logged(&server, 5).await;

    // A window ending now stays open a moment for posts still on their way in.
    let query = || format!("{POWERTRACK}?startTime={}", iso(now_ms() - 5_000));
    let mut first = server.gnip_connect(&query()).await;
    let mut second = server.gnip_connect(&query()).await;
    let refused = server.gnip_get(&query()).send().await.unwrap();
    assert_eq!(refused.headers()["x-rate-limit-limit"], "2");
    assert_eq!(refused.headers()["x-rate-limit-remaining"], "0");
    assert!(refused.headers().contains_key("x-rate-limit-reset"));
    let (status, body) = error_response(refused).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(error_message(&body).contains("recovery"), "{body}");

    for client in [&mut first, &mut second] {
        let messages = client.rest().await;
        assert_eq!(messages.len(), 6);
        assert_eq!(messages[5]["info"]["activity_count"], 5);
    }
    // Finished jobs free their slots.
    let mut third = server.gnip_connect(&query()).await;
    assert_eq!(third.rest().await.len(), 6);
    server.stop().await;
}

#[tokio::test]
async fn bad_backfill_and_recovery_values_are_406s() {
    let server = TestServer::start(Settings::default()).await;
    server.provision("powertrack").await;
    let now = now_ms();
    let cases = [
        (
            "backfillMinutes=0".to_owned(),
            "'0' for query parameter 'backfillMinutes'",
        ),
        ("backfillMinutes=6".to_owned(), "from 1 to 5"),
        ("backfillMinutes=2.5".to_owned(), "from 1 to 5"),
        ("backfillMinutes=".to_owned(), "from 1 to 5"),
        (
            format!("backfillMinutes=2&startTime={}", iso(now - 60_000)),
            "cannot be combined",
        ),
        (
            "startTime=yesterday".to_owned(),
            "Invalid date format for query parameter 'startTime'",
        ),
        (
            format!("startTime={}", iso(now - 25 * 3_600_000)),
            "within the last 24 hours",
        ),
        (
            format!(
                "startTime={}&endTime={}",
                iso(now - 60_000),
                iso(now - 120_000)
            ),
            "before the end",
        ),
        (
            format!("endTime={}", iso(now - 60_000)),
            "requires 'startTime'",
        ),
    ];
    for (query, message) in cases {
        let response = server
            .gnip_get(&format!("{POWERTRACK}?{query}"))
            .send()
            .await
            .unwrap();
        let (status, body) = error_response(response).await;
        assert_eq!(status, StatusCode::NOT_ACCEPTABLE, "{query}: {body}");
        assert!(error_message(&body).contains(message), "{query}: {body}");
    }
    server.stop().await;
}
