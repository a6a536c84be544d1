//! [`RuleGenerator`]: a seeded stream of distinct, valid, realistic PowerTrack rules.
//!
//! Rules are selective, as real ones are (PowerTrack bills per delivered post, so nobody
//! tracks `life` on its own): a rule's *primary* terms — a lone keyword, the alternatives of
//! an OR, the first word of an AND — are names from the vocabulary's name pool (brands,
//! products, people) 95 % of the time, picked with a flat Zipf (0.3) so the long tail is
//! tracked too, and otherwise a topical word picked uniformly. *Secondary* terms — the
//! second word of an AND, negations, `bio:` words — are topical words of every language (no
//! function words, Zipf 0.8). Hashtags, cashtags, domains, users and places come from the
//! same pools the posts use. With this mix a post matches a handful of rules at 100k rules.
//!
//! ## The mix (share of rules, by shape)
//! | share | shape | example |
//! |---|---|---|
//! | 20 % | one keyword | `guitar` |
//! | 12 % | two keywords (AND) | `guitar lessons` |
//! | 6 % | phrase | `"climate change"` |
//! | 12 % | OR group, bare or in parentheses | `zentrix OR brosken OR #AI` |
//! | 10 % | OR group AND keyword, minus keyword | `(iphone OR ipad) apple -android` |
//! | 7 % | hashtag, sometimes with `lang:` or `-is:retweet` | `#WorldCup lang:es` |
//! | 3.5 % | mention | `@jamessmith` |
//! | 3.5 % | `from:` screen name or numeric id | `from:maria_lopez12` |
//! | 2.5 % | cashtag, alone or with `has:links` / a keyword | `$TSLA has:links` |
//! | 5 % | keyword `lang:` | `fútbol lang:es` |
//! | 2.5 % | keyword `has:links` / `has:media` / `has:images` | `launch has:media` |
//! | 4 % | keyword `-is:retweet` | `election -is:retweet` |
//! | 1 % | keyword `is:retweet` | `giveaway is:retweet` |
//! | 2 % | `contains:` a prefix (5+ letters) of a primary term | `contains:zentri` |
//! | 2 % | `url_contains:` a domain or a word of a link path | `url_contains:"nytimes.com"` |
//! | 1.5 % | `bio:` | `bio:developer rust` |
//! | 1.5 % | `place_country:` alone or with a keyword | `place_country:BR futebol` |
//! | 1 % | keyword `followers_count:` range | `crypto followers_count:1000..50000` |
//! | 1 % | `sample:` | `(cats OR dogs) sample:10` |
//! | 1 % | `point_radius:` around a city | `point_radius:[-73.9857 40.7484 10km]` |
//! | 1 % | emoji | `🔥 concert` |
//!
//! Shapes without a negation of their own get a trailing negated keyword 12 % of the time
//! and `-is:retweet` 4 % of the time. A rule that repeats an earlier one is drawn again;
//! after repeated collisions (small pools such as cashtags run out) the generator falls back
//! to three keywords, so the stream never runs dry.

use std::collections::HashSet;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;

use crate::users::{screen_name, user_id};
use crate::vocab::{Language, Vocabulary};
use crate::words::CITIES;

/// The rule shapes, with their weights in parts per thousand (the table above).
#[derive(Debug, Clone, Copy)]
enum Shape {
    Keyword,
    TwoKeywords,
    Phrase,
    OrGroup,
    OrAndNot,
    Hashtag,
    Mention,
    From,
    Cashtag,
    KeywordLang,
    KeywordHas,
    KeywordNotRetweet,
    KeywordIsRetweet,
    Contains,
    UrlContains,
    Bio,
    PlaceCountry,
    FollowersCount,
    Sample,
    PointRadius,
    Emoji,
}

