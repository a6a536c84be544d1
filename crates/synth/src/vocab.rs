//! The shared Zipf vocabulary that both posts and rules draw from.
//!
//! Posts and rules must speak the same language or a benchmark measures nothing: rules would
//! never match. So there is one fixed [`Vocabulary`] (independent of any seed), and the
//! generators only differ in *how* they sample it. Every pool is ordered by popularity and
//! sampled with a Zipf law, which is how word, hashtag, domain and author frequencies are
//! distributed in real traffic: a few items are everywhere, most are rare.

use std::collections::HashSet;
use std::sync::OnceLock;

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use rand_pcg::Pcg64Mcg;

use crate::words;

/// Number of made-up English words appended after the real ones: the long tail of rare
/// words (names, slang, typos) that real text has and a hand-written list lacks.
const PSEUDO_WORDS: usize = 9_000;

/// Number of names (brands, products, people, places: made-up words) that posts mention
/// and rules track. Real traffic names millions of things; a large pool keeps the chance
/// that a given tracked name appears in a given post realistically small.
const NAMES: usize = 100_000;

/// Number of made-up hashtags (camel-case pairs of words) after the well-known ones.
const PSEUDO_HASHTAGS: usize = 1_500;

/// Number of made-up link domains after the well-known ones.
const PSEUDO_DOMAINS: usize = 400;

/// Number of distinct authors; authorship and mentions follow a Zipf law (exponent 0.5)
/// over them.
pub const USER_POPULATION: u32 = 200_000;

/// The languages posts are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Language {
    /// English (`en`): real words plus a long tail of made-up ones.
    English,
    /// Spanish (`es`).
    Spanish,
    /// Portuguese (`pt`).
    Portuguese,
    /// Japanese (`ja`): no spaces between words.
    Japanese,
}

impl Language {
    /// Every language, for iteration.
    pub const ALL: [Language; 4] = [
        Language::English,
        Language::Spanish,
        Language::Portuguese,
        Language::Japanese,
    ];

    /// The BCP-47 code X puts in `lang` (and `lang:` rules use).
    pub fn code(self) -> &'static str {
        match self {
            Language::English => "en",
            Language::Spanish => "es",
            Language::Portuguese => "pt",
            Language::Japanese => "ja",
        }
    }

    /// Whether words are separated by spaces.
    pub(crate) fn spaced(self) -> bool {
        self != Language::Japanese
    }

    fn index(self) -> usize {
        match self {
            Language::English => 0,
            Language::Spanish => 1,
            Language::Portuguese => 2,
            Language::Japanese => 3,
        }
    }
}

/// A list of items ordered by popularity, sampled with a Zipf law.
#[derive(Debug)]
pub(crate) struct Pool {
    items: Vec<String>,
    zipf: Zipf<f64>,
}

impl Pool {
    fn new(items: Vec<String>, exponent: f64) -> Self {
        assert!(!items.is_empty(), "a pool has items");
        let zipf = Zipf::new(items.len() as f64, exponent).expect("n ≥ 1 and exponent ≥ 0");
        Pool { items, zipf }
    }

    /// Draws one item: rank 1 is the most likely.
    pub(crate) fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> &str {
        let rank = self.zipf.sample(rng) as usize;
        &self.items[rank.clamp(1, self.items.len()) - 1]
    }

    fn items(&self) -> &[String] {
        &self.items
    }
}

/// The fixed vocabulary: words per language, emoji, hashtags, cashtags, link domains,
/// phrases, and the keyword pool rules are written from.
#[derive(Debug)]
pub struct Vocabulary {
    /// Word pools for post text, by [`Language::index`].
    text: [Pool; 4],
    /// Emoji used as words.
    pub(crate) emoji: Pool,
    /// Hashtags without `#`.
    pub(crate) hashtags: Pool,
    /// Tickers without `$`.
    pub(crate) cashtags: Pool,
    /// Link domains.
    pub(crate) domains: Pool,
    /// Multi-word phrases that posts contain.
    pub(crate) phrases: Pool,
    /// Topical words (no function words) that rule keywords are drawn from.
    pub(crate) rule_keywords: Pool,
    /// Single-character emoji that a rule can use as a bare keyword.
    pub(crate) rule_emoji: Pool,
    /// Names (lower case) that posts mention, Zipf 0.8: a few are in every hundredth post.
    pub(crate) names: Pool,
    /// How rules pick names: a much flatter Zipf (0.3) over the same list, since customers
    /// track the long tail of brands and people, not only the famous ones.
    rule_names: Zipf<f64>,
    /// Which user (0-based index) writes or is mentioned: Zipf over [`USER_POPULATION`].
    users: Zipf<f64>,
}

