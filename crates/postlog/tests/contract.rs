//! The [`PostLog`] contract, checked against every implementation with the same functions,
//! plus what only the file-backed log promises: restarts, torn tails, damage.

use std::path::Path;
use std::sync::Arc;

use sluice_postlog::{
    FIRST_SEQ, LoggedPost, MemoryLog, NewPost, PostLog, SegmentLog, SegmentOptions,
};

/// The post stored as sequence number `seq`: sizes vary, some compress, some do not.
fn post_of(seq: u64) -> Vec<u8> {
    let filler = "lorem ipsum ".repeat((seq % 50) as usize);
    format!(r#"{{"id_str":"{seq}","text":"{filler}"}}"#).into_bytes()
}

fn dc_of(seq: u64) -> &'static str {
    if seq.is_multiple_of(3) { "pdx" } else { "atla" }
}

/// Appends the posts `seqs` (which must be the log's next sequence numbers) at `ms`.
fn append(log: &dyn PostLog, seqs: std::ops::Range<u64>, ms: u64) -> u64 {
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

fn all(log: &dyn PostLog) -> Vec<LoggedPost> {
    log.read(0, usize::MAX).expect("read")
}

fn check_post(post: &LoggedPost, seq: u64) {
    assert_eq!(post.seq, seq);
    assert_eq!(&post.bytes[..], &post_of(seq)[..], "bytes of {seq}");
    assert_eq!(&*post.datacenter, dc_of(seq));
}

/// Small segments and marks for the segment log, so that a few hundred posts span many.
fn small() -> SegmentOptions {
    SegmentOptions {
        max_segment_bytes: 8 << 10,
        max_segment_age_ms: 60_000,
        compress: true,
    }
}

// ----- the contract, one function per property -----

fn appends_are_numbered_and_read_back_in_order(log: &dyn PostLog) {
    assert_eq!(log.next_seq(), FIRST_SEQ);
    assert!(all(log).is_empty());
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
}

fn times_never_decrease(log: &dyn PostLog) {
    append(log, FIRST_SEQ..FIRST_SEQ + 2, 5_000);
    append(log, FIRST_SEQ + 2..FIRST_SEQ + 3, 4_000);
    let times: Vec<u64> = all(log).iter().map(|p| p.appended_ms).collect();
    assert_eq!(times, [5_000, 5_000, 5_000]);
    assert_eq!(log.seq_at_time(5_000).unwrap(), FIRST_SEQ);
    assert_eq!(log.seq_at_time(5_001).unwrap(), FIRST_SEQ + 3);
}

fn seq_at_time_finds_the_first_post_at_or_after(log: &dyn PostLog) {
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

fn trimming_drops_old_posts_and_keeps_the_rest(log: &dyn PostLog) {
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
    assert_eq!(log.next_seq(), b + 500);
    assert_eq!(log.seq_at_time(0).unwrap(), b + 500);
    assert_eq!(append(log, b + 500..b + 501, 700_000), b + 500);
    check_post(&all(log)[0], b + 500);
}

fn readers_run_while_appending(log: Arc<dyn PostLog>) {
    const TOTAL: u64 = 3_000;
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            let mut next = FIRST_SEQ;
            let mut ms = 1_000;
            while next < FIRST_SEQ + TOTAL {
                let n = (next % 7 + 1).min(FIRST_SEQ + TOTAL - next);
                append(&*log, next..next + n, ms);
                next += n;
                ms += 3;
            }
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let log = log.clone();
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
                    let found = log.seq_at_time(1_000 + cursor).unwrap();
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

/// Runs every contract function against fresh logs from `new`.
fn contract(new: &dyn Fn() -> Arc<dyn PostLog>) {
    appends_are_numbered_and_read_back_in_order(&*new());
    times_never_decrease(&*new());
    seq_at_time_finds_the_first_post_at_or_after(&*new());
    trimming_drops_old_posts_and_keeps_the_rest(&*new());
    readers_run_while_appending(new());
}

#[test]
fn memory_log_keeps_the_contract() {
    contract(&|| Arc::new(MemoryLog::new()));
}

#[test]
fn segment_log_keeps_the_contract() {
    let root = tempfile::tempdir().unwrap();
    let n = std::sync::atomic::AtomicUsize::new(0);
    contract(&|| {
        let dir = root.path().join(
            n.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                .to_string(),
        );
        Arc::new(SegmentLog::open_with(&dir, small()).unwrap())
    });
}

#[test]
fn segment_log_keeps_the_contract_with_default_segments_uncompressed() {
    let root = tempfile::tempdir().unwrap();
    let n = std::sync::atomic::AtomicUsize::new(0);
    contract(&|| {
        let dir = root.path().join(
            n.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                .to_string(),
        );
        let options = SegmentOptions {
            compress: false,
            ..SegmentOptions::default()
        };
        Arc::new(SegmentLog::open_with(&dir, options).unwrap())
    });
}

// ----- the segment log across restarts -----

fn reopen(dir: &Path) -> SegmentLog {
    SegmentLog::open_with(dir, small()).unwrap()
}

fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    files.sort();
    files
}

#[test]
fn a_reopened_segment_log_has_every_post_and_continues_numbering() {
    let dir = tempfile::tempdir().unwrap();
    let b = FIRST_SEQ;
    {
        let log = reopen(dir.path());
        append(&log, b..b + 200, 1_000);
        append(&log, b + 200..b + 250, 2_000);
    }
    let log = reopen(dir.path());
    assert_eq!(log.next_seq(), b + 250);
    assert_eq!(log.seq_at_time(2_000).unwrap(), b + 200);
    // Times continue from the last post even if the clock went back.
    assert_eq!(append(&log, b + 250..b + 260, 1_500), b + 259);
    let posts = all(&log);
    assert_eq!(posts.len(), 260);
    for (i, post) in posts.iter().enumerate() {
        check_post(post, b + i as u64);
    }
    assert_eq!(posts.last().unwrap().appended_ms, 2_000);
    // Synced (sidecars written), reopened again: the same, without scanning.
    log.sync().unwrap();
    drop(log);
    let log = reopen(dir.path());
    assert_eq!(all(&log).len(), 260);
    assert_eq!(log.next_seq(), b + 260);
}

#[test]
fn the_directory_and_every_file_of_the_log_are_private_to_the_owner() {
    use std::os::unix::fs::PermissionsExt as _;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("postlog");
    let log = reopen(&dir);
    for start in (FIRST_SEQ..FIRST_SEQ + 300).step_by(20) {
        append(&log, start..start + 20, 1_000);
    }
    log.sync().unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    // Segments, their sidecars and the lock file.
    assert!(
        files
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "idx"))
    );
    assert!(segment_files(&dir).len() > 1);
    for file in files {
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

#[test]
fn a_directory_is_opened_by_one_log_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let first = reopen(dir.path());
    let second = SegmentLog::open_with(dir.path(), small());
    assert!(second.unwrap_err().to_string().contains("locked"));
    drop(first);
    reopen(dir.path());
}

#[test]
fn numbering_survives_a_restart_after_everything_was_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = reopen(dir.path());
        append(&log, FIRST_SEQ..FIRST_SEQ + 40, 1_000);
        log.trim_before(u64::MAX).unwrap();
    }
    let log = reopen(dir.path());
    assert_eq!(log.next_seq(), FIRST_SEQ + 40);
    assert!(all(&log).is_empty());
    // Restarts do not pile up empty files.
    drop(log);
    let log = reopen(dir.path());
    assert_eq!(segment_files(dir.path()).len(), 1);
    assert_eq!(
        append(&log, FIRST_SEQ + 40..FIRST_SEQ + 41, 2_000),
        FIRST_SEQ + 40
    );
}

