//! `sluice bench connections`: what holding many stream connections costs the server. The
//! bench opens `N` connections in steps (1,000, then `N`), samples the server's resident
//! memory before, at each step and after closing them all, delivers a few posts to every
//! connection one at a time and times each post's arrival on each of them, and reports the
//! memory per idle connection, whether the memory came back, the p50/p99/max delivery
//! latency and the CPU the server and the bench used while delivering, with a verdict
//! against the project's targets ([`report`]). With `cycles` above one it does all that
//! again with fresh connections and posts, so that memory kept by every cycle (which
//! grows) can be told from memory kept once (the first cycle's, which does not).
//!
//! It is a benchmark of its own rather than a flag of the product benchmarks: those measure
//! matching and delivery under a paced load with a realistic rule set, this one the cost of
//! a connection with the smallest workload that still reaches every connection (one rule
//! per stream that every post matches). What differs per product is only provisioning
//! (`provision`).
//!
//! Cheap on the bench side too: every connection is one task on the bench's runtime that
//! reads and decodes its body (`hold`); no thread per connection. The bench raises its
//! own open-files limit first and says plainly when the system's hard limit is too low
//! (`limits`); a server it starts inherits the raised limit.

mod hold;
mod limits;
mod posts;
mod provision;
pub mod report;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use hyper::Method;
use sluice_client::http::{Auth, HttpClient, Reply, Request, TlsArgs};
use tokio::sync::{Notify, Semaphore, oneshot};
use tokio::task::JoinSet;

use crate::benchmark::Encoding;
use crate::config::ServerChoice;
use crate::cpu::Processes;
use crate::progress;
use crate::target::Target;
use hold::{Board, Held};
pub use limits::Files;
use report::{ConnectionsReport, RssStep, ServerMemory};

/// Connects in flight at once while a step opens its connections.
const CONCURRENT_CONNECTS: usize = 64;
/// The first step, when more connections are asked for.
const FIRST_STEP: usize = 1_000;
/// Time given to the server after a step opened before its memory is read.
const SETTLE: Duration = Duration::from_secs(1);
/// How long one post may take to reach every connection before the next is sent.
pub(crate) const POST_TIMEOUT: Duration = Duration::from_secs(10);
/// Pause between two posts, so that each goes out as a batch of its own.
const POST_GAP: Duration = Duration::from_millis(100);
/// How long the server gets to notice the closed connections and give memory back.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the memory and the open-connection gauge are read meanwhile.
const CLOSE_POLL: Duration = Duration::from_millis(500);
/// How long a cycle's PowerTrack connects wait after the last cycle's: X's connect limit is
/// per minute (a second more for the clocks' rounding).
const CONNECT_WINDOW: Duration = Duration::from_secs(61);

/// Which API the connections use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// PowerTrack streams (gzip only: X refuses identity).
    Powertrack,
    /// The account's Powerstream.
    Powerstream,
}

impl Api {
    /// The name the report and the flags use.
    pub fn name(self) -> &'static str {
        match self {
            Api::Powertrack => "powertrack",
            Api::Powerstream => "powerstream",
        }
    }
}

/// One run of `sluice bench connections`, checked.
#[derive(Debug, Clone)]
pub struct ConnectionsConfig {
    /// Connections to hold at once.
    pub connections: usize,
    /// Their API.
    pub api: Api,
    /// What they ask for (PowerTrack: gzip only).
    pub encoding: Encoding,
    /// Posts delivered to every connection, one at a time.
    pub posts: usize,
    /// How many times the connections are opened, given the posts and closed (at least 1).
    pub cycles: usize,
    /// The server: spawned (from any sluice executable) or running; not a cluster.
    pub server: ServerChoice,
    /// TLS settings of every client connection.
    pub tls: TlsArgs,
}

