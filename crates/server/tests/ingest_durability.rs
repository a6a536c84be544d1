//! What an ingest answer promises (docs/ingest.md): a post whose id was accepted within the
//! de-duplication window is accepted again but delivered and logged once, and a batch the
//! post log cannot store is a 503 that delivers nothing.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sluice_server::Settings;
use sluice_testkit::{ADMIN, TestServer, post};
use sluice_testkit::{StreamClient, id_of};

const POWERTRACK: &str = "/stream/powertrack/accounts/acme/publishers/twitter/prod.json";
const RULES: &str = "/rules/powertrack/accounts/acme/publishers/twitter/prod.json";

/// Short heartbeats: a heartbeat after the last post proves nothing more is queued.
fn quick() -> Settings {
    Settings {
        heartbeat: Duration::from_millis(300),
        ..Settings::default()
    }
}

/// Provisions `acme`/`prod` (PowerTrack) with the rule `dup` and connects to its stream.
async fn stream_with_rule(server: &TestServer) -> StreamClient {
    server.provision("powertrack").await;
    let response = server
        .http
        .post(format!("{}{RULES}", server.base))
        .basic_auth("alice", Some("secret"))
        .json(&json!({"rules": [{"value": "dup"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let response = server
        .http
        .get(format!("{}{POWERTRACK}", server.base))
        .basic_auth("alice", Some("secret"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    StreamClient::new(response)
}

fn logged_ids(server: &TestServer) -> Vec<u64> {
    server
        .state
        .post_log
        .read(0, usize::MAX)
        .unwrap()
        .iter()
        .map(|p| {
            serde_json::from_slice::<Value>(&p.bytes).unwrap()["id"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_id_is_accepted_but_delivered_and_logged_once() {
    let server = TestServer::start(quick()).await;
    let mut stream = stream_with_rule(&server).await;
    // Twice in one body.
    let body = [
        post(1, "dup one"),
        post(2, "dup two"),
        post(1, "dup one again"),
    ]
    .join("\n");
    let answer = server.ingest(&body).await;
    assert_eq!(answer, json!({"accepted": 3, "rejected": []}));
    // Again in a later body, beside a new post.
    let answer = server
        .ingest(&[post(2, "dup two"), post(3, "dup three")].join("\n"))
        .await;
    assert_eq!(answer, json!({"accepted": 2, "rejected": []}));

    let mut delivered = Vec::new();
    while delivered.len() < 3 {
        delivered.extend(stream.until_heartbeat().await.iter().map(id_of));
    }
    delivered.extend(stream.until_heartbeat().await.iter().map(id_of));
    assert_eq!(delivered, [1, 2, 3]);
    // The first post of an id is the one kept.
    assert_eq!(logged_ids(&server), [1, 2, 3]);
    let first = server.state.post_log.read(0, 1).unwrap();
    let first: Value = serde_json::from_slice(&first[0].bytes).unwrap();
    assert_eq!(first["text"], "dup one");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_the_post_log_cannot_write_is_a_503_and_is_not_delivered() {
    // The log's first segment file is /dev/full: every write fails with "no space left".
    let dir = tempfile::tempdir().unwrap();
    let log_dir = dir.path().join("postlog");
    std::fs::create_dir_all(&log_dir).unwrap();
    std::os::unix::fs::symlink("/dev/full", log_dir.join(format!("{:020}.log", 1))).unwrap();
    let server = TestServer::start_in(dir.path(), quick()).await;
    let mut stream = stream_with_rule(&server).await;

    let response = server
        .http
        .post(format!("{}/ingest", server.base))
        .bearer_auth(ADMIN)
        .body(post(1, "dup lost"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    let message = body["error"]["message"]
        .as_str()
        .expect("the admin error shape");
    assert!(message.contains("post log"), "{body}");
    assert!(body["error"]["sent"].is_string(), "{body}");
    // Nothing was delivered (the heartbeat comes after anything queued) or logged.
    assert!(stream.until_heartbeat().await.is_empty());
    assert!(logged_ids(&server).is_empty());
    server.stop().await;
}
