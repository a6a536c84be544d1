//! `sluice bench` through the real binary, reading its `--json` report: a short run of each
//! benchmark (PowerTrack, Firehose, Powerstream with identity and gzip) against a server it
//! starts itself completes with nothing lost and reports every figure; the same against a running server given by
//! `--url` over three streams, which is left tidy; a run over three streams; and an
//! interrupted run stops its server; a run against a three-node cluster the bench starts
//! itself (when `nats-server` is installed) loses nothing and stops every process. The v2
//! filtered stream benchmark: over two apps with field expansion, on its own server, on a
//! running server it leaves tidy, and on a two-node cluster. The connections bench: a short
//! run on PowerTrack and on Powerstream reaches every connection and reads the memory.
//! No timing is asserted: this machine is shared.

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
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

/// `sluice bench BENCHMARK RUN… EXTRA… --json`.
fn run_bench(benchmark: &str, run: &[&str], extra: &[&str]) -> Output {
    Command::new(SLUICE)
        .args(["bench", benchmark])
        .args(run)
        .args(extra)
        .arg("--json")
        .env_remove("SLUICE_ADMIN_TOKEN")
        .output()
        .expect("run sluice bench")
}

/// The report of a completed run: stdout is one JSON object.
fn report(output: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("the report is not one JSON object ({e}):\n{stdout}"))
}

/// The verdict line of the report for the part of the goal named `name`.
fn target<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["targets"]
        .as_array()
        .and_then(|targets| targets.iter().find(|t| t["target"] == name))
        .unwrap_or_else(|| panic!("no target {name:?} in {report:#}"))
}

/// Checks the report of a completed short PowerTrack run.
fn check_report(output: &Output) -> Value {
    let report = check_figures(output, "powertrack", None);
    assert_eq!(report["setup"]["rules"], 50, "{report:#}");
    check_pacing(&report, 3);
    assert_eq!(target(&report, "100 connections")["pass"], false);
    report
}

/// Checks that a short run held `connections` connections and sent 200 posts/s for 2 s.
fn check_pacing(report: &Value, connections: u64) {
    assert_eq!(report["setup"]["connections"], connections, "{report:#}");
    assert_eq!(report["pacing"]["rate"], 200.0, "{report:#}");
    assert_eq!(report["pacing"]["duration_s"], 2.0, "{report:#}");
}

/// Checks what every completed short run (400 posts) reports and returns the report: every
/// figure, nothing lost, a sample for every expected delivery, a MISS verdict (the run is
/// far below every target's rate). `cluster` is the node count of a cluster run.
fn check_figures(output: &Output, benchmark: &str, cluster: Option<u64>) -> Value {
    let report = report(output);
    assert_eq!(report["benchmark"], benchmark, "{report:#}");
    assert_eq!(report["server"]["cluster"], json!(cluster), "{report:#}");
    assert!(
        report["machine"]["cores"].as_u64().is_some_and(|n| n > 0),
        "{report:#}"
    );
    assert_eq!(report["workload"]["posts"], 400, "{report:#}");
    // 2 s of sending: two whole seconds, and maybe the start of a third; nothing was lost,
    // so every whole second's posts arrived.
    let by_second = report["p99_ms_by_second"]
        .as_array()
        .expect("p99_ms_by_second is an array");
    assert!((2..=3).contains(&by_second.len()), "{report:#}");
    assert!(
        by_second[..2]
            .iter()
            .all(|p99| p99.as_f64().is_some_and(|ms| ms > 0.0)),
        "{report:#}"
    );
    assert_eq!(report["ingested"]["accepted"], 400, "{report:#}");
    let delivered = &report["delivered"];
    assert!(
        delivered["rate"].is_number() && delivered["posts"].is_number(),
        "{report:#}"
    );
    let latency = &report["latency"];
    for figure in ["p50_ms", "p99_ms", "max_ms"] {
        assert!(latency[figure].is_number(), "{report:#}");
    }
    let loss = &report["loss"];
    assert_eq!(
        (&loss["lost"], &loss["duplicates"], &loss["unexpected"]),
        (&json!(0), &json!(0), &json!(0)),
        "{report:#}"
    );
    assert_eq!(report["disconnects"], json!([]), "{report:#}");
    if cfg!(target_os = "linux") {
        assert!(report["cpu"]["bench"]["percent"].is_number(), "{report:#}");
    }
    // The run is far below the target, so the verdict is a MISS, but nothing is lost.
    assert_eq!(target(&report, "nothing lost")["pass"], true);
    let ingest_target = report["targets"]
        .as_array()
        .and_then(|targets| {
            targets.iter().find(|t| {
                t["target"]
                    .as_str()
                    .is_some_and(|t| t.ends_with(" posts/s ingested"))
            })
        })
        .unwrap_or_else(|| panic!("no ingest target in {report:#}"));
    assert_eq!(ingest_target["pass"], false, "{report:#}");
    assert_eq!(report["verdict"], "MISS", "{report:#}");
    // The number of samples is every expected post on every connection.
    let expected = report["workload"]["deliveries"]
        .as_u64()
        .expect("deliveries");
    assert!(expected > 0, "{report:#}");
    assert_eq!(latency["samples"], expected, "{report:#}");
    report
}

