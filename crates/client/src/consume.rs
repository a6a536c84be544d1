//! Reading a stream for as long as it is wanted: connect, hand each line on as it arrives,
//! and reconnect with X's backoff ([`crate::backoff`]) when the connection drops or the
//! server ends the stream. Shared by `sluice stream` (lines to stdout) and `sluice record`
//! (lines to a file), which differ only in where lines go ([`StreamSink`]).
//!
//! A connection asks for `Accept-Encoding: gzip` and decodes the body chunk by chunk
//! ([`crate::lines`]). Heartbeats are dropped, system messages go to the sink's `system`
//! (a v2 `errors` line with a `disconnect_type` also ends the connection, and the consumer
//! reconnects at once with the same backoff, as twarc does), everything else to its `data`.
//! 400, 401, 403, 404 and 406 and an untrusted certificate are not retried: the request
//! itself is wrong.

use std::io::{self, Write as _};

use hyper::header::{ACCEPT, ACCEPT_ENCODING};
use hyper::{Method, StatusCode};
use url::Url;

use crate::backoff::{Backoff, Failure};
use crate::http::{Auth, HttpClient, HttpError, Reply, Request};
use crate::lines::{BodyEncoding, LineDecoder};
use crate::message::{Line, classify, v2_disconnect};

/// What a sink wants after a data line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// Keep reading.
    Continue,
    /// Stop: the sink has what it wanted.
    Stop,
}

/// Where a consumer's lines go.
pub trait StreamSink {
    /// A post or another data line (a compliance event), without its line end.
    fn data(&mut self, line: &[u8]) -> io::Result<Flow>;

    /// A system message (`{"error":…}`, `{"info":…}`, `{"errors":…}`, connection
    /// metadata); by default written to stderr.
    fn system(&mut self, line: &[u8]) -> io::Result<()> {
        let mut stderr = io::stderr().lock();
        stderr.write_all(line)?;
        stderr.write_all(b"\n")
    }

    /// Called after the lines of each chunk: push buffered output out.
    fn flush(&mut self) -> io::Result<()>;

    /// A connection event for a person (connected, reconnecting); by default on stderr.
    fn notice(&mut self, text: &str) {
        eprintln!("{text}");
    }
}

/// Why [`Consumer::consume`] returned (it never returns while the stream can be read).
#[derive(Debug)]
pub enum Ended {
    /// The sink said [`Flow::Stop`].
    Stopped,
    /// Writing failed (a closed pipe is `BrokenPipe`).
    Output(io::Error),
    /// The server refused the request in a way a retry cannot fix, or its certificate is
    /// not trusted; the text says which.
    Refused(String),
}

/// One stream consumer's fixed parts.
pub struct Consumer<'a> {
    /// The client (with a read timeout longer than the stream's heartbeat interval).
    pub client: &'a HttpClient,
    /// The stream's credentials.
    pub auth: &'a Auth,
    /// The command name that starts every notice, e.g. `sluice stream`.
    pub name: &'static str,
    /// Multiplies every reconnect wait (tests shorten the backoff with it).
    pub backoff_scale: f64,
}

impl Consumer<'_> {
    /// Connects, reads and reconnects until the sink stops, output fails or the server
    /// refuses for good. `url_for(connected_before)` gives each attempt's URL (so a
    /// reconnect can ask for backfill).
    pub async fn consume(
        &self,
        mut url_for: impl FnMut(bool) -> Url,
        sink: &mut impl StreamSink,
    ) -> Ended {
        let mut backoff = Backoff::new(self.backoff_scale);
        let mut connected = false;
        loop {
            let url = url_for(connected);
            let attempt = self
                .connect_once(&url, sink, &mut backoff, &mut connected)
                .await;
            let (failure, reason) = match attempt {
                Attempt::Ended(ended) => return ended,
                Attempt::Retry(failure, reason) => (failure, reason),
            };
            let wait = backoff.failed(failure);
            sink.notice(&format!(
                "{}: {reason}; reconnecting in {:.2} s",
                self.name,
                wait.as_secs_f64()
            ));
            tokio::time::sleep(wait).await;
        }
    }

    /// One connection: connect, read until it ends, say how it ended.
    async fn connect_once(
        &self,
        url: &Url,
        sink: &mut impl StreamSink,
        backoff: &mut Backoff,
        connected: &mut bool,
    ) -> Attempt {
        let request = match Request::new(Method::GET, url, self.auth) {
            Ok(request) => request
                .header(ACCEPT_ENCODING, "gzip")
                .header(ACCEPT, "application/json"),
            Err(e) => return Attempt::Ended(Ended::Refused(format!("{e:#}"))),
        };
        let mut response = match self.client.send(&request).await {
            Ok(response) => response,
            Err(e) if e.is_permanent() => {
                return Attempt::Ended(Ended::Refused(format!("cannot connect to {url}: {e}")));
            }
            Err(e) => return Attempt::Retry(Failure::Network, format!("cannot connect: {e}")),
        };
        let status = response.status;
        if status != StatusCode::OK {
            let message = match Reply::read(response).await {
                Ok(reply) => reply.error_message(),
                Err(e) => format!("{e:#}"),
            };
            let what = format!("HTTP {status}: {message}");
            return match status.as_u16() {
                429 | 420 => Attempt::Retry(Failure::RateLimited, what),
                400 | 401 | 403 | 404 | 406 => Attempt::Ended(Ended::Refused(what)),
                _ => Attempt::Retry(Failure::Http, what),
            };
        }
        backoff.connected();
        *connected = true;
        sink.notice(&format!("{}: connected to {url}", self.name));
        let mut decoder = LineDecoder::new(if response.is_gzip() {
            BodyEncoding::Gzip
        } else {
            BodyEncoding::Identity
        });
        loop {
            let chunk = match response.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => {
                    return Attempt::Retry(
                        Failure::Network,
                        "the server ended the stream".to_owned(),
                    );
                }
                Err(e @ HttpError::Timeout(_)) => {
                    return Attempt::Retry(Failure::Network, e.to_string());
                }
                Err(e) => {
                    return Attempt::Retry(Failure::Network, format!("connection lost: {e}"));
                }
            };
            let mut routed = Routed::default();
            let decoded = decoder.feed(&chunk, |line| routed.route(line, sink));
            if let Err(e) = decoded {
                return Attempt::Retry(Failure::Network, format!("undecodable stream: {e}"));
            }
            if let Err(e) = routed.written.and_then(|()| sink.flush()) {
                return Attempt::Ended(Ended::Output(e));
            }
            if routed.stop {
                return Attempt::Ended(Ended::Stopped);
            }
            if let Some(reason) = routed.disconnect {
                return Attempt::Retry(Failure::Network, reason);
            }
        }
    }
}

