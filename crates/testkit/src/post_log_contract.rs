//! The [`PostLog`] contract, one function per property, run against every implementation
//! from one list: [`post_log_contract!`](crate::post_log_contract!) turns the list into one
//! test per property for a [`Subject`] (a way to open fresh logs of one implementation).
//!
//! Implementations differ in two ways the contract is parametrised by rather than silent
//! about:
//! - **Who stamps the times.** `MemoryLog` and `SegmentLog` keep the time the caller passes
//!   (never less than the last); `JetStreamLog` ignores it and keeps the time JetStream
//!   stored the post. The properties about chosen times ([`times_never_decrease`],
//!   [`seq_at_time_finds_the_first_post_at_or_after`]) apply only to the former; the clock
//!   property ([`times_follow_the_clock_and_seq_at_time_finds_the_first_at_or_after`])
//!   applies to both, with the caller passing the real clock.
//! - **How old posts go** ([`Retention`]): trimmed by the caller with `trim_before`, or
//!   expired by the log itself after the age it was opened with.

use std::any::Any;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sluice_postlog::{FIRST_SEQ, LoggedPost, NewPost, PostLog};

/// A fresh, empty log and whatever must outlive it (its directory, its `nats-server`).
pub struct Fresh {
    /// The log under test.
    pub log: Arc<dyn PostLog>,
    /// Dropped after the log (fields drop in order).
    _keep: Box<dyn Any>,
}

impl Fresh {
    /// A log that needs nothing else.
    pub fn new(log: impl PostLog) -> Fresh {
        Self::keeping(log, ())
    }

    /// A log that needs `keep` alive as long as it.
    pub fn keeping(log: impl PostLog, keep: impl Any) -> Fresh {
        Fresh {
            log: Arc::new(log),
            _keep: Box::new(keep),
        }
    }
}

/// How an implementation lets old posts go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// `trim_before` drops the posts older than the time it is given.
    Trimmed,
    /// The log drops posts older than the age it was opened with; `trim_before` does
    /// nothing.
    Expiring,
}

/// One implementation of [`PostLog`] as the contract sees it.
pub struct Subject {
    /// Opens a fresh, empty log. `max_age` is how long an [`Retention::Expiring`] log keeps
    /// posts; a [`Retention::Trimmed`] one ignores it.
    pub open: fn(max_age: Duration) -> Fresh,
    /// How it lets old posts go.
    pub retention: Retention,
    /// How many posts [`readers_run_while_appending`] appends (a networked log is slower
    /// per append).
    pub concurrent_posts: u64,
}

/// Generates one `#[test]` per contract property for a [`Subject`], in the module it is
/// called in. `stamped by the caller:` for logs that keep the caller's times, `stamped by
/// the log:` for logs that stamp posts themselves (the properties about chosen times do
/// not apply to them).
#[macro_export]
macro_rules! post_log_contract {
    (stamped by the caller: $subject:expr) => {
        $crate::post_log_contract!(@properties $subject;
            appends_are_numbered_and_read_back_in_order
            times_follow_the_clock_and_seq_at_time_finds_the_first_at_or_after
            times_never_decrease
            seq_at_time_finds_the_first_post_at_or_after
            old_posts_go_and_the_numbering_goes_on
            readers_run_while_appending
        );
    };
    (stamped by the log: $subject:expr) => {
        $crate::post_log_contract!(@properties $subject;
            appends_are_numbered_and_read_back_in_order
            times_follow_the_clock_and_seq_at_time_finds_the_first_at_or_after
            old_posts_go_and_the_numbering_goes_on
            readers_run_while_appending
        );
    };
    (@properties $subject:expr; $($property:ident)*) => {
        $(
            #[test]
            fn $property() {
                $crate::post_log_contract::$property(&$subject);
            }
        )*
    };
}

/// How long logs opened for properties other than expiry keep posts.
const HOUR: Duration = Duration::from_secs(3600);

