//! `sluice bench powertrack|firehose|powerstream`: load generators and latency benchmarks of
//! the three delivery paths, ingest → (match →) stream, through the real HTTP APIs (the
//! parts are in [`crate::bench`]).
//!
//! One command does everything: it starts `sluice serve` as a child process (or a cluster of
//! them sharing a `nats-server` of its own with `--cluster N`, or uses `--url`), provisions
//! an account and the streams (or a Powerstream token), adds the rules, holds the stream
//! connections, sends the posts at the target rate, waits for the deliveries, and prints the
//! figures with a PASS/MISS verdict against the project's target.
//! The exact set of posts each connection must receive is computed locally (with the
//! server's own matcher for the rules products, with the server's partition function for the
//! Firehose), so every lost, duplicated or unexpected post is counted.
//!
//! The three benchmarks share one flow ([`execute`]); a [`Setup`] says what differs: which
//! posts are expected, how the server is provisioned, which connections are opened and
//! where the rules go.
//!
//! Firehose: X allows 10 connects per 60 s per volume stream, so 20 partition connections to
//! one stream would need a second rate-limit window (up to a minute of waiting). The bench
//! instead reads two Firehose streams of the same account, partitions 1–10 of the first and
//! 11–20 of the second. Both streams carry every post and a post's partition depends on its
//! id alone, so the 20 connections together receive every post exactly once, as one
//! customer's 20 partitions would, and the server's per-post work is the same (each post is
//! serialised to exactly one connection).
//!
//! Cluster (`--cluster N`): everything is provisioned through node 1, and the bench waits
//! until every node shows it (users, streams, token, then the rule counts) before it
//! connects or ingests. Connection `i` reads from node `i mod N` and ingest request `k`
//! goes to node `k mod N`, so every post crosses JetStream to reach most of its readers and
//! every connection must still receive every post it should, whichever node it reads from.
//!
//! Threads: the readers run on the main thread's single-threaded runtime, the ingest loop
//! on one of its own, so the bench takes at most two threads' worth of CPU from the server.

use std::io::Write as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand, ValueEnum};
use sluice_rules::Dialect;
use tokio::sync::watch;
use url::Url;

use crate::bench::cpu::{Snapshot, Usage};
use crate::bench::ingest::{self, Plan};
use crate::bench::provision::{self, Leftover};
use crate::bench::reader::{self, ReaderReport, Shared};
use crate::bench::replication::{self, Expected, ExpectedStream};
use crate::bench::report::{self, Cpu, Machine, Mode, Params, Results};
use crate::bench::stats::Latency;
use crate::bench::target::Target;
use crate::bench::workload::{Expect, Posts, Rules, Share};
use crate::client::http::{Auth, HttpClient, Response, TlsArgs};
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
/// Partitions of the Firehose (spec Part A, "Partitions").
const FIREHOSE_PARTITIONS: u32 = 20;
/// Partitions read per Firehose stream: X's 10 connects per 60 s per stream.
const PARTITIONS_PER_STREAM: u32 = 10;
/// Powerstream connections per account (the server's connection cap, X's default).
const POWERSTREAM_CONNECTIONS: u32 = 2;
/// Powerstream rules per account (spec §6.2).
const POWERSTREAM_RULES: usize = 1_000;

/// The part of every benchmark's help after its own: the server, measurement, exit codes.
macro_rules! common_help {
    () => {
        "
By default the bench starts `sluice serve` itself (this executable, on 127.0.0.1 with a
free port, a temporary data dir and a fresh admin token) and stops it at the end or on
Ctrl-C. With --url and --admin-token it uses a running server instead, in the account
'sluice-bench' (user 'bench'), and deletes what it created there afterwards.

With --cluster N it starts a cluster on this machine instead: its own `nats-server -js`
(from PATH or /usr/sbin; a port the OS picks, JetStream in a temporary dir) and N nodes of
`sluice serve --nats` sharing it, and stops them all at the end. Everything is provisioned
through node 1 and the bench waits until every node has it; connection i reads from node
i mod N and the ingest requests go round-robin to the nodes. The report names the nodes
and the NATS server and adds up their CPU; the verdict uses the same target as one server.

Latency is measured from the start of the ingest request that carried a post to the
arrival of the HTTP chunk that delivered it, for the first copy of every expected post on
every connection. `lost` counts expected posts that had not arrived --drain after the last
ingest answer, summed over connections. Build with --release for meaningful timings.

Exit codes:
  0  the run completed and every connection got every expected post exactly once
  1  the bench could not run (message on stderr)
  2  the run completed but posts were lost, duplicated, unexpected or not ingested
  130 interrupted"
    };
}

