//! `sluice record URL`: writes what a stream delivers to an NDJSON file that `sluice ingest
//! --pace` can send again at its own pace (docs/operator-interface.md, "Record and replay").
//!
//! Any sluice or X stream: Gnip-style PowerTrack, Decahose/Firehose and compliance streams
//! with basic auth and gzip, Powerstream and the X API v2 streams with a bearer token. The
//! connection, the reconnects with X's backoff and the line routing are `sluice stream`'s
//! ([`crate::client::consume`]); only where the lines go differs: each post or event line,
//! exactly as received, to the file. Heartbeats and system messages are not recorded.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Args;
use url::Url;

use crate::client::consume::{Consumer, Ended, Flow, StreamSink, backfill_parameter, connect_url};
use crate::client::http::{Auth, Credentials, HttpClient, TlsArgs};
use crate::client::signal::stop_requested;
use crate::progress::ProgressLine;

/// Exit code: stopped by a signal, --max-posts or --duration; everything received was
/// written.
const EXIT_OK: u8 = 0;
/// Exit code: the server refused for good, its certificate is not trusted, or writing
/// failed.
const EXIT_ERROR: u8 = 1;

/// Per-read timeout: longer than the 10 s heartbeat interval with room (X asks for > 30 s).
const READ_TIMEOUT: Duration = Duration::from_secs(35);

const AFTER_HELP: &str = "\
URL is any stream URL of sluice or X:
  PowerTrack, Decahose/Firehose, compliance (basic auth, gzip):
    https://HOST/stream/powertrack/accounts/ACCOUNT/publishers/twitter/LABEL.json
    https://HOST/stream/compliance/accounts/ACCOUNT/publishers/twitter/LABEL.json?partition=1
  Powerstream and the X API v2 streams (--bearer):
    https://HOST/2/powerstream
    https://HOST/2/tweets/sample10/stream?partition=1

Each post or compliance event is written as one line, exactly as received (with the
stream's matching_rules, which the ingest API replaces on the way out). Keep-alive blank
lines are dropped; system messages ({\"error\":…}, {\"info\":…}, {\"errors\":…},
connection metadata) are not recorded and go to stderr. Lines of the X API v2 streams
({\"data\":…,\"includes\":…}) are recorded as received too; `sluice ingest --pace` times
them by data.created_at, but the ingest API takes posts in X's native format only.

The file replays with:
  sluice ingest FILE --url URL --token TOKEN --pace original

Reconnects like `sluice stream`: network errors and stream ends wait 250 ms more each time
up to 16 s, HTTP errors 5 s doubling to 320 s, 429 from 60 s; with --backfill-minutes a
reconnect asks for the posts of the gap (duplicates are possible: the ingest API drops an
id it has seen in the last minutes). 400, 401, 403, 404 and 406 are not retried.

A progress line on stderr (rewritten in place on a terminal, a plain line every 5 s
otherwise) shows the lines recorded, the rate and the bytes written. SIGINT/SIGTERM,
--max-posts and --duration stop it: what was received is flushed to FILE and it exits 0.

Exit codes:
  0  stopped by SIGINT/SIGTERM, --max-posts or --duration, or stdout was closed
  1  the server refused the request for good, its certificate is not trusted, or the
     file could not be written";

/// Flags of `sluice record`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct RecordArgs {
    /// The stream URL.
    #[arg(value_name = "URL")]
    url: Url,

    /// The file to write (created, or emptied if it exists); stdout when not given.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: Option<PathBuf>,

    /// Basic-auth user (PowerTrack, Decahose, Firehose, compliance), as USER with
    /// --password, or USER:PASSWORD.
    #[arg(
        short = 'u',
        long = "user",
        value_name = "USER",
        env = "SLUICE_USER",
        hide_env_values = true,
        required_unless_present = "bearer"
    )]
    user: Option<String>,

    /// The basic-auth password, when --user does not carry it.
    #[arg(
        long,
        value_name = "PASSWORD",
        env = "SLUICE_PASSWORD",
        hide_env_values = true
    )]
    password: Option<String>,

    /// Bearer token instead of basic auth (Powerstream, and an app's token for the X API v2
    /// streams); used when given, whatever --user says.
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SLUICE_BEARER",
        hide_env_values = true,
        // Tokens are URL-safe base64, so one may begin with '-'.
        allow_hyphen_values = true
    )]
    bearer: Option<String>,

    /// Stop after this many posts and events.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_posts: Option<u64>,

    /// Stop after this long, e.g. 30s, 10m, 2h.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    duration: Option<Duration>,

    /// On every reconnect after a connection, ask for this many minutes (1-5) of backfill.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=5))]
    backfill_minutes: Option<u8>,

    #[command(flatten)]
    tls: TlsArgs,

    /// Multiplies every reconnect wait (tests shorten the backoff with it).
    #[arg(long, hide = true, default_value_t = 1.0)]
    backoff_scale: f64,
}

