//! The one deterministic function of a post id behind `sample:N`, Decahose membership and
//! the partition of a volume stream (docs/compatibility.md ("Decisions"), "Sampling").
//!
//! It depends on the id alone, so every connection, every node and every replay of the same
//! post makes the same choice, as X documents for `sample:` ("you will get the same data
//! sample in realtime as you would if you pulled the data historically").

/// A fixed 64-bit mixer (SplitMix64's finalizer): fast, stable across builds and platforms,
/// and it spreads sequential Snowflake ids evenly.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The post's sampling bucket, 0..100. `sample:N` keeps a post when `sample_bucket(id) < N`.
pub fn sample_bucket(post_id: u64) -> u8 {
    (mix(post_id) % 100) as u8
}

/// Whether the post belongs to the 10 % Decahose sample.
pub fn in_decahose(post_id: u64) -> bool {
    sample_bucket(post_id) < 10
}

/// Whether the post belongs to the v2 sample stream's 1 % (a subset of the Decahose's 10 %).
pub fn in_one_percent(post_id: u64) -> bool {
    sample_bucket(post_id) < 1
}

/// The 1-based partition of a volume stream with `partitions` partitions that carries the
/// post. Independent of the sampling bucket (a different mixing of the id), so each
/// partition of the Decahose is an even share of the sample.
pub fn partition(post_id: u64, partitions: u32) -> u32 {
    assert!(partitions > 0, "a stream has at least one partition");
    (mix(post_id ^ 0x5bd1_e995_9e37_79b9) % u64::from(partitions)) as u32 + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_even_and_stable() {
        let mut counts = [0u32; 100];
        let base = 1_600_000_000_000_000_000u64;
        for i in 0..100_000u64 {
            // Snowflake-like ids: a timestamp in the high bits, small sequence numbers.
            counts[sample_bucket(base + (i << 22) + (i % 7)) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
        assert_eq!(sample_bucket(20), sample_bucket(20));
    }

    #[test]
    fn partitions_cover_the_range_evenly_and_independently_of_sampling() {
        let mut counts = [0u32; 20];
        let mut sampled_per_partition = [0u32; 2];
        for i in 0..100_000u64 {
            let id = 1_700_000_000_000_000_000 + (i << 22);
            counts[(partition(id, 20) - 1) as usize] += 1;
            if in_decahose(id) {
                sampled_per_partition[(partition(id, 2) - 1) as usize] += 1;
            }
        }
        assert!(
            counts.iter().all(|&c| (4_500..5_500).contains(&c)),
            "{counts:?}"
        );
        let [a, b] = sampled_per_partition;
        assert!(a.abs_diff(b) < 600, "{a} vs {b}");
    }
}
