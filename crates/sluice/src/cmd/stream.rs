//! `sluice stream URL`: a long-running stream consumer that behaves the way X asks clients
//! to (docs/compatibility.md §1.1, §1.2, §1.5).
//!
//! It connects with `Accept-Encoding: gzip` and a 35 s read timeout (X's heartbeats come
//! every 10 s; clients must wait more than 30 s), decodes the body chunk by chunk as it
//! arrives, prints each post on its own stdout line as it came (with `matching_rules`),
//! drops heartbeats and sends system messages (`{"error":…}`, `{"info":…}`, v2's and
//! Powerstream's `{"errors":…}` and `connection_metadata`) to stderr.
//! When the connection drops or the server ends the stream it reconnects with X's backoff
//! ([`crate::client::backoff`]), asking for `backfillMinutes` (`backfill_minutes` on the
//! X API v2 streams) if given so nothing is lost across the gap. A v2 `errors` line with a
//! `disconnect_type` (`OperationalDisconnect`, …) is X telling the client the stream is
//! being closed: the client reconnects at once with the same backoff, as twarc does
//! (docs/compatibility.md §7.2). SIGINT or SIGTERM ends it cleanly.
//!
//! The X API v2 streams (a URL whose path starts with `/2/tweets/`) take an app's bearer
//! token and the field and expansion parameters (`--tweet-fields`, `--expansions`, …),
//! which are added to the URL's query.

use std::io::{self, BufWriter, Write as _};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use hyper::header::{ACCEPT, ACCEPT_ENCODING};
use hyper::{Method, StatusCode};
use serde::Deserialize;
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

X API v2 streams, with an app's --bearer token (from `POST /admin/accounts/ACCOUNT/apps`
or `POST /oauth2/token`):
  https://HOST/2/tweets/search/stream       the filtered stream (rules: `sluice rules`)
  https://HOST/2/tweets/sample/stream       the 1 % sample
  https://HOST/2/tweets/sample10/stream     Decahose, with --partition 1-2
  https://HOST/2/tweets/firehose/stream     Firehose, with --partition 1-20
