//! Fuzzes the two ingest-time readings added for compliance: telling an event from a post
//! and checking it (no input may panic them; a checked event is one the peek saw, and its
//! error message stays short whatever the input), and the edit metadata added to posts
//! without any (what comes out parses as a post with the same id and now has
//! `edit_history`, and is valid JSON whenever the post was).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_model::compliance::{event_kind, is_event, parse_event};
use sluice_model::edit::with_unedited_metadata;
use sluice_model::{check_line, parse_post};

fuzz_target!(|bytes: &[u8]| {
    match parse_event(bytes) {
        Ok(event) => {
            assert!(is_event(bytes));
            assert_eq!(event_kind(bytes), Some(event.kind));
        }
        Err(error) => {
            let message = error.to_string();
            assert!(message.len() < 400, "{message}");
        }
    }
    if let Ok(post) = check_line(bytes)
        && let Some(with) = with_unedited_metadata(bytes, &post)
    {
        // The lenient post reading lets bytes it skips be invalid UTF-8, which strict JSON
        // refuses: the metadata must keep valid JSON valid.
        if serde_json::from_slice::<serde_json::Value>(bytes).is_ok() {
            let value: serde_json::Value =
                serde_json::from_slice(&with).expect("the metadata keeps the post valid JSON");
            assert!(value.is_object());
        }
        let again = parse_post(&with).expect("still a post");
        assert_eq!(again.id(), post.id());
        assert!(again.edit_history.is_some());
    }
});
