//! The post log's disk budget under load, through HTTP: posts are ingested continuously
//! into a server with a budget far smaller than what they take, while backfill and recovery
//! clients read and the trimmer drops the oldest segments every few milliseconds. Every
//! post delivered must be whole (valid JSON, the text it was ingested with); a recovery
//! window that starts before the oldest post held is refused with a message naming the
//! oldest time held, and a window starting at that time is served.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sluice_server::Settings;
use sluice_testkit::{Line, StreamClient, TestServer, error_message, error_response, id_of, post};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

const POWERTRACK: &str = "/stream/powertrack/accounts/acme/publishers/twitter/prod.json";
const RULES: &str = "/rules/powertrack/accounts/acme/publishers/twitter/prod.json";
const BASE_ID: u64 = 1_700_000_000_000_000_000;
/// The disk budget: a small fraction of what the test ingests.
const BUDGET: u64 = 256 << 10;
/// Batches of [`PER_BATCH`] posts of about 400 bytes each: about 2 MB in all.
const BATCHES: u64 = 40;
const PER_BATCH: u64 = 120;

fn id(i: u64) -> u64 {
    BASE_ID + (i << 22)
}

fn index_of(id: u64) -> u64 {
    (id - BASE_ID) >> 22
}

/// Post `i`'s text: the rule's word, then words that vary from post to post (so that
/// compression does not make the posts tiny).
fn text_of(i: u64) -> String {
    let words: Vec<String> = (0..60u64)
        .map(|k| format!("{:x}", (i * 7_919 + k * 104_729) % 65_521))
        .collect();
    format!("budget {i} {}", words.join(" "))
}

