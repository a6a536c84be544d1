//! The unit an outbox queues: framed messages (one or many, e.g. everything a batch of
//! ingest brings to a group of connections), and, when gzip connections receive them, the
//! same bytes compressed once as an independent deflate segment that every such
//! connection writes as is (see [`super::gzip`]).

use bytes::Bytes;

use super::gzip::{Deflated, Deflater};

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
