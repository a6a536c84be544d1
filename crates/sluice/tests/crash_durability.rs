//! What `sluice serve` acknowledges survives a crash: several clients ingest 1,000-post
//! bodies at once, the server is SIGKILLed the instant one of them gets its `200`, and after
//! a restart on the same data directory a recovery request returns every post of every
//! acknowledged batch.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");
const TOKEN: &str = "crash-test-token";
const STREAM: &str = "/stream/powertrack/accounts/acme/publishers/twitter/prod.json";
const RULES: &str = "/rules/powertrack/accounts/acme/publishers/twitter/prod.json";
/// Concurrent ingest clients.
const POSTERS: u64 = 3;
/// Posts per ingest body.
const BATCH: u64 = 1_000;
/// Kill/restart rounds.
const ROUNDS: u64 = 4;
/// Batches acknowledged in a round before the next `200` kills the server, so that the
/// pipeline is busy when it dies.
const WARM_UP: usize = 4;

/// A `sluice serve` process on a data directory.
struct Server {
    child: Arc<Mutex<Child>>,
    url: String,
}

impl Server {
    fn start(dir: &Path, round: u64) -> Server {
        let log = File::create(dir.join(format!("server-{round}.log"))).expect("log file");
        let mut command = Command::new(SLUICE);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--admin-token", TOKEN])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .env("RUST_LOG", "info");
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("SLUICE_") {
                command.env_remove(key);
            }
        }
        let mut child = command.spawn().expect("start sluice serve");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (url_tx, url_rx) = std::sync::mpsc::channel();
        // Keeps reading so that the server never writes to a closed pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some((_, url)) = line.split_once(" listening on ") {
                    let _ = url_tx.send(url.to_owned());
                }
            }
        });
        let url = url_rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!("no banner from sluice serve (see {})", dir.display())
            });
        Server {
            child: Arc::new(Mutex::new(child)),
            url,
        }
    }

    /// SIGKILL, at once.
    fn kill(&self) {
        let _ = self.child.lock().unwrap().kill();
    }

    fn wait_dead(&self) {
        self.child
            .lock()
            .unwrap()
            .wait()
            .expect("wait for the server");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        self.wait_dead();
    }
}

fn tempdir() -> tempfile::TempDir {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("crash_durability");
    std::fs::create_dir_all(&root).expect("create test root");
    tempfile::tempdir_in(root).expect("create test dir")
}

/// Account `acme`, user `alice`, PowerTrack stream `prod` with the rule `durable`, which
/// every post of this test matches.
async fn provision(http: &reqwest::Client, base: &str) {
    for (path, body) in [
        ("/admin/accounts/acme", json!({})),
        (
            "/admin/accounts/acme/users/alice",
            json!({"password": "secret"}),
        ),
        (
            "/admin/accounts/acme/streams/prod",
            json!({"product": "powertrack"}),
        ),
    ] {
        let response = http
            .put(format!("{base}{path}"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
    }
    let response = http
        .post(format!("{base}{RULES}"))
        .basic_auth("alice", Some("secret"))
        .json(&json!({"rules": [{"value": "durable"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
}

/// The ids of batch `batch` of `poster` in `round`: unique across the test.
fn batch_ids(round: u64, poster: u64, batch: u64) -> std::ops::Range<u64> {
    let first = 1_000_000_000 + ((round * POSTERS + poster) * 1_000 + batch) * BATCH;
    first..first + BATCH
}

fn body(ids: std::ops::Range<u64>) -> String {
    let mut body = String::new();
    for id in ids {
        let post = json!({
            "created_at": "Wed Oct 10 20:19:24 +0000 2018",
            "id": id,
            "id_str": id.to_string(),
            "text": format!("durable post {id}, long enough to take the pipeline some time to log and match"),
            "user": {"id": 12, "id_str": "12", "screen_name": "jack"},
            "lang": "en"
        });
        body.push_str(&post.to_string());
        body.push('\n');
    }
    body
}

/// Bodies a poster has ready (built before it starts, so that the test's own work does not
/// slow down its reaction to a `200`).
const BODIES: u64 = 10;

/// Ingests batch after batch until the server is gone; returns the acknowledged batches.
/// Once `WARM_UP` batches are acknowledged in all, the next `200` kills the server at once.
async fn post_until_killed(
    server: Arc<Server>,
    acked: Arc<Mutex<Vec<std::ops::Range<u64>>>>,
    bodies: Vec<(std::ops::Range<u64>, String)>,
) {
    let http = reqwest::Client::new();
    for (ids, body) in bodies {
        let sent = http
            .post(format!("{}/ingest", server.url))
            .bearer_auth(TOKEN)
            .body(body)
            .send()
            .await;
        let Ok(response) = sent else { return };
        if response.status().as_u16() != 200 {
            return;
        }
        let acknowledged = {
            let mut acked = acked.lock().unwrap();
            acked.push(ids);
            acked.len()
        };
        if acknowledged > WARM_UP {
            server.kill();
            return;
        }
        if let Ok(answer) = response.json::<Value>().await {
            assert_eq!(answer["accepted"], BATCH, "{answer}");
        }
    }
    panic!("the server was never killed");
}

/// The ids a PowerTrack recovery of everything since `since` returns.
async fn recovered_ids(http: &reqwest::Client, base: &str, since: SystemTime) -> HashSet<u64> {
    let start = humantime::format_rfc3339_millis(since).to_string();
    let response = http
        .get(format!("{base}{STREAM}?startTime={start}"))
        .basic_auth("alice", Some("secret"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let gzipped = response.bytes().await.expect("the recovery body");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gzipped[..])
        .read_to_string(&mut text)
        .expect("gzip");
    let mut ids = HashSet::new();
    let mut completed = false;
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let message: Value = serde_json::from_str(line).expect("JSON line");
        if message["info"]["message"] == "Recovery Request Completed" {
            completed = true;
        } else if let Some(id) = message["id_str"].as_str() {
            ids.insert(id.parse().unwrap());
        }
    }
    assert!(completed, "the recovery did not complete: {text:.500}");
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_batch_acknowledged_before_a_sigkill_is_there_after_the_restart() {
    let dir = tempdir();
    let http = reqwest::Client::new();
    let started = Instant::now();
    let mut server = Arc::new(Server::start(dir.path(), 0));
    provision(&http, &server.url).await;
    for round in 0..ROUNDS {
        let since = SystemTime::now() - Duration::from_secs(1);
        let acked = Arc::new(Mutex::new(Vec::new()));
        let posters: Vec<_> = (0..POSTERS)
            .map(|poster| {
                let bodies = (0..BODIES)
                    .map(|batch| {
                        let ids = batch_ids(round, poster, batch);
                        (ids.clone(), body(ids))
                    })
                    .collect();
                tokio::spawn(post_until_killed(server.clone(), acked.clone(), bodies))
            })
            .collect();
        for poster in posters {
            poster.await.expect("poster");
        }
        server.wait_dead();
        drop(server);

        server = Arc::new(Server::start(dir.path(), round + 1));
        let recovered = recovered_ids(&http, &server.url, since).await;
        let acked = acked.lock().unwrap();
        assert!(acked.len() > WARM_UP);
        for batch in acked.iter() {
            let missing = batch.clone().filter(|id| !recovered.contains(id)).count();
            assert_eq!(
                missing,
                0,
                "round {round}: {missing} posts of the acknowledged batch {batch:?} are lost \
                 ({} batches acknowledged, {} posts recovered)",
                acked.len(),
                recovered.len()
            );
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}
