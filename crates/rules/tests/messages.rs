//! Invalid rules produce X's message byte for byte, with 1-based UTF-16 positions.

use sluice_rules::{Dialect, MAX_RULE_CHARS, parse, parse_with};

/// The PowerTrack message for `rule`, which must be invalid.
fn message(rule: &str) -> String {
    match parse(rule) {
        Ok(tree) => panic!("{rule:?} should be invalid, parsed as {tree:?}"),
        Err(err) => {
            assert_eq!(err.to_string(), err.powertrack_message());
            err.powertrack_message().to_owned()
        }
    }
}

fn powerstream_message(rule: &str) -> String {
    match parse_with(rule, Dialect::Powerstream) {
        Ok(tree) => panic!("{rule:?} should be invalid on Powerstream, parsed as {tree:?}"),
        Err(err) => err.powertrack_message().to_owned(),
    }
}

// ---- Every example quoted in spec §2.1, §2.6 and §3.1. ----

#[test]
fn sample_with_top_level_or_counts_emoji_as_two_units() {
    assert_eq!(
        message("Pizza OR 🍕 OR \"🍕\" sample:100"),
        "The sample operator cannot be used with an OR. To use the sample operator with an OR \
         in the rule, the ORed clauses must be grouped together with parenthesis.  For example, \
         to get 10% of activites that have term1 or term2, the rule should be (excluding the \
         single quotes) '(term1 OR term2) sample:10' (at position 21)\n"
    );
}

#[test]
fn second_colon_in_an_operator_value() {
    assert_eq!(
        message("from:contains:heart"),
        "Cannot parse rule at ':' (position 14)\n"
    );
}

#[test]
fn upper_case_and() {
    assert_eq!(
        message("fish AND bird"),
        "Ambiguous use of and as a keyword. Use a space to logically join two clauses, or \
         \"and\" to find occurrences of and in text (at position 6)\n"
    );
}

#[test]
fn unclosed_groups() {
    assert_eq!(
        message("(((\"#quotedhashtag\""),
        "mismatched input 'EOF' expecting ')' (at position 20)\n\n"
    );
}

#[test]
fn commas_in_a_bounding_box() {
    assert_eq!(
        message("bounding_box:[-71.199636,42.230046,-70.979909,42.398619]"),
        "Cannot parse rule at '71.199636,42.230046,-70.979909,42.398619' (position 16)\n"
    );
}

#[test]
fn or_at_the_end() {
    assert_eq!(
        message("aaaaa OR"),
        "Cannot parse rule at '<EOF>' (position 9)\n"
    );
}

#[test]
fn bare_operator_value_starting_with_punctuation() {
    assert_eq!(
        message("streaming gnip contains:$twtr"),
        "no viable alternative at input '$twtr' (at position 25)\n"
    );
    let rule = parse("streaming gnip contains:\"$twtr\"").expect("quoted value is valid");
    assert_eq!(rule.to_string(), "streaming gnip contains:\"$twtr\"");
}

#[test]
fn negation_only() {
    assert_eq!(
        message("-follow"),
        "Rules must contain a non-negation term (at position 1)\nRules must contain at least \
         one positive, non-stopword clause (at position 1)\n"
    );
}

#[test]
fn single_quotes_are_not_delimiters() {
    assert_eq!(
        message("soda OR cola beer 'coca cola'"),
        "no viable alternative at character ''' (at position 19)\n"
    );
    assert!(parse("don't").is_ok(), "a quote inside a keyword is fine");
}

#[test]
fn unbalanced_close() {
    assert_eq!(message("a)"), "missing EOF at ')' (at position 2)\n");
}

// ---- Other syntax errors. ----

#[test]
fn eof_positions_count_utf16_units() {
    assert_eq!(
        message("🍕 OR"),
        "Cannot parse rule at '<EOF>' (position 6)\n"
    );
}

#[test]
fn misplaced_tokens() {
    assert_eq!(message("OR a"), "Cannot parse rule at 'OR' (position 1)\n");
    assert_eq!(
        message("a OR OR b"),
        "Cannot parse rule at 'OR' (position 6)\n"
    );
    assert_eq!(message("(a OR)"), "Cannot parse rule at ')' (position 6)\n");
    assert_eq!(message("()"), "Cannot parse rule at ')' (position 2)\n");
    assert_eq!(message(""), "Cannot parse rule at '<EOF>' (position 1)\n");
    assert_eq!(message("--a"), "Cannot parse rule at '-' (position 2)\n");
    assert_eq!(
        message("a - b"),
        "no viable alternative at character '-' (at position 3)\n"
    );
}

