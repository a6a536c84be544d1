//! Invalid rules produce X's message byte for byte, with 1-based UTF-16 positions.
//!
//! One table of invalid rules and the message each must get, and one of rules that must be
//! accepted, each row in its dialect (aho-corasick's `tests.rs` style): a new case is a
//! row, not a function. What a table cannot say (several problems' positions, the length
//! limit built at run time, printing) has a test of its own below.

use sluice_rules::{Dialect, MAX_RULE_CHARS, parse, parse_with};

const PT: Dialect = Dialect::PowerTrack;
const PS: Dialect = Dialect::Powerstream;
const V2: Dialect = Dialect::V2;

/// `<problem> (at position N)\n`, X's usual shape.
macro_rules! at {
    ($text:literal, $pos:literal) => {
        concat!($text, " (at position ", $pos, ")\n")
    };
}

const AND_KEYWORD: &str = "Ambiguous use of and as a keyword. Use a space to logically join two \
                           clauses, or \"and\" to find occurrences of and in text";
const NO_POSITIVE: &str = "Rules must contain a non-negation term (at position 1)\nRules must \
                           contain at least one positive, non-stopword clause (at position 1)\n";
const RADIUS: &str = at!(
    "The radius must be greater than 0 and less than 25 miles",
    "15"
);
const PROXIMITY: &str = at!("The proximity distance must be an integer from 1 to 6", "6");

