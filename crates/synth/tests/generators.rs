//! What users of the generators rely on: same seed → same data; posts are valid native JSON
//! that sluice's ingest check accepts, with entity indices that point at the entity text; rules
//! are distinct and valid PowerTrack.

use std::collections::HashSet;

use serde_json::Value;
use sluice_synth::snowflake::snowflake_time_ms;
use sluice_synth::{PostGenerator, RuleGenerator};

const POSTS: usize = 3_000;

fn posts(seed: u64) -> Vec<String> {
    PostGenerator::new(seed).take(POSTS).collect()
}

#[test]
fn same_seed_same_posts_other_seed_other_posts() {
    let a = posts(11);
    assert_eq!(a, posts(11));
    assert_ne!(a[..10], posts(12)[..10]);
}

#[test]
fn every_post_parses_and_ids_increase_with_time() {
    let mut last = 0;
    for line in posts(1) {
        // The ingest check, stricter than parsing: X's created_at, id and id_str agreeing.
        let view = sluice_model::check_line(line.as_bytes()).expect("generated post ingests");
        let id = view.id().expect("has an id");
        assert!(id > last, "ids increase");
        last = id;
        assert_eq!(view.timestamp_ms, Some(snowflake_time_ms(id)));
        assert!(view.user.is_some() && view.lang.is_some() && view.created_at.is_some());
        assert!(!line.contains('\n'));
    }
}

#[test]
fn next_post_at_uses_the_given_time() {
    let mut g = PostGenerator::new(5);
    let t = 1_800_000_000_123;
    let first: Value = serde_json::from_str(&g.next_post_at(t)).expect("json");
    let second: Value = serde_json::from_str(&g.next_post_at(t - 5_000)).expect("json");
    assert_eq!(first["timestamp_ms"], t.to_string());
    let id = |v: &Value| {
        v["id_str"]
            .as_str()
            .expect("id_str")
            .parse::<u64>()
            .expect("num")
    };
    assert!(
        id(&second) > id(&first),
        "ids increase even if the clock goes back"
    );
}

/// The characters `[start, end)` of `text`, counted in code points as X does.
fn slice(text: &str, indices: &Value) -> String {
    let start = indices[0].as_u64().expect("start") as usize;
    let end = indices[1].as_u64().expect("end") as usize;
    assert!(start <= end, "{indices}");
    text.chars().skip(start).take(end - start).collect()
}

/// The entity list `key`, empty when absent (`extended_entities` only has `media`).
fn list<'a>(entities: &'a Value, key: &str) -> &'a [Value] {
    entities
        .get(key)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Checks every entity of `entities` against `text`.
fn check_entities(text: &str, entities: &Value, counts: &mut [usize; 5]) {
    for h in list(entities, "hashtags") {
        assert_eq!(
            slice(text, &h["indices"]),
            format!("#{}", h["text"].as_str().expect("text"))
        );
        counts[0] += 1;
    }
    for s in list(entities, "symbols") {
        assert_eq!(
            slice(text, &s["indices"]),
            format!("${}", s["text"].as_str().expect("text"))
        );
        counts[1] += 1;
    }
    for m in list(entities, "user_mentions") {
        let name = m["screen_name"].as_str().expect("screen_name");
        assert_eq!(slice(text, &m["indices"]), format!("@{name}"));
        assert_eq!(m["id_str"], m["id"].as_u64().expect("id").to_string());
        counts[2] += 1;
    }
    for u in list(entities, "urls") {
        assert_eq!(slice(text, &u["indices"]), u["url"].as_str().expect("url"));
        assert!(
            u["expanded_url"]
                .as_str()
                .expect("expanded")
                .starts_with("https://")
        );
        counts[3] += 1;
    }
    {
        for m in list(entities, "media") {
            assert_eq!(slice(text, &m["indices"]), m["url"].as_str().expect("url"));
            counts[4] += 1;
        }
    }
}

