//! Credentials: basic auth for the Gnip-style APIs, bearer tokens for Powerstream and for
//! the admin/ingest APIs.
//!
//! Passwords are stored as argon2 hashes. Verifying one takes tens of milliseconds and
//! ~19 MiB, and Gnip clients send basic auth on every request, so successful
//! verifications are cached under a SHA-256 of (account, user, password) for a few
//! minutes; the cache is emptied whenever a password changes. How checks are bounded,
//! shared and throttled is in [`basic`], [`verifier`] and [`throttle`]. Tokens are random,
//! so a SHA-256 of the token is a safe lookup key and is all that is stored. Comparisons
//! of secrets are constant-time.

pub mod apps;
pub mod basic;
pub mod throttle;
pub mod verifier;

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

/// The `WWW-Authenticate` challenge of a 401 on the basic-auth (Gnip) endpoints.
pub const BASIC_CHALLENGE: &str = "Basic realm=\"sluice\"";

/// The `WWW-Authenticate` challenge of a 401 on the bearer-token endpoints (admin,
/// ingest, Powerstream).
pub const BEARER_CHALLENGE: &str = "Bearer";

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

/// The scheme part of every Powerstream token.
pub const POWERSTREAM_TOKEN_SCHEME: &str = "sl_ps_";

/// Characters of a token's public id.
const PUBLIC_ID_LEN: usize = 8;

/// A new Powerstream bearer token and its public prefix.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    /// `sl_ps_<public id>_<secret>`: shown once, stored only as its hash.
    pub token: String,
    /// `sl_ps_<public id>`: no secret character, so it may be logged and listed (and name
    /// the token to revoke).
    pub prefix: String,
}

/// A new Powerstream bearer token: a random public id of 8 lowercase hex characters, then
/// 24 random bytes (URL-safe base64) that are the secret.
pub fn issue_powerstream_token() -> IssuedToken {
    let mut id = [0u8; PUBLIC_ID_LEN / 2];
    rand::rng().fill_bytes(&mut id);
    let id: String = id.iter().map(|b| format!("{b:02x}")).collect();
    let prefix = format!("{POWERSTREAM_TOKEN_SCHEME}{id}");
    let token = generate_token(&format!("{prefix}_"));
    IssuedToken { token, prefix }
}

/// How a stored token prefix may be shown: as it is when it has the public shape
/// (`sl_ps_` and a public id); tokens issued before public ids existed stored their first
/// characters, secret ones among them, so only their scheme is shown.
pub fn displayable_prefix(stored: &str) -> &str {
    let public = stored
        .strip_prefix(POWERSTREAM_TOKEN_SCHEME)
        .is_some_and(|id| {
            id.len() == PUBLIC_ID_LEN && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        });
    if public {
        stored
    } else {
        POWERSTREAM_TOKEN_SCHEME
    }
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
///
/// Entries carry no user to forget them by: a password change empties the whole cache
/// and starts a new epoch, and a verification that began in an earlier epoch (against
/// the old hash) is not cached.
#[derive(Default)]
pub struct CredentialCache {
    verified: Mutex<Verified>,
}

#[derive(Default)]
struct Verified {
    epoch: u64,
    at: HashMap<[u8; 32], Instant>,
}

const CREDENTIAL_TTL: Duration = Duration::from_secs(300);

impl CredentialCache {
    /// The cache key of credentials (a digest: passwords are not kept).
    pub fn key(account: &str, user: &str, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        for part in [account, user, password] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        h.finalize().into()
    }

    fn verified(&self) -> std::sync::MutexGuard<'_, Verified> {
        self.verified.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether these credentials were verified in the last few minutes.
    pub fn contains(&self, account: &str, user: &str, password: &str) -> bool {
        let key = Self::key(account, user, password);
        self.verified()
            .at
            .get(&key)
            .is_some_and(|at| at.elapsed() < CREDENTIAL_TTL)
    }

    /// The current epoch: read it before looking up the hash a verification checks.
    pub fn epoch(&self) -> u64 {
        self.verified().epoch
    }

    /// Remembers a successful verification that began in `epoch`; ignored if the cache
    /// was emptied since.
    pub fn insert_in(&self, epoch: u64, account: &str, user: &str, password: &str) {
        let mut verified = self.verified();
        if verified.epoch != epoch {
            return;
        }
        if verified.at.len() > 10_000 {
            verified.at.retain(|_, at| at.elapsed() < CREDENTIAL_TTL);
        }
        verified
            .at
            .insert(Self::key(account, user, password), Instant::now());
    }

    /// Forgets everything (a password changed) and starts a new epoch.
    pub fn clear(&self) {
        let mut verified = self.verified();
        verified.at.clear();
        verified.epoch += 1;
    }
}

/// How authentication protects the node from password guessing and from its own cost.
/// [`AuthSettings::default`] is what `sluice serve` runs with (docs/auth.md).
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Password checks (argon2, ~19 MiB each) running at once: the cores, at most 8.
    pub password_checks: usize,
    /// How long a check waits for its turn before the request is refused with 503.
    pub password_check_wait: Duration,
    /// Checks that may wait for their turn; beyond, requests are refused with 503 at once.
    pub password_check_queue: usize,
    /// Unverified attempts per user (account and username) per window; beyond: 429.
    pub attempts_per_user: u32,
    /// Unverified attempts per client address per window; beyond: 429.
    pub attempts_per_client: u32,
    /// The window of both attempt budgets.
    pub attempt_window: Duration,
}

impl Default for AuthSettings {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self {
            password_checks: cores.min(8),
            password_check_wait: Duration::from_secs(5),
            password_check_queue: 256,
            attempts_per_user: 10,
            attempts_per_client: 30,
            attempt_window: Duration::from_secs(60),
        }
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
    fn powerstream_tokens_have_a_public_prefix_and_a_secret_rest() {
        let issued = issue_powerstream_token();
        assert_eq!(issued.prefix.len(), "sl_ps_".len() + 8);
        assert_eq!(displayable_prefix(&issued.prefix), issued.prefix);
        let secret = issued
            .token
            .strip_prefix(&format!("{}_", issued.prefix))
            .unwrap();
        assert_eq!(URL_SAFE_NO_PAD.decode(secret).unwrap().len(), 24);
        assert_ne!(issue_powerstream_token().prefix, issued.prefix);
        // Prefixes stored before public ids showed four secret characters.
        assert_eq!(displayable_prefix("sl_ps_AbCd"), "sl_ps_");
        assert_eq!(displayable_prefix("sl_ps_0123456Z"), "sl_ps_");
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