/// A short run of the Firehose or Powerstream benchmark: 400 posts.
const SHORT: [&str; 6] = ["--rate", "200", "--duration", "2s", "--drain", "10s"];

#[test]
fn a_short_firehose_run_delivers_every_post_once_over_20_partitions() {
    let output = run_bench("firehose", &SHORT, &[]);
    let report = check_figures(&output, "firehose", None);
    // 20 partitions: 2 Firehose streams × 10 partitions.
    check_pacing(&report, 20);
    let setup = &report["setup"];
    assert_eq!(
        (&setup["partitions"], &setup["streams"]),
        (&json!(20), &json!(2)),
        "{report:#}"
    );
    // Every post is expected, once.
    assert_eq!(report["workload"]["deliveries"], 400, "{report:#}");
    assert_eq!(report["latency"]["samples"], 400, "{report:#}");
    target(&report, "p99 < 50 ms");
}

/// Checks a short Powerstream run with `encoding`; returns its verdict on the identity
/// encoding target.
fn check_powerstream(encoding: &str) -> Value {
    let output = run_bench(
        "powerstream",
        &SHORT,
        &["--rules", "50", "--encoding", encoding],
    );
    let report = check_figures(&output, "powerstream", None);
    assert_eq!(report["setup"]["rules"], 50, "{report:#}");
    check_pacing(&report, 2);
    assert_eq!(report["setup"]["encoding"], encoding, "{report:#}");
    target(&report, "p99 < 5 ms");
    target(&report, "identity encoding").clone()
}

#[test]
fn a_short_powerstream_run_loses_nothing_and_prints_every_figure() {
    let identity = check_powerstream("identity");
    assert_eq!(identity["pass"], true);
    assert_eq!(identity["detail"], "identity");
}

#[test]
fn a_short_gzip_powerstream_run_loses_nothing_and_misses_the_identity_target() {
    let identity = check_powerstream("gzip");
    assert_eq!(identity["pass"], false);
    assert_eq!(identity["detail"], "gzip");
}

#[test]
fn a_short_run_over_three_streams_gives_each_connection_its_streams_posts() {
    let output = run_bench(
        "powertrack",
        &SHORT,
        &["--streams", "3", "--connections", "6", "--rules", "60"],
    );
    let report = check_figures(&output, "powertrack", None);
    assert_eq!(report["setup"]["rules"], 60, "{report:#}");
    assert_eq!(report["setup"]["streams"], 3, "{report:#}");
    check_pacing(&report, 6);
    // Each stream holds a third of the rules, so a connection gets fewer posts than match
    // some rule: fewer deliveries than 6 × the matching posts.
    let number = |key: &str| report["workload"][key].as_u64().expect("a number");
    let (matching, deliveries) = (number("expected"), number("deliveries"));
    assert!(deliveries < 6 * matching, "{report:#}");
    assert_eq!(deliveries % 2, 0, "2 connections per stream: {report:#}");
}