#[test]
fn a_torn_last_record_is_cut_off_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let b = FIRST_SEQ;
    {
        let log = reopen(dir.path());
        append(&log, b..b + 30, 1_000);
    }
    let last = segment_files(dir.path()).pop().unwrap();
    let len = std::fs::metadata(&last).unwrap().len();
    // A crash in the middle of the last record.
    let file = std::fs::OpenOptions::new().write(true).open(&last).unwrap();
    file.set_len(len - 5).unwrap();
    drop(file);
    let log = reopen(dir.path());
    assert_eq!(log.next_seq(), b + 29);
    let posts = all(&log);
    assert_eq!(posts.len(), 29);
    check_post(&posts[28], b + 28);
    assert_eq!(append(&log, b + 29..b + 31, 2_000), b + 30);
    check_post(&all(&log)[29], b + 29);
    drop(log);
    // Garbage after the last whole record (a power loss zero-fills blocks) goes too.
    let last = segment_files(dir.path()).pop().unwrap();
    let mut bytes = std::fs::read(&last).unwrap();
    bytes.extend_from_slice(&[0; 100]);
    std::fs::write(&last, bytes).unwrap();
    let log = reopen(dir.path());
    assert_eq!(log.next_seq(), b + 31);
    assert_eq!(all(&log).len(), 31);
}

#[test]
fn damage_inside_a_segment_loses_only_the_rest_of_that_segment() {
    let dir = tempfile::tempdir().unwrap();
    let b = FIRST_SEQ;
    {
        let log = reopen(dir.path());
        for first in (b..b + 300).step_by(10) {
            append(&log, first..first + 10, 1_000);
        }
    }
    let files = segment_files(dir.path());
    assert!(files.len() >= 3, "small segments: {files:?}");
    // Flip a byte in the middle of the first segment (no sidecar: never synced).
    let mut bytes = std::fs::read(&files[0]).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0xff;
    std::fs::write(&files[0], &bytes).unwrap();
    let log = reopen(dir.path());
    assert_eq!(log.next_seq(), b + 300);
    let posts = all(&log);
    // A gap where the damage was, everything else intact and in order.
    let gap = posts
        .windows(2)
        .filter(|w| w[1].seq != w[0].seq + 1)
        .count();
    assert_eq!(gap, 1);
    for post in &posts {
        check_post(post, post.seq);
    }
    assert_eq!(posts.last().unwrap().seq, b + 299);
    // A damaged sidecar is ignored: the segment is scanned instead.
    log.sync().unwrap();
    drop(log);
    let sidecar = files[1].with_extension("idx");
    let mut bytes = std::fs::read(&sidecar).unwrap();
    bytes[10] ^= 1;
    std::fs::write(&sidecar, bytes).unwrap();
    let log = reopen(dir.path());
    assert_eq!(all(&log).len(), posts.len());
}
