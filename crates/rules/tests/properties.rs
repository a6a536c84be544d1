//! Properties: the parser never panics, errors are well-formed, and printing a valid rule
//! gives text that parses back to the same tree.

use proptest::prelude::*;
use sluice_rules::{
    BoundingBox, Circle, Clause, ContextRef, CountField, CountRange, Dialect, DistanceUnit, Expr,
    HasKind, IsKind, Rule, RuleError, parse, parse_with,
};

/// Every problem of an error is positioned inside the rule (or just past its end) and the
/// message is the concatenation of the problems' lines.
fn check_error(rule: &str, err: &RuleError) {
    let end = rule.encode_utf16().count() + 1;
    assert!(!err.problems().is_empty());
    let mut joined = String::new();
    for problem in err.problems() {
        assert!(
            (1..=end.max(1)).contains(&problem.position()),
            "{rule:?}: {problem:?}"
        );
        joined.push_str(&problem.message());
    }
    assert_eq!(joined, err.powertrack_message());
    assert!(err.powertrack_message().ends_with('\n'));
}

/// Parses in every dialect; whatever parses must print to text that parses back the same.
fn check_any(rule: &str) {
    for dialect in [Dialect::PowerTrack, Dialect::Powerstream, Dialect::V2] {
        match parse_with(rule, dialect) {
            Ok(tree) => {
                let printed = tree.to_string();
                assert_eq!(
                    parse_with(&printed, dialect).as_ref(),
                    Ok(&tree),
                    "{rule:?} printed as {printed:?}"
                );
            }
            Err(err) => check_error(rule, &err),
        }
    }
}

const FRAGMENTS: &[&str] = &[
    "a",
    "apple",
    "OR",
    "AND",
    "or",
    "(",
    ")",
    "-",
    "\"",
    "\"a b\"",
    "\"x\"~3",
    "~",
    "~9",
    "#x",
    "#",
    "@y",
    "$Z",
    "from:",
    "from:jack",
    "contains:\"q r\"",
    "contains:$x",
    ":",
    "[",
    "]",
    "point_radius:[1 2 3mi]",
    "point_radius:[",
    "bounding_box:[0 0 0.1 0.1]",
    "sample:10",
    "lang:en",
    "lang:zz",
    "is:nullcast",
    "has:links",
    "🍕",
    "\u{FE0F}",
    "\\",
    "\\\"",
    "'",
    "followers_count:1..2",
    "..",
    "source:x",
    "url_title:x",
    "东京",
    "e\u{301}",
    "foo:bar",
    "retweets_of_status_id:12",
    "0",
    "-1.5",
    "mi",
    "km",
    "\u{2028}",
    "\0",
    "conversation_id:12",
    "context:1.*",
    "context:1.2",
    "context:1",
    "entity:\"a b\"",
    "embedding:x",
    "has:cashtags",
];

fn fragment_rule() -> impl Strategy<Value = String> {
    let piece = (
        prop::sample::select(FRAGMENTS),
        prop::sample::select(&["", " ", "  ", "\t"][..]),
    );
    prop::collection::vec(piece, 0..12)
        .prop_map(|pieces| pieces.into_iter().map(|(f, s)| format!("{f}{s}")).collect())
}

// ---- Generated trees. ----

fn keyword() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9é東🍕€][a-zA-Z0-9é東🍕_'.#@$-]{0,6}"
        .prop_filter("OR/AND are not keywords", |k| k != "OR" && k != "AND")
}

fn entity() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_][a-zA-Z0-9_é]{0,6}"
}

/// Any value, including ones that must be quoted and escaped.
fn value() -> impl Strategy<Value = String> {
    "[ a-zA-Z0-9\"\\\\:()#$@.\\[\\]/~é🍕-]{1,10}"
}

fn circle() -> impl Strategy<Value = Circle> {
    (
        -180.0..=180.0f64,
        -90.0..=90.0f64,
        0.001..24.9f64,
        any::<bool>(),
    )
        .prop_map(|(longitude, latitude, radius, km)| Circle {
            longitude,
            latitude,
            radius: if km { radius * 1.6 } else { radius },
            unit: if km {
                DistanceUnit::Kilometers
            } else {
                DistanceUnit::Miles
            },
        })
}

fn bounding_box() -> impl Strategy<Value = BoundingBox> {
    (
        -179.0..179.0f64,
        -80.0..80.0f64,
        0.0001..0.3f64,
        0.0001..0.3f64,
    )
        .prop_map(|(west, south, width, height)| BoundingBox {
            west,
            south,
            east: west + width,
            north: south + height,
        })
}

fn count() -> impl Strategy<Value = Clause> {
    let field = prop::sample::select(vec![
        CountField::Followers,
        CountField::Friends,
        CountField::Statuses,
        CountField::Listed,
    ]);
    (field, any::<u64>(), prop::option::of(any::<u64>())).prop_map(|(field, a, b)| {
        let range = match b {
            Some(b) => CountRange {
                min: a.min(b),
                max: Some(a.max(b)),
            },
            None => CountRange { min: a, max: None },
        };
        Clause::Count { field, range }
    })
}

