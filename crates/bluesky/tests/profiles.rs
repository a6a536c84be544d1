//! What a post's `user` shows of its author: the handle from identity events, the display
//! name and description from profile records, each forgotten when Bluesky takes it away.

use serde_json::{Value, json};
use sluice_bluesky::{Converter, Output};
use sluice_matcher::Matcher;
use sluice_model::parse_post;

const DID: &str = "did:plc:4qzn7cxlmx2bzvefqkhcqo3y";

fn profile(operation: &str, record: Value) -> String {
    json!({"did": DID, "time_us": 1_732_098_417_801_000u64, "kind": "commit", "commit": {
        "rev": "x", "operation": operation, "collection": "app.bsky.actor.profile",
        "rkey": "self", "record": record, "cid": "bafyrei"
    }})
    .to_string()
}

fn identity(handle: Option<&str>) -> String {
    let mut identity = json!({"did": DID, "seq": 1, "time": "2024-11-20T10:26:57.801Z"});
    if let Some(handle) = handle {
        identity["handle"] = handle.into();
    }
    json!({"did": DID, "time_us": 1_732_098_417_801_000u64, "kind": "identity", "identity": identity})
        .to_string()
}

/// The user object of a new post by the account, and its line.
fn user_of_a_post(converter: &mut Converter) -> (Value, Vec<u8>) {
    let event = json!({"did": DID, "time_us": 1_732_098_417_901_000u64, "kind": "commit", "commit": {
        "rev": "y", "operation": "create", "collection": "app.bsky.feed.post",
        "rkey": "3lbeqfifnck2l", "cid": "bafyrei",
        "record": {"text": "hello", "createdAt": "2024-11-20T10:26:57.610Z"}
    }});
    let Output::Post { line, .. } = converter
        .convert(event.to_string().as_bytes())
        .unwrap()
        .output
    else {
        panic!("a post");
    };
    let post: Value = serde_json::from_slice(&line).unwrap();
    (post["user"].clone(), line)
}

fn nothing(converter: &mut Converter, event: &str) {
    assert_eq!(
        converter.convert(event.as_bytes()).unwrap().output,
        Output::Nothing,
        "{event}"
    );
}

#[test]
fn the_user_shows_handle_name_and_description_as_they_change() {
    let mut converter = Converter::new();
    let (user, _) = user_of_a_post(&mut converter);
    assert_eq!(user["screen_name"], DID);
    assert_eq!(user["name"], DID);
    assert_eq!(user["description"], Value::Null);

    nothing(&mut converter, &identity(Some("alice.bsky.social")));
    nothing(
        &mut converter,
        &profile(
            "create",
            json!({"$type": "app.bsky.actor.profile", "displayName": "Alice 🌻", "description": "Cats and compilers"}),
        ),
    );
    let (user, line) = user_of_a_post(&mut converter);
    assert_eq!(user["screen_name"], "alice.bsky.social");
    assert_eq!(user["name"], "Alice 🌻");
    assert_eq!(user["description"], "Cats and compilers");
    assert!(sluice_model::check_line(&line).is_ok());
    // The profile reaches the bio operators.
    let mut matcher = Matcher::new();
    matcher.insert(
        1,
        &sluice_rules::parse("bio:compilers bio_name:alice").unwrap(),
    );
    let mut out = Vec::new();
    matcher.match_post(&parse_post(&line).unwrap(), &mut out);
    assert_eq!(out, [1]);

    // An update without a description drops it; a blank name counts as none.
    nothing(
        &mut converter,
        &profile("update", json!({"displayName": "  "})),
    );
    let (user, _) = user_of_a_post(&mut converter);
    assert_eq!(user["name"], "alice.bsky.social");
    assert_eq!(user["description"], Value::Null);

    // A profile of the wrong shape reads as empty; the handle stays.
    nothing(
        &mut converter,
        &profile("update", json!({"displayName": 5, "description": "Back"})),
    );
    let (user, _) = user_of_a_post(&mut converter);
    assert_eq!(user["name"], "alice.bsky.social");
    assert_eq!(user["description"], "Back");
    nothing(&mut converter, &profile("update", json!("odd")));
    nothing(&mut converter, &profile("delete", Value::Null));
    let (user, _) = user_of_a_post(&mut converter);
    assert_eq!(user["description"], Value::Null);
    assert_eq!(user["screen_name"], "alice.bsky.social");

    // A handle that no longer resolves.
    nothing(&mut converter, &identity(None));
    assert_eq!(converter.handle(DID), None);
    let (user, _) = user_of_a_post(&mut converter);
    assert_eq!(user["screen_name"], DID);
}

#[test]
fn accounts_beyond_the_cache_are_forgotten_oldest_first() {
    let mut converter = Converter::with_capacities(2, 2);
    for (i, did) in ["did:plc:a", "did:plc:b", "did:plc:c"].iter().enumerate() {
        let event = json!({"did": did, "time_us": 1, "kind": "identity",
            "identity": {"handle": format!("h{i}.test")}});
        nothing(&mut converter, &event.to_string());
    }
    assert_eq!(converter.handle("did:plc:a"), None);
    assert_eq!(converter.handle("did:plc:b"), Some("h1.test"));
    assert_eq!(converter.handle("did:plc:c"), Some("h2.test"));
}
