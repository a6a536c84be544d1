//! The posts of the connections bench: a few small native posts that the one rule of every
//! bench stream ([`RULE`]) matches, each with a fresh Snowflake id (ids repeat across runs
//! only if two runs start in the same millisecond).

use std::time::{SystemTime, UNIX_EPOCH};

use sluice_synth::snowflake::snowflake;

/// The rule every bench stream gets: a keyword in every bench post.
pub const RULE: &str = "sluicebench";
/// The Snowflake worker of the bench's post ids.
const WORKER: u16 = 1_000;
/// Posts a run may deliver: a Snowflake sequence per post within one millisecond.
pub const MAX_POSTS: usize = 1_000;

/// Fresh ids for `count` posts (at most [`MAX_POSTS`]).
pub fn ids(count: usize) -> Vec<u64> {
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    (0..count.min(MAX_POSTS))
        .map(|k| snowflake(now_ms, WORKER, k as u16))
        .collect()
}

/// Post `k` of the run, with `id`, as one NDJSON line: about 1 KB, the size of a short
/// post with its user object.
pub fn post(id: u64, k: usize) -> String {
    let words = "the quick brown fox jumps over the lazy dog ".repeat(16);
    format!(
        "{{\"created_at\":\"Wed Dec 02 16:00:00 +0000 2026\",\"id\":{id},\"id_str\":\"{id}\",\
         \"text\":\"{RULE} post {} of the connections bench\",\"lang\":\"en\",\
         \"user\":{{\"id\":1000,\"id_str\":\"1000\",\"screen_name\":\"sluicebench\",\
         \"description\":\"{words}\"}}}}\n",
        k + 1
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posts_are_valid_ingest_lines_with_distinct_ids() {
        let ids = ids(20);
        assert_eq!(ids.len(), 20);
        let mut sorted = ids.clone();
        sorted.dedup();
        assert_eq!(sorted.len(), 20);
        let line = post(ids[3], 3);
        let checked = sluice_model::check_line(line.trim_end().as_bytes()).expect("valid");
        assert_eq!(checked.id, Some(ids[3]));
        assert!(line.contains(RULE));
    }
}
