//! `sluice bench` through the real binary: a short run of each benchmark (PowerTrack,
//! Firehose, Powerstream with identity and gzip) against a server it starts itself completes
//! with nothing lost and prints every figure; the same against a running server given by
//! `--url` over three streams, which is left tidy; a run over three streams; and an
//! interrupted run stops its server; a run against a three-node cluster the bench starts
//! itself (when `nats-server` is installed) loses nothing and stops every process.
//! No timing is asserted: this machine is shared.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_server::auth::AdminToken;
use sluice_server::{AppState, Settings, StoreLocation};
use tokio::net::TcpListener;

const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");
const ADMIN: &str = "bench-test-admin-token";

/// A short run: 400 posts to 3 connections over 50 rules.
const SMALL_RUN: [&str; 10] = [
    "--rate",
    "200",
    "--duration",
    "2s",
    "--connections",
    "3",
    "--rules",
    "50",
    "--drain",
    "10s",
];

fn bench(extra: &[&str]) -> Output {
    run_bench("powertrack", &SMALL_RUN, extra)
}

fn run_bench(benchmark: &str, run: &[&str], extra: &[&str]) -> Output {
    Command::new(SLUICE)
        .args(["bench", benchmark])
        .args(run)
        .args(extra)
        .env_remove("SLUICE_ADMIN_TOKEN")
        .output()
        .expect("run sluice bench")
}

/// The value of the report line `label`.
fn field<'a>(stdout: &'a str, label: &str) -> &'a str {
    stdout
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_at(line.len().min(13));
            (name.trim_end() == label).then_some(value)
        })
        .unwrap_or_else(|| panic!("no {label:?} line in:\n{stdout}"))
}

/// Checks the report of a completed short PowerTrack run.
fn check_report(output: &Output) {
    let stdout = check_figures(output, "powertrack");
    let params = field(&stdout, "parameters");
    assert!(params.starts_with("50 rules"), "{stdout}");
    assert!(
        params.contains("3 connections, 200 posts/s for 2.0 s"),
        "{stdout}"
    );
    assert!(
        stdout.contains("100 connections             MISS"),
        "{stdout}"
    );
}

/// Checks what every completed short run (400 posts) prints and returns its report: every
/// figure, nothing lost, a sample for every expected delivery, a MISS verdict (the run is
/// far below every target's rate).
fn check_figures(output: &Output, benchmark: &str) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert_eq!(
        field(&stdout, "benchmark"),
        format!("sluice bench {benchmark}"),
        "{stdout}"
    );
    assert!(field(&stdout, "machine").contains(" cores, "), "{stdout}");
    assert!(
        field(&stdout, "workload").starts_with("400 posts ("),
        "{stdout}"
    );
    assert!(
        field(&stdout, "ingested").contains("(400 accepted in "),
        "{stdout}"
    );
    assert!(
        field(&stdout, "delivered").contains(" posts/s, all connections ("),
        "{stdout}"
    );
    let latency = field(&stdout, "latency");
    for figure in ["p50 ", "p99 ", "max "] {
        assert!(latency.contains(figure), "{stdout}");
    }
    assert!(
        field(&stdout, "lost").starts_with("0 (expected − received"),
        "{stdout}"
    );
    assert!(
        field(&stdout, "lost").ends_with("duplicates 0; unexpected 0"),
        "{stdout}"
    );
    assert_eq!(field(&stdout, "disconnects"), "0", "{stdout}");
    assert!(field(&stdout, "cpu").contains("bench "), "{stdout}");
    // The run is far below the target, so the verdict is a MISS, but nothing is lost.
    assert!(
        stdout.contains("nothing lost                PASS"),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.contains(" posts/s ingested ") && l.contains(" MISS (")),
        "{stdout}"
    );
    assert_eq!(field(&stdout, "verdict"), "MISS", "{stdout}");
    // The number of samples is every expected post on every connection.
    let workload = field(&stdout, "workload");
    let expected: u64 = workload
        .split(": ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.replace(',', "").parse().ok())
        .unwrap_or_else(|| panic!("no deliveries count in {workload:?}"));
    assert!(expected > 0, "{stdout}");
    assert!(
        latency.contains(&format!("({expected} samples)")),
        "{stdout}"
    );
    stdout
}

