//! Authentication over real HTTP: password checks bounded and shared under storms, unknown
//! users checked like known ones, attempt budgets with X's 429 headers, `WWW-Authenticate`
//! on every 401, and streams closed when their user's credentials change or go away.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_server::Settings;
use sluice_server::auth::AuthSettings;
use sluice_testkit::{ADMIN, TestServer, post};
use sluice_testkit::{StreamClient, error_message};
use sluice_wire::error::CREDENTIALS_REVOKED_MESSAGE;

const RULES: &str = "/rules/powertrack/accounts/acme/publishers/twitter/prod.json";
const STREAM: &str = "/stream/powertrack/accounts/acme/publishers/twitter/prod.json";

async fn started(auth: AuthSettings) -> TestServer {
    let server = TestServer::start(Settings {
        auth,
        ..Settings::default()
    })
    .await;
    server.provision("powertrack").await;
    server
}

/// Generous budgets and a long wait: only the bound on concurrent checks is in play.
fn unthrottled(password_checks: usize) -> AuthSettings {
    AuthSettings {
        password_checks,
        password_check_wait: Duration::from_secs(120),
        attempts_per_user: 10_000,
        attempts_per_client: 10_000,
        ..AuthSettings::default()
    }
}

/// `GET` of the rules URL as `user`:`password`; the status and Gnip error body, if any.
async fn list_rules(server: &TestServer, user: &str, password: &str) -> reqwest::Response {
    server
        .http
        .get(format!("{}{RULES}", server.base))
        .basic_auth(user, Some(password))
        .send()
        .await
        .unwrap()
}

