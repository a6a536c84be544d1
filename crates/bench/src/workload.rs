//! What the bench sends and what it must get back: seeded synthetic rules and posts
//! (`sluice_synth`), and for every post whether the stream must deliver it, decided by the
//! same [`Matcher`] the server runs, over the same rules and the same bytes.
//!
//! The volume streams have no rules: every post is expected, on the one partition
//! connection its id selects ([`Share`]).
//!
//! Posts are generated before the timed run, into one NDJSON buffer, so that during the run
//! the ingest loop only slices it (no generation, no copies) and the bench's own CPU use
//! stays low.

use std::collections::HashMap;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use sluice_matcher::{Matcher, Scratch};
use sluice_model::sampling;
use sluice_rules::Dialect;
use sluice_synth::{PostGenerator, RuleGenerator};

/// When the generated rules match fewer than this share of the posts, the dialect's
/// [`share_rule`] is added, so a small run still delivers enough posts to count losses
/// meaningfully.
const MIN_MATCH_SHARE: f64 = 0.05;

/// The PowerTrack rule added when the generated ones match too little: about 6 % of the
/// synthetic posts (the English ones, sampled at 10 %).
pub const SHARE_RULE: &str = "lang:en sample:10";

/// The Powerstream (and v2) rule added when the generated ones match too little (a `lang:`
/// cannot stand alone there): about 8 % of the synthetic posts.
pub const POWERSTREAM_SHARE_RULE: &str = "for";

/// Generated rules tried per rule wanted before giving up on a dialect that refuses most of
/// them.
const MAX_TRIES_PER_RULE: usize = 50;

/// The rule a dialect adds when the generated rules match too little.
pub fn share_rule(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::PowerTrack => SHARE_RULE,
        Dialect::Powerstream | Dialect::V2 => POWERSTREAM_SHARE_RULE,
    }
}

/// The rules to install, valid and distinct, in the order they are sent, split over one or
/// more streams: generated rule `i` goes to stream `i mod streams`, the share rule (when
/// added) to every stream.
pub struct Rules {
    /// Each rule's value and tag; the share rule, when added, is the last.
    pub rules: Vec<(String, String)>,
    /// How many of [`Rules::rules`] were generated (the rest is the share rule).
    generated: usize,
    /// The rule language of the API the rules go to.
    dialect: Dialect,
    /// Per stream, its rules, indexed.
    matchers: Vec<Matcher>,
}

impl Rules {
    /// `count` realistic rules from `seed` for `streams` streams (at least one), each tagged
    /// `bench-<n>`, all valid in `dialect`: generated rules that use an operator the
    /// dialect does not offer are skipped (Powerstream offers a subset of PowerTrack's).
    pub fn generate(
        seed: u64,
        count: usize,
        dialect: Dialect,
        streams: usize,
    ) -> anyhow::Result<Self> {
        let mut rules = Self {
            rules: Vec::with_capacity(count + 1),
            generated: 0,
            dialect,
            matchers: (0..streams.max(1)).map(|_| Matcher::new()).collect(),
        };
        let mut generated = RuleGenerator::new(seed);
        let mut tries = 0usize;
        while rules.rules.len() < count {
            tries += 1;
            if tries > count.saturating_mul(MAX_TRIES_PER_RULE) {
                bail!(
                    "the rule generator made only {} rules valid for {dialect:?} in {} tries",
                    rules.rules.len(),
                    tries - 1
                );
            }
            let value = generated.next_rule();
            match sluice_rules::parse_with(&value, dialect) {
                Ok(rule) => {
                    let n = rules.rules.len();
                    let stream = n % rules.matchers.len();
                    rules.matchers[stream].insert(n as u64, &rule);
                    rules.rules.push((value, format!("bench-{n}")));
                }
                Err(_) if dialect != Dialect::PowerTrack => {}
                Err(e) => {
                    bail!(
                        "the generated rule {value:?} is invalid: {}",
                        e.powertrack_message().trim_end()
                    )
                }
            }
        }
        rules.generated = rules.rules.len();
        Ok(rules)
    }