/// A short run of the Firehose or Powerstream benchmark: 400 posts.
const SHORT: [&str; 6] = ["--rate", "200", "--duration", "2s", "--drain", "10s"];

#[test]
fn a_short_firehose_run_delivers_every_post_once_over_20_partitions() {
    let output = run_bench("firehose", &SHORT, &[]);
    let stdout = check_figures(&output, "firehose");
    assert!(
        field(&stdout, "parameters").starts_with(
            "20 partitions (2 Firehose streams × 10 partitions), 200 posts/s for 2.0 s"
        ),
        "{stdout}"
    );
    // Every post is expected, once.
    assert!(
        field(&stdout, "workload").ends_with(": 400 deliveries expected"),
        "{stdout}"
    );
    assert!(
        field(&stdout, "latency").contains("(400 samples)"),
        "{stdout}"
    );
    assert!(stdout.contains("p99 < 50 ms"), "{stdout}");
}

/// Checks a short Powerstream run with `encoding`.
fn check_powerstream(encoding: &str) -> String {
    let output = run_bench(
        "powerstream",
        &SHORT,
        &["--rules", "50", "--encoding", encoding],
    );
    let stdout = check_figures(&output, "powerstream");
    let params = field(&stdout, "parameters");
    assert!(params.starts_with("50 rules"), "{stdout}");
    assert!(
        params.contains(&format!(
            "2 connections, {encoding} encoding, 200 posts/s for 2.0 s"
        )),
        "{stdout}"
    );
    assert!(stdout.contains("p99 < 5 ms"), "{stdout}");
    stdout
}

#[test]
fn a_short_powerstream_run_loses_nothing_and_prints_every_figure() {
    let stdout = check_powerstream("identity");
    assert!(
        stdout.contains("identity encoding           PASS (identity)"),
        "{stdout}"
    );
}

#[test]
fn a_short_gzip_powerstream_run_loses_nothing_and_misses_the_identity_target() {
    let stdout = check_powerstream("gzip");
    assert!(
        stdout.contains("identity encoding           MISS (gzip)"),
        "{stdout}"
    );
}

