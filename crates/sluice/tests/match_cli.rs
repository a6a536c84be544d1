//! `sluice match` through the real binary: output shape and ids, input order, validation
//! failures, bad post lines, stdin, error exits, and flat memory on a large streamed input.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");

/// Writes `contents` to a file private to one test and returns its path.
fn file(test: &str, name: &str, contents: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("match_cli")
        .join(test);
    std::fs::create_dir_all(&dir).expect("create test dir");
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write test file");
    path
}

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(SLUICE)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start sluice");
    let mut pipe = child.stdin.take().expect("stdin is piped");
    // Fed from a thread of its own: a large input would otherwise fill the pipes both
    // ways, sluice waiting for its output to be read and this thread for its input.
    let input = stdin.unwrap_or_default().to_owned();
    // sluice may end before reading all of it (an error exit): the test's assertions on
    // its output say whether that was right, not a broken pipe here.
    let feeder = std::thread::spawn(move || match pipe.write_all(input.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e),
        _ => Ok(()),
    });
    let output = child.wait_with_output().expect("sluice ran");
    feeder
        .join()
        .expect("the feeding thread")
        .expect("feed stdin");
    output
}

/// `sluice match` with the rules file `rules` and `posts` fed on stdin.
fn match_stdin(rules: &Path, posts: &str) -> Output {
    run(
        &[
            "match",
            "--rules",
            rules.to_str().expect("UTF-8 path"),
            "--posts",
            "-",
        ],
        Some(posts),
    )
}

fn match_files(test: &str, rules: &str, posts: &str) -> Output {
    let rules = file(test, "rules.json", rules);
    let posts = file(test, "posts.ndjson", posts);
    run(
        &[
            "match",
            "--rules",
            rules.to_str().expect("UTF-8 path"),
            "--posts",
            posts.to_str().expect("UTF-8 path"),
        ],
        None,
    )
}

fn stdout_lines(output: &Output) -> Vec<Value> {
    String::from_utf8(output.stdout.clone())
        .expect("stdout is UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each stdout line is JSON"))
        .collect()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn post(id: u64, text: &str) -> String {
    serde_json::json!({"id": id, "id_str": id.to_string(), "text": text, "lang": "en"}).to_string()
}

/// `(tag, id)` pairs of one output line, checking that `id_str` equals `id`.
fn rules_of(line: &Value) -> Vec<(Value, u64)> {
    line["matching_rules"]
        .as_array()
        .expect("matching_rules is an array")
        .iter()
        .map(|r| {
            let entry = r.as_object().expect("entry is an object");
            assert_eq!(
                entry.keys().collect::<Vec<_>>(),
                ["id", "id_str", "tag"],
                "exactly tag, id, id_str"
            );
            let id = r["id"].as_u64().expect("id is a u64 number");
            assert_eq!(r["id_str"], id.to_string(), "id_str == id");
            (r["tag"].clone(), id)
        })
        .collect()
}

const RULES: &str = r#"{"rules":[
    {"value":"cat","tag":"pets"},
    {"value":"dog"},
    {"value":"cat","tag":"second copy of cat"},
    {"value":"\"hello world\"","tag":"greeting","id":5}
]}"#;

