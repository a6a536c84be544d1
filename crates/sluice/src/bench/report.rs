//! The printed result of a run: the machine, the parameters, every figure, and the verdict
//! against the project's target for the benchmark ([`Goal`]): PowerTrack 5,000 posts/s,
//! 1,000 rules, 100 connections, p99 under 20 ms; Firehose 20,000 posts/s on 20 partitions,
//! p99 under 50 ms; Powerstream 5,000 posts/s, 1,000 rules, 2 connections, identity
//! encoding, p99 under 5 ms; nothing lost in every case. A cluster run (`--cluster N`) is
//! judged against the same targets: its report names the nodes and the NATS server, and
//! adds up the nodes' CPU.

use std::fmt::Write as _;
use std::time::Duration;

use super::cpu::Usage;
use super::stats::Latency;

/// What a benchmark's verdict requires (issues 3, 4 and 5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Goal {
    /// Posts ingested per second.
    pub rate: f64,
    /// Rules on the stream, for the rules products.
    pub rules: Option<usize>,
    /// Stream connections, for the rules products (a volume stream always has its
    /// partitions).
    pub connections: Option<usize>,
    /// Whether the stream must be read without gzip.
    pub identity: bool,
    /// Ingest → client latency, 99th percentile, must be below this.
    pub p99: Duration,
}

/// Share of [`Goal::rate`] an achieved rate may fall short by and still pass (pacing is
/// by 5 ms ticks, so a run ends a fraction of a tick early or late).
pub const RATE_TOLERANCE: f64 = 0.01;

/// Which benchmark a run is, with what is particular to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// `sluice bench powertrack`.
    Powertrack {
        /// Rules generated (`--rules`), split over the streams.
        rules: usize,
        /// PowerTrack streams (`--streams`).
        streams: usize,
        /// Whether the bench added its share rule to every stream (the generated ones
        /// matched too little).
        share_rule: bool,
    },
    /// `sluice bench firehose`.
    Firehose {
        /// Firehose streams the partitions are read from.
        streams: usize,
    },
    /// `sluice bench powerstream`.
    Powerstream {
        /// Rules generated (`--rules`).
        rules: usize,
        /// Whether the bench added its share rule.
        share_rule: bool,
        /// Whether the connections asked for gzip.
        gzip: bool,
    },
}

impl Mode {
    /// The benchmark's subcommand name.
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Powertrack { .. } => "powertrack",
            Mode::Firehose { .. } => "firehose",
            Mode::Powerstream { .. } => "powerstream",
        }
    }

    /// The project's target for this benchmark.
    pub fn goal(&self) -> Goal {
        match self {
            Mode::Powertrack { .. } => Goal {
                rate: 5_000.0,
                rules: Some(1_000),
                connections: Some(100),
                identity: false,
                p99: Duration::from_millis(20),
            },
            Mode::Firehose { .. } => Goal {
                rate: 20_000.0,
                rules: None,
                connections: None,
                identity: false,
                p99: Duration::from_millis(50),
            },
            Mode::Powerstream { .. } => Goal {
                rate: 5_000.0,
                rules: Some(1_000),
                connections: Some(2),
                identity: true,
                p99: Duration::from_millis(5),
            },
        }
    }

    /// Rules generated, for the rules products.
    fn rules(&self) -> Option<usize> {
        match self {
            Mode::Powertrack { rules, .. } | Mode::Powerstream { rules, .. } => Some(*rules),
            Mode::Firehose { .. } => None,
        }
    }
}

/// The machine the run is on.
#[derive(Debug, Clone)]
pub struct Machine {
    /// Cores the process may use.
    pub cores: usize,
    /// The CPU model, when the OS says.
    pub cpu: Option<String>,
    /// OS, kernel and architecture.
    pub os: String,
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
        }
    }
}

/// The parameters of a run.
#[derive(Debug, Clone)]
pub struct Params {
    /// The benchmark.
    pub mode: Mode,
    /// Stream connections.
    pub connections: usize,
    /// Posts per second asked for.
    pub rate: f64,
    /// How long posts are sent.
    pub duration: Duration,
    /// Time between ingest batches.
    pub interval: Duration,
    /// Seed of the rules and posts.
    pub seed: u64,
    /// How the server under test was reached.
    pub server: String,
    /// Nodes of the cluster the bench started (`--cluster N`), `None` for one server.
    pub cluster: Option<usize>,
    /// The NATS server the cluster shares, when the bench started one.
    pub nats: Option<String>,
}