/// The flags of a short v2 run: 400 posts to 4 connections over 2 apps and 60 rules.
const V2_RUN: [&str; 6] = ["--apps", "2", "--connections", "4", "--rules", "60"];

/// Checks the report of a short v2 run of [`V2_RUN`].
fn check_v2(output: &Output, cluster: Option<u64>) -> Value {
    let report = check_figures(output, "v2", cluster);
    assert_eq!(report["setup"]["rules"], 60, "{report:#}");
    assert_eq!(report["setup"]["streams"], 2, "{report:#}");
    assert_eq!(report["setup"]["encoding"], "gzip", "{report:#}");
    check_pacing(&report, 4);
    // Each app holds half of the rules, and 2 connections read each app's stream.
    let number = |key: &str| report["workload"][key].as_u64().expect("a number");
    assert!(number("deliveries") < 4 * number("expected"), "{report:#}");
    assert_eq!(number("deliveries") % 2, 0, "{report:#}");
    report
}

#[test]
fn a_short_v2_run_with_field_expansion_loses_nothing_over_two_apps() {
    let report = check_v2(&run_bench("v2", &SHORT, &V2_RUN), None);
    let summary = report["setup"]["summary"].as_str().expect("a summary");
    assert!(summary.contains("2 apps"), "{report:#}");
    assert!(summary.contains("expansions=author_id"), "{report:#}");
    target(&report, "p99 < 20 ms");
}

#[test]
fn a_short_v2_run_with_default_fields_loses_nothing() {
    let mut extra = V2_RUN.to_vec();
    extra.push("--no-expansions");
    let report = check_v2(&run_bench("v2", &SHORT, &extra), None);
    let summary = report["setup"]["summary"].as_str().expect("a summary");
    assert!(summary.contains("default fields"), "{report:#}");
}