impl Vocabulary {
    /// The one shared vocabulary, built on first use (a few milliseconds).
    pub fn shared() -> &'static Vocabulary {
        static VOCABULARY: OnceLock<Vocabulary> = OnceLock::new();
        VOCABULARY.get_or_init(Vocabulary::build)
    }

    /// Builds the vocabulary from its fixed seed.
    ///
    /// Long on purpose: each word list is drawn in turn from one seeded random stream;
    /// reordering or splitting the draws would change the vocabulary, and with it every
    /// generated post and rule.
    fn build() -> Vocabulary {
        // A fixed seed: the vocabulary is part of the crate, not of a run.
        let mut rng = Pcg64Mcg::seed_from_u64(0x005e_ed0f_7a1e);
        let mut seen: HashSet<String> = HashSet::new();
        let mut english: Vec<String> = Vec::new();
        for w in words::ENGLISH_FUNCTION.iter().chain(words::ENGLISH) {
            if seen.insert((*w).to_owned()) {
                english.push((*w).to_owned());
            }
        }
        let real_english = english.len();
        while english.len() < real_english + PSEUDO_WORDS {
            let w = pseudo_word(&mut rng);
            if seen.insert(w.clone()) {
                english.push(w);
            }
        }

        let dedup = |list: &[&str]| -> Vec<String> {
            let mut seen = HashSet::new();
            list.iter()
                .filter(|w| seen.insert(**w))
                .map(|w| (*w).to_owned())
                .collect()
        };
        let spanish = dedup(words::SPANISH);
        let portuguese = dedup(words::PORTUGUESE);
        let japanese = dedup(words::JAPANESE);

        // Rule keywords: topical words of every language, the real ones first. The first
        // words of the Spanish and Portuguese lists are function words and are skipped.
        const ROMANCE_FUNCTION_WORDS: usize = 30;
        let mut keyword_seen = HashSet::new();
        let rule_keywords: Vec<String> = english[words::ENGLISH_FUNCTION.len()..real_english]
            .iter()
            .chain(&spanish[ROMANCE_FUNCTION_WORDS..])
            .chain(&portuguese[ROMANCE_FUNCTION_WORDS..])
            .chain(&japanese)
            .chain(&english[real_english..])
            .filter(|w| keyword_seen.insert(w.as_str()))
            .cloned()
            .collect();

        let mut hashtags = dedup(words::HASHTAGS);
        let mut tag_seen: HashSet<String> = hashtags.iter().map(|t| t.to_lowercase()).collect();
        let content = &english[words::ENGLISH_FUNCTION.len()..real_english];
        while hashtags.len() < words::HASHTAGS.len() + PSEUDO_HASHTAGS {
            let a = &content[rng.random_range(0..content.len())];
            let b = &english[rng.random_range(words::ENGLISH_FUNCTION.len()..english.len())];
            let tag = format!("{}{}", capitalize(a), capitalize(b));
            if tag_seen.insert(tag.to_lowercase()) {
                hashtags.push(tag);
            }
        }

        let mut domains = dedup(words::DOMAINS);
        let mut domain_seen: HashSet<String> = domains.iter().cloned().collect();
        const TLDS: [&str; 6] = ["com", "com", "net", "org", "io", "co"];
        while domains.len() < words::DOMAINS.len() + PSEUDO_DOMAINS {
            let a = &english[rng.random_range(words::ENGLISH_FUNCTION.len()..english.len())];
            let tld = TLDS[rng.random_range(0..TLDS.len())];
            let domain = if rng.random_bool(0.5) {
                let b = &content[rng.random_range(0..content.len())];
                format!("{a}{b}.{tld}")
            } else {
                format!("{a}.{tld}")
            };
            if domain_seen.insert(domain.clone()) {
                domains.push(domain);
            }
        }

        let mut names = Vec::with_capacity(NAMES);
        while names.len() < NAMES {
            let w = pseudo_word(&mut rng);
            if w.len() >= 4 && seen.insert(w.clone()) {
                names.push(w);
            }
        }

        let emoji = dedup(words::EMOJI);
        let rule_emoji: Vec<String> = emoji
            .iter()
            .filter(|e| e.chars().count() == 1)
            .cloned()
            .collect();

        Vocabulary {
            text: [
                Pool::new(english, 1.0),
                Pool::new(spanish, 1.0),
                Pool::new(portuguese, 1.0),
                Pool::new(japanese, 1.0),
            ],
            emoji: Pool::new(emoji, 1.0),
            hashtags: Pool::new(hashtags, 1.0),
            cashtags: Pool::new(dedup(words::CASHTAGS), 1.0),
            domains: Pool::new(domains, 1.0),
            phrases: Pool::new(dedup(words::PHRASES), 0.8),
            // Flatter than text: rules target topical, mid-frequency words, spread widely
            // (about half the draws are real words, half the rare made-up tail).
            rule_keywords: Pool::new(rule_keywords, 0.8),
            rule_emoji: Pool::new(rule_emoji, 0.8),
            rule_names: Zipf::new(names.len() as f64, 0.3).expect("valid Zipf parameters"),
            names: Pool::new(names, 0.8),
            // Flat enough that the busiest account writes about 0.1 % of posts, not 8 %.
            users: Zipf::new(f64::from(USER_POPULATION), 0.5).expect("valid Zipf parameters"),
        }
    }

    /// The words of `language`'s text pool, most frequent first.
    pub fn words(&self, language: Language) -> &[String] {
        self.text[language.index()].items()
    }

    /// The hashtags (without `#`), most popular first.
    pub fn hashtags(&self) -> &[String] {
        self.hashtags.items()
    }

    /// The cashtags (without `$`), most popular first.
    pub fn cashtags(&self) -> &[String] {
        self.cashtags.items()
    }

    /// The link domains, most shared first.
    pub fn domains(&self) -> &[String] {
        self.domains.items()
    }

    /// The topical words rule keywords are drawn from, most likely first.
    pub fn rule_keywords(&self) -> &[String] {
        self.rule_keywords.items()
    }

    /// The names posts mention and rules track (lower case), most mentioned first.
    pub fn names(&self) -> &[String] {
        self.names.items()
    }

    /// A name as a rule picks it (flat Zipf: the long tail is tracked too).
    pub(crate) fn rule_name<R: Rng + ?Sized>(&self, rng: &mut R) -> &str {
        let rank = self.rule_names.sample(rng) as usize;
        &self.names.items[rank.clamp(1, self.names.items.len()) - 1]
    }

    /// A word of `language`, Zipf-distributed.
    pub(crate) fn word<R: Rng + ?Sized>(&self, language: Language, rng: &mut R) -> &str {
        self.text[language.index()].sample(rng)
    }

    /// A user index, Zipf-distributed (index 0 is the most active and most mentioned).
    pub(crate) fn user<R: Rng + ?Sized>(&self, rng: &mut R) -> u32 {
        let rank = self.users.sample(rng) as u32;
        rank.clamp(1, USER_POPULATION) - 1
    }
}

