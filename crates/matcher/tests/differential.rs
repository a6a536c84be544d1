//! The indexed [`Matcher`] must report exactly what the reference [`NaiveMatcher`] reports,
//! for random rules (every clause kind, nested And/Or/Not) and random posts built from the
//! same small vocabulary, including after removing and re-inserting rules.

use std::cell::Cell;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};
use sluice_matcher::{Matcher, NaiveMatcher, Scratch};
use sluice_model::parse_post;
use sluice_rules::{
    BoundingBox, Circle, Clause, ContextRef, CountField, CountRange, DistanceUnit, Expr, HasKind,
    IsKind, Rule,
};

const WORDS: &[&str] = &[
    "apple",
    "Apple",
    "banana",
    "cherry",
    "pie",
    "café",
    "cafe",
    "東京",
    "京",
    "🍕",
    "❤️",
    "x",
    "don't",
    "coca-cola",
    "the",
    "ab",
];
/// Words for proximity rules: few, so that their positions in texts often interact.
const NEAR: &[&str] = &["apple", "pie", "the", "x"];
const USERS: &[&str] = &["alice", "Bob", "carol", "12"];
const TAGS: &[&str] = &["news", "News", "café", "2016", "2016election"];
const URLS: &[&str] = &[
    "https://example.com/apple/pie",
    "http://news.example.org/Banana?x=1",
    "https://t.co/abc",
];
const COUNTRIES: &[&str] = &["US", "us", "FR", "JP"];
const LANGS: &[&str] = &["en", "EN", "fr", "und", ""];

fn pick(items: &'static [&'static str]) -> impl Strategy<Value = String> {
    proptest::sample::select(items).prop_map(str::to_owned)
}

fn text() -> impl Strategy<Value = String> {
    let sep = proptest::sample::select(&[" ", " ", "-", ", ", "! ", ""][..]);
    let word = prop_oneof![2 => pick(WORDS), 1 => pick(NEAR)];
    prop::collection::vec((word, sep), 0..10)
        .prop_map(|parts| parts.into_iter().map(|(w, s)| format!("{w}{s}")).collect())
}

fn phrase() -> impl Strategy<Value = String> {
    prop::collection::vec(pick(WORDS), 1..4).prop_map(|w| w.join(" "))
}

fn point() -> impl Strategy<Value = [f64; 2]> + Clone {
    (-2i32..=2, -2i32..=2).prop_map(|(x, y)| [f64::from(x), f64::from(y) * 0.5])
}

