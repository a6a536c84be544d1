//! Every rule-validation example X documents, with X's exact message, every documented
//! limit on both sides of its bound, and one valid rule per operator and alias with the tree
//! it must parse to.
//!
//! Sources: `docs/compatibility.md` §2.1 (add: 422 example), §2.6 (validation example and the
//! gnip4j fixture), §3.1 (grammar), §3.3 (operator catalogue and limits), §10 (numbers).
//! Messages are compared byte for byte, trailing `\n`/`\n\n` included; positions are 1-based
//! UTF-16 code units. Where X never documented the message for a limit, only the rejection
//! and a sensible position are asserted.

use sluice_rules::{
    BoundingBox, Circle, Clause, CountField, CountRange, DistanceUnit, Expr, HasKind, IsKind,
    MAX_RULE_CHARS, Rule, RuleError, parse,
};

/// The PowerTrack message of a rule that must be rejected; the `Display` text must be the
/// same message.
fn rejection(rule: &str) -> Result<String, String> {
    match parse(rule) {
        Ok(tree) => Err(format!("accepted, as {tree:?}")),
        Err(e) => {
            let message = e.powertrack_message().to_owned();
            if e.to_string() != message {
                return Err(format!(
                    "Display {:?} differs from powertrack_message {message:?}",
                    e.to_string()
                ));
            }
            Ok(message)
        }
    }
}

/// 1-based UTF-16 position of the first occurrence of `needle` in `rule`.
fn position_of(rule: &str, needle: &str) -> usize {
    let byte = rule
        .find(needle)
        .unwrap_or_else(|| panic!("{needle:?} is not in {rule:?}"));
    rule[..byte].encode_utf16().count() + 1
}

/// The position a message line ends with, in any of X's three shapes.
fn trailing_position(message: &str) -> Option<usize> {
    let body = message
        .strip_suffix(")\n\n")
        .or_else(|| message.strip_suffix(")\n"))?;
    let (_, number) = body
        .rsplit_once(" (at position ")
        .or_else(|| body.rsplit_once(" (position "))?;
    number.parse().ok()
}

