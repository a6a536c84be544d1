//! `sluice ingest --pace original|Nx [--loop]`: a recorded firehose sent at the pace it was
//! recorded at (or N times faster), for demos and tests that want a live-looking source.
//!
//! A reader thread reads the file, works out when each line is due (its time after the
//! first line's, divided by the speed; [`retime::raw_line_time_ms`](super::retime::raw_line_time_ms)) and, on the passes of
//! `--loop` after the first, rewrites it with new ids and times ([`retime::Shift`](super::retime::Shift)). The
//! sender takes what is due, every [`TICK`] at most, as one request, with one request in
//! flight while the next lines wait. How late a request leaves against its first line's
//! due time is the lag shown on the progress line.

use std::future::Future;
use std::io::{self, BufRead as _, IsTerminal as _};
use std::path::PathBuf;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, bail};
use bytes::Bytes;
use serde_json::Value;
use tokio::sync::mpsc::{self, error::TryRecvError};
use tokio::time::Instant;

use super::retime::{Shift, raw_line_time_ms};
use super::{IngestArgs, IngestReply, Target, display, open, report_rejected};
use crate::client::signal::stop_requested;
use crate::progress::ProgressLine;

/// The shortest time between two requests: what falls due meanwhile goes in one request.
const TICK: Duration = Duration::from_millis(50);
/// Lines read ahead of the sender.
const READ_AHEAD_LINES: usize = 4096;
/// A pass of `--loop` over a file whose lines all have one time (which would otherwise be
/// sent again at once, over and over), before the speed divides it.
const MIN_PASS: Duration = Duration::from_secs(1);

/// The speed of `--pace`: 1 for `original`, N for `Nx`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pace(f64);

impl Pace {
    /// Reads `original`, `10x`, `0.5x`, …; anything else is a clap error with the forms.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s == "original" {
            return Ok(Pace(1.0));
        }
        let speed = s
            .strip_suffix('x')
            .and_then(|n| n.parse::<f64>().ok())
            .filter(|n| n.is_finite() && *n > 0.0);
        match speed {
            Some(speed) => Ok(Pace(speed)),
            None => Err(format!(
                "expected `original` or a speed above 0 followed by x, such as 10x or 0.5x \
                 (got {s:?})"
            )),
        }
    }
}

/// One line, with when it is due.
struct Due {
    /// The line to send, ending in `\n`.
    body: Vec<u8>,
    /// Its line number in the file, from 1.
    line: u64,
    /// Which pass of `--loop` (0 is the first).
    pass: u32,
    /// When it is due, after the start.
    offset: Duration,
    /// Bytes of the file read up to the end of this line.
    position: u64,
}

/// What has been sent and what the server said.
#[derive(Debug, Default)]
pub struct Totals {
    /// Lines sent.
    pub sent: u64,
    /// Lines accepted.
    pub accepted: u64,
    /// Lines rejected (each reported on stderr).
    pub rejected: u64,
}

/// Sends the file of `args` at `pace`; returns the totals once the file (or, with
/// `--loop`, a signal) ends it. On a request failure the error says how far it got.
pub async fn send_paced(
    target: &Target<'_>,
    args: &IngestArgs,
    pace: Pace,
) -> anyhow::Result<Totals> {
    let stdin = args.input.as_os_str() == "-";
    if args.looping && stdin {
        bail!("--loop reads the file again from the top: give a FILE, not stdin");
    }
    // Opened here so that a missing file is an error before anything starts.
    drop(open(&args.input).with_context(|| format!("opening {}", display(&args.input)))?);
    let size = if stdin {
        None
    } else {
        std::fs::metadata(&args.input)
            .ok()
            .map(|m| m.len())
            .filter(|&n| n > 0)
    };
    let start = Instant::now();
    let schedule = Schedule {
        path: args.input.clone(),
        speed: pace.0,
        looping: args.looping,
        start_epoch_ms: epoch_ms_now(),
    };
    let (tx, rx) = mpsc::channel(READ_AHEAD_LINES);
    let reader = std::thread::spawn(move || schedule.read(&tx));
    let mut sender = Sender {
        target,
        start,
        max_bytes: args.batch_bytes,
        rx,
        pending: None,
        reader_done: false,
        totals: Totals::default(),
        progress: Progress::new(io::stderr().is_terminal(), size, start),
        last_sent: None,
    };
    let outcome = sender.run().await;
    sender.progress.finish();
    let Sender { rx, totals, .. } = sender;
    // The reader stops at its next send once the channel is closed.
    drop(rx);
    let _ = reader.join();
    match outcome {
        Ok(()) => Ok(totals),
        Err(e) => bail!(
            "{e:#} ({} lines were sent, {} accepted)",
            totals.sent,
            totals.accepted
        ),
    }
}

