//! One stream connection of the bench: connect (sitting out the connect rate limit), then
//! read the body (gzip or identity) chunk by chunk, timestamping every chunk as it comes off the socket
//! and counting each post in it as received, duplicated or unexpected.
//!
//! Native posts are recognised by their top-level id without parsing the JSON: the
//! synthetic posts start `{"created_at":"…","id":N,` and the server keeps the ingested
//! bytes, so the first `"id":` is the post's own. A line where that fails falls back to a
//! real parse. A v2 line is built by the server and its `data` object has other ids before
//! its own (`author_id`, mentions in `entities`, `edit_history_tweet_ids`), so its
//! `data.id` is read by a parse that skips everything else ([`v2_post_id`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use hyper::header::{ACCEPT, ACCEPT_ENCODING};
use hyper::{Method, StatusCode};
use memchr::memmem;
use tokio::sync::watch;
use url::Url;

use super::benchmark::LineFormat;
use super::workload::{Posts, Share};
use sluice_client::http::{Auth, HttpClient, Reply, Request, Response, rate_limit_wait};
use sluice_client::lines::{BodyEncoding, LineDecoder};
use sluice_client::message::{Line, classify};

/// Consecutive 429s before a connection attempt gives up (each waits for the window reset).
const MAX_RATE_LIMITED: u32 = 5;

/// What every reader shares with the bench.
pub struct Shared {
    /// The posts and which of them are expected.
    pub posts: Arc<Posts>,
    /// The instant every timestamp of the run is measured from.
    pub epoch: Instant,
    /// First arrivals of expected posts, over all connections (to know when all arrived).
    pub arrived: AtomicU64,
}

impl Shared {
    /// Microseconds since [`Shared::epoch`].
    pub fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
}

/// What one connection saw.
#[derive(Debug, Default)]
pub struct ReaderReport {
    /// Posts this connection must receive.
    pub expected: u64,
    /// Expected posts received (each counted once).
    pub received: u64,
    /// Posts received more than once (each extra copy counts).
    pub duplicates: u64,
    /// Posts received that the rules do not match, or that the bench never sent.
    pub unexpected: u64,
    /// `(post index, arrival in µs since the epoch)` of every first arrival.
    pub arrivals: Vec<(u32, u64)>,
    /// Data lines received in total.
    pub lines: u64,
    /// Why the connection ended before the bench closed it, if it did.
    pub disconnect: Option<String>,
    /// System messages (`{"error":…}`, `{"info":…}`) received.
    pub system_messages: Vec<String>,
}

/// Opens a stream connection and returns it once the server answered 200 (it is then
/// registered and receives every post from now on). It asks for gzip when `gzip` is true,
/// for identity otherwise. A 429 is waited out until the window resets: X allows 60
/// connects per minute per PowerTrack stream (10 per volume stream), so more connections
/// than that take more than one window. `on_wait` is told how long each wait is.
pub async fn connect(
    client: &HttpClient,
    url: &Url,
    auth: &Auth,
    gzip: bool,
    mut on_wait: impl FnMut(Duration),
) -> anyhow::Result<Response> {
    let request = Request::new(Method::GET, url, auth)?
        .header(ACCEPT_ENCODING, if gzip { "gzip" } else { "identity" })
        .header(ACCEPT, "application/json");
    let mut limited = 0;
    loop {
        let response = client
            .send(&request)
            .await
            .with_context(|| format!("connecting to {url}"))?;
        match response.status {
            StatusCode::OK => return Ok(response),
            StatusCode::TOO_MANY_REQUESTS if limited < MAX_RATE_LIMITED => {
                limited += 1;
                let reply = Reply::read(response).await?;
                let wait = rate_limit_wait(&reply.headers, SystemTime::now());
                on_wait(wait);
                tokio::time::sleep(wait).await;
            }
            status => {
                let reply = Reply::read(response).await?;
                bail!(
                    "connecting to {url}: HTTP {status}: {}",
                    reply.error_message()
                );
            }
        }
    }
}