fn report(failures: Vec<String>, total: usize) {
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

// ---------------------------------------------------------------------------------------
// X's documented messages, byte for byte.

const SAMPLE_OR: &str = "The sample operator cannot be used with an OR. To use the sample operator with an OR in the rule, the ORed clauses must be grouped together with parenthesis.  For example, to get 10% of activites that have term1 or term2, the rule should be (excluding the single quotes) '(term1 OR term2) sample:10'";
const AMBIGUOUS_AND: &str = "Ambiguous use of and as a keyword. Use a space to logically join two clauses, or \"and\" to find occurrences of and in text";
const NO_POSITIVE: &str = "Rules must contain a non-negation term (at position 1)\nRules must contain at least one positive, non-stopword clause (at position 1)\n";

/// (where documented, rule, exact message).
const DOCUMENTED: &[(&str, &str, &str)] = &[
    (
        "§2.1 add 422 example",
        "streaming gnip contains:$twtr",
        "no viable alternative at input '$twtr' (at position 25)\n",
    ),
    (
        "§2.6 validation example: sample with a top-level OR, emoji counted as 2 UTF-16 units",
        "Pizza OR 🍕 OR \"🍕\" sample:100",
        // The message is SAMPLE_OR followed by " (at position 21)\n"; checked below.
        "",
    ),
    (
        "§2.6 validation example: operator as an operator's value",
        "from:contains:heart",
        "Cannot parse rule at ':' (position 14)\n",
    ),
    (
        "§2.6 validation example: upper-case AND",
        "fish AND bird",
        "",
    ),
    (
        "§2.6 validation example: unclosed groups",
        "(((\"#quotedhashtag\"",
        "mismatched input 'EOF' expecting ')' (at position 20)\n\n",
    ),
    (
        "§2.6 validation example: commas in geo arguments",
        "bounding_box:[-71.199636,42.230046,-70.979909,42.398619]",
        "Cannot parse rule at '71.199636,42.230046,-70.979909,42.398619' (position 16)\n",
    ),
    (
        "§2.6 gnip4j fixture: dangling OR",
        "aaaaa OR",
        "Cannot parse rule at '<EOF>' (position 9)\n",
    ),
    ("§3.1 negation only", "-follow", NO_POSITIVE),
];

#[test]
fn documented_examples_give_xs_exact_messages() {
    let mut failures = Vec::new();
    for (source, rule, expected) in DOCUMENTED {
        let expected = match *rule {
            "Pizza OR 🍕 OR \"🍕\" sample:100" => format!("{SAMPLE_OR} (at position 21)\n"),
            "fish AND bird" => format!("{AMBIGUOUS_AND} (at position 6)\n"),
            _ => (*expected).to_owned(),
        };
        match rejection(rule) {
            Ok(got) if got == expected => {}
            Ok(got) => failures.push(format!(
                "{source}\n  rule: {rule}\n  expected: {expected:?}\n  got:      {got:?}"
            )),
            Err(why) => failures.push(format!("{source}\n  rule: {rule}\n  {why}")),
        }
    }
    report(failures, DOCUMENTED.len());
}

#[test]
fn documented_valid_rules_are_valid() {
    // §2.1: the valid companion of the 422 example; §2.6: the valid rule of the example.
    for rule in ["streaming gnip contains:\"$twtr\"", "from:jack"] {
        if let Err(e) = parse(rule) {
            panic!("{rule:?} must be valid, got {e:?}");
        }
    }
}

/// Documented message shapes (§3.1 "Documented strings") at positions derived from the
/// documented rules: EOF is reported at length + 1 (`aaaaa OR` → 9,
/// `((("#quotedhashtag"` → 20, both length + 1), other positions are the offending
/// character's, counted in UTF-16 units.
const DOCUMENTED_SHAPES: &[(&str, &str, &str)] = &[
    (
        "upper-case AND after two emoji (4 UTF-16 units)",
        "🍕🍕 fish AND bird",
        "Ambiguous use of and as a keyword. Use a space to logically join two clauses, or \"and\" to find occurrences of and in text (at position 11)\n",
    ),
    (
        "contains: with an unquoted $ after an emoji",
        "🍕 contains:$twtr",
        "no viable alternative at input '$twtr' (at position 13)\n",
    ),
    (
        "one unclosed group",
        "(apple",
        "mismatched input 'EOF' expecting ')' (at position 7)\n\n",
    ),
    (
        "dangling OR after a group",
        "(apple OR pie) OR",
        "Cannot parse rule at '<EOF>' (position 18)\n",
    ),
    (
        "single quotes are not delimiters (§3.1, message of v2 plus PT's newline)",
        "apple 'coca cola'",
        "no viable alternative at character ''' (at position 7)\n",
    ),
    (
        "stray closing parenthesis",
        "apple)",
        "missing EOF at ')' (at position 6)\n",
    ),
    ("several negations only", "-apple -banana", NO_POSITIVE),
    ("a negated group only", "-(apple OR banana)", NO_POSITIVE),
    ("negated is:nullcast only", "-is:nullcast", NO_POSITIVE),
    ("negated operators only", "-has:links -lang:en", NO_POSITIVE),
];

#[test]
fn documented_shapes_at_other_positions() {
    let mut failures = Vec::new();
    for (what, rule, expected) in DOCUMENTED_SHAPES {
        match rejection(rule) {
            Ok(got) if got == *expected => {}
            Ok(got) => failures.push(format!(
                "{what}\n  rule: {rule}\n  expected: {expected:?}\n  got:      {got:?}"
            )),
            Err(why) => failures.push(format!("{what}\n  rule: {rule}\n  {why}")),
        }
    }
    report(failures, DOCUMENTED_SHAPES.len());
}

// ---------------------------------------------------------------------------------------
// Limits whose message X never documented: rejected, at a sensible position.

/// (what, rule, the substrings whose start is an acceptable position).
#[rustfmt::skip]
const UNDOCUMENTED_REJECTIONS: &[(&str, &str, &[&str])] = &[
    ("sample:0", "apple sample:0", &["sample", "0"]),
    ("sample:101", "apple sample:101", &["sample", "101"]),
    ("negated sample", "apple -sample:10", &["-sample", "sample"]),
    ("positive is:nullcast", "apple is:nullcast", &["is:", "nullcast"]),
    ("positive is:nullcast alone", "is:nullcast", &["is:", "nullcast"]),
    ("source: alone", "source:tweetdeck", &["source"]),
    ("source: with only negations", "source:tweetdeck -apple", &["source"]),
    ("unknown lang: code", "apple lang:xx", &["lang", "xx"]),
    ("radius 25mi", "point_radius:[-73.98 40.75 25mi]", &["point_radius", "[", "-73.98", "25mi"]),
    ("radius 25.0mi", "point_radius:[-73.98 40.75 25.0mi]", &["point_radius", "[", "-73.98", "25.0mi"]),
    ("radius 40.3km (> 25 mi)", "point_radius:[-73.98 40.75 40.3km]", &["point_radius", "[", "-73.98", "40.3km"]),
    ("profile radius 25mi", "profile_point_radius:[-73.98 40.75 25mi]", &["profile_point_radius", "[", "-73.98", "25mi"]),
    ("radius without unit", "point_radius:[-73.98 40.75 5]", &["point_radius", "[", "-73.98", "5]"]),
    ("radius in feet", "point_radius:[-73.98 40.75 5ft]", &["point_radius", "[", "-73.98", "5ft"]),
    ("radius longitude 181", "point_radius:[181 0 1mi]", &["point_radius", "[", "181"]),
    ("radius longitude -181", "point_radius:[-181 0 1mi]", &["point_radius", "[", "-181"]),
    ("radius latitude 91", "point_radius:[0 91 1mi]", &["point_radius", "[", "0 ", "91"]),
    ("radius latitude -90.5", "point_radius:[0 -90.5 1mi]", &["point_radius", "[", "0 ", "-90.5"]),
    ("box 31 mi wide at the equator", "bounding_box:[0 0 0.45 0.1]", &["bounding_box", "[", "0 ", "0.45"]),
    ("box 31 mi high", "bounding_box:[0 0 0.1 0.45]", &["bounding_box", "[", "0 ", "0.1", "0.45"]),
    ("geo_bounding_box too wide", "geo_bounding_box:[0 0 0.45 0.1]", &["geo_bounding_box", "[", "0 ", "0.45"]),
    ("profile box too wide", "profile_bounding_box:[0 0 0.45 0.1]", &["profile_bounding_box", "[", "0 ", "0.45"]),
    ("box west -181", "bounding_box:[-181 0 -180.9 0.1]", &["bounding_box", "[", "-181"]),
    ("box north 90.5", "bounding_box:[0 90.4 0.1 90.5]", &["bounding_box", "[", "0 ", "90.4", "90.5"]),
    ("box with three numbers", "bounding_box:[0 0 0.1]", &["bounding_box", "[", "0 ", "]"]),
    ("proximity ~7", "\"hate love\"~7", &["\"", "~", "7"]),
    ("proximity ~10", "apple \"hate love\"~10", &["\"", "~", "10"]),
    ("count range N > M", "followers_count:10..5", &["followers_count", "10"]),
    ("count range alias N > M", "following_count:200..100", &["following_count", "200"]),
    ("negative count", "followers_count:-5", &["followers_count", "-5"]),
    ("OR with a bare negation", "apple OR -ipad", &["apple", "OR", "-ipad"]),
    ("empty rule", "", &[""]),
    ("whitespace-only rule", "   ", &["   "]),
    ("unknown operator", "apple foo:bar", &["foo", ":"]),
    ("unknown has: attribute", "apple has:cashtags", &["has", "cashtags"]),
    ("unknown is: attribute", "apple is:bogus", &["is", "bogus"]),
    ("v2-only operator", "apple conversation_id:123", &["conversation_id", ":", "123"]),
    ("non-numeric status id", "retweets_of_status_id:abc", &["retweets_of_status_id", ":", "abc"]),
    ("status id beyond 64 bits", "in_reply_to_status_id:18446744073709551616", &["in_reply_to_status_id", ":", "1"]),
    ("unclosed phrase", "apple \"pie", &["\"", "pie"]),
    ("empty group", "apple ()", &["(", ")"]),
];

#[test]
fn undocumented_limits_are_rejected_at_a_sensible_position() {
    let mut failures = Vec::new();
    for (what, rule, anchors) in UNDOCUMENTED_REJECTIONS {
        // The start of an anchor, or the end of the rule for problems found at EOF.
        let utf16_len = rule.encode_utf16().count();
        let mut allowed: Vec<usize> = anchors.iter().map(|a| position_of(rule, a)).collect();
        if anchors.iter().any(|a| a.is_empty() || a.trim().is_empty()) {
            allowed.extend([1, utf16_len, utf16_len + 1]);
        }
        match rejection(rule) {
            Ok(message) => match trailing_position(&message) {
                Some(p) if allowed.contains(&p) => {}
                Some(p) => failures.push(format!(
                    "{what}\n  rule: {rule:?}\n  position {p} is not one of {allowed:?}\n  message: {message:?}"
                )),
                None => failures.push(format!(
                    "{what}\n  rule: {rule:?}\n  the message does not end with \"(at position N)\\n\": {message:?}"
                )),
            },
            Err(why) => failures.push(format!("{what}\n  rule: {rule:?}\n  {why}")),
        }
    }
    report(failures, UNDOCUMENTED_REJECTIONS.len());
}

/// `count` characters of rule text: words separated by spaces, with emoji (1 character,
/// 2 UTF-16 units, 4 bytes each) so that bytes and UTF-16 units both exceed the count.
fn rule_of_chars(count: usize) -> String {
    let mut rule = "🍕 ".repeat((count - 2) / 2);
    while rule.chars().count() < count {
        rule.push('a');
    }
    assert_eq!(rule.chars().count(), count);
    rule
}

#[test]
fn length_is_counted_in_characters() {
    assert_eq!(MAX_RULE_CHARS, 2048);
    let longest = rule_of_chars(2048);
    assert!(longest.encode_utf16().count() > 3000 && longest.len() > 5000);
    if let Err(e) = parse(&longest) {
        panic!("a rule of exactly 2,048 characters must be valid, got {e:?}");
    }
    let ascii = format!("{}ab", "ab ".repeat(682));
    assert_eq!(ascii.chars().count(), 2048);
    if let Err(e) = parse(&ascii) {
        panic!("a 2,048-character ASCII rule must be valid, got {e:?}");
    }

    for too_long in [
        rule_of_chars(2049),
        format!("{ascii}c"),
        rule_of_chars(5000),
    ] {
        let message = rejection(&too_long).unwrap_or_else(|why| {
            panic!("a rule of {} characters: {why}", too_long.chars().count())
        });
        let position = trailing_position(&message)
            .unwrap_or_else(|| panic!("no trailing position in {message:?}"));
        let utf16_len = too_long.encode_utf16().count();
        let char_2049 = too_long
            .char_indices()
            .nth(2048)
            .map(|(byte, _)| too_long[..byte].encode_utf16().count() + 1)
            .expect("the rule has more than 2,048 characters");
        assert!(
            [1, char_2049, utf16_len, utf16_len + 1].contains(&position),
            "over-long rule reported at position {position}: {message:?}"
        );
    }
}

/// Each bound of a documented limit, on its valid side.
#[rustfmt::skip]
const VALID_AT_THE_BOUND: &[(&str, &str)] = &[
    ("sample:100", "apple sample:100"),
    ("sample:1", "apple sample:1"),
    ("sample: with a grouped OR", "(apple OR pie) sample:10"),
    ("sample: with an OR inside AND", "tart (apple OR pie) sample:10"),
    ("-is:nullcast", "apple -is:nullcast"),
    ("source: with a keyword", "source:tweetdeck apple"),
    ("radius 24.9mi", "point_radius:[-73.98 40.75 24.9mi]"),
    ("radius 40.2km (< 25 mi)", "point_radius:[-73.98 40.75 40.2km]"),
    ("profile radius 24.9mi", "profile_point_radius:[-73.98 40.75 24.9mi]"),
    ("longitude ±180", "point_radius:[180 0 1mi] OR point_radius:[-180 0 1mi]"),
    ("latitude ±90", "point_radius:[0 90 1mi] OR point_radius:[0 -90 1mi]"),
    ("box 21 mi square at the equator", "bounding_box:[0 0 0.3 0.3]"),
    ("box in the west and south", "bounding_box:[-74.0 -40.8 -73.9 -40.7]"),
    ("proximity ~6", "\"hate love\"~6"),
    ("proximity ~1", "\"hate love\"~1"),
    ("count N..N", "followers_count:5..5"),
    ("count N..M", "followers_count:5..10"),
    ("count 0", "followers_count:0"),
    ("lang: from X's list", "lang:hi-Latn"),
    ("lang:zh-CN and zh-TW and zh", "lang:zh-CN OR lang:zh-TW OR lang:zh"),
    ("lang:und (X accepts unsupported values)", "apple lang:und"),
    ("negated group", "apple -(iphone OR imac)"),
    ("lower-case and is a keyword", "fish and bird"),
    ("lower-case or is a keyword", "fish or bird"),
    ("status id 2^64 - 1", "in_reply_to_status_id:18446744073709551615"),
];

#[test]
fn valid_side_of_every_limit() {
    let failures: Vec<String> = VALID_AT_THE_BOUND
        .iter()
        .filter_map(|(what, rule)| {
            parse(rule)
                .err()
                .map(|e: RuleError| format!("{what}\n  rule: {rule:?}\n  rejected: {e:?}"))
        })
        .collect();
    report(failures, VALID_AT_THE_BOUND.len());
}

// ---------------------------------------------------------------------------------------
// One valid rule per operator and alias, with the tree it must parse to.

fn clause(c: Clause) -> Expr {
    Expr::Clause(c)
}

fn kw(s: &str) -> Expr {
    clause(Clause::Keyword(s.to_owned()))
}

fn not(e: Expr) -> Expr {
    Expr::Not(Box::new(e))
}

fn circle(longitude: f64, latitude: f64, radius: f64, unit: DistanceUnit) -> Circle {
    Circle {
        longitude,
        latitude,
        radius,
        unit,
    }
}

fn bbox(west: f64, south: f64, east: f64, north: f64) -> BoundingBox {
    BoundingBox {
        west,
        south,
        east,
        north,
    }
}

fn count(field: CountField, min: u64, max: Option<u64>) -> Expr {
    clause(Clause::Count {
        field,
        range: CountRange { min, max },
    })
}

fn operator_trees() -> Vec<(&'static str, Expr)> {
    use Clause as C;
    let s = |v: &str| v.to_owned();
    vec![
        ("apple", kw("apple")),
        ("🍕", kw("🍕")),
        ("\"happy birthday\"", clause(C::Phrase(s("happy birthday")))),
        (r#""Toys \"R\" Us""#, clause(C::Phrase(s(r#"Toys "R" Us"#)))),
        (
            "\"hate love\"~3",
            clause(C::Proximity {
                phrase: s("hate love"),
                distance: 3,
            }),
        ),
        ("#Giants", clause(C::Hashtag(s("Giants")))),
        ("@jack", clause(C::Mention(s("jack")))),
        ("$TWTR", clause(C::Cashtag(s("TWTR")))),
        ("contains:hello", clause(C::Contains(s("hello")))),
        ("contains:\"buy now\"", clause(C::Contains(s("buy now")))),
        ("from:jack", clause(C::From(s("jack")))),
        (
            "from:9223372036854775808",
            clause(C::From(s("9223372036854775808"))),
        ),
        ("to:jack", clause(C::To(s("jack")))),
        ("retweets_of:jack", clause(C::RetweetsOf(s("jack")))),
        ("retweets_of_user:12", clause(C::RetweetsOf(s("12")))),
        (
            "retweets_of_status_id:9223372036854775807",
            clause(C::RetweetsOfStatusId(9_223_372_036_854_775_807)),
        ),
        (
            "retweets_of_tweet_id:1234",
            clause(C::RetweetsOfStatusId(1234)),
        ),
        (
            "in_reply_to_status_id:9007199254740993",
            clause(C::InReplyToStatusId(9_007_199_254_740_993)),
        ),
        (
            "in_reply_to_tweet_id:1234",
            clause(C::InReplyToStatusId(1234)),
        ),
        (
            "url:\"https://developer.x.com\"",
            clause(C::Url(s("https://developer.x.com"))),
        ),
        ("url:\"/developer\"", clause(C::Url(s("/developer")))),
        (
            "url_contains:\"google.com\"",
            clause(C::UrlContains(s("google.com"))),
        ),
        ("url_title:overview", clause(C::UrlTitle(s("overview")))),
        (
            "within_url_title:\"x developer\"",
            clause(C::UrlTitle(s("x developer"))),
        ),
        ("url_description:api", clause(C::UrlDescription(s("api")))),
        (
            "within_url_description:api",
            clause(C::UrlDescription(s("api"))),
        ),
        ("bio:developer", clause(C::Bio(s("developer")))),
        (
            "user_bio:\"software developer\"",
            clause(C::Bio(s("software developer"))),
        ),
        ("bio_name:smith", clause(C::BioName(s("smith")))),
        (
            "bio_location:\"new york\"",
            clause(C::BioLocation(s("new york"))),
        ),
        ("user_bio_location:york", clause(C::BioLocation(s("york")))),
        (
            "followers_count:1000",
            count(CountField::Followers, 1000, None),
        ),
        (
            "followers_count:1000..2000",
            count(CountField::Followers, 1000, Some(2000)),
        ),
        (
            "friends_count:10..20",
            count(CountField::Friends, 10, Some(20)),
        ),
        ("following_count:10", count(CountField::Friends, 10, None)),
        (
            "statuses_count:100..200",
            count(CountField::Statuses, 100, Some(200)),
        ),
        ("tweets_count:100", count(CountField::Statuses, 100, None)),
        ("listed_count:0..5", count(CountField::Listed, 0, Some(5))),
        ("user_in_lists_count:3", count(CountField::Listed, 3, None)),
        ("lang:en", clause(C::Lang(s("en")))),
        ("lang:zh-CN", clause(C::Lang(s("zh-CN")))),
        (
            "place:\"San Francisco\"",
            clause(C::Place(s("San Francisco"))),
        ),
        (
            "place:01a9a39529b27f36",
            clause(C::Place(s("01a9a39529b27f36"))),
        ),
        ("place_country:US", clause(C::PlaceCountry(s("US")))),
        (
            "point_radius:[-73.98 40.75 5mi]",
            clause(C::PointRadius(circle(
                -73.98,
                40.75,
                5.0,
                DistanceUnit::Miles,
            ))),
        ),
        (
            "point_radius:[2.3522 48.8566 10km]",
            clause(C::PointRadius(circle(
                2.3522,
                48.8566,
                10.0,
                DistanceUnit::Kilometers,
            ))),
        ),
        (
            "bounding_box:[-74.0 40.7 -73.9 40.8]",
            clause(C::BoundingBox(bbox(-74.0, 40.7, -73.9, 40.8))),
        ),
        (
            "geo_bounding_box:[-74.0 40.7 -73.9 40.8]",
            clause(C::BoundingBox(bbox(-74.0, 40.7, -73.9, 40.8))),
        ),
        ("profile_country:US", clause(C::ProfileCountry(s("US")))),
        (
            "profile_region:\"New York\"",
            clause(C::ProfileRegion(s("New York"))),
        ),
        (
            "profile_region:one/two",
            clause(C::ProfileRegion(s("one/two"))),
        ),
        (
            "profile_locality:\"New York City\"",
            clause(C::ProfileLocality(s("New York City"))),
        ),
        (
            "profile_subregion:\"New York County\"",
            clause(C::ProfileSubregion(s("New York County"))),
        ),
        (
            "profile_point_radius:[-73.98 40.75 5mi]",
            clause(C::ProfilePointRadius(circle(
                -73.98,
                40.75,
                5.0,
                DistanceUnit::Miles,
            ))),
        ),
        (
            "profile_bounding_box:[-74.0 40.7 -73.9 40.8]",
            clause(C::ProfileBoundingBox(bbox(-74.0, 40.7, -73.9, 40.8))),
        ),
        ("has:geo", clause(C::Has(HasKind::Geo))),
        ("has:profile_geo", clause(C::Has(HasKind::ProfileGeo))),
        ("has:derived_user_geo", clause(C::Has(HasKind::ProfileGeo))),
        ("has:links", clause(C::Has(HasKind::Links))),
        ("has:mentions", clause(C::Has(HasKind::Mentions))),
        ("has:hashtags", clause(C::Has(HasKind::Hashtags))),
        ("has:symbols", clause(C::Has(HasKind::Symbols))),
        ("has:media", clause(C::Has(HasKind::Media))),
        ("has:media_link", clause(C::Has(HasKind::Media))),
        ("has:images", clause(C::Has(HasKind::Images))),
        ("has:videos", clause(C::Has(HasKind::Videos))),
        ("has:video_link", clause(C::Has(HasKind::Videos))),
        ("has:lang", clause(C::Has(HasKind::Lang))),
        ("is:retweet", clause(C::Is(IsKind::Retweet))),
        ("is:reply", clause(C::Is(IsKind::Reply))),
        ("is:quote", clause(C::Is(IsKind::Quote))),
        ("is:verified", clause(C::Is(IsKind::Verified))),
        (
            "apple -is:nullcast",
            Expr::And(vec![kw("apple"), not(clause(C::Is(IsKind::Nullcast)))]),
        ),
        (
            "apple sample:10",
            Expr::And(vec![kw("apple"), clause(C::Sample(10))]),
        ),
        (
            "source:tweetdeck apple",
            Expr::And(vec![clause(C::Source(s("tweetdeck"))), kw("apple")]),
        ),
        (
            "source:\"Twitter for iPhone\" apple",
            Expr::And(vec![
                clause(C::Source(s("Twitter for iPhone"))),
                kw("apple"),
            ]),
        ),
    ]
}

/// Boolean structure: precedence, flattening, groups, negation.
fn structure_trees() -> Vec<(&'static str, Expr)> {
    vec![
        (
            "apple OR iphone ipad",
            Expr::Or(vec![kw("apple"), Expr::And(vec![kw("iphone"), kw("ipad")])]),
        ),
        (
            "ipad iphone OR android",
            Expr::Or(vec![
                Expr::And(vec![kw("ipad"), kw("iphone")]),
                kw("android"),
            ]),
        ),
        (
            "(apple OR iphone) ipad",
            Expr::And(vec![Expr::Or(vec![kw("apple"), kw("iphone")]), kw("ipad")]),
        ),
        ("((apple))", kw("apple")),
        ("a (b c)", Expr::And(vec![kw("a"), kw("b"), kw("c")])),
        ("a OR (b OR c)", Expr::Or(vec![kw("a"), kw("b"), kw("c")])),
        (
            "fruit -(apple OR banana)",
            Expr::And(vec![
                kw("fruit"),
                not(Expr::Or(vec![kw("apple"), kw("banana")])),
            ]),
        ),
        ("apple -pie", Expr::And(vec![kw("apple"), not(kw("pie"))])),
        (
            "cat or dog",
            Expr::And(vec![kw("cat"), kw("or"), kw("dog")]),
        ),
        (
            "fish and chips",
            Expr::And(vec![kw("fish"), kw("and"), kw("chips")]),
        ),
        ("  apple   pie  ", Expr::And(vec![kw("apple"), kw("pie")])),
        (
            "streaming gnip contains:\"$twtr\"",
            Expr::And(vec![
                kw("streaming"),
                kw("gnip"),
                clause(Clause::Contains("$twtr".to_owned())),
            ]),
        ),
        (
            "(cat OR dog) lang:en -is:retweet",
            Expr::And(vec![
                Expr::Or(vec![kw("cat"), kw("dog")]),
                clause(Clause::Lang("en".to_owned())),
                not(clause(Clause::Is(IsKind::Retweet))),
            ]),
        ),
    ]
}

#[test]
fn every_operator_and_alias_parses_to_its_tree() {
    let cases: Vec<(&str, Expr)> = operator_trees()
        .into_iter()
        .chain(structure_trees())
        .collect();
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(rule, want)| match parse(rule) {
            Ok(Rule { expr }) if expr == *want => None,
            Ok(Rule { expr }) => Some(format!(
                "rule: {rule}\n  expected: {want:?}\n  got:      {expr:?}"
            )),
            Err(e) => Some(format!("rule: {rule}\n  rejected: {e:?}")),
        })
        .collect();
    report(failures, cases.len());
}

#[test]
fn every_operator_can_be_negated_except_sample() {
    let negatable = [
        "#Giants",
        "@jack",
        "$TWTR",
        "\"a b\"",
        "\"a b\"~2",
        "contains:x",
        "from:jack",
        "to:jack",
        "retweets_of:jack",
        "retweets_of_status_id:1",
        "in_reply_to_status_id:1",
        "url:x",
        "url_contains:x",
        "url_title:x",
        "url_description:x",
        "bio:x",
        "bio_name:x",
        "bio_location:x",
        "followers_count:1",
        "lang:en",
        "place:x",
        "place_country:US",
        "point_radius:[0 0 1mi]",
        "bounding_box:[0 0 0.1 0.1]",
        "profile_country:US",
        "profile_region:x",
        "profile_locality:x",
        "profile_subregion:x",
        "profile_point_radius:[0 0 1mi]",
        "profile_bounding_box:[0 0 0.1 0.1]",
        "has:geo",
        "has:links",
        "has:lang",
        "is:retweet",
        "is:reply",
        "is:quote",
        "is:verified",
        "is:nullcast",
        "source:x",
    ];
    let failures: Vec<String> = negatable
        .iter()
        .filter_map(|clause| {
            let rule = format!("apple -{clause}");
            match parse(&rule) {
                Ok(Rule {
                    expr: Expr::And(children),
                }) if children.len() == 2 && matches!(children[1], Expr::Not(_)) => None,
                Ok(other) => Some(format!("{rule}: unexpected tree {other:?}")),
                Err(e) => Some(format!("{rule}: rejected {e:?}")),
            }
        })
        .collect();
    report(failures, negatable.len());
}

#[test]
fn has_is_and_lang_stand_alone_on_powertrack() {
    // §3.4 / docs/compatibility.md ("Decisions"): PowerTrack accepts has:/is:/lang: as the only clause.
    for rule in [
        "has:links",
        "has:geo",
        "has:media",
        "has:images",
        "has:videos",
        "has:mentions",
        "has:hashtags",
        "is:retweet",
        "is:quote",
        "is:reply",
        "is:verified",
        "lang:en",
    ] {
        if let Err(e) = parse(rule) {
            panic!("{rule:?} must be valid alone on PowerTrack, got {e:?}");
        }
    }
}
