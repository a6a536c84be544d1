//! Gzip assembled from independent deflate segments, so a message is compressed once per
//! stream rather than once per connection.
//!
//! A [`Deflater`] turns bytes into a *segment*: raw deflate from a fresh compressor state
//! (no reference to anything written before), ended with a sync flush (byte-aligned, no
//! `BFINAL` block). Segments can therefore be concatenated in any order after any other
//! segments and still form one valid deflate stream; each one decodes as soon as it has
//! arrived. A [`GzipMember`] is one connection's gzip stream built from such segments: the
//! 10-byte header before the first one, a running CRC-32 (combined from each segment's
//! CRC, never recomputed over the data) and length, and at the end an empty final block
//! (`03 00`) and the trailer (CRC-32, ISIZE, little-endian). Combining a CRC with a
//! segment's multiplies it by x^(8·len) modulo the CRC polynomial; that factor depends only
//! on the segment, so it is computed once with the segment (`Deflated::shift`) rather
//! than by each of the thousands of connections that write it.
//!
//! A deflater keeps no state from one segment to the next, only its memory (about 300 KB
//! of zlib tables and window). Connections therefore own none: what a connection
//! compresses itself (its prelude, a replayed batch, its closing line) goes through its
//! thread's deflater ([`with_thread_deflater`]), and a heartbeat is one segment made once
//! per process ([`heartbeat`]). A deflater per connection was most of an idle gzip
//! connection's memory (docs/performance.md, "Connections").

use std::cell::RefCell;
use std::sync::LazyLock;

use bytes::Bytes;
use crc32fast::Hasher;
use flate2::{Compress, Compression, FlushCompress};
use zlib_rs::crc32::{crc32_combine, crc32_combine_gen, crc32_combine_op};

/// The gzip header every member starts with: deflate, no flags, no mtime, unknown OS.
const HEADER: [u8; 10] = [0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff];
/// An empty fixed-Huffman block with `BFINAL` set: ends the deflate stream.
const FINAL_BLOCK: [u8; 2] = [0x03, 0x00];

/// Some bytes compressed as an independent raw-deflate segment, with what a gzip member
/// needs to account for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deflated {
    /// The raw deflate bytes: starts from a fresh state, ends sync-flushed, never final.
    pub bytes: Bytes,
    /// CRC-32 of the uncompressed bytes.
    pub crc: u32,
    /// Length of the uncompressed bytes.
    pub len: u64,
    /// What a running CRC-32 is multiplied by to append this segment's bytes
    /// (x^(8·len) modulo the CRC polynomial, zlib's `crc32_combine_gen`). Private, so
    /// that a `Deflated` is only ever made by [`Deflater::deflate`], which derives it from
    /// `len`.
    shift: u32,
}

/// Compresses bytes into independent segments; reuses its compressor's memory.
pub struct Deflater {
    compress: Compress,
}

impl Default for Deflater {
    fn default() -> Self {
        Self::new()
    }
}

impl Deflater {
    /// A deflater at level 1: streams are CPU-bound on the server, and posts compress well
    /// at any level.
    pub fn new() -> Self {
        Self {
            compress: Compress::new(Compression::fast(), false),
        }
    }