const POWERTRACK_HELP: &str = concat!(
    "\
The bench creates the PowerTrack streams 'bench-1' ... 'bench-N' (or with --streams 1 the
stream 'bench'), replacing any left by an earlier run: generated rule i goes to stream
i mod N and connection j reads stream j mod N, so each connection expects exactly the posts
its own stream's rules match. By default there is one stream per 2 connections, as X's
customers hold a redundant pair per stream. With --streams 1 every connection receives
every matching post, and at the default size the bench's own gzip decoding (~780 MB/s)
is more than 2 cores can do. The server allows 60 stream connects per minute per stream,
so more than 60 connections on one stream wait for the next rate-limit window (up to a
minute) before the run starts.

The verdict compares the run with the project's target: 5,000 posts/s ingested (1 %
tolerance), 1,000 rules, 100 connections, p99 < 20 ms, nothing lost.
",
    common_help!()
);

const FIREHOSE_HELP: &str = concat!(
    "\
The Firehose has 20 partitions, each read by one connection, and every post must arrive
exactly once over all of them. The server allows 10 connects per 60 s per Firehose stream,
so the bench creates two Firehose streams, 'bench-firehose-1' and 'bench-firehose-2', and
reads partitions 1-10 of the first and 11-20 of the second: a post's partition depends only
on its id, so this delivers exactly what one stream's 20 partitions would, without waiting
a minute for a second connect window.

The verdict compares the run with the project's target: 20,000 posts/s ingested (1 %
tolerance), p99 < 50 ms, nothing lost.
",
    common_help!()
);

const POWERSTREAM_HELP: &str = concat!(
    "\
The bench creates a Powerstream bearer token for the account (tokens stay: the admin API
cannot revoke them), replaces the account's Powerstream rules with the generated ones, 100
per request (X allows 50 rules requests per account per 24 h: a run of 1,000 rules takes
10), and opens the connections, asking for gzip or identity as --encoding says.

The verdict compares the run with the project's target: 5,000 posts/s ingested (1 %
tolerance), 1,000 rules, 2 connections, identity encoding, p99 < 5 ms, nothing lost. A gzip
run is a MISS by definition; it gives the figure to compare with PowerTrack's.
",
    common_help!()
);

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
    #[command(after_help = POWERTRACK_HELP)]
    Powertrack(PowertrackArgs),
    /// Firehose end to end: ingest → 20 gzip partition streams, with latency and loss.
    #[command(after_help = FIREHOSE_HELP)]
    Firehose(FirehoseArgs),
    /// Powerstream end to end: ingest → match → identity or gzip stream, with latency and
    /// loss.
    #[command(after_help = POWERSTREAM_HELP)]
    Powerstream(PowerstreamArgs),
}

/// Flags of `sluice bench powertrack`.
#[derive(Debug, Args)]
struct PowertrackArgs {
    /// Realistic rules (sluice-synth's rule mix), split evenly over the streams.
    #[arg(long, value_name = "N", default_value_t = 1_000)]
    rules: usize,

    /// Stream connections held open, spread evenly over the streams, each receiving every
    /// post its stream's rules match.
    #[arg(long, value_name = "C", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    connections: u32,

    /// PowerTrack streams in the bench account, at most one per connection [default: one
    /// per 2 connections, X's redundant pair: 50 for the default 100 connections].
    #[arg(long, value_name = "S", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    streams: Option<u32>,

    /// Posts ingested per second.
    #[arg(long, value_name = "R", default_value_t = 5_000.0, value_parser = positive_rate)]
    rate: f64,

    #[command(flatten)]
    run: RunArgs,
}

/// Flags of `sluice bench firehose`.
#[derive(Debug, Args)]
struct FirehoseArgs {
    /// Posts ingested per second.
    #[arg(long, value_name = "R", default_value_t = 20_000.0, value_parser = positive_rate)]
    rate: f64,

