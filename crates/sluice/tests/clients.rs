//! `sluice ingest`, `sluice rules` and `sluice stream` through the real binary, against a
//! real server started in this process on 127.0.0.1 (mini-redis style): ingest counts and
//! rejected line numbers, the rules API round trip and its exit codes, and a stream that
//! prints matching posts and survives a server restart; the same for the X API v2
//! filtered stream with an app's bearer token (rules paged and batched, problems named,
//! field expansion, a readable connect refusal, reconnects after an operational
//! disconnect).

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_server::auth::AdminToken;
use sluice_server::{AppState, Settings, StoreLocation};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");
const ADMIN: &str = "clients-test-admin-token";
const USER: &str = "alice:secret";

/// A server running in this process.
struct Server {
    addr: SocketAddr,
    base: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Server {
    /// Starts a server with its store in `dir`, on `addr` (`127.0.0.1:0` for any port).
    async fn start(dir: &Path, addr: SocketAddr) -> Server {
        Self::start_with(dir, addr, None).await
    }

    /// [`Server::start`], serving HTTPS when `tls` is given.
    async fn start_with(
        dir: &Path,
        addr: SocketAddr,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Server {
        let listener = TcpListener::bind(addr).await.expect("bind loopback");
        let addr = listener.local_addr().expect("bound address");
        let scheme = if tls.is_some() { "https" } else { "http" };
        let base = format!("{scheme}://{addr}");
        let settings = Settings {
            public_url: base.clone(),
            ..Settings::default()
        };
        let state = AppState::open(
            StoreLocation::DataDir(dir),
            settings,
            AdminToken::new(ADMIN),
        )
        .expect("open state");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(sluice_server::serve(listener, tls, state, async {
            let _ = stopped.await;
        }));
        Server {
            addr,
            base,
            stop,
            task,
        }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.expect("server task").expect("server ran");
    }

    /// Creates account `acme`, user `alice`/`secret` and a PowerTrack stream `prod`;
    /// returns the stream's description (with `stream_url` and `rules_url`).
    async fn provision(&self) -> Value {
        let http = reqwest::Client::new();
        let put = |path: &str, body: Value| {
            http.put(format!("{}{path}", self.base))
                .bearer_auth(ADMIN)
                .json(&body)
                .send()
        };
        put("/admin/accounts/acme", json!({}))
            .await
            .expect("account");
        put(
            "/admin/accounts/acme/users/alice",
            json!({"password": "secret"}),
        )
        .await
        .expect("user");
        let response = put(
            "/admin/accounts/acme/streams/prod",
            json!({"product": "powertrack"}),
        )
        .await
        .expect("stream");
        assert!(response.status().is_success(), "{}", response.status());
        response.json().await.expect("stream description")
    }
}

/// A private directory for one test.
fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("sluice-clients-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir")
}

/// Runs the binary to completion (off the async workers, so the server keeps serving).
async fn sluice(args: &[&str], stdin: Option<&str>) -> Output {
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    let stdin = stdin.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        let mut child = Command::new(SLUICE)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sluice");
        let mut pipe = child.stdin.take().expect("stdin is piped");
        if let Some(input) = stdin {
            pipe.write_all(input.as_bytes()).expect("feed stdin");
        }
        drop(pipe);
        child.wait_with_output().expect("sluice ran")
    })
    .await
    .expect("runner thread")
}