    /// Adds the dialect's share rule to every stream.
    fn add_share_rule(&mut self) -> anyhow::Result<()> {
        let value = share_rule(self.dialect);
        let rule = sluice_rules::parse_with(value, self.dialect)
            .map_err(|e| anyhow::anyhow!("{}", e.powertrack_message().trim_end()))
            .with_context(|| format!("the rule {value:?} is invalid"))?;
        let id = self.rules.len() as u64;
        for matcher in &mut self.matchers {
            matcher.insert(id, &rule);
        }
        self.rules
            .push((value.to_owned(), "bench-share".to_owned()));
        Ok(())
    }

    /// Whether the dialect's share rule was added.
    pub fn has_share_rule(&self) -> bool {
        self.rules.len() > self.generated
    }

    /// The number of streams the rules are split over.
    pub fn streams(&self) -> usize {
        self.matchers.len()
    }

    /// The rules of stream `stream` (0-based), in the order they are sent: generated rule
    /// `i` when `i mod streams == stream`, then the share rule if it was added.
    pub fn of_stream(&self, stream: usize) -> Vec<(String, String)> {
        let streams = self.streams();
        self.rules
            .iter()
            .enumerate()
            .filter(|&(i, _)| i >= self.generated || i % streams == stream)
            .map(|(_, rule)| rule.clone())
            .collect()
    }
}

/// Which posts the stream must deliver.
pub enum Expect<'a> {
    /// Those the rules match (PowerTrack, Powerstream); the share rule may be added.
    Matching(&'a mut Rules),
    /// Every post (the Firehose).
    Every,
}

/// Which of the expected posts one connection must receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Share {
    /// Those the rules of stream `n` (0-based) match (every connection of a rules stream
    /// gets every post its stream's rules match).
    Stream(u32),
    /// Those of one partition (1-based) of a volume stream with `of` partitions.
    Partition {
        /// The partition the connection reads.
        number: u32,
        /// The stream's number of partitions.
        of: u32,
    },
}

/// The posts of a run and which of them the stream must deliver.
pub struct Posts {
    /// Every post, one per line, each ending in `\n`.
    body: Bytes,
    /// Where each line starts, plus the end of the buffer (`len() + 1` entries).
    offsets: Vec<usize>,
    /// Post id → index.
    index: HashMap<u64, u32>,
    /// Index → post id.
    ids: Vec<u64>,
    /// Per post: must it be delivered (does a rule of any stream match it)?
    expected: Vec<bool>,
    /// How many posts must be delivered (by at least one stream).
    expected_count: usize,
    /// Per rules stream, per post: do the stream's rules match it? (Empty for
    /// [`Expect::Every`].)
    per_stream: Vec<Vec<bool>>,
    /// Per rules stream, how many posts its rules match.
    per_stream_count: Vec<usize>,
}

