//! The paced ingest loop: sends the run's posts to `POST /ingest` at a fixed rate, in a
//! small batch every tick, and records when each request started (the reference point of
//! every latency) and how it was answered.
//!
//! It runs on a thread of its own with a single-threaded runtime, so that the readers'
//! decoding never delays a tick. A tick sends every post due by then (`rate × elapsed`), so
//! a late tick catches up instead of lowering the rate; a few requests may be in flight at
//! once so that one slow answer does not stall the pacing. In a cluster the requests go
//! round-robin to the nodes, each post in exactly one request.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hyper::Method;
use hyper::header::CONTENT_TYPE;
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::MissedTickBehavior;
use url::Url;

use super::workload::Posts;
use sluice_client::http::{Auth, HttpClient, Request, TlsArgs};

/// Requests in flight at most.
const MAX_IN_FLIGHT: usize = 4;
/// Largest request body (the server takes up to 16 MiB); a single longer post goes alone.
const MAX_REQUEST_BYTES: usize = 4 << 20;

/// What to send and how fast.
#[derive(Clone)]
pub struct Plan {
    /// `BASE/ingest` of every node; request `k` goes to `urls[k % urls.len()]`.
    pub urls: Vec<Url>,
    /// The admin token.
    pub token: String,
    /// Posts per second.
    pub rate: f64,
    /// Time between two batches.
    pub interval: Duration,
    /// TLS settings of the client.
    pub tls: TlsArgs,
}

impl Plan {
    /// Where request number `k` (in sending order) goes: round-robin over the nodes.
    fn url_of(&self, k: usize) -> &Url {
        &self.urls[k % self.urls.len()]
    }
}

/// One ingest request.
#[derive(Debug, Clone)]
pub struct SentBatch {
    /// The posts `first..end` of the run.
    pub first: usize,
    /// One past the last post.
    pub end: usize,
    /// When the request started, µs since the run's epoch.
    pub sent_us: u64,
    /// When its answer was read, µs since the epoch.
    pub answered_us: u64,
    /// Posts the server accepted.
    pub accepted: u64,
    /// Posts it rejected.
    pub rejected: u64,
    /// Why the request failed, if it did.
    pub error: Option<String>,
}

/// The ingest side of a run.
#[derive(Debug, Default)]
pub struct IngestReport {
    /// When the loop started pacing, µs since the epoch: the start of the measured window.
    pub started_us: u64,
    /// Every request, in the order they were started.
    pub batches: Vec<SentBatch>,
}

impl IngestReport {
    /// Posts the server accepted.
    pub fn accepted(&self) -> u64 {
        self.batches.iter().map(|b| b.accepted).sum()
    }

    /// Posts the server rejected.
    pub fn rejected(&self) -> u64 {
        self.batches.iter().map(|b| b.rejected).sum()
    }

    /// Requests that failed.
    pub fn errors(&self) -> impl Iterator<Item = &str> {
        self.batches.iter().filter_map(|b| b.error.as_deref())
    }

    /// The seconds in which requests were started, counted from the start of pacing (a
    /// second that is only begun counts); 0 when nothing was sent.
    pub fn seconds_sending(&self) -> usize {
        self.batches
            .iter()
            .map(|b| b.sent_us.saturating_sub(self.started_us) / 1_000_000 + 1)
            .max()
            .unwrap_or(0) as usize
    }

    /// When the last answer was read, µs since the epoch; `None` when nothing was sent.
    pub fn last_answer_us(&self) -> Option<u64> {
        self.batches.iter().map(|b| b.answered_us).max()
    }

    /// When each post's request started (µs since the epoch), by post index; `None` for
    /// posts that were not sent.
    pub fn send_times(&self, posts: usize) -> Vec<Option<u64>> {
        let mut times = vec![None; posts];
        for batch in &self.batches {
            for time in &mut times[batch.first..batch.end] {
                *time = Some(batch.sent_us);
            }
        }
        times
    }
}

/// Runs the loop on a new thread; the report arrives on the returned channel. An
/// interrupted bench simply exits and takes the thread with it.
pub fn spawn(
    plan: Plan,
    posts: Arc<Posts>,
    epoch: Instant,
) -> anyhow::Result<tokio::sync::oneshot::Receiver<anyhow::Result<IngestReport>>> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("sluice-bench-ingest".into())
        .spawn(move || {
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the ingest runtime")
                .and_then(|rt| rt.block_on(run(&plan, &posts, epoch)));
            // The bench may have stopped listening (interrupted); nothing to do then.
            let _ = tx.send(result);
        })
        .context("starting the ingest thread")?;
    Ok(rx)
}

#[derive(Deserialize)]
struct IngestAnswer {
    accepted: u64,
    rejected: Vec<serde::de::IgnoredAny>,
}