/// Runs `config` and reports what it measured. Dropping the future stops a spawned server.
pub async fn run(config: &ConnectionsConfig) -> anyhow::Result<ConnectionsReport> {
    anyhow::ensure!(config.cycles >= 1, "a run needs at least one cycle");
    let files = limits::raise_for(config.connections)?;
    let target = match &config.server {
        ServerChoice::Spawn(serve) => {
            progress(&format!("starting {} serve", serve.exe.display()));
            Target::spawn(serve)?
        }
        ServerChoice::Running { base, admin_token } => {
            Target::external(base.clone(), admin_token.clone())
        }
        ServerChoice::Cluster { .. } => bail!("the connections bench runs against one server"),
    };
    let description = target.describe();
    progress(&format!("server: {description}"));
    let pid = target.pids().first().copied();
    let client = Arc::new(HttpClient::new(&config.tls, None)?);
    target.wait_healthy(&client).await?;
    let planned = provision::provision(&client, &target, config).await?;

    let start = pid.map(memory_of).transpose()?;
    let mut memory = ServerMemory::new(start);
    let run = Run {
        config,
        client: &client,
        target: &target,
        planned: &planned,
        pid,
        start_kb: memory.start_kb,
    };
    let mut cycles: Vec<Cycle> = Vec::with_capacity(config.cycles);
    for number in 1..=config.cycles {
        if let Some(previous) = cycles.last() {
            run.wait_for_connect_limit(previous).await;
        }
        if config.cycles > 1 {
            progress(&format!("cycle {number} of {}", config.cycles));
        }
        let mut cycle = run.cycle().await?;
        let still_open = cycle.memory.after_close.map_or(0, |a| a.still_open);
        if number < config.cycles && still_open > 0 {
            bail!(
                "cycle {number}: the server still counted {still_open} connections open {} s \
                 after the bench closed them; another cycle would go over the streams' \
                 connection caps",
                CLOSE_TIMEOUT.as_secs()
            );
        }
        memory.record_cycle(number, std::mem::take(&mut cycle.memory));
        cycles.push(cycle);
    }
    if !target.is_spawned() {
        provision::remove(&client, &target, config, &planned).await?;
    }
    drop(target);
    Ok(assemble(
        config,
        description,
        files,
        pid.map(|_| memory),
        &cycles,
    ))
}

/// The report of a run's `cycles` (at least one): deliveries over all of them, the open
/// time, the bench's memory and the CPU of the first.
fn assemble(
    config: &ConnectionsConfig,
    server: String,
    files: Files,
    memory: Option<ServerMemory>,
    cycles: &[Cycle],
) -> ConnectionsReport {
    let delivered: Vec<report::Delivered> = cycles
        .iter()
        .map(|c| report::Delivered {
            sent: &c.sent,
            late_posts: c.late_posts,
            held: &c.held,
        })
        .collect();
    let first = &cycles[0];
    report::assemble(report::Measured {
        config,
        server,
        files,
        open_time: first.open_time,
        memory,
        bench_rss_kb: first.bench_rss_kb,
        delivery_cpu: first.delivery_cpu.clone(),
        cycles: &delivered,
    })
}

/// What one cycle (open every connection, deliver the posts, close them all) needs.
struct Run<'a> {
    config: &'a ConnectionsConfig,
    client: &'a Arc<HttpClient>,
    target: &'a Target,
    planned: &'a provision::Planned,
    /// The server's process, when the bench started it.
    pid: Option<u32>,
    /// The server's memory before the first cycle, KiB.
    start_kb: Option<u64>,
}

/// What one cycle measured.
struct Cycle {
    /// The server's memory with the connections open and after they closed (moved into
    /// the run's [`ServerMemory`]).
    memory: report::CycleMemory,
    /// How long opening every connection took.
    open_time: Duration,
    /// When the last step of connects was done (its connects, the settling pause and the
    /// memory reading): the last connect was before.
    opened_at: Instant,
    /// The bench's own memory with every connection open, KiB.
    bench_rss_kb: Option<u64>,
    /// When each post's ingest request started, µs on the cycle's board.
    sent: Vec<u64>,
    /// Posts not on every connection within [`POST_TIMEOUT`].
    late_posts: usize,
    /// CPU the server and the bench used while the posts were delivered.
    delivery_cpu: crate::report::Cpu,
    /// What each connection saw.
    held: Vec<Held>,
}