fn epoch_ms_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// `ms` rounded up to a whole second.
fn whole_seconds_up(ms: i64) -> i64 {
    ms.div_euclid(1000) * 1000 + if ms.rem_euclid(1000) == 0 { 0 } else { 1000 }
}

/// The reader's side: what to read and how to time it.
struct Schedule {
    path: PathBuf,
    speed: f64,
    looping: bool,
    /// Wall-clock time of the start, to shift later passes to.
    start_epoch_ms: i64,
}

/// What one pass over the file saw.
struct PassSeen {
    /// Non-blank lines.
    lines: u64,
    /// The first and last readable times, and how many lines had one.
    first_ms: Option<i64>,
    last_ms: Option<i64>,
    timed: u64,
}

impl Schedule {
    /// Reads the file (again and again with `--loop`), sending each line with its due time
    /// down `tx`; stops at the end, on a read error (sent on) or when the receiver is gone.
    fn read(self, tx: &mpsc::Sender<io::Result<Due>>) {
        let mut pass = 0u32;
        let mut pass_start_ms = 0.0f64;
        let mut shift: Option<Shift> = None;
        let mut t0: Option<i64> = None;
        loop {
            let seen = match open(&self.path)
                .and_then(|input| self.read_pass(input, pass, pass_start_ms, &mut t0, shift, tx))
            {
                Ok(Some(seen)) => seen,
                Ok(None) => return,
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            };
            if !self.looping || seen.lines == 0 {
                return;
            }
            let span = match (seen.first_ms, seen.last_ms) {
                (Some(first), Some(last)) => (last - first).max(0),
                _ => 0,
            };
            // The file is read as a circle: the next pass starts one mean gap after the
            // last line.
            let gap = span / i64::try_from(seen.timed.max(2) - 1).unwrap_or(1);
            let pass_ms = match span + gap {
                0 => MIN_PASS.as_millis() as i64,
                ms => ms,
            };
            pass_start_ms += pass_ms as f64 / self.speed;
            pass += 1;
            // Times shifted so the pass reads as recorded now, and never overlapping the
            // pass before (so no id repeats, whatever the speed).
            // Whole seconds, so created_at (which has whole seconds) moves exactly as
            // timestamp_ms and the ids do.
            let first = t0.unwrap_or(self.start_epoch_ms);
            let to_now = self.start_epoch_ms + pass_start_ms as i64 - first;
            let after_previous = shift.map_or(0, |s| s.ms) + span + 1;
            shift = Some(Shift {
                ms: whole_seconds_up(to_now.max(after_previous)),
            });
        }
    }

    /// One pass; `None` when the receiver is gone.
    fn read_pass(
        &self,
        mut input: Box<dyn io::BufRead + Send>,
        pass: u32,
        pass_start_ms: f64,
        t0: &mut Option<i64>,
        shift: Option<Shift>,
        tx: &mpsc::Sender<io::Result<Due>>,
    ) -> io::Result<Option<PassSeen>> {
        let mut seen = PassSeen {
            lines: 0,
            first_ms: None,
            last_ms: None,
            timed: 0,
        };
        let mut buf = Vec::new();
        let mut line = 0u64;
        let mut position = 0u64;
        let mut previous_ms: Option<i64> = None;
        let mut last_offset_ms = pass_start_ms;
        loop {
            buf.clear();
            let read = input.read_until(b'\n', &mut buf)?;
            if read == 0 {
                return Ok(Some(seen));
            }
            position += read as u64;
            line += 1;
            if buf.trim_ascii().is_empty() {
                continue;
            }
            seen.lines += 1;
            // The first pass sends the line as it is and needs only its time; later passes
            // rewrite it: a plain post in place, anything else through a `Value`.
            let own_ms = raw_line_time_ms(&buf);
            let rewritten = match shift {
                Some(shift) => match shift.apply_to_post_bytes(&buf) {
                    Some(bytes) => Some(bytes),
                    None => serde_json::from_slice::<Value>(&buf).ok().map(|mut value| {
                        shift.apply(&mut value);
                        value.to_string().into_bytes()
                    }),
                },
                None => None,
            };
            if let Some(ms) = own_ms {
                seen.timed += 1;
                seen.first_ms.get_or_insert(ms);
                seen.last_ms = Some(ms);
                t0.get_or_insert(ms);
            }
            // A line without a readable time goes with the one before it.
            let at_ms = own_ms.or(previous_ms);
            previous_ms = at_ms;
            let after_first = match (at_ms, *t0) {
                (Some(at), Some(first)) => (at - first) as f64 / self.speed,
                _ => 0.0,
            };
            // Never before the line above: the file's order is kept.
            let offset_ms = (pass_start_ms + after_first).max(last_offset_ms);
            last_offset_ms = offset_ms;
            let mut body = match rewritten {
                Some(bytes) => bytes,
                None => buf.trim_ascii_end().to_vec(),
            };
            body.push(b'\n');
            let due = Due {
                body,
                line,
                pass,
                offset: Duration::from_secs_f64(offset_ms.max(0.0) / 1000.0),
                position,
            };
            if tx.blocking_send(Ok(due)).is_err() {
                return Ok(None);
            }
        }
    }
}