/// Everything measured in a run.
#[derive(Debug, Clone)]
pub struct Results {
    /// Posts generated and sent.
    pub posts: usize,
    /// Their size in bytes.
    pub post_bytes: usize,
    /// Posts the stream must deliver (to every connection of a rules stream, to its
    /// partition's connection on a volume stream).
    pub expected: usize,
    /// Deliveries expected, summed over connections.
    pub deliveries: u64,
    /// Posts the server accepted.
    pub accepted: u64,
    /// Posts it rejected.
    pub rejected: u64,
    /// Failed ingest requests, with the first error.
    pub ingest_errors: (usize, Option<String>),
    /// From the ingest loop's start to the last ingest answer.
    pub ingest_span: Duration,
    /// Posts received, over all connections (duplicates and unexpected ones included).
    pub delivered: u64,
    /// From the ingest loop's start to the last arrival.
    pub delivery_span: Duration,
    /// Ingest request start → arrival, for the first arrival of every expected post.
    pub latency: Option<Latency>,
    /// Expected − received, summed over connections.
    pub lost: u64,
    /// Extra copies received.
    pub duplicates: u64,
    /// Posts received that should not have been.
    pub unexpected: u64,
    /// Connections that ended before the bench closed them, with the reason.
    pub disconnects: Vec<String>,
    /// System messages the streams sent.
    pub system_messages: Vec<String>,
    /// CPU used while posts were sent and delivered.
    pub cpu: Cpu,
}

/// CPU use over the measured window.
#[derive(Debug, Clone)]
pub struct Cpu {
    /// The window (ingest start to the end of delivery).
    pub window: Duration,
    /// The server's use, per node (one for a single server), when the bench started it
    /// on Linux.
    pub server: Option<Vec<Usage>>,
    /// The use of the NATS server a cluster shares, when the bench started it on Linux.
    pub nats: Option<Usage>,
    /// The bench's own use, on Linux.
    pub bench: Option<Usage>,
}

impl Results {
    /// Posts ingested per second.
    pub fn ingest_rate(&self) -> f64 {
        per_second(self.accepted, self.ingest_span)
    }

    /// Posts delivered per second, all connections together.
    pub fn delivery_rate(&self) -> f64 {
        per_second(self.delivered, self.delivery_span)
    }

    /// Whether every expected post arrived exactly once on every connection and the server
    /// took every post.
    pub fn exact(&self) -> bool {
        self.lost == 0
            && self.duplicates == 0
            && self.unexpected == 0
            && self.rejected == 0
            && self.ingest_errors.0 == 0
            && self.accepted == self.posts as u64
    }
}

fn per_second(count: u64, span: Duration) -> f64 {
    if span.is_zero() {
        0.0
    } else {
        count as f64 / span.as_secs_f64()
    }
}

/// One line of the verdict.
struct Check {
    what: String,
    pass: bool,
    detail: String,
}

