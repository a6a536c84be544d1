//! One WebSocket session with a Jetstream instance: opening it (plain `ws://`, or `wss://`
//! through rustls with the ring provider and the system's root certificates) and reading
//! its events, decompressing binary frames when compression was asked for.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_util::StreamExt as _;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};
use url::Url;

use super::compression::{Decompressor, MAX_EVENT_BYTES};

/// How long opening the connection (TCP, TLS, upgrade) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// How long the connection may stay silent before it is taken for dead. Jetstream sends
/// pings and, on the post collection, events several times a second.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// An open session.
pub struct Session {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    decompressor: Option<Arc<Decompressor>>,
}

/// Why a session could not be opened or ended.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// Opening it failed (refused, TLS, an HTTP answer other than the upgrade, timeout).
    #[error("connecting to {url}: {reason}")]
    Connect {
        /// Where.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// Reading failed, or nothing arrived for [`IDLE_TIMEOUT`].
    #[error("{0}")]
    Read(String),
    /// A frame could not be decompressed.
    #[error("a compressed frame could not be read: {0}")]
    Frame(std::io::Error),
}

/// The TLS configuration of every `wss://` connection: ring, the system's roots.
fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            // Unreadable system certificates leave the store short; the handshake then
            // says which certificate it could not verify.
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("ring supports the default TLS versions")
                .with_root_certificates(roots)
                .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

impl Session {
    /// Opens `url` (a subscribe URL); binary frames are decompressed with `decompressor`
    /// when given.
    pub async fn open(
        url: &Url,
        decompressor: Option<Arc<Decompressor>>,
    ) -> Result<Self, SessionError> {
        let failed = |reason: String| SessionError::Connect {
            url: url.to_string(),
            reason,
        };
        let connector = if url.scheme() == "wss" {
            Connector::Rustls(tls_config())
        } else {
            Connector::Plain
        };
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_EVENT_BYTES as usize))
            .max_frame_size(Some(MAX_EVENT_BYTES as usize));
        let connecting = tokio_tungstenite::connect_async_tls_with_config(
            url.as_str(),
            Some(config),
            true,
            Some(connector),
        );
        let (socket, _response) = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| failed(format!("no answer within {CONNECT_TIMEOUT:?}")))?
            .map_err(|e| failed(e.to_string()))?;
        Ok(Self {
            socket,
            decompressor,
        })
    }

    /// The next event's JSON; `Ok(None)` when the server closed the session.
    pub async fn next_event(&mut self) -> Result<Option<Vec<u8>>, SessionError> {
        loop {
            let message = tokio::time::timeout(IDLE_TIMEOUT, self.socket.next())
                .await
                .map_err(|_| {
                    SessionError::Read(format!("nothing received for {}s", IDLE_TIMEOUT.as_secs()))
                })?;
            let message = match message {
                None => return Ok(None),
                Some(Ok(message)) => message,
                Some(Err(e)) => return Err(SessionError::Read(e.to_string())),
            };
            match message {
                Message::Text(text) => return Ok(Some(text.as_bytes().to_vec())),
                Message::Binary(bytes) => {
                    return match &self.decompressor {
                        Some(d) => d.decompress(&bytes).map(Some).map_err(SessionError::Frame),
                        // An uncompressed session has no binary events; take it as JSON.
                        None => Ok(Some(bytes.to_vec())),
                    };
                }
                Message::Close(_) => return Ok(None),
                // Pings are answered by the library as it reads.
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
    }

    /// Closes the session politely (a close frame), briefly: the server may be gone.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.socket.close(None)).await;
    }
}
