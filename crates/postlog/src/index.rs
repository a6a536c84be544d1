//! What [`SegmentLog`](crate::SegmentLog) knows about one segment without reading it: its
//! range of sequence numbers and times, and a sparse index of record offsets. Sealed
//! segments keep it in a sidecar file (`<first seq>.idx`) so that a restart does not have
//! to read every retained post.

use std::path::Path;

/// A record holding a post whose place in the segment is a multiple of this is marked, so
/// a lookup walks the records of at most this many posts before the one it wants, plus
/// the earlier posts of the marked block (records before the wanted one are only
/// checksummed, not decompressed).
pub(crate) const MARK_EVERY: u64 = 64;

const MAGIC: &[u8; 4] = b"SLIX";
const VERSION: u32 = 1;

/// Where a record starts, and the sequence number of its first post.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mark {
    pub seq: u64,
    pub ms: u64,
    pub offset: u64,
}

/// A segment's extent. `marks[0]` is its first record when it has any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SegmentMeta {
    pub first_seq: u64,
    /// One past the last post's sequence number (`first_seq` when empty).
    pub next_seq: u64,
    pub first_ms: u64,
    pub last_ms: u64,
    /// Bytes of whole records.
    pub len: u64,
    pub marks: Vec<Mark>,
}

impl SegmentMeta {
    /// An empty segment whose first record will get `first_seq`.
    pub(crate) fn empty(first_seq: u64) -> Self {
        Self {
            first_seq,
            next_seq: first_seq,
            ..Self::default()
        }
    }

    /// Whether the segment holds no record.
    pub(crate) fn is_empty(&self) -> bool {
        self.next_seq == self.first_seq
    }

    /// Accounts for a record of `len` bytes appended at the end, holding `count` posts
    /// from `seq` on.
    pub(crate) fn push(&mut self, seq: u64, count: u64, ms: u64, len: u64) {
        debug_assert_eq!(seq, self.next_seq);
        debug_assert!(count >= 1);
        let (first, last) = (seq - self.first_seq, seq + count - 1 - self.first_seq);
        if first.is_multiple_of(MARK_EVERY) || first / MARK_EVERY != last / MARK_EVERY {
            self.marks.push(Mark {
                seq,
                ms,
                offset: self.len,
            });
        }
        if self.is_empty() {
            self.first_ms = ms;
        }
        self.last_ms = ms;
        self.next_seq = seq + count;
        self.len += len;
    }

    /// The sidecar file's bytes.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.marks.len() * 24);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        for v in [
            self.first_seq,
            self.next_seq,
            self.first_ms,
            self.last_ms,
            self.len,
            self.marks.len() as u64,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for m in &self.marks {
            for v in [m.seq, m.ms, m.offset] {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out
    }

    /// Reads a sidecar file; `None` when it is missing, damaged or of another version.
    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
        if crc32fast::hash(body) != u32::from_le_bytes(crc.try_into().ok()?) {
            return None;
        }
        let (head, rest) = body.split_at_checked(8)?;
        if &head[..4] != MAGIC || head[4..] != VERSION.to_le_bytes() {
            return None;
        }
        let mut words = rest
            .chunks_exact(8)
            .map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")));
        let mut meta = SegmentMeta {
            first_seq: words.next()?,
            next_seq: words.next()?,
            first_ms: words.next()?,
            last_ms: words.next()?,
            len: words.next()?,
            marks: Vec::new(),
        };
        let count = usize::try_from(words.next()?).ok()?;
        if rest.len() != 48 + count.checked_mul(24)? {
            return None;
        }
        meta.marks.reserve(count);
        for _ in 0..count {
            meta.marks.push(Mark {
                seq: words.next()?,
                ms: words.next()?,
                offset: words.next()?,
            });
        }
        Some(meta)
    }

    /// Writes the sidecar file next to the segment (via a temporary file and a rename, so
    /// that it is whole or absent).
    pub(crate) fn store(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let tmp = path.with_extension("idx.tmp");
        std::fs::File::options()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(crate::segment::PRIVATE_FILE)
            .open(&tmp)?
            .write_all(&self.encode())?;
        std::fs::rename(&tmp, path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecars_round_trip_and_refuse_damage() {
        let mut meta = SegmentMeta::empty(10);
        for i in 0..200 {
            meta.push(10 + i, 1, 5_000 + i, 100);
        }
        assert_eq!(meta.marks.len(), 4);
        assert_eq!(meta.marks[1].offset, 6_400);
        // Blocks: a block is marked when it holds a post at a multiple of MARK_EVERY.
        let mut blocks = SegmentMeta::empty(1);
        // (Offsets in the segment: 0, 1..=62, 63, 64..=65, 66..=165, 166..=195.)
        for (seq, count) in [(1, 1), (2, 62), (64, 1), (65, 2), (67, 100), (167, 30)] {
            blocks.push(seq, count, 7, 10);
        }
        let marked: Vec<u64> = blocks.marks.iter().map(|m| m.seq).collect();
        assert_eq!(marked, [1, 65, 67, 167]);
        assert_eq!(blocks.next_seq, 197);
        let bytes = meta.encode();
        assert_eq!(SegmentMeta::decode(&bytes), Some(meta));
        for cut in [0, 3, 4, bytes.len() - 1] {
            assert_eq!(SegmentMeta::decode(&bytes[..cut]), None);
        }
        let mut flipped = bytes.clone();
        flipped[20] ^= 1;
        assert_eq!(SegmentMeta::decode(&flipped), None);
    }
}
