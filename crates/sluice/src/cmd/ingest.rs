//! `sluice ingest [FILE|-]`: feeds NDJSON posts to a running server's ingest API
//! (docs/operator-interface.md, "Ingest API").
//!
//! The file is read as a stream and cut on line boundaries into requests of at most
//! `--batch-bytes` (8 MiB; the server takes up to 16 MiB), so memory stays flat however big
//! the file is: one batch is being read while the previous one is in flight. The server
//! numbers rejected lines within each request; they are reported on stderr with their line
//! numbers in the file. On a terminal a progress line shows posts sent, accepted, rejected
//! and the rate.
//!
//! With `--pace` the lines are sent when they are due by their recorded times instead, and
//! `--loop` sends the file again and again with new ids ([`pace`], [`retime`]).

mod pace;
mod retime;

use std::fs::File;
use std::io::{self, BufRead, BufReader, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use clap::Args;
use hyper::Method;
use hyper::header::CONTENT_TYPE;
use serde::Deserialize;
use tokio::sync::mpsc;
use url::Url;

use crate::client::http::{Auth, HttpClient, Request, TlsArgs, send_waiting_out_429};

/// Exit code: every post was accepted.
const EXIT_OK: u8 = 0;
/// Exit code: the file could not be read or a request failed.
const EXIT_ERROR: u8 = 1;
/// Exit code: the server rejected some lines (listed on stderr); the others were accepted.
const EXIT_REJECTED: u8 = 3;

/// Default request size: half the server's 16 MiB body limit.
const DEFAULT_BATCH_BYTES: usize = 8 << 20;
/// Read buffer.
const READ_BUFFER: usize = 256 << 10;
/// How much of a rejected line is quoted on stderr.
const QUOTE_CHARS: usize = 80;

const AFTER_HELP: &str = "\
Each line of the input is one post in X's native JSON, with a numeric id/id_str and
created_at. Rejected lines are reported on stderr as `line N: error: start of the line`,
numbered from 1 in the input. At the end stdout gets one line:
  {\"sent\":S,\"accepted\":A,\"rejected\":R}

With --pace, each line is sent when it is due: its time (timestamp_ms, else created_at in
X's format, else a v2 line's data.created_at; a compliance event's timestamp_ms) after the
first line's, divided by the speed. A line without a readable time is sent with the
previous line's time; a line timed earlier than the one before it is sent right after it
(the file's order is kept). What is due is sent every 50 ms or so, one request at a time. The progress line (rewritten in place
on a terminal, a plain line every 5 s otherwise) shows the rate, the position (line and %
of the file) and the lag (how late the sender is behind the pace).
  sluice ingest firehose.ndjson --url URL --pace original
  sluice ingest firehose.ndjson --url URL --pace 10x --loop
--loop starts again from the top at the end of the file. The server drops ids it saw in the
last minutes, so every pass after the first rewrites each line: post ids (the post's own,
its reply and quote references, edit history, nested posts, the posts compliance events
name) move by the same amount in their Snowflake time bits (the low 22 bits are kept), and
created_at/timestamp_ms move by the same time, so the pass reads as recorded now and ids
stay unique and in time order. (A pass never overlaps the times of the one before, so
faster than 1x the times run ahead of the clock.) SIGINT/SIGTERM lets the request in
flight finish, prints the summary line and exits.

Exit codes:
  0  every post was accepted
  1  the input could not be read or a request failed (stderr says how far it got)
  3  some lines were rejected; all others were accepted";

/// Flags of `sluice ingest`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct IngestArgs {
    /// NDJSON posts; `-` (the default) reads stdin.
    #[arg(value_name = "FILE", default_value = "-")]
    input: PathBuf,

    /// The server's base URL (http://127.0.0.1:8080) or its full /ingest URL.
    #[arg(long, value_name = "URL")]
    url: Url,

    /// The admin token (printed by `sluice serve` at its first start).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SLUICE_ADMIN_TOKEN",
        hide_env_values = true
    )]
    token: String,

    /// The datacenter the posts originated in (default: the server's own).
    #[arg(long, value_name = "DC")]
    datacenter: Option<String>,

    /// Largest request body in bytes (a longer single line is sent on its own).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_BATCH_BYTES, value_parser = batch_bytes)]
    batch_bytes: usize,

    /// Send each line when it is due by its recorded time: `original` (the recorded pace)
    /// or a speed such as `10x` or `0.5x` (see below).
    #[arg(long, value_name = "original|Nx", value_parser = pace::Pace::parse)]
    pace: Option<pace::Pace>,

    /// With --pace: at the end of the file start again from the top, with new ids and times
    /// (see below). Needs a FILE.
    #[arg(long = "loop", requires = "pace")]
    looping: bool,

    #[command(flatten)]
    tls: TlsArgs,
}

