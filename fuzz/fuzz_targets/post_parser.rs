//! Fuzzes the post parser and the matcher behind it: no input may panic either, and the
//! indexed matcher must agree with the naive evaluator on every post that parses.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sluice_matcher::{Matcher, NaiveMatcher};

/// A fixed rule set touching every kind of post field the matcher reads.
const RULES: &[&str] = &[
    "hello",
    "\"big deal\" -spam",
    "#tag OR @who OR $CASH",
    "contains:ell url_contains:example",
    "from:jack OR to:12 OR retweets_of:99",
    "is:retweet has:links lang:en",
    "is:quote OR is:reply OR has:media OR has:geo",
    "point_radius:[-105.27 40.01 10mi] OR bounding_box:[-105.3 39.9 -105.1 40.1]",
    "followers_count:10..1000 bio:rust",
    "profile_country:US OR place_country:JP OR place:tokyo",
    "\"a b\"~3 sample:50",
    "東京 OR 🍕",
];

fn matchers() -> &'static (Matcher, NaiveMatcher) {
    static M: OnceLock<(Matcher, NaiveMatcher)> = OnceLock::new();
    M.get_or_init(|| {
        let mut index = Matcher::new();
        let mut naive = NaiveMatcher::new();
        for (id, text) in RULES.iter().enumerate() {
            let rule = sluice_rules::parse(text).expect("fixed fuzz rules are valid");
            index.insert(id as u64, &rule);
            naive.insert(id as u64, &rule);
        }
        (index, naive)
    })
}

fuzz_target!(|bytes: &[u8]| {
    if let Ok(post) = sluice_model::parse_post(bytes) {
        let (index, naive) = matchers();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        index.match_post(&post, &mut a);
        naive.match_post(&post, &mut b);
        assert_eq!(a, b);
    }
});
