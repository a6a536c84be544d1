//! The body of a streaming response: messages from an [`Outbox`], framed with `\r\n`,
//! heartbeats after silence, and gzip flushed per batch (spec Part A, wire rules 1–3 and 7).
//!
//! The body is one gzip stream for the whole response. After each batch of messages and
//! each heartbeat the encoder is flushed with `Z_SYNC_FLUSH` and the output becomes one
//! HTTP chunk, so a client can decode every message as soon as its chunk arrives. Batching
//! happens naturally: when the client keeps up, a batch is whatever arrived while the last
//! chunk was being written.
//!
//! A server-side close writes X's in-band message (`{"error":{…}}`), finishes the gzip
//! stream and ends the body cleanly (the final zero-length chunk).
//!
//! A body may first drain a [`ReplayFeed`] (backfill, recovery: posts read back from the
//! post log) and go on with the outbox once the feed ends. The feed is a small bounded
//! channel, so its producer waits for the client: replay is finite but may be large, and
//! unlike live delivery it must not be dropped for being slow.

use std::convert::Infallible;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use futures_util::Stream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::outbox::{CloseReason, Outbox};

/// How a stream body is encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `Content-Encoding: gzip`.
    Gzip,
    /// No content encoding (Powerstream without `Accept-Encoding: gzip`).
    Identity,
}

/// How the body writes what ends a stream: the texts differ between the Gnip-style and
/// the `/2/` APIs.
pub trait CloseMessages: Send + Sync + 'static {
    /// The line (without `\r\n`) written before closing for `reason`, if any.
    fn close_line(&self, reason: &CloseReason) -> Option<Bytes>;
}

/// Settings of one streaming body.
#[derive(Clone)]
pub struct BodySettings {
    /// Send `\r\n` after this long without writing anything.
    pub heartbeat: Duration,
    /// Upper bound on the bytes of messages taken into one chunk.
    pub max_batch_bytes: usize,
    /// Gzip or identity.
    pub encoding: Encoding,
}

/// Something to run when the body ends, however it ends (client gone, server close):
/// unregisters the connection and logs its closing.
pub type OnClose = Box<dyn FnOnce(&str) + Send + 'static>;

/// Builds the body stream. `prelude` is written first (e.g. Powerstream's
/// `connection_metadata` line, already framed). `shutdown` closes the stream with the
/// operational message.
pub fn stream_body(
    outbox: Arc<Outbox>,
    settings: BodySettings,
    prelude: Option<Bytes>,
    messages: Arc<dyn CloseMessages>,
    shutdown: CancellationToken,
    on_close: OnClose,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    replay_then_stream_body(
        None, outbox, settings, prelude, messages, shutdown, on_close,
    )
}

/// Batches of framed messages a body writes before anything from its outbox, in order
/// (replayed posts). When every sender is gone the body goes on with the outbox.
pub type ReplayFeed = tokio::sync::mpsc::Receiver<Vec<Bytes>>;

/// [`stream_body`] that first writes everything `replay` yields (after the prelude), with
/// heartbeats while the feed is silent, then continues with the outbox.
pub fn replay_then_stream_body(
    replay: Option<ReplayFeed>,
    outbox: Arc<Outbox>,
    settings: BodySettings,
    prelude: Option<Bytes>,
    messages: Arc<dyn CloseMessages>,
    shutdown: CancellationToken,
    on_close: OnClose,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let writer = BodyWriter {
        replay,
        outbox,
        encoder: Encoder::new(settings.encoding),
        last_write: Instant::now(),
        settings,
        messages,
        shutdown,
        batch: Vec::new(),
        prelude,
        finished: false,
        guard: CloseGuard {
            on_close: Some(on_close),
            reason: "client disconnected",
        },
    };
    futures_util::stream::unfold(writer, |mut w| async move {
        let chunk = w.next_chunk().await?;
        Some((Ok(chunk), w))
    })
}

struct BodyWriter {
    replay: Option<ReplayFeed>,
    outbox: Arc<Outbox>,
    encoder: Encoder,
    settings: BodySettings,
    messages: Arc<dyn CloseMessages>,
    shutdown: CancellationToken,
    last_write: Instant,
    batch: Vec<Bytes>,
    prelude: Option<Bytes>,
    finished: bool,
    guard: CloseGuard,
}

