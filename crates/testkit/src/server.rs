//! Starting a real server on loopback for end-to-end tests (mini-redis style: bind
//! `127.0.0.1:0`, run `sluice_server::serve` in a task, talk HTTP to it).

use std::net::SocketAddr;
use std::path::Path;

use reqwest::StatusCode;
use serde_json::Value;
use sluice_server::auth::AdminToken;
use sluice_server::{AppState, Settings, StoreLocation};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::http::{self, ADMIN};
use crate::stream::StreamClient;

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
    serving: Serving,
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
        let serving = Serving::spawn(listener, &state);
        TestServer {
            addr,
            base,
            state,
            http: reqwest::Client::new(),
            serving,
        }
    }

    /// Stops the server and waits for it to finish.
    pub async fn stop(self) {
        self.serving.stop().await;
    }

    /// `PUT`/`POST`/… an admin call with the admin token; returns status and JSON body.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        http::admin(&self.http, &self.base, method, path, body).await
    }

    /// Issues a Powerstream token for `account` through the admin API; returns the token.
    pub async fn powerstream_token(&self, account: &str) -> String {
        let (status, token) = self
            .admin(
                reqwest::Method::POST,
                &format!("/admin/accounts/{account}/tokens"),
                serde_json::json!({}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{token}");
        token["token"].as_str().expect("a token").to_owned()
    }

    /// Creates the X API v2 app `name` of `account` through the admin API (asserting it
    /// was created); returns the admin API's description of it, with `app_id` and
    /// `bearer_token`.
    pub async fn new_app(&self, account: &str, name: &str) -> Value {
        let (status, app) = self
            .admin(
                reqwest::Method::POST,
                &format!("/admin/accounts/{account}/apps"),
                serde_json::json!({ "name": name }),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{app}");
        app
    }

    /// Creates account `acme`, user `alice`/`secret` and a stream of `product` labelled
    /// `prod`; returns the admin API's description of the stream.
    pub async fn provision(&self, product: &str) -> Value {
        http::provision(&self.http, &self.base, product).await
    }

    /// `GET path_and_query` as the provisioned user `alice`, accepting gzip: how a
    /// Gnip-style client asks for a stream (PowerTrack, volume streams, Replay).
    pub fn gnip_get(&self, path_and_query: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}{path_and_query}", self.base))
            .basic_auth("alice", Some("secret"))
            .header("accept-encoding", "gzip")
    }

    /// Connects to a Gnip-style stream as [`TestServer::gnip_get`] asks; the answer must
    /// be a 200.
    pub async fn gnip_connect(&self, path_and_query: &str) -> StreamClient {
        let response = self.gnip_get(path_and_query).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path_and_query}");
        StreamClient::new(response)
    }

    /// Posts NDJSON to the ingest API; returns the response body.
    pub async fn ingest(&self, ndjson: &str) -> Value {
        let response = http::ingest(&self.http, &self.base, ndjson).await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }
}

/// `sluice_server::serve` running in a task until stopped (or until this is dropped).
pub(crate) struct Serving {
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Serving {
    /// Serves `state` on `listener` in a new task.
    pub(crate) fn spawn(listener: TcpListener, state: &AppState) -> Serving {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(sluice_server::serve(listener, None, state.clone(), async {
            let _ = stopped.await;
        }));
        Serving { stop, task }
    }

    /// Stops serving and waits for the server to finish cleanly.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap();
    }
}
