//! Credentials of v2 apps (X's app-only auth, docs/compatibility.md §7.4).
//!
//! An app has a public consumer key, a consumer secret (32 random bytes) and a bearer
//! token. The bearer token is derived from the secret (SHA-256 of a fixed label and the
//! secret), so `POST /oauth2/token` can hand it out again to whoever proves the secret
//! while the store keeps only SHA-256 hashes of both. The secret is random and long, so a
//! plain SHA-256 is safe to store and cheap to check (argon2 is for passwords people pick).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::token_hash;

/// A new app's credentials, shown once.
#[derive(Debug, Clone)]
pub struct IssuedApp {
    /// The app id: a random decimal number, as X's app ids are.
    pub app_id: String,
    /// The consumer key (public).
    pub consumer_key: String,
    /// The consumer secret (32 random bytes, URL-safe base64).
    pub consumer_secret: String,
    /// The bearer token, derived from the secret by [`bearer_for_secret`].
    pub bearer_token: String,
}

fn random_text(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(buf)
}

/// New random credentials for an app.
pub fn issue_app() -> IssuedApp {
    let app_id = (rand::rng().next_u64() >> 1).max(1).to_string();
    let consumer_secret = random_text(32);
    IssuedApp {
        app_id,
        consumer_key: random_text(18),
        bearer_token: bearer_for_secret(&consumer_secret),
        consumer_secret,
    }
}

impl IssuedApp {
    /// The app as the store keeps it: its secrets only as hashes, the product's limits.
    pub fn to_stored(&self, account: &str, name: &str, created_ms: i64) -> sluice_store::StoredApp {
        sluice_store::StoredApp {
            id: self.app_id.clone(),
            account: account.to_owned(),
            name: name.to_owned(),
            consumer_key: self.consumer_key.clone(),
            consumer_secret_hash: token_hash(&self.consumer_secret).to_vec(),
            bearer_hash: token_hash(&self.bearer_token).to_vec(),
            created_ms,
            limits: sluice_store::AppLimits::default(),
        }
    }
}

/// The bearer token of the app whose consumer secret this is.
pub fn bearer_for_secret(consumer_secret: &str) -> String {
    let digest = Sha256::new()
        .chain_update(b"sluice-bearer:")
        .chain_update(consumer_secret.as_bytes())
        .finalize();
    URL_SAFE_NO_PAD.encode(digest)
}

/// Whether `secret` is the consumer secret whose stored hash is `hash` (constant-time).
pub fn secret_matches(secret: &str, hash: &[u8]) -> bool {
    token_hash(secret).ct_eq(hash).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bearer_token_follows_from_the_secret_only() {
        let app = issue_app();
        assert_eq!(app.bearer_token, bearer_for_secret(&app.consumer_secret));
        assert_ne!(app.bearer_token, app.consumer_secret);
        let other = issue_app();
        assert_ne!(other.bearer_token, app.bearer_token);
        assert_ne!(other.consumer_key, app.consumer_key);
        assert!(!app.consumer_key.contains(':'));
    }

    #[test]
    fn secrets_are_checked_against_their_hash() {
        let app = issue_app();
        let hash = token_hash(&app.consumer_secret);
        assert!(secret_matches(&app.consumer_secret, &hash));
        assert!(!secret_matches("wrong", &hash));
        assert!(!secret_matches(&app.consumer_secret, &hash[..31]));
    }
}
