//! The body of a streaming response: messages from an [`Outbox`], framed with `\r\n`,
//! heartbeats after silence, and gzip flushed per batch (docs/compatibility.md, wire rules 1–3 and 7).
//!
//! The body is one gzip stream for the whole response, made of independent deflate
//! segments ([`super::gzip`]): the segments the pipeline compressed once for every
//! connection of a stream, written as they are, and this connection's own messages
//! (prelude, heartbeats, replayed posts, the closing message) compressed here the same way.
//! Each segment ends sync-flushed, and each HTTP chunk holds whole segments, so a client
//! can decode every message as soon as its chunk arrives. Batching happens naturally: when
//! the client keeps up, a batch is whatever arrived while the last chunk was being written.
//!
//! A server-side close writes X's in-band message (`{"error":{…}}`), finishes the gzip
//! stream (final block and trailer) and ends the body cleanly (the final zero-length chunk).
//!
//! A body may first drain a [`ReplayFeed`] (backfill, recovery: posts read back from the
//! post log) and go on with the outbox once the feed ends. The feed is a small bounded
//! channel, so its producer waits for the client: replay is finite but may be large, and
//! unlike live delivery it must not be dropped for being slow.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use tokio::time::{Instant, Sleep};

use super::encoding::Encoding;
use super::gzip::{self, GzipMember};
use super::outbox::{CloseReason, Outbox};
use super::segment::Segment;
use crate::shutdown::{Shutdown, ShutdownWait};

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
    shutdown: &Shutdown,
    on_close: OnClose,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    replay_then_stream_body(
        None, outbox, settings, prelude, messages, shutdown, on_close,
    )
}

/// Segments a body writes before anything from its outbox, in order (replayed posts,
/// framed as live delivery frames them). When every sender is gone the body goes on with
/// the outbox.
pub type ReplayFeed = tokio::sync::mpsc::Receiver<Segment>;