#[test]
fn several_problems_are_concatenated() {
    assert_eq!(
        message("a AND b AND c"),
        "Ambiguous use of and as a keyword. Use a space to logically join two clauses, or \
         \"and\" to find occurrences of and in text (at position 3)\nAmbiguous use of and as a \
         keyword. Use a space to logically join two clauses, or \"and\" to find occurrences of \
         and in text (at position 9)\n"
    );
    let err = parse("lang:xx point_radius:[0 0 30mi]").expect_err("two problems");
    let positions: Vec<_> = err.problems().iter().map(|p| p.position()).collect();
    assert_eq!(positions, [6, 23]);
    assert_eq!(err.problems()[0].text(), "Invalid language code 'xx'");
}

#[test]
fn unknown_operators_are_named() {
    assert_eq!(
        message("cat foo:bar"),
        "Reference to invalid operator 'foo' (at position 5)\n"
    );
    assert_eq!(
        message("FROM:jack"),
        "Reference to invalid operator 'FROM' (at position 1)\n"
    );
    assert_eq!(
        message("has:cashtags"),
        "Reference to invalid field 'cashtags' (at position 5)\n"
    );
    assert_eq!(
        message("is:retweeted"),
        "Reference to invalid field 'retweeted' (at position 4)\n"
    );
}

#[test]
fn unterminated_quote() {
    assert_eq!(
        message("a \"b c"),
        "no viable alternative at character '\"' (at position 3)\n"
    );
}

#[test]
fn emoji_with_variation_selector_must_be_quoted() {
    assert_eq!(
        message("#qwerty123 ⚽\u{FE0F}"),
        "no viable alternative at input '⚽\u{FE0F}' (at position 12)\n"
    );
    assert!(parse("#qwerty123 \"⚽\u{FE0F}\"").is_ok());
}

#[test]
fn bad_operator_values() {
    assert_eq!(
        message("from:"),
        "no viable alternative at input 'from:' (at position 6)\n"
    );
    assert_eq!(
        message("followers_count:ten"),
        "Cannot parse rule at 'ten' (position 17)\n"
    );
    assert_eq!(
        message("followers_count:5.."),
        "Cannot parse rule at '5..' (position 17)\n"
    );
    assert_eq!(
        message("retweets_of_status_id:12a"),
        "Cannot parse rule at '12a' (position 23)\n"
    );
    assert_eq!(
        message("sample:ten a"),
        "Cannot parse rule at 'ten' (position 8)\n"
    );
    assert_eq!(
        message("point_radius:[1 2]"),
        "Cannot parse rule at ']' (position 18)\n"
    );
    assert_eq!(
        message("point_radius:[1 2 3]"),
        "Cannot parse rule at '3' (position 19)\n"
    );
    assert_eq!(
        message("point_radius:[1 2 3 miles]"),
        "Cannot parse rule at 'miles' (position 21)\n"
    );
    assert_eq!(
        message("bounding_box:[1 2 3 4 5]"),
        "Cannot parse rule at '5' (position 23)\n"
    );
    assert_eq!(
        message("point_radius:[1 2 3mi"),
        "mismatched input 'EOF' expecting ']' (at position 22)\n\n"
    );
    assert_eq!(
        message("a \"b\"~ c"),
        "Cannot parse rule at '~' (position 6)\n"
    );
    assert_eq!(
        message("#"),
        "no viable alternative at input '#' (at position 1)\n"
    );
    assert_eq!(
        message("a \"\""),
        "no viable alternative at input '\"\"' (at position 3)\n"
    );
}

// ---- Limits (texts in X's style where X's own text is unknown). ----

#[test]
fn length_limit_counts_characters() {
    let at_limit = "🍕".repeat(MAX_RULE_CHARS);
    assert!(parse(&at_limit).is_ok(), "2,048 emoji are 2,048 characters");
    let over = "a".repeat(MAX_RULE_CHARS + 1);
    assert_eq!(
        message(&over),
        "Rules cannot be longer than 2048 characters (at position 1)\n"
    );
}

