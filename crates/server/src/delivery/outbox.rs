//! A connection's outbox: the bounded queue between ingest and one streaming client.
//!
//! Ingest pushes each message into the outbox of every connection that should get it and
//! never waits: a full outbox does not block ingest or any other client. Instead the
//! connection is closed as a slow consumer (docs/compatibility.md ("Decisions"), "Slow consumers"): its backlog is
//! dropped, it is sent X's "unable to keep up" message, and a reconnect with
//! `backfillMinutes` recovers what it missed. Nothing is dropped silently.
//!
//! The bound is in bytes, not messages, because posts range from 1 KB to 20 KB and the
//! point of the bound is memory. It counts the *uncompressed* bytes of the queued
//! [`Segment`]s, whatever the connection's encoding: a segment always holds its plain
//! bytes (its compressed form comes on top), and the slow-consumer threshold then means
//! the same backlog of posts for a gzip and an identity client, whatever the compression
//! ratio of the posts.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::Notify;

use super::encoding::Encoding;
use super::segment::Segment;

/// Why a connection is being closed by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The outbox overflowed: the client reads more slowly than posts arrive.
    SlowConsumer,
    /// The stream stayed over its connection cap; this (newest) connection goes.
    TooManyConnections {
        /// The stream's cap.
        allowed: u32,
    },
    /// The server is shutting down, or the stream was deleted.
    Operational,
    /// The credentials the connection was opened with no longer work: the user's password
    /// changed or the user was deleted.
    CredentialsRevoked,
    /// A finite stream (recovery) has sent everything; the payload is the final `info`
    /// message line to write before closing.
    Completed(Bytes),
}

/// The result of [`Outbox::push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Queued.
    Queued,
    /// Not queued: the outbox was already closed.
    Closed,
    /// Not queued: it did not fit, and the outbox is now closed as a slow consumer.
    Overflowed,
    /// Not queued: the connection's backfill has already sent these posts from the log
    /// ([`Outbox::replayed_below`]).
    Replayed,
}

/// The bounded, non-blocking queue of one streaming connection.
#[derive(Debug)]
pub struct Outbox {
    state: Mutex<State>,
    wake: Notify,
    capacity: usize,
    encoding: Encoding,
}

#[derive(Debug, Default)]
struct State {
    queue: VecDeque<Queued>,
    bytes: usize,
    closed: Option<CloseReason>,
    /// Set by a backfill: live segments of batches that ended at or below this sequence
    /// number were sent by the replay.
    replayed_below: u64,
}

/// A queued segment and, for a live one, the log sequence number its batch ended below.
#[derive(Debug)]
struct Queued {
    segment: Segment,
    logged_below: Option<u64>,
}

impl Queued {
    /// Whether a replay that sent every post below `replayed_below` already sent this.
    fn replayed(&self, replayed_below: u64) -> bool {
        self.logged_below
            .is_some_and(|below| below <= replayed_below)
    }
}

impl Outbox {
    /// An empty outbox holding at most `capacity` (uncompressed) bytes of messages, for a
    /// connection writing `encoding` (the pipeline compresses shared segments only for
    /// streams with gzip connections).
    pub fn new(capacity: usize, encoding: Encoding) -> Self {
        Self {
            state: Mutex::new(State::default()),
            wake: Notify::new(),
            capacity,
            encoding,
        }
    }

    /// How the connection behind this outbox encodes its body.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Every critical section leaves State consistent, so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues framed messages (one post followed by `\r\n`, or a [`Segment`] of several)
    /// without waiting.
    pub fn push(&self, message: impl Into<Segment>) -> Pushed {
        self.queue(Queued {
            segment: message.into(),
            logged_below: None,
        })
    }

    /// Queues a segment of live delivery made from a batch whose posts all have log
    /// sequence numbers below `logged_below` (`None`: the batch was not logged), unless
    /// the connection's backfill already sent them.
    pub fn push_live(&self, segment: Segment, logged_below: Option<u64>) -> Pushed {
        self.queue(Queued {
            segment,
            logged_below,
        })
    }

