//! Differential tests: [`parse_post`] (the fast pass with its fallback) must give exactly
//! what [`parse_post_with_serde`] gives, on realistic posts, on mutated ones, and on
//! generated documents built from the view's own field names with awkward values.

use proptest::prelude::*;
use proptest::strategy::ValueTree;

use super::{parse_post, parse_post_with_serde, scan};

/// Both readers' answers, as comparable text: the view's `Debug` (which shows every field,
/// floats exactly) or the error message (which carries serde_json's line and column).
fn answers(bytes: &[u8]) -> (String, String) {
    let show = |r: Result<super::PostView<'_>, super::PostError>| match r {
        Ok(view) => format!("Ok({view:?})"),
        Err(e) => format!("Err({e})"),
    };
    (show(parse_post(bytes)), show(parse_post_with_serde(bytes)))
}

fn assert_same(bytes: &[u8]) {
    let (fast, serde) = answers(bytes);
    assert_eq!(fast, serde, "input: {}", String::from_utf8_lossy(bytes));
}

fn synth_posts(n: usize) -> Vec<String> {
    sluice_synth::PostGenerator::new(7).take(n).collect()
}

/// Realistic posts take the fast path, and it reads them as serde_json does.
#[test]
fn synth_posts_take_the_fast_path_and_agree() {
    for (i, post) in sluice_synth::PostGenerator::new(1).take(3_000).enumerate() {
        let fast = scan::parse(&post).unwrap_or_else(|_| panic!("post {i} falls back: {post}"));
        let serde = parse_post_with_serde(post.as_bytes()).expect("synth posts parse");
        assert_eq!(
            format!("{fast:?}"),
            format!("{serde:?}"),
            "post {i}: {post}"
        );
    }
}

