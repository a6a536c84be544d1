//! [`SegmentLog`]: the post log in append-only segment files in one directory.
//!
//! Files: `<first seq, 20 digits>.log` holds [records](crate::record) back to back; a
//! segment is sealed (never written again) when it is a minute old or 64 MiB big, and gets
//! a sidecar `<first seq>.idx` with its [index](crate::index) once it is on disk. The last
//! segment is the active one; it may be empty, and its name then carries the sequence
//! number the next post gets, so numbering survives a restart even after everything was
//! trimmed.
//!
//! Concurrency: appends are serialized by a writer mutex; they write a whole batch with one
//! positioned write and then publish the new extent under a short write lock of the index.
//! Readers copy what they need from the index under a read lock and read the file without
//! any lock (positioned reads on a shared handle), never past the published extent, so they
//! never see a partial record. Trimming deletes whole segments, by age
//! ([`PostLog::trim_before`]) or oldest first down to a disk budget
//! ([`PostLog::trim_to_bytes`], never the active segment); a reader still holding a deleted
//! segment's handle finishes reading it (POSIX semantics).
//!
//! Durability: appends reach the OS before `append` returns (a process crash loses nothing
//! appended), but are not fsynced on the append path. [`PostLog::sync`] (called by the
//! server's trim thread every few seconds) fsyncs the active segment and the sealed ones not
//! yet on disk, then writes their sidecars. A power loss therefore loses at most the posts of
//! the last few seconds; at the next start the damaged tail of any segment without a valid
//! sidecar is detected by length and checksum and cut off.

use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt as _, FileExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::index::SegmentMeta;
use crate::record::{self, Parsed};
use crate::{FIRST_SEQ, LogError, LoggedPost, NewPost, PostLog, Trimmed};

/// How a [`SegmentLog`] cuts and stores its segments.
#[derive(Debug, Clone)]
pub struct SegmentOptions {
    /// A segment is sealed once it holds this many bytes (default 64 MiB).
    pub max_segment_bytes: u64,
    /// A segment is sealed once its first post is this old, in ms (default one minute: the
    /// granularity of trimming).
    pub max_segment_age_ms: u64,
    /// Store posts LZ4-compressed when that makes them smaller (default on).
    pub compress: bool,
    /// The posts of one append are stored in records (blocks) of about this many bytes
    /// each, compressed together; a block is closed at the first post that reaches it
    /// (default 64 KiB, LZ4's window: larger blocks compress little better and make a read
    /// of one post decompress more). Taken between 1 and 16 MiB.
    pub block_bytes: usize,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        Self {
            max_segment_bytes: 64 << 20,
            max_segment_age_ms: 60_000,
            compress: true,
            block_bytes: 64 << 10,
        }
    }
}

/// A post log in segment files under one directory; survives restarts. See the module
/// documentation for layout, concurrency and durability.
#[derive(Debug)]
pub struct SegmentLog {
    dir: PathBuf,
    /// Holds an exclusive lock on `dir/LOCK` while the log is open.
    _lock: File,
    options: SegmentOptions,
    writer: Mutex<Writer>,
    /// Oldest first; the last one is the active segment.
    segments: RwLock<Vec<Segment>>,
}

#[derive(Debug)]
struct Writer {
    file: Arc<File>,
    /// Extent of the active segment as written (equal to the published one between calls).
    meta: SegmentMeta,
    last_ms: u64,
    buf: Vec<u8>,
    /// The block being encoded, uncompressed.
    block: Vec<u8>,
}

#[derive(Debug, Clone)]
struct Segment {
    meta: SegmentMeta,
    file: Arc<File>,
    /// Sealed, fsynced and its sidecar written.
    durable: bool,
}

/// Bytes read from a file at a time.
const CHUNK: usize = 256 << 10;

fn segment_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}.log"))
}

fn sidecar_path(dir: &Path, first_seq: u64) -> PathBuf {
    dir.join(format!("{first_seq:020}.idx"))
}

/// Opens a file of the log for reading and writing; files it creates are readable by the
/// owner only (posts may be private).
fn open_rw(path: &Path, create: bool) -> std::io::Result<File> {
    File::options()
        .read(true)
        .write(true)
        .create(create)
        .truncate(false)
        .mode(PRIVATE_FILE)
        .open(path)
}

/// Mode of the files the log creates.
pub(crate) const PRIVATE_FILE: u32 = 0o600;
/// Mode of the directory the log creates.
const PRIVATE_DIR: u32 = 0o700;

