//! The conformance suite: what a rule clause means against a post, case by case.
//!
//! Written from `docs/compatibility.md` ("Decisions", §3 and §8) and
//! `docs/matching-semantics.md`, independently of the matcher's code. Every case runs against
//! both [`Matcher`] (the indexed matcher) and [`NaiveMatcher`] (the reference evaluator), and
//! the two must also agree. Cases are grouped in named collections, one `#[test]` each, in the
//! style of aho-corasick's `src/tests.rs`; a failing collection lists every failing case with
//! its name, rule and post.

use sluice_matcher::{Matcher, NaiveMatcher};
use sluice_model::sampling::sample_bucket;
use sluice_model::{PostView, parse_post};
use sluice_rules::{Dialect, Rule, parse, parse_with};

/// One single-rule case: does `rule` match `post`?
struct Case {
    name: &'static str,
    rule: &'static str,
    /// The post JSON without `id`, `id_str` and `created_at` (see [`with_id`]).
    post: &'static str,
    want: bool,
}

macro_rules! t {
    ($name:expr, $rule:expr, $post:expr, $want:expr $(,)?) => {
        Case {
            name: $name,
            rule: $rule,
            post: $post,
            want: $want,
        }
    };
}

/// The id given to posts whose id does not matter (a realistic Snowflake id).
const POST_ID: u64 = 1_050_118_621_198_921_728;

/// Completes a hand-written post with the fields every real post has: `id`, `id_str` and
/// `created_at`.
fn with_id(id: u64, json: &str) -> String {
    let body = json
        .trim_start()
        .strip_prefix('{')
        .expect("a post is a JSON object");
    let sep = if body.trim_start().starts_with('}') {
        ""
    } else {
        ","
    };
    format!(
        r#"{{"id":{id},"id_str":"{id}","created_at":"Wed Oct 10 20:19:24 +0000 2018"{sep}{body}"#
    )
}

/// The two implementations under test, behind one interface.
trait Engine: Sized {
    const NAME: &'static str;
    fn empty() -> Self;
    fn add(&mut self, id: u64, rule: &Rule);
    fn remove_rule(&mut self, id: u64) -> bool;
    fn matching(&self, post: &PostView<'_>) -> Vec<u64>;

    fn build(rules: &[(u64, &Rule)]) -> Self {
        let mut m = Self::empty();
        for (id, rule) in rules {
            m.add(*id, rule);
        }
        m
    }
}

macro_rules! engine {
    ($ty:ident) => {
        impl Engine for $ty {
            const NAME: &'static str = stringify!($ty);
            fn empty() -> Self {
                $ty::new()
            }
            fn add(&mut self, id: u64, rule: &Rule) {
                self.insert(id, rule);
            }
            fn remove_rule(&mut self, id: u64) -> bool {
                self.remove(id)
            }
            fn matching(&self, post: &PostView<'_>) -> Vec<u64> {
                let mut out = Vec::new();
                self.match_post(post, &mut out);
                out
            }
        }
    };
}
engine!(Matcher);
engine!(NaiveMatcher);

/// Runs one PowerTrack case against both engines; `None` when it passes, else a
/// description.
fn check(name: &str, rule_text: &str, post_json: &str, want: bool) -> Option<String> {
    check_in(Dialect::PowerTrack, name, rule_text, post_json, want)
}

/// Runs one case, its rule parsed in `dialect`, against both engines.
fn check_in(
    dialect: Dialect,
    name: &str,
    rule_text: &str,
    post_json: &str,
    want: bool,
) -> Option<String> {
    let head = format!("case {name:?}\n  rule: {rule_text}\n  post: {post_json}\n");
    let rule = match parse_with(rule_text, dialect) {
        Ok(rule) => rule,
        Err(e) => return Some(format!("{head}  the rule did not parse: {e}")),
    };
    let post = match parse_post(post_json.as_bytes()) {
        Ok(post) => post,
        Err(e) => return Some(format!("{head}  the post did not parse: {e}")),
    };
    let expected: Vec<u64> = if want { vec![1] } else { vec![] };
    let mut problems = Vec::new();
    let indexed = Matcher::build(&[(1, &rule)]).matching(&post);
    let naive = NaiveMatcher::build(&[(1, &rule)]).matching(&post);
    for (engine, got) in [(Matcher::NAME, &indexed), (NaiveMatcher::NAME, &naive)] {
        if *got != expected {
            problems.push(format!("  {engine}: expected {expected:?}, got {got:?}"));
        }
    }
    if indexed != naive && problems.is_empty() {
        problems.push(format!("  engines disagree: {indexed:?} vs {naive:?}"));
    }
    (!problems.is_empty()).then(|| format!("{head}{}", problems.join("\n")))
}

/// Runs a collection of PowerTrack rules; fails with every failing case listed.
fn run(cases: &[Case]) {
    run_in(Dialect::PowerTrack, cases);
}

/// Runs a collection whose rules are parsed in `dialect`.
fn run_in(dialect: Dialect, cases: &[Case]) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| check_in(dialect, c.name, c.rule, &with_id(POST_ID, c.post), c.want))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

/// The exact list of rule ids each engine reports for `post`, given `rules`.
fn matching_ids(rules: &[(u64, &str)], post: &str) -> Vec<u64> {
    let parsed: Vec<(u64, Rule)> = rules
        .iter()
        .map(|(id, text)| {
            let rule = parse(text).unwrap_or_else(|e| panic!("rule {text:?} did not parse: {e}"));
            (*id, rule)
        })
        .collect();
    let refs: Vec<(u64, &Rule)> = parsed.iter().map(|(id, r)| (*id, r)).collect();
    let json = with_id(POST_ID, post);
    let post = parse_post(json.as_bytes()).expect("test post parses");
    let indexed = Matcher::build(&refs).matching(&post);
    let naive = NaiveMatcher::build(&refs).matching(&post);
    assert_eq!(
        indexed, naive,
        "Matcher and NaiveMatcher disagree on {json}"
    );
    indexed
}

// ---------------------------------------------------------------------------------------
// Keywords: tokenized, case-insensitive, exact tokens (no prefix, no stemming).

