//! The accepted post as it travels from ingest (or the cluster backend's consumer) to the
//! pipeline: a leaf type, so that the pipeline, the cluster seam and ingest can share it
//! without importing each other.

use std::sync::Arc;

use bytes::Bytes;

/// One accepted post on its way to the pipeline.
#[derive(Debug, Clone)]
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
}
