//! What the bench sends and what it must get back: seeded synthetic rules and posts
//! (`sluice_synth`), and for every post whether the stream must deliver it, decided by the
//! same [`Matcher`] the server runs, over the same rules and the same bytes.
//!
//! Posts are generated before the timed run, into one NDJSON buffer, so that during the run
//! the ingest loop only slices it (no generation, no copies) and the bench's own CPU use
//! stays low.

use std::collections::HashMap;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use sluice_matcher::{Matcher, Scratch};
use sluice_synth::{PostGenerator, RuleGenerator};

/// When the generated rules match fewer than this share of the posts, [`SHARE_RULE`] is
/// added, so a small run still delivers enough posts to count losses meaningfully.
const MIN_MATCH_SHARE: f64 = 0.05;

/// The rule added when the generated ones match too little: about 6 % of the synthetic
/// posts (the English ones, sampled at 10 %).
pub const SHARE_RULE: &str = "lang:en sample:10";

/// The rules to install, valid and distinct, in the order they are sent.
pub struct Rules {
    /// Each rule's value and tag.
    pub rules: Vec<(String, String)>,
    /// The same rules, indexed.
    matcher: Matcher,
}

impl Rules {
    /// `count` realistic rules from `seed`, each tagged `bench-<n>`.
    pub fn generate(seed: u64, count: usize) -> anyhow::Result<Self> {
        let mut matcher = Matcher::new();
        let mut rules = Vec::with_capacity(count + 1);
        for (n, value) in RuleGenerator::new(seed).take(count).enumerate() {
            let rule = sluice_rules::parse(&value)
                .map_err(|e| anyhow::anyhow!("{}", e.powertrack_message().trim_end()))
                .with_context(|| format!("the generated rule {value:?} is invalid"))?;
            matcher.insert(n as u64, &rule);
            rules.push((value, format!("bench-{n}")));
        }
        Ok(Self { rules, matcher })
    }

    /// Adds one more rule.
    fn push(&mut self, value: &str, tag: &str) -> anyhow::Result<()> {
        let rule = sluice_rules::parse(value)
            .map_err(|e| anyhow::anyhow!("{}", e.powertrack_message().trim_end()))
            .with_context(|| format!("the rule {value:?} is invalid"))?;
        self.matcher.insert(self.rules.len() as u64, &rule);
        self.rules.push((value.to_owned(), tag.to_owned()));
        Ok(())
    }
}

/// The posts of a run and which of them the stream must deliver.
pub struct Posts {
    /// Every post, one per line, each ending in `\n`.
    body: Bytes,
    /// Where each line starts, plus the end of the buffer (`len() + 1` entries).
    offsets: Vec<usize>,
    /// Post id → index.
    index: HashMap<u64, u32>,
    /// Per post: must it be delivered?
    expected: Vec<bool>,
    /// How many posts must be delivered (to each connection).
    expected_count: usize,
}

impl Posts {
    /// Generates `count` posts from `seed`, timed as a stream of `rate` posts per second
    /// starting at `start_ms` (Unix milliseconds), and matches each against `rules`. When
    /// the rules match less than 5 % of them, [`SHARE_RULE`] is added to `rules` first
    /// (the caller sends `rules` to the server afterwards).
    pub fn generate(
        seed: u64,
        count: usize,
        rate: f64,
        start_ms: u64,
        rules: &mut Rules,
    ) -> anyhow::Result<Self> {
        if count > u32::MAX as usize {
            bail!("{count} posts are too many for one run");
        }
        let mut body = Vec::new();
        let mut offsets = Vec::with_capacity(count + 1);
        let mut index = HashMap::with_capacity(count);
        for (n, post) in PostGenerator::new(seed)
            .with_clock(start_ms, rate)
            .take(count)
            .enumerate()
        {
            offsets.push(body.len());
            let view = sluice_model::parse_post(post.as_bytes())
                .context("a generated post does not parse")?;
            let id = view.id().context("a generated post has no id")?;
            if index.insert(id, n as u32).is_some() {
                bail!("the post generator repeated the id {id}");
            }
            body.extend_from_slice(post.as_bytes());
            body.push(b'\n');
        }
        offsets.push(body.len());
        let mut posts = Self {
            body: Bytes::from(body),
            offsets,
            index,
            expected: Vec::new(),
            expected_count: 0,
        };
        posts.match_all(&rules.matcher);
        let has_share_rule = rules.rules.iter().any(|(value, _)| value == SHARE_RULE);
        if count > 0
            && !has_share_rule
            && (posts.expected_count as f64) < MIN_MATCH_SHARE * count as f64
        {
            rules.push(SHARE_RULE, "bench-share")?;
            posts.match_all(&rules.matcher);
        }
        Ok(posts)
    }