fn checks(server: &TestServer) -> u64 {
    server.state.passwords.stats().checks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_wrong_passwords_never_runs_more_checks_at_once_than_permitted() {
    let server = started(unthrottled(2)).await;
    let before = checks(&server);
    let requests = (0..64).map(|i| {
        let (http, base) = (server.http.clone(), server.base.clone());
        // Distinct passwords (no two share a check), for existing and unknown users.
        let user = if i % 2 == 0 { "alice" } else { "mallory" };
        tokio::spawn(async move {
            http.get(format!("{base}{RULES}"))
                .basic_auth(user, Some(format!("wrong-{i}")))
                .send()
                .await
                .unwrap()
                .status()
        })
    });
    for request in requests.collect::<Vec<_>>() {
        assert_eq!(request.await.unwrap(), StatusCode::UNAUTHORIZED);
    }
    let stats = server.state.passwords.stats();
    assert_eq!(stats.checks - before, 64, "every attempt was checked");
    assert!(stats.max_running <= 2, "{stats:?}");
    assert_eq!(stats.running, 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_for_one_user_are_cut_off_with_x_rate_limit_headers() {
    // A fixed window of a day: the default minute could end during the test, and the last
    // check (a right password still refused) would then pass by luck of the clock.
    let server = started(AuthSettings {
        attempt_window: Duration::from_secs(24 * 3600),
        ..AuthSettings::default()
    })
    .await;
    let before = checks(&server);
    let requests = (0..64).map(|i| {
        let (http, base) = (server.http.clone(), server.base.clone());
        tokio::spawn(async move {
            http.get(format!("{base}{RULES}"))
                .basic_auth("alice", Some(format!("guess-{i}")))
                .send()
                .await
                .unwrap()
        })
    });
    let mut refused = Vec::new();
    for request in requests.collect::<Vec<_>>() {
        let response = request.await.unwrap();
        match response.status() {
            StatusCode::UNAUTHORIZED => {}
            StatusCode::TOO_MANY_REQUESTS => refused.push(response),
            other => panic!("unexpected {other}"),
        }
    }
    let limit = AuthSettings::default().attempts_per_user;
    assert_eq!(refused.len(), 64 - limit as usize);
    assert_eq!(checks(&server) - before, u64::from(limit));
    let response = refused.pop().unwrap();
    let headers = response.headers().clone();
    assert_eq!(headers["x-rate-limit-limit"], limit.to_string().as_str());
    assert_eq!(headers["x-rate-limit-remaining"], "0");
    assert!(headers.contains_key("x-rate-limit-reset"));
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Rate limit")
    );
    // Until the window ends, an unverified right password is refused too (one verified
    // before the storm would be in the cache and pass).
    let right = list_rules(&server, "alice", "secret").await;
    assert_eq!(right.status(), StatusCode::TOO_MANY_REQUESTS);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_storm_with_the_right_password_costs_one_check() {
    let server = started(unthrottled(2)).await;
    let before = checks(&server);
    let requests = (0..32).map(|_| {
        let (http, base) = (server.http.clone(), server.base.clone());
        tokio::spawn(async move {
            http.get(format!("{base}{RULES}"))
                .basic_auth("alice", Some("secret"))
                .send()
                .await
                .unwrap()
                .status()
        })
    });
    for request in requests.collect::<Vec<_>>() {
        assert_eq!(request.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(checks(&server) - before, 1);
    server.stop().await;
}

#[tokio::test]
async fn unknown_users_and_accounts_cost_a_password_check_like_known_users() {
    let server = started(unthrottled(2)).await;
    let mut expected = checks(&server);
    for (user, url) in [
        ("alice", RULES),
        ("nobody", RULES),
        (
            "alice",
            "/rules/powertrack/accounts/nowhere/publishers/twitter/prod.json",
        ),
    ] {
        let response = server
            .http
            .get(format!("{}{url}", server.base))
            .basic_auth(user, Some("wrong"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{user} {url}");
        expected += 1;
        assert_eq!(checks(&server), expected, "{user} {url} ran one check");
    }
    server.stop().await;
}

#[tokio::test]
async fn every_401_names_its_scheme_in_www_authenticate() {
    let server = started(AuthSettings::default()).await;
    let basic = "Basic realm=\"sluice\"";
    let cases = [
        (Method::GET, RULES.to_owned(), basic),
        (Method::GET, STREAM.to_owned(), basic),
        (Method::GET, "/admin/accounts/acme".to_owned(), "Bearer"),
        (Method::POST, "/ingest".to_owned(), "Bearer"),
        (Method::GET, "/2/powerstream/rules".to_owned(), "Bearer"),
        (Method::GET, "/2/powerstream".to_owned(), "Bearer"),
    ];
    for (method, path, challenge) in cases {
        let url = format!("{}{path}", server.base);
        for request in [
            server.http.request(method.clone(), &url),
            server
                .http
                .request(method.clone(), &url)
                .bearer_auth("sl_ps_00000000_wrong"),
        ] {
            let request = if challenge == basic {
                request.basic_auth("alice", Some("wrong"))
            } else {
                request
            };
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
            assert_eq!(response.headers()["www-authenticate"], challenge, "{path}");
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn unknown_powerstream_tokens_spend_the_client_budget() {
    let server = started(AuthSettings {
        attempts_per_client: 3,
        ..AuthSettings::default()
    })
    .await;
    let url = format!("{}/2/powerstream/rules", server.base);
    let (_, created) = server
        .admin(Method::POST, "/admin/accounts/acme/tokens", json!({}))
        .await;
    let token = created["token"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        let response = server
            .http
            .get(&url)
            .bearer_auth("sl_ps_x")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let refused = server
        .http
        .get(&url)
        .bearer_auth("sl_ps_x")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    assert_eq!(refused.headers()["x-rate-limit-limit"], "3");
    assert_eq!(refused.headers()["x-rate-limit-remaining"], "0");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["status"], 429, "{body}");
    // A known token is one lookup and is never refused for the budget.
    let ok = server
        .http
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    // Basic auth from the same address shares the budget.
    let basic = list_rules(&server, "alice", "wrong").await;
    assert_eq!(basic.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = basic.json().await.unwrap();
    assert!(error_message(&body).contains("Rate limit"), "{body}");
    server.stop().await;
}

async fn connect(server: &TestServer) -> StreamClient {
    let response = server
        .http
        .get(format!("{}{STREAM}", server.base))
        .basic_auth("alice", Some("secret"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    StreamClient::new(response)
}

/// Adds a rule matching `hello` through the rules API.
async fn add_rule(server: &TestServer) {
    let response = server
        .http
        .post(format!("{}{RULES}", server.base))
        .basic_auth("alice", Some("secret"))
        .json(&json!({"rules": [{"value": "hello"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
}

/// Reads the stream to its end; the last message must be the revoked message.
async fn assert_closed_as_revoked(stream: &mut StreamClient) {
    let rest = tokio::time::timeout(Duration::from_secs(10), stream.rest())
        .await
        .expect("the stream ends");
    let last = rest.last().expect("a closing message");
    assert_eq!(error_message(last), CREDENTIALS_REVOKED_MESSAGE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_change_closes_the_users_streams_and_the_old_password_stops_working() {
    let server = started(AuthSettings::default()).await;
    server
        .admin(
            Method::PUT,
            "/admin/accounts/acme/users/bob",
            json!({"password": "bobs"}),
        )
        .await;
    add_rule(&server).await;
    let mut alice = connect(&server).await;
    let bob = server
        .http
        .get(format!("{}{STREAM}", server.base))
        .basic_auth("bob", Some("bobs"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    let mut bob = StreamClient::new(bob);
    server.ingest(&post(1, "hello")).await;
    assert_eq!(alice.next_message().await["id"], 1);
    assert_eq!(bob.next_message().await["id"], 1);

    let (status, _) = server
        .admin(
            Method::PUT,
            "/admin/accounts/acme/users/alice",
            json!({"password": "new"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_closed_as_revoked(&mut alice).await;
    assert_eq!(
        list_rules(&server, "alice", "secret").await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        list_rules(&server, "alice", "new").await.status(),
        StatusCode::OK
    );
    // Bob's stream goes on.
    server.ingest(&post(2, "hello")).await;
    assert_eq!(bob.next_message().await["id"], 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_user_closes_its_streams_and_the_user_is_listed_no_more() {
    let server = started(AuthSettings::default()).await;
    let mut stream = connect(&server).await;
    let (status, users) = server
        .admin(Method::GET, "/admin/accounts/acme/users", Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(users, json!({"users": [{"username": "alice"}]}));

    let (status, body) = server
        .admin(
            Method::DELETE,
            "/admin/accounts/acme/users/alice",
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert_closed_as_revoked(&mut stream).await;
    assert_eq!(
        list_rules(&server, "alice", "secret").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let (status, users) = server
        .admin(Method::GET, "/admin/accounts/acme/users", Value::Null)
        .await;
    assert_eq!((status, users), (StatusCode::OK, json!({"users": []})));

    let (status, body) = server
        .admin(
            Method::DELETE,
            "/admin/accounts/acme/users/alice",
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        body["error"]["message"].as_str().unwrap().contains("alice"),
        "{body}"
    );
    let unauthorized = server
        .http
        .delete(format!("{}/admin/accounts/acme/users/alice", server.base))
        .bearer_auth(format!("{ADMIN}x"))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), StatusCode::UNAUTHORIZED);
    server.stop().await;
}
