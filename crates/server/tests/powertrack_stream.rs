//! The PowerTrack stream over real HTTP (docs/compatibility.md §1 and "Decisions"): statuses and error
//! bodies, gzip flushed per chunk, `matching_rules`, heartbeats, live rule changes, slow
//! consumers, the over-cap policy, redundant connections, shutdown and restarts.

use std::io::Read as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_server::Settings;
use sluice_server::registry::LiveStream;
use sluice_store::{NewRule, Product, StreamRef};
use sluice_testkit::{
    Line, StreamClient, WAIT, assert_stream_sent, error_message, error_response, id_of,
};
use sluice_testkit::{TestServer, post};
use sluice_wire::error::{
    COMPRESSION_REQUIRED_MESSAGE, OPERATIONAL_DISCONNECT_MESSAGE, SLOW_CONSUMER_MESSAGE,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const PATH: &str = "/stream/powertrack/accounts/acme/publishers/twitter/prod.json";

fn url(server: &TestServer) -> String {
    format!("{}{PATH}", server.base)
}

fn live(server: &TestServer) -> Arc<LiveStream> {
    server
        .state
        .registry
        .get(&StreamRef {
            account: "acme".into(),
            product: Product::PowerTrack,
            label: "prod".into(),
        })
        .expect("the stream was provisioned")
}

/// Adds a rule the way the rules API does: store first, then the live matcher.
fn add_rule(server: &TestServer, value: &str, tag: Option<&str>) -> u64 {
    let live = live(server);
    let id = server.state.ids.next_id();
    let rule = NewRule {
        id,
        value: value.into(),
        tag: tag.map(Into::into),
    };
    server
        .state
        .store
        .add_rules(live.id, &[rule], u64::MAX, 0)
        .unwrap();
    let tree = sluice_rules::parse(value).unwrap();
    live.rules.apply(&[(id, tree, tag.map(Into::into))], &[]);
    id
}

/// Waits until `done` holds (server-side effects of a client seeing the end of a body may
/// lag a moment behind it).
async fn eventually(what: &str, done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < WAIT, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn remove_rule(server: &TestServer, id: u64) {
    let live = live(server);
    server
        .state
        .store
        .delete_rules_by_ids(live.id, &[id])
        .unwrap();
    live.rules.apply(&[], &[id]);
}

fn request(server: &TestServer) -> reqwest::RequestBuilder {
    server
        .http
        .get(url(server))
        .basic_auth("alice", Some("secret"))
}

/// Connects with gzip and checks the 200 response's headers.
/// A gzip stream connection in strict mode: every chunk must decode to whole lines.
async fn connect(server: &TestServer) -> StreamClient {
    StreamClient::strict(stream_response(server).await)
}

/// A gzip stream connection's response, its headers checked.
async fn stream_response(server: &TestServer) -> reqwest::Response {
    let response = request(server)
        .header("accept-encoding", "gzip, deflate")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers();
    assert_eq!(headers["content-type"], "application/json; charset=utf-8");
    assert_eq!(headers["content-encoding"], "gzip");
    assert_eq!(headers["transfer-encoding"], "chunked");
    assert_eq!(headers["x-rate-limit-limit"], "60");
    response
}

async fn started(settings: Settings) -> TestServer {
    let server = TestServer::start(settings).await;
    server.provision("powertrack").await;
    server
}

#[tokio::test]
async fn refused_connects_get_x_statuses_and_gzipped_error_bodies() {
    let server = started(Settings::default()).await;
    server
        .admin(Method::PUT, "/admin/accounts/other", json!({}))
        .await;
    server
        .admin(
            Method::PUT,
            "/admin/accounts/other/users/bob",
            json!({"password": "pw"}),
        )
        .await;
    server
        .admin(
            Method::PUT,
            "/admin/accounts/acme/streams/sample",
            json!({"product": "decahose"}),
        )
        .await;
    let get = |path: &str| {
        server
            .http
            .get(format!("{}{path}", server.base))
            .header("accept-encoding", "gzip")
    };

    // 401: no credentials, a wrong password, a user of another account. Gzip accepted, so
    // the error body is gzipped.
    for request in [
        get(PATH),
        get(PATH).basic_auth("alice", Some("wrong")),
        get(PATH).basic_auth("bob", Some("pw")),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.headers()["content-encoding"], "gzip");
        let (status, body) = error_response(response).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(
            error_message(&body),
            "Unauthorized: HTTP authentication failed due to invalid credentials."
        );
    }

    // 404: unknown account, unknown label, a label without `.json`, a Decahose label.
    for path in [
        "/stream/powertrack/accounts/nobody/publishers/twitter/prod.json",
        "/stream/powertrack/accounts/acme/publishers/twitter/dev.json",
        "/stream/powertrack/accounts/acme/publishers/twitter/prod",
        "/stream/powertrack/accounts/acme/publishers/twitter/sample.json",
    ] {
        let response = get(path)
            .basic_auth("alice", Some("secret"))
            .send()
            .await
            .unwrap();
        let (status, body) = error_response(response).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        assert!(error_message(&body).contains("not found"), "{body}");
    }

    // 406 without gzip: X's exact text, in an identity-encoded body.
    for accept in [None, Some("deflate, br"), Some("gzip;q=0")] {
        let mut request = request(&server);
        if let Some(accept) = accept {
            request = request.header("accept-encoding", accept);
        }
        let response = request.send().await.unwrap();
        assert!(response.headers().get("content-encoding").is_none());
        let (status, body) = error_response(response).await;
        assert_eq!(status, StatusCode::NOT_ACCEPTABLE);
        assert_eq!(error_message(&body), COMPRESSION_REQUIRED_MESSAGE);
    }
    server.stop().await;
}

#[tokio::test]
async fn the_sixty_first_connect_in_a_minute_gets_429_with_rate_headers() {
    let server = started(Settings::default()).await;
    // Every authenticated connect to the stream counts, refused ones too, so requests
    // without gzip (406, no stream held open) use the budget up. A window boundary may
    // fall inside the loop, hence up to two windows' worth.
    let mut refused = None;
    for _ in 0..121 {
        let response = request(&server).send().await.unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            refused = Some(response);
            break;
        }
        assert_eq!(response.status(), StatusCode::NOT_ACCEPTABLE);
    }
    let refused = refused.expect("the connect limit applies");
    let headers = refused.headers().clone();
    assert_eq!(headers["x-rate-limit-limit"], "60");
    assert_eq!(headers["x-rate-limit-remaining"], "0");
    let reset: u64 = headers["x-rate-limit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(reset > now && reset <= now + 61, "reset {reset}, now {now}");
    let (status, body) = error_response(refused).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(error_message(&body).contains("Rate limit"), "{body}");

    // With gzip accepted, the 429 body is gzipped too.
    let response = request(&server)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers()["content-encoding"], "gzip");
    assert_eq!(response.headers()["x-rate-limit-remaining"], "0");
    server.stop().await;
}