/// [`stream_body`] that first writes everything `replay` yields (after the prelude), with
/// heartbeats while the feed is silent, then continues with the outbox.
pub fn replay_then_stream_body(
    replay: Option<ReplayFeed>,
    outbox: Arc<Outbox>,
    settings: BodySettings,
    prelude: Option<Bytes>,
    messages: Arc<dyn CloseMessages>,
    shutdown: &Shutdown,
    on_close: OnClose,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let last_write = Instant::now();
    let writer = BodyWriter {
        replay,
        outbox,
        encoder: Encoder::new(settings.encoding),
        last_write,
        heartbeat_due: Box::pin(tokio::time::sleep_until(last_write + settings.heartbeat)),
        settings,
        messages,
        shutdown: shutdown.wait(),
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

/// The state of one body between chunks. The shutdown wait and the heartbeat timer live
/// as long as the body instead of being made anew for every chunk: a new wait on a
/// shutdown token locks that token's waiter list twice per chunk (register, deregister),
/// and a new timer takes a lock of the timer wheel; kept, the wait stays registered and
/// moving the timer to a later deadline is a lock-free update (`Sleep::reset`). Polled
/// again, the wait reads a flag and takes no lock ([`ShutdownWait`]).
struct BodyWriter {
    replay: Option<ReplayFeed>,
    outbox: Arc<Outbox>,
    encoder: Encoder,
    settings: BodySettings,
    messages: Arc<dyn CloseMessages>,
    shutdown: ShutdownWait,
    last_write: Instant,
    heartbeat_due: Pin<Box<Sleep>>,
    batch: Vec<Segment>,
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
            self.encoder.write_own([&prelude[..]]);
            return Some(self.flush());
        }
        let deadline = self.last_write + self.settings.heartbeat;
        if self.heartbeat_due.deadline() != deadline {
            self.heartbeat_due.as_mut().reset(deadline);
        }
        while let Some(replay) = &mut self.replay {
            tokio::select! {
                biased;
                () = &mut self.shutdown => return Some(self.close_operational()),
                replayed = replay.recv() => match replayed {
                    Some(segment) if segment.is_empty() => {}
                    Some(segment) => {
                        self.encoder.write_segments(std::slice::from_ref(&segment));
                        return Some(self.flush());
                    }
                    None => self.replay = None,
                },
                () = self.heartbeat_due.as_mut() => return Some(self.heartbeat()),
            }
        }
        tokio::select! {
            biased;
            () = &mut self.shutdown => Some(self.close_operational()),
            closed = self.outbox.next_batch(&mut self.batch, self.settings.max_batch_bytes) => {
                let chunk = match closed {
                    None => self.write_batch(),
                    Some(reason) => {
                        self.encoder.write_segments(&self.batch);
                        self.finish(&reason)
                    }
                };
                self.batch.clear();
                Some(chunk)
            }
            () = self.heartbeat_due.as_mut() => Some(self.heartbeat()),
        }
    }

    /// The chunk of a batch: the common case of one post (or one segment) to a connection
    /// that keeps up is the segment's own shared bytes, with no copy or allocation per
    /// connection; anything else is written into the encoder's buffer.
    fn write_batch(&mut self) -> Bytes {
        if let [segment] = &self.batch[..]
            && let Some(chunk) = self.encoder.alone(segment)
        {
            self.last_write = Instant::now();
            return chunk;
        }
        self.encoder.write_segments(&self.batch);
        self.flush()
    }

    /// The server is shutting down: closes the outbox and ends the body with the
    /// operational message.
    fn close_operational(&mut self) -> Bytes {
        self.outbox.close(CloseReason::Operational);
        self.finish(&CloseReason::Operational)
    }

    /// Nothing was written for a heartbeat interval: a bare `\r\n`.
    fn heartbeat(&mut self) -> Bytes {
        self.encoder.write_heartbeat();
        self.flush()
    }

    fn flush(&mut self) -> Bytes {
        self.last_write = Instant::now();
        self.encoder.flush()
    }

    fn finish(&mut self, reason: &CloseReason) -> Bytes {
        if let Some(line) = self.messages.close_line(reason) {
            self.encoder.write_own([&line[..], b"\r\n"]);
        }
        self.finished = true;
        self.guard.reason = match reason {
            CloseReason::SlowConsumer => "slow consumer",
            CloseReason::TooManyConnections { .. } => "too many connections",
            CloseReason::Operational => "operational disconnect",
            CloseReason::CredentialsRevoked => "credentials revoked",
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

/// Gzip or identity: collects one chunk's output. It holds no deflater: what the
/// connection compresses itself goes through its thread's ([`gzip::with_thread_deflater`]),
/// so an idle gzip connection costs a few hundred bytes here, not a deflate state.
enum Encoder {
    Gzip { member: GzipMember, out: Vec<u8> },
    Identity(Vec<u8>),
}

impl Encoder {
    fn new(encoding: Encoding) -> Self {
        match encoding {
            Encoding::Gzip => Encoder::Gzip {
                member: GzipMember::new(),
                out: Vec::new(),
            },
            Encoding::Identity => Encoder::Identity(Vec::new()),
        }
    }

    /// Writes this connection's own messages (as one segment when gzipped).
    fn write_own<'a>(&mut self, pieces: impl IntoIterator<Item = &'a [u8]>) {
        match self {
            Encoder::Gzip { member, out } => {
                gzip::with_thread_deflater(|deflater| member.append_own(deflater, pieces, out));
            }
            Encoder::Identity(out) => pieces.into_iter().for_each(|p| out.extend_from_slice(p)),
        }
    }

    /// Writes a heartbeat: the process's one compressed `\r\n` when gzipped.
    fn write_heartbeat(&mut self) {
        match self {
            Encoder::Gzip { member, out } => member.append(gzip::heartbeat(), out),
            Encoder::Identity(out) => out.extend_from_slice(b"\r\n"),
        }
    }

    /// One segment as a whole chunk without copying it, when nothing else is pending and
    /// it needs no work of this connection's: its plain bytes for identity, its shared
    /// compressed bytes for gzip once the member's header is out. `None` otherwise.
    fn alone(&mut self, segment: &Segment) -> Option<Bytes> {
        match self {
            Encoder::Gzip { member, out } if out.is_empty() => {
                member.append_alone(segment.deflated()?)
            }
            Encoder::Identity(out) if out.is_empty() => Some(segment.plain_bytes().clone()),
            _ => None,
        }
    }

    /// Writes queued segments: their shared compressed form when they have one; runs of
    /// segments without one are compressed here, together.
    fn write_segments(&mut self, segments: &[Segment]) {
        match self {
            Encoder::Gzip { member, out } => {
                let mut rest = segments;
                while !rest.is_empty() {
                    let own = rest
                        .iter()
                        .position(|s| s.deflated().is_some())
                        .unwrap_or(rest.len());
                    if own > 0 {
                        let pieces = rest[..own].iter().map(|s| &s.plain_bytes()[..]);
                        gzip::with_thread_deflater(|deflater| {
                            member.append_own(deflater, pieces, out);
                        });
                    }
                    if let Some(shared) = rest.get(own).and_then(Segment::deflated) {
                        member.append(shared, out);
                        rest = &rest[own + 1..];
                    } else {
                        rest = &rest[own..];
                    }
                }
            }
            Encoder::Identity(out) => {
                for segment in segments {
                    out.extend_from_slice(segment.plain_bytes());
                }
            }
        }
    }

    /// Everything written since the last chunk: decodable on its own, since gzip output
    /// consists of whole sync-flushed segments.
    fn flush(&mut self) -> Bytes {
        match self {
            Encoder::Gzip { out, .. } | Encoder::Identity(out) => Bytes::from(std::mem::take(out)),
        }
    }

    /// The rest of the output, ending the gzip stream with its final block and trailer.
    fn finish(&mut self) -> Bytes {
        if let Encoder::Gzip { member, out, .. } = self {
            member.finish(out);
        }
        self.flush()
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};
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
        let outbox = Arc::new(Outbox::new(1 << 20, Encoding::Gzip));
        let closed = Arc::new(Mutex::new(None));
        let c = closed.clone();
        let body = stream_body(
            outbox.clone(),
            settings(Encoding::Gzip),
            None,
            Arc::new(Texts),
            &Shutdown::new(),
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

    /// Decodes a whole body as one gzip member, checking its trailer (CRC-32 and length).
    fn decode_whole(body: &[u8]) -> String {
        let mut text = String::new();
        flate2::read::GzDecoder::new(body)
            .read_to_string(&mut text)
            .expect("one valid gzip member");
        let trailer = &body[body.len() - 8..];
        assert_eq!(trailer[..4], crc32fast::hash(text.as_bytes()).to_le_bytes());
        assert_eq!(trailer[4..], (text.len() as u32).to_le_bytes());
        text
    }

    /// The next chunk of `body`, also appended to `whole`.
    async fn next(
        body: &mut (impl Stream<Item = Result<Bytes, Infallible>> + Unpin),
        whole: &mut Vec<u8>,
    ) -> Bytes {
        let chunk = body.next().await.unwrap().unwrap();
        whole.extend_from_slice(&chunk);
        chunk
    }

    #[tokio::test(start_paused = true)]
    async fn connections_share_compressed_segments_and_add_their_own_messages() {
        let mut deflater = crate::delivery::gzip::Deflater::new();
        let first = Segment::compressed(
            Bytes::from_static(b"{\"a\":1}\r\n{\"b\":2}\r\n"),
            &mut deflater,
        );
        let second = Segment::compressed(Bytes::from_static(b"{\"c\":3}\r\n"), &mut deflater);
        let (a_outbox, b_outbox) = (
            Arc::new(Outbox::new(1 << 20, Encoding::Gzip)),
            Arc::new(Outbox::new(1 << 20, Encoding::Gzip)),
        );
        let b_shutdown = Shutdown::new();
        let mut a = Box::pin(stream_body(
            a_outbox.clone(),
            settings(Encoding::Gzip),
            None,
            Arc::new(Texts),
            &Shutdown::new(),
            Box::new(|_| {}),
        ));
        let mut b = Box::pin(stream_body(
            b_outbox.clone(),
            settings(Encoding::Gzip),
            Some(Bytes::from_static(b"{\"meta\":true}\r\n")),
            Arc::new(Texts),
            &b_shutdown,
            Box::new(|_| {}),
        ));
        let (mut a_body, mut b_body) = (Vec::new(), Vec::new());
        let (mut a_chunks, mut b_chunks) = (ChunkDecoder::new(), ChunkDecoder::new());

        let chunk = next(&mut b, &mut b_body).await;
        assert_eq!(b_chunks.feed(&chunk), "{\"meta\":true}\r\n");
        a_outbox.push(first.clone());
        b_outbox.push(first.clone());
        let chunk = next(&mut a, &mut a_body).await;
        assert_eq!(a_chunks.feed(&chunk), "{\"a\":1}\r\n{\"b\":2}\r\n");
        let chunk = next(&mut b, &mut b_body).await;
        assert_eq!(b_chunks.feed(&chunk), "{\"a\":1}\r\n{\"b\":2}\r\n");
        // A hears nothing for a heartbeat interval; B is not polled meanwhile.
        let chunk = next(&mut a, &mut a_body).await;
        assert_eq!(a_chunks.feed(&chunk), "\r\n");
        a_outbox.push(second.clone());
        b_outbox.push(second.clone());
        let chunk = next(&mut a, &mut a_body).await;
        assert_eq!(a_chunks.feed(&chunk), "{\"c\":3}\r\n");
        let chunk = next(&mut b, &mut b_body).await;
        assert_eq!(b_chunks.feed(&chunk), "{\"c\":3}\r\n");
        // Now B falls silent, and the two close for different reasons.
        let chunk = next(&mut b, &mut b_body).await;
        assert_eq!(b_chunks.feed(&chunk), "\r\n");
        a_outbox.close(CloseReason::SlowConsumer);
        let chunk = next(&mut a, &mut a_body).await;
        assert_eq!(a_chunks.feed(&chunk), "{\"closed\":\"SlowConsumer\"}\r\n");
        assert!(a.next().await.is_none());
        b_shutdown.begin();
        let chunk = next(&mut b, &mut b_body).await;
        assert_eq!(b_chunks.feed(&chunk), "{\"closed\":\"Operational\"}\r\n");
        assert!(b.next().await.is_none());

        assert_eq!(
            decode_whole(&a_body),
            "{\"a\":1}\r\n{\"b\":2}\r\n\r\n{\"c\":3}\r\n{\"closed\":\"SlowConsumer\"}\r\n"
        );
        assert_eq!(
            decode_whole(&b_body),
            "{\"meta\":true}\r\n{\"a\":1}\r\n{\"b\":2}\r\n{\"c\":3}\r\n\r\n\
             {\"closed\":\"Operational\"}\r\n"
        );
        // The shared segments went out byte for byte in both bodies: compressed once.
        for shared in [&first, &second] {
            let deflated = &shared.deflated().unwrap().bytes;
            for body in [&a_body, &b_body] {
                assert!(body.windows(deflated.len()).any(|w| w == &deflated[..]));
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn identity_body_with_prelude_and_shutdown() {
        let outbox = Arc::new(Outbox::new(1 << 20, Encoding::Identity));
        let shutdown = Shutdown::new();
        let body = stream_body(
            outbox.clone(),
            settings(Encoding::Identity),
            Some(Bytes::from_static(
                b"{\"type\":\"connection_metadata\"}\r\n",
            )),
            Arc::new(Texts),
            &shutdown,
            Box::new(|_| {}),
        );
        let mut body = Box::pin(body);
        assert_eq!(
            body.next().await.unwrap().unwrap(),
            &b"{\"type\":\"connection_metadata\"}\r\n"[..]
        );
        outbox.push(Bytes::from_static(b"post\r\n"));
        assert_eq!(body.next().await.unwrap().unwrap(), &b"post\r\n"[..]);
        shutdown.begin();
        assert_eq!(
            body.next().await.unwrap().unwrap(),
            &b"{\"closed\":\"Operational\"}\r\n"[..]
        );
        assert!(body.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn a_replay_feed_comes_first_with_heartbeats_then_the_outbox() {
        let outbox = Arc::new(Outbox::new(1 << 20, Encoding::Identity));
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let body = replay_then_stream_body(
            Some(rx),
            outbox.clone(),
            settings(Encoding::Identity),
            None,
            Arc::new(Texts),
            &Shutdown::new(),
            Box::new(|_| {}),
        );
        let mut body = Box::pin(body);
        // Live messages wait while the replay runs.
        outbox.push(Bytes::from_static(b"live\r\n"));
        tx.send(Segment::plain(Bytes::from_static(b"old1\r\nold2\r\n")))
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
        tx.send(Segment::plain(Bytes::from_static(b"old3\r\n")))
            .await
            .unwrap();
        drop(tx);
        assert_eq!(body.next().await.unwrap().unwrap(), &b"old3\r\n"[..]);
        assert_eq!(body.next().await.unwrap().unwrap(), &b"live\r\n"[..]);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_during_a_replay_closes_with_the_operational_message() {
        let outbox = Arc::new(Outbox::new(1 << 20, Encoding::Identity));
        let (_tx, rx) = tokio::sync::mpsc::channel::<Segment>(1);
        let shutdown = Shutdown::new();
        let body = replay_then_stream_body(
            Some(rx),
            outbox,
            settings(Encoding::Identity),
            None,
            Arc::new(Texts),
            &shutdown,
            Box::new(|_| {}),
        );
        let mut body = Box::pin(body);
        shutdown.begin();
        assert_eq!(
            body.next().await.unwrap().unwrap(),
            &b"{\"closed\":\"Operational\"}\r\n"[..]
        );
        assert!(body.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn the_close_hook_runs_when_the_client_goes_away() {
        let outbox = Arc::new(Outbox::new(1 << 20, Encoding::Gzip));
        let closed = Arc::new(Mutex::new(None));
        let c = closed.clone();
        let body = stream_body(
            outbox,
            settings(Encoding::Gzip),
            None,
            Arc::new(Texts),
            &Shutdown::new(),
            Box::new(move |why| *c.lock().unwrap() = Some(why.to_owned())),
        );
        drop(body);
        assert_eq!(
            closed.lock().unwrap().as_deref(),
            Some("client disconnected")
        );
    }
}
