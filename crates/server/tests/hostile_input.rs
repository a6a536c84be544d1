//! Hostile and malformed requests over raw TCP, for every route family: every refusal is
//! JSON in the dialect of its path (docs/errors.md), except the few hyper answers itself
//! (tested for what they are); bodies are read only after authentication, within a limit
//! and a deadline.

use std::io::Read as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sluice_server::Settings;
use sluice_testkit::{ADMIN, TestServer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Longest wait for any answer: every answer in this file is due at once (or after the
/// 1 s body deadline of the slow-body tests).
const WAIT: Duration = Duration::from_secs(10);

const RULES: &str = "/rules/powertrack/accounts/acme/publishers/twitter/prod.json";
const VALIDATION: &str = "/rules/powertrack/accounts/acme/publishers/twitter/prod/validation.json";
const STREAM: &str = "/stream/powertrack/accounts/acme/publishers/twitter/prod.json";

/// The error shape an answer must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `{"error":{"message","sent"}}` with the rules API's `sent` (`…Z`).
    GnipRules,
    /// `{"error":{"message","sent"}}` with the streams' `sent` (`…+00:00`).
    GnipStream,
    /// v2 problem JSON.
    Problem,
    /// The admin shape: the Gnip body, never gzip-encoded.
    Admin,
    /// No body at all: hyper's own answers.
    Empty,
    /// A successful JSON answer.
    Success,
}

/// How the body of a raw request is sent.
#[derive(Debug, Clone)]
enum Body {
    None,
    /// With a matching `Content-Length`.
    Fixed(Vec<u8>),
    /// `Content-Length: N` declared, only these bytes sent, the socket left open.
    Declared(usize, &'static [u8]),
    /// `Transfer-Encoding: chunked` with this raw chunked text.
    Chunked(Vec<u8>),
}

/// What came back.
#[derive(Debug)]
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body, gunzipped when it is gzip-encoded.
    fn decoded(&self) -> Vec<u8> {
        if self.header("content-encoding") == Some("gzip") {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(&self.body[..])
                .read_to_end(&mut out)
                .unwrap();
            out
        } else {
            self.body.clone()
        }
    }
}

fn request_bytes(method: &str, target: &str, headers: &[String], body: &Body) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\nHost: api.x.com\r\n");
    for h in headers {
        out.push_str(h);
        out.push_str("\r\n");
    }
    let payload: &[u8] = match body {
        Body::None => &[],
        Body::Fixed(b) => {
            out.push_str(&format!("Content-Length: {}\r\n", b.len()));
            b
        }
        Body::Declared(n, sent) => {
            out.push_str(&format!("Content-Length: {n}\r\n"));
            sent
        }
        Body::Chunked(b) => {
            out.push_str("Transfer-Encoding: chunked\r\n");
            b
        }
    };
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(payload);
    bytes
}

/// Writes `request` (write errors ignored: the server may answer and close before
/// reading it all) and reads one answer, leaving the socket open.
async fn exchange(tcp: &mut TcpStream, request: &[u8]) -> Raw {
    let _ = tcp.write_all(request).await;
    tokio::time::timeout(WAIT, read_answer(tcp))
        .await
        .expect("no answer in time")
}

async fn read_answer(tcp: &mut TcpStream) -> Raw {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 8192];
        let n = tcp.read(&mut chunk).await.expect("read failed");
        assert!(
            n > 0,
            "closed before an answer: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let mut chunk = vec![0u8; length - body.len()];
        let n = tcp.read(&mut chunk).await.unwrap();
        assert!(n > 0, "closed in the middle of the body");
        body.extend_from_slice(&chunk[..n]);
    }
    Raw {
        status,
        headers,
        body,
    }
}

async fn send(addr: SocketAddr, request: &[u8]) -> Raw {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    exchange(&mut tcp, request).await
}

