//! The admin and ingest APIs over real HTTP (docs/operator-interface.md).

use reqwest::{Method, StatusCode};
use serde_json::json;
use sluice_server::Settings;
use sluice_testkit::{ADMIN, TestServer, post};

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
async fn the_help_view_lists_powerstream_once_the_account_has_a_token() {
    let server = TestServer::start(Settings::default()).await;
    server
        .admin(Method::PUT, "/admin/accounts/acme", json!({}))
        .await;
    assert_eq!(
        listed(&server, "powerstream").await,
        Vec::<serde_json::Value>::new()
    );

    let (_, token) = server
        .admin(Method::POST, "/admin/accounts/acme/tokens", json!({}))
        .await;
    let token = token["token"].as_str().unwrap().to_owned();
    let expected = |rule_count: u64| {
        json!({
            "account": "acme",
            "label": "powerstream",
            "product": "powerstream",
            "stream_url": format!("{}/2/powerstream", server.base),
            "rules_url": format!("{}/2/powerstream/rules", server.base),
            "rule_count": rule_count,
            "max_rules": 1000,
            "max_connections": 2,
            "connections": 0,
        })
    };
    assert_eq!(listed(&server, "powerstream").await, [expected(0)]);

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
    assert_eq!(listed(&server, "powerstream").await, [expected(1)]);
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
