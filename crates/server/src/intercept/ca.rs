//! sluice's own certificate authority for `--intercept`: made on the first start, kept in
//! `DATA_DIR/tls/ca.pem` (the certificate clients are told to trust) and
//! `DATA_DIR/tls/ca-key.pem` (its key, readable by the owner only), reused on later starts.
//! It signs a short-lived leaf certificate for each X API host a client tunnels to.
//!
//! The CA carries a name constraint: it can vouch only for names under x.com, twitter.com
//! and gnip.com, so trusting it cannot expose a client's other HTTPS traffic, even if the
//! key leaks.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::{Duration, OffsetDateTime};

use crate::private_files;

/// The CA certificate's file in `DATA_DIR/tls/`.
pub const CA_CERT_FILE: &str = "ca.pem";
/// The CA key's file in `DATA_DIR/tls/`.
pub const CA_KEY_FILE: &str = "ca-key.pem";

/// The domains the CA may sign for (its name constraint); every host of
/// [`super::target::X_API_HOSTS`] is under one of them.
const PERMITTED_DOMAINS: [&str; 3] = ["x.com", "twitter.com", "gnip.com"];

/// How long a new CA is valid.
const CA_VALIDITY: Duration = Duration::days(10 * 365);
/// How long a leaf is valid: leaves are made afresh at every start, and 397 days is the
/// longest that every platform's verifier accepts.
const LEAF_VALIDITY: Duration = Duration::days(397);
/// Validity starts this long before now, for clients whose clocks run behind.
const CLOCK_SKEW: Duration = Duration::days(1);

/// The CA: its certificate's path and what signing needs.
pub struct CertificateAuthority {
    cert_path: PathBuf,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("cert_path", &self.cert_path)
            .finish_non_exhaustive()
    }
}

impl CertificateAuthority {
    /// The CA in `DATA_DIR/tls/`, made there first if there is none.
    ///
    /// The key is written before the certificate, and the certificate by rename, so a
    /// crash in between leaves a key alone, which the next start replaces (no client can
    /// trust a certificate never written). A certificate without its key is an error: it
    /// may be in clients' trust stores, and replacing it silently would break them.
    pub fn load_or_create(data_dir: &Path) -> anyhow::Result<CertificateAuthority> {
        let dir = data_dir.join("tls");
        let cert_path = dir.join(CA_CERT_FILE);
        let key_path = dir.join(CA_KEY_FILE);
        let created = match (cert_path.exists(), key_path.exists()) {
            (true, true) => false,
            (true, false) => bail!(
                "{} exists but its key {} does not; restore the key, or delete the \
                 certificate to make a new CA (clients must then trust the new one)",
                cert_path.display(),
                key_path.display()
            ),
            (false, _) => {
                private_files::create_dir_all(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                create(&cert_path, &key_path)?;
                true
            }
        };
        let ca = load(cert_path, &key_path)?;
        if created {
            tracing::info!(cert = %ca.cert_path.display(), "generated the interception CA");
        }
        Ok(ca)
    }

    /// Where the CA certificate is (`DATA_DIR/tls/ca.pem`), absolute if the data directory
    /// is.
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// A new leaf certificate and key for `host`, signed by this CA.
    pub fn issue(
        &self,
        host: &str,
    ) -> anyhow::Result<(CertificateDer<'static>, PrivateKeyDer<'static>)> {
        let mut params = CertificateParams::new(vec![host.to_owned()])
            .with_context(|| format!("certificate parameters for {host}"))?;
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, host);
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - CLOCK_SKEW;
        params.not_after = now + LEAF_VALIDITY;
        let key = KeyPair::generate().context("generating a leaf key")?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .with_context(|| format!("signing a certificate for {host}"))?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Ok((cert.der().clone(), key))
    }
}

/// Makes a CA and writes it: key first (owner-only), then the certificate by rename.
fn create(cert_path: &Path, key_path: &Path) -> anyhow::Result<()> {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, "sluice interception CA");
    params
        .distinguished_name
        .push(DnType::OrganizationName, "sluice");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: PERMITTED_DOMAINS
            .iter()
            .map(|domain| GeneralSubtree::DnsName((*domain).to_owned()))
            .collect(),
        excluded_subtrees: Vec::new(),
    });
    let now = OffsetDateTime::now_utc();
    params.not_before = now - CLOCK_SKEW;
    params.not_after = now + CA_VALIDITY;
    let key = KeyPair::generate().context("generating the CA key")?;
    let cert = params
        .self_signed(&key)
        .context("signing the CA certificate")?;
    private_files::write(key_path, key.serialize_pem().as_bytes())
        .with_context(|| format!("writing {}", key_path.display()))?;
    let partial = cert_path.with_extension("pem.partial");
    std::fs::write(&partial, cert.pem())
        .with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, cert_path)
        .with_context(|| format!("writing {}", cert_path.display()))?;
    Ok(())
}

