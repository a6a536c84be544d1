//! A fake Bluesky Jetstream on loopback, standing in for a public instance in the source's
//! tests: a WebSocket server at `/subscribe` replaying its events in order from the
//! request's `cursor` (events whose `time_us` is at or after it; all of them without one),
//! keeping only the `wantedCollections` commits (identity and account events always go),
//! compressing each event with Jetstream's dictionary when asked (`compress=true`), then
//! tailing: events pushed later go to every open session. A test can make the next session
//! drop its connection (no close frame, as a network failure would) after some events.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures_util::SinkExt as _;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};

/// What one session asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRequest {
    /// Its `cursor`.
    pub cursor: Option<u64>,
    /// Whether it asked for `compress=true`.
    pub compress: bool,
    /// Its `wantedCollections`.
    pub wanted: Vec<String>,
}

#[derive(Default)]
struct Shared {
    /// (time_us, collection of a commit, the event), in order.
    events: Vec<(u64, Option<String>, Vec<u8>)>,
    sessions: Vec<SessionRequest>,
    /// For each next session in turn: drop it after this many events.
    drops: VecDeque<usize>,
    /// Events sent, over all sessions.
    sent: usize,
}

/// A fake Jetstream instance.
pub struct FakeJetstream {
    addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    pushed: Arc<Notify>,
    task: JoinHandle<()>,
}

impl FakeJetstream {
    /// Serves `events` (JSON lines in Jetstream's shape, each with `time_us`) on a free
    /// loopback port.
    pub async fn start<I: AsRef<[u8]>>(events: impl IntoIterator<Item = I>) -> FakeJetstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let pushed = Arc::new(Notify::new());
        let server = FakeJetstream {
            addr,
            shared: shared.clone(),
            pushed: pushed.clone(),
            task: tokio::spawn(accept(listener, shared, pushed)),
        };
        for event in events {
            server.push(event.as_ref());
        }
        server
    }

    /// `ws://127.0.0.1:PORT`, the instance URL a source is given.
    pub fn url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// Adds an event at the end; open sessions send it at once.
    pub fn push(&self, event: &[u8]) {
        let json: Value = serde_json::from_slice(event).expect("a fake event is JSON");
        let time_us = json["time_us"].as_u64().expect("a fake event has time_us");
        let collection = json["commit"]["collection"].as_str().map(str::to_owned);
        self.shared
            .lock()
            .unwrap()
            .events
            .push((time_us, collection, event.to_vec()));
        self.pushed.notify_waiters();
    }

    /// The next session not yet opened drops its connection after sending `events` events.
    pub fn drop_next_session_after(&self, events: usize) {
        self.shared.lock().unwrap().drops.push_back(events);
    }

    /// What each session asked for, in order of arrival.
    pub fn sessions(&self) -> Vec<SessionRequest> {
        self.shared.lock().unwrap().sessions.clone()
    }

    /// Events sent so far, over all sessions.
    pub fn sent(&self) -> usize {
        self.shared.lock().unwrap().sent
    }
}

impl Drop for FakeJetstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept(listener: TcpListener, shared: Arc<Mutex<Shared>>, pushed: Arc<Notify>) {
    let mut sessions = tokio::task::JoinSet::new();
    while let Ok((tcp, _)) = listener.accept().await {
        sessions.spawn(session(tcp, shared.clone(), pushed.clone()));
    }
}

/// The query of a subscribe request.
fn parse_request(uri: &str) -> SessionRequest {
    let url = url::Url::parse(&format!("ws://fake{uri}")).unwrap();
    let mut request = SessionRequest {
        cursor: None,
        compress: false,
        wanted: Vec::new(),
    };
    for (name, value) in url.query_pairs() {
        match &*name {
            "cursor" => request.cursor = value.parse().ok(),
            "compress" => request.compress = value == "true",
            "wantedCollections" => request.wanted.push(value.into_owned()),
            _ => {}
        }
    }
    request
}

async fn session(tcp: TcpStream, shared: Arc<Mutex<Shared>>, pushed: Arc<Notify>) {
    let mut uri = String::new();
    // The callback's error type is tungstenite's (an HTTP response), not ours to shrink.
    #[allow(clippy::result_large_err)]
    let handshake =
        tokio_tungstenite::accept_hdr_async(tcp, |request: &Request, response: Response| {
            uri = request.uri().to_string();
            Ok(response)
        })
        .await;
    let Ok(mut socket) = handshake else { return };
    let request = parse_request(&uri);
    let drop_after = {
        let mut shared = shared.lock().unwrap();
        shared.sessions.push(request.clone());
        shared.drops.pop_front()
    };
    let mut next = 0;
    let mut sent = 0;
    loop {
        // Registered before looking, so a push in between is not missed.
        let notified = pushed.notified();
        let due: Vec<Vec<u8>> = {
            let shared = shared.lock().unwrap();
            let due = shared.events[next..]
                .iter()
                .filter(|(time_us, collection, _)| {
                    request.cursor.is_none_or(|c| *time_us >= c)
                        && collection
                            .as_ref()
                            .is_none_or(|c| request.wanted.is_empty() || request.wanted.contains(c))
                })
                .map(|(_, _, event)| event.clone())
                .collect();
            next = shared.events.len();
            due
        };
        for event in due {
            if drop_after.is_some_and(|n| sent >= n) {
                // Gone without a close frame, as a failed network would leave it.
                return;
            }
            let message = if request.compress {
                let frame = sluice_source::jetstream::compression::compress(&event).unwrap();
                Message::Binary(frame.into())
            } else {
                Message::Text(String::from_utf8(event).unwrap().into())
            };
            if socket.send(message).await.is_err() {
                return;
            }
            sent += 1;
            shared.lock().unwrap().sent += 1;
        }
        if drop_after.is_some_and(|n| sent >= n) {
            return;
        }
        notified.await;
    }
}

