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
use crate::report::text::thousands;
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
    /// After each step of connects.
    pub steps: Vec<RssStep>,
    /// Once every connection closed.
    pub after_close: Option<AfterClose>,
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
        }
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
    /// How long opening every connection took.
    pub open_time: Duration,
    /// The server's memory (`None` for a running server: unknown).
    pub memory: Option<ServerMemory>,
    /// The bench's own memory with every connection open, KiB.
    pub bench_rss_kb: Option<u64>,
    /// When each post's ingest request started, µs.
    pub sent: &'a [u64],
    /// Posts that were not on every connection (or, for gzip, not read by every one)
    /// within the bench's timeout.
    pub late_posts: usize,
    /// CPU the server and the bench used while the posts were delivered.
    pub delivery_cpu: Cpu,
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
    /// Connections that opened.
    pub opened: usize,
    /// How long opening them took.
    #[serde(rename = "open_s", serialize_with = "as_s")]
    pub open_time: Duration,
    /// The server's memory; `None` when unknown (a running server).
    pub server_memory: Option<ServerMemory>,
    /// The server's memory per connection at the last step, bytes.
    pub bytes_per_connection: Option<u64>,
    /// The bench's own memory with every connection open, KiB.
    pub bench_rss_kb: Option<u64>,
    /// Posts delivered.
    pub posts: usize,
    /// Arrivals expected: posts × connections opened.
    pub expected: u64,
    /// First arrivals.
    pub received: u64,
    /// Extra copies.
    pub duplicates: u64,
    /// Lines that were not bench posts.
    pub unexpected: u64,
    /// Connections the server ended before the bench closed them.
    pub dropped: usize,
    /// Posts the bench stopped waiting for (`POST_TIMEOUT`) before every
    /// connection had them.
    pub late_posts: usize,
    /// From the start of a post's ingest request to its arrival, over every connection.
    pub latency: Option<Latency>,
    /// CPU the server and the bench used while the posts were delivered: with both on the
    /// same cores, what each post costs them per connection bounds how soon the last
    /// connection can have it.
    pub delivery_cpu: Cpu,
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
    /// Memory back within 10 % of its start after every connection closed.
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

