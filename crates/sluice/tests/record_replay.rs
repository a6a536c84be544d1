//! `sluice ingest --pace` and `sluice record` through the real binary, against servers
//! running in this process: a recorded file arrives on a PowerTrack stream in its order
//! and no faster than its pace (times are only ever checked from below, or against the
//! recorded span itself), `--loop` passes carry new, consistent ids that are all delivered,
//! bad `--pace` values are clap errors, and a PowerTrack stream recorded from one server
//! replays into another's.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sluice_server::Settings;
use sluice_testkit::{ADMIN, Line, StreamClient, TestServer, id_of};

const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");
/// X's Snowflake epoch (2010-11-04T01:42:54.657Z).
const SNOWFLAKE_EPOCH_MS: u64 = 1_288_834_974_657;
/// 2018-10-10T20:19:24Z, the first post's time.
const T0_MS: u64 = 1_539_202_764_000;

/// A server with a PowerTrack stream whose one rule matches every test post (`pace`), and
/// a heartbeat short enough for the test stream client's read timeout.
async fn server_with_rule() -> (TestServer, String) {
    let settings = Settings {
        heartbeat: Duration::from_secs(1),
        ..Settings::default()
    };
    let server = TestServer::start(settings).await;
    let stream = server.provision("powertrack").await;
    let rules_url = stream["rules_url"].as_str().expect("rules_url");
    let response = server
        .http
        .post(rules_url)
        .basic_auth("alice", Some("secret"))
        .json(&json!({"rules": [{"value": "pace", "tag": "all"}]}))
        .send()
        .await
        .expect("add rule");
    assert!(response.status().is_success(), "{}", response.status());
    let stream_url = stream["stream_url"]
        .as_str()
        .expect("stream_url")
        .to_owned();
    (server, stream_url)
}

