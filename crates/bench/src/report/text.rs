//! The report as text, one labelled line per part, ending with the verdict: what `sluice
//! bench` prints without `--json`.

use std::fmt::Write as _;
use std::time::Duration;

use super::{Cpu, ProcessCpu, Report, Verdict};

/// Width of the label column.
const LABEL_WIDTH: usize = 13;
/// Width of the target column of the verdict lines.
const TARGET_WIDTH: usize = 28;
/// Busiest thread groups named per process: enough for the server's own threads on a
/// two-core machine (HTTP workers, append, pipeline, one matching thread per core); the
/// JSON report lists them all.
const THREADS_SHOWN: usize = 6;

impl Report {
    /// The report as printed, ending with the verdict line.
    pub fn to_text(&self) -> String {
        let mut out = Lines(String::new());
        self.header(&mut out);
        self.figures(&mut out);
        for (n, check) in self.targets.iter().enumerate() {
            out.line(
                if n == 0 { "target" } else { "" },
                format!(
                    "{:<TARGET_WIDTH$}{} ({})",
                    check.target,
                    pass_or_miss(check.pass),
                    check.detail
                ),
            );
        }
        out.line(
            "verdict",
            pass_or_miss(self.verdict == Verdict::Pass).to_owned(),
        );
        out.0
    }

    /// The benchmark, machine, server and parameters lines.
    fn header(&self, out: &mut Lines) {
        out.line(
            "benchmark",
            match self.server.cluster {
                Some(nodes) => format!("sluice bench {} --cluster {nodes}", self.benchmark),
                None => format!("sluice bench {}", self.benchmark),
            },
        );
        let build = if self.machine.release_build {
            "release build"
        } else {
            "debug build: timings are not meaningful, use --release"
        };
        out.line(
            "machine",
            format!(
                "{} cores, {}, {} ({build})",
                self.machine.cores,
                self.machine.cpu.as_deref().unwrap_or("unknown CPU"),
                self.machine.os
            ),
        );
        out.line("server", self.server.description.clone());
        if let Some(nats) = &self.server.nats {
            out.line("nats", nats.description.clone());
        }
        let pacing = &self.pacing;
        out.line(
            "parameters",
            format!(
                "{}, {} posts/s for {:.1} s, a batch every {} ms, seed {}",
                self.setup.summary,
                thousands(pacing.rate.round() as u64),
                pacing.duration.as_secs_f64(),
                pacing.batch_interval.as_millis(),
                pacing.seed
            ),
        );
    }

