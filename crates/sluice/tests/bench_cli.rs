//! `sluice bench powertrack` through the real binary: a short run against a server it starts
//! itself completes with nothing lost and prints every figure; the same against a running
//! server given by `--url`, which is left tidy; and an interrupted run stops its server.
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
    Command::new(SLUICE)
        .args(["bench", "powertrack"])
        .args(SMALL_RUN)
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

/// Checks the report of a completed short run.
fn check_report(output: &Output) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(field(&stdout, "machine").contains(" cores, "), "{stdout}");
    let params = field(&stdout, "parameters");
    assert!(params.starts_with("50 rules"), "{stdout}");
    assert!(
        params.contains("3 connections, 200 posts/s for 2.0 s"),
        "{stdout}"
    );
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
    // The run is far below the target, so the verdict is a MISS, on rate, rules and
    // connections, but nothing is lost.
    assert!(
        stdout.contains("nothing lost                PASS"),
        "{stdout}"
    );
    assert!(
        stdout.contains("100 connections             MISS"),
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
    let output =
        tokio::task::spawn_blocking(move || bench(&["--url", &url, "--admin-token", ADMIN]))
            .await
            .expect("bench thread");
    check_report(&output);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        field(&stdout, "server"),
        format!("running server at {base}/")
    );
    // The bench's stream is gone, its account stays.
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