/// Events in Jetstream's documented shapes, for tests that need a few of their own.
pub mod events {
    use serde_json::{Value, json};

    /// The record key alphabet of AT Protocol TIDs (base32, sortable).
    const TID_ALPHABET: &[u8; 32] = b"234567abcdefghijklmnopqrstuvwxyz";

    /// A TID (a post's record key): 53 bits of microseconds since the epoch and 10 bits of
    /// clock id, in 13 sortable base32 characters.
    pub fn tid(micros: u64, clock_id: u16) -> String {
        let value = ((micros & ((1 << 53) - 1)) << 10) | u64::from(clock_id & 0x3ff);
        (0..13)
            .rev()
            .map(|i| TID_ALPHABET[((value >> (i * 5)) & 31) as usize] as char)
            .collect()
    }

    /// The ISO 8601 time of `micros` (whole milliseconds), as records' `createdAt`.
    fn iso(micros: u64) -> String {
        let seconds = (micros / 1_000_000) as i64;
        let millis = (micros / 1_000) % 1_000;
        let days = seconds.div_euclid(86_400);
        let rest = seconds.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
            rest / 3600,
            rest / 60 % 60,
            rest % 60
        )
    }

    /// Howard Hinnant's days-to-civil algorithm.
    fn civil_from_days(z: i64) -> (i64, u32, u32) {
        let z = z + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let y = yoe + era * 400;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        (if m <= 2 { y + 1 } else { y }, m, d)
    }

    /// A facet over `text`'s bytes `[start, end)` with one feature.
    pub fn facet(start: usize, end: usize, feature: Value) -> Value {
        json!({"index": {"byteStart": start, "byteEnd": end}, "features": [feature]})
    }

    /// The facets of every `#tag`, `https://…` link and `@handle` (resolved to `did:plc:`
    /// + the handle's first label) in `text`, as the Bluesky app writes them.
    pub fn facets_of(text: &str) -> Vec<Value> {
        let mut facets = Vec::new();
        let mut start = 0;
        for word in text.split(' ') {
            let end = start + word.len();
            if let Some(tag) = word.strip_prefix('#') {
                facets.push(facet(
                    start,
                    end,
                    json!({"$type": "app.bsky.richtext.facet#tag", "tag": tag}),
                ));
            } else if word.starts_with("https://") {
                facets.push(facet(
                    start,
                    end,
                    json!({"$type": "app.bsky.richtext.facet#link", "uri": word}),
                ));
            } else if let Some(handle) = word.strip_prefix('@') {
                let did = format!("did:plc:{}", handle.split('.').next().unwrap_or(handle));
                facets.push(facet(
                    start,
                    end,
                    json!({"$type": "app.bsky.richtext.facet#mention", "did": did}),
                ));
            }
            start = end + 1;
        }
        facets
    }

    /// A commit creating a post by `did` at `time_us`, its record key a TID of the same
    /// time, in language `lang`, with the facets of [`facets_of`].
    pub fn post(did: &str, time_us: u64, text: &str, lang: &str) -> Vec<u8> {
        let record = json!({
            "$type": "app.bsky.feed.post",
            "createdAt": iso(time_us),
            "langs": [lang],
            "text": text,
            "facets": facets_of(text),
        });
        commit(did, time_us, "create", &tid(time_us, 7), Some(record))
    }

    /// The record key [`post`] gives a post made at `time_us`.
    pub fn post_rkey(time_us: u64) -> String {
        tid(time_us, 7)
    }

    /// A commit deleting the post `rkey` of `did`, at `time_us`.
    pub fn delete(did: &str, time_us: u64, rkey: &str) -> Vec<u8> {
        commit(did, time_us, "delete", rkey, None)
    }

    /// An identity event: `did` is now `handle`.
    pub fn identity(did: &str, time_us: u64, handle: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "did": did,
            "time_us": time_us,
            "kind": "identity",
            "identity": {"did": did, "handle": handle, "seq": time_us / 1000, "time": iso(time_us)},
        }))
        .unwrap()
    }

    /// A commit of `operation` on the post `rkey`.
    fn commit(
        did: &str,
        time_us: u64,
        operation: &str,
        rkey: &str,
        record: Option<Value>,
    ) -> Vec<u8> {
        let mut commit = json!({
            "rev": tid(time_us, 1),
            "operation": operation,
            "collection": "app.bsky.feed.post",
            "rkey": rkey,
        });
        if let Some(record) = record {
            commit["record"] = record;
            commit["cid"] = json!(format!("bafyreig{}", tid(time_us, 3)));
        }
        serde_json::to_vec(&json!({
            "did": did,
            "time_us": time_us,
            "kind": "commit",
            "commit": commit,
        }))
        .unwrap()
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn tids_sort_by_time_and_times_print_as_iso() {
            assert_eq!(tid(0, 0), "2222222222222");
            assert!(tid(1_733_000_000_000_000, 7) < tid(1_733_000_000_000_001, 0));
            assert_eq!(iso(1_725_911_162_329_308), "2024-09-09T19:46:02.329Z");
        }

        #[test]
        fn facets_cover_the_bytes_of_their_words() {
            let text = "é #rustlang https://github.com/x @bob.test";
            let facets = facets_of(text);
            let spans: Vec<&str> = facets
                .iter()
                .map(|f| {
                    let i = &f["index"];
                    &text[i["byteStart"].as_u64().unwrap() as usize
                        ..i["byteEnd"].as_u64().unwrap() as usize]
                })
                .collect();
            assert_eq!(spans, ["#rustlang", "https://github.com/x", "@bob.test"]);
        }
    }
}
