//! The HTTP calls tests make to a server or a cluster node, written once for both: admin
//! calls with the admin token, provisioning, ingest, and the post tests ingest.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The admin token of test servers and cluster nodes.
pub const ADMIN: &str = "test-admin-token";

/// A minimal native post with `id` and `text`.
pub fn post(id: u64, text: &str) -> String {
    json!({
        "created_at": "Wed Oct 10 20:19:24 +0000 2018",
        "id": id,
        "id_str": id.to_string(),
        "text": text,
        "user": {"id": 12, "id_str": "12", "screen_name": "jack"},
        "entities": {"hashtags": [], "urls": [], "user_mentions": [], "symbols": []},
        "lang": "en"
    })
    .to_string()
}

/// `method path` at `base` with the admin token and `body`; returns status and JSON body
/// (`null` for an empty body; any other body must be JSON).
pub(crate) async fn admin(
    http: &reqwest::Client,
    base: &str,
    method: Method,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    let response = http
        .request(method, format!("{base}{path}"))
        .bearer_auth(ADMIN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.bytes().await.unwrap();
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{e}: {bytes:?}"))
    };
    (status, value)
}

/// Creates account `acme`, user `alice`/`secret` and a stream of `product` labelled `prod`
/// at `base`, each call succeeding; returns the admin API's description of the stream.
pub(crate) async fn provision(http: &reqwest::Client, base: &str, product: &str) -> Value {
    let (status, body) = admin(http, base, Method::PUT, "/admin/accounts/acme", json!({})).await;
    assert!(status.is_success(), "{status} {body}");
    let (status, body) = admin(
        http,
        base,
        Method::PUT,
        "/admin/accounts/acme/users/alice",
        json!({"password": "secret"}),
    )
    .await;
    assert!(status.is_success(), "{status} {body}");
    let (status, stream) = admin(
        http,
        base,
        Method::PUT,
        "/admin/accounts/acme/streams/prod",
        json!({"product": product}),
    )
    .await;
    assert!(status.is_success(), "{status} {stream}");
    stream
}

/// Posts NDJSON to the ingest API at `base` with the admin token.
pub(crate) async fn ingest(http: &reqwest::Client, base: &str, ndjson: &str) -> reqwest::Response {
    http.post(format!("{base}/ingest"))
        .bearer_auth(ADMIN)
        .body(ndjson.to_owned())
        .send()
        .await
        .unwrap()
}