/// Puts the report together.
pub fn assemble(m: Measured<'_>) -> ConnectionsReport {
    let opened = m.held.iter().filter(|h| h.opened).count();
    let mut samples: Vec<u64> = m
        .held
        .iter()
        .flat_map(|h| h.arrivals.iter())
        .map(|&(k, at)| at.saturating_sub(m.sent.get(k).copied().unwrap_or(at)))
        .collect();
    let received = samples.len() as u64;
    let latency = Latency::of(&mut samples);
    let expected = (m.sent.len() * opened) as u64;
    let duplicates = m.held.iter().map(|h| h.duplicates).sum();
    let unexpected = m.held.iter().map(|h| h.unexpected).sum();
    let dropped = m.held.iter().filter(|h| h.disconnect.is_some()).count();
    let bytes_per_connection = m
        .memory
        .as_ref()
        .and_then(ServerMemory::bytes_per_connection);
    let complete = opened == m.config.connections
        && received == expected
        && duplicates == 0
        && unexpected == 0
        && dropped == 0
        && m.late_posts == 0;
    let verdict = Verdict {
        memory_per_connection: match bytes_per_connection {
            Some(bytes) => check(bytes <= TARGET_BYTES_PER_CONNECTION),
            None => Check::Unknown,
        },
        memory_returned: match m
            .memory
            .as_ref()
            .and_then(|mem| Some(returned(mem.start_kb?, mem.after_close?.rss_kb)))
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
        opened,
        open_time: m.open_time,
        server_memory: m.memory,
        bytes_per_connection,
        bench_rss_kb: m.bench_rss_kb,
        posts: m.sent.len(),
        expected,
        received,
        duplicates,
        unexpected,
        dropped,
        late_posts: m.late_posts,
        latency,
        delivery_cpu: m.delivery_cpu,
        verdict,
    }
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
            "opened: {} of {} in {:.1} s",
            thousands(self.opened as u64),
            thousands(self.connections as u64),
            self.open_time.as_secs_f64()
        );
        self.memory_text(&mut t);
        if let Some(kb) = self.bench_rss_kb {
            let _ = writeln!(t, "bench memory with every connection open: {}", mib(kb));
        }
        let _ = writeln!(
            t,
            "posts: {} to every connection, one at a time: {} of {} arrivals, {} lost, \
             {} duplicated, {} unexpected, {} connections dropped by the server, {} posts \
             not on every connection within {} s",
            self.posts,
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

    fn memory_text(&self, t: &mut String) {
        let Some(memory) = &self.server_memory else {
            t.push_str("server memory: unknown (a running server: the bench reads the memory only of a server it starts)\n");
            return;
        };
        t.push_str("server memory (VmRSS):\n");
        let Some(start) = memory.start_kb else {
            return;
        };
        let _ = writeln!(t, "  {:<22}{:>12}", "0 connections", mib(start));
        for step in &memory.steps {
            let per = per_connection(start, step.rss_kb, step.connections).unwrap_or(0);
            let _ = writeln!(
                t,
                "  {:<22}{:>12}   {} per connection",
                format!("{} connections", thousands(step.connections as u64)),
                mib(step.rss_kb),
                kib(per)
            );
        }
        if let Some(after) = memory.after_close {
            let over = (after.rss_kb as f64 / start as f64 - 1.0) * 100.0;
            let _ = writeln!(
                t,
                "  {:<22}{:>12}   {over:+.1} % of the start, {:.1} s after closing{}",
                "all closed",
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
                    "  {:<22}anonymous {} -> {}, file-backed (mostly the executable) {} -> {}",
                    "of which",
                    mib(from.anon_kb),
                    mib(to.anon_kb),
                    mib(from.file_kb),
                    mib(to.file_kb)
                );
            }
        }
        threads_text(memory, t);
    }

    /// `cpu while delivering (4.9 s): server 2.22 s, 11.1 µs per post and connection (45 %
    /// of one core: sluice-worker 41 %, …); bench …`: over the whole delivery, the gaps
    /// between posts included.
    fn cpu_text(&self, t: &mut String) {
        let cpu = &self.delivery_cpu;
        let copies = self.received.max(1) as f64;
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
            "cpu while delivering ({:.1} s): {}; {}",
            cpu.window.as_secs_f64(),
            process("server", cpu.server.as_ref()),
            process("bench", cpu.bench.as_ref())
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
            "  memory back within {:.0} % of its start after closing: {}",
            RETURN_TOLERANCE * 100.0,
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
fn threads_text(memory: &ServerMemory, t: &mut String) {
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
    if let Some(threads) = memory.after_close.and_then(|a| a.threads) {
        seen.push(format!("{threads} after closing"));
    }
    let _ = writeln!(t, "  {:<22}{}", "threads", seen.join(", "));
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
        }
    }

    fn measured<'a>(
        config: &'a ConnectionsConfig,
        memory: Option<ServerMemory>,
        held: &'a [Held],
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
            sent: &[1_000, 500_000],
            late_posts: 0,
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
            held,
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
            &held,
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
                 connection (40 % of one core: sluice-worker 35 %); bench not measured"
            ),
            "{text}"
        );
        assert!(text.ends_with("PASS\n"), "{text}");
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
        let mut measured = measured(&config, Some(memory(1_000, 2_024, 2_024, 2)), &held);
        measured.late_posts = 1;
        let report = assemble(measured);
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
        let report = assemble(measured(&config, None, &held));
        assert_eq!(report.verdict.memory_per_connection, Check::Unknown);
        assert_eq!(report.verdict.memory_returned, Check::Unknown);
        assert!(report.verdict.passed());
        assert!(report.to_text().contains("server memory: unknown"));
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