impl BodyWriter {
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if self.finished {
            return None;
        }
        if let Some(prelude) = self.prelude.take() {
            self.encoder.write(&prelude);
            return Some(self.flush());
        }
        let deadline = self.last_write + self.settings.heartbeat;
        while let Some(replay) = &mut self.replay {
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => {
                    self.outbox.close(CloseReason::Operational);
                    return Some(self.finish(&CloseReason::Operational));
                }
                replayed = replay.recv() => match replayed {
                    Some(messages) if messages.is_empty() => {}
                    Some(messages) => {
                        for message in &messages {
                            self.encoder.write(message);
                        }
                        return Some(self.flush());
                    }
                    None => self.replay = None,
                },
                () = tokio::time::sleep_until(deadline) => {
                    self.encoder.write(b"\r\n");
                    return Some(self.flush());
                }
            }
        }
        tokio::select! {
            biased;
            () = self.shutdown.cancelled() => {
                self.outbox.close(CloseReason::Operational);
                Some(self.finish(&CloseReason::Operational))
            }
            closed = self.outbox.next_batch(&mut self.batch, self.settings.max_batch_bytes) => {
                for message in self.batch.drain(..) {
                    self.encoder.write(&message);
                }
                match closed {
                    None => Some(self.flush()),
                    Some(reason) => Some(self.finish(&reason)),
                }
            }
            () = tokio::time::sleep_until(deadline) => {
                self.encoder.write(b"\r\n");
                Some(self.flush())
            }
        }
    }

    fn flush(&mut self) -> Bytes {
        self.last_write = Instant::now();
        self.encoder.flush()
    }

    fn finish(&mut self, reason: &CloseReason) -> Bytes {
        if let Some(line) = self.messages.close_line(reason) {
            self.encoder.write(&line);
            self.encoder.write(b"\r\n");
        }
        self.finished = true;
        self.guard.reason = match reason {
            CloseReason::SlowConsumer => "slow consumer",
            CloseReason::TooManyConnections { .. } => "too many connections",
            CloseReason::Operational => "operational disconnect",
            CloseReason::Completed(_) => "completed",
        };
        self.encoder.finish()
    }
}

/// Runs the close hook exactly once, when the body is dropped (by hyper, when the client
/// went away or the body ended).
struct CloseGuard {
    on_close: Option<OnClose>,
    reason: &'static str,
}

impl Drop for CloseGuard {
    fn drop(&mut self) {
        if let Some(f) = self.on_close.take() {
            f(self.reason);
        }
    }
}

/// Gzip or identity, with explicit flush points.
enum Encoder {
    /// Boxed: the deflate state is large and lives as long as the connection anyway.
    Gzip(Box<GzEncoder<Vec<u8>>>),
    Identity(Vec<u8>),
}

