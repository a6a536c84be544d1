//! The server under test: a `sluice serve` child process the bench starts itself (the
//! same binary, on `127.0.0.1:0`, a temporary data dir, a fresh admin token), a cluster of
//! such children sharing a `nats-server` the bench also starts (`--cluster N`), or a
//! running server given by URL and admin token.
//!
//! Spawned processes live exactly as long as their [`Target`]: dropping it (normal end,
//! error, SIGINT handled by the bench, panic unwinding) kills the nodes, then the NATS
//! server, reaps them and removes their dirs.
//!
//! In a cluster, provisioning goes through the first node; the stream connections and the
//! ingest requests are spread round-robin over every node ([`Target::node`],
//! [`Target::on_node`]).

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use hyper::{Method, StatusCode};
use url::Url;

use crate::config::Serve;
use crate::nats::NatsServer;
use sluice_client::http::{Auth, HttpClient, Reply, Request};

/// The banner line `sluice serve` prints first: `sluice <version> listening on <URL>`.
const LISTENING: &str = " listening on ";
/// How long a spawned node may take to report healthy (a cluster node loads the shared
/// state from JetStream first).
const HEALTHY_TIMEOUT: Duration = Duration::from_secs(60);
/// How often `/healthz` is asked meanwhile.
const HEALTHY_POLL: Duration = Duration::from_millis(50);

/// Where the server under test is and how to administer it.
pub struct Target {
    /// The base URL (`http://127.0.0.1:PORT/`) of the server, or of the first node of a
    /// cluster: where the bench provisions.
    pub base: Url,
    /// Every node's base URL, [`Target::base`] first (only it for one server).
    pub nodes: Vec<Url>,
    /// The admin and ingest bearer token (the same on every node).
    pub admin_token: String,
    /// The child processes, when the bench started the server: one per node. Declared
    /// before `nats`, so the nodes are stopped before their NATS server.
    spawned: Vec<SpawnedServer>,
    /// The NATS server of a cluster the bench started.
    nats: Option<NatsServer>,
    /// How the report names the spawned servers' build and flags (see [`Serve::named`]).
    serve: Serve,
}

impl Target {
    /// A running server the bench does not own.
    pub fn external(base: Url, admin_token: String) -> Self {
        Self {
            nodes: vec![base.clone()],
            base,
            admin_token,
            spawned: Vec::new(),
            nats: None,
            serve: Serve::new("sluice".into()),
        }
    }

    /// Starts `sluice serve` as `serve` says and waits until it listens.
    pub fn spawn(serve: &Serve) -> anyhow::Result<Self> {
        let admin_token = crate::provision::secret("bench");
        let (server, base) = SpawnedServer::start(serve, &admin_token, None)?;
        Ok(Self {
            nodes: vec![base.clone()],
            base,
            admin_token,
            spawned: vec![server],
            nats: None,
            serve: serve.named(),
        })
    }

    /// Starts a `nats-server` with JetStream, then `nodes` `sluice serve --nats` as `serve`
    /// says, each with its own port and data dir and the same admin token, and waits until
    /// each listens (see [`Target::wait_healthy`] for ready).
    pub fn spawn_cluster(serve: &Serve, nodes: usize) -> anyhow::Result<Self> {
        anyhow::ensure!(nodes >= 1, "a cluster needs at least one node");
        let nats = NatsServer::start()?;
        let admin_token = crate::provision::secret("bench");
        // One after the other: the first creates the JetStream stream and buckets.
        let mut spawned = Vec::with_capacity(nodes);
        let mut urls = Vec::with_capacity(nodes);
        for n in 1..=nodes {
            let (server, base) = SpawnedServer::start(serve, &admin_token, Some(nats.url()))
                .with_context(|| format!("starting cluster node {n} of {nodes}"))?;
            spawned.push(server);
            urls.push(base);
        }
        Ok(Self {
            base: urls[0].clone(),
            nodes: urls,
            admin_token,
            spawned,
            nats: Some(nats),
            serve: serve.named(),
        })
    }

    /// Whether the bench started the server (and so owns everything on it).
    pub fn is_spawned(&self) -> bool {
        !self.spawned.is_empty()
    }

    /// The process id of every node the bench started, in node order (for CPU accounting).
    pub fn pids(&self) -> Vec<u32> {
        self.spawned.iter().map(|s| s.child.id()).collect()
    }

    /// The process id of the NATS server the bench started.
    pub fn nats_pid(&self) -> Option<u32> {
        self.nats.as_ref().map(NatsServer::pid)
    }

