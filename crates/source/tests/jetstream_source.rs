//! The Jetstream source end to end, without the internet: a fake Jetstream on loopback
//! (the testkit's) replays events in Jetstream's shapes into the consumer, which feeds a
//! test server in process or over HTTP. Checked: a rule matches a converted post on a
//! PowerTrack stream; compressed sessions convert identically; the cursor across a stop
//! and restart and across a dropped WebSocket (no gap, no duplicate on the stream);
//! deletes reach the compliance stream once and take the post out of backfill; the batch
//! in hand at stop is stored and its cursor saved; a refused token stops the source; the
//! converter's fixture, compressed, meets `#hashtag has:links`, `@handle` and `url:` rules.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_server::Settings;
use sluice_source::backoff::Backoff;
use sluice_source::batch::Limits;
use sluice_source::consumer::{self, Config, SourceError, Summary};
use sluice_source::cursor::CursorFile;
use sluice_source::jetstream::subscribe;
use sluice_source::sink::{Acknowledged, HttpSink, ServerSink, Sink, SinkError};
use sluice_testkit::jetstream_events as events;
use sluice_testkit::{ADMIN, FakeJetstream, TestServer, distinct_ids, id_of};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const POWERTRACK: &str = "/stream/powertrack/accounts/acme/publishers/twitter/prod.json";
const COMPLIANCE: &str = "/stream/compliance/accounts/acme/publishers/twitter/prod.json";
const RULES: &str = "/rules/powertrack/accounts/acme/publishers/twitter/prod.json";
const ALICE: &str = "did:plc:alice";
/// The first event's time: 2024-12-01, a second between events.
const T0: u64 = 1_733_011_200_000_000;
const SECOND: u64 = 1_000_000;

/// The time of event `i`.
fn t(i: u64) -> u64 {
    T0 + i * SECOND
}

/// Short heartbeats: a heartbeat after the last message proves nothing more is queued.
fn quick() -> Settings {
    Settings {
        heartbeat: Duration::from_millis(300),
        ..Settings::default()
    }
}

/// A consumer of `fake` with quick batches and reconnects.
fn config(fake: &FakeJetstream) -> Config {
    let mut config = Config::new(subscribe::instance(&fake.url()).unwrap());
    config.limits = Limits {
        max_lines: 1_000,
        max_wait: Duration::from_millis(20),
    };
    config.backoff = Backoff::new(Duration::from_millis(20), Duration::from_millis(100));
    config
}

/// Posts `hello number I` by alice at `t(i)` for each i in `range`.
fn numbered_posts(range: std::ops::Range<u64>) -> Vec<Vec<u8>> {
    range
        .map(|i| events::post(ALICE, t(i), &format!("hello number {i}"), "en"))
        .collect()
}

/// A consumer running in a task.
struct Running {
    stop: CancellationToken,
    task: JoinHandle<Result<Summary, SourceError>>,
}

impl Running {
    fn spawn<S: Sink + 'static>(config: Config, mut sink: S, cursor: CursorFile) -> Running {
        let stop = CancellationToken::new();
        let stopping = stop.clone();
        let task =
            tokio::spawn(async move { consumer::run(config, &mut sink, &cursor, stopping).await });
        Running { stop, task }
    }

    async fn stop(self) -> Summary {
        self.stop.cancel();
        self.task
            .await
            .unwrap()
            .expect("the consumer stops cleanly")
    }
}

/// A sink that keeps every line it is given and acknowledges them all.
#[derive(Clone, Default)]
struct Recording {
    lines: Arc<Mutex<Vec<String>>>,
}

