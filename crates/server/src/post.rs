//! The accepted post as it travels from ingest (or the cluster backend's consumer) to the
//! pipeline: a leaf type, so that the pipeline, the cluster seam and ingest can share it
//! without importing each other.

use std::sync::Arc;

use bytes::Bytes;
use sluice_model::PostView;

/// One accepted post on its way to the pipeline.
#[derive(Debug)]
pub struct IngestedPost {
    /// The post's JSON, one line, without line terminator.
    pub bytes: Bytes,
    /// The post's id (`id_str`, else `id`), read where the post enters sluice (the ingest
    /// API reads it when it validates the post). De-duplication, the cluster's JetStream
    /// message id, Decahose sampling and partitions use it; nothing after ingest reads it
    /// from the bytes again.
    pub id: u64,
    /// The datacenter the post originated in.
    pub datacenter: Arc<str>,
    /// The matcher's view of the post, as the ingest API parsed it to validate it (or
    /// the demo firehose, to read its id), so that matching does not parse the post a
    /// second time. `None` for compliance events and for posts consumed from the cluster
    /// backend: matching then parses them itself.
    pub parsed: Option<ParsedPost>,
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
