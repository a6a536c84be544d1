//! `sluice bench powertrack|firehose|powerstream|v2|connections`: the flags, the help and
//! the exit codes of the end-to-end load generator and latency benchmark, which is the
//! `sluice-bench` library (`connections`, the cost of many held connections, has flags
//! and a flow of its own: [`connections`](sluice_bench::connections)). Flags are parsed by clap into [`BenchArgs`], checked and turned into the
//! library's [`Config`] ([`config`]), and the run's [`Report`] is printed as text or, with
//! `--json`, as one JSON object.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand, ValueEnum};
use sluice_bench::connections::{Api, ConnectionsConfig};
use sluice_bench::products::{
    Firehose, POWERSTREAM_CONNECTIONS, POWERSTREAM_RULES, Powerstream, Powertrack, V2,
    V2_CONNECTIONS_PER_APP, V2_MAX_RULES_PER_APP,
};
use sluice_bench::{Config, Pacing, Product, Report, Serve, ServerChoice};
use url::Url;

use crate::client::http::TlsArgs;
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

/// The part of every benchmark's help after its own: the server, measurement, exit codes.
macro_rules! common_help {
    () => {
        "
By default the bench starts `sluice serve` itself (this executable, or another build with
--server-exe, on 127.0.0.1 with a free port, a temporary data dir and a fresh admin token)
and stops it at the end or on Ctrl-C. It passes on none of the SLUICE_* settings of its
environment; --server-arg adds flags of yours (e.g. --server-arg=--match-threads=1), and
the report names them, and another build by its path. With --url and --admin-token it
uses a running server instead, in the account 'sluice-bench' (user 'bench'), and deletes
what it created there afterwards.

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

The cpu line gives what each process used, in % of one core over the run (the server's
busiest threads by name), how long their threads waited for a CPU, and how busy the
machine's cores were, in % of all of them (all the cores /proc/stat counts: in a
container, the host's). At 90 % busy or more a note says that the latency includes
waiting for a CPU; to tell sluice's latency from the machine's limit, lower --rate or run
the server on another machine (--url).

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

const V2_HELP: &str = concat!(
    "\
The X API v2 filtered stream (/2/tweets/search/stream) at PowerTrack's shape. The bench
creates the apps 'bench-v2-1' ... 'bench-v2-N' in the account (apps cannot be deleted; on
a running server the bench deletes their streams and rules afterwards), adds the rules
through the v2 rules API (1,000 per request; generated rule i goes to app i mod N), and
only then connects: the v2 filtered stream refuses a connect while the app has no rules.
Connection j reads with app j mod N's bearer token, so each connection expects exactly
the posts its own app's rules match. An app's stream holds 2 connections and 25,000
rules, so there is at least one app per 2 connections (the default).

Every connection asks for gzip and, unless --no-expansions, for
  tweet.fields=created_at,author_id,entities,public_metrics&expansions=author_id
  &user.fields=username,public_metrics
so the server converts every delivered post to its v2 line with the author in
`includes.users`. The reader finds each post by the `data.id` of its line.

The verdict compares the run with PowerTrack's target (the same matches in another
shape): 5,000 posts/s ingested (1 % tolerance), 1,000 rules, 100 connections,
p99 < 20 ms, nothing lost.
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
    /// X API v2 filtered stream end to end: v2 rules API → ingest → match → gzip v2 lines
    /// with field expansion, with latency and loss.
    #[command(after_help = V2_HELP)]
    V2(V2Args),
    /// Many held connections: the server's memory per idle connection, whether it comes
    /// back after they close, and the latency of a post delivered to all of them.
    #[command(after_help = CONNECTIONS_HELP)]
    Connections(ConnectionsArgs),
}

const CONNECTIONS_HELP: &str = "\
The bench raises its own open-files limit to the system's hard limit (a server it starts
inherits it) and stops at once, saying how to raise it, when the hard limit cannot hold
the connections. It starts `sluice serve` (this executable, or --server-exe to compare
builds), creates the streams and opens the connections in steps, 1,000 then all, 64
connects at a time: PowerTrack connections go to streams of 50 (under X's 60 connects per
minute per stream), each with one rule every bench post matches; Powerstream connections
share the account's Powerstream, whose connection cap the bench raises through the admin
API. Each connection is one task of the bench reading and decoding its body.