#[test]
fn matches_in_input_order_with_stable_ascending_ids() {
    let posts = [
        post(11, "I have a cat"),
        post(12, "nothing to see"),
        post(13, "a dog chased the cat"),
        String::new(),
        "   ".into(),
        post(14, "Hello, world! says the dog"),
        r#"{"id_str":"1128017341835464704","text":"CAT"}"#.into(),
    ]
    .join("\n");
    let output = match_files("order", RULES, &posts);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    let lines = stdout_lines(&output);
    let ids: Vec<&str> = lines
        .iter()
        .map(|l| l["id_str"].as_str().expect("id_str is a string"))
        .collect();
    assert_eq!(ids, ["11", "13", "14", "1128017341835464704"]);
    for line in &lines {
        let keys: Vec<&String> = line.as_object().expect("object").keys().collect();
        assert_eq!(keys, ["id_str", "matching_rules"]);
    }

    let cat = rules_of(&lines[0]);
    assert_eq!(cat.len(), 1);
    assert_eq!(cat[0].0, "pets", "the first occurrence's tag is kept");
    let cat_id = cat[0].1;

    let cat_dog = rules_of(&lines[1]);
    assert_eq!(cat_dog.len(), 2, "a duplicate value is one rule");
    assert_eq!(
        cat_dog[0],
        (Value::from("pets"), cat_id),
        "same id across posts"
    );
    assert_eq!(cat_dog[1].0, Value::Null, "no tag is null");
    let dog_id = cat_dog[1].1;
    assert!(cat_id < dog_id, "ids ascend in file order");

    let dog_greeting = rules_of(&lines[2]);
    assert_eq!(dog_greeting[0], (Value::Null, dog_id));
    assert_eq!(dog_greeting[1].0, "greeting");
    assert!(dog_greeting[1].1 > dog_id);
    assert_ne!(dog_greeting[1].1, 5, "a client-sent id is not used");

    assert_eq!(rules_of(&lines[3]), [(Value::from("pets"), cat_id)]);

    // Snowflake ids: the time bits are the time the rule was created.
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64;
    let created_ms = (cat_id >> 22) + 1_288_834_974_657;
    assert!(created_ms <= now_ms && now_ms - created_ms < 600_000);
}