    fn queue(&self, queued: Queued) -> Pushed {
        let mut state = self.state();
        if state.closed.is_some() {
            return Pushed::Closed;
        }
        if queued.replayed(state.replayed_below) {
            return Pushed::Replayed;
        }
        let len = queued.segment.len();
        if state.bytes + len > self.capacity && !state.queue.is_empty() {
            state.queue.clear();
            state.bytes = 0;
            state.closed = Some(CloseReason::SlowConsumer);
            drop(state);
            self.wake.notify_one();
            return Pushed::Overflowed;
        }
        state.bytes += len;
        state.queue.push_back(queued);
        drop(state);
        self.wake.notify_one();
        Pushed::Queued
    }

    /// Says that the connection's backfill has sent every logged post below `seq`: live
    /// segments of batches ending there or before, queued or still to come, are dropped.
    ///
    /// A backfill registers its connection and then reads how far live delivery has got
    /// ([`crate::delivery_mark::DeliveryMark`]). The pipeline moves that mark before it
    /// pushes a batch, so a registration between the two gets segments of a batch the
    /// replay also covers; this is what keeps them from being sent twice. A batch that
    /// began before the backfill's window has its older posts dropped with it: they were
    /// appended before the window the client asked for.
    pub fn replayed_below(&self, seq: u64) {
        let mut state = self.state();
        state.replayed_below = state.replayed_below.max(seq);
        let replayed_below = state.replayed_below;
        let mut dropped = 0;
        state.queue.retain(|q| {
            let replayed = q.replayed(replayed_below);
            if replayed {
                dropped += q.segment.len();
            }
            !replayed
        });
        state.bytes -= dropped;
    }

    /// Closes the outbox for `reason` (the first reason wins). Queued messages are still
    /// delivered before the closing message, except after an overflow.
    pub fn close(&self, reason: CloseReason) {
        let mut state = self.state();
        if state.closed.is_none() {
            state.closed = Some(reason);
        }
        drop(state);
        self.wake.notify_one();
    }

    /// Whether the outbox has been closed.
    pub fn is_closed(&self) -> bool {
        self.state().closed.is_some()
    }

    /// Bytes waiting to be written.
    pub fn queued_bytes(&self) -> usize {
        self.state().bytes
    }