fn clause() -> impl Strategy<Value = Clause> {
    let circle = (point(), 20.0f64..300.0, any::<bool>()).prop_map(|(p, r, mi)| Circle {
        longitude: p[0],
        latitude: p[1],
        radius: r,
        unit: if mi {
            DistanceUnit::Miles
        } else {
            DistanceUnit::Kilometers
        },
    });
    let bbox = (point(), 0i32..3, 0i32..3).prop_map(|(p, w, h)| BoundingBox {
        west: p[0],
        south: p[1],
        east: p[0] + f64::from(w),
        north: p[1] + f64::from(h),
    });
    let count_field = proptest::sample::select(
        &[
            CountField::Followers,
            CountField::Friends,
            CountField::Statuses,
            CountField::Listed,
        ][..],
    );
    let range = (0u64..50, prop::option::of(0u64..100)).prop_map(|(min, max)| CountRange {
        min,
        max: max.map(|m| m + min),
    });
    let has = proptest::sample::select(
        &[
            HasKind::Geo,
            HasKind::ProfileGeo,
            HasKind::Links,
            HasKind::Mentions,
            HasKind::Hashtags,
            HasKind::Symbols,
            HasKind::Media,
            HasKind::Images,
            HasKind::Videos,
            HasKind::Lang,
            HasKind::Cashtags,
        ][..],
    );
    let is = proptest::sample::select(
        &[
            IsKind::Retweet,
            IsKind::Reply,
            IsKind::Quote,
            IsKind::Verified,
            IsKind::Nullcast,
        ][..],
    );
    prop_oneof![
        6 => pick(WORDS).prop_map(Clause::Keyword),
        3 => phrase().prop_map(Clause::Phrase),
        3 => (prop::collection::vec(pick(NEAR), 1..4), 0u8..=6)
            .prop_map(|(w, distance)| Clause::Proximity { phrase: w.join(" "), distance }),
        2 => prop_oneof![pick(WORDS), Just("ppl".to_owned()), Just("a".to_owned()), Just("é".to_owned())]
            .prop_map(Clause::Contains),
        2 => pick(TAGS).prop_map(Clause::Hashtag),
        1 => pick(TAGS).prop_map(Clause::Cashtag),
        2 => pick(USERS).prop_map(Clause::Mention),
        2 => pick(USERS).prop_map(Clause::From),
        1 => pick(USERS).prop_map(Clause::To),
        1 => pick(USERS).prop_map(Clause::RetweetsOf),
        1 => (1u64..4).prop_map(Clause::RetweetsOfStatusId),
        1 => (1u64..4).prop_map(Clause::InReplyToStatusId),
        1 => prop_oneof![pick(WORDS), Just("example.com".to_owned())].prop_map(Clause::Url),
        1 => prop_oneof![Just("example".to_owned()), Just(".com/".to_owned()), Just("pie".to_owned()), Just("t".to_owned())]
            .prop_map(Clause::UrlContains),
        1 => pick(WORDS).prop_map(Clause::UrlTitle),
        1 => pick(WORDS).prop_map(Clause::UrlDescription),
        1 => pick(WORDS).prop_map(Clause::Bio),
        1 => pick(WORDS).prop_map(Clause::BioName),
        1 => pick(WORDS).prop_map(Clause::BioLocation),
        1 => (count_field, range).prop_map(|(field, range)| Clause::Count { field, range }),
        2 => pick(LANGS).prop_map(Clause::Lang),
        1 => prop_oneof![Just("p1".to_owned()), pick(WORDS)].prop_map(Clause::Place),
        1 => pick(COUNTRIES).prop_map(Clause::PlaceCountry),
        1 => circle.clone().prop_map(Clause::PointRadius),
        1 => bbox.clone().prop_map(Clause::BoundingBox),
        1 => pick(COUNTRIES).prop_map(Clause::ProfileCountry),
        1 => pick(WORDS).prop_map(Clause::ProfileRegion),
        1 => pick(WORDS).prop_map(Clause::ProfileLocality),
        1 => pick(WORDS).prop_map(Clause::ProfileSubregion),
        1 => circle.prop_map(Clause::ProfilePointRadius),
        1 => bbox.prop_map(Clause::ProfileBoundingBox),
        2 => has.prop_map(Clause::Has),
        2 => is.prop_map(Clause::Is),
        1 => (1u8..=100).prop_map(Clause::Sample),
        1 => pick(&["web", "Twitter for iPhone", "iphone"]).prop_map(Clause::Source),
        // The v2 filtered stream's own operators (post ids are 1..5000, conversation ids 1..4).
        1 => prop_oneof![1u64..5, 1u64..5000].prop_map(Clause::ConversationId),
        1 => (1u64..3, prop::option::of(1u64..3))
            .prop_map(|(domain, entity)| Clause::Context(ContextRef { domain, entity })),
        1 => pick(WORDS).prop_map(Clause::Entity),
        1 => pick(WORDS).prop_map(Clause::Embedding),
    ]
}

fn expr() -> impl Strategy<Value = Expr> {
    clause()
        .prop_map(Expr::Clause)
        .prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                3 => prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
                2 => prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::Or),
                1 => inner.prop_map(|e| Expr::Not(Box::new(e))),
            ]
        })
}