fn batch_bytes(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("expected a whole number of bytes, at least 1".to_owned()),
    }
}

/// Runs `sluice ingest` and returns its exit code.
pub fn run(args: &IngestArgs) -> ExitCode {
    let result = crate::client::runtime()
        .context("starting the async runtime")
        .and_then(|rt| rt.block_on(ingest(args)));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("sluice ingest: error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Consecutive lines of the input, sent as one request.
struct Batch {
    /// The lines, each ending in `\n`.
    body: Bytes,
    /// The input line number of the first line (from 1).
    first_line: u64,
    /// Lines in the batch, blank ones included.
    lines: u64,
    /// Non-blank lines: the posts sent.
    posts: u64,
}

/// The ingest API's answer.
#[derive(Deserialize)]
struct IngestReply {
    accepted: u64,
    #[serde(default)]
    rejected: Vec<RejectedLine>,
}

#[derive(Deserialize)]
struct RejectedLine {
    /// Line number within the request body, from 1.
    line: u64,
    error: String,
}

async fn ingest(args: &IngestArgs) -> anyhow::Result<u8> {
    let url = ingest_url(&args.url, args.datacenter.as_deref());
    let client = HttpClient::new(&args.tls, None)?;
    let auth = Auth::Bearer(args.token.clone());
    if let Some(speed) = args.pace {
        let target = Target {
            client: &client,
            url: &url,
            auth: &auth,
        };
        let totals = pace::send_paced(&target, args, speed).await?;
        return summary(totals.sent, totals.accepted, totals.rejected);
    }
    let input = open(&args.input).with_context(|| format!("opening {}", display(&args.input)))?;
    // One batch queued while another is in flight: reading and sending overlap, memory
    // stays at a few batches.
    let (tx, mut rx) = mpsc::channel::<io::Result<Batch>>(1);
    let max_bytes = args.batch_bytes;
    let reader = std::thread::spawn(move || read_batches(input, max_bytes, &tx));

    let mut progress = Progress::new(io::stderr().is_terminal());
    let mut done_lines = 0u64;
    let outcome: anyhow::Result<()> = async {
        while let Some(batch) = rx.recv().await {
            let batch = batch.with_context(|| format!("reading {}", display(&args.input)))?;
            let target = Target {
                client: &client,
                url: &url,
                auth: &auth,
            };
            let answer = target.send(batch.body.clone()).await?;
            progress.clear();
            report_rejected(&batch.body, &answer.rejected, |line| {
                format!("line {}", batch.first_line + line.saturating_sub(1))
            });
            progress.batch(batch.posts, answer.accepted, answer.rejected.len() as u64);
            done_lines = batch.first_line + batch.lines - 1;
        }
        Ok(())
    }
    .await;
    progress.finish();
    drop(rx);
    // The reader stops at its next send once the channel is closed.
    let _ = reader.join();
    if let Err(e) = outcome {
        let resume = if done_lines == 0 {
            "nothing was ingested".to_owned()
        } else {
            format!(
                "lines 1-{done_lines} were ingested; resume with `tail -n +{}`",
                done_lines + 1
            )
        };
        bail!("{e:#} ({resume})");
    }
    summary(progress.sent, progress.accepted, progress.rejected)
}

/// Prints the summary line on stdout and returns the exit code it calls for.
fn summary(sent: u64, accepted: u64, rejected: u64) -> anyhow::Result<u8> {
    let summary = format!("{{\"sent\":{sent},\"accepted\":{accepted},\"rejected\":{rejected}}}\n");
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_all(summary.as_bytes()).and_then(|()| out.flush())
        && e.kind() != io::ErrorKind::BrokenPipe
    {
        return Err(e).context("writing to stdout");
    }
    Ok(if rejected > 0 { EXIT_REJECTED } else { EXIT_OK })
}

/// Where requests go: the ingest endpoint of one server, with the admin token.
struct Target<'a> {
    client: &'a HttpClient,
    url: &'a Url,
    auth: &'a Auth,
}

impl Target<'_> {
    /// Sends one NDJSON body (sitting out 429s) and reads the server's answer.
    async fn send(&self, body: Bytes) -> anyhow::Result<IngestReply> {
        let request = Request::new(Method::POST, self.url, self.auth)?
            .header(CONTENT_TYPE, "application/x-ndjson")
            .body(body);
        let reply = send_waiting_out_429(self.client, "ingest", &request).await?;
        if !reply.status.is_success() {
            bail!("HTTP {}: {}", reply.status, reply.error_message());
        }
        serde_json::from_slice(&reply.body)
            .context("the ingest answer is not {\"accepted\":N,\"rejected\":[…]}")
    }
}

