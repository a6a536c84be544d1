//! Fuzzes the post parser and the matcher behind it: no input may panic either, the fast
//! post parse must give exactly what the serde_json reading gives (the same view or the
//! same error text), and the indexed matcher must agree with the naive evaluator on every
//! post that parses.
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
    let parsed = sluice_model::parse_post(bytes);
    match (&parsed, &sluice_model::post::parse_post_with_serde(bytes)) {
        (Ok(fast), Ok(serde)) => assert_eq!(format!("{fast:?}"), format!("{serde:?}")),
        (Err(fast), Err(serde)) => assert_eq!(fast.to_string(), serde.to_string()),
        (fast, serde) => panic!("fast parse {fast:?}, serde_json {serde:?}"),
    }
    if let Ok(post) = parsed {
        let (index, naive) = matchers();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        index.match_post(&post, &mut a);
        naive.match_post(&post, &mut b);
        assert_eq!(a, b);
    }
});