async fn run(plan: &Plan, posts: &Arc<Posts>, epoch: Instant) -> anyhow::Result<IngestReport> {
    anyhow::ensure!(!plan.urls.is_empty(), "no ingest URL");
    let client = Arc::new(HttpClient::new(&plan.tls, Some(Duration::from_secs(30)))?);
    let auth = Auth::Bearer(plan.token.clone());
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let mut tasks = Vec::new();
    let mut ticker = tokio::time::interval(plan.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let total = posts.len();
    let started = Instant::now();
    let started_us = started.saturating_duration_since(epoch).as_micros() as u64;
    let mut sent = 0usize;
    while sent < total {
        ticker.tick().await;
        let due = ((started.elapsed().as_secs_f64() * plan.rate) as usize).min(total);
        // Behind schedule, what is due goes out in several requests of a bounded size.
        while sent < due {
            let permit = in_flight
                .clone()
                .acquire_owned()
                .await
                .expect("the semaphore is never closed");
            let (first, end) = (sent, posts.batch_end(sent, due, MAX_REQUEST_BYTES));
            sent = end;
            let url = plan.url_of(tasks.len());
            tasks.push(tokio::spawn(send_batch(
                client.clone(),
                Request::new(Method::POST, url, &auth)?
                    .header(CONTENT_TYPE, "application/x-ndjson")
                    .body(posts.batch(first, end)),
                (first, end),
                epoch,
                permit,
            )));
        }
    }
    let mut report = IngestReport {
        started_us,
        batches: Vec::with_capacity(tasks.len()),
    };
    for task in tasks {
        report
            .batches
            .push(task.await.context("an ingest request panicked")?);
    }
    Ok(report)
}

/// Sends posts `range` and records the request; `permit` is held while it is in flight.
async fn send_batch(
    client: Arc<HttpClient>,
    request: Request,
    (first, end): (usize, usize),
    epoch: Instant,
    permit: OwnedSemaphorePermit,
) -> SentBatch {
    let sent_us = epoch.elapsed().as_micros() as u64;
    let outcome = send(&client, &request).await;
    drop(permit);
    let answered_us = epoch.elapsed().as_micros() as u64;
    let (accepted, rejected, error) = match outcome {
        Ok((accepted, rejected)) => (accepted, rejected, None),
        Err(e) => (0, 0, Some(format!("{e:#}"))),
    };
    SentBatch {
        first,
        end,
        sent_us,
        answered_us,
        accepted,
        rejected,
        error,
    }
}

/// One request: `(accepted, rejected)`.
async fn send(client: &HttpClient, request: &Request) -> anyhow::Result<(u64, u64)> {
    let response = client.send(request).await?;
    let reply = sluice_client::http::Reply::read(response).await?;
    anyhow::ensure!(
        reply.status.is_success(),
        "HTTP {}: {}",
        reply.status,
        reply.error_message()
    );
    let answer: IngestAnswer =
        serde_json::from_slice(&reply.body).context("unexpected ingest answer")?;
    Ok((answer.accepted, answer.rejected.len() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(first: usize, end: usize, sent_us: u64, answered_us: u64) -> SentBatch {
        SentBatch {
            first,
            end,
            sent_us,
            answered_us,
            accepted: (end - first) as u64,
            rejected: 0,
            error: None,
        }
    }

    #[test]
    fn requests_go_round_robin_to_the_nodes() {
        let plan = Plan {
            urls: (1..=3)
                .map(|n| Url::parse(&format!("http://127.0.0.1:900{n}/ingest")).expect("URL"))
                .collect(),
            token: "t".to_owned(),
            rate: 1.0,
            interval: Duration::from_millis(5),
            tls: TlsArgs { cacert: None },
        };
        let ports: Vec<u16> = (0..7)
            .map(|k| plan.url_of(k).port().expect("port"))
            .collect();
        assert_eq!(ports, [9001, 9002, 9003, 9001, 9002, 9003, 9001]);
        let one = Plan {
            urls: plan.urls[..1].to_vec(),
            ..plan
        };
        assert!((0..4).all(|k| one.url_of(k).port() == Some(9001)));
    }

    #[test]
    fn send_times_follow_the_batches() {
        let report = IngestReport {
            started_us: 50,
            batches: vec![batch(0, 2, 100, 150), batch(2, 3, 200, 260)],
        };
        assert_eq!(
            report.send_times(4),
            [Some(100), Some(100), Some(200), None]
        );
        assert_eq!(report.last_answer_us(), Some(260));
        assert_eq!(report.seconds_sending(), 1);
        let later = IngestReport {
            started_us: 50,
            batches: vec![batch(0, 2, 100, 150), batch(2, 3, 2_000_050, 2_000_100)],
        };
        assert_eq!(later.seconds_sending(), 3, "a second only begun counts");
        assert_eq!(IngestReport::default().seconds_sending(), 0);
        assert_eq!(report.accepted(), 3);
        assert_eq!(IngestReport::default().last_answer_us(), None);
    }
}
