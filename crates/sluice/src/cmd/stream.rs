//! `sluice stream URL`: a long-running stream consumer that behaves the way X asks clients
//! to (docs/compatibility.md §1.1, §1.2, §1.5).
//!
//! It connects with `Accept-Encoding: gzip` and a 35 s read timeout (X's heartbeats come
//! every 10 s; clients must wait more than 30 s), decodes the body chunk by chunk as it
//! arrives, prints each post on its own stdout line as it came (with `matching_rules`),
//! drops heartbeats and sends system messages (`{"error":…}`, `{"info":…}`, Powerstream's
//! `{"errors":…}` and `connection_metadata`) to stderr.
//! When the connection drops or the server ends the stream it reconnects with X's backoff
//! ([`crate::client::backoff`]), asking for `backfillMinutes` if given so nothing is lost
//! across the gap. SIGINT or SIGTERM ends it cleanly.

use std::io::{self, BufWriter, Write as _};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use hyper::header::{ACCEPT, ACCEPT_ENCODING};
use hyper::{Method, StatusCode};
use url::Url;

use crate::client::backoff::{Backoff, Failure};
use crate::client::http::{Auth, Credentials, HttpClient, HttpError, Reply, Request, TlsArgs};
use crate::client::lines::{BodyEncoding, LineDecoder};
use crate::client::message::{Line, classify};
use crate::client::signal::stop_requested;

/// Exit code: stopped by a signal, or stdout was closed.
const EXIT_OK: u8 = 0;
/// Exit code: the server refused the request in a way a retry cannot fix (bad
/// credentials, unknown stream, bad parameters) or its certificate is not trusted, or
/// output failed.
const EXIT_ERROR: u8 = 1;

/// Per-read timeout: X requires more than 30 s; gnip4j and demian85/gnip use 35 s.
const READ_TIMEOUT: Duration = Duration::from_secs(35);

const AFTER_HELP: &str = "\
URL is the stream URL as the admin API lists it, e.g.
  https://HOST/stream/powertrack/accounts/ACCOUNT/publishers/twitter/LABEL.json
(Decahose/Firehose: …/stream/sample10/… or …/stream/firehose/… with --partition;
Powerstream: https://HOST/2/powerstream with --bearer, and ?localDcOnly=true for the
posts of the node's own datacenter only).

Output: one post per line on stdout, exactly as delivered (with matching_rules). Heartbeats
are dropped; system messages ({\"error\":…}, {\"info\":…}, Powerstream's {\"errors\":…} and
{\"type\":\"connection_metadata\",…}) and connection events go to stderr.

Reconnects (X's documented policy): network errors and stream ends wait 250 ms more each
time up to 16 s; HTTP errors wait 5 s doubling to 320 s; 429 waits from 60 s. Reconnects
ask for --backfill-minutes of backfill when given. 400, 401, 403, 404 and 406 are not
retried: the request itself is wrong. Neither is a server certificate that is not trusted
(pass the server's certificate with --cacert, e.g. DATA_DIR/tls/cert.pem of
`sluice serve --tls-self-signed`).

Exit codes:
  0  stopped by SIGINT/SIGTERM, or stdout was closed
  1  the server refused the request for good, or its TLS certificate is not trusted
     (message on stderr), or output failed";

/// Flags of `sluice stream`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct StreamArgs {
    /// The stream URL.
    #[arg(value_name = "URL")]
    url: Url,

    /// Basic-auth credentials (PowerTrack, Decahose, Firehose).
    #[arg(
        short = 'u',
        long = "user",
        value_name = "USER:PASSWORD",
        env = "SLUICE_USER",
        hide_env_values = true,
        required_unless_present = "bearer"
    )]
    credentials: Option<Credentials>,

    /// Bearer token instead of basic auth (Powerstream).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SLUICE_BEARER",
        hide_env_values = true
    )]
    bearer: Option<String>,

    /// On every reconnect, ask for this many minutes (1-5) of backfill, so posts matched
    /// while disconnected are delivered (duplicates are possible, gaps are not).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=5))]
    backfill_minutes: Option<u8>,

    /// The partition to read (Decahose: 1-2, Firehose: 1-20).
    #[arg(long, value_name = "N")]
    partition: Option<u32>,

    #[command(flatten)]
    tls: TlsArgs,

    /// Multiplies every reconnect wait (tests shorten the backoff with it).
    #[arg(long, hide = true, default_value_t = 1.0)]
    backoff_scale: f64,
}

