//! `sluice serve`: runs the server, as `docs/operator-interface.md` specifies.
//!
//! Settings come from flags, `SLUICE_<FLAG>` environment variables (clap reads both into
//! [`ServeArgs`]) and a TOML file (`--config`); [`resolve`] merges them, flag > env > file >
//! default, into a [`Config`]. [`run`] then binds the listener, builds the server's
//! [`Settings`] (its public URL from the bound address), opens the state, provisions the
//! demo if asked, prints the start banner on stdout and serves until SIGINT or SIGTERM.
//! Logs go to stderr.
//!
//! The banner's first line is `sluice <version> listening on <URL>` and, when the admin
//! token was generated at this start, one line is `admin token: <TOKEN>`; scripts and
//! tests parse these two.

use std::io::IsTerminal as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::{NonZeroU32, NonZeroUsize};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Args;
use clap::builder::BoolishValueParser;
use serde::Deserialize;
use sluice_cluster::source_lease::SourceLeases;
use sluice_server::auth::AdminToken;
use sluice_server::background::Priority;
use sluice_server::intercept::Intercept;
use sluice_server::settings::{
    DEFAULT_POST_LOG_RETENTION, DEFAULT_REPLAY_EMBARGO, MAX_POST_LOG_RETENTION,
    MIN_POST_LOG_RETENTION,
};
use sluice_server::{AppState, ServeOptions, Settings, StoreLocation, demo, tls};
use sluice_source::in_process::InProcess;
use sluice_source::spec::SourceSpec;
use tokio::net::TcpListener;

/// Default of `--listen`.
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default of `--data-dir`.
const DEFAULT_DATA_DIR: &str = "./sluice-data";
/// Default of `--datacenter`.
const DEFAULT_DATACENTER: &str = "local";
/// Default of `--demo-rate`, posts per second.
const DEFAULT_DEMO_RATE: f64 = 50.0;

const AFTER_HELP: &str = "\
Every flag can also be set with an environment variable SLUICE_<FLAG> (SLUICE_LISTEN,
SLUICE_DATA_DIR, SLUICE_DEMO=true, ...) and in a TOML file given with --config, whose keys
are the flag names with '_' for '-':

  listen = \"0.0.0.0:8443\"
  data_dir = \"/var/lib/sluice\"
  tls_self_signed = true
  demo = true
  demo_rate = 200
  post_log_retention = \"48h\"
  post_log_max_bytes = \"200GiB\"
  replay_embargo = \"30m\"
  replay_priority = \"idle\"
  replay_rate = 5000
  nats = \"nats://127.0.0.1:4222\"
  source = \"jetstream=wss://jetstream2.us-east.bsky.network\"

Flags win over environment variables, which win over the file. Relative paths in the file
are relative to the file's directory. On/off flags take an optional value: --demo,
--demo=false, SLUICE_DEMO=1.

At start sluice prints a banner on stdout; its first line is
  sluice <version> listening on <URL>
and, when the admin token was generated now, one line is
  admin token: <TOKEN>
Logs go to stderr; RUST_LOG sets the filter (default: info).

SIGINT (Ctrl-C) or SIGTERM stops the server cleanly: open streams receive X's
operational-disconnect message, connections get a few seconds to close, the exit code is 0.";