    /// The base URL of the node serving connection or ingest request number `i`:
    /// round-robin over the nodes.
    pub fn node(&self, i: usize) -> &Url {
        &self.nodes[i % self.nodes.len()]
    }

    /// `url`, built on [`Target::base`], moved to [`Target::node`]`(i)` (same path and
    /// query).
    pub fn on_node(&self, url: &Url, i: usize) -> anyhow::Result<Url> {
        let rest = url
            .as_str()
            .strip_prefix(self.base.as_str())
            .with_context(|| format!("{url} is not under {}", self.base))?;
        self.node(i)
            .join(rest)
            .with_context(|| format!("moving {url} to another node"))
    }

    /// How the report names the server under test.
    pub fn describe(&self) -> String {
        // The build, and the user's flags as `serve` got them (quoting aside).
        let program = self.serve.exe.display();
        let flags: String = self.serve.args.iter().map(|a| format!(" {a}")).collect();
        match (self.spawned.as_slice(), &self.nats) {
            ([], _) => format!("running server at {}", self.base),
            ([one], None) => format!(
                "spawned `{program} serve{flags}` (pid {}) at {}, temporary data dir",
                one.child.id(),
                self.base
            ),
            (nodes, _) => {
                let pids: Vec<String> = nodes.iter().map(|s| s.child.id().to_string()).collect();
                let urls: Vec<&str> = self.nodes.iter().map(Url::as_str).collect();
                match nodes.len() {
                    1 => format!(
                        "cluster of 1 `{program} serve --nats{flags}` node on this machine (pid {}) \
                         at {}, temporary data dir",
                        pids[0], urls[0]
                    ),
                    n => format!(
                        "cluster of {n} `{program} serve --nats{flags}` nodes on this machine \
                         (pids {}) at {}, each with a temporary data dir",
                        pids.join(", "),
                        urls.join(", ")
                    ),
                }
            }
        }
    }

    /// How the report names the NATS server the cluster shares, if any.
    pub fn describe_nats(&self) -> Option<String> {
        self.nats.as_ref().map(|nats| {
            format!(
                "{} (pid {}) at {}, JetStream in a temporary dir, {}",
                nats.version(),
                nats.pid(),
                nats.url(),
                match self.nodes.len() {
                    1 => "used by the node".to_owned(),
                    n => format!("shared by the {n} nodes"),
                }
            )
        })
    }

    /// Waits until every node the bench started answers `/healthz` with 200 (a cluster
    /// node does once it has loaded the shared state and its post consumer runs).
    pub async fn wait_healthy(&self, client: &HttpClient) -> anyhow::Result<()> {
        if !self.is_spawned() {
            return Ok(());
        }
        let auth = Auth::Bearer(self.admin_token.clone());
        let deadline = Instant::now() + HEALTHY_TIMEOUT;
        for (n, node) in self.nodes.iter().enumerate() {
            let url = node.join("healthz").context("building the /healthz URL")?;
            let request = Request::new(Method::GET, &url, &auth)?;
            loop {
                let why = match client.send(&request).await {
                    Ok(response) => {
                        let reply = Reply::read(response).await?;
                        if reply.status == StatusCode::OK {
                            break;
                        }
                        format!("HTTP {}: {}", reply.status, reply.error_message())
                    }
                    Err(e) => e.to_string(),
                };
                if Instant::now() > deadline {
                    bail!(
                        "node {} ({node}) was not healthy within {} s: {why}",
                        n + 1,
                        HEALTHY_TIMEOUT.as_secs()
                    );
                }
                tokio::time::sleep(HEALTHY_POLL).await;
            }
        }
        Ok(())
    }
}

/// A `sluice serve` child process and its data dir, both gone when this is dropped.
pub struct SpawnedServer {
    child: Child,
    // Dropped after `child` is killed (see `Drop`), so the server never loses its files
    // while running.
    data_dir: Option<tempfile::TempDir>,
}

