//! # sluice-server
//!
//! The HTTP(S) server behind `sluice serve`: X's PowerTrack, Decahose/Firehose and
//! Powerstream APIs, plus sluice's admin and ingest APIs, on one listener.
//!
//! Modelled on mini-redis: [`serve`] takes a bound listener, the state and a shutdown
//! future, so the binary and the end-to-end tests start it the same way (tests bind
//! `127.0.0.1:0`).
//!
//! ## Layout
//! - [`settings`]: how the server behaves (timings, limits, datacenter).
//! - [`state`]: [`AppState`], everything handlers share; loads the store at start.
//! - [`registry`]: live streams, their compiled rules and open connections.
//! - [`sessions`]: the open connections of each basic-auth user, closed when it is revoked.
//! - [`client_addr`]: the client address of the request being served.
//! - [`changes`]: every state change (accounts, users, streams, rules, tokens, apps) is a
//!   [`cluster::Change`] applied by one function, [`changes::apply`]; one function per kind
//!   builds it and hands it to the source of truth (the store, or the cluster first).
//! - [`cluster`]: the seam to a cluster backend (`sluice-cluster`): [`cluster::Cluster`]
//!   (what the node asks of the backend), [`cluster::ClusterNode`] (what the backend may
//!   do to the node), replicated [`cluster::Change`]s, readiness.
//! - [`cluster_node`]: [`cluster::ClusterNode`] implemented over [`AppState`].
//! - [`pipeline`]: the in-process post bus: log each accepted post, match it, fill outboxes.
//! - [`post`]: [`post::IngestedPost`], an accepted post on its way to the pipeline.
//! - [`delivery_mark`]: how far live delivery has got in the post log.
//! - [`clock`]: `now_ms`, the wall clock in epoch milliseconds.
//! - [`fd_limit`]: raises the open-files limit at start (a socket per connection).
//! - [`dedup`]: the window of recently accepted post ids (a post ingested twice is
//!   delivered once).
//! - [`post_log`]: which post log a server opens (files or memory) and its retention trim.
//! - [`compliance`]: what the compliance events received take away from replays.
//! - [`delivery`]: outboxes and streaming bodies (framing, heartbeats, gzip, slow consumers).
//! - [`demo`]: `sluice serve --demo`: demo account, streams, rules and a synthetic firehose.
//! - [`api`]: the HTTP surfaces (admin, ingest, health, …) and X's error shapes.
//! - [`auth`]: basic auth, bearer tokens, the admin token.
//! - [`private_files`]: secrets on disk are created readable by their owner only.
//! - [`ratelimit`]: X's fixed-window limits and their headers.
//! - [`tls`]: certificates from files or self-signed.
//! - [`intercept`]: `--intercept`, `CONNECT` tunnels to X's API hosts with certificates
//!   from sluice's own CA.
//! - `connection`: one accepted connection (or tunnel): HTTP/1.1 limits, the router, shutdown.
//! - `console`: the web console at `/console/` for the operator and the customer.
//! - [`urls`]: the URLs the "API help" view hands out.
//! - [`telemetry`]: metric names and Prometheus rendering.
//! - [`background`]: low-priority threads for bulk work (Replay jobs) that must not slow
//!   live delivery.
//! - [`workers`]: named worker threads with state of their own, mapping chunks in order
//!   (the pipeline's matching threads, `sluice match --threads`).

#![deny(missing_docs)]

pub mod api;
pub mod auth;
pub mod background;
pub mod changes;
pub mod client_addr;
pub mod clock;
pub mod cluster;
pub mod cluster_node;
pub mod compliance;
mod connection;
pub mod connection_ends;
mod console;
pub mod dedup;
pub mod delivery;
pub mod delivery_mark;
pub mod demo;
pub mod fd_limit;
pub mod intercept;
pub mod pipeline;
pub mod post;
pub mod post_log;
pub mod private_files;
pub mod ratelimit;
pub mod registry;
pub mod sessions;
pub mod settings;
pub mod shutdown;
pub mod state;
pub mod telemetry;
pub mod tls;
pub mod token_use;
pub mod urls;
pub mod usage;
pub mod workers;

use std::future::Future;
use std::time::Duration;

use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use connection::Connections;
pub use settings::Settings;
pub use state::{AppState, BackendLog, Clustering, StoreLocation};

/// Low latency for small writes, and dead or stalled peers noticed in bounded time: TCP
/// keepalive probes an idle connection, and `TCP_USER_TIMEOUT` fails a connection whose
/// sent data stays unacknowledged (a client that stopped reading), so its task and memory
/// are freed even though hyper only learns of a dead peer when a write fails.
fn tune_socket(tcp: &tokio::net::TcpStream) {
    let _ = tcp.set_nodelay(true);
    let socket = socket2::SockRef::from(tcp);
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(Duration::from_secs(30))
        .with_interval(Duration::from_secs(10));
    let _ = socket.set_tcp_keepalive(&keepalive);
    #[cfg(target_os = "linux")]
    let _ = socket.set_tcp_user_timeout(Some(Duration::from_secs(90)));
}

/// How long the pipeline gets at shutdown to log and deliver what was accepted.
const PIPELINE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long open connections get to finish after shutdown starts.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// How the listener speaks beyond plain HTTP.
#[derive(Default)]
pub struct ServeOptions {
    /// HTTPS, with this acceptor.
    pub tls: Option<TlsAcceptor>,
    /// `--intercept`: also accept `CONNECT` to X's API hosts ([`intercept`]).
    pub intercept: Option<intercept::Intercept>,
}

/// Serves the API on `listener` (HTTPS when `tls` is given) until `shutdown` completes.
/// Then open streams get the operational-disconnect message and end, and the server waits
/// briefly for connections to drain.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let options = ServeOptions {
        tls,
        intercept: None,
    };
    serve_with(listener, options, state, shutdown).await
}

/// [`serve`], with every option of the listener.
pub async fn serve_with(
    listener: TcpListener,
    options: ServeOptions,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    telemetry::install();
    let ServeOptions { tls, intercept } = options;
    let connections = Connections::new(
        api::router(state.clone()),
        intercept,
        state.shutdown.token(),
    );
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: back off, keep serving.
                        tracing::warn!("accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                tune_socket(&tcp);
                let watcher = graceful.watcher();
                let tls = tls.clone();
                let connections = connections.clone();
                tokio::spawn(async move {
                    // Dropped last, on the thread where the connection's memory is freed.
                    let _ended = connection_ends::EndGuard;
                    connections.serve_tcp(tcp, peer, tls, watcher).await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    tracing::info!("shutting down: closing streams");
    state.shutdown.begin();
    drop(listener);
    let closed = async { tokio::join!(graceful.shutdown(), connections.drain()) };
    tokio::select! {
        _ = closed => tracing::info!("all connections closed"),
        () = tokio::time::sleep(DRAIN_TIMEOUT) => tracing::warn!("connections still open after {DRAIN_TIMEOUT:?}; exiting"),
    }
    // Every post ingest acknowledged is logged before the process ends.
    if state.stop_pipeline(PIPELINE_TIMEOUT).await {
        tracing::info!("post pipeline drained");
    } else {
        tracing::warn!("the post pipeline did not drain within {PIPELINE_TIMEOUT:?}");
    }
    state.flush_usage().await;
    Ok(())
}