    fn match_all(&mut self, matcher: &Matcher) {
        let mut scratch = Scratch::default();
        let mut matched = Vec::new();
        self.expected = (0..self.len())
            .map(|n| {
                let line = self.line(n);
                let view = sluice_model::parse_post(line).expect("parsed when generated");
                matcher.match_post_with(&view, &mut scratch, &mut matched);
                !matched.is_empty()
            })
            .collect();
        self.expected_count = self.expected.iter().filter(|&&e| e).count();
    }

    /// The number of posts.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// Total size of the posts in bytes (NDJSON, line ends included).
    pub fn bytes(&self) -> usize {
        self.body.len()
    }

    /// Post `n`, without its line end.
    fn line(&self, n: usize) -> &[u8] {
        &self.body[self.offsets[n]..self.offsets[n + 1] - 1]
    }

    /// Posts `first..end` as one NDJSON request body, without copying.
    pub fn batch(&self, first: usize, end: usize) -> Bytes {
        self.body.slice(self.offsets[first]..self.offsets[end])
    }

    /// The end of the longest run of posts from `first` (at least one, at most up to `end`)
    /// that fits in `max_bytes`.
    pub fn batch_end(&self, first: usize, end: usize, max_bytes: usize) -> usize {
        let limit = self.offsets[first].saturating_add(max_bytes);
        // Posts `first..n` fit when `offsets[n] <= limit`.
        let fitting = self.offsets[first + 1..=end].partition_point(|&o| o <= limit);
        (first + fitting).max(first + 1).min(end)
    }

    /// The index of the post with this id.
    pub fn index_of(&self, id: u64) -> Option<u32> {
        self.index.get(&id).copied()
    }

    /// Whether post `n` must be delivered.
    pub fn is_expected(&self, n: u32) -> bool {
        self.expected[n as usize]
    }

    /// How many posts every connection must receive.
    pub fn expected_count(&self) -> usize {
        self.expected_count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_posts_are_those_the_rules_match() {
        let mut rules = Rules::generate(3, 200).expect("valid rules");
        let posts = Posts::generate(3, 300, 100.0, 1_700_000_000_000, &mut rules).expect("posts");
        assert_eq!(posts.len(), 300);
        // Check against a fresh matcher over the final rules, one post at a time.
        let mut matcher = Matcher::new();
        for (n, (value, _)) in rules.rules.iter().enumerate() {
            matcher.insert(n as u64, &sluice_rules::parse(value).expect("valid"));
        }
        let mut matched = Vec::new();
        let mut count = 0;
        for n in 0..posts.len() {
            let view = sluice_model::parse_post(posts.line(n)).expect("post");
            matcher.match_post(&view, &mut matched);
            assert_eq!(posts.is_expected(n as u32), !matched.is_empty(), "post {n}");
            count += usize::from(!matched.is_empty());
            let id = view.id().expect("id");
            assert_eq!(posts.index_of(id), Some(n as u32));
        }
        assert_eq!(posts.expected_count(), count);
        assert!(count as f64 >= MIN_MATCH_SHARE * 300.0 * 0.5, "{count}");
    }

    #[test]
    fn too_few_matches_add_the_share_rule() {
        let mut rules = Rules::generate(1, 0).expect("no rules");
        let posts = Posts::generate(1, 500, 100.0, 1_700_000_000_000, &mut rules).expect("posts");
        assert_eq!(
            rules.rules,
            [(SHARE_RULE.to_owned(), "bench-share".to_owned())]
        );
        assert!(posts.expected_count() > 0);
    }

    #[test]
    fn batches_are_whole_lines() {
        let mut rules = Rules::generate(1, 10).expect("rules");
        let posts = Posts::generate(1, 5, 100.0, 1_700_000_000_000, &mut rules).expect("posts");
        let all = posts.batch(0, 5);
        assert_eq!(all.len(), posts.bytes());
        let two = posts.batch(1, 3);
        assert_eq!(two.iter().filter(|&&b| b == b'\n').count(), 2);
        assert!(two.starts_with(b"{") && two.ends_with(b"}\n"));
        assert!(posts.batch(2, 2).is_empty());
        let one = posts.batch(0, 1).len();
        let two = posts.batch(0, 2).len();
        assert_eq!(posts.batch_end(0, 5, two), 2);
        assert_eq!(posts.batch_end(0, 5, two - 1), 1);
        assert_eq!(posts.batch_end(0, 5, 1), 1, "a long post goes alone");
        assert_eq!(posts.batch_end(0, 5, usize::MAX), 5);
        assert_eq!(posts.batch_end(1, 3, one * 100), 3);
    }
}
