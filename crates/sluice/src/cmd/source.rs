//! `sluice source jetstream URL --to BASE --token T`: consumes Bluesky's Jetstream and
//! feeds a running server's ingest API (`POST BASE/ingest`), the same consumer `sluice
//! serve --source` runs in process (the `sluice-source` crate), for a server that should
//! not reach the internet itself or a cluster where one process must consume.
//!
//! Its cursor lives in `--cursor-file`, by default in the user's state directory, one file
//! per target server, so a restart resumes where it stopped. SIGINT or SIGTERM stops it
//! cleanly: the batch in hand is acknowledged by the server and its cursor saved.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use sluice_source::consumer::{self, Config, DEFAULT_OVERLAP};
use sluice_source::cursor::CursorFile;
use sluice_source::jetstream::subscribe;
use sluice_source::sink::HttpSink;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::client::http::{HttpClient, TlsArgs};
use crate::client::signal::stop_requested;

const AFTER_HELP: &str = "\
Example, with a server started by `sluice serve --demo`:
  sluice source jetstream wss://jetstream2.us-east.bsky.network \\
    --to http://127.0.0.1:8080 --token \"$(cat sluice-data/admin-token)\"

Each Bluesky post becomes a post in X's native format (a 64-bit id from its author and
record key, text, lang, entities, replies, quotes, the author as user); a deleted post
becomes a compliance delete event. Lines go to the server in batches of up to 1,000 lines
or 100 ms. After the server acknowledged a batch, the time_us of its last event is saved
in the cursor file; a restart or a reconnect resumes 5 s before it, and the server's
de-duplication by id drops the posts sent twice. Reconnects wait 0.5 s doubling to 30 s,
with jitter.

The cursor file defaults to $XDG_STATE_HOME/sluice/ (or ~/.local/state/sluice/), named
after the target server: jetstream-HOST-PORT.cursor. Delete it to start from the live tail.

Logs go to stderr (RUST_LOG, default info). SIGINT (Ctrl-C) or SIGTERM stops it: the batch
in hand is acknowledged and its cursor saved; the exit code is then 0. It exits 1 when the
server refuses the batches for good (a wrong token, a URL that is not sluice) or the cursor
file cannot be used.";

/// Flags of `sluice source`.
#[derive(Debug, Args)]
pub struct SourceArgs {
    #[command(subcommand)]
    kind: SourceKind,
}

/// The kinds of source.
#[derive(Debug, Subcommand)]
enum SourceKind {
    /// Consume Bluesky's Jetstream (posts and their deletes) into a server's ingest API.
    Jetstream(JetstreamArgs),
}

/// Flags of `sluice source jetstream`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct JetstreamArgs {
    /// The Jetstream instance, e.g. wss://jetstream2.us-east.bsky.network (its /subscribe
    /// URL works too).
    #[arg(value_name = "URL", value_parser = instance)]
    url: Url,

    /// The sluice server's base URL (http://127.0.0.1:8080) or its /ingest URL.
    #[arg(long, value_name = "BASE")]
    to: Url,

    /// The server's admin token (printed by `sluice serve` at its first start, kept in
    /// DATA_DIR/admin-token).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SLUICE_ADMIN_TOKEN",
        hide_env_values = true,
        allow_hyphen_values = true
    )]
    token: String,

    /// Where the cursor is kept [default: $XDG_STATE_HOME/sluice/jetstream-HOST-PORT.cursor].
    #[arg(long, value_name = "FILE")]
    cursor_file: Option<PathBuf>,

    /// Ask Jetstream for zstd-compressed frames (about a third of the bandwidth).
    #[arg(long)]
    compress: bool,

    #[command(flatten)]
    tls: TlsArgs,
}

fn instance(text: &str) -> Result<Url, String> {
    subscribe::instance(text).map_err(|e| e.to_string())
}

/// Runs `sluice source` and returns its exit code.
pub fn run(args: &SourceArgs) -> ExitCode {
    let SourceKind::Jetstream(args) = &args.kind;
    super::serve::init_logging();
    let result = crate::client::runtime()
        .context("starting the async runtime")
        .and_then(|rt| rt.block_on(jetstream(args)));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sluice source jetstream: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn jetstream(args: &JetstreamArgs) -> anyhow::Result<()> {
    let path = match &args.cursor_file {
        Some(path) => path.clone(),
        None => default_cursor_file(
            &args.to,
            std::env::var_os("XDG_STATE_HOME"),
            std::env::var_os("HOME"),
        )
        .context(
            "no state directory ($XDG_STATE_HOME or $HOME): give the cursor's place with --cursor-file",
        )?,
    };
    let cursor = CursorFile::new(path);
    // A cursor file that cannot be read stops it before it connects.
    let saved = cursor.load_now()?;
    let client = HttpClient::new(&args.tls, Some(std::time::Duration::from_secs(60)))?;
    let mut sink = HttpSink::new(client, &args.to, &args.token);
    let mut config = Config::new(args.url.clone());
    config.compress = args.compress;
    eprintln!(
        "sluice source jetstream: {} -> {}; cursor {} ({})",
        args.url,
        sink.url(),
        cursor.path().display(),
        match saved {
            Some(time_us) => format!("resuming {}s before {time_us}", DEFAULT_OVERLAP.as_secs()),
            None => "none yet: starting from the live tail".to_owned(),
        }
    );
    let stop = CancellationToken::new();
    let signal = {
        let stop = stop.clone();
        tokio::spawn(async move {
            stop_requested().await;
            tracing::info!("stop requested: storing the batch in hand and saving the cursor");
            stop.cancel();
        })
    };
    let outcome = consumer::run(config, &mut sink, &cursor, stop).await;
    signal.abort();
    let summary = outcome?;
    eprintln!(
        "sluice source jetstream: stopped after {} events: {} posts and {} deletes ingested, \
         {} lines refused, {} reconnects; cursor {}",
        summary.events,
        summary.posts,
        summary.deletes,
        summary.rejected,
        summary.reconnects,
        summary.cursor.map_or("unset".to_owned(), |c| c.to_string())
    );
    Ok(())
}

/// `XDG_STATE_HOME/sluice/jetstream-HOST-PORT.cursor` (`HOME/.local/state` without it):
/// one cursor per target server. `None` without either.
fn default_cursor_file(
    target: &Url,
    xdg_state_home: Option<OsString>,
    home: Option<OsString>,
) -> Option<PathBuf> {
    let state = xdg_state_home
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            home.filter(|v| !v.is_empty())
                .map(|home| PathBuf::from(home).join(".local/state"))
        })?;
    let host: String = target
        .host_str()
        .unwrap_or("server")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let port = target.port_or_known_default().unwrap_or(0);
    Some(
        state
            .join("sluice")
            .join(format!("jetstream-{host}-{port}.cursor")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cursor_file_is_in_the_state_directory_named_after_the_target() {
        let local = Url::parse("http://127.0.0.1:8080").unwrap();
        let state = Some(OsString::from("/var/state"));
        let home = Some(OsString::from("/home/u"));
        assert_eq!(
            default_cursor_file(&local, state.clone(), home.clone()),
            Some(PathBuf::from(
                "/var/state/sluice/jetstream-127.0.0.1-8080.cursor"
            ))
        );
        let v6 = Url::parse("https://[::1]/").unwrap();
        assert_eq!(
            default_cursor_file(&v6, Some(OsString::new()), home),
            Some(PathBuf::from(
                "/home/u/.local/state/sluice/jetstream-___1_-443.cursor"
            ))
        );
        assert_eq!(default_cursor_file(&local, None, None), None);
    }
}
