//! `sluice serve --intercept`: the listener doubles as an HTTPS proxy for X's API hosts, so
//! clients that hard-code `https://api.twitter.com` (tweepy, twarc) reach sluice through
//! proxy settings alone (docs/operator-interface.md, "sluice serve --intercept").
//!
//! A `CONNECT api.twitter.com:443` is answered `200 Connection established`; sluice then
//! terminates TLS on the tunnel with a certificate for that host, signed by its own CA
//! ([`ca`]), and serves the requests inside exactly as on the listener (same router, auth,
//! streaming and shutdown: the crate's `connection` module). `CONNECT` to anything but an X API host
//! on port 443 ([`target`]) is refused with 403 (400 when the target is not `host:port`).
//!
//! - [`target`]: the hosts served and the parsing of `CONNECT` targets.
//! - [`ca`]: the CA in `DATA_DIR/tls/` and the leaf certificates it signs.

pub mod ca;
pub mod target;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use axum::http::{Request, StatusCode};
use axum::response::{IntoResponse as _, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio_rustls::TlsAcceptor;

use crate::api::error::ApiError;
use crate::connection::Connections;
use ca::CertificateAuthority;
use target::{Refusal, XApiHost};

/// The interception CA and the TLS settings made from it for each X API host, made on first
/// use and kept for the life of the process.
#[derive(Debug)]
pub struct Intercept {
    ca: CertificateAuthority,
    /// One slot per entry of [`target::X_API_HOSTS`].
    leaves: Mutex<Vec<Option<Arc<rustls::ServerConfig>>>>,
}

impl Intercept {
    /// Interception with the CA in `DATA_DIR/tls/`, made there on the first start.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<Intercept> {
        Ok(Intercept {
            ca: CertificateAuthority::load_or_create(data_dir)?,
            leaves: Mutex::new(vec![None; target::X_API_HOSTS.len()]),
        })
    }

    /// Where the CA certificate that clients must trust is (`DATA_DIR/tls/ca.pem`).
    pub fn ca_path(&self) -> &Path {
        self.ca.cert_path()
    }

    /// The TLS acceptor presenting `host`'s certificate, issued on the first call.
    fn acceptor_for(&self, host: XApiHost) -> anyhow::Result<TlsAcceptor> {
        // Issuing takes a few milliseconds, once per host; holding the lock meanwhile
        // keeps two first tunnels from issuing twice.
        let mut leaves = self.leaves.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(config) = &leaves[host.index] {
            return Ok(TlsAcceptor::from(config.clone()));
        }
        let (cert, key) = self.ca.issue(host.host)?;
        let config = crate::tls::server_config(vec![cert], key)?;
        leaves[host.index] = Some(config.clone());
        Ok(TlsAcceptor::from(config))
    }

    /// Answers a `CONNECT` from `peer`. For an X API host: 200, and a task that takes over
    /// the connection once the answer is sent, terminates TLS and serves the tunnel through
    /// `connections`. Otherwise the refusal, in the admin API's error shape.
    pub(crate) fn connect(
        &self,
        request: Request<Incoming>,
        peer: SocketAddr,
        connections: &Connections,
    ) -> Response {
        let target = request.uri().to_string();
        let host = match target::parse(&target) {
            Ok(host) => host,
            Err(refusal) => {
                tracing::warn!(%peer, target, "refused CONNECT: {refusal}");
                let status = match refusal {
                    Refusal::Malformed(_) => StatusCode::BAD_REQUEST,
                    Refusal::NotAnXApiHost(_) => StatusCode::FORBIDDEN,
                };
                return ApiError::new(status, refusal.to_string()).into_response();
            }
        };
        let acceptor = match self.acceptor_for(host) {
            Ok(acceptor) => acceptor,
            Err(e) => return ApiError::internal(format!("{e:#}")).into_response(),
        };
        tracing::debug!(%peer, host = host.host, "CONNECT: serving the tunnel");
        let tunnel = connections.clone();
        connections.spawn_tunnel(async move {
            let upgraded = match hyper::upgrade::on(request).await {
                Ok(upgraded) => upgraded,
                Err(e) => {
                    tracing::debug!(%peer, "CONNECT: the connection was not handed over: {e}");
                    return;
                }
            };
            let stream = match acceptor.accept(TokioIo::new(upgraded)).await {
                Ok(stream) => stream,
                Err(e) => {
                    // Typically a client that does not trust ca.pem.
                    tracing::info!(
                        %peer,
                        host = host.host,
                        "TLS handshake in a CONNECT tunnel failed: {e}"
                    );
                    return;
                }
            };
            if let Err(e) = tunnel.serve_tunnel(stream, peer).await {
                tracing::debug!(%peer, "tunnel ended with an error: {e}");
            }
        });
        let mut established = StatusCode::OK.into_response();
        established
            .extensions_mut()
            .insert(hyper::ext::ReasonPhrase::from_static(
                b"Connection established",
            ));
        established
    }
}