#[test]
fn positive_clause_required() {
    let both = "Rules must contain a non-negation term (at position 1)\nRules must contain at \
                least one positive, non-stopword clause (at position 1)\n";
    assert_eq!(message("apple OR -ipad"), both);
    assert_eq!(message("-(a b)"), both);
    assert_eq!(message("sample:10"), both);
    assert!(parse("-(a b) c").is_ok());
}

#[test]
fn sample_limits() {
    assert_eq!(
        message("a sample:0"),
        "The sample operator requires an integer from 1 to 100 (at position 10)\n"
    );
    assert_eq!(
        message("a sample:101"),
        "The sample operator requires an integer from 1 to 100 (at position 10)\n"
    );
    assert_eq!(
        message("a -sample:10"),
        "The sample operator cannot be negated (at position 4)\n"
    );
    assert!(parse("(a OR b) sample:10").is_ok());
    assert!(
        parse("a (b sample:10)").is_ok(),
        "flattens to a top-level AND"
    );
    assert!(
        message("(a OR b sample:10)").starts_with("The sample operator cannot be used with an OR")
    );
}

#[test]
fn source_cannot_stand_alone() {
    assert_eq!(
        message("source:twitterfeed"),
        "source cannot be used as a standalone operator (at position 1)\n"
    );
    assert_eq!(
        message("-cat source:x"),
        "source cannot be used as a standalone operator (at position 6)\n"
    );
    assert!(parse("cat source:x").is_ok());
}

#[test]
fn nullcast_only_negated() {
    assert_eq!(
        message("cat is:nullcast"),
        "is:nullcast can only be used negated (-is:nullcast) (at position 5)\n"
    );
    assert!(parse("cat -is:nullcast").is_ok());
}

