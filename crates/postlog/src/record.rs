//! The on-disk record of [`SegmentLog`](crate::SegmentLog): one post, length-prefixed and
//! checksummed so that a torn or damaged tail is recognised.
//!
//! ```text
//! u32 LE  body length
//! u32 LE  CRC-32 (IEEE) of the body
//! body:
//!   u64 LE  sequence number
//!   u64 LE  append time, epoch ms
//!   u8      flags (bit 0: payload is LZ4 block-compressed, uncompressed size prepended)
//!   u8      datacenter length
//!   ...     datacenter (UTF-8)
//!   ...     payload: the post's JSON
//! ```

use bytes::Bytes;

/// Bytes before the body.
pub(crate) const HEADER: usize = 8;
/// Fixed part of the body before the datacenter.
const FIXED: usize = 8 + 8 + 1 + 1;
/// Larger bodies are damage, not posts (ingest bodies are at most 16 MiB).
pub(crate) const MAX_BODY: usize = 64 << 20;
/// Payloads shorter than this are stored as they are: compressing them gains nothing.
const COMPRESS_MIN: usize = 256;

const FLAG_LZ4: u8 = 1;

/// Appends the record of one post to `out`; `compress` asks for LZ4 when it makes the
/// record smaller.
pub(crate) fn encode(
    out: &mut Vec<u8>,
    seq: u64,
    ms: u64,
    datacenter: &str,
    post: &[u8],
    compress: bool,
) {
    // Datacenter names are the operator's short codes; a longer one is cut at a character
    // boundary rather than refused (the post matters more than its label).
    let mut dc_len = datacenter.len().min(u8::MAX as usize);
    while !datacenter.is_char_boundary(dc_len) {
        dc_len -= 1;
    }
    let dc = &datacenter.as_bytes()[..dc_len];
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&ms.to_le_bytes());
    let flags_at = out.len();
    out.push(0);
    out.push(dc_len as u8);
    out.extend_from_slice(dc);
    let payload_at = out.len();
    if compress && post.len() >= COMPRESS_MIN {
        let packed = lz4_flex::block::compress_prepend_size(post);
        if packed.len() < post.len() {
            out.extend_from_slice(&packed);
            out[flags_at] = FLAG_LZ4;
        }
    }
    if out.len() == payload_at {
        out.extend_from_slice(post);
    }
    let body = &out[start + HEADER..];
    let len = u32::try_from(body.len()).expect("posts are far smaller than 4 GiB");
    let crc = crc32fast::hash(body);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// A record as stored, borrowed from a read buffer.
#[derive(Debug)]
pub(crate) struct RawRecord<'a> {
    pub seq: u64,
    pub ms: u64,
    pub datacenter: &'a [u8],
    flags: u8,
    payload: &'a [u8],
}

impl RawRecord<'_> {
    /// The post's JSON, decompressed if needed.
    pub(crate) fn post(&self) -> Result<Bytes, String> {
        if self.flags & FLAG_LZ4 != 0 {
            lz4_flex::block::decompress_size_prepended(self.payload)
                .map(Bytes::from)
                .map_err(|e| format!("record {}: bad LZ4 payload: {e}", self.seq))
        } else {
            Ok(Bytes::copy_from_slice(self.payload))
        }
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
    let record = RawRecord {
        seq,
        ms,
        datacenter: &body[FIXED..FIXED + dc_len],
        flags,
        payload: &body[FIXED + dc_len..],
    };
    Parsed::Record(record, HEADER + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(post: &[u8], compress: bool) -> Vec<u8> {
        let mut out = Vec::new();
        encode(&mut out, 7, 1_000, "atla", post, compress);
        out
    }

    #[test]
    fn records_round_trip_compressed_or_not() {
        let long = br#"{"id":1,"text":"hello"}"#.repeat(40);
        for (post, compress) in [(&b"{}"[..], true), (&long[..], true), (&long[..], false)] {
            let bytes = one(post, compress);
            let Parsed::Record(record, used) = parse(&bytes) else {
                panic!("not a record");
            };
            assert_eq!(used, bytes.len());
            assert_eq!((record.seq, record.ms), (7, 1_000));
            assert_eq!(record.datacenter, b"atla");
            assert_eq!(&record.post().unwrap()[..], post);
        }
        assert!(one(&long, true).len() < one(&long, false).len());
    }

    #[test]
    fn torn_and_damaged_records_are_recognised() {
        let bytes = one(b"{\"id\":1}", false);
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
    fn long_datacenter_names_are_cut_at_a_character_boundary() {
        let name = "é".repeat(200);
        let mut out = Vec::new();
        encode(&mut out, 1, 1, &name, b"{}", false);
        let Parsed::Record(record, _) = parse(&out) else {
            panic!("not a record");
        };
        assert!(std::str::from_utf8(record.datacenter).is_ok());
        assert_eq!(record.datacenter.len(), 254);
    }
}