/// Reads the CA and checks that the key is the certificate's.
fn load(cert_path: PathBuf, key_path: &Path) -> anyhow::Result<CertificateAuthority> {
    let cert_pem = std::fs::read_to_string(&cert_path)
        .with_context(|| format!("reading {}", cert_path.display()))?;
    let key_pem = std::fs::read_to_string(key_path)
        .with_context(|| format!("reading {}", key_path.display()))?;
    let key = KeyPair::from_pem(&key_pem)
        .with_context(|| format!("parsing the CA key {}", key_path.display()))?;
    let cert_der = {
        use rustls::pki_types::pem::PemObject as _;
        CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .with_context(|| format!("parsing {}", cert_path.display()))?
    };
    let provider = rustls::crypto::ring::default_provider();
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    rustls::sign::CertifiedKey::from_der(vec![cert_der], key_der, &provider).with_context(
        || {
            format!(
                "{} is not the key of {}",
                key_path.display(),
                cert_path.display()
            )
        },
    )?;
    let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)
        .with_context(|| format!("reading the CA certificate {}", cert_path.display()))?;
    Ok(CertificateAuthority { cert_path, issuer })
}

#[cfg(test)]
mod tests {
    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::ServerCertVerifier as _;
    use rustls::pki_types::{ServerName, UnixTime};

    use super::*;
    use std::sync::Arc;

    fn verifier(ca: &CertificateAuthority) -> Arc<WebPkiServerVerifier> {
        use rustls::pki_types::pem::PemObject as _;
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(ca.cert_path()).unwrap())
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .unwrap()
    }

    fn verify(ca: &CertificateAuthority, host: &str, as_name: &str) -> Result<(), rustls::Error> {
        let (leaf, _) = ca.issue(host).unwrap();
        let name = ServerName::try_from(as_name.to_owned()).unwrap();
        verifier(ca)
            .verify_server_cert(&leaf, &[], &name, &[], UnixTime::now())
            .map(|_| ())
    }

    #[test]
    fn leaves_verify_for_x_hosts_only() {
        let dir = tempfile::tempdir().unwrap();
        let ca = CertificateAuthority::load_or_create(dir.path()).unwrap();
        for host in super::super::target::X_API_HOSTS {
            verify(&ca, host, host).unwrap_or_else(|e| panic!("{host}: {e}"));
        }
        assert!(verify(&ca, "api.twitter.com", "api.x.com").is_err());
        // The name constraint: even a leaf this CA signed for another domain is refused.
        let foreign = verify(&ca, "example.com", "example.com");
        assert!(foreign.is_err(), "{foreign:?}");
    }

    #[test]
    fn the_ca_is_made_once_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let first = CertificateAuthority::load_or_create(dir.path()).unwrap();
        let pem = std::fs::read(first.cert_path()).unwrap();
        let again = CertificateAuthority::load_or_create(dir.path()).unwrap();
        assert_eq!(std::fs::read(again.cert_path()).unwrap(), pem);
        // Leaves of the reloaded CA chain to the certificate written the first time.
        verify(&again, "api.twitter.com", "api.twitter.com").unwrap();
        verify(&first, "api.x.com", "api.x.com").unwrap();
    }

    #[test]
    fn broken_pairs_are_refused_or_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join("tls");
        let ca = CertificateAuthority::load_or_create(dir.path()).unwrap();
        let pem = std::fs::read(ca.cert_path()).unwrap();

        // Another key beside the certificate.
        let other = KeyPair::generate().unwrap();
        std::fs::write(tls.join(CA_KEY_FILE), other.serialize_pem()).unwrap();
        let err = CertificateAuthority::load_or_create(dir.path()).unwrap_err();
        assert!(format!("{err:#}").contains("is not the key of"), "{err:#}");

        // A certificate without its key: kept, and an error.
        std::fs::remove_file(tls.join(CA_KEY_FILE)).unwrap();
        let err = CertificateAuthority::load_or_create(dir.path()).unwrap_err();
        assert!(format!("{err:#}").contains("does not"), "{err:#}");
        assert_eq!(std::fs::read(tls.join(CA_CERT_FILE)).unwrap(), pem);

        // A key without its certificate (a crash between the writes): a new CA.
        std::fs::remove_file(tls.join(CA_CERT_FILE)).unwrap();
        std::fs::write(tls.join(CA_KEY_FILE), other.serialize_pem()).unwrap();
        let fresh = CertificateAuthority::load_or_create(dir.path()).unwrap();
        assert_ne!(std::fs::read(fresh.cert_path()).unwrap(), pem);
        verify(&fresh, "api.x.com", "api.x.com").unwrap();

        // Garbage is an error, not a new CA.
        std::fs::write(tls.join(CA_CERT_FILE), "not a certificate").unwrap();
        assert!(CertificateAuthority::load_or_create(dir.path()).is_err());
    }
}
