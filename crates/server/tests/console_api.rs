//! The console's JSON endpoints over real HTTP: a customer sees and changes its own
//! account only, state-changing requests need the console's origin and the session's
//! CSRF token, and signing in spends the same attempt budget as basic auth
//! (docs/operator-interface.md, "Console").

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_server::Settings;
use sluice_testkit::{ADMIN, TestServer};

/// A browser as far as the server can tell: a session cookie, the CSRF token, an origin.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
    csrf: Option<String>,
}

impl Browser {
    fn new(server: &TestServer) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: server.base.clone(),
            cookie: None,
            csrf: None,
        }
    }

    async fn sign_in(&mut self, body: Value) -> StatusCode {
        let response = self
            .http
            .post(format!("{}/console/api/session", self.base))
            .header("origin", &self.base)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        if let Some(cookie) = response.headers().get("set-cookie") {
            let cookie = cookie.to_str().unwrap();
            assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
            self.cookie = Some(cookie.split(';').next().unwrap().to_owned());
        }
        if status == StatusCode::OK {
            let body: Value = response.json().await.unwrap();
            self.csrf = body["csrf"].as_str().map(str::to_owned);
        }
        status
    }

    async fn call_as(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        origin: Option<&str>,
        csrf: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .http
            .request(method, format!("{}/console/api{path}", self.base));
        if let Some(cookie) = &self.cookie {
            request = request.header("cookie", cookie);
        }
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        if let Some(csrf) = csrf {
            request = request.header("x-csrf-token", csrf);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A call as the console's page makes it: its origin, its CSRF token.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let base = self.base.clone();
        self.call_as(method, path, body, Some(&base), self.csrf.as_deref())
            .await
    }
}

async fn account_with_stream(server: &TestServer, account: &str, user: &str, labels: &[&str]) {
    let admin = |path: String, body: Value| async move {
        let (s, b) = server.admin(Method::PUT, &path, body).await;
        assert!(s.is_success(), "{path}: {s} {b}");
    };
    admin(format!("/admin/accounts/{account}"), json!({})).await;
    admin(
        format!("/admin/accounts/{account}/users/{user}"),
        json!({"password": "pw"}),
    )
    .await;
    for label in labels {
        admin(
            format!("/admin/accounts/{account}/streams/{label}"),
            json!({"product": "powertrack"}),
        )
        .await;
    }
}