    /// The lines of figures, from the workload to the CPU.
    fn figures(&self, out: &mut Lines) {
        out.line("workload", self.workload_text());
        let ingested = &self.ingested;
        let mut text = format!(
            "{} posts/s ({} accepted in {:.2} s, {} rejected",
            thousands(ingested.rate.round() as u64),
            thousands(ingested.accepted),
            ingested.span.as_secs_f64(),
            thousands(ingested.rejected),
        );
        match ingested.failed_requests {
            0 => text.push(')'),
            n => {
                let first = ingested.first_error.as_deref().unwrap_or("?");
                let _ = write!(text, ", {n} failed requests: {first})");
            }
        }
        out.line("ingested", text);
        out.line(
            "delivered",
            format!(
                "{} posts/s, all connections ({} posts in {:.2} s)",
                thousands(self.delivered.rate.round() as u64),
                thousands(self.delivered.posts),
                self.delivered.span.as_secs_f64()
            ),
        );
        out.line(
            "latency",
            match &self.latency {
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
        if self.p99_by_second.len() > 1 {
            out.line("by second", self.p99_by_second_text());
        }
        out.line(
            "lost",
            format!(
                "{} (expected − received, summed over connections); duplicates {}; unexpected {}",
                thousands(self.loss.lost),
                thousands(self.loss.duplicates),
                thousands(self.loss.unexpected)
            ),
        );
        out.line("disconnects", self.disconnects_text());
        out.line("cpu", cpu_text(&self.cpu));
        if let Some(note) = saturation_note(&self.cpu, self.machine.cores) {
            out.line("note", note);
        }
    }

    /// The p99 of each second's posts, in ms, in sending order (`-` where none arrived).
    fn p99_by_second_text(&self) -> String {
        let seconds: Vec<String> = self
            .p99_by_second
            .iter()
            .map(|p99| {
                p99.map_or_else(
                    || "-".to_owned(),
                    |d| format!("{:.1}", d.as_secs_f64() * 1e3),
                )
            })
            .collect();
        format!(
            "p99 {} ms (of the posts sent in each second)",
            seconds.join(" ")
        )
    }

    fn workload_text(&self) -> String {
        let workload = &self.workload;
        let size = format!(
            "{} posts ({:.1} MB)",
            thousands(workload.posts as u64),
            workload.bytes as f64 / 1e6
        );
        let deliveries = thousands(workload.deliveries);
        if self.setup.partitions.is_some() {
            return format!(
                "{size}, each to the connection of its partition: {deliveries} deliveries expected"
            );
        }
        let share = if workload.posts == 0 {
            0.0
        } else {
            100.0 * workload.expected as f64 / workload.posts as f64
        };
        format!(
            "{size}, {} match a rule ({share:.1} %): {deliveries} deliveries expected",
            thousands(workload.expected as u64),
        )
    }

    fn disconnects_text(&self) -> String {
        let mut text = thousands(self.disconnects.len() as u64);
        if let Some(first) = self.disconnects.first() {
            let _ = write!(text, " (first: {first})");
        }
        if let Some(first) = self.system_messages.first() {
            let _ = write!(
                text,
                "; {} system messages, first: {first}",
                self.system_messages.len()
            );
        }
        text
    }
}

/// The report's text, one labelled line at a time.
struct Lines(String);

impl Lines {
    fn line(&mut self, label: &str, text: String) {
        let _ = writeln!(self.0, "{label:<LABEL_WIDTH$}{text}");
    }
}

fn pass_or_miss(pass: bool) -> &'static str {
    if pass { "PASS" } else { "MISS" }
}

fn cpu_text(cpu: &Cpu) -> String {
    let window = cpu.window.as_secs_f64();
    if window <= 0.0 {
        return "not measured".to_owned();
    }
    let waited = |process: &ProcessCpu, what: &str| {
        process
            .waited_percent
            .map_or(String::new(), |w| format!(" + {} {what}", percent(w)))
    };
    let mut text = match (&cpu.server, cpu.nodes.as_slice()) {
        (Some(server), [_]) => format!(
            "server {} ({}){}",
            percent(server.percent),
            threads(server),
            waited(server, "waiting for a CPU")
        ),
        (Some(all), nodes) => {
            let each: Vec<String> = nodes.iter().map(|n| percent(n.percent)).collect();
            format!(
                "servers {} over {} nodes ({}; threads of all nodes: {}){}",
                percent(all.percent),
                nodes.len(),
                each.join(" + "),
                threads(all),
                waited(all, "waiting for a CPU")
            )
        }
        (None, _) => "server not measured".to_owned(),
    };
    if let Some(nats) = &cpu.nats {
        let _ = write!(
            text,
            ", nats-server {}{}",
            percent(nats.percent),
            waited(nats, "waiting")
        );
    }
    match &cpu.bench {
        Some(bench) => {
            let _ = write!(
                text,
                ", bench {}{}",
                percent(bench.percent),
                waited(bench, "waiting")
            );
        }
        None => text.push_str(", bench not measured"),
    }
    let _ = write!(
        text,
        " of one core, over the {window:.1} s of ingest and delivery"
    );
    text.push_str(&machine_busy_clause(cpu));
    text
}

/// `; the machine's cores N % busy` when the machine was measured, nothing otherwise: the
/// end of every benchmark's cpu line.
pub(crate) fn machine_busy_clause(cpu: &Cpu) -> String {
    cpu.machine_busy_percent.map_or(String::new(), |busy| {
        format!("; the machine's cores {} busy", percent(busy))
    })
}

/// What a run on a saturated machine measured, when it was (see [`Cpu::saturated`]): with
/// the server on this machine, both its work and the bench's waited for a CPU; with the
/// server not measured here (`--url`), the bench's may have.
fn saturation_note(cpu: &Cpu, cores: usize) -> Option<String> {
    let busy = cpu.machine_busy_percent.filter(|_| cpu.saturated())?;
    // What the measured processes used, and the rest of the busy time (other processes,
    // and kernel work not charged to any process, such as loopback networking), in % of
    // one core, of the cores the busy figure is a share of.
    let ours = [&cpu.server, &cpu.nats, &cpu.bench]
        .into_iter()
        .flatten()
        .fold(0.0, |sum, process| sum + process.percent);
    let cores = cpu.machine_cores.unwrap_or(cores);
    let others = (busy * cores as f64 - ours).max(0.0);
    let (busy, ours, others) = (percent(busy), percent(ours), percent(others));
    Some(match (&cpu.server, &cpu.nats) {
        (Some(_), nats) => {
            let measured = match nats {
                Some(_) => "sluice, nats-server and the bench",
                None => "sluice and the bench",
            };
            format!(
                "the machine's cores were busy {busy} of the time (in % of one core: \
                 {measured} {ours}, other work {others}): the latency includes waiting for \
                 a CPU, so it measures this machine's limit as much as sluice; a lower \
                 --rate, or the server on another machine (--url), tells the two apart"
            )
        }
        (None, _) => format!(
            "the machine's cores were busy {busy} of the time (in % of one core: the bench \
             {ours}, other work {others}, a server on this machine included): the bench's \
             own work may have waited for a CPU, so the latency may be partly the bench's; \
             a lower --rate, or the bench on a machine of its own, tells the two apart"
        ),
    })
}

/// The busiest thread groups of a process, with their shares.
fn threads(process: &ProcessCpu) -> String {
    let busiest: Vec<String> = process
        .threads
        .iter()
        .take(THREADS_SHOWN)
        .map(|t| format!("{} {}", t.name, percent(t.percent)))
        .collect();
    busiest.join(", ")
}

fn percent(share: f64) -> String {
    format!("{share:.0} %")
}

/// `N rules`, with the share rule when the bench added it.
pub(crate) fn rules_clause(rules: usize, share_rule: Option<&str>) -> String {
    match share_rule {
        Some(share) => format!("{} rules (+1: \"{share}\")", thousands(rules as u64)),
        None => format!("{} rules", thousands(rules as u64)),
    }
}

/// Milliseconds with two decimals.
pub(crate) fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}