    #[command(flatten)]
    run: RunArgs,
}

/// Flags of `sluice bench powerstream`.
#[derive(Debug, Args)]
struct PowerstreamArgs {
    /// Realistic rules on the account's Powerstream (sluice-synth's rule mix, keeping the
    /// rules Powerstream's operators allow); at most 1,000 per account.
    #[arg(long, value_name = "N", default_value_t = POWERSTREAM_RULES, value_parser = powerstream_rules)]
    rules: usize,

    /// Stream connections held open, each receiving every matching post (Powerstream allows
    /// 2 per account).
    #[arg(long, value_name = "C", default_value_t = POWERSTREAM_CONNECTIONS, value_parser = clap::value_parser!(u32).range(1..=i64::from(POWERSTREAM_CONNECTIONS)))]
    connections: u32,

    /// How the connections ask for the stream: identity (no `Accept-Encoding: gzip`, the
    /// target's setting) or gzip.
    #[arg(long, value_enum, default_value_t = Encoding::Identity)]
    encoding: Encoding,

    /// Posts ingested per second.
    #[arg(long, value_name = "R", default_value_t = 5_000.0, value_parser = positive_rate)]
    rate: f64,

    #[command(flatten)]
    run: RunArgs,
}

/// The body encoding a Powerstream connection asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Encoding {
    /// Uncompressed.
    Identity,
    /// `Accept-Encoding: gzip`.
    Gzip,
}

/// Flags every benchmark has.
#[derive(Debug, Args)]
struct RunArgs {
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
    /// contents (post ids and times follow the clock, so `sample:` picks and partitions can
    /// differ).
    #[arg(long, default_value_t = 1)]
    seed: u64,

    /// Use the running server at this base URL instead of starting one.
    #[arg(long, value_name = "BASE", requires = "admin_token")]
    url: Option<Url>,