#[rustfmt::skip]
const KEYWORDS: &[Case] = &[
    t!("kw-plain", "apple", r#"{"text":"I love apple pie"}"#, true),
    t!("kw-absent", "apple", r#"{"text":"I love pear pie"}"#, false),
    t!("kw-rule-upper", "APPLE", r#"{"text":"i love apple"}"#, true),
    t!("kw-post-upper", "apple", r#"{"text":"APPLE rocks"}"#, true),
    t!("kw-no-prefix", "apple", r#"{"text":"applesauce"}"#, false),
    t!("kw-no-suffix", "sauce", r#"{"text":"applesauce"}"#, false),
    t!("kw-no-stemming", "run", r#"{"text":"running fast"}"#, false),
    t!("kw-punctuation-bounds", "apple", r#"{"text":"(apple)!"}"#, true),
    t!("kw-hashtag-text-is-a-word", "apple", r##"{"text":"#apple"}"##, true),
    t!("kw-mention-text-is-a-word", "jack", r#"{"text":"hi @jack"}"#, true),
    t!("kw-number", "2016", r#"{"text":"election 2016!"}"#, true),
    t!("kw-number-not-prefix", "2016", r##"{"text":"#2016election"}"##, false),
    t!("kw-decimal-splits", "14", r#"{"text":"pi is 3.14"}"#, true),
    t!("kw-negated-present", "banana -apple", r#"{"text":"apple banana"}"#, false),
    t!("kw-negated-absent", "banana -apple", r#"{"text":"banana split"}"#, true),
    t!("kw-lowercase-or-is-a-word", "cat or dog", r#"{"text":"cat or dog"}"#, true),
    t!("kw-lowercase-or-needed", "cat or dog", r#"{"text":"cat dog"}"#, false),
    t!("kw-and-is-a-word-no-stopwords", "fish and chips", r#"{"text":"fish and chips"}"#, true),
    t!("kw-and-word-needed", "fish and chips", r#"{"text":"fish chips"}"#, false),
    t!("kw-the-is-not-a-stopword", "the", r#"{"text":"the end"}"#, true),
    t!("kw-the-absent", "the", r#"{"text":"an end"}"#, false),
    t!("kw-tab-newline-separate", "world", "{\"text\":\"hello\\n\\tworld\"}", true),
    t!("kw-not-in-bio", "developer", r#"{"text":"hi","user":{"description":"developer"}}"#, false),
    t!("kw-not-in-source", "tweetdeck", r#"{"text":"hi","source":"<a href=\"https://tweetdeck.twitter.com\">TweetDeck</a>"}"#, false),
    t!("kw-empty-text", "apple", r#"{"text":""}"#, false),
    t!("kw-underscore-splits", "hello", r#"{"text":"say hello_world"}"#, true),
    t!("kw-letters-and-digits-one-token", "covid19", r#"{"text":"COVID19 news"}"#, true),
    t!("kw-letters-and-digits-no-prefix", "covid", r#"{"text":"COVID19 news"}"#, false),
    t!("kw-hyphen-splits-post", "email", r#"{"text":"send an e-mail"}"#, false),
    t!("kw-non-ascii-upper-rule", "ÉTÉ", r#"{"text":"un bel été"}"#, true),
    t!("kw-next-to-cjk", "🍕", r#"{"text":"東🍕京"}"#, true),
];

// Punctuation inside terms, apostrophes, hyphens, quotes inside phrases.
#[rustfmt::skip]
const PUNCTUATION: &[Case] = &[
    t!("coca-cola-unquoted-hyphenated-post", "coca-cola", r#"{"text":"I like Coca-Cola"}"#, true),
    t!("coca-cola-unquoted-spaced-post", "coca-cola", r#"{"text":"I like coca cola"}"#, true),
    t!("coca-cola-unquoted-reversed", "coca-cola", r#"{"text":"cola coca"}"#, false),
    t!("coca-cola-quoted", "\"coca-cola\"", r#"{"text":"I like Coca-Cola!"}"#, true),
    t!("coca-cola-quoted-space", "\"coca-cola\"", r#"{"text":"coca cola"}"#, true),
    t!("coca-cola-quoted-apart", "\"coca-cola\"", r#"{"text":"coca and cola"}"#, false),
    t!("coca-part", "coca", r#"{"text":"Coca-Cola"}"#, true),
    t!("cola-part", "cola", r#"{"text":"Coca-Cola"}"#, true),
    t!("apostrophe-straight", "don't", r#"{"text":"I don't know"}"#, true),
    t!("apostrophe-curly-in-post", "don't", r#"{"text":"I don’t know"}"#, true),
    t!("apostrophe-not-consecutive", "don't", r#"{"text":"don know t"}"#, false),
    t!("apostrophe-part", "don", r#"{"text":"I don't know"}"#, true),
    t!("quotes-inside-phrase", r#""Toys \"R\" Us""#, r#"{"text":"Shop at Toys \"R\" Us today"}"#, true),
    t!("quotes-inside-phrase-unquoted-post", r#""Toys \"R\" Us""#, r#"{"text":"toys r us"}"#, true),
    t!("quotes-inside-phrase-missing-r", r#""Toys \"R\" Us""#, r#"{"text":"Toys Us"}"#, false),
    t!("url-in-text-domain-word", "example", r#"{"text":"see https://example.com/page now"}"#, true),
    t!("url-in-text-phrase", "\"example com page\"", r#"{"text":"see https://example.com/page"}"#, true),
    t!("url-in-text-path-word", "page", r#"{"text":"see https://example.com/page"}"#, true),
];

// Exact phrases: consecutive tokens of one field, punctuation as whitespace.
#[rustfmt::skip]
const PHRASES: &[Case] = &[
    t!("phrase-exact", "\"happy birthday\"", r#"{"text":"Happy Birthday to you"}"#, true),
    t!("phrase-wrong-order", "\"happy birthday\"", r#"{"text":"birthday happy"}"#, false),
    t!("phrase-gap", "\"happy birthday\"", r#"{"text":"happy belated birthday"}"#, false),
    t!("phrase-punctuation-between", "\"happy birthday\"", r#"{"text":"happy, birthday!"}"#, true),
    t!("phrase-across-lines", "\"happy birthday\"", "{\"text\":\"happy\\nbirthday\"}", true),
    t!("phrase-hashtag-is-the-word", "\"#giants\"", r#"{"text":"go giants"}"#, true),
    t!("phrase-cashtag-is-the-word", "\"$TWTR\"", r#"{"text":"TWTR is up"}"#, true),
    t!("phrase-negated-present", "cake -\"happy birthday\"", r#"{"text":"happy birthday cake"}"#, false),
    t!("phrase-negated-absent", "cake -\"happy birthday\"", r#"{"text":"birthday cake, happy"}"#, true),
    t!("phrase-single-word", "\"apple\"", r#"{"text":"APPLE"}"#, true),
    t!(
        "phrase-never-spans-quote-and-quoted",
        "\"agree world\"",
        r#"{"text":"I agree","is_quote_status":true,"quoted_status":{"id_str":"5","text":"world peace"}}"#,
        false,
    ),
    t!(
        "phrase-in-url-field",
        "\"nytimes com\"",
        r#"{"text":"news","entities":{"urls":[{"url":"https://t.co/abc","expanded_url":"https://www.nytimes.com/2024/01/story.html"}]}}"#,
        true,
    ),
];

// Emoji: a token each, with their modifiers and ZWJ sequences; variation selectors folded.
#[rustfmt::skip]
const EMOJI: &[Case] = &[
    t!("emoji-plain", "🍕", r#"{"text":"pizza time 🍕"}"#, true),
    t!("emoji-glued-to-words", "🍕", r#"{"text":"pizza🍕time"}"#, true),
    t!("emoji-word-next-to-emoji", "pizza", r#"{"text":"pizza🍕"}"#, true),
    t!("emoji-absent", "🍕", r#"{"text":"pizza time"}"#, false),
    t!("emoji-repeated", "🍕", r#"{"text":"🍕🍕🍕"}"#, true),
    t!("emoji-or-word", "fish OR 🐟", r#"{"text":"🐟 🐟"}"#, true),
    t!("emoji-negated", "pizza -🍕", r#"{"text":"pizza 🍕"}"#, false),
    t!("emoji-vs-rule-quoted-plain-post", "\"❤️\"", r#"{"text":"love ❤ it"}"#, true),
    t!("emoji-vs-rule-quoted-vs-post", "\"❤️\"", r#"{"text":"love ❤️ it"}"#, true),
    t!("emoji-plain-rule-vs-post", "❤", r#"{"text":"love ❤️ it"}"#, true),
    t!("emoji-skin-tone-exact", "\"👍🏽\"", r#"{"text":"great 👍🏽"}"#, true),
    t!("emoji-skin-tone-not-base", "\"👍🏽\"", r#"{"text":"great 👍"}"#, false),
    t!("emoji-base-not-skin-toned", "👍", r#"{"text":"great 👍🏽"}"#, false),
    t!("emoji-zwj-sequence", "\"👩\u{200D}💻\"", "{\"text\":\"👩\u{200D}💻 coder\"}", true),
    t!("emoji-zwj-part-is-not-a-token", "👩", "{\"text\":\"👩\u{200D}💻 coder\"}", false),
    t!("emoji-zwj-parts-apart", "\"👩\u{200D}💻\"", r#"{"text":"👩 💻"}"#, false),
    t!("emoji-flag", "\"🇯🇵\"", r#"{"text":"trip 🇯🇵🇺🇸"}"#, true),
    t!("emoji-flag-second", "\"🇺🇸\"", r#"{"text":"trip 🇯🇵🇺🇸"}"#, true),
    t!("emoji-phrase", "\"🍕 party\"", r#"{"text":"🍕 PARTY tonight"}"#, true),
];

// CJK: each Han/Hiragana/Katakana/Hangul character is a token; a CJK keyword is a phrase.
#[rustfmt::skip]
const CJK: &[Case] = &[
    t!("cjk-keyword-in-run", "東京", r#"{"text":"東京タワーに行った"}"#, true),
    t!("cjk-keyword-reversed", "東京", r#"{"text":"京東"}"#, false),
    t!("cjk-keyword-interrupted", "日本", r#"{"text":"日曜本"}"#, false),
    t!("cjk-single-char", "京", r#"{"text":"東京"}"#, true),
    t!("cjk-space-is-not-a-gap", "東京", r#"{"text":"東 京"}"#, true),
    t!("cjk-katakana-phrase", "\"東京タワー\"", r#"{"text":"東京タワーに"}"#, true),
    t!("cjk-hangul", "안녕", r#"{"text":"안녕하세요"}"#, true),
    t!("cjk-hangul-absent", "안녕", r#"{"text":"하세요"}"#, false),
    t!("cjk-mixed-latin", "abc日本", r#"{"text":"abc日本語"}"#, true),
    t!("cjk-latin-keyword-next-to-cjk", "abc", r#"{"text":"abc日本語"}"#, true),
];

// Accents are significant, case is not, text is compared in NFC.
#[rustfmt::skip]
const ACCENTS_AND_CASE: &[Case] = &[
    t!("accent-same", "cumpleaños", r#"{"text":"feliz cumpleaños"}"#, true),
    t!("accent-post-unaccented", "cumpleaños", r#"{"text":"feliz cumpleanos"}"#, false),
    t!("accent-rule-unaccented", "cumpleanos", r#"{"text":"feliz cumpleaños"}"#, false),
    t!("accent-upper-rule", "CUMPLEAÑOS", r#"{"text":"cumpleaños"}"#, true),
    t!("accent-not-a-boundary", "cumplea", r#"{"text":"cumpleaños"}"#, false),
    t!("accent-decomposed-post", "café", r#"{"text":"un cafe\u0301 noir"}"#, true),
    t!("greek-final-sigma", "ΟΔΟΣ", r#"{"text":"η οδος"}"#, true),
    t!("mixed-case-phrase", "\"New YORK\"", r#"{"text":"new york"}"#, true),
];

// AND binds tighter than OR; groups; negated groups.
#[rustfmt::skip]
const BOOLEAN: &[Case] = &[
    t!("prec-or-left-alone", "apple OR iphone ipad", r#"{"text":"apple"}"#, true),
    t!("prec-or-right-half", "apple OR iphone ipad", r#"{"text":"iphone"}"#, false),
    t!("prec-or-right-full", "apple OR iphone ipad", r#"{"text":"ipad iphone"}"#, true),
    t!("prec-or-right-other-half", "apple OR iphone ipad", r#"{"text":"ipad"}"#, false),
    t!("prec-and-or-right", "ipad iphone OR android", r#"{"text":"android"}"#, true),
    t!("prec-and-or-half", "ipad iphone OR android", r#"{"text":"ipad"}"#, false),
    t!("prec-and-or-left", "ipad iphone OR android", r#"{"text":"iphone ipad"}"#, true),
    t!("group-or-then-and-miss", "(apple OR iphone) ipad", r#"{"text":"apple"}"#, false),
    t!("group-or-then-and-hit", "(apple OR iphone) ipad", r#"{"text":"iphone ipad"}"#, true),
    t!("three-way-or", "red OR green OR blue", r#"{"text":"blue"}"#, true),
    t!("three-way-or-none", "red OR green OR blue", r#"{"text":"pink"}"#, false),
    t!("nested-hit-inner", "((red OR blue) (car OR bike)) OR train", r#"{"text":"blue bike"}"#, true),
    t!("nested-half-inner", "((red OR blue) (car OR bike)) OR train", r#"{"text":"red"}"#, false),
    t!("nested-hit-outer", "((red OR blue) (car OR bike)) OR train", r#"{"text":"train"}"#, true),
    t!("deep-group", "(((apple)))", r#"{"text":"apple"}"#, true),
    t!("negated-or-group-first", "fruit -(apple OR banana)", r#"{"text":"fruit apple"}"#, false),
    t!("negated-or-group-second", "fruit -(apple OR banana)", r#"{"text":"fruit banana"}"#, false),
    t!("negated-or-group-neither", "fruit -(apple OR banana)", r#"{"text":"fruit cherry"}"#, true),
    t!("negated-and-group-one", "fruit -(apple banana)", r#"{"text":"fruit apple"}"#, true),
    t!("negated-and-group-both", "fruit -(apple banana)", r#"{"text":"fruit banana apple"}"#, false),
    t!("double-negation-both", "fruit -(apple -banana)", r#"{"text":"fruit apple banana"}"#, true),
    t!("double-negation-one", "fruit -(apple -banana)", r#"{"text":"fruit apple"}"#, false),
    t!("negation-binds-to-clause", "apple -pie OR banana", r#"{"text":"apple pie banana"}"#, true),
    t!("negation-binds-to-clause-miss", "apple -pie OR banana", r#"{"text":"apple pie"}"#, false),
    t!("negation-binds-to-clause-hit", "apple -pie OR banana", r#"{"text":"apple tart"}"#, true),
    t!("group-and-negation", "(apple OR banana) -cherry", r#"{"text":"banana cherry"}"#, false),
    t!("or-of-operators", "from:jack OR #giants", r#"{"text":"x","entities":{"hashtags":[{"text":"Giants"}]}}"#, true),
];

// Proximity: span − n ≤ N in the rule's order, ≤ N − 2 otherwise; one field; distinct positions.
#[rustfmt::skip]
const PROXIMITY: &[Case] = &[
    t!("prox-adjacent", "\"hate love\"~3", r#"{"text":"hate love"}"#, true),
    t!("prox-gap-at-limit", "\"hate love\"~3", r#"{"text":"hate a b c love"}"#, true),
    t!("prox-gap-over-limit", "\"hate love\"~3", r#"{"text":"hate a b c d love"}"#, false),
    t!("prox-reverse-adjacent", "\"hate love\"~3", r#"{"text":"love hate"}"#, true),
    t!("prox-reverse-at-limit", "\"hate love\"~3", r#"{"text":"love a hate"}"#, true),
    t!("prox-reverse-over-limit", "\"hate love\"~3", r#"{"text":"love a b hate"}"#, false),
    t!("prox-reverse-never-at-1", "\"hate love\"~1", r#"{"text":"love hate"}"#, false),
    t!("prox-in-order-gap-1-at-1", "\"hate love\"~1", r#"{"text":"hate x love"}"#, true),
    t!("prox-in-order-gap-2-at-1", "\"hate love\"~1", r#"{"text":"hate x y love"}"#, false),
    t!("prox-max-distance", "\"hate love\"~6", r#"{"text":"hate 1 2 3 4 5 6 love"}"#, true),
    t!("prox-max-distance-over", "\"hate love\"~6", r#"{"text":"hate 1 2 3 4 5 6 7 love"}"#, false),
    t!("prox-three-in-order", "\"red green blue\"~2", r#"{"text":"red x green y blue"}"#, true),
    t!("prox-three-in-order-over", "\"red green blue\"~2", r#"{"text":"red x y green z blue"}"#, false),
    t!("prox-three-reversed-tight", "\"red green blue\"~2", r#"{"text":"blue green red"}"#, true),
    t!("prox-three-reversed-loose", "\"red green blue\"~2", r#"{"text":"blue x green red"}"#, false),
    t!("prox-case-insensitive", "\"Hate LOVE\"~2", r#"{"text":"HATE love"}"#, true),
    t!("prox-punctuation-not-tokens", "\"hate love\"~1", r#"{"text":"hate... love!!!"}"#, true),
    t!("prox-missing-one", "\"hate love\"~6", r#"{"text":"hate hate"}"#, false),
    t!("prox-repeated-needs-two-positions", "\"love love\"~2", r#"{"text":"love"}"#, false),
    t!("prox-repeated-two-positions", "\"love love\"~2", r#"{"text":"love x love"}"#, true),
    t!("prox-best-assignment", "\"hate love\"~3", r#"{"text":"love hate x x x x love"}"#, true),
    t!("prox-negated", "war -\"hate love\"~2", r#"{"text":"war hate love"}"#, false),
    t!(
        "prox-not-across-fields",
        "\"red green\"~6",
        r#"{"text":"red","is_quote_status":true,"quoted_status":{"id_str":"5","text":"green"}}"#,
        false,
    ),
    t!(
        "prox-in-extended-text",
        "\"hate love\"~2",
        r#"{"text":"I hate…","truncated":true,"extended_tweet":{"full_text":"I hate that I love it"}}"#,
        true,
    ),
];

// contains: substring of the folded text fields, ignoring token boundaries.
#[rustfmt::skip]
const CONTAINS: &[Case] = &[
    t!("contains-inside-word", "contains:ello", r#"{"text":"hello"}"#, true),
    t!("contains-case", "contains:HELLO", r#"{"text":"say Hello"}"#, true),
    t!("contains-phrase-space-needed", "contains:\"buy now\"", r#"{"text":"please buynow"}"#, false),
    t!("contains-phrase", "contains:\"buy now\"", r#"{"text":"BUY NOW!"}"#, true),
    t!("contains-across-tokens", "contains:\"lo wo\"", r#"{"text":"hello world"}"#, true),
    t!("contains-no-space-skipping", "contains:lowo", r#"{"text":"hello world"}"#, false),
    t!("contains-punctuation", "contains:\"a-b\"", r#"{"text":"xa-by"}"#, true),
    t!("contains-punctuation-literal", "contains:\"a-b\"", r#"{"text":"a b"}"#, false),
    t!("contains-accent-significant", "contains:anos", r#"{"text":"cumpleaños"}"#, false),
    t!("contains-accent", "contains:años", r#"{"text":"CUMPLEAÑOS"}"#, true),
    t!("contains-emoji", "contains:🍕", r#"{"text":"pizza🍕time"}"#, true),
    t!(
        "contains-not-across-quote-fields",
        "contains:\"abc def\"",
        r#"{"text":"abc","quoted_status":{"id_str":"9","text":"def"}}"#,
        false,
    ),
    t!(
        "contains-not-across-retweet-fields",
        "contains:\"abc def\"",
        r#"{"text":"RT @a: abc","retweeted_status":{"id_str":"9","text":"def"}}"#,
        false,
    ),
    t!("contains-negated", "pizza -contains:zza", r#"{"text":"pizza"}"#, false),
    t!(
        "contains-not-url-fields",
        "contains:nytimes",
        r#"{"text":"news","entities":{"urls":[{"expanded_url":"https://www.nytimes.com/a"}]}}"#,
        false,
    ),
    t!(
        "contains-retweet-original",
        "contains:secretword",
        r#"{"text":"RT @bob: long te…","retweeted_status":{"id_str":"9","text":"long te…","truncated":true,"extended_tweet":{"full_text":"long text with secretword"}}}"#,
        true,
    ),
    t!(
        "contains-quoted",
        "contains:\"uoted tex\"",
        r#"{"text":"look","quoted_status":{"id_str":"9","text":"quoted text"}}"#,
        true,
    ),
];

// #, @, $: entity matches, exact and case-insensitive, on every entity set of the post's posts.
#[rustfmt::skip]
const ENTITIES: &[Case] = &[
    t!("hashtag-entity", "#giants", r#"{"text":"x","entities":{"hashtags":[{"text":"Giants"}]}}"#, true),
    t!("hashtag-text-only", "#giants", r##"{"text":"#giants","entities":{"hashtags":[]}}"##, false),
    t!("hashtag-no-prefix", "#2016", r#"{"text":"x","entities":{"hashtags":[{"text":"2016election"}]}}"#, false),
    t!("hashtag-number", "#2016", r#"{"text":"x","entities":{"hashtags":[{"text":"2016"}]}}"#, true),
    t!("hashtag-accent-significant", "#niño", r#"{"text":"x","entities":{"hashtags":[{"text":"nino"}]}}"#, false),
    t!("hashtag-accent-case", "#NIÑO", r#"{"text":"x","entities":{"hashtags":[{"text":"niño"}]}}"#, true),
    t!("hashtag-negated", "baseball -#giants", r#"{"text":"baseball","entities":{"hashtags":[{"text":"GIANTS"}]}}"#, false),
    t!("hashtag-null-list", "#giants", r#"{"text":"giants","entities":{"hashtags":null}}"#, false),
    t!(
        "hashtag-extended-entities-only",
        "#longtag",
        r#"{"text":"short…","truncated":true,"entities":{"hashtags":[]},"extended_tweet":{"full_text":"short then #longtag","entities":{"hashtags":[{"text":"longtag"}]}}}"#,
        true,
    ),
    t!(
        "hashtag-in-quoted",
        "#cats",
        r#"{"text":"so true","quoted_status":{"id_str":"9","text":"x","entities":{"hashtags":[{"text":"cats"}]}}}"#,
        true,
    ),
    t!(
        "hashtag-in-retweeted",
        "#cats",
        r#"{"text":"RT @a: x","retweeted_status":{"id_str":"9","text":"x","entities":{"hashtags":[{"text":"Cats"}]}}}"#,
        true,
    ),
    t!(
        "hashtag-in-quote-of-retweet",
        "#cats",
        r#"{"text":"RT @a: so true","retweeted_status":{"id_str":"9","text":"so true","quoted_status":{"id_str":"8","text":"x","entities":{"hashtags":[{"text":"cats"}]}}}}"#,
        true,
    ),
    t!("hashtag-phrase-is-not-the-entity", "\"#giants\"", r#"{"text":"hello","entities":{"hashtags":[{"text":"giants"}]}}"#, false),
    t!("mention-entity", "@jack", r#"{"text":"x","entities":{"user_mentions":[{"screen_name":"Jack","id":12,"id_str":"12"}]}}"#, true),
    t!("mention-text-only", "@jack", r#"{"text":"@jack hi","entities":{"user_mentions":[]}}"#, false),
    t!("mention-by-id", "@12", r#"{"text":"x","entities":{"user_mentions":[{"screen_name":"jack","id":12,"id_str":"12"}]}}"#, true),
    t!("mention-by-id-missing-id", "@12", r#"{"text":"x","entities":{"user_mentions":[{"screen_name":"jack"}]}}"#, false),
    t!("mention-no-prefix", "@jack", r#"{"text":"x","entities":{"user_mentions":[{"screen_name":"jackdorsey"}]}}"#, false),
    t!("mention-null-list", "@jack", r#"{"text":"x","entities":{"user_mentions":null}}"#, false),
    t!("cashtag-entity", "$TWTR", r#"{"text":"x","entities":{"symbols":[{"text":"twtr"}]}}"#, true),
    t!("cashtag-text-only", "$twtr", r#"{"text":"$TWTR up","entities":{"symbols":[]}}"#, false),
    t!("cashtag-negated", "stocks -$TWTR", r#"{"text":"stocks","entities":{"symbols":[{"text":"TWTR"}]}}"#, false),
    t!(
        "cashtag-in-quoted",
        "$TWTR",
        r#"{"text":"x","quoted_status":{"id_str":"9","text":"y","entities":{"symbols":[{"text":"TWTR"}]}}}"#,
        true,
    ),
    t!(
        "mention-in-extended-entities",
        "@jack",
        r#"{"text":"a…","truncated":true,"extended_tweet":{"full_text":"a b @jack","entities":{"user_mentions":[{"screen_name":"jack","id_str":"12"}]}}}"#,
        true,
    ),
    t!(
        "mention-in-retweeted",
        "@carol",
        r#"{"text":"RT @a: hi","retweeted_status":{"id_str":"9","text":"hi @carol","entities":{"user_mentions":[{"screen_name":"carol"}]}}}"#,
        true,
    ),
    t!("mention-by-number-id", "@9007199254740993", r#"{"text":"x","entities":{"user_mentions":[{"screen_name":"a","id":9007199254740993}]}}"#, true),
];

// from:, to:, retweets_of:, status ids (numbers and strings, beyond 2^53 and at 2^63).
#[rustfmt::skip]
const USERS_AND_IDS: &[Case] = &[
    t!("from-name", "from:jack", r#"{"text":"x","user":{"screen_name":"Jack","id_str":"12"}}"#, true),
    t!("from-name-not-prefix", "from:jack", r#"{"text":"x","user":{"screen_name":"jackdorsey"}}"#, false),
    t!("from-id-str", "from:12", r#"{"text":"x","user":{"screen_name":"jack","id_str":"12"}}"#, true),
    t!("from-id-number", "from:12", r#"{"text":"x","user":{"screen_name":"jack","id":12}}"#, true),
    t!("from-id-other", "from:13", r#"{"text":"x","user":{"screen_name":"jack","id":12,"id_str":"12"}}"#, false),
    t!("from-id-2^63-1-string", "from:9223372036854775807", r#"{"text":"x","user":{"id_str":"9223372036854775807"}}"#, true),
    t!("from-id-2^63-1-number", "from:9223372036854775807", r#"{"text":"x","user":{"id":9223372036854775807}}"#, true),
    t!("from-id-2^63-number", "from:9223372036854775808", r#"{"text":"x","user":{"id":9223372036854775808}}"#, true),
    t!("from-id-2^53+1-number", "from:9007199254740993", r#"{"text":"x","user":{"id":9007199254740993}}"#, true),
    t!("from-id-2^53-is-not-2^53+1", "from:9007199254740993", r#"{"text":"x","user":{"id":9007199254740992}}"#, false),
    t!("from-no-user", "from:jack", r#"{"text":"x"}"#, false),
    t!("from-negated-no-user", "hello -from:jack", r#"{"text":"hello"}"#, true),
    t!(
        "from-retweeter-not-original-author",
        "from:alice",
        r#"{"text":"RT @alice: hi","user":{"screen_name":"bob"},"retweeted_status":{"id_str":"9","text":"hi","user":{"screen_name":"alice"}}}"#,
        false,
    ),
    t!(
        "from-retweeter",
        "from:bob",
        r#"{"text":"RT @alice: hi","user":{"screen_name":"bob"},"retweeted_status":{"id_str":"9","text":"hi","user":{"screen_name":"alice"}}}"#,
        true,
    ),
    t!("to-name", "to:jack", r#"{"text":"@Jack hi","in_reply_to_screen_name":"Jack","in_reply_to_status_id_str":"5"}"#, true),
    t!("to-id-str", "to:12", r#"{"text":"hi","in_reply_to_user_id_str":"12"}"#, true),
    t!("to-id-number-2^53+1", "to:9007199254740993", r#"{"text":"hi","in_reply_to_user_id":9007199254740993}"#, true),
    t!("to-id-str-2^63", "to:9223372036854775808", r#"{"text":"hi","in_reply_to_user_id_str":"9223372036854775808"}"#, true),
    t!("to-other-user", "to:jack", r#"{"text":"hi","in_reply_to_screen_name":"jill"}"#, false),
    t!("to-mention-is-not-reply", "to:jack", r#"{"text":"@jack hi","entities":{"user_mentions":[{"screen_name":"jack","id_str":"12"}]}}"#, false),
    t!(
        "retweets-of-name",
        "retweets_of:jack",
        r#"{"text":"RT @jack: hi","retweeted_status":{"id_str":"9","text":"hi","user":{"screen_name":"jack","id_str":"12"}}}"#,
        true,
    ),
    t!("retweets-of-own-post", "retweets_of:jack", r#"{"text":"hi","user":{"screen_name":"jack","id_str":"12"}}"#, false),
    t!(
        "retweets-of-id-2^63-1-number",
        "retweets_of:9223372036854775807",
        r#"{"text":"RT @jack: hi","retweeted_status":{"id_str":"9","text":"hi","user":{"id":9223372036854775807}}}"#,
        true,
    ),
    t!(
        "retweets-of-user-alias-id",
        "retweets_of_user:12",
        r#"{"text":"RT @jack: hi","retweeted_status":{"id_str":"9","text":"hi","user":{"screen_name":"jack","id_str":"12"}}}"#,
        true,
    ),
    t!(
        "retweets-of-quote-author",
        "retweets_of:jack",
        r#"{"text":"so true","quoted_status":{"id_str":"9","text":"hi","user":{"screen_name":"jack"}}}"#,
        false,
    ),
    t!(
        "rt-status-id-string",
        "retweets_of_status_id:1234",
        r#"{"text":"RT @a: x","retweeted_status":{"id_str":"1234","text":"x"}}"#,
        true,
    ),
    t!(
        "rt-status-id-2^63-1-number",
        "retweets_of_status_id:9223372036854775807",
        r#"{"text":"RT @a: x","retweeted_status":{"id":9223372036854775807,"text":"x"}}"#,
        true,
    ),
    t!(
        "rt-status-id-2^63-number",
        "retweets_of_status_id:9223372036854775808",
        r#"{"text":"RT @a: x","retweeted_status":{"id":9223372036854775808,"text":"x"}}"#,
        true,
    ),
    t!(
        "rt-tweet-id-alias-2^53+1-string",
        "retweets_of_tweet_id:9007199254740993",
        r#"{"text":"RT @a: x","retweeted_status":{"id_str":"9007199254740993","text":"x"}}"#,
        true,
    ),
    t!(
        "rt-tweet-id-alias-2^53-neighbour",
        "retweets_of_tweet_id:9007199254740993",
        r#"{"text":"RT @a: x","retweeted_status":{"id":9007199254740992,"text":"x"}}"#,
        false,
    ),
    t!(
        "rt-status-id-not-quote",
        "retweets_of_status_id:1234",
        r#"{"text":"x","quoted_status":{"id_str":"1234","text":"x"}}"#,
        false,
    ),
    t!(
        "reply-id-2^63-1-number",
        "in_reply_to_status_id:9223372036854775807",
        r#"{"text":"x","in_reply_to_status_id":9223372036854775807}"#,
        true,
    ),
    t!(
        "reply-id-2^63-1-string",
        "in_reply_to_status_id:9223372036854775807",
        r#"{"text":"x","in_reply_to_status_id_str":"9223372036854775807"}"#,
        true,
    ),
    t!(
        "reply-id-above-2^63-string",
        "in_reply_to_status_id:10000000000000000000",
        r#"{"text":"x","in_reply_to_status_id_str":"10000000000000000000"}"#,
        true,
    ),
    t!(
        "reply-tweet-id-alias-2^53-neighbour",
        "in_reply_to_tweet_id:9007199254740993",
        r#"{"text":"x","in_reply_to_status_id":9007199254740992}"#,
        false,
    ),
    t!(
        "reply-id-str-wins-over-rounded-number",
        "in_reply_to_status_id:1050118621198921728",
        r#"{"text":"x","in_reply_to_status_id":1050118621198921700,"in_reply_to_status_id_str":"1050118621198921728"}"#,
        true,
    ),
    t!("reply-id-null", "in_reply_to_status_id:5", r#"{"text":"x","in_reply_to_status_id":null}"#, false),
];

// bio:, bio_name:, bio_location: (root author) and the count operators at their bounds.
#[rustfmt::skip]
const PROFILE: &[Case] = &[
    t!("bio-word", "bio:developer", r#"{"text":"x","user":{"description":"Software Developer at X"}}"#, true),
    t!("bio-phrase", "bio:\"software developer\"", r#"{"text":"x","user":{"description":"Software Developer at X"}}"#, true),
    t!("bio-alias-no-prefix", "user_bio:develop", r#"{"text":"x","user":{"description":"Software Developer"}}"#, false),
    t!(
        "bio-root-author-only",
        "bio:developer",
        r#"{"text":"RT @a: x","user":{"description":"chef"},"retweeted_status":{"id_str":"9","text":"x","user":{"description":"developer"}}}"#,
        false,
    ),
    t!("bio-null", "bio:developer", r#"{"text":"x","user":{"description":null}}"#, false),
    t!(
        "followers-root-author-only",
        "followers_count:1000",
        r#"{"text":"RT @a: x","user":{"followers_count":10},"retweeted_status":{"id_str":"9","text":"x","user":{"followers_count":5000}}}"#,
        false,
    ),
    t!("bio-name", "bio_name:smith", r#"{"text":"x","user":{"name":"John Smith"}}"#, true),
    t!("bio-name-not-screen-name", "bio_name:jsmith", r#"{"text":"x","user":{"name":"John Smith","screen_name":"jsmith"}}"#, false),
    t!("bio-location-phrase", "bio_location:\"new york\"", r#"{"text":"x","user":{"location":"New York, NY"}}"#, true),
    t!("bio-location-alias", "user_bio_location:york", r#"{"text":"x","user":{"location":"New York, NY"}}"#, true),
    t!("bio-location-order", "bio_location:\"york new\"", r#"{"text":"x","user":{"location":"New York, NY"}}"#, false),
    t!("followers-at-least-equal", "followers_count:1000", r#"{"text":"x","user":{"followers_count":1000}}"#, true),
    t!("followers-at-least-below", "followers_count:1000", r#"{"text":"x","user":{"followers_count":999}}"#, false),
    t!("followers-range-low-bound", "followers_count:1000..2000", r#"{"text":"x","user":{"followers_count":1000}}"#, true),
    t!("followers-range-high-bound", "followers_count:1000..2000", r#"{"text":"x","user":{"followers_count":2000}}"#, true),
    t!("followers-range-above", "followers_count:1000..2000", r#"{"text":"x","user":{"followers_count":2001}}"#, false),
    t!("followers-range-below", "followers_count:1000..2000", r#"{"text":"x","user":{"followers_count":999}}"#, false),
    t!("followers-zero", "followers_count:0", r#"{"text":"x","user":{"followers_count":0}}"#, true),
    t!("followers-missing", "followers_count:0", r#"{"text":"x","user":{"screen_name":"a"}}"#, false),
    t!("followers-no-user", "followers_count:0", r#"{"text":"x"}"#, false),
    t!("followers-negated-no-user", "hello -followers_count:1000", r#"{"text":"hello"}"#, true),
    t!("friends-single-point-range", "friends_count:10..10", r#"{"text":"x","user":{"friends_count":10}}"#, true),
    t!("following-alias", "following_count:5", r#"{"text":"x","user":{"friends_count":5}}"#, true),
    t!("following-alias-is-friends", "following_count:5", r#"{"text":"x","user":{"followers_count":5,"friends_count":4}}"#, false),
    t!("statuses-range", "statuses_count:100..200", r#"{"text":"x","user":{"statuses_count":150}}"#, true),
    t!("tweets-alias-below", "tweets_count:100", r#"{"text":"x","user":{"statuses_count":99}}"#, false),
    t!("listed-zero-range", "listed_count:0..0", r#"{"text":"x","user":{"listed_count":0}}"#, true),
    t!("user-in-lists-alias", "user_in_lists_count:1", r#"{"text":"x","user":{"listed_count":0}}"#, false),
    t!("followers-huge", "followers_count:100000000", r#"{"text":"x","user":{"followers_count":123456789}}"#, true),
];

// url:, url_contains:, url_title:, url_description: and keywords on URL fields.
#[rustfmt::skip]
const URL_POST: &str = r#"{"text":"read https://t.co/abc","entities":{"urls":[{"url":"https://t.co/abc","expanded_url":"https://developer.x.com/en/docs","display_url":"developer.x.com/en/docs","unwound":{"url":"https://developer.x.com/en/docs/overview","status":200,"title":"Docs Overview | X Developer","description":"Everything about the X API"}}]}}"#;

#[rustfmt::skip]
const URLS: &[Case] = &[
    t!("url-word", "url:developer", URL_POST, true),
    t!("url-quoted-host", "url:\"developer.x.com\"", URL_POST, true),
    t!("url-quoted-path", "url:\"/en/docs\"", URL_POST, true),
    t!("url-unwound-only", "url:overview", URL_POST, true),
    t!("url-tco-is-not-a-url-field", "url:abc", URL_POST, false),
    t!("url-not-in-text", "url:docs", r#"{"text":"docs https://example.com/docs"}"#, false),
    t!("url-no-prefix", "url:develop", URL_POST, false),
    t!("url-contains-host-part", "url_contains:\"developer.x\"", URL_POST, true),
    t!("url-contains-across-slash", "url_contains:\"x.com/en\"", URL_POST, true),
    t!("url-contains-case", "url_contains:DEVELOPER", URL_POST, true),
    t!("url-contains-substring", "url_contains:evelop", URL_POST, true),
    t!("url-contains-tco-not-field", "url_contains:\"t.co/abc\"", URL_POST, false),
    t!("url-contains-absent", "url_contains:\"google.com\"", URL_POST, false),
    t!("url-title", "url_title:overview", URL_POST, true),
    t!("url-title-alias-phrase", "within_url_title:\"x developer\"", URL_POST, true),
    t!("url-title-not-description", "url_title:everything", URL_POST, false),
    t!("url-description-phrase", "url_description:\"x api\"", URL_POST, true),
    t!("url-description-alias", "within_url_description:everything", URL_POST, true),
    t!("url-description-not-title", "url_description:overview", URL_POST, false),
    t!("kw-in-expanded-url", "docs", URL_POST, true),
    t!("kw-in-unwound-url", "overview", URL_POST, true),
    t!("kw-not-in-description", "everything", URL_POST, false),
    t!(
        "url-in-quoted",
        "url:\"developer.x.com\"",
        r#"{"text":"look","quoted_status":{"id_str":"9","text":"x","entities":{"urls":[{"expanded_url":"https://developer.x.com/"}]}}}"#,
        true,
    ),
    t!(
        "url-in-extended-entities",
        "url_contains:\"example.org/long\"",
        r#"{"text":"a…","truncated":true,"entities":{"urls":[]},"extended_tweet":{"full_text":"a b https://t.co/q","entities":{"urls":[{"url":"https://t.co/q","expanded_url":"https://example.org/long"}]}}}"#,
        true,
    ),
    t!("url-null-list", "url:example", r#"{"text":"x","entities":{"urls":null}}"#, false),
    t!(
        "url-title-in-quoted",
        "url_title:gazette",
        r#"{"text":"x","quoted_status":{"id_str":"9","text":"y","entities":{"urls":[{"expanded_url":"https://a.example/","unwound":{"url":"https://a.example/","title":"The Gazette"}}]}}}"#,
        true,
    ),
    t!(
        "kw-in-quoted-url",
        "gazette",
        r#"{"text":"x","quoted_status":{"id_str":"9","text":"y","entities":{"urls":[{"expanded_url":"https://gazette.example/"}]}}}"#,
        true,
    ),
    t!(
        "phrase-not-across-text-and-url",
        "\"read gazette\"",
        r#"{"text":"read","entities":{"urls":[{"expanded_url":"https://gazette.example/"}]}}"#,
        false,
    ),
    t!(
        "url-unwound-without-expanded",
        "url:final",
        r#"{"text":"x","entities":{"urls":[{"url":"https://t.co/a","unwound":{"url":"https://final.example/"}}]}}"#,
        true,
    ),
];

// Geo: root only, never on Retweets; polygons must be fully inside.
#[rustfmt::skip]
const PLACE_POST: &str = r#"{"text":"x","place":{"id":"01a9a39529b27f36","name":"Manhattan","full_name":"Manhattan, NY","country_code":"US","bounding_box":{"type":"Polygon","coordinates":[[[-73.9907,40.7434],[-73.9807,40.7434],[-73.9807,40.7534],[-73.9907,40.7534]]]}}}"#;

#[rustfmt::skip]
const GEO: &[Case] = &[
    t!("full-place-has-geo", "has:geo", PLACE_POST, true),
    t!("full-place-name", "place:manhattan", PLACE_POST, true),
    t!("full-place-country", "place_country:US", PLACE_POST, true),
    t!("full-place-in-radius", "point_radius:[-73.9857 40.7484 1mi]", PLACE_POST, true),
    t!("full-place-in-box", "bounding_box:[-74.0 40.7 -73.9 40.8]", PLACE_POST, true),
    t!("full-place-outside-box", "bounding_box:[-73.95 40.7 -73.85 40.8]", PLACE_POST, false),
    t!(
        "radius-point-centre",
        "point_radius:[-73.9857 40.7484 1mi]",
        r#"{"text":"x","coordinates":{"type":"Point","coordinates":[-73.9857,40.7484]}}"#,
        true,
    ),
    t!(
        "radius-point-1.38mi-outside-1mi",
        "point_radius:[-73.9857 40.7484 1mi]",
        r#"{"text":"x","coordinates":{"type":"Point","coordinates":[-73.9857,40.7684]}}"#,
        false,
    ),
    t!(
        "radius-point-1.38mi-inside-2mi",
        "point_radius:[-73.9857 40.7484 2mi]",
        r#"{"text":"x","coordinates":{"type":"Point","coordinates":[-73.9857,40.7684]}}"#,
        true,
    ),
    t!(
        "radius-point-2.22km-outside-2km",
        "point_radius:[-73.9857 40.7484 2km]",
        r#"{"text":"x","coordinates":{"type":"Point","coordinates":[-73.9857,40.7684]}}"#,
        false,
    ),
    t!(
        "radius-point-2.22km-inside-3km",
        "point_radius:[-73.9857 40.7484 3km]",
        r#"{"text":"x","coordinates":{"type":"Point","coordinates":[-73.9857,40.7684]}}"#,
        true,
    ),
    t!(
        "radius-place-fully-inside",
        "point_radius:[-73.9857 40.7484 1mi]",
        r#"{"text":"x","place":{"id":"p","bounding_box":{"type":"Polygon","coordinates":[[[-73.9907,40.7434],[-73.9807,40.7434],[-73.9807,40.7534],[-73.9907,40.7534]]]}}}"#,
        true,
    ),
    t!(
        "radius-place-partly-inside",
        "point_radius:[-73.9857 40.7484 1mi]",
        r#"{"text":"x","place":{"id":"p","bounding_box":{"type":"Polygon","coordinates":[[[-74.0357,40.6984],[-73.9357,40.6984],[-73.9357,40.7984],[-74.0357,40.7984]]]}}}"#,
        false,
    ),
    t!("radius-no-geo", "point_radius:[-73.9857 40.7484 1mi]", r#"{"text":"x"}"#, false),
    t!(
        "radius-retweet-root-geo",
        "point_radius:[-73.9857 40.7484 1mi]",
        r#"{"text":"RT @a: x","coordinates":{"type":"Point","coordinates":[-73.9857,40.7484]},"retweeted_status":{"id_str":"9","text":"x"}}"#,
        false,
    ),
    t!(
        "radius-retweet-original-geo",
        "point_radius:[-73.9857 40.7484 1mi]",
        r#"{"text":"RT @a: x","retweeted_status":{"id_str":"9","text":"x","coordinates":{"type":"Point","coordinates":[-73.9857,40.7484]}}}"#,
        false,
    ),
    t!(
        "radius-quoted-geo",
        "point_radius:[-73.9857 40.7484 1mi]",
        r#"{"text":"so true","quoted_status":{"id_str":"9","text":"x","coordinates":{"type":"Point","coordinates":[-73.9857,40.7484]}}}"#,
        false,
    ),
    t!(
        "radius-negated",
        "hello -point_radius:[-73.9857 40.7484 1mi]",
        r#"{"text":"hello","coordinates":{"type":"Point","coordinates":[-73.9857,40.7484]}}"#,
        false,
    ),
    t!(
        "bbox-point-inside",
        "bounding_box:[-74.0 40.7 -73.9 40.8]",
        r#"{"text":"x","coordinates":{"type":"Point","coordinates":[-73.9857,40.7484]}}"#,
        true,
    ),
    t!(
        "bbox-point-east-outside",
        "bounding_box:[-74.0 40.7 -73.9 40.8]",
        r#"{"text":"x","coordinates":{"type":"Point","coordinates":[-73.85,40.75]}}"#,
        false,
    ),
    t!(
        "bbox-point-on-west-edge",
        "bounding_box:[-74.0 40.7 -73.9 40.8]",
        r#"{"text":"x","coordinates":{"type":"Point","coordinates":[-74.0,40.75]}}"#,
        true,
    ),
    t!(
        "bbox-point-lon-lat-order",
        "bounding_box:[-74.0 40.7 -73.9 40.8]",
        r#"{"text":"x","coordinates":{"type":"Point","coordinates":[40.75,-73.95]}}"#,
        false,
    ),
    t!(
        "geo-bbox-alias",
        "geo_bounding_box:[-74.0 40.7 -73.9 40.8]",
        r#"{"text":"x","coordinates":{"type":"Point","coordinates":[-73.9857,40.7484]}}"#,
        true,
    ),
    t!(
        "bbox-place-fully-inside",
        "bounding_box:[-74.0 40.7 -73.9 40.8]",
        r#"{"text":"x","place":{"id":"p","bounding_box":{"type":"Polygon","coordinates":[[[-73.9907,40.7434],[-73.9807,40.7434],[-73.9807,40.7534],[-73.9907,40.7534]]]}}}"#,
        true,
    ),
    t!(
        "bbox-place-partly-inside",
        "bounding_box:[-74.0 40.7 -73.9 40.8]",
        r#"{"text":"x","place":{"id":"p","bounding_box":{"type":"Polygon","coordinates":[[[-74.05,40.70],[-73.95,40.70],[-73.95,40.80],[-74.05,40.80]]]}}}"#,
        false,
    ),
    t!("place-name", "place:manhattan", r#"{"text":"x","place":{"id":"01a9a39529b27f36","name":"Manhattan","full_name":"Manhattan, NY"}}"#, true),
    t!("place-full-name-phrase", "place:\"Manhattan, NY\"", r#"{"text":"x","place":{"id":"01a9a39529b27f36","name":"Manhattan","full_name":"Manhattan, NY"}}"#, true),
    t!("place-other", "place:brooklyn", r#"{"text":"x","place":{"id":"01a9a39529b27f36","name":"Manhattan","full_name":"Manhattan, NY"}}"#, false),
    t!("place-id", "place:01a9a39529b27f36", r#"{"text":"x","place":{"id":"01a9a39529b27f36","name":"Manhattan","full_name":"Manhattan, NY"}}"#, true),
    t!(
        "place-retweet",
        "place:manhattan",
        r#"{"text":"RT @a: x","place":{"id":"01a9a39529b27f36","name":"Manhattan","full_name":"Manhattan, NY"},"retweeted_status":{"id_str":"9","text":"x"}}"#,
        false,
    ),
    t!("place-country", "place_country:us", r#"{"text":"x","place":{"id":"p","country_code":"US"}}"#, true),
    t!("place-country-other", "place_country:ca", r#"{"text":"x","place":{"id":"p","country_code":"US"}}"#, false),
    t!("place-null", "place_country:us", r#"{"text":"x","place":null}"#, false),
    t!("has-geo-point", "has:geo", r#"{"text":"x","coordinates":{"type":"Point","coordinates":[1.0,2.0]}}"#, true),
    t!("has-geo-place", "has:geo", r#"{"text":"x","place":{"id":"p","full_name":"Paris, France"}}"#, true),
    t!("has-geo-nulls", "has:geo", r#"{"text":"x","coordinates":null,"place":null,"geo":null}"#, false),
    t!(
        "has-geo-retweet-of-geo-post",
        "has:geo",
        r#"{"text":"RT @a: x","retweeted_status":{"id_str":"9","text":"x","coordinates":{"type":"Point","coordinates":[1.0,2.0]}}}"#,
        false,
    ),
    t!("not-has-geo", "hello -has:geo", r#"{"text":"hello"}"#, true),
    t!("has-geo-coordinates-without-point", "has:geo", r#"{"text":"x","coordinates":{"type":"Point"}}"#, false),
    t!(
        "radius-closed-ring-fully-inside",
        "point_radius:[-73.9857 40.7484 1mi]",
        r#"{"text":"x","place":{"id":"p","bounding_box":{"type":"Polygon","coordinates":[[[-73.9907,40.7434],[-73.9807,40.7434],[-73.9807,40.7534],[-73.9907,40.7534],[-73.9907,40.7434]]]}}}"#,
        true,
    ),
    t!(
        "bbox-retweet-original-place",
        "bounding_box:[-74.0 40.7 -73.9 40.8]",
        r#"{"text":"RT @a: x","retweeted_status":{"id_str":"9","text":"x","place":{"id":"p","bounding_box":{"type":"Polygon","coordinates":[[[-73.9907,40.7434],[-73.9807,40.7434],[-73.9807,40.7534],[-73.9907,40.7534]]]}}}}"#,
        false,
    ),
    t!(
        "place-quoted",
        "place:manhattan",
        r#"{"text":"so true","quoted_status":{"id_str":"9","text":"x","place":{"id":"p","name":"Manhattan","full_name":"Manhattan, NY"}}}"#,
        false,
    ),
    t!(
        "place-country-retweet",
        "place_country:us",
        r#"{"text":"RT @a: x","place":{"id":"p","country_code":"US"},"retweeted_status":{"id_str":"9","text":"x","place":{"id":"p","country_code":"US"}}}"#,
        false,
    ),
];

// Profile Geo (user.derived.locations) of the root author.
#[rustfmt::skip]
const PROFILE_GEO_USER: &str = r#"{"text":"x","user":{"screen_name":"a","derived":{"locations":[{"country":"United States","country_code":"US","locality":"New York City","region":"New York","sub_region":"New York County","full_name":"New York City, New York, United States","geo":{"coordinates":[-73.9857,40.7484],"type":"point"}}]}}}"#;

#[rustfmt::skip]
const PROFILE_GEO: &[Case] = &[
    t!("profile-country", "profile_country:us", PROFILE_GEO_USER, true),
    t!("profile-country-other", "profile_country:gb", PROFILE_GEO_USER, false),
    t!("profile-region-full-string", "profile_region:\"new york\"", PROFILE_GEO_USER, true),
    t!("profile-region-not-a-word", "profile_region:york", PROFILE_GEO_USER, false),
    t!("profile-locality", "profile_locality:\"New York City\"", PROFILE_GEO_USER, true),
    t!("profile-locality-partial", "profile_locality:\"New York\"", PROFILE_GEO_USER, false),
    t!("profile-subregion", "profile_subregion:\"New York County\"", PROFILE_GEO_USER, true),
    t!("profile-radius-inside", "profile_point_radius:[-73.98 40.75 5km]", PROFILE_GEO_USER, true),
    t!("profile-radius-outside", "profile_point_radius:[-0.1276 51.5072 20mi]", PROFILE_GEO_USER, false),
    t!("profile-bbox-inside", "profile_bounding_box:[-74.0 40.7 -73.9 40.8]", PROFILE_GEO_USER, true),
    t!("profile-bbox-outside", "profile_bounding_box:[-0.2 51.4 -0.1 51.6]", PROFILE_GEO_USER, false),
    t!("has-profile-geo", "has:profile_geo", PROFILE_GEO_USER, true),
    t!("has-derived-user-geo-alias", "has:derived_user_geo", PROFILE_GEO_USER, true),
    t!("has-profile-geo-empty", "has:profile_geo", r#"{"text":"x","user":{"derived":{"locations":[]}}}"#, false),
    t!("has-profile-geo-none", "has:profile_geo", r#"{"text":"x","user":{"screen_name":"a"}}"#, false),
    t!("profile-country-no-user", "profile_country:us", r#"{"text":"x"}"#, false),
    t!(
        "profile-country-root-author-only",
        "profile_country:us",
        r#"{"text":"RT @a: x","user":{"screen_name":"b"},"retweeted_status":{"id_str":"9","text":"x","user":{"derived":{"locations":[{"country_code":"US"}]}}}}"#,
        false,
    ),
];

// has: and is: attributes, each way.
#[rustfmt::skip]
const HAS_IS: &[Case] = &[
    t!("has-links-url", "has:links", r#"{"text":"x","entities":{"urls":[{"expanded_url":"https://a.example/"}]}}"#, true),
    t!("has-links-media", "has:links", r#"{"text":"x","entities":{"urls":[],"media":[{"type":"photo"}]}}"#, true),
    t!("has-links-empty", "has:links", r#"{"text":"x https://a.example/","entities":{"urls":[]}}"#, false),
    t!("has-links-no-entities", "has:links", r#"{"text":"x"}"#, false),
    t!(
        "has-links-quoted",
        "has:links",
        r#"{"text":"x","quoted_status":{"id_str":"9","text":"y","entities":{"urls":[{"expanded_url":"https://a.example/"}]}}}"#,
        true,
    ),
    t!("not-has-links-null", "hello -has:links", r#"{"text":"hello","entities":{"urls":null}}"#, true),
    t!("has-mentions", "has:mentions", r#"{"text":"x","entities":{"user_mentions":[{"screen_name":"a"}]}}"#, true),
    t!("has-mentions-empty", "has:mentions", r#"{"text":"@a","entities":{"user_mentions":[]}}"#, false),
    t!("has-hashtags", "has:hashtags", r#"{"text":"x","entities":{"hashtags":[{"text":"a"}]}}"#, true),
    t!("has-hashtags-null", "has:hashtags", r##"{"text":"#a","entities":{"hashtags":null}}"##, false),
    t!("not-has-hashtags-no-entities", "hello -has:hashtags", r#"{"text":"hello"}"#, true),
    t!("has-symbols", "has:symbols", r#"{"text":"x","entities":{"symbols":[{"text":"TWTR"}]}}"#, true),
    t!("has-symbols-empty", "has:symbols", r#"{"text":"$TWTR","entities":{"symbols":[]}}"#, false),
    t!("has-media-extended", "has:media", r#"{"text":"x","extended_entities":{"media":[{"type":"photo"}]}}"#, true),
    t!("has-media-link-alias", "has:media_link", r#"{"text":"x","entities":{"media":[{"type":"video"}]}}"#, true),
    t!("has-media-empty", "has:media", r#"{"text":"x","entities":{"media":[]}}"#, false),
    t!("has-images-photo", "has:images", r#"{"text":"x","extended_entities":{"media":[{"type":"video"},{"type":"photo"}]}}"#, true),
    t!("has-images-video-only", "has:images", r#"{"text":"x","extended_entities":{"media":[{"type":"video"}]}}"#, false),
    t!("has-videos", "has:videos", r#"{"text":"x","extended_entities":{"media":[{"type":"video"}]}}"#, true),
    t!("has-video-link-alias", "has:video_link", r#"{"text":"x","extended_entities":{"media":[{"type":"video"}]}}"#, true),
    t!("has-videos-gif-is-not-video", "has:videos", r#"{"text":"x","extended_entities":{"media":[{"type":"animated_gif"}]}}"#, false),
    t!("has-videos-photo", "has:videos", r#"{"text":"x","extended_entities":{"media":[{"type":"photo"}]}}"#, false),
    t!("has-lang", "has:lang", r#"{"text":"x","lang":"en"}"#, true),
    t!("has-lang-und", "has:lang", r#"{"text":"x","lang":"und"}"#, false),
    t!("has-lang-missing", "has:lang", r#"{"text":"x"}"#, false),
    t!("has-lang-empty", "has:lang", r#"{"text":"x","lang":""}"#, false),
    t!("is-retweet", "is:retweet", r#"{"text":"RT @a: x","retweeted_status":{"id_str":"9","text":"x"}}"#, true),
    t!("is-retweet-quote", "is:retweet", r#"{"text":"x","is_quote_status":true,"quoted_status":{"id_str":"9","text":"x"}}"#, false),
    t!("not-is-retweet", "hello -is:retweet", r#"{"text":"RT @a: hello","retweeted_status":{"id_str":"9","text":"hello"}}"#, false),
    t!("is-reply", "is:reply", r#"{"text":"x","in_reply_to_status_id":5,"in_reply_to_status_id_str":"5"}"#, true),
    t!("is-reply-null", "is:reply", r#"{"text":"x","in_reply_to_status_id":null,"in_reply_to_status_id_str":null}"#, false),
    t!(
        "is-reply-in-quoted",
        "is:reply",
        r#"{"text":"x","quoted_status":{"id_str":"9","text":"y","in_reply_to_status_id_str":"5"}}"#,
        true,
    ),
    t!(
        "is-reply-in-retweeted",
        "is:reply",
        r#"{"text":"RT @a: y","retweeted_status":{"id_str":"9","text":"y","in_reply_to_status_id":5}}"#,
        true,
    ),
    t!("is-quote-flag", "is:quote", r#"{"text":"x","is_quote_status":true}"#, true),
    t!("is-quote-nested", "is:quote", r#"{"text":"x","quoted_status":{"id_str":"9","text":"y"}}"#, true),
    t!("is-quote-false", "is:quote", r#"{"text":"x","is_quote_status":false}"#, false),
    t!("is-quote-retweet", "is:quote", r#"{"text":"RT @a: y","retweeted_status":{"id_str":"9","text":"y"}}"#, false),
    t!("is-verified", "is:verified", r#"{"text":"x","user":{"verified":true}}"#, true),
    t!("is-verified-false", "is:verified", r#"{"text":"x","user":{"verified":false}}"#, false),
    t!("is-verified-no-user", "is:verified", r#"{"text":"x"}"#, false),
    t!(
        "is-verified-root-author-only",
        "is:verified",
        r#"{"text":"RT @a: x","user":{"verified":false},"retweeted_status":{"id_str":"9","text":"x","user":{"verified":true}}}"#,
        false,
    ),
    t!("is-reply-id-str-only", "is:reply", r#"{"text":"x","in_reply_to_status_id_str":"5"}"#, true),
    t!(
        "has-media-in-quoted",
        "has:media",
        r#"{"text":"x","quoted_status":{"id_str":"9","text":"y","extended_entities":{"media":[{"type":"photo"}]}}}"#,
        true,
    ),
    t!(
        "has-images-extended-tweet",
        "has:images",
        r#"{"text":"x…","truncated":true,"extended_tweet":{"full_text":"x y","extended_entities":{"media":[{"type":"photo"}]}}}"#,
        true,
    ),
    t!("has-images-gif", "has:images", r#"{"text":"x","extended_entities":{"media":[{"type":"animated_gif"}]}}"#, false),
    t!("not-is-verified-no-user", "hello -is:verified", r#"{"text":"hello"}"#, true),
    t!("not-nullcast-nullcast", "hello -is:nullcast", r#"{"text":"hello","scopes":{"followers":false}}"#, false),
    t!("not-nullcast-public", "hello -is:nullcast", r#"{"text":"hello","scopes":{"followers":true}}"#, true),
    t!("not-nullcast-no-scopes", "hello -is:nullcast", r#"{"text":"hello"}"#, true),
];

// lang: (root lang, never und), source:.
#[rustfmt::skip]
const LANG_SOURCE: &[Case] = &[
    t!("lang-en", "lang:en", r#"{"text":"x","lang":"en"}"#, true),
    t!("lang-other", "lang:en", r#"{"text":"x","lang":"fr"}"#, false),
    t!("lang-und", "lang:en", r#"{"text":"x","lang":"und"}"#, false),
    t!("lang-missing", "lang:en", r#"{"text":"x"}"#, false),
    t!("lang-region-code", "lang:zh-CN", r#"{"text":"x","lang":"zh-CN"}"#, true),
    t!("lang-script-code", "lang:hi-Latn", r#"{"text":"x","lang":"hi-Latn"}"#, true),
    t!("lang-plain-zh", "lang:zh", r#"{"text":"x","lang":"zh"}"#, true),
    t!("lang-two-never", "lang:en lang:fr", r#"{"text":"x","lang":"en"}"#, false),
    t!("lang-either", "lang:en OR lang:fr", r#"{"text":"x","lang":"fr"}"#, true),
    t!("lang-negated-und", "hello -lang:en", r#"{"text":"hello","lang":"und"}"#, true),
    t!("lang-und-rule-never", "hello lang:und", r#"{"text":"hello","lang":"und"}"#, false),
    t!("lang-und-rule-negated", "hello -lang:und", r#"{"text":"hello","lang":"und"}"#, true),
    t!("lang-root-only", "lang:fr", r#"{"text":"RT @a: x","lang":"en","retweeted_status":{"id_str":"9","text":"x","lang":"fr"}}"#, false),
    t!(
        "source-app-name",
        "hello source:tweetdeck",
        r#"{"text":"hello","source":"<a href=\"https://tweetdeck.twitter.com\" rel=\"nofollow\">TweetDeck</a>"}"#,
        true,
    ),
    t!(
        "source-app-phrase",
        "hello source:\"twitter for iphone\"",
        r#"{"text":"hello","source":"<a href=\"http://twitter.com/download/iphone\" rel=\"nofollow\">Twitter for iPhone</a>"}"#,
        true,
    ),
    t!(
        "source-app-url",
        "hello source:\"twitter.com/download/iphone\"",
        r#"{"text":"hello","source":"<a href=\"http://twitter.com/download/iphone\" rel=\"nofollow\">Twitter for iPhone</a>"}"#,
        true,
    ),
    t!(
        "source-other-app",
        "hello source:android",
        r#"{"text":"hello","source":"<a href=\"http://twitter.com/download/iphone\" rel=\"nofollow\">Twitter for iPhone</a>"}"#,
        false,
    ),
    t!("source-missing", "hello source:tweetdeck", r#"{"text":"hello"}"#, false),
];

// Which text is scanned: Retweets (root + original), Quotes (+ quoted), extended posts.
#[rustfmt::skip]
const TEXT_FIELDS: &[Case] = &[
    t!(
        "rt-original-full-text",
        "iceland",
        r#"{"text":"RT @alice: Breaking news about volcano…","user":{"screen_name":"bob"},"retweeted_status":{"id_str":"777","text":"Breaking news about volcano…","truncated":true,"user":{"screen_name":"alice"},"extended_tweet":{"full_text":"Breaking news about volcanoes erupting in Iceland"}}}"#,
        true,
    ),
    t!(
        "rt-root-text-prefix",
        "\"rt alice\"",
        r#"{"text":"RT @alice: hi","retweeted_status":{"id_str":"777","text":"hi"}}"#,
        true,
    ),
    t!(
        "rt-root-mention",
        "@alice",
        r#"{"text":"RT @alice: hi","entities":{"user_mentions":[{"screen_name":"alice","id_str":"42"}]},"retweeted_status":{"id_str":"777","text":"hi"}}"#,
        true,
    ),
    t!(
        "quote-quoted-text",
        "cats",
        r#"{"text":"So true","is_quote_status":true,"quoted_status":{"id_str":"9","text":"cats rule"}}"#,
        true,
    ),
    t!(
        "quote-both-texts-and",
        "true cats",
        r#"{"text":"So true","is_quote_status":true,"quoted_status":{"id_str":"9","text":"cats rule"}}"#,
        true,
    ),
    t!(
        "quote-quoted-extended-text",
        "finale",
        r#"{"text":"wow","quoted_status":{"id_str":"9","text":"long…","truncated":true,"extended_tweet":{"full_text":"long story with a finale"}}}"#,
        true,
    ),
    t!(
        "retweet-of-quote-quoted-text",
        "gem",
        r#"{"text":"RT @a: look","retweeted_status":{"id_str":"9","text":"look","quoted_status":{"id_str":"8","text":"hidden gem"}}}"#,
        true,
    ),
    t!(
        "quote-of-quote-not-scanned",
        "deep",
        r#"{"text":"a","quoted_status":{"id_str":"9","text":"b","quoted_status":{"id_str":"8","text":"deep"}}}"#,
        false,
    ),
    t!(
        "extended-full-text",
        "zebra",
        r#"{"text":"This is the truncated version of a long post… https://t.co/x","truncated":true,"extended_tweet":{"full_text":"This is the truncated version of a long post, ending with zebra"}}"#,
        true,
    ),
    t!(
        "extended-phrase-beyond-truncation",
        "\"ending with zebra\"",
        r#"{"text":"This is… https://t.co/x","truncated":true,"extended_tweet":{"full_text":"This is a long post, ending with zebra"}}"#,
        true,
    ),
    t!("full-text-field", "giraffe", r#"{"full_text":"a giraffe"}"#, true),
    t!(
        "truncated-text-not-scanned-when-extended",
        "zzz",
        r#"{"text":"Long… https://t.co/ZZZ","truncated":true,"extended_tweet":{"full_text":"Long post here"}}"#,
        false,
    ),
    t!(
        "quote-root-extended-and-quoted",
        "\"post here\" cats",
        r#"{"text":"Long…","truncated":true,"extended_tweet":{"full_text":"Long post here"},"quoted_status":{"id_str":"9","text":"cats"}}"#,
        true,
    ),
    t!("no-text", "hello", r#"{"lang":"en"}"#, false),
    t!("null-text", "hello", r#"{"text":null}"#, false),
    t!("negated-on-missing-text", "lang:en -hello", r#"{"lang":"en"}"#, true),
    t!("empty-post", "hello", "{}", false),
    t!("unknown-fields-ignored", "hello", r#"{"text":"hello","brand_new_field":{"a":[1,2,3]},"matching_rules":[]}"#, true),
];

// The v2 filtered stream's own operators (rules in the v2 dialect): `has:cashtags` reads
// symbols like `has:symbols`; `conversation_id:` the root's conversation id (its own id when
// it is not a reply and the payload has none); `context:`, `entity:` and `embedding:` never
// match (the native format has no annotations, sluice no embedding model).
#[rustfmt::skip]
const V2_OPERATORS: &[Case] = &[
    t!("has-cashtags", "x has:cashtags", r#"{"text":"x","entities":{"symbols":[{"text":"TWTR"}]}}"#, true),
    t!("has-cashtags-empty", "x has:cashtags", r#"{"text":"x $TWTR","entities":{"symbols":[]}}"#, false),
    t!("has-cashtags-null", "x has:cashtags", r#"{"text":"x $TWTR","entities":{"symbols":null}}"#, false),
    t!("has-cashtags-no-entities", "x has:cashtags", r#"{"text":"x"}"#, false),
    t!("has-cashtags-extended", "x has:cashtags", r#"{"text":"x…","extended_tweet":{"full_text":"x $A","entities":{"symbols":[{"text":"A"}]}}}"#, true),
    t!("has-cashtags-quoted", "x has:cashtags", r#"{"text":"x","quoted_status":{"id_str":"9","text":"y","entities":{"symbols":[{"text":"A"}]}}}"#, true),
    t!("not-has-cashtags", "x -has:cashtags", r#"{"text":"x","entities":{"symbols":[{"text":"A"}]}}"#, false),
    t!("not-has-cashtags-none", "x -has:cashtags", r#"{"text":"x","entities":{"hashtags":[{"text":"A"}]}}"#, true),
    t!("conversation-id-str", "conversation_id:7", r#"{"text":"x","conversation_id_str":"7"}"#, true),
    t!("conversation-id-number", "conversation_id:7", r#"{"text":"x","conversation_id":7}"#, true),
    t!("conversation-id-str-wins", "conversation_id:8", r#"{"text":"x","conversation_id":8,"conversation_id_str":"7"}"#, false),
    t!("conversation-other", "conversation_id:8", r#"{"text":"x","conversation_id_str":"7"}"#, false),
    t!("conversation-own-id", "conversation_id:1050118621198921728", r#"{"text":"x"}"#, true),
    t!("conversation-own-id-null", "conversation_id:1050118621198921728", r#"{"text":"x","conversation_id_str":null}"#, true),
    t!("conversation-reply-unknown", "conversation_id:1050118621198921728", r#"{"text":"x","in_reply_to_status_id_str":"9"}"#, false),
    t!("conversation-reply-parent-is-not-root", "conversation_id:9", r#"{"text":"x","in_reply_to_status_id_str":"9"}"#, false),
    t!("conversation-reply-known", "conversation_id:7", r#"{"text":"x","in_reply_to_status_id_str":"9","conversation_id_str":"7"}"#, true),
    t!("conversation-root-only", "conversation_id:7", r#"{"text":"x","conversation_id_str":"8","quoted_status":{"id_str":"7","text":"y","conversation_id_str":"7"}}"#, false),
    t!("conversation-retweet-own-id", "conversation_id:1050118621198921728", r#"{"text":"RT @a: y","retweeted_status":{"id_str":"9","text":"y"}}"#, true),
    t!("conversation-retweet-not-original", "conversation_id:9", r#"{"text":"RT @a: y","retweeted_status":{"id_str":"9","text":"y"}}"#, false),
    t!("not-conversation", "x -conversation_id:7", r#"{"text":"x","conversation_id_str":"7"}"#, false),
    t!("not-conversation-other", "x -conversation_id:7", r#"{"text":"x","conversation_id_str":"8"}"#, true),
    t!("context-entity", "context:10.799022225751871488", r#"{"text":"x","context_annotations":[{"domain":{"id":"10"},"entity":{"id":"799022225751871488"}}]}"#, false),
    t!("context-domain", "context:10.*", r#"{"text":"x","context_annotations":[{"domain":{"id":"10"},"entity":{"id":"1"}}]}"#, false),
    t!("context-and-keyword", "x context:10.*", r#"{"text":"x"}"#, false),
    t!("not-context", "x -context:10.*", r#"{"text":"x"}"#, true),
    t!("context-or-keyword", "context:10.5 OR x", r#"{"text":"x"}"#, true),
    t!("entity-in-text", "entity:\"Michael Jordan\"", r#"{"text":"Michael Jordan"}"#, false),
    t!("entity-bare", "entity:Twitter", r#"{"text":"Twitter"}"#, false),
    t!("not-entity", "x -entity:Twitter", r#"{"text":"x Twitter"}"#, true),
    t!("embedding-same-text", "embedding:\"dogs in snow\"", r#"{"text":"dogs in snow"}"#, false),
    t!("embedding-or-keyword", "dogs OR embedding:dogs", r#"{"text":"dogs"}"#, true),
];

#[test]
fn v2_operators() {
    run_in(Dialect::V2, V2_OPERATORS);
}

#[test]
fn keywords() {
    run(KEYWORDS);
}

#[test]
fn punctuation() {
    run(PUNCTUATION);
}

#[test]
fn phrases() {
    run(PHRASES);
}

#[test]
fn emoji() {
    run(EMOJI);
}

#[test]
fn cjk() {
    run(CJK);
}

#[test]
fn accents_and_case() {
    run(ACCENTS_AND_CASE);
}

#[test]
fn boolean_structure() {
    run(BOOLEAN);
}

#[test]
fn proximity() {
    run(PROXIMITY);
}

#[test]
fn contains() {
    run(CONTAINS);
}

#[test]
fn entities() {
    run(ENTITIES);
}

#[test]
fn users_and_ids() {
    run(USERS_AND_IDS);
}

#[test]
fn profile_and_counts() {
    run(PROFILE);
}

#[test]
fn urls() {
    run(URLS);
}

#[test]
fn geo() {
    run(GEO);
}

#[test]
fn profile_geo() {
    run(PROFILE_GEO);
}

#[test]
fn has_and_is() {
    run(HAS_IS);
}

#[test]
fn lang_and_source() {
    run(LANG_SOURCE);
}

#[test]
fn text_fields() {
    run(TEXT_FIELDS);
}

// ---------------------------------------------------------------------------------------
// sample: a deterministic function of the post id (sluice_model::sampling::sample_bucket).

/// The first id at or after `from` whose sampling bucket satisfies `pred`.
fn id_with_bucket(from: u64, pred: impl Fn(u8) -> bool) -> u64 {
    (from..from + 100_000)
        .find(|&id| pred(sample_bucket(id)))
        .expect("100,000 consecutive ids cover every bucket")
}

#[test]
fn sample() {
    let base = POST_ID;
    let near_2_63 = (1u64 << 63) - 50_000;
    let cases: Vec<(String, &str, u64, bool)> = vec![
        (
            "sample10-in".into(),
            "hello sample:10",
            id_with_bucket(base, |b| b < 10),
            true,
        ),
        (
            "sample10-out".into(),
            "hello sample:10",
            id_with_bucket(base, |b| b >= 10),
            false,
        ),
        (
            "sample10-bucket-9".into(),
            "hello sample:10",
            id_with_bucket(base, |b| b == 9),
            true,
        ),
        (
            "sample10-bucket-10".into(),
            "hello sample:10",
            id_with_bucket(base, |b| b == 10),
            false,
        ),
        (
            "sample1-bucket-0".into(),
            "hello sample:1",
            id_with_bucket(base, |b| b == 0),
            true,
        ),
        (
            "sample1-bucket-1".into(),
            "hello sample:1",
            id_with_bucket(base, |b| b == 1),
            false,
        ),
        (
            "sample50-bucket-49".into(),
            "hello sample:50",
            id_with_bucket(base, |b| b == 49),
            true,
        ),
        (
            "sample50-bucket-50".into(),
            "hello sample:50",
            id_with_bucket(base, |b| b == 50),
            false,
        ),
        (
            "sample100-bucket-99".into(),
            "hello sample:100",
            id_with_bucket(base, |b| b == 99),
            true,
        ),
        (
            "sample30-in".into(),
            "hello sample:30",
            id_with_bucket(base, |b| b < 30),
            true,
        ),
        (
            "sample-near-2^63-in".into(),
            "hello sample:20",
            id_with_bucket(near_2_63, |b| b < 20),
            true,
        ),
        (
            "sample-near-2^63-out".into(),
            "hello sample:20",
            id_with_bucket(near_2_63, |b| b >= 20),
            false,
        ),
        (
            "sample-with-or-group-in".into(),
            "(hello OR bye) sample:50",
            id_with_bucket(base, |b| b < 50),
            true,
        ),
        (
            "sample-with-or-group-out".into(),
            "(hello OR bye) sample:50",
            id_with_bucket(base, |b| b >= 50),
            false,
        ),
    ];
    let mut failures = Vec::new();
    for (name, rule, id, want) in &cases {
        let json = with_id(*id, r#"{"text":"hello world"}"#);
        failures.extend(check(name, rule, &json, *want));
    }
    // Sampling is applied together with the rest of the rule: a sampled-in post that does
    // not satisfy the other clauses does not match.
    let sampled_in = id_with_bucket(base, |b| b < 50);
    let json = with_id(sampled_in, r#"{"text":"nothing here"}"#);
    failures.extend(check(
        "sample-in-but-no-keyword",
        "hello sample:50",
        &json,
        false,
    ));
    // The id decides: `id_str` is the authoritative id when both are present.
    let in_id = id_with_bucket(base, |b| b < 10);
    let out_id = id_with_bucket(base, |b| b >= 10);
    let json = format!(
        r#"{{"id":{out_id},"id_str":"{in_id}","created_at":"Wed Oct 10 20:19:24 +0000 2018","text":"hello"}}"#
    );
    failures.extend(check("sample-uses-id-str", "hello sample:10", &json, true));
    assert!(
        failures.is_empty(),
        "{} sample cases failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

// ---------------------------------------------------------------------------------------
// Several rules at once: the exact list of matching ids, ascending; removal.

#[test]
fn every_matching_rule_is_reported_in_ascending_id_order() {
    let rules = [
        (1, "apple"),
        (2, "banana"),
        (3, "apple banana"),
        (4, "cherry -apple"),
        (5, "#fruit"),
        (6, "from:grocer"),
        (7, "apple OR cherry"),
        (8, "lang:fr"),
        (9, "-is:retweet apple"),
    ];
    let post = r#"{"text":"Apple and banana","lang":"en","user":{"screen_name":"Grocer"},"entities":{"hashtags":[]}}"#;
    assert_eq!(matching_ids(&rules, post), [1, 2, 3, 6, 7, 9]);
}

#[test]
fn ids_are_reported_ascending_whatever_the_insertion_order() {
    let rules = [(30, "apple"), (10, "apple pie"), (20, "pie"), (5, "tart")];
    assert_eq!(
        matching_ids(&rules, r#"{"text":"apple pie"}"#),
        [10, 20, 30]
    );
}

#[test]
fn the_same_rule_text_under_two_ids_reports_both() {
    let rules = [(7, "apple"), (3, "apple"), (u64::MAX, "apple")];
    assert_eq!(
        matching_ids(&rules, r#"{"text":"apple"}"#),
        [3, 7, u64::MAX]
    );
}

#[test]
fn no_rule_matches_an_unrelated_post() {
    let rules = [(1, "apple"), (2, "#fruit"), (3, "from:grocer")];
    assert!(matching_ids(&rules, r#"{"text":"nothing to see"}"#).is_empty());
}

#[test]
fn a_matcher_is_reusable_across_posts() {
    fn run_two<E: Engine>() -> (Vec<u64>, Vec<u64>) {
        let apple = parse("apple").expect("valid");
        let pear = parse("pear -apple").expect("valid");
        let m = E::build(&[(1, &apple), (2, &pear)]);
        let a = with_id(1, r#"{"text":"apple"}"#);
        let b = with_id(2, r#"{"text":"pear"}"#);
        let first = m.matching(&parse_post(a.as_bytes()).expect("post"));
        let second = m.matching(&parse_post(b.as_bytes()).expect("post"));
        (first, second)
    }
    for (name, got) in [
        (Matcher::NAME, run_two::<Matcher>()),
        (NaiveMatcher::NAME, run_two::<NaiveMatcher>()),
    ] {
        assert_eq!(got, (vec![1], vec![2]), "{name}");
    }
}

#[test]
fn removed_rules_no_longer_match() {
    fn scenario<E: Engine>() {
        let name = E::NAME;
        let apple = parse("apple").expect("valid");
        let apple_pie = parse("\"apple pie\"").expect("valid");
        let pie = parse("pie -tart").expect("valid");
        let mut m = E::build(&[(1, &apple), (2, &apple_pie), (3, &pie)]);
        let json = with_id(POST_ID, r#"{"text":"apple pie"}"#);
        let post = parse_post(json.as_bytes()).expect("post");
        assert_eq!(m.matching(&post), [1, 2, 3], "{name}: before removal");
        assert!(m.remove_rule(2), "{name}: removing a present rule");
        assert_eq!(m.matching(&post), [1, 3], "{name}: after removing 2");
        assert!(!m.remove_rule(2), "{name}: removing it twice");
        assert!(!m.remove_rule(99), "{name}: removing an unknown id");
        assert!(m.remove_rule(1), "{name}");
        assert!(m.remove_rule(3), "{name}");
        assert!(m.matching(&post).is_empty(), "{name}: all removed");
    }
    scenario::<Matcher>();
    scenario::<NaiveMatcher>();
}

#[test]
fn a_removed_id_can_be_reused_for_another_rule() {
    fn scenario<E: Engine>() {
        let name = E::NAME;
        let apple = parse("apple").expect("valid");
        let pear = parse("pear").expect("valid");
        let apple_post = with_id(POST_ID, r#"{"text":"apple"}"#);
        let apple_post = parse_post(apple_post.as_bytes()).expect("post");
        let pear_post = with_id(POST_ID, r#"{"text":"pear"}"#);
        let pear_post = parse_post(pear_post.as_bytes()).expect("post");
        let mut m = E::build(&[(1, &apple)]);
        assert_eq!(m.matching(&apple_post), [1], "{name}: before removal");
        assert!(m.remove_rule(1), "{name}");
        m.add(1, &pear);
        assert!(m.matching(&apple_post).is_empty(), "{name}: old rule gone");
        assert_eq!(
            m.matching(&pear_post),
            [1],
            "{name}: new rule under the old id"
        );
    }
    scenario::<Matcher>();
    scenario::<NaiveMatcher>();
}

#[test]
fn rules_added_after_matching_take_effect() {
    fn scenario<E: Engine>() {
        let name = E::NAME;
        let apple = parse("apple").expect("valid");
        let red = parse("red apple").expect("valid");
        let json = with_id(POST_ID, r#"{"text":"a red apple"}"#);
        let post = parse_post(json.as_bytes()).expect("post");
        let mut m = E::build(&[(5, &apple)]);
        assert_eq!(m.matching(&post), [5], "{name}");
        m.add(2, &red);
        assert_eq!(m.matching(&post), [2, 5], "{name}");
    }
    scenario::<Matcher>();
    scenario::<NaiveMatcher>();
}
