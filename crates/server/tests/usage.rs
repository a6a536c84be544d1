//! Usage over real HTTP (docs/compatibility.md, "The Usage API"; docs/operator-interface.md,
//! "Usage"): posts delivered count once per stream per hour and day, replays apart, peak
//! and current connections, rule matches of the last hour; the counts survive a restart;
//! X's Usage API refuses malformed requests with Gnip errors and allows 2 requests per
//! minute per account.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_server::Settings;
use sluice_testkit::{StreamClient, TestServer, id_of, post};
use time::OffsetDateTime;

const STREAM: &str = "/stream/powertrack/accounts/acme/publishers/twitter/prod.json";
const RULES: &str = "/rules/powertrack/accounts/acme/publishers/twitter/prod.json";
const USAGE: &str = "/metrics/usage/accounts/acme.json";
const WAIT: Duration = Duration::from_secs(10);

fn settings() -> Settings {
    Settings {
        heartbeat: Duration::from_millis(300),
        default_max_connections: 3,
        ..Settings::default()
    }
}

fn get(server: &TestServer, path_and_query: &str) -> reqwest::RequestBuilder {
    server
        .http
        .get(format!("{}{path_and_query}", server.base))
        .basic_auth("alice", Some("secret"))
}

async fn connect(server: &TestServer, path_and_query: &str) -> StreamClient {
    let response = get(server, path_and_query)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path_and_query}");
    StreamClient::new(response)
}