/// `1234567` → `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
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
    use crate::benchmark::{Benchmark, Encoding};
    use crate::config::Pacing;
    use crate::cpu::Usage;
    use crate::products::{Firehose, Powerstream, Powertrack};
    use crate::report::{Delivered, Ingested, Loss, Machine, Nats, Server, Workload};
    use crate::stats::Latency;

    /// The figures a test varies, as a run would have measured them.
    struct Run {
        connections_of_powertrack: usize,
        posts: usize,
        accepted: u64,
        ingest_span: Duration,
        latency: Option<Latency>,
        p99_by_second: Vec<Option<Duration>>,
        lost: u64,
        cpu: Cpu,
    }

    fn run() -> Run {
        Run {
            connections_of_powertrack: 100,
            posts: 100_000,
            accepted: 100_000,
            ingest_span: Duration::from_secs(20),
            latency: Some(Latency {
                count: 4_000_000,
                p50: Duration::from_millis(2),
                p99: Duration::from_millis(15),
                p999: Duration::from_millis(18),
                max: Duration::from_millis(30),
            }),
            p99_by_second: vec![Some(Duration::from_millis(16)), None],
            lost: 0,
            cpu: Cpu::over(Duration::from_secs(20), None, None, None),
        }
    }

    fn powertrack(run: &Run) -> Powertrack {
        Powertrack {
            rules: 1_000,
            connections: run.connections_of_powertrack,
            streams: 1,
        }
    }

    /// The report of `run` of `bench`, with `share_rule` added or not, judged.
    fn report(bench: &impl Benchmark, share_rule: bool, run: Run) -> Report {
        let ingested = Ingested::new(run.accepted, 0, run.ingest_span, &[]);
        let loss = Loss::new(run.lost, 0, 0, run.posts, &ingested);
        let mut report = Report {
            benchmark: bench.name(),
            machine: Machine {
                cores: 2,
                cpu: Some("Test CPU".to_owned()),
                os: "linux x86_64".to_owned(),
                release_build: true,
            },
            server: Server {
                description: "spawned".to_owned(),
                pids: Vec::new(),
                cluster: None,
                nats: None,
            },
            setup: bench.setup(share_rule),
            pacing: Pacing {
                rate: bench.goal().rate,
                duration: Duration::from_secs(20),
                batch_interval: Duration::from_millis(5),
                drain: Duration::from_secs(5),
                seed: 1,
            },
            workload: Workload {
                posts: run.posts,
                bytes: 400_000_000,
                expected: 40_000,
                deliveries: 4_000_000,
            },
            ingested,
            delivered: Delivered::new(4_000_000, Duration::from_secs(20)),
            latency: run.latency,
            p99_by_second: run.p99_by_second,
            loss,
            disconnects: Vec::new(),
            system_messages: Vec::new(),
            cpu: run.cpu,
            goal: bench.goal(),
            targets: Vec::new(),
            verdict: Verdict::Miss,
        };
        report.judge();
        report
    }

    fn misses(text: &str) -> Vec<&str> {
        text.lines().filter(|l| l.contains("MISS (")).collect()
    }

    #[test]
    fn a_run_at_the_target_passes() {
        let run = run();
        let text = report(&powertrack(&run), false, run).to_text();
        assert!(text.ends_with("verdict      PASS\n"), "{text}");
        assert!(text.contains("5,000 posts/s ("), "{text}");
        assert!(text.contains("200,000 posts/s, all connections"), "{text}");
        assert!(text.contains("p99 15.00 ms"), "{text}");
        assert!(
            text.contains("\nby second    p99 16.0 - ms (of the posts sent in each second)\n"),
            "{text}"
        );
        assert!(!text.contains("MISS"), "{text}");
    }

    #[test]
    fn each_shortfall_is_a_miss() {
        let mut slow = run();
        slow.latency = slow.latency.map(|l| Latency {
            p99: Duration::from_millis(20),
            ..l
        });
        let mut lossy = run();
        lossy.lost = 3;
        let mut small = run();
        small.connections_of_powertrack = 99;
        let mut slow_ingest = run();
        slow_ingest.ingest_span = Duration::from_secs(21);
        for (run, what) in [
            (slow, "p99 < 20 ms"),
            (lossy, "nothing lost"),
            (small, "100 connections"),
            (slow_ingest, "5,000 posts/s ingested"),
        ] {
            let text = report(&powertrack(&run), false, run).to_text();
            assert!(text.ends_with("verdict      MISS\n"), "{text}");
            let miss = misses(&text);
            assert_eq!(miss.len(), 1, "{text}");
            assert!(miss[0].contains(what), "{text}");
        }
    }

    #[test]
    fn the_parameters_name_the_streams() {
        let run1 = run();
        let text = report(&powertrack(&run1), false, run1).to_text();
        assert!(
            text.contains("1,000 rules, 1 stream, 100 connections, 5,000 posts/s"),
            "{text}"
        );
        let many = Powertrack {
            rules: 1_000,
            connections: 100,
            streams: 50,
        };
        let text = report(&many, true, run()).to_text();
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
        let mut fast = run();
        fast.accepted = 400_000;
        fast.posts = 400_000;
        let text = report(&Firehose, false, fast).to_text();
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

        let mut powerstream = Powerstream {
            rules: 1_000,
            connections: 2,
            encoding: Encoding::Identity,
        };
        let text = report(&powerstream, false, run()).to_text();
        assert!(text.contains("2 connections, identity encoding"), "{text}");
        // p99 15 ms is over Powerstream's 5 ms.
        let miss = misses(&text);
        assert_eq!(miss.len(), 1, "{text}");
        assert!(miss[0].contains("p99 < 5 ms"), "{text}");

        powerstream.encoding = Encoding::Gzip;
        let mut quick = run();
        quick.latency = quick.latency.map(|l| Latency {
            p99: Duration::from_millis(1),
            ..l
        });
        let text = report(&powerstream, false, quick).to_text();
        let miss = misses(&text);
        assert_eq!(miss.len(), 1, "{text}");
        assert!(miss[0].contains("identity encoding"), "{text}");
        assert!(text.contains("p99 1.00 ms"), "{text}");
    }

    fn usage(total_ms: u64, threads: &[(&str, u64)]) -> Usage {
        Usage {
            total: Duration::from_millis(total_ms),
            by_name: threads
                .iter()
                .map(|&(name, ms)| (name.to_owned(), Duration::from_millis(ms)))
                .collect(),
            waited: Some(Duration::from_millis(total_ms / 10)),
        }
    }

    #[test]
    fn a_cluster_run_names_its_nodes_and_nats_and_adds_up_their_cpu() {
        let mut cluster = run();
        cluster.cpu = Cpu::over(
            Duration::from_secs(10),
            Some(vec![
                usage(5_000, &[("sluice-pipeline", 3_000), ("tokio-rt", 2_000)]),
                usage(4_000, &[("sluice-pipeline", 2_500), ("tokio-rt", 1_500)]),
                usage(3_000, &[("sluice-pipeline", 2_000), ("tokio-rt", 1_000)]),
            ]),
            Some(usage(2_000, &[("nats-server", 2_000)])),
            Some(usage(1_000, &[("main", 1_000)])),
        );
        let mut clustered = report(&powertrack(&cluster), false, cluster);
        clustered.server = Server {
            description: "cluster of 3 `sluice serve --nats` nodes on this machine".to_owned(),
            pids: vec![1, 2, 3],
            cluster: Some(3),
            nats: Some(Nats {
                description: "nats-server v2.9.10 (pid 7)".to_owned(),
                pid: 7,
            }),
        };
        let text = clustered.to_text();
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

        // One server: its own figures, no nats line (over the 20 s window of `run`).
        let mut single = run();
        single.cpu = Cpu::over(
            Duration::from_secs(20),
            Some(vec![usage(5_000, &[("sluice-pipeline", 3_000)])]),
            None,
            None,
        );
        let text = report(&powertrack(&single), false, single).to_text();
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

    #[test]
    fn a_run_on_a_saturated_machine_says_so() {
        let unmeasured = run();
        let text = report(&powertrack(&unmeasured), false, unmeasured).to_text();
        assert!(!text.contains("busy"), "machine not measured: {text}");

        // Where the server ran: here, here as a cluster with its nats-server, or not
        // measured (`--url`).
        #[derive(Clone, Copy, PartialEq)]
        enum Server {
            Here,
            Cluster,
            Elsewhere,
        }
        // Over the 20 s: the server 100 %, nats-server 10 % and the bench 45 % of one core.
        let cpu = |server: Server| {
            let nodes = (server != Server::Elsewhere)
                .then(|| vec![usage(20_000, &[("sluice-match-0", 8_000)])]);
            let nats = (server == Server::Cluster).then(|| usage(2_000, &[]));
            Cpu::over(
                Duration::from_secs(20),
                nodes,
                nats,
                Some(usage(9_000, &[])),
            )
        };
        // (busy, the cores /proc/stat counts, where the server ran, note expected, what it
        // says in brackets); the report's machine has 2 cores, and /proc/stat's count wins.
        let cases = [
            (89.4, None, Server::Here, false, ""),
            (
                89.5,
                None,
                Server::Here,
                true,
                "sluice and the bench 145 %, other work 34 %",
            ),
            (
                97.4,
                None,
                Server::Here,
                true,
                "sluice and the bench 145 %, other work 50 %",
            ),
            (70.0, Some(2), Server::Here, false, ""),
            (
                95.0,
                Some(1),
                Server::Here,
                true,
                "sluice and the bench 145 %, other work 0 %",
            ),
            (
                95.0,
                Some(4),
                Server::Cluster,
                true,
                "sluice, nats-server and the bench 155 %, other work 225 %",
            ),
            (
                92.0,
                None,
                Server::Elsewhere,
                true,
                "the bench 45 %, other work 139 %",
            ),
        ];
        for (busy, cores, server, note, figures) in cases {
            let measured = || {
                let mut measured = run();
                measured.cpu = cpu(server);
                measured.cpu.machine_busy_percent = Some(busy);
                measured.cpu.machine_cores = cores;
                measured
            };
            let report = report(&powertrack(&measured()), false, measured());
            let text = report.to_text();
            let shown = format!("; the machine's cores {busy:.0} % busy\n");
            assert!(text.contains(&shown), "{shown:?} in {text}");
            let says = format!(
                "\nnote         the machine's cores were busy {busy:.0} % of the time (in % of \
                 one core: {figures}"
            );
            assert_eq!(text.contains(&says), note, "{says:?} in {text}");
            let here = "): the latency includes waiting for a CPU, so it measures this \
                        machine's limit as much as sluice; a lower --rate, or the server on \
                        another machine (--url), tells the two apart\n";
            let elsewhere = ", a server on this machine included): the bench's own work may \
                             have waited for a CPU";
            assert_eq!(
                text.contains(here),
                note && server != Server::Elsewhere,
                "{text}"
            );
            assert_eq!(
                text.contains(elsewhere),
                note && server == Server::Elsewhere,
                "{text}"
            );
            let json = serde_json::to_value(&report).expect("serialisable");
            assert_eq!(json["cpu"]["machine_busy_percent"], busy);
        }
    }

    #[test]
    fn the_json_report_has_the_same_figures_with_their_units_in_the_keys() {
        let run = run();
        let report = report(&powertrack(&run), false, run);
        let json = serde_json::to_value(&report).expect("serialisable");
        assert_eq!(json["benchmark"], "powertrack");
        assert_eq!(
            json["setup"]["summary"],
            "1,000 rules, 1 stream, 100 connections"
        );
        assert_eq!(json["setup"]["encoding"], "gzip");
        assert_eq!(json["pacing"]["duration_s"], 20.0);
        assert_eq!(json["pacing"]["batch_interval_ms"], 5.0);
        assert_eq!(json["ingested"]["span_s"], 20.0);
        assert_eq!(json["ingested"]["rate"], 5_000.0);
        assert_eq!(json["delivered"]["rate"], 200_000.0);
        let latency = &json["latency"];
        assert_eq!(
            [&latency["p50_ms"], &latency["p99_ms"], &latency["max_ms"]],
            [2.0, 15.0, 30.0]
        );
        assert_eq!(latency["samples"], 4_000_000);
        assert_eq!(json["p99_ms_by_second"], serde_json::json!([16.0, null]));
        assert_eq!(json["loss"]["lost"], 0);
        assert_eq!(json["loss"]["exact"], true);
        assert_eq!(json["goal"]["p99_ms"], 20.0);
        let targets = json["targets"].as_array().expect("targets");
        assert_eq!(targets.len(), report.targets.len());
        assert_eq!(targets[3]["target"], "p99 < 20 ms");
        assert_eq!(targets[3]["detail"], "p99 15.00 ms");
        assert_eq!(json["verdict"], "PASS");
        assert_eq!(json["cpu"]["window_s"], 20.0);
        assert!(json["cpu"]["server"].is_null());
        assert!(json["cpu"]["machine_busy_percent"].is_null());
        assert!(json["cpu"]["machine_cores"].is_null());
    }
}
