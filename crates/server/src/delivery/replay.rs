//! Replay: posts read back from the post log for one connection, routed exactly as live
//! delivery would route them ([`super::select`]), framed into [`Segment`]s by the same
//! [`SegmentBuilder`] live delivery uses, and handed to its body through a bounded
//! [`ReplayFeed`]. A gzip connection's segments are compressed here, in the blocking
//! section that read them, so a replay costs the async workers (which write every live
//! connection's body) no compression: the body writes a compressed segment as it is.
//!
//! Two kinds:
//! - **Backfill** (`backfillMinutes`): from the first post of the window, read until caught
//!   up with the log; then *go live* (register the connection, so the pipeline fills its
//!   outbox), note how far live delivery has got in the log at that moment (the pipeline's
//!   [`DeliveryMark`]), and read up to there. A post is in the log before the pipeline
//!   delivers it (the node's own log, or in cluster mode the backend's, which the node's
//!   consumer reads), so every post is either below that point (replayed) or delivered
//!   live after registration: no gap at the switch. A registration that falls between the
//!   pipeline moving its mark and pushing that batch gets live segments the replay also
//!   sent; the outbox drops them ([`Outbox::replayed_below`]). Then the body goes on with
//!   the outbox.
//! - **Recovery** (`startTime`/`endTime`): the posts appended in the window, then the
//!   outbox is closed with the completion message; nothing live.
//! - **Replay** (the Replay API's `fromDate`/`toDate`): the same, ended by one of Replay's
//!   three messages. A stretch of the log that cannot be read is skipped to the next
//!   minute and named in `minutes_failed` (`Replay Request Completed with Errors`); a log
//!   that keeps failing, or cannot be searched for the next minute, ends the replay with
//!   `Replay Request Failed to Complete` and the `unprocessed_range` left.
//!
//! The reading runs in short blocking sections of bounded size, each producing at most one
//! segment of about `max_batch_bytes`; the feed holds two segments, so a replay waits for
//! its client and never holds the whole window in memory. A backfill's or a recovery's
//! sections run on tokio's blocking pool; a Replay job's, which may read hours of the log
//! as fast as its client takes them, on the low-priority [`crate::background`] threads,
//! so live delivery gets the cores first.
//!
//! Compliance events received since a post was logged may take it away (a `delete`) or
//! scrub its location (`scrub_geo`): see [`crate::compliance`].
//!
//! The log keeps a post's bytes and datacenter, not its id: a volume stream's replay reads
//! the id from the bytes for sampling and partitions, and a rules stream's takes it from
//! the matcher's parse, which it needs anyway (see [`Selector::post`]).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use sluice_postlog::{LogError, PostLog};
use sluice_wire::{InfoBody, UnprocessedRange};
use tokio::sync::mpsc;

use super::body::ReplayFeed;
use super::encoding::Encoding;
use super::format::Format;
use super::gzip::with_thread_deflater;
use super::outbox::{CloseReason, Outbox};
use super::segment::{Segment, SegmentBuilder};
use super::select::Selector;
use crate::clock::now_ms;
use crate::compliance::Compliance;
use crate::delivery_mark::DeliveryMark;
use crate::registry::LiveStream;

/// Posts asked of the log per read.
const READ_POSTS: usize = 512;
/// Posts one blocking section looks at, at most, before handing over what it has (keeps
/// each section short when few posts match, e.g. one partition of the Firehose).
const SCAN_POSTS: usize = 16_384;
/// Segments waiting in a feed: the replay is this far ahead of its client, at most.
const FEED_SEGMENTS: usize = 2;
/// How long after a recovery window's end a post stamped inside the window may still
/// become readable (the pipeline stamps a batch just before appending it).
const APPEND_GRACE_MS: u64 = 1_000;
/// Pause before reading again after an empty read from a log that has posts to give.
const STALL_RETRY: Duration = Duration::from_millis(50);
/// Empty reads in a row before a replay gives up (about 2 s).
const MAX_STALLS: u32 = 40;
/// Minutes in a row a Replay job may fail to read before it gives up on the rest of its
/// window: a log that fails this often is not coming back within the job.
const MAX_FAILED_MINUTES_IN_A_ROW: u32 = 3;
const MINUTE_MS: u64 = 60_000;

/// Who a replay is for: the stream and what its connection asks for.
pub struct ReplayTarget {
    /// The post log to read.
    pub log: Arc<dyn PostLog>,
    /// How far live delivery has got in `log`: a backfill that has gone live replays up to
    /// there. Without it (tests), up to the log's end.
    pub delivery_mark: Option<Arc<DeliveryMark>>,
    /// The stream (its product and current rules decide what is sent).
    pub stream: Arc<LiveStream>,
    /// The connection's partition (volume streams).
    pub partition: Option<u32>,
    /// Powerstream `localDcOnly=true`.
    pub local_dc_only: bool,
    /// How the connection writes posts.
    pub format: Format,
    /// Gzip or identity: gzip segments are compressed by the replay's blocking sections.
    pub encoding: Encoding,
    /// This node's datacenter.
    pub datacenter: Arc<str>,
    /// About how many message bytes one feed segment holds.
    pub max_batch_bytes: usize,
    /// What compliance events take away from what is replayed.
    pub compliance: Arc<Compliance>,
}

/// Registers the connection for live delivery; `false` when the client has already gone
/// (the replay then stops).
pub type GoLive = Box<dyn FnOnce() -> bool + Send + 'static>;

