//! The on-disk record of [`SegmentLog`](crate::SegmentLog): a block of consecutive posts,
//! length-prefixed and checksummed so that a torn or damaged tail is recognised.
//!
//! ```text
//! u32 LE  body length
//! u32 LE  CRC-32 (IEEE) of the body
//! body:
//!   u64 LE  sequence number of the first post
//!   u64 LE  append time, epoch ms (every post of the record has it)
//!   u8      flags (bit 0: payload is LZ4 block-compressed, uncompressed size prepended;
//!                  bit 1: a block of posts)
//!   u8      datacenter length (0 in a block: each post carries its own)
//!   ...     datacenter (UTF-8)
//!   block:  u32 LE post count, then the payload
//!   ...     payload
//! ```
//!
//! A block's payload, once decompressed, holds its posts back to back, each as `u8`
//! datacenter length, the datacenter, `u32 LE` JSON length and the post's JSON. A record
//! without the block flag is the format written before blocks: one post, its datacenter in
//! the body, its JSON as the payload. Both are read; only blocks are written.
//!
//! Why blocks: compressed one by one, posts shrink to about half (each is compressed without
//! the keys every other post repeats); compressed as blocks of about 64 KiB (LZ4's window),
//! to about a fifth, at a higher speed, and the log writes less than half the bytes
//! (docs/performance.md, "The post log compresses blocks of posts"). A block holds the
//! posts of one append only, so appends of a post or two gain little.

use bytes::Bytes;

use crate::NewPost;

/// Bytes before the body.
pub(crate) const HEADER: usize = 8;
/// Fixed part of the body before the datacenter.
const FIXED: usize = 8 + 8 + 1 + 1;
/// A block's post count, after the fixed part.
const COUNT: usize = 4;
/// Larger bodies are damage, not posts (ingest bodies are at most 16 MiB).
pub(crate) const MAX_BODY: usize = 64 << 20;
/// Payloads shorter than this are stored as they are: compressing them gains nothing.
const COMPRESS_MIN: usize = 256;

const FLAG_LZ4: u8 = 1;
const FLAG_BLOCK: u8 = 2;

/// Appends one record holding the first posts of `posts` (at least one), the first
/// numbered `seq`, all appended at `ms`, and returns how many it took: the block closes at
/// the first post that brings it, framing included, to `block_bytes`, so a post longer
/// than that is a block of its own. `compress` asks for LZ4 when it makes the record
/// smaller. `scratch` is the caller's buffer for the uncompressed block, kept between
/// calls.
pub(crate) fn encode(
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    seq: u64,
    ms: u64,
    posts: &[NewPost<'_>],
    block_bytes: usize,
    compress: bool,
) -> usize {
    assert!(!posts.is_empty(), "a record holds at least one post");
    scratch.clear();
    let mut taken = 0;
    for post in posts {
        let dc = datacenter_label(post.datacenter);
        let len = u32::try_from(post.bytes.len()).expect("posts are far smaller than 4 GiB");
        scratch.push(dc.len() as u8);
        scratch.extend_from_slice(dc);
        scratch.extend_from_slice(&len.to_le_bytes());
        scratch.extend_from_slice(post.bytes);
        taken += 1;
        if scratch.len() >= block_bytes {
            break;
        }
    }
    let count = u32::try_from(taken).expect("a block holds far fewer than 4 G posts");
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&ms.to_le_bytes());
    let flags_at = out.len();
    out.extend_from_slice(&[FLAG_BLOCK, 0]);
    out.extend_from_slice(&count.to_le_bytes());
    let payload_at = out.len();
    if compress && scratch.len() >= COMPRESS_MIN {
        compress_into(scratch, out);
        if out.len() - payload_at < scratch.len() {
            out[flags_at] |= FLAG_LZ4;
        } else {
            // Incompressible: stored as it is.
            out.truncate(payload_at);
        }
    }
    if out.len() == payload_at {
        out.extend_from_slice(scratch);
    }
    let body = &out[start + HEADER..];
    let len = u32::try_from(body.len()).expect("blocks are far smaller than 4 GiB");
    let crc = crc32fast::hash(body);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    taken
}

