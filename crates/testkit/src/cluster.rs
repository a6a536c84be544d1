//! sluice nodes in cluster mode joined to a private `nats-server`, in this process, and the
//! helpers the cluster tests share.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sluice_cluster::{ClusterConfig, ClusterTasks, NatsCluster};
use sluice_server::auth::AdminToken;
use sluice_server::{AppState, Settings, StoreLocation};
use tokio::net::TcpListener;

use crate::http::{self, ADMIN};
use crate::nats::Nats;
use crate::server::Serving;
use crate::stream::StreamClient;

/// A sluice node in cluster mode, serving on loopback.
pub struct Node {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its state, for white-box checks.
    pub state: AppState,
    /// A client without gzip decoding or timeouts.
    pub http: reqwest::Client,
    /// Its connection to NATS.
    pub cluster: Arc<NatsCluster>,
    serving: Serving,
    tasks: ClusterTasks,
}

impl Node {
    /// A node of datacenter `dc` with an in-memory store, started and ready.
    pub async fn start(nats: &Nats, dc: &str) -> Node {
        Self::start_at(nats.url(), dc.to_owned(), None).await
    }

    /// Like [`Node::start`] with the store in `dir`.
    pub async fn start_in(nats: &Nats, dc: &str, dir: &Path) -> Node {
        Self::start_at(nats.url(), dc.to_owned(), Some(dir.to_owned())).await
    }

    async fn start_at(url: String, dc: String, dir: Option<PathBuf>) -> Node {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let base = format!("http://{addr}");
        let settings = Settings {
            datacenter: dc,
            public_url: base.clone(),
            heartbeat: Duration::from_millis(200),
            ..Settings::default()
        };
        let config = ClusterConfig {
            url,
            retention: settings.post_log_retention,
            max_bytes: settings.post_log_max_bytes,
        };
        let cluster = NatsCluster::connect(&config).await.unwrap();
        let location = match &dir {
            Some(dir) => StoreLocation::DataDir(dir),
            None => StoreLocation::Memory,
        };
        let state = AppState::open_with(
            location,
            settings,
            AdminToken::new(ADMIN),
            cluster.clustering(),
        )
        .unwrap();
        let tasks = cluster.start(&state);
        let serving = Serving::spawn(listener, &state);
        let node = Node {
            base,
            state,
            http: reqwest::Client::new(),
            cluster,
            serving,
            tasks,
        };
        node.wait_ready().await;
        node
    }

    /// Waits until `/healthz` answers 200.
    pub async fn wait_ready(&self) {
        eventually("the node is ready", || async {
            self.health().await.0 == StatusCode::OK
        })
        .await;
    }

    /// The node's `/metrics` (Prometheus text; the recorder is shared by every node of the
    /// test process).
    pub async fn metrics(&self) -> String {
        let response = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .unwrap();
        response.text().await.unwrap()
    }

    /// `/healthz`: status and body.
    pub async fn health(&self) -> (StatusCode, Value) {
        let response = self
            .http
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }

    /// Stops the node and waits for it, its cluster tasks included (so it has left the
    /// list of members when this returns).
    pub async fn stop(self) {
        self.serving.stop().await;
        assert!(
            self.tasks.finished(Duration::from_secs(10)).await,
            "the node's cluster tasks did not end within 10 s of its stop"
        );
    }