/// (dialect, rule, the whole message). Powerstream rows are rules only that dialect refuses.
const INVALID: &[(Dialect, &str, &str)] = &[
    // Every example X's documentation quotes for the rules API and the grammar.
    (
        PT,
        "Pizza OR 🍕 OR \"🍕\" sample:100",
        "The sample operator cannot be used with an OR. To use the sample operator with an OR \
         in the rule, the ORed clauses must be grouped together with parenthesis.  For example, \
         to get 10% of activites that have term1 or term2, the rule should be (excluding the \
         single quotes) '(term1 OR term2) sample:10' (at position 21)\n",
    ),
    (
        PT,
        "from:contains:heart",
        "Cannot parse rule at ':' (position 14)\n",
    ),
    (
        PT,
        "fish AND bird",
        "Ambiguous use of and as a keyword. Use a space to logically join two clauses, or \
         \"and\" to find occurrences of and in text (at position 6)\n",
    ),
    (
        PT,
        "(((\"#quotedhashtag\"",
        "mismatched input 'EOF' expecting ')' (at position 20)\n\n",
    ),
    (
        PT,
        "bounding_box:[-71.199636,42.230046,-70.979909,42.398619]",
        "Cannot parse rule at '71.199636,42.230046,-70.979909,42.398619' (position 16)\n",
    ),
    (
        PT,
        "aaaaa OR",
        "Cannot parse rule at '<EOF>' (position 9)\n",
    ),
    (
        PT,
        "streaming gnip contains:$twtr",
        at!("no viable alternative at input '$twtr'", "25"),
    ),
    (PT, "-follow", NO_POSITIVE),
    (
        PT,
        "soda OR cola beer 'coca cola'",
        at!("no viable alternative at character '''", "19"),
    ),
    (PT, "a)", at!("missing EOF at ')'", "2")),
    // Other syntax errors.
    (PT, "🍕 OR", "Cannot parse rule at '<EOF>' (position 6)\n"),
    (PT, "OR a", "Cannot parse rule at 'OR' (position 1)\n"),
    (PT, "a OR OR b", "Cannot parse rule at 'OR' (position 6)\n"),
    (PT, "(a OR)", "Cannot parse rule at ')' (position 6)\n"),
    (PT, "()", "Cannot parse rule at ')' (position 2)\n"),
    (PT, "", "Cannot parse rule at '<EOF>' (position 1)\n"),
    (PT, "--a", "Cannot parse rule at '-' (position 2)\n"),
    (
        PT,
        "a - b",
        at!("no viable alternative at character '-'", "3"),
    ),
    (
        PT,
        "cat foo:bar",
        at!("Reference to invalid operator 'foo'", "5"),
    ),
    (
        PT,
        "FROM:jack",
        at!("Reference to invalid operator 'FROM'", "1"),
    ),
    (
        PT,
        "has:cashtags",
        at!("Reference to invalid field 'cashtags'", "5"),
    ),
    (
        PT,
        "is:retweeted",
        at!("Reference to invalid field 'retweeted'", "4"),
    ),
    (
        PT,
        "a \"b c",
        at!("no viable alternative at character '\"'", "3"),
    ),
    (
        PT,
        "#qwerty123 ⚽\u{FE0F}",
        at!("no viable alternative at input '⚽\u{FE0F}'", "12"),
    ),
    (
        PT,
        "from:",
        at!("no viable alternative at input 'from:'", "6"),
    ),
    (
        PT,
        "followers_count:ten",
        "Cannot parse rule at 'ten' (position 17)\n",
    ),
    (
        PT,
        "followers_count:5..",
        "Cannot parse rule at '5..' (position 17)\n",
    ),
    (
        PT,
        "retweets_of_status_id:12a",
        "Cannot parse rule at '12a' (position 23)\n",
    ),
    (
        PT,
        "sample:ten a",
        "Cannot parse rule at 'ten' (position 8)\n",
    ),
    (
        PT,
        "point_radius:[1 2]",
        "Cannot parse rule at ']' (position 18)\n",
    ),
    (
        PT,
        "point_radius:[1 2 3]",
        "Cannot parse rule at '3' (position 19)\n",
    ),
    (
        PT,
        "point_radius:[1 2 3 miles]",
        "Cannot parse rule at 'miles' (position 21)\n",
    ),
    (
        PT,
        "bounding_box:[1 2 3 4 5]",
        "Cannot parse rule at '5' (position 23)\n",
    ),
    (
        PT,
        "point_radius:[1 2 3mi",
        "mismatched input 'EOF' expecting ']' (at position 22)\n\n",
    ),
    (PT, "a \"b\"~ c", "Cannot parse rule at '~' (position 6)\n"),
    (PT, "#", at!("no viable alternative at input '#'", "1")),
    (
        PT,
        "a \"\"",
        at!("no viable alternative at input '\"\"'", "3"),
    ),
    // Limits (texts in X's style where X's own text is unknown).
    (PT, "apple OR -ipad", NO_POSITIVE),
    (PT, "-(a b)", NO_POSITIVE),
    (PT, "sample:10", NO_POSITIVE),
    (
        PT,
        "a sample:0",
        at!(
            "The sample operator requires an integer from 1 to 100",
            "10"
        ),
    ),
    (
        PT,
        "a sample:101",
        at!(
            "The sample operator requires an integer from 1 to 100",
            "10"
        ),
    ),
    (
        PT,
        "a -sample:10",
        at!("The sample operator cannot be negated", "4"),
    ),
    (
        PT,
        "source:twitterfeed",
        at!("source cannot be used as a standalone operator", "1"),
    ),
    (
        PT,
        "-cat source:x",
        at!("source cannot be used as a standalone operator", "6"),
    ),
    (
        PT,
        "cat is:nullcast",
        at!("is:nullcast can only be used negated (-is:nullcast)", "5"),
    ),
    (
        PT,
        "a lang:english",
        at!("Invalid language code 'english'", "8"),
    ),
    (PT, "point_radius:[-105.27 40.01 25mi]", RADIUS),
    (PT, "point_radius:[-105.27 40.01 41km]", RADIUS),
    (PT, "point_radius:[-105.27 40.01 0mi]", RADIUS),
    (
        PT,
        "profile_point_radius:[-181 40 1mi]",
        at!("Longitude must be between -180 and 180", "23"),
    ),
    (
        PT,
        "point_radius:[0 90.5 1mi]",
        at!("Latitude must be between -90 and 90", "15"),
    ),
    (
        PT,
        "bounding_box:[2 1 1 2]",
        at!(
            "The west longitude must be less than the east longitude",
            "15"
        ),
    ),
    (
        PT,
        "geo_bounding_box:[1 2 2 1]",
        at!(
            "The south latitude must be less than the north latitude",
            "19"
        ),
    ),
    (
        PT,
        "profile_bounding_box:[0 0 1 0.1]",
        at!(
            "The width and height of a bounding box must be less than 25 miles",
            "23"
        ),
    ),
    (PT, "\"a b\"~7", PROXIMITY),
    (PT, "\"a b\"~0", PROXIMITY),
    (PT, "\"a b\"~99999999999999999999999", PROXIMITY),
    (
        PT,
        "followers_count:10..9",
        at!(
            "The lower bound of a count range cannot exceed its upper bound",
            "17"
        ),
    ),
    // Control characters (C0, DEL, C1), wherever they are, in both dialects.
    (
        PT,
        "cat\u{0}",
        at!("Rules cannot contain control characters: found U+0000", "4"),
    ),
    (
        PT,
        "\u{0}",
        at!("Rules cannot contain control characters: found U+0000", "1"),
    ),
    (
        PT,
        "\"cat\u{0}dog\"",
        at!("Rules cannot contain control characters: found U+0000", "5"),
    ),
    (
        PT,
        "from:a\u{1}b",
        at!("Rules cannot contain control characters: found U+0001", "7"),
    ),
    (
        PT,
        "cat \u{1b}[31m",
        at!("Rules cannot contain control characters: found U+001B", "5"),
    ),
    (
        PT,
        "cat\u{7f}",
        at!("Rules cannot contain control characters: found U+007F", "4"),
    ),
    (
        PT,
        "🐟 \u{85}",
        at!("Rules cannot contain control characters: found U+0085", "4"),
    ),
    (
        PT,
        "cat\u{9f} dog\u{0}",
        at!("Rules cannot contain control characters: found U+009F", "4"),
    ),
    (
        PT,
        "cat\u{b}dog",
        at!("Rules cannot contain control characters: found U+000B", "4"),
    ),
    (
        PS,
        "cat\u{0}",
        at!("Rules cannot contain control characters: found U+0000", "4"),
    ),
    (
        PS,
        "\u{0}",
        at!("Rules cannot contain control characters: found U+0000", "1"),
    ),
    (
        PS,
        "\"cat\u{0}dog\"",
        at!("Rules cannot contain control characters: found U+0000", "5"),
    ),
    (
        PS,
        "from:a\u{1}b",
        at!("Rules cannot contain control characters: found U+0001", "7"),
    ),
    (
        PS,
        "cat \u{1b}[31m",
        at!("Rules cannot contain control characters: found U+001B", "5"),
    ),
    (
        PS,
        "cat\u{7f}",
        at!("Rules cannot contain control characters: found U+007F", "4"),
    ),
    (
        PS,
        "🐟 \u{85}",
        at!("Rules cannot contain control characters: found U+0085", "4"),
    ),
    (
        PS,
        "cat\u{9f} dog\u{0}",
        at!("Rules cannot contain control characters: found U+009F", "4"),
    ),
    (
        PS,
        "cat\u{b}dog",
        at!("Rules cannot contain control characters: found U+000B", "4"),
    ),
    // Powerstream: operators outside its list, and is/has/lang alone.
    (
        PS,
        "cat url_title:dog",
        at!("Reference to invalid operator 'url_title'", "5"),
    ),
    (
        PS,
        "cat within_url_title:dog",
        at!("Reference to invalid operator 'within_url_title'", "5"),
    ),
    (PS, "#cat", at!("Reference to invalid operator '#'", "1")),
    (PS, "$TWTR", at!("Reference to invalid operator '$'", "1")),
    (
        PS,
        "\"a b\"~3",
        at!("Reference to invalid operator '~'", "6"),
    ),
    (
        PS,
        "cat has:hashtags",
        at!("Reference to invalid operator 'has:hashtags'", "5"),
    ),
    (
        PS,
        "cat -is:nullcast",
        at!("Reference to invalid operator 'is:nullcast'", "6"),
    ),
    (
        PS,
        "has:links lang:en",
        at!("is/has/lang cannot be used as a standalone operator", "1"),
    ),
    (
        PS,
        "cat OR is:retweet",
        at!("is/has/lang cannot be used as a standalone operator", "8"),
    ),
    (
        V2,
        "has:links lang:en",
        at!("is/has/lang cannot be used as a standalone operator", "1"),
    ),
    (
        V2,
        "-cat is:retweet",
        at!("is/has/lang cannot be used as a standalone operator", "6"),
    ),
    // v2-only operators: unknown to PowerTrack and Powerstream, with today's wording.
    (
        PT,
        "cat conversation_id:123",
        at!("Reference to invalid operator 'conversation_id'", "5"),
    ),
    (
        PT,
        "cat context:10.*",
        at!("Reference to invalid operator 'context'", "5"),
    ),
    (
        PT,
        "cat entity:\"Michael Jordan\"",
        at!("Reference to invalid operator 'entity'", "5"),
    ),
    (
        PT,
        "cat -embedding:x",
        at!("Reference to invalid operator 'embedding'", "6"),
    ),
    (
        PS,
        "cat has:cashtags",
        at!("Reference to invalid field 'cashtags'", "9"),
    ),
    (
        PS,
        "cat conversation_id:123",
        at!("Reference to invalid operator 'conversation_id'", "5"),
    ),
    (
        PS,
        "cat context:10.5",
        at!("Reference to invalid operator 'context'", "5"),
    ),
    (
        PS,
        "cat entity:Twitter",
        at!("Reference to invalid operator 'entity'", "5"),
    ),
    (
        PS,
        "cat embedding:\"dogs\"",
        at!("Reference to invalid operator 'embedding'", "5"),
    ),
    // v2-only operators in V2: their values, negation and the standalone rule.
    (
        V2,
        "conversation_id:12a",
        "Cannot parse rule at '12a' (position 17)\n",
    ),
    (
        V2,
        "conversation_id:-5",
        "Cannot parse rule at '-5' (position 17)\n",
    ),
    (
        V2,
        "conversation_id:18446744073709551616",
        "Cannot parse rule at '18446744073709551616' (position 17)\n",
    ),
    (
        V2,
        "conversation_id:\"12\"",
        "Cannot parse rule at '\"12\"' (position 17)\n",
    ),
    (
        V2,
        "conversation_id:",
        at!("no viable alternative at input 'conversation_id:'", "17"),
    ),
    (
        V2,
        "cat context:10",
        "Cannot parse rule at '10' (position 13)\n",
    ),
    (
        V2,
        "cat context:10.",
        "Cannot parse rule at '10.' (position 13)\n",
    ),
    (
        V2,
        "cat context:.5",
        "Cannot parse rule at '.5' (position 13)\n",
    ),
    (
        V2,
        "cat context:*.5",
        "Cannot parse rule at '*.5' (position 13)\n",
    ),
    (
        V2,
        "cat context:10.5.6",
        "Cannot parse rule at '10.5.6' (position 13)\n",
    ),
    (
        V2,
        "cat context:10.*x",
        "Cannot parse rule at '10.*x' (position 13)\n",
    ),
    (
        V2,
        "cat context:ten.5",
        "Cannot parse rule at 'ten.5' (position 13)\n",
    ),
    (
        V2,
        "cat context:\"10.5\"",
        "Cannot parse rule at '\"10.5\"' (position 13)\n",
    ),
    (
        V2,
        "cat CONTEXT:10.5",
        at!("Reference to invalid operator 'CONTEXT'", "5"),
    ),
    (
        V2,
        "entity:",
        at!("no viable alternative at input 'entity:'", "8"),
    ),
    (
        V2,
        "entity:\"\"",
        at!("no viable alternative at input '\"\"'", "8"),
    ),
    (
        V2,
        "cat -embedding:\"dogs in snow\"",
        at!("The embedding operator cannot be negated", "6"),
    ),
    (
        V2,
        "cat -(dog OR embedding:dogs)",
        at!("The embedding operator cannot be negated", "14"),
    ),
    (
        V2,
        "has:cashtags",
        at!("is/has/lang cannot be used as a standalone operator", "1"),
    ),
    (
        V2,
        "has:cashtags OR cat",
        at!("is/has/lang cannot be used as a standalone operator", "1"),
    ),
    (
        V2,
        "cat has:cashtag",
        at!("Reference to invalid field 'cashtag'", "9"),
    ),
];

