//! The converted fixture posts under PowerTrack rules: the operators a Bluesky post should
//! answer to (hashtags, mentions, links and cards, media kinds, replies, quotes, languages,
//! authors by handle) match the posts they should and no others.

use std::collections::BTreeSet;

use sluice_bluesky::{Converter, Output, post_id};
use sluice_matcher::Matcher;
use sluice_model::parse_post;
use sluice_rules::Dialect;

const FIXTURE: &str = include_str!("fixtures/jetstream.ndjson");

/// The fixture's posts: (line number, the ingest line).
fn fixture_posts() -> Vec<(usize, Vec<u8>)> {
    let mut converter = Converter::new();
    FIXTURE
        .lines()
        .enumerate()
        .filter_map(
            |(i, line)| match converter.convert(line.as_bytes()).unwrap().output {
                Output::Post { line, .. } => Some((i + 1, line)),
                _ => None,
            },
        )
        .collect()
}

/// The lines whose posts `rule` matches: a PowerTrack rule, or for v2's own operators
/// (`conversation_id:`) a v2 filtered stream rule.
fn matching(posts: &[(usize, Vec<u8>)], rule: &str) -> BTreeSet<usize> {
    let dialect = if rule.starts_with("conversation_id:") {
        Dialect::V2
    } else {
        Dialect::PowerTrack
    };
    let mut matcher = Matcher::new();
    matcher.insert(1, &sluice_rules::parse_with(rule, dialect).expect(rule));
    let mut out = Vec::new();
    posts
        .iter()
        .filter(|(_, line)| {
            out.clear();
            matcher.match_post(&parse_post(line).unwrap(), &mut out);
            !out.is_empty()
        })
        .map(|(n, _)| *n)
        .collect()
}

#[test]
fn rules_match_the_posts_they_should() {
    let posts = fixture_posts();
    let first: serde_json::Value = serde_json::from_str(FIXTURE.lines().nth(3).unwrap()).unwrap();
    let first_id = post_id(
        first["did"].as_str().unwrap(),
        first["commit"]["rkey"].as_str().unwrap(),
    );
    // Line 9 quotes line 4, and PowerTrack matches a quote on its quoted post's content too.
    let cases: Vec<(String, &[usize])> = vec![
        ("#rust".into(), &[4, 9]),
        ("#日本".into(), &[4, 9]),
        ("@bob.example.com".into(), &[4, 9]),
        ("from:alice.bsky.social".into(), &[4, 6, 12, 16]),
        ("url:\"example.com/notes\"".into(), &[4, 9]),
        ("url:\"news.example.org\"".into(), &[7]),
        ("url_title:firehose".into(), &[7]),
        // X's has:links counts media links as links.
        ("has:links".into(), &[4, 5, 6, 7, 9, 10]),
        ("has:media".into(), &[5, 6, 10]),
        ("has:images".into(), &[5, 10]),
        ("has:videos".into(), &[6]),
        ("has:mentions".into(), &[4, 8, 9]),
        ("has:hashtags".into(), &[4, 9, 16]),
        ("is:reply".into(), &[8]),
        ("to:alice.bsky.social".into(), &[8]),
        (format!("in_reply_to_status_id:{first_id}"), &[8]),
        // A post that replies to nothing starts its own conversation (v2's operator).
        (format!("conversation_id:{first_id}"), &[4, 8]),
        ("is:quote".into(), &[9, 10, 11, 12]),
        ("lang:pt".into(), &[9]),
        ("lang:iw".into(), &[15]),
        ("clip".into(), &[6]),
    ];
    let mut failures = Vec::new();
    for (rule, want) in &cases {
        let got = matching(&posts, rule);
        let want: BTreeSet<usize> = want.iter().copied().collect();
        if got != want {
            failures.push(format!("{rule}: want lines {want:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