/// Inputs at the edges of each rule the fast pass must share with serde_json.
#[test]
fn edge_cases_agree() {
    let cases: &[&[u8]] = &[
        // Ids: 64-bit limits, strings, signs, floats, exponents, leading zeros.
        br#"{"id":18446744073709551615}"#,
        br#"{"id":18446744073709551616,"id_str":"7"}"#,
        br#"{"id":99999999999999999999999999,"id_str":"7"}"#,
        br#"{"id":1e400,"id_str":"7"}"#,
        br#"{"id":-1,"id_str":"7"}"#,
        br#"{"id":-0,"id_str":"7"}"#,
        br#"{"id":1.0,"id_str":"7"}"#,
        br#"{"id":1E2,"id_str":"7"}"#,
        br#"{"id":01}"#,
        br#"{"id":0}"#,
        br#"{"id":"+5"}"#,
        br#"{"id":"-5","id_str":"6"}"#,
        br#"{"id":" 5","id_str":"6"}"#,
        br#"{"id":"\u0035"}"#,
        br#"{"id":"18446744073709551616","id_str":"1"}"#,
        br#"{"id":"00000000000000000000001"}"#,
        br#"{"id":true,"id_str":"1"}"#,
        br#"{"id":[1],"id_str":"1"}"#,
        br#"{"id":{"a":1},"id_str":"1"}"#,
        // Escapes, surrogates, control characters.
        br#"{"id":1,"text":"a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00"}"#,
        br#"{"id":1,"text":"\ud83d"}"#,
        br#"{"id":1,"text":"\ud83dx"}"#,
        br#"{"id":1,"text":"\ud83d\u0041"}"#,
        br#"{"id":1,"text":"\ude00"}"#,
        br#"{"id":1,"text":"\u12"}"#,
        br#"{"id":1,"text":"\x"}"#,
        b"{\"id\":1,\"text\":\"raw\ttab\"}",
        b"{\"id\":1,\"skipped\":\"raw\ttab\"}",
        br#"{"id":1,"skipped":"\ud83d"}"#,
        br#"{"id":1,"skipped":"\uZZZZ"}"#,
        // Invalid UTF-8: in a read field, and in a skipped one (serde_json's byte reader
        // accepts the latter).
        b"{\"id\":1,\"text\":\"\xff\"}",
        b"{\"id\":1,\"skipped\":\"\xff\"}",
        // Duplicates: of a read field (an error), of an unknown one (fine).
        br#"{"id":1,"id":2}"#,
        br#"{"id":1,"text":null,"text":"x"}"#,
        br#"{"id":1,"x":1,"x":2}"#,
        // A member read only for being there: there even when null, and once.
        br#"{"id":1,"edit_history":null}"#,
        br#"{"id":1,"edit_history":null,"edit_history":{}}"#,
        br#"{"id":1,"edit_history":[1,{"a":null}]}"#,
        br#"{"id":1,"matching_rules":[{"tag":null,"id":2,"id_str":"2"}]}"#,
        br#"{"id":1,"matching_rules":null}"#,
        br#"{"id":1,"matching_rules":[],"matching_rules":[]}"#,
        br#"{"id":1,"user":{"matching_rules":[]}}"#,
        br#"{"id":1,"quoted_status":{"id":2,"matching_rules":[]}}"#,
        br#"{"id":1,"matching\u005frules":[]}"#,
        b" {\"id\":1, \"matching_rules\" : null } ",
        br#"{"id":1,"user":{"id":1,"id":2}}"#,
        // Escaped keys.
        br#"{"i\u0064":5}"#,
        // Shapes: arrays read positionally, wrong types, trailing data.
        br#"{"id":1,"scopes":[false]}"#,
        br#"{"id":1,"user":["1","2"]}"#,
        br#"{"id":1,"text":5}"#,
        br#"{"id":1,"truncated":"no"}"#,
        br#"{"id":1,"user":{"followers_count":-1}}"#,
        br#"{"id":1,"user":{"followers_count":1.5}}"#,
        br#"{"id":1,"user":{"followers_count":"5"}}"#,
        br#"{"id":1,"entities":{"hashtags":null,"urls":[null]}}"#,
        br#"{"id":1,"entities":{"hashtags":[{"text":null}]}}"#,
        br#"{"id":1,"entities":{"hashtags":[{}]}}"#,
        br#"{"id":1,"coordinates":{"coordinates":[1,2,3]}}"#,
        br#"{"id":1,"coordinates":{"coordinates":[1]}}"#,
        br#"{"id":1,"coordinates":{"coordinates":[-0.0,1e-400]}}"#,
        br#"{"id":1,"coordinates":{"coordinates":[1.7976931348623157e309,2]}}"#,
        br#"{"id":1,"coordinates":{"coordinates":[0.30000000000000004441,-122.4194155]}}"#,
        br#"{"id":1,"place":{"bounding_box":{"coordinates":[[[1,2],[3,4]]]}}}"#,
        br#"{"id":1,"place":{"bounding_box":{"coordinates":[null]}}}"#,
        br#"{"id":1} "#,
        br#"{"id":1} x"#,
        br#"{"id":1}{}"#,
        br#"{"id":1,}"#,
        br#"{"id":1 "x":2}"#,
        b"\x0c{\"id\":1}",
        b" \t\r\n{ \"id\" : 1 , \"text\" : \"x\" } \n",
        br#"{"id":1,"x":[1,[2,{"y":[true,false,null,"s",-1.5e+3]}]]}"#,
        br#"{"id":1,"x":tru}"#,
        br#"{"id":1,"x":nul}"#,
        br#"{"id":1,"x":-}"#,
        br#"{"id":1,"x":1.}"#,
        br#"{"id":1,"x":1e}"#,
        br#"{"id":1,"x":.5}"#,
        br#"{"id":1"#,
        b"",
        br#"{}"#,
    ];
    for case in cases {
        assert_same(case);
    }
}

