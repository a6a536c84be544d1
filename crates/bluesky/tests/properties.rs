//! Properties over arbitrary input: `convert` never panics, and whatever it produces is a
//! line the ingest API accepts (a post for `check_line`, a delete for `parse_event`), with
//! every entity's indices inside the text.

use proptest::prelude::*;
use serde_json::{Value, json};
use sluice_bluesky::{Converter, Output};
use sluice_model::compliance::parse_event;

const FIXTURE: &str = include_str!("fixtures/jetstream.ndjson");

/// Checks what one conversion produced.
fn check(output: Output) {
    match output {
        Output::Post { id, line } => {
            let post = sluice_model::check_line(&line).expect("ingest accepts every post");
            assert_eq!(post.id(), Some(id));
            assert!(!line.contains(&b'\n'), "one line");
            let value: Value = serde_json::from_slice(&line).expect("valid JSON");
            let text_len = value["text"].as_str().unwrap().chars().count() as u64;
            for list in ["hashtags", "urls", "user_mentions", "media"] {
                for entity in value["entities"][list].as_array().into_iter().flatten() {
                    let (start, end) = (
                        entity["indices"][0].as_u64().unwrap(),
                        entity["indices"][1].as_u64().unwrap(),
                    );
                    assert!(start <= end && end <= text_len, "{entity}");
                }
            }
        }
        Output::Delete { id, line } => {
            let event = parse_event(&line).expect("ingest accepts every delete");
            assert_eq!(event.status_id, Some(id));
        }
        Output::Nothing => {}
    }
}

fn convert_and_check(converter: &mut Converter, bytes: &[u8]) {
    if let Ok(converted) = converter.convert(bytes) {
        check(converted.output);
    }
}

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            prop::collection::hash_map(
                prop_oneof![
                    Just("$type".to_owned()),
                    Just("uri".to_owned()),
                    Just("did".to_owned()),
                    ".{0,6}".prop_map(|s| s)
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Text with the characters that make offsets hard: multi-byte, joiners, separators.
fn tricky_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("a".to_owned()),
            Just(" ".to_owned()),
            Just("#tag".to_owned()),
            Just("é".to_owned()),
            Just("e\u{301}".to_owned()),
            Just("日本".to_owned()),
            Just("👨\u{200d}👩\u{200d}👧".to_owned()),
            Just("🇯🇵".to_owned()),
            Just("\u{2028}".to_owned()),
            Just("\u{85}".to_owned()),
            Just("\"\\\n".to_owned()),
            any::<char>().prop_map(String::from),
        ],
        0..30,
    )
    .prop_map(|parts| parts.concat())
}

/// A facet of one kind at byte offsets that may or may not fit the text.
fn facet() -> impl Strategy<Value = Value> {
    (0usize..120, 0usize..120, 0..4u8, ".{0,10}").prop_map(|(start, end, kind, value)| {
        let feature = match kind {
            0 => json!({"$type": "app.bsky.richtext.facet#mention", "did": format!("did:plc:{value}")}),
            1 => json!({"$type": "app.bsky.richtext.facet#link", "uri": value}),
            2 => json!({"$type": "app.bsky.richtext.facet#tag", "tag": value}),
            _ => json!({"$type": value}),
        };
        json!({"index": {"byteStart": start, "byteEnd": end}, "features": [feature]})
    })
}

/// An embed of a known kind with arbitrary or plausible insides.
fn embed() -> impl Strategy<Value = Value> {
    (0..6u8, ".{0,20}", any_json()).prop_map(|(kind, text, junk)| match kind {
        0 => json!({"$type": "app.bsky.embed.images", "images": [
            {"alt": text, "image": {"ref": {"$link": "bafkreiabc"}}, "aspectRatio": {"width": 3, "height": 2}},
            junk
        ]}),
        1 => json!({"$type": "app.bsky.embed.video", "video": {"ref": {"$link": text}}, "alt": junk}),
        2 => json!({"$type": "app.bsky.embed.external", "external": {"uri": text, "title": junk}}),
        3 => json!({"$type": "app.bsky.embed.record", "record": {"uri": format!("at://did:plc:x/app.bsky.feed.post/{text}")}}),
        4 => json!({"$type": "app.bsky.embed.recordWithMedia", "record": {"record": junk}, "media": {"$type": "app.bsky.embed.images", "images": []}}),
        _ => junk,
    })
}