It reads the server's resident memory (VmRSS in /proc/PID/status) before the first
connection, after each step and once every connection has closed (waiting up to 30 s for
the memory to come back; at the start and at the end also split into anonymous and
file-backed memory, RssAnon and RssFile), with the server's threads at each reading (a
burst of connections that makes the server start threads shows there), then ingests
--posts posts one at a time and times the arrival of each on every connection, from the
start of its ingest request. With --url the server's memory is unknown and only the
latency is measured.

With --cycles N it does all of that N times over, each time with new connections and
new posts, and reads the memory after each closing (a later cycle's memory per
connection is over the closing before it). Memory that every cycle keeps grows from one
closing to the next; what only the first cycle leaves (the executable's code run for the
first time, the allocator's bookkeeping for the peak) stays put. A PowerTrack cycle
starts a minute after the last one's connects, in a new window of X's connect limit.
Arrivals, losses and latency count every cycle; the open time, the memory per idle
connection (and its target), the bench's memory and the CPU while delivering are the
first cycle's. It needs a server the bench starts, and stops when the server still
counts connections open 30 s after a closing.

The verdict compares the run with the project's targets: at most 64 KiB of server memory
per idle connection, memory back within 10 % of its start after closing, p99 of a post
to every connection < 100 ms, every connection opened and got every post once.

Exit codes:
  0  every connection opened and got every post exactly once
  1  the bench could not run (message on stderr)
  2  connections failed or posts were lost, duplicated or unexpected
  130 interrupted";

/// Flags of `sluice bench connections`.
#[derive(Debug, Args)]
struct ConnectionsArgs {
    /// Stream connections to hold at once.
    #[arg(long, value_name = "N", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    connections: u32,

    /// The connections' API.
    #[arg(long, value_enum, default_value_t = ConnectionsApi::Powertrack)]
    product: ConnectionsApi,

    /// What the connections ask for (PowerTrack streams are gzip only).
    #[arg(long, value_enum, default_value_t = Encoding::Gzip)]
    encoding: Encoding,

    /// Posts delivered to every connection, one at a time.
    #[arg(long, value_name = "P", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1_000))]
    posts: u32,

    /// Open the connections, give them the posts and close them this many times (1 to 10),
    /// with fresh connections and posts each time. The memory after each closing is
    /// reported, and the return target is judged after the last.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10))]
    cycles: u32,

    #[command(flatten)]
    serve: ServeArgs,

    /// Use the running server at this base URL instead of starting one (its memory is then
    /// unknown).
    #[arg(long, value_name = "BASE", requires = "admin_token")]
    url: Option<Url>,

    /// The admin token of the server given with --url.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SLUICE_ADMIN_TOKEN",
        hide_env_values = true,
        // Generated tokens may begin with `-`.
        allow_hyphen_values = true
    )]
    admin_token: Option<String>,

    #[command(flatten)]
    tls: TlsArgs,

    /// Print the report as one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

/// The API of the connections bench.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ConnectionsApi {
    /// PowerTrack streams.
    Powertrack,
    /// The account's Powerstream.
    Powerstream,
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

/// Flags of `sluice bench v2`.
#[derive(Debug, Args)]
struct V2Args {
    /// Realistic rules (sluice-synth's rule mix, keeping the rules the v2 dialect allows),
    /// split evenly over the apps.
    #[arg(long, value_name = "N", default_value_t = 1_000)]
    rules: usize,

    /// Stream connections held open, spread evenly over the apps (2 per app at most),
    /// each receiving every post its app's rules match.
    #[arg(long, value_name = "C", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    connections: u32,

    /// Apps in the bench account, each with its own filtered stream and rules, from one per
    /// 2 connections to one per connection [default: one per 2 connections].
    #[arg(long, value_name = "A", value_parser = clap::value_parser!(u32).range(1..=10_000))]
    apps: Option<u32>,

    /// Read X's default v2 line (id, text, edit_history_tweet_ids) instead of asking for
    /// fields and the author expansion.
    #[arg(long)]
    no_expansions: bool,

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

/// How the bench starts a server of its own (not with --url).
#[derive(Debug, Args)]
struct ServeArgs {
    /// The sluice executable whose `serve` the bench starts [default: this one]; e.g. an
    /// older build, to compare. A path (a bare name is a file in the current directory,
    /// not looked up on PATH); the report names the file it resolves to.
    #[arg(long, value_name = "PATH", conflicts_with = "url")]
    server_exe: Option<std::path::PathBuf>,