// ----- posts and checks -----

/// The post stored as sequence number `seq`: sizes vary, some compress, some do not.
pub fn post_of(seq: u64) -> Vec<u8> {
    let filler = "lorem ipsum ".repeat((seq % 50) as usize);
    format!(r#"{{"id_str":"{seq}","text":"{filler}"}}"#).into_bytes()
}

/// The datacenter of the post stored as `seq`.
pub fn dc_of(seq: u64) -> &'static str {
    if seq.is_multiple_of(3) { "pdx" } else { "atla" }
}

/// Appends the posts `seqs` (which must be the log's next sequence numbers) at `ms`.
pub fn append(log: &dyn PostLog, seqs: Range<u64>, ms: u64) -> u64 {
    let bodies: Vec<Vec<u8>> = seqs.clone().map(post_of).collect();
    let posts: Vec<NewPost<'_>> = seqs
        .zip(&bodies)
        .map(|(seq, bytes)| NewPost {
            datacenter: dc_of(seq),
            bytes,
        })
        .collect();
    log.append(&posts, ms).expect("append")
}

/// Every post of `log`.
pub fn all(log: &dyn PostLog) -> Vec<LoggedPost> {
    log.read(0, usize::MAX).expect("read")
}

/// Checks that `post` is the one appended as `seq`.
pub fn check_post(post: &LoggedPost, seq: u64) {
    assert_eq!(post.seq, seq);
    assert_eq!(&post.bytes[..], &post_of(seq)[..], "bytes of {seq}");
    assert_eq!(&*post.datacenter, dc_of(seq));
}

/// The wall clock, epoch milliseconds.
fn now_ms() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

// ----- the contract, one function per property -----

/// Appends are numbered from [`FIRST_SEQ`] and read back in order, in any window.
pub fn appends_are_numbered_and_read_back_in_order(subject: &Subject) {
    let fresh = (subject.open)(HOUR);
    let log = &*fresh.log;
    assert_eq!(log.next_seq(), FIRST_SEQ);
    assert!(all(log).is_empty());
    assert_eq!(log.seq_at_time(0).unwrap(), FIRST_SEQ, "empty log");
    let base = FIRST_SEQ;
    assert_eq!(append(log, base..base + 1, 1_000), base);
    assert_eq!(append(log, base + 1..base + 300, 1_000), base + 299);
    assert_eq!(append(log, base + 300..base + 301, 2_000), base + 300);
    assert_eq!(
        log.append(&[], 2_500).unwrap(),
        base + 300,
        "an empty append"
    );
    assert_eq!(log.next_seq(), base + 301);
    let posts = all(log);
    assert_eq!(posts.len(), 301);
    for (i, post) in posts.iter().enumerate() {
        check_post(post, base + i as u64);
    }
    // Windows: from the middle, bounded, past the end, before the start.
    let window = log.read(base + 100, 70).unwrap();
    assert_eq!(window.len(), 70);
    check_post(&window[0], base + 100);
    check_post(&window[69], base + 169);
    assert!(log.read(base + 301, 10).unwrap().is_empty());
    assert!(log.read(base + 1_000, 10).unwrap().is_empty());
    assert!(log.read(base, 0).unwrap().is_empty());
    assert_eq!(log.read(0, 1).unwrap()[0].seq, base);
    // A window larger than one JetStream fetch.
    append(log, base + 301..base + 2_500, 3_000);
    let many = log.read(base + 1, 2_000).unwrap();
    assert_eq!(many.len(), 2_000);
    check_post(&many[1_999], base + 2_000);
}

