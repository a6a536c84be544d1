//! `sluice serve` through the real binary: the start banner, `/healthz`, the demo's
//! PowerTrack stream delivering posts with `matching_rules`, clean shutdown on SIGTERM and
//! SIGINT with the operational message on open streams, flag > env > file precedence,
//! HTTPS with the self-signed certificate, what survives a restart (admin token, demo
//! setup, the interception CA), `--intercept` serving X's hosts through `CONNECT`, and a
//! cluster node leaving the list of members when it stops.

use std::fs::File;
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use serde_json::Value;
use sluice_server::cluster::Cluster as _;

const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");
const OPERATIONAL: &str = "This stream has been disconnected for operational reasons.";
const STREAM_PATH: &str = "/stream/powertrack/accounts/demo/publishers/twitter/prod.json";
const EXAMPLE_TAGS: [&str; 7] = [
    "sports",
    "ai",
    "climate",
    "markets",
    "english-media",
    "amor",
    "japanese-links",
];

/// A `sluice serve` process.
struct Server {
    child: Child,
    /// The URL of the banner's `listening on` line.
    url: String,
    stdout: Arc<Mutex<Vec<String>>>,
    stdout_reader: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Starts `sluice serve ARGS` in `dir` with `env` (and no other `SLUICE_*` variable)
    /// and waits for the banner's first line. Logs go to `dir/<name>.log`.
    fn start(dir: &Path, name: &str, args: &[&str], env: &[(&str, &str)]) -> Server {
        let log = File::create(dir.join(format!("{name}.log"))).expect("create log file");
        let mut command = Command::new(SLUICE);
        command
            .arg("serve")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .env("RUST_LOG", "info");
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("SLUICE_") {
                command.env_remove(key);
            }
        }
        command.envs(env.iter().copied());
        let mut child = command.spawn().expect("start sluice serve");
        let pipe = child.stdout.take().expect("stdout is piped");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let (first, first_line) = std::sync::mpsc::channel();
        let lines = stdout.clone();
        let stdout_reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if let Some((_, url)) = line.split_once(" listening on ") {
                    let _ = first.send(url.to_owned());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let url = first_line
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                let log = std::fs::read_to_string(dir.join(format!("{name}.log")));
                panic!("no banner from sluice serve {args:?}; log: {log:?}")
            });
        Server {
            child,
            url,
            stdout,
            stdout_reader: Some(stdout_reader),
        }
    }

    /// Sends `signal` (`TERM`, `INT`) to the process.
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success());
    }

    /// Waits (at most 20 s) for the process to end; returns its status and whole stdout.
    fn wait(mut self) -> (ExitStatus, Vec<String>) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("poll child") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("sluice serve did not exit in time");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(reader) = self.stdout_reader.take() {
            reader.join().expect("stdout reader");
        }
        let lines = std::mem::take(&mut *self.stdout.lock().unwrap());
        (status, lines)
    }

    /// SIGTERM, then [`Server::wait`], asserting exit code 0.
    fn stop(self) -> Vec<String> {
        self.signal("TERM");
        let (status, stdout) = self.wait();
        assert_eq!(status.code(), Some(0), "{stdout:?}");
        stdout
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A failed test must not leave the server running.
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn client() -> reqwest::Client {
    // The binary's reqwest uses rustls without a default provider; plain HTTP needs none,
    // but the client is built once here the same way everywhere.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

fn tempdir() -> tempfile::TempDir {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("serve_cli");
    std::fs::create_dir_all(&root).expect("create test root");
    tempfile::tempdir_in(root).expect("create test dir")
}

/// Status of `GET /admin/accounts/{account}` with `token`: 401 when the token is wrong.
async fn account_status(base: &str, account: &str, token: &str) -> (u16, Value) {
    let response = client()
        .get(format!("{base}/admin/accounts/{account}"))
        .bearer_auth(token)
        .send()
        .await
        .expect("admin request");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// Decodes a gzip stream chunk by chunk (each chunk is sync-flushed by the server).
struct Gunzip {
    decoder: flate2::write::GzDecoder<Vec<u8>>,
}

impl Gunzip {
    fn new() -> Self {
        Self {
            decoder: flate2::write::GzDecoder::new(Vec::new()),
        }
    }

    fn feed(&mut self, chunk: &[u8]) {
        self.decoder.write_all(chunk).expect("valid gzip");
        self.decoder.flush().expect("valid gzip");
    }

    /// Everything decoded, as text: for a stream that has ended.
    fn text(&self) -> String {
        String::from_utf8(self.decoder.get_ref().clone()).expect("UTF-8 stream")
    }

    /// The decoded lines that are whole so far (through the last `\r\n`), as text. A
    /// chunk as the client receives it may end inside a message, even inside a character.
    fn whole_lines(&self) -> &str {
        let decoded = self.decoder.get_ref();
        let end = decoded
            .windows(2)
            .rposition(|w| w == b"\r\n")
            .map_or(0, |i| i + 2);
        std::str::from_utf8(&decoded[..end]).expect("UTF-8 stream")
    }
}

/// Connects to the demo stream at `path` with gzip; reads until `posts` messages
/// arrived, sends `signal`, reads to the end; returns the matched posts and the decoded
/// remainder after them.
async fn stream_until_signal(
    server: &Server,
    path: &str,
    posts: usize,
    signal: &str,
) -> (Vec<Value>, String) {
    let response = client()
        .get(format!("{}{path}", server.url))
        .basic_auth("demo", Some("demo"))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .expect("connect to the stream");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response
            .headers()
            .get("content-encoding")
            .map(|v| v.to_str().unwrap()),
        Some("gzip")
    );
    let mut body = response.bytes_stream();
    let mut gunzip = Gunzip::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let matched = loop {
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .expect("posts arrive in time")
            .expect("the stream stays open")
            .expect("chunk");
        gunzip.feed(&chunk);
        let matched: Vec<Value> = gunzip
            .whole_lines()
            .split("\r\n")
            .filter(|line| !line.is_empty())
            .map(|line| serde_json::from_str(line).expect("each line is JSON"))
            .collect();
        if matched.len() >= posts {
            break matched;
        }
    };
    let seen = gunzip.whole_lines().len();
    server.signal(signal);
    while let Some(chunk) = tokio::time::timeout_at(deadline, body.next())
        .await
        .expect("the stream ends in time")
    {
        gunzip.feed(&chunk.expect("chunk"));
    }
    let rest = gunzip.text()[seen..].to_owned();
    (matched, rest)
}

/// Checks the demo stream and a clean shutdown by `signal`.
async fn demo_stream_then_shutdown(signal: &str) {
    let dir = tempdir();
    let server = Server::start(
        dir.path(),
        "server",
        &["--demo", "--demo-rate", "400", "--listen", "127.0.0.1:0"],
        &[],
    );
    assert!(
        server.url.starts_with("http://127.0.0.1:"),
        "{}",
        server.url
    );
    let health = client()
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(health.text().await.unwrap(), r#"{"status":"ok"}"#);

    let server_url = server.url.clone();
    let (posts, rest) = stream_until_signal(&server, STREAM_PATH, 5, signal).await;
    for post in &posts {
        assert!(post["id_str"].is_string(), "{post}");
        let rules = post["matching_rules"].as_array().expect("matching_rules");
        assert!(!rules.is_empty());
        for rule in rules {
            let tag = rule["tag"].as_str().expect("demo rules have tags");
            assert!(EXAMPLE_TAGS.contains(&tag), "{tag}");
            assert_eq!(rule["id_str"], rule["id"].as_u64().unwrap().to_string());
        }
    }
    // The shutdown message is the last line; matched posts may come before it.
    let last = rest
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .last()
        .expect("a closing line")
        .to_owned();
    let last: Value = serde_json::from_str(&last).expect("closing line is JSON");
    assert_eq!(last["error"]["message"], OPERATIONAL, "{last}");

    let (status, banner) = server.wait();
    assert_eq!(status.code(), Some(0));
    // The banner says where the console is and how to sign in to it.
    let console = format!("{}/console/", server_url);
    let token_file = dir.path().join("sluice-data").join("admin-token");
    assert!(
        banner.iter().any(|l| l
            == &format!(
                "console {console} (the operator signs in with the admin token, kept in {})",
                token_file.display()
            )),
        "{banner:?}"
    );
    assert!(
        banner.iter().any(|l| l.trim()
            == format!(
                "Console            {console}  (customer: account demo, username demo, password demo)"
            )),
        "{banner:?}"
    );
}

/// The demo deletes one post in 50 a moment after it was published: X's `delete` events
/// on the demo's compliance firehose, listed in the banner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_compliance_firehose_carries_deletes_of_demo_posts() {
    let dir = tempdir();
    let server = Server::start(
        dir.path(),
        "server",
        &["--demo", "--demo-rate", "400", "--listen", "127.0.0.1:0"],
        &[],
    );
    let path = "/stream/compliance/accounts/demo/publishers/twitter/prod.json?partition=1";
    let (events, rest) = stream_until_signal(&server, path, 2, "TERM").await;
    for event in &events {
        let status = &event["delete"]["status"];
        let id = status["id_str"].as_str().expect("a delete event");
        assert_eq!(status["id"].as_u64().unwrap().to_string(), id, "{event}");
        assert!(status["user_id_str"].is_string(), "{event}");
        assert!(event["delete"]["timestamp_ms"].is_string(), "{event}");
        assert_eq!(sluice_model::sampling::partition(id.parse().unwrap(), 8), 1);
    }
    assert!(rest.contains(OPERATIONAL), "{rest}");
    let (status, banner) = server.wait();
    assert_eq!(status.code(), Some(0));
    assert!(
        banner
            .iter()
            .any(|l| l.trim_start().starts_with("Compliance ")),
        "{banner:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_stream_delivers_matches_and_sigterm_stops_cleanly() {
    demo_stream_then_shutdown("TERM").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_stops_cleanly_with_the_operational_message() {
    demo_stream_then_shutdown("INT").await;
}

/// A cluster node stopped with SIGTERM takes itself off the list of members before the
/// process exits, so the other nodes stop listing it at once (not when its announcement
/// expires, 20 s later). The observer is a node of the same cluster in this process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_node_stopped_by_sigterm_leaves_the_list_of_members_before_it_exits() {
    let nats = sluice_testkit::Nats::start();
    let observer = sluice_testkit::Node::start(&nats, "east").await;
    let dir = tempdir();
    let url = nats.url();
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--datacenter",
        "west",
        "--nats",
        &url,
    ];
    let node = Server::start(dir.path(), "west", &args, &[]);
    let listed = Instant::now() + Duration::from_secs(20);
    while observer.cluster.members().await.map_or(0, |m| m.len()) != 2 {
        assert!(Instant::now() < listed, "the binary's node never joined");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::task::spawn_blocking(move || node.stop())
        .await
        .unwrap();
    let members = observer.cluster.members().await.unwrap();
    let datacenters: Vec<&str> = members.iter().map(|m| m.datacenter.as_str()).collect();
    assert_eq!(datacenters, ["east"]);
    observer.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flags_win_over_env_which_wins_over_the_config_file() {
    let dir = tempdir();
    let config = dir.path().join("sluice.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\ndata_dir = \"file-data\"\nadmin_token = \"from-file\"\ndemo = true\ndemo_rate = 5\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let env_data = dir.path().join("env-data");
    let flag_data = dir.path().join("flag-data");
    let env_data = env_data.to_str().unwrap();
    let flag_data = flag_data.to_str().unwrap();

    // File only: its token, its (relative) data dir, its demo.
    let server = Server::start(dir.path(), "file", &["--config", config], &[]);
    assert_eq!(
        account_status(&server.url, "demo", "from-file").await.0,
        200
    );
    server.stop();
    assert!(dir.path().join("file-data/sluice.db").exists());
    assert!(!dir.path().join("file-data/admin-token").exists());

    // The environment overrides the file (config path from the environment too).
    let env = [
        ("SLUICE_CONFIG", config),
        ("SLUICE_ADMIN_TOKEN", "from-env"),
        ("SLUICE_DATA_DIR", env_data),
        ("SLUICE_DEMO", "false"),
    ];
    let server = Server::start(dir.path(), "env", &[], &env);
    assert_eq!(
        account_status(&server.url, "demo", "from-file").await.0,
        401
    );
    assert_eq!(account_status(&server.url, "demo", "from-env").await.0, 404);
    server.stop();
    assert!(Path::new(env_data).join("sluice.db").exists());

    // Flags override both.
    let flags = [
        "--admin-token",
        "from-flag",
        "--data-dir",
        flag_data,
        "--demo",
    ];
    let server = Server::start(dir.path(), "flags", &flags, &env);
    assert_eq!(account_status(&server.url, "demo", "from-env").await.0, 401);
    assert_eq!(
        account_status(&server.url, "demo", "from-flag").await.0,
        200
    );
    server.stop();
    assert!(Path::new(flag_data).join("sluice.db").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_keep_the_admin_token_and_the_demo_setup() {
    let dir = tempdir();
    let args = ["--demo", "--demo-rate", "5", "--listen", "127.0.0.1:0"];
    let first = Server::start(dir.path(), "first", &args, &[]);
    let first_url = first.url.clone();
    let first_out = first.stop();
    let token = first_out
        .iter()
        .find_map(|l| l.strip_prefix("admin token: "))
        .expect("the generated token is printed")
        .to_owned();
    let stored = std::fs::read_to_string(dir.path().join("sluice-data/admin-token")).unwrap();
    assert_eq!(stored.trim(), token);
    let bearer = |out: &[String]| -> String {
        out.iter()
            .find_map(|l| l.split_once("Authorization: Bearer ").map(|(_, t)| t))
            .and_then(|t| t.split([')', '\'']).next())
            .expect("the Powerstream token is printed")
            .to_owned()
    };
    let first_bearer = bearer(&first_out);
    assert!(
        first_out
            .iter()
            .any(|l| l.contains("curl --compressed -u demo:demo"))
    );
    assert!(first_out.iter().any(|l| l.contains(&first_url)));

    let v2_bearer = |out: &[String]| -> String {
        out.iter()
            .find(|l| l.contains("X API v2"))
            .and_then(|l| l.split_once("Authorization: Bearer "))
            .map(|(_, t)| t.trim_end_matches(')').to_owned())
            .expect("the demo app's token is printed")
    };
    let first_v2 = v2_bearer(&first_out);

    let second = Server::start(dir.path(), "second", &args, &[]);
    let (status, account) = account_status(&second.url, "demo", &token).await;
    assert_eq!(status, 200, "{account}");
    // The demo app's token still works, and its example rules are there.
    let rules = client()
        .get(format!("{}/2/tweets/search/stream/rules", second.url))
        .bearer_auth(&first_v2)
        .send()
        .await
        .expect("v2 rules");
    assert_eq!(rules.status().as_u16(), 200);
    let rules: Value = rules.json().await.unwrap();
    assert_eq!(rules["meta"]["result_count"], 2, "{rules}");
    let second_out = second.stop();
    assert_eq!(v2_bearer(&second_out), first_v2);
    assert!(
        !second_out.iter().any(|l| l.contains(&token)),
        "the admin token is shown only when generated: {second_out:?}"
    );
    assert_eq!(bearer(&second_out), first_bearer);

    // The second start created nothing new.
    assert_eq!(account["users"], serde_json::json!(["demo"]));
    assert_eq!(account["tokens"].as_array().unwrap().len(), 1, "{account}");
    let streams = account["streams"].as_array().unwrap();
    // The streams that exist (the help view also offers the app's other v2 streams,
    // made on first use).
    let mut products: Vec<&str> = streams
        .iter()
        .filter(|s| s["exists"] != serde_json::json!(false))
        .map(|s| s["product"].as_str().unwrap())
        .collect();
    products.sort_unstable();
    assert_eq!(
        products,
        [
            "compliance",
            "decahose",
            "powerstream",
            "powertrack",
            "v2-filtered"
        ]
    );
    let powertrack = streams
        .iter()
        .find(|s| s["product"] == "powertrack")
        .unwrap();
    assert_eq!(powertrack["rule_count"], EXAMPLE_TAGS.len());
    assert_eq!(powertrack["label"], "prod");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_self_signed_serves_https_with_the_written_certificate() {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, ServerName};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let dir = tempdir();
    let server = Server::start(
        dir.path(),
        "tls",
        &["--tls-self-signed", "--listen", "127.0.0.1:0"],
        &[],
    );
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    let addr = server.url.trim_start_matches("https://").to_owned();
    let cert_path = dir.path().join("sluice-data/tls/cert.pem");
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&cert_path).expect("cert.pem written") {
        roots.add(cert.expect("PEM certificate")).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    for name in ["localhost", "127.0.0.1"] {
        let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let server_name = ServerName::try_from(name.to_owned()).unwrap();
        let mut tls = connector
            .connect(server_name, tcp)
            .await
            .unwrap_or_else(|e| panic!("TLS handshake as {name}: {e}"));
        tls.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        tls.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with(r#"{"status":"ok"}"#), "{response}");
    }
    // Plain HTTP on the TLS listener gets no HTTP answer.
    let plain = client().get(format!("http://{addr}/healthz")).send().await;
    assert!(plain.is_err());
    let out = server.stop();
    assert!(
        out.iter()
            .any(|l| l.contains(&cert_path.display().to_string())),
        "{out:?}"
    );
}

#[test]
fn help_explains_every_flag_and_its_environment_variable() {
    let output = Command::new(SLUICE)
        .args(["serve", "--help"])
        .output()
        .expect("run sluice serve --help");
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for flag in [
        "listen",
        "data-dir",
        "tls-cert",
        "tls-key",
        "tls-self-signed",
        "datacenter",
        "demo",
        "demo-rate",
        "admin-token",
        "intercept",
        "config",
    ] {
        assert!(help.contains(&format!("--{flag}")), "--{flag} missing");
        let env = format!("SLUICE_{}", flag.to_uppercase().replace('-', "_"));
        assert!(help.contains(&env), "{env} missing");
    }
    assert!(help.contains("SIGTERM"));
}

/// An HTTPS client as a program behind `HTTPS_PROXY` is: every `https://` URL goes through a
/// `CONNECT` tunnel opened at `proxy`, and only the certificates in `ca` are trusted.
type ProxiedClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<
        hyper_util::client::legacy::connect::proxy::Tunnel<
            hyper_util::client::legacy::connect::HttpConnector,
        >,
    >,
    http_body_util::Full<bytes::Bytes>,
>;

fn proxied_client(proxy: &str, ca: &Path) -> ProxiedClient {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;

    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("ca.pem written") {
        roots.add(cert.expect("PEM certificate")).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tunnel = hyper_util::client::legacy::connect::proxy::Tunnel::new(
        proxy.parse().expect("proxy URL"),
        hyper_util::client::legacy::connect::HttpConnector::new(),
    );
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .wrap_connector(tunnel);
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(https)
}

/// `method url` through `client` with `headers`; the status and the whole body.
async fn proxied(
    client: &ProxiedClient,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String) {
    use http_body_util::BodyExt as _;

    let mut request = hyper::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.to_owned(),
        )))
        .unwrap();
    let response = client
        .request(request)
        .await
        .unwrap_or_else(|e| panic!("{method} {url} through the proxy: {e:?}"));
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (
        status,
        String::from_utf8(body.to_vec()).expect("UTF-8 body"),
    )
}

/// Sends `request` (a raw HTTP/1.1 head) to `addr`, returns what comes back until the
/// server closes or one second passes without more.
async fn raw_exchange(addr: &str, request: &str) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(1), tcp.read(&mut buf)).await {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(answer).expect("UTF-8 answer")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intercept_serves_x_hosts_through_connect_with_its_own_ca() {
    let dir = tempdir();
    let server = Server::start(
        dir.path(),
        "intercept",
        &["--intercept", "--demo", "--listen", "127.0.0.1:0"],
        &[("SLUICE_ADMIN_TOKEN", "intercept-admin-token")],
    );
    let addr = server.url.trim_start_matches("http://").to_owned();
    let token = "intercept-admin-token";
    let ca = dir.path().join("sluice-data/tls/ca.pem");
    {
        use std::os::unix::fs::PermissionsExt as _;
        let key = dir.path().join("sluice-data/tls/ca-key.pem");
        let mode = std::fs::metadata(&key)
            .expect("CA key written")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the CA key is the owner's only");
    }
    let client = proxied_client(&server.url, &ca);

    // The hosts tweepy and twarc hard-code, and X's current one, reach sluice's router.
    for host in ["api.twitter.com", "api.x.com", "gnip-api.twitter.com"] {
        let (status, body) =
            proxied(&client, "GET", &format!("https://{host}/healthz"), &[], "").await;
        assert_eq!(
            (status, body.as_str()),
            (200, r#"{"status":"ok"}"#),
            "{host}"
        );
    }
    // The same auth and state: an account made through the tunnel is there on the listener.
    let bearer = format!("Bearer {token}");
    let (status, _) = proxied(
        &client,
        "PUT",
        "https://api.x.com/admin/accounts/acme",
        &[],
        "{}",
    )
    .await;
    assert_eq!(status, 401, "the admin API still wants its token");
    let headers = [
        ("authorization", bearer.as_str()),
        ("content-type", "application/json"),
    ];
    let (status, body) = proxied(
        &client,
        "PUT",
        "https://api.x.com/admin/accounts/acme",
        &headers,
        "{}",
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(account_status(&server.url, "acme", token).await.0, 200);

    // Plain-HTTP requests in absolute form (a client's http:// URLs through HTTP_PROXY).
    let plain = reqwest::Client::builder()
        .proxy(reqwest::Proxy::http(&server.url).unwrap())
        .build()
        .unwrap();
    let health = plain
        .get("http://api.twitter.com/healthz")
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(health.text().await.unwrap(), r#"{"status":"ok"}"#);

    // Any other target is refused in the admin error shape; a target that is not
    // host:port is a bad request.
    for (target, status) in [
        ("example.com:443", "403"),
        ("api.twitter.com:80", "403"),
        ("api.twitter.com", "400"),
    ] {
        let answer = raw_exchange(
            &addr,
            &format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n"),
        )
        .await;
        let (head, body) = answer.split_once("\r\n\r\n").expect("a whole answer");
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status} ")),
            "{target}: {answer}"
        );
        let body: Value = serde_json::from_str(body).expect("JSON error body");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(target),
            "{target}: {body}"
        );
    }

    // The demo stream flows through a tunnel, and SIGTERM ends it with the operational
    // message and a clean exit, tunnels included.
    let stream = format!("https://gnip-stream.twitter.com{STREAM_PATH}");
    let request = hyper::Request::get(&stream)
        .header("authorization", "Basic ZGVtbzpkZW1v")
        .header("accept-encoding", "gzip")
        .body(http_body_util::Full::default())
        .unwrap();
    let response = client
        .request(request)
        .await
        .expect("stream through the tunnel");
    assert_eq!(response.status().as_u16(), 200);
    let mut body = response.into_body();
    let mut gunzip = Gunzip::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !gunzip.whole_lines().contains("matching_rules") {
        gunzip.feed(&next_chunk(&mut body, deadline).await.expect("posts arrive"));
    }
    server.signal("TERM");
    while let Some(chunk) = next_chunk(&mut body, deadline).await {
        gunzip.feed(&chunk);
    }
    let text = gunzip.text();
    let last = text.split("\r\n").filter(|l| !l.is_empty()).last().unwrap();
    let last: Value = serde_json::from_str(last).expect("closing line is JSON");
    assert_eq!(last["error"]["message"], OPERATIONAL, "{last}");
    let (status, stdout) = server.wait();
    assert_eq!(status.code(), Some(0));
    let log = std::fs::read_to_string(dir.path().join("intercept.log")).unwrap();
    assert!(
        log.contains("all connections closed"),
        "tunnels drain: {log}"
    );
    assert!(
        log.contains("refused CONNECT"),
        "refusals are logged: {log}"
    );
    assert!(
        stdout
            .iter()
            .any(|l| l.contains(&ca.display().to_string()) && l.contains("trust the CA")),
        "the banner says where the CA is: {stdout:?}"
    );
    assert!(
        stdout.iter().any(|l| l.contains("REQUESTS_CA_BUNDLE=")),
        "{stdout:?}"
    );
}

/// The next data of a streaming body; `None` at its end.
async fn next_chunk(
    body: &mut hyper::body::Incoming,
    deadline: tokio::time::Instant,
) -> Option<bytes::Bytes> {
    use http_body_util::BodyExt as _;
    loop {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .expect("the stream moves in time")?
            .expect("a body frame");
        if let Ok(data) = frame.into_data() {
            return Some(data);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ca_survives_restarts_and_connect_needs_intercept() {
    let dir = tempdir();
    let ca = dir.path().join("sluice-data/tls/ca.pem");
    let args = ["--intercept", "--listen", "127.0.0.1:0"];
    let first = Server::start(dir.path(), "first", &args, &[]);
    let written = std::fs::read(&ca).expect("ca.pem written");
    first.stop();

    // Without --intercept, CONNECT is an unknown request like any other.
    let plain = Server::start(dir.path(), "plain", &["--listen", "127.0.0.1:0"], &[]);
    let addr = plain.url.trim_start_matches("http://").to_owned();
    let target = "api.twitter.com:443";
    let answer = raw_exchange(
        &addr,
        &format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n"),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    plain.stop();

    // A client that trusted the first start's CA trusts the leaves of a later start.
    let again = Server::start(dir.path(), "again", &args, &[]);
    assert_eq!(std::fs::read(&ca).unwrap(), written, "the same CA");
    let client = proxied_client(&again.url, &ca);
    let (status, _) = proxied(&client, "GET", "https://api.twitter.com/healthz", &[], "").await;
    assert_eq!(status, 200);
    again.stop();
}
