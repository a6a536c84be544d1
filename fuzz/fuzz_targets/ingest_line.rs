//! Fuzzes the ingest line check: no input may panic it; an accepted line is a post the
//! lenient parser reads the same way; and a `created_at` it accepts is exactly X's form
//! (formatting the date back gives the same text), so nothing X would not write gets in.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_model::ingest_line::parse_created_at;
use sluice_model::{IngestLineError, check_line, parse_post};
use time::macros::format_description;

/// X's `created_at` layout, as X writes it.
fn format_x(at: time::PrimitiveDateTime) -> String {
    at.format(format_description!(
        "[weekday repr:short] [month repr:short] [day] [hour]:[minute]:[second] +0000 [year]"
    ))
    .expect("a parsed date formats")
}

/// A date the check accepted must print back as the same text.
fn assert_exact(text: &str) {
    if let Some(at) = parse_created_at(text) {
        assert_eq!(
            format_x(at),
            text,
            "accepted a created_at X would not write"
        );
    }
}

fuzz_target!(|bytes: &[u8]| {
    // The date reader on its own, so the fuzzer need not wrap every try in JSON.
    if let Ok(text) = std::str::from_utf8(bytes) {
        assert_exact(text);
    }
    match check_line(bytes) {
        Ok(post) => {
            let lenient = parse_post(bytes).expect("an accepted line parses");
            assert_eq!(post.id(), lenient.id());
            if let (Some(id), Some(id_str)) = (post.id, post.id_str) {
                assert_eq!(id, id_str);
            }
            assert_exact(
                post.created_at
                    .as_deref()
                    .expect("accepted lines have created_at"),
            );
        }
        Err(IngestLineError::Post(_)) => assert!(parse_post(bytes).is_err()),
        Err(error) => {
            // The message goes back to the client per line: bounded, whatever the input.
            let message = error.to_string();
            assert!(message.len() < 200, "{message}");
        }
    }
});
