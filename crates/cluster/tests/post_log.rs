//! The [`PostLog`] contract (as `crates/postlog/tests/contract.rs` states it) kept by the
//! cluster's post log, the JetStream posts stream, against a private `nats-server` per test.
//!
//! The contract tests of the other logs stamp posts with made-up times; JetStream stamps
//! them itself, so the time properties are checked against the times it reports, and
//! retention against the stream's `max_age`.

mod common;
#[path = "../../server/tests/stream_client/mod.rs"]
mod stream_client;

use std::sync::Arc;
use std::time::Duration;

use common::Nats;
use futures_util::StreamExt as _;
use sluice_cluster::post_log::JetStreamLog;
use sluice_postlog::{FIRST_SEQ, LoggedPost, NewPost, PostLog};

/// The post stored as sequence number `seq`: sizes vary.
fn post_of(seq: u64) -> Vec<u8> {
    let filler = "lorem ipsum ".repeat((seq % 50) as usize);
    format!(r#"{{"id_str":"{seq}","text":"{filler}"}}"#).into_bytes()
}

fn dc_of(seq: u64) -> &'static str {
    if seq.is_multiple_of(3) { "pdx" } else { "atla" }
}

/// Appends the posts `seqs` (which must be the log's next sequence numbers).
fn append(log: &dyn PostLog, seqs: std::ops::Range<u64>) -> u64 {
    let bodies: Vec<Vec<u8>> = seqs.clone().map(post_of).collect();
    let posts: Vec<NewPost<'_>> = seqs
        .zip(&bodies)
        .map(|(seq, bytes)| NewPost {
            datacenter: dc_of(seq),
            bytes,
        })
        .collect();
    log.append(&posts, 0).expect("append")
}

fn all(log: &dyn PostLog) -> Vec<LoggedPost> {
    log.read(0, usize::MAX).expect("read")
}

fn check_post(post: &LoggedPost, seq: u64) {
    assert_eq!(post.seq, seq);
    assert_eq!(&post.bytes[..], &post_of(seq)[..], "bytes of {seq}");
    assert_eq!(&*post.datacenter, dc_of(seq));
}

/// A log on a fresh `nats-server` whose posts stream keeps posts for `retention`. The log
/// is called from this (non-async) test thread, as the server calls it from blocking ones.
struct Fixture {
    log: Arc<JetStreamLog>,
    _runtime: tokio::runtime::Runtime,
    _nats: Nats,
}

fn open(retention: Duration) -> Fixture {
    let nats = Nats::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let url = nats.url();
    let log = runtime.block_on(async {
        let client = async_nats::connect(url).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let stream = sluice_cluster::posts::ensure_stream(&js, retention)
            .await
            .unwrap();
        JetStreamLog::new(js, stream, tokio::runtime::Handle::current())
    });
    Fixture {
        log: Arc::new(log),
        _runtime: runtime,
        _nats: nats,
    }
}

const HOUR: Duration = Duration::from_secs(3600);

#[test]
fn appends_are_numbered_and_read_back_in_order() {
    let f = open(HOUR);
    let log = &*f.log;
    assert_eq!(log.next_seq(), FIRST_SEQ);
    assert!(all(log).is_empty());
    assert_eq!(log.seq_at_time(0).unwrap(), FIRST_SEQ, "empty log");
    let base = FIRST_SEQ;
    assert_eq!(append(log, base..base + 1), base);
    assert_eq!(append(log, base + 1..base + 300), base + 299);
    assert_eq!(append(log, base + 300..base + 301), base + 300);
    assert_eq!(log.append(&[], 0).unwrap(), base + 300, "an empty append");
    assert_eq!(log.next_seq(), base + 301);
    let posts = all(log);
    assert_eq!(posts.len(), 301);
    for (i, post) in posts.iter().enumerate() {
        check_post(post, base + i as u64);
    }
    // Windows: from the middle, bounded, past the end, before the start; larger than one
    // fetch.
    let window = log.read(base + 100, 70).unwrap();
    assert_eq!(window.len(), 70);
    check_post(&window[0], base + 100);
    check_post(&window[69], base + 169);
    assert!(log.read(base + 301, 10).unwrap().is_empty());
    assert!(log.read(base + 1_000, 10).unwrap().is_empty());
    assert!(log.read(base, 0).unwrap().is_empty());
    assert_eq!(log.read(0, 1).unwrap()[0].seq, base);
    append(log, base + 301..base + 2_500);
    let many = log.read(base + 1, 2_000).unwrap();
    assert_eq!(many.len(), 2_000);
    check_post(&many[1_999], base + 2_000);
}

