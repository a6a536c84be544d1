//! A private `nats-server` per test and sluice nodes joined to it, in this process.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};
use sluice_cluster::{ClusterConfig, NatsCluster};
use sluice_server::auth::AdminToken;
use sluice_server::{AppState, Settings, StoreLocation};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The admin token of test nodes.
pub const ADMIN: &str = "cluster-admin-token";

/// A `nats-server -js` of our own: free port, fresh storage directory, killed on drop.
pub struct Nats {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Nats {
    /// Starts one. A missing `nats-server` fails the test (it never passes having run
    /// nothing): `.ci/run` installs it, and so must a developer (`apt-get install
    /// nats-server`).
    pub fn start() -> Nats {
        let installed = Command::new("nats-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        assert!(
            installed,
            "nats-server is not installed: the cluster tests need it (apt-get install nats-server)"
        );
        let port = StdListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut nats = Nats {
            port,
            dir: tempfile::tempdir().unwrap(),
            child: None,
        };
        nats.spawn();
        nats
    }

    fn spawn(&mut self) {
        let child = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting nats-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kills the server (its storage stays).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and storage.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A sluice node in cluster mode, serving on loopback.
pub struct Node {
    pub base: String,
    pub state: AppState,
    pub http: reqwest::Client,
    pub cluster: Arc<NatsCluster>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
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
        cluster.start(&state);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(sluice_server::serve(listener, None, state.clone(), async {
            let _ = stopped.await;
        }));
        let node = Node {
            base,
            state,
            http: reqwest::Client::new(),
            cluster,
            stop: Some(stop),
            task: Some(task),
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

    /// `/healthz`: status and body.
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

    pub async fn health(&self) -> (StatusCode, Value) {
        let response = self
            .http
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap())
    }

    /// Stops the node and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    /// An admin call; returns status and JSON body.
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
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }

    /// Account `acme`, user `alice`/`secret`, PowerTrack stream `prod`.
    pub async fn provision(&self) {
        use reqwest::Method;
        let (s, _) = self
            .admin(Method::PUT, "/admin/accounts/acme", json!({}))
            .await;
        assert!(s.is_success());
        let (s, _) = self
            .admin(
                Method::PUT,
                "/admin/accounts/acme/users/alice",
                json!({"password": "secret"}),
            )
            .await;
        assert!(s.is_success());
        let (s, body) = self
            .admin(
                Method::PUT,
                "/admin/accounts/acme/streams/prod",
                json!({"product": "powertrack"}),
            )
            .await;
        assert!(s.is_success(), "{s} {body}");
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
        let response = self
            .http
            .post(format!("{}/ingest", self.base))
            .bearer_auth(ADMIN)
            .body(ndjson.to_owned())
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Connects to the PowerTrack stream `prod` (with `query`, e.g. `?backfillMinutes=1`).
    pub async fn connect(&self, query: &str) -> crate::stream_client::StreamClient {
        let response = self
            .http
            .get(format!("{}{STREAM}{query}", self.base))
            .basic_auth("alice", Some("secret"))
            .header("accept-encoding", "gzip")
            .send()
            .await
            .unwrap();
        crate::stream_client::StreamClient::new(response)
    }
}

/// A node on a runtime of its own, so that it can be killed: shutting the runtime down
/// drops every task of the node at once (its HTTP connections, its NATS connection, its
/// consumers), as a crash of its process would, with no goodbye to anyone.
pub struct Killable {
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
