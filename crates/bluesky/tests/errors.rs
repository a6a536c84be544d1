//! Hostile and malformed events: each is refused with a message naming what is wrong, and
//! nothing panics.

use sluice_bluesky::{Converter, Output};

const DID: &str = "did:plc:4qzn7cxlmx2bzvefqkhcqo3y";

fn commit(commit: &str) -> String {
    format!(r#"{{"did":"{DID}","time_us":1732098417801000,"kind":"commit","commit":{commit}}}"#)
}

fn create(record: &str) -> String {
    commit(&format!(
        r#"{{"rev":"x","operation":"create","collection":"app.bsky.feed.post","rkey":"3lbeqfifnck2l","record":{record},"cid":"bafy"}}"#
    ))
}

#[test]
fn malformed_events_are_refused_naming_the_field() {
    let cases: Vec<(String, &str)> = vec![
        ("".into(), "invalid JSON"),
        ("not json".into(), "invalid JSON"),
        (r#"{"did":"#.into(), "invalid JSON"),
        ("[1,2]".into(), "invalid type"),
        (
            r#"{"did":"did:plc:x","time_us":1,"kind":"identity","identity":{}} x"#.into(),
            "invalid JSON: trailing characters",
        ),
        (
            r#"{"time_us":1,"kind":"commit"}"#.into(),
            "missing field `did`",
        ),
        (
            r#"{"did":"did:plc:x","kind":"commit"}"#.into(),
            "missing field `time_us`",
        ),
        (
            r#"{"did":"did:plc:x","time_us":-1,"kind":"commit"}"#.into(),
            "time_us: invalid value",
        ),
        (
            r#"{"did":"did:plc:x","time_us":1}"#.into(),
            "missing field `kind`",
        ),
        (
            r#"{"did":"did:plc:x","time_us":1,"kind":7}"#.into(),
            "kind: invalid type",
        ),
        (
            r#"{"did":"alice","time_us":1,"kind":"account"}"#.into(),
            "did \"alice\" is not a DID",
        ),
        (
            r#"{"did":"did:plc:x","time_us":1,"kind":"commit"}"#.into(),
            "commit is missing",
        ),
        (
            r#"{"did":"did:plc:x","time_us":1,"kind":"identity"}"#.into(),
            "identity is missing",
        ),
        (
            commit(r#"{"operation":"create","collection":"app.bsky.feed.post"}"#),
            "commit: missing field `rkey`",
        ),
        (
            commit(r#"{"operation":"create","rkey":"a"}"#),
            "commit: missing field `collection`",
        ),
        (
            commit(r#"{"collection":"app.bsky.feed.post","rkey":"a"}"#),
            "commit: missing field `operation`",
        ),
        (
            commit(r#"{"operation":"create","collection":"app.bsky.feed.post","rkey":""}"#),
            "commit.rkey is empty",
        ),
        (
            commit(r#"{"operation":"create","collection":"app.bsky.feed.post","rkey":"a"}"#),
            "commit.record is missing",
        ),
        (
            commit(r#"{"operation":"upsert","collection":"app.bsky.feed.post","rkey":"a"}"#),
            "commit.operation \"upsert\" is not create, update or delete",
        ),
        (
            create(r#"{"createdAt":"2024-11-20T10:26:57Z"}"#),
            "commit.record: missing field `text`",
        ),
        (
            create(r#"{"text":"hi"}"#),
            "commit.record: missing field `createdAt`",
        ),
        (
            create(r#"{"text":5,"createdAt":"2024-11-20T10:26:57Z"}"#),
            "commit.record.text: invalid type",
        ),
        (create(r#""a string""#), "commit.record: invalid type"),
        // No time anywhere: createdAt is not one, the key is not a TID, and time_us is past
        // the year 9999.
        (
            format!(
                r#"{{"did":"{DID}","time_us":18446744073709551615,"kind":"commit","commit":{{"operation":"create","collection":"app.bsky.feed.post","rkey":"self","record":{{"text":"","createdAt":"soon"}}}}}}"#
            ),
            "commit.record.createdAt \"soon\" is not a time",
        ),
    ];
    let mut failures = Vec::new();
    for (event, want) in &cases {
        let got = Converter::new().convert(event.as_bytes());
        match got {
            Err(e)
                if e.to_string().starts_with("Jetstream event: ")
                    && e.to_string().contains(want) => {}
            other => failures.push(format!(
                "{event}\n  want an error with {want:?}\n  got  {other:?}"
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_bad_optional_field_loses_only_itself() {
    // langs, facets, embed and reply of the wrong shapes: the post stays, without them.
    let event = create(
        r#"{"text":"hi #x","createdAt":"2024-11-20T10:26:57Z","langs":"en","facets":[5,{"index":{"byteStart":3,"byteEnd":5},"features":[{"$type":"app.bsky.richtext.facet#tag","tag":"x"}]}],"embed":[],"reply":{"parent":"x"}}"#,
    );
    let Output::Post { line, .. } = Converter::new().convert(event.as_bytes()).unwrap().output
    else {
        panic!("a post");
    };
    let post: serde_json::Value = serde_json::from_slice(&line).unwrap();
    assert_eq!(post["lang"], "und");
    assert_eq!(post["entities"]["hashtags"][0]["text"], "x");
    assert_eq!(post["in_reply_to_status_id"], serde_json::Value::Null);
    assert!(sluice_model::check_line(&line).is_ok());
}

#[test]
fn a_created_at_that_is_not_a_time_falls_back_to_the_key_s_time() {
    let event = create(r#"{"text":"hi","createdAt":"yesterday"}"#);
    let Output::Post { line, .. } = Converter::new().convert(event.as_bytes()).unwrap().output
    else {
        panic!("a post");
    };
    let post: serde_json::Value = serde_json::from_slice(&line).unwrap();
    // 3lbeqfifnck2l is 2024-11-20T10:26:57.610Z.
    assert_eq!(post["created_at"], "Wed Nov 20 10:26:57 +0000 2024");
    assert_eq!(post["timestamp_ms"], "1732098417610");
}

#[test]
fn unknown_kinds_and_fields_are_passed_over() {
    let mut converter = Converter::new();
    for event in [
        r#"{"did":"did:plc:x","time_us":5,"kind":"something-new","extra":{"a":[1]}}"#,
        r#"{"did":"did:plc:x","time_us":5,"kind":"account","account":"odd"}"#,
    ] {
        let converted = converter.convert(event.as_bytes()).unwrap();
        assert_eq!(converted.time_us, 5);
        assert_eq!(converted.output, Output::Nothing);
    }
}

#[test]
fn a_huge_bad_value_gives_a_short_message() {
    let event = format!(
        r#"{{"did":"{DID}","time_us":"{}","kind":"commit"}}"#,
        "9".repeat(100_000)
    );
    let message = Converter::new()
        .convert(event.as_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        message.starts_with("Jetstream event: time_us: invalid type"),
        "{message}"
    );
    assert!(message.len() < 400, "{} bytes", message.len());
    assert!(message.ends_with('…'));
}