fn check_post(post: &Value, counts: &mut [usize; 5], kinds: &mut [usize; 6]) {
    let text = post["text"].as_str().expect("text");
    for key in ["hashtags", "urls", "user_mentions", "symbols"] {
        assert!(
            post["entities"][key].is_array(),
            "entities.{key} is always present"
        );
    }
    check_entities(text, &post["entities"], counts);
    if let Some(ext) = post.get("extended_entities") {
        check_entities(text, ext, counts);
    }
    if let Some(ext) = post.get("extended_tweet") {
        kinds[0] += 1;
        let full = ext["full_text"].as_str().expect("full_text");
        assert!(full.chars().count() > 140, "extended only when needed");
        assert!(post["truncated"].as_bool().expect("truncated"));
        assert!(text.chars().count() <= 140, "root text fits: {text}");
        check_entities(full, &ext["entities"], counts);
        if let Some(media) = ext.get("extended_entities") {
            check_entities(full, media, counts);
        }
        let range = &ext["display_text_range"];
        assert!(range[1].as_u64().expect("end") as usize <= full.chars().count());
    } else if post.get("retweeted_status").is_none() {
        assert!(text.chars().count() <= 140, "{text}");
    }
    if let Some(rt) = post.get("retweeted_status") {
        kinds[1] += 1;
        assert!(text.starts_with("RT @"));
        assert!(post["place"].is_null() && !post["editable"].as_bool().expect("editable"));
        check_post(rt, counts, kinds);
    }
    if let Some(q) = post.get("quoted_status") {
        kinds[2] += 1;
        assert!(post["is_quote_status"].as_bool().expect("is_quote_status"));
        assert_eq!(post["quoted_status_id_str"], q["id_str"]);
        check_post(q, counts, kinds);
    }
    if !post["in_reply_to_status_id"].is_null() {
        kinds[3] += 1;
        assert_eq!(
            post["in_reply_to_status_id_str"],
            post["in_reply_to_status_id"].to_string()
        );
    }
    if !post["place"].is_null() {
        kinds[4] += 1;
        let ring = &post["place"]["bounding_box"]["coordinates"][0];
        assert_eq!(ring.as_array().expect("ring").len(), 4);
    }
    if post["user"].get("derived").is_some() {
        kinds[5] += 1;
    }
    let history = &post["edit_history"]["edit_tweet_ids"];
    let ids = history.as_array().expect("edit ids");
    assert_eq!(ids.last().expect("one id at least"), &post["id_str"]);
}

#[test]
fn entity_indices_point_at_the_entity_text_and_every_kind_occurs() {
    let mut counts = [0usize; 5];
    let mut kinds = [0usize; 6];
    let mut bytes = 0;
    for line in posts(2) {
        bytes += line.len();
        let post: Value = serde_json::from_str(&line).expect("valid JSON");
        check_post(&post, &mut counts, &mut kinds);
    }
    // Hashtags, cashtags, mentions, links, media all occur…
    assert!(counts.iter().all(|&c| c > 20), "{counts:?}");
    // …and so do extended posts, Retweets, Quotes, replies, places, Profile Geo.
    assert!(kinds.iter().all(|&c| c > 20), "{kinds:?}");
    let average = bytes / POSTS;
    assert!(
        (1_500..6_000).contains(&average),
        "average post size {average} B"
    );
}

#[test]
fn posts_cover_several_languages() {
    let mut langs = HashSet::new();
    for line in posts(3).iter().take(500) {
        let post: Value = serde_json::from_str(line).expect("json");
        langs.insert(post["lang"].as_str().expect("lang").to_owned());
    }
    for l in ["en", "es", "pt", "ja"] {
        assert!(langs.contains(l), "{langs:?}");
    }
}

#[test]
fn generated_rules_are_valid_powertrack() {
    for rule in RuleGenerator::new(1).take(20_000) {
        if let Err(e) = sluice_rules::parse(&rule) {
            panic!("{rule:?} does not parse: {e}");
        }
    }
}

#[test]
fn rules_are_distinct_per_generator_and_deterministic() {
    let a: Vec<String> = RuleGenerator::new(8).take(30_000).collect();
    assert_eq!(a.iter().collect::<HashSet<_>>().len(), a.len());
    assert_eq!(a, RuleGenerator::new(8).take(30_000).collect::<Vec<_>>());
}