fn clause() -> impl Strategy<Value = Clause> {
    let has = prop::sample::select(vec![
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
    ]);
    let is = prop::sample::select(vec![
        IsKind::Retweet,
        IsKind::Reply,
        IsKind::Quote,
        IsKind::Verified,
    ]);
    let lang = prop::sample::select(vec!["en", "EN", "zh", "zh-CN", "zh-TW", "hi-Latn", "ckb"]);
    prop_oneof![
        keyword().prop_map(Clause::Keyword),
        value().prop_map(Clause::Phrase),
        (value(), 1..=6u8).prop_map(|(phrase, distance)| Clause::Proximity { phrase, distance }),
        entity().prop_map(Clause::Hashtag),
        entity().prop_map(Clause::Mention),
        entity().prop_map(Clause::Cashtag),
        value().prop_map(Clause::Contains),
        value().prop_map(Clause::From),
        value().prop_map(Clause::To),
        value().prop_map(Clause::RetweetsOf),
        any::<u64>().prop_map(Clause::RetweetsOfStatusId),
        any::<u64>().prop_map(Clause::InReplyToStatusId),
        value().prop_map(Clause::Url),
        value().prop_map(Clause::UrlContains),
        value().prop_map(Clause::UrlTitle),
        value().prop_map(Clause::UrlDescription),
        value().prop_map(Clause::Bio),
        value().prop_map(Clause::BioName),
        value().prop_map(Clause::BioLocation),
        count(),
        lang.prop_map(|l| Clause::Lang(l.to_owned())),
        value().prop_map(Clause::Place),
        value().prop_map(Clause::PlaceCountry),
        circle().prop_map(Clause::PointRadius),
        bounding_box().prop_map(Clause::BoundingBox),
        value().prop_map(Clause::ProfileCountry),
        value().prop_map(Clause::ProfileRegion),
        value().prop_map(Clause::ProfileLocality),
        value().prop_map(Clause::ProfileSubregion),
        circle().prop_map(Clause::ProfilePointRadius),
        bounding_box().prop_map(Clause::ProfileBoundingBox),
        has.prop_map(Clause::Has),
        is.prop_map(Clause::Is),
    ]
}

/// Clauses of the v2 filtered stream: PowerTrack's and v2's own.
fn v2_clause() -> impl Strategy<Value = Clause> {
    prop_oneof![
        6 => clause(),
        1 => any::<u64>().prop_map(Clause::ConversationId),
        1 => (any::<u64>(), prop::option::of(any::<u64>()))
            .prop_map(|(domain, entity)| Clause::Context(ContextRef { domain, entity })),
        1 => value().prop_map(Clause::Entity),
        1 => value().prop_map(Clause::Embedding),
        1 => Just(Clause::Has(HasKind::Cashtags)),
    ]
}

/// `expr` with every negated `embedding:` (which v2 refuses) turned into an `entity:`.
fn without_negated_embedding(expr: Expr, negated: bool) -> Expr {
    let each = |children: Vec<Expr>| {
        children
            .into_iter()
            .map(|c| without_negated_embedding(c, negated))
            .collect()
    };
    match expr {
        Expr::Clause(Clause::Embedding(v)) if negated => Expr::Clause(Clause::Entity(v)),
        Expr::Clause(c) => Expr::Clause(c),
        Expr::Not(child) => Expr::Not(Box::new(without_negated_embedding(*child, !negated))),
        Expr::And(children) => Expr::And(each(children)),
        Expr::Or(children) => Expr::Or(each(children)),
    }
}

fn expr() -> impl Strategy<Value = Expr> {
    expr_of(clause())
}

fn expr_of(leaf: impl Strategy<Value = Clause> + 'static) -> impl Strategy<Value = Expr> {
    let leaf = leaf.prop_map(Expr::Clause);
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::And),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Expr::Or),
            inner.prop_map(|e| Expr::Not(Box::new(e))),
        ]
    })
}

