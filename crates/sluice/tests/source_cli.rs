//! The Jetstream source through the real binary, against the testkit's fake Jetstream on
//! loopback: `sluice source jetstream` feeding a server's ingest API and `sluice serve
//! --source jetstream=URL` feeding its own, each stopped by SIGTERM (exit 0, the cursor
//! saved) and started again (resuming 5 s before the cursor, nothing delivered twice on
//! the stream, nothing lost), with the source's metrics; the help and the refusal of an
//! unknown source kind.

use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_server::Settings;
use sluice_testkit::jetstream_events as events;
use sluice_testkit::{ADMIN, FakeJetstream, StreamClient, TestServer, distinct_ids};

const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");
const ALICE: &str = "did:plc:alice";
const T0: u64 = 1_733_011_200_000_000;
const SECOND: u64 = 1_000_000;

fn t(i: u64) -> u64 {
    T0 + i * SECOND
}

fn post(i: u64) -> Vec<u8> {
    events::post(ALICE, t(i), &format!("hello number {i}"), "en")
}

fn expected_ids(range: std::ops::Range<u64>) -> Vec<u64> {
    range
        .map(|i| sluice_bluesky::post_id(ALICE, &events::post_rkey(t(i))))
        .collect()
}

fn tempdir() -> tempfile::TempDir {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("source_cli");
    std::fs::create_dir_all(&root).unwrap();
    tempfile::tempdir_in(root).unwrap()
}

