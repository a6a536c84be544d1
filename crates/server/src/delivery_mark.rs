//! Where live delivery has got in the post log: written by the pipeline, read by replay,
//! held by the state; a leaf so that none of them imports another for it.

use std::sync::atomic::{AtomicU64, Ordering};

/// How far live delivery has got in the post log: every post with a sequence number below
/// [`DeliveryMark::below`] has been handed to delivery for the connections registered at
/// that moment.
///
/// A backfill that has just registered its connection replays the log up to here, not to
/// the log's end: posts above the mark were appended but not yet delivered, and will reach
/// the new connection live. Reading to the end would send them twice whenever delivery
/// lags behind the appends. The pipeline moves the mark before it looks at a batch's
/// connections, and a connection registers under the lock delivery reads connections
/// under, so a batch that missed the connection is always below the mark the backfill
/// reads afterwards (no gap). A registration between the two steps gets live segments of
/// a batch below the mark, which the replay sends too: the connection's outbox drops them
/// (`Outbox::replayed_below`).
#[derive(Debug)]
pub struct DeliveryMark(AtomicU64);

impl DeliveryMark {
    /// A mark at `next_seq`: everything before it in the log predates every connection.
    pub fn at(next_seq: u64) -> Self {
        Self(AtomicU64::new(next_seq))
    }

    /// The first sequence number live delivery has not taken up yet.
    pub fn below(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Moves the mark up to `next_seq` (never down).
    pub fn advance_to(&self, next_seq: u64) {
        self.0.fetch_max(next_seq, Ordering::AcqRel);
    }
}