/// A post create event with every part drawn at random.
fn post_event() -> impl Strategy<Value = Value> {
    (
        tricky_text(),
        prop::collection::vec(facet(), 0..6),
        prop::option::of(embed()),
        prop_oneof![
            Just("2024-11-20T10:26:57.610Z".to_owned()),
            Just("0001-01-01T00:00:00Z".to_owned()),
            Just("9999-12-31T23:59:59Z".to_owned()),
            ".{0,25}".prop_map(|s| s)
        ],
        prop_oneof![Just("3lbeqfifnck2l".to_owned()), "[2-7a-z]{1,14}".prop_map(|s| s)],
        // Jetstream's cursor is a real time (up to the end of year 9999): with it, a post
        // always has a time, whatever its createdAt and key.
        0u64..253_402_300_800_000_000,
        any_json(),
    )
        .prop_map(|(text, facets, embed, created_at, rkey, time_us, langs)| {
            json!({
                "did": "did:plc:4qzn7cxlmx2bzvefqkhcqo3y",
                "time_us": time_us,
                "kind": "commit",
                "commit": {
                    "operation": "create",
                    "collection": "app.bsky.feed.post",
                    "rkey": rkey,
                    "cid": "bafyreiabc",
                    "record": {
                        "text": text,
                        "createdAt": created_at,
                        "facets": facets,
                        "embed": embed,
                        "langs": langs,
                        "reply": {"parent": {"uri": format!("at://did:plc:y/app.bsky.feed.post/{rkey}")}}
                    }
                }
            })
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        convert_and_check(&mut Converter::new(), &bytes);
    }

    #[test]
    fn arbitrary_json_never_panics(value in any_json(), kind in prop_oneof![
        Just("commit"), Just("identity"), Just("account"), Just("other")
    ]) {
        let mut converter = Converter::new();
        convert_and_check(&mut converter, value.to_string().as_bytes());
        // The same value in each part of an event.
        for field in ["commit", "identity", "account"] {
            let event = json!({"did": "did:plc:x", "time_us": 1, "kind": kind, field: value});
            convert_and_check(&mut converter, event.to_string().as_bytes());
        }
        let record = json!({"did": "did:plc:x", "time_us": 1, "kind": "commit", "commit": {
            "operation": "create", "collection": "app.bsky.feed.post", "rkey": "3lbeqfifnck2l",
            "record": value
        }});
        convert_and_check(&mut converter, record.to_string().as_bytes());
    }

    #[test]
    fn random_posts_convert_to_lines_ingest_accepts(event in post_event()) {
        let bytes = event.to_string();
        let converted = Converter::new().convert(bytes.as_bytes());
        let output = converted.expect("a post event with its essentials converts").output;
        let is_post = matches!(output, Output::Post { .. });
        prop_assert!(is_post, "a post");
        check(output);
    }

    #[test]
    fn mutated_fixture_lines_never_panic(
        line in 0usize..21,
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut converter = Converter::new();
        let lines: Vec<&str> = FIXTURE.lines().collect();
        // Earlier lines first, so quotes and replies find what they refer to.
        for earlier in &lines[..line] {
            convert_and_check(&mut converter, earlier.as_bytes());
        }
        let mut bytes = lines[line].as_bytes().to_vec();
        for (at, byte) in edits {
            let at = at.index(bytes.len());
            bytes[at] = byte;
        }
        convert_and_check(&mut converter, &bytes);
    }
}