impl Run<'_> {
    /// Before a cycle after the first, for PowerTrack: waits until a minute has passed
    /// since the previous cycle's last connect, so that every connect of this one falls in
    /// a window of X's 60 connects per minute per stream that the last did not count in.
    /// Otherwise connects would wait for the window one by one, holding their slots.
    async fn wait_for_connect_limit(&self, previous: &Cycle) {
        let left = connect_wait(self.config.api, previous.opened_at, Instant::now());
        if !left.is_zero() {
            progress(&format!(
                "waiting {:.0} s for a new window of the streams' connect limit (60 a minute)",
                left.as_secs_f64()
            ));
            tokio::time::sleep(left).await;
        }
    }

    /// Opens every connection in steps (reading the server's memory after each), delivers
    /// the posts (fresh ids each cycle) and closes them all, then waits for the memory.
    ///
    /// Long on purpose: the cycle reads as its steps, which share the connections' stops,
    /// wakes and tasks.
    async fn cycle(&self) -> anyhow::Result<Cycle> {
        let config = self.config;
        let board = Arc::new(Board::new(posts::ids(config.posts)));
        let mut stops = Vec::with_capacity(config.connections);
        let mut wakes = Vec::with_capacity(config.connections);
        let connects = Arc::new(Semaphore::new(CONCURRENT_CONNECTS));
        let mut held = JoinSet::new();
        let mut steps_read = Vec::new();
        let opening = Instant::now();
        let mut asked = 0;
        for step in steps(config.connections) {
            progress(&format!("opening connections {}..{step}", asked + 1));
            for i in asked..step {
                let connection = self.planned.connection(i);
                let (stop, stopped) = oneshot::channel();
                stops.push(stop);
                let wake = Arc::new(Notify::new());
                wakes.push(wake.clone());
                let task = hold::hold(
                    self.client.clone(),
                    connection,
                    connects.clone(),
                    board.clone(),
                    wake,
                    stopped,
                );
                held.spawn(task);
            }
            asked = step;
            board.wait_connected(step).await;
            if let Some(failed) = board.first_failure() {
                bail!(
                    "{} of {step} connections failed to open; the first: {failed}",
                    board.failed()
                );
            }
            tokio::time::sleep(SETTLE).await;
            if let Some(pid) = self.pid {
                steps_read.push(RssStep::new(step, memory_of(pid)?));
            }
        }
        let opened_at = Instant::now();
        let open_time = opened_at - opening;
        let bench_rss_kb = limits::own_rss_kb();

        progress(&format!(
            "delivering {} posts to each of {} connections",
            config.posts, config.connections
        ));
        let processes = Processes::of(self.target);
        let before = processes.snapshot();
        let delivering = Instant::now();
        let windows = config.encoding == Encoding::Gzip;
        let (sent, late_posts) = deliver(self.client, self.target, &board, &wakes, windows).await?;
        let delivery_cpu = before.usage_until(&processes.snapshot(), delivering.elapsed());

        progress("closing every connection");
        for stop in stops {
            let _ = stop.send(());
        }
        let mut reports: Vec<Held> = Vec::with_capacity(config.connections);
        while let Some(joined) = held.join_next().await {
            reports.push(joined.context("a connection task panicked")?);
        }
        let after_close = match self.pid {
            Some(pid) => Some(after_close(self.client, self.target, pid, self.start_kb).await?),
            None => None,
        };
        Ok(Cycle {
            memory: report::CycleMemory {
                steps: steps_read,
                after_close,
            },
            open_time,
            opened_at,
            bench_rss_kb,
            sent,
            late_posts,
            delivery_cpu,
            held: reports,
        })
    }
}

/// How long a cycle of `api` connections must wait at `now`, the last cycle's connects
/// having all been made by `connected`: see [`Run::wait_for_connect_limit`].
fn connect_wait(api: Api, connected: Instant, now: Instant) -> Duration {
    match api {
        Api::Powertrack => (connected + CONNECT_WINDOW).saturating_duration_since(now),
        Api::Powerstream => Duration::ZERO,
    }
}

/// The connection counts after each step: 1,000 first when more are asked for, then all.
fn steps(connections: usize) -> Vec<usize> {
    if connections > FIRST_STEP {
        vec![FIRST_STEP, connections]
    } else {
        vec![connections]
    }
}

/// The resident memory of process `pid`.
fn memory_of(pid: u32) -> anyhow::Result<limits::Resident> {
    limits::resident(pid).with_context(|| format!("reading the memory of the server (pid {pid})"))
}

