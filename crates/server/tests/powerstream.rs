//! Powerstream over real HTTP (docs/compatibility.md §6 and "Decisions" "Powerstream"): bearer tokens, the
//! rules API (shapes, string ids, delete both ways, 100 per add, 1,000 per account, 2,048
//! characters, the operator set, 50 requests per 24 h, `dry_run`, unknown query
//! parameters), v2 problem bodies, and the stream
//! (identity and gzip, `matching_rules`, heartbeats, `localDcOnly` with its headers and
//! metadata line, datacenters, backfill, the connection cap, slow consumers, shutdown).

use std::collections::VecDeque;
use std::io::{Read as _, Write as _};
use std::pin::Pin;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_server::Settings;
use sluice_server::api::powerstream::stream_ref;
use sluice_server::registry::LiveStream;
use sluice_testkit as common;
use sluice_testkit::{TestServer, post};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const WAIT: Duration = Duration::from_secs(5);

/// A server with account `acme` and a Powerstream token for it.
async fn start(settings: Settings) -> (TestServer, String) {
    let server = TestServer::start(settings).await;
    let token = token_for(&server, "acme").await;
    (server, token)
}

async fn token_for(server: &TestServer, account: &str) -> String {
    server
        .admin(
            Method::PUT,
            &format!("/admin/accounts/{account}"),
            json!({}),
        )
        .await;
    let (status, body) = server
        .admin(
            Method::POST,
            &format!("/admin/accounts/{account}/tokens"),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

fn rules_url(server: &TestServer) -> String {
    format!("{}/2/powerstream/rules", server.base)
}

/// An answer: status, headers, JSON body.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

async fn answer(request: reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.unwrap();
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}: {bytes:?}"));
    Answer {
        status,
        headers,
        body,
    }
}

async fn rules(
    server: &TestServer,
    token: &str,
    method: Method,
    query: &str,
    body: Value,
) -> Answer {
    let mut request = server
        .http
        .request(method.clone(), format!("{}{query}", rules_url(server)))
        .bearer_auth(token)
        .header("content-type", "application/json");
    if method != Method::GET {
        request = request.body(body.to_string());
    }
    answer(request).await
}

async fn add(server: &TestServer, token: &str, rules_body: Value) -> Answer {
    rules(server, token, Method::POST, "", rules_body).await
}

async fn list(server: &TestServer, token: &str) -> Answer {
    rules(server, token, Method::GET, "", Value::Null).await
}

/// Checks a v2 problem body and returns it.
fn assert_problem<'a>(a: &'a Answer, status: StatusCode, kind: &str) -> &'a Value {
    assert_eq!(a.status, status, "{}", a.body);
    assert_eq!(a.headers["content-type"], "application/problem+json");
    assert_eq!(a.body["type"], kind, "{}", a.body);
    assert_eq!(a.body["status"], status.as_u16(), "{}", a.body);
    assert!(a.body["title"].is_string(), "{}", a.body);
    &a.body
}

const INVALID_REQUEST: &str = "https://api.x.com/2/problems/invalid-request";
const INVALID_RULES: &str = "https://api.x.com/2/problems/invalid-rules";

fn live(server: &TestServer, account: &str) -> std::sync::Arc<LiveStream> {
    server.state.registry.get(&stream_ref(account)).unwrap()
}

async fn eventually(what: &str, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < WAIT, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

// ---- auth -----------------------------------------------------------------------------

#[tokio::test]
async fn missing_unknown_and_unsupported_credentials_get_v2_problems() {
    let (server, _token) = start(Settings::default()).await;
    for url in [rules_url(&server), format!("{}/2/powerstream", server.base)] {
        let unauthorized = [
            server.http.get(&url),
            server.http.get(&url).bearer_auth("sl_ps_not-a-token"),
            server.http.get(&url).header("authorization", "Bearer "),
        ];
        for request in unauthorized {
            let a = answer(request).await;
            assert_problem(&a, StatusCode::UNAUTHORIZED, "about:blank");
            assert_eq!(
                a.body,
                json!({"title":"Unauthorized","detail":"Unauthorized","type":"about:blank","status":401})
            );
        }
        // The admin token is not a Powerstream token.
        let a = answer(server.http.get(&url).bearer_auth(common::ADMIN)).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED);
        let a = answer(server.http.get(&url).basic_auth("alice", Some("secret"))).await;
        let body = assert_problem(
            &a,
            StatusCode::FORBIDDEN,
            "https://api.x.com/2/problems/unsupported-authentication",
        );
        assert_eq!(body["title"], "Unsupported Authentication");
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("Supported authentication types are [OAuth 2.0 Application-Only]"),
            "{body}"
        );
    }
    server.stop().await;
}