/// What to replay.
pub enum ReplayKind {
    /// Backfill from the first post appended at or after `from_ms`, then [`GoLive`] and
    /// the posts appended before registration; the body then continues with the live outbox.
    Backfill {
        /// The window's start, epoch milliseconds, by append time.
        from_ms: u64,
        /// Registers the connection.
        go_live: GoLive,
        /// The connection's outbox, closed if the replay cannot be completed.
        outbox: Arc<Outbox>,
    },
    /// Recovery of the posts appended from `from_ms` to before `end_ms`; then `outbox` is
    /// closed with the `Recovery Request Completed` message.
    Recovery {
        /// The window's start (inclusive), epoch milliseconds, by append time.
        from_ms: u64,
        /// The window's end (exclusive), epoch milliseconds, by append time.
        end_ms: u64,
        /// The connection's outbox (never registered: it only carries the close).
        outbox: Arc<Outbox>,
    },
    /// A Replay API job: the posts appended from `from_ms` to before `end_ms` (whole
    /// minutes); then `outbox` is closed with `Replay Request Completed` (with or without
    /// errors) or `Replay Request Failed to Complete`.
    Replay {
        /// The window's start (inclusive), epoch milliseconds, by append time.
        from_ms: u64,
        /// The window's end (exclusive), epoch milliseconds, by append time.
        end_ms: u64,
        /// The connection's outbox (never registered: it only carries the close).
        outbox: Arc<Outbox>,
        /// Logged posts read per second at most (`None`: as fast as the client reads).
        max_rate: Option<NonZeroU32>,
    },
}

/// Starts the replay on the runtime; returns the feed for the connection's body. The
/// replay stops when the body is dropped (client gone, server shutdown).
pub fn spawn(target: ReplayTarget, kind: ReplayKind) -> ReplayFeed {
    let (tx, rx) = mpsc::channel(FEED_SEGMENTS);
    tokio::spawn(async move {
        let job = matches!(kind, ReplayKind::Replay { .. });
        let reader = Reader::new(target, job);
        match kind {
            ReplayKind::Backfill {
                from_ms,
                go_live,
                outbox,
            } => match reader.seek(from_ms).await {
                (reader, Ok(())) => backfill(reader, go_live, &outbox, tx).await,
                // Without a start there is nothing to backfill: the connection goes live
                // and the failure is counted and logged.
                (reader, Err(e)) => {
                    give_up(&reader, &e);
                    go_live();
                }
            },
            ReplayKind::Recovery {
                from_ms,
                end_ms,
                outbox,
            } => match reader.seek(from_ms).await {
                (reader, Ok(())) => recovery(reader, end_ms, &outbox, tx).await,
                (reader, Err(e)) => {
                    give_up(&reader, &e);
                    outbox.close(CloseReason::Operational);
                }
            },
            ReplayKind::Replay {
                from_ms,
                end_ms,
                outbox,
                max_rate,
            } => match reader.paced(max_rate).seek(from_ms).await {
                (reader, Ok(())) => replay_window(reader, from_ms, end_ms, &outbox, tx).await,
                (reader, Err(e)) => {
                    give_up(&reader, &e);
                    replay_failed(&reader, from_ms, end_ms, &outbox);
                }
            },
        }
    });
    rx
}

async fn backfill(mut reader: Reader, go_live: GoLive, outbox: &Outbox, tx: mpsc::Sender<Segment>) {
    let mut stalls = Stalls::default();
    // (1) Catch up with live delivery (with the log, when there is no mark): posts beyond
    // it will reach the connection live once it is registered.
    loop {
        let bound = match &reader.target.delivery_mark {
            Some(mark) => Bound::Seq(mark.below()),
            None => Bound::Open,
        };
        let (back, progress) = reader.advance(bound, &tx, &mut stalls).await;
        reader = back;
        match progress {
            Progress::More => {}
            Progress::Ended { .. } => break,
            Progress::ClientGone => return,
            Progress::Failed(e) => return give_up(&reader, &e),
            Progress::Stuck => return cut_off(&reader, outbox),
        }
    }
    // (2) Register, then send what was appended before registration and missed it. Going
    // live with part of this missing would be a gap: a log that fails here closes the
    // connection instead (the client reconnects with backfill).
    if tx.is_closed() || !go_live() {
        return;
    }
    let end = match &reader.target.delivery_mark {
        Some(mark) => mark.below(),
        None => reader.target.log.next_seq(),
    };
    // Live segments of batches the replay covered (pushed between registration and the
    // read of the mark) would be duplicates: they are dropped, up to where the replay got
    // (short of `end` when the log ended early, e.g. a cluster log that cannot be
    // reached: then a batch it did not finish is still sent live).
    let replayed = |reader: &Reader| outbox.replayed_below(reader.cursor.min(end));
    while reader.cursor < end {
        let (back, progress) = reader.advance(Bound::Seq(end), &tx, &mut stalls).await;
        reader = back;
        match progress {
            Progress::More => {}
            Progress::Ended { .. } => break,
            Progress::ClientGone => return,
            Progress::Failed(e) => {
                give_up(&reader, &e);
                replayed(&reader);
                return cut_off(&reader, outbox);
            }
            Progress::Stuck => {
                replayed(&reader);
                return cut_off(&reader, outbox);
            }
        }
    }
    replayed(&reader);
    // Dropping `tx` hands the body over to the live outbox.
}