impl SegmentLog {
    /// Opens the log in `dir` (created if missing) with the default options.
    pub fn open(dir: &Path) -> Result<SegmentLog, LogError> {
        Self::open_with(dir, SegmentOptions::default())
    }

    /// Opens the log in `dir` (created if missing): rebuilds the index from the sidecars,
    /// scans segments without one, cuts off a torn or damaged tail, and continues the
    /// sequence numbers.
    ///
    /// Only one log may have a directory open at a time (two servers on one data directory
    /// would interleave their files): opening waits a moment for a previous owner in this
    /// process to finish closing, then fails.
    pub fn open_with(dir: &Path, options: SegmentOptions) -> Result<SegmentLog, LogError> {
        // A block of that much plus one post stays far below the largest record read back.
        let options = SegmentOptions {
            block_bytes: options.block_bytes.clamp(1, record::MAX_BODY / 4),
            ..options
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(PRIVATE_DIR)
            .create(dir)?;
        let lock = lock_dir(dir)?;
        let mut firsts = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let name = entry?.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(stem) = name.strip_suffix(".log")
                && stem.len() == 20
                && let Ok(first) = stem.parse::<u64>()
            {
                firsts.push(first);
            } else if name.ends_with(".idx.tmp") {
                let _ = std::fs::remove_file(dir.join(name));
            }
        }
        firsts.sort_unstable();
        // Sidecars of segments trimmed while they were being written.
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "idx") && !path.with_extension("log").exists()
            {
                let _ = std::fs::remove_file(&path);
            }
        }
        let mut segments: Vec<Segment> = Vec::with_capacity(firsts.len() + 1);
        for first in firsts {
            let segment = load_segment(dir, first)?;
            if let Some(prev) = segments.last()
                && segment.meta.first_seq < prev.meta.next_seq
            {
                return Err(LogError::Corrupt(format!(
                    "segment {first} overlaps the segment before it (ends at {})",
                    prev.meta.next_seq
                )));
            }
            segments.push(segment);
        }
        let next_seq = segments.last().map_or(FIRST_SEQ, |s| s.meta.next_seq);
        let last_ms = segments.iter().map(|s| s.meta.last_ms).max().unwrap_or(0);
        // Reuse an empty last segment as the active one; otherwise start a new one, so that
        // sealed segments are never written again.
        if segments.last().is_none_or(|s| !s.meta.is_empty()) {
            let file = open_rw(&segment_path(dir, next_seq), true)?;
            segments.push(Segment {
                meta: SegmentMeta::empty(next_seq),
                file: Arc::new(file),
                durable: false,
            });
        }
        let active = segments.last().expect("an active segment was just ensured");
        let writer = Writer {
            file: active.file.clone(),
            meta: active.meta.clone(),
            last_ms,
            buf: Vec::new(),
            block: Vec::new(),
        };
        Ok(SegmentLog {
            dir: dir.to_owned(),
            _lock: lock,
            options,
            writer: Mutex::new(writer),
            segments: RwLock::new(segments),
        })
    }

    /// The directory the log lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes the retained segments take on disk (sidecars not counted).
    pub fn disk_bytes(&self) -> u64 {
        self.index().iter().map(|s| s.meta.len).sum()
    }

    // A panic while a lock is held cannot leave the index half-updated (every update is a
    // single assignment or push after the I/O), so a poisoned lock is still consistent.
    fn index(&self) -> RwLockReadGuard<'_, Vec<Segment>> {
        self.segments.read().unwrap_or_else(|e| e.into_inner())
    }

    fn index_mut(&self) -> RwLockWriteGuard<'_, Vec<Segment>> {
        self.segments.write().unwrap_or_else(|e| e.into_inner())
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Deletes the files of segments already taken out of the index. Readers holding one
    /// of their handles finish what they copied from the index (POSIX keeps the data until
    /// the last handle closes), so no reader ever sees part of a trimmed segment.
    fn remove_files(&self, removed: &[Segment]) -> Result<(), LogError> {
        for segment in removed {
            let first = segment.meta.first_seq;
            for path in [
                segment_path(&self.dir, first),
                sidecar_path(&self.dir, first),
            ] {
                match std::fs::remove_file(&path) {
                    Err(e) if e.kind() != ErrorKind::NotFound => return Err(e.into()),
                    _ => {}
                }
            }
        }
        Ok(())
    }

    /// Seals the active segment and starts a new, empty one.
    fn roll(&self, w: &mut Writer) -> Result<(), LogError> {
        let first = w.meta.next_seq;
        let file = Arc::new(open_rw(&segment_path(&self.dir, first), true)?);
        w.file = file.clone();
        w.meta = SegmentMeta::empty(first);
        self.index_mut().push(Segment {
            meta: w.meta.clone(),
            file,
            durable: false,
        });
        Ok(())
    }

    /// The segment holding `seq` or, when `seq` fell in a gap or was trimmed, the first
    /// one after it: its file, its extent, the byte offset of a record at or before `seq`,
    /// and whether `seq` is older than every segment held (trimmed).
    fn locate(&self, seq: u64) -> Option<(Arc<File>, SegmentMeta, u64, bool)> {
        let index = self.index();
        let trimmed_past = index.first().is_some_and(|s| seq < s.meta.first_seq);
        let segment = index
            .iter()
            .find(|s| !s.meta.is_empty() && s.meta.next_seq > seq)?;
        let meta = &segment.meta;
        let at = meta.marks.partition_point(|m| m.seq <= seq).max(1) - 1;
        let offset = meta.marks[at].offset;
        // Only what the reader needs: the extent, not the marks.
        let extent = SegmentMeta {
            marks: Vec::new(),
            ..meta.clone()
        };
        Some((segment.file.clone(), extent, offset, trimmed_past))
    }
}