/// Runs `sluice stream` until a signal, a fatal answer or a closed stdout.
pub fn run(args: &StreamArgs) -> ExitCode {
    let result = crate::client::runtime()
        .context("starting the async runtime")
        .and_then(|rt| {
            rt.block_on(async {
                tokio::select! {
                    result = consume(args) => result,
                    () = stop_requested() => {
                        eprintln!("sluice stream: stopping");
                        Ok(EXIT_OK)
                    }
                }
            })
        });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("sluice stream: error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// How one connection ended.
enum End {
    /// Reconnect after the backoff for this failure.
    Retry(Failure, String),
    /// Stop with this exit code.
    Exit(u8),
}

/// The connect-read-reconnect loop.
async fn consume(args: &StreamArgs) -> anyhow::Result<u8> {
    let client = HttpClient::new(&args.tls, Some(READ_TIMEOUT))?;
    let auth = match (&args.bearer, &args.credentials) {
        (Some(token), _) => Auth::Bearer(token.clone()),
        (None, Some(credentials)) => Auth::Basic(credentials.clone()),
        (None, None) => anyhow::bail!("give -u USER:PASSWORD or --bearer TOKEN"),
    };
    let mut out = Output {
        stdout: BufWriter::with_capacity(64 * 1024, io::stdout()),
    };
    let mut backoff = Backoff::new(args.backoff_scale);
    let mut reconnecting = false;
    loop {
        let url = connect_url(
            &args.url,
            args.partition,
            args.backfill_minutes.filter(|_| reconnecting),
        );
        let end = connect_once(&client, &auth, &url, &mut backoff, &mut out).await;
        let (failure, reason) = match end {
            End::Exit(code) => return Ok(code),
            End::Retry(failure, reason) => (failure, reason),
        };
        let wait = backoff.failed(failure);
        eprintln!(
            "sluice stream: {reason}; reconnecting in {:.2} s",
            wait.as_secs_f64()
        );
        tokio::time::sleep(wait).await;
        reconnecting = true;
    }
}

/// One connection: connect, read until it ends, say how it ended.
async fn connect_once(
    client: &HttpClient,
    auth: &Auth,
    url: &Url,
    backoff: &mut Backoff,
    out: &mut Output,
) -> End {
    let request = match Request::new(Method::GET, url, auth) {
        Ok(request) => request
            .header(ACCEPT_ENCODING, "gzip")
            .header(ACCEPT, "application/json"),
        Err(e) => {
            eprintln!("sluice stream: error: {e:#}");
            return End::Exit(EXIT_ERROR);
        }
    };
    let mut response = match client.send(&request).await {
        Ok(response) => response,
        Err(e) if e.is_permanent() => {
            eprintln!("sluice stream: cannot connect to {url}: {e}");
            return End::Exit(EXIT_ERROR);
        }
        Err(e) => return End::Retry(Failure::Network, format!("cannot connect: {e}")),
    };
    let status = response.status;
    if status != StatusCode::OK {
        let message = match Reply::read(response).await {
            Ok(reply) => reply.error_message(),
            Err(e) => format!("{e:#}"),
        };
        let what = format!("HTTP {status}: {message}");
        return match status.as_u16() {
            429 | 420 => End::Retry(Failure::RateLimited, what),
            400 | 401 | 403 | 404 | 406 => {
                eprintln!("sluice stream: {what}");
                End::Exit(EXIT_ERROR)
            }
            _ => End::Retry(Failure::Http, what),
        };
    }
    backoff.connected();
    eprintln!("sluice stream: connected to {url}");
    let mut decoder = LineDecoder::new(if response.is_gzip() {
        BodyEncoding::Gzip
    } else {
        BodyEncoding::Identity
    });
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => {
                return End::Retry(Failure::Network, "the server ended the stream".to_owned());
            }
            Err(e @ HttpError::Timeout(_)) => return End::Retry(Failure::Network, e.to_string()),
            Err(e) => return End::Retry(Failure::Network, format!("connection lost: {e}")),
        };
        let mut written = Ok(());
        let decoded = decoder.feed(&chunk, |line| {
            if written.is_ok() {
                written = out.line(line);
            }
        });
        if let Err(e) = decoded {
            return End::Retry(Failure::Network, format!("undecodable stream: {e}"));
        }
        if let Err(e) = written.and_then(|()| out.stdout.flush()) {
            if e.kind() == io::ErrorKind::BrokenPipe {
                return End::Exit(EXIT_OK);
            }
            eprintln!("sluice stream: error: writing to stdout: {e}");
            return End::Exit(EXIT_ERROR);
        }
    }
}

/// Where lines go.
struct Output {
    stdout: BufWriter<io::Stdout>,
}

impl Output {
    /// Routes one stream line: data to stdout, system messages to stderr, heartbeats
    /// nowhere.
    fn line(&mut self, line: &[u8]) -> io::Result<()> {
        match classify(line) {
            Line::Heartbeat => Ok(()),
            Line::System => {
                let mut stderr = io::stderr().lock();
                stderr.write_all(line)?;
                stderr.write_all(b"\n")
            }
            Line::Data => {
                self.stdout.write_all(line)?;
                self.stdout.write_all(b"\n")
            }
        }
    }
}

/// The URL of one connection: `url` with `partition` and `backfillMinutes` set.
fn connect_url(url: &Url, partition: Option<u32>, backfill_minutes: Option<u8>) -> Url {
    let mut url = url.clone();
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| {
            !(k == "backfillMinutes" && backfill_minutes.is_some()
                || k == "partition" && partition.is_some())
        })
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.set_query(None);
    let extra = partition
        .map(|p| ("partition", p.to_string()))
        .into_iter()
        .chain(backfill_minutes.map(|m| ("backfillMinutes", m.to_string())));
    let mut pairs: Vec<(String, String)> = kept;
    pairs.extend(extra.map(|(k, v)| (k.to_owned(), v)));
    if !pairs.is_empty() {
        url.query_pairs_mut().extend_pairs(pairs);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_urls_carry_partition_and_backfill_once() {
        let base = Url::parse(
            "https://h/stream/sample10/accounts/a/publishers/twitter/prod.json?partition=9&x=1",
        )
        .expect("valid URL");
        assert_eq!(connect_url(&base, None, None), base);
        assert_eq!(
            connect_url(&base, Some(2), Some(5)).as_str(),
            "https://h/stream/sample10/accounts/a/publishers/twitter/prod.json?x=1&partition=2&backfillMinutes=5"
        );
        let plain = Url::parse("https://h/s.json").expect("valid URL");
        assert_eq!(
            connect_url(&plain, None, Some(3)).as_str(),
            "https://h/s.json?backfillMinutes=3"
        );
    }
}