    /// A flag for the `sluice serve` the bench starts, after the bench's own (listen
    /// address, data dir, datacenter, NATS URL, which cannot be given again); repeat for
    /// more, e.g. `--server-arg=--match-threads=1`. The server's SLUICE_* settings in the
    /// environment are not passed on: this is how a run changes them.
    #[arg(
        long = "server-arg",
        value_name = "FLAG",
        allow_hyphen_values = true,
        conflicts_with = "url"
    )]
    server_args: Vec<String>,
}

impl ServeArgs {
    /// How the bench starts its server, as the flags say.
    fn serve(&self) -> anyhow::Result<Serve> {
        Ok(Serve {
            exe: match &self.server_exe {
                // Resolved, so that the report names the very file that runs, and tells
                // another build from this one whatever path reached it.
                Some(exe) => std::fs::canonicalize(exe)
                    .with_context(|| format!("--server-exe {}", exe.display()))?,
                None => sluice_exe()?,
            },
            args: self.server_args.clone(),
        })
    }
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
        hide_env_values = true,
        // Generated tokens may begin with `-`.
        allow_hyphen_values = true
    )]
    admin_token: Option<String>,

    #[command(flatten)]
    serve: ServeArgs,

    #[command(flatten)]
    tls: TlsArgs,

    /// Print the report as one JSON object (the same figures as the text report) instead
    /// of text.
    #[arg(long)]
    json: bool,
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

/// The checked configuration of `sluice bench connections`.
fn connections_config(args: &ConnectionsArgs) -> anyhow::Result<ConnectionsConfig> {
    let api = match args.product {
        ConnectionsApi::Powertrack => Api::Powertrack,
        ConnectionsApi::Powerstream => Api::Powerstream,
    };
    if api == Api::Powertrack && args.encoding == Encoding::Identity {
        bail!(
            "PowerTrack streams are gzip only (X refuses a connect without \
             `Accept-Encoding: gzip`): use --encoding gzip, or --product powerstream for \
             identity"
        );
    }
    if args.url.is_some() && args.cycles > 1 {
        bail!(
            "--cycles above 1 needs a server the bench starts: between cycles it reads the \
             server's memory, which it cannot for --url"
        );
    }
    let server = match (&args.url, &args.admin_token) {
        (Some(url), Some(token)) => ServerChoice::Running {
            base: base_url(url),
            admin_token: token.clone(),
        },
        _ => ServerChoice::Spawn(args.serve.serve()?),
    };
    Ok(ConnectionsConfig {
        connections: args.connections as usize,
        api,
        encoding: match args.encoding {
            Encoding::Identity => sluice_bench::Encoding::Identity,
            Encoding::Gzip => sluice_bench::Encoding::Gzip,
        },
        posts: args.posts as usize,
        cycles: args.cycles as usize,
        server,
        tls: args.tls.clone(),
    })
}

/// The checked configuration of the run `args` ask for.
fn config(args: &BenchArgs) -> anyhow::Result<Config> {
    let (product, rate, run) = match &args.benchmark {
        Benchmark::Connections(_) => bail!("`sluice bench connections` has its own flow"),
        Benchmark::Powertrack(a) => {
            let connections = a.connections as usize;
            let streams = match a.streams {
                Some(s) if s > a.connections => bail!(
                    "--streams {s} is more than --connections {}: every stream needs a \
                     connection",
                    a.connections
                ),
                Some(s) => s as usize,
                None => Powertrack::default_streams(connections),
            };
            let product = Powertrack {
                rules: a.rules,
                connections,
                streams,
            };
            (Product::Powertrack(product), a.rate, &a.run)
        }
        Benchmark::Firehose(a) => (Product::Firehose(Firehose), a.rate, &a.run),
        Benchmark::Powerstream(a) => {
            let product = Powerstream {
                rules: a.rules,
                connections: a.connections as usize,
                encoding: match a.encoding {
                    Encoding::Identity => sluice_bench::Encoding::Identity,
                    Encoding::Gzip => sluice_bench::Encoding::Gzip,
                },
            };
            (Product::Powerstream(product), a.rate, &a.run)
        }
        Benchmark::V2(a) => (Product::V2(v2(a)?), a.rate, &a.run),
    };
    let pacing = Pacing {
        rate,
        duration: run.duration,
        batch_interval: run.batch_interval,
        drain: run.drain,
        seed: run.seed,
    };
    if pacing.posts() == 0 {
        bail!("--rate × --duration is less than one post");
    }
    let server = match (&run.url, &run.admin_token, run.cluster) {
        (Some(url), Some(token), _) => ServerChoice::Running {
            base: base_url(url),
            admin_token: token.clone(),
        },
        (_, _, Some(nodes)) => ServerChoice::Cluster {
            serve: run.serve.serve()?,
            nodes: nodes as usize,
        },
        _ => ServerChoice::Spawn(run.serve.serve()?),
    };
    Ok(Config {
        product,
        pacing,
        server,
        tls: run.tls.clone(),
    })
}

