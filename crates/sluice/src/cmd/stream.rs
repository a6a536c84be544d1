//! `sluice stream URL`: a long-running stream consumer that behaves the way X asks clients
//! to (docs/compatibility.md §1.1, §1.2, §1.5).
//!
//! It connects with `Accept-Encoding: gzip` and a 35 s read timeout (X's heartbeats come
//! every 10 s; clients must wait more than 30 s), decodes the body chunk by chunk as it
//! arrives, prints each post on its own stdout line as it came (with `matching_rules`),
//! drops heartbeats and sends system messages (`{"error":…}`, `{"info":…}`, v2's and
//! Powerstream's `{"errors":…}` and `connection_metadata`) to stderr.
//! When the connection drops or the server ends the stream it reconnects with X's backoff
//! ([`crate::client::backoff`], through [`Consumer`], shared with `sluice record`), asking for `backfillMinutes` (`backfill_minutes` on the
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
use url::Url;

use crate::client::consume::{
    Consumer, Ended, Flow, StreamSink, backfill_parameter, connect_url, is_v2,
};
use crate::client::http::{Auth, Credentials, HttpClient, TlsArgs};
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
        let name = backfill_parameter(&args.url);
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

/// The connect-read-reconnect loop ([`Consumer`]), printing posts to stdout.
async fn consume(args: &StreamArgs) -> anyhow::Result<u8> {
    let client = HttpClient::new(&args.tls, Some(READ_TIMEOUT))?;
    let auth = match (&args.bearer, &args.credentials) {
        (Some(token), _) => Auth::Bearer(token.clone()),
        (None, Some(credentials)) => Auth::Basic(credentials.clone()),
        (None, None) => anyhow::bail!("give -u USER:PASSWORD or --bearer TOKEN"),
    };
    let query = Query::of(args)?;
    let consumer = Consumer {
        client: &client,
        auth: &auth,
        name: "sluice stream",
        backoff_scale: args.backoff_scale,
    };
    let mut out = Stdout(BufWriter::with_capacity(64 * 1024, io::stdout()));
    let url_for = |connected: bool| {
        // Backfill fills the gap after a connection; before the first there is none.
        connect_url(&args.url, &query.set, query.backfill.filter(|_| connected))
    };
    Ok(match consumer.consume(url_for, &mut out).await {
        Ended::Stopped => EXIT_OK,
        Ended::Output(e) if e.kind() == io::ErrorKind::BrokenPipe => EXIT_OK,
        Ended::Output(e) => {
            eprintln!("sluice stream: error: writing to stdout: {e}");
            EXIT_ERROR
        }
        Ended::Refused(why) => {
            eprintln!("sluice stream: {why}");
            EXIT_ERROR
        }
    })
}

/// Posts go to stdout as they came; system messages to stderr (the default).
struct Stdout(BufWriter<io::Stdout>);

impl StreamSink for Stdout {
    fn data(&mut self, line: &[u8]) -> io::Result<Flow> {
        self.0.write_all(line)?;
        self.0.write_all(b"\n")?;
        Ok(Flow::Continue)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
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
}