/// LZ4-compresses `input` onto the end of `out`, its length first (the layout of
/// `lz4_flex::block::compress_prepend_size`), without an intermediate vector.
fn compress_into(input: &[u8], out: &mut Vec<u8>) {
    let size = u32::try_from(input.len()).expect("blocks are far smaller than 4 GiB");
    out.extend_from_slice(&size.to_le_bytes());
    let packed_at = out.len();
    out.resize(
        packed_at + lz4_flex::block::get_maximum_output_size(input.len()),
        0,
    );
    let packed = lz4_flex::block::compress_into(input, &mut out[packed_at..])
        .expect("LZ4's maximum output size always holds the compressed block");
    out.truncate(packed_at + packed);
}

/// A datacenter as stored: the operator's short code, cut at a character boundary if it
/// is longer than 255 bytes rather than refused (the post matters more than its label).
fn datacenter_label(datacenter: &str) -> &[u8] {
    let mut len = datacenter.len().min(u8::MAX as usize);
    while !datacenter.is_char_boundary(len) {
        len -= 1;
    }
    &datacenter.as_bytes()[..len]
}

/// A record as stored, borrowed from a read buffer.
#[derive(Debug)]
pub(crate) struct RawRecord<'a> {
    /// The sequence number of its first post.
    pub seq: u64,
    /// When its posts were appended, epoch ms.
    pub ms: u64,
    /// How many posts it holds (numbered `seq..seq + count`).
    pub count: u64,
    /// The datacenter of a one-post record of the format before blocks.
    datacenter: &'a [u8],
    flags: u8,
    payload: &'a [u8],
}

/// One post of a record, as [`RawRecord::posts`] returns it.
#[derive(Debug)]
pub(crate) struct StoredPost {
    /// Its sequence number.
    pub seq: u64,
    /// The datacenter it came from, as stored (UTF-8 unless damaged).
    pub datacenter: Bytes,
    /// Its JSON.
    pub bytes: Bytes,
}

impl RawRecord<'_> {
    /// One past the sequence number of its last post.
    pub(crate) fn end_seq(&self) -> u64 {
        self.seq + self.count
    }

    /// Its posts, in order, decompressed if needed. Their bytes share one buffer.
    pub(crate) fn posts(&self) -> Result<Vec<StoredPost>, String> {
        let payload = if self.flags & FLAG_LZ4 != 0 {
            // The size it claims is trusted by the decompressor's allocation.
            let size = self
                .payload
                .get(..4)
                .map(|s| u32::from_le_bytes(s.try_into().expect("4 bytes")) as usize);
            if size.is_none_or(|size| size > MAX_BODY) {
                return Err(format!("record {}: bad LZ4 payload size", self.seq));
            }
            lz4_flex::block::decompress_size_prepended(self.payload)
                .map(Bytes::from)
                .map_err(|e| format!("record {}: bad LZ4 payload: {e}", self.seq))?
        } else {
            Bytes::copy_from_slice(self.payload)
        };
        if self.flags & FLAG_BLOCK == 0 {
            return Ok(vec![StoredPost {
                seq: self.seq,
                datacenter: Bytes::copy_from_slice(self.datacenter),
                bytes: payload,
            }]);
        }
        self.split_block(&payload)
    }

    /// The posts of a decompressed block; refuses one whose contents disagree with its
    /// count (damage the checksum cannot see: it was written so).
    fn split_block(&self, payload: &Bytes) -> Result<Vec<StoredPost>, String> {
        let bad = |why: &str| format!("record {}: {why}", self.seq);
        // Every post takes at least five bytes: a damaged count cannot ask for more.
        let mut posts = Vec::with_capacity((self.count as usize).min(payload.len() / 5));
        let mut at = 0;
        while at < payload.len() {
            let dc_len = payload[at] as usize;
            let dc_at = at + 1;
            let len_at = dc_at + dc_len;
            let Some(len) = payload.get(len_at..len_at + 4) else {
                return Err(bad("a post overruns its block"));
            };
            let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
            let post_at = len_at + 4;
            let end = post_at
                .checked_add(len)
                .filter(|&end| end <= payload.len())
                .ok_or_else(|| bad("a post overruns its block"))?;
            posts.push(StoredPost {
                seq: self.seq + posts.len() as u64,
                datacenter: payload.slice(dc_at..len_at),
                bytes: payload.slice(post_at..end),
            });
            at = end;
        }
        if posts.len() as u64 != self.count {
            return Err(bad(&format!(
                "the block holds {} posts, its header says {}",
                posts.len(),
                self.count
            )));
        }
        Ok(posts)
    }
}

/// What the bytes at the start of a buffer hold.
#[derive(Debug)]
pub(crate) enum Parsed<'a> {
    /// A whole, intact record of `len` bytes.
    Record(RawRecord<'a>, usize),
    /// The start of a record: at least this many bytes are needed.
    Incomplete(usize),
    /// Not a record: a torn write or damage.
    Corrupt(String),
}