/// The v2 benchmark `args` ask for, refusing apps that could not hold their share of the
/// connections or the rules.
fn v2(args: &V2Args) -> anyhow::Result<V2> {
    let connections = args.connections as usize;
    let apps = match args.apps {
        Some(a) if a > args.connections => bail!(
            "--apps {a} is more than --connections {}: every app needs a connection",
            args.connections
        ),
        Some(a) if (a as usize) < V2::default_apps(connections) => bail!(
            "--apps {a} cannot hold --connections {connections}: an app's filtered stream \
             allows {V2_CONNECTIONS_PER_APP} connections"
        ),
        Some(a) => a as usize,
        None => V2::default_apps(connections),
    };
    // Each app may also get the share rule.
    let per_app = args.rules.div_ceil(apps) + 1;
    if per_app > V2_MAX_RULES_PER_APP {
        bail!(
            "--rules {} over {apps} apps is {per_app} rules per app (with the share rule), \
             over the v2 filtered stream's {V2_MAX_RULES_PER_APP}: use more --apps",
            args.rules
        );
    }
    Ok(V2 {
        rules: args.rules,
        connections,
        apps,
        expansions: !args.no_expansions,
    })
}

/// This very executable, whose `serve` the bench starts.
fn sluice_exe() -> anyhow::Result<std::path::PathBuf> {
    std::env::current_exe().context("finding the sluice executable")
}

/// Whether `--json` was given.
fn wants_json(args: &BenchArgs) -> bool {
    match &args.benchmark {
        Benchmark::Powertrack(a) => a.run.json,
        Benchmark::Firehose(a) => a.run.json,
        Benchmark::Powerstream(a) => a.run.json,
        Benchmark::V2(a) => a.run.json,
        Benchmark::Connections(a) => a.json,
    }
}