const MIX: [(Shape, u32); 21] = [
    (Shape::Keyword, 200),
    (Shape::TwoKeywords, 120),
    (Shape::Phrase, 60),
    (Shape::OrGroup, 120),
    (Shape::OrAndNot, 100),
    (Shape::Hashtag, 70),
    (Shape::Mention, 35),
    (Shape::From, 35),
    (Shape::Cashtag, 25),
    (Shape::KeywordLang, 50),
    (Shape::KeywordHas, 25),
    (Shape::KeywordNotRetweet, 40),
    (Shape::KeywordIsRetweet, 10),
    (Shape::Contains, 20),
    (Shape::UrlContains, 20),
    (Shape::Bio, 15),
    (Shape::PlaceCountry, 15),
    (Shape::FollowersCount, 10),
    (Shape::Sample, 10),
    (Shape::PointRadius, 10),
    (Shape::Emoji, 10),
];

/// Tries at one shape before falling back to three keywords.
const RETRIES: usize = 12;

/// A deterministic stream of distinct PowerTrack rule strings: the same seed gives the same
/// rules in the same order, and no rule repeats within one generator.
#[derive(Debug)]
pub struct RuleGenerator {
    vocab: &'static Vocabulary,
    rng: Pcg64Mcg,
    seen: HashSet<String>,
}

impl RuleGenerator {
    /// A generator whose output is a function of `seed` alone.
    pub fn new(seed: u64) -> Self {
        RuleGenerator {
            vocab: Vocabulary::shared(),
            rng: Pcg64Mcg::seed_from_u64(seed ^ 0x7275_6c65),
            seen: HashSet::new(),
        }
    }

    /// The next rule, different from every rule this generator produced before.
    pub fn next_rule(&mut self) -> String {
        let total: u32 = MIX.iter().map(|(_, w)| w).sum();
        let mut roll = self.rng.random_range(0..total);
        let shape = MIX
            .iter()
            .find(|(_, w)| {
                if roll < *w {
                    true
                } else {
                    roll -= w;
                    false
                }
            })
            .map(|(s, _)| *s)
            .expect("the roll is below the total weight");
        for _ in 0..RETRIES {
            // Distinct before the optional negation is added: a popular clause must not
            // come back as dozens of variants that differ only in a trailing `-word`.
            let base = self.shaped(shape);
            if !self.seen.insert(base.clone()) {
                continue;
            }
            let mut rule = base.clone();
            self.negate(shape, &mut rule);
            if rule == base || self.seen.insert(rule.clone()) {
                return rule;
            }
        }
        loop {
            let rule = format!("{} {} {}", self.primary(), self.keyword(), self.keyword());
            if self.seen.insert(rule.clone()) {
                return rule;
            }
        }
    }

    /// A primary term: usually a name, sometimes any topical word.
    fn primary(&mut self) -> String {
        if self.rng.random_bool(0.95) {
            self.vocab.rule_name(&mut self.rng).to_owned()
        } else {
            self.uniform_keyword()
        }
    }

    /// Any topical word, all equally likely.
    fn uniform_keyword(&mut self) -> String {
        let pool = self.vocab.rule_keywords();
        pool[self.rng.random_range(0..pool.len())].clone()
    }

    /// A secondary term: a topical word, common ones more likely.
    fn keyword(&mut self) -> String {
        self.vocab.rule_keywords.sample(&mut self.rng).to_owned()
    }

    /// A keyword different from every word in `taken`.
    fn other_keyword(&mut self, taken: &[&str]) -> String {
        loop {
            let k = self.keyword();
            if !taken.contains(&k.as_str()) {
                return k;
            }
        }
    }