fn rule_values(body: &Value) -> Vec<&str> {
    body["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["value"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_customer_never_reads_or_changes_another_accounts_data() {
    let server = TestServer::start(Settings::default()).await;
    account_with_stream(&server, "acme", "alice", &["prod"]).await;
    account_with_stream(&server, "globex", "bob", &["prod", "private"]).await;
    let mut bob = Browser::new(&server);
    assert_eq!(
        bob.sign_in(json!({"account": "globex", "username": "bob", "password": "pw"}))
            .await,
        StatusCode::OK
    );
    let rule = json!({"rules": [{"value": "globex secret", "tag": "g"}]});
    for label in ["prod", "private"] {
        let (s, b) = bob
            .call(
                Method::POST,
                &format!("/streams/{label}/rules"),
                Some(rule.clone()),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    let (_, globex_rules) = bob.call(Method::GET, "/streams/prod/rules", None).await;
    let globex_rule_id = globex_rules["rules"][0]["id"].as_str().unwrap().to_owned();

    // alice cannot sign in to globex, and bob's password is not hers.
    let mut alice = Browser::new(&server);
    for wrong in [
        json!({"account": "globex", "username": "alice", "password": "pw"}),
        json!({"account": "acme", "username": "bob", "password": "pw"}),
    ] {
        assert_eq!(alice.sign_in(wrong).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        alice
            .sign_in(json!({"account": "acme", "username": "alice", "password": "pw"}))
            .await,
        StatusCode::OK
    );

    // Reads: her own account only, even for a label both accounts have.
    let (s, account) = alice.call(Method::GET, "/account", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(account["account"], "acme");
    assert_eq!(account["streams"].as_array().unwrap().len(), 1);
    assert!(!account.to_string().contains("globex"), "{account}");
    let (s, rules) = alice.call(Method::GET, "/streams/prod/rules", None).await;
    assert_eq!((s, rule_values(&rules)), (StatusCode::OK, vec![]));
    #[rustfmt::skip]
    let refused: &[(Method, String, Option<Value>)] = &[
        (Method::GET, "/streams/private/rules".into(), None),
        (Method::POST, "/streams/private/rules".into(), Some(rule.clone())),
        (Method::DELETE, format!("/streams/private/rules/{globex_rule_id}"), None),
        (Method::GET, "/streams/private/live".into(), None),
        // Her own label, another account's rule id.
        (Method::DELETE, format!("/streams/prod/rules/{globex_rule_id}"), None),
        (Method::GET, "/streams/..%2F..%2Fglobex%2Fprod/rules".into(), None),
    ];
    for (method, path, body) in refused {
        let (s, b) = alice.call(method.clone(), path, body.clone()).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{method} {path}: {b}");
    }
    // The operator's endpoints are the operator's.
    #[rustfmt::skip]
    let operator_only: &[(Method, &str, Option<Value>)] = &[
        (Method::GET, "/admin/health", None),
        (Method::GET, "/admin/accounts/globex", None),
        (Method::PUT, "/admin/accounts/globex/users/eve", Some(json!({"password": "x"}))),
        (Method::DELETE, "/admin/accounts/globex/users/bob", None),
        (Method::DELETE, "/admin/accounts/globex/streams/prod", None),
        (Method::POST, "/admin/accounts/globex/apps", Some(json!({"name": "x"}))),
    ];
    for (method, path, body) in operator_only {
        let (s, b) = alice.call(method.clone(), path, body.clone()).await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{method} {path}: {b}");
    }

    // Her add goes to her stream; globex's rules are untouched.
    let (s, _) = alice
        .call(
            Method::POST,
            "/streams/prod/rules",
            Some(json!({"rules": [{"value": "acme rule"}]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (_, acme_rules) = alice.call(Method::GET, "/streams/prod/rules", None).await;
    assert_eq!(rule_values(&acme_rules), ["acme rule"]);
    for label in ["prod", "private"] {
        let (_, b) = bob
            .call(Method::GET, &format!("/streams/{label}/rules"), None)
            .await;
        assert_eq!(rule_values(&b), ["globex secret"], "{label}");
    }
    let (s, _) = server
        .admin(Method::PUT, "/admin/accounts/globex/users/eve", json!({}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "eve was never created");
    server.stop().await;
}

#[tokio::test]
async fn state_changes_need_the_consoles_origin_and_the_sessions_csrf_token() {
    let server = TestServer::start(Settings::default()).await;
    account_with_stream(&server, "acme", "alice", &["prod"]).await;
    let mut alice = Browser::new(&server);

    // Signing in from another origin (login CSRF) is refused.
    let response = alice
        .http
        .post(format!("{}/console/api/session", server.base))
        .header("origin", "http://evil.example")
        .json(&json!({"account": "acme", "username": "alice", "password": "pw"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.headers().get("set-cookie").is_none());

    assert_eq!(
        alice.call(Method::GET, "/account", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    alice
        .sign_in(json!({"account": "acme", "username": "alice", "password": "pw"}))
        .await;
    let add = Some(json!({"rules": [{"value": "cat"}]}));
    let base = server.base.clone();
    let csrf = alice.csrf.clone().unwrap();
    #[rustfmt::skip]
    let refused: &[(Option<&str>, Option<&str>)] = &[
        (Some(&base), None),
        (Some(&base), Some("not-the-token")),
        (None, Some(&csrf)),
        (Some("http://evil.example"), Some(&csrf)),
        (Some("null"), Some(&csrf)),
    ];
    for (origin, token) in refused {
        let (s, b) = alice
            .call_as(
                Method::POST,
                "/streams/prod/rules",
                add.clone(),
                *origin,
                *token,
            )
            .await;
        assert_eq!(s, StatusCode::FORBIDDEN, "{origin:?} {token:?}: {b}");
    }
    let (_, rules) = alice.call(Method::GET, "/streams/prod/rules", None).await;
    assert_eq!(rule_values(&rules), Vec::<&str>::new(), "nothing was added");
    assert_eq!(
        alice.call(Method::POST, "/streams/prod/rules", add).await.0,
        StatusCode::CREATED
    );

    // A password change ends the customer's console session.
    let (s, _) = server
        .admin(
            Method::PUT,
            "/admin/accounts/acme/users/alice",
            json!({"password": "new"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        alice.call(Method::GET, "/account", None).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Signing out ends the session: its cookie is worth nothing after.
    let mut operator = Browser::new(&server);
    assert_eq!(
        operator.sign_in(json!({"admin_token": "wrong"})).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        operator.sign_in(json!({"admin_token": ADMIN})).await,
        StatusCode::OK
    );
    assert_eq!(
        operator.call(Method::GET, "/admin/health", None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        operator.call(Method::GET, "/account", None).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        operator.call(Method::DELETE, "/session", None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        operator.call(Method::GET, "/admin/health", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    server.stop().await;
}

#[tokio::test]
async fn console_sign_ins_spend_the_same_attempt_budget_as_basic_auth() {
    let mut settings = Settings::default();
    settings.auth.attempts_per_user = 2;
    settings.auth.attempt_window = Duration::from_secs(3600);
    let server = TestServer::start(settings).await;
    account_with_stream(&server, "acme", "alice", &["prod"]).await;
    let mut browser = Browser::new(&server);
    let wrong = json!({"account": "acme", "username": "alice", "password": "guess"});
    assert_eq!(
        browser.sign_in(wrong.clone()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        browser.sign_in(wrong.clone()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(browser.sign_in(wrong).await, StatusCode::TOO_MANY_REQUESTS);
    // The budget is the user's, console or not: the rules API refuses the next guess too.
    let response = server
        .http
        .get(format!(
            "{}/rules/powertrack/accounts/acme/publishers/twitter/prod.json",
            server.base
        ))
        .basic_auth("alice", Some("guess again"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    server.stop().await;
}

#[tokio::test]
async fn the_live_view_streams_matches_and_ends_when_its_user_is_revoked() {
    let settings = Settings {
        heartbeat: Duration::from_millis(200),
        ..Settings::default()
    };
    let server = TestServer::start(settings).await;
    account_with_stream(&server, "acme", "alice", &["prod"]).await;
    let mut alice = Browser::new(&server);
    alice
        .sign_in(json!({"account": "acme", "username": "alice", "password": "pw"}))
        .await;
    let (s, _) = alice
        .call(
            Method::POST,
            "/streams/prod/rules",
            Some(json!({"rules": [{"value": "hello", "tag": "hi"}]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let mut live = alice
        .http
        .get(format!("{}/console/api/streams/prod/live", server.base))
        .header("cookie", alice.cookie.clone().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    assert_eq!(live.headers()["content-type"], "text/event-stream");
    server
        .ingest(&format!(
            "{}\n{}\n",
            sluice_testkit::post(1, "bye"),
            sluice_testkit::post(2, "hello there")
        ))
        .await;
    let mut seen = String::new();
    while !seen.contains("event: post") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), live.chunk())
            .await
            .expect("the post arrives")
            .unwrap()
            .expect("the stream is open");
        seen.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let data = seen.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
    let event: Value = serde_json::from_str(data).unwrap();
    assert_eq!(event["text"], "hello there");
    assert_eq!(event["matching_rules"][0]["tag"], "hi");
    assert!(!seen.contains("bye"));
    let stream = server.state.registry.all().pop().unwrap();
    assert!(
        stream.connections.is_empty(),
        "the view is not a connection"
    );

    // A password change ends the view at its next heartbeat.
    let (s, _) = server
        .admin(
            Method::PUT,
            "/admin/accounts/acme/users/alice",
            json!({"password": "new"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while live.chunk().await.unwrap().is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "the live view ends");
    server.stop().await;
}