impl Recording {
    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    async fn wait_for(&self, n: usize) -> Vec<String> {
        for _ in 0..500 {
            let lines = self.lines();
            if lines.len() >= n {
                return lines;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("only {} lines arrived, {n} expected", self.lines().len());
    }
}

impl Sink for Recording {
    async fn deliver(&mut self, body: Bytes) -> Result<Acknowledged, SinkError> {
        let text = String::from_utf8(body.to_vec()).unwrap();
        let mut lines = self.lines.lock().unwrap();
        let before = lines.len();
        lines.extend(text.lines().map(str::to_owned));
        Ok(Acknowledged {
            accepted: lines.len() - before,
            rejected: Vec::new(),
        })
    }
}

async fn server_with_rules(rules: &[&str]) -> TestServer {
    let server = TestServer::start(quick()).await;
    server.provision("powertrack").await;
    let (status, body) = server
        .admin(
            Method::PUT,
            "/admin/accounts/acme/streams/prod",
            json!({"product": "compliance"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Each rule tagged with its value, to read `matching_rules` by.
    let rules: Vec<Value> = rules
        .iter()
        .map(|r| json!({"value": r, "tag": r}))
        .collect();
    let response = server
        .http
        .post(format!("{}{RULES}", server.base))
        .basic_auth("alice", Some("secret"))
        .json(&json!({ "rules": rules }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    server
}

#[tokio::test]
async fn a_rule_matches_a_converted_post_on_a_powertrack_stream() {
    let server = server_with_rules(&["#rustlang lang:en has:links", "url:github.com"]).await;
    let mut stream = server.gnip_connect(POWERTRACK).await;
    let fake = FakeJetstream::start([
        events::identity(ALICE, t(0), "alice.test"),
        events::post(ALICE, t(1), "nothing to see here", "en"),
        events::post(
            ALICE,
            t(2),
            "Learning #rustlang today https://github.com/rust-lang/rust",
            "en",
        ),
        events::post(
            ALICE,
            t(3),
            "#rustlang auf Deutsch https://example.org",
            "de",
        ),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let running = Running::spawn(
        config(&fake),
        ServerSink::new(server.state.clone()),
        CursorFile::new(dir.path().join("cursor")),
    );
    let got = stream.at_least(1).await;
    let summary = running.stop().await;
    assert_eq!(got.len(), 1, "{got:?}");
    let post = &got[0];
    assert_eq!(
        post["text"],
        "Learning #rustlang today https://github.com/rust-lang/rust"
    );
    assert_eq!(post["lang"], "en");
    assert_eq!(post["user"]["screen_name"], "alice.test");
    let rules: Vec<&str> = post["matching_rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["tag"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["#rustlang lang:en has:links", "url:github.com"]);
    assert_eq!(
        id_of(post),
        sluice_bluesky::post_id(ALICE, &events::post_rkey(t(2)))
    );
    assert_eq!((summary.events, summary.posts), (4, 3));
    server.stop().await;
}

#[tokio::test]
async fn a_compressed_session_converts_identically() {
    let mut all = vec![events::identity(ALICE, t(0), "alice.test")];
    all.extend(numbered_posts(1..20));
    all.push(events::delete(ALICE, t(20), &events::post_rkey(t(3))));
    let fake = FakeJetstream::start(&all).await;
    let dir = tempfile::tempdir().unwrap();
    let mut converted = Vec::new();
    for compress in [false, true] {
        let mut config = config(&fake);
        config.compress = compress;
        let sink = Recording::default();
        let cursor = CursorFile::new(dir.path().join(format!("cursor-{compress}")));
        let running = Running::spawn(config, sink.clone(), cursor);
        let lines = sink.wait_for(20).await;
        running.stop().await;
        converted.push(lines);
    }
    let sessions = fake.sessions();
    assert_eq!(
        sessions.iter().map(|s| s.compress).collect::<Vec<_>>(),
        [false, true]
    );
    assert_eq!(
        sessions[1].wanted,
        ["app.bsky.feed.post", "app.bsky.actor.profile"]
    );
    assert_eq!(converted[0].len(), 20, "19 posts and a delete");
    assert_eq!(converted[0], converted[1]);
}

fn expected_ids(range: std::ops::Range<u64>) -> Vec<u64> {
    range
        .map(|i| sluice_bluesky::post_id(ALICE, &events::post_rkey(t(i))))
        .collect()
}

#[tokio::test]
async fn a_restart_resumes_before_the_cursor_with_nothing_lost_or_twice() {
    let server = server_with_rules(&["hello"]).await;
    let mut stream = server.gnip_connect(POWERTRACK).await;
    let mut compliance = Vec::new();
    for partition in 1..=8 {
        compliance.push(
            server
                .gnip_connect(&format!("{COMPLIANCE}?partition={partition}"))
                .await,
        );
    }
    let mut first = numbered_posts(0..6);
    first.push(events::delete(ALICE, t(6), &events::post_rkey(t(2))));
    let fake = FakeJetstream::start(&first).await;
    let dir = tempfile::tempdir().unwrap();
    let cursor = CursorFile::new(dir.path().join("cursor"));
    let running = Running::spawn(
        config(&fake),
        ServerSink::new(server.state.clone()),
        cursor.clone(),
    );
    let mut delivered = stream.at_least(6).await;
    let summary = running.stop().await;
    assert_eq!((summary.posts, summary.deletes), (6, 1));
    assert_eq!(cursor.load_now().unwrap(), Some(t(6)));

    // While it is stopped, the firehose goes on.
    for event in numbered_posts(7..12) {
        fake.push(&event);
    }
    let running = Running::spawn(
        config(&fake),
        ServerSink::new(server.state.clone()),
        cursor.clone(),
    );
    delivered.extend(stream.at_least(5).await);
    let summary = running.stop().await;
    delivered.extend(stream.drain_queued().await);
    // The second session started 5 s before the cursor: it read events 1 to 11 again.
    let sessions = fake.sessions();
    assert_eq!(sessions[1].cursor, Some(t(6) - 5 * SECOND));
    assert_eq!(summary.events, 11);
    assert_eq!(cursor.load_now().unwrap(), Some(t(11)));
    let mut expected = expected_ids(0..6);
    expected.extend(expected_ids(7..12));
    assert_eq!(distinct_ids(&delivered), expected);

    // The delete reached the compliance stream once, though its event was read twice.
    let mut deletes = Vec::new();
    for partition in &mut compliance {
        deletes.extend(partition.drain_queued().await);
    }
    assert_eq!(deletes.len(), 1, "{deletes:?}");
    assert_eq!(
        deletes[0]["delete"]["status"]["id_str"],
        expected_ids(2..3)[0].to_string()
    );
    // And the deleted post is no longer sent by backfill.
    let mut backfill = server
        .gnip_connect(&format!("{POWERTRACK}?backfillMinutes=5"))
        .await;
    let backfilled = backfill.until_heartbeat().await;
    let mut without_deleted = expected.clone();
    without_deleted.retain(|id| *id != expected_ids(2..3)[0]);
    assert_eq!(distinct_ids(&backfilled), without_deleted);
    server.stop().await;
}

#[tokio::test]
async fn a_dropped_websocket_resumes_from_the_cursor_without_a_gap_or_a_duplicate() {
    let server = server_with_rules(&["hello"]).await;
    let mut stream = server.gnip_connect(POWERTRACK).await;
    let fake = FakeJetstream::start(numbered_posts(0..10)).await;
    fake.drop_next_session_after(4);
    let dir = tempfile::tempdir().unwrap();
    let cursor = CursorFile::new(dir.path().join("cursor"));
    let running = Running::spawn(
        config(&fake),
        ServerSink::new(server.state.clone()),
        cursor.clone(),
    );
    let mut delivered = stream.at_least(10).await;
    let summary = running.stop().await;
    delivered.extend(stream.drain_queued().await);
    assert_eq!(distinct_ids(&delivered), expected_ids(0..10));
    assert_eq!(summary.reconnects, 1);
    let sessions = fake.sessions();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[0].cursor, None);
    // What was read before the drop was stored, and the cursor saved, before reconnecting.
    assert_eq!(sessions[1].cursor, Some(t(3) - 5 * SECOND));
    assert_eq!(cursor.load_now().unwrap(), Some(t(9)));
    server.stop().await;
}

#[tokio::test]
async fn the_batch_in_hand_at_stop_is_stored_and_its_cursor_saved() {
    let server = server_with_rules(&["hello"]).await;
    let mut stream = server.gnip_connect(POWERTRACK).await;
    let fake = FakeJetstream::start(numbered_posts(0..3)).await;
    let dir = tempfile::tempdir().unwrap();
    let cursor = CursorFile::new(dir.path().join("cursor"));
    let mut config = config(&fake);
    // Nothing is handed over by age or size before the stop.
    config.limits = Limits {
        max_lines: 1_000,
        max_wait: Duration::from_secs(600),
    };
    let running = Running::spawn(
        config,
        ServerSink::new(server.state.clone()),
        cursor.clone(),
    );
    while fake.sent() < 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Time for the consumer to read what was sent (it stops without reading further).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(cursor.load_now().unwrap(), None, "nothing handed over yet");
    let summary = running.stop().await;
    assert_eq!(summary.posts, 3);
    assert_eq!(cursor.load_now().unwrap(), Some(t(2)));
    assert_eq!(distinct_ids(&stream.at_least(3).await), expected_ids(0..3));
    server.stop().await;
}

#[tokio::test]
async fn the_http_sink_feeds_a_server_and_a_refused_token_stops_the_source() {
    let server = server_with_rules(&["hello"]).await;
    let mut stream = server.gnip_connect(POWERTRACK).await;
    let fake = FakeJetstream::start(numbered_posts(0..5)).await;
    let dir = tempfile::tempdir().unwrap();
    let base = url::Url::parse(&server.base).unwrap();
    let client = || {
        sluice_client::http::HttpClient::new(&sluice_client::http::TlsArgs { cacert: None }, None)
            .unwrap()
    };
    let running = Running::spawn(
        config(&fake),
        HttpSink::new(client(), &base, ADMIN),
        CursorFile::new(dir.path().join("cursor")),
    );
    let delivered = stream.at_least(5).await;
    running.stop().await;
    assert_eq!(distinct_ids(&delivered), expected_ids(0..5));

    let refused = Running::spawn(
        config(&fake),
        HttpSink::new(client(), &base, "not-the-token"),
        CursorFile::new(dir.path().join("other-cursor")),
    );
    let outcome = tokio::time::timeout(Duration::from_secs(10), refused.task)
        .await
        .expect("a refused token stops the source at once")
        .unwrap();
    let Err(SourceError::Sink(message)) = outcome else {
        panic!("expected the sink's refusal, got {outcome:?}")
    };
    assert!(message.contains("HTTP 401"), "{message}");
    assert_eq!(
        CursorFile::new(dir.path().join("other-cursor"))
            .load_now()
            .unwrap(),
        None
    );
    server.stop().await;
}

/// The converter's fixture: Jetstream events of every kind the converter handles.
fn fixture() -> Vec<Vec<u8>> {
    let text = include_str!("../../bluesky/tests/fixtures/jetstream.ndjson");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.as_bytes().to_vec())
        .collect()
}

#[tokio::test]
async fn the_converters_fixture_through_the_source_meets_handle_hashtag_and_url_rules() {
    let rules = ["#rust has:links", "@bob.example.com", "url:example.com"];
    let server = server_with_rules(&rules).await;
    let mut stream = server.gnip_connect(POWERTRACK).await;
    let fake = FakeJetstream::start(fixture()).await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = config(&fake);
    config.compress = true;
    let running = Running::spawn(
        config,
        ServerSink::new(server.state.clone()),
        CursorFile::new(dir.path().join("cursor")),
    );
    let got = stream.at_least(1).await;
    let summary = running.stop().await;
    assert_eq!(
        summary.rejected, 0,
        "every converted line is one ingest takes"
    );
    // All the fake sent: the fixture less its likes, which the source does not ask for.
    assert_eq!(summary.events, fake.sent() as u64);
    assert!(fake.sent() < fixture().len());
    let mut matched: Vec<(String, Vec<String>)> = got
        .iter()
        .map(|post| {
            let tags = post["matching_rules"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["tag"].as_str().unwrap().to_owned())
                .collect();
            (post["text"].as_str().unwrap().to_owned(), tags)
        })
        .collect();
    matched.sort();
    let all: Vec<String> = rules.iter().map(|r| (*r).to_owned()).collect();
    let cafe = "Café ☕ with @bob.example.com 👨\u{200d}👩\u{200d}👧 — notes at example.com/notes… #日本 #rust 🇯🇵";
    // The post with the hashtag, the mention and the link, and the post quoting it (the
    // quoted post's entities count, as on X).
    assert_eq!(
        matched,
        [(cafe.to_owned(), all.clone()), ("This 👇".to_owned(), all)]
    );
    server.stop().await;
}