/// Nesting past the fast pass's limit (and past serde_json's) is decided by serde_json.
#[test]
fn deep_nesting_agrees() {
    for depth in [10, 63, 64, 65, 127, 128, 129, 300] {
        let skipped = format!(
            r#"{{"id":1,"x":{}{}}}"#,
            "[".repeat(depth),
            "]".repeat(depth)
        );
        assert_same(skipped.as_bytes());
        let mut nested = String::from(r#"{"id":1"#);
        for _ in 0..depth {
            nested.push_str(r#","quoted_status":{"id":1"#);
        }
        nested.push_str(&"}".repeat(depth + 1));
        assert_same(nested.as_bytes());
    }
}

/// Field names of the view (at every level) and a few unknown ones.
const KEYS: &[&str] = &[
    "id",
    "id_str",
    "created_at",
    "timestamp_ms",
    "text",
    "full_text",
    "truncated",
    "extended_tweet",
    "entities",
    "extended_entities",
    "source",
    "lang",
    "user",
    "in_reply_to_status_id",
    "in_reply_to_status_id_str",
    "in_reply_to_user_id",
    "in_reply_to_user_id_str",
    "in_reply_to_screen_name",
    "conversation_id",
    "conversation_id_str",
    "retweeted_status",
    "quoted_status",
    "is_quote_status",
    "coordinates",
    "place",
    "scopes",
    "edit_history",
    "matching_rules",
    "hashtags",
    "symbols",
    "user_mentions",
    "urls",
    "media",
    "screen_name",
    "name",
    "description",
    "location",
    "verified",
    "followers_count",
    "friends_count",
    "listed_count",
    "statuses_count",
    "derived",
    "locations",
    "country_code",
    "region",
    "sub_region",
    "locality",
    "geo",
    "url",
    "expanded_url",
    "unwound",
    "title",
    "type",
    "full_name",
    "bounding_box",
    "followers",
    "indices",
    "unknown",
    "i\\u0064",
];

/// Scalars chosen to sit on the edges of the fast pass's rules.
const SCALARS: &[&str] = &[
    "null",
    "true",
    "false",
    "0",
    "-0",
    "01",
    "7",
    "-1",
    "1.5",
    "1e2",
    "1e400",
    "-1.5e-3",
    "18446744073709551615",
    "18446744073709551616",
    "9999999999999999999",
    "-",
    "1.",
    "\"\"",
    "\"x\"",
    "\"7\"",
    "\"+7\"",
    "\"\\u0037\"",
    "\"a\\nb\\\"c\"",
    "\"\\ud83d\\ude00\"",
    "\"\\ud83d\"",
    "\"\\ude00\"",
    "\"\\uZZ\"",
    "\"é 🍕\"",
    "\"tab\there\"",
    "\"Wed Oct 10 20:19:24 +0000 2018\"",
];

/// A JSON-like value (usually valid, sometimes not) made of the pieces above.
fn value() -> impl Strategy<Value = String> {
    let leaf = prop::sample::select(SCALARS).prop_map(str::to_owned);
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4)
                .prop_map(|items| format!("[{}]", items.join(","))),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..6).prop_map(|fields| {
                let fields: Vec<String> =
                    fields.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                format!("{{{}}}", fields.join(","))
            }),
        ]
    })
}

/// Well-typed fields, so that many generated documents are read by the fast pass itself
/// (random values alone mostly hand the document to serde_json).
const TYPED_FIELDS: &[&str] = &[
    r#""truncated":true"#,
    r#""is_quote_status":false"#,
    r#""text":"a\nb \"q\" \u00e9\ud83c\udf55 \/""#,
    r#""full_text":"é 🍕 東京""#,
    r#""lang":null"#,
    r#""timestamp_ms":"1539202764000""#,
    r#""in_reply_to_status_id":123,"in_reply_to_status_id_str":"124""#,
    r#""in_reply_to_user_id":18446744073709551615"#,
    r#""conversation_id_str":"00042""#,
    r#""user":{"id":5,"id_str":"6","verified":true,"followers_count":10,"friends_count":0,"listed_count":null,"statuses_count":18446744073709551615,"name":"N","screen_name":"s","description":"d\td","location":"L","derived":{"locations":[{"country_code":"US","region":"R","sub_region":"S","locality":"L","geo":{"type":"Point","coordinates":[-105.27,40.01]}}]}}"#,
    r#""entities":{"hashtags":[{"text":"tag","indices":[0,4]}],"symbols":[{"text":"CASH"}],"user_mentions":[{"screen_name":"who","id":12,"id_str":"12"}],"urls":[{"url":"https://t.co/x","expanded_url":"https://example.com/a","unwound":{"url":"https://example.com/b","title":"T","description":null}}],"media":[{"type":"photo"}]}"#,
    r#""extended_entities":{"media":[{"type":"video","id":1}],"hashtags":null}"#,
    r#""extended_tweet":{"full_text":"long text","entities":{"hashtags":[]},"extended_entities":null}"#,
    r#""coordinates":{"type":"Point","coordinates":[1e-7,-0.5]}"#,
    r#""place":{"id":"01","name":"Tokyo","full_name":"Tokyo, Japan","country_code":"JP","bounding_box":{"type":"Polygon","coordinates":[[[139.5,35.5],[139.9,35.5],[139.9,35.8]]]}}"#,
    r#""scopes":{"followers":false}"#,
    r#""retweeted_status":{"id_str":"9","text":"orig","user":{"id":1}}"#,
    r#""quoted_status":{"id":8,"truncated":true,"quoted_status":null}"#,
    r#""source":"<a href=\"x\">c</a>""#,
    r#""unknown":{"a":[1,-2.5e3,true,null,"s"],"b":{}}"#,
];