/// Lines sent in one request.
struct Batch {
    body: Vec<u8>,
    /// (line, pass) of each line, in order.
    places: Vec<(u64, u32)>,
    /// Where the last line ends in the file.
    position: u64,
}

/// The request in flight: its batch and the server's answer.
type InFlight<'a> = Pin<Box<dyn Future<Output = (Batch, anyhow::Result<IngestReply>)> + 'a>>;

/// The sender's side.
struct Sender<'t, 'a> {
    target: &'t Target<'a>,
    start: Instant,
    max_bytes: usize,
    rx: mpsc::Receiver<io::Result<Due>>,
    /// The next line, taken from the reader but not yet due.
    pending: Option<Due>,
    reader_done: bool,
    totals: Totals,
    progress: Progress,
    /// When the last request left.
    last_sent: Option<Instant>,
}

impl<'t, 'a> Sender<'t, 'a> {
    /// Sends until the reader is done or a signal comes; the request in flight then is
    /// always finished.
    async fn run(&mut self) -> anyhow::Result<()> {
        let stop = stop_requested();
        tokio::pin!(stop);
        let mut in_flight: Option<InFlight<'t>> = None;
        let outcome = loop {
            let Some(next) = &self.pending else {
                if self.reader_done {
                    break Ok(());
                }
                tokio::select! {
                    biased;
                    () = &mut stop => break Ok(()),
                    answer = finished(&mut in_flight) => {
                        in_flight = None;
                        if let Err(e) = self.settle(answer) {
                            break Err(e);
                        }
                    }
                    due = self.rx.recv() => match due {
                        Some(Ok(due)) => self.pending = Some(due),
                        Some(Err(e)) => break Err(anyhow::Error::new(e).context("reading the file")),
                        None => self.reader_done = true,
                    },
                }
                continue;
            };
            let due = self.start + next.offset;
            let send_at = self.last_sent.map_or(due, |last| due.max(last + TICK));
            tokio::select! {
                biased;
                () = &mut stop => break Ok(()),
                answer = finished(&mut in_flight) => {
                    in_flight = None;
                    if let Err(e) = self.settle(answer) {
                        break Err(e);
                    }
                    continue;
                }
                () = tokio::time::sleep_until(send_at) => {}
            }
            // One request in flight: the next waits for its answer.
            if let Some(request) = in_flight.take()
                && let Err(e) = self.settle(request.await)
            {
                break Err(e);
            }
            match self.gather() {
                Ok(batch) => {
                    let target = self.target;
                    in_flight = Some(Box::pin(async move {
                        let answer = target.send(Bytes::copy_from_slice(&batch.body)).await;
                        (batch, answer)
                    }));
                }
                Err(e) => break Err(e),
            }
        };
        if let Some(request) = in_flight.take() {
            let settled = self.settle(request.await);
            outcome.and(settled)
        } else {
            outcome
        }
    }

    /// The pending line and every line due by now after it, up to the batch size.
    fn gather(&mut self) -> anyhow::Result<Batch> {
        let now = Instant::now();
        let mut batch = Batch {
            body: Vec::new(),
            places: Vec::new(),
            position: 0,
        };
        let mut lag = Duration::ZERO;
        while let Some(due) = self.pending.take() {
            let at = self.start + due.offset;
            let full =
                !batch.places.is_empty() && batch.body.len() + due.body.len() > self.max_bytes;
            if at > now || full {
                self.pending = Some(due);
                break;
            }
            if batch.places.is_empty() {
                lag = now.saturating_duration_since(at);
            }
            batch.body.extend_from_slice(&due.body);
            batch.places.push((due.line, due.pass));
            batch.position = due.position;
            match self.rx.try_recv() {
                Ok(Ok(next)) => self.pending = Some(next),
                Ok(Err(e)) => return Err(anyhow::Error::new(e).context("reading the file")),
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => self.reader_done = true,
            }
        }
        self.last_sent = Some(now);
        self.progress.lag = lag;
        Ok(batch)
    }

