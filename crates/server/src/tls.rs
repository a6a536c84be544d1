//! HTTPS: a certificate from files, or one generated for `localhost` and `127.0.0.1`
//! (`--tls-self-signed`), written to `DATA_DIR/tls/cert.pem` so clients can trust it (its
//! key beside it, readable by the owner only).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::private_files;

/// A TLS acceptor for the PEM certificate chain and private key at these paths.
pub fn from_files(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    let certs = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading certificate {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("parsing certificate {}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading private key {}", key.display()))?;
    Ok(TlsAcceptor::from(server_config(certs, key)?))
}

/// A TLS acceptor with a self-signed certificate for `localhost` and `127.0.0.1`, reusing
/// the one in `DATA_DIR/tls/` if present. Returns the acceptor and the certificate's path.
pub fn self_signed(data_dir: &Path) -> anyhow::Result<(TlsAcceptor, PathBuf)> {
    let dir = data_dir.join("tls");
    let cert_path = dir.join("cert.pem");
    let key_path = dir.join("key.pem");
    if !(cert_path.exists() && key_path.exists()) {
        private_files::create_dir_all(&dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        let generated = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .context("generating a self-signed certificate")?;
        std::fs::write(&cert_path, generated.cert.pem())?;
        private_files::write(&key_path, generated.signing_key.serialize_pem().as_bytes())?;
        tracing::info!(cert = %cert_path.display(), "generated a self-signed certificate");
    }
    Ok((from_files(&cert_path, &key_path)?, cert_path))
}

/// The listener's TLS settings for a certificate chain and its key: ring, TLS 1.2 and 1.3,
/// HTTP/1.1 only (ALPN). Also used for the certificates `--intercept` issues.
pub fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS protocol versions")?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .context("TLS certificate and key do not fit together")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