impl SpawnedServer {
    /// Starts `sluice serve` as `serve` says, with `admin_token`, in cluster mode on `nats`
    /// when given; returns it with its base URL.
    fn start(serve: &Serve, admin_token: &str, nats: Option<&str>) -> anyhow::Result<(Self, Url)> {
        let data_dir = tempfile::Builder::new()
            .prefix("sluice-bench-")
            .tempdir()
            .context("creating a temporary data dir")?;
        let mut command = Command::new(&serve.exe);
        command
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--datacenter", "local"])
            .arg("--data-dir")
            .arg(data_dir.path())
            // The token goes through the environment, not the command line `ps` shows.
            .env("SLUICE_ADMIN_TOKEN", admin_token)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(nats) = nats {
            command.args(["--nats", nats]);
        }
        command.args(&serve.args);
        // The server logs a line per connection; keep its warnings and errors only,
        // unless the operator asked for something else.
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "warn");
        }
        // Settings the operator may have exported for their own server must not leak into
        // the benchmarked one.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.starts_with("SLUICE_") && name != "SLUICE_ADMIN_TOKEN" {
                command.env_remove(name.as_ref());
            }
        }
        let child = command.spawn().context("starting `sluice serve`")?;
        let mut server = SpawnedServer {
            child,
            data_dir: Some(data_dir),
        };
        let base = server.wait_for_banner()?;
        Ok((server, base))
    }

    /// Reads the start banner up to the `listening on` line; the rest of stdout is drained
    /// on a thread so the server never blocks on a full pipe.
    fn wait_for_banner(&mut self) -> anyhow::Result<Url> {
        let stdout = self
            .child
            .stdout
            .take()
            .context("the server's stdout is not captured")?;
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        loop {
            line.clear();
            let read = reader
                .read_line(&mut line)
                .context("reading the server's banner")?;
            if read == 0 {
                let status = self.child.wait().context("waiting for the server")?;
                bail!("`sluice serve` exited before listening ({status}); its stderr is above");
            }
            if let Some((_, url)) = line.trim_end().split_once(LISTENING) {
                let base = Url::parse(url)
                    .with_context(|| format!("the server printed an unusable URL {url:?}"))?;
                std::thread::Builder::new()
                    .name("sluice-bench-server-stdout".into())
                    .spawn(move || {
                        let mut sink = [0u8; 4096];
                        while matches!(reader.read(&mut sink), Ok(n) if n > 0) {}
                    })
                    .context("starting the stdout drain thread")?;
                return Ok(base);
            }
        }
    }
}

impl Drop for SpawnedServer {
    fn drop(&mut self) {
        // Already gone is fine; anything else cannot be reported from a destructor.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = self.data_dir.take() {
            let _ = dir.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("valid URL")
    }

    /// A target of three nodes (no processes: only the URLs matter here).
    fn three_nodes() -> Target {
        let nodes: Vec<Url> = (1..=3)
            .map(|n| url(&format!("http://127.0.0.1:800{n}/")))
            .collect();
        Target {
            base: nodes[0].clone(),
            nodes,
            admin_token: "t".to_owned(),
            spawned: Vec::new(),
            nats: None,
            serve: Serve::new("sluice".into()),
        }
    }

    #[test]
    fn work_goes_round_robin_over_the_nodes() {
        let target = three_nodes();
        let ports: Vec<u16> = (0..7)
            .map(|i| target.node(i).port().expect("a port"))
            .collect();
        assert_eq!(ports, [8001, 8002, 8003, 8001, 8002, 8003, 8001]);
        // One server: everything goes to it.
        let one = Target::external(url("http://h:9/"), "t".to_owned());
        assert!((0..5).all(|i| one.node(i) == &one.base));
    }

    #[test]
    fn urls_move_to_a_node_with_their_path_and_query() {
        let target = three_nodes();
        let stream = url(
            "http://127.0.0.1:8001/stream/firehose/accounts/a/publishers/twitter/f.json?partition=7",
        );
        assert_eq!(
            target.on_node(&stream, 4).expect("moved").as_str(),
            "http://127.0.0.1:8002/stream/firehose/accounts/a/publishers/twitter/f.json?partition=7"
        );
        assert_eq!(target.on_node(&stream, 0).expect("moved"), stream);
        assert!(target.on_node(&url("http://elsewhere/x"), 1).is_err());
    }

    #[test]
    fn a_path_prefix_of_the_base_is_kept() {
        let mut target = three_nodes();
        target.base = url("http://proxy/sluice/");
        target.nodes = vec![target.base.clone(), url("http://other/sluice/")];
        assert_eq!(
            target
                .on_node(&url("http://proxy/sluice/ingest"), 1)
                .expect("moved")
                .as_str(),
            "http://other/sluice/ingest"
        );
    }

    #[test]
    fn the_report_names_the_kind_of_server() {
        let target = Target::external(url("http://h:9/"), "t".to_owned());
        assert_eq!(target.describe(), "running server at http://h:9/");
        assert_eq!(target.describe_nats(), None);
        assert!(target.pids().is_empty());
        assert!(!target.is_spawned());
    }
}