/// Ingests the posts one at a time, each once every connection has the one before (or
/// [`POST_TIMEOUT`] passed); returns when each ingest request started, µs since the board's
/// epoch, and how many posts a wait gave up on. With `windows` (gzip bodies, whose
/// inflating costs the bench as much as the server's sending), each post has a window
/// ([`hold`]): open from just before its ingest until every connection has read something
/// (or [`POST_TIMEOUT`]), while connections only read and timestamp; then each connection
/// is woken (`wakes`) to decode what it read, and the bench waits for the post to be found
/// on every one of them. Without, connections decode as they read: an identity body is
/// cheap to check, and the extra wake per connection and post cost more than it saved
/// (docs/performance.md, "The bench's own work").
async fn deliver(
    client: &HttpClient,
    target: &Target,
    board: &Board,
    wakes: &[Arc<Notify>],
    windows: bool,
) -> anyhow::Result<(Vec<u64>, usize)> {
    let connections = wakes.len();
    let mut late = 0;
    let url = target
        .base
        .join("ingest")
        .context("building the ingest URL")?;
    let auth = Auth::Bearer(target.admin_token.clone());
    let mut sent = Vec::with_capacity(board.posts());
    for k in 0..board.posts() {
        let body = posts::post(board.id(k), k);
        let request = Request::new(Method::POST, &url, &auth)?
            .header(hyper::header::CONTENT_TYPE, "application/x-ndjson")
            .body(body);
        if windows {
            board.open_window(k);
        }
        sent.push(board.now_us());
        let reply = Reply::read(client.send(&request).await?).await?;
        anyhow::ensure!(
            reply.status.is_success(),
            "ingesting post {}: HTTP {}: {}",
            k + 1,
            reply.status,
            reply.error_message()
        );
        let mut in_time = true;
        if windows {
            in_time = board.wait_touched(k, connections, POST_TIMEOUT).await;
            board.close_window();
            for wake in wakes {
                wake.notify_one();
            }
        }
        in_time &= board.wait_arrived(k, connections, POST_TIMEOUT).await;
        if !in_time {
            late += 1;
        }
        tokio::time::sleep(POST_GAP).await;
    }
    Ok((sent, late))
}

/// Waits until the server shows no open connection and its memory is back within the
/// target of its start, `start_kb` (or [`CLOSE_TIMEOUT`] passed); returns the memory then.
async fn after_close(
    client: &HttpClient,
    target: &Target,
    pid: u32,
    start_kb: Option<u64>,
) -> anyhow::Result<report::AfterClose> {
    let started = Instant::now();
    loop {
        let resident = memory_of(pid)?;
        let rss_kb = resident.rss_kb;
        let open = open_connections(client, target).await?;
        let waited = started.elapsed();
        let back = start_kb.is_some_and(|start| report::returned(start, rss_kb));
        if (open == 0 && back) || waited >= CLOSE_TIMEOUT {
            return Ok(report::AfterClose {
                rss_kb,
                parts: resident.parts,
                threads: resident.threads,
                still_open: open,
                waited,
            });
        }
        tokio::time::sleep(CLOSE_POLL).await;
    }
}

/// The server's open stream connections, from its `sluice_connections_open` gauges.
async fn open_connections(client: &HttpClient, target: &Target) -> anyhow::Result<u64> {
    let url = target
        .base
        .join("metrics")
        .context("building the metrics URL")?;
    let request = Request::new(Method::GET, &url, &Auth::Bearer(target.admin_token.clone()))?;
    let reply = Reply::read(client.send(&request).await?).await?;
    anyhow::ensure!(
        reply.status.is_success(),
        "reading /metrics: HTTP {}",
        reply.status
    );
    Ok(report::open_gauge(&String::from_utf8_lossy(&reply.body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The end-to-end test of cycles runs Powerstream, which has no connect limit: a
    /// PowerTrack one would wait a minute. This is what guards the wait.
    #[test]
    fn a_powertrack_cycle_waits_a_minute_after_the_last_connect() {
        let last = Instant::now();
        let soon = last + Duration::from_secs(20);
        let later = last + Duration::from_secs(90);
        assert_eq!(
            connect_wait(Api::Powertrack, last, soon),
            Duration::from_secs(41)
        );
        assert_eq!(connect_wait(Api::Powertrack, last, later), Duration::ZERO);
        assert_eq!(connect_wait(Api::Powerstream, last, soon), Duration::ZERO);
    }

    #[test]
    fn connections_open_in_a_step_of_1000_then_all() {
        assert_eq!(steps(10_000), [1_000, 10_000]);
        assert_eq!(steps(1_001), [1_000, 1_001]);
        assert_eq!(steps(1_000), [1_000]);
        assert_eq!(steps(200), [200]);
    }
}