    /// Compresses the concatenation of `pieces` as one segment, appended to `out`; returns
    /// the CRC-32 and length of the uncompressed bytes.
    pub fn deflate_into<'a>(
        &mut self,
        pieces: impl IntoIterator<Item = &'a [u8]>,
        out: &mut Vec<u8>,
    ) -> (u32, u64) {
        self.compress.reset();
        let mut crc = Hasher::new();
        let mut len = 0u64;
        for piece in pieces {
            crc.update(piece);
            len += piece.len() as u64;
            self.run(piece, FlushCompress::None, out);
        }
        self.run(&[], FlushCompress::Sync, out);
        (crc.finalize(), len)
    }

    /// Compresses `plain` as one segment.
    pub fn deflate(&mut self, plain: &[u8]) -> Deflated {
        let mut out = Vec::with_capacity(plain.len() / 3 + 64);
        let (crc, len) = self.deflate_into([plain], &mut out);
        Deflated {
            bytes: Bytes::from(out),
            crc,
            len,
            shift: crc32_combine_gen(len),
        }
    }

    /// Feeds `input` until it is consumed and, for a flush, until the output is complete
    /// (zlib's contract: a call that fills the output buffer must be repeated).
    fn run(&mut self, mut input: &[u8], flush: FlushCompress, out: &mut Vec<u8>) {
        loop {
            out.reserve(input.len() / 2 + 256);
            let before = self.compress.total_in();
            self.compress
                .compress_vec(input, out, flush)
                .expect("deflating into memory does not fail");
            let consumed = usize::try_from(self.compress.total_in() - before)
                .expect("consumed at most the input's length");
            input = &input[consumed..];
            if input.is_empty() && out.len() < out.capacity() {
                return;
            }
        }
    }
}

thread_local! {
    /// The deflater of every connection served on this thread.
    static THREAD_DEFLATER: RefCell<Deflater> = RefCell::new(Deflater::new());
}

/// Runs `f` with this thread's deflater: for segments of one connection, compressed where
/// the connection is being written. `f` must not call this function again.
pub fn with_thread_deflater<R>(f: impl FnOnce(&mut Deflater) -> R) -> R {
    THREAD_DEFLATER.with(|deflater| f(&mut deflater.borrow_mut()))
}

/// A heartbeat (`\r\n`) as a segment: compressed once, written by every gzip connection
/// that falls silent (resetting a deflater costs more than the heartbeat itself).
pub fn heartbeat() -> &'static Deflated {
    static HEARTBEAT: LazyLock<Deflated> = LazyLock::new(|| Deflater::new().deflate(b"\r\n"));
    &HEARTBEAT
}

/// One connection's gzip stream, written segment by segment.
#[derive(Default)]
pub struct GzipMember {
    started: bool,
    /// CRC-32 of everything written so far (0 for nothing).
    crc: u32,
    len: u64,
}

impl GzipMember {
    /// A member that has written nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a segment (shared with other members, or this connection's own) to `out`,
    /// after the header if this is the start of the member.
    pub fn append(&mut self, segment: &Deflated, out: &mut Vec<u8>) {
        self.start(out);
        out.extend_from_slice(&segment.bytes);
        self.account(segment);
    }

    /// [`append`](Self::append) without a copy: once the header is out, a shared segment
    /// alone is a whole chunk, returned as a clone of its bytes (a reference count, no
    /// allocation per connection). `None`, writing nothing, before the header.
    pub fn append_alone(&mut self, segment: &Deflated) -> Option<Bytes> {
        if !self.started {
            return None;
        }
        self.account(segment);
        Some(segment.bytes.clone())
    }

    /// Adds a segment's uncompressed bytes to the trailer's CRC and length.
    fn account(&mut self, segment: &Deflated) {
        self.crc = crc32_combine_op(self.crc, segment.crc, segment.shift);
        self.len += segment.len;
    }