#[test]
fn v2_apps_that_cannot_hold_the_connections_are_refused() {
    let output = run_bench("v2", &SHORT, &["--apps", "1", "--connections", "3"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("allows 2 connections"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
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
    // With a flag for the server, which the report names (that flags reach the server is
    // `a_server_flag_serve_refuses_stops_the_bench_with_the_servers_reason`).
    let report = check_report(&bench(&["--server-arg=--match-threads=1"]));
    let server = report["server"]["description"].as_str().expect("a server");
    assert!(
        server.starts_with("spawned `sluice serve --match-threads=1` (pid "),
        "{report:#}"
    );
    // The spawned server's CPU is measured per thread group.
    let cpu = &report["cpu"];
    assert_eq!(cpu["nodes"].as_array().map(Vec::len), Some(1), "{report:#}");
    assert!(cpu["server"]["threads"].is_array(), "{report:#}");
}

#[test]
fn a_server_flag_serve_refuses_stops_the_bench_with_the_servers_reason() {
    let output = bench(&["--server-arg=--no-such-flag"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--no-such-flag"), "{stderr}");
    assert!(stderr.contains("exited before listening"), "{stderr}");
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
    let report = check_report(&output);
    assert_eq!(
        report["server"]["description"],
        format!("running server at {base}/")
    );
    // The bench's three streams are gone, its account stays (the help view still lists
    // the Powerstream rule set it may make on first use).
    let account: Value = reqwest::Client::new()
        .get(format!("{base}/admin/accounts/sluice-bench"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .expect("admin call")
        .json()
        .await
        .expect("JSON");
    let existing: Vec<&Value> = account["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .filter(|s| s["exists"] != Value::Bool(false))
        .collect();
    assert!(existing.is_empty(), "{account}");

    let _ = stop.send(());
    server.await.expect("server task").expect("server ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_v2_run_against_a_running_server_deletes_its_apps() {
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
        let mut extra = V2_RUN.to_vec();
        extra.extend(["--url", &url, "--admin-token", ADMIN]);
        run_bench("v2", &SHORT, &extra)
    })
    .await
    .expect("bench thread");
    check_v2(&output, None);
    let admin = |path: &str| {
        reqwest::Client::new()
            .get(format!("{base}/admin/accounts/sluice-bench{path}"))
            .bearer_auth(ADMIN)
            .send()
    };
    // The apps are gone, with their streams and rules.
    let apps: Value = admin("/apps")
        .await
        .expect("admin call")
        .json()
        .await
        .expect("JSON");
    assert_eq!(apps["apps"], Value::Array(Vec::new()), "{apps}");
    let account: Value = admin("")
        .await
        .expect("admin call")
        .json()
        .await
        .expect("JSON");
    // The help view still offers Powerstream, which exists on first use; nothing exists.
    let existing: Vec<&Value> = account["streams"]
        .as_array()
        .unwrap_or_else(|| panic!("{account}"))
        .iter()
        .filter(|s| s["exists"] != Value::Bool(false))
        .collect();
    assert!(existing.is_empty(), "{account}");

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
    assert!(
        nats_server_installed(),
        "nats-server is not installed: this test needs it (apt-get install nats-server)"
    );
    let output = run_bench(
        "powertrack",
        &SHORT,
        &["--cluster", "3", "--rules", "50", "--connections", "6"],
    );
    // Every connection got every post it should, whichever node it read from.
    let report = check_figures(&output, "powertrack", Some(3));
    assert_eq!(report["setup"]["rules"], 50, "{report:#}");
    check_pacing(&report, 6);
    let server = &report["server"];
    assert!(
        server["description"]
            .as_str()
            .is_some_and(|s| s
                .starts_with("cluster of 3 `sluice serve --nats` nodes on this machine (pids ")),
        "{report:#}"
    );
    let nats = server["nats"]["description"]
        .as_str()
        .expect("a NATS server");
    assert!(nats.starts_with("nats-server v"), "{report:#}");
    assert!(nats.contains(" at nats://127.0.0.1:"), "{report:#}");
    let cpu = &report["cpu"];
    assert!(cpu["server"]["percent"].is_number(), "{report:#}");
    assert_eq!(cpu["nodes"].as_array().map(Vec::len), Some(3), "{report:#}");
    assert!(cpu["nats"]["percent"].is_number(), "{report:#}");
    // The same target as one server.
    target(&report, "p99 < 20 ms");

    // The nodes and the NATS server were stopped and reaped before the bench exited.
    let mut pids: Vec<u64> = server["pids"]
        .as_array()
        .expect("pids")
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert_eq!(pids.len(), 3, "{report:#}");
    pids.extend(server["nats"]["pid"].as_u64());
    assert_eq!(pids.len(), 4, "{report:#}");
    if cfg!(target_os = "linux") {
        for pid in pids {
            assert!(
                !std::path::Path::new(&format!("/proc/{pid}")).exists(),
                "process {pid} still runs"
            );
        }
    }
}

#[test]
fn a_short_v2_run_against_a_two_node_cluster_loses_nothing() {
    assert!(
        nats_server_installed(),
        "nats-server is not installed: this test needs it (apt-get install nats-server)"
    );
    let mut extra = V2_RUN.to_vec();
    extra.extend(["--cluster", "2"]);
    // The apps' streams and rules reach node 2 before any connection opens there.
    check_v2(&run_bench("v2", &SHORT, &extra), Some(2));
}

/// Checks a connections report: `opened` connections opened, and every post reached every
/// one of them once, `arrivals` in all, each timed.
fn every_post_arrived(report: &Value, opened: u64, arrivals: u64) {
    assert_eq!(report["opened"], opened, "{report:#}");
    assert_eq!(
        (&report["expected"], &report["received"]),
        (&json!(arrivals), &json!(arrivals)),
        "{report:#}"
    );
    assert_eq!(report["latency"]["samples"], arrivals, "{report:#}");
    assert_eq!(report["verdict"]["complete"], "pass", "{report:#}");
}

/// `sluice bench connections`: 120 connections (PowerTrack: three streams of at most 50;
/// Powerstream: its cap raised) and 3 posts. Every connection gets every post, and the
/// report has the server's memory and threads at 0 and 120 connections and after closing,
/// and the CPU the server and the bench used while delivering. The memory verdict is not
/// asserted: a debug build on a shared machine.
#[test]
fn a_short_connections_run_reaches_every_connection_and_reads_the_servers_memory() {
    for (product, encoding) in [("powertrack", "gzip"), ("powerstream", "identity")] {
        let output = run_bench(
            "connections",
            &["--connections", "120", "--posts", "3"],
            &["--product", product, "--encoding", encoding],
        );
        let report = report(&output);
        assert_eq!(report["api"], product, "{report:#}");
        assert_eq!(report["encoding"], encoding, "{report:#}");
        every_post_arrived(&report, 120, 360);
        // Every post reached every connection before the bench's timeout: for gzip, each
        // connection was woken to decode what it kept during the post's window.
        assert_eq!(report["late_posts"], 0, "{report:#}");
        let memory = &report["server_memory"];
        assert!(
            memory["start_kb"].as_u64().is_some_and(|kb| kb > 0),
            "{report:#}"
        );
        assert_eq!(memory["steps"][0]["connections"], 120, "{report:#}");
        assert!(memory["after_close"]["rss_kb"].is_u64(), "{report:#}");
        // The server's threads, read from its status with the memory.
        for threads in [
            &memory["start_threads"],
            &memory["steps"][0]["threads"],
            &memory["after_close"]["threads"],
        ] {
            assert!(threads.as_u64().is_some_and(|n| n >= 1), "{report:#}");
        }
        assert!(report["bytes_per_connection"].is_u64(), "{report:#}");
        // The CPU each process used while delivering, read from /proc for both.
        let cpu = &report["delivery_cpu"];
        assert!(cpu["server"]["cpu_s"].is_number(), "{report:#}");
        assert!(cpu["bench"]["cpu_s"].is_number(), "{report:#}");
        assert!(
            cpu["window_s"].as_f64().is_some_and(|s| s > 0.0),
            "{report:#}"
        );
    }
}

/// `sluice bench connections --cycles 2`: the connections are opened, given the posts and
/// closed twice, with fresh connections and posts the second time; every cycle's arrivals
/// count, and the second cycle's memory is reported beside the first's.
#[test]
fn a_second_cycle_of_connections_gets_its_own_posts_and_memory_readings() {
    let output = run_bench(
        "connections",
        &["--connections", "60", "--posts", "2", "--cycles", "2"],
        &["--product", "powerstream", "--encoding", "identity"],
    );
    let report = report(&output);
    assert_eq!(report["cycles"], 2, "{report:#}");
    // 2 posts to 60 connections, twice.
    every_post_arrived(&report, 60, 240);
    let memory = &report["server_memory"];
    assert_eq!(memory["steps"][0]["connections"], 60, "{report:#}");
    assert!(memory["after_close"]["rss_kb"].is_u64(), "{report:#}");
    let later = memory["later_cycles"].as_array().expect("later cycles");
    assert_eq!(later.len(), 1, "{report:#}");
    assert_eq!(later[0]["steps"][0]["connections"], 60, "{report:#}");
    assert!(later[0]["after_close"]["rss_kb"].is_u64(), "{report:#}");
    assert_eq!(later[0]["after_close"]["still_open"], 0, "{report:#}");
}

#[test]
fn powertrack_connections_refuse_identity() {
    let output = Command::new(SLUICE)
        .args(["bench", "connections", "--encoding", "identity"])
        .output()
        .expect("run sluice bench");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("PowerTrack streams are gzip only"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