/// Rules that must be accepted in their dialect (PowerTrack rows are checked on
/// PowerTrack only: Powerstream's operator list is narrower).
const VALID: &[(Dialect, &str)] = &[
    (PT, "streaming gnip contains:\"$twtr\""),
    (PT, "don't"),
    (PT, "#qwerty123 \"⚽\u{FE0F}\""),
    (PT, "-(a b) c"),
    (PT, "(a OR b) sample:10"),
    (PT, "a (b sample:10)"),
    (PT, "cat source:x"),
    (PT, "cat -is:nullcast"),
    (PT, "lang:en"),
    (PT, "a lang:zh"),
    (PT, "a lang:zh-CN"),
    (PT, "a lang:zh-TW"),
    (PT, "a lang:EN"),
    (PT, "a lang:hi-Latn"),
    // X accepts unsupported values, `und` included (the clause then matches nothing).
    (PT, "a lang:und"),
    // Tab, line feed and carriage return separate clauses like a space.
    (PT, "cat\tdog"),
    (PT, "cat\ndog"),
    (PT, "cat\r\ndog"),
    (PT, "\"cat\tdog\""),
    (PT, "point_radius:[-105.27 40.01 10mi]"),
    (PT, "point_radius:[-105.27 40.01 10 mi]"),
    (PT, "point_radius:[-105.27 40.01 40km]"),
    (
        PT,
        "bounding_box:[-105.301758 39.964069 -105.178505 40.09455]",
    ),
    // 0.5° of longitude is under 25 miles at 60°N but not at the equator (see INVALID_ANY).
    (PT, "bounding_box:[0 60 0.5 60.1]"),
    (PT, "\"a b\"~6"),
    (PT, "followers_count:10..10"),
    (PT, "a sample:10"),
    (PT, "a source:x"),
    (PT, "a followers_count:5"),
    (PT, "a profile_country:US"),
    (PT, "a url:x"),
    (
        PS,
        "(cat OR dog) lang:en -is:retweet from:jack @x \"a b\" contains:c url_contains:d \
         place:e bio:f bio_name:g to:h retweets_of:i retweets_of_status_id:1 \
         in_reply_to_status_id:2 point_radius:[0 0 1mi] bounding_box:[0 0 0.1 0.1] has:geo",
    ),
    // The v2 filtered stream takes PowerTrack's operators.
    (
        V2,
        "#cat $TWTR \"a b\"~3 url:x followers_count:5 a sample:10 source:x",
    ),
    (V2, "cat has:links"),
    // The v2 filtered stream's own operators.
    (V2, "conversation_id:1334987486343299072"),
    (V2, "conversation_id:0"),
    (V2, "context:10.799022225751871488"),
    (V2, "context:47.*"),
    (V2, "entity:\"Michael Jordan\""),
    (V2, "entity:Twitter"),
    (V2, "embedding:\"dogs playing in the snow\""),
    (V2, "embedding:dogs"),
    (V2, "cat has:cashtags"),
    (V2, "cat -has:cashtags"),
    (V2, "(cat OR dog) has:cashtags lang:en"),
    (
        V2,
        "cat -conversation_id:1 -context:1.* -context:1.2 -entity:\"a b\"",
    ),
    (V2, "embedding:\"a b\" OR context:1.2 OR conversation_id:3"),
];