fn entities() -> impl Strategy<Value = Value> {
    let url = (pick(URLS), prop::option::of((pick(URLS), text(), text())));
    (
        prop::collection::vec(pick(TAGS), 0..3),
        prop::collection::vec(pick(TAGS), 0..2),
        prop::collection::vec((pick(USERS), 1u64..4), 0..3),
        prop::collection::vec(url, 0..2),
        prop::collection::vec(pick(&["photo", "video", "animated_gif"]), 0..2),
    )
        .prop_map(|(tags, symbols, mentions, urls, media)| {
            json!({
                "hashtags": tags.iter().map(|t| json!({"text": t})).collect::<Vec<_>>(),
                "symbols": symbols.iter().map(|t| json!({"text": t})).collect::<Vec<_>>(),
                "user_mentions": mentions.iter()
                    .map(|(n, id)| json!({"screen_name": n, "id_str": id.to_string()}))
                    .collect::<Vec<_>>(),
                "urls": urls.iter().map(|(u, unwound)| match unwound {
                    Some((url, title, description)) => json!({"expanded_url": u,
                        "unwound": {"url": url, "title": title, "description": description}}),
                    None => json!({"expanded_url": u}),
                }).collect::<Vec<_>>(),
                "media": media.iter().map(|k| json!({"type": k})).collect::<Vec<_>>(),
            })
        })
}

fn user() -> impl Strategy<Value = Value> {
    let location =
        (pick(COUNTRIES), pick(WORDS), prop::option::of(point())).prop_map(|(cc, region, geo)| {
            let mut loc = json!({"country_code": cc, "region": region, "locality": region,
                "sub_region": region});
            if let Some(p) = geo {
                loc["geo"] = json!({"type": "point", "coordinates": p});
            }
            loc
        });
    (
        (pick(USERS), 1u64..4, text(), text(), text(), any::<bool>()),
        prop::collection::vec(prop::option::of(0u64..120), 4),
        prop::collection::vec(location, 0..2),
    )
        .prop_map(
            |((name, id, display, bio, loc, verified), counts, locations)| {
                let mut u = json!({"screen_name": name, "id_str": id.to_string(), "name": display,
                "description": bio, "location": loc, "verified": verified,
                "derived": {"locations": locations}});
                for (key, count) in [
                    "followers_count",
                    "friends_count",
                    "statuses_count",
                    "listed_count",
                ]
                .iter()
                .zip(counts)
                {
                    if let Some(c) = count {
                        u[key] = json!(c);
                    }
                }
                u
            },
        )
}

/// A post without nested posts: every field optional.
fn flat_post() -> impl Strategy<Value = Value> {
    let place = (
        prop::option::of(pick(&["p1", "p2"])),
        phrase(),
        pick(COUNTRIES),
        point(),
        0i32..2,
    )
        .prop_map(|(id, name, cc, p, size)| {
            let s = f64::from(size);
            json!({"id": id, "name": name, "full_name": format!("{name}, {cc}"), "country_code": cc,
                "bounding_box": {"type": "Polygon", "coordinates": [[p, [p[0] + s, p[1]],
                    [p[0] + s, p[1] + s], [p[0], p[1] + s]]]}})
        });
    (
        (
            1u64..5000,
            text(),
            prop::option::of((text(), entities())),
            prop::option::of(entities()),
        ),
        (
            prop::option::of(user()),
            prop::option::of(pick(LANGS)),
            prop::option::of(place),
        ),
        (
            prop::option::of(point()),
            prop::option::of(1u64..4),
            prop::option::of(pick(USERS)),
        ),
        (
            any::<Option<bool>>(),
            any::<Option<bool>>(),
            prop::option::of(pick(&["web", "Twitter for iPhone"])),
            prop::option::of((1u64..5, any::<bool>())),
        ),
    )
        .prop_map(
            |(
                (id, text, ext, ents),
                (user, lang, place),
                (coords, reply, to),
                (quote, followers, source, conversation),
            )| {
                let mut p = json!({"id_str": id.to_string(), "text": text});
                if let Some((full, e)) = ext {
                    p["extended_tweet"] = json!({"full_text": full, "entities": e});
                }
                let fields = [
                    ("entities", ents),
                    ("user", user),
                    ("lang", lang.map(Value::from)),
                    ("place", place),
                    (
                        "coordinates",
                        coords.map(|c| json!({"type": "Point", "coordinates": c})),
                    ),
                    (
                        "in_reply_to_status_id_str",
                        reply.map(|r| json!(r.to_string())),
                    ),
                    (
                        "in_reply_to_user_id_str",
                        reply.map(|r| json!(r.to_string())),
                    ),
                    ("in_reply_to_screen_name", to.map(Value::from)),
                    ("is_quote_status", quote.map(Value::from)),
                    ("scopes", followers.map(|f| json!({"followers": f}))),
                    (
                        "source",
                        source.map(|s| json!(format!("<a href=\"http://x.com\">{s}</a>"))),
                    ),
                    (
                        "conversation_id_str",
                        conversation.filter(|c| c.1).map(|c| json!(c.0.to_string())),
                    ),
                    (
                        "conversation_id",
                        conversation.filter(|c| !c.1).map(|c| json!(c.0)),
                    ),
                ];
                for (key, value) in fields {
                    if let Some(v) = value {
                        p[key] = v;
                    }
                }
                p
            },
        )
}