    /// An admin call; returns status and JSON body.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        http::admin(&self.http, &self.base, method, path, body).await
    }

    /// Account `acme`, user `alice`/`secret`, PowerTrack stream `prod`.
    pub async fn provision(&self) {
        http::provision(&self.http, &self.base, "powertrack").await;
    }

    /// Adds a PowerTrack rule to `prod`; returns its id.
    pub async fn add_rule(&self, value: &str, tag: &str) -> u64 {
        let response = self
            .http
            .post(format!("{}{RULES}", self.base))
            .basic_auth("alice", Some("secret"))
            .json(&json!({"rules": [{"value": value, "tag": tag}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let body: Value = response.json().await.unwrap();
        rule_id(&body["detail"][0]["rule"])
    }

    /// Adds PowerTrack rules with these values (untagged) to `prod` in one request;
    /// returns status and body.
    pub async fn add_rules(&self, values: &[String]) -> (StatusCode, Value) {
        let rules: Vec<Value> = values.iter().map(|v| json!({"value": v})).collect();
        self.rules_call("", json!({"rules": rules})).await
    }

    /// Deletes the PowerTrack rules of `prod` with these values in one request; returns
    /// status and body.
    pub async fn delete_rules(&self, values: &[String]) -> (StatusCode, Value) {
        let rules: Vec<Value> = values.iter().map(|v| json!({"value": v})).collect();
        self.rules_call("?_method=delete", json!({"rules": rules}))
            .await
    }

    async fn rules_call(&self, query: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(format!("{}{RULES}{query}", self.base))
            .basic_auth("alice", Some("secret"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Sets the rule cap of `prod`.
    pub async fn set_max_rules(&self, max_rules: u64) {
        let (s, body) = self
            .admin(
                reqwest::Method::PUT,
                "/admin/accounts/acme/streams/prod",
                json!({"product": "powertrack", "max_rules": max_rules}),
            )
            .await;
        assert!(s.is_success(), "{s} {body}");
    }

    /// The rule cap of `prod` as this node knows it (`None`: no such stream here yet).
    pub fn max_rules(&self) -> Option<u64> {
        let live = self.state.registry.all().pop()?;
        Some(live.limits().max_rules)
    }

    /// The values of `prod`'s rules as the rules API lists them, sorted.
    pub async fn rule_values(&self) -> Vec<String> {
        let mut values: Vec<String> = self
            .rules()
            .await
            .iter()
            .map(|r| r["value"].as_str().unwrap().to_owned())
            .collect();
        values.sort();
        values
    }

    /// The rules of `prod` as the rules API lists them.
    pub async fn rules(&self) -> Vec<Value> {
        let response = self
            .http
            .get(format!("{}{RULES}", self.base))
            .basic_auth("alice", Some("secret"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        body["rules"].as_array().cloned().unwrap_or_default()
    }

    /// Ingests NDJSON at this node.
    pub async fn ingest(&self, ndjson: &str) -> (StatusCode, Value) {
        let response = http::ingest(&self.http, &self.base, ndjson).await;
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Connects to the PowerTrack stream `prod` (with `query`, e.g. `?backfillMinutes=1`).
    pub async fn connect(&self, query: &str) -> StreamClient {
        let response = self
            .http
            .get(format!("{}{STREAM}{query}", self.base))
            .basic_auth("alice", Some("secret"))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        StreamClient::new(response)
    }
}

/// A node on a runtime of its own, so that it can be killed: shutting the runtime down
/// drops every task of the node at once (its HTTP connections, its NATS connection, its
/// consumers), as a crash of its process would, with no goodbye to anyone.
pub struct Killable {
    /// The node, for everything but stopping it cleanly.
    pub node: Node,
    runtime: tokio::runtime::Runtime,
}

impl Killable {
    /// A node of datacenter `dc` with its store in `dir`, started and ready.
    pub async fn start_in(nats: &Nats, dc: &str, dir: &Path) -> Killable {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let node = runtime
            .spawn(Node::start_at(
                nats.url(),
                dc.to_owned(),
                Some(dir.to_owned()),
            ))
            .await
            .unwrap();
        Killable { node, runtime }
    }

    /// Kills the node.
    pub fn kill(self) {
        self.runtime.shutdown_background();
        drop(self.node);
    }
}

/// `log.read(from, max)` off the async workers (the post log blocks).
pub async fn read_log(
    log: Arc<dyn sluice_postlog::PostLog>,
    from: u64,
    max: usize,
) -> Vec<sluice_postlog::LoggedPost> {
    tokio::task::spawn_blocking(move || log.read(from, max).unwrap())
        .await
        .unwrap()
}

/// The PowerTrack rules path of `acme`/`prod`.
pub const RULES: &str = "/rules/powertrack/accounts/acme/publishers/twitter/prod.json";
/// The PowerTrack stream path of `acme`/`prod`.
pub const STREAM: &str = "/stream/powertrack/accounts/acme/publishers/twitter/prod.json";

/// Polls `check` until it holds (10 s at most).
pub async fn eventually<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The id of a rule as the rules API shows it (a number, or a string of digits).
pub fn rule_id(rule: &Value) -> u64 {
    rule["id"]
        .as_u64()
        .or_else(|| rule["id"].as_str()?.parse().ok())
        .unwrap_or_else(|| panic!("no rule id in {rule}"))
}

/// The ids of `rules`, in order.
pub fn rule_ids(rules: &[Value]) -> Vec<u64> {
    rules.iter().map(rule_id).collect()
}