/// A post-like object: a numeric id most of the time, then generated fields, each either
/// well typed or a random key with a random value.
fn document() -> impl Strategy<Value = String> {
    let field = prop_oneof![
        prop::sample::select(TYPED_FIELDS).prop_map(str::to_owned),
        (prop::sample::select(KEYS), value()).prop_map(|(k, v)| format!("\"{k}\":{v}")),
    ];
    (
        prop::sample::select(&["\"id\":1,", "\"id_str\":\"2\",", ""][..]),
        prop::collection::vec(field, 0..6),
        prop::sample::select(&["", " ", "\n", "\t "][..]),
    )
        .prop_map(|(id, fields, pad)| {
            let fields: Vec<String> = fields
                .iter()
                .map(|f| f.replacen(':', &format!("{pad}:{pad}"), 1))
                .collect();
            format!("{pad}{{{id}{}}}{pad}", fields.join(&format!(",{pad}")))
        })
}

/// The generated documents are not all handed to serde_json: enough of them are read by
/// the fast pass for the agreement test to check it.
#[test]
fn generated_documents_often_take_the_fast_path() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = document();
    let total = 1_000;
    let fast = (0..total)
        .filter(|_| {
            let doc = strategy
                .new_tree(&mut runner)
                .expect("a document")
                .current();
            scan::parse(&doc).is_ok()
        })
        .count();
    assert!(
        fast * 5 >= total,
        "only {fast} of {total} took the fast path"
    );
}

/// An edit to a realistic post: replace, insert or delete bytes somewhere.
#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let byte =
        prop::sample::select(&b"\"\\{}[],:0123456789-+.eEtrufalsn u\x00\x1f\xff\xc3\xa9"[..]);
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(at, b)| Edit::Replace(at, b)),
        (any::<usize>(), prop::collection::vec(byte, 1..4)).prop_map(|(at, b)| Edit::Insert(at, b)),
        (any::<usize>(), 1usize..40).prop_map(|(at, n)| Edit::Delete(at, n)),
    ]
}

fn apply(post: &str, edits: &[Edit]) -> Vec<u8> {
    let mut bytes = post.as_bytes().to_vec();
    for e in edits {
        let len = bytes.len().max(1);
        match e {
            Edit::Replace(at, b) => {
                if let Some(slot) = bytes.get_mut(at % len) {
                    *slot = *b;
                }
            }
            Edit::Insert(at, b) => {
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, b.iter().copied());
            }
            Edit::Delete(at, n) => {
                let at = at % len;
                let end = (at + n).min(bytes.len());
                bytes.drain(at.min(end)..end);
            }
        }
    }
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn generated_documents_agree(doc in document()) {
        let (fast, serde) = answers(doc.as_bytes());
        prop_assert_eq!(fast, serde, "input: {}", doc);
    }

    #[test]
    fn mutated_posts_agree(which in 0usize..40, edits in prop::collection::vec(edit(), 1..4)) {
        let posts = synth_posts(40);
        let bytes = apply(&posts[which], &edits);
        let (fast, serde) = answers(&bytes);
        prop_assert_eq!(fast, serde, "input: {}", String::from_utf8_lossy(&bytes));
    }
}