/// The report as printed, ending with the verdict line.
pub fn render(machine: &Machine, params: &Params, results: &Results) -> String {
    let mut out = String::new();
    let mut line = |label: &str, text: String| {
        let _ = writeln!(out, "{label:<13}{text}");
    };
    line(
        "benchmark",
        match params.cluster {
            Some(nodes) => format!("sluice bench {} --cluster {nodes}", params.mode.name()),
            None => format!("sluice bench {}", params.mode.name()),
        },
    );
    let build = if cfg!(debug_assertions) {
        "debug build: timings are not meaningful, use --release"
    } else {
        "release build"
    };
    line(
        "machine",
        format!(
            "{} cores, {}, {} ({build})",
            machine.cores,
            machine.cpu.as_deref().unwrap_or("unknown CPU"),
            machine.os
        ),
    );
    line("server", params.server.clone());
    if let Some(nats) = &params.nats {
        line("nats", nats.clone());
    }
    let pacing = format!(
        "{} posts/s for {:.1} s, a batch every {} ms, seed {}",
        thousands(params.rate.round() as u64),
        params.duration.as_secs_f64(),
        params.interval.as_millis(),
        params.seed
    );
    let rules = |rules: usize, share_rule: bool, share: &str| {
        format!(
            "{} rules{}",
            thousands(rules as u64),
            if share_rule {
                format!(" (+1: \"{share}\")")
            } else {
                String::new()
            }
        )
    };
    let connections = thousands(params.connections as u64);
    line(
        "parameters",
        match &params.mode {
            Mode::Powertrack {
                rules: n,
                streams,
                share_rule,
            } => format!(
                "{}, {}, {connections} connections, {pacing}",
                rules(*n, *share_rule, super::workload::SHARE_RULE),
                match streams {
                    1 => "1 stream".to_owned(),
                    _ if *share_rule => format!(
                        "{} streams (the share rule on each)",
                        thousands(*streams as u64)
                    ),
                    _ => format!("{} streams", thousands(*streams as u64)),
                }
            ),
            Mode::Firehose { streams } => format!(
                "{connections} partitions ({streams} Firehose streams × {} partitions), {pacing}",
                params.connections / (*streams).max(1)
            ),
            Mode::Powerstream {
                rules: n,
                share_rule,
                gzip,
            } => format!(
                "{}, {connections} connections, {} encoding, {pacing}",
                rules(*n, *share_rule, super::workload::POWERSTREAM_SHARE_RULE),
                if *gzip { "gzip" } else { "identity" }
            ),
        },
    );
    let size = format!(
        "{} posts ({:.1} MB)",
        thousands(results.posts as u64),
        results.post_bytes as f64 / 1e6
    );
    let deliveries = thousands(results.deliveries);
    line(
        "workload",
        match params.mode {
            Mode::Firehose { .. } => format!(
                "{size}, each to the connection of its partition: {deliveries} deliveries expected"
            ),
            _ => {
                let share = if results.posts == 0 {
                    0.0
                } else {
                    100.0 * results.expected as f64 / results.posts as f64
                };
                format!(
                    "{size}, {} match a rule ({share:.1} %): {deliveries} deliveries expected",
                    thousands(results.expected as u64),
                )
            }
        },
    );
    let mut ingested = format!(
        "{} posts/s ({} accepted in {:.2} s, {} rejected",
        thousands(results.ingest_rate().round() as u64),
        thousands(results.accepted),
        results.ingest_span.as_secs_f64(),
        thousands(results.rejected),
    );
    match &results.ingest_errors {
        (0, _) => ingested.push(')'),
        (n, first) => {
            let _ = write!(
                ingested,
                ", {n} failed requests: {})",
                first.as_deref().unwrap_or("?")
            );
        }
    }
    line("ingested", ingested);
    line(
        "delivered",
        format!(
            "{} posts/s, all connections ({} posts in {:.2} s)",
            thousands(results.delivery_rate().round() as u64),
            thousands(results.delivered),
            results.delivery_span.as_secs_f64()
        ),
    );
    line(
        "latency",
        match &results.latency {
            Some(l) => format!(
                "ingest → client p50 {} ms, p99 {} ms, p99.9 {} ms, max {} ms ({} samples)",
                ms(l.p50),
                ms(l.p99),
                ms(l.p999),
                ms(l.max),
                thousands(l.count as u64)
            ),
            None => "no post arrived".to_owned(),
        },
    );
    line(
        "lost",
        format!(
            "{} (expected − received, summed over connections); duplicates {}; unexpected {}",
            thousands(results.lost),
            thousands(results.duplicates),
            thousands(results.unexpected)
        ),
    );
    let mut disconnects = thousands(results.disconnects.len() as u64);
    if let Some(first) = results.disconnects.first() {
        let _ = write!(disconnects, " (first: {first})");
    }
    if let Some(first) = results.system_messages.first() {
        let _ = write!(
            disconnects,
            "; {} system messages, first: {first}",
            results.system_messages.len()
        );
    }
    line("disconnects", disconnects);
    line("cpu", cpu_text(&results.cpu));

    let checks = checks(params, results);
    for (n, check) in checks.iter().enumerate() {
        line(
            if n == 0 { "target" } else { "" },
            format!(
                "{:<28}{} ({})",
                check.what,
                if check.pass { "PASS" } else { "MISS" },
                check.detail
            ),
        );
    }
    let pass = checks.iter().all(|c| c.pass);
    line("verdict", if pass { "PASS" } else { "MISS" }.to_owned());
    out
}