/// A `sluice` process whose stderr goes to `dir/NAME.log`.
struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    fn start(
        dir: &Path,
        name: &str,
        args: &[&str],
    ) -> (Process, Option<std::process::ChildStdout>) {
        let log = dir.join(format!("{name}.log"));
        let mut command = Command::new(SLUICE);
        command
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&log).unwrap())
            .env("RUST_LOG", "info");
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("SLUICE_") {
                command.env_remove(key);
            }
        }
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take();
        (Process { child, log }, stdout)
    }

    /// SIGTERM, then the exit code (within 20 s).
    fn terminate(mut self) -> i32 {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "no exit; log: {}", self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_cursor(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn source_jetstream_feeds_a_server_and_resumes_after_sigterm() {
    let server = TestServer::start(Settings {
        heartbeat: Duration::from_millis(300),
        ..Settings::default()
    })
    .await;
    server.provision("powertrack").await;
    let response = server
        .http
        .post(format!(
            "{}/rules/powertrack/accounts/acme/publishers/twitter/prod.json",
            server.base
        ))
        .basic_auth("alice", Some("secret"))
        .json(&json!({"rules": [{"value": "hello"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let mut stream = server
        .gnip_connect("/stream/powertrack/accounts/acme/publishers/twitter/prod.json")
        .await;
    let fake = FakeJetstream::start((0..5).map(post)).await;
    let dir = tempdir();
    let cursor = dir.path().join("state/jetstream.cursor");
    let url = fake.url();
    let args = [
        "source",
        "jetstream",
        &url,
        "--to",
        &server.base,
        "--token",
        ADMIN,
        "--cursor-file",
        cursor.to_str().unwrap(),
    ];
    let (first, _) = Process::start(dir.path(), "first", &args);
    let mut delivered = stream.at_least(5).await;
    assert_eq!(first.terminate(), 0);
    assert_eq!(read_cursor(&cursor), t(4));

    for i in 5..8 {
        fake.push(&post(i));
    }
    let (second, _) = Process::start(dir.path(), "second", &args);
    delivered.extend(stream.at_least(3).await);
    let log = second.log();
    assert_eq!(second.terminate(), 0, "{log}");
    assert_eq!(read_cursor(&cursor), t(7));
    assert_eq!(fake.sessions()[1].cursor, Some(t(4) - 5 * SECOND));
    assert_eq!(distinct_ids(&delivered), expected_ids(0..8));
    let log = std::fs::read_to_string(dir.path().join("second.log")).unwrap();
    assert!(log.contains("resuming 5s before"), "{log}");
    assert!(log.contains("connected"), "{log}");
    server.stop().await;
}

/// `sluice serve --demo --source jetstream=URL` in `dir`; returns it and its base URL.
fn serve(dir: &Path, name: &str, source: &str) -> (Process, String) {
    let (process, stdout) = Process::start(
        dir,
        name,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            "data",
            "--admin-token",
            ADMIN,
            "--demo",
            "--source",
            source,
        ],
    );
    let mut lines = BufReader::new(stdout.unwrap()).lines();
    let base = loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("no banner; log: {}", process.log()))
            .unwrap();
        if let Some((_, url)) = line.split_once(" listening on ") {
            break url.to_owned();
        }
    };
    // The rest of the banner is not read: a thread keeps the pipe drained.
    std::thread::spawn(move || for _ in lines {});
    (process, base)
}

/// The posts among a stream's messages (not its closing system message).
fn posts(messages: Vec<Value>) -> Vec<Value> {
    messages
        .into_iter()
        .filter(|m| m.get("id_str").is_some())
        .collect()
}

async fn demo_stream(base: &str) -> StreamClient {
    let response = reqwest::Client::new()
        .get(format!(
            "{base}/stream/powertrack/accounts/demo/publishers/twitter/prod.json"
        ))
        .basic_auth("demo", Some("demo"))
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    StreamClient::new(response)
}

#[tokio::test]
async fn serve_source_jetstream_delivers_and_keeps_its_cursor_across_restarts() {
    let fake = FakeJetstream::start(Vec::<Vec<u8>>::new()).await;
    let dir = tempdir();
    let source = format!("jetstream={}", fake.url());
    let (first, base) = serve(dir.path(), "first", &source);
    let response = reqwest::Client::new()
        .request(
            Method::POST,
            format!("{base}/rules/powertrack/accounts/demo/publishers/twitter/prod.json"),
        )
        .basic_auth("demo", Some("demo"))
        .json(&json!({"rules": [{"value": "hello number", "tag": "bluesky"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let mut stream = demo_stream(&base).await;
    for i in 0..4 {
        fake.push(&post(i));
    }
    // The demo's heartbeats are X's 10 s: read the four, then the rest of the stream,
    // which the server ends at shutdown.
    let mut delivered = Vec::new();
    for _ in 0..4 {
        delivered.push(stream.next_message().await);
    }
    assert!(
        delivered
            .iter()
            .all(|m| m["matching_rules"][0]["tag"] == "bluesky"),
        "{delivered:?}"
    );
    assert_eq!(first.terminate(), 0);
    delivered.extend(posts(stream.rest().await));
    let cursor = dir.path().join("data/sources/jetstream.cursor");
    assert_eq!(read_cursor(&cursor), t(3));

    let (second, base) = serve(dir.path(), "second", &source);
    let mut stream = demo_stream(&base).await;
    // Whether the source connects before or after these pushes, nothing may arrive twice.
    for i in 4..6 {
        fake.push(&post(i));
    }
    for _ in 0..2 {
        delivered.push(stream.next_message().await);
    }
    // The cursor (and its lag) is saved just after the batch is stored, so possibly a
    // moment after the posts reached the stream.
    let wanted = [
        "sluice_source_events_received_total{source=\"jetstream\"}",
        "sluice_source_posts_ingested_total{source=\"jetstream\"}",
        "sluice_source_cursor_lag_seconds{source=\"jetstream\"}",
    ];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = reqwest::get(format!("{base}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if wanted.iter().all(|m| metrics.contains(m)) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{wanted:?} not all in:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = second.log();
    assert_eq!(second.terminate(), 0, "{log}");
    delivered.extend(posts(stream.rest().await));
    assert_eq!(read_cursor(&cursor), t(5));
    assert_eq!(fake.sessions()[1].cursor, Some(t(3) - 5 * SECOND));
    // Posts 0 to 3 were read again in the overlap and dropped by ingest's de-duplication,
    // which the post log carries across the restart.
    assert_eq!(distinct_ids(&delivered), expected_ids(0..6));
    let log = std::fs::read_to_string(dir.path().join("second.log")).unwrap();
    // With a source, --demo sets up the demo's streams and rules but starts no synthetic
    // firehose (whose posts the demo's example rules would have put on the stream).
    assert!(!log.contains("demo firehose started"), "{log}");
}

#[test]
fn help_explains_the_source_and_unknown_kinds_are_refused() {
    let help = Command::new(SLUICE)
        .args(["source", "jetstream", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    for needed in [
        "--to",
        "--token",
        "--cursor-file",
        "--compress",
        "resumes 5 s before it",
        "SIGTERM",
    ] {
        assert!(help.contains(needed), "{needed} missing from:\n{help}");
    }
    let serve_help = Command::new(SLUICE)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let serve_help = String::from_utf8(serve_help.stdout).unwrap();
    assert!(serve_help.contains("--source <KIND=URL>"), "{serve_help}");

    let dir = tempdir();
    let refused = Command::new(SLUICE)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--source", "nostr=wss://relay.example"])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8(refused.stderr).unwrap();
    assert!(
        stderr.contains("--source: unknown source kind \"nostr\": the kinds are jetstream"),
        "{stderr}"
    );
}