/// `BASE/ingest` (unless `url` already ends in `/ingest`), with `datacenter` set.
fn ingest_url(url: &Url, datacenter: Option<&str>) -> Url {
    let mut url = url.clone();
    if !url.path().ends_with("/ingest") {
        let path = format!("{}/ingest", url.path().trim_end_matches('/'));
        url.set_path(&path);
    }
    if let Some(dc) = datacenter {
        url.query_pairs_mut().append_pair("datacenter", dc);
    }
    url
}

fn open(path: &Path) -> io::Result<Box<dyn BufRead + Send>> {
    if path.as_os_str() == "-" {
        Ok(Box::new(BufReader::with_capacity(READ_BUFFER, io::stdin())))
    } else {
        Ok(Box::new(BufReader::with_capacity(
            READ_BUFFER,
            File::open(path)?,
        )))
    }
}

fn display(path: &Path) -> String {
    if path.as_os_str() == "-" {
        "stdin".to_owned()
    } else {
        path.display().to_string()
    }
}

/// Cuts the input into batches of whole lines of at most `max_bytes` (a longer line goes
/// alone) and sends them down `tx`. Runs on its own thread; stops at the end of the input,
/// on a read error (sent on) or when the receiver is gone.
fn read_batches(
    mut input: Box<dyn BufRead + Send>,
    max_bytes: usize,
    tx: &mpsc::Sender<io::Result<Batch>>,
) {
    let mut body: Vec<u8> = Vec::new();
    let mut first_line = 1u64;
    let mut lines = 0u64;
    let mut posts = 0u64;
    loop {
        let start = body.len();
        let read = match input.read_until(b'\n', &mut body) {
            Ok(read) => read,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        if read == 0 {
            break;
        }
        if body.last() != Some(&b'\n') {
            body.push(b'\n');
        }
        let blank = body[start..].trim_ascii().is_empty();
        if body.len() > max_bytes && lines > 0 {
            let rest = body.split_off(start);
            let batch = Batch {
                body: Bytes::from(std::mem::replace(&mut body, rest)),
                first_line,
                lines,
                posts,
            };
            if tx.blocking_send(Ok(batch)).is_err() {
                return;
            }
            first_line += lines;
            lines = 0;
            posts = 0;
        }
        lines += 1;
        if !blank {
            posts += 1;
        }
    }
    if lines > 0 {
        let batch = Batch {
            body: Bytes::from(body),
            first_line,
            lines,
            posts,
        };
        let _ = tx.blocking_send(Ok(batch));
    }
}

/// Prints each rejected line of a request `body` with where it is in the input
/// (`place(line in the request, from 1)`, e.g. `line 12`), the server's error and the
/// start of the line.
fn report_rejected(body: &[u8], rejected: &[RejectedLine], place: impl Fn(u64) -> String) {
    if rejected.is_empty() {
        return;
    }
    let lines: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
    let mut stderr = io::stderr().lock();
    for r in rejected {
        let text = r
            .line
            .checked_sub(1)
            .and_then(|i| lines.get(usize::try_from(i).ok()?))
            .map(|line| quote(line))
            .unwrap_or_default();
        let _ = writeln!(
            stderr,
            "sluice ingest: {}: {}: {text}",
            place(r.line),
            r.error
        );
    }
}

/// The start of a line, for messages.
fn quote(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(line.trim_ascii());
    match text.char_indices().nth(QUOTE_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.into_owned(),
    }
}

/// Running totals, and the progress line on a terminal.
struct Progress {
    terminal: bool,
    started: Instant,
    sent: u64,
    accepted: u64,
    rejected: u64,
}

impl Progress {
    fn new(terminal: bool) -> Self {
        Self {
            terminal,
            started: Instant::now(),
            sent: 0,
            accepted: 0,
            rejected: 0,
        }
    }

    fn batch(&mut self, sent: u64, accepted: u64, rejected: u64) {
        self.sent += sent;
        self.accepted += accepted;
        self.rejected += rejected;
        if self.terminal {
            let rate = self.sent as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
            eprint!(
                "\r\x1b[2K{} posts sent, {} accepted, {} rejected, {rate:.0} posts/s",
                self.sent, self.accepted, self.rejected
            );
        }
    }

    /// Clears the progress line so another message can be printed.
    fn clear(&self) {
        if self.terminal && self.sent > 0 {
            eprint!("\r\x1b[2K");
        }
    }

    /// Leaves the last progress line on screen.
    fn finish(&self) {
        if self.terminal && self.sent > 0 {
            eprintln!();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batches(input: &str, max_bytes: usize) -> Vec<(String, u64, u64, u64)> {
        let (tx, mut rx) = mpsc::channel(64);
        read_batches(
            Box::new(io::Cursor::new(input.as_bytes().to_vec())),
            max_bytes,
            &tx,
        );
        drop(tx);
        let mut out = Vec::new();
        while let Ok(batch) = rx.try_recv() {
            let b = batch.expect("reads");
            out.push((
                String::from_utf8(b.body.to_vec()).expect("UTF-8"),
                b.first_line,
                b.lines,
                b.posts,
            ));
        }
        out
    }

    #[test]
    fn batches_split_on_line_boundaries_and_keep_line_numbers() {
        let got = batches("aaaa\nbbbb\n\ncccc\ndddddddddddd\ne", 10);
        assert_eq!(
            got,
            [
                ("aaaa\nbbbb\n".to_owned(), 1, 2, 2),
                ("\ncccc\n".to_owned(), 3, 2, 1),
                ("dddddddddddd\n".to_owned(), 5, 1, 1),
                ("e\n".to_owned(), 6, 1, 1),
            ]
        );
    }

    #[test]
    fn a_small_input_is_one_batch_and_an_empty_one_none() {
        assert_eq!(
            batches("a\r\nb\r\n", 1 << 20),
            [("a\r\nb\r\n".to_owned(), 1, 2, 2)]
        );
        assert!(batches("", 10).is_empty());
    }

    #[test]
    fn ingest_urls_accept_a_base_or_the_endpoint() {
        let url = |s: &str| Url::parse(s).expect("valid URL");
        assert_eq!(
            ingest_url(&url("http://h:8080"), None).as_str(),
            "http://h:8080/ingest"
        );
        assert_eq!(
            ingest_url(&url("http://h/base/"), Some("atla")).as_str(),
            "http://h/base/ingest?datacenter=atla"
        );
        assert_eq!(
            ingest_url(&url("http://h/ingest"), None).as_str(),
            "http://h/ingest"
        );
    }

    #[test]
    fn rejected_lines_are_quoted_briefly() {
        assert_eq!(quote(b"  not json \r"), "not json");
        assert_eq!(
            quote("é".repeat(100).as_bytes()).chars().count(),
            QUOTE_CHARS + 1
        );
    }
}