#[test]
fn lang_codes() {
    assert!(
        parse("lang:en").is_ok(),
        "has:/is:/lang: may stand alone on PowerTrack"
    );
    for code in ["zh", "zh-CN", "zh-TW", "EN", "hi-Latn"] {
        assert!(parse(&format!("a lang:{code}")).is_ok(), "{code}");
    }
    // X accepts unsupported values, `und` included (the clause then matches nothing).
    assert!(parse("a lang:und").is_ok());
    assert_eq!(
        message("a lang:english"),
        "Invalid language code 'english' (at position 8)\n"
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

#[test]
fn geo_limits() {
    assert!(parse("point_radius:[-105.27 40.01 10mi]").is_ok());
    assert!(parse("point_radius:[-105.27 40.01 10 mi]").is_ok());
    assert!(
        parse("point_radius:[-105.27 40.01 40km]").is_ok(),
        "40 km ≈ 24.9 mi"
    );
    let radius = "The radius must be greater than 0 and less than 25 miles (at position 15)\n";
    assert_eq!(message("point_radius:[-105.27 40.01 25mi]"), radius);
    assert_eq!(message("point_radius:[-105.27 40.01 41km]"), radius);
    assert_eq!(message("point_radius:[-105.27 40.01 0mi]"), radius);
    assert_eq!(
        message("profile_point_radius:[-181 40 1mi]"),
        "Longitude must be between -180 and 180 (at position 23)\n"
    );
    assert_eq!(
        message("point_radius:[0 90.5 1mi]"),
        "Latitude must be between -90 and 90 (at position 15)\n"
    );
    assert!(parse("bounding_box:[-105.301758 39.964069 -105.178505 40.09455]").is_ok());
    assert_eq!(
        message("bounding_box:[2 1 1 2]"),
        "The west longitude must be less than the east longitude (at position 15)\n"
    );
    assert_eq!(
        message("geo_bounding_box:[1 2 2 1]"),
        "The south latitude must be less than the north latitude (at position 19)\n"
    );
    assert_eq!(
        message("profile_bounding_box:[0 0 1 0.1]"),
        "The width and height of a bounding box must be less than 25 miles (at position 23)\n"
    );
    // 0.5° of longitude is under 25 miles at 60°N but not at the equator.
    assert!(parse("bounding_box:[0 60 0.5 60.1]").is_ok());
    assert!(parse("bounding_box:[0 -0.05 0.5 0.05]").is_err());
}

#[test]
fn proximity_and_count_limits() {
    assert!(parse("\"a b\"~6").is_ok());
    let prox = "The proximity distance must be an integer from 1 to 6 (at position 6)\n";
    assert_eq!(message("\"a b\"~7"), prox);
    assert_eq!(message("\"a b\"~0"), prox);
    assert_eq!(message("\"a b\"~99999999999999999999999"), prox);
    assert!(parse("followers_count:10..10").is_ok());
    assert_eq!(
        message("followers_count:10..9"),
        "The lower bound of a count range cannot exceed its upper bound (at position 17)\n"
    );
}

// ---- Powerstream. ----

#[test]
fn powerstream_rejects_unlisted_operators() {
    assert_eq!(
        powerstream_message("cat url_title:dog"),
        "Reference to invalid operator 'url_title' (at position 5)\n"
    );
    assert_eq!(
        powerstream_message("cat within_url_title:dog"),
        "Reference to invalid operator 'within_url_title' (at position 5)\n"
    );
    assert_eq!(
        powerstream_message("#cat"),
        "Reference to invalid operator '#' (at position 1)\n"
    );
    assert_eq!(
        powerstream_message("$TWTR"),
        "Reference to invalid operator '$' (at position 1)\n"
    );
    assert_eq!(
        powerstream_message("\"a b\"~3"),
        "Reference to invalid operator '~' (at position 6)\n"
    );
    assert_eq!(
        powerstream_message("cat has:hashtags"),
        "Reference to invalid operator 'has:hashtags' (at position 5)\n"
    );
    assert_eq!(
        powerstream_message("cat -is:nullcast"),
        "Reference to invalid operator 'is:nullcast' (at position 6)\n"
    );
    for rule in [
        "a sample:10",
        "a source:x",
        "a followers_count:5",
        "a profile_country:US",
        "a url:x",
    ] {
        assert!(parse_with(rule, Dialect::Powerstream).is_err(), "{rule}");
        assert!(parse(rule).is_ok(), "{rule}");
    }
}

#[test]
fn powerstream_needs_a_standalone_clause() {
    assert_eq!(
        powerstream_message("has:links lang:en"),
        "is/has/lang cannot be used as a standalone operator (at position 1)\n"
    );
    assert_eq!(
        powerstream_message("cat OR is:retweet"),
        "is/has/lang cannot be used as a standalone operator (at position 8)\n"
    );
    let ok = "(cat OR dog) lang:en -is:retweet from:jack @x \"a b\" contains:c url_contains:d \
              place:e bio:f bio_name:g to:h retweets_of:i retweets_of_status_id:1 \
              in_reply_to_status_id:2 point_radius:[0 0 1mi] bounding_box:[0 0 0.1 0.1] has:geo";
    assert!(parse_with(ok, Dialect::Powerstream).is_ok());
}

/// Control characters (C0, DEL, C1) are refused wherever they are, at their position;
/// tab, line feed and carriage return separate clauses like a space.
#[test]
fn control_characters_are_refused_with_their_position() {
    #[rustfmt::skip]
    let refused: &[(&str, &str)] = &[
        ("cat\u{0}", "Rules cannot contain control characters: found U+0000 (at position 4)\n"),
        ("\u{0}", "Rules cannot contain control characters: found U+0000 (at position 1)\n"),
        ("\"cat\u{0}dog\"", "Rules cannot contain control characters: found U+0000 (at position 5)\n"),
        ("from:a\u{1}b", "Rules cannot contain control characters: found U+0001 (at position 7)\n"),
        ("cat \u{1b}[31m", "Rules cannot contain control characters: found U+001B (at position 5)\n"),
        ("cat\u{7f}", "Rules cannot contain control characters: found U+007F (at position 4)\n"),
        ("🐟 \u{85}", "Rules cannot contain control characters: found U+0085 (at position 4)\n"),
        ("cat\u{9f} dog\u{0}", "Rules cannot contain control characters: found U+009F (at position 4)\n"),
        ("cat\u{b}dog", "Rules cannot contain control characters: found U+000B (at position 4)\n"),
    ];
    for (rule, want) in refused {
        assert_eq!(&message(rule), want, "{rule:?}");
        assert_eq!(&powerstream_message(rule), want, "{rule:?} (Powerstream)");
    }
    for rule in ["cat\tdog", "cat\ndog", "cat\r\ndog", "\"cat\tdog\""] {
        assert!(parse(rule).is_ok(), "{rule:?}");
    }
}
