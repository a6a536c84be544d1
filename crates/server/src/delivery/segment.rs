//! The unit a connection's body writes: framed messages (one or many, e.g. everything a
//! batch of ingest brings to a group of connections), and, when gzip connections receive
//! them, the same bytes compressed once as an independent deflate segment that every such
//! connection writes as is (see [`super::gzip`]).
//!
//! Live delivery ([`super::fanout`], through outboxes) and replay ([`super::replay`],
//! through its feed) both build their segments with one [`SegmentBuilder`], so a post
//! reaches the wire framed the same way whether it is delivered live or read back from the
//! post log.

use bytes::Bytes;

use super::format::{Format, write_v2_line};
use super::gzip::{Deflated, Deflater};
use super::select::{Routed, frame_plain_into};

/// Framed messages ready to write, shared by every connection that receives them.
#[derive(Debug, Clone)]
pub struct Segment {
    plain: Bytes,
    deflated: Option<Deflated>,
}

impl Segment {
    /// Messages without a compressed form: identity connections write them as they are,
    /// gzip connections compress them themselves.
    pub fn plain(plain: Bytes) -> Self {
        Self {
            plain,
            deflated: None,
        }
    }

    /// Messages compressed once with `deflater`, for gzip connections to share.
    pub fn compressed(plain: Bytes, deflater: &mut Deflater) -> Self {
        let deflated = deflater.deflate(&plain);
        Self::with_deflated(plain, deflated)
    }

    /// Messages with the compressed form `deflated`, made from `plain` elsewhere (live
    /// delivery compresses a batch's segments on several threads at once).
    pub fn with_deflated(plain: Bytes, deflated: Deflated) -> Self {
        debug_assert_eq!(
            deflated.len,
            plain.len() as u64,
            "deflated from these bytes"
        );
        Self {
            plain,
            deflated: Some(deflated),
        }
    }

    /// The framed messages, uncompressed.
    pub fn plain_bytes(&self) -> &Bytes {
        &self.plain
    }

    /// The shared compressed form, if it was made.
    pub fn deflated(&self) -> Option<&Deflated> {
        self.deflated.as_ref()
    }

    /// Uncompressed length: what the outbox bound counts.
    pub fn len(&self) -> usize {
        self.plain.len()
    }

    /// Whether the segment holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.plain.is_empty()
    }
}

impl From<Bytes> for Segment {
    fn from(plain: Bytes) -> Self {
        Self::plain(plain)
    }
}

/// Framed messages being gathered into a segment: the one place where a routed post
/// becomes the bytes a connection writes, for a group of live connections and for a
/// replay alike.
#[derive(Debug, Default)]
pub struct SegmentBuilder {
    plain: Vec<u8>,
    messages: u64,
    /// The room the next segment starts with: the last one's length and a quarter more.
    /// Live delivery cuts a group's segment at 64 KiB, so after the first cut of a batch
    /// the next segments start with about the room they will take. Grown from nothing by
    /// doubling, each message of such a segment is copied about once more on the way
    /// (each doubling copies what is there), and the segment can hold up to twice its
    /// length while it waits in the outboxes.
    next_capacity: usize,
}

/// The most room a segment starts with, whatever the last one's size.
const MAX_START_CAPACITY: usize = 256 << 10;

impl SegmentBuilder {
    /// Adds the message `routed` says to send for the post whose JSON is `raw`, in the
    /// receivers' `format`: the post with its `matching_rules` (rules streams), or the
    /// plain post (volume streams), native or as a v2 line.
    pub fn push(&mut self, routed: &Routed, raw: &[u8], format: &Format) {
        // Reserved on the first message, not when the last segment is taken: a builder
        // that stays idle then holds nothing.
        if self.plain.capacity() == 0 {
            self.plain.reserve(self.next_capacity);
        }
        let written = match (routed, format) {
            (Routed::Matched { message, .. }, _) => {
                self.plain.extend_from_slice(message);
                true
            }
            (Routed::MatchedV2 { rules, .. }, Format::V2(fields)) => {
                write_v2_line(raw, fields, Some(rules), &mut self.plain)
            }
            (Routed::Partition(_), Format::V2(fields)) => {
                write_v2_line(raw, fields, None, &mut self.plain)
            }
            // A native connection on a v2 stream cannot be opened; if it were, it would
            // get the plain post.
            (Routed::MatchedV2 { .. } | Routed::Partition(_), Format::Native) => {
                frame_plain_into(raw, &mut self.plain);
                true
            }
        };
        if written {
            self.messages += 1;
        }
    }

    /// Bytes gathered so far.
    pub fn len(&self) -> usize {
        self.plain.len()
    }

    /// Whether nothing was gathered since the last [`SegmentBuilder::take`] or
    /// [`SegmentBuilder::take_plain`].
    pub fn is_empty(&self) -> bool {
        self.messages == 0
    }