fn checks(params: &Params, results: &Results) -> Vec<Check> {
    let goal = params.mode.goal();
    let rate = results.ingest_rate();
    let mut checks = vec![Check {
        what: format!("{} posts/s ingested", thousands(goal.rate as u64)),
        pass: rate >= goal.rate * (1.0 - RATE_TOLERANCE),
        detail: format!("{} posts/s", thousands(rate.round() as u64)),
    }];
    if let Some(wanted) = goal.rules {
        let rules = params.mode.rules().unwrap_or(0);
        checks.push(Check {
            what: format!("{} rules", thousands(wanted as u64)),
            pass: rules >= wanted,
            detail: format!("{} rules", thousands(rules as u64)),
        });
    }
    if let Some(wanted) = goal.connections {
        checks.push(Check {
            what: format!("{} connections", thousands(wanted as u64)),
            pass: params.connections >= wanted,
            detail: format!("{} connections", thousands(params.connections as u64)),
        });
    }
    if goal.identity {
        let gzip = matches!(params.mode, Mode::Powerstream { gzip: true, .. });
        checks.push(Check {
            what: "identity encoding".to_owned(),
            pass: !gzip,
            detail: if gzip { "gzip" } else { "identity" }.to_owned(),
        });
    }
    checks.push(Check {
        what: format!("p99 < {} ms", goal.p99.as_millis()),
        pass: results.latency.is_some_and(|l| l.p99 < goal.p99),
        detail: results
            .latency
            .map_or("no samples".to_owned(), |l| format!("p99 {} ms", ms(l.p99))),
    });
    checks.push(Check {
        what: "nothing lost".to_owned(),
        pass: results.exact(),
        detail: format!(
            "{} lost, {} duplicates, {} unexpected, {} not ingested",
            thousands(results.lost),
            thousands(results.duplicates),
            thousands(results.unexpected),
            thousands((results.posts as u64).saturating_sub(results.accepted))
        ),
    });
    checks
}

fn cpu_text(cpu: &Cpu) -> String {
    let window = cpu.window.as_secs_f64();
    if window <= 0.0 {
        return "not measured".to_owned();
    }
    let percent = |d: Duration| format!("{:.0} %", 100.0 * d.as_secs_f64() / window);
    let threads = |usage: &Usage| -> String {
        let busiest: Vec<String> = usage
            .by_name
            .iter()
            .take(4)
            .map(|(name, used)| format!("{name} {}", percent(*used)))
            .collect();
        busiest.join(", ")
    };
    let mut text = match cpu.server.as_deref() {
        Some([server]) => {
            let mut text = format!("server {} ({})", percent(server.total), threads(server));
            if let Some(waited) = server.waited {
                let _ = write!(text, " + {} waiting for a CPU", percent(waited));
            }
            text
        }
        Some(nodes) if !nodes.is_empty() => {
            let all = Usage::combined(nodes);
            let each: Vec<String> = nodes.iter().map(|n| percent(n.total)).collect();
            let mut text = format!(
                "servers {} over {} nodes ({}; threads of all nodes: {})",
                percent(all.total),
                nodes.len(),
                each.join(" + "),
                threads(&all)
            );
            if let Some(waited) = all.waited {
                let _ = write!(text, " + {} waiting for a CPU", percent(waited));
            }
            text
        }
        _ => "server not measured".to_owned(),
    };
    if let Some(nats) = &cpu.nats {
        let _ = write!(text, ", nats-server {}", percent(nats.total));
        if let Some(waited) = nats.waited {
            let _ = write!(text, " + {} waiting", percent(waited));
        }
    }
    match &cpu.bench {
        Some(bench) => {
            let _ = write!(text, ", bench {}", percent(bench.total));
            if let Some(waited) = bench.waited {
                let _ = write!(text, " + {} waiting", percent(waited));
            }
        }
        None => text.push_str(", bench not measured"),
    }
    let _ = write!(
        text,
        " of one core, over the {window:.1} s of ingest and delivery"
    );
    text
}

