//! The 64-bit ids Bluesky posts and accounts get as X posts and users (docs/bluesky.md,
//! "Ids").
//!
//! A post id is derived from the post's author (DID) and record key alone, so the post,
//! its delete and every reply or quote naming its `at://` URI compute the same id without
//! any shared state. It is laid out like an X Snowflake, so it sorts by creation time and X
//! clients that read the time out of an id get the post's:
//!
//! ```text
//!  63  62 ............................ 22  21 ............ 12  11 ...... 0
//!  0 | ms since X's epoch (2010-11-04)    | µs within the ms  | hash (12)
//! ```
//!
//! The time is the record key's (a TID carries microseconds); the low 12 bits are a hash of
//! (DID, record key), so two posts get the same id only when they were keyed in the same
//! microsecond *and* their hashes agree (1 in 4,096).
//!
//! A user id is 63 bits of the same hash of the DID alone.

use sha2::{Digest, Sha256};
use sluice_model::snowflake::TWITTER_EPOCH_MS;

use crate::tid::Tid;

/// Bits below the millisecond timestamp.
const TIMESTAMP_SHIFT: u32 = 22;
/// Bits of the hash under the microseconds, in ids from TIDs.
const HASH_BITS: u32 = 12;
/// The largest millisecond count the 41-bit field holds.
const MAX_MS: u64 = (1 << 41) - 1;
/// The largest id: the sign bit stays clear, as in X's ids (clients read them as `i64`).
const MAX_63: u64 = (1 << 63) - 1;

/// The id of the post `rkey` in the repository `did`.
///
/// Record keys of posts are TIDs; the id then carries the TID's time (see the module).
/// A key that is not a TID has no time: its id's time part is zero (X's epoch) and the
/// whole low 22 bits are the hash. The converter gives such posts their `createdAt` time
/// instead ([`post_id_at`]) and finds them again by URI while it remembers them.
pub fn post_id(did: &str, rkey: &str) -> u64 {
    let hash = pair_hash(did, rkey);
    match Tid::parse(rkey) {
        Some(tid) => {
            let ms = tid.micros / 1000;
            let micros_in_ms = tid.micros % 1000;
            (epoch_ms(ms) << TIMESTAMP_SHIFT)
                | (micros_in_ms << HASH_BITS)
                | (hash & ((1 << HASH_BITS) - 1))
        }
        None => hash & ((1 << TIMESTAMP_SHIFT) - 1),
    }
}

/// The id of a post whose record key is not a TID, at `unix_ms` (its `createdAt`): the
/// time in the top bits, the (DID, key) hash in the low 22.
pub fn post_id_at(did: &str, rkey: &str, unix_ms: u64) -> u64 {
    (epoch_ms(unix_ms) << TIMESTAMP_SHIFT) | (pair_hash(did, rkey) & ((1 << TIMESTAMP_SHIFT) - 1))
}

/// The id of the account `did`: 63 bits of its SHA-256 (never 0).
pub fn user_id(did: &str) -> u64 {
    let id = hash(&[did.as_bytes()]) & MAX_63;
    id.max(1)
}

/// An id for a media item (`cid`, its blob) of the post `post_id`: the post's time bits,
/// and the hash of (DID, cid) below them, so media ids sort with their posts as X's do.
pub fn media_id(post_id: u64, did: &str, cid: &str) -> u64 {
    (post_id & !((1 << TIMESTAMP_SHIFT) - 1)) | (pair_hash(did, cid) & ((1 << TIMESTAMP_SHIFT) - 1))
}

/// The Unix time in milliseconds an id carries (for tests and tools): X's reading.
pub fn unix_ms_of(id: u64) -> u64 {
    (id >> TIMESTAMP_SHIFT) + TWITTER_EPOCH_MS
}

/// Milliseconds since X's epoch, clamped to the 41-bit field (a key before 2010 reads as
/// the epoch, one past 2080 as the field's end).
fn epoch_ms(unix_ms: u64) -> u64 {
    unix_ms.saturating_sub(TWITTER_EPOCH_MS).min(MAX_MS)
}

/// The hash of two strings, kept apart by a zero byte (neither a DID nor a key holds one:
/// so ("ab", "c") and ("a", "bc") differ).
fn pair_hash(a: &str, b: &str) -> u64 {
    hash(&[a.as_bytes(), &[0], b.as_bytes()])
}

/// The first 8 bytes of SHA-256 over `parts`. SHA-256 because the ids must never change
/// between builds or platforms (std's hasher promises neither) and be spread evenly
/// whatever the input; it costs well under a microsecond per post.
fn hash(parts: &[&[u8]]) -> u64 {
    let mut sha = Sha256::new();
    for part in parts {
        sha.update(part);
    }
    let digest = sha.finalize();
    u64::from_be_bytes(digest[..8].try_into().expect("SHA-256 has 32 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tid_keyed_post_id_carries_the_key_s_time() {
        let rkey = Tid::format(1_732_098_417_590_112, 17);
        let id = post_id("did:plc:abc", &rkey);
        assert_eq!(unix_ms_of(id), 1_732_098_417_590);
        assert_eq!((id >> HASH_BITS) & 0x3FF, 112, "the microseconds");
        assert!(id <= MAX_63);
        // The same inputs, the same id; another author, another id.
        assert_eq!(id, post_id("did:plc:abc", &rkey));
        assert_ne!(id, post_id("did:plc:abd", &rkey));
    }

    #[test]
    fn other_keys_have_no_time_unless_given_one() {
        let id = post_id("did:plc:abc", "self");
        assert!(id < 1 << TIMESTAMP_SHIFT);
        let at = post_id_at("did:plc:abc", "self", 1_732_098_417_590);
        assert_eq!(unix_ms_of(at), 1_732_098_417_590);
        assert_eq!(at & ((1 << TIMESTAMP_SHIFT) - 1), id, "the same hash below");
    }

    #[test]
    fn times_outside_the_field_are_clamped() {
        assert_eq!(
            post_id("did:plc:abc", &Tid::format(0, 0)) >> TIMESTAMP_SHIFT,
            0
        );
        let late = post_id("did:plc:abc", &Tid::format((1 << 53) - 1, 0));
        assert_eq!(late >> TIMESTAMP_SHIFT, MAX_MS);
        assert!(late <= MAX_63);
    }

    #[test]
    fn user_ids_are_63_bit_and_stable() {
        let id = user_id("did:plc:z72i7hdynmk6r22z27h6tvur");
        assert!(id > 0 && id <= MAX_63);
        assert_eq!(id, user_id("did:plc:z72i7hdynmk6r22z27h6tvur"));
        assert_ne!(id, user_id("did:plc:z72i7hdynmk6r22z27h6tvus"));
    }

    #[test]
    fn the_hash_separates_its_two_parts() {
        assert_ne!(pair_hash("ab", "c"), pair_hash("a", "bc"));
    }

    #[test]
    fn media_ids_share_their_post_s_time() {
        let post = post_id("did:plc:abc", &Tid::format(1_732_098_417_590_112, 1));
        let media = media_id(post, "did:plc:abc", "bafkreib");
        assert_eq!(unix_ms_of(media), unix_ms_of(post));
        assert_ne!(media, post);
    }
}