#[tokio::test]
async fn matching_posts_arrive_once_with_their_rules_in_self_contained_gzip_chunks() {
    let server = started(Settings::default()).await;
    let hello = add_rule(&server, "hello", Some("greetings"));
    let world = add_rule(&server, "world", None);
    add_rule(&server, "unrelated", Some("never"));
    let mut stream = connect(&server).await;

    server
        .ingest(
            &[
                post(1, "hello world"),
                post(2, "nothing to see"),
                post(3, "a world apart"),
            ]
            .join("\n"),
        )
        .await;

    let first = stream.next_message().await;
    assert_eq!(id_of(&first), 1);
    assert_eq!(first["text"], "hello world");
    let mut expected = vec![
        json!({"tag": "greetings", "id": hello, "id_str": hello.to_string()}),
        json!({"tag": null, "id": world, "id_str": world.to_string()}),
    ];
    expected.sort_by_key(|r| r["id"].as_u64());
    assert_eq!(first["matching_rules"], Value::Array(expected));

    // Post 2 matches nothing and is not sent; post 3 matches one rule.
    let third = stream.next_message().await;
    assert_eq!(id_of(&third), 3);
    assert_eq!(
        third["matching_rules"],
        json!([{"tag": null, "id": world, "id_str": world.to_string()}])
    );
    server.stop().await;
}