/// Posts appended by the wall clock carry its times (whoever stamps them), never
/// decreasing; `seq_at_time` finds the first post at or after each of them.
pub fn times_follow_the_clock_and_seq_at_time_finds_the_first_at_or_after(subject: &Subject) {
    let fresh = (subject.open)(HOUR);
    let log = &*fresh.log;
    // Batches a few milliseconds apart, so that the log has many distinct times and runs
    // of equal ones.
    let started = now_ms();
    let mut next = FIRST_SEQ;
    for round in 0..40 {
        let n = round % 5 + 1;
        append(log, next..next + n, now_ms());
        next += n;
        std::thread::sleep(Duration::from_millis(3));
    }
    let finished = now_ms();
    let posts = all(log);
    assert_eq!(posts.len() as u64, next - FIRST_SEQ);
    // The time stored with each post: within the appends, never decreasing.
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

/// A clock that goes back does not make times decrease (logs stamped by the caller).
pub fn times_never_decrease(subject: &Subject) {
    let fresh = (subject.open)(HOUR);
    let log = &*fresh.log;
    append(log, FIRST_SEQ..FIRST_SEQ + 2, 5_000);
    append(log, FIRST_SEQ + 2..FIRST_SEQ + 3, 4_000);
    let times: Vec<u64> = all(log).iter().map(|p| p.appended_ms).collect();
    assert_eq!(times, [5_000, 5_000, 5_000]);
    assert_eq!(log.seq_at_time(5_000).unwrap(), FIRST_SEQ);
    assert_eq!(log.seq_at_time(5_001).unwrap(), FIRST_SEQ + 3);
}

/// `seq_at_time` finds the first post at or after chosen times, on and between the index
/// marks of the segment log (logs stamped by the caller).
pub fn seq_at_time_finds_the_first_post_at_or_after(subject: &Subject) {
    let fresh = (subject.open)(HOUR);
    let log = &*fresh.log;
    let b = FIRST_SEQ;
    assert_eq!(log.seq_at_time(0).unwrap(), b, "empty log");
    // 200 posts at 1000, 1 at 2000, 199 at 3000, 1 at 4000: the boundaries fall on and
    // between the index marks of the segment log.
    append(log, b..b + 200, 1_000);
    append(log, b + 200..b + 201, 2_000);
    append(log, b + 201..b + 400, 3_000);
    append(log, b + 400..b + 401, 4_000);
    for (ms, seq) in [
        (0, b),
        (1_000, b),
        (1_001, b + 200),
        (2_000, b + 200),
        (2_001, b + 201),
        (3_000, b + 201),
        (3_999, b + 400),
        (4_000, b + 400),
        (4_001, b + 401),
        (u64::MAX, b + 401),
    ] {
        assert_eq!(log.seq_at_time(ms).unwrap(), seq, "at {ms} ms");
    }
    // Many distinct times: every one found exactly.
    let start = b + 401;
    for i in 0..300 {
        append(log, start + i..start + i + 1, 10_000 + 10 * i);
    }
    for i in 0..300 {
        let ms = 10_000 + 10 * i;
        assert_eq!(log.seq_at_time(ms).unwrap(), start + i, "at {ms} ms");
        assert_eq!(
            log.seq_at_time(ms - 5).unwrap(),
            start + i,
            "at {} ms",
            ms - 5
        );
    }
}

/// Old posts go (trimmed or expired, per [`Retention`]) and the rest stay, in order, with
/// nothing lost in between; once everything is gone the numbering goes on.
pub fn old_posts_go_and_the_numbering_goes_on(subject: &Subject) {
    match subject.retention {
        Retention::Trimmed => trimming_drops_old_posts_and_keeps_the_rest(subject),
        Retention::Expiring => posts_past_the_retention_expire(subject),
    }
}

fn trimming_drops_old_posts_and_keeps_the_rest(subject: &Subject) {
    let fresh = (subject.open)(HOUR);
    let log = &*fresh.log;
    let b = FIRST_SEQ;
    for minute in 0..10u64 {
        let first = b + minute * 50;
        append(log, first..first + 50, 1_000 + minute * 60_000);
    }
    let cutoff = 1_000 + 4 * 60_000;
    log.trim_before(cutoff).unwrap();
    let kept = all(log);
    // Every post at or after the cutoff is still there, in order, and nothing else was
    // lost in between.
    let first_kept = kept[0].seq;
    assert!(first_kept <= b + 200, "posts after the cutoff were dropped");
    assert!(first_kept > b, "nothing was trimmed");
    for (i, post) in kept.iter().enumerate() {
        check_post(post, first_kept + i as u64);
    }
    assert_eq!(kept.last().unwrap().seq, b + 499);
    // Reading from a trimmed position starts at the first retained post.
    assert_eq!(log.read(b, 1).unwrap()[0].seq, first_kept);
    assert_eq!(log.seq_at_time(0).unwrap(), first_kept);
    assert_eq!(log.seq_at_time(cutoff).unwrap(), b + 200);
    // Trimming everything keeps the numbering.
    log.trim_before(u64::MAX).unwrap();
    assert!(all(log).is_empty());
    the_numbering_goes_on(log, b + 500, 700_000);
}

fn posts_past_the_retention_expire(subject: &Subject) {
    let retention = Duration::from_secs(1);
    let fresh = (subject.open)(retention);
    let log = &*fresh.log;
    let b = FIRST_SEQ;
    append(log, b..b + 50, now_ms());
    std::thread::sleep(retention / 2);
    append(log, b + 50..b + 100, now_ms());
    // The oldest 50 expire first: reads then start at the first retained post, and
    // nothing after it is missing.
    let deadline = Instant::now() + Duration::from_secs(10);
    let kept = loop {
        let kept = all(log);
        if kept.first().is_some_and(|p| p.seq > b) || kept.is_empty() {
            break kept;
        }
        assert!(Instant::now() < deadline, "nothing expired");
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
    let deadline = Instant::now() + Duration::from_secs(10);
    while !all(log).is_empty() {
        assert!(Instant::now() < deadline, "not everything expired");
        std::thread::sleep(Duration::from_millis(20));
    }
    the_numbering_goes_on(log, b + 100, now_ms());
}

/// In an emptied `log` that numbered up to `next`, the numbering goes on from `next`.
fn the_numbering_goes_on(log: &dyn PostLog, next: u64, ms: u64) {
    assert_eq!(log.next_seq(), next);
    assert_eq!(log.seq_at_time(0).unwrap(), next);
    assert_eq!(append(log, next..next + 1, ms), next);
    check_post(&all(log)[0], next);
}

/// Readers in other threads see every post in order while a writer appends, and whatever
/// was appended before a read started.
pub fn readers_run_while_appending(subject: &Subject) {
    let fresh = (subject.open)(HOUR);
    let total = subject.concurrent_posts;
    let writer = {
        let log = fresh.log.clone();
        std::thread::spawn(move || {
            let mut next = FIRST_SEQ;
            let mut ms = 1_000;
            while next < FIRST_SEQ + total {
                let n = (next % 7 + 1).min(FIRST_SEQ + total - next);
                append(&*log, next..next + n, ms);
                next += n;
                ms += 3;
            }
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let log = fresh.log.clone();
            std::thread::spawn(move || {
                let mut cursor = FIRST_SEQ;
                let max = 50 + r * 100;
                while cursor < FIRST_SEQ + total {
                    let (before, published) = (cursor, log.next_seq());
                    for post in &log.read(cursor, max).unwrap() {
                        check_post(post, cursor);
                        cursor += 1;
                    }
                    // Whatever was appended before the read started is readable.
                    assert!(cursor >= published.min(before + max as u64));
                    for probe in [1_000 + cursor, u64::MAX] {
                        let found = log.seq_at_time(probe).unwrap();
                        assert!(found <= log.next_seq());
                    }
                }
            })
        })
        .collect();
    writer.join().unwrap();
    for reader in readers {
        reader.join().unwrap();
    }
}