/// Rules refused whatever their message (the message is checked elsewhere or is not X's).
const INVALID_ANY: &[(Dialect, &str)] = &[
    (PT, "bounding_box:[0 -0.05 0.5 0.05]"),
    (PS, "a sample:10"),
    (PS, "a source:x"),
    (PS, "a followers_count:5"),
    (PS, "a profile_country:US"),
    (PS, "a url:x"),
    (V2, "is:retweet"),
];

#[test]
fn every_invalid_rule_gets_its_message() {
    let mut wrong = Vec::new();
    for &(dialect, rule, expected) in INVALID {
        match parse_with(rule, dialect) {
            Ok(tree) => wrong.push(format!("{dialect:?} {rule:?}: accepted as {tree:?}")),
            Err(err) => {
                assert_eq!(err.to_string(), err.powertrack_message(), "{rule:?}");
                if err.powertrack_message() != expected {
                    wrong.push(format!(
                        "{dialect:?} {rule:?}:\n  got  {:?}\n  want {expected:?}",
                        err.powertrack_message()
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_valid_rule_is_accepted() {
    let failed: Vec<String> = VALID
        .iter()
        .filter_map(|&(dialect, rule)| {
            parse_with(rule, dialect)
                .err()
                .map(|e| format!("{dialect:?} {rule:?}: {}", e.powertrack_message()))
        })
        .collect();
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}

#[test]
fn every_refused_rule_is_refused() {
    for &(dialect, rule) in INVALID_ANY {
        assert!(parse_with(rule, dialect).is_err(), "{dialect:?} {rule:?}");
    }
}

#[test]
fn quoted_values_print_back_as_written() {
    let rule = parse("streaming gnip contains:\"$twtr\"").expect("quoted value is valid");
    assert_eq!(rule.to_string(), "streaming gnip contains:\"$twtr\"");
}

/// The v2-only operators print back in canonical form, which reads back as the same tree.
#[test]
fn v2_operators_print_back_canonically() {
    let cases = [
        ("conversation_id:0012", "conversation_id:12"),
        ("context:010.5", "context:10.5"),
        ("context:10.*", "context:10.*"),
        ("entity:\"Michael Jordan\"", "entity:\"Michael Jordan\""),
        ("entity:\"Twitter\"", "entity:Twitter"),
        (
            "embedding:\"dogs: \\\"good\\\"\"",
            "embedding:\"dogs: \\\"good\\\"\"",
        ),
        ("cat   -has:cashtags", "cat -has:cashtags"),
    ];
    for (rule, canonical) in cases {
        let tree = parse_with(rule, V2).unwrap_or_else(|e| panic!("{rule:?}: {e}"));
        assert_eq!(tree.to_string(), canonical, "{rule:?}");
        assert_eq!(parse_with(canonical, V2), Ok(tree), "{canonical:?}");
    }
}

#[test]
fn several_problems_are_concatenated_with_their_positions() {
    let and_at = |pos: u32| format!("{AND_KEYWORD} (at position {pos})\n");
    let err = parse("a AND b AND c").expect_err("two problems");
    assert_eq!(err.powertrack_message(), and_at(3) + &and_at(9));
    let err = parse("lang:xx point_radius:[0 0 30mi]").expect_err("two problems");
    let positions: Vec<_> = err.problems().iter().map(|p| p.position()).collect();
    assert_eq!(positions, [6, 23]);
    assert_eq!(err.problems()[0].text(), "Invalid language code 'xx'");
}

#[test]
fn length_limit_counts_characters() {
    let at_limit = "🍕".repeat(MAX_RULE_CHARS);
    assert!(parse(&at_limit).is_ok(), "2,048 emoji are 2,048 characters");
    let err = parse(&"a".repeat(MAX_RULE_CHARS + 1)).expect_err("over the limit");
    assert_eq!(
        err.powertrack_message(),
        "Rules cannot be longer than 2048 characters (at position 1)\n"
    );
}

#[test]
fn sample_inside_an_or_group_is_refused() {
    let err = parse("(a OR b sample:10)").expect_err("sample in an OR");
    assert!(
        err.powertrack_message()
            .starts_with("The sample operator cannot be used with an OR")
    );
}

/// Every code of X's PowerTrack `lang:` list, as X spells it there, and `und`.
#[test]
fn every_lang_code_x_lists_is_accepted() {
    const X_LIST: &str = "am ar hy eu bn bs bg my hr ca cs da nl en et fi fr ka de el gu ht iw \
        hi hi-Latn hu is in it ja kn km ko lo lv lt ml dv mr ne no or pa ps fa pl pt ro ru sr \
        zh-CN sd si sk sl ckb es sv tl ta te th bo zh-TW tr uk ur ug vi cy zh und";
    for code in X_LIST.split_whitespace() {
        assert!(parse(&format!("apple lang:{code}")).is_ok(), "lang:{code}");
    }
}
