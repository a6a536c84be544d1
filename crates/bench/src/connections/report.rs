//! The report of `sluice bench connections`: the server's memory at each step and after
//! closing, the delivery latency of the posts over every connection, and the verdict
//! against the project's targets ([`TARGET_BYTES_PER_CONNECTION`], [`RETURN_TOLERANCE`],
//! [`TARGET_P99`]), as text or JSON.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::hold::Held;
use super::limits::{Files, Resident, ResidentParts};
use super::{Api, ConnectionsConfig};
use crate::benchmark::Encoding;
use crate::report::text::{machine_busy_clause, thousands};
use crate::report::{Cpu, ProcessCpu, as_s};
use crate::stats::Latency;

/// The most memory an idle connection may cost the server.
pub const TARGET_BYTES_PER_CONNECTION: u64 = 64 << 10;
/// How far above its start the server's memory may stay once every connection closed.
pub const RETURN_TOLERANCE: f64 = 0.10;
/// The p99 a post delivered to every connection must beat.
pub const TARGET_P99: Duration = Duration::from_millis(100);

/// The server's resident memory over the run (known when the bench started the server).
#[derive(Debug, Clone, Serialize)]
pub struct ServerMemory {
    /// Before the first connection (after provisioning), KiB.
    pub start_kb: Option<u64>,
    /// What the start is made of, when the kernel tells.
    pub start_parts: Option<ResidentParts>,
    /// The server's threads at the start.
    pub start_threads: Option<u64>,
    /// After each step of connects (the first cycle's).
    pub steps: Vec<RssStep>,
    /// Once every connection closed (the first cycle's).
    pub after_close: Option<AfterClose>,
    /// The cycles after the first, in order (none unless the run asked for more).
    pub later_cycles: Vec<CycleMemory>,
}

impl ServerMemory {
    /// Memory starting at `start`.
    pub fn new(start: Option<Resident>) -> Self {
        Self {
            start_kb: start.map(|r| r.rss_kb),
            start_parts: start.and_then(|r| r.parts),
            start_threads: start.and_then(|r| r.threads),
            steps: Vec::new(),
            after_close: None,
            later_cycles: Vec::new(),
        }
    }

    /// Records the readings of cycle `number` (from 1): the first's in `steps` and
    /// `after_close`, each later one's in `later_cycles`.
    pub fn record_cycle(&mut self, number: usize, cycle: CycleMemory) {
        if number <= 1 {
            self.steps = cycle.steps;
            self.after_close = cycle.after_close;
        } else {
            self.later_cycles.push(cycle);
        }
    }

    /// Every cycle's readings in order, the first's included: (after each step of
    /// connects, once every connection closed).
    fn cycles(&self) -> impl Iterator<Item = (&[RssStep], Option<AfterClose>)> {
        let later = self
            .later_cycles
            .iter()
            .map(|c| (&c.steps[..], c.after_close));
        std::iter::once((&self.steps[..], self.after_close)).chain(later)
    }

    /// The memory after the last cycle closed its connections: what the return target is
    /// judged on, so that memory kept by every cycle adds up to a miss.
    pub fn last_after_close(&self) -> Option<AfterClose> {
        self.cycles()
            .last()
            .and_then(|(_, after_close)| after_close)
    }

    /// Bytes per connection at the last step, over the start.
    pub fn bytes_per_connection(&self) -> Option<u64> {
        let last = self.steps.last()?;
        per_connection(self.start_kb?, last.rss_kb, last.connections)
    }
}

/// The memory with some connections open.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RssStep {
    /// Connections open.
    pub connections: usize,
    /// The server's resident memory, KiB.
    pub rss_kb: u64,
    /// The server's threads.
    pub threads: Option<u64>,
}

impl RssStep {
    /// The server's memory and threads (`resident`) with `connections` open.
    pub fn new(connections: usize, resident: Resident) -> Self {
        Self {
            connections,
            rss_kb: resident.rss_kb,
            threads: resident.threads,
        }
    }
}

/// The memory of one cycle: with its connections open, and once they closed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CycleMemory {
    /// After each step of connects.
    pub steps: Vec<RssStep>,
    /// Once every connection closed.
    pub after_close: Option<AfterClose>,
}

