//! The result of a run as one value, [`Report`]: the machine, the server under test, the
//! setup and pacing, every figure measured, and the verdict. `sluice bench` prints it as
//! text ([`Report::to_text`], the default) or as one JSON object (`--json`, through
//! serde): both show the same figures from the same value. Durations appear in JSON as
//! numbers whose key names the unit (`p99_ms`, `span_s`).

mod assemble;
pub(crate) mod text;

use std::time::Duration;

use serde::{Serialize, Serializer};

use crate::benchmark::Encoding;
use crate::config::Pacing;
use crate::cpu::Usage;
use crate::stats::Latency;
use crate::verdict::{Check, Goal};

pub(crate) use assemble::{Measured, assemble};

/// Everything `sluice bench` reports about a run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The benchmark (`powertrack`, `firehose`, `powerstream`).
    pub benchmark: &'static str,
    /// The machine the run was on.
    pub machine: Machine,
    /// The server under test.
    pub server: Server,
    /// What the benchmark set up.
    pub setup: Setup,
    /// How the posts were sent.
    pub pacing: Pacing,
    /// The posts and what the stream must deliver.
    pub workload: Workload,
    /// The ingest side.
    pub ingested: Ingested,
    /// The stream side, all connections together.
    pub delivered: Delivered,
    /// Ingest request start → arrival, for the first arrival of every expected post;
    /// `None` when no post arrived.
    pub latency: Option<Latency>,
    /// The p99 of the posts sent in each second of the run, in order (`None` for a second
    /// none of whose posts arrived; the last is usually a part of a second): whether a slow
    /// p99 is one stall or the whole run.
    #[serde(rename = "p99_ms_by_second", serialize_with = "as_ms_each")]
    pub p99_by_second: Vec<Option<Duration>>,
    /// Posts lost, duplicated, unexpected or not ingested.
    pub loss: Loss,
    /// Connections that ended before the bench closed them, with the reason.
    pub disconnects: Vec<String>,
    /// System messages the streams sent.
    pub system_messages: Vec<String>,
    /// CPU used while posts were sent and delivered.
    pub cpu: Cpu,
    /// The project's target for the benchmark.
    pub goal: Goal,
    /// Each part of the goal, met or not.
    pub targets: Vec<Check>,
    /// Whether every part was met.
    pub verdict: Verdict,
}

impl Report {
    /// Whether the run completed as it should: every connection got every expected post
    /// exactly once and stayed connected (the verdict aside).
    pub fn succeeded(&self) -> bool {
        self.loss.exact && self.disconnects.is_empty()
    }
}

/// The machine a run is on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Cores the process may use.
    pub cores: usize,
    /// The CPU model, when the OS says.
    pub cpu: Option<String>,
    /// OS, kernel and architecture.
    pub os: String,
    /// Whether the bench is an optimised build (timings of a debug build mean little).
    pub release_build: bool,
}

impl Machine {
    /// Describes this machine.
    pub fn detect() -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .filter_map(|line| line.split_once(':'))
                    .find(|(key, _)| matches!(key.trim(), "model name" | "Model" | "cpu model"))
                    .map(|(_, value)| value.trim().to_owned())
            });
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|k| format!(" {}", k.trim()))
            .unwrap_or_default();
        Self {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu,
            os: format!(
                "{}{kernel} {}",
                std::env::consts::OS,
                std::env::consts::ARCH
            ),
            release_build: !cfg!(debug_assertions),
        }
    }
}

/// The server under test.
#[derive(Debug, Clone, Serialize)]
pub struct Server {
    /// How it was reached, e.g. `spawned `sluice serve` (pid 42) at http://127.0.0.1:…`.
    pub description: String,
    /// The process id of every node the bench started, in node order.
    pub pids: Vec<u32>,
    /// Nodes of the cluster the bench started (`--cluster N`), `None` for one server.
    pub cluster: Option<usize>,
    /// The NATS server the cluster shares, when the bench started one.
    pub nats: Option<Nats>,
}

/// The NATS server of a cluster the bench started.
#[derive(Debug, Clone, Serialize)]
pub struct Nats {
    /// Its version, address and storage.
    pub description: String,
    /// Its process id.
    pub pid: u32,
}

/// What a benchmark set up, as each product describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setup {
    /// The product's part of the parameters line, e.g. `1,000 rules, 50 streams, 100
    /// connections`.
    pub summary: String,
    /// Rules generated, for the rules products.
    pub rules: Option<usize>,
    /// The rule the bench added to every stream because the generated ones matched too
    /// little.
    pub share_rule: Option<&'static str>,
    /// Streams the connections read.
    pub streams: usize,
    /// Partitions read, one connection each, for a volume stream.
    pub partitions: Option<u32>,
    /// Stream connections.
    pub connections: usize,
    /// What the connections asked for.
    pub encoding: Encoding,
}

/// The posts of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Workload {
    /// Posts generated and sent.
    pub posts: usize,
    /// Their size in bytes (NDJSON).
    pub bytes: usize,
    /// Posts the stream must deliver (to every connection of a rules stream whose rules
    /// match them, to its partition's connection on a volume stream).
    pub expected: usize,
    /// Deliveries expected, summed over connections.
    pub deliveries: u64,
}

/// The ingest side of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Ingested {
    /// Posts accepted per second.
    pub rate: f64,
    /// Posts the server accepted.
    pub accepted: u64,
    /// Posts it rejected.
    pub rejected: u64,
    /// From the ingest loop's start to the last ingest answer.
    #[serde(rename = "span_s", serialize_with = "as_s")]
    pub span: Duration,
    /// Ingest requests that failed.
    pub failed_requests: usize,
    /// Why the first of them failed.
    pub first_error: Option<String>,
}

