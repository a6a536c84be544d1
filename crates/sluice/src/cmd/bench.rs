//! `sluice bench powertrack`: a load generator and latency benchmark of the PowerTrack path,
//! ingest → match → stream, through the real HTTP APIs (the parts are in [`crate::bench`]).
//!
//! One command does everything: it starts `sluice serve` as a child process (or uses
//! `--url`), provisions an account, user and stream, adds the rules, holds the stream
//! connections, sends the posts at the target rate, waits for the deliveries, and prints
//! the figures with a PASS/MISS verdict against the project's target. The exact set of posts
//! each connection must receive is computed locally with the server's own matcher, so every
//! lost, duplicated or unexpected post is counted.
//!
//! Threads: the readers run on the main thread's single-threaded runtime, the ingest loop
//! on one of its own, so the bench takes at most two threads' worth of CPU from the server.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use tokio::sync::watch;
use url::Url;

use crate::bench::cpu::{Snapshot, Usage};
use crate::bench::ingest::{self, Plan};
use crate::bench::provision;
use crate::bench::reader::{self, ReaderReport, Shared};
use crate::bench::report::{self, Cpu, Machine, Params, Results};
use crate::bench::stats::Latency;
use crate::bench::target::Target;
use crate::bench::workload::{Posts, Rules};
use crate::client::http::{HttpClient, TlsArgs};
use crate::client::signal::stop_requested;

/// Exit code: the run completed and every expected post arrived exactly once.
const EXIT_OK: u8 = 0;
/// Exit code: the bench could not run (server did not start, an API call failed, …).
const EXIT_ERROR: u8 = 1;
/// Exit code: the run completed but posts were lost, duplicated, unexpected or not
/// ingested.
const EXIT_INEXACT: u8 = 2;
/// Exit code: interrupted by SIGINT/SIGTERM (the spawned server is stopped first).
const EXIT_INTERRUPTED: u8 = 130;

/// Read timeout of every client connection: more than X's 30 s for streams (heartbeats
/// come every 10 s).
const READ_TIMEOUT: Duration = Duration::from_secs(35);
/// How often the drain checks whether everything arrived.
const DRAIN_POLL: Duration = Duration::from_millis(10);

const AFTER_HELP: &str = "\
By default the bench starts `sluice serve` itself (this executable, on 127.0.0.1 with a
free port, a temporary data dir and a fresh admin token) and stops it at the end or on
Ctrl-C. With --url and --admin-token it uses a running server instead: it creates the
account 'sluice-bench' with user 'bench' and the PowerTrack stream 'bench' (replacing one
left by an earlier run) and deletes the stream afterwards.

The server allows 60 stream connects per minute per stream, so more than 60 connections
wait for the next rate-limit window (up to a minute) before the run starts.

Latency is measured from the start of the ingest request that carried a post to the
arrival of the HTTP chunk that delivered it, for the first copy of every expected post on
every connection. `lost` counts expected posts that had not arrived --drain after the last
ingest answer, summed over connections.

The verdict compares the run with the project's target: 5,000 posts/s ingested (1 %
tolerance), 1,000 rules, 100 connections, p99 < 20 ms, nothing lost. Build with --release
for meaningful timings.

Exit codes:
  0  the run completed and every connection got every expected post exactly once
  1  the bench could not run (message on stderr)
  2  the run completed but posts were lost, duplicated, unexpected or not ingested
  130 interrupted";

/// Flags of `sluice bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    benchmark: Benchmark,
}

/// The benchmarks.
#[derive(Debug, Subcommand)]
enum Benchmark {
    /// PowerTrack end to end: ingest → match → gzip stream, with latency and loss.
    #[command(after_help = AFTER_HELP)]
    Powertrack(PowertrackArgs),
}

/// Flags of `sluice bench powertrack`.
#[derive(Debug, Args)]
struct PowertrackArgs {
    /// Realistic rules on the stream (sluice-synth's rule mix).
    #[arg(long, value_name = "N", default_value_t = 1_000)]
    rules: usize,

    /// Stream connections held open, each receiving every matching post.
    #[arg(long, value_name = "C", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    connections: u32,

    /// Posts ingested per second.
    #[arg(long, value_name = "R", default_value_t = 5_000.0, value_parser = positive_rate)]
    rate: f64,

    /// How long posts are sent (e.g. 20s, 500ms, 2m).
    #[arg(long, value_name = "TIME", default_value = "20s", value_parser = duration)]
    duration: Duration,

    /// Time between two ingest requests.
    #[arg(long, value_name = "TIME", default_value = "5ms", value_parser = duration)]
    batch_interval: Duration,

    /// How long to wait after the last ingest answer for posts still on their way.
    #[arg(long, value_name = "TIME", default_value = "5s", value_parser = duration)]
    drain: Duration,