Each line is {\"data\":{…},\"includes\":{…},\"matching_rules\":[…]} with the fields asked
for, e.g.
  sluice stream https://HOST/2/tweets/search/stream --bearer TOKEN \\
    --tweet-fields created_at,author_id --expansions author_id --user-fields username
Any other query parameter goes in the URL or in --param KEY=VALUE.

Output: one post per line on stdout, exactly as delivered (with matching_rules). Heartbeats
are dropped; system messages ({\"error\":…}, {\"info\":…}, v2's and Powerstream's
{\"errors\":…} and {\"type\":\"connection_metadata\",…}) and connection events go to stderr.

Reconnects (X's documented policy): network errors and stream ends wait 250 ms more each
time up to 16 s; HTTP errors wait 5 s doubling to 320 s; 429 waits from 60 s. A v2
{\"errors\":[…]} line with a disconnect_type (OperationalDisconnect, …) ends the connection
and reconnects like a stream end. Reconnects ask for --backfill-minutes of backfill when
given. 400, 401, 403, 404 and 406 are not retried: the request itself is wrong. Neither is
a server certificate that is not trusted (pass the server's certificate with --cacert,
e.g. DATA_DIR/tls/cert.pem of `sluice serve --tls-self-signed`).

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

    /// Bearer token instead of basic auth (Powerstream, and an app's token for the X API v2
    /// streams).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SLUICE_BEARER",
        hide_env_values = true,
        // Tokens are URL-safe base64, so one may begin with '-'.
        allow_hyphen_values = true
    )]
    bearer: Option<String>,

    /// On every reconnect after a connection, ask for this many minutes (1-5) of backfill,
    /// so posts matched while disconnected are delivered (duplicates are possible, gaps
    /// are not).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u8).range(1..=5))]
    backfill_minutes: Option<u8>,

    /// The partition to read (Decahose: 1-2, Firehose: 1-20).
    #[arg(long, value_name = "N")]
    partition: Option<u32>,

    #[command(flatten)]
    v2: V2Fields,

    /// Another query parameter for the stream URL, KEY=VALUE; repeat for several (e.g.
    /// --param start_time=2026-01-01T10:00:00Z). Replaces a parameter of the URL with the
    /// same name.
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = key_value)]
    params: Vec<(String, String)>,

    #[command(flatten)]
    tls: TlsArgs,

    /// Multiplies every reconnect wait (tests shorten the backoff with it).
    #[arg(long, hide = true, default_value_t = 1.0)]
    backoff_scale: f64,
}

/// The help heading of the v2 field options.
const V2_HEADING: &str = "X API v2 streams (/2/tweets/…)";

/// The field and expansion parameters of the X API v2 streams (X's comma lists of field
/// names, passed on as they are: the server names any it does not know).
#[derive(Debug, Args)]
struct V2Fields {
    /// `tweet.fields`: post fields beyond id, text and edit_history_tweet_ids, e.g.
    /// created_at,author_id,entities,public_metrics.
    #[arg(long, value_name = "LIST", help_heading = V2_HEADING)]
    tweet_fields: Option<String>,

    /// `expansions`: objects to add in `includes`, e.g. author_id,referenced_tweets.id.
    #[arg(long, value_name = "LIST", help_heading = V2_HEADING)]
    expansions: Option<String>,

    /// `user.fields` of expanded users, e.g. username,public_metrics.
    #[arg(long, value_name = "LIST", help_heading = V2_HEADING)]
    user_fields: Option<String>,

    /// `media.fields` of expanded media.
    #[arg(long, value_name = "LIST", help_heading = V2_HEADING)]
    media_fields: Option<String>,

    /// `poll.fields` of expanded polls.
    #[arg(long, value_name = "LIST", help_heading = V2_HEADING)]
    poll_fields: Option<String>,

    /// `place.fields` of expanded places.
    #[arg(long, value_name = "LIST", help_heading = V2_HEADING)]
    place_fields: Option<String>,
}

impl V2Fields {
    /// The query parameters given, with X's names.
    fn pairs(&self) -> Vec<(String, String)> {
        [
            ("tweet.fields", &self.tweet_fields),
            ("expansions", &self.expansions),
            ("user.fields", &self.user_fields),
            ("media.fields", &self.media_fields),
            ("poll.fields", &self.poll_fields),
            ("place.fields", &self.place_fields),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name.to_owned(), value.clone()?)))
        .collect()
    }
}

fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err("expected KEY=VALUE".to_owned()),
    }
}

/// Whether `url` is one of the X API v2 streams, which name their parameters in
/// snake_case and take an app's bearer token.
fn is_v2(url: &Url) -> bool {
    url.path().starts_with("/2/tweets/")
}

