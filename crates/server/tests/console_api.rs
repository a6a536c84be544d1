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
    let existing: Vec<&Value> = account["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["exists"] == true)
        .collect();
    assert_eq!(existing.len(), 1, "{account}");
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
        // Powerstream: only the account's own rule set, by its one label.
        (Method::GET, "/streams/prod/rules?product=powerstream".into(), None),
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
        (Method::GET, "/admin/accounts", None),
        (Method::DELETE, "/admin/accounts/globex", None),
        (Method::GET, "/admin/accounts/globex/tokens", None),
        (Method::POST, "/admin/accounts/globex/tokens", Some(json!({}))),
        (Method::DELETE, "/admin/accounts/globex/tokens/sl_ps_0123abcd", None),
        (Method::PUT, "/admin/accounts/globex/apps/x", Some(json!({"max_rules": 1}))),
        (Method::DELETE, "/admin/accounts/globex/apps/x", None),
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
    assert!(
        server
            .admin(Method::GET, "/admin/accounts/globex", json!(null))
            .await
            .0
            .is_success()
    );

    // Powerstream rule sets: each customer's own.
    let ps = "/streams/powerstream/rules?product=powerstream";
    let (s, b) = bob
        .call(
            Method::POST,
            ps,
            Some(json!({"rules": [{"value": "globex ps"}]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = alice.call(Method::GET, ps, None).await;
    assert_eq!((s, rule_values(&b)), (StatusCode::OK, vec![]));
    let (_, b) = bob.call(Method::GET, ps, None).await;
    assert_eq!(rule_values(&b), ["globex ps"]);
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

/// The operator as the console's page acts.
async fn operator(server: &TestServer) -> Browser {
    let mut operator = Browser::new(server);
    assert_eq!(
        operator.sign_in(json!({"admin_token": ADMIN})).await,
        StatusCode::OK
    );
    operator
}

#[tokio::test]
async fn the_operator_lists_accounts_and_manages_tokens_apps_and_deletes() {
    let server = TestServer::start(Settings::default()).await;
    for account in ["a1", "a2", "a3"] {
        account_with_stream(&server, account, "u", &["prod"]).await;
    }
    let op = operator(&server).await;

    // Accounts, a page at a time.
    let (s, page1) = op
        .call(Method::GET, "/admin/accounts?max_results=2", None)
        .await;
    assert_eq!(s, StatusCode::OK, "{page1}");
    let names = |b: &Value| -> Vec<String> {
        b["accounts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["account"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&page1), ["a1", "a2"]);
    assert_eq!(page1["accounts"][0]["streams"], 1);
    let next = page1["next_token"].as_str().unwrap();
    let (_, page2) = op
        .call(
            Method::GET,
            &format!("/admin/accounts?max_results=2&next_token={next}"),
            None,
        )
        .await;
    assert_eq!(names(&page2), ["a3"]);
    assert!(page2["next_token"].is_null());
    let (s, b) = op.call(Method::GET, "/admin/accounts?page=2", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        b["error"]
            .as_str()
            .unwrap()
            .contains("Unknown query parameter"),
        "{b}"
    );

    // Tokens: created with a label (shown once), listed, revoked.
    let (s, created) = op
        .call(
            Method::POST,
            "/admin/accounts/a1/tokens",
            Some(json!({"label": "ci"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let token = created["token"].as_str().unwrap().to_owned();
    let (_, listed) = op
        .call(Method::GET, "/admin/accounts/a1/tokens", None)
        .await;
    assert_eq!(listed["tokens"][0]["label"], "ci");
    let prefix = listed["tokens"][0]["prefix"].as_str().unwrap().to_owned();
    assert!(token.starts_with(&prefix));
    let powerstream = || {
        reqwest::Client::new()
            .get(format!("{}/2/powerstream/rules", server.base))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(powerstream().await.unwrap().status(), StatusCode::OK);
    let (s, _) = op
        .call(
            Method::DELETE,
            &format!("/admin/accounts/a1/tokens/{prefix}"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(
        powerstream().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let (_, listed) = op
        .call(Method::GET, "/admin/accounts/a1/tokens", None)
        .await;
    assert_eq!(listed["tokens"], json!([]));

    // Apps: limits set (and refused out of range), then the app deleted.
    let (_, app) = op
        .call(
            Method::POST,
            "/admin/accounts/a1/apps",
            Some(json!({"name": "dash"})),
        )
        .await;
    let app_id = app["app_id"].as_str().unwrap().to_owned();
    let limits = format!("/admin/accounts/a1/apps/{app_id}");
    let (s, b) = op
        .call(
            Method::PUT,
            &limits,
            Some(json!({"max_rules": 7, "max_rule_chars": 100, "max_connections": 2})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        (&b["max_rules"], &b["max_rule_chars"], &b["max_connections"]),
        (&json!(7), &json!(100), &json!(2))
    );
    let (s, b) = op
        .call(Method::PUT, &limits, Some(json!({"max_rule_chars": 5000})))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["error"], "max_rule_chars must be from 1 to 2048.");
    let (_, apps) = op.call(Method::GET, "/admin/accounts/a1/apps", None).await;
    assert_eq!(apps["apps"][0]["max_rules"], 7);
    assert_eq!(
        op.call(Method::DELETE, &limits, None).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        op.call(Method::DELETE, &limits, None).await.0,
        StatusCode::NOT_FOUND
    );

    // A stream's limits.
    let (s, b) = op
        .call(
            Method::PUT,
            "/admin/accounts/a1/streams/prod",
            Some(json!({"product": "powertrack", "max_connections": 3, "max_rules": 9})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        (&b["max_connections"], &b["max_rules"]),
        (&json!(3), &json!(9))
    );

    // Deleting an account: gone from the list, its users signed out.
    let mut user = Browser::new(&server);
    user.sign_in(json!({"account": "a2", "username": "u", "password": "pw"}))
        .await;
    assert_eq!(
        user.call(Method::GET, "/account", None).await.0,
        StatusCode::OK
    );
    assert_eq!(
        op.call(Method::DELETE, "/admin/accounts/a2", None).await.0,
        StatusCode::NO_CONTENT
    );
    let (_, all) = op.call(Method::GET, "/admin/accounts", None).await;
    assert_eq!(names(&all), ["a1", "a3"]);
    assert_eq!(
        user.call(Method::GET, "/account", None).await.0,
        StatusCode::UNAUTHORIZED
    );
    server.stop().await;
}

#[tokio::test]
async fn the_node_page_shows_what_the_post_log_holds() {
    let settings = Settings {
        post_log_retention: Duration::from_secs(2 * 3600),
        ..Settings::default()
    };
    let server = TestServer::start(settings).await;
    let op = operator(&server).await;
    let (_, before) = op.call(Method::GET, "/admin/health", None).await;
    assert_eq!(before["post_log"]["posts"], 0);
    assert!(before["post_log"]["oldest_ms"].is_null());
    assert_eq!(before["post_log"]["retention_seconds"], 7200);
    assert_eq!(before["cluster"], false);
    server
        .ingest(&format!(
            "{}\n{}\n",
            sluice_testkit::post(1, "one"),
            sluice_testkit::post(2, "two")
        ))
        .await;
    let (_, after) = op.call(Method::GET, "/admin/health", None).await;
    assert_eq!(after["post_log"]["posts"], 2, "{after}");
    let oldest = after["post_log"]["oldest_ms"].as_u64().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(now.abs_diff(oldest) < 60_000, "{oldest} vs {now}");
    server.stop().await;
}

#[tokio::test]
async fn the_customer_sees_every_product_and_keeps_powerstream_rules() {
    let server = TestServer::start(Settings::default()).await;
    account_with_stream(&server, "acme", "alice", &["prod"]).await;
    let app = server.new_app("acme", "dash").await;
    let app_id = app["app_id"].as_str().unwrap();
    let mut alice = Browser::new(&server);
    alice
        .sign_in(json!({"account": "acme", "username": "alice", "password": "pw"}))
        .await;

    // The API help: the PowerTrack stream, the Powerstream rule set and the app's v2
    // streams, each with commands that authenticate the way its product does.
    let (_, account) = alice.call(Method::GET, "/account", None).await;
    let streams = account["streams"].as_array().unwrap();
    let of = |product: &str| {
        streams
            .iter()
            .find(|s| s["product"] == product)
            .unwrap_or_else(|| panic!("no {product} in {account}"))
    };
    assert_eq!(
        of("powertrack")["curl"][0]["command"].as_str().unwrap(),
        format!(
            "curl --compressed -u 'alice' '{}/stream/powertrack/accounts/acme/publishers/twitter/prod.json'",
            server.base
        )
    );
    let ps = of("powerstream");
    assert_eq!(ps["exists"], false);
    assert!(
        ps["curl"]
            .to_string()
            .contains("Authorization: Bearer TOKEN"),
        "{ps}"
    );
    let v2 = of("v2-filtered");
    assert_eq!((&v2["label"], &v2["app"]), (&json!(app_id), &json!("dash")));
    let commands: Vec<&str> = v2["curl"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["command"].as_str().unwrap())
        .collect();
    assert!(
        commands[0].contains(&format!("{}/2/tweets/search/stream", server.base)),
        "{commands:?}"
    );
    assert!(
        commands.iter().all(|c| c.contains("APP_BEARER_TOKEN")),
        "{commands:?}"
    );
    let sample10 = of("v2-sample10")["curl"][0].clone();
    assert_eq!(sample10["what"], "Connect to partition 1 (of 1 to 2)");
    assert!(
        sample10["command"]
            .as_str()
            .unwrap()
            .ends_with("/2/tweets/sample10/stream?partition=1'")
    );

    // Powerstream rules: added, X's Powerstream messages for invalid ones, deleted.
    let rules = "/streams/powerstream/rules?product=powerstream";
    let (s, b) = alice
        .call(
            Method::POST,
            rules,
            Some(json!({"rules": [{"value": "cats", "tag": "c"}]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = alice
        .call(
            Method::POST,
            rules,
            Some(json!({"rules": [{"value": "(cats"}]})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let message = b["detail"][0]["message"].as_str().unwrap();
    assert!(message.ends_with("(at position 6)."), "{message}");
    let too_many: Vec<Value> = (0..101)
        .map(|i| json!({"value": format!("w{i}")}))
        .collect();
    let (s, b) = alice
        .call(Method::POST, rules, Some(json!({"rules": too_many})))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (_, listed) = alice.call(Method::GET, rules, None).await;
    assert_eq!(rule_values(&listed), ["cats"]);
    let id = listed["rules"][0]["id"].as_str().unwrap();
    let (s, _) = alice
        .call(
            Method::DELETE,
            &format!("/streams/powerstream/rules/{id}?product=powerstream"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, b) = alice
        .call(Method::GET, "/streams/prod/rules?product=decahose", None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    // The Powerstream rule set now exists, as after a first Powerstream call.
    let (_, account) = alice.call(Method::GET, "/account", None).await;
    assert!(
        account["streams"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["product"] == "powerstream" && s["exists"] == true)
    );
    server.stop().await;
}

#[tokio::test]
async fn the_customer_sees_its_own_usage_only() {
    let server = TestServer::start(Settings {
        heartbeat: Duration::from_millis(300),
        ..Settings::default()
    })
    .await;
    account_with_stream(&server, "acme", "alice", &["prod"]).await;
    account_with_stream(&server, "globex", "bob", &["secret"]).await;
    let mut alice = Browser::new(&server);
    alice
        .sign_in(json!({"account": "acme", "username": "alice", "password": "pw"}))
        .await;
    let (s, _) = alice
        .call(
            Method::POST,
            "/streams/prod/rules",
            Some(json!({"rules": [{"value": "hello", "tag": "hi"}, {"value": "nevermatches"}]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    // A connection, so that posts are delivered (and counted).
    let response = reqwest::Client::new()
        .get(format!(
            "{}/stream/powertrack/accounts/acme/publishers/twitter/prod.json",
            server.base
        ))
        .basic_auth("alice", Some("pw"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let mut stream = sluice_testkit::StreamClient::new(response);
    server
        .ingest(&format!(
            "{}\n{}\n",
            sluice_testkit::post(1, "hello there"),
            sluice_testkit::post(2, "nothing")
        ))
        .await;
    assert_eq!(sluice_testkit::id_of(&stream.next_message().await), 1);

    let (s, usage) = alice.call(Method::GET, "/usage", None).await;
    assert_eq!(s, StatusCode::OK, "{usage}");
    assert_eq!(usage["account"], "acme");
    assert_eq!(usage["bucket"], "hour");
    assert_eq!(usage["buckets"].as_array().unwrap().len(), 24);
    let streams = usage["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 1, "{usage}");
    let prod = &streams[0];
    assert_eq!(prod["label"], "prod");
    assert_eq!(prod["total"]["activities"], 1);
    assert_eq!(prod["connections"], 1);
    assert_eq!(prod["rules"], 2);
    let matches = &prod["rule_matches_last_hour"];
    assert_eq!(matches["top"][0]["value"], "hello");
    assert_eq!(matches["top"][0]["matches"], 1);
    assert_eq!(matches["never_matched"][0]["value"], "nevermatches");
    assert!(!usage.to_string().contains("globex"));

    let (s, by_day) = alice.call(Method::GET, "/usage?bucket=day", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(by_day["streams"][0]["total"]["activities"], 1, "{by_day}");
    #[rustfmt::skip]
    let refused: &[&str] = &[
        "/usage?bucket=minute", "/usage?from=yesterday", "/usage?account=globex",
    ];
    for query in refused {
        let (s, b) = alice.call(Method::GET, query, None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{query}: {b}");
    }
    let op = operator(&server).await;
    assert_eq!(
        op.call(Method::GET, "/usage", None).await.0,
        StatusCode::FORBIDDEN
    );
    server.stop().await;
}

#[tokio::test]
async fn the_customer_edits_a_replay_streams_own_rules() {
    let server = TestServer::start(Settings::default()).await;
    account_with_stream(&server, "acme", "alice", &["prod"]).await;
    let (s, b) = server
        .admin(
            Method::PUT,
            "/admin/accounts/acme/streams/prod",
            json!({"product": "powertrack-replay"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let mut alice = Browser::new(&server);
    alice
        .sign_in(json!({"account": "acme", "username": "alice", "password": "pw"}))
        .await;
    let replay = "/streams/prod/rules?product=powertrack-replay";
    let (s, b) = alice
        .call(
            Method::POST,
            replay,
            Some(json!({"rules": [{"value": "cats", "tag": "c"}]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    // PowerTrack's messages for an invalid rule; nothing added.
    let (s, b) = alice
        .call(
            Method::POST,
            replay,
            Some(json!({"rules": [{"value": "(cats"}]})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    // The Replay stream's rules are its own, apart from the PowerTrack stream's.
    let (_, listed) = alice.call(Method::GET, replay, None).await;
    assert_eq!(rule_values(&listed), ["cats"]);
    let (_, live) = alice.call(Method::GET, "/streams/prod/rules", None).await;
    assert_eq!(rule_values(&live), Vec::<&str>::new());
    let (s, replay_api) = server
        .http
        .get(format!(
            "{}/rules/powertrack-replay/accounts/acme/publishers/twitter/prod.json",
            server.base
        ))
        .basic_auth("alice", Some("pw"))
        .send()
        .await
        .map(|r| (r.status(), r))
        .unwrap();
    assert_eq!(s, StatusCode::OK);
    let replay_api: Value = replay_api.json().await.unwrap();
    assert_eq!(replay_api["rules"][0]["value"], "cats", "{replay_api}");
    let id = listed["rules"][0]["id"].as_str().unwrap();
    let (s, _) = alice
        .call(
            Method::DELETE,
            &format!("/streams/prod/rules/{id}?product=powertrack-replay"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, listed) = alice.call(Method::GET, replay, None).await;
    assert_eq!(rule_values(&listed), Vec::<&str>::new());
    // A label without a Replay stream is a 404.
    let (s, b) = alice
        .call(
            Method::GET,
            "/streams/other/rules?product=powertrack-replay",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b}");
    server.stop().await;
}