/// Upper-cases the first character (`"coffee"` → `"Coffee"`).
pub(crate) fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A pronounceable made-up word of two or three syllables (`"brosken"`, `"tavelin"`).
fn pseudo_word<R: Rng + ?Sized>(rng: &mut R) -> String {
    const ONSETS: [&str; 40] = [
        "b", "bl", "br", "c", "ch", "cl", "cr", "d", "dr", "f", "fl", "fr", "g", "gl", "gr", "h",
        "j", "k", "l", "m", "n", "p", "pl", "pr", "qu", "r", "s", "sh", "sk", "sl", "sp", "st",
        "str", "t", "th", "tr", "v", "w", "y", "z",
    ];
    const VOWELS: [&str; 12] = [
        "a", "e", "i", "o", "u", "a", "e", "i", "o", "ea", "oo", "ai",
    ];
    const CODAS: [&str; 14] = [
        "", "", "", "n", "r", "s", "t", "l", "m", "nd", "st", "ck", "ng", "x",
    ];
    let syllables = if rng.random_bool(0.6) { 2 } else { 3 };
    let mut word = String::new();
    for i in 0..syllables {
        word.push_str(ONSETS[rng.random_range(0..ONSETS.len())]);
        word.push_str(VOWELS[rng.random_range(0..VOWELS.len())]);
        if i + 1 == syllables || rng.random_bool(0.25) {
            word.push_str(CODAS[rng.random_range(0..CODAS.len())]);
        }
    }
    word
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vocabulary_has_several_thousand_distinct_words_without_separators() {
        let v = Vocabulary::shared();
        let english = v.words(Language::English);
        assert!(english.len() > 5_000, "{}", english.len());
        let distinct: HashSet<_> = english.iter().collect();
        assert_eq!(distinct.len(), english.len());
        // No punctuation or spaces inside a word: its tokens spell it exactly (CJK words are
        // several one-character tokens).
        for w in english.iter().chain(v.rule_keywords()) {
            assert_eq!(
                sluice_text::tokenize(w).concat(),
                sluice_text::fold(w),
                "{w:?}"
            );
        }
        assert!(v.hashtags().len() > 1_000);
        assert!(v.domains().len() > 300);
    }

    #[test]
    fn rule_keywords_exclude_function_words() {
        let v = Vocabulary::shared();
        for w in ["the", "and", "or", "is", "de", "que"] {
            assert!(!v.rule_keywords().iter().any(|k| k == w), "{w}");
        }
    }

    #[test]
    fn zipf_sampling_favours_the_head() {
        let v = Vocabulary::shared();
        let mut rng = Pcg64Mcg::seed_from_u64(1);
        let the = (0..10_000)
            .filter(|_| v.word(Language::English, &mut rng) == "the")
            .count();
        // Rank 1 of a Zipf(1.0) law over ~10k words has probability ≈ 1/H(10k) ≈ 10 %.
        assert!((700..1_400).contains(&the), "{the}");
    }
}