fn batch(b: u64) -> String {
    (b * PER_BATCH..(b + 1) * PER_BATCH)
        .map(|i| post(id(i), &text_of(i)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Checks that a delivered message is a whole post, the one ingested with its id.
fn check_whole(message: &Value) -> u64 {
    let id = id_of(message);
    let i = index_of(id);
    assert_eq!(message["text"], text_of(i), "post {i} arrived damaged");
    i
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

/// `ms` as the refusals name it: `YYYY-MM-DDTHH:mm:ss.sssZ`.
fn iso_millis(ms: u64) -> String {
    let format =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap()
        .format(&format)
        .unwrap()
}

fn get(server: &TestServer, query: &str) -> reqwest::RequestBuilder {
    server
        .http
        .get(format!("{}{POWERTRACK}?{query}", server.base))
        .basic_auth("alice", Some("secret"))
        .header("accept-encoding", "gzip")
}

/// The time a refusal names as the oldest still held.
fn named_time(message: &str) -> String {
    let rest = message
        .split("posts before ")
        .nth(1)
        .unwrap_or_else(|| panic!("no time named: {message}"));
    rest.split(' ').next().unwrap().to_owned()
}

/// A recovery from `start`: `Ok(posts)` (every one whole) or `Err(the refusal's message)`.
async fn recover(server: &TestServer, start: &str) -> Result<Vec<u64>, String> {
    let response = get(server, &format!("startTime={start}"))
        .send()
        .await
        .unwrap();
    if response.status() != StatusCode::OK {
        let (status, body) = error_response(response).await;
        assert_eq!(status, StatusCode::NOT_ACCEPTABLE, "{body}");
        return Err(error_message(&body).to_owned());
    }
    let messages = StreamClient::new(response).rest().await;
    let (info, posts) = messages.split_last().expect("a completion message");
    assert_eq!(info["info"]["message"], "Recovery Request Completed");
    Ok(posts.iter().map(check_whole).collect())
}

/// A backfill connection read for up to `max` posts or until its first heartbeat.
async fn backfill(server: &TestServer, max: usize) -> Vec<u64> {
    let response = get(server, "backfillMinutes=5").send().await.unwrap();
    let mut client = StreamClient::new(response);
    let mut got = Vec::new();
    while got.len() < max {
        match client.next_line().await {
            Some(Line::Message(message)) => got.push(check_whole(&message)),
            Some(Line::Heartbeat) | None => break,
        }
    }
    got
}

/// A sample's value in the Prometheus text of `/metrics` (0 when absent).
async fn metric(server: &TestServer, name: &str) -> f64 {
    let text = server
        .http
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

fn ascending(ids: &[u64]) -> bool {
    ids.windows(2).all(|w| w[0] < w[1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_hit_under_load_delivers_only_whole_posts_and_names_the_oldest_time_held() {
    let dir = tempfile::tempdir().unwrap();
    let server = Arc::new(
        TestServer::start_in(
            dir.path(),
            Settings {
                heartbeat: Duration::from_millis(300),
                post_log_max_bytes: Some(BUDGET),
                post_log_trim_interval: Duration::from_millis(10),
                ..Settings::default()
            },
        )
        .await,
    );
    server.provision("powertrack").await;
    let response = server
        .http
        .post(format!("{}{RULES}", server.base))
        .basic_auth("alice", Some("secret"))
        .json(&json!({"rules": [{"value": "budget"}]}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let started = now_ms();
    tokio::time::sleep(Duration::from_millis(5)).await;

    let done = Arc::new(AtomicBool::new(false));
    let ingest = tokio::spawn({
        let (server, done) = (server.clone(), done.clone());
        async move {
            for b in 0..BATCHES {
                server.ingest(&batch(b)).await;
            }
            done.store(true, Ordering::SeqCst);
        }
    });

    // While posts arrive and the oldest segments go: backfills, and recoveries from the
    // start of the test (refused once trimmed) and from the time each refusal names.
    let (mut refusals, mut recovered, mut backfilled) = (0, 0, 0);
    while !done.load(Ordering::SeqCst) {
        let got = backfill(&server, 500).await;
        assert!(ascending(&got), "backfill out of order");
        backfilled += got.len();
        match recover(&server, &iso(started)).await {
            Ok(got) => {
                assert!(ascending(&got), "recovery out of order");
                recovered += got.len();
            }
            Err(message) => {
                refusals += 1;
                // Trimming goes on: a window from the named time may be gone again.
                if let Ok(got) = recover(&server, &named_time(&message)).await {
                    assert!(ascending(&got), "recovery out of order");
                    recovered += got.len();
                }
            }
        }
    }
    ingest.await.unwrap();
    assert!(backfilled > 0 && recovered > 0, "{backfilled} {recovered}");

    // The budget was hit, said so in the metrics, and holds.
    let trimmed = metric(&server, "sluice_post_log_budget_trimmed_segments_total").await;
    assert!(trimmed > 0.0, "no segment was trimmed for the budget");
    assert!(metric(&server, "sluice_post_log_budget_trimmed_posts_total").await > 0.0);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let on_disk: u64 = std::fs::read_dir(dir.path().join("postlog"))
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    // The budget, and at most the active segment (a sixteenth of it, plus one batch).
    assert!(
        on_disk <= BUDGET + BUDGET / 16 + (64 << 10),
        "{on_disk} bytes"
    );
    assert_eq!(
        metric(&server, "sluice_post_log_bytes").await,
        on_disk as f64
    );

    // Now that nothing moves: the refusal names exactly the oldest post held's time, and a
    // window from there is served: every post held, the oldest first.
    let log = &server.state.post_log;
    let held = log.read(0, usize::MAX).unwrap();
    let oldest = held.first().expect("posts are held").appended_ms;
    let message = recover(&server, &iso(started)).await.unwrap_err();
    assert_eq!(named_time(&message), iso_millis(oldest), "{message}");
    assert!(
        message.starts_with("Invalid recovery window: posts before "),
        "{message}"
    );
    let got = recover(&server, &named_time(&message)).await.unwrap();
    let held_ids: Vec<u64> = held
        .iter()
        .map(|p| index_of(id_of(&serde_json::from_slice(&p.bytes).unwrap())))
        .collect();
    assert_eq!(got, held_ids);
    assert_eq!(got.last(), Some(&(BATCHES * PER_BATCH - 1)));
    // A backfill delivers everything held (all of it is from the last five minutes).
    let got = backfill(&server, usize::MAX).await;
    assert_eq!(got, held_ids);
    assert!(got[0] > 0, "the oldest posts were dropped");
    println!("{refusals} refusals, {recovered} recovered, {backfilled} backfilled while loading");
    Arc::into_inner(server).unwrap().stop().await;
}
