//! v2 apps in cluster mode against a real `nats-server`: an app created on one node
//! authenticates on every node, and on a node started later.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_testkit::{Nats, Node, eventually};

async fn token(node: &Node, key: &str, secret: &str) -> (StatusCode, Value) {
    let response = node
        .http
        .post(format!("{}/oauth2/token", node.base))
        .basic_auth(key, Some(secret))
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_app_created_on_one_node_gets_its_token_on_every_node() {
    let nats = Nats::start();
    let a = Node::start(&nats, "east").await;
    let b = Node::start(&nats, "west").await;
    let (s, _) = a
        .admin(Method::PUT, "/admin/accounts/acme", json!({}))
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, app) = a
        .admin(
            Method::POST,
            "/admin/accounts/acme/apps",
            json!({"name": "research"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{app}");
    let key = app["consumer_key"].as_str().unwrap();
    let secret = app["consumer_secret"].as_str().unwrap();
    let want = json!({"token_type": "bearer", "access_token": app["bearer_token"]});

    eventually("the app reaches b", || async {
        token(&b, key, secret).await == (StatusCode::OK, want.clone())
    })
    .await;
    // Node::start returns once the node has loaded the shared state.
    let late = Node::start(&nats, "east").await;
    assert_eq!(token(&late, key, secret).await, (StatusCode::OK, want));
    let (s, list) = late
        .admin(Method::GET, "/admin/accounts/acme/apps", Value::Null)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["apps"][0]["app_id"], app["app_id"]);
    a.stop().await;
    b.stop().await;
    late.stop().await;
}