/// What every connection of a run asks for beyond the URL.
struct Query {
    /// Parameters set on every connect (fields, `--param`, the partition).
    set: Vec<(String, String)>,
    /// The backfill parameter's name on this stream, and the minutes to ask for on
    /// reconnects.
    backfill: Option<(&'static str, u8)>,
}

impl Query {
    /// The query `args` ask for; refuses v2 options on a stream that is not v2, and basic
    /// auth on one that is.
    fn of(args: &StreamArgs) -> anyhow::Result<Self> {
        let v2 = is_v2(&args.url);
        let fields = args.v2.pairs();
        if !v2 && !fields.is_empty() {
            anyhow::bail!(
                "--tweet-fields, --expansions and the other field options are for the X API \
                 v2 streams (URLs under /2/tweets/)"
            );
        }
        if v2 && args.bearer.is_none() {
            anyhow::bail!(
                "the X API v2 streams take an app's bearer token: give --bearer TOKEN, not -u"
            );
        }
        let mut set = fields;
        set.extend(args.params.iter().cloned());
        if let Some(p) = args.partition {
            set.push(("partition".to_owned(), p.to_string()));
        }
        let name = if v2 {
            "backfill_minutes"
        } else {
            "backfillMinutes"
        };
        Ok(Self {
            set,
            backfill: args.backfill_minutes.map(|m| (name, m)),
        })
    }
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
    let query = Query::of(args)?;
    let mut out = Output {
        stdout: BufWriter::with_capacity(64 * 1024, io::stdout()),
        disconnect: None,
        connected: false,
    };
    let mut backoff = Backoff::new(args.backoff_scale);
    loop {
        let url = connect_url(
            &args.url,
            &query.set,
            // Backfill fills the gap after a connection; before the first there is none.
            query.backfill.filter(|_| out.connected),
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
    out.connected = true;
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
        if let Some(reason) = out.disconnect.take() {
            return End::Retry(Failure::Network, reason);
        }
    }
}

/// Where lines go.
struct Output {
    stdout: BufWriter<io::Stdout>,
    /// Why the server is closing the stream, once a v2 disconnect line said so.
    disconnect: Option<String>,
    /// Whether a connection was ever opened.
    connected: bool,
}

impl Output {
    /// Routes one stream line: data to stdout, system messages to stderr (noting a v2
    /// disconnect), heartbeats nowhere.
    fn line(&mut self, line: &[u8]) -> io::Result<()> {
        match classify(line) {
            Line::Heartbeat => Ok(()),
            Line::System => {
                if let Some(reason) = v2_disconnect(line) {
                    self.disconnect = Some(reason);
                }
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

/// The reason of a v2 `{"errors":[…]}` line that announces the end of the stream (an
/// entry with a `disconnect_type`), e.g. `OperationalDisconnect: This stream has been
/// disconnected for operational reasons.`; `None` for any other line.
fn v2_disconnect(line: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<Problem>,
    }
    #[derive(Deserialize)]
    struct Problem {
        disconnect_type: Option<String>,
        detail: Option<String>,
        title: Option<String>,
    }
    let Errors { errors } = serde_json::from_slice(line).ok()?;
    let problem = errors.into_iter().find(|p| p.disconnect_type.is_some())?;
    let kind = problem.disconnect_type?;
    Some(match problem.detail.or(problem.title) {
        Some(why) => format!("the server closes the stream ({kind}: {why})"),
        None => format!("the server closes the stream ({kind})"),
    })
}

/// The URL of one connection: `url` with the parameters of `set` and the backfill
/// parameter, when given, replacing any of the same names.
fn connect_url(url: &Url, set: &[(String, String)], backfill: Option<(&str, u8)>) -> Url {
    let mut pairs: Vec<(String, String)> = set.to_vec();
    if let Some((name, minutes)) = backfill {
        pairs.push((name.to_owned(), minutes.to_string()));
    }
    let mut url = url.clone();
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !pairs.iter().any(|(name, _)| name == k))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.set_query(None);
    let all: Vec<(String, String)> = kept.into_iter().chain(pairs).collect();
    if !all.is_empty() {
        url.query_pairs_mut().extend_pairs(all);
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn connect_urls_carry_partition_and_backfill_once() {
        let base = Url::parse(
            "https://h/stream/sample10/accounts/a/publishers/twitter/prod.json?partition=9&x=1",
        )
        .expect("valid URL");
        assert_eq!(connect_url(&base, &[], None), base);
        assert_eq!(
            connect_url(
                &base,
                &set(&[("partition", "2")]),
                Some(("backfillMinutes", 5))
            )
            .as_str(),
            "https://h/stream/sample10/accounts/a/publishers/twitter/prod.json?x=1&partition=2&backfillMinutes=5"
        );
        let plain = Url::parse("https://h/s.json").expect("valid URL");
        assert_eq!(
            connect_url(&plain, &[], Some(("backfillMinutes", 3))).as_str(),
            "https://h/s.json?backfillMinutes=3"
        );
    }

    #[test]
    fn v2_urls_carry_fields_params_and_snake_case_backfill() {
        let base = Url::parse("https://h/2/tweets/search/stream?expansions=x").expect("valid");
        let fields = set(&[
            ("tweet.fields", "created_at,author_id"),
            ("expansions", "author_id"),
            ("start_time", "2026-01-01T10:00:00Z"),
        ]);
        assert_eq!(
            connect_url(&base, &fields, Some(("backfill_minutes", 2))).as_str(),
            "https://h/2/tweets/search/stream?tweet.fields=created_at%2Cauthor_id\
             &expansions=author_id&start_time=2026-01-01T10%3A00%3A00Z&backfill_minutes=2"
        );
    }

    /// `sluice stream ARGS…` as the command line parses it.
    fn parse(args: &[&str]) -> StreamArgs {
        #[derive(Debug, clap::Parser)]
        struct Cli {
            #[command(flatten)]
            stream: StreamArgs,
        }
        let all = std::iter::once("stream").chain(args.iter().copied());
        <Cli as clap::Parser>::try_parse_from(all)
            .expect("parses")
            .stream
    }

    #[test]
    fn a_bearer_token_may_begin_with_a_hyphen() {
        // App tokens are URL-safe base64: one in 64 begins with '-'.
        let args = parse(&["https://h/2/tweets/search/stream", "--bearer", "-MxYz"]);
        assert_eq!(args.bearer.as_deref(), Some("-MxYz"));
    }

    #[test]
    fn v2_options_go_with_v2_urls_and_bearer_tokens() {
        let v2 = parse(&[
            "https://h/2/tweets/sample10/stream",
            "--bearer",
            "T",
            "--tweet-fields",
            "lang",
            "--user-fields",
            "username",
            "--param",
            "a=b=c",
            "--partition",
            "2",
            "--backfill-minutes",
            "3",
        ]);
        let query = Query::of(&v2).expect("valid");
        assert_eq!(
            query.set,
            set(&[
                ("tweet.fields", "lang"),
                ("user.fields", "username"),
                ("a", "b=c"),
                ("partition", "2"),
            ])
        );
        assert_eq!(query.backfill, Some(("backfill_minutes", 3)));
        let gnip = parse(&["https://h/s.json", "-u", "a:b", "--backfill-minutes", "1"]);
        assert_eq!(
            Query::of(&gnip).expect("valid").backfill,
            Some(("backfillMinutes", 1))
        );
        let fields_on_gnip = parse(&["https://h/s.json", "-u", "a:b", "--expansions", "x"]);
        assert!(Query::of(&fields_on_gnip).is_err());
        let basic_on_v2 = parse(&["https://h/2/tweets/search/stream", "-u", "a:b"]);
        assert!(Query::of(&basic_on_v2).is_err());
    }

    #[test]
    fn only_v2_errors_lines_with_a_disconnect_type_end_the_connection() {
        #[rustfmt::skip]
        let cases: &[(&str, Option<&str>)] = &[
            (
                r#"{"errors":[{"title":"operational-disconnect","disconnect_type":"OperationalDisconnect","detail":"This stream has been disconnected for operational reasons.","type":"https://api.x.com/2/problems/operational-disconnect"}]}"#,
                Some("the server closes the stream (OperationalDisconnect: This stream has been disconnected for operational reasons.)"),
            ),
            (
                r#"{"errors":[{"title":"ConnectionException"},{"disconnect_type":"SlowReader"}]}"#,
                Some("the server closes the stream (SlowReader)"),
            ),
            (r#"{"errors":[{"title":"Not Found Error","detail":"gone"}]}"#, None),
            (r#"{"errors":[]}"#, None),
            (r#"{"errors":{"disconnect_type":"OperationalDisconnect"}}"#, None),
            (r#"{"error":{"message":"Forced Disconnect"}}"#, None),
            ("not json", None),
        ];
        for (line, want) in cases {
            assert_eq!(v2_disconnect(line.as_bytes()).as_deref(), *want, "{line}");
        }
    }
}
