//! What an idle stream connection costs the server in heap memory, and that the memory is
//! freed when the connection closes (docs/performance.md, "Connections"). This test binary
//! counts the bytes allocated and not yet freed with a global allocator of its own; the
//! connections are bare sockets that send a request head and read only the response head,
//! so nearly everything counted while they are open is the server's.
//!
//! The bound is the project's target, 64 KiB per idle connection; a deflater per gzip
//! connection (about 300 KB) or a buffer allocated at full size would exceed it many times.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;
use sluice_server::Settings;
use sluice_testkit::TestServer;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The system allocator, counting the bytes in use.
struct Counting;

/// Bytes allocated and not freed, over the whole process.
static IN_USE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the counter is only
// arithmetic on the sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        IN_USE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is GlobalAlloc::alloc's, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        IN_USE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        IN_USE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The project's target for an idle connection.
const MAX_BYTES_PER_CONNECTION: isize = 64 << 10;
/// Connections per kind: PowerTrack allows 60 connects per minute per stream.
const CONNECTIONS: usize = 50;

fn in_use() -> isize {
    IN_USE.load(Ordering::Relaxed)
}

/// Opens a stream with a bare request head; returns the socket once the server answered
/// 200 (only the head is read: the body stays unread, the connection idle).
async fn open(server: &TestServer, path: &str, authorization: &str, gzip: bool) -> TcpStream {
    let mut socket = TcpStream::connect(server.addr).await.unwrap();
    let encoding = if gzip { "gzip" } else { "identity" };
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: test\r\nAuthorization: {authorization}\r\n\
         Accept-Encoding: {encoding}\r\n\r\n"
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut status = [0u8; 12];
    socket.read_exact(&mut status).await.unwrap();
    assert_eq!(
        &status,
        b"HTTP/1.1 200",
        "{}",
        String::from_utf8_lossy(&status)
    );
    socket
}

/// Opens `CONNECTIONS` streams and returns the bytes in use per connection they added,
/// with the sockets.
async fn per_connection(
    server: &TestServer,
    path: &str,
    authorization: &str,
    gzip: bool,
) -> (isize, Vec<TcpStream>) {
    let mut sockets = Vec::with_capacity(CONNECTIONS);
    let before = in_use();
    for _ in 0..CONNECTIONS {
        sockets.push(open(server, path, authorization, gzip).await);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    ((in_use() - before) / CONNECTIONS as isize, sockets)
}

/// Waits until the server counts no open connection and the bytes in use are back within
/// `slack` of `baseline`; returns the bytes in use over the baseline then.
async fn after_closing(server: &TestServer, baseline: isize, slack: isize) -> isize {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let open: usize = server
            .state
            .registry
            .all()
            .iter()
            .map(|s| s.connections.len())
            .sum();
        let over = in_use() - baseline;
        if (open == 0 && over <= slack) || Instant::now() > deadline {
            return over;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_connection_costs_little_and_gives_it_back_when_it_closes() {
    // Heartbeats often, so that the server notices closed sockets at once (a write fails).
    let settings = Settings {
        heartbeat: Duration::from_millis(200),
        ..Settings::default()
    };
    let server = TestServer::start(settings).await;
    server.provision("powertrack").await;
    let (status, body) = server
        .admin(
            Method::PUT,
            "/admin/accounts/acme/streams/prod",
            json!({"product": "powertrack", "max_connections": 100}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = server
        .admin(
            Method::PUT,
            "/admin/accounts/acme/streams/powerstream",
            json!({"product": "powerstream", "max_connections": 200}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, token) = server
        .admin(Method::POST, "/admin/accounts/acme/tokens", json!({}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{token}");
    let bearer = format!("Bearer {}", token["token"].as_str().unwrap());
    let basic = "Basic YWxpY2U6c2VjcmV0"; // alice:secret
    let powertrack = "/stream/powertrack/accounts/acme/publishers/twitter/prod.json";
    // One connection of each kind first, to make what is made once and kept: the
    // password check's buffer, credential caches, the runtime's and threads' buffers.
    let mut held = vec![
        open(&server, powertrack, basic, true).await,
        open(&server, "/2/powerstream", &bearer, true).await,
        open(&server, "/2/powerstream", &bearer, false).await,
    ];
    tokio::time::sleep(Duration::from_millis(100)).await;
    let baseline = in_use();

    let (gzip, more) = per_connection(&server, powertrack, basic, true).await;
    held.extend(more);
    let (ps_gzip, more) = per_connection(&server, "/2/powerstream", &bearer, true).await;
    held.extend(more);
    let (ps_identity, more) = per_connection(&server, "/2/powerstream", &bearer, false).await;
    held.extend(more);
    let open_total = in_use() - baseline;
    for (what, bytes) in [
        ("PowerTrack gzip", gzip),
        ("Powerstream gzip", ps_gzip),
        ("Powerstream identity", ps_identity),
    ] {
        assert!(
            bytes <= MAX_BYTES_PER_CONNECTION,
            "{what}: {bytes} bytes per idle connection, over {MAX_BYTES_PER_CONNECTION}"
        );
    }

    drop(held);
    // What stays once they closed: a tenth of what they held at most (logs, counters).
    let left = after_closing(&server, baseline, open_total / 10).await;
    assert!(
        left <= open_total / 10,
        "{left} of the {open_total} bytes the connections held are still in use"
    );
    server.stop().await;
}

/// The thread that ran a connection to its end says so, for the binary's allocator hook
/// that hands the thread's cache of freed blocks back (`sluice_server::connection_ends`). On a
/// current-thread runtime every server task runs on the test's thread.
#[tokio::test(flavor = "current_thread")]
async fn the_thread_that_ends_a_connection_is_told() {
    let server = TestServer::start(Settings::default()).await;
    let _ = sluice_server::connection_ends::take_connection_ended();
    let mut socket = TcpStream::connect(server.addr).await.unwrap();
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut reply = Vec::new();
    socket.read_to_end(&mut reply).await.unwrap();
    assert!(reply.starts_with(b"HTTP/1.1 200"), "{reply:?}");
    drop(socket);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut ended = false;
    while !ended && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
        ended = sluice_server::connection_ends::take_connection_ended();
    }
    assert!(ended, "the connection's end was not noted on its thread");
    server.stop().await;
}