/// Runs `sluice bench` and returns its exit code.
pub fn run(args: &BenchArgs) -> ExitCode {
    if let Benchmark::Connections(connections) = &args.benchmark {
        return run_connections(connections);
    }
    let config = match config(args) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("sluice bench: error: {e:#}");
            return ExitCode::from(EXIT_ERROR);
        }
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
                    report = sluice_bench::run(&config) => report.map(Some),
                    () = stop_requested() => {
                        // Dropping the run's future has stopped a spawned server.
                        eprintln!("sluice bench: interrupted");
                        Ok(None)
                    }
                }
            })
        })
        .and_then(|report| match report {
            Some(report) => print(&report, wants_json(args)).map(|()| Some(report)),
            None => Ok(None),
        });
    match result {
        Ok(Some(report)) if report.succeeded() => ExitCode::from(EXIT_OK),
        Ok(Some(_)) => ExitCode::from(EXIT_INEXACT),
        Ok(None) => ExitCode::from(EXIT_INTERRUPTED),
        Err(e) => {
            eprintln!("sluice bench: error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Runs `sluice bench connections` and returns its exit code.
fn run_connections(args: &ConnectionsArgs) -> ExitCode {
    let result = connections_config(args).and_then(|config| {
        // One task per connection on one worker per core: no thread per connection.
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")?
            .block_on(async {
                tokio::select! {
                    report = sluice_bench::connections::run(&config) => report.map(Some),
                    () = stop_requested() => {
                        eprintln!("sluice bench: interrupted");
                        Ok(None)
                    }
                }
            })
    });
    let printed = result.and_then(|report| match report {
        Some(report) => {
            let text = if args.json {
                let mut json = serde_json::to_string_pretty(&report)?;
                json.push('\n');
                json
            } else {
                report.to_text()
            };
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .context("writing the report")?;
            Ok(Some(report))
        }
        None => Ok(None),
    });
    match printed {
        Ok(Some(report)) if report.succeeded() => ExitCode::from(EXIT_OK),
        Ok(Some(_)) => ExitCode::from(EXIT_INEXACT),
        Ok(None) => ExitCode::from(EXIT_INTERRUPTED),
        Err(e) => {
            eprintln!("sluice bench: error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Prints the report on stdout: text, or one JSON object followed by a line end.
fn print(report: &Report, json: bool) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    let written = if json {
        serde_json::to_writer_pretty(&mut out, report)
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n"))
    } else {
        out.write_all(report.to_text().as_bytes())
    };
    written
        .and_then(|()| out.flush())
        .context("writing the report")
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
            Benchmark::V2(a) => a.run.cluster,
            Benchmark::Connections(_) => None,
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

    /// Another build's executable, in a temporary dir: the path given to --server-exe (not
    /// canonical) and the file it resolves to.
    struct AnotherBuild {
        _dir: tempfile::TempDir,
        given: String,
        resolved: std::path::PathBuf,
    }

    impl AnotherBuild {
        fn new() -> Self {
            let dir = tempfile::tempdir().expect("a temporary dir");
            std::fs::write(dir.path().join("sluice-before"), b"").expect("a file");
            let given = format!("{}/./sluice-before", dir.path().display());
            let resolved = std::fs::canonicalize(&given).expect("resolves");
            Self {
                _dir: dir,
                given,
                resolved,
            }
        }
    }

    #[test]
    fn a_server_exe_that_is_not_there_is_refused_by_name() {
        let missing = config_of(&["powertrack", "--server-exe", "/nonexistent/sluice-old"]);
        let error = missing.expect_err("refused");
        assert!(
            error.starts_with("--server-exe /nonexistent/sluice-old: "),
            "{error}"
        );
    }

    /// The configuration `sluice bench ARGS…` runs, or its error text.
    fn config_of(args: &[&str]) -> Result<Config, String> {
        config(&parse(args).expect("parses")).map_err(|e| format!("{e:#}"))
    }

    #[test]
    fn flags_become_a_checked_configuration() {
        let default = config_of(&["powertrack"]).expect("valid");
        assert_eq!(
            default.product,
            Product::Powertrack(Powertrack {
                rules: 1_000,
                connections: 100,
                streams: 50,
            })
        );
        assert_eq!(default.pacing.posts(), 100_000);
        assert!(matches!(&default.server, ServerChoice::Spawn(serve) if serve.args.is_empty()));
        let one = config_of(&["powertrack", "--connections", "3", "--streams", "3"]);
        assert!(matches!(
            one.expect("valid").product,
            Product::Powertrack(Powertrack { streams: 3, .. })
        ));
        assert_eq!(
            config_of(&["powertrack", "--connections", "3", "--streams", "4"]).err(),
            Some(
                "--streams 4 is more than --connections 3: every stream needs a connection"
                    .to_owned()
            )
        );
        assert_eq!(
            config_of(&["firehose", "--rate", "1", "--duration", "400ms"]).err(),
            Some("--rate × --duration is less than one post".to_owned())
        );
        let gzip = config_of(&["powerstream", "--encoding", "gzip", "--cluster", "2"]);
        let gzip = gzip.expect("valid");
        assert_eq!(
            gzip.product,
            Product::Powerstream(Powerstream {
                rules: 1_000,
                connections: 2,
                encoding: sluice_bench::Encoding::Gzip,
            })
        );
        assert!(matches!(
            gzip.server,
            ServerChoice::Cluster { nodes: 2, .. }
        ));
        // Flags for the server, hyphens and all, with another build.
        let before = AnotherBuild::new();
        let flagged = config_of(&[
            "powertrack",
            "--server-arg=--match-threads=1",
            "--server-arg",
            "--replay-priority",
            "--server-arg",
            "19",
            "--server-exe",
            &before.given,
        ]);
        match flagged.expect("valid").server {
            ServerChoice::Spawn(serve) => {
                assert_eq!(serve.exe, before.resolved);
                assert_eq!(serve.args, ["--match-threads=1", "--replay-priority", "19"]);
            }
            other => panic!("{other:?}"),
        }
        let clustered = config_of(&[
            "firehose",
            "--cluster",
            "2",
            "--server-arg=--match-threads=2",
        ]);
        match clustered.expect("valid").server {
            ServerChoice::Cluster { serve, nodes: 2 } => {
                assert_eq!(serve.args, ["--match-threads=2"])
            }
            other => panic!("{other:?}"),
        }
        // A server the bench does not start takes no flags from it.
        let running = ["firehose", "--url", "http://h/", "--admin-token", "t"];
        for extra in [&["--server-arg=-q"][..], &["--server-exe", "x"]] {
            let bad = [&running[..], extra].concat();
            assert!(parse(&bad).is_err(), "{bad:?}");
        }
        let running = config_of(&["firehose", "--url", "http://h/x", "--admin-token", "t"]);
        match running.expect("valid").server {
            ServerChoice::Running { base, admin_token } => {
                assert_eq!((base.as_str(), admin_token.as_str()), ("http://h/x/", "t"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn v2_flags_become_apps_that_hold_the_connections_and_rules() {
        let default = config_of(&["v2"]).expect("valid");
        assert_eq!(
            default.product,
            Product::V2(V2 {
                rules: 1_000,
                connections: 100,
                apps: 50,
                expansions: true,
            })
        );
        let bare = config_of(&["v2", "--connections", "3", "--apps", "3", "--no-expansions"]);
        assert_eq!(
            bare.expect("valid").product,
            Product::V2(V2 {
                rules: 1_000,
                connections: 3,
                apps: 3,
                expansions: false,
            })
        );
        let refused = [
            (
                &["v2", "--connections", "2", "--apps", "3"][..],
                "--apps 3 is more than --connections 2",
            ),
            (
                &["v2", "--connections", "5", "--apps", "2"][..],
                "--apps 2 cannot hold --connections 5",
            ),
            (
                &["v2", "--connections", "2", "--rules", "25000"][..],
                "25001 rules per app",
            ),
        ];
        for (args, want) in refused {
            let e = config_of(args).expect_err("refused");
            assert!(e.contains(want), "{args:?}: {e}");
        }
        assert!(config_of(&["v2", "--connections", "2", "--rules", "24999"]).is_ok());
    }

    /// The configuration `sluice bench connections ARGS…` runs, or its error text.
    fn connections_of(args: &[&str]) -> Result<ConnectionsConfig, String> {
        let all: Vec<&str> = std::iter::once("connections")
            .chain(args.iter().copied())
            .collect();
        match parse(&all).map_err(|e| e.to_string())?.benchmark {
            Benchmark::Connections(a) => connections_config(&a).map_err(|e| format!("{e:#}")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn connections_flags_become_a_checked_configuration() {
        let default = connections_of(&[]).expect("valid");
        assert_eq!(
            (
                default.connections,
                default.api,
                default.encoding,
                default.posts,
                default.cycles
            ),
            (10_000, Api::Powertrack, sluice_bench::Encoding::Gzip, 20, 1)
        );
        assert!(matches!(default.server, ServerChoice::Spawn(_)));
        let build = AnotherBuild::new();
        let before = connections_of(&[
            "--connections",
            "1000",
            "--product",
            "powerstream",
            "--encoding",
            "identity",
            "--posts",
            "5",
            "--cycles",
            "3",
            "--server-exe",
            &build.given,
        ])
        .expect("valid");
        assert_eq!(
            (
                before.connections,
                before.api,
                before.encoding,
                before.posts,
                before.cycles
            ),
            (
                1_000,
                Api::Powerstream,
                sluice_bench::Encoding::Identity,
                5,
                3
            )
        );
        match before.server {
            ServerChoice::Spawn(serve) => assert_eq!(serve.exe, build.resolved),
            other => panic!("{other:?}"),
        }
        let refused =
            connections_of(&["--url", "http://h/", "--admin-token", "t", "--cycles", "2"])
                .expect_err("refused");
        assert!(
            refused.starts_with("--cycles above 1 needs a server"),
            "{refused}"
        );
        let refused = connections_of(&["--encoding", "identity"]).expect_err("refused");
        assert!(
            refused.starts_with("PowerTrack streams are gzip only"),
            "{refused}"
        );
        for bad in [
            &["--connections", "0"][..],
            &["--connections", "100001"],
            &["--posts", "0"],
            &["--cycles", "0"],
            &["--cycles", "11"],
            &[
                "--url",
                "http://h/",
                "--admin-token",
                "t",
                "--server-exe",
                "x",
            ],
        ] {
            assert!(connections_of(bad).is_err(), "{bad:?}");
        }
        let running = connections_of(&["--url", "http://h:9", "--admin-token", "t"]);
        assert!(matches!(
            running.expect("valid").server,
            ServerChoice::Running { .. }
        ));
        assert!(wants_json(
            &parse(&["connections", "--json"]).expect("parses")
        ));
    }

    #[test]
    fn json_is_asked_for_with_a_flag() {
        assert!(!wants_json(&parse(&["powertrack"]).expect("parses")));
        assert!(wants_json(&parse(&["firehose", "--json"]).expect("parses")));
    }
}
