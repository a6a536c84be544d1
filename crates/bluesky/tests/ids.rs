//! The id scheme at scale: a million keys from many authors, many of them in the same
//! millisecond, get distinct ids that sort by creation time; and where two posts share a
//! microsecond, their ids collide about once in 4,096 (the odds docs/bluesky.md gives).

use std::collections::HashSet;

use sluice_bluesky::ids::unix_ms_of;
use sluice_bluesky::post_id;
use sluice_bluesky::tid::Tid;

/// splitmix64: a seeded stream of numbers, so every run checks the same keys.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A did:plc-shaped DID (24 base32 characters).
fn did(rng: &mut Rng) -> String {
    const BASE32: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let tail: String = (0..24)
        .map(|_| BASE32[rng.below(32) as usize] as char)
        .collect();
    format!("did:plc:{tail}")
}

/// 2024-11-20T10:26:57Z in microseconds.
const START_US: u64 = 1_732_098_417_000_000;

struct Key {
    did: String,
    rkey: String,
    micros: u64,
}

/// A million keys from 50,000 authors:
/// - 500,000 at random microseconds over a day (today's network is far sparser);
/// - 500 bursts of 1,000 posts within one millisecond each (distinct microseconds, as
///   from many servers at once), from authors drawn at random.
fn million_keys() -> Vec<Key> {
    let mut rng = Rng(16);
    let authors: Vec<String> = (0..50_000).map(|_| did(&mut rng)).collect();
    let mut keys = Vec::with_capacity(1_000_000);
    let mut push = |rng: &mut Rng, micros: u64| {
        let did = authors[rng.below(authors.len() as u64) as usize].clone();
        let rkey = Tid::format(micros, rng.below(1024) as u16);
        keys.push(Key { did, rkey, micros });
    };
    for _ in 0..500_000 {
        let micros = START_US + rng.below(86_400_000_000);
        push(&mut rng, micros);
    }
    for burst in 0..500 {
        let ms_start = START_US + burst * 7_919_000;
        for micro in 0..1000 {
            push(&mut rng, ms_start + micro);
        }
    }
    keys
}

#[test]
fn a_million_keys_have_distinct_ids_in_time_order() {
    let mut keys = million_keys();
    assert_eq!(keys.len(), 1_000_000);
    let ids: Vec<u64> = keys.iter().map(|k| post_id(&k.did, &k.rkey)).collect();
    let distinct: HashSet<u64> = ids.iter().copied().collect();
    // Same (did, key) twice would be the same post: count those as one.
    let distinct_keys: HashSet<(&str, &str)> = keys
        .iter()
        .map(|k| (k.did.as_str(), k.rkey.as_str()))
        .collect();
    assert_eq!(distinct.len(), distinct_keys.len(), "ids collided");
    assert!(
        distinct_keys.len() > 999_990,
        "the keys themselves are distinct"
    );

    // Each id carries its key's millisecond, and ids order as their keys' times do.
    let mut order: Vec<(u64, u64)> = keys
        .iter()
        .zip(&ids)
        .map(|(k, &id)| {
            assert_eq!(unix_ms_of(id), k.micros / 1000);
            (k.micros, id)
        })
        .collect();
    order.sort_unstable();
    for pair in order.windows(2) {
        let ((t0, id0), (t1, id1)) = (pair[0], pair[1]);
        if t0 < t1 {
            assert!(id0 < id1, "{t0} < {t1} but id {id0} >= {id1}");
        }
    }
    keys.clear();
}

#[test]
fn posts_sharing_a_microsecond_collide_about_once_in_4096() {
    // 400,000 pairs of posts by different authors keyed in the same microsecond: the
    // 12 hash bits are all that tell them apart, so about 400,000 / 4,096 ≈ 98 pairs
    // collide. Seeded, so the count is fixed; the bounds are the binomial's ±4.5 σ.
    let mut rng = Rng(7);
    let mut collisions = 0;
    for pair in 0..400_000u64 {
        let micros = START_US + pair * 1_000;
        let (a, b) = (did(&mut rng), did(&mut rng));
        let ka = Tid::format(micros, rng.below(1024) as u16);
        let kb = Tid::format(micros, rng.below(1024) as u16);
        if post_id(&a, &ka) == post_id(&b, &kb) {
            collisions += 1;
        }
    }
    assert!((54..=142).contains(&collisions), "{collisions} collisions");
}