    /// Counts an answered request and reports its rejected lines.
    fn settle(
        &mut self,
        (batch, answer): (Batch, anyhow::Result<IngestReply>),
    ) -> anyhow::Result<()> {
        let answer = answer?;
        self.progress.clear();
        report_rejected(&batch.body, &answer.rejected, |index| {
            let place = usize::try_from(index.saturating_sub(1))
                .ok()
                .and_then(|i| batch.places.get(i));
            match place {
                Some((line, 0)) => format!("line {line}"),
                Some((line, pass)) => format!("line {line} (pass {})", pass + 1),
                None => format!("request line {index}"),
            }
        });
        self.totals.sent += batch.places.len() as u64;
        self.totals.accepted += answer.accepted;
        self.totals.rejected += answer.rejected.len() as u64;
        if let Some(&(line, pass)) = batch.places.last() {
            self.progress.at(line, pass, batch.position);
        }
        self.progress.show(&self.totals);
        Ok(())
    }
}

/// Completes with the answer of the request in flight; never, when there is none.
async fn finished(in_flight: &mut Option<InFlight<'_>>) -> (Batch, anyhow::Result<IngestReply>) {
    match in_flight {
        Some(request) => request.await,
        None => std::future::pending().await,
    }
}

/// The progress line's figures (see [`ProgressLine`]).
struct Progress {
    line_out: ProgressLine,
    /// The file's size, for the percentage (none on stdin).
    size: Option<u64>,
    /// Where the last answered request ended.
    line: u64,
    pass: u32,
    position: u64,
    /// How late the last request left.
    lag: Duration,
}

impl Progress {
    fn new(terminal: bool, size: Option<u64>, start: Instant) -> Self {
        Self {
            line_out: ProgressLine::new("sluice ingest", terminal, start.into_std()),
            size,
            line: 0,
            pass: 0,
            position: 0,
            lag: Duration::ZERO,
        }
    }

    fn at(&mut self, line: u64, pass: u32, position: u64) {
        self.line = line;
        self.pass = pass;
        self.position = position;
    }

    /// Writes the line if it is time to.
    fn show(&mut self, totals: &Totals) {
        let Some(rate) = self.line_out.due(totals.sent) else {
            return;
        };
        let mut text = format!(
            "{} sent, {} accepted, {} rejected, {rate:.0} posts/s, line {}",
            totals.sent, totals.accepted, totals.rejected, self.line
        );
        if let Some(size) = self.size {
            let percent = 100.0 * self.position as f64 / size as f64;
            text.push_str(&format!(" ({percent:.1}% of the file)"));
        }
        if self.pass > 0 {
            text.push_str(&format!(", pass {}", self.pass + 1));
        }
        text.push_str(&format!(", lag {:.2} s", self.lag.as_secs_f64()));
        self.line_out.write(&text);
    }

    /// Clears the progress line so another message can be printed.
    fn clear(&mut self) {
        self.line_out.clear();
    }

    /// Leaves the last progress line on screen.
    fn finish(&mut self) {
        self.line_out.keep();
    }
}

#[cfg(test)]
mod tests {
    use super::super::retime::line_time_ms;
    use super::*;

    #[test]
    fn paces_are_original_or_a_positive_speed() {
        assert_eq!(Pace::parse("original"), Ok(Pace(1.0)));
        assert_eq!(Pace::parse("10x"), Ok(Pace(10.0)));
        assert_eq!(Pace::parse("0.5x"), Ok(Pace(0.5)));
        for bad in [
            "", "x", "10", "0x", "-2x", "fastx", "infx", "NaNx", "1.5X", "Original",
        ] {
            let err = Pace::parse(bad).expect_err(bad);
            assert!(err.contains("such as 10x or 0.5x"), "{bad}: {err}");
        }
    }

    /// Reads `file` as the reader thread does and returns (line, pass, due ms, body).
    fn schedule(
        file: &str,
        speed: f64,
        looping: bool,
        limit: usize,
    ) -> Vec<(u64, u32, u128, String)> {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("f.ndjson");
        std::fs::write(&path, file).expect("write");
        let schedule = Schedule {
            path,
            speed,
            looping,
            start_epoch_ms: 1_600_000_000_000,
        };
        let (tx, mut rx) = mpsc::channel(limit);
        let reader = std::thread::spawn(move || schedule.read(&tx));
        let mut out = Vec::new();
        while out.len() < limit {
            let Some(due) = rx.blocking_recv() else { break };
            let due = due.expect("reads");
            out.push((
                due.line,
                due.pass,
                due.offset.as_millis(),
                String::from_utf8(due.body).expect("UTF-8"),
            ));
        }
        drop(rx);
        reader.join().expect("reader");
        out
    }

