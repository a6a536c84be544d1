//! Removals in cluster mode against a real `nats-server`: an account deleted, a token
//! revoked or an app deleted on one node is gone on every node (open streams there
//! closed) and on a node started later, and nothing of it comes back when the name is
//! used again.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_testkit::{Nats, Node, StreamClient, error_message, eventually, post};

/// The last message of a stream the server ends, within 10 s.
async fn closing_message(stream: &mut StreamClient) -> Value {
    let rest = tokio::time::timeout(Duration::from_secs(10), stream.rest())
        .await
        .expect("the stream ends");
    rest.last().cloned().expect("a closing message")
}

async fn status(node: &Node, method: Method, path: &str, bearer: &str) -> StatusCode {
    node.http
        .request(method, format!("{}{path}", node.base))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap()
        .status()
}

async fn powerstream(node: &Node, token: &str) -> StreamClient {
    let response = node
        .http
        .get(format!("{}/2/powerstream", node.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    StreamClient::new(response)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_account_deleted_on_one_node_is_gone_everywhere_and_its_streams_closed() {
    let nats = Nats::start();
    let a = Node::start(&nats, "east").await;
    let b = Node::start(&nats, "west").await;
    a.provision().await;
    a.add_rule("hello", "h").await;
    a.admin(Method::PUT, "/admin/accounts/other", json!({}))
        .await;
    let (_, token) = a
        .admin(Method::POST, "/admin/accounts/acme/tokens", json!({}))
        .await;
    let token = token["token"].as_str().unwrap().to_owned();
    eventually("the account reaches b", || async {
        b.rules().await.len() == 1
            && status(&b, Method::GET, "/2/powerstream/rules", &token).await == StatusCode::OK
    })
    .await;
    let mut stream = b.connect("").await;
    stream.until_heartbeat().await;
    a.ingest(&post(1, "hello")).await;
    assert_eq!(stream.next_message().await["id"], 1);

    let (s, body) = a
        .admin(Method::DELETE, "/admin/accounts/acme", Value::Null)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{body}");
    let closed = closing_message(&mut stream).await;
    assert!(
        error_message(&closed).contains("operational reasons"),
        "{closed}"
    );
    eventually("b refuses the token", || async {
        status(&b, Method::GET, "/2/powerstream/rules", &token).await == StatusCode::UNAUTHORIZED
    })
    .await;
    let (s, _) = b
        .admin(Method::GET, "/admin/accounts/acme", Value::Null)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A node started later replays the bucket: the account's keys are gone with it, so
    // the name used again starts empty there too.
    a.admin(Method::PUT, "/admin/accounts/acme", json!({}))
        .await;
    let late = Node::start(&nats, "east").await;
    let (s, account) = late
        .admin(Method::GET, "/admin/accounts/acme", Value::Null)
        .await;
    assert_eq!(s, StatusCode::OK, "{account}");
    assert_eq!(account["users"], json!([]));
    assert_eq!(account["tokens"], json!([]));
    let (_, streams) = late
        .admin(Method::GET, "/admin/accounts/acme/streams", Value::Null)
        .await;
    assert_eq!(streams, json!({"streams": []}));
    let (_, list) = late
        .admin(Method::GET, "/admin/accounts", Value::Null)
        .await;
    let names: Vec<&str> = list["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["account"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["acme", "other"]);
    a.stop().await;
    b.stop().await;
    late.stop().await;
}

/// The v2 streams of `acme` on `node` (the streams of its apps).
async fn v2_streams(node: &Node) -> Vec<Value> {
    let (_, streams) = node
        .admin(Method::GET, "/admin/accounts/acme/streams", Value::Null)
        .await;
    streams["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["product"].as_str().unwrap().starts_with("v2-"))
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_token_revoked_or_an_app_deleted_on_one_node_is_refused_everywhere() {
    let nats = Nats::start();
    let a = Node::start(&nats, "east").await;
    let b = Node::start(&nats, "west").await;
    a.admin(Method::PUT, "/admin/accounts/acme", json!({}))
        .await;
    let (_, token) = a
        .admin(Method::POST, "/admin/accounts/acme/tokens", json!({}))
        .await;
    let token = token["token"].as_str().unwrap().to_owned();
    let (_, labelled) = a
        .admin(
            Method::POST,
            "/admin/accounts/acme/tokens",
            json!({"label": "kept"}),
        )
        .await;
    assert!(labelled["token"].is_string(), "{labelled}");
    let (_, app) = a
        .admin(
            Method::POST,
            "/admin/accounts/acme/apps",
            json!({"name": "research"}),
        )
        .await;
    let app_id = app["app_id"].as_str().unwrap().to_owned();
    let app_token = app["bearer_token"].as_str().unwrap().to_owned();
    let v2_rules = "/2/tweets/search/stream/rules";
    eventually("the token and the app reach b", || async {
        status(&b, Method::GET, "/2/powerstream/rules", &token).await == StatusCode::OK
            && status(&b, Method::GET, v2_rules, &app_token).await == StatusCode::OK
    })
    .await;
    // The app's filtered stream is made on b, with a rule.
    let added = b
        .http
        .post(format!("{}{v2_rules}", b.base))
        .bearer_auth(&app_token)
        .json(&json!({"add": [{"value": "hello"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::OK);
    assert_eq!(v2_streams(&b).await.len(), 1);
    let mut stream = powerstream(&b, &token).await;
    stream.until_heartbeat().await;

    let prefix = &token[.."sl_ps_".len() + 8];
    let (s, body) = a
        .admin(
            Method::DELETE,
            &format!("/admin/accounts/acme/tokens/{prefix}"),
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{body}");
    let closed = closing_message(&mut stream).await;
    assert_eq!(
        closed["errors"][0]["disconnect_type"], "ForceDisconnect",
        "{closed}"
    );
    assert_eq!(
        status(&b, Method::GET, "/2/powerstream/rules", &token).await,
        StatusCode::UNAUTHORIZED
    );

    let (s, body) = a
        .admin(
            Method::DELETE,
            &format!("/admin/accounts/acme/apps/{app_id}"),
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{body}");
    eventually("b refuses the app", || async {
        status(&b, Method::GET, v2_rules, &app_token).await == StatusCode::UNAUTHORIZED
    })
    .await;
    eventually("b has deleted the app's stream", || async {
        v2_streams(&b).await.is_empty()
    })
    .await;

    let late = Node::start(&nats, "east").await;
    assert_eq!(
        status(&late, Method::GET, "/2/powerstream/rules", &token).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status(&late, Method::GET, v2_rules, &app_token).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        v2_streams(&late).await,
        Vec::<Value>::new(),
        "the app's stream keys are gone"
    );
    let (_, tokens) = late
        .admin(Method::GET, "/admin/accounts/acme/tokens", Value::Null)
        .await;
    let tokens = tokens["tokens"].as_array().unwrap();
    assert_eq!(
        tokens.len(),
        1,
        "only the revoked token is gone: {tokens:?}"
    );
    assert_eq!(tokens[0]["label"], "kept", "labels replicate");
    a.stop().await;
    b.stop().await;
    late.stop().await;
}