// ---- rules ----------------------------------------------------------------------------

#[tokio::test]
async fn rules_are_added_listed_and_deleted_by_id_and_by_value() {
    let (server, token) = start(Settings::default()).await;

    // Empty to begin with.
    let a = list(&server, &token).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["data"], json!({"rules": []}));
    assert_eq!(a.body["meta"]["result_count"], 0);

    // Add: string ids, no tag key for untagged rules, duplicates (also within the batch)
    // named with the existing rule's id.
    let a = add(
        &server,
        &token,
        json!({"rules": [
            {"value": "(cat OR dog) lang:en -is:retweet", "tag": "pet-monitor"},
            {"value": "from:jack"},
            {"value": "from:jack", "tag": "again"},
        ]}),
    )
    .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert_eq!(a.headers["content-type"], "application/json; charset=utf-8");
    let created = a.body["data"]["rules"].as_array().unwrap().clone();
    assert_eq!(created.len(), 2);
    let pets_id = created[0]["id"].as_str().unwrap().to_owned();
    let jack_id = created[1]["id"].as_str().unwrap().to_owned();
    assert!(pets_id.parse::<u64>().is_ok() && jack_id.parse::<u64>().is_ok());
    assert_eq!(
        created[0],
        json!({"id": pets_id, "value": "(cat OR dog) lang:en -is:retweet", "tag": "pet-monitor"})
    );
    assert_eq!(created[1], json!({"id": jack_id, "value": "from:jack"}));
    assert_eq!(
        a.body["meta"]["summary"],
        json!({"created": 2, "not_created": 1})
    );
    assert_eq!(
        a.body["errors"],
        json!([{"value": "from:jack", "id": jack_id, "title": "DuplicateRule",
                "type": "https://api.x.com/2/problems/duplicate-rules"}])
    );
    let sent = a.body["meta"]["sent"].as_str().unwrap();
    assert!(sent.ends_with('Z') && sent.len() == 24, "{sent}");

    // Re-adding only duplicates is still a 201 that creates nothing.
    let a = add(&server, &token, json!({"rules": [{"value": "from:jack"}]})).await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(a.body["data"]["rules"], json!([]));

    // List, oldest first.
    let a = list(&server, &token).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["data"]["rules"], json!(created));
    assert_eq!(a.body["meta"]["result_count"], 2);

    // Delete by id with DELETE (the sample client sends whole rule objects): no
    // not_deleted key when everything was deleted.
    let a = rules(
        &server,
        &token,
        Method::DELETE,
        "",
        json!({"rules": [created[0].clone()]}),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body["data"], json!({"deleted": 1}));

    // Delete by value with POST ?_method=delete, one of them unknown, one by a numeric id
    // that names no rule.
    let a = rules(
        &server,
        &token,
        Method::POST,
        "?_method=delete",
        json!({"rules": [{"value": "from:jack", "tag": "ignored"}, {"value": "nope"}, {"id": 42}]}),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(
        a.body["data"],
        json!({"deleted": 1, "not_deleted": 2, "detail": [
            {"rule": {"value": "nope"}, "deleted": false, "message": "Rule does not exist"},
            {"rule": {"id": "42"}, "deleted": false, "message": "Rule does not exist"},
        ]})
    );
    let a = list(&server, &token).await;
    assert_eq!(a.body["data"]["rules"], json!([]));
    assert!(live(&server, "acme").rules.is_empty());

    // Each account has its own rule set.
    let other = token_for(&server, "globex").await;
    add(&server, &other, json!({"rules": [{"value": "globex"}]})).await;
    assert_eq!(list(&server, &token).await.body["data"]["rules"], json!([]));
    assert_eq!(
        list(&server, &other).await.body["data"]["rules"][0]["value"],
        "globex"
    );
    server.stop().await;
}

