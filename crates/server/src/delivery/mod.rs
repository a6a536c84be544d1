//! Stream delivery: per-connection outboxes fed by ingest, the response bodies that drain
//! them with framing, heartbeats and gzip, which post goes to which connection
//! ([`select`], shared by live delivery and replay), how a batch of posts becomes one
//! shared, compressed-once [`Segment`] per group of connections ([`fanout`], [`gzip`]),
//! the matching of a batch's posts on every core ([`matching`]),
//! replay from the post log ([`replay`]: backfill and recovery), and taps that observe a
//! stream's matched posts without being connections ([`tap`]: the console's live view).

pub mod body;
pub mod encoding;
pub mod fanout;
pub mod format;
pub mod gzip;
pub mod matching;
pub mod outbox;
pub mod replay;
pub mod segment;
pub mod select;
pub mod tap;

pub use body::{BodySettings, CloseMessages, ReplayFeed, replay_then_stream_body, stream_body};
pub use encoding::Encoding;
pub use format::Format;
pub use outbox::{CloseReason, Outbox, Pushed};
pub use segment::Segment;