    /// Waits until there is something to do, then moves queued segments (up to about
    /// `max_bytes`, at least one) into `batch`. Returns the close reason once the queue is
    /// empty and the outbox closed; the caller writes `batch` first either way.
    pub async fn next_batch(
        &self,
        batch: &mut Vec<Segment>,
        max_bytes: usize,
    ) -> Option<CloseReason> {
        loop {
            // Register interest before looking, so a push between the look and the wait
            // is not missed.
            let notified = self.wake.notified();
            {
                let mut state = self.state();
                let mut taken = 0;
                while let Some(front) = state.queue.front() {
                    if taken > 0 && taken + front.segment.len() > max_bytes {
                        break;
                    }
                    let message = state.queue.pop_front().expect("front exists").segment;
                    taken += message.len();
                    batch.push(message);
                }
                state.bytes -= taken;
                if state.queue.is_empty()
                    && let Some(reason) = state.closed.clone()
                {
                    return Some(reason);
                }
                if taken > 0 {
                    return None;
                }
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn delivers_in_order_in_bounded_batches() {
        let outbox = Outbox::new(1_000, Encoding::Gzip);
        for i in 0..5 {
            assert_eq!(outbox.push(Bytes::from(vec![b'a' + i; 10])), Pushed::Queued);
        }
        let mut batch = Vec::new();
        assert_eq!(outbox.next_batch(&mut batch, 25).await, None);
        assert_eq!(batch.len(), 2);
        assert_eq!(batch[0].plain_bytes()[0], b'a');
        batch.clear();
        assert_eq!(outbox.next_batch(&mut batch, 1_000).await, None);
        assert_eq!(
            batch.iter().map(|b| b.plain_bytes()[0]).collect::<Vec<_>>(),
            b"cde"
        );
        assert_eq!(outbox.queued_bytes(), 0);
    }

    #[tokio::test]
    async fn segments_a_backfill_replayed_are_dropped_queued_or_still_to_come() {
        let outbox = Outbox::new(1_000, Encoding::Gzip);
        let segment = |n: u8| Segment::plain(Bytes::from(vec![n; 10]));
        assert_eq!(outbox.push_live(segment(1), Some(10)), Pushed::Queued);
        assert_eq!(outbox.push_live(segment(2), Some(20)), Pushed::Queued);
        assert_eq!(outbox.push_live(segment(3), Some(21)), Pushed::Queued);
        assert_eq!(outbox.push(segment(4)), Pushed::Queued);
        outbox.replayed_below(20);
        assert_eq!(outbox.queued_bytes(), 20);
        assert_eq!(outbox.push_live(segment(5), Some(20)), Pushed::Replayed);
        assert_eq!(outbox.push_live(segment(6), None), Pushed::Queued);
        // Never moves back.
        outbox.replayed_below(5);
        assert_eq!(outbox.push_live(segment(7), Some(15)), Pushed::Replayed);
        let mut batch = Vec::new();
        assert_eq!(outbox.next_batch(&mut batch, 1_000).await, None);
        let firsts: Vec<u8> = batch.iter().map(|s| s.plain_bytes()[0]).collect();
        assert_eq!(firsts, [3, 4, 6]);
        assert_eq!(outbox.queued_bytes(), 0);
    }

    #[tokio::test]
    async fn overflow_drops_the_backlog_and_closes_as_slow_consumer() {
        let outbox = Outbox::new(25, Encoding::Gzip);
        assert_eq!(outbox.push(Bytes::from_static(&[0; 10])), Pushed::Queued);
        assert_eq!(outbox.push(Bytes::from_static(&[0; 10])), Pushed::Queued);
        assert_eq!(
            outbox.push(Bytes::from_static(&[0; 10])),
            Pushed::Overflowed
        );
        assert_eq!(outbox.push(Bytes::from_static(&[0; 1])), Pushed::Closed);
        let mut batch = Vec::new();
        assert_eq!(
            outbox.next_batch(&mut batch, 100).await,
            Some(CloseReason::SlowConsumer)
        );
        assert!(batch.is_empty());
    }

    #[tokio::test]
    async fn a_message_larger_than_the_capacity_still_goes_through_an_empty_outbox() {
        let outbox = Outbox::new(4, Encoding::Gzip);
        assert_eq!(
            outbox.push(Bytes::from_static(b"0123456789")),
            Pushed::Queued
        );
        let mut batch = Vec::new();
        assert_eq!(outbox.next_batch(&mut batch, 4).await, None);
        assert_eq!(batch.len(), 1);
    }

    #[tokio::test]
    async fn close_delivers_what_is_queued_first_and_wakes_a_waiter() {
        let outbox = std::sync::Arc::new(Outbox::new(100, Encoding::Gzip));
        outbox.push(Bytes::from_static(b"x"));
        outbox.close(CloseReason::Operational);
        outbox.close(CloseReason::SlowConsumer);
        let mut batch = Vec::new();
        assert_eq!(
            outbox.next_batch(&mut batch, 100).await,
            Some(CloseReason::Operational)
        );
        assert_eq!(batch.len(), 1);

        let waiting = std::sync::Arc::new(Outbox::new(100, Encoding::Gzip));
        let w = waiting.clone();
        let task = tokio::spawn(async move {
            let mut batch = Vec::new();
            w.next_batch(&mut batch, 100).await
        });
        tokio::task::yield_now().await;
        waiting.close(CloseReason::Operational);
        assert_eq!(task.await.unwrap(), Some(CloseReason::Operational));
    }
}
