//! The check each line of an ingest body must pass before the post is accepted.
//!
//! Matching is lenient (see [`crate::post`]): a post missing fields still matches what it
//! can. Ingest is the door into the system, so it is stricter: a post must carry what X
//! always sends, in X's own form, because later stages (replay by time, ids in delivered
//! activities) trust it. This module is pure, with no I/O, so it can be tested line by line
//! and fuzzed.

use time::PrimitiveDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;
use time::parsing::Parsed;

use crate::post::{PostError, PostView, parse_post};

/// X's `created_at` layout, `Wed Oct 10 20:19:24 +0000 2018`. X always writes UTC, so the
/// offset is the literal `+0000`; names are English and case-sensitive, the day is two digits.
const CREATED_AT: &[FormatItem<'static>] = format_description!(
    "[weekday repr:short] [month repr:short] [day] [hour]:[minute]:[second] +0000 [year]"
);

/// How much of a rejected `created_at` value is quoted back in the error, in bytes once
/// escaped, so that the message stays short whatever the value holds.
const QUOTE_BYTES: usize = 40;

/// Why one ingest line was refused. The message is what the ingest answer reports for the
/// line, so it names the field at fault.
#[derive(Debug, thiserror::Error)]
pub enum IngestLineError {
    /// The line is not valid UTF-8 (the post reading skips some strings without looking
    /// at their bytes; what is stored and delivered must be valid JSON text).
    #[error("line is not valid UTF-8")]
    NotUtf8,
    /// The line is not a post at all (not JSON, not an object, no numeric id).
    #[error(transparent)]
    Post(#[from] PostError),
    /// The post has no `created_at` (or it is `null`).
    #[error("post has no created_at")]
    MissingCreatedAt,
    /// `created_at` is present but not in X's format (or not a real date). Holds the
    /// start of the value, escaped as in Rust's `Debug`.
    #[error("created_at \"{0}\" is not in X's format \"Wed Oct 10 20:19:24 +0000 2018\"")]
    CreatedAtFormat(String),
    /// `id` and `id_str` are both numeric and name different posts.
    #[error("id {id} and id_str \"{id_str}\" disagree")]
    IdMismatch {
        /// The value of `id`.
        id: u64,
        /// The value of `id_str`.
        id_str: u64,
    },
}

/// Checks one ingest line (without its line ending) and returns the parsed post.
///
/// Accepted: valid UTF-8 holding a JSON object with a numeric `id` or `id_str` (equal when both are numeric) and
/// a `created_at` in X's format naming a real date and the right weekday. Only the root post
/// is checked; nested posts are X's copies and are read leniently, as in matching.
pub fn check_line(bytes: &[u8]) -> Result<PostView<'_>, IngestLineError> {
    if simdutf8::basic::from_utf8(bytes).is_err() {
        return Err(IngestLineError::NotUtf8);
    }
    let post = parse_post(bytes)?;
    if let (Some(id), Some(id_str)) = (post.id, post.id_str)
        && id != id_str
    {
        return Err(IngestLineError::IdMismatch { id, id_str });
    }
    let created_at = post
        .created_at
        .as_deref()
        .ok_or(IngestLineError::MissingCreatedAt)?;
    if parse_created_at(created_at).is_none() {
        return Err(IngestLineError::CreatedAtFormat(quote(created_at)));
    }
    Ok(post)
}

/// The start of `text`, escaped, at most [`QUOTE_BYTES`] long (then `…`).
fn quote(text: &str) -> String {
    let mut quoted = String::new();
    for c in text.chars() {
        let escaped = c.escape_debug();
        if quoted.len() + escaped.len() > QUOTE_BYTES {
            quoted.push('…');
            break;
        }
        quoted.extend(escaped);
    }
    quoted
}

