//! The [`PostLog`] contract (`sluice_testkit::post_log_contract`, one list of properties for
//! every implementation) kept by `MemoryLog` and `SegmentLog`, plus what only the
//! file-backed log promises: restarts, torn tails, damage.

use std::path::Path;

use sluice_postlog::{FIRST_SEQ, MemoryLog, PostLog, SegmentLog, SegmentOptions};
use sluice_testkit::post_log_contract::{Fresh, Retention, Subject, all, append, check_post};

/// Small segments and blocks for the segment log, so that a few hundred posts span many
/// of each.
fn small() -> SegmentOptions {
    SegmentOptions {
        max_segment_bytes: 2 << 10,
        max_segment_age_ms: 60_000,
        compress: true,
        block_bytes: 2 << 10,
    }
}

/// A segment log with `options` in a directory of its own.
fn segment_log(options: SegmentOptions) -> Fresh {
    let root = tempfile::tempdir().unwrap();
    let log = SegmentLog::open_with(&root.path().join("log"), options).unwrap();
    Fresh::keeping(log, root)
}

// ----- the contract -----

mod memory_log {
    use super::*;

    sluice_testkit::post_log_contract!(stamped by the caller: Subject {
        open: |_| Fresh::new(MemoryLog::new()),
        retention: Retention::Trimmed,
        concurrent_posts: 3_000,
    });
}

mod segment_log {
    use super::*;

    sluice_testkit::post_log_contract!(stamped by the caller: Subject {
        open: |_| segment_log(small()),
        retention: Retention::Trimmed,
        concurrent_posts: 3_000,
    });
}

mod segment_log_with_a_block_per_post {
    use super::*;

    sluice_testkit::post_log_contract!(stamped by the caller: Subject {
        open: |_| segment_log(SegmentOptions {
            block_bytes: 1,
            ..small()
        }),
        retention: Retention::Trimmed,
        concurrent_posts: 3_000,
    });
}

mod segment_log_with_default_segments_uncompressed {
    use super::*;

    sluice_testkit::post_log_contract!(stamped by the caller: Subject {
        open: |_| segment_log(SegmentOptions {
            compress: false,
            ..SegmentOptions::default()
        }),
        retention: Retention::Trimmed,
        concurrent_posts: 3_000,
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
        append(&log, b..b + 29, 1_000);
        // An append of its own: a block of its own, the last record.
        append(&log, b + 29..b + 30, 1_000);
    }
    let last = segment_files(dir.path()).pop().unwrap();
    let len = std::fs::metadata(&last).unwrap().len();
    // A crash in the middle of the last record (a power loss before the periodic sync:
    // a torn write loses the block it was writing).
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

// ----- the segment log's blocks -----

/// The sizes of the appends of the test below, in order: one post, a few, and many
/// (several blocks).
const APPENDS: [u64; 7] = [1, 7, 150, 1, 3, 90, 48];

#[test]
fn a_read_from_any_post_starts_at_that_post_whatever_the_blocks() {
    for block_bytes in [1, 2 << 10, 64 << 10] {
        let options = SegmentOptions {
            block_bytes,
            ..small()
        };
        let fresh = segment_log(options);
        let log = &*fresh.log;
        let b = FIRST_SEQ;
        let mut next = b;
        for size in APPENDS {
            append(log, next..next + size, 1_000 + next);
            next += size;
        }
        for from in b..next {
            let window = log.read(from, 3).unwrap();
            assert_eq!(window.len(), 3.min((next - from) as usize), "from {from}");
            for (i, post) in window.iter().enumerate() {
                check_post(post, from + i as u64);
                assert_eq!(post.appended_ms, log_time(from + i as u64, b));
            }
            assert_eq!(
                log.seq_at_time(log_time(from, b)).unwrap(),
                first_of_append(from, b)
            );
        }
    }
}

/// When the post `seq` of the test above was appended.
fn log_time(seq: u64, b: u64) -> u64 {
    1_000 + first_of_append(seq, b)
}

/// The first post of the append that brought `seq` in the test above.
fn first_of_append(seq: u64, b: u64) -> u64 {
    let mut first = b;
    for size in APPENDS {
        if seq < first + size {
            return first;
        }
        first += size;
    }
    panic!("{seq} was not appended");
}

/// The record of one post as the segment log wrote it before it stored blocks: the
/// datacenter in the record, the post's JSON as its payload (LZ4-compressed when `lz4`).
fn record_before_blocks(seq: u64, ms: u64, datacenter: &str, post: &[u8], lz4: bool) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&seq.to_le_bytes());
    body.extend_from_slice(&ms.to_le_bytes());
    body.push(u8::from(lz4));
    body.push(datacenter.len() as u8);
    body.extend_from_slice(datacenter.as_bytes());
    if lz4 {
        body.extend_from_slice(&lz4_flex::block::compress_prepend_size(post));
    } else {
        body.extend_from_slice(post);
    }
    let mut record = (body.len() as u32).to_le_bytes().to_vec();
    record.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
    record.extend_from_slice(&body);
    record
}

