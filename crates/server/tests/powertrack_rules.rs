//! The PowerTrack rules API over real HTTP (docs/compatibility.md §2 and "Decisions"): status codes, body
//! shapes byte for byte, duplicates, deletes, gets, validation, gzip, rate limits, rules in
//! effect at once, durability.

use std::io::Read as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{ACCEPT_ENCODING, CONTENT_ENCODING, HeaderMap};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_server::Settings;
use sluice_store::{Product, StreamRef};
use sluice_testkit::{TestServer, post};

const BASE: &str = "/rules/powertrack/accounts/acme/publishers/twitter/prod";
const INVALID_JSON: &str = r#"Invalid JSON. The body must be in the format {"rules":[{"value":"rule1", "tag":"tag1"}, {"value":"rule2"}]} or {"rule_ids": [rule_id1, rule_id2, rule_id3, rule_id4, rule_id5]}"#;

/// One answer: status, headers, the body decoded (gunzipped when gzip-encoded) as text and
/// as JSON.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
    json: Value,
}

impl Reply {
    /// The body with its `sent` stamp replaced by `SENT`, after checking the stamp is in
    /// the rules API format (`2016-06-01T15:52:37.341Z`).
    fn shape(&self) -> String {
        let sent = self.json["sent"].as_str().expect("body has a sent stamp");
        assert_rules_sent(sent);
        self.text.replace(sent, "SENT")
    }

    /// The error message of a Gnip error body.
    fn error(&self) -> &str {
        self.json["error"]["message"]
            .as_str()
            .unwrap_or_else(|| panic!("not an error body: {}", self.text))
    }

    fn rate(&self, name: &str) -> Option<u64> {
        self.headers
            .get(format!("x-rate-limit-{name}"))
            .map(|v| v.to_str().unwrap().parse().unwrap())
    }
}

fn assert_rules_sent(sent: &str) {
    let b = sent.as_bytes();
    assert!(
        sent.len() == 24 && b[10] == b'T' && b[19] == b'.' && sent.ends_with('Z'),
        "rules-format sent: {sent}"
    );
}

/// A request builder for the rules API.
struct Req<'a> {
    server: &'a TestServer,
    method: Method,
    path: String,
    body: Option<String>,
    user: (&'static str, &'static str),
    gzip: bool,
}

fn req(server: &TestServer, method: Method, path: impl Into<String>) -> Req<'_> {
    Req {
        server,
        method,
        path: path.into(),
        body: None,
        user: ("alice", "secret"),
        gzip: false,
    }
}

impl Req<'_> {
    fn body(mut self, body: impl Into<String>) -> Self {
        self.body = Some(body.into());
        self
    }

    fn user(mut self, user: &'static str, password: &'static str) -> Self {
        self.user = (user, password);
        self
    }

    fn gzip(mut self) -> Self {
        self.gzip = true;
        self
    }

    async fn send(self) -> Reply {
        let mut builder = self
            .server
            .http
            .request(self.method, format!("{}{}", self.server.base, self.path))
            .basic_auth(self.user.0, Some(self.user.1));
        if self.gzip {
            builder = builder.header(ACCEPT_ENCODING, "gzip, deflate");
        }
        if let Some(body) = self.body {
            builder = builder
                .header("content-type", "application/json")
                .body(body);
        }
        let response = builder.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let raw = response.bytes().await.unwrap();
        let gzipped = headers.get(CONTENT_ENCODING).is_some_and(|v| v == "gzip");
        assert_eq!(
            gzipped, self.gzip,
            "gzip-encoded exactly when accepted ({status})"
        );
        let text = if gzipped {
            let mut text = String::new();
            flate2::read::GzDecoder::new(&raw[..])
                .read_to_string(&mut text)
                .unwrap();
            text
        } else {
            String::from_utf8(raw.to_vec()).unwrap()
        };
        let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
        Reply {
            status,
            headers,
            text,
            json,
        }
    }
}

fn rules_json() -> String {
    format!("{BASE}.json")
}

async fn add(server: &TestServer, body: Value) -> Reply {
    req(server, Method::POST, rules_json())
        .body(body.to_string())
        .send()
        .await
}

async fn list(server: &TestServer) -> Reply {
    req(server, Method::GET, rules_json()).send().await
}