/// The normal form the parser produces (see `ast.rs`); double negations are dropped so that
/// generated rules are not rejected for having no positive clause.
fn normalize(expr: Expr) -> Expr {
    fn flat(children: Vec<Expr>, and: bool) -> Vec<Expr> {
        let mut out = Vec::new();
        for child in children.into_iter().map(normalize) {
            match child {
                Expr::And(inner) if and => out.extend(inner),
                Expr::Or(inner) if !and => out.extend(inner),
                other => out.push(other),
            }
        }
        out
    }
    match expr {
        Expr::And(children) => {
            let mut c = flat(children, true);
            if c.len() == 1 {
                c.remove(0)
            } else {
                Expr::And(c)
            }
        }
        Expr::Or(children) => {
            let mut c = flat(children, false);
            if c.len() == 1 {
                c.remove(0)
            } else {
                Expr::Or(c)
            }
        }
        Expr::Not(child) => match normalize(*child) {
            Expr::Not(inner) => *inner,
            other => Expr::Not(Box::new(other)),
        },
        clause => clause,
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 2000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn never_panics_on_arbitrary_text(rule in any::<String>()) {
        check_any(&rule);
    }

    #[test]
    fn never_panics_on_rule_like_fragments(rule in fragment_rule()) {
        check_any(&rule);
    }

    #[test]
    fn printed_trees_parse_back(expr in expr().prop_map(normalize)) {
        // A rule needs a positive clause: anchor the trees that have none.
        let expr = if expr.has_positive_clause() {
            expr
        } else {
            normalize(Expr::And(vec![Expr::Clause(Clause::Keyword("anchor".into())), expr]))
        };
        let rule = Rule { expr };
        let text = rule.to_string();
        prop_assert_eq!(parse(&text), Ok(rule), "printed as {:?}", text);
    }

    #[test]
    fn printed_v2_trees_parse_back(
        expr in expr_of(v2_clause()).prop_map(|e| normalize(without_negated_embedding(e, false)))
    ) {
        // v2 needs a positive clause other than is:/has:/lang: beside them: anchor every tree.
        let expr = normalize(Expr::And(vec![Expr::Clause(Clause::Keyword("anchor".into())), expr]));
        let rule = Rule { expr };
        let text = rule.to_string();
        prop_assert_eq!(parse_with(&text, Dialect::V2), Ok(rule), "printed as {:?}", text);
    }
}

/// Hand-written rules: each parses, and its canonical form parses to the same tree.
const CORPUS: &[&str] = &[
    "apple",
    "(cat OR dog) lang:en -is:retweet",
    "apple OR iphone ipad",
    "ipad iphone OR android",
    "-(a OR b) c",
    "a -(b c) -(d OR e)",
    "((a OR b) (c OR d)) OR e",
    "\"Toys \\\"R\\\" Us\" OR \"back\\\\slash\"",
    "\"hate love\"~3 OR \"a b c\"~6",
    "#Giants @jack $TWTR 🍕 東京 don't coca-cola",
    "contains:\"buy now\" contains:hello contains:\"$twtr\"",
    "user_bio:\"software developer\" within_url_title:x within_url_description:\"a:b\"",
    "retweets_of_user:12 retweets_of_tweet_id:34 in_reply_to_tweet_id:56",
    "following_count:10..20 tweets_count:5 user_in_lists_count:0..0 followers_count:1",
    "point_radius:[-105.27 40.01 10mi] OR point_radius:[-105.27 40.01 10 km]",
    "geo_bounding_box:[-105.301758 39.964069 -105.178505 40.09455]",
    "profile_point_radius:[0.1 -0.2 0.5km] profile_bounding_box:[-1 -1 -0.9 -0.9]",
    "has:derived_user_geo OR has:media_link OR has:video_link",
    "(apple OR pie) sample:10 -is:nullcast",
    "tart (apple OR pie) sample:10 source:\"Twitter for iPhone\"",
    "lang:zh-CN OR lang:zh-TW OR lang:zh",
    "url:\"https://developer.x.com\" url_contains:\"google.com\" place:\"San Francisco\"",
    "profile_region:one/two profile_locality:\"New York City\" profile_subregion:x",
    "fish or bird and cat",
    "-\"a phrase\" #tag",
    "a OR(b c)",
    "\"\u{2764}\u{FE0F}\" love",
];

#[test]
fn corpus_round_trips_through_the_printer() {
    for rule in CORPUS {
        let tree = parse(rule).unwrap_or_else(|e| panic!("{rule:?}: {e}"));
        let printed = tree.to_string();
        assert_eq!(
            parse(&printed).as_ref(),
            Ok(&tree),
            "{rule:?} printed as {printed:?}"
        );
        assert_eq!(
            printed,
            parse(&printed).expect("reparses").to_string(),
            "printing is stable"
        );
    }
}

#[test]
fn printer_uses_canonical_names_and_minimal_quoting() {
    let canonical = |rule: &str| parse(rule).expect("valid").to_string();
    assert_eq!(
        canonical("user_bio:dev   following_count:5"),
        "bio:dev friends_count:5"
    );
    assert_eq!(canonical("contains:\"word\""), "contains:word");
    assert_eq!(
        canonical("contains:\"two words\""),
        "contains:\"two words\""
    );
    assert_eq!(canonical("((a OR b)) c"), "(a OR b) c");
    assert_eq!(canonical("a OR (b c)"), "a OR b c");
    assert_eq!(canonical("-(a b) c"), "-(a b) c");
    assert_eq!(
        canonical("point_radius:[-105.270 40.01 10 mi]"),
        "point_radius:[-105.27 40.01 10mi]"
    );
    assert_eq!(canonical("\"a \\\"b\\\"\""), "\"a \\\"b\\\"\"");
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let deep = format!("{}a{}", "(".repeat(1000), ")".repeat(1000));
    assert!(parse(&deep).is_err());
    let negated = format!("b {}a{}", "-(".repeat(600), ")".repeat(600));
    assert!(parse(&negated).is_err());
    let ok = format!("{}a{}", "(".repeat(50), ")".repeat(50));
    assert_eq!(parse(&ok).map(|r| r.to_string()), Ok("a".to_owned()));
}