#[test]
fn a_log_written_before_blocks_is_read_and_appended_to() {
    use sluice_testkit::post_log_contract::{dc_of, post_of};
    let dir = tempfile::tempdir().unwrap();
    let b = FIRST_SEQ;
    // Two segments of one-post records, without sidecars (as if never synced).
    for (first, end) in [(b, b + 70), (b + 70, b + 100)] {
        let bytes: Vec<u8> = (first..end)
            .flat_map(|seq| {
                record_before_blocks(seq, 500 + seq, dc_of(seq), &post_of(seq), seq % 2 == 0)
            })
            .collect();
        std::fs::write(dir.path().join(format!("{first:020}.log")), bytes).unwrap();
    }
    let log = reopen(dir.path());
    assert_eq!(log.next_seq(), b + 100);
    assert_eq!(log.seq_at_time(500 + b + 80).unwrap(), b + 80);
    for from in [b, b + 1, b + 63, b + 64, b + 65, b + 69, b + 70, b + 99] {
        check_post(&log.read(from, 1).unwrap()[0], from);
    }
    assert_eq!(append(&log, b + 100..b + 160, 2_000), b + 159);
    log.sync().unwrap();
    drop(log);
    let log = reopen(dir.path());
    let posts = all(&log);
    assert_eq!(posts.len(), 160);
    for (i, post) in posts.iter().enumerate() {
        check_post(post, b + i as u64);
    }
}

// ----- the segment log's disk budget -----

/// Segments of one batch each: every append after the first seals the segment before.
fn per_batch(dir: &Path) -> SegmentLog {
    let options = SegmentOptions {
        max_segment_bytes: 1,
        ..small()
    };
    SegmentLog::open_with(dir, options).unwrap()
}

/// Appends `batches` batches of 20 posts, each in a segment of its own.
fn log_of_batches(dir: &Path, batches: u64) -> SegmentLog {
    let log = per_batch(dir);
    for batch in 0..batches {
        let start = FIRST_SEQ + batch * 20;
        append(&log, start..start + 20, 1_000 + batch);
    }
    log
}

fn files_bytes(dir: &Path) -> u64 {
    segment_files(dir)
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

#[test]
fn a_budget_drops_the_oldest_whole_segments_until_the_log_fits() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_of_batches(dir.path(), 10);
    let before = log.stored_bytes().unwrap();
    assert_eq!(
        before,
        files_bytes(dir.path()),
        "stored bytes are the files'"
    );
    let segments = segment_files(dir.path()).len() as u64;
    assert!(segments >= 5, "{segments} segments");
    let budget = before / 2;
    let trimmed = log.trim_to_bytes(budget).unwrap();
    let after = log.stored_bytes().unwrap();
    assert!(
        after <= budget,
        "{after} bytes kept for a budget of {budget}"
    );
    assert_eq!(trimmed.bytes, before - after);
    assert_eq!(after, files_bytes(dir.path()), "the trimmed files are gone");
    assert_eq!(
        trimmed.segments,
        segments - segment_files(dir.path()).len() as u64
    );
    // Oldest first, whole segments: what is left is every post from some point on, whole.
    let posts = all(&log);
    assert_eq!(trimmed.posts, posts[0].seq - FIRST_SEQ);
    assert_eq!(posts.last().unwrap().seq, FIRST_SEQ + 199);
    for (i, post) in posts.iter().enumerate() {
        check_post(post, posts[0].seq + i as u64);
    }
    // Within the budget: nothing more goes.
    assert_eq!(log.trim_to_bytes(budget).unwrap(), Default::default());
}

#[test]
fn a_budget_never_drops_the_segment_being_appended_to() {
    let dir = tempfile::tempdir().unwrap();
    let log = per_batch(dir.path());
    append(&log, FIRST_SEQ..FIRST_SEQ + 5, 1_000);
    // One segment, the active one, over a budget of one byte: the newest posts stay.
    assert_eq!(log.trim_to_bytes(1).unwrap(), Default::default());
    assert_eq!(all(&log).len(), 5);
    // Once sealed (newer batches came), it goes, and so does every other sealed one.
    append(&log, FIRST_SEQ + 5..FIRST_SEQ + 45, 1_000);
    append(&log, FIRST_SEQ + 45..FIRST_SEQ + 50, 1_000);
    let trimmed = log.trim_to_bytes(1).unwrap();
    assert_eq!(trimmed.segments, 2);
    assert_eq!(trimmed.posts, 45);
    let posts = all(&log);
    assert_eq!(posts.len(), 5);
    check_post(&posts[0], FIRST_SEQ + 45);
}

#[test]
fn a_budget_is_kept_across_a_restart_and_numbering_continues() {
    let dir = tempfile::tempdir().unwrap();
    {
        let log = log_of_batches(dir.path(), 6);
        log.sync().unwrap();
    }
    let log = per_batch(dir.path());
    let trimmed = log.trim_to_bytes(0).unwrap();
    // Everything but the active (empty, new after the restart) segment.
    assert_eq!(trimmed.posts, 120);
    assert!(all(&log).is_empty());
    assert_eq!(log.stored_bytes(), Some(0));
    assert_eq!(log.next_seq(), FIRST_SEQ + 120);
    // The sidecars went with their segments.
    let idx = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            let path = e.as_ref().unwrap().path();
            path.extension().is_some_and(|e| e == "idx")
        })
        .count();
    assert_eq!(idx, 0);
}

#[test]
fn readers_during_budget_trims_get_whole_posts_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = std::sync::Arc::new(per_batch(dir.path()));
    let writer = {
        let log = log.clone();
        std::thread::spawn(move || {
            for batch in 0..300u64 {
                let start = FIRST_SEQ + batch * 10;
                append(&*log, start..start + 10, 1_000 + batch);
                log.trim_to_bytes(16 << 10).unwrap();
            }
        })
    };
    let mut read = 0;
    while !writer.is_finished() || read == 0 {
        let posts = log.read(0, 50).unwrap();
        for pair in posts.windows(2) {
            assert_eq!(pair[1].seq, pair[0].seq + 1, "a gap inside one read");
        }
        for post in &posts {
            check_post(post, post.seq);
        }
        read += posts.len();
    }
    writer.join().unwrap();
    // The budget, and at most the active segment (one batch) over it.
    assert!(log.stored_bytes().unwrap() <= (16 << 10) + (8 << 10));
}
