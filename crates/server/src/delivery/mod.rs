//! Stream delivery: per-connection outboxes fed by ingest, and the response bodies that
//! drain them with framing, heartbeats and gzip.

pub mod body;
pub mod outbox;

pub use body::{BodySettings, CloseMessages, Encoding, stream_body};
pub use outbox::{CloseReason, Outbox, Pushed};