fn stdout_json(output: &Output) -> Value {
    let text = String::from_utf8(output.stdout.clone()).expect("UTF-8 stdout");
    assert_eq!(
        text.lines().count(),
        1,
        "one compact line when piped: {text}"
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exited normally")
}

fn post(id: u64, text: &str) -> String {
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

fn write_file(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write test file");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_sends_a_file_in_batches_and_reports_rejected_lines_by_file_line() {
    let dir = temp_dir();
    let server = Server::start(dir.path(), "127.0.0.1:0".parse().expect("addr")).await;
    server.provision().await;

    // Line 3 is blank (skipped), line 5 is not JSON, line 8 has no created_at; each post
    // is ~250 bytes, so 600-byte batches split the file into several requests.
    let mut lines: Vec<String> = (1..=9)
        .map(|i| post(i, &format!("post number {i}")))
        .collect();
    lines[2] = String::new();
    lines[4] = "this is not json".to_owned();
    lines[7] = r#"{"id":8,"id_str":"8","text":"no date"}"#.to_owned();
    let file = write_file(dir.path(), "posts.ndjson", &lines.join("\n"));
    let file = file.to_str().expect("UTF-8 path");

    let out = sluice(
        &[
            "ingest",
            file,
            "--url",
            &server.base,
            "--token",
            ADMIN,
            "--batch-bytes",
            "600",
        ],
        None,
    )
    .await;
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert_eq!(
        stdout_json(&out),
        json!({"sent": 8, "accepted": 6, "rejected": 2})
    );
    let err = stderr(&out);
    let reported: Vec<&str> = err.lines().filter(|l| l.contains(": line ")).collect();
    assert_eq!(reported.len(), 2, "{err}");
    assert!(
        reported[0].starts_with("sluice ingest: line 5: ")
            && reported[0].ends_with("this is not json"),
        "{err}"
    );
    assert!(
        reported[1].starts_with("sluice ingest: line 8: ") && reported[1].contains("created_at"),
        "{err}"
    );

    // All good, from stdin, to the full /ingest URL with a datacenter: exit 0.
    let good = format!("{}\n{}\n", post(20, "a"), post(21, "b"));
    let url = format!("{}/ingest", server.base);
    let out = sluice(
        &[
            "ingest",
            "-",
            "--url",
            &url,
            "--token",
            ADMIN,
            "--datacenter",
            "atla",
        ],
        Some(&good),
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout_json(&out),
        json!({"sent": 2, "accepted": 2, "rejected": 0})
    );

    // A wrong token is an error naming the status.
    let out = sluice(
        &["ingest", "--url", &server.base, "--token", "wrong"],
        Some(&good),
    )
    .await;
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("401"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nothing was ingested"),
        "{}",
        stderr(&out)
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_add_list_validate_delete_round_trip_with_exit_codes() {
    let dir = temp_dir();
    let server = Server::start(dir.path(), "127.0.0.1:0".parse().expect("addr")).await;
    let stream = server.provision().await;
    let url = stream["rules_url"].as_str().expect("rules_url").to_owned();
    let rules = |action: &'static str, extra: &[&str]| {
        let mut args = vec!["rules", action, "--url", url.as_str(), "-u", USER];
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>, stdin: Option<&'static str>| async move {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        sluice(&refs, stdin).await
    };

    // Add two rules from arguments with a tag.
    let out = run(
        rules("add", &["--tag", "pets", "cat", "dog OR puppy"]),
        None,
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let added = stdout_json(&out);
    assert_eq!(added["summary"], json!({"created": 2, "not_created": 0}));

    // Adding them again creates nothing and still succeeds (X answers 201).
    let out = run(rules("add", &["cat"]), None).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout_json(&out)["summary"],
        json!({"created": 0, "not_created": 1})
    );

    // Five rules from stdin, two per request: one merged body of the same shape.
    let file = r#"{"rules":[{"value":"r1","tag":"t"},{"value":"r2"},{"value":"r3"},{"value":"r4"},{"value":"r5","tag":null}]}"#;
    let out = run(
        rules("add", &["--file", "-", "--batch-size", "2"]),
        Some(file),
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let merged = stdout_json(&out);
    assert_eq!(merged["summary"], json!({"created": 5, "not_created": 0}));
    let detail_values: Vec<&str> = merged["detail"]
        .as_array()
        .expect("detail")
        .iter()
        .map(|d| d["rule"]["value"].as_str().expect("value"))
        .collect();
    assert_eq!(detail_values, ["r1", "r2", "r3", "r4", "r5"]);
    assert!(merged["sent"].as_str().is_some_and(|s| s.ends_with('Z')));

    // List: seven rules, each with exactly value, tag, id, id_str.
    let out = run(rules("list", &[]), None).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let listed = stdout_json(&out);
    let listed_rules = listed["rules"].as_array().expect("rules").clone();
    assert_eq!(listed_rules.len(), 7);
    let cat = listed_rules
        .iter()
        .find(|r| r["value"] == "cat")
        .expect("cat is listed");
    assert_eq!(cat["tag"], "pets");
    assert_eq!(
        cat["id_str"],
        cat["id"].as_u64().expect("numeric id").to_string()
    );

    // Validate: one invalid rule → exit 2, the body on stdout, the message on stderr.
    let out = run(rules("validate", &["from:jack", "fish AND bird"]), None).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert_eq!(
        stdout_json(&out)["summary"],
        json!({"valid": 1, "not_valid": 1})
    );
    assert!(
        stderr(&out).contains("Ambiguous use of and"),
        "{}",
        stderr(&out)
    );
    let out = run(rules("validate", &["from:jack"]), None).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // An add with an invalid rule is refused whole (422): exit 2, per-rule detail on stdout.
    let out = run(rules("add", &["bird", "fish AND bird"]), None).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let refused = stdout_json(&out);
    assert_eq!(refused["summary"]["created"], 0);
    assert!(
        stderr(&out).contains("\"fish AND bird\""),
        "{}",
        stderr(&out)
    );

    // Delete by value and by id.
    let out = run(rules("delete", &["cat", "no such rule"]), None).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout_json(&out)["summary"],
        json!({"deleted": 1, "not_deleted": 1})
    );
    let id = listed_rules
        .iter()
        .find(|r| r["value"] == "r1")
        .and_then(|r| r["id_str"].as_str())
        .expect("r1 id")
        .to_owned();
    let out = run(rules("delete", &["--id", &id]), None).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout_json(&out)["summary"],
        json!({"deleted": 1, "not_deleted": 0})
    );

    // Delete everything that is left, in batches of two.
    let out = run(rules("delete", &["--all", "--batch-size", "2"]), None).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout_json(&out)["summary"],
        json!({"deleted": 5, "not_deleted": 0})
    );
    let out = run(rules("list", &[]), None).await;
    assert_eq!(stdout_json(&out)["rules"], json!([]));

    // Wrong password: exit 1 with the status and X's message; no stdout.
    let out = sluice(&["rules", "list", "--url", &url, "-u", "alice:wrong"], None).await;
    assert_eq!(code(&out), 1);
    assert!(out.stdout.is_empty());
    assert!(stderr(&out).contains("HTTP 401"), "{}", stderr(&out));
    server.stop().await;
}

/// A `sluice stream` child whose stdout and stderr lines arrive on channels.
struct StreamChild {
    child: Child,
    stdout: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
    stderr_seen: Vec<String>,
    /// `id_str` of every stdout line so far, in order.
    stdout_ids: Vec<String>,
}

impl StreamChild {
    fn spawn(args: &[&str]) -> StreamChild {
        let mut child = Command::new(SLUICE)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sluice stream");
        let stdout = lines_of(child.stdout.take().expect("stdout is piped"));
        let stderr = lines_of(child.stderr.take().expect("stderr is piped"));
        StreamChild {
            child,
            stdout,
            stderr,
            stderr_seen: Vec::new(),
            stdout_ids: Vec::new(),
        }
    }

    /// Waits (up to 20 s) for a stderr line containing `needle`.
    async fn stderr_line(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            while let Ok(line) = self.stderr.try_recv() {
                self.stderr_seen.push(line.clone());
                if line.contains(needle) {
                    return line;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "no stderr line with {needle:?}; stderr so far: {:#?}",
            self.stderr_seen
        );
    }

    /// Waits (up to 20 s) for a stdout post with `id_str` (`data.id` on v2); returns it
    /// parsed.
    async fn post(&mut self, id_str: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            while let Ok(line) = self.stdout.try_recv() {
                let value: Value =
                    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
                // A native post has `id_str`, a v2 line `data.id`.
                let id = value["id_str"]
                    .as_str()
                    .or_else(|| value["data"]["id"].as_str())
                    .unwrap_or_else(|| panic!("not a post: {line}"));
                self.stdout_ids.push(id.to_owned());
                if id == id_str {
                    return value;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!(
            "post {id_str} never arrived; stderr: {:#?}",
            self.stderr_seen
        );
    }

    /// Sends SIGTERM and returns the exit code.
    async fn terminate(mut self) -> i32 {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(status.success());
        tokio::task::spawn_blocking(move || {
            let status = self.child.wait().expect("wait for sluice stream");
            status.code().expect("exited, not killed")
        })
        .await
        .expect("waiter thread")
    }
}

fn lines_of(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

async fn ingest(base: &str, ndjson: String) {
    let response = reqwest::Client::new()
        .post(format!("{base}/ingest"))
        .bearer_auth(ADMIN)
        .body(ndjson)
        .send()
        .await
        .expect("ingest");
    assert!(response.status().is_success(), "{}", response.status());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_prints_matching_posts_and_reconnects_after_a_server_restart() {
    let dir = temp_dir();
    let server = Server::start(dir.path(), "127.0.0.1:0".parse().expect("addr")).await;
    let stream = server.provision().await;
    let stream_url = stream["stream_url"]
        .as_str()
        .expect("stream_url")
        .to_owned();
    let rules_url = stream["rules_url"].as_str().expect("rules_url").to_owned();
    let out = sluice(
        &[
            "rules", "add", "--url", &rules_url, "-u", USER, "--tag", "pizza", "pizza",
        ],
        None,
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rule_id = stdout_json(&out)["detail"][0]["rule"]["id_str"]
        .as_str()
        .expect("created rule id")
        .to_owned();

    let mut client = StreamChild::spawn(&[
        "stream",
        &stream_url,
        "-u",
        USER,
        "--backfill-minutes",
        "1",
        "--backoff-scale",
        "0.02",
    ]);
    let connected = client.stderr_line("connected to").await;
    assert!(
        !connected.contains("backfillMinutes"),
        "no backfill on the first connect: {connected}"
    );

    ingest(
        &server.base,
        format!(
            "{}\n{}\n",
            post(101, "I like pasta"),
            post(102, "pizza tonight")
        ),
    )
    .await;
    let delivered = client.post("102").await;
    assert_eq!(
        delivered["matching_rules"],
        json!([{"tag": "pizza", "id": rule_id.parse::<u64>().expect("numeric"), "id_str": rule_id}])
    );
    assert_eq!(delivered["text"], "pizza tonight");

    // The server goes away: the stream's operational message goes to stderr, the client
    // backs off, and it reconnects (with backfill) once the server is back on its port.
    let addr = server.addr;
    server.stop().await;
    client.stderr_line("operational reasons").await;
    client.stderr_line("reconnecting in").await;
    let server = Server::start(dir.path(), addr).await;
    let reconnected = client.stderr_line("connected to").await;
    assert!(reconnected.contains("backfillMinutes=1"), "{reconnected}");
    ingest(
        &server.base,
        format!("{}\n", post(103, "more pizza please")),
    )
    .await;
    let delivered = client.post("103").await;
    assert_eq!(delivered["matching_rules"][0]["tag"], "pizza");

    // Only matching posts reached stdout: no heartbeats, no system lines, not post 101.
    assert!(
        !client.stdout_ids.contains(&"101".to_owned()),
        "{:?}",
        client.stdout_ids
    );
    assert_eq!(client.terminate().await, 0);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_gives_up_at_once_on_bad_credentials() {
    let dir = temp_dir();
    let server = Server::start(dir.path(), "127.0.0.1:0".parse().expect("addr")).await;
    let stream = server.provision().await;
    let url = stream["stream_url"]
        .as_str()
        .expect("stream_url")
        .to_owned();
    let started = Instant::now();
    let out = sluice(&["stream", &url, "-u", "alice:wrong"], None).await;
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("HTTP 401"), "{}", stderr(&out));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "no backoff for a refusal"
    );
    assert!(out.stdout.is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_servers_are_trusted_through_cacert() {
    let dir = temp_dir();
    let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    // Provision over plain HTTP (the test's own client has no TLS), then serve HTTPS with
    // a self-signed certificate from the same store.
    let plain = Server::start(dir.path(), any).await;
    plain.provision().await;
    plain.stop().await;
    let (acceptor, cert) =
        sluice_server::tls::self_signed(dir.path()).expect("self-signed certificate");
    let server = Server::start_with(dir.path(), any, Some(acceptor)).await;
    let url = format!(
        "{}/rules/powertrack/accounts/acme/publishers/twitter/prod.json",
        server.base
    );

    let out = sluice(&["rules", "list", "--url", &url, "-u", USER], None).await;
    assert_eq!(code(&out), 1, "an unknown issuer is refused");
    assert!(
        stderr(&out).contains("certificate is not trusted") && stderr(&out).contains("--cacert"),
        "the refusal suggests --cacert: {}",
        stderr(&out)
    );

    let cert = cert.to_str().expect("UTF-8 path");
    let out = sluice(
        &["rules", "list", "--url", &url, "-u", USER, "--cacert", cert],
        None,
    )
    .await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout_json(&out)["rules"], json!([]));
    server.stop().await;
}

/// Waits up to `limit` for `child` to exit; kills it and returns `None` if it does not.
async fn exit_within(mut child: StreamChild, limit: Duration) -> (Option<i32>, Vec<String>) {
    let deadline = Instant::now() + limit;
    let code = loop {
        if let Some(status) = child.child.try_wait().expect("poll sluice stream") {
            break status.code();
        }
        if Instant::now() >= deadline {
            child.child.kill().expect("kill sluice stream");
            child.child.wait().expect("reap sluice stream");
            break None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // The pipes close at exit: everything written is in the channel by then.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let lines = child.stderr.try_iter().collect();
    (code, lines)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_stops_at_once_on_an_untrusted_certificate_and_connects_with_cacert() {
    let dir = temp_dir();
    let any: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    let plain = Server::start(dir.path(), any).await;
    plain.provision().await;
    plain.stop().await;
    // The certificate `sluice serve --tls-self-signed` makes and writes.
    let (acceptor, cert) =
        sluice_server::tls::self_signed(dir.path()).expect("self-signed certificate");
    let server = Server::start_with(dir.path(), any, Some(acceptor)).await;
    let url = format!(
        "{}/stream/powertrack/accounts/acme/publishers/twitter/prod.json",
        server.base
    );

    let untrusted = StreamChild::spawn(&["stream", &url, "-u", USER]);
    let (code, stderr) = exit_within(untrusted, Duration::from_secs(10)).await;
    assert_eq!(
        code,
        Some(1),
        "exits non-zero instead of retrying: {stderr:#?}"
    );
    assert_eq!(stderr.len(), 1, "said once: {stderr:#?}");
    assert!(
        stderr[0].contains("certificate is not trusted") && stderr[0].contains("--cacert"),
        "{stderr:#?}"
    );

    let cert = cert.to_str().expect("UTF-8 path");
    let mut trusted = StreamChild::spawn(&["stream", &url, "-u", USER, "--cacert", cert]);
    trusted.stderr_line("connected to").await;
    assert_eq!(trusted.terminate().await, 0);
    server.stop().await;
}

impl Server {
    /// Creates account `acme` and an app of it; returns the app's bearer token.
    async fn provision_app(&self) -> String {
        let http = reqwest::Client::new();
        http.put(format!("{}/admin/accounts/acme", self.base))
            .bearer_auth(ADMIN)
            .json(&json!({}))
            .send()
            .await
            .expect("account");
        let created: Value = http
            .post(format!("{}/admin/accounts/acme/apps", self.base))
            .bearer_auth(ADMIN)
            .json(&json!({"name": "tester"}))
            .send()
            .await
            .expect("app")
            .json()
            .await
            .expect("app JSON");
        created["bearer_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no bearer_token: {created}"))
            .to_owned()
    }
}

/// `sluice rules ACTION --url RULES_URL --bearer TOKEN ARGS…`.
async fn v2_rules(action: &str, url: &str, token: &str, args: &[&str]) -> Output {
    let mut all = vec!["rules", action, "--url", url, "--bearer", token];
    all.extend_from_slice(args);
    sluice(&all, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_rules_add_list_delete_and_counts_with_an_app_token() {
    let dir = temp_dir();
    let server = Server::start(dir.path(), "127.0.0.1:0".parse().expect("addr")).await;
    let token = server.provision_app().await;
    let url = format!("{}/2/tweets/search/stream/rules", server.base);

    let out = v2_rules("list", &url, &token, &[]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let listed = stdout_json(&out);
    assert_eq!(listed["meta"]["result_count"], 0, "{listed}");
    assert!(listed.get("data").is_none(), "{listed}");

    // 1,001 rules from a file and one argument: two requests of 1,000 merged into one body.
    let file_rules: Vec<Value> = (0..1001)
        .map(|n| json!({"value": format!("word{n}"), "tag": format!("t{n}")}))
        .collect();
    let file = write_file(
        dir.path(),
        "rules.json",
        &json!({ "add": file_rules }).to_string(),
    );
    let file = file.to_str().expect("UTF-8 path");
    let out = v2_rules("add", &url, &token, &["-f", file, "--tag", "food", "pizza"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let added = stdout_json(&out);
    assert_eq!(added["meta"]["summary"]["created"], 1002, "{added}");
    assert_eq!(added["data"].as_array().map(Vec::len), Some(1002));
    let pizza = added["data"][1001].clone();
    assert_eq!(
        (&pizza["value"], &pizza["tag"]),
        (&json!("pizza"), &json!("food"))
    );
    let pizza_id = pizza["id"].as_str().expect("string id").to_owned();

    // A duplicate is named with the rule that has its value; nothing else changes.
    let out = v2_rules("add", &url, &token, &["pizza"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "\"pizza\": DuplicateRule (rule {pizza_id} has this value)"
        )),
        "{}",
        stderr(&out)
    );
    // An invalid rule: exit 2, X's details on stderr, the refusal on stdout.
    let out = v2_rules("add", &url, &token, &["lang:en", "fine"]).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("\"lang:en\": "), "{}", stderr(&out));
    assert_eq!(stdout_json(&out)["meta"]["summary"]["invalid"], 1);
    // validate and --dry-run check without adding.
    let out = v2_rules("validate", &url, &token, &["lang:en"]).await;
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let out = v2_rules("add", &url, &token, &["--dry-run", "dog"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout_json(&out)["meta"]["summary"]["created"], 1);

    // The list follows next_token over two pages.
    let out = v2_rules("list", &url, &token, &[]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let listed = stdout_json(&out);
    assert_eq!(listed["meta"]["result_count"], 1002, "{}", listed["meta"]);
    let values: Vec<&str> = listed["data"]
        .as_array()
        .expect("data")
        .iter()
        .filter_map(|r| r["value"].as_str())
        .collect();
    assert!(values.contains(&"word1000") && values.contains(&"pizza"));
    assert!(!values.contains(&"dog") && !values.contains(&"fine"));

    let out = v2_rules("counts", &url, &token, &[]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let counts = stdout_json(&out);
    assert_eq!(
        counts["data"]["client_app_rules_count"]["rule_count"], 1002,
        "{counts}"
    );

    // Deletes: a dry run, by id, a value that names no rule, then everything.
    let out = v2_rules("delete", &url, &token, &["--dry-run", "--id", &pizza_id]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout_json(&out)["meta"]["summary"]["deleted"], 1);
    let out = v2_rules("delete", &url, &token, &["--id", &pizza_id]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout_json(&out)["meta"]["summary"]["deleted"], 1);
    let out = v2_rules("delete", &url, &token, &["pizza", "word0"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout_json(&out)["meta"]["summary"],
        json!({"deleted": 1, "not_deleted": 1})
    );
    assert!(
        stderr(&out).contains("\"pizza\": Not Found Error: This rule does not exist."),
        "{}",
        stderr(&out)
    );
    let out = v2_rules("delete", &url, &token, &["--all"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout_json(&out)["meta"]["summary"]["deleted"], 1000);
    let out = v2_rules("list", &url, &token, &[]).await;
    assert_eq!(stdout_json(&out)["meta"]["result_count"], 0);

    // Basic auth is for PowerTrack, a bad token is X's 401.
    let out = sluice(&["rules", "list", "--url", &url, "-u", USER], None).await;
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("--bearer"), "{}", stderr(&out));
    let out = v2_rules("list", &url, "not-a-token", &[]).await;
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("HTTP 401"), "{}", stderr(&out));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_stream_expands_fields_and_reconnects_after_an_operational_disconnect() {
    let dir = temp_dir();
    let server = Server::start(dir.path(), "127.0.0.1:0".parse().expect("addr")).await;
    let token = server.provision_app().await;
    let rules_url = format!("{}/2/tweets/search/stream/rules", server.base);
    let stream_url = format!("{}/2/tweets/search/stream", server.base);

    // Without rules X refuses the connect with 409; the client says why and retries.
    let mut client = StreamChild::spawn(&[
        "stream",
        &stream_url,
        "--bearer",
        &token,
        "--tweet-fields",
        "created_at,author_id",
        "--expansions",
        "author_id",
        "--user-fields",
        "username",
        "--backfill-minutes",
        "1",
        "--backoff-scale",
        "0.02",
    ]);
    let refused = client
        .stderr_line("RuleConfigurationIssue: You must define rules")
        .await;
    assert!(refused.contains("HTTP 409"), "{refused}");
    let out = v2_rules("add", &rules_url, &token, &["--tag", "food", "pizza"]).await;
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let rule_id = stdout_json(&out)["data"][0]["id"]
        .as_str()
        .expect("rule id")
        .to_owned();
    let connected = client.stderr_line("connected to").await;
    assert!(
        connected.contains("tweet.fields=created_at%2Cauthor_id"),
        "{connected}"
    );
    assert!(!connected.contains("backfill_minutes"), "{connected}");

    ingest(
        &server.base,
        format!(
            "{}\n{}\n",
            post(101, "I like pasta"),
            post(102, "pizza tonight")
        ),
    )
    .await;
    let delivered = client.post("102").await;
    assert_eq!(delivered["data"]["text"], "pizza tonight", "{delivered}");
    assert_eq!(delivered["data"]["author_id"], "12", "{delivered}");
    assert_eq!(
        delivered["includes"]["users"][0]["username"], "jack",
        "{delivered}"
    );
    assert_eq!(
        delivered["matching_rules"],
        json!([{"id": rule_id, "tag": "food"}])
    );

    // The server goes away: its OperationalDisconnect line ends the connection, the client
    // backs off and reconnects, asking for backfill, once the server is back.
    let addr = server.addr;
    server.stop().await;
    client.stderr_line("OperationalDisconnect").await;
    let reconnecting = client.stderr_line("reconnecting in").await;
    assert!(
        reconnecting.contains("the server closes the stream"),
        "{reconnecting}"
    );
    let server = Server::start(dir.path(), addr).await;
    let reconnected = client.stderr_line("connected to").await;
    assert!(reconnected.contains("backfill_minutes=1"), "{reconnected}");
    assert!(
        reconnected.contains("expansions=author_id"),
        "{reconnected}"
    );
    ingest(
        &server.base,
        format!("{}\n", post(103, "more pizza please")),
    )
    .await;
    let delivered = client.post("103").await;
    assert_eq!(delivered["matching_rules"][0]["tag"], "food");
    assert!(
        !client.stdout_ids.contains(&"101".to_owned()),
        "{:?}",
        client.stdout_ids
    );
    assert_eq!(client.terminate().await, 0);

    // A bad field name is X's 400, named, and not retried.
    let out = sluice(
        &[
            "stream",
            &stream_url,
            "--bearer",
            &token,
            "--tweet-fields",
            "nope",
        ],
        None,
    )
    .await;
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("HTTP 400") && stderr(&out).contains("[nope]"),
        "{}",
        stderr(&out)
    );
    server.stop().await;
}