    /// A rule of `shape`.
    ///
    /// Long on purpose: one arm per rule shape of the mix, so the shapes a benchmark's rules
    /// take read as one list.
    fn shaped(&mut self, shape: Shape) -> String {
        let vocab = self.vocab;
        match shape {
            Shape::Keyword => self.primary(),
            Shape::TwoKeywords => {
                let a = self.primary();
                let b = self.other_keyword(&[&a]);
                format!("{a} {b}")
            }
            Shape::Phrase => {
                if self.rng.random_bool(0.6) {
                    format!("\"{}\"", vocab.phrases.sample(&mut self.rng))
                } else {
                    let a = self.primary();
                    let b = self.other_keyword(&[&a]);
                    format!("\"{a} {b}\"")
                }
            }
            Shape::OrGroup => {
                let alternatives = self.alternatives();
                if self.rng.random_bool(0.5) {
                    alternatives.join(" OR ")
                } else {
                    format!("({})", alternatives.join(" OR "))
                }
            }
            Shape::OrAndNot => {
                let alternatives = self.alternatives();
                let and = self.keyword();
                let not = self.other_keyword(&[&and]);
                format!("({}) {and} -{not}", alternatives.join(" OR "))
            }
            Shape::Hashtag => {
                let tag = format!("#{}", vocab.hashtags.sample(&mut self.rng));
                match self.rng.random_range(0..100) {
                    0..70 => tag,
                    70..85 => format!("{tag} lang:{}", self.language()),
                    _ => format!("{tag} -is:retweet"),
                }
            }
            Shape::Mention => format!("@{}", screen_name(vocab.user(&mut self.rng))),
            Shape::From => {
                let user = vocab.user(&mut self.rng);
                if self.rng.random_bool(0.8) {
                    format!("from:{}", screen_name(user))
                } else {
                    format!("from:{}", user_id(user))
                }
            }
            Shape::Cashtag => {
                let tag = format!("${}", vocab.cashtags.sample(&mut self.rng));
                match self.rng.random_range(0..3) {
                    0 => tag,
                    1 => format!("{tag} has:links"),
                    _ => format!("{tag} {}", self.keyword()),
                }
            }
            Shape::KeywordLang => format!("{} lang:{}", self.primary(), self.language()),
            Shape::KeywordHas => {
                let has = ["has:links", "has:media", "has:images"][self.rng.random_range(0..3)];
                format!("{} {has}", self.primary())
            }
            Shape::KeywordNotRetweet => {
                if self.rng.random_bool(0.7) {
                    format!("{} -is:retweet", self.primary())
                } else {
                    format!("({}) -is:retweet", self.alternatives().join(" OR "))
                }
            }
            Shape::KeywordIsRetweet => format!("{} is:retweet", self.primary()),
            Shape::Contains => self.contains(),
            Shape::UrlContains => {
                if self.rng.random_bool(0.7) {
                    format!("url_contains:\"{}\"", vocab.domains.sample(&mut self.rng))
                } else {
                    // A word of a link's path (paths are made of English words), any word
                    // equally likely.
                    let words = vocab.words(Language::English);
                    let slug = loop {
                        let w = &words[self.rng.random_range(0..words.len())];
                        if w.len() >= 5 {
                            break w;
                        }
                    };
                    format!("url_contains:{slug}")
                }
            }
            Shape::Bio => match self.rng.random_range(0..3) {
                0 => format!("bio:{}", self.uniform_keyword()),
                1 => format!("bio:{} {}", self.keyword(), self.primary()),
                _ => {
                    let a = self.keyword();
                    let b = self.other_keyword(&[&a]);
                    format!("bio:\"{a} {b}\"")
                }
            },
            Shape::PlaceCountry => {
                let code = CITIES[self.rng.random_range(0..CITIES.len())].country_code;
                if self.rng.random_bool(0.2) {
                    format!("place_country:{code}")
                } else {
                    format!("place_country:{code} {}", self.keyword())
                }
            }
            Shape::FollowersCount => {
                let min = 10u64.pow(self.rng.random_range(2..6)) * self.rng.random_range(1..10);
                if self.rng.random_bool(0.7) {
                    let max = min * self.rng.random_range(5..100);
                    format!("{} followers_count:{min}..{max}", self.primary())
                } else {
                    format!("{} followers_count:{min}", self.primary())
                }
            }
            Shape::Sample => {
                let n = [1, 5, 10, 25, 50][self.rng.random_range(0..5)];
                if self.rng.random_bool(0.5) {
                    format!("({}) sample:{n}", self.alternatives().join(" OR "))
                } else {
                    format!("{} sample:{n}", self.primary())
                }
            }
            Shape::PointRadius => {
                let city = &CITIES[self.rng.random_range(0..CITIES.len())];
                let lon = city.lon + self.rng.random_range(-0.02..0.02);
                let lat = city.lat + self.rng.random_range(-0.02..0.02);
                let radius = if self.rng.random_bool(0.7) {
                    format!("{}km", self.rng.random_range(5..=35))
                } else {
                    format!("{}mi", self.rng.random_range(3..=20))
                };
                let geo = format!("point_radius:[{lon:.4} {lat:.4} {radius}]");
                if self.rng.random_bool(0.5) {
                    geo
                } else {
                    format!("{geo} {}", self.keyword())
                }
            }
            Shape::Emoji => {
                let emoji = vocab.rule_emoji.sample(&mut self.rng).to_owned();
                if self.rng.random_bool(0.3) {
                    emoji
                } else {
                    format!("{emoji} {}", self.primary())
                }
            }
        }
    }

