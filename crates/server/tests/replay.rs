//! PowerTrack Replay over real HTTP (docs/compatibility.md "Replay"): its rules API at its
//! own URL over its own rule set, never matched live; a job streams exactly the matching
//! posts of `[fromDate, toDate)` with `matching_rules`, then `Replay Request Completed`;
//! the embargo, 5-day, format and gzip checks are 406s with X's texts; connects are
//! limited to 5 per 5 minutes and jobs to one at a time (429s); a delete arriving while a
//! job runs keeps the deleted post out of what is still to come.
//!
//! Replay windows are whole minutes at least a minute old: the tests put posts into the
//! server's post log at chosen times in the last few minutes (what ingest would have
//! appended then), and everything else goes through HTTP.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_postlog::NewPost;
use sluice_server::Settings;
use sluice_testkit::{StreamClient, TestServer, WAIT, error_message, error_response, id_of, post};
use time::OffsetDateTime;
use time::macros::format_description;

const REPLAY: &str = "/replay/powertrack/accounts/acme/publishers/twitter/prod.json";
const RULES: &str = "/rules/powertrack-replay/accounts/acme/publishers/twitter/prod.json";
const POWERTRACK: &str = "/stream/powertrack/accounts/acme/publishers/twitter/prod.json";
const POWERTRACK_RULES: &str = "/rules/powertrack/accounts/acme/publishers/twitter/prod.json";

const MINUTE: u64 = 60_000;
const BASE_ID: u64 = 1_700_000_000_000_000_000;

fn id(i: u64) -> u64 {
    BASE_ID + (i << 22)
}

/// No embargo (windows may end now), short heartbeats.
fn settings() -> Settings {
    Settings {
        replay_embargo: Duration::ZERO,
        heartbeat: Duration::from_millis(300),
        ..Settings::default()
    }
}

fn now_ms() -> u64 {
    u64::try_from(OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000).unwrap()
}

/// The start of the minute `minutes` before the current one.
fn minutes_ago(minutes: u64) -> u64 {
    let now = now_ms();
    now - now % MINUTE - minutes * MINUTE
}

/// `yyyyMMddHHmm` of `ms`.
fn date(ms: u64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap()
        .format(format_description!("[year][month][day][hour][minute]"))
        .unwrap()
}

fn window(from_ms: u64, end_ms: u64) -> String {
    format!(
        "{REPLAY}?fromDate={}&toDate={}",
        date(from_ms),
        date(end_ms)
    )
}

/// Puts `posts` into the post log as appended at `at_ms` (calls must go forward in time).
fn seed(server: &TestServer, posts: &[String], at_ms: u64) {
    let new: Vec<NewPost<'_>> = posts
        .iter()
        .map(|p| NewPost {
            datacenter: "local",
            bytes: p.as_bytes(),
        })
        .collect();
    server.state.post_log.append(&new, at_ms).unwrap();
}

/// Posts `range` with `text` followed by their number.
fn posts(range: std::ops::Range<u64>, text: &str) -> Vec<String> {
    range.map(|i| post(id(i), &format!("{text} {i}"))).collect()
}

