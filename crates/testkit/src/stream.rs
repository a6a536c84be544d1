//! A Gnip-style stream client for end-to-end tests: gunzips the body chunk by chunk as Gnip
//! clients do, splits `\r\n` lines, and tells heartbeats from messages.

use std::collections::VecDeque;
use std::io::{Read as _, Write as _};
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::StatusCode;
use serde_json::Value;

/// How long any single expected event may take before a test fails.
pub const WAIT: Duration = Duration::from_secs(5);
/// How long [`StreamClient::at_least`] waits for its messages in all.
pub const AT_LEAST_WAIT: Duration = Duration::from_secs(30);

/// One line of a stream: a heartbeat or a JSON message.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// A bare `\r\n`.
    Heartbeat,
    /// A JSON message.
    Message(Value),
}

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// A streaming response being read. In strict mode every chunk must decode, on its own, to
/// whole `\r\n`-terminated lines (proof of the per-batch flush).
pub struct StreamClient {
    body: ByteStream,
    /// The gunzipper of a gzip body; `None` for identity.
    decoder: Option<flate2::write::GzDecoder<Vec<u8>>>,
    raw: Vec<u8>,
    partial: String,
    lines: VecDeque<Line>,
    strict: bool,
    ended: bool,
}

impl StreamClient {
    /// Reads `response` (a 200 with a gzip or identity body).
    pub fn new(response: reqwest::Response) -> Self {
        Self::with_mode(response, false)
    }

    /// [`StreamClient::new`] in strict mode: every chunk must end on a line boundary.
    pub fn strict(response: reqwest::Response) -> Self {
        Self::with_mode(response, true)
    }

    fn with_mode(response: reqwest::Response, strict: bool) -> Self {
        assert_eq!(response.status(), StatusCode::OK);
        let decoder = response.headers().get("content-encoding").map(|v| {
            assert_eq!(v, "gzip");
            flate2::write::GzDecoder::new(Vec::new())
        });
        Self {
            body: Box::pin(response.bytes_stream()),
            decoder,
            raw: Vec::new(),
            partial: String::new(),
            lines: VecDeque::new(),
            strict,
            ended: false,
        }
    }