/// The memory once the connections closed.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct AfterClose {
    /// The server's resident memory, KiB.
    pub rss_kb: u64,
    /// What it is made of, when the kernel tells.
    pub parts: Option<ResidentParts>,
    /// The server's threads.
    pub threads: Option<u64>,
    /// Connections the server still counted as open.
    pub still_open: u64,
    /// How long after the close it was read.
    #[serde(rename = "waited_s", serialize_with = "as_s")]
    pub waited: Duration,
}

/// Everything a run measured, for [`assemble`].
pub struct Measured<'a> {
    /// The run.
    pub config: &'a ConnectionsConfig,
    /// How the server under test is named.
    pub server: String,
    /// The bench's open-files limit.
    pub files: Files,
    /// How long opening every connection took in the first cycle.
    pub open_time: Duration,
    /// The server's memory (`None` for a running server: unknown).
    pub memory: Option<ServerMemory>,
    /// The bench's own memory with every connection of the first cycle open, KiB.
    pub bench_rss_kb: Option<u64>,
    /// CPU the server and the bench used while the first cycle's posts were delivered.
    pub delivery_cpu: Cpu,
    /// What each cycle delivered, in order (at least one).
    pub cycles: &'a [Delivered<'a>],
}

/// What one cycle delivered, for [`Measured`].
pub struct Delivered<'a> {
    /// When each post's ingest request started, µs on the cycle's clock.
    pub sent: &'a [u64],
    /// Posts that were not on every connection (or, for gzip, not read by every one)
    /// within the bench's timeout.
    pub late_posts: usize,
    /// What each connection saw.
    pub held: &'a [Held],
}

/// The report of one run.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectionsReport {
    /// Always `connections`.
    pub benchmark: &'static str,
    /// The connections' API.
    pub api: Api,
    /// What they asked for.
    pub encoding: Encoding,
    /// How the server under test is named.
    pub server: String,
    /// The bench's open-files limit.
    pub open_files: Files,
    /// Connections asked for.
    pub connections: usize,
    /// Times they were opened, given the posts and closed.
    pub cycles: usize,
    /// Connections that opened (in the cycle where the fewest did).
    pub opened: usize,
    /// How long opening them took (the first cycle).
    #[serde(rename = "open_s", serialize_with = "as_s")]
    pub open_time: Duration,
    /// The server's memory; `None` when unknown (a running server).
    pub server_memory: Option<ServerMemory>,
    /// The server's memory per connection at the first cycle's last step, bytes (what the
    /// per-connection target is judged on).
    pub bytes_per_connection: Option<u64>,
    /// The bench's own memory with every connection of the first cycle open, KiB.
    pub bench_rss_kb: Option<u64>,
    /// Posts delivered in each cycle.
    pub posts: usize,
    /// Arrivals expected: posts × connections opened, over every cycle.
    pub expected: u64,
    /// First arrivals, over every cycle.
    pub received: u64,
    /// Extra copies, over every cycle.
    pub duplicates: u64,
    /// Lines that were not bench posts, over every cycle.
    pub unexpected: u64,
    /// Connections the server ended before the bench closed them, over every cycle.
    pub dropped: usize,
    /// Posts the bench stopped waiting for (`POST_TIMEOUT`) before every
    /// connection had them, over every cycle.
    pub late_posts: usize,
    /// From the start of a post's ingest request to its arrival, over every connection
    /// and cycle.
    pub latency: Option<Latency>,
    /// CPU the server and the bench used while the first cycle's posts were delivered:
    /// with both on the same cores, what each post costs them per connection bounds how
    /// soon the last connection can have it.
    pub delivery_cpu: Cpu,
    /// Arrivals in the first cycle, which `delivery_cpu` is divided by for its figures
    /// per post and connection.
    pub delivery_cpu_arrivals: u64,
    /// The checks against the targets.
    pub verdict: Verdict,
}

/// One check of the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Check {
    /// Met.
    Pass,
    /// Not met.
    Miss,
    /// Not measured (the memory of a running server).
    Unknown,
}