    /// Seed of the generated rules and posts: the same seed gives the same rules and post
    /// contents (post ids and times follow the clock, so `sample:` picks can differ).
    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// Use the running server at this base URL instead of starting one.
    #[arg(long, value_name = "BASE", requires = "admin_token")]
    url: Option<Url>,

    /// The admin token of the server given with --url.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SLUICE_ADMIN_TOKEN",
        hide_env_values = true
    )]
    admin_token: Option<String>,

    #[command(flatten)]
    tls: TlsArgs,
}

fn positive_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err("expected a positive number of posts per second".to_owned()),
    }
}

/// A duration as humantime writes it (`20s`, `500ms`, `2m`, `1m 30s`), more than zero.
fn duration(s: &str) -> Result<Duration, String> {
    match humantime::parse_duration(s.trim()) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("must be more than zero".to_owned()),
        Err(e) => Err(format!("{e} (write e.g. 20s, 500ms or 2m)")),
    }
}

/// Runs `sluice bench` and returns its exit code.
pub fn run(args: &BenchArgs) -> ExitCode {
    match &args.benchmark {
        Benchmark::Powertrack(args) => powertrack(args),
    }
}

fn powertrack(args: &PowertrackArgs) -> ExitCode {
    let result = crate::client::runtime()
        .context("starting the async runtime")
        .and_then(|rt| {
            rt.block_on(async {
                tokio::select! {
                    result = run_powertrack(args) => result,
                    () = stop_requested() => {
                        // Dropping the run's future has stopped a spawned server.
                        eprintln!("sluice bench: interrupted");
                        Ok(EXIT_INTERRUPTED)
                    }
                }
            })
        });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("sluice bench: error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Says what the bench is doing, on stderr (stdout has only the report).
fn progress(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "sluice bench: {text}");
}

async fn run_powertrack(args: &PowertrackArgs) -> anyhow::Result<u8> {
    let machine = Machine::detect();
    let connections = args.connections as usize;
    let post_count = (args.rate * args.duration.as_secs_f64()).round() as usize;
    if post_count == 0 {
        bail!("--rate × --duration is less than one post");
    }

    let target = match (&args.url, &args.admin_token) {
        (Some(url), Some(token)) => Target::external(base_url(url), token.clone()),
        _ => {
            progress("starting sluice serve");
            Target::spawn()?
        }
    };
    let server = match target.pid() {
        Some(pid) => format!(
            "spawned `sluice serve` (pid {pid}) at {}, temporary data dir",
            target.base
        ),
        None => format!("running server at {}", target.base),
    };
    progress(&format!("server: {server}"));

    // Generating and matching the posts takes seconds: it runs while the stream is set up.
    let mut rules = Rules::generate(args.seed, args.rules)?;
    let start_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    let (seed, rate) = (args.seed, args.rate);
    let workload = tokio::task::spawn_blocking(move || {
        let posts = Posts::generate(seed, post_count, rate, start_ms, &mut rules);
        posts.map(|posts| (rules, posts))
    });

    let client = HttpClient::new(&args.tls, Some(READ_TIMEOUT))?;
    let stream = provision::stream(&client, &target, connections, args.rules + 1).await?;
    progress(&format!("opening {connections} stream connections"));
    let mut responses = Vec::with_capacity(connections);
    for _ in 0..connections {
        let response = reader::connect(&client, &stream.stream_url, &stream.auth, |wait| {
            progress(&format!(
                "{} connections open; the connect rate limit allows more in {:.0} s",
                responses.len(),
                wait.as_secs_f64()
            ));
        })
        .await?;
        responses.push(response);
    }

    progress(&format!("generating {post_count} posts"));
    let (rules, posts) = workload.await.context("the workload generator failed")??;
    let posts = Arc::new(posts);
    progress(&format!("adding {} rules", rules.rules.len()));
    provision::add_rules(&client, &stream, &rules.rules).await?;

    let shared = Arc::new(Shared {
        posts: posts.clone(),
        epoch: Instant::now(),
        arrived: AtomicU64::new(0),
    });
    let (stop, stopped) = watch::channel(false);
    let readers: Vec<_> = responses
        .into_iter()
        .map(|response| tokio::spawn(reader::read(response, shared.clone(), stopped.clone())))
        .collect();

    progress(&format!(
        "sending {post_count} posts at {rate} posts/s for {:.1} s",
        args.duration.as_secs_f64()
    ));
    let cpu_before = (Snapshot::take(target.pid()), Snapshot::take(None));
    let plan = Plan {
        url: target.base.join("ingest")?,
        token: target.admin_token.clone(),
        rate: args.rate,
        interval: args.batch_interval,
        tls: args.tls.clone(),
    };
    let ingested = ingest::spawn(plan, posts.clone(), shared.epoch)?
        .await
        .context("the ingest thread stopped")??;

    // Wait for what is still on its way.
    let all = (posts.expected_count() * connections) as u64;
    let deadline =
        shared.epoch + Duration::from_micros(ingested.last_answer_us().unwrap_or(0)) + args.drain;
    while shared.arrived.load(Ordering::Relaxed) < all
        && Instant::now() < deadline
        && !readers.iter().all(|r| r.is_finished())
    {
        tokio::time::sleep(DRAIN_POLL).await;
    }
    let window_end = shared.now_us();
    let cpu_after = (Snapshot::take(target.pid()), Snapshot::take(None));
    let _ = stop.send(true);
    let mut reports = Vec::with_capacity(connections);
    for reader in readers {
        reports.push(reader.await.context("a stream reader panicked")?);
    }

    if target.spawned.is_none() {
        provision::remove_stream(&client, &target).await?;
    }
    drop(target);

    let cpu = Cpu {
        window: Duration::from_micros(window_end.saturating_sub(ingested.started_us)),
        server: cpu_before
            .0
            .as_ref()
            .zip(cpu_after.0.as_ref())
            .map(|(before, after)| Usage::between(before, after)),
        bench: cpu_before
            .1
            .as_ref()
            .zip(cpu_after.1.as_ref())
            .map(|(before, after)| Usage::between(before, after)),
    };
    let results = results(&posts, &ingested, &reports, cpu);
    let params = Params {
        rules: args.rules,
        share_rule: rules.rules.len() > args.rules,
        connections,
        rate: args.rate,
        duration: args.duration,
        interval: args.batch_interval,
        seed: args.seed,
        server,
    };
    let text = report::render(&machine, &params, &results);
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .context("writing the report")?;
    Ok(if results.exact() && results.disconnects.is_empty() {
        EXIT_OK
    } else {
        EXIT_INEXACT
    })
}

/// The base URL with a trailing `/`, so that joining `admin/…` keeps any path prefix.
fn base_url(url: &Url) -> Url {
    let mut url = url.clone();
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

/// Puts the figures of a finished run together.
fn results(
    posts: &Posts,
    ingested: &ingest::IngestReport,
    reports: &[ReaderReport],
    cpu: Cpu,
) -> Results {
    let send_times = ingested.send_times(posts.len());
    let mut latencies = Vec::with_capacity(reports.iter().map(|r| r.arrivals.len()).sum());
    let mut last_arrival = 0;
    for report in reports {
        for &(index, arrived) in &report.arrivals {
            last_arrival = last_arrival.max(arrived);
            if let Some(sent) = send_times[index as usize] {
                latencies.push(arrived.saturating_sub(sent));
            }
        }
    }
    let expected = posts.expected_count() as u64;
    let errors: Vec<&str> = ingested.errors().collect();
    Results {
        posts: posts.len(),
        post_bytes: posts.bytes(),
        expected: posts.expected_count(),
        accepted: ingested.accepted(),
        rejected: ingested.rejected(),
        ingest_errors: (errors.len(), errors.first().map(|e| (*e).to_owned())),
        ingest_span: Duration::from_micros(
            ingested
                .last_answer_us()
                .unwrap_or(0)
                .saturating_sub(ingested.started_us),
        ),
        delivered: reports.iter().map(|r| r.lines).sum(),
        delivery_span: Duration::from_micros(last_arrival.saturating_sub(ingested.started_us)),
        latency: Latency::of(&mut latencies),
        lost: reports
            .iter()
            .map(|r| expected.saturating_sub(r.received))
            .sum(),
        duplicates: reports.iter().map(|r| r.duplicates).sum(),
        unexpected: reports.iter().map(|r| r.unexpected).sum(),
        disconnects: reports
            .iter()
            .filter_map(|r| r.disconnect.clone())
            .collect(),
        system_messages: reports
            .iter()
            .flat_map(|r| r.system_messages.iter().cloned())
            .collect(),
        cpu,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_the_usual_units() {
        assert_eq!(duration("20s"), Ok(Duration::from_secs(20)));
        assert_eq!(duration("5ms"), Ok(Duration::from_millis(5)));
        assert_eq!(duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(duration("1m 30s"), Ok(Duration::from_secs(90)));
        for bad in ["", "0s", "-1s", "s", "20 parsecs"] {
            assert!(duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn base_urls_keep_their_path_prefix() {
        let url = |s: &str| Url::parse(s).expect("valid URL");
        assert_eq!(
            base_url(&url("http://h:8080"))
                .join("ingest")
                .expect("join")
                .as_str(),
            "http://h:8080/ingest"
        );
        assert_eq!(
            base_url(&url("http://h/sluice"))
                .join("ingest")
                .expect("join")
                .as_str(),
            "http://h/sluice/ingest"
        );
    }
}