    async fn read_chunk(&mut self) -> bool {
        let next = tokio::time::timeout(WAIT, self.body.next())
            .await
            .expect("the stream went silent");
        let Some(chunk) = next else {
            self.ended = true;
            return false;
        };
        let chunk = chunk.expect("the body ends cleanly");
        assert!(!chunk.is_empty(), "no zero-length chunk before the last");
        self.raw.extend_from_slice(&chunk);
        let text = match &mut self.decoder {
            Some(decoder) => {
                decoder.write_all(&chunk).unwrap();
                decoder.flush().unwrap();
                String::from_utf8(std::mem::take(decoder.get_mut())).unwrap()
            }
            None => String::from_utf8(chunk.to_vec()).unwrap(),
        };
        if text.is_empty() {
            // The gzip trailer.
            return true;
        }
        // A large HTTP chunk may reach the client in several reads, so outside strict mode a
        // read need not end on a line boundary.
        if self.strict {
            assert!(
                text.ends_with("\r\n"),
                "a chunk decoded to a partial line: {text:?}"
            );
        }
        self.partial.push_str(&text);
        while let Some(end) = self.partial.find("\r\n") {
            let line: String = self.partial.drain(..end + 2).collect();
            let line = &line[..end];
            self.lines.push_back(if line.is_empty() {
                Line::Heartbeat
            } else {
                Line::Message(serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            });
        }
        true
    }

    /// The next line; `None` at the end of the body.
    pub async fn next_line(&mut self) -> Option<Line> {
        loop {
            if let Some(line) = self.lines.pop_front() {
                return Some(line);
            }
            if self.ended || !self.read_chunk().await {
                assert!(self.partial.is_empty(), "the body ended mid-line");
                return None;
            }
        }
    }

    /// The next JSON message, skipping heartbeats.
    pub async fn next_message(&mut self) -> Value {
        loop {
            match self.next_line().await.expect("the stream ended") {
                Line::Heartbeat => continue,
                Line::Message(m) => return m,
            }
        }
    }

    /// The messages up to the next heartbeat (a heartbeat means everything queued for the
    /// connection has been written).
    pub async fn until_heartbeat(&mut self) -> Vec<Value> {
        let mut messages = Vec::new();
        loop {
            match self.next_line().await.expect("the stream ended") {
                Line::Heartbeat => return messages,
                Line::Message(m) => messages.push(m),
            }
        }
    }

    /// Messages until `n` arrived, then every message already queued for the connection
    /// (see [`Self::drain_queued`]). Panics when fewer than `n` arrived within
    /// [`AT_LEAST_WAIT`] (heartbeats keep a stream from going silent, so only this bound
    /// ends the wait).
    pub async fn at_least(&mut self, n: usize) -> Vec<Value> {
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + AT_LEAST_WAIT;
        while got.len() < n {
            let next = tokio::time::timeout_at(deadline, self.until_heartbeat()).await;
            let Ok(messages) = next else {
                panic!("{} of {n} messages arrived: {got:?}", got.len());
            };
            got.extend(messages);
        }
        got.extend(self.drain_queued().await);
        got
    }

    /// Every message already queued for the connection: the heartbeats queued while the
    /// test did not read come at once, so reading stops at the first heartbeat that had to
    /// be waited for.
    pub async fn drain_queued(&mut self) -> Vec<Value> {
        let mut got = Vec::new();
        loop {
            let started = std::time::Instant::now();
            got.extend(self.until_heartbeat().await);
            if started.elapsed() > std::time::Duration::from_millis(150) {
                return got;
            }
        }
    }

    /// Reads to the end of the body and returns the messages on the way; a gzip body must
    /// be one complete gzip stream.
    pub async fn rest(&mut self) -> Vec<Value> {
        let mut messages = Vec::new();
        while let Some(line) = self.next_line().await {
            if let Line::Message(m) = line {
                messages.push(m);
            }
        }
        if self.decoder.is_some() {
            let mut whole = Vec::new();
            flate2::read::GzDecoder::new(&self.raw[..])
                .read_to_end(&mut whole)
                .expect("the gzip stream is finished with its trailer");
        }
        messages
    }
}

/// The post ids of `messages`, checked to be distinct (no post delivered twice).
pub fn distinct_ids(messages: &[Value]) -> Vec<u64> {
    let ids: Vec<u64> = messages.iter().map(id_of).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(
        sorted.len(),
        ids.len(),
        "a post was delivered twice: {ids:?}"
    );
    ids
}

/// The post id of a message.
pub fn id_of(message: &Value) -> u64 {
    message["id_str"]
        .as_str()
        .unwrap_or_else(|| panic!("not a post: {message}"))
        .parse()
        .unwrap()
}

/// The status and decoded JSON body of a Gnip-style error response; checks its shape
/// (`{"error":{"message","sent"}}` with a stream `sent`).
pub async fn error_response(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let gzipped = response
        .headers()
        .get("content-encoding")
        .is_some_and(|v| v == "gzip");
    let bytes = response.bytes().await.unwrap();
    let json = if gzipped {
        let mut plain = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut plain)
            .unwrap();
        plain
    } else {
        bytes.to_vec()
    };
    let body: Value = serde_json::from_slice(&json).unwrap_or_else(|e| panic!("{e}: {json:?}"));
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    assert_eq!(body["error"].as_object().unwrap().len(), 2, "{body}");
    assert_stream_sent(&body["error"]["sent"]);
    (status, body)
}

/// A stream `sent`: `2017-01-11T18:12:52+00:00`.
pub fn assert_stream_sent(sent: &Value) {
    let sent = sent.as_str().unwrap();
    assert_eq!(sent.len(), 25, "{sent}");
    assert_eq!(&sent[10..11], "T", "{sent}");
    assert!(sent.ends_with("+00:00"), "{sent}");
}

/// The `message` of an `{"error":…}` body.
pub fn error_message(body: &Value) -> &str {
    body["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error message: {body}"))
}