/// Takes the directory's lock, waiting up to two seconds for its holder to let go.
fn lock_dir(dir: &Path) -> Result<File, LogError> {
    let path = dir.join("LOCK");
    let file = open_rw(&path, true)?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(LogError::Io(std::io::Error::new(
                    ErrorKind::WouldBlock,
                    format!("{} is locked by another process", path.display()),
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
        }
    }
}

/// Reads a segment's extent from its sidecar or, failing that, by scanning it (and cuts a
/// damaged tail off).
fn load_segment(dir: &Path, first: u64) -> Result<Segment, LogError> {
    let path = segment_path(dir, first);
    let file = open_rw(&path, false)?;
    let file_len = file.metadata()?.len();
    if let Ok(bytes) = std::fs::read(sidecar_path(dir, first))
        && let Some(meta) = SegmentMeta::decode(&bytes)
        && meta.first_seq == first
        && meta.len == file_len
    {
        return Ok(Segment {
            meta,
            file: Arc::new(file),
            durable: true,
        });
    }
    let mut meta = SegmentMeta::empty(first);
    let mut damage = None;
    let mut chunks = Chunks::new(&file, 0, file_len);
    loop {
        match chunks.next_record() {
            Ok(Some((raw, len))) => {
                if raw.seq != meta.next_seq || raw.ms < meta.last_ms {
                    damage = Some(format!(
                        "record {} out of order (expected {})",
                        raw.seq, meta.next_seq
                    ));
                    break;
                }
                let (seq, count, ms) = (raw.seq, raw.count, raw.ms);
                meta.push(seq, count, ms, len as u64);
            }
            Ok(None) => break,
            Err(ChunkError::Io(e)) => return Err(e.into()),
            Err(ChunkError::Corrupt(why)) => {
                damage = Some(why);
                break;
            }
        }
    }
    if meta.len < file_len {
        tracing::warn!(
            segment = %path.display(),
            kept = meta.len,
            dropped = file_len - meta.len,
            reason = damage.as_deref().unwrap_or("torn last record"),
            "post log: cutting off a damaged segment tail"
        );
        file.set_len(meta.len)?;
    }
    Ok(Segment {
        meta,
        file: Arc::new(file),
        durable: false,
    })
}

/// The shared name of a datacenter: a read's posts come from a handful, so each name is
/// made once per read.
fn interned(datacenters: &mut Vec<Arc<str>>, name: &[u8]) -> Arc<str> {
    if let Some(dc) = datacenters.iter().find(|d| d.as_bytes() == name) {
        return dc.clone();
    }
    let dc: Arc<str> = String::from_utf8_lossy(name).into();
    datacenters.push(dc.clone());
    dc
}

enum ChunkError {
    Io(std::io::Error),
    Corrupt(String),
}

impl From<ChunkError> for LogError {
    fn from(e: ChunkError) -> Self {
        match e {
            ChunkError::Io(e) => LogError::Io(e),
            ChunkError::Corrupt(why) => LogError::Corrupt(why),
        }
    }
}

/// Reads the records of `file` between two offsets, a chunk at a time.
struct Chunks<'f> {
    file: &'f File,
    /// File offset of `buf[0]`.
    at: u64,
    end: u64,
    buf: Vec<u8>,
    /// Parsed bytes at the start of `buf`.
    used: usize,
}