impl Encoder {
    fn new(encoding: Encoding) -> Self {
        match encoding {
            // Level 1: streams are CPU-bound on the server and posts compress well anyway.
            Encoding::Gzip => {
                Encoder::Gzip(Box::new(GzEncoder::new(Vec::new(), Compression::fast())))
            }
            Encoding::Identity => Encoder::Identity(Vec::new()),
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        match self {
            Encoder::Gzip(gz) => gz.write_all(bytes).expect("writing to a Vec cannot fail"),
            Encoder::Identity(buf) => buf.extend_from_slice(bytes),
        }
    }

    /// Everything written so far, decodable on its own (`Z_SYNC_FLUSH` for gzip).
    fn flush(&mut self) -> Bytes {
        match self {
            Encoder::Gzip(gz) => {
                gz.flush().expect("flushing to a Vec cannot fail");
                Bytes::from(std::mem::take(gz.get_mut()))
            }
            Encoder::Identity(buf) => Bytes::from(std::mem::take(buf)),
        }
    }

    /// The rest of the output, ending the gzip stream with its trailer.
    fn finish(&mut self) -> Bytes {
        match self {
            Encoder::Gzip(gz) => {
                gz.try_finish().expect("finishing into a Vec cannot fail");
                Bytes::from(std::mem::take(gz.get_mut()))
            }
            Encoder::Identity(buf) => Bytes::from(std::mem::take(buf)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;
    use std::sync::Mutex;

    use futures_util::StreamExt;

    use super::*;

    struct Texts;
    impl CloseMessages for Texts {
        fn close_line(&self, reason: &CloseReason) -> Option<Bytes> {
            Some(Bytes::from(format!("{{\"closed\":\"{reason:?}\"}}")))
        }
    }

    fn settings(encoding: Encoding) -> BodySettings {
        BodySettings {
            heartbeat: Duration::from_secs(10),
            max_batch_bytes: 1 << 20,
            encoding,
        }
    }

    /// Decodes gzip chunks one at a time, as a streaming client does: each chunk must yield
    /// whole lines by itself.
    struct ChunkDecoder(flate2::write::GzDecoder<Vec<u8>>);
    impl ChunkDecoder {
        fn new() -> Self {
            Self(flate2::write::GzDecoder::new(Vec::new()))
        }
        fn feed(&mut self, chunk: &[u8]) -> String {
            self.0.write_all(chunk).unwrap();
            self.0.flush().unwrap();
            String::from_utf8(std::mem::take(self.0.get_mut())).unwrap()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn each_gzip_chunk_decodes_to_whole_messages_and_heartbeats_follow_silence() {
        let outbox = Arc::new(Outbox::new(1 << 20));
        let closed = Arc::new(Mutex::new(None));
        let c = closed.clone();
        let body = stream_body(
            outbox.clone(),
            settings(Encoding::Gzip),
            None,
            Arc::new(Texts),
            CancellationToken::new(),
            Box::new(move |why| *c.lock().unwrap() = Some(why.to_owned())),
        );
        let mut body = Box::pin(body);
        let mut decoder = ChunkDecoder::new();

        outbox.push(Bytes::from_static(b"{\"a\":1}\r\n"));
        outbox.push(Bytes::from_static(b"{\"b\":2}\r\n"));
        let chunk = body.next().await.unwrap().unwrap();
        assert_eq!(decoder.feed(&chunk), "{\"a\":1}\r\n{\"b\":2}\r\n");

        let started = Instant::now();
        let chunk = body.next().await.unwrap().unwrap();
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        assert_eq!(decoder.feed(&chunk), "\r\n");

        outbox.close(CloseReason::SlowConsumer);
        let chunk = body.next().await.unwrap().unwrap();
        assert_eq!(decoder.feed(&chunk), "{\"closed\":\"SlowConsumer\"}\r\n");
        assert!(body.next().await.is_none());
        drop(body);
        assert_eq!(closed.lock().unwrap().as_deref(), Some("slow consumer"));

        // The gzip stream was finished properly: a whole-body decoder reads it to the end.
        let mut whole = Vec::new();
        flate2::read::GzDecoder::new(&decoder.0.get_ref()[..])
            .read_to_end(&mut whole)
            .ok();
    }

    #[tokio::test(start_paused = true)]
    async fn identity_body_with_prelude_and_shutdown() {
        let outbox = Arc::new(Outbox::new(1 << 20));
        let shutdown = CancellationToken::new();
        let body = stream_body(
            outbox.clone(),
            settings(Encoding::Identity),
            Some(Bytes::from_static(
                b"{\"type\":\"connection_metadata\"}\r\n",
            )),
            Arc::new(Texts),
            shutdown.clone(),
            Box::new(|_| {}),
        );
        let mut body = Box::pin(body);
        assert_eq!(
            body.next().await.unwrap().unwrap(),
            &b"{\"type\":\"connection_metadata\"}\r\n"[..]
        );
        outbox.push(Bytes::from_static(b"post\r\n"));
        assert_eq!(body.next().await.unwrap().unwrap(), &b"post\r\n"[..]);
        shutdown.cancel();
        assert_eq!(
            body.next().await.unwrap().unwrap(),
            &b"{\"closed\":\"Operational\"}\r\n"[..]
        );
        assert!(body.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_replay_feed_comes_first_with_heartbeats_then_the_outbox() {
        let outbox = Arc::new(Outbox::new(1 << 20));
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let body = replay_then_stream_body(
            Some(rx),
            outbox.clone(),
            settings(Encoding::Identity),
            None,
            Arc::new(Texts),
            CancellationToken::new(),
            Box::new(|_| {}),
        );
        let mut body = Box::pin(body);
        // Live messages wait while the replay runs.
        outbox.push(Bytes::from_static(b"live\r\n"));
        tx.send(vec![
            Bytes::from_static(b"old1\r\n"),
            Bytes::from_static(b"old2\r\n"),
        ])
        .await
        .unwrap();
        assert_eq!(
            body.next().await.unwrap().unwrap(),
            &b"old1\r\nold2\r\n"[..]
        );
        // A silent replay still gets heartbeats.
        let started = Instant::now();
        assert_eq!(body.next().await.unwrap().unwrap(), &b"\r\n"[..]);
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        tx.send(vec![Bytes::from_static(b"old3\r\n")])
            .await
            .unwrap();
        drop(tx);
        assert_eq!(body.next().await.unwrap().unwrap(), &b"old3\r\n"[..]);
        assert_eq!(body.next().await.unwrap().unwrap(), &b"live\r\n"[..]);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_during_a_replay_closes_with_the_operational_message() {
        let outbox = Arc::new(Outbox::new(1 << 20));
        let (_tx, rx) = tokio::sync::mpsc::channel::<Vec<Bytes>>(1);
        let shutdown = CancellationToken::new();
        let body = replay_then_stream_body(
            Some(rx),
            outbox,
            settings(Encoding::Identity),
            None,
            Arc::new(Texts),
            shutdown.clone(),
            Box::new(|_| {}),
        );
        let mut body = Box::pin(body);
        shutdown.cancel();
        assert_eq!(
            body.next().await.unwrap().unwrap(),
            &b"{\"closed\":\"Operational\"}\r\n"[..]
        );
        assert!(body.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn the_close_hook_runs_when_the_client_goes_away() {
        let outbox = Arc::new(Outbox::new(1 << 20));
        let closed = Arc::new(Mutex::new(None));
        let c = closed.clone();
        let body = stream_body(
            outbox,
            settings(Encoding::Gzip),
            None,
            Arc::new(Texts),
            CancellationToken::new(),
            Box::new(move |why| *c.lock().unwrap() = Some(why.to_owned())),
        );
        drop(body);
        assert_eq!(
            closed.lock().unwrap().as_deref(),
            Some("client disconnected")
        );
    }
}