/// Parses the record at the start of `buf`.
pub(crate) fn parse(buf: &[u8]) -> Parsed<'_> {
    if buf.len() < HEADER {
        return Parsed::Incomplete(HEADER);
    }
    let len = u32::from_le_bytes(buf[0..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(buf[4..8].try_into().expect("4 bytes"));
    if !(FIXED..=MAX_BODY).contains(&len) {
        return Parsed::Corrupt(format!("impossible record length {len}"));
    }
    if buf.len() < HEADER + len {
        return Parsed::Incomplete(HEADER + len);
    }
    let body = &buf[HEADER..HEADER + len];
    if crc32fast::hash(body) != crc {
        return Parsed::Corrupt("checksum mismatch".into());
    }
    let seq = u64::from_le_bytes(body[0..8].try_into().expect("8 bytes"));
    let ms = u64::from_le_bytes(body[8..16].try_into().expect("8 bytes"));
    let flags = body[16];
    let dc_len = body[17] as usize;
    if FIXED + dc_len > len {
        return Parsed::Corrupt(format!("record {seq}: datacenter overruns the record"));
    }
    let (count, payload_at) = if flags & FLAG_BLOCK == 0 {
        (1, FIXED + dc_len)
    } else {
        let Some(count) = body.get(FIXED + dc_len..FIXED + dc_len + COUNT) else {
            return Parsed::Corrupt(format!("record {seq}: a block without its count"));
        };
        let count = u32::from_le_bytes(count.try_into().expect("4 bytes"));
        if count == 0 || dc_len != 0 {
            return Parsed::Corrupt(format!("record {seq}: a malformed block header"));
        }
        (u64::from(count), FIXED + dc_len + COUNT)
    };
    // Every later `seq + count` stays in range.
    if seq.checked_add(count).is_none() {
        return Parsed::Corrupt(format!("record {seq}: sequence numbers past the last"));
    }
    let record = RawRecord {
        seq,
        ms,
        count,
        datacenter: &body[FIXED..FIXED + dc_len],
        flags,
        payload: &body[payload_at..],
    };
    Parsed::Record(record, HEADER + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post<'a>(datacenter: &'a str, bytes: &'a [u8]) -> NewPost<'a> {
        NewPost { datacenter, bytes }
    }

    /// The record of all of `posts`.
    fn block(posts: &[NewPost<'_>], compress: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let taken = encode(
            &mut out,
            &mut Vec::new(),
            7,
            1_000,
            posts,
            usize::MAX,
            compress,
        );
        assert_eq!(taken, posts.len());
        out
    }

    fn parsed(bytes: &[u8]) -> RawRecord<'_> {
        match parse(bytes) {
            Parsed::Record(record, used) => {
                assert_eq!(used, bytes.len());
                record
            }
            other => panic!("not a whole record: {other:?}"),
        }
    }

    fn with_header(body: &[u8]) -> Vec<u8> {
        let mut out = (body.len() as u32).to_le_bytes().to_vec();
        out.extend_from_slice(&crc32fast::hash(body).to_le_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn blocks_round_trip_compressed_or_not() {
        let long = br#"{"id":1,"text":"hello"}"#.repeat(40);
        let cases: [&[NewPost<'_>]; 4] = [
            &[post("atla", b"{}")],
            &[post("atla", &long)],
            &[post("atla", &long), post("pdx", b"{}"), post("", &long)],
            &[post("pdx", b"{\"id\":2}"), post("pdx", b"{\"id\":3}")],
        ];
        for posts in cases {
            for compress in [true, false] {
                let bytes = block(posts, compress);
                let record = parsed(&bytes);
                assert_eq!((record.seq, record.ms), (7, 1_000));
                assert_eq!(record.count, posts.len() as u64);
                assert_eq!(record.end_seq(), 7 + posts.len() as u64);
                let stored = record.posts().unwrap();
                assert_eq!(stored.len(), posts.len());
                for (i, (stored, post)) in stored.iter().zip(posts).enumerate() {
                    assert_eq!(stored.seq, 7 + i as u64);
                    assert_eq!(&stored.bytes[..], post.bytes);
                    assert_eq!(&stored.datacenter[..], post.datacenter.as_bytes());
                }
            }
        }
        let three = [
            post("atla", &long),
            post("atla", &long),
            post("atla", &long),
        ];
        assert!(block(&three, true).len() < block(&three, false).len());
        // Too short to be worth compressing: stored as it is.
        assert_eq!(
            parsed(&block(&[post("a", b"{}")], true)).flags & FLAG_LZ4,
            0
        );
    }

    #[test]
    fn torn_and_damaged_records_are_recognised() {
        let bytes = block(&[post("atla", b"{\"id\":1}"), post("pdx", b"{}")], false);
        for cut in 0..bytes.len() {
            assert!(
                matches!(parse(&bytes[..cut]), Parsed::Incomplete(_)),
                "{cut}"
            );
        }
        let mut flipped = bytes.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(matches!(parse(&flipped), Parsed::Corrupt(_)));
        assert!(matches!(parse(&[0u8; 16]), Parsed::Corrupt(_)));
    }

    #[test]
    fn a_block_whose_posts_disagree_with_its_header_is_refused() {
        let bytes = block(&[post("atla", b"{\"id\":1}"), post("pdx", b"{}")], false);
        let body = &bytes[HEADER..];
        let count_at = FIXED;
        // A count other than the posts held, a count of zero, a datacenter in a block's
        // header, a post cut short: each written with a valid checksum.
        let rewritten = |at: usize, value: &[u8]| {
            let mut body = body.to_vec();
            body[at..at + value.len()].copy_from_slice(value);
            with_header(&body)
        };
        for count in [1u32, 3, 1 << 31] {
            let bytes = rewritten(count_at, &count.to_le_bytes());
            let error = parsed(&bytes).posts().unwrap_err();
            assert!(error.starts_with("record 7: "), "{error}");
        }
        assert!(matches!(
            parse(&rewritten(count_at, &0u32.to_le_bytes())),
            Parsed::Corrupt(_)
        ));
        assert!(matches!(parse(&rewritten(17, &[1])), Parsed::Corrupt(_)));
        let cut = with_header(&body[..body.len() - 1]);
        let error = parsed(&cut).posts().unwrap_err();
        assert!(error.contains("overruns"), "{error}");
    }

    /// A small xorshift generator: the hostile-input test below needs reproducible noise,
    /// not a crate.
    fn noise(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn damaged_records_with_a_valid_checksum_never_panic() {
        let long = br#"{"id":1,"text":"hello hello hello"}"#.repeat(20);
        let posts = [post("atla", &long), post("pdx", b"{}"), post("", &long)];
        let mut state = 0x5eed_u64;
        for round in 0..20_000 {
            let compress = round % 2 == 0;
            let mut body = block(&posts, compress)[HEADER..].to_vec();
            // A few bytes changed anywhere, the header included, then checksummed again:
            // damage written so, which only the contents can reveal.
            for _ in 0..1 + noise(&mut state) % 4 {
                let at = (noise(&mut state) as usize) % body.len();
                body[at] = noise(&mut state) as u8;
            }
            if round % 7 == 0 {
                body[..8].copy_from_slice(&(u64::MAX - noise(&mut state) % 4).to_le_bytes());
            }
            let bytes = with_header(&body);
            if let Parsed::Record(record, _) = parse(&bytes)
                && let Ok(stored) = record.posts()
            {
                assert_eq!(stored.len() as u64, record.count);
                for (i, post) in stored.iter().enumerate() {
                    assert_eq!(post.seq, record.seq + i as u64);
                }
            }
        }
    }

    #[test]
    fn a_compressed_block_claiming_more_than_a_record_can_hold_is_refused_unread() {
        let long = br#"{"id":1,"text":"hello"}"#.repeat(40);
        let bytes = block(&[post("atla", &long)], true);
        let mut body = bytes[HEADER..].to_vec();
        assert_eq!(body[16] & FLAG_LZ4, FLAG_LZ4);
        let size_at = FIXED + COUNT;
        body[size_at..size_at + 4].copy_from_slice(&(MAX_BODY as u32 + 1).to_le_bytes());
        let damaged = with_header(&body);
        let error = parsed(&damaged).posts().unwrap_err();
        assert_eq!(error, "record 7: bad LZ4 payload size");
    }

    #[test]
    fn long_datacenter_names_are_cut_at_a_character_boundary() {
        let name = "é".repeat(200);
        let bytes = block(&[post(&name, b"{}")], false);
        let stored = parsed(&bytes).posts().unwrap();
        assert!(std::str::from_utf8(&stored[0].datacenter).is_ok());
        assert_eq!(stored[0].datacenter.len(), 254);
    }
}
