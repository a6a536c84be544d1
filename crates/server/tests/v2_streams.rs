//! The X API v2 streams over real HTTP (docs/compatibility.md §7): the filtered stream and
//! its rules API (shapes, string ids, no `tag` key on untagged rules, no `data` without
//! rules, duplicates, invalid rules, `dry_run`, `delete_all`, paging, counts), the stream
//! lines (`data`, `includes`, `matching_rules` with `tag` always present), connect
//! refusals (401/403, 400 naming bad parameters, 409 without rules, 429 at the cap), rate
//! headers, the sample and partitioned volume streams, backfill and shutdown.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_model::sampling::{in_decahose, in_one_percent, partition};
use sluice_server::Settings;
use sluice_testkit::{Line, StreamClient, TestServer, post};

/// A server with account `acme` and one app; returns the app's bearer token.
async fn start(settings: Settings) -> (TestServer, String) {
    let server = TestServer::start(settings).await;
    let (s, _) = server
        .admin(Method::PUT, "/admin/accounts/acme", json!({}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let token = app_token(&server, "research").await;
    (server, token)
}

async fn app_token(server: &TestServer, name: &str) -> String {
    let app = server.new_app("acme", name).await;
    app["bearer_token"].as_str().unwrap().to_owned()
}

/// An answer: status, headers and JSON body.
struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

impl Answer {
    fn rate(&self, which: &str) -> Option<u64> {
        self.headers
            .get(format!("x-rate-limit-{which}"))
            .map(|v| v.to_str().unwrap().parse().unwrap())
    }
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

fn rules_url(server: &TestServer, query: &str) -> String {
    format!("{}/2/tweets/search/stream/rules{query}", server.base)
}

async fn post_rules(server: &TestServer, token: &str, query: &str, body: Value) -> Answer {
    answer(
        server
            .http
            .post(rules_url(server, query))
            .bearer_auth(token)
            .json(&body),
    )
    .await
}

async fn list_rules(server: &TestServer, token: &str, query: &str) -> Answer {
    answer(server.http.get(rules_url(server, query)).bearer_auth(token)).await
}

async fn connect_raw(server: &TestServer, token: &str, path: &str) -> reqwest::Response {
    server
        .http
        .get(format!("{}{path}", server.base))
        .bearer_auth(token)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap()
}

async fn connect(server: &TestServer, token: &str, path: &str) -> StreamClient {
    StreamClient::new(connect_raw(server, token, path).await)
}

fn fast_heartbeats() -> Settings {
    Settings {
        heartbeat: Duration::from_millis(200),
        ..Settings::default()
    }
}

#[tokio::test]
async fn add_stream_delete_reconnect_with_v2_lines() {
    let (server, token) = start(fast_heartbeats()).await;

    // No rules: a list without `data`, and the stream refuses with 409.
    let empty = list_rules(&server, &token, "").await;
    assert_eq!(empty.status, StatusCode::OK);
    assert!(empty.body.get("data").is_none(), "{}", empty.body);
    assert_eq!(empty.body["meta"]["result_count"], 0);
    assert_eq!(empty.rate("limit"), Some(450));
    let refused = answer(
        server
            .http
            .get(format!("{}/2/tweets/search/stream", server.base))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(refused.status, StatusCode::CONFLICT);
    assert_eq!(refused.body["title"], "ConnectionException");
    assert_eq!(refused.body["connection_issue"], "RuleConfigurationIssue");
    assert_eq!(refused.rate("limit"), Some(50));

    // Add: string ids, no `tag` key on the untagged rule, the summary.
    let added = post_rules(
        &server,
        &token,
        "",
        json!({"add": [{"value": "cat has:links", "tag": "cats"}, {"value": "dog"}]}),
    )
    .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.body);
    assert_eq!(added.rate("limit"), Some(100));
    assert_eq!(
        added.body["meta"]["summary"],
        json!({"created": 2, "not_created": 0, "valid": 2, "invalid": 0})
    );
    let data = added.body["data"].as_array().unwrap();
    let cat_id = data[0]["id"].as_str().unwrap().to_owned();
    let dog_id = data[1]["id"].as_str().unwrap().to_owned();
    assert_eq!(data[0]["tag"], "cats");
    assert!(data[1].get("tag").is_none(), "{}", data[1]);
    assert!(cat_id.parse::<u64>().is_ok());

    // Stream with expansions: `data`, `includes.users`, `matching_rules` with tag "".
    let mut stream = connect(
        &server,
        &token,
        "/2/tweets/search/stream?expansions=author_id&user.fields=username,created_at&tweet.fields=created_at,author_id",
    )
    .await;
    stream.until_heartbeat().await;
    let mut linked: Value = serde_json::from_str(&post(11, "a cat https://t.co/x")).unwrap();
    linked["entities"]["urls"] = json!([{
        "url": "https://t.co/x", "expanded_url": "https://example.com/cat",
        "display_url": "example.com/cat", "indices": [6, 20]
    }]);
    let ndjson = format!(
        "{}\n{}\n{}\n",
        post(10, "a dog and a cat"),
        linked,
        post(12, "nothing here")
    );
    server.ingest(&ndjson).await;
    let lines = stream.at_least(2).await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    let dog = &lines[0];
    assert_eq!(dog["data"]["id"], "10");
    assert_eq!(dog["data"]["text"], "a dog and a cat");
    assert_eq!(dog["data"]["edit_history_tweet_ids"], json!(["10"]));
    assert_eq!(dog["data"]["author_id"], "12");
    assert_eq!(dog["data"]["created_at"], "2018-10-10T20:19:24.000Z");
    assert_eq!(dog["includes"]["users"][0]["username"], "jack");
    assert_eq!(
        dog["matching_rules"],
        json!([{"id": dog_id, "tag": ""}]),
        "{dog}"
    );
    assert!(dog.get("id_str").is_none(), "a v2 line, not a native post");
    assert_eq!(
        lines[1]["matching_rules"],
        json!([{"id": cat_id, "tag": "cats"}])
    );

    // Delete by value and by id; the list has no `data` again.
    let deleted = post_rules(&server, &token, "", json!({"delete": {"values": ["dog"]}})).await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.body);
    assert_eq!(
        deleted.body["meta"]["summary"],
        json!({"deleted": 1, "not_deleted": 0})
    );
    // The deleted rule's post would come before the one after it that still matches.
    let mut still_cat: Value = serde_json::from_str(&post(15, "a cat https://t.co/x")).unwrap();
    still_cat["entities"]["urls"] = linked["entities"]["urls"].clone();
    server
        .ingest(&format!("{}\n{still_cat}\n", post(13, "dog")))
        .await;
    let lines = stream.at_least(1).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["data"]["id"], "15");
    let deleted = post_rules(
        &server,
        &token,
        "",
        json!({"delete": {"ids": [cat_id, "1234"]}}),
    )
    .await;
    assert_eq!(
        deleted.body["meta"]["summary"],
        json!({"deleted": 1, "not_deleted": 1})
    );
    assert_eq!(deleted.body["errors"][0]["value"], "1234");
    assert!(
        list_rules(&server, &token, "")
            .await
            .body
            .get("data")
            .is_none()
    );
    drop(stream);

    // Re-add and reconnect: the new rule matches.
    let again = post_rules(&server, &token, "", json!({"add": [{"value": "bird"}]})).await;
    assert_eq!(again.status, StatusCode::OK);
    let mut stream = connect(&server, &token, "/2/tweets/search/stream").await;
    stream.until_heartbeat().await;
    server.ingest(&format!("{}\n", post(14, "a bird"))).await;
    let lines = stream.at_least(1).await;
    assert_eq!(lines.len(), 1);
    assert_eq!(
        lines[0]["data"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["edit_history_tweet_ids", "id", "text"]
    );
    server.stop().await;
}

#[tokio::test]
async fn rules_api_answers_in_x_shapes_for_every_case() {
    let (server, token) = start(Settings::default()).await;
    let add = |body: Value| post_rules(&server, &token, "", body);

    // Duplicates: 200, `DuplicateRule` with the existing id.
    let first = add(json!({"add": [{"value": "cat"}]})).await;
    let id = first.body["data"][0]["id"].clone();
    let dup = add(json!({"add": [{"value": "cat"}, {"value": "cow"}]})).await;
    assert_eq!(dup.status, StatusCode::OK);
    assert_eq!(dup.body["errors"][0]["title"], "DuplicateRule");
    assert_eq!(dup.body["errors"][0]["id"], id);
    assert_eq!(dup.body["meta"]["summary"]["created"], 1);
    assert_eq!(dup.body["meta"]["summary"]["not_created"], 1);

    // Invalid: 400, nothing created, `details` per invalid rule.
    let bad = add(json!({"add": [{"value": "lang:en"}, {"value": "ok"}]})).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert_eq!(bad.body["errors"][0]["title"], "UnprocessableEntity");
    assert_eq!(
        bad.body["errors"][0]["type"],
        "https://api.x.com/2/problems/invalid-rules"
    );
    assert_eq!(
        bad.body["errors"][0]["details"][0],
        "is/has/lang cannot be used as a standalone operator (at position 1)."
    );
    assert_eq!(
        bad.body["meta"]["summary"],
        json!({"created": 0, "not_created": 2, "valid": 1, "invalid": 1})
    );

    // dry_run: the answer of an add, nothing stored.
    let dry = post_rules(
        &server,
        &token,
        "?dry_run=true",
        json!({"add": [{"value": "emu"}]}),
    )
    .await;
    assert_eq!(dry.status, StatusCode::OK);
    assert_eq!(dry.body["meta"]["summary"]["created"], 1);
    let listed = list_rules(&server, &token, "").await;
    assert_eq!(listed.body["meta"]["result_count"], 2);

    // Paging: one rule per page, the token leads to the next.
    let page = list_rules(&server, &token, "?max_results=1").await;
    assert_eq!(page.body["data"][0]["value"], "cat");
    let next = page.body["meta"]["next_token"].as_str().unwrap().to_owned();
    let page2 = list_rules(
        &server,
        &token,
        &format!("?max_results=1&pagination_token={next}"),
    )
    .await;
    assert_eq!(page2.body["data"][0]["value"], "cow");
    assert!(page2.body["meta"].get("next_token").is_none());
    let by_id = list_rules(&server, &token, &format!("?ids={}", id.as_str().unwrap())).await;
    assert_eq!(by_id.body["data"].as_array().unwrap().len(), 1);

    // Counts.
    let counts = answer(
        server
            .http
            .get(format!(
                "{}/2/tweets/search/stream/rules/counts",
                server.base
            ))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(counts.status, StatusCode::OK, "{}", counts.body);
    assert_eq!(
        counts.body["data"]["client_app_rules_count"]["rule_count"],
        2
    );
    assert_eq!(counts.body["data"]["cap_per_client_app"], 25_000);

    // delete_all.
    let all = post_rules(&server, &token, "?delete_all=true", json!({"delete": {}})).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    assert_eq!(all.body["meta"]["summary"]["deleted"], 2);
    assert!(
        list_rules(&server, &token, "")
            .await
            .body
            .get("data")
            .is_none()
    );

    // Each app has its own rules.
    let other = app_token(&server, "other").await;
    post_rules(&server, &other, "", json!({"add": [{"value": "mine"}]})).await;
    assert!(
        list_rules(&server, &token, "")
            .await
            .body
            .get("data")
            .is_none()
    );
    assert_eq!(
        list_rules(&server, &other, "").await.body["meta"]["result_count"],
        1
    );
    server.stop().await;
}

#[tokio::test]
async fn malformed_requests_get_problems_in_the_v2_shape() {
    let (server, token) = start(Settings::default()).await;
    post_rules(&server, &token, "", json!({"add": [{"value": "cat"}]})).await;
    let get = |path: &str, token: Option<&str>| {
        let mut request = server.http.get(format!("{}{path}", server.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        answer(request)
    };
    #[rustfmt::skip]
    let gets: &[(&str, Option<&str>, StatusCode, &str)] = &[
        ("/2/tweets/search/stream", None, StatusCode::UNAUTHORIZED, "Unauthorized"),
        ("/2/tweets/search/stream", Some("nope"), StatusCode::UNAUTHORIZED, "Unauthorized"),
        ("/2/tweets/search/stream/rules", Some("nope"), StatusCode::UNAUTHORIZED, "Unauthorized"),
        ("/2/tweets/search/stream?tweet.fields=bogus", Some(&token), StatusCode::BAD_REQUEST, "[bogus]"),
        ("/2/tweets/search/stream?foo=1", Some(&token), StatusCode::BAD_REQUEST, "[foo]"),
        ("/2/tweets/search/stream?backfill_minutes=9", Some(&token), StatusCode::BAD_REQUEST, "[9]"),
        ("/2/tweets/firehose/stream", Some(&token), StatusCode::BAD_REQUEST, "partition"),
        ("/2/tweets/sample10/stream?partition=3", Some(&token), StatusCode::BAD_REQUEST, "[3]"),
        ("/2/tweets/sample/stream?partition=1", Some(&token), StatusCode::BAD_REQUEST, "[partition]"),
        ("/2/tweets/search/stream/rules?max_results=0", Some(&token), StatusCode::BAD_REQUEST, "[0]"),
        ("/2/tweets/search/stream/rules?ids=abc", Some(&token), StatusCode::BAD_REQUEST, "[abc]"),
        ("/2/tweets/search/stream/rules/counts?rules_count.fields=x", Some(&token), StatusCode::BAD_REQUEST, "[x]"),
    ];
    for (path, token, status, needle) in gets {
        let a = get(path, *token).await;
        assert_eq!(a.status, *status, "{path}: {}", a.body);
        assert_eq!(
            a.headers["content-type"], "application/problem+json",
            "{path}"
        );
        assert!(
            a.body["title"].is_string() && a.body["type"].is_string(),
            "{path}"
        );
        assert!(a.body.to_string().contains(needle), "{path}: {}", a.body);
    }
    let basic = answer(
        server
            .http
            .get(format!("{}/2/tweets/search/stream", server.base))
            .basic_auth("a", Some("b")),
    )
    .await;
    assert_eq!(basic.status, StatusCode::FORBIDDEN);

    #[rustfmt::skip]
    let posts: &[(&str, &str, &str)] = &[
        ("", "not json", "The body must be"),
        ("", "{}", "The body must be"),
        ("", r#"{"add":[]}"#, "empty"),
        ("", r#"{"add":[{"value":"a"}],"delete":{"ids":["1"]}}"#, "not both"),
        ("", r#"{"delete":{"ids":["x"]}}"#, "[x]"),
        ("", r#"{"delete":{}}"#, "delete_all"),
        ("?dry_run=maybe", r#"{"add":[{"value":"a"}]}"#, "[maybe]"),
        ("?delete_all=true", r#"{"add":[{"value":"a"}]}"#, "delete_all"),
        ("?_method=delete", r#"{"delete":{"ids":["1"]}}"#, "[_method]"),
    ];
    for (query, body, needle) in posts {
        let a = answer(
            server
                .http
                .post(rules_url(&server, query))
                .bearer_auth(&token)
                .body(body.to_string()),
        )
        .await;
        assert_eq!(
            a.status,
            StatusCode::BAD_REQUEST,
            "{query} {body}: {}",
            a.body
        );
        assert_eq!(a.body["title"], "Invalid Request", "{body}");
        assert!(a.body.to_string().contains(needle), "{body}: {}", a.body);
        assert_eq!(a.rate("limit"), Some(100), "{body}");
    }
    server.stop().await;
}

#[tokio::test]
async fn the_connection_cap_refuses_with_429_and_shutdown_says_operational_disconnect() {
    let (server, token) = start(fast_heartbeats()).await;
    post_rules(&server, &token, "", json!({"add": [{"value": "cat"}]})).await;
    let mut one = connect(&server, &token, "/2/tweets/search/stream").await;
    let mut two = connect(&server, &token, "/2/tweets/search/stream").await;
    one.until_heartbeat().await;
    two.until_heartbeat().await;
    let third = answer(
        server
            .http
            .get(format!("{}/2/tweets/search/stream", server.base))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(
        third.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        third.body
    );
    assert_eq!(third.body["connection_issue"], "TooManyConnections");
    assert_eq!(
        third.body["detail"],
        "This stream is currently at the maximum allowed connection limit."
    );
    assert!(third.rate("remaining").is_some());
    drop(two);
    server.stop().await;
    let rest = one.rest().await;
    let last = rest.last().expect("a closing line");
    assert_eq!(
        last["errors"][0]["disconnect_type"], "OperationalDisconnect",
        "{last}"
    );
}

#[tokio::test]
async fn volume_streams_sample_and_partition_like_decahose_and_firehose() {
    let (server, token) = start(fast_heartbeats()).await;
    let base = 1_700_000_000_000_000_000u64;
    let ids: Vec<u64> = (0..600u64).map(|i| base + (i << 22)).collect();
    let ndjson: String = ids.iter().map(|id| post(*id, "x") + "\n").collect();
    let expect = |keep: &dyn Fn(u64) -> bool| -> Vec<String> {
        ids.iter()
            .filter(|id| keep(**id))
            .map(u64::to_string)
            .collect()
    };

    let mut sample = connect(&server, &token, "/2/tweets/sample/stream").await;
    let mut decahose = connect(&server, &token, "/2/tweets/sample10/stream?partition=2").await;
    let mut firehose = connect(&server, &token, "/2/tweets/firehose/stream?partition=7").await;
    for s in [&mut sample, &mut decahose, &mut firehose] {
        s.until_heartbeat().await;
    }
    server.ingest(&ndjson).await;
    let got = |messages: Vec<Value>| -> Vec<String> {
        messages
            .iter()
            .map(|m| m["data"]["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let want_sample = expect(&|id| in_one_percent(id));
    assert!(!want_sample.is_empty() && want_sample.len() < 30);
    let want_decahose = expect(&|id| in_decahose(id) && partition(id, 2) == 2);
    let want_firehose = expect(&|id| partition(id, 20) == 7);
    // Until each has what it should: on a loaded machine a heartbeat can come between the
    // ingest's answer and the delivery.
    for (stream, want) in [
        (&mut sample, want_sample),
        (&mut decahose, want_decahose),
        (&mut firehose, want_firehose),
    ] {
        assert_eq!(got(stream.at_least(want.len()).await), want);
    }
    server.stop().await;
}

#[tokio::test]
async fn backfill_minutes_replays_recent_posts_in_v2_shape_and_identity_works() {
    let (server, token) = start(fast_heartbeats()).await;
    post_rules(&server, &token, "", json!({"add": [{"value": "cat"}]})).await;
    server
        .ingest(&format!("{}\n{}\n", post(1, "early cat"), post(2, "dog")))
        .await;
    // No Accept-Encoding: identity.
    let response = server
        .http
        .get(format!(
            "{}/2/tweets/search/stream?backfill_minutes=2",
            server.base
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert!(response.headers().get("content-encoding").is_none());
    let mut stream = StreamClient::new(response);
    let first = loop {
        match stream.next_line().await.unwrap() {
            Line::Heartbeat => continue,
            Line::Message(m) => break m,
        }
    };
    assert_eq!(first["data"]["id"], "1");
    assert_eq!(first["data"]["text"], "early cat");
    assert!(first["matching_rules"][0]["id"].is_string());
    server.stop().await;
}

#[tokio::test]
async fn the_operator_sets_each_apps_limits() {
    let (server, token) = start(fast_heartbeats()).await;
    let (s, apps) = server
        .admin(Method::GET, "/admin/accounts/acme/apps", json!(null))
        .await;
    assert_eq!(s, StatusCode::OK);
    let app = &apps["apps"][0];
    assert_eq!(
        (
            &app["max_rules"],
            &app["max_rule_chars"],
            &app["max_connections"]
        ),
        (&json!(25_000), &json!(2048), &json!(2))
    );
    let path = format!(
        "/admin/accounts/acme/apps/{}",
        app["app_id"].as_str().unwrap()
    );

    // Pay-per-use figures: 1 connection, rules of up to 10 characters, 2 rules.
    let (s, set) = server
        .admin(
            Method::PUT,
            &path,
            json!({"max_rules": 2, "max_rule_chars": 10, "max_connections": 1}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{set}");
    assert_eq!(set["max_rule_chars"], 10);

    let long = post_rules(
        &server,
        &token,
        "",
        json!({"add": [{"value": "elevenchars"}, {"value": "ok"}]}),
    )
    .await;
    assert_eq!(long.status, StatusCode::BAD_REQUEST, "{}", long.body);
    assert_eq!(
        long.body["errors"][0]["details"][0],
        "Rules cannot be longer than 10 characters (at position 1)."
    );
    assert_eq!(long.body["meta"]["summary"]["invalid"], 1);
    let capped = post_rules(
        &server,
        &token,
        "",
        json!({"add": [{"value": "a"}, {"value": "b"}, {"value": "c"}]}),
    )
    .await;
    assert_eq!(capped.status, StatusCode::BAD_REQUEST, "{}", capped.body);
    assert_eq!(
        capped.body["errors"][0]["type"],
        "https://api.x.com/2/problems/rule-cap"
    );
    let ok = post_rules(&server, &token, "", json!({"add": [{"value": "cat"}]})).await;
    assert_eq!(ok.status, StatusCode::OK);
    let mut one = connect(&server, &token, "/2/tweets/search/stream").await;
    one.until_heartbeat().await;
    let second = connect_raw(&server, &token, "/2/tweets/search/stream").await;
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);

    // Raising the cap applies to the open stream at once; null restores the default.
    let (s, _) = server
        .admin(Method::PUT, &path, json!({"max_connections": null}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let second = connect_raw(&server, &token, "/2/tweets/search/stream").await;
    assert_eq!(second.status(), StatusCode::OK);

    // Refusals: bad values, unknown members, unknown apps.
    for (path, body, status) in [
        (
            path.as_str(),
            json!({"max_rule_chars": 4096}),
            StatusCode::BAD_REQUEST,
        ),
        (
            path.as_str(),
            json!({"max_connections": 0}),
            StatusCode::BAD_REQUEST,
        ),
        (
            path.as_str(),
            json!({"max_rulez": 1}),
            StatusCode::BAD_REQUEST,
        ),
        (
            path.as_str(),
            json!({"max_rules": -1}),
            StatusCode::BAD_REQUEST,
        ),
        (
            "/admin/accounts/acme/apps/999",
            json!({}),
            StatusCode::NOT_FOUND,
        ),
        (
            "/admin/accounts/nope/apps/999",
            json!({}),
            StatusCode::NOT_FOUND,
        ),
    ] {
        let (s, body_back) = server.admin(Method::PUT, path, body.clone()).await;
        assert_eq!(s, status, "{path} {body}: {body_back}");
        assert!(body_back["error"]["message"].is_string(), "{body_back}");
    }
    server.stop().await;
}

#[tokio::test]
async fn rules_reads_are_limited_per_app_with_headers_on_every_answer() {
    let (server, token) = start(Settings::default()).await;
    let other = app_token(&server, "other").await;
    for i in 0..450u64 {
        let a = list_rules(&server, &token, "").await;
        assert_eq!(a.status, StatusCode::OK);
        assert_eq!(a.rate("remaining"), Some(449 - i));
    }
    let refused = list_rules(&server, &token, "").await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.rate("remaining"), Some(0));
    assert!(refused.rate("reset").is_some());
    assert_eq!(refused.body["title"], "Too Many Requests");
    // Changes and other apps have their own budgets.
    let add = post_rules(&server, &token, "", json!({"add": [{"value": "cat"}]})).await;
    assert_eq!(add.status, StatusCode::OK);
    assert_eq!(add.rate("remaining"), Some(99));
    assert_eq!(list_rules(&server, &other, "").await.status, StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn recovery_resends_a_past_window_in_v2_shape_then_ends() {
    let (server, token) = start(fast_heartbeats()).await;
    let start = time::OffsetDateTime::now_utc() - time::Duration::seconds(30);
    let start = start
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let ids: Vec<u64> = (1..=40u64)
        .map(|i| 1_700_000_000_000_000_000 + (i << 22))
        .collect();
    let ndjson: String = ids.iter().map(|id| post(*id, "x") + "\n").collect();
    server.ingest(&ndjson).await;
    let mut recovery = connect(
        &server,
        &token,
        &format!("/2/tweets/firehose/stream?partition=3&start_time={start}"),
    )
    .await;
    let lines = recovery.rest().await;
    let (posts, closing): (Vec<&Value>, Vec<&Value>) =
        lines.iter().partition(|l| l.get("data").is_some());
    let got: Vec<String> = posts
        .iter()
        .map(|m| m["data"]["id"].as_str().unwrap().to_owned())
        .collect();
    let want: Vec<String> = ids
        .iter()
        .filter(|id| partition(**id, 20) == 3)
        .map(u64::to_string)
        .collect();
    assert!(!want.is_empty());
    assert_eq!(got, want);
    assert_eq!(closing.len(), 1, "{closing:?}");
    server.stop().await;
}