/// A post, possibly a Retweet (whose original may quote) and possibly quoting.
fn post() -> impl Strategy<Value = String> {
    (
        flat_post(),
        prop::option::of((flat_post(), prop::option::of(flat_post()))),
        prop::option::of(flat_post()),
    )
        .prop_map(|(mut root, rt, qt)| {
            if let Some((mut original, quoted)) = rt {
                if let Some(q) = quoted {
                    original["quoted_status"] = q;
                }
                root["retweeted_status"] = original;
            }
            if let Some(q) = qt {
                root["quoted_status"] = q;
            }
            root.to_string()
        })
}

#[test]
fn indexed_matcher_agrees_with_the_naive_evaluator() {
    let mut runner = TestRunner::new(Config {
        cases: 300,
        failure_persistence: None,
        ..Config::default()
    });
    let checks = Cell::new(0usize);
    let matched = Cell::new(0usize);
    let strategy = (
        prop::collection::vec(expr(), 1..25),
        prop::collection::vec(post(), 1..6),
        prop::collection::vec(any::<prop::sample::Index>(), 0..12),
    );
    runner
        .run(&strategy, |(exprs, posts, removes)| {
            let mut indexed = Matcher::new();
            let mut naive = NaiveMatcher::new();
            for (i, expr) in exprs.iter().enumerate() {
                let rule = Rule { expr: expr.clone() };
                // Sparse, unordered ids exercise the slot table.
                let id = (i as u64 * 7919) % 1000;
                indexed.insert(id, &rule);
                naive.insert(id, &rule);
            }
            let parsed: Vec<_> = posts
                .iter()
                .map(|p| parse_post(p.as_bytes()).expect("generated posts parse"))
                .collect();
            let mut scratch = Scratch::default();
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let mut compare =
                |indexed: &Matcher, naive: &NaiveMatcher| -> Result<(), TestCaseError> {
                    prop_assert_eq!(indexed.len(), naive.len());
                    for (post, json) in parsed.iter().zip(&posts) {
                        indexed.match_post_with(post, &mut scratch, &mut a);
                        naive.match_post(post, &mut b);
                        prop_assert_eq!(&a, &b, "post {}", json);
                        checks.set(checks.get() + 1);
                        if !a.is_empty() {
                            matched.set(matched.get() + 1);
                        }
                    }
                    Ok(())
                };
            compare(&indexed, &naive)?;

            let ids: Vec<u64> = (0..exprs.len()).map(|i| (i as u64 * 7919) % 1000).collect();
            for r in &removes {
                let id = ids[r.index(ids.len())];
                prop_assert_eq!(indexed.remove(id), naive.remove(id));
            }
            compare(&indexed, &naive)?;

            // Re-insert half of the removed ids with other rules, then compare again.
            for (k, r) in removes.iter().enumerate().step_by(2) {
                let id = ids[r.index(ids.len())];
                let rule = Rule {
                    expr: exprs[(k * 3) % exprs.len()].clone(),
                };
                indexed.insert(id, &rule);
                naive.insert(id, &rule);
            }
            compare(&indexed, &naive)?;
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let (checks, matched) = (checks.get(), matched.get());
    assert!(
        matched * 3 >= checks,
        "only {matched} of {checks} post checks matched any rule: the generators drifted apart"
    );
}