async fn add_rules(server: &TestServer, rules: Value) {
    let response = server
        .http
        .post(format!("{}{RULES}", server.base))
        .basic_auth("alice", Some("secret"))
        .json(&json!({ "rules": rules }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
}

/// `yyyymmddhhmm` of now plus `hours`.
fn date(hours: i64) -> String {
    let t = OffsetDateTime::now_utc() + time::Duration::hours(hours);
    format!(
        "{:04}{:02}{:02}{:02}{:02}",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute()
    )
}

/// The console's view, through the admin API.
async fn console(server: &TestServer, query: &str) -> Value {
    let (status, body) = server
        .admin(
            Method::GET,
            &format!("/admin/accounts/acme/usage{query}"),
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The sum of `field` over a stream's buckets in the console's view.
fn stream_sum(view: &Value, label: &str, field: &str) -> u64 {
    stream_of(view, label)["usage"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b[field].as_u64().unwrap())
        .sum()
}

fn stream_of<'v>(view: &'v Value, label: &str) -> &'v Value {
    view["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["label"] == label)
        .unwrap_or_else(|| panic!("no stream {label}: {view}"))
}

/// Polls the console's view (hours around now) until the stream's delivered and replayed
/// counts reach `want` (the last posts' counts are added just after they are queued).
async fn counted(server: &TestServer, want: (u64, u64)) -> Value {
    let query = format!("?bucket=hour&from={}&to={}", date(-1), date(1));
    let started = Instant::now();
    loop {
        let view = console(server, &query).await;
        let got = (
            stream_sum(&view, "prod", "activities"),
            stream_sum(&view, "prod", "replayed"),
        );
        if got == want || started.elapsed() > WAIT {
            assert_eq!(got, want, "{view}");
            return view;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A Usage API answer: status and JSON body.
async fn usage(
    server: &TestServer,
    query: &str,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let response = get(server, &format!("{USAGE}{query}"))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.json().await.unwrap())
}

/// The sum of the `activities` of `used` entries.
fn used_sum(used: &Value) -> u64 {
    used.as_array()
        .unwrap()
        .iter()
        .map(|e| e["activities"].as_u64().unwrap())
        .sum()
}

#[tokio::test]
async fn delivered_posts_count_once_per_stream_per_hour_and_day_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path(), settings()).await;
    server.provision("powertrack").await;
    add_rules(
        &server,
        json!([
            {"value": "hello", "tag": "greetings"},
            {"value": "world"},
            {"value": "nevermatches"},
        ]),
    )
    .await;
    let mut a = connect(&server, STREAM).await;
    let mut b = connect(&server, STREAM).await;
    // 6 posts, 5 of which match (2 match two rules).
    let ndjson = [
        post(1_700_000_000_000_000_001, "hello"),
        post(1_700_000_000_000_000_002, "hello world"),
        post(1_700_000_000_000_000_003, "world"),
        post(1_700_000_000_000_000_004, "hello world again"),
        post(1_700_000_000_000_000_005, "hello"),
        post(1_700_000_000_000_000_006, "nothing to see"),
    ]
    .join("\n");
    server.ingest(&ndjson).await;
    for client in [&mut a, &mut b] {
        let mut got = Vec::new();
        while got.len() < 5 {
            got.extend(client.until_heartbeat().await.iter().map(id_of));
        }
        assert_eq!(got.len(), 5);
    }
    // Two connections got each post: counted once.
    let view = counted(&server, (5, 0)).await;
    let prod = stream_of(&view, "prod");
    assert_eq!(prod["connections"], 2);
    assert_eq!(prod["rules"], 3);
    assert_eq!(prod["total"]["peak_connections"], 2);
    assert_eq!(prod["deleted"], false);
    let matches = &prod["rule_matches_last_hour"];
    let top: Vec<(&str, u64)> = matches["top"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["value"].as_str().unwrap(), r["matches"].as_u64().unwrap()))
        .collect();
    assert_eq!(top, [("hello", 4), ("world", 3)]);
    assert_eq!(matches["top"][0]["tag"], "greetings");
    assert_eq!(matches["never_matched_count"], 1);
    assert_eq!(matches["never_matched"][0]["value"], "nevermatches");
    assert_eq!(matches["total_matches"], 7);

    // A third connection replays the last minute: counted as replayed, apart.
    let mut replay = connect(&server, &format!("{STREAM}?backfillMinutes=1")).await;
    let mut replayed = Vec::new();
    while replayed.len() < 5 {
        replayed.extend(replay.until_heartbeat().await.iter().map(id_of));
    }
    let view = counted(&server, (5, 5)).await;
    assert_eq!(stream_of(&view, "prod")["total"]["peak_connections"], 3);
    assert_eq!(stream_of(&view, "prod")["connections"], 3);
    let totals: u64 = view["totals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["activities"].as_u64().unwrap())
        .sum();
    assert_eq!(totals, 5);

    // X's Usage API: live and replayed posts together, by hour and by day.
    let (status, headers, hours) = usage(
        &server,
        &format!("?bucket=hour&fromDate={}&toDate={}", date(-1), date(1)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{hours}");
    assert_eq!(headers["x-rate-limit-limit"], "2");
    assert_eq!(headers["x-rate-limit-remaining"], "1");
    assert_eq!(hours["account"]["name"], "acme");
    assert_eq!(hours["bucket"], "hour");
    let twitter = &hours["publishers"][0];
    assert_eq!(twitter["type"], "twitter");
    assert_eq!(used_sum(&twitter["used"]), 10);
    let used = twitter["used"].as_array().unwrap();
    assert!((2..=3).contains(&used.len()), "{used:?}");
    assert_eq!(used[0]["searchRequests30Day"], 0);
    let product = &twitter["products"][0];
    assert_eq!(product["type"], "PowerTrack");
    assert_eq!(product["endpoints"][0]["label"], "prod");
    assert_eq!(used_sum(&product["endpoints"][0]["used"]), 10);
    // The month so far is at least what was delivered; the projection no less.
    assert!(twitter["projected"]["activities"].as_u64().unwrap() >= 10);

    let (status, _, days) = usage(
        &server,
        &format!("?bucket=day&fromDate={}&toDate={}", date(-24), date(1)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{days}");
    let used = days["publishers"][0]["used"].as_array().unwrap();
    assert!((2..=3).contains(&used.len()), "{used:?}");
    assert!(
        used.iter()
            .all(|e| e["timePeriod"].as_str().unwrap().ends_with("0000"))
    );
    assert_eq!(used_sum(&days["publishers"][0]["used"]), 10);

    // Stopped (counts stored at shutdown) and started again on the same data dir.
    drop((a, b, replay));
    server.stop().await;
    let server = TestServer::start_in(dir.path(), settings()).await;
    let view = counted(&server, (5, 5)).await;
    assert_eq!(stream_of(&view, "prod")["connections"], 0);
    assert_eq!(stream_of(&view, "prod")["total"]["peak_connections"], 3);
    let (status, _, days) = usage(&server, "?bucket=day").await;
    assert_eq!(status, StatusCode::OK, "{days}");
    assert_eq!(used_sum(&days["publishers"][0]["used"]), 10);
    // By month (the default): this month and the two before.
    let (status, _, months) = usage(&server, "").await;
    assert_eq!(status, StatusCode::OK, "{months}");
    assert_eq!(months["bucket"], "month");
    assert_eq!(months["publishers"][0]["used"].as_array().unwrap().len(), 3);
    assert_eq!(used_sum(&months["publishers"][0]["used"]), 10);
    server.stop().await;
}

/// Checks a Gnip error body: `{"error":{"message","sent"}}`; returns the message.
fn gnip_error(body: &Value) -> &str {
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    assert_eq!(body["error"].as_object().unwrap().len(), 2, "{body}");
    assert!(body["error"]["sent"].is_string(), "{body}");
    body["error"]["message"].as_str().unwrap()
}

#[tokio::test]
async fn malformed_usage_requests_get_gnip_errors_and_cost_no_quota() {
    let server = TestServer::start(settings()).await;
    server.provision("powertrack").await;
    for (path, body) in [
        ("/admin/accounts/globex", json!({})),
        (
            "/admin/accounts/globex/users/bob",
            json!({"password": "hunter2"}),
        ),
    ] {
        let (status, _) = server.admin(Method::PUT, path, body).await;
        assert!(status.is_success());
    }
    let bad_date = "expected a UTC time as yyyymmddhhmm (e.g. 201810010000).";
    #[rustfmt::skip]
    let cases: &[(&str, (&str, &str), StatusCode, &str)] = &[
        ("?bucket=week", ("alice", "secret"), StatusCode::BAD_REQUEST, "Invalid bucket \"week\": expected \"month\", \"day\" or \"hour\"."),
        ("?bucket=day&fromDate=2026-12-01", ("alice", "secret"), StatusCode::BAD_REQUEST, "Invalid fromDate \"2026-12-01\": "),
        ("?toDate=202602300000", ("alice", "secret"), StatusCode::BAD_REQUEST, "Invalid toDate \"202602300000\": "),
        ("?fromDate=202612020000&toDate=202612010000", ("alice", "secret"), StatusCode::BAD_REQUEST, "fromDate must be before toDate."),
        ("?bucket=hour&fromDate=202601010000&toDate=202612010000", ("alice", "secret"), StatusCode::BAD_REQUEST, "The range is too long: at most 31 days of hours per request."),
        ("", ("alice", "wrong"), StatusCode::UNAUTHORIZED, "Unauthorized: HTTP authentication failed due to invalid credentials."),
        ("", ("bob", "hunter2"), StatusCode::UNAUTHORIZED, "Unauthorized: HTTP authentication failed due to invalid credentials."),
    ];
    for &(query, (user, password), status, message) in cases {
        let response = server
            .http
            .get(format!("{}{USAGE}{query}", server.base))
            .basic_auth(user, Some(password))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{query} {user}");
        let body: Value = response.json().await.unwrap();
        let got = gnip_error(&body);
        assert!(got.starts_with(message), "{query}: {got}");
        if message.ends_with(": ") {
            assert!(got.ends_with(bad_date), "{got}");
        }
    }
    // An unknown account: no user of it can authenticate.
    let response = server
        .http
        .get(format!(
            "{}/metrics/usage/accounts/nobody.json",
            server.base
        ))
        .basic_auth("alice", Some("secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    gnip_error(&response.json().await.unwrap());
    // Without `.json`: not the Usage API.
    let response = get(&server, "/metrics/usage/accounts/acme")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    gnip_error(&response.json().await.unwrap());

    // None of the above used the account's 2 requests of this minute, unless the minute
    // turned meanwhile (then both are available all the same).
    let (status, headers, _) = usage(&server, "?bucket=day").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["x-rate-limit-remaining"], "1");

    // The console's endpoint: admin token only, 404 for an unknown account, 400s alike.
    let (status, body) = server
        .admin(Method::GET, "/admin/accounts/nobody/usage", Value::Null)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, body) = server
        .admin(
            Method::GET,
            "/admin/accounts/acme/usage?bucket=year",
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        gnip_error(&body),
        "Invalid bucket \"year\": expected \"month\", \"day\" or \"hour\"."
    );
    let (status, body) = server
        .admin(
            Method::GET,
            "/admin/accounts/acme/usage?from=202612020000&to=202612010000",
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(gnip_error(&body), "from must be before to.");
    let response = get(&server, "/admin/accounts/acme/usage")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_usage_api_allows_two_requests_per_minute_per_account() {
    let server = TestServer::start(settings()).await;
    server.provision("powertrack").await;
    // Start early in a minute, so that the three requests fall in one window.
    while OffsetDateTime::now_utc().second() > 50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for remaining in ["1", "0"] {
        let (status, headers, body) = usage(&server, "").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(headers["x-rate-limit-remaining"], remaining);
    }
    let (third, headers, body) = usage(&server, "").await;
    assert_eq!(third, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(headers["x-rate-limit-limit"], "2");
    assert_eq!(headers["x-rate-limit-remaining"], "0");
    let reset: u64 = headers["x-rate-limit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let now = OffsetDateTime::now_utc().unix_timestamp() as u64;
    assert!(reset > now && reset <= now + 60, "{reset} vs {now}");
    assert!(gnip_error(&body).starts_with("Rate limit exceeded"));
}