/// Reads a `created_at` in X's format as a UTC date and time; `None` when it is not exactly
/// that format or not a real date (such as February 30th, or a weekday that is wrong for
/// the date).
pub fn parse_created_at(text: &str) -> Option<PrimitiveDateTime> {
    // `[year]` also reads a signed year (`+2026`), which X never writes: the year must be
    // the last four bytes, all digits (the fuzz target `ingest_line` found this).
    let year = text.len().checked_sub(4).and_then(|at| text.get(at..))?;
    if !year.bytes().all(|b| b.is_ascii_digit()) || !text[..text.len() - 4].ends_with(' ') {
        return None;
    }
    // `PrimitiveDateTime::parse` reads the weekday but does not compare it with the date.
    let mut parsed = Parsed::new();
    let rest = parsed.parse_items(text.as_bytes(), CREATED_AT).ok()?;
    let weekday = parsed.weekday()?;
    let at = PrimitiveDateTime::try_from(parsed).ok()?;
    (rest.is_empty() && at.weekday() == weekday).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(line, expected)`: `Ok(id)` when accepted, else a fragment of the error message.
    const CASES: &[(&str, Result<u64, &str>)] = &[
        // Accepted.
        (
            r#"{"id":1,"id_str":"1","created_at":"Wed Oct 10 20:19:24 +0000 2018"}"#,
            Ok(1),
        ),
        (
            r#"{"id_str":"2","created_at":"Sun Nov 01 00:00:00 +0000 2026"}"#,
            Ok(2),
        ),
        (
            r#"{"id":3,"created_at":"Thu Feb 29 23:59:59 +0000 2024"}"#,
            Ok(3),
        ),
        (
            r#"{"id":"4","id_str":"4","created_at":"Mon Jan 01 00:00:00 +0000 2018"}"#,
            Ok(4),
        ),
        // An id that is not numeric reads as absent; the other one is the post's id.
        (
            r#"{"id":1.5,"id_str":"5","created_at":"Wed Oct 10 20:19:24 +0000 2018"}"#,
            Ok(5),
        ),
        // Not posts.
        ("not json", Err("not a JSON object")),
        ("{not json", Err("invalid post JSON")),
        ("[1]", Err("not a JSON object")),
        (
            r#"{"created_at":"Wed Oct 10 20:19:24 +0000 2018"}"#,
            Err("no numeric id"),
        ),
        // created_at missing or not X's format.
        (r#"{"id":1}"#, Err("no created_at")),
        (r#"{"id":1,"created_at":null}"#, Err("no created_at")),
        (
            r#"{"id":1,"created_at":"x"}"#,
            Err("\"x\" is not in X's format"),
        ),
        (r#"{"id":1,"created_at":""}"#, Err("not in X's format")),
        (
            r#"{"id":1,"created_at":"2018-10-10T20:19:24Z"}"#,
            Err("not in X's format"),
        ),
        (
            r#"{"id":1,"created_at":"Wed Oct 10 20:19:24 +0100 2018"}"#,
            Err("X's format"),
        ),
        (
            r#"{"id":1,"created_at":"Wed Oct 10 20:19:24 2018"}"#,
            Err("X's format"),
        ),
        (
            r#"{"id":1,"created_at":"Wed Oct 10 20:19:24 +0000 2018 "}"#,
            Err("X's format"),
        ),
        (
            r#"{"id":1,"created_at":" Wed Oct 10 20:19:24 +0000 2018"}"#,
            Err("X's format"),
        ),
        // The year as X writes it: four digits, no sign (the date reader alone reads a
        // signed one).
        (
            r#"{"id":1,"created_at":"Sun Nov 01 00:00:00 +0000 +2026"}"#,
            Err("X's format"),
        ),
        (
            r#"{"id":1,"created_at":"Sun Nov 01 00:00:00 +0000 -2026"}"#,
            Err("X's format"),
        ),
        (
            r#"{"id":1,"created_at":"Sun Nov 01 00:00:00 +0000 02026"}"#,
            Err("X's format"),
        ),
        (
            r#"{"id":1,"created_at":"wed oct 10 20:19:24 +0000 2018"}"#,
            Err("X's format"),
        ),
        (
            r#"{"id":1,"created_at":"Wed Oct 1 20:19:24 +0000 2018"}"#,
            Err("X's format"),
        ),
        (
            r#"{"id":1,"created_at":"Wednesday Oct 10 20:19:24 +0000 2018"}"#,
            Err("format"),
        ),
        (
            r#"{"id":1,"created_at":"Wed Oct 10 24:00:00 +0000 2018"}"#,
            Err("X's format"),
        ),
        (
            r#"{"id":1,"created_at":"Fri Feb 30 00:00:00 +0000 2018"}"#,
            Err("X's format"),
        ),
        (
            r#"{"id":1,"created_at":"Thu Oct 10 20:19:24 +0000 2018"}"#,
            Err("X's format"),
        ),
        (
            r#"{"id":1,"created_at":"Wed Oct 10 20:19:24 +0000 18"}"#,
            Err("X's format"),
        ),
        (
            r#"{"id":1,"created_at":1539202764}"#,
            Err("invalid post JSON"),
        ),
        // id and id_str disagree.
        (
            r#"{"id":1,"id_str":"2","created_at":"Wed Oct 10 20:19:24 +0000 2018"}"#,
            Err("id 1 and id_str \"2\" disagree"),
        ),
        (r#"{"id":7,"id_str":"8"}"#, Err("disagree")),
    ];

    #[test]
    fn a_line_that_is_not_utf8_is_refused_even_in_a_field_nobody_reads() {
        let line = b"{\"id\":1,\"created_at\":\"Wed Oct 10 20:19:24 +0000 2018\",\"x\":\"\xff\"}";
        assert!(
            parse_post(line).is_ok(),
            "the lenient reading skips the field"
        );
        assert_eq!(
            check_line(line).unwrap_err().to_string(),
            "line is not valid UTF-8"
        );
    }

    #[test]
    fn lines_are_checked_as_the_table_says() {
        let mut failures = Vec::new();
        for (line, want) in CASES {
            let got = check_line(line.as_bytes()).map(|post| post.id().unwrap_or_default());
            let ok = match (&got, want) {
                (Ok(id), Ok(want)) => id == want,
                (Err(e), Err(fragment)) => e.to_string().contains(fragment),
                _ => false,
            };
            if !ok {
                failures.push(format!("{line}\n  want {want:?}\n  got  {got:?}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn a_long_bad_created_at_is_quoted_short() {
        let line = format!(r#"{{"id":1,"created_at":"{}"}}"#, "9".repeat(10_000));
        let message = check_line(line.as_bytes()).unwrap_err().to_string();
        assert!(message.len() < 120, "{message}");
    }

    #[test]
    fn a_bad_created_at_full_of_escapes_is_quoted_short() {
        let line = format!(r#"{{"id":1,"created_at":"{}"}}"#, "\\u0001".repeat(100));
        let message = check_line(line.as_bytes()).unwrap_err().to_string();
        assert!(message.len() < 200, "{} bytes: {message}", message.len());
        assert!(
            message.starts_with(r#"created_at "\u{1}\u{1}"#),
            "{message}"
        );
    }

    #[test]
    fn created_at_reads_as_utc() {
        let at = parse_created_at("Wed Oct 10 20:19:24 +0000 2018").expect("X's format");
        assert_eq!(at.assume_utc().unix_timestamp(), 1_539_202_764);
    }
}