#[test]
fn times_are_jetstreams_never_decrease_and_seq_at_time_finds_the_first_at_or_after() {
    let f = open(HOUR);
    let log = &*f.log;
    let now = || {
        u64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis(),
        )
        .unwrap()
    };
    // Batches a few milliseconds apart, so that the log has many distinct times and runs
    // of equal ones.
    let started = now();
    let mut next = FIRST_SEQ;
    for round in 0..40 {
        let n = round % 5 + 1;
        append(log, next..next + n);
        next += n;
        std::thread::sleep(Duration::from_millis(3));
    }
    let finished = now();
    let posts = all(log);
    assert_eq!(posts.len() as u64, next - FIRST_SEQ);
    // The time JetStream stored each post: within the appends, never decreasing.
    assert!(posts[0].appended_ms + 1_000 >= started);
    assert!(posts.last().unwrap().appended_ms <= finished + 1_000);
    assert!(
        posts
            .windows(2)
            .all(|w| w[0].appended_ms <= w[1].appended_ms)
    );
    let distinct = {
        let mut times: Vec<u64> = posts.iter().map(|p| p.appended_ms).collect();
        times.dedup();
        times
    };
    assert!(distinct.len() > 10, "{distinct:?}");
    // The first post at or after each time, each time just after, and the extremes.
    let expected = |ms: u64| {
        posts
            .iter()
            .find(|p| p.appended_ms >= ms)
            .map_or(next, |p| p.seq)
    };
    for &ms in &distinct {
        for probe in [ms - 1, ms, ms + 1] {
            assert_eq!(
                log.seq_at_time(probe).unwrap(),
                expected(probe),
                "at {probe}"
            );
        }
    }
    assert_eq!(log.seq_at_time(0).unwrap(), FIRST_SEQ);
    assert_eq!(log.seq_at_time(u64::MAX).unwrap(), next);
}

#[test]
fn posts_past_the_retention_expire_and_numbering_goes_on() {
    let retention = Duration::from_secs(1);
    let f = open(retention);
    let log = &*f.log;
    let b = FIRST_SEQ;
    append(log, b..b + 50);
    std::thread::sleep(retention / 2);
    append(log, b + 50..b + 100);
    // The stream's max_age drops the first 50 first: reads then start at the first
    // retained post, and nothing after it is missing.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let kept = loop {
        let kept = all(log);
        if kept.first().is_some_and(|p| p.seq > b) || kept.is_empty() {
            break kept;
        }
        assert!(std::time::Instant::now() < deadline, "nothing expired");
        std::thread::sleep(Duration::from_millis(20));
    };
    if let Some(first) = kept.first() {
        for (i, post) in kept.iter().enumerate() {
            check_post(post, first.seq + i as u64);
        }
        // Reading from before the retained posts starts at the first still retained (more
        // may have expired since `kept` was read).
        if let Some(start) = log.read(b, 1).unwrap().first() {
            assert!(start.seq >= first.seq, "{} before {}", start.seq, first.seq);
            check_post(start, start.seq);
        }
    }
    // trim_before has nothing to do; everything goes with time, the numbering stays.
    log.trim_before(u64::MAX).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !all(log).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "not everything expired"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(log.next_seq(), b + 100);
    assert_eq!(log.seq_at_time(0).unwrap(), b + 100);
    assert_eq!(append(log, b + 100..b + 101), b + 100);
    check_post(&all(log)[0], b + 100);
}

#[test]
fn readers_run_while_appending() {
    let f = open(HOUR);
    const TOTAL: u64 = 800;
    let writer = {
        let log = f.log.clone();
        std::thread::spawn(move || {
            let mut next = FIRST_SEQ;
            while next < FIRST_SEQ + TOTAL {
                let n = (next % 7 + 1).min(FIRST_SEQ + TOTAL - next);
                append(&*log, next..next + n);
                next += n;
            }
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let log = f.log.clone();
            std::thread::spawn(move || {
                let mut cursor = FIRST_SEQ;
                let max = 50 + r * 100;
                while cursor < FIRST_SEQ + TOTAL {
                    let (before, published) = (cursor, log.next_seq());
                    for post in &log.read(cursor, max).unwrap() {
                        check_post(post, cursor);
                        cursor += 1;
                    }
                    // Whatever was appended before the read started is readable.
                    assert!(cursor >= published.min(before + max as u64));
                    let found = log.seq_at_time(u64::MAX).unwrap();
                    assert!(found <= log.next_seq());
                }
            })
        })
        .collect();
    writer.join().unwrap();
    for reader in readers {
        reader.join().unwrap();
    }
}

#[test]
fn a_published_post_carries_its_id_in_the_message_id_header_to_consumers() {
    let nats = Nats::start();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(nats.url()).await.unwrap();
        let js = async_nats::jetstream::new(client);
        let stream = sluice_cluster::posts::ensure_stream(&js, HOUR)
            .await
            .unwrap();
        // The bytes say 9: the header must carry the id the post came with.
        let post = sluice_server::pipeline::IngestedPost {
            bytes: bytes::Bytes::from_static(br#"{"id_str":"9","text":"x"}"#),
            id: 7,
            datacenter: Arc::from("pdx"),
        };
        sluice_cluster::posts::publish(&js, vec![post])
            .await
            .unwrap();
        let consumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::OrderedConfig::default())
            .await
            .unwrap();
        let mut messages = consumer.messages().await.unwrap();
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("the post is consumed")
            .unwrap()
            .unwrap();
        let header = message.headers.as_ref().unwrap().get("Nats-Msg-Id");
        assert_eq!(header.map(|v| v.as_str()), Some("7"));
        let consumed = sluice_cluster::posts::ingested(&message).unwrap();
        assert_eq!((consumed.id, &*consumed.datacenter), (7, "pdx"));
    });
}