async fn provisioned() -> TestServer {
    let server = TestServer::start(Settings::default()).await;
    server.provision("powertrack").await;
    server
}

fn id_of(detail: &Value) -> u64 {
    let id = detail["rule"]["id"].as_u64().expect("numeric id");
    assert_eq!(
        detail["rule"]["id_str"],
        id.to_string(),
        "id_str is id as a string"
    );
    id
}

fn live_stream(server: &TestServer) -> std::sync::Arc<sluice_server::registry::LiveStream> {
    server
        .state
        .registry
        .get(&StreamRef {
            account: "acme".into(),
            product: Product::PowerTrack,
            label: "prod".into(),
        })
        .expect("the stream is live")
}

/// The ids of the stream's rules matching a post with `text`, as the pipeline would find
/// them.
fn matching(server: &TestServer, text: &str) -> Vec<u64> {
    let bytes = post(1, text);
    let view = sluice_model::parse_post(bytes.as_bytes()).unwrap();
    let mut out = Vec::new();
    live_stream(server).rules.match_post(&view, &mut out);
    out
}

#[tokio::test]
async fn add_list_get_and_delete_with_x_body_shapes() {
    let server = provisioned().await;

    let added = add(
        &server,
        json!({"rules": [{"value": "robot OR 🤖", "tag": "botrule123"}, {"value": "fish OR 🐟"}]}),
    )
    .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text);
    let robot = id_of(&added.json["detail"][0]);
    let fish = id_of(&added.json["detail"][1]);
    assert!(robot < fish, "ids increase in request order");
    assert_eq!(
        added.shape(),
        format!(
            r#"{{"summary":{{"created":2,"not_created":0}},"detail":[{{"rule":{{"value":"robot OR 🤖","tag":"botrule123","id":{robot},"id_str":"{robot}"}},"created":true}},{{"rule":{{"value":"fish OR 🐟","tag":null,"id":{fish},"id_str":"{fish}"}},"created":true}}],"sent":"SENT"}}"#
        )
    );
    assert_eq!(
        added.headers["content-type"],
        "application/json; charset=utf-8"
    );

    let robot_json =
        format!(r#"{{"value":"robot OR 🤖","tag":"botrule123","id":{robot},"id_str":"{robot}"}}"#);
    let fish_json = format!(r#"{{"value":"fish OR 🐟","tag":null,"id":{fish},"id_str":"{fish}"}}"#);
    let listed = list(&server).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(
        listed.shape(),
        format!(r#"{{"rules":[{robot_json},{fish_json}],"sent":"SENT"}}"#),
        "oldest first, four keys in X's order"
    );

    let one = req(&server, Method::GET, format!("{BASE}/rules/{fish}.json"))
        .send()
        .await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(
        one.shape(),
        format!(r#"{{"rules":[{fish_json}],"sent":"SENT"}}"#)
    );
    let unknown = req(&server, Method::GET, format!("{BASE}/rules/12345.json"))
        .send()
        .await;
    assert_eq!(unknown.status, StatusCode::OK, "unknown id: an empty list");
    assert_eq!(unknown.shape(), r#"{"rules":[],"sent":"SENT"}"#);
    let malformed = req(&server, Method::GET, format!("{BASE}/rules/abc.json"))
        .send()
        .await;
    assert_eq!(malformed.status, StatusCode::NOT_FOUND);

    let many = req(&server, Method::POST, format!("{BASE}.json?_method=get"))
        .body(format!(r#"{{"rule_ids":["{fish}",12345,{robot},{fish}]}}"#))
        .send()
        .await;
    assert_eq!(many.status, StatusCode::OK);
    assert_eq!(
        many.shape(),
        format!(r#"{{"rules":[{fish_json},{robot_json}],"sent":"SENT"}}"#),
        "in the order asked; unknown and repeated ids skipped"
    );

    // Delete by value, sending back whole rule objects plus entries that name nothing.
    let deleted = req(&server, Method::POST, format!("{BASE}.json?_method=delete"))
        .body(format!(
            r#"{{"rules":[{robot_json},{{"value":"Fish OR 🐟"}},{{"tag":"botrule123"}}]}}"#
        ))
        .send()
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.text);
    assert_eq!(
        deleted.shape(),
        r#"{"summary":{"deleted":1,"not_deleted":2},"detail":[{"rule":{"value":"Fish OR 🐟","tag":null},"deleted":false,"message":"Rule does not exist"},{"rule":{"value":null,"tag":"botrule123"},"deleted":false,"message":"Rule does not exist"}],"sent":"SENT"}"#,
        "value matching is exact and case-sensitive; a tag alone names no rule"
    );
    assert_eq!(
        list(&server).await.shape(),
        format!(r#"{{"rules":[{fish_json}],"sent":"SENT"}}"#)
    );

    // Delete by ids with HTTP DELETE, ids as strings and numbers.
    let deleted = req(&server, Method::DELETE, rules_json())
        .body(format!(r#"{{"rule_ids":["{fish}",{robot}]}}"#))
        .send()
        .await;
    assert_eq!(deleted.status, StatusCode::OK);
    assert_eq!(
        deleted.shape(),
        format!(
            r#"{{"summary":{{"deleted":1,"not_deleted":1}},"detail":[{{"rule":{{"value":null,"tag":null,"id":{robot},"id_str":"{robot}"}},"deleted":false,"message":"Rule does not exist"}}],"sent":"SENT"}}"#
        )
    );
    assert_eq!(list(&server).await.shape(), r#"{"rules":[],"sent":"SENT"}"#);

    // Nothing to delete is still a 200.
    let none = req(&server, Method::POST, format!("{BASE}.json?_method=delete"))
        .body(r#"{"rule_ids":[]}"#)
        .send()
        .await;
    assert_eq!(none.status, StatusCode::OK);
    assert_eq!(
        none.shape(),
        r#"{"summary":{"deleted":0,"not_deleted":0},"detail":[],"sent":"SENT"}"#
    );
    server.stop().await;
}

#[tokio::test]
async fn duplicates_name_the_existing_rule() {
    let server = provisioned().await;
    let first = add(
        &server,
        json!({"rules": [{"value": "#TwitterData", "tag": "tagtextA"}]}),
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let existing = id_of(&first.json["detail"][0]);

    let second = add(
        &server,
        json!({"rules": [
            {"value": "dog"},
            {"value": "#TwitterData", "tag": "tagtextB"},
            {"value": "dog", "tag": "again"}
        ]}),
    )
    .await;
    assert_eq!(
        second.status,
        StatusCode::CREATED,
        "duplicates alone do not make a 422"
    );
    let dog = id_of(&second.json["detail"][0]);
    assert_eq!(
        second.shape(),
        format!(
            r##"{{"summary":{{"created":1,"not_created":2}},"detail":[{{"rule":{{"value":"dog","tag":null,"id":{dog},"id_str":"{dog}"}},"created":true}},{{"rule":{{"value":"#TwitterData","tag":"tagtextB","id":{existing},"id_str":"{existing}"}},"created":false,"message":"A rule with this value already exists"}},{{"rule":{{"value":"dog","tag":"again","id":{dog},"id_str":"{dog}"}},"created":false,"message":"A rule with this value already exists"}}],"sent":"SENT"}}"##
        ),
        "a duplicate carries the existing rule's id and the submitted tag"
    );
    let listed = list(&server).await;
    let tags: Vec<&Value> = listed.json["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["tag"])
        .collect();
    assert_eq!(
        tags,
        [&json!("tagtextA"), &json!(null)],
        "tags are not changed in place"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_batch_with_an_invalid_rule_creates_nothing() {
    let server = provisioned().await;
    let refused = add(
        &server,
        json!({"rules": [
            {"value": "streaming gnip contains:$twtr"},
            {"value": "streaming gnip contains:\"$twtr\""}
        ]}),
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        refused.shape(),
        r#"{"summary":{"created":0,"not_created":2},"detail":[{"rule":{"value":"streaming gnip contains:$twtr","tag":null},"created":false,"message":"no viable alternative at input '$twtr' (at position 25)\n"},{"rule":{"value":"streaming gnip contains:\"$twtr\"","tag":null},"created":false}],"sent":"SENT"}"#,
        "X's 422 example"
    );

    let long_tag = "t".repeat(256);
    let long_value = "a".repeat(2049);
    let refused = add(
        &server,
        json!({"rules": [
            {"value": "cat", "tag": long_tag},
            {"value": long_value},
            {"value": "dog", "tag": "é".repeat(255)}
        ]}),
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let detail = refused.json["detail"].as_array().unwrap();
    assert_eq!(
        detail[0]["message"],
        "Tags cannot be longer than 255 characters\n"
    );
    assert_eq!(
        detail[1]["message"],
        "Rules cannot be longer than 2048 characters (at position 1)\n"
    );
    assert_eq!(
        detail[2].get("message"),
        None,
        "255 characters is within the limit"
    );
    assert!(
        detail
            .iter()
            .all(|d| d["created"] == false && d["rule"].get("id").is_none())
    );
    assert_eq!(list(&server).await.json["rules"], json!([]));

    let at_limits = add(
        &server,
        json!({"rules": [{"value": "a".repeat(2048), "tag": "é".repeat(255)}]}),
    )
    .await;
    assert_eq!(at_limits.status, StatusCode::CREATED, "{}", at_limits.text);
    server.stop().await;
}

/// Rule values with control characters: the JSON escapes a client would send, and the
/// message each gets, on add (422, nothing created) and on validation.
#[rustfmt::skip]
const CONTROL_CHARACTER_RULES: &[(&str, &str)] = &[
    (r#""cat\u0000""#, "Rules cannot contain control characters: found U+0000 (at position 4)\n"),
    (r#""cat \u001b[1m""#, "Rules cannot contain control characters: found U+001B (at position 5)\n"),
    (r#""\"a\u0007b\"""#, "Rules cannot contain control characters: found U+0007 (at position 3)\n"),
    (r#""dog\u007f""#, "Rules cannot contain control characters: found U+007F (at position 4)\n"),
    (r#""dog\u0085""#, "Rules cannot contain control characters: found U+0085 (at position 4)\n"),
];

#[tokio::test]
async fn rules_with_control_characters_are_refused_with_a_message() {
    let server = provisioned().await;
    for (value, message) in CONTROL_CHARACTER_RULES {
        let body = format!(r#"{{"rules":[{{"value":"ok"}},{{"value":{value}}}]}}"#);
        let refused = req(&server, Method::POST, rules_json())
            .body(body.clone())
            .send()
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{value}: {}",
            refused.text
        );
        assert_eq!(
            refused.json["summary"],
            json!({"created": 0, "not_created": 2}),
            "{value}"
        );
        let detail = &refused.json["detail"][1];
        assert_eq!(detail["message"], *message, "{value}");
        assert_eq!(detail["created"], false);
        assert_eq!(refused.json["detail"][0].get("message"), None, "{value}");

        let validation = req(&server, Method::POST, format!("{BASE}/validation.json"))
            .body(body)
            .send()
            .await;
        assert_eq!(validation.status, StatusCode::OK, "{value}");
        assert_eq!(
            validation.json["summary"],
            json!({"valid": 1, "not_valid": 1}),
            "{value}"
        );
        assert_eq!(validation.json["detail"][1]["message"], *message, "{value}");
    }
    assert_eq!(list(&server).await.json["rules"], json!([]));
    server.stop().await;
}

#[tokio::test]
async fn the_rule_cap_refuses_the_whole_add() {
    let server = provisioned().await;
    let (s, _) = server
        .admin(
            Method::PUT,
            "/admin/accounts/acme/streams/prod",
            json!({"product": "powertrack", "max_rules": 2}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        add(&server, json!({"rules": [{"value": "a"}, {"value": "b"}]}))
            .await
            .status,
        StatusCode::CREATED
    );

    let refused = add(
        &server,
        json!({"rules": [{"value": "c"}, {"value": "a", "tag": "t"}]}),
    )
    .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    let limit = "Request exceeds account's Rule Limit. Delete rules or contact your account manager to proceed.";
    assert_eq!(
        refused.shape(),
        format!(
            r#"{{"summary":{{"created":0,"not_created":2}},"detail":[{{"rule":{{"value":"c","tag":null}},"created":false,"message":"{limit}"}},{{"rule":{{"value":"a","tag":"t"}},"created":false,"message":"{limit}"}}],"sent":"SENT"}}"#
        )
    );
    assert_eq!(
        list(&server).await.json["rules"].as_array().unwrap().len(),
        2
    );

    // Duplicates add nothing, so they fit.
    let dup = add(&server, json!({"rules": [{"value": "b"}]})).await;
    assert_eq!(dup.status, StatusCode::CREATED);
    assert_eq!(dup.json["summary"], json!({"created": 0, "not_created": 1}));
    server.stop().await;
}

#[tokio::test]
async fn malformed_bodies_get_x_invalid_json_400() {
    let server = provisioned().await;
    let cases: [(&str, &str); 10] = [
        ("", "not json"),
        ("", "{}"),
        ("", r#"{"rules":[]}"#),
        ("", r#"{"rules":[{"tag":"t"}]}"#),
        ("", r#"{"rule_ids":[1]}"#),
        ("?_method=delete", r#"{"rules":[{"value":1}]}"#),
        ("?_method=delete", r#"{"rule_ids":["abc"]}"#),
        ("?_method=delete", r#"{"rules":[],"rule_ids":[]}"#),
        ("?_method=get", r#"{"rules":[{"value":"a"}]}"#),
        ("?_method=get", r#"{"rule_ids":[-1]}"#),
    ];
    for (query, body) in cases {
        let reply = req(&server, Method::POST, format!("{BASE}.json{query}"))
            .body(body)
            .send()
            .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query} {body}");
        assert_eq!(reply.error(), INVALID_JSON, "{query} {body}");
        let sent = reply.json["error"]["sent"].as_str().unwrap();
        assert!(
            sent.ends_with("+00:00") && sent.len() == 25,
            "X's example stamp: {sent}"
        );
    }
    let validation = req(&server, Method::POST, format!("{BASE}/validation.json"))
        .body(r#"{"rules":{}}"#)
        .send()
        .await;
    assert_eq!(
        (validation.status, validation.error()),
        (StatusCode::BAD_REQUEST, INVALID_JSON)
    );
    let bogus = req(&server, Method::POST, format!("{BASE}.json?_method=put"))
        .body(r#"{"rules":[{"value":"a"}]}"#)
        .send()
        .await;
    assert_eq!(bogus.status, StatusCode::BAD_REQUEST);
    assert_eq!(list(&server).await.json["rules"], json!([]));
    server.stop().await;
}

#[tokio::test]
async fn auth_and_unknown_streams() {
    let server = provisioned().await;
    server
        .admin(Method::PUT, "/admin/accounts/other", json!({}))
        .await;
    server
        .admin(
            Method::PUT,
            "/admin/accounts/other/users/bob",
            json!({"password": "secret"}),
        )
        .await;
    server
        .admin(
            Method::PUT,
            "/admin/accounts/acme/streams/deca",
            json!({"product": "decahose"}),
        )
        .await;

    let wrong_password = req(&server, Method::GET, rules_json())
        .user("alice", "nope")
        .send()
        .await;
    assert_eq!(wrong_password.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        wrong_password.error(),
        "Unauthorized: HTTP authentication failed due to invalid credentials."
    );
    let other_account = req(&server, Method::GET, rules_json())
        .user("bob", "secret")
        .send()
        .await;
    assert_eq!(
        other_account.status,
        StatusCode::UNAUTHORIZED,
        "bob belongs to another account"
    );
    let anonymous = server
        .http
        .get(format!("{}{}", server.base, rules_json()))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let no_add = req(&server, Method::POST, rules_json())
        .user("bob", "secret")
        .body(r#"{"rules":[{"value":"a"}]}"#)
        .send()
        .await;
    assert_eq!(no_add.status, StatusCode::UNAUTHORIZED);

    for path in [
        "/rules/powertrack/accounts/acme/publishers/twitter/nope.json",
        "/rules/powertrack/accounts/acme/publishers/twitter/deca.json",
        "/rules/powertrack/accounts/acme/publishers/twitter/prod",
        "/rules/powertrack/accounts/acme/publishers/twitter/nope/validation.json",
        "/rules/powertrack/accounts/acme/publishers/twitter/nope/rules/1.json",
    ] {
        let reply = if path.ends_with("validation.json") {
            req(&server, Method::POST, path)
                .body(r#"{"rules":[{"value":"a"}]}"#)
                .send()
                .await
        } else {
            req(&server, Method::GET, path).send().await
        };
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert!(!reply.error().is_empty());
    }
    assert_eq!(list(&server).await.status, StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn bodies_over_5_mb_get_413() {
    let server = provisioned().await;
    assert_eq!(server.state.settings.rules_body_limit, 5_000_000);
    // A valid add body of exactly 5,000,001 bytes.
    let prefix = r#"{"rules":[{"value":"a","tag":""#;
    let suffix = r#""}]}"#;
    let padding = "x".repeat(5_000_001 - prefix.len() - suffix.len());
    let body = format!("{prefix}{padding}{suffix}");
    assert_eq!(body.len(), 5_000_001);
    let reply = req(&server, Method::POST, rules_json())
        .body(body)
        .gzip()
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(reply.error().contains("5000000 bytes"), "{}", reply.text);
    assert_eq!(list(&server).await.json["rules"], json!([]));
    server.stop().await;
}

#[tokio::test]
async fn sixty_requests_per_minute_per_stream() {
    // Stay inside one fixed window: the 61 requests below take well under 5 s.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if now % 60 > 54 {
        tokio::time::sleep(Duration::from_secs(60 - now % 60)).await;
    }
    let server = provisioned().await;
    let first = list(&server).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(
        (first.rate("limit"), first.rate("remaining")),
        (Some(60), Some(59))
    );
    let reset = first.rate("reset").unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        reset > now && reset <= now + 60,
        "reset {reset} is in this minute"
    );

    // Every call counts, whatever its method or outcome.
    for i in 2..=60u64 {
        let reply = match i % 3 {
            0 => add(&server, json!({"rules": [{"value": format!("w{i}")}]})).await,
            1 => {
                req(&server, Method::POST, format!("{BASE}/validation.json"))
                    .body("nope")
                    .send()
                    .await
            }
            _ => list(&server).await,
        };
        assert!(reply.status != StatusCode::TOO_MANY_REQUESTS, "request {i}");
        assert_eq!(reply.rate("remaining"), Some(60 - i), "request {i}");
    }
    let refused = list(&server).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        (
            refused.rate("limit"),
            refused.rate("remaining"),
            refused.rate("reset")
        ),
        (Some(60), Some(0), Some(reset))
    );
    assert!(!refused.error().is_empty());
    let refused_gzip = req(&server, Method::POST, rules_json())
        .body(r#"{"rules":[{"value":"late"}]}"#)
        .gzip()
        .send()
        .await;
    assert_eq!(refused_gzip.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused_gzip.rate("remaining"), Some(0));
    assert!(
        !server
            .state
            .store
            .rules(live_stream(&server).id)
            .unwrap()
            .iter()
            .any(|r| r.value == "late")
    );
    server.stop().await;
}

#[tokio::test]
async fn responses_are_gzip_encoded_when_accepted() {
    let server = provisioned().await;
    let added = req(&server, Method::POST, rules_json())
        .body(r#"{"rules":[{"value":"cat"}]}"#)
        .gzip()
        .send()
        .await;
    assert_eq!(added.status, StatusCode::CREATED);
    let id = id_of(&added.json["detail"][0]);
    for (method, path, body, status) in [
        (Method::GET, rules_json(), None, StatusCode::OK),
        (
            Method::GET,
            format!("{BASE}/rules/{id}.json"),
            None,
            StatusCode::OK,
        ),
        (
            Method::POST,
            format!("{BASE}.json?_method=get"),
            Some(format!(r#"{{"rule_ids":[{id}]}}"#)),
            StatusCode::OK,
        ),
        (
            Method::POST,
            format!("{BASE}/validation.json"),
            Some(r#"{"rules":[{"value":"a OR"}]}"#.into()),
            StatusCode::OK,
        ),
        (
            Method::POST,
            rules_json(),
            Some(r#"{"rules":[{"value":"a OR"}]}"#.into()),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            Method::POST,
            rules_json(),
            Some("{".into()),
            StatusCode::BAD_REQUEST,
        ),
        (
            Method::GET,
            "/rules/powertrack/accounts/acme/publishers/twitter/x.json".into(),
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            Method::POST,
            format!("{BASE}.json?_method=delete"),
            Some(r#"{"rules":[{"value":"cat"}]}"#.into()),
            StatusCode::OK,
        ),
    ] {
        let mut r = req(&server, method, path.clone()).gzip();
        if let Some(body) = body {
            r = r.body(body);
        }
        let reply = r.send().await;
        assert_eq!(reply.status, status, "{path}: {}", reply.text);
    }
    let unauthorized = req(&server, Method::GET, rules_json())
        .user("alice", "x")
        .gzip()
        .send()
        .await;
    assert_eq!(unauthorized.status, StatusCode::UNAUTHORIZED);
    server.stop().await;
}

#[tokio::test]
async fn validation_gives_x_messages_and_does_not_touch_the_stream() {
    let server = provisioned().await;
    let body = json!({"rules": [
        {"value": "from:jack"},
        {"value": "Pizza OR 🍕 OR \"🍕\" sample:100"},
        {"value": "from:contains:heart"},
        {"value": "fish AND bird"},
        {"value": "(((\"#quotedhashtag\""},
        {"value": "bounding_box:[-71.199636,42.230046,-70.979909,42.398619]"}
    ]});
    let reply = req(&server, Method::POST, format!("{BASE}/validation.json"))
        .body(body.to_string())
        .send()
        .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(
        reply.shape(),
        r##"{"summary":{"valid":1,"not_valid":5},"detail":[{"rule":{"value":"from:jack","tag":null},"valid":true},{"rule":{"value":"Pizza OR 🍕 OR \"🍕\" sample:100","tag":null},"valid":false,"message":"The sample operator cannot be used with an OR. To use the sample operator with an OR in the rule, the ORed clauses must be grouped together with parenthesis.  For example, to get 10% of activites that have term1 or term2, the rule should be (excluding the single quotes) '(term1 OR term2) sample:10' (at position 21)\n"},{"rule":{"value":"from:contains:heart","tag":null},"valid":false,"message":"Cannot parse rule at ':' (position 14)\n"},{"rule":{"value":"fish AND bird","tag":null},"valid":false,"message":"Ambiguous use of and as a keyword. Use a space to logically join two clauses, or \"and\" to find occurrences of and in text (at position 6)\n"},{"rule":{"value":"(((\"#quotedhashtag\"","tag":null},"valid":false,"message":"mismatched input 'EOF' expecting ')' (at position 20)\n\n"},{"rule":{"value":"bounding_box:[-71.199636,42.230046,-70.979909,42.398619]","tag":null},"valid":false,"message":"Cannot parse rule at '71.199636,42.230046,-70.979909,42.398619' (position 16)\n"}],"sent":"SENT"}"##,
        "X's §2.6 example"
    );
    let gnip4j = req(&server, Method::POST, format!("{BASE}/validation.json"))
        .body(r#"{"rules":[{"value":"aaaaa OR"}]}"#)
        .send()
        .await;
    assert_eq!(
        gnip4j.shape(),
        r#"{"summary":{"valid":0,"not_valid":1},"detail":[{"rule":{"value":"aaaaa OR","tag":null},"valid":false,"message":"Cannot parse rule at '<EOF>' (position 9)\n"}],"sent":"SENT"}"#
    );
    let tagged = req(&server, Method::POST, format!("{BASE}/validation.json"))
        .body(json!({"rules": [{"value": "cat", "tag": "t".repeat(256)}, {"value": "dog", "tag": "d"}]}).to_string())
        .send()
        .await;
    assert_eq!(tagged.json["summary"], json!({"valid": 1, "not_valid": 1}));
    assert_eq!(
        tagged.json["detail"][0]["message"],
        "Tags cannot be longer than 255 characters\n"
    );
    assert_eq!(
        tagged.json["detail"][1]["rule"],
        json!({"value": "dog", "tag": "d"})
    );

    assert_eq!(
        list(&server).await.json["rules"],
        json!([]),
        "validation creates nothing"
    );
    assert!(live_stream(&server).rules.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn a_rule_is_in_effect_when_its_201_arrives_and_gone_when_deleted() {
    let server = provisioned().await;
    assert!(matching(&server, "a cat sat").is_empty());
    let added = add(&server, json!({"rules": [{"value": "cat", "tag": "pets"}]})).await;
    assert_eq!(added.status, StatusCode::CREATED);
    let id = id_of(&added.json["detail"][0]);
    assert_eq!(matching(&server, "a cat sat"), [id]);
    live_stream(&server).rules.with_tags(&[id], |tags| {
        assert_eq!(tags.collect::<Vec<_>>(), [(id, Some("pets"))]);
    });

    let deleted = req(&server, Method::POST, format!("{BASE}.json?_method=delete"))
        .body(r#"{"rules":[{"value":"cat"}]}"#)
        .send()
        .await;
    assert_eq!(deleted.json["summary"]["deleted"], 1);
    assert!(matching(&server, "a cat sat").is_empty());
    server.stop().await;
}

#[tokio::test]
async fn the_first_post_after_the_201_reaches_the_stream() {
    let server = provisioned().await;
    let mut stream = server
        .http
        .get(format!(
            "{}/stream/powertrack/accounts/acme/publishers/twitter/prod.json",
            server.base
        ))
        .basic_auth("alice", Some("secret"))
        .header(ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);

    let added = add(&server, json!({"rules": [{"value": "cat", "tag": "pets"}]})).await;
    assert_eq!(added.status, StatusCode::CREATED);
    let id = id_of(&added.json["detail"][0]);
    server
        .ingest(&post(1_050_118_621_198_921_728, "a cat sat"))
        .await;

    let mut decoder = flate2::write::GzDecoder::new(Vec::new());
    let line = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let chunk = stream.chunk().await.unwrap().expect("stream stays open");
            std::io::Write::write_all(&mut decoder, &chunk).unwrap();
            std::io::Write::flush(&mut decoder).unwrap();
            let text = String::from_utf8_lossy(decoder.get_ref()).into_owned();
            if let Some(line) = text
                .split("\r\n")
                .find(|l| l.contains("1050118621198921728"))
            {
                return line.to_owned();
            }
        }
    })
    .await
    .expect("the post arrives");
    let delivered: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        delivered["matching_rules"],
        json!([{"tag": "pets", "id": id, "id_str": id.to_string()}])
    );
    drop(stream);
    server.stop().await;
}

#[tokio::test]
async fn concurrent_adds_on_one_stream_both_succeed() {
    let server = provisioned().await;
    let (a, b) = tokio::join!(
        add(
            &server,
            json!({"rules": [{"value": "a"}, {"value": "shared"}]})
        ),
        add(
            &server,
            json!({"rules": [{"value": "b"}, {"value": "shared"}]})
        ),
    );
    assert_eq!(
        (a.status, b.status),
        (StatusCode::CREATED, StatusCode::CREATED)
    );
    let created = a.json["summary"]["created"].as_u64().unwrap()
        + b.json["summary"]["created"].as_u64().unwrap();
    assert_eq!(
        created, 3,
        "the second add waited and saw the first's 'shared'"
    );
    assert_eq!(
        list(&server).await.json["rules"].as_array().unwrap().len(),
        3
    );
    assert_eq!(live_stream(&server).rules.len(), 3);
    server.stop().await;
}

#[tokio::test]
async fn acknowledged_rules_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path(), Settings::default()).await;
    server.provision("powertrack").await;
    let added = add(
        &server,
        json!({"rules": [{"value": "cat", "tag": "pets"}, {"value": "dog"}]}),
    )
    .await;
    assert_eq!(added.status, StatusCode::CREATED);
    let before = list(&server).await.shape();
    server.stop().await;

    let server = TestServer::start_in(dir.path(), Settings::default()).await;
    let after = list(&server).await;
    assert_eq!(after.status, StatusCode::OK);
    assert_eq!(
        after.shape(),
        before,
        "same rules, ids and tags, oldest first"
    );
    let cat = id_of(&added.json["detail"][0]);
    assert_eq!(
        matching(&server, "my cat"),
        [cat],
        "reloaded rules are matched"
    );
    let more = add(&server, json!({"rules": [{"value": "eel"}]})).await;
    assert!(
        id_of(&more.json["detail"][0]) > cat,
        "ids keep increasing across restarts"
    );
    server.stop().await;
}