/// Milliseconds with two decimals.
fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        Params {
            mode: Mode::Powertrack {
                rules: 1_000,
                streams: 1,
                share_rule: false,
            },
            connections: 100,
            rate: 5_000.0,
            duration: Duration::from_secs(20),
            interval: Duration::from_millis(5),
            seed: 1,
            server: "spawned".to_owned(),
            cluster: None,
            nats: None,
        }
    }

    fn results() -> Results {
        Results {
            posts: 100_000,
            post_bytes: 400_000_000,
            expected: 40_000,
            deliveries: 4_000_000,
            accepted: 100_000,
            rejected: 0,
            ingest_errors: (0, None),
            ingest_span: Duration::from_secs(20),
            delivered: 4_000_000,
            delivery_span: Duration::from_secs(20),
            latency: Some(Latency {
                count: 4_000_000,
                p50: Duration::from_millis(2),
                p99: Duration::from_millis(15),
                p999: Duration::from_millis(18),
                max: Duration::from_millis(30),
            }),
            lost: 0,
            duplicates: 0,
            unexpected: 0,
            disconnects: Vec::new(),
            system_messages: Vec::new(),
            cpu: Cpu {
                window: Duration::from_secs(20),
                server: None,
                nats: None,
                bench: None,
            },
        }
    }

    fn machine() -> Machine {
        Machine {
            cores: 2,
            cpu: Some("Test CPU".to_owned()),
            os: "linux x86_64".to_owned(),
        }
    }

    #[test]
    fn a_run_at_the_target_passes() {
        let text = render(&machine(), &params(), &results());
        assert!(text.ends_with("verdict      PASS\n"), "{text}");
        assert!(text.contains("5,000 posts/s ("), "{text}");
        assert!(text.contains("200,000 posts/s, all connections"), "{text}");
        assert!(text.contains("p99 15.00 ms"), "{text}");
        assert!(!text.contains("MISS"), "{text}");
    }

    #[test]
    fn each_shortfall_is_a_miss() {
        let mut slow = results();
        slow.latency = slow.latency.map(|l| Latency {
            p99: Duration::from_millis(20),
            ..l
        });
        let mut lossy = results();
        lossy.lost = 3;
        let mut small = params();
        small.connections = 99;
        let mut slow_ingest = results();
        slow_ingest.ingest_span = Duration::from_secs(21);
        for (params, results, what) in [
            (params(), slow, "p99 < 20 ms"),
            (params(), lossy, "nothing lost"),
            (small, results(), "100 connections"),
            (params(), slow_ingest, "5,000 posts/s ingested"),
        ] {
            let text = render(&machine(), &params, &results);
            assert!(text.ends_with("verdict      MISS\n"), "{text}");
            let miss: Vec<&str> = text.lines().filter(|l| l.contains("MISS (")).collect();
            assert_eq!(miss.len(), 1, "{text}");
            assert!(miss[0].contains(what), "{text}");
        }
    }

    #[test]
    fn the_parameters_name_the_streams() {
        let text = render(&machine(), &params(), &results());
        assert!(
            text.contains("1,000 rules, 1 stream, 100 connections, 5,000 posts/s"),
            "{text}"
        );
        let mut many = params();
        many.mode = Mode::Powertrack {
            rules: 1_000,
            streams: 50,
            share_rule: true,
        };
        let text = render(&machine(), &many, &results());
        assert!(
            text.contains(
                "1,000 rules (+1: \"lang:en sample:10\"), 50 streams (the share rule on each), \
                 100 connections"
            ),
            "{text}"
        );
        assert!(text.ends_with("verdict      PASS\n"), "{text}");
    }

    #[test]
    fn big_numbers_get_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(3_901_200), "3,901,200");
    }

    #[test]
    fn each_benchmark_has_its_own_target() {
        let mut firehose = params();
        firehose.mode = Mode::Firehose { streams: 2 };
        firehose.connections = 20;
        firehose.rate = 20_000.0;
        let mut fast = results();
        fast.accepted = 400_000;
        fast.posts = 400_000;
        let text = render(&machine(), &firehose, &fast);
        assert!(text.contains("sluice bench firehose"), "{text}");
        assert!(
            text.contains("20 partitions (2 Firehose streams × 10 partitions)"),
            "{text}"
        );
        assert!(
            text.contains("each to the connection of its partition"),
            "{text}"
        );
        assert!(text.contains("20,000 posts/s ingested"), "{text}");
        assert!(text.contains("p99 < 50 ms"), "{text}");
        assert!(!text.contains("rules "), "{text}");
        assert!(text.ends_with("verdict      PASS\n"), "{text}");

        let mut powerstream = params();
        powerstream.mode = Mode::Powerstream {
            rules: 1_000,
            share_rule: false,
            gzip: false,
        };
        powerstream.connections = 2;
        let text = render(&machine(), &powerstream, &results());
        assert!(text.contains("2 connections, identity encoding"), "{text}");
        // p99 15 ms is over Powerstream's 5 ms.
        let miss: Vec<&str> = text.lines().filter(|l| l.contains("MISS (")).collect();
        assert_eq!(miss.len(), 1, "{text}");
        assert!(miss[0].contains("p99 < 5 ms"), "{text}");

        powerstream.mode = Mode::Powerstream {
            rules: 1_000,
            share_rule: false,
            gzip: true,
        };
        let mut quick = results();
        quick.latency = quick.latency.map(|l| Latency {
            p99: Duration::from_millis(1),
            ..l
        });
        let text = render(&machine(), &powerstream, &quick);
        let miss: Vec<&str> = text.lines().filter(|l| l.contains("MISS (")).collect();
        assert_eq!(miss.len(), 1, "{text}");
        assert!(miss[0].contains("identity encoding"), "{text}");
        assert!(text.contains("p99 1.00 ms"), "{text}");
    }

    #[test]
    fn a_cluster_run_names_its_nodes_and_nats_and_adds_up_their_cpu() {
        let usage = |total_ms, threads: &[(&str, u64)]| Usage {
            total: Duration::from_millis(total_ms),
            by_name: threads
                .iter()
                .map(|&(name, ms)| (name.to_owned(), Duration::from_millis(ms)))
                .collect(),
            waited: Some(Duration::from_millis(total_ms / 10)),
        };
        let mut cluster = params();
        cluster.cluster = Some(3);
        cluster.server = "cluster of 3 `sluice serve --nats` nodes on this machine".to_owned();
        cluster.nats = Some("nats-server v2.9.10 (pid 7)".to_owned());
        let mut run = results();
        run.cpu = Cpu {
            window: Duration::from_secs(10),
            server: Some(vec![
                usage(5_000, &[("sluice-pipeline", 3_000), ("tokio-rt", 2_000)]),
                usage(4_000, &[("sluice-pipeline", 2_500), ("tokio-rt", 1_500)]),
                usage(3_000, &[("sluice-pipeline", 2_000), ("tokio-rt", 1_000)]),
            ]),
            nats: Some(usage(2_000, &[("nats-server", 2_000)])),
            bench: Some(usage(1_000, &[("main", 1_000)])),
        };
        let text = render(&machine(), &cluster, &run);
        assert!(
            text.starts_with("benchmark    sluice bench powertrack --cluster 3\n"),
            "{text}"
        );
        assert!(
            text.contains("\nnats         nats-server v2.9.10 (pid 7)\n"),
            "{text}"
        );
        let cpu = text
            .lines()
            .find(|l| l.starts_with("cpu "))
            .expect("a cpu line");
        assert_eq!(
            cpu,
            "cpu          servers 120 % over 3 nodes (50 % + 40 % + 30 %; threads of all nodes: \
             sluice-pipeline 75 %, tokio-rt 45 %) + 12 % waiting for a CPU, nats-server 20 % \
             + 2 % waiting, bench 10 % + 1 % waiting of one core, over the 10.0 s of ingest \
             and delivery"
        );
        // The same targets as one server.
        assert!(text.contains("100 connections             PASS"), "{text}");
        assert!(text.ends_with("verdict      PASS\n"), "{text}");

        // One server: its own figures, no nats line (over the 20 s window of `results`).
        let mut single = results();
        single.cpu.server = Some(vec![usage(5_000, &[("sluice-pipeline", 3_000)])]);
        let text = render(&machine(), &params(), &single);
        assert!(
            text.starts_with("benchmark    sluice bench powertrack\n"),
            "{text}"
        );
        assert!(!text.contains("\nnats "), "{text}");
        assert!(
            text.contains(
                "cpu          server 25 % (sluice-pipeline 15 %) + 2 % waiting for a CPU"
            ),
            "{text}"
        );
    }
}