impl<'f> Chunks<'f> {
    fn new(file: &'f File, start: u64, end: u64) -> Self {
        Self {
            file,
            at: start,
            end,
            buf: Vec::new(),
            used: 0,
        }
    }

    /// The next record and its length; `Ok(None)` at the end (or a torn record that reaches
    /// past it).
    fn next_record(&mut self) -> Result<Option<(record::RawRecord<'_>, usize)>, ChunkError> {
        loop {
            // Re-borrow each round; the final return borrows `self.buf` once.
            match record::parse(&self.buf[self.used..]) {
                Parsed::Record(..) => break,
                Parsed::Corrupt(why) => {
                    let offset = self.at + self.used as u64;
                    return Err(ChunkError::Corrupt(format!("at byte {offset}: {why}")));
                }
                Parsed::Incomplete(need) => {
                    if !self.fill(need)? {
                        return Ok(None);
                    }
                }
            }
        }
        let Parsed::Record(raw, len) = record::parse(&self.buf[self.used..]) else {
            unreachable!("parsed as a record just above");
        };
        self.used += len;
        Ok(Some((raw, len)))
    }

    /// Makes at least `need` unparsed bytes available; `false` when the range ends first.
    fn fill(&mut self, need: usize) -> Result<bool, ChunkError> {
        self.buf.drain(..self.used);
        self.at += self.used as u64;
        self.used = 0;
        let have = self.buf.len() as u64;
        let left = self.end.saturating_sub(self.at + have);
        if have + left < need as u64 {
            return Ok(false);
        }
        let want = need.saturating_sub(self.buf.len()).max(CHUNK) as u64;
        let n = usize::try_from(want.min(left)).expect("a chunk fits in memory");
        let old = self.buf.len();
        self.buf.resize(old + n, 0);
        self.file
            .read_exact_at(&mut self.buf[old..], self.at + have)
            .map_err(ChunkError::Io)?;
        Ok(true)
    }
}