impl Posts {
    /// Generates `count` posts from `seed`, timed as a stream of `rate` posts per second
    /// starting at `start_ms` (Unix milliseconds), and decides which are expected, per
    /// stream. With [`Expect::Matching`], when the rules of all streams together match less
    /// than 5 % of the posts the dialect's [`share_rule`] is added to every stream first
    /// (the caller sends the rules to the server afterwards).
    pub fn generate(
        seed: u64,
        count: usize,
        rate: f64,
        start_ms: u64,
        expect: Expect<'_>,
    ) -> anyhow::Result<Self> {
        if count > u32::MAX as usize {
            bail!("{count} posts are too many for one run");
        }
        let mut body = Vec::new();
        let mut offsets = Vec::with_capacity(count + 1);
        let mut index = HashMap::with_capacity(count);
        let mut ids = Vec::with_capacity(count);
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
            ids.push(id);
            body.extend_from_slice(post.as_bytes());
            body.push(b'\n');
        }
        offsets.push(body.len());
        let mut posts = Self {
            body: Bytes::from(body),
            offsets,
            index,
            ids,
            expected: Vec::new(),
            expected_count: 0,
            per_stream: Vec::new(),
            per_stream_count: Vec::new(),
        };
        let rules = match expect {
            Expect::Every => {
                posts.expected = vec![true; count];
                posts.expected_count = count;
                return Ok(posts);
            }
            Expect::Matching(rules) => rules,
        };
        posts.match_all(&rules.matchers);
        if count > 0
            && !rules.has_share_rule()
            && (posts.expected_count as f64) < MIN_MATCH_SHARE * count as f64
        {
            rules.add_share_rule()?;
            posts.match_all(&rules.matchers);
        }
        Ok(posts)
    }

    /// Decides, for every stream's matcher, which posts it matches.
    fn match_all(&mut self, matchers: &[Matcher]) {
        let mut scratch = Scratch::default();
        let mut matched = Vec::new();
        let mut per_stream = vec![Vec::with_capacity(self.len()); matchers.len()];
        for n in 0..self.len() {
            let view = sluice_model::parse_post(self.line(n)).expect("parsed when generated");
            for (matcher, expected) in matchers.iter().zip(&mut per_stream) {
                matcher.match_post_with(&view, &mut scratch, &mut matched);
                expected.push(!matched.is_empty());
            }
        }
        self.expected = (0..self.len())
            .map(|n| per_stream.iter().any(|stream| stream[n]))
            .collect();
        self.expected_count = self.expected.iter().filter(|&&e| e).count();
        self.per_stream_count = per_stream
            .iter()
            .map(|stream| stream.iter().filter(|&&e| e).count())
            .collect();
        self.per_stream = per_stream;
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

    /// Whether post `n` must be delivered (on some connection).
    pub fn is_expected(&self, n: u32) -> bool {
        self.expected[n as usize]
    }

    /// How many posts are expected on some connection (those a rule of any stream matches,
    /// or every post of a volume stream).
    pub fn expected_count(&self) -> usize {
        self.expected_count
    }

    /// Whether post `n` must arrive on a connection that gets `share`.
    pub fn is_expected_on(&self, n: u32, share: Share) -> bool {
        match share {
            Share::Stream(stream) => self
                .per_stream
                .get(stream as usize)
                .is_some_and(|posts| posts[n as usize]),
            Share::Partition { number, of } => {
                self.is_expected(n) && sampling::partition(self.ids[n as usize], of) == number
            }
        }
    }

    /// How many posts a connection that gets `share` must receive.
    pub fn expected_on(&self, share: Share) -> usize {
        match share {
            Share::Stream(stream) => self
                .per_stream_count
                .get(stream as usize)
                .copied()
                .unwrap_or(0),
            Share::Partition { .. } => (0..self.len() as u32)
                .filter(|&n| self.is_expected_on(n, share))
                .count(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_posts_are_those_the_rules_match() {
        let mut rules = Rules::generate(3, 200, Dialect::PowerTrack, 1).expect("valid rules");
        let posts = Posts::generate(
            3,
            300,
            100.0,
            1_700_000_000_000,
            Expect::Matching(&mut rules),
        )
        .expect("posts");
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
        let mut rules = Rules::generate(1, 0, Dialect::PowerTrack, 1).expect("no rules");
        let posts = Posts::generate(
            1,
            500,
            100.0,
            1_700_000_000_000,
            Expect::Matching(&mut rules),
        )
        .expect("posts");
        assert_eq!(
            rules.rules,
            [(SHARE_RULE.to_owned(), "bench-share".to_owned())]
        );
        assert!(posts.expected_count() > 0);
    }

    #[test]
    fn each_stream_expects_what_its_own_rules_match() {
        let mut rules = Rules::generate(7, 600, Dialect::PowerTrack, 3).expect("rules");
        let posts = Posts::generate(
            7,
            400,
            100.0,
            1_700_000_000_000,
            Expect::Matching(&mut rules),
        )
        .expect("posts");
        assert_eq!(rules.streams(), 3);
        let mut union = vec![false; posts.len()];
        for stream in 0..3 {
            let own = rules.of_stream(stream);
            assert_eq!(own.len(), 200 + usize::from(rules.has_share_rule()));
            let mut matcher = Matcher::new();
            for (n, (value, tag)) in own.iter().enumerate() {
                if tag != "bench-share" {
                    assert_eq!(tag, &format!("bench-{}", 3 * n + stream));
                }
                matcher.insert(n as u64, &sluice_rules::parse(value).expect("valid"));
            }
            let mut matched = Vec::new();
            let mut count = 0;
            for (n, any) in union.iter_mut().enumerate() {
                let view = sluice_model::parse_post(posts.line(n)).expect("post");
                matcher.match_post(&view, &mut matched);
                let share = Share::Stream(stream as u32);
                assert_eq!(posts.is_expected_on(n as u32, share), !matched.is_empty());
                count += usize::from(!matched.is_empty());
                *any |= !matched.is_empty();
            }
            assert_eq!(posts.expected_on(Share::Stream(stream as u32)), count);
            assert!(count > 0, "stream {stream} expects nothing");
        }
        let union_count = union.iter().filter(|&&u| u).count();
        assert_eq!(posts.expected_count(), union_count);
        assert!(
            posts.expected_on(Share::Stream(0)) < union_count,
            "one stream alone matches less than all together"
        );
        assert_eq!(posts.expected_on(Share::Stream(3)), 0, "no such stream");
    }

    #[test]
    fn the_share_rule_goes_to_every_stream() {
        let mut rules = Rules::generate(1, 0, Dialect::PowerTrack, 4).expect("no rules");
        let posts = Posts::generate(
            1,
            500,
            100.0,
            1_700_000_000_000,
            Expect::Matching(&mut rules),
        )
        .expect("posts");
        assert!(rules.has_share_rule());
        for stream in 0..4 {
            assert_eq!(
                rules.of_stream(stream),
                [(SHARE_RULE.to_owned(), "bench-share".to_owned())]
            );
            assert_eq!(
                posts.expected_on(Share::Stream(stream as u32)),
                posts.expected_count()
            );
        }
    }

    #[test]
    fn batches_are_whole_lines() {
        let mut rules = Rules::generate(1, 10, Dialect::PowerTrack, 1).expect("rules");
        let posts = Posts::generate(1, 5, 100.0, 1_700_000_000_000, Expect::Matching(&mut rules))
            .expect("posts");
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

    #[test]
    fn powerstream_rules_use_only_powerstream_operators() {
        let rules = Rules::generate(2, 300, Dialect::Powerstream, 1).expect("rules");
        assert_eq!(rules.rules.len(), 300);
        for (value, _) in &rules.rules {
            assert!(
                sluice_rules::parse_with(value, Dialect::Powerstream).is_ok(),
                "{value}"
            );
        }
        // The PowerTrack mix has operators Powerstream refuses, so some were skipped.
        let powertrack = Rules::generate(2, 300, Dialect::PowerTrack, 1).expect("rules");
        assert_ne!(rules.rules, powertrack.rules);
        let mut few = Rules::generate(2, 0, Dialect::Powerstream, 1).expect("no rules");
        let posts = Posts::generate(2, 500, 100.0, 1_700_000_000_000, Expect::Matching(&mut few))
            .expect("posts");
        assert!(few.has_share_rule());
        assert_eq!(few.rules[0].0, POWERSTREAM_SHARE_RULE);
        assert!(posts.expected_count() > 0);
    }

    #[test]
    fn every_post_is_expected_on_exactly_one_partition() {
        let posts =
            Posts::generate(4, 400, 100.0, 1_700_000_000_000, Expect::Every).expect("posts");
        assert_eq!(posts.expected_count(), 400);
        assert_eq!(posts.expected_on(Share::Stream(0)), 0, "no rules stream");
        let shares: Vec<Share> = (1..=20)
            .map(|number| Share::Partition { number, of: 20 })
            .collect();
        let total: usize = shares.iter().map(|&s| posts.expected_on(s)).sum();
        assert_eq!(total, 400);
        for n in 0..400u32 {
            let on = shares
                .iter()
                .filter(|&&s| posts.is_expected_on(n, s))
                .count();
            assert_eq!(on, 1, "post {n}");
        }
        assert!(shares.iter().all(|&s| posts.expected_on(s) > 0));
    }
}