/// The stream side of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Delivered {
    /// Posts received per second, all connections together.
    pub rate: f64,
    /// Posts received, over all connections (duplicates and unexpected ones included).
    pub posts: u64,
    /// From the ingest loop's start to the last arrival.
    #[serde(rename = "span_s", serialize_with = "as_s")]
    pub span: Duration,
}

/// What did not arrive as it should.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Loss {
    /// Expected − received, summed over connections.
    pub lost: u64,
    /// Extra copies received.
    pub duplicates: u64,
    /// Posts received that should not have been.
    pub unexpected: u64,
    /// Posts sent that the server did not accept.
    pub not_ingested: u64,
    /// Whether every expected post arrived exactly once on every connection and the
    /// server took every post.
    pub exact: bool,
}

/// CPU use over the measured window, as shares of one core.
#[derive(Debug, Clone, Serialize)]
pub struct Cpu {
    /// The window (ingest start to the end of delivery).
    #[serde(rename = "window_s", serialize_with = "as_s")]
    pub window: Duration,
    /// Every node the bench started, together (the server itself when there is one), on
    /// Linux.
    pub server: Option<ProcessCpu>,
    /// Each node, in node order (empty when not measured).
    pub nodes: Vec<ProcessCpu>,
    /// The NATS server a cluster shares, when the bench started it on Linux.
    pub nats: Option<ProcessCpu>,
    /// The bench itself, on Linux.
    pub bench: Option<ProcessCpu>,
    /// How busy the machine's cores were over the window, in % of all of them: every
    /// process's time and the time the hypervisor gave to other machines (`/proc/stat`),
    /// on Linux. At [`SATURATED_PERCENT`] or more the latency includes waiting for a CPU.
    /// These are all the cores `/proc/stat` counts: in a container limited to fewer, the
    /// host's.
    pub machine_busy_percent: Option<f64>,
    /// How many cores `/proc/stat` counts (its `cpuN` lines), which
    /// [`machine_busy_percent`](Cpu::machine_busy_percent) is a share of.
    pub machine_cores: Option<usize>,
}

/// How busy the machine's cores must be (in % of all of them) for the report to say that
/// the run measured the machine's limit as much as sluice: with the cores busy nine
/// tenths of the time, a post's work often waits for one.
pub const SATURATED_PERCENT: f64 = 90.0;

/// One process's (or several processes') CPU use over the window.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessCpu {
    /// CPU time used.
    #[serde(rename = "cpu_s", serialize_with = "as_s")]
    pub used: Duration,
    /// Used, in % of one core over the window.
    pub percent: f64,
    /// Time runnable but waiting for a CPU, in % of one core (`None` where the kernel
    /// does not say).
    pub waited_percent: Option<f64>,
    /// By thread name, busiest first (threads of one name, e.g. a pool, summed).
    pub threads: Vec<ThreadCpu>,
}

/// The threads of one name.
#[derive(Debug, Clone, Serialize)]
pub struct ThreadCpu {
    /// The thread name.
    pub name: String,
    /// In % of one core over the window.
    pub percent: f64,
}

impl Cpu {
    /// The shares of one core of what each process used over `window`: `nodes` (all or
    /// none), the NATS server and the bench.
    pub(crate) fn over(
        window: Duration,
        nodes: Option<Vec<Usage>>,
        nats: Option<Usage>,
        bench: Option<Usage>,
    ) -> Cpu {
        let share = |usage: &Usage| ProcessCpu::of(usage, window);
        let nodes = nodes.unwrap_or_default();
        Cpu {
            window,
            server: (!nodes.is_empty()).then(|| share(&Usage::combined(&nodes))),
            nodes: nodes.iter().map(share).collect(),
            nats: nats.as_ref().map(share),
            bench: bench.as_ref().map(share),
            machine_busy_percent: None,
            machine_cores: None,
        }
    }

    /// Whether the machine's cores were busy [`SATURATED_PERCENT`] of the window or more,
    /// as the report shows it (rounded to a whole percent), so that a figure shown as 90 %
    /// always comes with its note.
    pub fn saturated(&self) -> bool {
        self.machine_busy_percent
            .is_some_and(|busy| busy.round() >= SATURATED_PERCENT)
    }
}

impl ProcessCpu {
    /// `usage` as shares of one core over `window`.
    fn of(usage: &Usage, window: Duration) -> ProcessCpu {
        let percent = |d: Duration| {
            if window.is_zero() {
                0.0
            } else {
                100.0 * d.as_secs_f64() / window.as_secs_f64()
            }
        };
        ProcessCpu {
            used: usage.total,
            percent: percent(usage.total),
            waited_percent: usage.waited.map(percent),
            threads: usage
                .by_name
                .iter()
                .map(|(name, used)| ThreadCpu {
                    name: name.clone(),
                    percent: percent(*used),
                })
                .collect(),
        }
    }
}

/// Whether every part of the goal was met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Verdict {
    /// Every part met.
    #[serde(rename = "PASS")]
    Pass,
    /// Some part missed.
    #[serde(rename = "MISS")]
    Miss,
}

/// A duration in JSON: seconds.
pub(crate) fn as_s<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// A duration in JSON: milliseconds.
pub(crate) fn as_ms<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1e3)
}

/// Optional durations as milliseconds, `null` for none.
fn as_ms_each<S: Serializer>(ds: &[Option<Duration>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(ds.iter().map(|d| d.map(|d| d.as_secs_f64() * 1e3)))
}