#[test]
fn a_short_run_over_three_streams_gives_each_connection_its_streams_posts() {
    let output = run_bench(
        "powertrack",
        &SHORT,
        &["--streams", "3", "--connections", "6", "--rules", "60"],
    );
    let stdout = check_figures(&output, "powertrack");
    let params = field(&stdout, "parameters");
    assert!(
        params.starts_with("60 rules") && params.contains(" 3 streams"),
        "{stdout}"
    );
    assert!(params.contains("6 connections, 200 posts/s"), "{stdout}");
    // Each stream holds a third of the rules, so a connection gets fewer posts than match
    // some rule: fewer deliveries than 6 × the matching posts.
    let workload = field(&stdout, "workload");
    let number = |s: &str| -> u64 { s.replace(',', "").parse().expect("a number") };
    let matching = number(
        workload
            .split(", ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .expect("matching count"),
    );
    let deliveries = number(
        workload
            .split(": ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .expect("deliveries count"),
    );
    assert!(deliveries < 6 * matching, "{stdout}");
    assert_eq!(deliveries % 2, 0, "2 connections per stream: {stdout}");
}

#[test]
fn more_streams_than_connections_is_refused() {
    let output = run_bench(
        "powertrack",
        &SHORT,
        &["--streams", "4", "--connections", "3"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("every stream needs a connection"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_short_run_against_its_own_server_loses_nothing_and_prints_every_figure() {
    let output = bench(&[]);
    check_report(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        field(&stdout, "server").starts_with("spawned `sluice serve` (pid "),
        "{stdout}"
    );
    // The spawned server's CPU is measured per thread group.
    assert!(field(&stdout, "cpu").starts_with("server "), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_run_against_a_running_server_leaves_it_tidy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let settings = Settings {
        public_url: base.clone(),
        ..Settings::default()
    };
    let state = AppState::open(
        StoreLocation::DataDir(dir.path()),
        settings,
        AdminToken::new(ADMIN),
    )
    .expect("open state");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(sluice_server::serve(listener, None, state, async {
        let _ = stopped.await;
    }));

    let url = base.clone();
    let output = tokio::task::spawn_blocking(move || {
        bench(&["--url", &url, "--admin-token", ADMIN, "--streams", "3"])
    })
    .await
    .expect("bench thread");
    check_report(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        field(&stdout, "server"),
        format!("running server at {base}/")
    );
    // The bench's three streams are gone, its account stays.
    let account: Value = reqwest::Client::new()
        .get(format!("{base}/admin/accounts/sluice-bench"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("admin call")
        .json()
        .await
        .expect("JSON");
    assert_eq!(account["streams"], Value::Array(Vec::new()), "{account}");

    let _ = stop.send(());
    server.await.expect("server task").expect("server ran");
}

#[cfg(target_os = "linux")]
#[test]
fn an_interrupted_run_stops_its_server() {
    let mut child = Command::new(SLUICE)
        .args(["bench", "powertrack", "--rate", "5", "--duration", "10m"])
        .args(["--connections", "2", "--rules", "20"])
        .env_remove("SLUICE_ADMIN_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sluice bench");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let mut server_pid = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    for line in lines.by_ref() {
        let line = line.expect("stderr line");
        if let Some(rest) = line.split_once("(pid ").map(|(_, rest)| rest) {
            server_pid = rest.split(')').next().map(str::to_owned);
        }
        if line.contains("sending ") || Instant::now() > deadline {
            break;
        }
    }
    let server_pid = server_pid.expect("the bench names its server's pid");
    assert!(
        std::path::Path::new(&format!("/proc/{server_pid}")).exists(),
        "the server runs during the bench"
    );
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let status = child.wait().expect("bench exits");
    assert_eq!(status.code(), Some(130));
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("interrupted")), "{rest:?}");
    // The server was killed and reaped before the bench exited.
    assert!(
        !std::path::Path::new(&format!("/proc/{server_pid}")).exists(),
        "server {server_pid} still runs"
    );
}

/// Whether `nats-server` is where `sluice bench --cluster` looks for it: on PATH or in a
/// system dir.
fn nats_server_installed() -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(std::path::PathBuf::from))
        .any(|dir| dir.join("nats-server").is_file())
}

#[test]
fn a_short_run_against_a_three_node_cluster_loses_nothing_and_stops_every_process() {
    if !nats_server_installed() {
        eprintln!("SKIPPED: nats-server not installed");
        return;
    }
    let output = run_bench(
        "powertrack",
        &SHORT,
        &["--cluster", "3", "--rules", "50", "--connections", "6"],
    );
    // Every connection got every post it should, whichever node it read from.
    let stdout = check_figures(&output, "powertrack --cluster 3");
    let params = field(&stdout, "parameters");
    assert!(
        params.starts_with("50 rules") && params.contains("6 connections, 200 posts/s"),
        "{stdout}"
    );
    let server = field(&stdout, "server");
    assert!(
        server.starts_with("cluster of 3 `sluice serve --nats` nodes on this machine (pids "),
        "{stdout}"
    );
    let nats = field(&stdout, "nats");
    assert!(nats.starts_with("nats-server v"), "{stdout}");
    assert!(nats.contains(" at nats://127.0.0.1:"), "{stdout}");
    let cpu = field(&stdout, "cpu");
    assert!(cpu.starts_with("servers "), "{stdout}");
    assert!(cpu.contains(" over 3 nodes ("), "{stdout}");
    assert!(cpu.contains(", nats-server "), "{stdout}");
    // The same target as one server.
    assert!(stdout.contains("p99 < 20 ms"), "{stdout}");

    // The nodes and the NATS server were stopped and reaped before the bench exited.
    let pid_list = |text: &str| -> Vec<String> {
        let inside = text
            .split_once("(pid")
            .and_then(|(_, rest)| rest.split_once(')'))
            .map(|(pids, _)| pids.trim_start_matches('s').trim())
            .unwrap_or_else(|| panic!("no pids in {text:?}"));
        inside.split(", ").map(str::to_owned).collect()
    };
    let mut pids = pid_list(server);
    assert_eq!(pids.len(), 3, "{stdout}");
    pids.extend(pid_list(nats));
    if cfg!(target_os = "linux") {
        for pid in pids {
            assert!(
                !std::path::Path::new(&format!("/proc/{pid}")).exists(),
                "process {pid} still runs"
            );
        }
    }
}