    /// Start a cluster of N nodes on this machine instead of one server: a nats-server of
    /// the bench's own (it must be installed, 2.9 or later; JetStream in temporary storage)
    /// and N `sluice serve --nats` sharing it. Connections and ingest requests are spread
    /// round-robin over the nodes.
    #[arg(long, value_name = "N", conflicts_with = "url", value_parser = clap::value_parser!(u32).range(1..))]
    cluster: Option<u32>,

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

fn powerstream_rules(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n <= POWERSTREAM_RULES => Ok(n),
        _ => Err(format!(
            "expected a number of rules from 0 to {POWERSTREAM_RULES} (Powerstream's cap)"
        )),
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

/// What differs between the benchmarks.
#[derive(Debug, Clone, Copy)]
enum Setup {
    /// `streams` PowerTrack streams sharing `rules` rules, read by `connections`
    /// connections spread over them.
    Powertrack {
        rules: usize,
        connections: usize,
        streams: usize,
    },
    /// The Firehose's 20 partitions, read from two streams.
    Firehose,
    /// The account's Powerstream with `rules` rules, read by `connections` connections.
    Powerstream {
        rules: usize,
        connections: usize,
        gzip: bool,
    },
}

impl Setup {
    /// The rules to generate and their dialect, for the rules products.
    fn rules(self) -> Option<(usize, Dialect)> {
        match self {
            Setup::Powertrack { rules, .. } => Some((rules, Dialect::PowerTrack)),
            Setup::Firehose => None,
            Setup::Powerstream { rules, .. } => Some((rules, Dialect::Powerstream)),
        }
    }

    /// The rules streams the rules are split over.
    fn streams(self) -> usize {
        match self {
            Setup::Powertrack { streams, .. } => streams,
            Setup::Firehose | Setup::Powerstream { .. } => 1,
        }
    }

    /// How the report names the run; `share_rule` says whether the share rule was added.
    fn mode(self, share_rule: bool) -> Mode {
        match self {
            Setup::Powertrack { rules, streams, .. } => Mode::Powertrack {
                rules,
                streams,
                share_rule,
            },
            Setup::Firehose => Mode::Firehose {
                streams: provision::FIREHOSE_LABELS.len(),
            },
            Setup::Powerstream { rules, gzip, .. } => Mode::Powerstream {
                rules,
                share_rule,
                gzip,
            },
        }
    }
}

/// Runs `sluice bench` and returns its exit code.
pub fn run(args: &BenchArgs) -> ExitCode {
    let (setup, rate, run) = match &args.benchmark {
        Benchmark::Powertrack(a) if a.streams.is_some_and(|s| s > a.connections) => {
            eprintln!(
                "sluice bench: error: --streams {} is more than --connections {}: every \
                 stream needs a connection",
                a.streams.unwrap_or_default(),
                a.connections
            );
            return ExitCode::from(EXIT_ERROR);
        }
        Benchmark::Powertrack(a) => (
            Setup::Powertrack {
                rules: a.rules,
                connections: a.connections as usize,
                streams: a.streams.unwrap_or(a.connections.div_ceil(2)) as usize,
            },
            a.rate,
            &a.run,
        ),
        Benchmark::Firehose(a) => (Setup::Firehose, a.rate, &a.run),
        Benchmark::Powerstream(a) => (
            Setup::Powerstream {
                rules: a.rules,
                connections: a.connections as usize,
                gzip: a.encoding == Encoding::Gzip,
            },
            a.rate,
            &a.run,
        ),
    };
    // Unlike the other client commands, the bench decodes up to hundreds of gzip streams
    // at once: its readers are spawned tasks, spread over one worker per core.
    let result = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
        .and_then(|rt| {
            rt.block_on(async {
                tokio::select! {
                    result = execute(setup, rate, run) => result,
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

/// Where the rules of a run go.
enum RulesApi {
    /// The PowerTrack rules API of each bench stream.
    Powertrack(Vec<provision::Stream>),
    /// The account's Powerstream rules API.
    Powerstream(provision::Powerstream),
    /// No rules (the Firehose).
    None,
}

/// A provisioned server with the run's connections open.
struct Opened {
    /// Each connection and which expected posts it must receive.
    connections: Vec<(Response, Share)>,
    rules: RulesApi,
    /// What to remove from a server the bench does not own.
    leftover: Leftover,
}

/// One connection to open.
struct Connection {
    url: Url,
    gzip: bool,
    share: Share,
}

/// Provisions the server for `setup` (through node 1 of a cluster), waits until every node
/// has it, and opens its connections, connection `i` on node `i mod N`.
async fn open(setup: Setup, client: &HttpClient, target: &Target) -> anyhow::Result<Opened> {
    let (auth, wanted, rules, leftover) = match setup {
        Setup::Powertrack {
            rules,
            connections,
            streams,
        } => {
            let per_stream = connections.div_ceil(streams);
            let created =
                provision::streams(client, target, streams, per_stream, rules + 1).await?;
            // Connection j reads stream j mod N, so consecutive connects alternate streams
            // and each stream's connect rate limit is met as late as possible.
            let wanted = (0..connections)
                .map(|j| Connection {
                    url: created[j % streams].stream_url.clone(),
                    gzip: true,
                    share: Share::Stream((j % streams) as u32),
                })
                .collect();
            let auth = created[0].auth.clone();
            (
                auth,
                wanted,
                RulesApi::Powertrack(created),
                Leftover::PowertrackStreams(streams),
            )
        }
        Setup::Firehose => {
            let (auth, urls) = provision::firehose(client, target).await?;
            let mut wanted = Vec::with_capacity(FIREHOSE_PARTITIONS as usize);
            for (n, url) in urls.iter().enumerate() {
                for p in 1..=PARTITIONS_PER_STREAM {
                    let number = n as u32 * PARTITIONS_PER_STREAM + p;
                    let mut url = url.clone();
                    url.query_pairs_mut()
                        .append_pair("partition", &number.to_string());
                    wanted.push(Connection {
                        url,
                        gzip: true,
                        share: Share::Partition {
                            number,
                            of: FIREHOSE_PARTITIONS,
                        },
                    });
                }
            }
            (auth, wanted, RulesApi::None, Leftover::FirehoseStreams)
        }
        Setup::Powerstream {
            connections, gzip, ..
        } => {
            let stream = provision::powerstream(client, target).await?;
            let wanted = (0..connections)
                .map(|_| Connection {
                    url: stream.stream_url.clone(),
                    gzip,
                    share: Share::Stream(0),
                })
                .collect();
            let auth = stream.auth.clone();
            (
                auth,
                wanted,
                RulesApi::Powerstream(stream),
                Leftover::PowerstreamRules,
            )
        }
    };
    if target.nodes.len() > 1 {
        progress(&format!(
            "waiting until the {} nodes have the account and its streams",
            target.nodes.len()
        ));
        replication::wait(client, target, &provisioned(setup, &auth), "provisioning").await?;
    }
    progress(&format!("opening {} stream connections", wanted.len()));
    let mut connections = Vec::with_capacity(wanted.len());
    for (i, mut c) in wanted.into_iter().enumerate() {
        c.url = target.on_node(&c.url, i)?;
        let response = connect(client, &c, &auth, connections.len()).await?;
        connections.push((response, c.share));
    }
    Ok(Opened {
        connections,
        rules,
        leftover,
    })
}

/// What every node of a cluster must show once `setup` is provisioned, before any
/// connection: the user (streams) or the token (Powerstream), and the streams.
fn provisioned(setup: Setup, auth: &Auth) -> Expected {
    let stream = |label: &str, product| ExpectedStream {
        label: label.to_owned(),
        product,
        rules: None,
    };
    match setup {
        Setup::Powertrack { streams, .. } => Expected {
            users: vec![provision::USER.to_owned()],
            streams: provision::powertrack_labels(streams)
                .iter()
                .map(|label| stream(label, "powertrack"))
                .collect(),
            token: None,
        },
        Setup::Firehose => Expected {
            users: vec![provision::USER.to_owned()],
            streams: provision::FIREHOSE_LABELS
                .iter()
                .map(|label| stream(label, "firehose"))
                .collect(),
            token: None,
        },
        // The rule set itself is created by the first connection or rules request.
        Setup::Powerstream { .. } => Expected {
            users: Vec::new(),
            streams: Vec::new(),
            token: match auth {
                Auth::Bearer(token) => Some(token.clone()),
                Auth::Basic(_) => None,
            },
        },
    }
}

/// What every node of a cluster must show once `rules` were added, before any post is
/// ingested: each stream with exactly its rules.
fn with_rules(api: &RulesApi, rules: &Rules) -> Expected {
    let streams = match api {
        RulesApi::Powertrack(streams) => provision::powertrack_labels(streams.len())
            .into_iter()
            .enumerate()
            .map(|(n, label)| ExpectedStream {
                label,
                product: "powertrack",
                rules: Some(rules.of_stream(n).len()),
            })
            .collect(),
        RulesApi::Powerstream(_) => vec![ExpectedStream {
            label: provision::POWERSTREAM_LABEL.to_owned(),
            product: "powerstream",
            rules: Some(rules.rules.len()),
        }],
        RulesApi::None => Vec::new(),
    };
    Expected {
        users: Vec::new(),
        streams,
        token: None,
    }
}

/// Opens one connection; `open` connections are open already (for the progress message).
async fn connect(
    client: &HttpClient,
    c: &Connection,
    auth: &Auth,
    open: usize,
) -> anyhow::Result<Response> {
    reader::connect(client, &c.url, auth, c.gzip, |wait| {
        progress(&format!(
            "{open} connections open; the connect rate limit allows more in {:.0} s",
            wait.as_secs_f64()
        ));
    })
    .await
}

async fn execute(setup: Setup, rate: f64, args: &RunArgs) -> anyhow::Result<u8> {
    let machine = Machine::detect();
    let post_count = (rate * args.duration.as_secs_f64()).round() as usize;
    if post_count == 0 {
        bail!("--rate × --duration is less than one post");
    }

    let target = match (&args.url, &args.admin_token, args.cluster) {
        (Some(url), Some(token), _) => Target::external(base_url(url), token.clone()),
        (_, _, Some(nodes)) => {
            progress(&format!(
                "starting nats-server and a cluster of {nodes} sluice serve nodes"
            ));
            Target::spawn_cluster(nodes as usize)?
        }
        _ => {
            progress("starting sluice serve");
            Target::spawn()?
        }
    };
    let server = target.describe();
    progress(&format!("server: {server}"));
    let nats = target.describe_nats();
    if let Some(nats) = &nats {
        progress(&format!("nats: {nats}"));
    }

    // Generating and matching the posts takes seconds: it runs while the stream is set up.
    let start_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    let seed = args.seed;
    let wanted_rules = setup.rules();
    let streams = setup.streams();
    let workload = tokio::task::spawn_blocking(move || match wanted_rules {
        Some((count, dialect)) => {
            let mut rules = Rules::generate(seed, count, dialect, streams)?;
            let posts = Posts::generate(
                seed,
                post_count,
                rate,
                start_ms,
                Expect::Matching(&mut rules),
            )?;
            Ok::<_, anyhow::Error>((Some(rules), posts))
        }
        None => Ok((
            None,
            Posts::generate(seed, post_count, rate, start_ms, Expect::Every)?,
        )),
    });

    let client = HttpClient::new(&args.tls, Some(READ_TIMEOUT))?;
    target.wait_healthy(&client).await?;
    let opened = open(setup, &client, &target).await?;

    progress(&format!("generating {post_count} posts"));
    let (rules, posts) = workload.await.context("the workload generator failed")??;
    let posts = Arc::new(posts);
    if let Some(rules) = &rules {
        match &opened.rules {
            RulesApi::Powertrack(streams) => {
                progress(&format!(
                    "adding {} rules to {} streams",
                    rules.rules.len(),
                    streams.len()
                ));
                for (n, stream) in streams.iter().enumerate() {
                    provision::add_rules(&client, stream, &rules.of_stream(n)).await?;
                }
            }
            RulesApi::Powerstream(stream) => {
                progress(&format!("adding {} rules", rules.rules.len()));
                if rules.rules.len() > POWERSTREAM_RULES {
                    bail!(
                        "the generated rules match less than 5 % of the posts and the share \
                         rule would make {} rules, over Powerstream's {POWERSTREAM_RULES}: \
                         use fewer --rules",
                        rules.rules.len()
                    );
                }
                provision::add_powerstream_rules(&client, stream, &rules.rules).await?;
            }
            RulesApi::None => {}
        }
        if target.nodes.len() > 1 {
            progress(&format!(
                "waiting until the {} nodes have the rules",
                target.nodes.len()
            ));
            replication::wait(
                &client,
                &target,
                &with_rules(&opened.rules, rules),
                "adding rules",
            )
            .await?;
        }
    }

    let shared = Arc::new(Shared {
        posts: posts.clone(),
        epoch: Instant::now(),
        arrived: AtomicU64::new(0),
    });
    let all: u64 = opened
        .connections
        .iter()
        .map(|(_, share)| posts.expected_on(*share) as u64)
        .sum();
    let connections = opened.connections.len();
    let (stop, stopped) = watch::channel(false);
    let readers: Vec<_> = opened
        .connections
        .into_iter()
        .map(|(response, share)| {
            tokio::spawn(reader::read(
                response,
                share,
                shared.clone(),
                stopped.clone(),
            ))
        })
        .collect();

    progress(&format!(
        "sending {post_count} posts at {rate} posts/s for {:.1} s",
        args.duration.as_secs_f64()
    ));
    let pids = target.pids();
    let nats_pid = target.nats_pid();
    let cpu_before = CpuSnapshots::take(&pids, nats_pid);
    let plan = Plan {
        urls: target
            .nodes
            .iter()
            .map(|node| node.join("ingest"))
            .collect::<Result<_, _>>()?,
        token: target.admin_token.clone(),
        rate,
        interval: args.batch_interval,
        tls: args.tls.clone(),
    };
    let ingested = ingest::spawn(plan, posts.clone(), shared.epoch)?
        .await
        .context("the ingest thread stopped")??;

    // Wait for what is still on its way.
    let deadline =
        shared.epoch + Duration::from_micros(ingested.last_answer_us().unwrap_or(0)) + args.drain;
    while shared.arrived.load(Ordering::Relaxed) < all
        && Instant::now() < deadline
        && !readers.iter().all(|r| r.is_finished())
    {
        tokio::time::sleep(DRAIN_POLL).await;
    }
    let window_end = shared.now_us();
    let cpu_after = CpuSnapshots::take(&pids, nats_pid);
    let _ = stop.send(true);
    let mut reports = Vec::with_capacity(connections);
    for reader in readers {
        reports.push(reader.await.context("a stream reader panicked")?);
    }

    if !target.is_spawned() {
        provision::remove(&client, &target, opened.leftover).await?;
    }
    drop(target);

    let cpu = cpu_before.usage_until(
        &cpu_after,
        Duration::from_micros(window_end.saturating_sub(ingested.started_us)),
    );
    let results = results(&posts, &ingested, &reports, cpu);
    let params = Params {
        mode: setup.mode(rules.as_ref().is_some_and(Rules::has_share_rule)),
        connections,
        rate,
        duration: args.duration,
        interval: args.batch_interval,
        seed: args.seed,
        server,
        cluster: args.cluster.map(|n| n as usize),
        nats,
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

/// CPU time so far of the processes a run measures.
struct CpuSnapshots {
    /// Every node the bench started (`None` when there are none or one cannot be read).
    nodes: Option<Vec<Snapshot>>,
    /// The NATS server the bench started.
    nats: Option<Snapshot>,
    /// The bench itself.
    bench: Option<Snapshot>,
}

impl CpuSnapshots {
    /// Reads the nodes `pids`, the NATS server `nats` and this process.
    fn take(pids: &[u32], nats: Option<u32>) -> Self {
        let nodes = if pids.is_empty() {
            None
        } else {
            pids.iter().map(|&pid| Snapshot::take(Some(pid))).collect()
        };
        Self {
            nodes,
            nats: nats.and_then(|pid| Snapshot::take(Some(pid))),
            bench: Snapshot::take(None),
        }
    }

    /// What each process used from these snapshots to `after`, over `window`.
    fn usage_until(&self, after: &CpuSnapshots, window: Duration) -> Cpu {
        let between = |before: &Option<Snapshot>, after: &Option<Snapshot>| {
            before
                .as_ref()
                .zip(after.as_ref())
                .map(|(before, after)| Usage::between(before, after))
        };
        Cpu {
            window,
            server: self
                .nodes
                .as_ref()
                .zip(after.nodes.as_ref())
                .map(|(before, after)| {
                    before
                        .iter()
                        .zip(after)
                        .map(|(before, after)| Usage::between(before, after))
                        .collect()
                }),
            nats: between(&self.nats, &after.nats),
            bench: between(&self.bench, &after.bench),
        }
    }
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
    let errors: Vec<&str> = ingested.errors().collect();
    Results {
        posts: posts.len(),
        post_bytes: posts.bytes(),
        expected: posts.expected_count(),
        deliveries: reports.iter().map(|r| r.expected).sum(),
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
            .map(|r| r.expected.saturating_sub(r.received))
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

    /// `sluice bench ARGS…` as the command line parses it.
    fn parse(args: &[&str]) -> Result<BenchArgs, clap::Error> {
        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(flatten)]
            bench: BenchArgs,
        }
        <Cli as clap::Parser>::try_parse_from(std::iter::once("bench").chain(args.iter().copied()))
            .map(|cli| cli.bench)
    }

    fn cluster_of(args: &[&str]) -> Result<Option<u32>, clap::Error> {
        Ok(match parse(args)?.benchmark {
            Benchmark::Powertrack(a) => a.run.cluster,
            Benchmark::Firehose(a) => a.run.cluster,
            Benchmark::Powerstream(a) => a.run.cluster,
        })
    }

    #[test]
    fn cluster_takes_a_node_count_and_excludes_url() {
        assert_eq!(cluster_of(&["powertrack"]).expect("parses"), None);
        assert_eq!(
            cluster_of(&["powertrack", "--cluster", "3"]).expect("parses"),
            Some(3)
        );
        assert_eq!(
            cluster_of(&["firehose", "--cluster", "1"]).expect("parses"),
            Some(1)
        );
        assert_eq!(
            cluster_of(&["powerstream", "--cluster", "2"]).expect("parses"),
            Some(2)
        );
        for bad in ["0", "-1", "three", ""] {
            assert!(
                cluster_of(&["powertrack", "--cluster", bad]).is_err(),
                "{bad}"
            );
        }
        let both = cluster_of(&[
            "powertrack",
            "--cluster",
            "3",
            "--url",
            "http://127.0.0.1:8080",
            "--admin-token",
            "t",
        ])
        .expect_err("--cluster and --url conflict");
        assert_eq!(both.kind(), clap::error::ErrorKind::ArgumentConflict);
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