/// A post at `ms` with a Snowflake id of that time (low bits `seq`), `timestamp_ms` and
/// `created_at` agreeing.
fn post_at(ms: u64, seq: u64, text: &str) -> String {
    let id = ((ms - SNOWFLAKE_EPOCH_MS) << 22) | seq;
    let created_at = time::OffsetDateTime::from_unix_timestamp((ms / 1000) as i64)
        .expect("valid time")
        .format(time::macros::format_description!(
            "[weekday repr:short] [month repr:short] [day] [hour]:[minute]:[second] +0000 [year]"
        ))
        .expect("formats");
    json!({
        "created_at": created_at,
        "id": id,
        "id_str": id.to_string(),
        "timestamp_ms": ms.to_string(),
        "text": text,
        "user": {"id": 12, "id_str": "12", "screen_name": "jack"},
        "entities": {"hashtags": [], "urls": [], "user_mentions": [], "symbols": []},
        "lang": "en"
    })
    .to_string()
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("sluice-pace-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("temp dir")
}

fn write_posts(dir: &Path, posts: &[String]) -> PathBuf {
    let path = dir.join("recorded.ndjson");
    std::fs::write(&path, posts.join("\n") + "\n").expect("write the file");
    path
}

/// Runs the binary to completion off the async workers; returns its output and how long
/// it ran.
async fn sluice(args: Vec<String>) -> (Output, Duration) {
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let output = Command::new(SLUICE)
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .expect("run sluice");
        (output, started.elapsed())
    })
    .await
    .expect("runner thread")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn summary(output: &Output) -> Value {
    let text = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn ingest_args(file: &Path, base: &str, pace: &str) -> Vec<String> {
    [
        "ingest",
        file.to_str().expect("UTF-8 path"),
        "--url",
        base,
        "--token",
        ADMIN,
        "--pace",
        pace,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// Reads posts off the stream until `count` have arrived (within 20 s); returns each with
/// when it came.
async fn arrivals(stream: &mut StreamClient, count: usize) -> Vec<(Value, Instant)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut got = Vec::new();
    while got.len() < count {
        assert!(
            Instant::now() < deadline,
            "{} of {count} posts arrived: {got:?}",
            got.len()
        );
        if let Some(Line::Message(message)) = stream.next_line().await {
            got.push((message, Instant::now()));
        }
    }
    got
}

fn path_of(stream_url: &str) -> String {
    let url = url::Url::parse(stream_url).expect("stream URL");
    url.path().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pace_original_sends_each_post_when_due_and_in_order() {
    let dir = temp_dir();
    let (server, stream_url) = server_with_rule().await;
    let mut stream = server.gnip_connect(&path_of(&stream_url)).await;
    let posts: Vec<String> = [0, 200, 400]
        .iter()
        .enumerate()
        .map(|(i, ms)| post_at(T0_MS + ms, i as u64, &format!("pace post {i}")))
        .collect();
    let file = write_posts(dir.path(), &posts);

    let run = tokio::spawn(sluice(ingest_args(&file, &server.base, "original")));
    let got = arrivals(&mut stream, 3).await;
    let (output, took) = run.await.expect("ingest task");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        summary(&output),
        json!({"sent": 3, "accepted": 3, "rejected": 0})
    );
    let texts: Vec<&str> = got
        .iter()
        .map(|(m, _)| m["text"].as_str().expect("text"))
        .collect();
    assert_eq!(texts, ["pace post 0", "pace post 1", "pace post 2"]);
    // At the recorded pace the file takes at least its 400 ms span, and the posts arrive
    // spread over it (well apart, whatever the delivery jitter).
    assert!(took >= Duration::from_millis(400), "{took:?}");
    let spread = got[2].1 - got[0].1;
    assert!(spread >= Duration::from_millis(300), "{spread:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pace_10x_is_ten_times_faster_and_bad_paces_are_refused() {
    let dir = temp_dir();
    let (server, stream_url) = server_with_rule().await;
    let mut stream = server.gnip_connect(&path_of(&stream_url)).await;
    // 3 s recorded: 300 ms at 10x.
    let posts: Vec<String> = [0, 1500, 3000]
        .iter()
        .enumerate()
        .map(|(i, ms)| post_at(T0_MS + ms, i as u64, &format!("pace fast {i}")))
        .collect();
    let file = write_posts(dir.path(), &posts);
    let run = tokio::spawn(sluice(ingest_args(&file, &server.base, "10x")));
    let got = arrivals(&mut stream, 3).await;
    let (output, took) = run.await.expect("ingest task");
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let texts: Vec<&str> = got
        .iter()
        .map(|(m, _)| m["text"].as_str().expect("text"))
        .collect();
    assert_eq!(texts, ["pace fast 0", "pace fast 1", "pace fast 2"]);
    assert!(took >= Duration::from_millis(300), "{took:?}");
    // Well under the recorded 3 s (a bound ten times the expected time).
    assert!(took < Duration::from_secs(3), "{took:?}");

    for bad in ["fast", "10", "0x", "1.5"] {
        let (output, _) = sluice(ingest_args(&file, &server.base, bad)).await;
        assert_eq!(output.status.code(), Some(2), "{bad}: {}", stderr(&output));
        let err = stderr(&output);
        assert!(
            err.contains("--pace") && err.contains("such as 10x or 0.5x"),
            "{bad}: {err}"
        );
    }
    // --loop needs --pace, and a file to read again.
    let mut no_pace = ingest_args(&file, &server.base, "original");
    no_pace.truncate(6);
    no_pace.push("--loop".to_owned());
    let (output, _) = sluice(no_pace).await;
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let mut from_stdin = ingest_args(Path::new("-"), &server.base, "original");
    from_stdin.push("--loop".to_owned());
    let (output, _) = sluice(from_stdin).await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("not stdin"), "{}", stderr(&output));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paced_lines_are_reported_by_file_line_and_events_keep_their_time() {
    let dir = temp_dir();
    let (server, _) = server_with_rule().await;
    let deleted = (T0_MS - SNOWFLAKE_EPOCH_MS) << 22;
    let lines = [
        post_at(T0_MS, 0, "pace first"),
        String::new(),
        "this is not json".to_owned(),
        json!({"delete": {"status": {"id": deleted, "id_str": deleted.to_string(),
                                     "user_id": 12, "user_id_str": "12"},
                          "timestamp_ms": (T0_MS + 600).to_string()}})
        .to_string(),
        post_at(T0_MS + 300, 1, "pace last"),
    ];
    let file = write_posts(dir.path(), &lines);
    let (output, took) = sluice(ingest_args(&file, &server.base, "original")).await;
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert_eq!(
        summary(&output),
        json!({"sent": 4, "accepted": 3, "rejected": 1})
    );
    let err = stderr(&output);
    assert!(
        err.lines()
            .any(|l| l.starts_with("sluice ingest: line 3: ") && l.ends_with("this is not json")),
        "{err}"
    );
    // The event is due at its timestamp_ms, 600 ms after the first post (the post after it,
    // timed earlier, follows it at once); an event read without its time would have gone
    // with the line before it, and the file would have taken 300 ms.
    assert!(took >= Duration::from_millis(600), "{took:?}");
    server.stop().await;
}

/// The epoch milliseconds of a post's `created_at` (whole seconds).
fn created_at_ms(post: &Value) -> u64 {
    let text = post["created_at"].as_str().expect("created_at");
    let at = sluice_model::ingest_line::parse_created_at(text).expect("X's format");
    (at.assume_utc().unix_timestamp() * 1000) as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loop_passes_carry_new_consistent_ids_that_are_all_delivered() {
    let dir = temp_dir();
    let (server, stream_url) = server_with_rule().await;
    let mut stream = server.gnip_connect(&path_of(&stream_url)).await;
    let posts: Vec<String> = [0, 100, 200]
        .iter()
        .enumerate()
        .map(|(i, ms)| post_at(T0_MS + ms, 7 + i as u64, &format!("pace loop {i}")))
        .collect();
    let file = write_posts(dir.path(), &posts);
    let mut args = ingest_args(&file, &server.base, "10x");
    args.push("--loop".to_owned());
    let child = Command::new(SLUICE)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ingest --loop");

    // Three passes at least (each takes 100 ms at 10x), then SIGTERM.
    let got = arrivals(&mut stream, 9).await;
    let output = terminate(child).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let totals = summary(&output);
    assert_eq!(totals["rejected"], 0, "{totals}");
    assert_eq!(totals["sent"], totals["accepted"], "{totals}");
    let sent = totals["sent"].as_u64().expect("sent");
    assert!(sent >= 9, "{totals}");

    // Everything sent arrives: no pass was dropped as duplicates.
    let mut delivered: Vec<Value> = got.into_iter().map(|(m, _)| m).collect();
    while (delivered.len() as u64) < sent {
        delivered.extend(arrivals(&mut stream, 1).await.into_iter().map(|(m, _)| m));
    }
    assert_eq!(delivered.len() as u64, sent);
    let ids: Vec<u64> = delivered.iter().map(id_of).collect();
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids sort by time: {ids:?}"
    );
    for (i, post) in delivered.iter().enumerate() {
        let id = id_of(post);
        assert_eq!(post["id"], json!(id), "id and id_str agree");
        // The low 22 bits are the original post's; the time bits are its timestamp_ms,
        // and created_at is that time's second.
        assert_eq!(id & ((1 << 22) - 1), 7 + (i as u64 % 3), "{post}");
        let ms: u64 = post["timestamp_ms"]
            .as_str()
            .expect("timestamp_ms")
            .parse()
            .expect("digits");
        assert_eq!((id >> 22) + SNOWFLAKE_EPOCH_MS, ms, "{post}");
        assert_eq!(created_at_ms(post), ms / 1000 * 1000, "{post}");
        assert_eq!(post["text"], format!("pace loop {}", i % 3));
    }
    // Passes after the first read as recorded about now.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("after 1970")
        .as_millis() as u64;
    let last_ms = (ids[ids.len() - 1] >> 22) + SNOWFLAKE_EPOCH_MS;
    assert!(last_ms > now_ms - 60_000, "{last_ms} vs {now_ms}");
    server.stop().await;
}

/// Sends SIGTERM to `child` and collects its output.
async fn terminate(child: Child) -> Output {
    let pid = child.id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("run kill");
    assert!(status.success());
    tokio::task::spawn_blocking(move || child.wait_with_output().expect("wait"))
        .await
        .expect("waiter thread")
}

/// A running `sluice record` and the lines of its stderr.
struct Recording {
    child: Child,
    stderr: std::sync::mpsc::Receiver<String>,
}

impl Recording {
    /// Starts `sluice record ARGS` and waits (up to 20 s) until it says it is connected.
    async fn start(args: &[&str]) -> Recording {
        let mut child = Command::new(SLUICE)
            .arg("record")
            .args(args)
            .args(["--backoff-scale", "0.02"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start sluice record");
        let pipe = child.stderr.take().expect("stderr is piped");
        let (tx, stderr) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let recording = Recording { child, stderr };
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        loop {
            while let Ok(line) = recording.stderr.try_recv() {
                let connected = line.contains("connected to");
                seen.push(line);
                if connected {
                    return recording;
                }
            }
            assert!(Instant::now() < deadline, "not connected: {seen:#?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for it to exit (after `signal`, if given); returns its exit code and stderr.
    async fn finish(mut self, signal: bool) -> (Option<i32>, String) {
        if signal {
            let status = Command::new("kill")
                .args(["-TERM", &self.child.id().to_string()])
                .status()
                .expect("run kill");
            assert!(status.success());
        }
        tokio::task::spawn_blocking(move || {
            let status = self.child.wait().expect("wait");
            let lines: Vec<String> = self.stderr.iter().collect();
            (status.code(), lines.join("\n"))
        })
        .await
        .expect("waiter thread")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_powertrack_stream_replays_into_another_server() {
    let dir = temp_dir();
    let recording = dir.path().join("powertrack.ndjson");
    let (source, source_url) = server_with_rule().await;
    let recording_child = Recording::start(&[
        &source_url,
        "--user",
        "alice",
        "--password",
        "secret",
        "-o",
        recording.to_str().expect("UTF-8 path"),
        "--max-posts",
        "4",
    ])
    .await;
    // Six posts, one that no rule matches: the recording stops after the fourth match.
    let mut posts: Vec<String> = (0..6)
        .map(|i| post_at(T0_MS + 100 * i, i, &format!("pace recorded {i}")))
        .collect();
    posts[1] = post_at(T0_MS + 100, 1, "no rule matches this one");
    source.ingest(&(posts.join("\n") + "\n")).await;
    let (code, err) = recording_child.finish(false).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("4 lines"), "{err}");
    let recorded = std::fs::read_to_string(&recording).expect("the recording");
    let lines: Vec<Value> = recorded
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let texts: Vec<&str> = lines
        .iter()
        .map(|l| l["text"].as_str().expect("text"))
        .collect();
    assert_eq!(
        texts,
        [
            "pace recorded 0",
            "pace recorded 2",
            "pace recorded 3",
            "pace recorded 4"
        ]
    );
    assert_eq!(lines[0]["matching_rules"][0]["tag"], "all");

    // Replayed into another server at the recorded pace: the same posts, in order, with
    // that server's matching rules.
    let (target, target_url) = server_with_rule().await;
    let mut stream = target.gnip_connect(&path_of(&target_url)).await;
    let (output, took) = sluice(ingest_args(&recording, &target.base, "original")).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        summary(&output),
        json!({"sent": 4, "accepted": 4, "rejected": 0})
    );
    assert!(took >= Duration::from_millis(400), "{took:?}");
    let replayed = arrivals(&mut stream, 4).await;
    for ((post, _), original) in replayed.iter().zip(&lines) {
        assert_eq!(post["id_str"], original["id_str"]);
        assert_eq!(post["text"], original["text"]);
        assert_eq!(post["created_at"], original["created_at"]);
        assert_eq!(post["matching_rules"].as_array().map(Vec::len), Some(1));
    }
    source.stop().await;
    target.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_flushes_what_it_has_and_exits_0_on_sigterm() {
    let dir = temp_dir();
    let recording = dir.path().join("partial.ndjson");
    let (source, source_url) = server_with_rule().await;
    let recording_child = Recording::start(&[
        &source_url,
        "-u",
        "alice:secret",
        "-o",
        recording.to_str().expect("UTF-8 path"),
    ])
    .await;
    let posts: Vec<String> = (0..3)
        .map(|i| post_at(T0_MS + i, i, &format!("pace partial {i}")))
        .collect();
    source.ingest(&(posts.join("\n") + "\n")).await;
    // Wait until the three are in the file, then stop.
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(&recording).map_or(0, |t| t.lines().count()) < 3 {
        assert!(
            Instant::now() < deadline,
            "the posts never reached the file"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (code, err) = recording_child.finish(true).await;
    assert_eq!(code, Some(0), "{err}");
    assert!(err.contains("3 lines"), "{err}");
    let recorded = std::fs::read_to_string(&recording).expect("the recording");
    assert_eq!(recorded.lines().count(), 3);
    assert!(recorded.ends_with('\n'));

    // Wrong credentials are refused for good: exit 1 at once.
    let (output, _) = sluice(
        [
            "record",
            &source_url,
            "--user",
            "alice",
            "--password",
            "wrong",
        ]
        .map(str::to_owned)
        .to_vec(),
    )
    .await;
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(stderr(&output).contains("401"), "{}", stderr(&output));
    source.stop().await;
}