/// A batch large enough to be matched on the matching threads reaches the connection in
/// ingest order with exactly its matching posts and their rules; the same on one thread.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_batch_matched_on_two_threads_arrives_in_ingest_order() {
    for match_threads in [2, 1] {
        let server = started(Settings {
            match_threads,
            ..Settings::default()
        })
        .await;
        let even = add_rule(&server, "even", Some("even"));
        let seven = add_rule(&server, "seven", None);
        // Not strict: a batch this large is sent in 64 KiB segments, which may reach the
        // client in several reads each.
        let mut stream = StreamClient::new(stream_response(&server).await);

        let texts = |i: u64| {
            let mut words = vec![if i.is_multiple_of(2) { "even" } else { "odd" }];
            if i.is_multiple_of(7) {
                words.push("seven");
            }
            words.join(" ")
        };
        let batch: Vec<String> = (1..=2_000_u64).map(|i| post(i, &texts(i))).collect();
        server.ingest(&batch.join("\n")).await;

        let want: Vec<u64> = (1..=2_000_u64)
            .filter(|&i| i.is_multiple_of(2) || i.is_multiple_of(7))
            .collect();
        let mut got = Vec::with_capacity(want.len());
        while got.len() < want.len() {
            let message = stream.next_message().await;
            let id = id_of(&message);
            let mut rules: Vec<u64> = message["matching_rules"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_u64().unwrap())
                .collect();
            rules.sort_unstable();
            let mut expected = Vec::new();
            if id.is_multiple_of(2) {
                expected.push(even);
            }
            if id.is_multiple_of(7) {
                expected.push(seven);
            }
            expected.sort_unstable();
            assert_eq!(rules, expected, "post {id} ({match_threads} threads)");
            got.push(id);
        }
        assert_eq!(got, want, "{match_threads} threads");
        server.stop().await;
    }
}

#[tokio::test]
async fn rules_changed_while_connected_apply_from_the_next_post() {
    let server = started(Settings::default()).await;
    add_rule(&server, "sentinel", None);
    let mut stream = connect(&server).await;

    // "cats" matches nothing yet; the sentinel behind it proves it was processed.
    server
        .ingest(&[post(1, "cats"), post(2, "sentinel")].join("\n"))
        .await;
    assert_eq!(id_of(&stream.next_message().await), 2);

    let cats = add_rule(&server, "cats", Some("felines"));
    server.ingest(&post(3, "cats again")).await;
    let third = stream.next_message().await;
    assert_eq!(id_of(&third), 3);
    assert_eq!(third["matching_rules"][0]["tag"], "felines");

    remove_rule(&server, cats);
    add_rule(&server, "dogs", None);
    server
        .ingest(&[post(4, "cats once more"), post(5, "dogs")].join("\n"))
        .await;
    assert_eq!(id_of(&stream.next_message().await), 5);
    server.stop().await;
}

#[tokio::test]
async fn heartbeats_fill_silence() {
    let server = started(Settings {
        heartbeat: Duration::from_millis(200),
        ..Settings::default()
    })
    .await;
    add_rule(&server, "ping", None);
    let mut stream = connect(&server).await;

    let started = Instant::now();
    assert_eq!(stream.next_line().await, Some(Line::Heartbeat));
    assert_eq!(stream.next_line().await, Some(Line::Heartbeat));
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(300),
        "heartbeats came too fast: {elapsed:?}"
    );

    server.ingest(&post(7, "ping")).await;
    let mut lines = Vec::new();
    loop {
        let line = stream.next_line().await.unwrap();
        let done = matches!(line, Line::Message(_));
        lines.push(line);
        if done {
            break;
        }
    }
    let Some(Line::Message(message)) = lines.last() else {
        unreachable!()
    };
    assert_eq!(id_of(message), 7);
    // Silence again after the post: heartbeats resume.
    assert_eq!(stream.next_line().await, Some(Line::Heartbeat));
    server.stop().await;
}