/// Flags of `sluice serve`. Every value is optional here: what is missing is taken from the
/// config file, then from the defaults (see [`resolve`]).
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (keys: flag names with '_' for '-').
    #[arg(long, env = "SLUICE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Address of the HTTP(S) listener for every API; port 0 picks a free port
    /// [default: 127.0.0.1:8080].
    #[arg(long, env = "SLUICE_LISTEN", value_name = "ADDR")]
    listen: Option<String>,

    /// Directory of the embedded store (SQLite), the admin token and the self-signed
    /// certificate; created if missing [default: ./sluice-data].
    #[arg(long, env = "SLUICE_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,

    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long, env = "SLUICE_TLS_CERT", value_name = "PEM")]
    tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert.
    #[arg(long, env = "SLUICE_TLS_KEY", value_name = "PEM")]
    tls_key: Option<PathBuf>,

    /// Serve HTTPS with a certificate generated for localhost and 127.0.0.1, written to
    /// DATA_DIR/tls/cert.pem so that clients can trust it (reused on later starts).
    #[arg(
        long,
        env = "SLUICE_TLS_SELF_SIGNED",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = BoolishValueParser::new()
    )]
    tls_self_signed: Option<bool>,

    /// The datacenter this node serves (Powerstream localDcOnly) [default: local].
    #[arg(long, env = "SLUICE_DATACENTER", value_name = "NAME")]
    datacenter: Option<String>,

    /// Make a fresh install useful at once: account 'demo' (user demo / password demo),
    /// a PowerTrack and a Decahose stream 'prod', a Powerstream token, example rules and
    /// a synthetic firehose; prints URLs and curl commands. Safe to repeat on restarts.
    #[arg(
        long,
        env = "SLUICE_DEMO",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = BoolishValueParser::new()
    )]
    demo: Option<bool>,

    /// Posts per second of the demo firehose [default: 50].
    #[arg(long, env = "SLUICE_DEMO_RATE", value_name = "N")]
    demo_rate: Option<f64>,

    /// Bearer token of the admin and ingest APIs. Without it, a token is generated on
    /// first start, printed once and stored in DATA_DIR/admin-token, so restarts keep it.
    #[arg(
        long,
        env = "SLUICE_ADMIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true,
        // Generated tokens may begin with `-`.
        allow_hyphen_values = true
    )]
    admin_token: Option<String>,

    /// Base URL printed in stream and rules URLs, when clients reach the server through a
    /// proxy [default: the listener's scheme and address].
    #[arg(long, env = "SLUICE_PUBLIC_URL", value_name = "URL")]
    public_url: Option<String>,

    /// How long accepted posts are kept in the post log (DATA_DIR/postlog, or the cluster's
    /// JetStream posts stream) for backfill, recovery and replay: 5m to 120h (5 days),
    /// e.g. 2h, 48h, 120h [default: 24h, Recovery's window].
    #[arg(long, env = "SLUICE_POST_LOG_RETENTION", value_name = "DURATION")]
    post_log_retention: Option<String>,

    /// Disk budget of the post log, e.g. 500MB, 20GiB, 2TB (at least 1MiB). Over it the
    /// oldest segments are dropped even before the retention ends, and recovery windows
    /// that start before the oldest post still held are refused. Checked every 10 s; see
    /// the README for the disk cost per day at a given rate [default: none, the retention
    /// alone bounds the log].
    #[arg(long, env = "SLUICE_POST_LOG_MAX_BYTES", value_name = "SIZE")]
    post_log_max_bytes: Option<String>,

    /// Also act as an HTTPS proxy for X's API hosts (api.twitter.com, api.x.com,
    /// gnip-stream.twitter.com, ...), for clients that hard-code them: point
    /// HTTPS_PROXY at this listener (http://ADDR) and trust DATA_DIR/tls/ca.pem, a CA made on
    /// the first start whose certificates name only x.com, twitter.com and gnip.com hosts.
    /// CONNECT to any other host is refused.
    #[arg(
        long,
        env = "SLUICE_INTERCEPT",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        value_parser = BoolishValueParser::new()
    )]
    intercept: Option<bool>,

    /// Cluster mode: join the nodes sharing this NATS JetStream server (2.9 or later).
    /// Accounts, streams and rules then live in JetStream (this node keeps a cache) and
    /// posts ingested at any node reach every node's clients [default: single node].
    #[arg(long, env = "SLUICE_NATS", value_name = "URL")]
    nats: Option<String>,

    /// Threads that match ingested posts against the streams' rules and compress what gzip
    /// connections receive; each connection still gets its posts in ingest order
    /// [default: the cores available].
    #[arg(long, env = "SLUICE_MATCH_THREADS", value_name = "N")]
    match_threads: Option<NonZeroUsize>,

    /// Consume a post source into this server: KIND=URL, where the one kind is
    /// `jetstream`, Bluesky's Jetstream (e.g. jetstream=wss://jetstream2.us-east.bsky.network;
    /// add ?compress=true for zstd frames). Its posts arrive in X's native format through
    /// the ingest path, deletes as compliance events; its cursor is kept in
    /// DATA_DIR/sources/jetstream.cursor, so a restart resumes where it stopped. In
    /// cluster mode one node at a time consumes it (a lease in NATS, taken over within
    /// seconds when its holder dies) and the cursor is kept in NATS. With --demo, the demo account, streams and rules are set up but the synthetic firehose
    /// is not started [default: none].
    #[arg(long, env = "SLUICE_SOURCE", value_name = "KIND=URL")]
    source: Option<String>,

    /// How old the end of a PowerTrack Replay window (toDate) must be; its start (fromDate)
    /// must be a minute older still. X's rule is 30 minutes; lower it, e.g. to 0s, to
    /// replay recent posts in tests [default: 30m].
    #[arg(long, env = "SLUICE_REPLAY_EMBARGO", value_name = "DURATION")]
    replay_embargo: Option<String>,

    /// The scheduling priority of the threads that run Replay jobs, which read the post
    /// log as fast as their clients take it: `idle` runs them only on cores live delivery
    /// leaves free (a replay waits while the server is saturated); a nice value from 1 to
    /// 19 shares the cores with live delivery in proportion (the higher, the less a replay
    /// gets), so a replay always progresses; 0 is the server's own priority. Linux only;
    /// elsewhere replays run at the server's priority [default: idle].
    #[arg(long, env = "SLUICE_REPLAY_PRIORITY", value_name = "idle|NICE")]
    replay_priority: Option<Priority>,

    /// The name --replay-priority had before it took `idle` (flag and environment
    /// variable), still read; --replay-priority wins.
    #[arg(
        long,
        env = "SLUICE_REPLAY_NICE",
        value_name = "idle|NICE",
        hide = true
    )]
    replay_nice: Option<Priority>,

    /// How many logged posts per second a PowerTrack Replay job reads at most; 0 reads as
    /// fast as the client takes them. X's Replay runs a little slower than real time; a
    /// job at full speed on a small machine slows live delivery [default: 5000].
    #[arg(long, env = "SLUICE_REPLAY_RATE", value_name = "POSTS_PER_S")]
    replay_rate: Option<u32>,
}