impl PostLog for SegmentLog {
    fn append(&self, posts: &[NewPost<'_>], now_ms: u64) -> Result<u64, LogError> {
        let mut w = self.writer();
        let ms = now_ms.max(w.last_ms);
        if !w.meta.is_empty()
            && (ms.saturating_sub(w.meta.first_ms) >= self.options.max_segment_age_ms
                || w.meta.len >= self.options.max_segment_bytes)
        {
            self.roll(&mut w)?;
        }
        if posts.is_empty() {
            return Ok(w.meta.next_seq - 1);
        }
        let w = &mut *w;
        w.buf.clear();
        let mut meta = w.meta.clone();
        let mut rest = posts;
        while !rest.is_empty() {
            let start = w.buf.len();
            let taken = record::encode(
                &mut w.buf,
                &mut w.block,
                meta.next_seq,
                ms,
                rest,
                self.options.block_bytes,
                self.options.compress,
            );
            let len = (w.buf.len() - start) as u64;
            meta.push(meta.next_seq, taken as u64, ms, len);
            rest = &rest[taken..];
        }
        if let Err(e) = w.file.write_all_at(&w.buf, w.meta.len) {
            // Leave no partial record behind for the next append to follow.
            let _ = w.file.set_len(w.meta.len);
            return Err(e.into());
        }
        w.last_ms = ms;
        w.meta = meta;
        if w.buf.capacity() > 4 * CHUNK {
            w.buf = Vec::new();
        }
        if w.block.capacity() > 4 * self.options.block_bytes.max(CHUNK) {
            w.block = Vec::new();
        }
        let mut index = self.index_mut();
        let active = index
            .last_mut()
            .expect("the log always has an active segment");
        active.meta.clone_from(&w.meta);
        Ok(w.meta.next_seq - 1)
    }

    fn next_seq(&self) -> u64 {
        self.index()
            .last()
            .expect("the log always has an active segment")
            .meta
            .next_seq
    }

    fn seq_at_time(&self, ms: u64) -> Result<u64, LogError> {
        let (file, from, end, fallback) = {
            let index = self.index();
            let Some(segment) = index
                .iter()
                .find(|s| !s.meta.is_empty() && s.meta.last_ms >= ms)
            else {
                let last = index.last().expect("the log always has an active segment");
                return Ok(last.meta.next_seq);
            };
            let meta = &segment.meta;
            if meta.first_ms >= ms {
                return Ok(meta.first_seq);
            }
            // marks[0] is the first record, older than `ms`: `at` ≥ 1.
            let at = meta.marks.partition_point(|m| m.ms < ms);
            let (end, fallback) = match meta.marks.get(at) {
                Some(next) => (next.offset, next.seq),
                None => (meta.len, meta.next_seq),
            };
            (
                segment.file.clone(),
                meta.marks[at - 1].offset,
                end,
                fallback,
            )
        };
        let mut chunks = Chunks::new(&file, from, end);
        while let Some((raw, _)) = chunks.next_record()? {
            if raw.ms >= ms {
                return Ok(raw.seq);
            }
        }
        Ok(fallback)
    }

    fn read(&self, from: u64, max: usize) -> Result<Vec<LoggedPost>, LogError> {
        let mut out = Vec::new();
        let mut datacenters: Vec<Arc<str>> = Vec::new();
        let mut from = from;
        while out.len() < max {
            let Some((file, extent, offset, trimmed_past)) = self.locate(from) else {
                break;
            };
            // `from` was trimmed while this read went on (it is older than the oldest
            // segment): stop before the hole, so that a result skips trimmed posts only at
            // its start. (Posts lost to damage leave holes between segments; reads cross
            // those.)
            if !out.is_empty() && trimmed_past {
                break;
            }
            let mut chunks = Chunks::new(&file, offset, extent.len);
            while out.len() < max {
                let Some((raw, _)) = chunks.next_record()? else {
                    break;
                };
                if raw.end_seq() <= from {
                    continue;
                }
                for post in raw.posts().map_err(LogError::Corrupt)? {
                    if post.seq < from {
                        continue;
                    }
                    if out.len() == max {
                        break;
                    }
                    let datacenter = interned(&mut datacenters, &post.datacenter);
                    out.push(LoggedPost {
                        seq: post.seq,
                        appended_ms: raw.ms,
                        datacenter,
                        bytes: post.bytes,
                    });
                }
            }
            from = extent.next_seq;
        }
        Ok(out)
    }

    fn trim_before(&self, ms: u64) -> Result<(), LogError> {
        let removed: Vec<Segment> = {
            let mut w = self.writer();
            if !w.meta.is_empty() && w.meta.last_ms < ms {
                self.roll(&mut w)?;
            }
            let mut index = self.index_mut();
            let sealed = index.len() - 1;
            let old = index[..sealed]
                .iter()
                .take_while(|s| s.meta.is_empty() || s.meta.last_ms < ms)
                .count();
            index.drain(..old).collect()
        };
        self.remove_files(&removed)?;
        Ok(())
    }

    fn trim_to_bytes(&self, max_bytes: u64) -> Result<Trimmed, LogError> {
        let removed: Vec<Segment> = {
            let mut index = self.index_mut();
            let mut total: u64 = index.iter().map(|s| s.meta.len).sum();
            // Sealed segments only, oldest first: the active one holds the newest posts.
            let sealed = index.len() - 1;
            let mut old = 0;
            while old < sealed && total > max_bytes {
                total -= index[old].meta.len;
                old += 1;
            }
            index.drain(..old).collect()
        };
        self.remove_files(&removed)?;
        Ok(removed.iter().fold(Trimmed::default(), |sum, s| Trimmed {
            segments: sum.segments + 1,
            posts: sum.posts + (s.meta.next_seq - s.meta.first_seq),
            bytes: sum.bytes + s.meta.len,
        }))
    }

    fn stored_bytes(&self) -> Option<u64> {
        Some(self.disk_bytes())
    }

    fn sync(&self) -> Result<(), LogError> {
        let (active, sealed): (Arc<File>, Vec<Segment>) = {
            let index = self.index();
            let (active, sealed) = index.split_last().expect("an active segment");
            (
                active.file.clone(),
                sealed.iter().filter(|s| !s.durable).cloned().collect(),
            )
        };
        active.sync_data()?;
        for segment in &sealed {
            segment.file.sync_data()?;
            segment
                .meta
                .store(&sidecar_path(&self.dir, segment.meta.first_seq))?;
        }
        // New segment files and sidecars are directory entries: make them durable too.
        File::open(&self.dir)?.sync_all()?;
        if !sealed.is_empty() {
            let mut index = self.index_mut();
            for segment in index.iter_mut() {
                if sealed
                    .iter()
                    .any(|s| s.meta.first_seq == segment.meta.first_seq)
                {
                    segment.durable = true;
                }
            }
        }
        Ok(())
    }
}