/// Asserts that `raw` has `status` and `shape`.
fn check(name: &str, raw: &Raw, status: u16, shape: Shape) {
    assert_eq!(raw.status, status, "{name}: {raw:?}");
    let content_type = raw.header("content-type").unwrap_or("");
    let body = raw.decoded();
    if shape == Shape::Empty {
        assert!(body.is_empty(), "{name}: {raw:?}");
        return;
    }
    let value: Value =
        serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{name}: not JSON ({e}): {raw:?}"));
    match shape {
        Shape::GnipRules | Shape::GnipStream | Shape::Admin => {
            assert!(
                content_type.starts_with("application/json"),
                "{name}: {raw:?}"
            );
            let object = value.as_object().unwrap();
            assert_eq!(object.len(), 1, "{name}: {value}");
            let error = value["error"]
                .as_object()
                .unwrap_or_else(|| panic!("{name}: {value}"));
            assert_eq!(error.len(), 2, "{name}: {value}");
            assert!(!error["message"].as_str().unwrap().is_empty(), "{name}");
            let sent = error["sent"].as_str().unwrap();
            if shape == Shape::GnipStream {
                assert!(sent.ends_with("+00:00"), "{name}: {sent}");
            } else {
                assert!(sent.ends_with('Z'), "{name}: {sent}");
            }
            if shape == Shape::Admin {
                assert_eq!(raw.header("content-encoding"), None, "{name}");
            }
        }
        Shape::Problem => {
            assert!(
                content_type.starts_with("application/problem+json"),
                "{name}: {raw:?}"
            );
            for key in ["title", "type", "detail"] {
                assert!(value[key].is_string(), "{name}: {value}");
            }
            assert_eq!(value["status"], json!(status), "{name}: {value}");
        }
        Shape::Success => {}
        Shape::Empty => unreachable!(),
    }
}

/// A server with account `acme`, user `alice`/`secret`, PowerTrack stream `prod`, and a
/// Powerstream token; the headers that authenticate each family.
struct Setup {
    server: TestServer,
    admin: String,
    basic: String,
    bearer: String,
}