/// The checks against the targets.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Verdict {
    /// Memory per idle connection ≤ 64 KiB.
    pub memory_per_connection: Check,
    /// Memory back within 10 % of its start after every connection closed, in the last
    /// cycle.
    pub memory_returned: Check,
    /// p99 of a post to every connection < 100 ms.
    pub p99: Check,
    /// Every connection opened and got every post once.
    pub complete: Check,
}

impl Verdict {
    /// Whether every check that could be made passed.
    pub fn passed(&self) -> bool {
        [
            self.memory_per_connection,
            self.memory_returned,
            self.p99,
            self.complete,
        ]
        .iter()
        .all(|c| *c != Check::Miss)
    }
}

impl ConnectionsReport {
    /// Whether every connection opened and received every post exactly once.
    pub fn succeeded(&self) -> bool {
        self.verdict.complete == Check::Pass
    }
}

/// Puts the report together. Long only for the report's fields, each set once.
pub fn assemble(m: Measured<'_>) -> ConnectionsReport {
    let mut samples: Vec<u64> = m.cycles.iter().flat_map(Delivered::latencies).collect();
    let expected = m.cycles.iter().map(Delivered::expected).sum();
    let late_posts = m.cycles.iter().map(|c| c.late_posts).sum();
    let first_arrivals = m.cycles.first().map_or(0, Delivered::arrivals);
    let opened = m
        .cycles
        .iter()
        .map(|c| opened_in(c.held))
        .min()
        .unwrap_or(0);
    let all_held = || m.cycles.iter().flat_map(|c| c.held.iter());
    let received = samples.len() as u64;
    let latency = Latency::of(&mut samples);
    let duplicates = all_held().map(|h| h.duplicates).sum();
    let unexpected = all_held().map(|h| h.unexpected).sum();
    let dropped = all_held().filter(|h| h.disconnect.is_some()).count();
    let bytes_per_connection = m
        .memory
        .as_ref()
        .and_then(ServerMemory::bytes_per_connection);
    let complete = !m.cycles.is_empty()
        && opened == m.config.connections
        && received == expected
        && duplicates == 0
        && unexpected == 0
        && dropped == 0
        && late_posts == 0;
    let verdict = Verdict {
        memory_per_connection: match bytes_per_connection {
            Some(bytes) => check(bytes <= TARGET_BYTES_PER_CONNECTION),
            None => Check::Unknown,
        },
        memory_returned: match m
            .memory
            .as_ref()
            .and_then(|mem| Some(returned(mem.start_kb?, mem.last_after_close()?.rss_kb)))
        {
            Some(back) => check(back),
            None => Check::Unknown,
        },
        p99: check(latency.is_some_and(|l| l.p99 < TARGET_P99)),
        complete: check(complete),
    };
    ConnectionsReport {
        benchmark: "connections",
        api: m.config.api,
        encoding: m.config.encoding,
        server: m.server,
        open_files: m.files,
        connections: m.config.connections,
        cycles: m.cycles.len(),
        opened,
        open_time: m.open_time,
        server_memory: m.memory,
        bytes_per_connection,
        bench_rss_kb: m.bench_rss_kb,
        posts: m.cycles.first().map_or(0, |c| c.sent.len()),
        expected,
        received,
        duplicates,
        unexpected,
        dropped,
        late_posts,
        latency,
        delivery_cpu: m.delivery_cpu,
        delivery_cpu_arrivals: first_arrivals,
        verdict,
    }
}

impl Delivered<'_> {
    /// From the start of each post's ingest request to its arrival, µs, for every first
    /// arrival on every connection.
    fn latencies(&self) -> impl Iterator<Item = u64> + '_ {
        self.held
            .iter()
            .flat_map(|h| h.arrivals.iter())
            .map(|&(k, at)| at.saturating_sub(self.sent.get(k).copied().unwrap_or(at)))
    }

    /// First arrivals, on every connection.
    fn arrivals(&self) -> u64 {
        self.held.iter().map(|h| h.arrivals.len() as u64).sum()
    }

    /// Arrivals expected: every post sent, on every connection that opened.
    fn expected(&self) -> u64 {
        (self.sent.len() * opened_in(self.held)) as u64
    }
}

/// The connections of a cycle that opened.
fn opened_in(held: &[Held]) -> usize {
    held.iter().filter(|h| h.opened).count()
}

