//! One held connection of the connections bench: a task that connects (with a permit, so
//! that only a few connects are in flight), then reads and decodes the body until the
//! bench says stop, timestamping the first arrival of each bench post. What every task
//! shares with the bench is the [`Board`].
//!
//! The bench runs on the same cores as the server, so what it does while a post is on its
//! way to every connection delays the post. Inflating and checking a gzip chunk costs the
//! bench about as much CPU as the server spends sending it, so for gzip bodies, while a
//! post's *window* is open (from its ingest until every connection has read something
//! since), a connection only reads and timestamps its chunks; it decodes them when the
//! bench closes the window and wakes it. An arrival's time is still the time its chunk was
//! read: a post's line is dated by the chunk that completed it. (`chunk()` may be dropped
//! for a wake and called again: it loses nothing, as hyper's body frames wait in the body.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use memchr::memmem;
use sluice_client::http::HttpClient;
use sluice_client::lines::{BodyEncoding, LineDecoder};
use sluice_client::message::{Line, classify};
use tokio::sync::{Notify, Semaphore, oneshot};

use super::provision::ConnectionPlan;
use crate::reader::{self, first_id};

/// How often the bench looks at the board while it waits.
const POLL: Duration = Duration::from_millis(2);

/// What the connection tasks and the bench share: the posts' ids, how many connections
/// opened, failed or ended early, how many have each post, and the open window with how
/// many connections have read something in it.
pub struct Board {
    epoch: Instant,
    ids: Vec<u64>,
    arrived: Vec<AtomicUsize>,
    /// Per post: connections that read a chunk while its window was open.
    touched: Vec<AtomicUsize>,
    /// The post whose window is open, plus one; 0 when none is.
    window: AtomicUsize,
    connected: AtomicUsize,
    failed: AtomicUsize,
    /// Connections that ended before the bench stopped them (dropped by the server, an
    /// undecodable body): the waits stop counting on them.
    gone: AtomicUsize,
    first_failure: Mutex<Option<String>>,
}

impl Board {
    /// A board for the posts with these ids, its clock starting now.
    pub fn new(ids: Vec<u64>) -> Self {
        Self {
            epoch: Instant::now(),
            arrived: ids.iter().map(|_| AtomicUsize::new(0)).collect(),
            touched: ids.iter().map(|_| AtomicUsize::new(0)).collect(),
            window: AtomicUsize::new(0),
            ids,
            connected: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            gone: AtomicUsize::new(0),
            first_failure: Mutex::new(None),
        }
    }

    /// Microseconds since the board was made: every timestamp of the run.
    pub fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// Number of posts.
    pub fn posts(&self) -> usize {
        self.ids.len()
    }

    /// The id of post `k`.
    pub fn id(&self, k: usize) -> u64 {
        self.ids[k]
    }

    /// Connections that failed to open.
    pub fn failed(&self) -> usize {
        self.failed.load(Ordering::Relaxed)
    }