impl RecordArgs {
    /// The stream's credentials from --bearer, or --user and --password.
    fn auth(&self) -> anyhow::Result<Auth> {
        if let Some(token) = &self.bearer {
            return Ok(Auth::Bearer(token.clone()));
        }
        let Some(user) = &self.user else {
            anyhow::bail!("give --user USER --password PASSWORD, or --bearer TOKEN");
        };
        let credentials = match (&self.password, user.split_once(':')) {
            (Some(password), _) => Credentials {
                user: user.clone(),
                password: password.clone(),
            },
            (None, Some(_)) => user.parse().map_err(anyhow::Error::msg)?,
            (None, None) => anyhow::bail!("--user {user} needs --password (or USER:PASSWORD)"),
        };
        Ok(Auth::Basic(credentials))
    }
}

/// Runs `sluice record` until a signal, --max-posts, --duration or a fatal answer.
pub fn run(args: &RecordArgs) -> ExitCode {
    let result = crate::client::runtime()
        .context("starting the async runtime")
        .and_then(|rt| rt.block_on(record(args)));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("sluice record: error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

async fn record(args: &RecordArgs) -> anyhow::Result<u8> {
    let auth = args.auth()?;
    let client = HttpClient::new(&args.tls, Some(READ_TIMEOUT))?;
    let out: Box<dyn io::Write> = match &args.output {
        Some(path) => {
            Box::new(File::create(path).with_context(|| format!("creating {}", path.display()))?)
        }
        None => Box::new(io::stdout()),
    };
    let mut sink = Recorder {
        out: BufWriter::with_capacity(256 << 10, out),
        max_posts: args.max_posts,
        progress: Progress::new(io::stderr().is_terminal()),
    };
    let consumer = Consumer {
        client: &client,
        auth: &auth,
        name: "sluice record",
        backoff_scale: args.backoff_scale,
    };
    let backfill = args
        .backfill_minutes
        .map(|minutes| (backfill_parameter(&args.url), minutes));
    let url_for = |connected: bool| connect_url(&args.url, &[], backfill.filter(|_| connected));
    let limit = async {
        match args.duration {
            Some(duration) => tokio::time::sleep(duration).await,
            None => std::future::pending().await,
        }
    };
    let ended = tokio::select! {
        ended = consumer.consume(url_for, &mut sink) => Some(ended),
        () = stop_requested() => None,
        () = limit => None,
    };
    let flushed = sink.out.flush();
    sink.progress.finish();
    let where_to = args
        .output
        .as_ref()
        .map_or_else(|| "stdout".to_owned(), |p| p.display().to_string());
    eprintln!(
        "sluice record: {} lines, {} bytes written to {where_to}",
        sink.progress.lines, sink.progress.bytes
    );
    let code = match ended {
        None | Some(Ended::Stopped) => EXIT_OK,
        Some(Ended::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => EXIT_OK,
        Some(Ended::Output(e)) => {
            eprintln!("sluice record: error: writing to {where_to}: {e}");
            EXIT_ERROR
        }
        Some(Ended::Refused(why)) => {
            eprintln!("sluice record: {why}");
            EXIT_ERROR
        }
    };
    match flushed {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
            Err(e).with_context(|| format!("writing to {where_to}"))
        }
        _ => Ok(code),
    }
}

/// Writes data lines, counts them and stops at --max-posts.
struct Recorder {
    out: BufWriter<Box<dyn io::Write>>,
    max_posts: Option<u64>,
    progress: Progress,
}

impl StreamSink for Recorder {
    fn data(&mut self, line: &[u8]) -> io::Result<Flow> {
        self.out.write_all(line)?;
        self.out.write_all(b"\n")?;
        self.progress.lines += 1;
        self.progress.bytes += line.len() as u64 + 1;
        let full = self.max_posts.is_some_and(|max| self.progress.lines >= max);
        Ok(if full { Flow::Stop } else { Flow::Continue })
    }

    fn system(&mut self, line: &[u8]) -> io::Result<()> {
        self.progress.clear();
        let mut stderr = io::stderr().lock();
        stderr.write_all(line)?;
        stderr.write_all(b"\n")
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.progress.show();
        Ok(())
    }

    fn notice(&mut self, text: &str) {
        self.progress.clear();
        eprintln!("{text}");
    }
}

/// The progress line's figures: lines and bytes written (see [`ProgressLine`]).
struct Progress {
    line_out: ProgressLine,
    lines: u64,
    bytes: u64,
}

impl Progress {
    fn new(terminal: bool) -> Self {
        Self {
            line_out: ProgressLine::new("sluice record", terminal, Instant::now()),
            lines: 0,
            bytes: 0,
        }
    }

    /// Writes the line if it is time to.
    fn show(&mut self) {
        let Some(rate) = self.line_out.due(self.lines) else {
            return;
        };
        let text = format!(
            "{} lines recorded, {rate:.0} lines/s, {:.1} MB",
            self.lines,
            self.bytes as f64 / 1e6
        );
        self.line_out.write(&text);
    }

    /// Clears the progress line so another message can be printed.
    fn clear(&mut self) {
        self.line_out.clear();
    }

    /// Ends the progress line.
    fn finish(&mut self) {
        self.line_out.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<RecordArgs, clap::Error> {
        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(flatten)]
            record: RecordArgs,
        }
        let all = std::iter::once("record").chain(args.iter().copied());
        <Cli as clap::Parser>::try_parse_from(all).map(|cli| cli.record)
    }

    fn basic(args: &RecordArgs) -> (String, String) {
        match args.auth().expect("credentials") {
            Auth::Basic(c) => (c.user, c.password),
            Auth::Bearer(_) => panic!("expected basic auth"),
        }
    }

    #[test]
    fn credentials_are_a_user_and_password_or_a_bearer_token() {
        let url = "https://h/stream/powertrack/accounts/a/publishers/twitter/p.json";
        let both = parse(&[url, "--user", "alice", "--password", "s:cret"]).expect("parses");
        assert_eq!(basic(&both), ("alice".to_owned(), "s:cret".to_owned()));
        let joined = parse(&[url, "-u", "alice:secret"]).expect("parses");
        assert_eq!(basic(&joined), ("alice".to_owned(), "secret".to_owned()));
        let missing = parse(&[url, "-u", "alice"]).expect("parses");
        assert!(missing.auth().is_err());
        let bearer = parse(&["https://h/2/powerstream", "--bearer", "-T"]).expect("parses");
        assert!(matches!(bearer.auth(), Ok(Auth::Bearer(t)) if t == "-T"));
        let bearer_wins = parse(&[url, "-u", "a:b", "--bearer", "T"]).expect("parses");
        assert!(matches!(bearer_wins.auth(), Ok(Auth::Bearer(_))));
        assert!(parse(&[url, "-u", "a:b", "--max-posts", "0"]).is_err());
        let limits =
            parse(&[url, "-u", "a:b", "--max-posts", "5", "--duration", "90s"]).expect("parses");
        assert_eq!(limits.max_posts, Some(5));
        assert_eq!(limits.duration, Some(Duration::from_secs(90)));
    }
}
