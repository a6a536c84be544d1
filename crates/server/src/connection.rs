//! One accepted connection, after TLS if the listener has it: HTTP/1.1 with sluice's limits,
//! each request handled by the router inside its client's address scope
//! ([`crate::client_addr`]). With `--intercept`, a `CONNECT` is handed to
//! [`crate::intercept`], whose tunnels are served here again, the same way.
//!
//! Shutdown: a plain connection is watched by hyper-util's [`GracefulShutdown`]. hyper-util
//! cannot watch a connection that allows upgrades (which `CONNECT` needs), so those close
//! when the state's shutdown token fires, like open streams do, and are waited for through
//! the watcher they hold (outer connections) or a task tracker (tunnels).
//!
//! [`GracefulShutdown`]: hyper_util::server::graceful::GracefulShutdown

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::Method;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::Watcher;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api;
use crate::client_addr;
use crate::intercept::Intercept;

/// What every connection of a listener shares: the router, the interception (if on), the
/// shutdown token, and the open tunnels.
#[derive(Clone)]
pub(crate) struct Connections {
    app: Router,
    intercept: Option<Arc<Intercept>>,
    shutdown: CancellationToken,
    tunnels: TaskTracker,
}

impl Connections {
    /// Connections served by `app`; `CONNECT` is intercepted when `intercept` is given.
    pub(crate) fn new(
        app: Router,
        intercept: Option<Intercept>,
        shutdown: CancellationToken,
    ) -> Connections {
        Connections {
            app,
            intercept: intercept.map(Arc::new),
            shutdown,
            tunnels: TaskTracker::new(),
        }
    }

    /// Serves a TCP connection the listener accepted, after a TLS handshake when the
    /// listener has `tls`, until it closes or until shutdown (which waits for it through
    /// `watcher`); how it ended is logged.
    ///
    /// The TLS path is boxed. Its handshake and encrypted stream make its future about four
    /// times the size of a plain connection's (6.6 against 1.7 KB in a test build), and a
    /// future is as large as its largest path: unboxed, every plain connection's task was
    /// a 7 KiB block held for the connection's life (docs/performance.md, "A plain
    /// connection's task"). A TLS connection now pays about 2 KiB more, in two blocks.
    pub(crate) async fn serve_tcp(
        self,
        tcp: TcpStream,
        peer: SocketAddr,
        tls: Option<TlsAcceptor>,
        watcher: Watcher,
    ) {
        let result = match tls {
            None => self.serve_accepted(tcp, peer, watcher).await,
            Some(acceptor) => {
                let handshake_then_serve = async move {
                    match acceptor.accept(tcp).await {
                        Ok(stream) => Some(self.serve_accepted(stream, peer, watcher).await),
                        Err(e) => {
                            tracing::debug!(%peer, "TLS handshake failed: {e}");
                            None
                        }
                    }
                };
                match Box::pin(handshake_then_serve).await {
                    Some(result) => result,
                    None => return,
                }
            }
        };
        if let Err(e) = result {
            tracing::debug!(%peer, "connection ended with an error: {e}");
        }
    }

    /// Serves a connection accepted by the listener until it closes, or until shutdown
    /// (which waits for it through `watcher`).
    pub(crate) async fn serve_accepted<IO>(
        &self,
        io: IO,
        peer: SocketAddr,
        watcher: Watcher,
    ) -> hyper::Result<()>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let intercepting = self.intercept.is_some();
        let connection = http1().serve_connection(TokioIo::new(io), self.service(peer, true));
        if !intercepting {
            return watcher.watch(connection).await;
        }
        // Held until the connection ends: the server's drain waits for it.
        let _counted = watcher;
        let connection = connection.with_upgrades();
        tokio::pin!(connection);
        tokio::select! {
            result = connection.as_mut() => return result,
            () = self.shutdown.cancelled() => {}
        }
        connection.as_mut().graceful_shutdown();
        connection.await
    }

    /// Serves the requests inside a `CONNECT` tunnel (after its TLS) until it closes or
    /// shutdown. A `CONNECT` inside a tunnel is an ordinary unknown request.
    pub(crate) async fn serve_tunnel<IO>(&self, io: IO, peer: SocketAddr) -> hyper::Result<()>
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let connection = http1().serve_connection(TokioIo::new(io), self.service(peer, false));
        tokio::pin!(connection);
        tokio::select! {
            result = connection.as_mut() => return result,
            () = self.shutdown.cancelled() => {}
        }
        connection.as_mut().graceful_shutdown();
        connection.await
    }

    /// Runs a tunnel's task, counted for [`Connections::drain`].
    pub(crate) fn spawn_tunnel(&self, tunnel: impl Future<Output = ()> + Send + 'static) {
        self.tunnels.spawn(tunnel);
    }

    /// Completes when every tunnel has closed (at shutdown, after the token fired).
    pub(crate) async fn drain(&self) {
        self.tunnels.close();
        self.tunnels.wait().await;
    }

    /// The hyper service of one connection from `peer`. `CONNECT` goes to the interception
    /// when `may_connect` and interception is on; every other request to the router.
    fn service(
        &self,
        peer: SocketAddr,
        may_connect: bool,
    ) -> TowerToHyperService<
        impl tower::Service<
            Request<Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
            Future = impl Future<Output = Result<axum::response::Response, std::convert::Infallible>>
                     + Send,
        > + Clone
        + Send,
    > {
        let connections = self.clone();
        TowerToHyperService::new(tower::service_fn(move |request: Request<Incoming>| {
            let connections = connections.clone();
            async move {
                if let Some(intercept) = &connections.intercept
                    && may_connect
                    && request.method() == Method::CONNECT
                {
                    return Ok(intercept.connect(request, peer, &connections));
                }
                let handled = tower::ServiceExt::oneshot(connections.app.clone(), request);
                client_addr::scope(peer.ip(), handled).await
            }
        }))
    }
}

/// HTTP/1.1 as every connection speaks it.
fn http1() -> hyper::server::conn::http1::Builder {
    let mut http = hyper::server::conn::http1::Builder::new();
    // Heads between the API's own limits and this one are refused by the router in the
    // path's dialect; hyper refuses larger ones, and malformed ones, with an empty body
    // (docs/errors.md).
    http.timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30))
        .max_header_size(api::rejection::HYPER_MAX_HEAD_BYTES)
        .keep_alive(true);
    http
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The task of every plain connection holds this future for the connection's life.
    /// With the TLS path inline it was 6,800 bytes in a test build; boxed, about 1.7 KB.
    #[tokio::test]
    async fn a_plain_connection_does_not_carry_the_tls_path_in_its_task() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind on loopback");
        let _client = TcpStream::connect(listener.local_addr().expect("bound address"))
            .await
            .expect("connect");
        let (tcp, peer) = listener.accept().await.expect("accept");
        let connections = Connections::new(Router::new(), None, CancellationToken::new());
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let task = connections.serve_tcp(tcp, peer, None, graceful.watcher());
        let plain = size_of_val(&task);
        assert!(
            plain <= 3 * 1024,
            "a plain connection's future is {plain} bytes"
        );
    }
}