/// Reads `response`, a connection that must receive the expected posts of `share`, until
/// the bench says stop (`stop` becomes true) or the connection ends; returns what it saw.
pub async fn read(
    mut response: Response,
    share: Share,
    lines: LineFormat,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> ReaderReport {
    let mut counter = Counter::new(shared.clone(), share, lines);
    let mut decoder = LineDecoder::new(if response.is_gzip() {
        BodyEncoding::Gzip
    } else {
        BodyEncoding::Identity
    });
    loop {
        let chunk = tokio::select! {
            biased;
            chunk = response.chunk() => chunk,
            _ = stop.wait_for(|stop| *stop) => break,
        };
        let arrival = shared.now_us();
        match chunk {
            Ok(Some(chunk)) => {
                let decoded = decoder.feed(&chunk, |line| counter.line(line, arrival));
                if let Err(e) = decoded {
                    counter.report.disconnect = Some(format!("undecodable stream: {e}"));
                    break;
                }
            }
            Ok(None) => {
                counter.report.disconnect = Some("the server ended the stream".to_owned());
                break;
            }
            Err(e) => {
                counter.report.disconnect = Some(format!("connection lost: {e}"));
                break;
            }
        }
    }
    counter.report
}

/// Counts the lines of one connection.
struct Counter {
    shared: Arc<Shared>,
    /// Which expected posts this connection must receive.
    share: Share,
    /// Where a line has its post's id.
    lines: LineFormat,
    /// Per post: received already?
    seen: Vec<bool>,
    id_key: memmem::Finder<'static>,
    report: ReaderReport,
}

impl Counter {
    fn new(shared: Arc<Shared>, share: Share, lines: LineFormat) -> Self {
        let posts = shared.posts.len();
        let expected = shared.posts.expected_on(share);
        Self {
            seen: vec![false; posts],
            id_key: memmem::Finder::new(b"\"id\":"),
            report: ReaderReport {
                expected: expected as u64,
                arrivals: Vec::with_capacity(expected),
                ..ReaderReport::default()
            },
            shared,
            share,
            lines,
        }
    }

    fn line(&mut self, line: &[u8], arrival_us: u64) {
        match classify(line) {
            Line::Heartbeat => {}
            Line::System => self
                .report
                .system_messages
                .push(String::from_utf8_lossy(line).into_owned()),
            Line::Data => self.post(line, arrival_us),
        }
    }

    fn post(&mut self, line: &[u8], arrival_us: u64) {
        self.report.lines += 1;
        let index = match self.lines {
            LineFormat::Native => self
                .quick_id(line)
                .and_then(|id| self.shared.posts.index_of(id))
                .or_else(|| {
                    let id = sluice_model::parse_post(line).ok()?.id()?;
                    self.shared.posts.index_of(id)
                }),
            LineFormat::V2 => v2_post_id(line).and_then(|id| self.shared.posts.index_of(id)),
        };
        let Some(index) = index else {
            self.report.unexpected += 1;
            return;
        };
        let seen = &mut self.seen[index as usize];
        if *seen {
            self.report.duplicates += 1;
        } else if !self.shared.posts.is_expected_on(index, self.share) {
            *seen = true;
            self.report.unexpected += 1;
        } else {
            *seen = true;
            self.report.received += 1;
            self.report.arrivals.push((index, arrival_us));
            self.shared.arrived.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The digits after the first `"id":`.
    fn quick_id(&self, line: &[u8]) -> Option<u64> {
        first_id(&self.id_key, line)
    }
}

/// The digits after the first match of `key` (`"id":`) in a line: the bench's posts have
/// their own id first, so this finds it without parsing the line.
pub(crate) fn first_id(key: &memmem::Finder<'_>, line: &[u8]) -> Option<u64> {
    let start = key.find(line)? + key.needle().len();
    let digits = line[start..]
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    std::str::from_utf8(&line[start..start + digits])
        .ok()?
        .parse()
        .ok()
}

/// The post id of a v2 stream line, `data.id` (a string of digits), or `None` when the
/// line is not a v2 post.
fn v2_post_id(line: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct V2Line<'a> {
        #[serde(borrow)]
        data: V2Data<'a>,
    }
    #[derive(serde::Deserialize)]
    struct V2Data<'a> {
        id: &'a str,
    }
    let parsed: V2Line<'_> = serde_json::from_slice(line).ok()?;
    let id = parsed.data.id;
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    id.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{Expect, Rules};
    use sluice_rules::Dialect;

    fn shared() -> Arc<Shared> {
        let mut rules = Rules::generate(5, 300, Dialect::PowerTrack, 1).expect("rules");
        let posts = Posts::generate(
            5,
            200,
            100.0,
            1_700_000_000_000,
            Expect::Matching(&mut rules),
        )
        .expect("posts");
        Arc::new(Shared {
            posts: Arc::new(posts),
            epoch: Instant::now(),
            arrived: AtomicU64::new(0),
        })
    }

    /// Post `n` as the stream delivers it: with `matching_rules` appended.
    fn delivered(shared: &Shared, n: usize) -> Vec<u8> {
        let raw = shared.posts.batch(n, n + 1);
        let mut out = Vec::new();
        sluice_model::enrich::enrich_into(
            raw.trim_ascii_end(),
            [sluice_model::enrich::MatchedRule {
                id: 7,
                tag: Some("t"),
            }],
            &mut out,
        )
        .expect("enrich");
        out
    }

    #[test]
    fn posts_are_counted_once_and_unmatched_ones_are_unexpected() {
        let shared = shared();
        let expected: Vec<usize> = (0..200)
            .filter(|&n| shared.posts.is_expected(n as u32))
            .collect();
        let unmatched = (0..200)
            .find(|&n| !shared.posts.is_expected(n as u32))
            .expect("some post matches nothing");
        let mut counter = Counter::new(shared.clone(), Share::Stream(0), LineFormat::Native);
        for &n in &expected {
            counter.line(&delivered(&shared, n), 10);
        }
        counter.line(&delivered(&shared, expected[0]), 20);
        counter.line(&delivered(&shared, unmatched), 30);
        counter.line(b"", 40);
        counter.line(
            br#"{"error":{"message":"Forced Disconnect","sent":"x"}}"#,
            50,
        );
        counter.line(br#"{"created_at":"x","id":1,"id_str":"1","text":"?"}"#, 60);
        let report = counter.report;
        assert_eq!(report.received, expected.len() as u64);
        assert_eq!(report.duplicates, 1);
        assert_eq!(report.unexpected, 2);
        assert_eq!(report.lines, expected.len() as u64 + 3);
        assert_eq!(report.system_messages.len(), 1);
        assert_eq!(report.arrivals.len(), expected.len());
        assert!(report.arrivals.iter().all(|&(_, at)| at == 10));
        assert_eq!(
            shared.arrived.load(Ordering::Relaxed),
            expected.len() as u64
        );
    }

    #[test]
    fn a_post_without_the_quick_id_shape_is_found_by_parsing() {
        let shared = shared();
        let n = (0..200)
            .find(|&n| shared.posts.is_expected(n as u32))
            .expect("some post matches");
        let line = delivered(&shared, n);
        // The same post with a key before `created_at` that hides the id from the scan.
        let mut moved = br#"{"x":{"id":"nope"},"#.to_vec();
        moved.extend_from_slice(&line[1..]);
        let mut counter = Counter::new(shared, Share::Stream(0), LineFormat::Native);
        counter.line(&moved, 5);
        assert_eq!(counter.report.received, 1);
        assert_eq!(counter.report.arrivals, [(n as u32, 5)]);
    }

    /// Post `n` as a v2 filtered stream with field expansion delivers it: the server's
    /// own conversion, with `matching_rules`.
    fn delivered_v2(shared: &Shared, n: usize) -> Vec<u8> {
        let raw = shared.posts.batch(n, n + 1);
        let query = [
            (
                "tweet.fields",
                "created_at,author_id,entities,public_metrics",
            ),
            ("expansions", "author_id,referenced_tweets.id"),
            ("user.fields", "username,public_metrics"),
        ];
        let fields = sluice_wire::v2_post::V2Fields::parse(query).expect("known fields");
        let line =
            sluice_wire::v2_post::to_v2_bytes(raw.trim_ascii_end(), &fields).expect("a v2 line");
        let line = sluice_wire::v2_post::with_matching_rules(line, &[("7", Some("t"))]);
        serde_json::to_vec(&line).expect("serializes")
    }

    #[test]
    fn v2_lines_are_counted_by_their_data_id() {
        let shared = shared();
        let expected: Vec<usize> = (0..200)
            .filter(|&n| shared.posts.is_expected(n as u32))
            .collect();
        let unmatched = (0..200)
            .find(|&n| !shared.posts.is_expected(n as u32))
            .expect("some post matches nothing");
        let mut counter = Counter::new(shared.clone(), Share::Stream(0), LineFormat::V2);
        for &n in &expected {
            counter.line(&delivered_v2(&shared, n), 10);
        }
        counter.line(&delivered_v2(&shared, expected[0]), 20);
        counter.line(&delivered_v2(&shared, unmatched), 30);
        counter.line(b"", 40);
        counter.line(
            br#"{"errors":[{"title":"operational-disconnect","disconnect_type":"OperationalDisconnect"}]}"#,
            50,
        );
        let report = counter.report;
        assert_eq!(report.received, expected.len() as u64);
        assert_eq!(report.duplicates, 1);
        assert_eq!(report.unexpected, 1);
        assert_eq!(report.system_messages.len(), 1);
        assert_eq!(report.arrivals.len(), expected.len());
        assert!(report.arrivals.iter().all(|&(_, at)| at == 10));
    }

    #[test]
    fn the_v2_id_is_data_id_whatever_comes_before_it() {
        #[rustfmt::skip]
        let cases: &[(&str, Option<u64>)] = &[
            (r#"{"data":{"id":"42","text":"a"}}"#, Some(42)),
            // Other ids first: the author's, a mention's, the edit history, includes.
            (
                r#"{"includes":{"users":[{"id":"9"}]},"data":{"author_id":"8","entities":{"mentions":[{"id":"7"}]},"edit_history_tweet_ids":["6"],"id":"42"},"matching_rules":[{"id":"5","tag":""}]}"#,
                Some(42),
            ),
            (r#"{"data":{"id":42}}"#, None),
            (r#"{"data":{"id":"4x2"}}"#, None),
            (r#"{"data":{"id":""}}"#, None),
            (r#"{"data":{"id":"99999999999999999999"}}"#, None),
            (r#"{"data":{"text":"no id"}}"#, None),
            (r#"{"created_at":"x","id":42,"id_str":"42"}"#, None),
            (r#"{"data":[{"id":"42"}]}"#, None),
            (r#"{"data":{"id":"42""#, None),
            ("", None),
        ];
        for (line, want) in cases {
            assert_eq!(v2_post_id(line.as_bytes()), *want, "{line}");
        }
    }

    #[test]
    fn a_partition_connection_expects_only_its_partition() {
        let posts =
            Posts::generate(6, 200, 100.0, 1_700_000_000_000, Expect::Every).expect("posts");
        let shared = Arc::new(Shared {
            posts: Arc::new(posts),
            epoch: Instant::now(),
            arrived: AtomicU64::new(0),
        });
        let share = Share::Partition { number: 3, of: 20 };
        let mut counter = Counter::new(shared.clone(), share, LineFormat::Native);
        let mine: Vec<u32> = (0..200)
            .filter(|&n| shared.posts.is_expected_on(n, share))
            .collect();
        let other = (0..200)
            .find(|&n| !shared.posts.is_expected_on(n, share))
            .expect("a post of another partition");
        for &n in &mine {
            counter.line(&delivered(&shared, n as usize), 1);
        }
        counter.line(&delivered(&shared, other as usize), 2);
        let report = counter.report;
        assert_eq!(report.expected, mine.len() as u64);
        assert_eq!(report.received, mine.len() as u64);
        assert_eq!(report.unexpected, 1);
    }
}