async fn recovery(mut reader: Reader, end_ms: u64, outbox: &Outbox, tx: mpsc::Sender<Segment>) {
    let mut stalls = Stalls::default();
    loop {
        let (back, progress) = reader.advance(Bound::Time(end_ms), &tx, &mut stalls).await;
        reader = back;
        match progress {
            Progress::More => {}
            Progress::Ended {
                past_bound: true, ..
            } => break,
            Progress::Ended { .. } => {
                // Nothing more in the log. A post stamped just before `end_ms` may still be
                // on its way in; once the grace has passed, none can be.
                let now = u64::try_from(now_ms()).unwrap_or(0);
                if now >= end_ms + APPEND_GRACE_MS {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Progress::ClientGone => return,
            Progress::Failed(e) => {
                give_up(&reader, &e);
                outbox.close(CloseReason::Operational);
                return;
            }
            Progress::Stuck => return cut_off(&reader, outbox),
        }
    }
    let line =
        InfoBody::recovery_completed(sluice_wire::sent::stream_sent_now(), reader.activity_count);
    outbox.close(CloseReason::Completed(Bytes::from(sluice_wire::to_vec(
        &line,
    ))));
}

/// A Replay job: the window, minutes that cannot be read skipped and named, then Replay's
/// completion message (see the module doc).
async fn replay_window(
    mut reader: Reader,
    from_ms: u64,
    end_ms: u64,
    outbox: &Outbox,
    tx: mpsc::Sender<Segment>,
) {
    let mut stalls = Stalls::default();
    let mut minutes_failed: Vec<u64> = Vec::new();
    let mut failures_in_a_row = 0;
    // Where reading resumed last (the window's start, or the minute after one skipped).
    let mut resumed_ms = from_ms;
    loop {
        let (back, progress) = reader.advance(Bound::Time(end_ms), &tx, &mut stalls).await;
        reader = back;
        // The minute being read: that of the last post passed, or where reading resumed.
        let minute = floor_minute(reader.last_ms.unwrap_or(0).max(resumed_ms));
        match progress {
            Progress::More => failures_in_a_row = 0,
            Progress::Ended {
                past_bound: true, ..
            } => break,
            Progress::Ended { .. } => {
                let now = u64::try_from(now_ms()).unwrap_or(0);
                if now >= end_ms + APPEND_GRACE_MS {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Progress::ClientGone => return,
            Progress::Failed(e) => {
                give_up(&reader, &e);
                failures_in_a_row += 1;
                if failures_in_a_row > MAX_FAILED_MINUTES_IN_A_ROW {
                    return replay_failed(&reader, minute, end_ms, outbox);
                }
                if minutes_failed.last() != Some(&minute) {
                    minutes_failed.push(minute);
                }
                resumed_ms = minute + MINUTE_MS;
                if resumed_ms >= end_ms {
                    break;
                }
                let (back, found) = reader.seek(resumed_ms).await;
                reader = back;
                if let Err(e) = found {
                    give_up(&reader, &e);
                    return replay_failed(&reader, resumed_ms, end_ms, outbox);
                }
            }
            Progress::Stuck => return replay_failed(&reader, minute, end_ms, outbox),
        }
    }
    let minutes_failed = minutes_failed.into_iter().map(stream_time).collect();
    let line = InfoBody::replay_completed(
        sluice_wire::sent::stream_sent_now(),
        reader.activity_count,
        minutes_failed,
    );
    outbox.close(CloseReason::Completed(Bytes::from(sluice_wire::to_vec(
        &line,
    ))));
}

/// Ends a Replay job that could not deliver `[from_ms, end_ms)`.
fn replay_failed(reader: &Reader, from_ms: u64, end_ms: u64, outbox: &Outbox) {
    tracing::warn!(
        account = reader.target.stream.key.account,
        stream = reader.target.stream.key.label,
        "a replay job stopped before the end of its window: the post log kept failing"
    );
    let unprocessed = UnprocessedRange {
        from_date: stream_time(from_ms),
        to_date: stream_time(end_ms),
    };
    let line = InfoBody::replay_failed(
        sluice_wire::sent::stream_sent_now(),
        unprocessed,
        reader.activity_count,
    );
    outbox.close(CloseReason::Completed(Bytes::from(sluice_wire::to_vec(
        &line,
    ))));
}

/// The start of the minute `ms` is in.
fn floor_minute(ms: u64) -> u64 {
    ms - ms % MINUTE_MS
}

/// Epoch milliseconds in the stream `sent` format.
fn stream_time(ms: u64) -> String {
    let at = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    sluice_wire::sent::stream_sent(at)
}

/// What one step of a replay loop came to.
enum Progress {
    /// Posts were read (and sent): go on.
    More,
    /// The log had nothing more (`at_end`) or the bound was reached.
    Ended {
        /// The bound was reached.
        past_bound: bool,
    },
    /// The connection's body is gone.
    ClientGone,
    /// Reading the log failed.
    Failed(LogError),
    /// The log kept returning nothing although it holds posts from the cursor on.
    Stuck,
}

/// Consecutive reads that came back empty from a log that has posts to give.
#[derive(Default)]
struct Stalls(u32);

impl Stalls {
    /// Waits before the next try; `false` once the log has failed for too long.
    async fn wait(&mut self) -> bool {
        self.0 += 1;
        if self.0 > MAX_STALLS {
            return false;
        }
        tokio::time::sleep(STALL_RETRY).await;
        true
    }
}

/// Closes the connection with the operational disconnect: its replay cannot be completed
/// (going on live would leave a gap; a recovery would end short).
fn cut_off(reader: &Reader, outbox: &Outbox) {
    tracing::warn!(
        account = reader.target.stream.key.account,
        stream = reader.target.stream.key.label,
        "closing a replaying connection: the post log did not return posts it holds"
    );
    outbox.close(CloseReason::Operational);
}

fn give_up(reader: &Reader, error: &LogError) {
    crate::telemetry::post_log_error();
    tracing::error!(
        account = reader.target.stream.key.account,
        stream = reader.target.stream.key.label,
        "reading the post log for a replay failed: {error}"
    );
}

/// A Replay job's pace: at most `rate` logged posts read per second, in sections of a
/// tenth of a second's worth, so a job never runs at full speed for long (X's Replay runs
/// "slightly slower than realtime"). Time a slow client left unused is credited for one
/// section at most: a job that was held back does not then race to catch up.
struct Pace {
    rate: NonZeroU32,
    /// When the posts counted so far are due (tokio's clock, which tests can pause).
    due: tokio::time::Instant,
    /// Posts counted so far.
    counted: u64,
}

/// The credit a held-back job keeps: one section's worth of time.
const PACE_CREDIT: Duration = Duration::from_millis(100);

impl Pace {
    fn new(rate: NonZeroU32) -> Self {
        Self {
            rate,
            due: tokio::time::Instant::now(),
            counted: 0,
        }
    }

    /// Posts one blocking section reads at most.
    fn section_posts(&self) -> usize {
        (self.rate.get() as usize / 10).clamp(1, SCAN_POSTS)
    }

    /// Sleeps until the rate allows the `read` posts read since the job started.
    async fn wait(&mut self, read: u64) {
        let now = tokio::time::Instant::now();
        let new = read.saturating_sub(self.counted);
        self.counted = read;
        let earliest = now.checked_sub(PACE_CREDIT).unwrap_or(now);
        self.due = self.due.max(earliest)
            + Duration::from_secs_f64(new as f64 / f64::from(self.rate.get()));
        if self.due > now {
            tokio::time::sleep_until(self.due).await;
        }
    }
}

/// Where a read stops.
#[derive(Clone, Copy)]
enum Bound {
    /// At the end of the log.
    Open,
    /// Before this sequence number.
    Seq(u64),
    /// Before the first post appended at or after this time (epoch ms).
    Time(u64),
}

/// The state of one replay: where it is in the log, and the selector it routes with.
/// Moved into each blocking section and back out.
struct Reader {
    target: ReplayTarget,
    /// A Replay API job: its sections run on the low-priority [`background`](crate::background) threads, and
    /// it sends each edited post in its final state only (a version a later one replaced
    /// is left out; docs/compliance.md, "Edits").
    job: bool,
    /// A Replay job's pace, when it has one.
    pace: Option<Pace>,
    selector: Selector,
    cursor: u64,
    /// Posts read from the log so far (the pace counts them).
    scanned: u64,
    activity_count: u64,
    /// The append time of the last post passed, if any.
    last_ms: Option<u64>,
}

/// What one blocking section produced.
struct Step {
    /// The messages it routed to the connection, if any.
    segment: Option<Segment>,
    /// The log had nothing more from the cursor on.
    at_end: bool,
    /// The bound was reached.
    past_bound: bool,
    /// The log returned nothing although it holds posts from the cursor on (a read that
    /// timed out: the cluster's log answers short when a fetch expires). Try again.
    stalled: bool,
}

impl Reader {
    fn new(target: ReplayTarget, job: bool) -> Self {
        Self {
            job,
            pace: None,
            selector: {
                let mut selector = Selector::new(target.stream.rules.node());
                selector.only([target.stream.rules.stream_number()]);
                selector
            },
            target,
            cursor: 0,
            scanned: 0,
            activity_count: 0,
            last_ms: None,
        }
    }

    /// This reader, reading at most `max_rate` posts per second.
    fn paced(mut self, max_rate: Option<NonZeroU32>) -> Self {
        self.pace = max_rate.map(Pace::new);
        self
    }

    /// Moves the cursor to the first post appended at or after `ms`.
    async fn seek(self, ms: u64) -> (Self, Result<(), LogError>) {
        self.off_the_workers(move |mut reader| {
            let found = reader
                .target
                .log
                .seq_at_time(ms)
                .map(|seq| reader.cursor = seq);
            (reader, found)
        })
        .await
    }

    /// Reads and routes the next posts off the async workers.
    async fn step(self, bound: Bound) -> (Self, Result<Step, LogError>) {
        self.off_the_workers(move |mut reader| {
            let step = reader.step_blocking(bound);
            (reader, step)
        })
        .await
    }

    /// Runs a blocking section: a Replay job's on the low-priority threads, a backfill's or
    /// a recovery's (a client waiting to go live or to catch up) on tokio's blocking pool.
    async fn off_the_workers<T: Send + 'static>(
        self,
        section: impl FnOnce(Self) -> (Self, T) + Send + 'static,
    ) -> (Self, T) {
        if self.job {
            crate::background::run(move || section(self)).await
        } else {
            tokio::task::spawn_blocking(move || section(self))
                .await
                .expect("replay reading does not panic")
        }
    }

    /// One step of a replay loop: reads up to `bound`, sends what it routed to `tx`, and
    /// waits out an empty read from a log that holds the posts (see [`Stalls`]).
    async fn advance(
        self,
        bound: Bound,
        tx: &mpsc::Sender<Segment>,
        stalls: &mut Stalls,
    ) -> (Self, Progress) {
        let (mut reader, step) = self.step(bound).await;
        let scanned = reader.scanned;
        if let Some(pace) = &mut reader.pace {
            pace.wait(scanned).await;
        }
        let step = match step {
            Ok(step) => step,
            Err(e) => return (reader, Progress::Failed(e)),
        };
        if let Some(segment) = step.segment
            && tx.send(segment).await.is_err()
        {
            return (reader, Progress::ClientGone);
        }
        let progress = if step.stalled {
            if stalls.wait().await {
                Progress::More
            } else {
                Progress::Stuck
            }
        } else {
            *stalls = Stalls::default();
            if step.at_end || step.past_bound {
                Progress::Ended {
                    past_bound: step.past_bound,
                }
            } else {
                Progress::More
            }
        };
        (reader, progress)
    }

    fn step_blocking(&mut self, bound: Bound) -> Result<Step, LogError> {
        let mut framed = SegmentBuilder::default();
        let mut scanned = 0;
        // Replayed posts count as usage too ([`crate::usage`]), apart from live ones.
        let mut replayed = 0;
        let (mut at_end, mut past_bound, mut stalled) = (false, false, false);
        let scan_limit = self.pace.as_ref().map_or(SCAN_POSTS, Pace::section_posts);
        while framed.len() < self.target.max_batch_bytes && scanned < scan_limit {
            let want = READ_POSTS.min(scan_limit - scanned);
            let posts = match self.target.log.read(self.cursor, want) {
                Ok(posts) => posts,
                // What was read before the failure is handed over (and counted); the next
                // step meets the failure again.
                Err(_) if !framed.is_empty() => break,
                Err(e) => return Err(e),
            };
            if posts.is_empty() {
                if self.cursor < self.target.log.next_seq() {
                    let first = self.target.log.seq_at_time(0)?;
                    if first > self.cursor {
                        // Expired since the cursor was set: go on from the oldest retained.
                        self.cursor = first;
                        continue;
                    }
                    stalled = true;
                } else {
                    at_end = true;
                }
                break;
            }
            for post in &posts {
                let beyond = match bound {
                    Bound::Open => false,
                    Bound::Seq(end) => post.seq >= end,
                    Bound::Time(end_ms) => post.appended_ms >= end_ms,
                };
                if beyond {
                    past_bound = true;
                    break;
                }
                self.cursor = post.seq + 1;
                self.last_ms = Some(post.appended_ms);
                scanned += 1;
                self.scanned += 1;
                let Some(bytes) = self.target.compliance.sendable(&post.bytes, None, self.job)
                else {
                    continue;
                };
                let target = &self.target;
                let local = *post.datacenter == *target.datacenter;
                // The log does not keep the id: the selector reads it when it needs it.
                let mut router = self.selector.post(&bytes, None, local);
                if let Some(routed) = router.route(&target.stream)
                    && routed.reaches(target.partition, target.local_dc_only)
                {
                    framed.push(&routed, &bytes, &target.format);
                    self.activity_count += 1;
                    replayed += 1;
                }
            }
            if past_bound {
                break;
            }
            if posts.len() < want && self.cursor >= self.target.log.next_seq() {
                at_end = true;
                break;
            }
        }
        self.target
            .stream
            .usage
            .add(crate::usage::hour_of(crate::clock::now_ms()), 0, replayed);
        Ok(Step {
            segment: self.take_segment(&mut framed),
            at_end,
            past_bound,
            stalled,
        })
    }

    /// What `framed` holds as a segment, compressed for a gzip connection (on this
    /// blocking thread's deflater).
    fn take_segment(&self, framed: &mut SegmentBuilder) -> Option<Segment> {
        let taken = match self.target.encoding {
            Encoding::Gzip => with_thread_deflater(|deflater| framed.take(Some(deflater))),
            Encoding::Identity => framed.take(None),
        };
        taken.map(|(segment, _)| segment)
    }
}

#[cfg(test)]
mod tests {
    use sluice_postlog::{MemoryLog, NewPost};
    use sluice_store::{Product, StoredStream, StreamLimits, StreamRef};

    use super::*;
    use crate::delivery::outbox::Pushed;
    use crate::registry::StreamRegistry;

    fn raw(i: u64) -> String {
        format!(
            r#"{{"id":{i},"id_str":"{i}","text":"hello {i}","created_at":"Wed Oct 10 20:19:24 +0000 2018"}}"#
        )
    }

    fn append(log: &dyn PostLog, range: std::ops::Range<u64>, at_ms: u64) {
        let posts: Vec<String> = range.map(raw).collect();
        let new: Vec<NewPost<'_>> = posts
            .iter()
            .map(|p| NewPost {
                datacenter: "local",
                bytes: p.as_bytes(),
            })
            .collect();
        log.append(&new, at_ms).unwrap();
    }

    fn powertrack_stream() -> Arc<LiveStream> {
        let registry = StreamRegistry::default();
        let stream = registry.upsert(&StoredStream {
            id: 1,
            stream: StreamRef {
                account: "acme".into(),
                product: Product::PowerTrack,
                label: "prod".into(),
            },
            limits: StreamLimits {
                max_connections: 2,
                max_rules: 10,
            },
        });
        let rule = sluice_rules::parse("hello").unwrap();
        stream.rules.apply(&[(7, rule, None)], &[]);
        stream
    }

    fn target(log: &Arc<MemoryLog>, stream: &Arc<LiveStream>) -> ReplayTarget {
        ReplayTarget {
            log: log.clone(),
            delivery_mark: None,
            stream: stream.clone(),
            partition: None,
            local_dc_only: false,
            format: Format::Native,
            encoding: Encoding::Gzip,
            datacenter: "local".into(),
            // Small batches: the replay takes several steps.
            max_batch_bytes: 500,
            compliance: Compliance::in_memory(),
        }
    }

    async fn ids(mut feed: ReplayFeed) -> Vec<u64> {
        let mut ids = Vec::new();
        while let Some(segment) = feed.recv().await {
            let messages = std::str::from_utf8(segment.plain_bytes()).unwrap();
            assert!(messages.ends_with("\r\n"));
            for text in messages.split_terminator("\r\n") {
                let post: serde_json::Value = serde_json::from_str(text).unwrap();
                assert_eq!(post["matching_rules"][0]["id"], 7);
                ids.push(post["id"].as_u64().unwrap());
            }
        }
        ids
    }

    #[tokio::test]
    async fn backfill_replays_what_arrives_between_catching_up_and_going_live() {
        let log = Arc::new(MemoryLog::new());
        append(&*log, 0..5, 1_000);
        append(&*log, 5..40, 2_000);
        let stream = powertrack_stream();
        // Posts that arrive after the replay caught up but before the connection is
        // registered are not delivered live: the replay must still send them.
        let late = log.clone();
        let went_live = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = went_live.clone();
        let go_live: GoLive = Box::new(move || {
            append(&*late, 40..45, 3_000);
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            true
        });
        let feed = spawn(
            target(&log, &stream),
            ReplayKind::Backfill {
                from_ms: 2_000,
                go_live,
                outbox: Arc::new(Outbox::new(1 << 20, Encoding::Gzip)),
            },
        );
        assert_eq!(ids(feed).await, (5..45).collect::<Vec<_>>());
        assert!(went_live.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[tokio::test]
    async fn backfill_stops_where_live_delivery_takes_over() {
        // Post `i` is the log's `i + 1`th.
        let seq = |i: u64| sluice_postlog::FIRST_SEQ + i;
        // Delivery lags behind the log: posts from 30 on are appended, not yet delivered.
        // By the time the connection registers, delivery has taken up posts below
        // `delivered`; those from there on reach the connection live, so the replay must
        // not send them too.
        for delivered in [30, 42] {
            let log = Arc::new(MemoryLog::new());
            append(&*log, 0..5, 1_000);
            append(&*log, 5..40, 2_000);
            let mark = Arc::new(DeliveryMark::at(seq(30)));
            let stream = powertrack_stream();
            let (late, moved) = (log.clone(), mark.clone());
            let go_live: GoLive = Box::new(move || {
                append(&*late, 40..45, 3_000);
                moved.advance_to(seq(delivered));
                true
            });
            let mut target = target(&log, &stream);
            target.delivery_mark = Some(mark);
            let feed = spawn(
                target,
                ReplayKind::Backfill {
                    from_ms: 2_000,
                    go_live,
                    outbox: Arc::new(Outbox::new(1 << 20, Encoding::Gzip)),
                },
            );
            assert_eq!(ids(feed).await, (5..delivered).collect::<Vec<_>>());
        }
    }

    /// Backfills posts 0 to 29 with the delivery mark at post `mark` (`seq(mark)`), while
    /// registration pushes `live` into the outbox as the pipeline would at that moment:
    /// (message, logged below post N, or not logged). Returns the replayed ids and the
    /// outbox.
    async fn backfill_beside_live(
        mark: u64,
        live: &'static [(&'static str, Option<u64>)],
    ) -> (Vec<u64>, Arc<Outbox>) {
        let seq = |i: u64| sluice_postlog::FIRST_SEQ + i;
        let log = Arc::new(MemoryLog::new());
        append(&*log, 0..30, 2_000);
        let stream = powertrack_stream();
        let outbox = Arc::new(Outbox::new(1 << 20, Encoding::Gzip));
        let pushed = outbox.clone();
        let go_live: GoLive = Box::new(move || {
            for &(text, below) in live {
                let segment = Segment::plain(Bytes::from_static(text.as_bytes()));
                let result = pushed.push_live(segment, below.map(seq));
                assert_eq!(
                    result,
                    Pushed::Queued,
                    "the replay has not read the mark yet"
                );
            }
            true
        });
        let mut target = target(&log, &stream);
        target.delivery_mark = Some(Arc::new(DeliveryMark::at(seq(mark))));
        let feed = spawn(
            target,
            ReplayKind::Backfill {
                from_ms: 2_000,
                go_live,
                outbox: outbox.clone(),
            },
        );
        (ids(feed).await, outbox)
    }

    /// What the connection gets from its outbox once the replay is done.
    async fn sent_live(outbox: &Outbox) -> Vec<String> {
        outbox.close(CloseReason::Operational);
        let mut sent = Vec::new();
        outbox.next_batch(&mut sent, usize::MAX).await;
        sent.iter()
            .map(|s| String::from_utf8_lossy(s.plain_bytes()).into_owned())
            .collect()
    }

    #[tokio::test]
    async fn live_segments_of_a_batch_the_backfill_replayed_are_not_sent_again() {
        // The pipeline has moved the mark past a batch (posts below 30) but not yet pushed
        // it when the connection registers: the batch's segments reach the outbox after
        // registration although the replay sends those posts. The later batch, and
        // anything not from the log, still goes out live.
        let live = &[
            ("batch below the mark\r\n", Some(30)),
            ("next batch\r\n", Some(31)),
            ("not logged\r\n", None),
        ];
        let (replayed, outbox) = backfill_beside_live(30, live).await;
        assert_eq!(replayed, (0..30).collect::<Vec<_>>());
        // Pushed after the replay: dropped on arrival.
        let late = Segment::plain(Bytes::from_static(b"late push of the batch\r\n"));
        let below = sluice_postlog::FIRST_SEQ + 30;
        assert_eq!(outbox.push_live(late, Some(below)), Pushed::Replayed);
        assert_eq!(
            sent_live(&outbox).await,
            ["next batch\r\n", "not logged\r\n"]
        );
    }

    #[tokio::test]
    async fn a_backfill_whose_log_ends_short_of_the_mark_drops_only_what_it_replayed() {
        // The log says it has nothing past post 30 (a cluster log that cannot be reached
        // answers from what it knew) while the mark is at 40: the live segments of a
        // batch the replay did not get through must still be sent.
        let live = &[
            ("replayed batch\r\n", Some(30)),
            ("batch past the log's end\r\n", Some(35)),
        ];
        let (replayed, outbox) = backfill_beside_live(40, live).await;
        assert_eq!(replayed, (0..30).collect::<Vec<_>>());
        assert_eq!(sent_live(&outbox).await, ["batch past the log's end\r\n"]);
    }

    /// A log whose reads come back empty while `empty_reads` is above zero, as the
    /// cluster's log does when a fetch times out.
    struct FlakyLog {
        inner: MemoryLog,
        empty_reads: std::sync::atomic::AtomicU32,
    }

    impl PostLog for FlakyLog {
        fn append(&self, posts: &[NewPost<'_>], now_ms: u64) -> Result<u64, LogError> {
            self.inner.append(posts, now_ms)
        }
        fn next_seq(&self) -> u64 {
            self.inner.next_seq()
        }
        fn seq_at_time(&self, ms: u64) -> Result<u64, LogError> {
            self.inner.seq_at_time(ms)
        }
        fn read(&self, from: u64, max: usize) -> Result<Vec<sluice_postlog::LoggedPost>, LogError> {
            let flaky = self.empty_reads.fetch_update(
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
                |n| n.checked_sub(1),
            );
            match flaky {
                Ok(_) => Ok(Vec::new()),
                Err(_) => self.inner.read(from, max),
            }
        }
        fn trim_before(&self, ms: u64) -> Result<(), LogError> {
            self.inner.trim_before(ms)
        }
    }

    #[tokio::test]
    async fn empty_reads_from_a_log_that_has_the_posts_are_retried_never_skipped() {
        for (empty_reads, complete) in [(3, true), (u32::MAX, false)] {
            let log = Arc::new(FlakyLog {
                inner: MemoryLog::new(),
                empty_reads: 0.into(),
            });
            append(&log.inner, 0..20, 2_000);
            let mark = Arc::new(DeliveryMark::at(log.next_seq()));
            let stream = powertrack_stream();
            let (late, moved) = (log.clone(), mark.clone());
            let go_live: GoLive = Box::new(move || {
                // 20 more posts, all taken up by delivery before registration; then the
                // log stalls.
                append(&late.inner, 20..40, 3_000);
                moved.advance_to(late.next_seq());
                late.empty_reads
                    .store(empty_reads, std::sync::atomic::Ordering::SeqCst);
                true
            });
            let outbox = Arc::new(Outbox::new(1 << 20, Encoding::Gzip));
            let target = ReplayTarget {
                log: log.clone(),
                delivery_mark: Some(mark),
                stream: stream.clone(),
                partition: None,
                local_dc_only: false,
                format: Format::Native,
                encoding: Encoding::Gzip,
                datacenter: "local".into(),
                max_batch_bytes: 500,
                compliance: Compliance::in_memory(),
            };
            let feed = spawn(
                target,
                ReplayKind::Backfill {
                    from_ms: 2_000,
                    go_live,
                    outbox: outbox.clone(),
                },
            );
            let got = ids(feed).await;
            if complete {
                assert_eq!(got, (0..40).collect::<Vec<_>>());
                assert!(!outbox.is_closed());
            } else {
                // A log that keeps failing: the connection is closed rather than left live
                // with a gap.
                assert_eq!(got, (0..20).collect::<Vec<_>>());
                assert!(outbox.is_closed());
            }
        }
    }

    #[tokio::test]
    async fn a_replayed_post_is_framed_as_live_delivery_frames_it() {
        use sluice_model::sampling::partition;

        use crate::delivery::fanout::{BatchPost, Fanout};
        use crate::delivery::select::FIREHOSE_PARTITIONS;

        let registry = StreamRegistry::default();
        let stream = |id, product| {
            registry.upsert(&StoredStream {
                id,
                stream: StreamRef {
                    account: "acme".into(),
                    product,
                    label: format!("prod{id}"),
                },
                limits: StreamLimits {
                    max_connections: 2,
                    max_rules: 10,
                },
            })
        };
        let (powertrack, firehose) = (stream(1, Product::PowerTrack), stream(2, Product::Firehose));
        let rule = sluice_rules::parse("hello").unwrap();
        powertrack.rules.apply(&[(7, rule, Some("t".into()))], &[]);
        // Line separators inside the text are escaped on the way out.
        let posts: Vec<String> = (1_700_000_000_000_000_000_u64..1_700_000_000_000_000_040)
            .map(|i| {
                format!(
                    r#"{{"id":{i},"id_str":"{i}","text":"hello{sep}{i}","created_at":"Wed Oct 10 20:19:24 +0000 2018"}}"#,
                    sep = '\u{2028}'
                )
            })
            .collect();
        let log = Arc::new(MemoryLog::new());
        let new: Vec<NewPost<'_>> = posts
            .iter()
            .map(|p| NewPost {
                datacenter: "local",
                bytes: p.as_bytes(),
            })
            .collect();
        log.append(&new, 1_000).unwrap();

        let first = partition(1_700_000_000_000_000_000, FIREHOSE_PARTITIONS);
        // Live delivery matches the 40 posts on the pipeline thread, or ahead on two
        // matching threads: either way the bytes are replay's.
        let cases = [(&powertrack, None, 1), (&powertrack, None, 2)];
        for (live, partition, threads) in cases.into_iter().chain([(&firehose, Some(first), 1)]) {
            let outbox = Arc::new(Outbox::new(1 << 20, Encoding::Identity));
            let (connection, _) =
                live.connections
                    .open(outbox.clone(), partition, false, Format::Native);
            let batch: Vec<BatchPost<'_>> = posts
                .iter()
                .map(|p| BatchPost {
                    raw: p.as_bytes(),
                    id: sluice_model::read_post_id(p.as_bytes()).unwrap(),
                    local: true,
                    view: None,
                })
                .collect();
            Fanout::new(registry.rules(), threads).fan_out(&registry.all(), &batch, None);
            live.connections.close(connection.id);
            outbox.close(CloseReason::Operational);
            let mut segments = Vec::new();
            outbox.next_batch(&mut segments, usize::MAX).await;
            let delivered: Vec<u8> = segments
                .iter()
                .flat_map(|s| s.plain_bytes().to_vec())
                .collect();

            let mut target = target(&log, live);
            target.partition = partition;
            let mut feed = spawn(
                target,
                ReplayKind::Recovery {
                    from_ms: 0,
                    end_ms: 1_001,
                    outbox: Arc::new(Outbox::new(1 << 20, Encoding::Identity)),
                },
            );
            let mut replayed = Vec::new();
            while let Some(segment) = feed.recv().await {
                replayed.extend_from_slice(segment.plain_bytes());
            }
            assert!(!delivered.is_empty());
            assert!(!delivered.windows(3).any(|w| w == "\u{2028}".as_bytes()));
            assert_eq!(
                String::from_utf8(replayed).unwrap(),
                String::from_utf8(delivered).unwrap(),
                "{:?}",
                live.product()
            );
        }
    }

    #[tokio::test]
    async fn recovery_sends_the_window_by_arrival_time_then_closes_with_the_count() {
        let log = Arc::new(MemoryLog::new());
        append(&*log, 0..5, 1_000);
        append(&*log, 5..12, 2_000);
        append(&*log, 12..20, 3_000);
        let stream = powertrack_stream();
        let outbox = Arc::new(Outbox::new(1 << 20, Encoding::Gzip));
        let feed = spawn(
            target(&log, &stream),
            ReplayKind::Recovery {
                from_ms: 1_500,
                end_ms: 3_000,
                outbox: outbox.clone(),
            },
        );
        assert_eq!(ids(feed).await, (5..12).collect::<Vec<_>>());
        let mut batch = Vec::new();
        let Some(CloseReason::Completed(line)) = outbox.next_batch(&mut batch, 1 << 20).await
        else {
            panic!("the recovery completes");
        };
        let info: serde_json::Value = serde_json::from_slice(&line).unwrap();
        assert_eq!(info["info"]["message"], "Recovery Request Completed");
        assert_eq!(info["info"]["activity_count"], 7);
    }

    /// A log whose reads fail at the posts `bad` (by index, see `append`; a read from before
    /// them stops short of them), and whose searches fail after `searches` of them.
    struct FailingLog {
        inner: MemoryLog,
        bad: std::ops::Range<u64>,
        searches: std::sync::atomic::AtomicU32,
    }

    impl PostLog for FailingLog {
        fn append(&self, posts: &[NewPost<'_>], now_ms: u64) -> Result<u64, LogError> {
            self.inner.append(posts, now_ms)
        }
        fn next_seq(&self) -> u64 {
            self.inner.next_seq()
        }
        fn seq_at_time(&self, ms: u64) -> Result<u64, LogError> {
            let left = self.searches.fetch_update(
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
                |n| n.checked_sub(1),
            );
            match left {
                Ok(_) => self.inner.seq_at_time(ms),
                Err(_) => Err(LogError::Io(std::io::Error::other("search failed"))),
            }
        }
        fn read(&self, from: u64, max: usize) -> Result<Vec<sluice_postlog::LoggedPost>, LogError> {
            let bad = (sluice_postlog::FIRST_SEQ + self.bad.start)
                ..(sluice_postlog::FIRST_SEQ + self.bad.end);
            if bad.contains(&from) {
                return Err(LogError::Io(std::io::Error::other("read failed")));
            }
            let mut posts = self.inner.read(from, max)?;
            if from < bad.start {
                posts.retain(|p| p.seq < bad.start);
            }
            Ok(posts)
        }
        fn trim_before(&self, ms: u64) -> Result<(), LogError> {
            self.inner.trim_before(ms)
        }
    }

    /// Replays minutes 0 to 2 of a log with posts 0..5 in minute 0, 5..10 in minute 1 and
    /// 10..15 in minute 2, reads failing at posts `bad`; returns the ids sent and the
    /// closing `info`.
    async fn replay_failing(
        bad: std::ops::Range<u64>,
        searches: u32,
    ) -> (Vec<u64>, serde_json::Value) {
        let log = Arc::new(FailingLog {
            inner: MemoryLog::new(),
            bad,
            searches: searches.into(),
        });
        append(&log.inner, 0..5, 1_000);
        append(&log.inner, 5..10, 61_000);
        append(&log.inner, 10..15, 121_000);
        let stream = powertrack_stream();
        let outbox = Arc::new(Outbox::new(1 << 20, Encoding::Gzip));
        let mut target = target(&Arc::new(MemoryLog::new()), &stream);
        target.log = log;
        let feed = spawn(
            target,
            ReplayKind::Replay {
                from_ms: 0,
                end_ms: 180_000,
                outbox: outbox.clone(),
                max_rate: None,
            },
        );
        let sent = ids(feed).await;
        let mut batch = Vec::new();
        let Some(CloseReason::Completed(line)) = outbox.next_batch(&mut batch, 1 << 20).await
        else {
            panic!("the replay ends with a message");
        };
        (sent, serde_json::from_slice(&line).unwrap())
    }

    #[tokio::test]
    async fn a_paced_replay_reads_no_faster_than_its_rate_and_sends_everything() {
        let log = Arc::new(MemoryLog::new());
        append(&*log, 0..600, 1_000);
        let stream = powertrack_stream();
        let outbox = Arc::new(Outbox::new(1 << 20, Encoding::Gzip));
        let started = std::time::Instant::now();
        let feed = spawn(
            target(&log, &stream),
            ReplayKind::Replay {
                from_ms: 0,
                end_ms: 60_000,
                outbox: outbox.clone(),
                max_rate: NonZeroU32::new(2_000),
            },
        );
        let sent = ids(feed).await;
        // 600 posts at 2,000 a second: 0.3 s at least (a lower bound only).
        assert!(
            started.elapsed() >= Duration::from_millis(250),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(sent, (0..600).collect::<Vec<u64>>());
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_back_job_keeps_one_sections_credit_at_most() {
        let mut pace = Pace::new(NonZeroU32::new(1_000).unwrap());
        // A client that read nothing for 10 s, then 100 posts: within the credit, no wait.
        tokio::time::advance(Duration::from_secs(10)).await;
        let before = tokio::time::Instant::now();
        pace.wait(100).await;
        assert_eq!(before.elapsed(), Duration::ZERO);
        // The 10 s are not a credit for 10,000 posts: the next 100 wait their 0.1 s.
        pace.wait(200).await;
        assert!(
            before.elapsed() >= Duration::from_millis(100),
            "{:?}",
            before.elapsed()
        );
    }

    #[tokio::test]
    async fn a_replay_skips_a_minute_it_cannot_read_and_names_it() {
        let (sent, info) = replay_failing(0..0, u32::MAX).await;
        assert_eq!(sent, (0..15).collect::<Vec<_>>());
        assert_eq!(info["info"]["message"], "Replay Request Completed");
        assert_eq!(info["info"]["activity_count"], 15);

        // Post 7 cannot be read: the rest of minute 1 is skipped.
        let (sent, info) = replay_failing(7..8, u32::MAX).await;
        let want: Vec<u64> = (0..7).chain(10..15).collect();
        assert_eq!(sent, want);
        let info = &info["info"];
        assert_eq!(info["message"], "Replay Request Completed with Errors");
        assert_eq!(info["activity_count"], 12);
        assert_eq!(
            info["minutes_failed"],
            serde_json::json!(["1970-01-01T00:01:00+00:00"])
        );
    }

    #[tokio::test]
    async fn a_replay_that_cannot_go_on_says_what_it_left() {
        // The search for the minute after the failed one fails too.
        let (sent, info) = replay_failing(7..8, 1).await;
        assert_eq!(sent, (0..7).collect::<Vec<_>>());
        let info = &info["info"];
        assert_eq!(info["message"], "Replay Request Failed to Complete");
        assert_eq!(info["activity_count"], 7);
        assert_eq!(
            info["unprocessed_range"],
            serde_json::json!({"fromDate": "1970-01-01T00:02:00+00:00", "toDate": "1970-01-01T00:03:00+00:00"})
        );
        // The window's start cannot be found: nothing is sent.
        let (sent, info) = replay_failing(0..0, 0).await;
        assert!(sent.is_empty());
        assert_eq!(info["info"]["message"], "Replay Request Failed to Complete");
        assert_eq!(
            info["info"]["unprocessed_range"]["fromDate"],
            "1970-01-01T00:00:00+00:00"
        );
    }
}
