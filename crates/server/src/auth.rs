//! Credentials: basic auth for the Gnip-style APIs, bearer tokens for Powerstream and for
//! the admin/ingest APIs.
//!
//! Passwords are stored as argon2 hashes. Verifying one takes tens of milliseconds, and
//! Gnip clients send basic auth on every request, so successful verifications are cached
//! under a SHA-256 of (account, user, password) for a few minutes; the cache is emptied
//! whenever a password changes. Tokens are random, so a SHA-256 of the token is a safe
//! lookup key and is all that is stored. Comparisons of secrets are constant-time.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rand::RngCore as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::private_files;

/// SHA-256 of a secret: the form in which tokens are stored and looked up.
pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// A new random token with a readable prefix (`sl_admin_…`, `sl_ps_…`).
pub fn generate_token(prefix: &str) -> String {
    let mut bytes = [0u8; 24];
    rand::rng().fill_bytes(&mut bytes);
    format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// An argon2 hash of a password, in PHC string form.
pub fn hash_password(password: &str) -> String {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt length");
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters hashes any password")
        .to_string()
}

/// Whether `password` matches a hash from [`hash_password`] (constant-time inside argon2).
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// The `user:password` of an `Authorization: Basic …` header.
pub fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// The token of an `Authorization: Bearer …` header.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// The admin API's bearer token, held as its hash.
#[derive(Clone)]
pub struct AdminToken {
    hash: [u8; 32],
}

impl AdminToken {
    /// The admin token `token`.
    pub fn new(token: &str) -> Self {
        Self {
            hash: token_hash(token),
        }
    }

    /// The token in `DATA_DIR/admin-token`, generating and saving one (readable by the
    /// owner only) on first start. Returns the token and whether it was generated now.
    pub fn load_or_generate(data_dir: &Path) -> std::io::Result<(String, bool)> {
        let path = data_dir.join("admin-token");
        match std::fs::read_to_string(&path) {
            Ok(token) if !token.trim().is_empty() => return Ok((token.trim().to_owned(), false)),
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        private_files::create_dir_all(data_dir)?;
        let token = generate_token("sl_admin_");
        private_files::write(&path, token.as_bytes())?;
        Ok((token, true))
    }

    /// Whether the request carries this token.
    pub fn allows(&self, headers: &HeaderMap) -> bool {
        bearer_token(headers).is_some_and(|t| token_hash(t).ct_eq(&self.hash).into())
    }
}

/// Recently verified basic-auth credentials.
#[derive(Default)]
pub struct CredentialCache {
    verified: Mutex<HashMap<[u8; 32], Instant>>,
}

const CREDENTIAL_TTL: Duration = Duration::from_secs(300);

impl CredentialCache {
    fn key(account: &str, user: &str, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        for part in [account, user, password] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        h.finalize().into()
    }

    /// Whether these credentials were verified in the last few minutes.
    pub fn contains(&self, account: &str, user: &str, password: &str) -> bool {
        let key = Self::key(account, user, password);
        let verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        verified
            .get(&key)
            .is_some_and(|at| at.elapsed() < CREDENTIAL_TTL)
    }

    /// Remembers a successful verification.
    pub fn insert(&self, account: &str, user: &str, password: &str) {
        let mut verified = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if verified.len() > 10_000 {
            verified.retain(|_, at| at.elapsed() < CREDENTIAL_TTL);
        }
        verified.insert(Self::key(account, user, password), Instant::now());
    }

    /// Forgets everything (a password changed).
    pub fn clear(&self) {
        self.verified
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn passwords_verify_only_with_the_right_password() {
        let hash = hash_password("s3cret");
        assert!(hash.starts_with("$argon2"));
        assert!(verify_password("s3cret", &hash));
        assert!(!verify_password("s3cret ", &hash));
        assert!(!verify_password("s3cret", "not a hash"));
    }

    #[test]
    fn headers_are_parsed() {
        let mut h = HeaderMap::new();
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_static("Basic ZGVtbzpkZW1vOng="),
        );
        assert_eq!(
            basic_credentials(&h),
            Some(("demo".into(), "demo:x".into()))
        );
        assert_eq!(bearer_token(&h), None);
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert_eq!(bearer_token(&h), Some("abc"));
        assert!(AdminToken::new("abc").allows(&h));
        assert!(!AdminToken::new("abd").allows(&h));
    }

    #[test]
    fn the_generated_admin_token_is_kept_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let (first, generated) = AdminToken::load_or_generate(dir.path()).unwrap();
        assert!(generated && first.starts_with("sl_admin_"));
        let (second, generated) = AdminToken::load_or_generate(dir.path()).unwrap();
        assert!(!generated);
        assert_eq!(first, second);
    }
}