    /// Compresses `pieces` with `deflater` as a segment of this member only and appends it.
    pub fn append_own<'a>(
        &mut self,
        deflater: &mut Deflater,
        pieces: impl IntoIterator<Item = &'a [u8]>,
        out: &mut Vec<u8>,
    ) {
        self.start(out);
        let (crc, len) = deflater.deflate_into(pieces, out);
        self.crc = crc32_combine(self.crc, crc, len);
        self.len += len;
    }

    /// Ends the member: the final empty block and the trailer (header first if nothing
    /// was written).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        self.start(out);
        out.extend_from_slice(&FINAL_BLOCK);
        out.extend_from_slice(&self.crc.to_le_bytes());
        // ISIZE is the length modulo 2^32.
        out.extend_from_slice(&(self.len as u32).to_le_bytes());
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if !self.started {
            out.extend_from_slice(&HEADER);
            self.started = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};

    use super::*;

    fn decode_whole(body: &[u8]) -> String {
        let mut text = String::new();
        flate2::read::GzDecoder::new(body)
            .read_to_string(&mut text)
            .expect("a valid gzip member with a correct trailer");
        text
    }

    #[test]
    fn segments_compressed_apart_concatenate_into_one_valid_member() {
        let mut deflater = Deflater::new();
        let first = deflater.deflate(b"{\"id\":1}\r\n{\"id\":2}\r\n");
        let second = deflater.deflate(&b"{\"text\":\"same same same\"}\r\n".repeat(200));
        let mut member = GzipMember::new();
        let mut body = Vec::new();
        member.append(&first, &mut body);
        // Each segment decodes as soon as it has arrived.
        let mut streaming = flate2::write::GzDecoder::new(Vec::new());
        streaming.write_all(&body).unwrap();
        streaming.flush().unwrap();
        assert_eq!(streaming.get_ref(), b"{\"id\":1}\r\n{\"id\":2}\r\n");
        member.append_own(&mut deflater, [&b"\r\n"[..]], &mut body);
        member.append(&second, &mut body);
        member.finish(&mut body);
        let expected = format!(
            "{{\"id\":1}}\r\n{{\"id\":2}}\r\n\r\n{}",
            "{\"text\":\"same same same\"}\r\n".repeat(200)
        );
        assert_eq!(decode_whole(&body), expected);
        assert!(second.bytes.len() < 200, "repetition compresses");
    }

    #[test]
    fn the_thread_deflater_and_the_shared_heartbeat_make_ordinary_segments() {
        let mut member = GzipMember::new();
        let mut body = Vec::new();
        with_thread_deflater(|d| member.append_own(d, [&b"{\"a\":1}\r\n"[..]], &mut body));
        member.append(heartbeat(), &mut body);
        with_thread_deflater(|d| member.append_own(d, [&b"{\"b\":2}\r\n"[..]], &mut body));
        member.append(heartbeat(), &mut body);
        member.finish(&mut body);
        assert_eq!(decode_whole(&body), "{\"a\":1}\r\n\r\n{\"b\":2}\r\n\r\n");
        assert!(std::ptr::eq(heartbeat(), heartbeat()), "made once");
    }

    #[test]
    fn the_trailer_holds_the_crc_and_length_of_everything_written() {
        // Shared segments (combined with their precomputed shift) and own segments
        // (combined from their length), empty ones included, of lengths across many bits.
        let mut deflater = Deflater::new();
        let mut member = GzipMember::new();
        let mut body = Vec::new();
        let mut plain = Vec::new();
        for (i, len) in [0usize, 1, 2, 3, 255, 256, 4_000, 0, 65_537, 7]
            .iter()
            .enumerate()
        {
            let bytes: Vec<u8> = (0..*len).map(|b| (b * 31 + i) as u8).collect();
            if i % 2 == 0 {
                member.append(&deflater.deflate(&bytes), &mut body);
            } else {
                member.append_own(&mut deflater, [&bytes[..]], &mut body);
            }
            plain.extend_from_slice(&bytes);
        }
        member.finish(&mut body);
        let trailer = &body[body.len() - 8..];
        assert_eq!(trailer[..4], crc32fast::hash(&plain).to_le_bytes());
        assert_eq!(trailer[4..], (plain.len() as u32).to_le_bytes());
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut decoded)
            .expect("a valid gzip member with a correct trailer");
        assert_eq!(decoded, plain);
    }

    #[test]
    fn an_empty_member_is_valid_gzip_too() {
        let mut body = Vec::new();
        GzipMember::new().finish(&mut body);
        assert_eq!(decode_whole(&body), "");
    }

    #[test]
    fn large_incompressible_input_is_deflated_completely() {
        // xorshift noise: deflate output exceeds the input, so the output buffer fills.
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let noise: Vec<u8> = (0..300_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let segment = Deflater::new().deflate(&noise);
        let mut member = GzipMember::new();
        let mut body = Vec::new();
        member.append(&segment, &mut body);
        member.finish(&mut body);
        let mut decoded = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut decoded)
            .unwrap();
        assert_eq!(decoded, noise);
    }
}
