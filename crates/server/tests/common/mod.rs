//! Starting a real server on loopback for end-to-end tests (mini-redis style: bind
//! `127.0.0.1:0`, run `sluice_server::serve` in a task, talk HTTP to it).
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sluice_server::auth::AdminToken;
use sluice_server::{AppState, Settings, StoreLocation};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The admin token of test servers.
pub const ADMIN: &str = "test-admin-token";

/// A server running in this process.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its state, for white-box checks.
    pub state: AppState,
    /// A client without gzip decoding or timeouts.
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    /// A server with an in-memory store.
    pub async fn start(settings: Settings) -> TestServer {
        Self::start_at(StoreLocation::Memory, settings).await
    }

    /// A server whose store lives in `dir`.
    pub async fn start_in(dir: &Path, settings: Settings) -> TestServer {
        Self::start_at(StoreLocation::DataDir(dir), settings).await
    }

    async fn start_at(location: StoreLocation<'_>, mut settings: Settings) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        settings.public_url = base.clone();
        let state = AppState::open(location, settings, AdminToken::new(ADMIN)).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(sluice_server::serve(listener, None, state.clone(), async {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            base,
            state,
            http: reqwest::Client::new(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    /// `PUT`/`POST`/… an admin call with the admin token; returns status and JSON body.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let response = self
            .http
            .request(method, format!("{}{path}", self.base))
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

    /// Creates account `acme`, user `alice`/`secret` and a stream of `product` labelled
    /// `prod`; returns the admin API's description of the stream.
    pub async fn provision(&self, product: &str) -> Value {
        use reqwest::Method;
        self.admin(Method::PUT, "/admin/accounts/acme", json!({}))
            .await;
        self.admin(
            Method::PUT,
            "/admin/accounts/acme/users/alice",
            json!({"password": "secret"}),
        )
        .await;
        let (status, stream) = self
            .admin(
                Method::PUT,
                "/admin/accounts/acme/streams/prod",
                json!({"product": product}),
            )
            .await;
        assert!(status.is_success(), "{status} {stream}");
        stream
    }

    /// Posts NDJSON to the ingest API; returns the response body.
    pub async fn ingest(&self, ndjson: &str) -> Value {
        let response = self
            .http
            .post(format!("{}/ingest", self.base))
            .bearer_auth(ADMIN)
            .body(ndjson.to_owned())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }
}

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