/// The `--config` file: the same settings as the flags, keys with `_`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_self_signed: Option<bool>,
    datacenter: Option<String>,
    demo: Option<bool>,
    demo_rate: Option<f64>,
    admin_token: Option<String>,
    public_url: Option<String>,
    post_log_retention: Option<String>,
    post_log_max_bytes: Option<String>,
    intercept: Option<bool>,
    nats: Option<String>,
    match_threads: Option<NonZeroUsize>,
    replay_embargo: Option<String>,
    replay_priority: Option<FilePriority>,
    /// The name `replay_priority` had before it took `idle`.
    replay_nice: Option<i32>,
    replay_rate: Option<u32>,
    source: Option<String>,
}

/// `replay_priority` in the file: `"idle"`, or a nice value as a number or a string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum FilePriority {
    Nice(i64),
    Text(String),
}

impl FileConfig {
    /// Reads and parses the file; relative paths in it become relative to its directory.
    fn load(path: &Path) -> anyhow::Result<FileConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        let mut file: FileConfig = toml::from_str(&text)
            .with_context(|| format!("parsing config file {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new(""));
        for p in [&mut file.data_dir, &mut file.tls_cert, &mut file.tls_key]
            .into_iter()
            .flatten()
        {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
        Ok(file)
    }
}

/// How the listener speaks.
#[derive(Debug, Clone, PartialEq)]
enum TlsChoice {
    /// Plain HTTP.
    Off,
    /// HTTPS with the operator's certificate and key.
    Files { cert: PathBuf, key: PathBuf },
    /// HTTPS with a generated certificate in `DATA_DIR/tls/`.
    SelfSigned,
}

/// The resolved settings of `sluice serve`.
#[derive(Debug, Clone, PartialEq)]
struct Config {
    listen: String,
    data_dir: PathBuf,
    tls: TlsChoice,
    datacenter: String,
    demo: bool,
    demo_rate: f64,
    admin_token: Option<String>,
    public_url: Option<String>,
    post_log_retention: Duration,
    /// `--post-log-max-bytes`, in bytes.
    post_log_max_bytes: Option<u64>,
    /// `--intercept`: CONNECT to X's API hosts is served.
    intercept: bool,
    nats: Option<String>,
    /// `--match-threads`.
    match_threads: usize,
    /// `--replay-embargo`.
    replay_embargo: Duration,
    /// `--replay-priority`.
    replay_priority: Priority,
    /// `--replay-rate` (`None`: unpaced).
    replay_rate: Option<NonZeroU32>,
    /// `--source`.
    source: Option<SourceSpec>,
}

/// Merges flags and environment (already in `args`) over the file over the defaults, and
/// checks the combination.
fn resolve(args: &ServeArgs, file: FileConfig) -> anyhow::Result<Config> {
    let tls_cert = args.tls_cert.clone().or(file.tls_cert);
    let tls_key = args.tls_key.clone().or(file.tls_key);
    let self_signed = args
        .tls_self_signed
        .or(file.tls_self_signed)
        .unwrap_or(false);
    let tls = match (tls_cert, tls_key, self_signed) {
        (None, None, false) => TlsChoice::Off,
        (None, None, true) => TlsChoice::SelfSigned,
        (Some(cert), Some(key), false) => TlsChoice::Files { cert, key },
        (Some(_), Some(_), true) => {
            bail!("--tls-self-signed cannot be combined with --tls-cert/--tls-key")
        }
        (Some(_), None, _) => bail!("--tls-cert needs --tls-key"),
        (None, Some(_), _) => bail!("--tls-key needs --tls-cert"),
    };
    let demo_rate = args
        .demo_rate
        .or(file.demo_rate)
        .unwrap_or(DEFAULT_DEMO_RATE);
    if !(demo_rate.is_finite() && demo_rate > 0.0) {
        bail!("--demo-rate must be a positive number of posts per second, not {demo_rate}");
    }
    let datacenter = args
        .datacenter
        .clone()
        .or(file.datacenter)
        .unwrap_or_else(|| DEFAULT_DATACENTER.to_owned());
    if datacenter.is_empty() {
        bail!("--datacenter must not be empty");
    }
    let post_log_retention = match args
        .post_log_retention
        .as_deref()
        .or(file.post_log_retention.as_deref())
    {
        None => DEFAULT_POST_LOG_RETENTION,
        Some(text) => parse_retention(text)?,
    };
    let post_log_max_bytes = args
        .post_log_max_bytes
        .as_deref()
        .or(file.post_log_max_bytes.as_deref())
        .map(parse_max_bytes)
        .transpose()?;
    let replay_embargo = match args
        .replay_embargo
        .as_deref()
        .or(file.replay_embargo.as_deref())
    {
        None => DEFAULT_REPLAY_EMBARGO,
        Some(text) => humantime::parse_duration(text.trim()).with_context(|| {
            format!("--replay-embargo: {text:?} is not a duration like 30m, 5m or 0s")
        })?,
    };
    if file.replay_priority.is_some() && file.replay_nice.is_some() {
        bail!(
            "the config file sets both replay_priority and replay_nice (its former name): \
             keep replay_priority"
        );
    }
    // The file's value as text, for the one parser the flag uses too.
    let file_priority = match (&file.replay_priority, file.replay_nice) {
        (Some(FilePriority::Text(text)), _) => Some(text.clone()),
        (Some(FilePriority::Nice(nice)), _) => Some(nice.to_string()),
        (None, nice) => nice.map(|nice| nice.to_string()),
    };
    let replay_priority = match (args.replay_priority.or(args.replay_nice), file_priority) {
        (Some(priority), _) => priority,
        (None, Some(text)) => text
            .parse()
            .map_err(|e| anyhow::anyhow!("--replay-priority: {e}"))?,
        (None, None) => Priority::DEFAULT,
    };
    let source = args
        .source
        .as_deref()
        .or(file.source.as_deref())
        .filter(|s| !s.is_empty())
        .map(|text| text.parse::<SourceSpec>())
        .transpose()
        .map_err(|e| anyhow::anyhow!("--source: {e}"))?;
    let nats = args.nats.clone().or(file.nats).filter(|u| !u.is_empty());
    Ok(Config {
        listen: args
            .listen
            .clone()
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_owned()),
        data_dir: args
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
        tls,
        datacenter,
        demo: args.demo.or(file.demo).unwrap_or(false),
        demo_rate,
        admin_token: args
            .admin_token
            .clone()
            .or(file.admin_token)
            .filter(|t| !t.is_empty()),
        public_url: args
            .public_url
            .clone()
            .or(file.public_url)
            .map(|u| u.trim_end_matches('/').to_owned()),
        post_log_retention,
        post_log_max_bytes,
        intercept: args.intercept.or(file.intercept).unwrap_or(false),
        nats,
        match_threads: args
            .match_threads
            .or(file.match_threads)
            .map_or_else(sluice_server::workers::available_cores, NonZeroUsize::get),
        replay_embargo,
        replay_priority,
        replay_rate: NonZeroU32::new(
            args.replay_rate
                .or(file.replay_rate)
                .unwrap_or(sluice_server::settings::DEFAULT_REPLAY_RATE),
        ),
        source,
    })
}

/// Runs `sluice serve`; returns 0 after a clean shutdown, 1 when the server cannot start.
pub fn run(args: &ServeArgs) -> ExitCode {
    init_logging();
    raise_fd_limit();
    let config = match args.config.as_deref().map(FileConfig::load).transpose() {
        Ok(file) => resolve(args, file.unwrap_or_default()),
        Err(e) => Err(e),
    };
    let result = config.and_then(|config| {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .thread_name("sluice-worker")
            .on_thread_park(crate::allocator::return_thread_cache)
            .build()
            .context("starting the async runtime")?
            .block_on(serve(config))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice serve: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Raises the open-files limit to the hard limit (each stream connection is a socket) and
/// logs it; a server that cannot is still usable with the limit it has.
fn raise_fd_limit() {
    match sluice_server::fd_limit::raise() {
        Ok(limit) => tracing::info!(
            open_files = limit.soft,
            was = limit.before,
            hard = limit.hard,
            "open-files limit (RLIMIT_NOFILE) raised to the hard limit: one file per \
             connection"
        ),
        Err(e) => tracing::warn!("could not raise the open-files limit (RLIMIT_NOFILE): {e}"),
    }
}

/// Logs to stderr, filtered by RUST_LOG (default: info); `sluice source` logs the same way.
pub(crate) fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Fails only if a subscriber is already installed, which then keeps logging.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}

/// Reads `--post-log-retention` (`10m`, `2h`, `1h 30m`, …) and checks its range.
fn parse_retention(text: &str) -> anyhow::Result<Duration> {
    let retention = humantime::parse_duration(text.trim()).with_context(|| {
        format!("--post-log-retention: {text:?} is not a duration like 10m, 2h or 24h")
    })?;
    if !(MIN_POST_LOG_RETENTION..=MAX_POST_LOG_RETENTION).contains(&retention) {
        bail!(
            "--post-log-retention must be between {} and {}, not {text}",
            humantime::format_duration(MIN_POST_LOG_RETENTION),
            humantime::format_duration(MAX_POST_LOG_RETENTION),
        );
    }
    Ok(retention)
}

/// The smallest `--post-log-max-bytes`: less would hold seconds of posts.
const MIN_POST_LOG_MAX_BYTES: u64 = 1 << 20;

/// Reads `--post-log-max-bytes` (`500MB`, `20GiB`, `2 TB`, a plain number of bytes).
fn parse_max_bytes(text: &str) -> anyhow::Result<u64> {
    let size: bytesize::ByteSize = text.trim().parse().map_err(|e| {
        anyhow::anyhow!("--post-log-max-bytes: {text:?} is not a size like 500MB or 20GiB ({e})")
    })?;
    if size.as_u64() < MIN_POST_LOG_MAX_BYTES {
        bail!("--post-log-max-bytes must be at least 1MiB, not {text}");
    }
    Ok(size.as_u64())
}

/// Runs the server until SIGINT/SIGTERM.
///
/// Long on purpose: start-up reads as the sequence an operator sees in the log (data dir,
/// TLS, store, cluster, listener, demo, banner) and shutdown as its reverse.
async fn serve(mut config: Config) -> anyhow::Result<()> {
    // Absolute, so that the printed paths (certificate, admin token) work from anywhere.
    config.data_dir = std::path::absolute(&config.data_dir)
        .with_context(|| format!("resolving {}", config.data_dir.display()))?;
    // Installed before anything is printed, so a signal sent as soon as the banner appears
    // already triggers the clean shutdown rather than the default action.
    let shutdown = ShutdownSignal::install()?;

    let (admin_token, generated_token) = match &config.admin_token {
        Some(token) => (token.clone(), false),
        None => AdminToken::load_or_generate(&config.data_dir).with_context(|| {
            format!("loading the admin token from {}", config.data_dir.display())
        })?,
    };
    let (acceptor, self_signed_cert) = match &config.tls {
        TlsChoice::Off => (None, None),
        TlsChoice::Files { cert, key } => (Some(tls::from_files(cert, key)?), None),
        TlsChoice::SelfSigned => {
            let (acceptor, cert) = tls::self_signed(&config.data_dir)?;
            (Some(acceptor), Some(cert))
        }
    };
    let intercept = if config.intercept {
        Some(Intercept::load_or_create(&config.data_dir)?)
    } else {
        None
    };
    let listener = TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let local = listener.local_addr().context("reading the bound address")?;
    let listen_url = url_of(local, acceptor.is_some());
    sluice_server::background::set_priority(config.replay_priority);
    let settings = Settings {
        datacenter: config.datacenter.clone(),
        public_url: config
            .public_url
            .clone()
            .unwrap_or_else(|| listen_url.clone()),
        post_log_retention: config.post_log_retention,
        post_log_max_bytes: config.post_log_max_bytes,
        match_threads: config.match_threads,
        replay_embargo: config.replay_embargo,
        replay_rate: config.replay_rate,
        ..Settings::default()
    };
    let (state, cluster_tasks) = match &config.nats {
        None => (
            AppState::open(
                StoreLocation::DataDir(&config.data_dir),
                settings,
                AdminToken::new(&admin_token),
            )?,
            None,
        ),
        Some(url) => {
            let cluster = sluice_cluster::NatsCluster::connect(&sluice_cluster::ClusterConfig {
                url: url.clone(),
                retention: config.post_log_retention,
                max_bytes: config.post_log_max_bytes,
            })
            .await?;
            // The shared state lives in JetStream: the node's store is a cache rebuilt
            // from it at every start, so it is kept in memory. The post log is the
            // JetStream posts stream itself, shared by every node.
            let clustering = cluster.clustering();
            let state = AppState::open_with(
                StoreLocation::Memory,
                settings,
                AdminToken::new(&admin_token),
                clustering,
            )?;
            let tasks = cluster.start(&state);
            (state, Some(tasks))
        }
    };
    let demo = if config.demo {
        Some(demo::provision(&state).await?)
    } else {
        None
    };

    println!(
        "sluice {} listening on {listen_url}",
        env!("CARGO_PKG_VERSION")
    );
    println!(
        "data dir {}, datacenter '{}'",
        config.data_dir.display(),
        config.datacenter
    );
    if generated_token {
        println!(
            "The admin and ingest APIs need this bearer token, generated now, kept in {} and not shown again:",
            config.data_dir.join("admin-token").display()
        );
        println!("admin token: {admin_token}");
    }
    println!(
        "console {listen_url}/console/ (the operator signs in with the admin token, kept in {})",
        config.data_dir.join("admin-token").display()
    );
    if let Some(cert) = &self_signed_cert {
        println!(
            "TLS: self-signed certificate for localhost and 127.0.0.1 at {}",
            cert.display()
        );
    }
    if let Some(intercept) = &intercept {
        print!(
            "{}",
            intercept_instructions(intercept.ca_path(), &listen_url)
        );
        tracing::info!(
            ca = %intercept.ca_path().display(),
            "intercepting CONNECT to X's API hosts; clients trust the CA with \
             REQUESTS_CA_BUNDLE (Python), NODE_EXTRA_CA_CERTS (Node) or keytool -importcert (Java)"
        );
    }
    let firehose = demo.as_ref().and_then(|demo| {
        println!();
        print!("{}", demo.instructions(self_signed_cert.as_deref()));
        // A real source replaces the synthetic posts; the demo's streams and rules stay.
        config
            .source
            .is_none()
            .then(|| demo::start_firehose(state.clone(), config.demo_rate))
    });
    // In cluster mode every node runs the source, and the one holding its lease consumes.
    let leases = match (&config.source, &config.nats) {
        (Some(_), Some(url)) => Some(
            SourceLeases::connect(url, &format!("{} {listen_url}", config.datacenter))
                .await
                .context("opening the source leases in NATS")?,
        ),
        _ => None,
    };
    let source = config.source.as_ref().map(|spec| {
        println!("source {spec}");
        InProcess::start(spec, state.clone(), &config.data_dir, leases)
    });
    tracing::info!(%local, url = %listen_url, "sluice started");

    let options = ServeOptions {
        tls: acceptor,
        intercept,
    };
    // The source stops first, while the pipeline still runs: its batch in hand is stored
    // and its cursor saved before the server closes.
    let stopped = async move {
        shutdown.wait().await;
        if let Some(source) = source {
            source.stop().await;
        }
    };
    sluice_server::serve_with(listener, options, state, stopped).await?;
    if let Some(tasks) = cluster_tasks
        && !tasks.finished(CLUSTER_STOP).await
    {
        tracing::warn!(
            "the cluster tasks did not end within {CLUSTER_STOP:?}; other nodes may list \
             this one until its announcement expires"
        );
    }
    if let Some(firehose) = firehose {
        firehose.await.context("the demo firehose failed")?;
    }
    tracing::info!("sluice stopped");
    Ok(())
}

/// How long a stopping cluster node waits for its cluster tasks (taking itself off the
/// list of members is the last of them).
const CLUSTER_STOP: Duration = Duration::from_secs(5);

/// The banner's lines for `--intercept`: where the CA is and how each platform's clients
/// use the proxy (`proxy`, the listener's URL) and trust the CA (the README's "Clients
/// that hard-code X's hosts" says more).
fn intercept_instructions(ca: &Path, proxy: &str) -> String {
    let ca = ca.display();
    let (host, port) = proxy
        .split_once("://")
        .and_then(|(_, addr)| addr.rsplit_once(':'))
        .unwrap_or(("127.0.0.1", "8080"));
    format!(
        "Intercepting CONNECT to X's API hosts (api.twitter.com, api.x.com, gnip-*); \
         clients use {proxy} as their HTTPS proxy and trust the CA {ca}:\n\
         \x20 Python: HTTPS_PROXY={proxy} REQUESTS_CA_BUNDLE={ca} twarc2 ...\n\
         \x20 Node:   NODE_EXTRA_CA_CERTS={ca} and an https-proxy-agent for {proxy}\n\
         \x20 Java:   keytool -importcert -noprompt -alias sluice -file {ca} -keystore sluice.jks -storepass changeit\n\
         \x20         java -Dhttps.proxyHost={host} -Dhttps.proxyPort={port} -Djavax.net.ssl.trustStore=sluice.jks ...\n"
    )
}

/// `http(s)://ADDR` for the bound address; a wildcard address becomes loopback, which is
/// what a client on the same host can use.
fn url_of(addr: SocketAddr, https: bool) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let scheme = if https { "https" } else { "http" };
    format!("{scheme}://{}", SocketAddr::new(ip, addr.port()))
}

/// SIGINT or SIGTERM, registered at once.
struct ShutdownSignal {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignal {
    fn install() -> anyhow::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Self {
                interrupt: signal(SignalKind::interrupt()).context("handling SIGINT")?,
                terminate: signal(SignalKind::terminate()).context("handling SIGTERM")?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Self {})
        }
    }

    /// Completes at the first signal.
    async fn wait(mut self) {
        #[cfg(unix)]
        let name = tokio::select! {
            _ = self.interrupt.recv() => "SIGINT",
            _ = self.terminate.recv() => "SIGTERM",
        };
        #[cfg(not(unix))]
        let name = match tokio::signal::ctrl_c().await {
            Ok(()) => "Ctrl-C",
            Err(_) => std::future::pending().await,
        };
        tracing::info!("received {name}: shutting down");
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn args(argv: &[&str]) -> ServeArgs {
        let mut full = vec!["sluice-serve"];
        full.extend_from_slice(argv);
        Cli::try_parse_from(full).expect("valid flags").serve
    }

    fn file(toml: &str) -> FileConfig {
        toml::from_str(toml).expect("valid config")
    }

    #[test]
    fn defaults_are_the_operator_contract() {
        let config = resolve(&args(&[]), FileConfig::default()).unwrap();
        assert_eq!(
            config,
            Config {
                listen: "127.0.0.1:8080".into(),
                data_dir: "./sluice-data".into(),
                tls: TlsChoice::Off,
                datacenter: "local".into(),
                demo: false,
                demo_rate: 50.0,
                admin_token: None,
                public_url: None,
                post_log_retention: Duration::from_secs(24 * 3600),
                post_log_max_bytes: None,
                intercept: false,
                nats: None,
                match_threads: std::thread::available_parallelism().unwrap().get(),
                replay_embargo: Duration::from_secs(1_800),
                replay_priority: Priority::DEFAULT,
                replay_rate: NonZeroU32::new(5_000),
                source: None,
            }
        );
    }

    #[test]
    fn replay_rate_comes_from_flag_or_file_and_0_is_unpaced() {
        let config = resolve(&args(&[]), file("replay_rate = 0")).unwrap();
        assert_eq!(config.replay_rate, None);
        let config = resolve(&args(&["--replay-rate", "800"]), file("replay_rate = 0")).unwrap();
        assert_eq!(config.replay_rate, NonZeroU32::new(800));
        let full = ["sluice-serve", "--replay-rate", "fast"];
        assert!(Cli::try_parse_from(full).is_err());
    }

    #[test]
    fn replay_priority_is_idle_or_a_nice_value_from_flag_or_file() {
        let config = resolve(&args(&[]), file("")).unwrap();
        assert_eq!(config.replay_priority, Priority::Idle);
        let config = resolve(&args(&[]), file("replay_priority = 0")).unwrap();
        assert_eq!(config.replay_priority, Priority::Nice(0));
        let config = resolve(&args(&[]), file(r#"replay_priority = "idle""#)).unwrap();
        assert_eq!(config.replay_priority, Priority::Idle);
        // The file's older name still counts.
        let config = resolve(&args(&[]), file("replay_nice = 7")).unwrap();
        assert_eq!(config.replay_priority, Priority::Nice(7));
        let flag = args(&["--replay-priority", "19"]);
        let config = resolve(&flag, file("replay_priority = 0")).unwrap();
        assert_eq!(config.replay_priority, Priority::Nice(19));
        let config = resolve(&args(&["--replay-nice", "idle"]), file("")).unwrap();
        assert_eq!(config.replay_priority, Priority::Idle);
        let both = args(&["--replay-nice", "3", "--replay-priority", "4"]);
        assert_eq!(
            resolve(&both, file("")).unwrap().replay_priority,
            Priority::Nice(4)
        );
        let error = resolve(&args(&[]), file("replay_priority = 1\nreplay_nice = 2")).unwrap_err();
        assert!(error.to_string().contains("both"), "{error}");
        for bad in [
            "replay_priority = 20",
            r#"replay_priority = "low""#,
            "replay_nice = -1",
        ] {
            let error = resolve(&args(&[]), file(bad)).unwrap_err();
            assert!(
                error.to_string().contains("--replay-priority"),
                "{bad}: {error}"
            );
        }
        for bad in ["20", "-1", "low"] {
            let full = ["sluice-serve", "--replay-priority", bad];
            assert!(Cli::try_parse_from(full).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_source_comes_from_flag_or_file_and_unknown_kinds_are_refused() {
        let from_file = file(r#"source = "jetstream=wss://jetstream2.us-east.bsky.network""#);
        let config = resolve(&args(&[]), from_file).unwrap();
        assert_eq!(
            config.source.unwrap().to_string(),
            "jetstream=wss://jetstream2.us-east.bsky.network/"
        );
        let flag = resolve(
            &args(&["--source", "jetstream=ws://127.0.0.1:6008"]),
            file(""),
        )
        .unwrap();
        assert_eq!(
            flag.source.unwrap().to_string(),
            "jetstream=ws://127.0.0.1:6008/"
        );
        let error = resolve(&args(&["--source", "nostr=wss://relay"]), file(""))
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "--source: unknown source kind \"nostr\": the kinds are jetstream (e.g. \
             jetstream=wss://jetstream2.us-east.bsky.network)"
        );
    }

    #[test]
    fn replay_embargo_comes_from_flag_or_file_and_may_be_zero() {
        let config = resolve(&args(&[]), file(r#"replay_embargo = "5m""#)).unwrap();
        assert_eq!(config.replay_embargo, Duration::from_secs(300));
        let from_file = file(r#"replay_embargo = "5m""#);
        let flag = resolve(&args(&["--replay-embargo", "0s"]), from_file).unwrap();
        assert_eq!(flag.replay_embargo, Duration::ZERO);
        for bad in ["thirty", "", "-5m"] {
            let flag = format!("--replay-embargo={bad}");
            assert!(
                resolve(&args(&[&flag]), FileConfig::default()).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn an_admin_token_may_begin_with_a_hyphen() {
        // Random URL-safe tokens begin with `-` one time in 64.
        let config = resolve(&args(&["--admin-token", "-nQ3x"]), FileConfig::default()).unwrap();
        assert_eq!(config.admin_token.as_deref(), Some("-nQ3x"));
    }

    #[test]
    fn post_log_retention_comes_from_flag_env_or_file_within_bounds() {
        let from_file = file(r#"post_log_retention = "2h""#);
        let config = resolve(&args(&[]), from_file).unwrap();
        assert_eq!(config.post_log_retention, Duration::from_secs(7_200));
        let from_file = file(r#"post_log_retention = "2h""#);
        let flag = resolve(&args(&["--post-log-retention", "24h"]), from_file).unwrap();
        assert_eq!(flag.post_log_retention, Duration::from_secs(86_400));
        let mixed = resolve(
            &args(&["--post-log-retention=1h 30m"]),
            FileConfig::default(),
        );
        assert_eq!(
            mixed.unwrap().post_log_retention,
            Duration::from_secs(5_400)
        );
        let five_days = resolve(
            &args(&["--post-log-retention=5 days"]),
            FileConfig::default(),
        );
        assert_eq!(
            five_days.unwrap().post_log_retention,
            Duration::from_secs(120 * 3600)
        );
        for bad in ["121h", "6days", "4m", "0s", "ten minutes", "", "-5m"] {
            let flag = format!("--post-log-retention={bad}");
            assert!(
                resolve(&args(&[&flag]), FileConfig::default()).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn post_log_max_bytes_reads_human_sizes_from_flag_or_file() {
        let cases = [
            ("500MB", 500_000_000),
            ("20GiB", 20 << 30),
            ("20 GiB", 20 << 30),
            ("1.5 TB", 1_500_000_000_000),
            ("1MiB", 1 << 20),
            ("1048576", 1 << 20),
        ];
        for (text, bytes) in cases {
            let flag = format!("--post-log-max-bytes={text}");
            let config = resolve(&args(&[&flag]), FileConfig::default()).unwrap();
            assert_eq!(config.post_log_max_bytes, Some(bytes), "{text}");
        }
        let from_file = resolve(&args(&[]), file(r#"post_log_max_bytes = "2GB""#));
        assert_eq!(from_file.unwrap().post_log_max_bytes, Some(2_000_000_000));
        let both = resolve(
            &args(&["--post-log-max-bytes", "3GB"]),
            file(r#"post_log_max_bytes = "2GB""#),
        );
        assert_eq!(both.unwrap().post_log_max_bytes, Some(3_000_000_000));
        for bad in ["", "lots", "-5GB", "20 GiBs", "1KiB", "0"] {
            let flag = format!("--post-log-max-bytes={bad}");
            let refused = resolve(&args(&[&flag]), FileConfig::default());
            assert!(
                refused
                    .unwrap_err()
                    .to_string()
                    .contains("--post-log-max-bytes"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn flags_win_over_the_file_which_wins_over_defaults() {
        let from_file = file(
            r#"
            listen = "0.0.0.0:9000"
            data_dir = "/srv/sluice"
            datacenter = "atla"
            demo = true
            demo_rate = 7.5
            admin_token = "file-token"
            "#,
        );
        let config = resolve(&args(&["--datacenter", "pdx", "--demo=false"]), from_file).unwrap();
        assert_eq!(config.listen, "0.0.0.0:9000");
        assert_eq!(config.data_dir, PathBuf::from("/srv/sluice"));
        assert_eq!(config.datacenter, "pdx");
        assert_eq!(config.nats, None);
        assert!(!config.demo);
        assert_eq!(config.demo_rate, 7.5);
        assert_eq!(config.admin_token.as_deref(), Some("file-token"));
    }

    #[test]
    fn match_threads_come_from_flag_or_file_and_are_at_least_one() {
        let config = resolve(&args(&["--match-threads", "3"]), file("match_threads = 5"));
        assert_eq!(config.unwrap().match_threads, 3);
        let config = resolve(&args(&[]), file("match_threads = 5")).unwrap();
        assert_eq!(config.match_threads, 5);
        let zero = Cli::try_parse_from(["sluice-serve", "--match-threads", "0"]);
        assert!(zero.is_err(), "0 threads is refused");
        assert!(toml::from_str::<FileConfig>("match_threads = 0").is_err());
    }

    #[test]
    fn nats_switches_to_cluster_mode_from_flag_or_file() {
        let from_file = file(r#"nats = "nats://10.0.0.1:4222""#);
        let config = resolve(&args(&[]), from_file).unwrap();
        assert_eq!(config.nats.as_deref(), Some("nats://10.0.0.1:4222"));
        let from_file = file(r#"nats = "nats://10.0.0.1:4222""#);
        let flag = resolve(&args(&["--nats", "nats://127.0.0.1:4222"]), from_file).unwrap();
        assert_eq!(flag.nats.as_deref(), Some("nats://127.0.0.1:4222"));
    }

    #[test]
    fn on_off_flags_take_an_optional_value() {
        assert_eq!(args(&["--demo"]).demo, Some(true));
        assert_eq!(args(&["--demo=no"]).demo, Some(false));
        assert_eq!(args(&["--tls-self-signed=1"]).tls_self_signed, Some(true));
        assert_eq!(args(&[]).demo, None);
        assert_eq!(args(&["--intercept"]).intercept, Some(true));
        let from_file = resolve(&args(&[]), file("intercept = true")).unwrap();
        assert!(from_file.intercept);
        let flag_wins = resolve(&args(&["--intercept=false"]), file("intercept = true"));
        assert!(!flag_wins.unwrap().intercept);
    }

    #[test]
    fn tls_flags_must_fit_together() {
        let both = resolve(
            &args(&["--tls-cert", "c.pem", "--tls-key", "k.pem"]),
            FileConfig::default(),
        )
        .unwrap();
        assert_eq!(
            both.tls,
            TlsChoice::Files {
                cert: "c.pem".into(),
                key: "k.pem".into()
            }
        );
        // The key may come from the file and the certificate from a flag.
        let mixed = resolve(
            &args(&["--tls-cert", "c.pem"]),
            file(r#"tls_key = "/k.pem""#),
        );
        assert!(matches!(mixed.unwrap().tls, TlsChoice::Files { .. }));
        for bad in [
            vec!["--tls-cert", "c.pem"],
            vec!["--tls-key", "k.pem"],
            vec![
                "--tls-cert",
                "c.pem",
                "--tls-key",
                "k.pem",
                "--tls-self-signed",
            ],
        ] {
            assert!(
                resolve(&args(&bad), FileConfig::default()).is_err(),
                "{bad:?}"
            );
        }
        let self_signed = resolve(&args(&[]), file("tls_self_signed = true")).unwrap();
        assert_eq!(self_signed.tls, TlsChoice::SelfSigned);
    }

    #[test]
    fn bad_values_are_refused() {
        for rate in ["0", "-3", "NaN", "inf"] {
            let flag = format!("--demo-rate={rate}");
            let parsed = args(&[&flag]);
            assert!(resolve(&parsed, FileConfig::default()).is_err(), "{rate}");
        }
        assert!(toml::from_str::<FileConfig>("listn = \"x\"").is_err());
        assert!(toml::from_str::<FileConfig>("demo = \"yes\"").is_err());
    }

    #[test]
    fn relative_paths_in_the_file_are_relative_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sluice.toml");
        std::fs::write(&path, "data_dir = \"data\"\ntls_cert = \"/abs/cert.pem\"\n").unwrap();
        let loaded = FileConfig::load(&path).unwrap();
        assert_eq!(loaded.data_dir, Some(dir.path().join("data")));
        assert_eq!(loaded.tls_cert, Some(PathBuf::from("/abs/cert.pem")));
    }

    #[test]
    fn urls_name_a_reachable_address() {
        let any: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(url_of(any, false), "http://127.0.0.1:8080");
        let any6: SocketAddr = "[::]:443".parse().unwrap();
        assert_eq!(url_of(any6, true), "https://[::1]:443");
        let one: SocketAddr = "10.1.2.3:80".parse().unwrap();
        assert_eq!(url_of(one, false), "http://10.1.2.3:80");
    }
}
