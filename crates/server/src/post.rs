//! The accepted post as it travels from ingest (or the cluster backend's consumer) to the
//! pipeline: a leaf type, so that the pipeline, the cluster seam and ingest can share it
//! without importing each other.

use std::sync::Arc;

use bytes::Bytes;
use sluice_model::PostView;

/// One accepted post on its way to the pipeline.
#[derive(Debug)]
pub struct IngestedPost {
    /// The post's JSON, and the matcher's view of it where it was parsed already.
    pub body: PostBody,
    /// The post's id (`id_str`, else `id`), read where the post enters sluice (the ingest
    /// API reads it when it validates the post). De-duplication, the cluster's JetStream
    /// message id, Decahose sampling and partitions use it; nothing after ingest reads it
    /// from the bytes again.
    pub id: u64,
    /// The datacenter the post originated in.
    pub datacenter: Arc<str>,
}

impl IngestedPost {
    /// The post's JSON, one line, without line terminator: what is stored and delivered.
    pub fn bytes(&self) -> &Bytes {
        self.body.bytes()
    }

    /// The matcher's view of [`Self::bytes`], when the post was parsed on its way in.
    pub fn view(&self) -> Option<&PostView<'_>> {
        self.body.view()
    }
}

/// A post's bytes, alone or with the view parsed from them. One field holds both, so
/// that a view is always of the bytes stored and delivered.
#[derive(Debug)]
pub enum PostBody {
    /// Not parsed on the way in: compliance events, and posts consumed from the cluster
    /// backend (a view does not cross NATS). Matching parses them itself.
    Raw(Bytes),
    /// Parsed on the way in: by the ingest API, to validate the post, or by the demo
    /// firehose, to read its id. Matching reads the view instead of parsing the post a
    /// second time.
    Parsed(ParsedPost),
}

impl PostBody {
    /// The post's JSON.
    pub fn bytes(&self) -> &Bytes {
        match self {
            PostBody::Raw(bytes) => bytes,
            PostBody::Parsed(parsed) => parsed.borrow_owner(),
        }
    }

    /// The view parsed from [`Self::bytes`], if any.
    pub fn view(&self) -> Option<&PostView<'_>> {
        match self {
            PostBody::Raw(_) => None,
            PostBody::Parsed(parsed) => Some(parsed.borrow_dependent()),
        }
    }

    /// The post's JSON, the view dropped.
    pub fn into_bytes(self) -> Bytes {
        match self {
            PostBody::Raw(bytes) => bytes,
            PostBody::Parsed(parsed) => parsed.into_owner(),
        }
    }
}

impl From<Bytes> for PostBody {
    fn from(bytes: Bytes) -> Self {
        PostBody::Raw(bytes)
    }
}

impl From<ParsedPost> for PostBody {
    fn from(parsed: ParsedPost) -> Self {
        PostBody::Parsed(parsed)
    }
}

self_cell::self_cell!(
    /// A post's bytes, the ones stored and delivered ([`IngestedPost::bytes`]), with the
    /// view parsed from them (by [`sluice_model::check_line`] at ingest, or
    /// [`sluice_model::parse_post`] for the copy ingest makes to add edit metadata, and in
    /// the demo firehose). The view borrows the bytes, and the two travel together across
    /// threads, from the ingest handler to the matching threads; a self-referential pair
    /// like this is what the `self_cell` crate exists for.
    pub struct ParsedPost {
        owner: Bytes,
        #[covariant]
        dependent: PostView,
    }

    impl {Debug}
);
