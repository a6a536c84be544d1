//! Taps: observers of a rules stream's matched posts that are not connections (the
//! console's live view). Delivery offers each matched message of the stream to its taps
//! without ever waiting: a tap whose small queue is full misses the message, so however
//! slow an observer is, delivery to the stream's connections is never held back, and taps
//! do not count towards the stream's connection cap.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use tokio::sync::mpsc;

/// Taps a stream holds at most (console live views open on it at once).
pub const MAX_TAPS: usize = 8;

/// Messages a tap holds before it misses the next ones.
pub const TAP_QUEUE: usize = 64;

/// The taps of one stream.
#[derive(Default)]
pub struct Taps {
    senders: Mutex<Vec<mpsc::Sender<Bytes>>>,
    /// How many senders are held, read without the lock on the delivery path.
    held: AtomicUsize,
}

impl Taps {
    fn senders(&self) -> std::sync::MutexGuard<'_, Vec<mpsc::Sender<Bytes>>> {
        self.senders.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new tap: the framed messages (post with `matching_rules`, `\r\n`-terminated)
    /// matched from now on, until the receiver is dropped. `None` when the stream already
    /// has [`MAX_TAPS`] taps.
    pub fn attach(&self) -> Option<mpsc::Receiver<Bytes>> {
        let mut senders = self.senders();
        senders.retain(|tx| !tx.is_closed());
        if senders.len() >= MAX_TAPS {
            self.held.store(senders.len(), Ordering::Release);
            return None;
        }
        let (tx, rx) = mpsc::channel(TAP_QUEUE);
        senders.push(tx);
        self.held.store(senders.len(), Ordering::Release);
        Some(rx)
    }

    /// Whether no tap is held (cheap: delivery asks for every matched post).
    pub fn is_empty(&self) -> bool {
        self.held.load(Ordering::Acquire) == 0
    }

    /// Offers `message` to every tap without waiting: a full tap misses it, a dropped one
    /// is let go.
    pub fn offer(&self, message: &Bytes) {
        let mut senders = self.senders();
        senders.retain(|tx| match tx.try_send(message.clone()) {
            Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => true,
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
        self.held.store(senders.len(), Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_tap_misses_messages_and_a_dropped_one_is_let_go() {
        let taps = Taps::default();
        assert!(taps.is_empty());
        let mut slow = taps.attach().unwrap();
        let dropped = taps.attach().unwrap();
        drop(dropped);
        for i in 0..TAP_QUEUE + 10 {
            taps.offer(&Bytes::from(i.to_string()));
        }
        assert!(!taps.is_empty());
        assert_eq!(taps.senders().len(), 1, "the dropped tap is let go");
        let mut got = 0;
        while let Ok(m) = slow.try_recv() {
            assert_eq!(m, Bytes::from(got.to_string()));
            got += 1;
        }
        assert_eq!(got, TAP_QUEUE, "the oldest are kept, the overflow missed");
        drop(slow);
        taps.offer(&Bytes::from_static(b"x"));
        assert!(taps.is_empty());
    }

    #[test]
    fn a_stream_holds_a_bounded_number_of_taps() {
        let taps = Taps::default();
        let held: Vec<_> = (0..MAX_TAPS).map(|_| taps.attach().unwrap()).collect();
        assert!(taps.attach().is_none());
        drop(held);
        assert!(taps.attach().is_some());
    }
}