#[tokio::test]
async fn redundant_connections_each_receive_everything_and_dead_ones_free_their_slot() {
    let server = started(Settings::default()).await;
    add_rule(&server, "news", None);
    let mut first = connect(&server).await;
    let mut second = connect(&server).await;

    let ids: Vec<u64> = (100..140).collect();
    let body: Vec<String> = ids
        .iter()
        .map(|&id| post(id, &format!("news item {id}")))
        .collect();
    server.ingest(&body[..20].join("\n")).await;
    server.ingest(&body[20..].join("\n")).await;

    for stream in [&mut first, &mut second] {
        let mut got = Vec::new();
        while got.len() < ids.len() {
            got.push(id_of(&stream.next_message().await));
        }
        assert_eq!(got, ids);
    }
    assert_eq!(live(&server).connections.len(), 2);

    // A client that goes away frees its slot; the other keeps streaming.
    drop(first);
    eventually("the dropped connection is unregistered", || {
        live(&server).connections.len() == 1
    })
    .await;
    server.ingest(&post(200, "news after")).await;
    assert_eq!(id_of(&second.next_message().await), 200);
    server.stop().await;
}

#[tokio::test]
async fn over_the_cap_the_newest_connection_is_closed_after_the_grace_period() {
    let server = started(Settings {
        over_cap_grace: Duration::from_millis(1_500),
        ..Settings::default()
    })
    .await;
    let (status, _) = server
        .admin(
            Method::PUT,
            "/admin/accounts/acme/streams/prod",
            json!({"product": "powertrack", "max_connections": 1}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    add_rule(&server, "live", None);
    let mut first = connect(&server).await;
    let opened = Instant::now();
    // Accepted over the cap, and served during the grace period.
    let mut second = connect(&server).await;
    server.ingest(&post(1, "live one")).await;
    assert_eq!(id_of(&first.next_message().await), 1);
    assert_eq!(id_of(&second.next_message().await), 1);

    let closing = second.rest().await;
    assert!(opened.elapsed() >= Duration::from_millis(1_500));
    assert_eq!(closing.len(), 1, "{closing:?}");
    assert_eq!(
        error_message(&closing[0]),
        "Forced Disconnect: Too many connections. (Allowed Connections = 1)"
    );
    assert_stream_sent(&closing[0]["error"]["sent"]);

    // The first connection keeps streaming, and the slot of the second is free.
    server.ingest(&post(2, "live two")).await;
    assert_eq!(id_of(&first.next_message().await), 2);
    eventually("the closed connection is unregistered", || {
        live(&server).connections.len() == 1
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn stopping_the_server_sends_the_operational_message_and_ends_the_stream() {
    let server = started(Settings::default()).await;
    add_rule(&server, "bye", None);
    let mut stream = connect(&server).await;
    server.ingest(&post(1, "bye")).await;
    assert_eq!(id_of(&stream.next_message().await), 1);

    let stopping = tokio::spawn(server.stop());
    let rest = stream.rest().await;
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert_eq!(error_message(&rest[0]), OPERATIONAL_DISCONNECT_MESSAGE);
    tokio::time::timeout(WAIT, stopping).await.unwrap().unwrap();
}

#[tokio::test]
async fn rules_survive_a_restart_and_match_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_in(dir.path(), Settings::default()).await;
    server.provision("powertrack").await;
    let rule = add_rule(&server, "durable", Some("kept"));
    server.stop().await;

    let server = TestServer::start_in(dir.path(), Settings::default()).await;
    let mut stream = connect(&server).await;
    server.ingest(&post(9, "a durable post")).await;
    let message = stream.next_message().await;
    assert_eq!(id_of(&message), 9);
    assert_eq!(
        message["matching_rules"],
        json!([{"tag": "kept", "id": rule, "id_str": rule.to_string()}])
    );
    server.stop().await;
}

/// Text of about 12 KB that gzip can hardly shrink (random characters of a 64-symbol
/// alphabet), so that a stalled client's socket buffers fill with few posts.
fn noisy_text(seed: u64) -> String {
    const ALPHABET: &[u8; 64] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _";
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut text = String::from("flood ");
    while text.len() < 12_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        for i in 0..10 {
            text.push(char::from(ALPHABET[((x >> (i * 6)) & 63) as usize]));
        }
    }
    text
}

/// Decodes a raw `Transfer-Encoding: chunked` body; panics unless it ends with the final
/// zero-length chunk.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size_text = std::str::from_utf8(&raw[..line_end]).unwrap();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16).unwrap();
        raw = &raw[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[..size]);
        assert_eq!(&raw[size..size + 2], b"\r\n");
        raw = &raw[size + 2..];
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_cut_while_the_others_get_everything() {
    let server = started(Settings {
        outbox_bytes: 256 << 10,
        ..Settings::default()
    })
    .await;
    add_rule(&server, "flood", None);

    // The reading client: collects post ids until it sees the last one.
    let response = request(&server)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    const LAST: u64 = 999_999;
    let (ids_tx, mut ids_rx) = tokio::sync::mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
        let mut stream = StreamClient::new(response);
        loop {
            let id = id_of(&stream.next_message().await);
            ids_tx.send(id).unwrap();
            if id == LAST {
                return;
            }
        }
    });
    let mut got = Vec::new();

    // The stalled client: a raw socket with a small receive buffer that reads the response
    // head and then nothing.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4 << 10).unwrap();
    let mut stalled = socket.connect(server.addr).await.unwrap();
    stalled
        .write_all(
            format!(
                "GET {PATH} HTTP/1.1\r\nHost: gnip-stream.x.com\r\n\
                 Authorization: Basic YWxpY2U6c2VjcmV0\r\n\
                 Accept-Encoding: gzip\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut received = Vec::new();
    let head_end = loop {
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(WAIT, stalled.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "the server closed the stalled connection early");
        received.extend_from_slice(&buf[..n]);
        if let Some(at) = received.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&received[..head_end]).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let stalled_connection = live(&server)
        .connections
        .snapshot()
        .into_iter()
        .max_by_key(|c| c.id)
        .unwrap();

    // Posts keep coming, in batches smaller than an outbox, until the stalled client's
    // outbox overflows. Ingest stays fast throughout. The next batch goes once the reading
    // client has the last one (so it never falls behind by more than a batch).
    let mut sent = Vec::new();
    let mut next_id = 1u64;
    let mut slowest_ingest = Duration::ZERO;
    for _ in 0..100 {
        if stalled_connection.outbox.is_closed() {
            break;
        }
        let batch: Vec<String> = (0..16)
            .map(|_| {
                sent.push(next_id);
                next_id += 1;
                post(next_id - 1, &noisy_text(next_id))
            })
            .collect();
        let started = Instant::now();
        server.ingest(&batch.join("\n")).await;
        slowest_ingest = slowest_ingest.max(started.elapsed());
        while got.len() < sent.len() {
            let id = tokio::time::timeout(WAIT, ids_rx.recv()).await.unwrap();
            got.push(id.expect("the reading client was cut"));
        }
    }
    assert!(
        stalled_connection.outbox.is_closed(),
        "the stalled client was never cut"
    );
    assert!(
        slowest_ingest < Duration::from_secs(2),
        "ingest slowed to {slowest_ingest:?}"
    );

    // The reading client got everything, in order, and promptly.
    let started = Instant::now();
    server.ingest(&post(LAST, "flood over")).await;
    sent.push(LAST);
    tokio::time::timeout(WAIT, reader).await.unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    while let Ok(id) = ids_rx.try_recv() {
        got.push(id);
    }
    assert_eq!(got, sent);

    // The stalled client, reading again, finds an in-order prefix of the posts, then the
    // slow-consumer message, then the end of the body.
    let mut rest = Vec::new();
    tokio::time::timeout(WAIT, stalled.read_to_end(&mut rest))
        .await
        .unwrap()
        .unwrap();
    received.extend_from_slice(&rest);
    let gzipped = dechunk(&received[head_end..]);
    let mut text = String::new();
    flate2::read::GzDecoder::new(&gzipped[..])
        .read_to_string(&mut text)
        .unwrap();
    let lines: Vec<&str> = text.strip_suffix("\r\n").unwrap().split("\r\n").collect();
    let (last, posts) = lines.split_last().unwrap();
    let last: Value = serde_json::from_str(last).unwrap();
    assert_eq!(error_message(&last), SLOW_CONSUMER_MESSAGE);
    let ids: Vec<u64> = posts
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| id_of(&serde_json::from_str(l).unwrap()))
        .collect();
    assert!(ids.len() < sent.len());
    assert_eq!(ids, sent[..ids.len()]);
    eventually("the cut connection frees its slot", || {
        let open = live(&server).connections.snapshot();
        !open.iter().any(|c| c.id == stalled_connection.id)
    })
    .await;
    server.stop().await;
}
