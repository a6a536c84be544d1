//! The Jetstream consumer: connect from the saved cursor (minus [`Config::overlap`]),
//! convert each event, batch the lines, hand each batch to the sink, save the cursor once
//! the sink acknowledged it; reconnect with backoff when the session ends; at stop, hand
//! over the batch in hand and save its cursor before returning.
//!
//! Nothing lost, nothing twice: the cursor is saved only after the lines before it are
//! stored, so a crash or a drop re-reads from a cursor at or before the first line not
//! stored. The overlap re-reads a few seconds more (Jetstream instances stamp events with
//! their own clocks, so a cursor is only approximately a position); the posts among them
//! are dropped by ingest's de-duplication by id. Ingest does not de-duplicate compliance
//! events, so a `delete` whose event is at or before the saved cursor is not sent again:
//! it was in a batch the sink acknowledged.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sluice_bluesky::{Converter, Output};
use sluice_server::telemetry;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use url::Url;

use crate::JETSTREAM;
use crate::backoff::Backoff;
use crate::batch::{Batch, Limits, LineKind};
use crate::cursor::CursorStore;
use crate::jetstream::compression::Decompressor;
use crate::jetstream::connection::Session;
use crate::jetstream::subscribe::{is_compressed, subscribe_url};
use crate::sink::{Sink, SinkError};

/// How a consumer runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The Jetstream instance (see [`crate::jetstream::subscribe::instance`]).
    pub instance: Url,
    /// Ask for zstd-compressed frames.
    pub compress: bool,
    /// How far before the saved cursor a session starts.
    pub overlap: Duration,
    /// When a batch is handed over.
    pub limits: Limits,
    /// Waits between reconnects.
    pub backoff: Backoff,
}

/// Default of [`Config::overlap`].
pub const DEFAULT_OVERLAP: Duration = Duration::from_secs(5);

impl Config {
    /// The defaults for `instance`: uncompressed, 5 s of overlap, batches of 1,000 lines
    /// or 100 ms, reconnects from 500 ms doubling to 30 s.
    pub fn new(instance: Url) -> Self {
        Self {
            instance,
            compress: false,
            overlap: DEFAULT_OVERLAP,
            limits: Limits::default(),
            backoff: Backoff::default(),
        }
    }
}

/// What a consumer did, for its last log line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Events received.
    pub events: u64,
    /// Posts the sink acknowledged.
    pub posts: u64,
    /// Deletes the sink acknowledged.
    pub deletes: u64,
    /// Lines the sink refused.
    pub rejected: u64,
    /// Events the converter could not read.
    pub unreadable: u64,
    /// Sessions lost or refused.
    pub reconnects: u64,
    /// The cursor saved last.
    pub cursor: Option<u64>,
}

/// Why a consumer stopped before it was asked to.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The cursor could not be read or saved.
    #[error("the cursor file: {0}")]
    Cursor(#[from] std::io::Error),
    /// The sink refused a batch for good.
    #[error("{0}")]
    Sink(String),
}

/// How a session ended.
enum SessionEnd {
    /// Stop was asked.
    Stopped,
    /// The sink is stopping (the server in process shuts down).
    SinkStopping,
    /// The connection closed or failed: reconnect.
    Lost(String),
}

/// Runs until `stop` is cancelled (then the batch in hand is acknowledged and its cursor
/// saved) or the sink fails for good.
pub async fn run<S: Sink, C: CursorStore>(
    config: Config,
    sink: &mut S,
    cursor: &C,
    stop: CancellationToken,
) -> Result<Summary, SourceError> {
    let mut consumer = Consumer {
        decompressor: Arc::new(Decompressor::new()),
        converter: Converter::new(),
        batch: Batch::default(),
        summary: Summary::default(),
        backoff: config.backoff.clone(),
        config,
        sink,
        cursor,
        stop,
    };
    consumer.run().await?;
    Ok(consumer.summary)
}

struct Consumer<'a, S, C> {
    config: Config,
    decompressor: Arc<Decompressor>,
    converter: Converter,
    batch: Batch,
    summary: Summary,
    backoff: Backoff,
    sink: &'a mut S,
    cursor: &'a C,
    stop: CancellationToken,
}