/// How one connection attempt ended.
enum Attempt {
    /// Reconnect after the backoff for this failure.
    Retry(Failure, String),
    /// Stop consuming.
    Ended(Ended),
}

/// The lines of one chunk, routed to the sink.
struct Routed {
    written: io::Result<()>,
    /// The sink said stop: later lines of the chunk are not handed on.
    stop: bool,
    /// Why the server is closing the stream, once a v2 disconnect line said so.
    disconnect: Option<String>,
}

impl Default for Routed {
    fn default() -> Self {
        Self {
            written: Ok(()),
            stop: false,
            disconnect: None,
        }
    }
}

impl Routed {
    fn route(&mut self, line: &[u8], sink: &mut impl StreamSink) {
        if self.stop || self.written.is_err() {
            return;
        }
        self.written = match classify(line) {
            Line::Heartbeat => Ok(()),
            Line::System => {
                if let Some(reason) = v2_disconnect(line) {
                    self.disconnect = Some(reason);
                }
                sink.system(line)
            }
            Line::Data => sink.data(line).map(|flow| {
                self.stop = flow == Flow::Stop;
            }),
        };
    }
}

/// Whether `url` is one of the X API v2 streams, which name their parameters in
/// snake_case and take an app's bearer token.
pub fn is_v2(url: &Url) -> bool {
    url.path().starts_with("/2/tweets/")
}

/// The backfill parameter's name on the stream at `url`: `backfill_minutes` on the X API
/// v2 streams, `backfillMinutes` on the Gnip-style ones.
pub fn backfill_parameter(url: &Url) -> &'static str {
    if is_v2(url) {
        "backfill_minutes"
    } else {
        "backfillMinutes"
    }
}

/// The URL of one connection: `url` with the parameters of `set` and the backfill
/// parameter, when given, replacing any of the same names.
pub fn connect_url(url: &Url, set: &[(String, String)], backfill: Option<(&str, u8)>) -> Url {
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
        assert_eq!(backfill_parameter(&base), "backfill_minutes");
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
        let gnip = Url::parse("https://h/stream/powertrack/x.json").expect("valid");
        assert_eq!(backfill_parameter(&gnip), "backfillMinutes");
    }

    /// A sink that keeps what it is given and stops after `limit` data lines.
    struct Keep {
        data: Vec<String>,
        system: Vec<String>,
        limit: usize,
    }

    impl StreamSink for Keep {
        fn data(&mut self, line: &[u8]) -> io::Result<Flow> {
            self.data.push(String::from_utf8_lossy(line).into_owned());
            Ok(if self.data.len() >= self.limit {
                Flow::Stop
            } else {
                Flow::Continue
            })
        }
        fn system(&mut self, line: &[u8]) -> io::Result<()> {
            self.system.push(String::from_utf8_lossy(line).into_owned());
            Ok(())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_are_routed_by_kind_and_nothing_follows_a_stop() {
        let mut sink = Keep {
            data: Vec::new(),
            system: Vec::new(),
            limit: 2,
        };
        let mut routed = Routed::default();
        for line in [
            "{\"id\":1}",
            "",
            "{\"info\":{\"message\":\"x\"}}",
            r#"{"errors":[{"disconnect_type":"OperationalDisconnect"}]}"#,
            "{\"id\":2}",
            "{\"id\":3}",
        ] {
            routed.route(line.as_bytes(), &mut sink);
        }
        assert_eq!(sink.data, ["{\"id\":1}", "{\"id\":2}"]);
        assert_eq!(sink.system.len(), 2);
        assert!(routed.stop);
        assert_eq!(
            routed.disconnect.as_deref(),
            Some("the server closes the stream (OperationalDisconnect)")
        );
    }
}
