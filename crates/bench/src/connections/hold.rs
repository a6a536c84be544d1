//! One held connection of the connections bench: a task that connects (with a permit, so
//! that only a few connects are in flight), then reads and decodes the body until the
//! bench says stop, timestamping the first arrival of each bench post. What every task
//! shares with the bench is the [`Board`].

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use memchr::memmem;
use sluice_client::http::HttpClient;
use sluice_client::lines::{BodyEncoding, LineDecoder};
use sluice_client::message::{Line, classify};
use tokio::sync::{Semaphore, oneshot};

use super::provision::ConnectionPlan;
use crate::reader::{self, first_id};

/// How often the bench looks at the board while it waits.
const POLL: Duration = Duration::from_millis(2);

/// What the connection tasks and the bench share: the posts' ids, how many connections
/// opened or failed, and how many have each post.
pub struct Board {
    epoch: Instant,
    ids: Vec<u64>,
    arrived: Vec<AtomicUsize>,
    connected: AtomicUsize,
    failed: AtomicUsize,
    first_failure: Mutex<Option<String>>,
}

impl Board {
    /// A board for the posts with these ids, its clock starting now.
    pub fn new(ids: Vec<u64>) -> Self {
        Self {
            epoch: Instant::now(),
            arrived: ids.iter().map(|_| AtomicUsize::new(0)).collect(),
            ids,
            connected: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
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

    /// Waits until `count` connections have post `k`, or `timeout` passed.
    pub async fn wait_arrived(&self, k: usize, count: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.arrived[k].load(Ordering::Relaxed) < count && Instant::now() < deadline {
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
/// the bench's threads share while they read 10,000 connections at once.
pub async fn hold(
    client: Arc<HttpClient>,
    plan: ConnectionPlan,
    connects: Arc<Semaphore>,
    board: Arc<Board>,
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
    let mut decoder = LineDecoder::new(if response.is_gzip() {
        BodyEncoding::Gzip
    } else {
        BodyEncoding::Identity
    });
    let id_key = memmem::Finder::new(b"\"id\":");
    let mut seen = vec![false; board.posts()];
    loop {
        let chunk = tokio::select! {
            biased;
            _ = &mut stop => break,
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
        let decoded = decoder.feed(&chunk, |line| {
            if classify(line) != Line::Data {
                return;
            }
            match first_id(&id_key, line).and_then(|id| board.index_of(id)) {
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
            held.disconnect = Some(format!("undecodable stream: {e}"));
            break;
        }
    }
    held
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
}