#[test]
fn tags_are_escaped_in_the_output() {
    let rules = r#"{"rules":[{"value":"cat","tag":"a \"quoted\"\u2028tag"}]}"#;
    let output = match_files("escape", rules, &post(1, "cat"));
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    let raw = String::from_utf8(output.stdout.clone()).expect("UTF-8");
    assert!(raw.contains(r#""tag":"a \"quoted\"\u2028tag""#), "{raw}");
    assert_eq!(raw.lines().count(), 1);
}

#[test]
fn an_invalid_rule_prints_the_validation_body_and_exits_2() {
    let rules = r#"{"rules":[{"value":"cat","tag":"pets"},{"value":"aaaaa OR"}]}"#;
    let output = match_files("invalid", rules, &post(1, "cat"));
    assert_eq!(output.status.code(), Some(2), "stderr: {}", stderr(&output));
    let lines = stdout_lines(&output);
    assert_eq!(lines.len(), 1, "only the validation body, nothing matched");
    let body = &lines[0];
    assert_eq!(
        body["summary"],
        serde_json::json!({"valid": 1, "not_valid": 1})
    );
    assert_eq!(
        body["detail"][0],
        serde_json::json!({"rule": {"value": "cat", "tag": "pets"}, "valid": true})
    );
    assert_eq!(
        body["detail"][1],
        serde_json::json!({
            "rule": {"value": "aaaaa OR", "tag": null},
            "valid": false,
            "message": "Cannot parse rule at '<EOF>' (position 9)\n"
        })
    );
    let sent = body["sent"].as_str().expect("sent is a string");
    assert_eq!(sent.len(), "2016-11-24T13:13:10.090Z".len());
    assert!(sent.ends_with('Z'));
    let raw = String::from_utf8(output.stdout.clone()).expect("UTF-8");
    assert!(raw.starts_with(r#"{"summary":{"valid":1,"not_valid":1},"detail":["#));
}

#[test]
fn compliance_events_in_a_recorded_firehose_are_passed_over() {
    let posts = [
        post(1, "cat one"),
        r#"{"delete":{"status":{"id":1,"id_str":"1","user_id":2,"user_id_str":"2"},"timestamp_ms":"1"}}"#.into(),
        r#"{"user_protect":{"id":2,"timestamp_ms":"1"}}"#.into(),
        post(4, "cat four"),
    ]
    .join("\n");
    let output = match_files("events", r#"{"rules":[{"value":"cat"}]}"#, &posts);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    let ids: Vec<Value> = stdout_lines(&output)
        .iter()
        .map(|l| l["id_str"].clone())
        .collect();
    assert_eq!(ids, ["1", "4"]);
    assert_eq!(stderr(&output), "");
}

#[test]
fn bad_post_lines_are_reported_skipped_and_exit_3() {
    let posts = [
        post(1, "cat one"),
        "{not json".into(),
        r#"{"text":"cat without an id"}"#.into(),
        post(4, "cat four"),
        r#"[5,5,null,null,"cat"]"#.into(),
    ]
    .join("\r\n");
    let output = match_files("bad_lines", r#"{"rules":[{"value":"cat"}]}"#, &posts);
    assert_eq!(output.status.code(), Some(3), "stderr: {}", stderr(&output));
    let err = stderr(&output);
    assert!(err.contains("line 2"), "{err}");
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("line 5"), "an array is not a post: {err}");
    assert!(
        !err.contains("line 1:") && !err.contains("line 4:"),
        "{err}"
    );
    let ids: Vec<Value> = stdout_lines(&output)
        .iter()
        .map(|l| l["id_str"].clone())
        .collect();
    assert_eq!(ids, ["1", "4"]);
}

/// `--stats` counts what was read on one thread and on several alike: blank lines are not
/// posts, bad lines are read and skipped, and each output line is one matched post.
#[test]
fn stats_count_posts_matches_and_skipped_lines() {
    let posts = [
        post(1, "cat one"),
        String::new(),
        "{not json".into(),
        post(3, "dog three"),
        post(4, "cat four"),
    ]
    .join("\n");
    let rules = file("stats", "rules.json", r#"{"rules":[{"value":"cat"}]}"#);
    let posts = file("stats", "posts.ndjson", &posts);
    for threads in ["1", "3"] {
        let output = run(
            &[
                "match",
                "--stats",
                "--threads",
                threads,
                "--rules",
                rules.to_str().unwrap(),
                "--posts",
                posts.to_str().unwrap(),
            ],
            None,
        );
        assert_eq!(output.status.code(), Some(3));
        assert_eq!(stdout_lines(&output).len(), 2);
        let err = stderr(&output);
        let summary = err
            .lines()
            .find(|l| l.contains("post lines read"))
            .unwrap_or_else(|| panic!("no summary on {threads} thread(s) in:\n{err}"));
        assert!(
            summary.starts_with(
                "sluice match: 4 post lines read, 2 matched, 1 skipped; 1 rules indexed in "
            ),
            "{summary}"
        );
        assert!(summary.contains(" posts/s) on "), "{summary}");
    }
    let quiet = match_files(
        "stats_off",
        r#"{"rules":[{"value":"cat"}]}"#,
        &post(1, "cat"),
    );
    assert!(!stderr(&quiet).contains("post lines read"));
}

#[test]
fn posts_and_rules_can_come_from_stdin() {
    let rules = file("stdin", "rules.json", r#"{"rules":[{"value":"dog"}]}"#);
    let posts = [post(7, "dog"), post(8, "cat"), post(9, "hot dog")].join("\n") + "\n";
    let output = match_stdin(&rules, &posts);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    let ids: Vec<Value> = stdout_lines(&output)
        .iter()
        .map(|l| l["id_str"].clone())
        .collect();
    assert_eq!(ids, ["7", "9"]);

    let posts_file = file("stdin", "posts.ndjson", &posts);
    let output = run(
        &[
            "match",
            "--rules",
            "-",
            "--posts",
            posts_file.to_str().expect("UTF-8"),
        ],
        Some(r#"{"rules":[{"value":"cat"}]}"#),
    );
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    let ids: Vec<Value> = stdout_lines(&output)
        .iter()
        .map(|l| l["id_str"].clone())
        .collect();
    assert_eq!(ids, ["8"]);
}

#[test]
fn unreadable_inputs_and_bad_rules_bodies_exit_1() {
    let posts = file("errors", "posts.ndjson", &post(1, "cat"));
    let posts = posts.to_str().expect("UTF-8");
    let missing = run(
        &[
            "match",
            "--rules",
            "/nonexistent/rules.json",
            "--posts",
            posts,
        ],
        None,
    );
    assert_eq!(missing.status.code(), Some(1));
    assert!(stderr(&missing).contains("/nonexistent/rules.json"));
    assert!(missing.stdout.is_empty());

    for (name, body) in [
        ("not_json", "{\"rules\":["),
        ("rule_ids", r#"{"rule_ids":[1]}"#),
        ("no_value", r#"{"rules":[{"tag":"t"}]}"#),
    ] {
        let rules = file("errors", &format!("{name}.json"), body);
        let output = run(
            &[
                "match",
                "--rules",
                rules.to_str().expect("UTF-8"),
                "--posts",
                posts,
            ],
            None,
        );
        assert_eq!(output.status.code(), Some(1), "{name}");
        assert!(
            stderr(&output).contains("add-rules body"),
            "{name}: {}",
            stderr(&output)
        );
        assert!(output.stdout.is_empty(), "{name}");
    }

    let rules = file("errors", "ok.json", r#"{"rules":[{"value":"cat"}]}"#);
    let missing_posts = run(
        &[
            "match",
            "--rules",
            rules.to_str().expect("UTF-8"),
            "--posts",
            "/nonexistent/p",
        ],
        None,
    );
    assert_eq!(missing_posts.status.code(), Some(1));
    assert!(stderr(&missing_posts).contains("/nonexistent/p"));

    // A directory opens but cannot be read: the read error ends the run, on one thread
    // (reading inline) and on two (a reading thread hands the error over).
    let directory = rules.parent().expect("the test's directory");
    for threads in ["1", "2"] {
        let unreadable = run(
            &[
                "match",
                "--threads",
                threads,
                "--rules",
                rules.to_str().expect("UTF-8"),
                "--posts",
                directory.to_str().expect("UTF-8"),
            ],
            None,
        );
        assert_eq!(unreadable.status.code(), Some(1), "threads {threads}");
        assert!(
            stderr(&unreadable).contains("cannot read posts"),
            "threads {threads}: {}",
            stderr(&unreadable)
        );
        assert!(unreadable.stdout.is_empty(), "threads {threads}");
    }

    let both_stdin = run(&["match", "--rules", "-", "--posts", "-"], Some(""));
    assert_eq!(both_stdin.status.code(), Some(1));
}

#[test]
fn help_explains_flags_and_exit_codes() {
    let output = run(&["match", "--help"], None);
    assert_eq!(output.status.code(), Some(0));
    let help = String::from_utf8(output.stdout).expect("UTF-8");
    for needle in [
        "--rules",
        "--posts",
        "--threads",
        "--stats",
        "stdin",
        "Exit codes",
        "  2  ",
        "  3  ",
    ] {
        assert!(help.contains(needle), "missing {needle:?} in:\n{help}");
    }
}

/// 3,000 realistic posts against 2,000 realistic rules, with bad and blank lines in
/// between: one thread and four give the same output lines, the same bad-line reports
/// (same line numbers, same order) and the same exit code.
#[test]
fn the_output_is_the_same_on_one_thread_and_on_four() {
    let mut generated = sluice_synth::PostGenerator::new(14);
    let mut lines = Vec::new();
    let mut bad = 0;
    for i in 0..3_000 {
        if i % 250 == 17 {
            lines.push("{not json".to_owned());
            bad += 1;
        }
        if i % 400 == 3 {
            lines.push(String::new());
        }
        lines.push(generated.next_post());
    }
    // Rule ids are Snowflake ids, new at every run: the tags name the rules.
    let rules: Vec<Value> = sluice_synth::RuleGenerator::new(14)
        .take(2_000)
        .enumerate()
        .map(|(n, value)| serde_json::json!({"value": value, "tag": format!("rule {n}")}))
        .collect();
    let rules = file(
        "threads",
        "rules.json",
        &serde_json::json!({"rules": rules}).to_string(),
    );
    let text = lines.join("\n") + "\n";
    let posts = file("threads", "posts.ndjson", &text);
    let on = |threads: &str| {
        run(
            &[
                "match",
                "--threads",
                threads,
                "--rules",
                rules.to_str().expect("UTF-8 path"),
                "--posts",
                posts.to_str().expect("UTF-8 path"),
            ],
            None,
        )
    };
    // Each output line as its post and the tags of its rules, in order.
    let matches = |output: &Output| -> Vec<(Value, Vec<Value>)> {
        stdout_lines(output)
            .iter()
            .map(|line| {
                let tags = rules_of(line).into_iter().map(|(tag, _)| tag).collect();
                (line["id_str"].clone(), tags)
            })
            .collect()
    };
    let (one, four) = (on("1"), on("4"));
    assert_eq!(one.status.code(), Some(3), "stderr: {}", stderr(&one));
    assert_eq!(four.status.code(), Some(3), "stderr: {}", stderr(&four));
    let (one_matches, four_matches) = (matches(&one), matches(&four));
    assert!(
        (300..3_000).contains(&one_matches.len()),
        "a test where some posts match and some do not: {} matched",
        one_matches.len()
    );
    assert!(one_matches == four_matches, "the same output on 4 threads");
    let skipped = stderr(&one).matches(": skipped: ").count();
    assert_eq!(skipped, bad, "{}", stderr(&one));
    assert_eq!(stderr(&one), stderr(&four), "the same reports on 4 threads");
    // A file is mapped and cut into blocks in place, stdin is read: the same lines either
    // way, over the many blocks of these ~12 MB.
    let piped = match_stdin(&rules, &text);
    assert_eq!(piped.status.code(), Some(3), "stderr: {}", stderr(&piped));
    assert!(matches(&piped) == one_matches, "the same output from stdin");
    assert_eq!(
        stderr(&piped),
        stderr(&one).replace(&posts.display().to_string(), "stdin"),
        "the same bad lines from stdin"
    );
}

/// Peak resident memory (VmHWM) of a running process, in KiB.
#[cfg(target_os = "linux")]
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc status")
}

/// 200,000 posts (about 45 MB) are piped in while output is read as it comes. The child's
/// peak RSS after the first 20,000 posts and after all of them must differ by less than
/// 8 MiB: memory does not grow with the input. Waiting for output before sending more
/// input also proves matches are written as they are found (a binary that held its
/// output until the end of input would never produce it, and the test would fail at the
/// generous timeout instead of passing). No assertion depends on speed.
#[cfg(target_os = "linux")]
#[test]
fn memory_stays_flat_on_a_large_streamed_input() {
    const TOTAL: u64 = 200_000;
    const FIRST: u64 = 20_000;
    let rules = file("flat", "rules.json", r#"{"rules":[{"value":"cats"}]}"#);
    let mut child = Command::new(SLUICE)
        .args([
            "match",
            "--rules",
            rules.to_str().expect("UTF-8"),
            "--posts",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start sluice");
    let pid = child.id();
    let stdout = child.stdout.take().expect("stdout is piped");
    let (seen_tx, seen_rx) = mpsc::channel::<u64>();
    let reader = std::thread::spawn(move || {
        let mut count = 0u64;
        let mut in_order = true;
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("read output");
            count += 1;
            let expected = format!("{{\"id_str\":\"{count}\",");
            in_order &= line.starts_with(&expected);
            if count.is_multiple_of(1000) {
                // Keep draining even if the test stopped listening, so sluice never blocks.
                let _ = seen_tx.send(count);
            }
        }
        (count, in_order)
    });
    let wait_for_output = |at_least: u64| {
        loop {
            match seen_rx.recv_timeout(Duration::from_secs(300)) {
                Ok(n) if n >= at_least => return,
                Ok(_) => {}
                Err(e) => panic!("no streamed output reaching {at_least} lines: {e}"),
            }
        }
    };

    let mut stdin = std::io::BufWriter::new(child.stdin.take().expect("stdin is piped"));
    let mut sent_bytes = 0usize;
    let mut send = |from: u64, to: u64| {
        for id in from..=to {
            let line = format!(
                r#"{{"id":{id},"id_str":"{id}","created_at":"Wed Oct 10 20:19:24 +0000 2018","text":"post {id} is about cats and other things, with some words to make it longer than a short test post","lang":"en","user":{{"id":12,"id_str":"12","screen_name":"someone"}}}}"#
            );
            sent_bytes += line.len() + 1;
            writeln!(stdin, "{line}").expect("feed sluice");
        }
        stdin.flush().expect("feed sluice");
    };

    send(1, FIRST);
    wait_for_output(FIRST - 2000);
    let early = peak_rss_kib(pid);
    send(FIRST + 1, TOTAL);
    wait_for_output(TOTAL - 2000);
    let late = peak_rss_kib(pid);
    drop(stdin);
    let status = child.wait().expect("sluice ran");
    let (count, in_order) = reader.join().expect("reader thread");

    assert!(status.success());
    assert_eq!(count, TOTAL);
    assert!(in_order, "output is in input order");
    assert!(
        sent_bytes > 40_000_000,
        "the input is large: {sent_bytes} bytes"
    );
    assert!(
        late.saturating_sub(early) < 8 * 1024,
        "peak RSS grew from {early} KiB to {late} KiB over {sent_bytes} bytes of input"
    );
}