impl<S: Sink, C: CursorStore> Consumer<'_, S, C> {
    async fn run(&mut self) -> Result<(), SourceError> {
        while !self.stop.is_cancelled() {
            let saved = self.cursor.load().await?;
            self.summary.cursor = saved;
            let overlap = u64::try_from(self.config.overlap.as_micros()).unwrap_or(u64::MAX);
            let from = saved.map(|c| c.saturating_sub(overlap));
            let url = subscribe_url(&self.config.instance, from, self.config.compress);
            let decompressor = is_compressed(&url).then(|| self.decompressor.clone());
            let opened = tokio::select! {
                opened = Session::open(&url, decompressor) => opened,
                () = self.stop.cancelled() => break,
            };
            let mut session = match opened {
                Ok(session) => session,
                Err(e) => {
                    self.lost(&e.to_string()).await;
                    continue;
                }
            };
            tracing::info!(source = JETSTREAM, %url, cursor = ?saved, "connected");
            let end = self.read(&mut session, saved).await?;
            // What was read is handed over whatever ended the session.
            let flushed = self.flush().await?;
            match end {
                SessionEnd::Stopped | SessionEnd::SinkStopping => {
                    session.close().await;
                    break;
                }
                SessionEnd::Lost(_) if !flushed => break,
                SessionEnd::Lost(reason) => self.lost(&reason).await,
            }
        }
        tracing::info!(
            source = JETSTREAM,
            events = self.summary.events,
            posts = self.summary.posts,
            deletes = self.summary.deletes,
            cursor = ?self.summary.cursor,
            "stopped"
        );
        Ok(())
    }

    /// A session was lost or refused: count it, say so, wait (or stop).
    async fn lost(&mut self, reason: &str) {
        self.summary.reconnects += 1;
        telemetry::source_reconnect(JETSTREAM);
        let wait = self.backoff.failed();
        tracing::warn!(
            source = JETSTREAM,
            "disconnected: {reason}; reconnecting in {:.1}s",
            wait.as_secs_f64()
        );
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = self.stop.cancelled() => {}
        }
    }

    /// Reads events into batches until the session ends; deletes at or before `saved`
    /// are passed over (see the module docs).
    async fn read(
        &mut self,
        session: &mut Session,
        saved: Option<u64>,
    ) -> Result<SessionEnd, SourceError> {
        let mut delivered = false;
        loop {
            let deadline = self.batch.deadline(&self.config.limits);
            let event = tokio::select! {
                biased;
                () = self.stop.cancelled() => return Ok(SessionEnd::Stopped),
                () = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    if !self.flush().await? {
                        return Ok(SessionEnd::SinkStopping);
                    }
                    continue;
                }
                event = session.next_event() => event,
            };
            let event = match event {
                Ok(Some(event)) => event,
                Ok(None) => return Ok(SessionEnd::Lost("closed by the server".to_owned())),
                Err(e) => return Ok(SessionEnd::Lost(e.to_string())),
            };
            if !delivered {
                delivered = true;
                self.backoff.reset();
            }
            self.take(&event, saved);
            if self.batch.is_full(&self.config.limits) && !self.flush().await? {
                return Ok(SessionEnd::SinkStopping);
            }
        }
    }

    /// Converts one event into the batch.
    fn take(&mut self, event: &[u8], saved: Option<u64>) {
        self.summary.events += 1;
        telemetry::source_events_received(JETSTREAM, 1);
        let converted = match self.converter.convert(event) {
            Ok(converted) => converted,
            Err(e) => {
                self.summary.unreadable += 1;
                tracing::debug!(source = JETSTREAM, "event passed over: {e}");
                return;
            }
        };
        let time_us = converted.time_us;
        match converted.output {
            Output::Post { line, .. } => self.batch.push(LineKind::Post, &line, time_us),
            Output::Delete { line, .. } if saved.is_none_or(|saved| time_us > saved) => {
                self.batch.push(LineKind::Delete, &line, time_us);
            }
            Output::Delete { .. } | Output::Nothing => self.batch.advance(time_us),
        }
    }

    /// Hands the batch to the sink (again after a backoff while it asks to retry), then
    /// saves its cursor. `Ok(false)`: not acknowledged because the consumer or the sink is
    /// stopping; its cursor is not saved, so its events are read again at the next start.
    async fn flush(&mut self) -> Result<bool, SourceError> {
        if self.batch.is_empty() {
            return Ok(true);
        }
        let taken = self.batch.take();
        if !taken.body.is_empty() {
            let mut retry = Backoff::default();
            let acknowledged = loop {
                match self.sink.deliver(taken.body.clone()).await {
                    Ok(acknowledged) => break acknowledged,
                    Err(SinkError::Fatal(e)) => return Err(SourceError::Sink(e)),
                    Err(SinkError::Stopping) => return Ok(false),
                    Err(SinkError::Retry(e)) => {
                        let wait = retry.failed();
                        tracing::warn!(
                            source = JETSTREAM,
                            lines = taken.kinds.len(),
                            "the sink did not take the batch: {e}; again in {:.1}s",
                            wait.as_secs_f64()
                        );
                        tokio::select! {
                            () = tokio::time::sleep(wait) => {}
                            () = self.stop.cancelled() => return Ok(false),
                        }
                    }
                }
            };
            for (line, error) in &acknowledged.rejected {
                tracing::warn!(
                    source = JETSTREAM,
                    line,
                    "a converted line was refused: {error}"
                );
            }
            let refused: Vec<usize> = acknowledged
                .rejected
                .iter()
                .map(|(line, _)| *line)
                .collect();
            let rejected = refused.len() as u64;
            self.summary.rejected += rejected;
            telemetry::source_rejected(JETSTREAM, rejected);
            let (posts, deletes) = Batch::count(&taken.kinds, &refused);
            self.summary.posts += posts;
            self.summary.deletes += deletes;
            telemetry::source_ingested(JETSTREAM, posts, deletes);
        }
        if let Some(cursor) = taken.cursor {
            self.cursor.save(cursor).await?;
            self.summary.cursor = Some(cursor);
            telemetry::source_cursor_lag(JETSTREAM, lag_seconds(cursor));
        }
        Ok(true)
    }
}

/// Seconds between `time_us` and now.
fn lag_seconds(time_us: u64) -> f64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_micros() as f64;
    ((now - time_us as f64) / 1e6).max(0.0)
}