    /// Why the first failed connection failed.
    pub fn first_failure(&self) -> Option<String> {
        self.first_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn fail(&self, why: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        self.first_failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(why);
    }

    /// Waits until `count` connections have opened or failed.
    pub async fn wait_connected(&self, count: usize) {
        while self.connected.load(Ordering::Relaxed) + self.failed() < count {
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits until `count` connections have post `k` (less those that ended), or `timeout`
    /// passed; false if it did.
    pub async fn wait_arrived(&self, k: usize, count: usize, timeout: Duration) -> bool {
        self.wait_for(&self.arrived[k], count, timeout).await
    }

    /// Opens post `k`'s window: from now until [`close_window`](Self::close_window),
    /// gzip connections (those woken to decode) keep what they read to decode later.
    pub fn open_window(&self, k: usize) {
        self.window.store(k + 1, Ordering::Relaxed);
    }

    /// Waits until `count` connections (less those that ended) read a chunk in post `k`'s
    /// window, or `timeout` passed; false if it did.
    pub async fn wait_touched(&self, k: usize, count: usize, timeout: Duration) -> bool {
        self.wait_for(&self.touched[k], count, timeout).await
    }

    /// Closes the open window: connections decode as they read again. Each must then be
    /// woken to decode what it kept ([`hold`]'s `decode`).
    pub fn close_window(&self) {
        self.window.store(0, Ordering::Relaxed);
    }

    /// The post whose window is open.
    fn open(&self) -> Option<usize> {
        self.window.load(Ordering::Relaxed).checked_sub(1)
    }

    async fn wait_for(&self, counter: &AtomicUsize, count: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            let done = counter.load(Ordering::Relaxed) + self.gone.load(Ordering::Relaxed);
            if done >= count {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    fn index_of(&self, id: u64) -> Option<usize> {
        self.ids.iter().position(|&known| known == id)
    }
}

/// What one connection saw.
#[derive(Debug, Default)]
pub struct Held {
    /// Whether it opened.
    pub opened: bool,
    /// `(post, arrival in µs on the board's clock)` of every first arrival.
    pub arrivals: Vec<(usize, u64)>,
    /// Copies of a post after its first.
    pub duplicates: u64,
    /// Data lines that are not a bench post.
    pub unexpected: u64,
    /// Why the connection ended before the bench closed it.
    pub disconnect: Option<String>,
}

/// Opens the connection `plan` describes, then reads it until `stop` fires (or its sender
/// is dropped). Each connection has a stop of its own: a wait on one channel shared by
/// every connection locks that channel's waiter list twice per chunk received, which all
/// the bench's threads share while they read 10,000 connections at once. `decode` wakes it
/// to decode what it kept while a window was open.
pub async fn hold(
    client: Arc<HttpClient>,
    plan: ConnectionPlan,
    connects: Arc<Semaphore>,
    board: Arc<Board>,
    decode: Arc<Notify>,
    mut stop: oneshot::Receiver<()>,
) -> Held {
    let mut held = Held::default();
    let permit = connects.acquire_owned().await;
    let connected = reader::connect(&client, &plan.url, &plan.auth, plan.gzip, |_| {}).await;
    drop(permit);
    let mut response = match connected {
        Ok(response) => response,
        Err(e) => {
            board.fail(format!("{e:#}"));
            return held;
        }
    };
    held.opened = true;
    board.connected.fetch_add(1, Ordering::Relaxed);
    let gzip = response.is_gzip();
    let mut reading = Reading::new(&board, gzip);
    loop {
        let chunk = tokio::select! {
            biased;
            _ = &mut stop => {
                reading.decode_kept(&board, &mut held);
                return held;
            }
            // Only gzip connections keep chunks to decode later (`deliver`'s windows).
            () = decode.notified(), if gzip => {
                if reading.decode_kept(&board, &mut held) {
                    continue;
                }
                break;
            }
            chunk = response.chunk() => chunk,
        };
        let arrival = board.now_us();
        let chunk = match chunk {
            Ok(Some(chunk)) => chunk,
            Ok(None) => {
                held.disconnect = Some("the server ended the stream".to_owned());
                break;
            }
            Err(e) => {
                held.disconnect = Some(format!("connection lost: {e}"));
                break;
            }
        };
        // Only a connection that listens for the wake may keep chunks: an identity body
        // (a server may answer a gzip request uncompressed) decodes as it reads.
        if !reading.take(&board, &mut held, arrival, chunk, gzip) {
            break;
        }
    }
    // Ended before the bench stopped it: what it kept still counts, and the bench's waits
    // no longer count on it.
    reading.decode_kept(&board, &mut held);
    board.gone.fetch_add(1, Ordering::Relaxed);
    held
}

/// What one connection has read: its decoder, the chunks kept undecoded while a window
/// was open, and the posts it has.
struct Reading {
    decoder: LineDecoder,
    id_key: memmem::Finder<'static>,
    seen: Vec<bool>,
    /// Chunks read and not yet decoded, with the time each was read.
    kept: Vec<(u64, Bytes)>,
    /// The last window this connection counted itself in.
    touched: Option<usize>,
}

impl Reading {
    fn new(board: &Board, gzip: bool) -> Self {
        Self {
            decoder: LineDecoder::new(if gzip {
                BodyEncoding::Gzip
            } else {
                BodyEncoding::Identity
            }),
            id_key: memmem::Finder::new(b"\"id\":"),
            seen: vec![false; board.posts()],
            kept: Vec::new(),
            touched: None,
        }
    }

    /// Takes a chunk read at `arrival`: counts this connection in the open window, if
    /// any, and keeps the chunk undecoded when `keep` (the connection will be woken to
    /// decode) and a window is open; decodes at once otherwise. False (with the reason in
    /// `held`) when the body cannot be decoded.
    fn take(
        &mut self,
        board: &Board,
        held: &mut Held,
        arrival: u64,
        chunk: Bytes,
        keep: bool,
    ) -> bool {
        self.kept.push((arrival, chunk));
        if let Some(k) = board.open() {
            if self.touched != Some(k) {
                self.touched = Some(k);
                board.touched[k].fetch_add(1, Ordering::Relaxed);
            }
            if keep {
                return true;
            }
        }
        self.decode_kept(board, held)
    }

    /// Decodes the kept chunks in the order they were read, each post dated by the chunk
    /// that completed its line; false (with the reason in `held`) when the body cannot be
    /// decoded.
    fn decode_kept(&mut self, board: &Board, held: &mut Held) -> bool {
        let Self {
            decoder,
            id_key,
            seen,
            kept,
            ..
        } = self;
        for (arrival, chunk) in kept.drain(..) {
            let decoded = decoder.feed(&chunk, |line| {
                if classify(line) != Line::Data {
                    return;
                }
                match first_id(id_key, line).and_then(|id| board.index_of(id)) {
                    Some(k) if seen[k] => held.duplicates += 1,
                    Some(k) => {
                        seen[k] = true;
                        held.arrivals.push((k, arrival));
                        board.arrived[k].fetch_add(1, Ordering::Relaxed);
                    }
                    None => held.unexpected += 1,
                }
            });
            if let Err(e) = decoded {
                held.disconnect
                    .get_or_insert_with(|| format!("undecodable stream: {e}"));
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_post_line_is_known_by_its_first_id() {
        let key = memmem::Finder::new(b"\"id\":");
        let line = super::super::posts::post(42, 0);
        assert_eq!(first_id(&key, line.trim_end().as_bytes()), Some(42));
        assert_eq!(first_id(&key, br#"{"error":{"message":"x"}}"#), None);
        let board = Board::new(vec![7, 42]);
        assert_eq!(board.index_of(42), Some(1));
        assert_eq!(board.index_of(8), None);
    }

    #[test]
    fn the_waits_give_up_after_their_timeout_and_stop_counting_on_ended_connections() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        runtime.block_on(async {
            let board = Board::new(vec![7]);
            let wait = Duration::from_millis(20);
            board.arrived[0].fetch_add(1, Ordering::Relaxed);
            board.touched[0].fetch_add(1, Ordering::Relaxed);
            assert!(
                !board.wait_arrived(0, 2, wait).await,
                "one of two: times out"
            );
            assert!(!board.wait_touched(0, 2, wait).await);
            board.gone.fetch_add(1, Ordering::Relaxed);
            assert!(board.wait_arrived(0, 2, wait).await, "the other one ended");
            assert!(board.wait_touched(0, 2, wait).await);
        });
    }

    #[test]
    fn kept_chunks_date_each_post_by_the_chunk_that_completed_it() {
        let board = Board::new(vec![7, 42]);
        board.open_window(1);
        assert_eq!(board.open(), Some(1));
        board.close_window();
        assert_eq!(board.open(), None);

        let mut reading = Reading::new(&board, false);
        let line = super::super::posts::post(42, 1);
        let (head, tail) = line.split_at(40);
        reading.kept.push((5, Bytes::from(head.to_owned())));
        reading.kept.push((9, Bytes::from(format!("{tail}\r\n"))));
        reading.kept.push((12, Bytes::from(line.clone())));
        let mut held = Held::default();
        assert!(reading.decode_kept(&board, &mut held));
        assert!(reading.kept.is_empty(), "decoded chunks are not kept");
        assert_eq!(held.arrivals, [(1, 9)]);
        assert_eq!(held.duplicates, 1);
        assert_eq!(board.arrived[1].load(Ordering::Relaxed), 1);
        assert_eq!(board.arrived[0].load(Ordering::Relaxed), 0);
    }

    #[test]
    fn in_a_window_only_a_connection_woken_to_decode_keeps_its_chunks() {
        let line = super::super::posts::post(42, 1);
        for keep in [true, false] {
            let board = Board::new(vec![7, 42]);
            board.open_window(1);
            let mut reading = Reading::new(&board, false);
            let mut held = Held::default();
            let chunk = Bytes::from(format!("{}\r\n", line.trim_end()));
            assert!(reading.take(&board, &mut held, 3, chunk.clone(), keep));
            assert!(reading.take(&board, &mut held, 4, chunk, keep));
            assert_eq!(
                board.touched[1].load(Ordering::Relaxed),
                1,
                "counted once in the window (keep: {keep})"
            );
            let arrived = board.arrived[1].load(Ordering::Relaxed);
            if keep {
                assert_eq!(reading.kept.len(), 2);
                assert_eq!(arrived, 0, "decoded only when woken");
            } else {
                assert!(reading.kept.is_empty());
                assert_eq!(held.arrivals, [(1, 3)]);
                assert_eq!(arrived, 1, "decoded as it was read");
            }
        }
    }
}