    /// Adds a trailing negation to shapes without one of their own: 12 % a topical word,
    /// 4 % `-is:retweet`.
    fn negate(&mut self, shape: Shape, rule: &mut String) {
        let negatable = !matches!(
            shape,
            Shape::OrAndNot
                | Shape::Hashtag
                | Shape::KeywordNotRetweet
                | Shape::KeywordIsRetweet
                | Shape::Sample
                | Shape::OrGroup
        );
        if negatable {
            match self.rng.random_range(0..100) {
                0..12 => {
                    let not = self.keyword();
                    rule.push_str(&format!(" -{not}"));
                }
                12..16 => rule.push_str(" -is:retweet"),
                _ => {}
            }
        }
        // A bare top-level OR group takes no trailing clauses (AND would bind to its last
        // alternative only), which the `negatable` list above guarantees.
    }

    /// Two to four alternatives for an OR group: primary terms, 6 % hashtags (any, equally
    /// likely).
    fn alternatives(&mut self) -> Vec<String> {
        let n = self.rng.random_range(2..=4);
        let mut out: Vec<String> = Vec::with_capacity(n);
        while out.len() < n {
            let alt = match self.rng.random_range(0..100) {
                0..6 => {
                    let tags = self.vocab.hashtags();
                    format!("#{}", tags[self.rng.random_range(0..tags.len())])
                }
                _ => self.primary(),
            };
            if !out.contains(&alt) {
                out.push(alt);
            }
        }
        out
    }

    fn language(&mut self) -> &'static str {
        Language::ALL[self.rng.random_range(0..Language::ALL.len())].code()
    }

    /// `contains:` with the first five or more letters of a word of six or more.
    fn contains(&mut self) -> String {
        loop {
            let word = self.primary();
            let chars: Vec<char> = word.chars().collect();
            if chars.len() >= 6 && chars.iter().all(|c| c.is_alphabetic()) {
                let take = self.rng.random_range(5..chars.len());
                let prefix: String = chars[..take].iter().collect();
                return format!("contains:{prefix}");
            }
        }
    }
}

impl Iterator for RuleGenerator {
    type Item = String;

    /// Never ends: the stream is infinite.
    fn next(&mut self) -> Option<String> {
        Some(self.next_rule())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_sums_to_one_thousand() {
        assert_eq!(MIX.iter().map(|(_, w)| w).sum::<u32>(), 1000);
    }

    #[test]
    fn rules_are_distinct_and_deterministic() {
        let a: Vec<String> = RuleGenerator::new(3).take(20_000).collect();
        let b: Vec<String> = RuleGenerator::new(3).take(20_000).collect();
        assert_eq!(a, b);
        let distinct: HashSet<&String> = a.iter().collect();
        assert_eq!(distinct.len(), a.len());
        assert_ne!(a, RuleGenerator::new(4).take(20_000).collect::<Vec<_>>());
    }

    #[test]
    fn every_shape_appears() {
        let rules: Vec<String> = RuleGenerator::new(9).take(5_000).collect();
        for needle in [
            " OR ",
            "\"",
            "#",
            "@",
            "from:",
            "$",
            "lang:",
            "has:",
            "-is:retweet",
            " is:retweet",
            "contains:",
            "url_contains:",
            "bio:",
            "place_country:",
            "followers_count:",
            "sample:",
            "point_radius:[",
        ] {
            assert!(
                rules.iter().any(|r| r.contains(needle)),
                "no rule with {needle:?}"
            );
        }
    }
}