/// A rules API call as `alice`; returns status and JSON body.
async fn rules_call(
    server: &TestServer,
    method: Method,
    path_and_query: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = server
        .http
        .request(method, format!("{}{path_and_query}", server.base))
        .basic_auth("alice", Some("secret"));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

async fn add_rules(server: &TestServer, url: &str, rules: Value) -> Value {
    let (status, body) =
        rules_call(server, Method::POST, url, Some(json!({ "rules": rules }))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body
}

/// Account `acme`, user `alice`, a Replay stream `prod`, and a PowerTrack stream `prod`.
async fn started(settings: Settings) -> TestServer {
    let server = TestServer::start(settings).await;
    server.provision("powertrack-replay").await;
    let (status, body) = server
        .admin(
            Method::PUT,
            "/admin/accounts/acme/streams/prod",
            json!({"product": "powertrack"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    server
}

/// Splits a finished replay into its posts and its completion `info`.
fn finished(messages: &[Value]) -> (Vec<u64>, &Value) {
    let (info, posts) = messages.split_last().expect("a completion message");
    (posts.iter().map(id_of).collect(), &info["info"])
}

#[tokio::test]
async fn the_rules_api_runs_at_the_replay_url_over_the_replay_streams_own_rules() {
    let server = started(settings()).await;
    let added = add_rules(&server, RULES, json!([{"value": "hello", "tag": "greet"}])).await;
    assert_eq!(added["summary"]["created"], 1, "{added}");
    let rule_id = added["detail"][0]["rule"]["id"].as_u64().unwrap();

    let (status, listed) = rules_call(&server, Method::GET, RULES, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["rules"][0]["value"], "hello", "{listed}");
    assert_eq!(listed["rules"][0]["tag"], "greet", "{listed}");
    assert_eq!(listed["rules"].as_array().unwrap().len(), 1);

    let one = RULES.replace(".json", &format!("/rules/{rule_id}.json"));
    let (status, got) = rules_call(&server, Method::GET, &one, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(got["rules"][0]["id"], rule_id, "{got}");

    let validation = RULES.replace(".json", "/validation.json");
    let (status, checked) = rules_call(
        &server,
        Method::POST,
        &validation,
        Some(json!({"rules": [{"value": "hello ("}]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(checked["detail"][0]["valid"], false, "{checked}");

    // The PowerTrack stream with the same label has rules of its own.
    let (_, realtime) = rules_call(&server, Method::GET, POWERTRACK_RULES, None).await;
    assert_eq!(realtime["rules"], json!([]), "{realtime}");

    let (status, deleted) = rules_call(
        &server,
        Method::POST,
        &format!("{RULES}?_method=delete"),
        Some(json!({"rule_ids": [rule_id]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{deleted}");
    assert_eq!(deleted["summary"]["deleted"], 1, "{deleted}");
    let (_, listed) = rules_call(&server, Method::GET, RULES, None).await;
    assert_eq!(listed["rules"], json!([]), "{listed}");

    // The same errors as PowerTrack's: an invalid rule, a bad body, an unknown stream.
    let (status, refused) = rules_call(
        &server,
        Method::POST,
        RULES,
        Some(json!({"rules": [{"value": "hello ("}]})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    let (status, _) = rules_call(&server, Method::POST, RULES, Some(json!({"x": 1}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let unknown = RULES.replace("prod.json", "other.json");
    let (status, _) = rules_call(&server, Method::GET, &unknown, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test]
async fn a_replay_sends_exactly_the_matching_posts_of_the_window_then_completes() {
    let server = started(settings()).await;
    let hello = add_rules(&server, RULES, json!([{"value": "hello", "tag": "greet"}])).await;
    let hello = hello["detail"][0]["rule"]["id"].as_u64().unwrap();
    add_rules(&server, RULES, json!([{"value": "world"}])).await;

    // The window is [from, from + 2 min): from inclusive, the end exclusive.
    let from = minutes_ago(4);
    let end = from + 2 * MINUTE;
    seed(&server, &posts(0..3, "hello"), from - 1);
    seed(&server, &posts(3..5, "hello"), from);
    seed(&server, &posts(5..8, "other"), from + 10_000);
    seed(&server, &posts(8..10, "world"), from + MINUTE + 5_000);
    seed(&server, &posts(10..12, "hello"), end - 1);
    seed(&server, &posts(12..14, "hello"), end);
    seed(&server, &posts(14..16, "other"), end + MINUTE);

    let response = server.gnip_get(&window(from, end)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-encoding"], "gzip");
    assert_eq!(response.headers()["x-rate-limit-limit"], "5");
    assert_eq!(response.headers()["x-rate-limit-remaining"], "4");
    let messages = StreamClient::new(response).rest().await;
    let (got, info) = finished(&messages);
    let want: Vec<u64> = [3, 4, 8, 9, 10, 11].into_iter().map(id).collect();
    assert_eq!(got, want);
    let first = &messages[0]["matching_rules"];
    assert_eq!(
        first,
        &json!([{"tag": "greet", "id": hello, "id_str": hello.to_string()}])
    );
    assert_eq!(messages[2]["matching_rules"][0]["tag"], Value::Null);
    assert_eq!(info["message"], "Replay Request Completed");
    assert_eq!(info["activity_count"], 6);
    let sent = info["sent"].as_str().unwrap();
    assert!(sent.len() == 25 && sent.ends_with("+00:00"), "{sent}");
    assert_eq!(info.as_object().unwrap().len(), 3, "{info}");

    // A window where nothing matches: only the completion, with a count of 0.
    let mut client = server
        .gnip_connect(&window(end + MINUTE, end + 2 * MINUTE))
        .await;
    let messages = client.rest().await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["info"]["activity_count"], 0);
    server.stop().await;
}

#[tokio::test]
async fn replay_rules_are_never_matched_live() {
    let server = started(settings()).await;
    add_rules(&server, RULES, json!([{"value": "hello"}])).await;
    add_rules(&server, POWERTRACK_RULES, json!([{"value": "world"}])).await;
    // Only the PowerTrack stream's rule is in the index live posts are matched against.
    assert_eq!(server.state.registry.rules().len(), 1);

    let from = minutes_ago(3);
    seed(&server, &posts(0..3, "hello"), from + 1_000);
    let mut realtime = server.gnip_connect(POWERTRACK).await;
    server.ingest(&posts(10..11, "hello").join("\n")).await;
    let mut replay = server.gnip_connect(&window(from, from + MINUTE)).await;
    server.ingest(&posts(11..12, "hello").join("\n")).await;
    server.ingest(&posts(12..13, "world").join("\n")).await;

    // The PowerTrack stream with the same label gets its own match, and not the others.
    assert_eq!(id_of(&realtime.next_message().await), id(12));
    assert_eq!(realtime.until_heartbeat().await, Vec::<Value>::new());
    // The replay gets its window, and nothing live.
    let messages = replay.rest().await;
    let (got, info) = finished(&messages);
    assert_eq!(got, (0..3).map(id).collect::<Vec<_>>());
    assert_eq!(info["activity_count"], 3);
    server.stop().await;
}

/// The bad requests of a Replay connect, each on a stream of its own (every authenticated
/// request counts against its stream's 5 connects per 5 minutes).
#[tokio::test]
async fn bad_replay_requests_are_refused_with_x_texts() {
    let embargoed = Settings {
        replay_embargo: Duration::from_secs(30 * 60),
        ..settings()
    };
    let now = minutes_ago(0);
    let old = minutes_ago(40);
    let format_message = |name: &str| {
        format!(
            "Invalid date format for query parameter '{name}'. Expected format is 'yyyyMMddHHmm'."
        )
    };
    let to_recent = "Invalid date for query parameter 'toDate'. Can't ask for tweets from within the past 30 minutes.";
    let from_recent = "Invalid date for query parameter 'fromDate'. Can't ask for tweets from within the past 31 minutes.";
    let cases: Vec<(String, bool, StatusCode, String)> = vec![
        (
            window(old, old + MINUTE),
            false,
            StatusCode::NOT_ACCEPTABLE,
            "This connection requires compression".to_owned(),
        ),
        (
            format!("{REPLAY}?toDate={}", date(old)),
            true,
            StatusCode::NOT_ACCEPTABLE,
            "Missing query parameter 'fromDate'".to_owned(),
        ),
        (
            format!("{REPLAY}?fromDate={}", date(old)),
            true,
            StatusCode::NOT_ACCEPTABLE,
            "Missing query parameter 'toDate'".to_owned(),
        ),
        (
            format!("{REPLAY}?fromDate=2026-01-01T00:00&toDate={}", date(old)),
            true,
            StatusCode::NOT_ACCEPTABLE,
            format_message("fromDate"),
        ),
        (
            format!("{REPLAY}?fromDate={}&toDate=20261301{}", date(old), "0000"),
            true,
            StatusCode::NOT_ACCEPTABLE,
            format_message("toDate"),
        ),
        (
            format!(
                "{REPLAY}?fromDate={}&toDate={}0",
                date(old),
                date(old + MINUTE)
            ),
            true,
            StatusCode::NOT_ACCEPTABLE,
            format_message("toDate"),
        ),
        (
            format!("{REPLAY}?fromDate=&toDate={}", date(old)),
            true,
            StatusCode::NOT_ACCEPTABLE,
            format_message("fromDate"),
        ),
        (
            window(old, now - 10 * MINUTE),
            true,
            StatusCode::NOT_ACCEPTABLE,
            to_recent.to_owned(),
        ),
        (
            window(now - 20 * MINUTE, now - 10 * MINUTE),
            true,
            StatusCode::NOT_ACCEPTABLE,
            from_recent.to_owned(),
        ),
        (
            window(now - 6 * 24 * 60 * MINUTE, old),
            true,
            StatusCode::NOT_ACCEPTABLE,
            "Can't ask for tweets from more than 5 days ago.".to_owned(),
        ),
        (
            window(old, old),
            true,
            StatusCode::NOT_ACCEPTABLE,
            "'fromDate' must be before 'toDate'".to_owned(),
        ),
        (
            window(old + MINUTE, old),
            true,
            StatusCode::NOT_ACCEPTABLE,
            "'fromDate' must be before 'toDate'".to_owned(),
        ),
    ];
    let server = TestServer::start(embargoed).await;
    server.provision("powertrack-replay").await;
    for (i, (path, gzip, status, message)) in cases.iter().enumerate() {
        let label = format!("bad{i}");
        let (created, body) = server
            .admin(
                Method::PUT,
                &format!("/admin/accounts/acme/streams/{label}"),
                json!({"product": "powertrack-replay"}),
            )
            .await;
        assert_eq!(created, StatusCode::CREATED, "{body}");
        let path = path.replace("/prod.json", &format!("/{label}.json"));
        let mut request = server
            .http
            .get(format!("{}{path}", server.base))
            .basic_auth("alice", Some("secret"));
        if *gzip {
            request = request.header("accept-encoding", "gzip");
        }
        let (got, body) = error_response(request.send().await.unwrap()).await;
        assert_eq!(got, *status, "{path}: {body}");
        assert!(
            error_message(&body).contains(message.as_str()),
            "{path}: {body}"
        );
    }
    server.stop().await;

    // A window the post log no longer holds.
    let server = started(settings()).await;
    let from = minutes_ago(4);
    seed(&server, &posts(0..2, "hello"), from + 1_000);
    seed(&server, &posts(2..4, "hello"), from + 2 * MINUTE + 1_000);
    server.state.post_log.trim_before(from + MINUTE).unwrap();
    let (status, body) = error_response(
        server
            .gnip_get(&window(from, from + MINUTE))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_ACCEPTABLE, "{body}");
    assert!(
        error_message(&body).contains("no longer holds the tweets from before"),
        "{body}"
    );
    // From the first whole minute held on, it is served.
    let mut client = server
        .gnip_connect(&window(from + 3 * MINUTE, from + 4 * MINUTE))
        .await;
    let (got, _) = finished(&client.rest().await);
    assert!(got.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn connects_are_limited_to_5_per_5_minutes() {
    let server = started(settings()).await;
    let from = minutes_ago(3);
    for remaining in (0..5).rev() {
        let response = server
            .gnip_get(&window(from, from + MINUTE))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()["x-rate-limit-remaining"],
            remaining.to_string()
        );
        StreamClient::new(response).rest().await;
    }
    let refused = server
        .gnip_get(&window(from, from + MINUTE))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.headers()["x-rate-limit-limit"], "5");
    assert_eq!(refused.headers()["x-rate-limit-remaining"], "0");
    let reset: u64 = refused.headers()["x-rate-limit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        reset > now_ms() / 1000 && reset <= now_ms() / 1000 + 300,
        "{reset}"
    );
    let (status, _) = error_response(refused).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    server.stop().await;
}

/// About 30 MB of posts matching "hello" (text that compresses poorly), more than a
/// client that does not read can have in flight (the replay's feed, the server's and the
/// client's socket buffers): a replay over them waits for its client.
fn bulk(range: std::ops::Range<u64>) -> Vec<String> {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    range
        .map(|i| {
            let mut text = format!("hello {i}");
            while text.len() < 6_000 {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                text.push(' ');
                for k in 0..6 {
                    text.push(char::from(b'a' + ((state >> (k * 5)) % 26) as u8));
                }
            }
            post(id(i), &text)
        })
        .collect()
}

const BULK: u64 = 5_000;

/// A server whose replay stream matches "hello", with [`BULK`] large posts then posts
/// `BULK..BULK + 10` in one minute; returns it and the minute.
async fn slow_replay_server() -> (TestServer, u64) {
    let server = started(Settings {
        max_batch_bytes: 64 << 10,
        ..settings()
    })
    .await;
    add_rules(&server, RULES, json!([{"value": "hello"}])).await;
    let from = minutes_ago(2);
    seed(&server, &bulk(0..BULK), from + 1_000);
    seed(&server, &posts(BULK..BULK + 10, "hello"), from + 2_000);
    (server, from)
}

#[tokio::test]
async fn a_stream_runs_one_replay_job_at_a_time() {
    let (server, from) = slow_replay_server().await;
    // Not read: the job waits for its client.
    let first = server
        .gnip_get(&window(from, from + MINUTE))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);

    let refused = server
        .gnip_get(&window(from, from + MINUTE))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.headers()["x-rate-limit-limit"], "1");
    assert_eq!(refused.headers()["x-rate-limit-remaining"], "0");
    let (status, body) = error_response(refused).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(error_message(&body).contains("one replay job"), "{body}");

    // A job whose client has gone gives its slot back.
    drop(first);
    let started = Instant::now();
    let mut next = loop {
        let response = server
            .gnip_get(&window(from + MINUTE, from + 2 * MINUTE))
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::OK {
            break StreamClient::new(response);
        }
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(started.elapsed() < WAIT, "the slot was not given back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (got, _) = finished(&next.rest().await);
    assert!(got.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn a_delete_arriving_while_its_minute_is_replayed_keeps_the_post_out() {
    let (server, from) = slow_replay_server().await;
    let mut client = server.gnip_connect(&window(from, from + MINUTE)).await;
    // The job is held back by its client, thousands of posts before the target.
    let target = id(BULK + 5);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let delete = json!({"delete": {
        "status": {"id": target, "id_str": target.to_string(), "user_id": 12, "user_id_str": "12"},
        "timestamp_ms": now_ms().to_string(),
    }});
    server.ingest(&delete.to_string()).await;
    let started = Instant::now();
    while server.state.compliance.verdict(target, Some(12), true)
        == sluice_server::compliance::Verdict::Send
    {
        assert!(started.elapsed() < WAIT, "the delete was not taken in");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let messages = client.rest().await;
    let (got, info) = finished(&messages);
    let want: Vec<u64> = (0..BULK + 10).map(id).filter(|&i| i != target).collect();
    assert_eq!(got.len(), want.len());
    assert!(
        got == want,
        "the deleted post was sent, or another one was lost"
    );
    assert_eq!(info["message"], "Replay Request Completed");
    assert_eq!(info["activity_count"], want.len());
    server.stop().await;
}

/// `text` by jack as version `versions.last()` of a post edited into `versions`.
fn version(versions: &[u64], text: &str) -> String {
    let mut post: Value = serde_json::from_str(&post(*versions.last().unwrap(), text)).unwrap();
    let ids: Vec<String> = versions.iter().map(u64::to_string).collect();
    post["edit_history"] = json!({"initial_tweet_id": ids[0], "edit_tweet_ids": ids});
    post.to_string()
}

#[tokio::test]
async fn a_replay_sends_an_edited_post_in_its_final_state_only() {
    let server = started(settings()).await;
    add_rules(&server, RULES, json!([{"value": "hello"}])).await;
    let from = minutes_ago(3);
    let end = from + 2 * MINUTE;
    // Post A edited twice, all three versions in the window, told by a `tweet_edit` event;
    // post B's first version in the window, its second (which names the first in its own
    // history) ingested now; post C never edited.
    let (a, b, c) = ([id(20), id(21), id(22)], [id(30), id(31)], id(40));
    seed(
        &server,
        &[
            post(a[0], "hello a"),
            version(&a[..2], "hello a, fixed"),
            post(b[0], "hello b"),
            post(c, "hello c"),
        ],
        from + 1_000,
    );
    seed(
        &server,
        &[version(&a, "hello a, fixed again")],
        from + MINUTE,
    );
    let edit = json!({"tweet_edit": {
        "id": a[2].to_string(), "initial_tweet_id": a[0].to_string(),
        "edit_tweet_ids": a.map(|i| i.to_string()), "timestamp_ms": now_ms().to_string(),
    }});
    server.ingest(&edit.to_string()).await;
    server.ingest(&version(&b, "hello b, fixed")).await;
    let started = Instant::now();
    while server.state.compliance.verdict(b[0], Some(12), true)
        == sluice_server::compliance::Verdict::Send
    {
        assert!(started.elapsed() < WAIT, "the edits were not taken in");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let messages = server.gnip_connect(&window(from, end)).await.rest().await;
    let (got, info) = finished(&messages);
    assert_eq!(got, vec![c, a[2]], "{messages:?}");
    assert_eq!(info["activity_count"], 2);
    let last = messages.iter().find(|m| id_of(m) == a[2]).unwrap();
    assert_eq!(
        last["edit_history"]["edit_tweet_ids"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    server.stop().await;
}