#[tokio::test]
async fn dry_runs_answer_like_the_change_and_change_nothing() {
    let (server, token) = start(Settings::default()).await;
    let a = add(&server, &token, json!({"rules": [{"value": "from:jack"}]})).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let jack = a.body["data"]["rules"][0].clone();
    let jack_id = jack["id"].as_str().unwrap().to_owned();
    let unchanged = |server: &TestServer| {
        assert_eq!(live(server, "acme").rules.len(), 1, "matching is unchanged");
    };

    // An add: 200 with what would be created and the duplicates, nothing created.
    let batch = json!({"rules": [
        {"value": "cat", "tag": "pets"},
        {"value": "from:jack"},
    ]});
    let a = rules(
        &server,
        &token,
        Method::POST,
        "?dry_run=true",
        batch.clone(),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let would = a.body["data"]["rules"].as_array().unwrap();
    assert_eq!(would.len(), 1, "{}", a.body);
    assert_eq!(
        (&would[0]["value"], &would[0]["tag"]),
        (&json!("cat"), &json!("pets"))
    );
    assert!(would[0]["id"].as_str().unwrap().parse::<u64>().is_ok());
    assert_eq!(
        a.body["meta"]["summary"],
        json!({"created": 1, "not_created": 1})
    );
    assert_eq!(a.body["errors"][0]["id"], jack_id);
    assert_eq!(
        list(&server, &token).await.body["data"]["rules"],
        json!([jack])
    );
    unchanged(&server);

    // An invalid rule is refused as without dry_run.
    let a = rules(
        &server,
        &token,
        Method::POST,
        "?dry_run=true",
        json!({"rules": [{"value": "cat sample:10"}]}),
    )
    .await;
    assert_problem(&a, StatusCode::UNPROCESSABLE_ENTITY, INVALID_RULES);

    // Deletes, both ways: what would be deleted, nothing deleted.
    let body = json!({"rules": [{"id": jack_id}, {"value": "nope"}]});
    for (method, query) in [
        (Method::DELETE, "?dry_run=true"),
        (Method::POST, "?_method=delete&dry_run=true"),
    ] {
        let a = rules(&server, &token, method, query, body.clone()).await;
        assert_eq!(a.status, StatusCode::OK, "{query}: {}", a.body);
        assert_eq!(a.body["data"]["deleted"], 1, "{query}: {}", a.body);
        assert_eq!(a.body["data"]["not_deleted"], 1, "{query}: {}", a.body);
    }
    assert_eq!(
        list(&server, &token).await.body["data"]["rules"],
        json!([jack])
    );
    unchanged(&server);

    // dry_run=false changes, as no dry_run does.
    let a = rules(&server, &token, Method::POST, "?dry_run=false", batch).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    assert_eq!(live(&server, "acme").rules.len(), 2);
    server.stop().await;
}

#[tokio::test]
async fn unknown_query_parameters_of_rule_changes_are_invalid_requests() {
    let (server, token) = start(Settings::default()).await;
    let one = json!({"rules": [{"value": "cat"}]});
    #[rustfmt::skip]
    let refused = [
        (Method::POST, "?dryRun=true", "The query parameter [dryRun] is not one of [dry_run,_method]"),
        (Method::POST, "?delete_all=true", "The query parameter [delete_all] is not one of [dry_run,_method]"),
        (Method::POST, "?dry_run=1", "The `dry_run` query parameter value [1] is not one of [true,false]"),
        (Method::POST, "?_method=delete&x", "The query parameter [x] is not one of [dry_run,_method]"),
        (Method::DELETE, "?dryrun=true", "The query parameter [dryrun] is not one of [dry_run]"),
        (Method::DELETE, "?_method=delete", "The query parameter [_method] is not one of [dry_run]"),
    ];
    for (method, query, detail) in refused {
        if method == Method::DELETE {
            add(&server, &token, one.clone()).await;
        }
        let a = rules(&server, &token, method.clone(), query, one.clone()).await;
        let problem = assert_problem(&a, StatusCode::BAD_REQUEST, INVALID_REQUEST);
        assert_eq!(problem["detail"], detail, "{method} {query}");
        let listed = list(&server, &token).await.body["data"]["rules"].clone();
        let expected = usize::from(method == Method::DELETE);
        assert_eq!(
            listed.as_array().unwrap().len(),
            expected,
            "{method} {query}: {listed}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn malformed_bodies_and_oversized_adds_are_invalid_requests() {
    let (server, token) = start(Settings::default()).await;
    let raw = |body: &str, method: Method, query: &str| {
        server
            .http
            .request(method, format!("{}{query}", rules_url(&server)))
            .bearer_auth(&token)
            .body(body.to_owned())
    };
    for (body, method, query) in [
        ("not json", Method::POST, ""),
        (r#"{"rules":[{"tag":"no value"}]}"#, Method::POST, ""),
        (r#"{"rules":[]}"#, Method::POST, ""),
        (r#"{"add":[{"value":"v2 shape"}]}"#, Method::POST, ""),
        (r#"{"rules":[]}"#, Method::DELETE, ""),
        (r#"{"rules":[{"id":true}]}"#, Method::DELETE, ""),
        (r#"{"rules":[{"value":"x"}]}"#, Method::POST, "?_method=get"),
    ] {
        let a = answer(raw(body, method, query)).await;
        let problem = assert_problem(&a, StatusCode::BAD_REQUEST, INVALID_REQUEST);
        assert_eq!(problem["title"], "Invalid Request");
        assert!(problem["detail"].is_string());
    }

    // 100 rules per add, no more.
    let many = |n: usize, prefix: &str| {
        let rules: Vec<Value> = (0..n)
            .map(|i| json!({"value": format!("{prefix}{i}")}))
            .collect();
        json!({ "rules": rules })
    };
    let a = add(&server, &token, many(101, "word")).await;
    let problem = assert_problem(&a, StatusCode::BAD_REQUEST, INVALID_REQUEST);
    assert!(
        problem["detail"].as_str().unwrap().contains("at most 100"),
        "{problem}"
    );
    assert!(live(&server, "acme").rules.is_empty());
    let a = add(&server, &token, many(100, "word")).await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(a.body["meta"]["summary"]["created"], 100);
    server.stop().await;
}

#[tokio::test]
async fn invalid_rules_refuse_the_whole_batch_naming_each_problem() {
    let (server, token) = start(Settings::default()).await;
    let longest = "a".repeat(2048);
    let too_long = "a".repeat(2049);
    let a = add(
        &server,
        &token,
        json!({"rules": [
            {"value": "cat"},
            {"value": "cat sample:10"},
            {"value": "#rust is:verified"},
            {"value": too_long},
            {"value": "lang:en"},
            {"value": "dog", "tag": "t".repeat(256)},
        ]}),
    )
    .await;
    let problem = assert_problem(&a, StatusCode::UNPROCESSABLE_ENTITY, INVALID_RULES);
    let errors = problem["errors"].as_array().unwrap();
    // The valid rule is not listed, and nothing was created.
    let values: Vec<&str> = errors
        .iter()
        .map(|e| e["value"].as_str().unwrap())
        .collect();
    assert_eq!(
        values,
        [
            "cat sample:10",
            "#rust is:verified",
            too_long.as_str(),
            "lang:en",
            "dog"
        ]
    );
    for error in errors {
        assert_eq!(error["title"], "UnprocessableEntity");
        assert_eq!(error["type"], INVALID_RULES);
    }
    assert_eq!(
        errors[0]["details"],
        json!(["Reference to invalid operator 'sample' (at position 5)."])
    );
    let hashtag = errors[1]["details"].to_string();
    assert!(hashtag.contains("invalid operator"), "{hashtag}");
    assert!(
        hashtag.contains("'is'") || hashtag.contains("verified"),
        "{hashtag}"
    );
    assert!(
        errors[2]["details"][0]
            .as_str()
            .unwrap()
            .contains("longer than 2048 characters"),
        "{}",
        errors[2]
    );
    assert!(
        errors[3]["details"][0]
            .as_str()
            .unwrap()
            .contains("standalone"),
        "{}",
        errors[3]
    );
    assert_eq!(
        errors[4]["details"],
        json!(["Tags cannot be longer than 255 characters."])
    );
    assert!(list(&server, &token).await.body["data"]["rules"] == json!([]));

    // Exactly 2,048 characters is fine.
    let a = add(&server, &token, json!({"rules": [{"value": longest}]})).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    server.stop().await;
}

#[tokio::test]
async fn rules_with_control_characters_are_invalid_rules() {
    let (server, token) = start(Settings::default()).await;
    let a = add(
        &server,
        &token,
        json!({"rules": [{"value": "cat"}, {"value": "cat\u{0}dog"}, {"value": "\u{1b}[2Jdog"}]}),
    )
    .await;
    let problem = assert_problem(&a, StatusCode::UNPROCESSABLE_ENTITY, INVALID_RULES);
    assert_eq!(
        problem["errors"],
        json!([
            {"value": "cat\u{0}dog", "title": "UnprocessableEntity", "type": INVALID_RULES,
             "details": ["Rules cannot contain control characters: found U+0000 (at position 4)."]},
            {"value": "\u{1b}[2Jdog", "title": "UnprocessableEntity", "type": INVALID_RULES,
             "details": ["Rules cannot contain control characters: found U+001B (at position 1)."]},
        ])
    );
    assert_eq!(list(&server, &token).await.body["data"]["rules"], json!([]));
    server.stop().await;
}

#[tokio::test]
async fn an_account_holds_at_most_a_thousand_rules() {
    let (server, token) = start(Settings::default()).await;
    for batch in 0..10 {
        let rules: Vec<Value> = (0..100)
            .map(|i| json!({"value": format!("word{batch}x{i}")}))
            .collect();
        let a = add(&server, &token, json!({ "rules": rules })).await;
        assert_eq!(a.status, StatusCode::CREATED, "batch {batch}: {}", a.body);
    }
    let a = add(&server, &token, json!({"rules": [{"value": "one more"}]})).await;
    let problem = assert_problem(
        &a,
        StatusCode::UNPROCESSABLE_ENTITY,
        "https://api.x.com/2/problems/rule-cap",
    );
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .starts_with("Request exceeds account's Rule Limit."),
        "{problem}"
    );
    // Duplicates add nothing, so they still go through at the cap.
    let a = add(&server, &token, json!({"rules": [{"value": "word0x0"}]})).await;
    assert_eq!(a.status, StatusCode::CREATED);
    assert_eq!(
        list(&server, &token).await.body["meta"]["result_count"],
        1000
    );
    assert_eq!(live(&server, "acme").rules.len(), 1000);
    server.stop().await;
}

#[tokio::test]
async fn fifty_rules_requests_per_day_then_429_with_rate_headers() {
    let (server, token) = start(Settings::default()).await;
    for i in 0..50u32 {
        let a = if i % 2 == 0 {
            list(&server, &token).await
        } else {
            // Refused requests count too.
            add(&server, &token, json!({"rules": []})).await
        };
        assert_eq!(a.headers["x-rate-limit-limit"], "50");
        assert_eq!(
            a.headers["x-rate-limit-remaining"],
            (49 - i).to_string().as_str()
        );
    }
    let a = list(&server, &token).await;
    let problem = assert_problem(&a, StatusCode::TOO_MANY_REQUESTS, "about:blank");
    assert_eq!(problem["title"], "Too Many Requests");
    assert_eq!(a.headers["x-rate-limit-limit"], "50");
    assert_eq!(a.headers["x-rate-limit-remaining"], "0");
    let reset: u64 = a.headers["x-rate-limit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(reset > now && reset <= now + 24 * 3600, "{reset} vs {now}");
    let a = rules(
        &server,
        &token,
        Method::DELETE,
        "",
        json!({"rules": [{"value": "x"}]}),
    )
    .await;
    assert_eq!(a.status, StatusCode::TOO_MANY_REQUESTS);

    // The limit is per account; the stream is not limited.
    let other = token_for(&server, "globex").await;
    assert_eq!(list(&server, &other).await.status, StatusCode::OK);
    let response = server
        .http
        .get(format!("{}/2/powerstream", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    drop(response);
    server.stop().await;
}

// ---- stream ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Line {
    Heartbeat,
    Message(Value),
}

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// A stream reader for identity or gzip bodies; every chunk must decode to whole
/// `\r\n`-terminated lines.
struct StreamClient {
    headers: HeaderMap,
    body: ByteStream,
    gzip: Option<flate2::write::GzDecoder<Vec<u8>>>,
    lines: VecDeque<Line>,
    ended: bool,
}

impl StreamClient {
    fn new(response: reqwest::Response) -> Self {
        assert_eq!(response.status(), StatusCode::OK);
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], "application/json; charset=utf-8");
        assert_eq!(headers["transfer-encoding"], "chunked");
        let gzip = headers.get("content-encoding").map(|v| {
            assert_eq!(v, "gzip");
            flate2::write::GzDecoder::new(Vec::new())
        });
        Self {
            headers,
            body: Box::pin(response.bytes_stream()),
            gzip,
            lines: VecDeque::new(),
            ended: false,
        }
    }

    async fn next_line(&mut self) -> Option<Line> {
        loop {
            if let Some(line) = self.lines.pop_front() {
                return Some(line);
            }
            if self.ended {
                return None;
            }
            let next = tokio::time::timeout(WAIT, self.body.next())
                .await
                .expect("the stream went silent");
            let Some(chunk) = next else {
                self.ended = true;
                continue;
            };
            let chunk = chunk.expect("the body ends cleanly");
            assert!(!chunk.is_empty());
            let text = match &mut self.gzip {
                Some(decoder) => {
                    decoder.write_all(&chunk).unwrap();
                    decoder.flush().unwrap();
                    String::from_utf8(std::mem::take(decoder.get_mut())).unwrap()
                }
                None => String::from_utf8(chunk.to_vec()).unwrap(),
            };
            if text.is_empty() {
                continue; // the gzip trailer
            }
            assert!(
                text.ends_with("\r\n"),
                "a chunk held a partial line: {text:?}"
            );
            for line in text[..text.len() - 2].split("\r\n") {
                self.lines.push_back(if line.is_empty() {
                    Line::Heartbeat
                } else {
                    Line::Message(
                        serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")),
                    )
                });
            }
        }
    }

    async fn next_message(&mut self) -> Value {
        loop {
            match self.next_line().await.expect("the stream ended") {
                Line::Heartbeat => {}
                Line::Message(m) => return m,
            }
        }
    }

    async fn rest(&mut self) -> Vec<Value> {
        let mut out = Vec::new();
        while let Some(line) = self.next_line().await {
            if let Line::Message(m) = line {
                out.push(m);
            }
        }
        out
    }
}

async fn connect(server: &TestServer, token: &str, query: &str, gzip: bool) -> StreamClient {
    let mut request = server
        .http
        .get(format!("{}/2/powerstream{query}", server.base))
        .bearer_auth(token);
    if gzip {
        request = request.header("accept-encoding", "gzip, deflate");
    }
    StreamClient::new(request.send().await.unwrap())
}

fn id_of(message: &Value) -> u64 {
    message["id_str"]
        .as_str()
        .unwrap_or_else(|| panic!("not a post: {message}"))
        .parse()
        .unwrap()
}

async fn ingest_in(server: &TestServer, datacenter: &str, ndjson: &str) {
    let response = server
        .http
        .post(format!("{}/ingest?datacenter={datacenter}", server.base))
        .bearer_auth(common::ADMIN)
        .body(ndjson.to_owned())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["rejected"], json!([]), "{body}");
}

async fn add_one(server: &TestServer, token: &str, value: &str, tag: Option<&str>) -> String {
    let rule = match tag {
        Some(tag) => json!({"value": value, "tag": tag}),
        None => json!({"value": value}),
    };
    let a = add(server, token, json!({"rules": [rule]})).await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    a.body["data"]["rules"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn identity_and_gzip_streams_carry_matching_posts_with_matching_rules() {
    let (server, token) = start(Settings::default()).await;
    let cats = add_one(&server, &token, "cat", Some("pets")).await;
    let hats = add_one(&server, &token, "hat", None).await;

    // No Accept-Encoding: identity. No localDcOnly: no metadata line, no headers.
    let mut plain = connect(&server, &token, "", false).await;
    assert!(plain.headers.get("content-encoding").is_none());
    assert!(plain.headers.get("x-powerstream-datacenter").is_none());
    assert!(plain.headers.get("x-powerstream-localdconly").is_none());
    let mut gzipped = connect(&server, &token, "", true).await;
    assert_eq!(gzipped.headers["content-encoding"], "gzip");

    server
        .ingest(
            &[
                post(1, "a dog"),
                post(2, "a cat in a hat"),
                post(3, "hat only"),
            ]
            .join("\n"),
        )
        .await;
    for stream in [&mut plain, &mut gzipped] {
        let first = stream.next_message().await;
        assert_eq!(id_of(&first), 2);
        assert_eq!(first["text"], "a cat in a hat");
        // PowerTrack-style: numeric id plus id_str, which is the rules API's string id.
        let mut matched = first["matching_rules"].as_array().unwrap().clone();
        matched.sort_by_key(|r| r["id_str"].as_str().unwrap().to_owned());
        let mut expected = vec![
            json!({"tag": "pets", "id": cats.parse::<u64>().unwrap(), "id_str": cats}),
            json!({"tag": null, "id": hats.parse::<u64>().unwrap(), "id_str": hats}),
        ];
        expected.sort_by_key(|r| r["id_str"].as_str().unwrap().to_owned());
        assert_eq!(matched, expected);
        let second = stream.next_message().await;
        assert_eq!(id_of(&second), 3);
        assert_eq!(second["matching_rules"][0]["id_str"], hats);
    }
    server.stop().await;
}

#[tokio::test]
async fn local_dc_only_gets_headers_metadata_and_only_local_posts() {
    let (server, token) = start(Settings {
        datacenter: "atla".into(),
        ..Settings::default()
    })
    .await;
    add_one(&server, &token, "news", None).await;

    let before = common_now_ms();
    let mut local = connect(&server, &token, "?localDcOnly=true", false).await;
    assert_eq!(local.headers["x-powerstream-datacenter"], "atla");
    assert_eq!(local.headers["x-powerstream-localdconly"], "true");
    let metadata = local.next_message().await;
    assert_eq!(metadata["type"], "connection_metadata");
    assert_eq!(metadata["datacenter"], "atla");
    let timestamp = metadata["timestamp"].as_i64().unwrap();
    assert!(
        timestamp >= before && timestamp <= common_now_ms(),
        "{metadata}"
    );
    assert_eq!(metadata.as_object().unwrap().len(), 3);

    let mut everything = connect(&server, &token, "?localDcOnly=false", true).await;
    assert!(everything.headers.get("x-powerstream-datacenter").is_none());

    ingest_in(&server, "pdx", &post(10, "news from portland")).await;
    ingest_in(&server, "atla", &post(11, "news from atlanta")).await;
    // Without `datacenter`, ingested posts come from the node's own datacenter.
    server.ingest(&post(12, "more news")).await;
    ingest_in(&server, "pdx", &post(13, "late news from portland")).await;

    let mut local_ids = Vec::new();
    for _ in 0..2 {
        local_ids.push(id_of(&local.next_message().await));
    }
    assert_eq!(local_ids, [11, 12]);
    let mut all_ids = Vec::new();
    for _ in 0..4 {
        all_ids.push(id_of(&everything.next_message().await));
    }
    assert_eq!(all_ids, [10, 11, 12, 13]);
    // And nothing else reached the local connection.
    server.stop().await;
    let rest = local.rest().await;
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert_eq!(
        rest[0]["errors"][0]["disconnect_type"],
        "OperationalDisconnect"
    );
}

fn common_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn heartbeats_fill_silence_and_shutdown_sends_the_v2_operational_line() {
    let (server, token) = start(Settings {
        heartbeat: Duration::from_millis(200),
        ..Settings::default()
    })
    .await;
    // Connecting without any rule is allowed: heartbeats only.
    let mut stream = connect(&server, &token, "", true).await;
    let started = Instant::now();
    assert_eq!(stream.next_line().await, Some(Line::Heartbeat));
    assert_eq!(stream.next_line().await, Some(Line::Heartbeat));
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(350), "{elapsed:?}");

    server.stop().await;
    let rest = stream.rest().await;
    assert_eq!(
        rest,
        [json!({"errors": [{
            "title": "operational-disconnect",
            "disconnect_type": "OperationalDisconnect",
            "detail": "This stream has been disconnected for operational reasons.",
            "type": "https://api.x.com/2/problems/operational-disconnect",
        }]})]
    );
}

#[tokio::test]
async fn over_the_cap_the_newest_connection_is_force_disconnected() {
    let (server, token) = start(Settings {
        default_max_connections: 1,
        over_cap_grace: Duration::from_millis(200),
        heartbeat: Duration::from_millis(500),
        ..Settings::default()
    })
    .await;
    add_one(&server, &token, "cap", None).await;
    let mut first = connect(&server, &token, "", false).await;
    let mut second = connect(&server, &token, "", true).await;
    let closing = second.rest().await;
    assert_eq!(
        closing,
        [json!({"errors": [{
            "title": "operational-disconnect",
            "disconnect_type": "ForceDisconnect",
            "detail": "Forced Disconnect: Too many connections. (Allowed Connections = 1)",
            "type": "https://api.x.com/2/problems/operational-disconnect",
        }]})]
    );
    eventually("the closed connection frees its slot", || {
        live(&server, "acme").connections.len() == 1
    })
    .await;
    server.ingest(&post(5, "cap")).await;
    assert_eq!(id_of(&first.next_message().await), 5);
    server.stop().await;
}

#[tokio::test]
async fn backfill_replays_recent_posts_and_bad_parameters_are_refused() {
    let (server, token) = start(Settings::default()).await;
    add_one(&server, &token, "earlier", None).await;
    server.ingest(&post(21, "earlier post")).await;
    let mut stream = connect(
        &server,
        &token,
        "?backfillMinutes=2&localDcOnly=true",
        false,
    )
    .await;
    assert_eq!(stream.next_message().await["type"], "connection_metadata");
    assert_eq!(id_of(&stream.next_message().await), 21);
    server.ingest(&post(22, "earlier and live")).await;
    assert_eq!(id_of(&stream.next_message().await), 22);

    for query in [
        "?backfillMinutes=6",
        "?backfillMinutes=0",
        "?localDcOnly=yes",
        "?startTime=yesterday",
        "?backfillMinutes=1&startTime=2020-01-01T00:00:00Z",
    ] {
        let a = answer(
            server
                .http
                .get(format!("{}/2/powerstream{query}", server.base))
                .bearer_auth(&token),
        )
        .await;
        let problem = assert_problem(&a, StatusCode::NOT_ACCEPTABLE, INVALID_REQUEST);
        let name = if query.contains("startTime") && !query.contains("backfill") {
            "startTime"
        } else if query.contains("backfill") {
            "backfillMinutes"
        } else {
            "localDcOnly"
        };
        assert!(
            problem["detail"].as_str().unwrap().contains(name),
            "{query}: {problem}"
        );
    }
    server.stop().await;
}

/// Removes HTTP/1.1 chunked framing.
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(line_end) = body.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size =
            usize::from_str_radix(std::str::from_utf8(&body[..line_end]).unwrap().trim(), 16)
                .unwrap();
        if size == 0 {
            return out;
        }
        let start = line_end + 2;
        out.extend_from_slice(&body[start..start + size]);
        body = &body[start + size + 2..];
    }
}

#[tokio::test]
async fn a_slow_reader_is_cut_with_the_v2_slow_reader_line() {
    let (server, token) = start(Settings {
        outbox_bytes: 64 << 10,
        ..Settings::default()
    })
    .await;
    add_one(&server, &token, "flood", None).await;

    // A raw socket with a small receive buffer that reads the response head, then stalls.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4 << 10).unwrap();
    let mut stalled = socket.connect(server.addr).await.unwrap();
    stalled
        .write_all(
            format!(
                "GET /2/powerstream HTTP/1.1\r\nHost: api.x.com\r\n\
                 Authorization: Bearer {token}\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut received = Vec::new();
    let head_end = loop {
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(WAIT, stalled.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0);
        received.extend_from_slice(&buf[..n]);
        if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    assert!(received.starts_with(b"HTTP/1.1 200"));
    let connection = live(&server, "acme")
        .connections
        .snapshot()
        .into_iter()
        .next()
        .unwrap();

    let filler = "flood ".repeat(1_000);
    let mut next_id = 1u64;
    for _ in 0..400 {
        if connection.outbox.is_closed() {
            break;
        }
        let batch: Vec<String> = (0..16)
            .map(|_| {
                next_id += 1;
                post(next_id, &format!("{filler}{next_id}"))
            })
            .collect();
        server.ingest(&batch.join("\n")).await;
    }
    assert!(
        connection.outbox.is_closed(),
        "the stalled reader was never cut"
    );

    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, stalled.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    received.extend_from_slice(&rest);
    let text = String::from_utf8(dechunk(&received[head_end..])).unwrap();
    let last = text
        .strip_suffix("\r\n")
        .unwrap()
        .rsplit("\r\n")
        .next()
        .unwrap();
    let last: Value = serde_json::from_str(last).unwrap();
    assert_eq!(last["errors"][0]["disconnect_type"], "SlowReader");
    assert_eq!(
        last["errors"][0]["detail"],
        "This stream has been disconnected because your client was unable to keep up with us."
    );
    eventually("the cut connection frees its slot", || {
        live(&server, "acme").connections.is_empty()
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn gzip_chunks_decode_on_their_own() {
    // The whole gzip body is one stream that a whole-body decoder reads to its end.
    let (server, token) = start(Settings::default()).await;
    add_one(&server, &token, "zip", None).await;
    let response = server
        .http
        .get(format!("{}/2/powerstream", server.base))
        .bearer_auth(&token)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let reader = tokio::spawn(async move { response.bytes().await.unwrap() });
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.ingest(&post(31, "zip it")).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.stop().await;
    let raw = tokio::time::timeout(WAIT, reader).await.unwrap().unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&raw[..])
        .read_to_string(&mut text)
        .unwrap();
    let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(id_of(&serde_json::from_str(lines[0]).unwrap()), 31);
}