    const FILE: &str = "{\"created_at\":\"Wed Oct 10 20:19:24 +0000 2018\",\"id\":4194304,\"id_str\":\"4194304\"}\n\
        \n\
        {\"timestamp_ms\":\"1539202764200\",\"id\":2}\n\
        not json\n\
        {\"timestamp_ms\":\"1539202764100\",\"id\":3}\n\
        {\"timestamp_ms\":\"1539202764400\",\"id\":4}\n";

    #[test]
    fn lines_are_due_at_their_times_after_the_first_divided_by_the_speed() {
        let due: Vec<(u64, u32, u128)> = schedule(FILE, 1.0, false, 100)
            .into_iter()
            .map(|(line, pass, ms, _)| (line, pass, ms))
            .collect();
        // The blank line 2 is skipped; line 4 has no time and goes with line 3; line 5 is
        // earlier than line 4 and goes right after it.
        assert_eq!(
            due,
            [
                (1, 0, 0),
                (3, 0, 200),
                (4, 0, 200),
                (5, 0, 200),
                (6, 0, 400)
            ]
        );
        let fast: Vec<u128> = schedule(FILE, 10.0, false, 100)
            .into_iter()
            .map(|(_, _, ms, _)| ms)
            .collect();
        assert_eq!(fast, [0, 20, 20, 20, 40]);
    }

    #[test]
    fn the_first_pass_is_sent_as_it_is_and_later_passes_are_shifted() {
        let got = schedule(FILE, 1.0, true, 15);
        assert_eq!(
            got[0].3,
            FILE.lines().next().map(|l| format!("{l}\n")).expect("line")
        );
        assert_eq!(got[2].3, "not json\n");
        // The second pass starts one mean gap (400 ms over 3 gaps) after the last line's
        // 400 ms.
        let second: Vec<&(u64, u32, u128, String)> = got.iter().filter(|d| d.1 == 1).collect();
        assert_eq!(second[0].2, 533);
        assert_eq!(second[4].2, 933);
        let first: Value = serde_json::from_str(&second[0].3).expect("JSON");
        // Shifted to the start's wall clock plus 533 ms, rounded up to a whole second.
        let shift = 1_600_000_001_000 - 1_539_202_764_000i64;
        let id = 4_194_304 + (u64::try_from(shift).expect("positive") << 22);
        assert_eq!(first["id"], serde_json::json!(id));
        assert_eq!(first["id_str"], id.to_string());
        // created_at has whole seconds; timestamp_ms keeps the milliseconds.
        assert_eq!(line_time_ms(&first), Some(1_600_000_001_000));
        let second_line: Value = serde_json::from_str(&second[1].3).expect("JSON");
        assert_eq!(line_time_ms(&second_line), Some(1_600_000_001_200));
        assert_eq!(second[2].3, "not json\n");
        // The third pass is as far after the second as the second after the first.
        let third: Vec<&(u64, u32, u128, String)> = got.iter().filter(|d| d.1 == 2).collect();
        assert_eq!(third[0].2, 1066);
        let third_second: Value = serde_json::from_str(&third[1].3).expect("JSON");
        // 1066 ms after the start, rounded up.
        assert_eq!(line_time_ms(&third_second), Some(1_600_000_002_200));
    }

    #[test]
    fn passes_never_overlap_when_faster_than_the_clock() {
        // At 100x a pass takes 5 ms of wall time but spans 500 ms of post time: each pass
        // is shifted past the one before instead of to the clock.
        let got = schedule(FILE, 100.0, true, 15);
        let ids_of = |pass: u32| -> Vec<u64> {
            got.iter()
                .filter(|d| d.1 == pass)
                .filter_map(|d| serde_json::from_str::<Value>(&d.3).ok())
                .filter_map(|v| v["id"].as_u64())
                .collect()
        };
        let all: Vec<u64> = (0..=2).flat_map(ids_of).collect();
        assert_eq!(all.len(), 12, "{all:?}");
        // Each later pass's ids (and so its times) all come after the pass before.
        for pass in 1..=2 {
            let before = ids_of(pass - 1);
            let after = ids_of(pass);
            assert!(after.iter().min() > before.iter().max(), "{all:?}");
        }
    }
}
