//! The admin and ingest APIs over real HTTP (docs/operator-interface.md).

use reqwest::{Method, StatusCode};
use serde_json::json;
use sluice_server::Settings;
use sluice_testkit::{ADMIN, StreamClient, TestServer, error_message, post};
use sluice_wire::error::{CREDENTIALS_REVOKED_MESSAGE, OPERATIONAL_DISCONNECT_MESSAGE};

#[tokio::test]
async fn accounts_users_streams_and_tokens() {
    let server = TestServer::start(Settings::default()).await;

    let (s, body) = server
        .admin(Method::PUT, "/admin/accounts/acme", json!({}))
        .await;
    assert_eq!((s, body), (StatusCode::CREATED, json!({"account": "acme"})));
    let (s, _) = server
        .admin(Method::PUT, "/admin/accounts/acme", json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);

    let (s, _) = server
        .admin(
            Method::PUT,
            "/admin/accounts/acme/users/alice",
            json!({"password": "pw"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = server
        .admin(
            Method::PUT,
            "/admin/accounts/acme/users/alice",
            json!({"password": "pw2"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = server
        .admin(Method::PUT, "/admin/accounts/acme/users/bob", json!({}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");

    let (s, stream) = server
        .admin(
            Method::PUT,
            "/admin/accounts/acme/streams/prod",
            json!({"product": "powertrack", "max_connections": 3}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(
        stream["stream_url"],
        format!(
            "{}/stream/powertrack/accounts/acme/publishers/twitter/prod.json",
            server.base
        )
    );
    assert_eq!(
        stream["rules_url"],
        format!(
            "{}/rules/powertrack/accounts/acme/publishers/twitter/prod.json",
            server.base
        )
    );
    assert_eq!(
        (
            stream["max_connections"].as_u64(),
            stream["max_rules"].as_u64()
        ),
        (Some(3), Some(250_000))
    );

    let (s, deca) = server
        .admin(
            Method::PUT,
            "/admin/accounts/acme/streams/prod",
            json!({"product": "decahose"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(deca["partitions"], 2);
    assert!(deca.get("rules_url").is_none());

    let (s, token) = server
        .admin(Method::POST, "/admin/accounts/acme/tokens", json!({}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let token = token["token"].as_str().unwrap().to_owned();

    let (s, account) = server
        .admin(Method::GET, "/admin/accounts/acme", json!(null))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(account["users"], json!(["alice"]));
    // PowerTrack, Decahose, and Powerstream (the account has a token).
    assert_eq!(account["streams"].as_array().unwrap().len(), 3);
    let prefixes = account["tokens"].as_array().unwrap();
    assert_eq!(prefixes.len(), 1);
    let prefix = prefixes[0].as_str().unwrap();
    // `sl_ps_` and a public id; the rest of the token (the secret) is not shown.
    assert_eq!(prefix.len(), "sl_ps_".len() + 8, "{prefix}");
    assert!(token.starts_with(&format!("{prefix}_")), "{token} {prefix}");
    assert!(
        !account.to_string().contains(&token),
        "the token is shown once only"
    );

    let (s, _) = server
        .admin(
            Method::DELETE,
            "/admin/accounts/acme/streams/prod?product=decahose",
            json!(null),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, account) = server
        .admin(Method::GET, "/admin/accounts/acme", json!(null))
        .await;
    assert_eq!(account["streams"].as_array().unwrap().len(), 2);
    server.stop().await;
}

/// The account's streams of `product` in the API help view.
async fn listed(server: &TestServer, product: &str) -> Vec<serde_json::Value> {
    let (s, account) = server
        .admin(Method::GET, "/admin/accounts/acme", json!(null))
        .await;
    assert_eq!(s, StatusCode::OK, "{account}");
    account["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["product"] == product)
        .cloned()
        .collect()
}

#[tokio::test]
async fn the_admin_api_sets_the_limits_of_the_powerstream_rule_set() {
    let server = TestServer::start(Settings::default()).await;
    server
        .admin(Method::PUT, "/admin/accounts/acme", json!({}))
        .await;
    let (s, body) = server
        .admin(
            Method::PUT,
            "/admin/accounts/acme/streams/other",
            json!({"product": "powerstream"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    let (s, described) = server
        .admin(
            Method::PUT,
            "/admin/accounts/acme/streams/powerstream",
            json!({"product": "powerstream", "max_connections": 500}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{described}");
    let stream = &listed(&server, "powerstream").await[0];
    assert_eq!(
        (
            &stream["max_connections"],
            &stream["max_rules"],
            &stream["exists"]
        ),
        (&json!(500), &json!(1000), &json!(true))
    );
    server.stop().await;
}

#[tokio::test]
async fn the_help_view_lists_every_product_the_account_may_use_before_any_call() {
    let server = TestServer::start(Settings::default()).await;
    server
        .admin(Method::PUT, "/admin/accounts/acme", json!({}))
        .await;
    // Powerstream is listed before the account has a token or called anything.
    let curl = |list, add, validate, delete| {
        json!({
            "list_rules": list,
            "add_rule": add,
            "validate_rule": validate,
            "delete_rule": delete,
            "stream": format!(
                "curl --compressed -H 'Authorization: Bearer TOKEN' '{}/2/powerstream'",
                server.base
            ),
        })
    };
    let rules = format!("{}/2/powerstream/rules", server.base);
    let auth = "-H 'Authorization: Bearer TOKEN'";
    let post = |body: &str, url: &str| {
        format!("curl {auth} -H 'Content-Type: application/json' -d '{body}' '{url}'")
    };
    let add = r#"{"rules":[{"value":"cat has:images","tag":"cats"}]}"#;
    let expected = |rule_count: u64, exists: bool| {
        json!({
            "account": "acme",
            "label": "powerstream",
            "product": "powerstream",
            "stream_url": format!("{}/2/powerstream", server.base),
            "rules_url": rules,
            "validation_url": format!("{rules}?dry_run=true"),
            "rule_count": rule_count,
            "max_rules": 1000,
            "max_connections": 2,
            "connections": 0,
            "exists": exists,
            "curl": curl(
                format!("curl {auth} '{rules}'"),
                post(add, &rules),
                post(add, &format!("{rules}?dry_run=true")),
                post(r#"{"rules":[{"value":"cat has:images"}]}"#, &format!("{rules}?_method=delete")),
            ),
        })
    };
    assert_eq!(listed(&server, "powerstream").await, [expected(0, false)]);
    let (_, token) = server
        .admin(Method::POST, "/admin/accounts/acme/tokens", json!({}))
        .await;
    let token = token["token"].as_str().unwrap().to_owned();
    assert_eq!(listed(&server, "powerstream").await, [expected(0, false)]);

    // After the first Powerstream call the stored stream is listed, once.
    let added = server
        .http
        .post(format!("{}/2/powerstream/rules", server.base))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(r#"{"rules":[{"value":"cat"}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::CREATED);
    assert_eq!(listed(&server, "powerstream").await, [expected(1, true)]);

    // An app's four v2 streams are listed as soon as the app exists.
    let app = server.new_app("acme", "research").await;
    let app_id = app["app_id"].as_str().unwrap();
    let filtered = listed(&server, "v2-filtered").await;
    assert_eq!(filtered.len(), 1);
    let filtered = &filtered[0];
    assert_eq!(filtered["label"], app_id);
    assert_eq!(filtered["exists"], false);
    assert_eq!(
        filtered["validation_url"],
        format!("{}/2/tweets/search/stream/rules?dry_run=true", server.base)
    );
    assert!(
        filtered["curl"]["add_rule"].as_str().unwrap().contains(
            r#"Bearer APP_BEARER_TOKEN' -H 'Content-Type: application/json' -d '{"add":["#
        ),
        "{filtered}"
    );
    let firehose = listed(&server, "v2-firehose").await;
    assert_eq!(firehose[0]["partition_urls"].as_array().unwrap().len(), 20);
    assert_eq!(
        firehose[0]["curl"]["stream_partitions"][19],
        format!(
            "curl --compressed -H 'Authorization: Bearer APP_BEARER_TOKEN' \
             '{}/2/tweets/firehose/stream?partition=20'",
            server.base
        )
    );
    assert_eq!(listed(&server, "v2-sample").await.len(), 1);
    assert_eq!(listed(&server, "v2-sample10").await.len(), 1);
    let (_, account) = server
        .admin(Method::GET, "/admin/accounts/acme", json!(null))
        .await;
    assert_eq!(
        account["apps"],
        json!([{"app_id": app_id, "name": "research"}])
    );
    server.stop().await;
}

#[tokio::test]
async fn volume_and_powertrack_streams_are_listed_with_every_url() {
    let server = TestServer::start(Settings::default()).await;
    server.provision("powertrack").await;
    server
        .admin(
            Method::PUT,
            "/admin/accounts/acme/streams/prod",
            json!({"product": "decahose"}),
        )
        .await;
    let (s, list) = server
        .admin(Method::GET, "/admin/accounts/acme/streams", json!(null))
        .await;
    assert_eq!(s, StatusCode::OK, "{list}");
    let streams = list["streams"].as_array().unwrap();
    // Only what exists: no Powerstream before its first call.
    let products: Vec<&str> = streams
        .iter()
        .map(|s| s["product"].as_str().unwrap())
        .collect();
    assert_eq!(products, ["decahose", "powertrack"]);
    let deca = &streams[0];
    let deca_url = format!(
        "{}/stream/sample10/accounts/acme/publishers/twitter/prod.json",
        server.base
    );
    assert_eq!(
        deca["partition_urls"],
        json!([
            format!("{deca_url}?partition=1"),
            format!("{deca_url}?partition=2")
        ])
    );
    assert_eq!(
        deca["curl"]["stream_partitions"][1],
        format!("curl --compressed -u USERNAME:PASSWORD '{deca_url}?partition=2'")
    );
    assert_eq!(
        (deca["connections"].as_u64(), deca["exists"].as_bool()),
        (Some(0), Some(true))
    );
    let pt = &streams[1];
    let rules = format!(
        "{}/rules/powertrack/accounts/acme/publishers/twitter/prod",
        server.base
    );
    assert_eq!(pt["rules_url"], format!("{rules}.json"));
    assert_eq!(pt["validation_url"], format!("{rules}/validation.json"));
    assert_eq!(
        (
            pt["rule_count"].as_u64(),
            pt["max_rules"].as_u64(),
            pt["max_connections"].as_u64()
        ),
        (Some(0), Some(250_000), Some(2))
    );
    assert_eq!(
        pt["curl"]["validate_rule"],
        format!(
            "curl -u USERNAME:PASSWORD -H 'Content-Type: application/json' \
             -d '{{\"rules\":[{{\"value\":\"cat has:images\",\"tag\":\"cats\"}}]}}' \
             '{rules}/validation.json'"
        )
    );
    server.stop().await;
}

#[tokio::test]
async fn admin_errors() {
    let server = TestServer::start(Settings::default()).await;
    let unauthenticated = server
        .http
        .put(format!("{}/admin/accounts/acme", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = unauthenticated.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Bearer")
    );

    let wrong = server
        .http
        .get(format!("{}/admin/accounts/acme", server.base))
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);

    let (s, body) = server
        .admin(Method::PUT, "/admin/accounts/bad%20name", json!({}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("account")
    );
    let long = "a".repeat(65);
    let (s, _) = server
        .admin(Method::PUT, &format!("/admin/accounts/{long}"), json!({}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    let (s, _) = server
        .admin(Method::GET, "/admin/accounts/nobody", json!(null))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = server
        .admin(
            Method::PUT,
            "/admin/accounts/nobody/streams/prod",
            json!({"product": "powertrack"}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    server
        .admin(Method::PUT, "/admin/accounts/acme", json!({}))
        .await;
    let (s, body) = server
        .admin(
            Method::PUT,
            "/admin/accounts/acme/streams/p",
            json!({"product": "replay"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("product")
    );
    let (s, _) = server
        .admin(
            Method::PUT,
            "/admin/accounts/acme/streams/bad$label",
            json!({"product": "firehose"}),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = server
        .admin(
            Method::DELETE,
            "/admin/accounts/acme/streams/none",
            json!(null),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    server.stop().await;
}

/// Sends `PUT path` as written (HTTP clients would collapse `.` and `..` segments) and
/// returns the status and the body.
async fn raw_put(server: &TestServer, path: &str, body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let request = format!(
        "PUT {path} HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {ADMIN}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    let status = answer[9..12].parse().unwrap();
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

#[tokio::test]
async fn names_of_dots_or_with_a_leading_dot_are_refused_naming_the_field() {
    let server = TestServer::start(Settings::default()).await;
    server
        .admin(Method::PUT, "/admin/accounts/acme", json!({}))
        .await;
    let stream = r#"{"product":"powertrack"}"#;
    let password = r#"{"password":"pw"}"#;
    #[rustfmt::skip]
    let cases: &[(&str, &str, &str, &str)] = &[
        ("/admin/accounts/..", "{}", "account", ".."),
        ("/admin/accounts/.", "{}", "account", "."),
        ("/admin/accounts/...", "{}", "account", "..."),
        ("/admin/accounts/.acme", "{}", "account", ".acme"),
        ("/admin/accounts/%2E%2E", "{}", "account", ".."),
        ("/admin/accounts/acme/users/..", password, "username", ".."),
        ("/admin/accounts/acme/users/.alice", password, "username", ".alice"),
        ("/admin/accounts/acme/streams/..", stream, "label", ".."),
        ("/admin/accounts/acme/streams/.", stream, "label", "."),
        ("/admin/accounts/acme/streams/.prod", stream, "label", ".prod"),
        ("/admin/accounts/../streams/prod", stream, "account", ".."),
    ];
    for (path, body, field, name) in cases {
        let (status, answer) = raw_put(&server, path, body).await;
        assert_eq!(status, 400, "{path}: {answer}");
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("Invalid {field} \"{name}\": ")),
            "{path}: {message}"
        );
    }
    // Dots inside a name are fine.
    let (status, _) = raw_put(&server, "/admin/accounts/acme/streams/prod.v2", stream).await;
    assert_eq!(status, 201);
    server.stop().await;
}

#[tokio::test]
async fn ingest_accepts_valid_lines_and_names_rejected_ones() {
    let server = TestServer::start(Settings::default()).await;
    let body = format!(
        "{}\n\nnot json\n{{\"id\":5}}\n{}\n",
        post(1, "hello"),
        post(2, "world")
    );
    let answer = server.ingest(&body).await;
    assert_eq!(answer["accepted"], 2);
    let rejected = answer["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 2);
    assert_eq!(rejected[0]["line"], 3);
    assert_eq!(rejected[1]["line"], 4);
    assert!(
        rejected[1]["error"]
            .as_str()
            .unwrap()
            .contains("created_at")
    );

    // Bytes that are not UTF-8, even in a field nothing reads, refuse the line only.
    let mut bytes = post(6, "fine").into_bytes();
    bytes.extend_from_slice(b"\n");
    let bad = post(7, "bad");
    bytes.extend_from_slice(&bad.as_bytes()[..bad.len() - 1]);
    bytes.extend_from_slice(b",\"y\":\"\xff\"}\n");
    let response = server
        .http
        .post(format!("{}/ingest", server.base))
        .bearer_auth(ADMIN)
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let answer: serde_json::Value = response.json().await.unwrap();
    assert_eq!(answer["accepted"], 1, "{answer}");
    assert_eq!(
        answer["rejected"],
        serde_json::json!([{"line": 2, "error": "line is not valid UTF-8"}])
    );

    let unauthorized = server
        .http
        .post(format!("{}/ingest", server.base))
        .body(post(3, "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), StatusCode::UNAUTHORIZED);

    let too_big = server
        .http
        .post(format!("{}/ingest", server.base))
        .bearer_auth(ADMIN)
        .body(vec![b' '; (16 << 20) + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), StatusCode::PAYLOAD_TOO_LARGE);
    server.stop().await;
}

#[tokio::test]
async fn healthz_and_metrics() {
    let server = TestServer::start(Settings::default()).await;
    let health = server
        .http
        .get(format!("{}/healthz", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    server.ingest(&post(1, "counted")).await;
    let metrics = server
        .http
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("sluice_posts_ingested_total"), "{metrics}");
    assert!(metrics.contains("sluice_ready 1"), "{metrics}");
    server.stop().await;
}

fn fast_heartbeats() -> Settings {
    Settings {
        heartbeat: std::time::Duration::from_millis(200),
        ..Settings::default()
    }
}

const PT_STREAM: &str = "/stream/powertrack/accounts/acme/publishers/twitter/prod.json";
const PT_RULES: &str = "/rules/powertrack/accounts/acme/publishers/twitter/prod.json";

/// The last message of a stream that the server ends, within 10 s.
async fn closing_message(stream: &mut StreamClient) -> serde_json::Value {
    let rest = tokio::time::timeout(std::time::Duration::from_secs(10), stream.rest())
        .await
        .expect("the stream ends");
    rest.last().cloned().expect("a closing message")
}

async fn powerstream(server: &TestServer, token: &str) -> StreamClient {
    let response = server
        .http
        .get(format!("{}/2/powerstream", server.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    StreamClient::new(response)
}

async fn powerstream_rules_status(server: &TestServer, token: &str) -> StatusCode {
    server
        .http
        .get(format!("{}/2/powerstream/rules", server.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn accounts_are_listed_page_by_page_with_what_they_own() {
    let server = TestServer::start(Settings::default()).await;
    for name in ["delta", "alpha", "echo", "charlie", "bravo"] {
        server
            .admin(Method::PUT, &format!("/admin/accounts/{name}"), json!({}))
            .await;
    }
    server
        .admin(
            Method::PUT,
            "/admin/accounts/alpha/users/ann",
            json!({"password": "pw"}),
        )
        .await;
    server.powerstream_token("alpha").await;
    let mut names = Vec::new();
    let mut path = "/admin/accounts?max_results=2".to_owned();
    let mut pages = 0;
    loop {
        let (s, page) = server.admin(Method::GET, &path, json!(null)).await;
        assert_eq!(s, StatusCode::OK, "{page}");
        pages += 1;
        let accounts = page["accounts"].as_array().unwrap();
        assert!(accounts.len() <= 2);
        names.extend(
            accounts
                .iter()
                .map(|a| a["account"].as_str().unwrap().to_owned()),
        );
        match page["next_token"].as_str() {
            Some(next) => path = format!("/admin/accounts?max_results=2&next_token={next}"),
            None => {
                assert!(page["next_token"].is_null(), "{page}");
                break;
            }
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(names, ["alpha", "bravo", "charlie", "delta", "echo"]);
    let (_, all) = server
        .admin(Method::GET, "/admin/accounts", json!(null))
        .await;
    let alpha = &all["accounts"][0];
    assert_eq!(
        (
            &alpha["users"],
            &alpha["tokens"],
            &alpha["streams"],
            &alpha["apps"]
        ),
        (&json!(1), &json!(1), &json!(0), &json!(0))
    );
    assert!(alpha["created"].as_str().unwrap().ends_with('Z'), "{alpha}");
    assert!(all["next_token"].is_null());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_account_closes_its_streams_and_takes_everything_it_owns() {
    let server = TestServer::start(fast_heartbeats()).await;
    server.provision("powertrack").await;
    // Another account with the same names stays whole.
    server
        .admin(Method::PUT, "/admin/accounts/other", json!({}))
        .await;
    server
        .admin(
            Method::PUT,
            "/admin/accounts/other/users/alice",
            json!({"password": "secret"}),
        )
        .await;
    let added = server
        .http
        .post(format!("{}{PT_RULES}", server.base))
        .basic_auth("alice", Some("secret"))
        .json(&json!({"rules": [{"value": "hello"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::CREATED);
    let token = server.powerstream_token("acme").await;
    let app = server.new_app("acme", "research").await;
    let app_token = app["bearer_token"].as_str().unwrap().to_owned();
    let response = server
        .http
        .get(format!("{}{PT_STREAM}", server.base))
        .basic_auth("alice", Some("secret"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    let mut stream = StreamClient::new(response);
    stream.until_heartbeat().await;
    let mut by_token = powerstream(&server, &token).await;
    by_token.until_heartbeat().await;
    server.ingest(&post(1, "hello")).await;
    assert_eq!(stream.next_message().await["id"], 1);

    let (s, body) = server
        .admin(Method::DELETE, "/admin/accounts/acme", json!(null))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{body}");
    assert_eq!(
        error_message(&closing_message(&mut stream).await),
        OPERATIONAL_DISCONNECT_MESSAGE
    );
    let closed = closing_message(&mut by_token).await;
    assert_eq!(
        closed["errors"][0]["disconnect_type"], "OperationalDisconnect",
        "{closed}"
    );

    let (s, _) = server
        .admin(Method::GET, "/admin/accounts/acme", json!(null))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let rules = server
        .http
        .get(format!("{}{PT_RULES}", server.base))
        .basic_auth("alice", Some("secret"))
        .send()
        .await
        .unwrap();
    assert_eq!(rules.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        powerstream_rules_status(&server, &token).await,
        StatusCode::UNAUTHORIZED
    );
    let v2 = server
        .http
        .get(format!("{}/2/tweets/search/stream/rules", server.base))
        .bearer_auth(&app_token)
        .send()
        .await
        .unwrap();
    assert_eq!(v2.status(), StatusCode::UNAUTHORIZED);
    let (_, list) = server
        .admin(Method::GET, "/admin/accounts", json!(null))
        .await;
    assert_eq!(list["accounts"].as_array().unwrap().len(), 1);
    assert_eq!(list["accounts"][0]["account"], "other");

    // Made again, the account starts empty: nothing of the old one comes back.
    server
        .admin(Method::PUT, "/admin/accounts/acme", json!({}))
        .await;
    let (_, again) = server
        .admin(Method::GET, "/admin/accounts/acme", json!(null))
        .await;
    assert_eq!(again["users"], json!([]));
    assert_eq!(again["tokens"], json!([]));
    assert_eq!(again["apps"], json!([]));
    let streams = again["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 1, "{again}");
    assert_eq!(
        streams[0]["exists"], false,
        "only Powerstream, to be made on first use"
    );
    let (_, users) = server
        .admin(Method::GET, "/admin/accounts/other/users", json!(null))
        .await;
    assert_eq!(users, json!({"users": [{"username": "alice"}]}));

    let (s, _) = server
        .admin(Method::DELETE, "/admin/accounts/acme", json!(null))
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, body) = server
        .admin(Method::DELETE, "/admin/accounts/acme", json!(null))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_is_refused_at_once_and_its_streams_are_closed() {
    let server = TestServer::start(fast_heartbeats()).await;
    server
        .admin(Method::PUT, "/admin/accounts/acme", json!({}))
        .await;
    let revoked = server.powerstream_token("acme").await;
    let (s, kept) = server
        .admin(
            Method::POST,
            "/admin/accounts/acme/tokens",
            json!({"label": "ci-runner"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let kept = kept["token"].as_str().unwrap().to_owned();
    for (body, message) in [
        (json!({"label": "bad label"}), "Invalid label \"bad label\""),
        (json!({"label": ""}), "Invalid label \"\""),
        (json!({"name": "x"}), "Invalid JSON body"),
        (json!({"label": 5}), "Invalid JSON body"),
    ] {
        let (s, answer) = server
            .admin(Method::POST, "/admin/accounts/acme/tokens", body.clone())
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {answer}");
        let text = answer["error"]["message"].as_str().unwrap();
        assert!(text.starts_with(message), "{body}: {text}");
    }
    let (s, list) = server
        .admin(Method::GET, "/admin/accounts/acme/tokens", json!(null))
        .await;
    assert_eq!(s, StatusCode::OK);
    let tokens = list["tokens"].as_array().unwrap();
    assert_eq!(
        tokens.len(),
        2,
        "the refused creations made no token: {list}"
    );
    assert!(tokens.iter().all(|t| t["last_used"].is_null()), "{list}");
    let labels: Vec<&serde_json::Value> = tokens.iter().map(|t| &t["label"]).collect();
    assert_eq!(labels, [&json!(null), &json!("ci-runner")]);
    let prefix = |token: &str| token[.."sl_ps_".len() + 8].to_owned();

    let added = server
        .http
        .post(format!("{}/2/powerstream/rules", server.base))
        .bearer_auth(&revoked)
        .json(&json!({"rules": [{"value": "hello"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::CREATED);
    let mut doomed = powerstream(&server, &revoked).await;
    let mut going_on = powerstream(&server, &kept).await;
    doomed.until_heartbeat().await;
    going_on.until_heartbeat().await;
    server.ingest(&post(1, "hello")).await;
    assert_eq!(doomed.next_message().await["id"], 1);
    assert_eq!(going_on.next_message().await["id"], 1);

    let (_, list) = server
        .admin(Method::GET, "/admin/accounts/acme/tokens", json!(null))
        .await;
    for token in list["tokens"].as_array().unwrap() {
        assert!(
            token["last_used"].as_str().unwrap().ends_with('Z'),
            "{list}"
        );
        assert!(token["created"].as_str().unwrap().ends_with('Z'), "{list}");
    }

    let path = format!("/admin/accounts/acme/tokens/{}", prefix(&revoked));
    let (s, body) = server.admin(Method::DELETE, &path, json!(null)).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{body}");
    let closed = closing_message(&mut doomed).await;
    assert_eq!(
        closed["errors"][0]["detail"], CREDENTIALS_REVOKED_MESSAGE,
        "{closed}"
    );
    assert_eq!(closed["errors"][0]["disconnect_type"], "ForceDisconnect");
    assert_eq!(
        powerstream_rules_status(&server, &revoked).await,
        StatusCode::UNAUTHORIZED
    );
    let reconnect = server
        .http
        .get(format!("{}/2/powerstream", server.base))
        .bearer_auth(&revoked)
        .send()
        .await
        .unwrap();
    assert_eq!(reconnect.status(), StatusCode::UNAUTHORIZED);

    // The other token and its stream go on.
    assert_eq!(
        powerstream_rules_status(&server, &kept).await,
        StatusCode::OK
    );
    server.ingest(&post(2, "hello")).await;
    assert_eq!(going_on.next_message().await["id"], 2);
    let (_, list) = server
        .admin(Method::GET, "/admin/accounts/acme/tokens", json!(null))
        .await;
    assert_eq!(list["tokens"].as_array().unwrap().len(), 1);
    assert_eq!(list["tokens"][0]["prefix"], prefix(&kept));
    let (s, _) = server.admin(Method::DELETE, &path, json!(null)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_app_closes_its_v2_streams_and_refuses_its_token() {
    let server = TestServer::start(fast_heartbeats()).await;
    server
        .admin(Method::PUT, "/admin/accounts/acme", json!({}))
        .await;
    let app = server.new_app("acme", "research").await;
    let app_id = app["app_id"].as_str().unwrap().to_owned();
    let token = app["bearer_token"].as_str().unwrap().to_owned();
    let rules_url = format!("{}/2/tweets/search/stream/rules", server.base);
    let added = server
        .http
        .post(&rules_url)
        .bearer_auth(&token)
        .json(&json!({"add": [{"value": "hello"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::OK);
    let response = server
        .http
        .get(format!("{}/2/tweets/search/stream", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = StreamClient::new(response);
    stream.until_heartbeat().await;
    server.ingest(&post(1, "hello")).await;
    assert_eq!(stream.next_message().await["data"]["id"], "1");

    let path = format!("/admin/accounts/acme/apps/{app_id}");
    let (s, body) = server.admin(Method::DELETE, &path, json!(null)).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{body}");
    let closed = closing_message(&mut stream).await;
    assert_eq!(
        closed["errors"][0]["detail"], CREDENTIALS_REVOKED_MESSAGE,
        "{closed}"
    );
    let refused = server
        .http
        .get(&rules_url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let (_, apps) = server
        .admin(Method::GET, "/admin/accounts/acme/apps", json!(null))
        .await;
    assert_eq!(apps, json!({"apps": []}));
    let (_, streams) = server
        .admin(Method::GET, "/admin/accounts/acme/streams", json!(null))
        .await;
    assert_eq!(
        streams,
        json!({"streams": []}),
        "its streams and rules are gone"
    );
    let (s, _) = server.admin(Method::DELETE, &path, json!(null)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test]
async fn a_label_two_products_share_is_deleted_only_with_its_product_named() {
    let server = TestServer::start(Settings::default()).await;
    server.provision("powertrack").await;
    server
        .admin(
            Method::PUT,
            "/admin/accounts/acme/streams/prod",
            json!({"product": "decahose"}),
        )
        .await;
    let (s, body) = server
        .admin(
            Method::DELETE,
            "/admin/accounts/acme/streams/prod",
            json!(null),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("powertrack")
            && message.contains("decahose")
            && message.contains("?product="),
        "{message}"
    );
    let (_, list) = server
        .admin(Method::GET, "/admin/accounts/acme/streams", json!(null))
        .await;
    assert_eq!(
        list["streams"].as_array().unwrap().len(),
        2,
        "nothing deleted"
    );
    let (s, _) = server
        .admin(
            Method::DELETE,
            "/admin/accounts/acme/streams/prod?product=decahose",
            json!(null),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    // One product left with the label: no need to name it.
    let (s, _) = server
        .admin(
            Method::DELETE,
            "/admin/accounts/acme/streams/prod",
            json!(null),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, list) = server
        .admin(Method::GET, "/admin/accounts/acme/streams", json!(null))
        .await;
    assert_eq!(list, json!({"streams": []}));
    server.stop().await;
}

#[tokio::test]
async fn malformed_admin_requests_get_the_admin_error_shape() {
    let server = TestServer::start(Settings::default()).await;
    server.provision("powertrack").await;
    let tokenless = json!(null);
    #[rustfmt::skip]
    let cases: &[(Method, &str, StatusCode, &str)] = &[
        (Method::GET, "/admin/accounts?next_token=!!", StatusCode::BAD_REQUEST, "Invalid next_token"),
        (Method::GET, "/admin/accounts?next_token=Li4", StatusCode::BAD_REQUEST, "Invalid next_token"),
        (Method::GET, "/admin/accounts?max_results=0", StatusCode::BAD_REQUEST, "Invalid max_results"),
        (Method::GET, "/admin/accounts?max_results=x", StatusCode::BAD_REQUEST, "Invalid max_results"),
        (Method::GET, "/admin/accounts?page=2", StatusCode::BAD_REQUEST, "Unknown query parameter"),
        (Method::DELETE, "/admin/accounts/bad%20name", StatusCode::BAD_REQUEST, "Invalid account"),
        (Method::DELETE, "/admin/accounts/.acme", StatusCode::BAD_REQUEST, "Invalid account"),
        (Method::DELETE, "/admin/accounts/nobody", StatusCode::NOT_FOUND, "Unknown account"),
        (Method::GET, "/admin/accounts/nobody/users", StatusCode::NOT_FOUND, "Unknown account"),
        (Method::DELETE, "/admin/accounts/acme/users/nobody", StatusCode::NOT_FOUND, "Unknown user"),
        (Method::DELETE, "/admin/accounts/acme/users/bad$", StatusCode::BAD_REQUEST, "Invalid username"),
        (Method::DELETE, "/admin/accounts/nobody/users/alice", StatusCode::NOT_FOUND, "Unknown account"),
        (Method::GET, "/admin/accounts/nobody/streams", StatusCode::NOT_FOUND, "Unknown account"),
        (Method::GET, "/admin/accounts/bad$/streams", StatusCode::BAD_REQUEST, "Invalid account"),
        (Method::DELETE, "/admin/accounts/acme/streams/prod?product=nope", StatusCode::BAD_REQUEST, "unknown product"),
        (Method::DELETE, "/admin/accounts/acme/streams/none", StatusCode::NOT_FOUND, "Unknown stream"),
        (Method::GET, "/admin/accounts/nobody/tokens", StatusCode::NOT_FOUND, "Unknown account"),
        (Method::DELETE, "/admin/accounts/acme/tokens/sl_ps_", StatusCode::BAD_REQUEST, "Invalid token prefix"),
        (Method::DELETE, "/admin/accounts/acme/tokens/garbage", StatusCode::BAD_REQUEST, "Invalid token prefix"),
        (Method::DELETE, "/admin/accounts/acme/tokens/sl_ps_0123ABCD", StatusCode::BAD_REQUEST, "Invalid token prefix"),
        (Method::DELETE, "/admin/accounts/acme/tokens/sl_ps_00000000", StatusCode::NOT_FOUND, "Unknown token"),
        (Method::DELETE, "/admin/accounts/nobody/tokens/sl_ps_00000000", StatusCode::NOT_FOUND, "Unknown account"),
        (Method::DELETE, "/admin/accounts/acme/apps/nope", StatusCode::NOT_FOUND, "App 'nope' not found"),
        (Method::DELETE, "/admin/accounts/nobody/apps/nope", StatusCode::NOT_FOUND, "Unknown account"),
        (Method::POST, "/admin/accounts", StatusCode::METHOD_NOT_ALLOWED, "Method not allowed"),
        (Method::PATCH, "/admin/accounts/acme", StatusCode::METHOD_NOT_ALLOWED, "Method not allowed"),
        (Method::PUT, "/admin/accounts/acme/tokens", StatusCode::METHOD_NOT_ALLOWED, "Method not allowed"),
        (Method::GET, "/admin/accounts/acme/tokens/sl_ps_00000000", StatusCode::METHOD_NOT_ALLOWED, "Method not allowed"),
        (Method::POST, "/admin/accounts/acme/streams", StatusCode::METHOD_NOT_ALLOWED, "Method not allowed"),
    ];
    for (method, path, status, message) in cases {
        let (s, body) = server.admin(method.clone(), path, tokenless.clone()).await;
        assert_eq!(s, *status, "{method} {path}: {body}");
        let text = body["error"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path}: {body}"));
        assert!(text.starts_with(message), "{method} {path}: {text}");
        assert!(body["error"]["sent"].is_string(), "{method} {path}: {body}");
    }
    // Every new call needs the admin token.
    #[rustfmt::skip]
    let guarded: &[(Method, &str)] = &[
        (Method::GET, "/admin/accounts"),
        (Method::DELETE, "/admin/accounts/acme"),
        (Method::GET, "/admin/accounts/acme/streams"),
        (Method::GET, "/admin/accounts/acme/tokens"),
        (Method::DELETE, "/admin/accounts/acme/tokens/sl_ps_00000000"),
        (Method::DELETE, "/admin/accounts/acme/apps/x"),
        (Method::DELETE, "/admin/accounts/acme/users/alice"),
    ];
    for (method, path) in guarded {
        let response = server
            .http
            .request(method.clone(), format!("{}{path}", server.base))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{method} {path}"
        );
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("admin token")
        );
    }
    // Nothing was deleted by the refused calls.
    let (s, _) = server
        .admin(Method::GET, "/admin/accounts/acme/users", json!(null))
        .await;
    assert_eq!(s, StatusCode::OK);
    server.stop().await;
}

/// The words of a `curl` command as a shell would split them (single quotes only: the
/// help view quotes every argument that needs it that way).
fn shell_words(command: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut started = false;
    for c in command.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                started = true;
            }
            ' ' if !quoted => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    words
}

/// Runs one of the help view's `curl` commands with `reqwest`, the placeholders replaced;
/// returns the status (a stream is dropped once its headers arrive).
async fn run_curl(server: &TestServer, command: &str, credentials: &[(&str, &str)]) -> StatusCode {
    let mut command = command.to_owned();
    for (placeholder, value) in credentials {
        command = command.replace(placeholder, value);
    }
    let words = shell_words(&command);
    assert_eq!(words[0], "curl", "{command}");
    let url = words.last().unwrap().clone();
    let (mut headers, mut body, mut basic) = (Vec::new(), None, None);
    let mut rest = words[1..words.len() - 1].iter();
    while let Some(word) = rest.next() {
        match word.as_str() {
            "--compressed" => headers.push(("accept-encoding".to_owned(), "gzip".to_owned())),
            "-H" => {
                let (k, v) = rest.next().unwrap().split_once(": ").unwrap();
                headers.push((k.to_owned(), v.to_owned()));
            }
            "-d" => body = Some(rest.next().unwrap().clone()),
            "-u" => basic = Some(rest.next().unwrap().clone()),
            other => panic!("unexpected curl word {other:?} in {command}"),
        }
    }
    let method = if body.is_some() {
        Method::POST
    } else {
        Method::GET
    };
    let mut request = server.http.request(method, &url);
    for (k, v) in headers {
        request = request.header(k, v);
    }
    if let Some(basic) = basic {
        let (user, password) = basic.split_once(':').unwrap();
        request = request.basic_auth(user, Some(password));
    }
    if let Some(body) = body {
        request = request.body(body);
    }
    request.send().await.unwrap().status()
}

#[tokio::test]
async fn the_help_views_curl_commands_work_as_given() {
    let server = TestServer::start(Settings::default()).await;
    server.provision("powertrack").await;
    server
        .admin(
            Method::PUT,
            "/admin/accounts/acme/streams/deca",
            json!({"product": "decahose"}),
        )
        .await;
    let token = server.powerstream_token("acme").await;
    let app = server.new_app("acme", "research").await;
    let app_token = app["bearer_token"].as_str().unwrap().to_owned();
    let credentials = [
        ("USERNAME", "alice"),
        ("PASSWORD", "secret"),
        ("APP_BEARER_TOKEN", app_token.as_str()),
        ("TOKEN", token.as_str()),
    ];
    for product in [
        "powertrack",
        "powerstream",
        "v2-filtered",
        "decahose",
        "v2-sample10",
    ] {
        let streams = listed(&server, product).await;
        assert_eq!(streams.len(), 1, "{product}");
        let curl = &streams[0]["curl"];
        if curl.get("add_rule").is_some() {
            // Add first: the v2 filtered stream refuses connections without rules.
            for step in ["add_rule", "validate_rule", "list_rules"] {
                let command = curl[step].as_str().unwrap();
                let status = run_curl(&server, command, &credentials).await;
                assert!(status.is_success(), "{product} {step}: {status}: {command}");
            }
        }
        let streams: Vec<&str> = match curl.get("stream_partitions") {
            Some(each) => each
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap())
                .collect(),
            None => vec![curl["stream"].as_str().unwrap()],
        };
        for command in streams {
            let status = run_curl(&server, command, &credentials).await;
            assert_eq!(status, StatusCode::OK, "{product} stream: {command}");
        }
        if let Some(command) = curl.get("delete_rule") {
            let command = command.as_str().unwrap();
            let status = run_curl(&server, command, &credentials).await;
            assert!(
                status.is_success(),
                "{product} delete_rule: {status}: {command}"
            );
            let rule_count = listed(&server, product).await[0]["rule_count"].clone();
            assert_eq!(
                rule_count, 0,
                "{product}: the rule the commands added is deleted"
            );
        }
    }
    server.stop().await;
}