fn check(met: bool) -> Check {
    if met { Check::Pass } else { Check::Miss }
}

/// Whether memory at `now_kb` is back within [`RETURN_TOLERANCE`] of `start_kb`.
pub fn returned(start_kb: u64, now_kb: u64) -> bool {
    now_kb as f64 <= start_kb as f64 * (1.0 + RETURN_TOLERANCE)
}

/// Bytes per connection between `start_kb` and `now_kb` with `connections` open.
fn per_connection(start_kb: u64, now_kb: u64, connections: usize) -> Option<u64> {
    (connections > 0).then(|| now_kb.saturating_sub(start_kb) * 1024 / connections as u64)
}

/// The sum of the `sluice_connections_open` gauges in a Prometheus text exposition.
pub fn open_gauge(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| {
            let name = l.split(['{', ' ']).next().unwrap_or("");
            name == "sluice_connections_open"
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>()
        .max(0.0) as u64
}

impl ConnectionsReport {
    /// The report as text.
    pub fn to_text(&self) -> String {
        let mut t = String::new();
        let api = match self.api {
            Api::Powertrack => "PowerTrack",
            Api::Powerstream => "Powerstream",
        };
        let _ = writeln!(
            t,
            "sluice bench connections: {} {api} connections, {}",
            thousands(self.connections as u64),
            self.encoding.name()
        );
        let _ = writeln!(t, "server: {}", self.server);
        let _ = writeln!(
            t,
            "open files (bench): {} (hard limit {})",
            thousands(self.open_files.soft),
            thousands(self.open_files.hard)
        );
        let _ = writeln!(
            t,
            "opened: {} of {} in {:.1} s{}",
            thousands(self.opened as u64),
            thousands(self.connections as u64),
            self.open_time.as_secs_f64(),
            self.of_cycles(|n| format!(" (in each of {n} cycles; the time is the first's)"))
        );
        self.memory_text(&mut t);
        if let Some(kb) = self.bench_rss_kb {
            let _ = writeln!(t, "bench memory with every connection open: {}", mib(kb));
        }
        let _ = writeln!(
            t,
            "posts: {} to every connection, one at a time{}: {} of {} arrivals, {} lost, \
             {} duplicated, {} unexpected, {} connections dropped by the server, {} posts \
             not on every connection within {} s",
            self.posts,
            self.of_cycles(|n| format!(", in each of {n} cycles; over all")),
            thousands(self.received),
            thousands(self.expected),
            thousands(self.expected.saturating_sub(self.received)),
            thousands(self.duplicates),
            thousands(self.unexpected),
            self.dropped,
            self.late_posts,
            super::POST_TIMEOUT.as_secs()
        );
        match &self.latency {
            Some(l) => {
                let _ = writeln!(
                    t,
                    "latency (ingest request start -> arrival, every connection): p50 {}, \
                     p99 {}, max {}",
                    ms(l.p50),
                    ms(l.p99),
                    ms(l.max)
                );
            }
            None => t.push_str("latency: no post arrived\n"),
        }
        self.cpu_text(&mut t);
        self.verdict_text(&mut t);
        t
    }

    /// `text` of the number of cycles when the run had more than one; nothing otherwise.
    fn of_cycles(&self, text: impl Fn(usize) -> String) -> String {
        if self.cycles > 1 {
            text(self.cycles)
        } else {
            String::new()
        }
    }

    fn memory_text(&self, t: &mut String) {
        let Some(memory) = &self.server_memory else {
            t.push_str("server memory: unknown (a running server: the bench reads the memory only of a server it starts)\n");
            return;
        };
        t.push_str("server memory (VmRSS):\n");
        let Some(start) = memory.start_kb else {
            return;
        };
        // Room for "cycle 10: 100,000 connections" when there are later cycles.
        let width = if memory.later_cycles.is_empty() {
            22
        } else {
            31
        };
        let _ = writeln!(t, "  {:<width$}{:>12}", "0 connections", mib(start));
        // A later cycle's memory per connection is over the closing before it.
        let mut before = start;
        for (number, (steps, after_close)) in memory.cycles().enumerate() {
            // "cycle 2: " before each reading of the cycles after the first.
            let label = |what: String| match number {
                0 => what,
                n => format!("cycle {}: {what}", n + 1),
            };
            let over = if number == 0 {
                ""
            } else {
                " over the last closing"
            };
            for step in steps {
                let per = per_connection(before, step.rss_kb, step.connections).unwrap_or(0);
                let open = format!("{} connections", thousands(step.connections as u64));
                let _ = writeln!(
                    t,
                    "  {:<width$}{:>12}   {} per connection{over}",
                    label(open),
                    mib(step.rss_kb),
                    kib(per)
                );
            }
            if let Some(after) = after_close {
                before = after.rss_kb;
                let label = label("all closed".to_owned());
                after_close_text(t, (&label, width), start, memory, &after);
            }
        }
        threads_text(memory, width, t);
    }

    /// `cpu while delivering (4.9 s): server 2.22 s, 11.1 µs per post and connection (45 %
    /// of one core: sluice-worker 41 %, …); bench …`: over the whole delivery, the gaps
    /// between posts included.
    fn cpu_text(&self, t: &mut String) {
        let cpu = &self.delivery_cpu;
        let copies = self.delivery_cpu_arrivals.max(1) as f64;
        let process = |name: &str, p: Option<&ProcessCpu>| match p {
            Some(p) => {
                let threads: Vec<String> = p
                    .threads
                    .iter()
                    .take(3)
                    .map(|t| format!("{} {:.0} %", t.name, t.percent))
                    .collect();
                format!(
                    "{name} {:.2} s, {:.1} µs per post and connection ({:.0} % of one core: {})",
                    p.used.as_secs_f64(),
                    p.used.as_secs_f64() * 1e6 / copies,
                    p.percent,
                    threads.join(", ")
                )
            }
            None => format!("{name} not measured"),
        };
        let _ = writeln!(
            t,
            "cpu while delivering ({}{:.1} s): {}; {}{}",
            self.of_cycles(|n| format!("the first of {n} cycles, ")),
            cpu.window.as_secs_f64(),
            process("server", cpu.server.as_ref()),
            process("bench", cpu.bench.as_ref()),
            machine_busy_clause(cpu)
        );
    }

    fn verdict_text(&self, t: &mut String) {
        let v = &self.verdict;
        let word = |c: Check| match c {
            Check::Pass => "PASS",
            Check::Miss => "MISS",
            Check::Unknown => "unknown",
        };
        t.push_str("verdict:\n");
        let _ = writeln!(
            t,
            "  memory per idle connection <= {}: {}",
            kib(TARGET_BYTES_PER_CONNECTION),
            word(v.memory_per_connection)
        );
        let _ = writeln!(
            t,
            "  memory back within {:.0} % of its start after closing{}: {}",
            RETURN_TOLERANCE * 100.0,
            self.of_cycles(|n| format!(" (after the last of {n} cycles)")),
            word(v.memory_returned)
        );
        let _ = writeln!(
            t,
            "  p99 of a post to every connection < {}: {}",
            ms(TARGET_P99),
            word(v.p99)
        );
        let _ = writeln!(
            t,
            "  every connection opened and got every post once: {}",
            word(v.complete)
        );
        t.push_str(if v.passed() { "PASS\n" } else { "MISS\n" });
    }
}

/// `  all closed   21.3 MiB   +9.2 % of the start, 1.0 s after closing`, then what the
/// memory is made of, against the start.
fn after_close_text(
    t: &mut String,
    (label, width): (&str, usize),
    start_kb: u64,
    memory: &ServerMemory,
    after: &AfterClose,
) {
    let over = (after.rss_kb as f64 / start_kb as f64 - 1.0) * 100.0;
    let _ = writeln!(
        t,
        "  {label:<width$}{:>12}   {over:+.1} % of the start, {:.1} s after closing{}",
        mib(after.rss_kb),
        after.waited.as_secs_f64(),
        if after.still_open > 0 {
            format!(" ({} still counted open)", after.still_open)
        } else {
            String::new()
        }
    );
    if let (Some(from), Some(to)) = (memory.start_parts, after.parts) {
        let _ = writeln!(
            t,
            "  {:<width$}anonymous {} -> {}, file-backed (mostly the executable) {} -> {}",
            "of which",
            mib(from.anon_kb),
            mib(to.anon_kb),
            mib(from.file_kb),
            mib(to.file_kb)
        );
    }
}

fn mib(kb: u64) -> String {
    format!("{:.1} MiB", kb as f64 / 1024.0)
}

fn kib(bytes: u64) -> String {
    format!("{:.1} KiB", bytes as f64 / 1024.0)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// `  threads   14 at the start, 22 with 1,000 open, …, 14 after closing`: the threads a
/// burst of connections made the server start, and whether they went again.
fn threads_text(memory: &ServerMemory, width: usize, t: &mut String) {
    let Some(start) = memory.start_threads else {
        return;
    };
    let mut seen = vec![format!("{start} at the start")];
    for step in &memory.steps {
        if let Some(threads) = step.threads {
            let open = thousands(step.connections as u64);
            seen.push(format!("{threads} with {open} open"));
        }
    }
    for (number, (_, after_close)) in memory.cycles().enumerate() {
        if let Some(threads) = after_close.and_then(|a| a.threads) {
            seen.push(match number {
                0 => format!("{threads} after closing"),
                n => format!("{threads} after cycle {} closed", n + 1),
            });
        }
    }
    let _ = writeln!(t, "  {:<width$}{}", "threads", seen.join(", "));
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::ServerChoice;
    use crate::cpu::Usage;

    fn config(connections: usize) -> ConnectionsConfig {
        ConnectionsConfig {
            connections,
            api: Api::Powertrack,
            encoding: Encoding::Gzip,
            posts: 2,
            cycles: 1,
            server: ServerChoice::Spawn(crate::config::Serve::new(PathBuf::from("sluice"))),
            tls: sluice_client::http::TlsArgs { cacert: None },
        }
    }

    /// A connection that got both posts, `ms` after they were sent.
    fn got_both(ms: u64) -> Held {
        Held {
            opened: true,
            arrivals: vec![(0, 1_000 + ms * 1_000), (1, 500_000 + ms * 1_000)],
            ..Held::default()
        }
    }

    fn memory(start_kb: u64, at_kb: u64, after_kb: u64, connections: usize) -> ServerMemory {
        ServerMemory {
            start_kb: Some(start_kb),
            start_parts: Some(ResidentParts {
                anon_kb: start_kb / 4,
                file_kb: start_kb - start_kb / 4,
            }),
            start_threads: Some(14),
            steps: vec![RssStep::new(
                connections,
                Resident {
                    rss_kb: at_kb,
                    parts: None,
                    threads: Some(40),
                },
            )],
            after_close: Some(AfterClose {
                rss_kb: after_kb,
                parts: Some(ResidentParts {
                    anon_kb: after_kb / 2,
                    file_kb: after_kb - after_kb / 2,
                }),
                threads: Some(15),
                still_open: 0,
                waited: Duration::from_millis(1_500),
            }),
            later_cycles: Vec::new(),
        }
    }

    /// When the two posts' ingest requests started, µs.
    const SENT: [u64; 2] = [1_000, 500_000];

    /// A cycle in which the bench sent both posts and `held` is what each connection saw.
    fn cycle(held: &[Held]) -> Delivered<'_> {
        Delivered {
            sent: &SENT,
            late_posts: 0,
            held,
        }
    }

    fn measured<'a>(
        config: &'a ConnectionsConfig,
        memory: Option<ServerMemory>,
        cycles: &'a [Delivered<'a>],
    ) -> Measured<'a> {
        Measured {
            config,
            server: "spawned".to_owned(),
            files: Files {
                soft: 20_000,
                hard: 20_000,
            },
            open_time: Duration::from_secs(2),
            memory,
            bench_rss_kb: Some(10_240),
            delivery_cpu: Cpu::over(
                Duration::from_secs(2),
                Some(vec![Usage {
                    total: Duration::from_millis(800),
                    by_name: vec![("sluice-worker".to_owned(), Duration::from_millis(700))],
                    waited: None,
                }]),
                None,
                None,
            ),
            cycles,
        }
    }

    #[test]
    fn a_cheap_connection_that_gives_memory_back_passes() {
        let config = config(4);
        let held: Vec<Held> = (1..=4).map(got_both).collect();
        // 4 connections, 100 KiB more: 25 KiB each; back to 105 % of the start.
        let report = assemble(measured(
            &config,
            Some(memory(1_000, 1_100, 1_050, 4)),
            &[cycle(&held)],
        ));
        assert_eq!(report.bytes_per_connection, Some(25 * 1024));
        assert_eq!((report.expected, report.received), (8, 8));
        let latency = report.latency.expect("arrivals");
        assert_eq!(latency.p50, Duration::from_millis(2));
        assert_eq!(latency.max, Duration::from_millis(4));
        assert!(report.verdict.passed() && report.succeeded(), "{report:?}");
        let text = report.to_text();
        assert!(text.contains("4 connections       "), "{text}");
        assert!(text.contains("25.0 KiB per connection"), "{text}");
        assert!(text.contains("+5.0 % of the start"), "{text}");
        assert!(
            text.contains("of which              anonymous 0.2 MiB -> 0.5 MiB, file-backed"),
            "{text}"
        );
        assert!(
            text.contains("p50 2.0 ms, p99 4.0 ms, max 4.0 ms"),
            "{text}"
        );
        assert!(
            text.contains(
                "cpu while delivering (2.0 s): server 0.80 s, 100000.0 µs per post and \
                 connection (40 % of one core: sluice-worker 35 %); bench not measured\n"
            ),
            "{text}"
        );
        assert!(text.ends_with("PASS\n"), "{text}");
        // With the machine measured, the line ends with how busy its cores were.
        let cycles = [cycle(&held)];
        let mut busy = measured(&config, Some(memory(1_000, 1_100, 1_050, 4)), &cycles);
        busy.delivery_cpu.machine_busy_percent = Some(63.4);
        let text = assemble(busy).to_text();
        assert!(
            text.contains("; bench not measured; the machine's cores 63 % busy\n"),
            "{text}"
        );
        let json = serde_json::to_value(&report).expect("serializes");
        assert_eq!(json["delivery_cpu"]["server"]["cpu_s"], 0.8);
        assert_eq!(json["api"], "powertrack");
        assert_eq!(json["bytes_per_connection"], 25 * 1024);
        assert_eq!(json["verdict"]["memory_returned"], "pass");
        assert_eq!(json["latency"]["p99_ms"], 4.0);
        let after = &json["server_memory"]["after_close"]["parts"];
        assert_eq!(
            (after["anon_kb"].as_u64(), after["file_kb"].as_u64()),
            (Some(525), Some(525))
        );
        assert_eq!(json["server_memory"]["start_parts"]["file_kb"], 750);
        assert!(
            text.contains(
                "  threads               14 at the start, 40 with 4 open, 15 after closing\n"
            ),
            "{text}"
        );
        let memory = &json["server_memory"];
        assert_eq!(
            (
                &memory["start_threads"],
                &memory["steps"][0]["threads"],
                &memory["after_close"]["threads"]
            ),
            (&14.into(), &40.into(), &15.into())
        );
    }

    #[test]
    fn memory_kept_a_lost_post_and_a_slow_p99_are_each_a_miss() {
        let config = config(2);
        let mut held = vec![got_both(150), got_both(1)];
        held[1].arrivals.pop();
        // 2 connections, 1 MiB more: 512 KiB each, and none of it given back.
        let mut late = cycle(&held);
        late.late_posts = 1;
        let report = assemble(measured(
            &config,
            Some(memory(1_000, 2_024, 2_024, 2)),
            &[late],
        ));
        let v = report.verdict;
        assert_eq!(
            (
                v.memory_per_connection,
                v.memory_returned,
                v.p99,
                v.complete
            ),
            (Check::Miss, Check::Miss, Check::Miss, Check::Miss)
        );
        assert!(!report.succeeded());
        assert!(report.to_text().contains("3 of 4 arrivals, 1 lost"));
        assert!(
            report
                .to_text()
                .contains("1 posts not on every connection within 10 s")
        );
        assert!(report.to_text().ends_with("MISS\n"));
    }

    #[test]
    fn the_memory_of_a_running_server_is_unknown() {
        let config = config(1);
        let held = [got_both(1)];
        let report = assemble(measured(&config, None, &[cycle(&held)]));
        assert_eq!(report.verdict.memory_per_connection, Check::Unknown);
        assert_eq!(report.verdict.memory_returned, Check::Unknown);
        assert!(report.verdict.passed());
        assert!(report.to_text().contains("server memory: unknown"));
    }

    /// The memory after the first cycle is back within the target but grows with each
    /// cycle: the verdict is judged after the last, and the text shows every cycle.
    #[test]
    fn memory_is_judged_after_the_last_cycle_and_arrivals_are_counted_over_all() {
        let mut config = config(2);
        config.cycles = 3;
        let first: Vec<Held> = vec![got_both(1), got_both(2)];
        let second: Vec<Held> = vec![got_both(3), got_both(4)];
        let mut third: Vec<Held> = vec![got_both(5), got_both(6)];
        third[0].arrivals.pop();
        let mut memory = memory(1_000, 1_100, 1_050, 2);
        let closed = memory.after_close.expect("first cycle closed");
        let again = |rss_kb| {
            let mut after = closed;
            after.rss_kb = rss_kb;
            after.threads = Some(16);
            CycleMemory {
                steps: vec![RssStep::new(
                    2,
                    Resident {
                        rss_kb: rss_kb + 60,
                        parts: None,
                        threads: None,
                    },
                )],
                after_close: Some(after),
            }
        };
        memory.record_cycle(2, again(1_080));
        memory.record_cycle(3, again(1_120));
        let cycles = [cycle(&first), cycle(&second), cycle(&third)];
        let report = assemble(measured(&config, Some(memory), &cycles));
        assert_eq!(report.cycles, 3);
        assert_eq!((report.expected, report.received), (12, 11));
        assert_eq!(
            report.latency.expect("arrivals").max,
            Duration::from_millis(6)
        );
        assert_eq!(report.verdict.memory_returned, Check::Miss);
        assert_eq!(report.verdict.complete, Check::Miss);
        // The first cycle's own figures stay where a one-cycle run has them.
        assert_eq!(report.bytes_per_connection, Some(50 * 1024));
        assert_eq!(report.delivery_cpu_arrivals, 4);
        let text = report.to_text();
        for line in [
            "  all closed                          1.0 MiB   +5.0 % of the start",
            "  cycle 2: 2 connections              1.1 MiB   45.0 KiB per connection over the last closing",
            "  cycle 2: all closed                 1.1 MiB   +8.0 % of the start",
            "  cycle 3: all closed                 1.1 MiB   +12.0 % of the start",
            "15 after closing, 16 after cycle 2 closed, 16 after cycle 3 closed",
            "opened: 2 of 2 in 2.0 s (in each of 3 cycles; the time is the first's)",
            "in each of 3 cycles; over all: 11 of 12 arrivals, 1 lost",
            "cpu while delivering (the first of 3 cycles, 2.0 s)",
            "after closing (after the last of 3 cycles): MISS",
        ] {
            assert!(text.contains(line), "{line:?} not in\n{text}");
        }
        let json = serde_json::to_value(&report).expect("serializes");
        let later = &json["server_memory"]["later_cycles"];
        assert_eq!(later[1]["after_close"]["rss_kb"], 1_120);
        assert_eq!(later[0]["steps"][0]["rss_kb"], 1_140);
        assert_eq!(json["cycles"], 3);
        assert_eq!(json["delivery_cpu_arrivals"], 4);

        // Given back in the end, the run passes the memory check.
        let mut memory = super::tests::memory(1_000, 1_100, 1_200, 2);
        memory.record_cycle(2, again(1_090));
        let cycles = [cycle(&first), cycle(&second)];
        config.cycles = 2;
        let report = assemble(measured(&config, Some(memory), &cycles));
        assert_eq!(report.verdict.memory_returned, Check::Pass);
    }

    #[test]
    fn the_open_gauges_are_added_up() {
        let metrics = "# TYPE sluice_connections_open gauge\n\
                       sluice_connections_open{product=\"powertrack\"} 7\n\
                       sluice_connections_open{product=\"powerstream\"} 3\n\
                       sluice_connections_opened_total 10\n";
        assert_eq!(open_gauge(metrics), 10);
        assert_eq!(open_gauge(""), 0);
        assert!(returned(1_000, 1_100) && !returned(1_000, 1_101));
    }
}
