//! Stream body bytes → message lines, chunk by chunk.
//!
//! A Gnip-style stream body is one gzip stream for the whole response, flushed after every
//! batch (docs/compatibility.md §1.2), so each HTTP chunk can be decoded as soon as it arrives; waiting
//! for more input would delay messages by up to a heartbeat. Messages end with `\r\n`; a
//! bare `\r\n` is a heartbeat. Lines are split on `\n` and a trailing `\r` is removed, which
//! also reads bodies framed with a bare `\n`.

use std::io::{self, Write as _};

use flate2::write::GzDecoder;

/// Longest line accepted: far above any post, small enough to stop a body without
/// newlines from eating memory.
const MAX_LINE: usize = 16 << 20;

/// How the response body is encoded (its `Content-Encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyEncoding {
    /// `Content-Encoding: gzip`.
    Gzip,
    /// No content encoding.
    Identity,
}

/// Turns a body's chunks into complete lines.
pub struct LineDecoder {
    gzip: Option<GzDecoder<Vec<u8>>>,
    /// The start of a line not yet ended by `\n` (only ever a partial line: complete
    /// lines are handed out straight from the decoded chunk, never copied or shifted).
    pending: Vec<u8>,
}

impl LineDecoder {
    /// A decoder for a body in `encoding`.
    pub fn new(encoding: BodyEncoding) -> Self {
        Self {
            gzip: match encoding {
                BodyEncoding::Gzip => Some(GzDecoder::new(Vec::new())),
                BodyEncoding::Identity => None,
            },
            pending: Vec::new(),
        }
    }

    /// Decodes one chunk and calls `line` with every line it completes, without the line
    /// end (an empty line is a heartbeat). Fails on corrupt gzip or an overlong line.
    pub fn feed(&mut self, chunk: &[u8], mut line: impl FnMut(&[u8])) -> io::Result<()> {
        match &mut self.gzip {
            Some(decoder) => {
                decoder.write_all(chunk)?;
                // Push everything decodable so far into the inner buffer.
                decoder.flush()?;
                let decoded = decoder.get_mut();
                split_lines(&mut self.pending, decoded, &mut line);
                decoded.clear();
            }
            None => split_lines(&mut self.pending, chunk, &mut line),
        }
        if self.pending.len() > MAX_LINE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a stream line is longer than {MAX_LINE} bytes"),
            ));
        }
        Ok(())
    }
}

/// Calls `line` for each line `input` completes (the first one continuing `pending`), and
/// leaves the unfinished rest in `pending`.
fn split_lines(pending: &mut Vec<u8>, input: &[u8], line: &mut impl FnMut(&[u8])) {
    let mut rest = input;
    if !pending.is_empty() {
        let Some(end) = memchr::memchr(b'\n', rest) else {
            pending.extend_from_slice(rest);
            return;
        };
        pending.extend_from_slice(&rest[..end]);
        emit(pending, line);
        pending.clear();
        rest = &rest[end + 1..];
    }
    let mut start = 0;
    for end in memchr::memchr_iter(b'\n', rest) {
        emit(&rest[start..end], line);
        start = end + 1;
    }
    pending.extend_from_slice(&rest[start..]);
}

/// Hands out one line without its `\r`, if any.
fn emit(text: &[u8], line: &mut impl FnMut(&[u8])) {
    line(text.strip_suffix(b"\r").unwrap_or(text));
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};

    /// A gzip body flushed after each message, as the server writes it; returns the body
    /// and where each flush ended.
    fn gzip_body(messages: &[&str]) -> (Vec<u8>, Vec<usize>) {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        let mut ends = Vec::new();
        for m in messages {
            encoder.write_all(m.as_bytes()).expect("write to Vec");
            // `flush` on a flate2 writer is a Z_SYNC_FLUSH, as the server does per batch.
            encoder.flush().expect("sync flush");
            ends.push(encoder.get_ref().len());
        }
        (encoder.finish().expect("finish"), ends)
    }

    fn collect(decoder: &mut LineDecoder, chunk: &[u8], into: &mut Vec<String>) {
        decoder
            .feed(chunk, |l| {
                into.push(String::from_utf8(l.to_vec()).expect("UTF-8"))
            })
            .expect("decodes");
    }

    #[test]
    fn each_flushed_gzip_chunk_yields_its_lines_at_once() {
        let (body, ends) = gzip_body(&["{\"id\":1}\r\n", "\r\n", "{\"id\":2}\r\n{\"id\":3}\r\n"]);
        let mut decoder = LineDecoder::new(BodyEncoding::Gzip);
        let mut lines = Vec::new();
        collect(&mut decoder, &body[..ends[0]], &mut lines);
        assert_eq!(lines, ["{\"id\":1}"]);
        collect(&mut decoder, &body[ends[0]..ends[1]], &mut lines);
        assert_eq!(lines, ["{\"id\":1}", ""]);
        collect(&mut decoder, &body[ends[1]..ends[2]], &mut lines);
        assert_eq!(lines, ["{\"id\":1}", "", "{\"id\":2}", "{\"id\":3}"]);
        collect(&mut decoder, &body[ends[2]..], &mut lines);
        assert_eq!(lines.len(), 4);
    }

    #[test]
    fn chunks_split_anywhere_still_decode_to_the_same_lines() {
        let (body, _) = gzip_body(&[
            "{\"text\":\"caf\u{e9} \u{1f355}\"}\r\n",
            "\r\n",
            "{\"id\":2}\r\n",
        ]);
        for size in [1, 2, 3, 7, 64] {
            let mut decoder = LineDecoder::new(BodyEncoding::Gzip);
            let mut lines = Vec::new();
            for chunk in body.chunks(size) {
                collect(&mut decoder, chunk, &mut lines);
            }
            assert_eq!(
                lines,
                ["{\"text\":\"caf\u{e9} \u{1f355}\"}", "", "{\"id\":2}"],
                "{size}"
            );
        }
    }

    #[test]
    fn identity_bodies_and_bare_newlines_are_read_too() {
        let mut decoder = LineDecoder::new(BodyEncoding::Identity);
        let mut lines = Vec::new();
        collect(&mut decoder, b"{\"a\":1}\n{\"b\"", &mut lines);
        collect(&mut decoder, b":2}\r\n\r\n", &mut lines);
        assert_eq!(lines, ["{\"a\":1}", "{\"b\":2}", ""]);
    }

    #[test]
    fn corrupt_gzip_is_an_error() {
        let mut decoder = LineDecoder::new(BodyEncoding::Gzip);
        assert!(decoder.feed(b"this is not gzip at all", |_| {}).is_err());
    }
}
