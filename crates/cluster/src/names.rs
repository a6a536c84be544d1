//! Names in NATS: subject tokens and KV keys built from sluice's names.
//!
//! Account names, usernames and labels may contain `.`, which separates subject tokens and
//! KV key tokens, and a datacenter (`?datacenter=` on ingest) may be anything. Every
//! component is escaped so that it is one token of `[A-Za-z0-9_-]` and `=XX` escapes,
//! which keeps keys valid (`[-/_=.A-Za-z0-9]`) and unambiguous.

use sha2::{Digest, Sha256};
use sluice_server::cluster::StreamKey;

/// The JetStream stream holding every accepted post.
pub const POSTS_STREAM: &str = "SLUICE_POSTS";
/// Subjects of [`POSTS_STREAM`]: `sluice.posts.<datacenter>`.
pub const POSTS_SUBJECTS: &str = "sluice.posts.>";
/// The KV bucket of the shared state (accounts, users, streams, rules, tokens).
pub const STATE_BUCKET: &str = "sluice_state";
/// The KV bucket of Snowflake worker id leases.
pub const WORKERS_BUCKET: &str = "sluice_workers";
/// The KV bucket of the running nodes' announcements (the list of members).
pub const MEMBERS_BUCKET: &str = "sluice_members";
/// The KV bucket of post source leases: which node consumes each source (entries expire
/// when not renewed).
pub const SOURCE_LEASES_BUCKET: &str = "sluice_source_leases";
/// The KV bucket of post source cursors, kept across nodes.
pub const SOURCE_CURSORS_BUCKET: &str = "sluice_source_cursors";
/// Header carrying the post's origin datacenter, unescaped.
pub const DATACENTER_HEADER: &str = "Sluice-Datacenter";

/// One subject or key token for `name`.
pub fn token(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("={b:02X}"));
        }
    }
    if out.is_empty() {
        out.push('=');
    }
    out
}

/// The subject posts from `datacenter` are published on.
pub fn post_subject(datacenter: &str) -> String {
    format!("sluice.posts.{}", token(datacenter))
}

/// The subject compliance events from `datacenter` are published on: under the posts
/// subject, so the posts stream keeps them in order with the posts, and apart from it, so
/// a starting node can read the events alone ([`COMPLIANCE_SUBJECTS`]).
pub fn compliance_subject(datacenter: &str) -> String {
    format!("{}.compliance", post_subject(datacenter))
}

/// Every datacenter's compliance events in the posts stream.
pub const COMPLIANCE_SUBJECTS: &str = "sluice.posts.*.compliance";

/// KV key of an account.
pub fn account_key(account: &str) -> String {
    format!("acct.{}", token(account))
}

/// KV key of a user.
pub fn user_key(account: &str, username: &str) -> String {
    format!("user.{}.{}", token(account), token(username))
}

fn stream_tokens(stream: &StreamKey) -> String {
    format!(
        "{}.{}.{}",
        token(&stream.account),
        token(&stream.product),
        token(&stream.label)
    )
}

/// KV key of a stream.
pub fn stream_key(stream: &StreamKey) -> String {
    format!("stream.{}", stream_tokens(stream))
}

/// Prefix of the KV keys of a stream's rules.
pub fn rule_prefix(stream: &StreamKey) -> String {
    format!("rule.{}.", stream_tokens(stream))
}

/// KV key of the rule with `value` on a stream: one key per value, so that a
/// create-if-absent makes the value unique cluster-wide.
pub fn rule_key(stream: &StreamKey, value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    let mut key = rule_prefix(stream);
    for b in digest {
        key.push_str(&format!("{b:02x}"));
    }
    key
}

/// Prefix of the KV keys holding each stream's cluster-wide rule count.
pub const COUNT_PREFIX: &str = "count.";

/// KV key of a stream's cluster-wide rule count (see [`crate::rule_cap`]); not a rule key
/// (those start with `rule.`), so listing a stream's rules never meets it.
pub fn count_key(stream: &StreamKey) -> String {
    format!("{COUNT_PREFIX}{}", stream_tokens(stream))
}

/// KV key of a token.
pub fn token_key(hash_hex: &str) -> String {
    format!("token.{}", token(hash_hex))
}

/// KV key of a v2 app.
pub fn app_key(app_id: &str) -> String {
    format!("app.{}", token(app_id))
}

/// KV key of a v2 app's limits (apart from the app's own key, which holds its creation).
pub fn app_limits_key(app_id: &str) -> String {
    format!("app-limits.{}", token(app_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_names_stay_one_token_and_do_not_collide() {
        assert_eq!(token("a.b"), "a=2Eb");
        assert_ne!(user_key("a.b", "c"), user_key("a", "b.c"));
        assert_eq!(post_subject("us east"), "sluice.posts.us=20east");
        assert_eq!(token(""), "=");
    }

    #[test]
    fn rule_keys_depend_on_stream_and_value_only() {
        let s = StreamKey {
            account: "acme".into(),
            product: "powertrack".into(),
            label: "prod".into(),
        };
        let k = rule_key(&s, "cat has:media");
        assert!(k.starts_with(&rule_prefix(&s)));
        assert!(!count_key(&s).starts_with("rule."));
        assert!(count_key(&s).starts_with(COUNT_PREFIX));
        assert_eq!(k, rule_key(&s, "cat has:media"));
        assert_ne!(k, rule_key(&s, "cat  has:media"));
        assert!(
            k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-/_=.".contains(&b))
        );
    }
}