/// The word-at-a-time digit reader against the standard library, at every length and
/// with every byte that can end a number.
#[test]
fn digit_runs_read_as_the_standard_library_does() {
    for len in 0..=24 {
        for end in [
            &b""[..],
            b",",
            b"}",
            b".5",
            b"e3",
            b"/",
            b":",
            b"\xff",
            b"a",
        ] {
            let digits: String = (0..len)
                .map(|i| char::from(b'0' + (i * 7 % 10) as u8))
                .collect();
            let mut text = digits.clone().into_bytes();
            text.extend_from_slice(end);
            let (n, value) = scan::leading_digits(&text);
            assert_eq!(n, len as usize, "{digits}");
            if len <= 19 && len > 0 {
                assert_eq!(Some(value), digits.parse().ok(), "{digits}");
            }
        }
    }
    for text in [
        "18446744073709551615",
        "9999999999999999999",
        "0000000000000000001",
        "+5",
    ] {
        assert_eq!(scan::parse_u64(text), text.parse().ok(), "{text}");
    }
    assert_eq!(scan::parse_u64("18446744073709551616"), None);
}

/// Counting digits (for numbers only checked) agrees with reading them.
#[test]
fn digit_counts_agree_with_digit_reads() {
    for len in 0..=24 {
        for end in [&b""[..], b",", b"]", b"\xff", b"/", b":"] {
            let mut text: Vec<u8> = (0..len).map(|i| b'0' + (i * 3 % 10) as u8).collect();
            text.extend_from_slice(end);
            assert_eq!(scan::count_digits(&text), scan::leading_digits(&text).0);
            assert_eq!(scan::count_digits(&text), len as usize);
        }
    }
}

/// Strings without escapes are borrowed from the input (no allocation); escaped ones are
/// decoded into owned strings.
#[test]
fn plain_strings_are_borrowed() {
    use std::borrow::Cow;
    let post = parse_post(br#"{"id":1,"text":"plain","lang":"e\u006e"}"#).expect("a post");
    assert!(matches!(post.text, Some(Cow::Borrowed("plain"))));
    assert!(matches!(post.lang.as_deref(), Some("en")));
    assert!(matches!(post.lang, Some(Cow::Owned(_))));
}

/// UTF-8: valid and invalid sequences at every offset of the string scan's sixteen-byte
/// blocks and of its word-at-a-time tail, in read fields, skipped values and keys, and
/// non-ASCII bytes outside strings, all agree with serde_json; valid text is read by the
/// fast pass and borrowed.
#[test]
fn utf8_is_checked_where_strings_are_scanned() {
    use std::borrow::Cow;
    let pieces: &[&[u8]] = &[
        "é".as_bytes(),
        "東".as_bytes(),
        "🍕".as_bytes(),
        b"\xff",
        b"\xc3",             // truncated two-byte sequence
        b"\xc0\xaf",         // overlong
        b"\xed\xa0\x80",     // a surrogate encoded directly
        b"\xf4\x90\x80\x80", // beyond U+10FFFF
        b"\xe6\x9d",         // truncated three-byte sequence
        b"\x80",             // lone continuation byte
    ];
    for piece in pieces {
        let valid = std::str::from_utf8(piece).is_ok();
        for before in 0..40 {
            let mut content = vec![b'a'; before];
            content.extend_from_slice(piece);
            for wrap in [
                (&b"{\"id\":1,\"text\":\""[..], &b"\"}"[..]),
                (b"{\"id\":1,\"skipped\":\"", b"\"}"),
                (b"{\"id\":1,\"skipped\":[\"", b"\",1]}"),
                (b"{\"id\":1,\"", b"\":1}"),
                (b"{\"id\":1,\"text\":\"", b"\\n\"}"),
            ] {
                let mut doc = wrap.0.to_vec();
                doc.extend_from_slice(&content);
                doc.extend_from_slice(wrap.1);
                assert_same(&doc);
                if let Ok(text) = std::str::from_utf8(&doc) {
                    assert!(scan::parse(text).is_ok(), "{text}");
                }
            }
            let mut doc = b"{\"id\":1,\"text\":\"".to_vec();
            doc.extend_from_slice(&content);
            doc.extend_from_slice(b"\"}");
            if valid {
                let post = parse_post(&doc).expect("valid UTF-8 reads");
                assert!(matches!(post.text, Some(Cow::Borrowed(_))), "{doc:?}");
            }
        }
        // Outside strings a non-ASCII byte is a syntax error.
        for wrap in [&b"{\"id\":1,"[..], b"{\"id\":1", b"{\"id\":1,\"x\":"] {
            let mut doc = wrap.to_vec();
            doc.extend_from_slice(piece);
            doc.push(b'}');
            assert_same(&doc);
        }
    }
}