async fn setup(settings: Settings) -> Setup {
    let server = TestServer::start(settings).await;
    server.provision("powertrack").await;
    let (status, token) = server
        .admin(Method::POST, "/admin/accounts/acme/tokens", json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let basic = base64::engine::general_purpose::STANDARD.encode("alice:secret");
    Setup {
        server,
        admin: format!("Authorization: Bearer {ADMIN}"),
        basic: format!("Authorization: Basic {basic}"),
        bearer: format!("Authorization: Bearer {}", token["token"].as_str().unwrap()),
    }
}

/// A row of the table: name, method, request target, headers, body → status, shape.
type Case = (
    &'static str,
    &'static str,
    String,
    Vec<String>,
    Body,
    u16,
    Shape,
);

/// A chunked body whose chunk-size line is not hexadecimal.
fn bad_chunk() -> Body {
    Body::Chunked(b"5\r\n{\"a\":\r\nzz\r\n1}\r\n0\r\n\r\n".to_vec())
}

/// A well-formed chunked body of `n` bytes, sent in 8 KiB chunks.
fn chunked(n: usize) -> Body {
    let mut out = Vec::new();
    let mut left = n;
    while left > 0 {
        let size = left.min(8192);
        out.extend_from_slice(format!("{size:x}\r\n").as_bytes());
        out.extend(std::iter::repeat_n(b' ', size));
        out.extend_from_slice(b"\r\n");
        left -= size;
    }
    out.extend_from_slice(b"0\r\n\r\n");
    Body::Chunked(out)
}

#[tokio::test]
async fn every_refusal_is_in_the_dialect_of_its_path() {
    let s = setup(Settings::default()).await;
    let gzip = "Accept-Encoding: gzip".to_owned();
    let big_header = format!("X-Big: {}", "a".repeat(40 << 10));
    let long_query = "q=".to_owned() + &"a".repeat(10 << 10);
    let none: Vec<String> = vec![];
    let admin = vec![s.admin.clone()];
    let basic = vec![s.basic.clone()];
    let bearer = vec![s.bearer.clone()];
    let bad_json = || Body::Fixed(b"{bad".to_vec());
    use Shape::*;
    #[rustfmt::skip]
    let table: Vec<Case> = vec![
        // Admin.
        ("admin no auth", "GET", "/admin/accounts/acme".into(), none.clone(), Body::None, 401, Admin),
        ("admin method", "PATCH", "/admin/accounts/acme".into(), admin.clone(), Body::None, 405, Admin),
        ("admin unknown", "GET", "/admin/nothing/here".into(), admin.clone(), Body::None, 404, Admin),
        ("admin bad utf-8", "GET", "/admin/accounts/%ff".into(), admin.clone(), Body::None, 400, Admin),
        ("admin dup query", "DELETE", "/admin/accounts/acme/streams/prod?product=a&product=b".into(), admin.clone(), Body::None, 400, Admin),
        ("admin user bad json", "PUT", "/admin/accounts/acme/users/bob".into(), admin.clone(), bad_json(), 400, Admin),
        ("admin account bad json", "PUT", "/admin/accounts/acme".into(), admin.clone(), bad_json(), 400, Admin),
        ("admin account unknown field", "PUT", "/admin/accounts/acme".into(), admin.clone(), Body::Fixed(b"{\"x\":1}".to_vec()), 400, Admin),
        ("admin token bad json", "POST", "/admin/accounts/acme/tokens".into(), admin.clone(), bad_json(), 400, Admin),
        ("admin account empty body", "PUT", "/admin/accounts/acme".into(), admin.clone(), Body::None, 200, Success),
        ("admin account {}", "PUT", "/admin/accounts/acme".into(), admin.clone(), Body::Fixed(b"{}".to_vec()), 200, Success),
        ("admin body over 64 KiB", "PUT", "/admin/accounts/acme/users/bob".into(), admin.clone(), chunked(70 << 10), 413, Admin),
        ("admin declared over 64 KiB", "PUT", "/admin/accounts/acme/streams/x".into(), admin.clone(), Body::Declared(65537, b""), 413, Admin),
        ("admin bad chunk", "PUT", "/admin/accounts/acme/users/bob".into(), admin.clone(), bad_chunk(), 400, Admin),
        ("admin big header", "GET", "/admin/accounts/acme".into(), vec![s.admin.clone(), big_header.clone()], Body::None, 431, Admin),
        // Ingest.
        ("ingest no auth, slow body", "POST", "/ingest".into(), none.clone(), Body::Declared(1000, b"abc"), 401, Admin),
        ("ingest no auth, 15 MiB declared", "POST", "/ingest".into(), none.clone(), Body::Declared(15 << 20, b""), 401, Admin),
        ("ingest no auth, expect 100-continue", "POST", "/ingest".into(), vec!["Expect: 100-continue".to_owned()], Body::Declared(1000, b""), 401, Admin),
        ("ingest dup query", "POST", "/ingest?datacenter=a&datacenter=b".into(), admin.clone(), Body::None, 400, Admin),
        ("ingest method", "GET", "/ingest".into(), admin.clone(), Body::None, 405, Admin),
        ("ingest declared over 16 MiB", "POST", "/ingest".into(), admin.clone(), Body::Declared((16 << 20) + 1, b""), 413, Admin),
        ("ingest bad chunk", "POST", "/ingest".into(), admin.clone(), bad_chunk(), 400, Admin),
        // PowerTrack rules.
        ("rules no auth", "GET", RULES.into(), none.clone(), Body::None, 401, GnipRules),
        ("rules no auth, 15 MiB declared", "POST", RULES.into(), none.clone(), Body::Declared(15 << 20, b""), 401, GnipRules),
        ("rules method, gzip", "PUT", RULES.into(), vec![gzip.clone()], Body::None, 405, GnipRules),
        ("rules bad utf-8", "GET", "/rules/powertrack/accounts/%ff/publishers/twitter/prod.json".into(), basic.clone(), Body::None, 400, GnipRules),
        ("rules unknown, gzip", "GET", "/rules/powertrack/nothing".into(), vec![gzip.clone()], Body::None, 404, GnipRules),
        ("rules declared over 5 MB", "POST", RULES.into(), basic.clone(), Body::Declared(5_000_001, b""), 413, GnipRules),
        ("rules bad chunk", "POST", RULES.into(), basic.clone(), bad_chunk(), 400, GnipRules),
        ("rules long uri", "GET", format!("{RULES}?{long_query}"), basic.clone(), Body::None, 414, GnipRules),
        ("validation no auth", "POST", VALIDATION.into(), none.clone(), Body::Declared(100, b"{"), 401, GnipRules),
        ("validation bad chunk", "POST", VALIDATION.into(), basic.clone(), bad_chunk(), 400, GnipRules),
        ("validation method", "GET", VALIDATION.into(), basic.clone(), Body::None, 405, GnipRules),
        // PowerTrack stream.
        ("stream method, gzip", "POST", STREAM.into(), vec![gzip.clone()], Body::None, 405, GnipStream),
        ("stream bad utf-8", "GET", "/stream/powertrack/accounts/%ff/publishers/twitter/prod.json".into(), vec![gzip.clone()], Body::None, 400, GnipStream),
        ("stream unknown", "GET", "/stream/powertrack/nothing".into(), none.clone(), Body::None, 404, GnipStream),
        ("stream big header", "GET", STREAM.into(), vec![gzip.clone(), big_header.clone()], Body::None, 431, GnipStream),
        // Decahose, Firehose, replay.
        ("decahose method", "DELETE", "/stream/sample10/accounts/acme/publishers/twitter/prod.json".into(), none.clone(), Body::None, 405, GnipStream),
        ("firehose method", "POST", "/stream/firehose/accounts/acme/publishers/twitter/prod.json".into(), none.clone(), Body::None, 405, GnipStream),
        ("firehose bad utf-8", "GET", "/stream/firehose/accounts/acme/publishers/twitter/%ff.json".into(), none.clone(), Body::None, 400, GnipStream),
        ("replay no auth", "GET", "/replay/powertrack/accounts/acme/publishers/twitter/prod.json".into(), none.clone(), Body::None, 401, GnipStream),
        ("replay unknown", "GET", "/replay/sample10/accounts/acme/publishers/twitter/prod.json".into(), none.clone(), Body::None, 404, GnipStream),
        // Powerstream.
        ("powerstream method", "POST", "/2/powerstream".into(), bearer.clone(), Body::None, 405, Problem),
        ("powerstream rules method", "PUT", "/2/powerstream/rules".into(), bearer.clone(), Body::None, 405, Problem),
        ("v2 unknown", "GET", "/2/nothing".into(), none.clone(), Body::None, 404, Problem),
        ("powerstream no auth, 15 MiB declared", "POST", "/2/powerstream/rules".into(), none.clone(), Body::Declared(15 << 20, b""), 401, Problem),
        ("powerstream declared over 5 MB", "POST", "/2/powerstream/rules".into(), bearer.clone(), Body::Declared(5_000_001, b""), 413, Problem),
        ("powerstream bad chunk", "POST", "/2/powerstream/rules".into(), bearer.clone(), bad_chunk(), 400, Problem),
        ("powerstream long uri", "GET", format!("/2/powerstream?{long_query}"), bearer.clone(), Body::None, 414, Problem),
        // Health, metrics, unknown paths.
        ("healthz method", "POST", "/healthz".into(), none.clone(), Body::None, 405, Admin),
        ("metrics method", "DELETE", "/metrics".into(), none.clone(), Body::None, 405, Admin),
        // `GET /` redirects to the console; other methods are refused.
        ("root method", "POST", "/".into(), none.clone(), Body::None, 405, Admin),
        ("unknown", "GET", "/nope".into(), none.clone(), Body::None, 404, Admin),
        ("unknown bad utf-8", "GET", "/%ff".into(), none.clone(), Body::None, 404, Admin),
        // Heads hyper refuses itself, before any route: empty bodies.
        ("head over hyper's limit", "GET", "/admin/accounts/acme".into(), vec![format!("X-Big: {}", "a".repeat(100 << 10))], Body::None, 431, Empty),
        ("uri over hyper's limit", "GET", format!("/2/powerstream?{}", "a".repeat(70 << 10)), none.clone(), Body::None, 431, Empty),
        ("header without colon", "GET", "/healthz".into(), vec!["NoColonHere".to_owned()], Body::None, 400, Empty),
        ("101 header fields", "GET", "/healthz".into(), (0..101).map(|i| format!("X-H{i}: v")).collect(), Body::None, 431, Empty),
    ];
    for (name, method, target, headers, body, status, shape) in table {
        let raw = send(
            s.server.addr,
            &request_bytes(method, &target, &headers, &body),
        )
        .await;
        check(name, &raw, status, shape);
        if name.contains("bad chunk") {
            let text = String::from_utf8_lossy(&raw.decoded()).into_owned();
            assert!(text.contains("chunk size"), "{name}: {text}");
        }
        if status == 405 {
            assert!(raw.header("allow").is_some(), "{name}: {raw:?}");
        }
    }
    // A request line that is not HTTP: hyper's empty 400, then the connection closes.
    let mut tcp = TcpStream::connect(s.server.addr).await.unwrap();
    let raw = exchange(&mut tcp, b"THIS IS NOT HTTP\r\n\r\n").await;
    check("garbage request line", &raw, 400, Empty);
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(WAIT, tcp.read_to_end(&mut rest)).await;
    assert!(matches!(closed, Ok(Ok(0))), "{closed:?}");
    s.server.stop().await;
}

#[tokio::test]
async fn gnip_refusals_are_gzip_encoded_when_gzip_is_accepted() {
    let s = setup(Settings::default()).await;
    for (method, path) in [("PUT", RULES), ("POST", STREAM), ("GET", "/rules/x")] {
        let request = request_bytes(method, path, &["Accept-Encoding: gzip".into()], &Body::None);
        let raw = send(s.server.addr, &request).await;
        assert_eq!(
            raw.header("content-encoding"),
            Some("gzip"),
            "{path}: {raw:?}"
        );
    }
    s.server.stop().await;
}

#[tokio::test]
async fn an_unauthenticated_slow_body_is_refused_at_once() {
    let s = setup(Settings::default()).await;
    for (method, path) in [
        ("POST", "/ingest"),
        ("POST", RULES),
        ("POST", "/2/powerstream/rules"),
        ("PUT", "/admin/accounts/acme/users/bob"),
    ] {
        let mut tcp = TcpStream::connect(s.server.addr).await.unwrap();
        let request = request_bytes(method, path, &[], &Body::Declared(1000, b"abc"));
        // Answered although 997 bytes of the body never come: nothing waited for them.
        let raw = exchange(&mut tcp, &request).await;
        assert_eq!(raw.status, 401, "{path}: {raw:?}");
        // And the connection is let go in bounded time, not held open for the body.
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(WAIT, tcp.read_to_end(&mut rest)).await;
        assert!(matches!(closed, Ok(Ok(0))), "{path}: {closed:?}");
    }
    s.server.stop().await;
}

#[tokio::test]
async fn an_authenticated_slow_body_gets_408_after_the_deadline() {
    let deadline = Duration::from_secs(1);
    let s = setup(Settings {
        body_read_timeout: deadline,
        ..Settings::default()
    })
    .await;
    let cases = [
        ("/ingest", s.admin.clone(), Shape::Admin),
        (RULES, s.basic.clone(), Shape::GnipRules),
        ("/2/powerstream/rules", s.bearer.clone(), Shape::Problem),
    ];
    for (path, auth, shape) in cases {
        let started = Instant::now();
        let request = request_bytes("POST", path, &[auth], &Body::Declared(1000, b"abc"));
        let raw = send(s.server.addr, &request).await;
        check(path, &raw, 408, shape);
        assert!(
            started.elapsed() >= deadline,
            "{path}: {:?}",
            started.elapsed()
        );
    }
    s.server.stop().await;
}

#[tokio::test]
async fn many_unauthenticated_large_bodies_are_refused_unread() {
    let s = setup(Settings::default()).await;
    let mut sockets = Vec::new();
    for i in 0..20 {
        let path = if i % 2 == 0 { "/ingest" } else { RULES };
        let mut tcp = TcpStream::connect(s.server.addr).await.unwrap();
        let request = request_bytes("POST", path, &[], &Body::Declared(15 << 20, b""));
        // The 401 comes back before a byte of the 15 MiB is sent.
        let raw = exchange(&mut tcp, &request).await;
        assert_eq!(raw.status, 401, "{path}: {raw:?}");
        sockets.push(tcp);
    }
    // Sending the bodies now fails soon: the server closed the connection after its 401.
    for mut tcp in sockets {
        let chunk = vec![b' '; 64 << 10];
        let closed = tokio::time::timeout(WAIT, async {
            loop {
                if tcp.write_all(&chunk).await.is_err() {
                    return;
                }
            }
        })
        .await;
        assert!(
            closed.is_ok(),
            "the server kept reading an unauthenticated body"
        );
    }
    s.server.stop().await;
}

#[tokio::test]
async fn a_client_uploading_without_credentials_reads_its_401() {
    let s = setup(Settings::default()).await;
    // A naive client sends the whole body before it reads. For a body within the drain
    // allowance its upload completes and it reads the 401; the connection is not reset
    // under it for having sent data the server did not want.
    let body = Body::Fixed(vec![b'{'; 512 << 10]);
    for path in ["/ingest", RULES, "/2/powerstream/rules"] {
        let mut tcp = TcpStream::connect(s.server.addr).await.unwrap();
        let request = request_bytes("POST", path, &[], &body);
        tcp.write_all(&request).await.unwrap();
        let raw = tokio::time::timeout(WAIT, read_answer(&mut tcp))
            .await
            .unwrap();
        assert_eq!(raw.status, 401, "{path}: {raw:?}");
    }
    s.server.stop().await;
}