    /// What was gathered as a segment (compressed with `deflater` when one is given: some
    /// receiver writes gzip and more than one will share it) and its number of messages,
    /// leaving the builder empty; `None` when nothing was gathered.
    pub fn take(&mut self, deflater: Option<&mut Deflater>) -> Option<(Segment, u64)> {
        let (plain, messages) = self.take_plain()?;
        let segment = match deflater {
            Some(deflater) => Segment::compressed(plain, deflater),
            None => Segment::plain(plain),
        };
        Some((segment, messages))
    }

    /// What was gathered, uncompressed, and its number of messages, leaving the builder
    /// empty; `None` when nothing was gathered. For a caller that compresses elsewhere.
    pub fn take_plain(&mut self) -> Option<(Bytes, u64)> {
        if self.is_empty() {
            return None;
        }
        let mut plain = std::mem::take(&mut self.plain);
        self.next_capacity = (plain.len() + plain.len() / 4).min(MAX_START_CAPACITY);
        give_back_unused(&mut plain);
        Some((Bytes::from(plain), std::mem::take(&mut self.messages)))
    }
}

/// Frees the room of a segment that came out far smaller than the room it started with
/// (the last of a batch, after full ones; or a full one after a segment that a very large
/// message took past 100 KB), with at most one copy of a small segment (the allocator
/// shrinks large blocks in place): the segment may wait in outboxes for a while, and they
/// count its length, not its allocation.
fn give_back_unused(plain: &mut Vec<u8>) {
    if plain.capacity() > 2 * plain.len() {
        plain.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pushes framed messages of `size` bytes until the builder holds `total` or more.
    fn fill(builder: &mut SegmentBuilder, size: usize, total: usize) -> Vec<u8> {
        let mut sent = Vec::new();
        let mut n = 0u8;
        while sent.len() < total {
            let mut message = vec![b'a' + n % 26; size - 2];
            message.extend_from_slice(b"\r\n");
            let routed = Routed::Matched {
                message: &message,
                local: true,
            };
            builder.push(&routed, b"{}", &Format::Native);
            sent.extend_from_slice(&message);
            n = n.wrapping_add(1);
        }
        sent
    }

    #[test]
    fn a_segment_starts_with_the_room_the_last_one_took_and_an_idle_builder_holds_none() {
        let mut builder = SegmentBuilder::default();
        let first = fill(&mut builder, 4_300, 64 << 10);
        let (segment, messages) = builder.take_plain().expect("a segment");
        assert_eq!((&segment[..], messages), (&first[..], 16));
        // Taken: nothing is held until the next message comes.
        assert_eq!(builder.plain.capacity(), 0);
        assert!(builder.take_plain().is_none());
        // A segment as large as the last is written without moving: no copy as it grows.
        builder.push(
            &Routed::Matched {
                message: b"{}\r\n",
                local: true,
            },
            b"{}",
            &Format::Native,
        );
        let start = builder.plain.as_ptr();
        let second = fill(&mut builder, 4_300, (64 << 10) - 4);
        assert_eq!(builder.plain.as_ptr(), start, "the segment moved");
        let (segment, _) = builder.take_plain().expect("a segment");
        assert_eq!(&segment[4..], &second[..]);
        // Room for a quarter more than it holds.
        assert_eq!(builder.next_capacity, segment.len() + segment.len() / 4);
        // A small segment after large ones starts with their room, and is then sized to
        // itself.
        let third = fill(&mut builder, 4_300, 1);
        assert!(builder.plain.capacity() >= 64 << 10);
        let (segment, messages) = builder.take_plain().expect("a segment");
        assert_eq!((&segment[..], messages), (&third[..], 1));
        assert_eq!(builder.next_capacity, 4_300 + 4_300 / 4);
        let held = segment
            .try_into_mut()
            .expect("the only reference")
            .capacity();
        assert!(held < 2 * 4_300, "{held}");
    }

    #[test]
    fn a_segment_far_smaller_than_its_room_gives_the_rest_back() {
        let mut small = Vec::with_capacity(80 << 10);
        small.extend_from_slice(&[b'x'; 4_300]);
        give_back_unused(&mut small);
        assert!(small.capacity() < 2 * 4_300, "{}", small.capacity());
        assert_eq!(small, [b'x'; 4_300]);
        // Half full or more: kept as it is, no copy.
        let mut full = Vec::with_capacity(80 << 10);
        full.extend_from_slice(&[b'y'; 41_000]);
        let start = full.as_ptr();
        give_back_unused(&mut full);
        assert_eq!((full.as_ptr(), full.capacity() >= 80 << 10), (start, true));
    }

    #[test]
    fn a_segment_starts_with_at_most_a_quarter_of_a_mebibyte_of_room() {
        let mut builder = SegmentBuilder::default();
        fill(&mut builder, 100_000, 1 << 20);
        builder.take_plain().expect("a segment");
        assert_eq!(builder.next_capacity, MAX_START_CAPACITY);
    }
}
