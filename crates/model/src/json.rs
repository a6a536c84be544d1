//! JSON output that is safe for line-splitting clients (docs/compatibility.md, wire rule 5).
//!
//! U+2028 (LINE SEPARATOR), U+2029 (PARAGRAPH SEPARATOR) and U+0085 (NEXT LINE) are legal
//! raw inside JSON strings, but some clients split lines on them and then fail to parse
//! both halves. Every byte of JSON sluice writes therefore carries them as `\u2028`,
//! `\u2029` and `\u0085`. Two paths do this:
//!
//! - [`WireFormatter`] (and [`to_writer`], [`to_vec`], [`to_string`]) for values sluice
//!   serialises itself;
//! - [`escape_line_separators`] for post bytes forwarded as received: a `memchr` scan that
//!   copies unchanged runs in bulk. Rewriting bytes without parsing is sound because in
//!   valid JSON these characters can only occur inside strings (JSON whitespace is space,
//!   tab, CR and LF), where the `\u` escape denotes exactly the same string.

use std::io;

use serde::Serialize;
use serde_json::ser::{Formatter, Serializer};

/// UTF-8 of U+0085 NEXT LINE.
const NEL: &[u8] = b"\xC2\x85";
/// UTF-8 of U+2028 LINE SEPARATOR.
const LS: &[u8] = b"\xE2\x80\xA8";
/// UTF-8 of U+2029 PARAGRAPH SEPARATOR.
const PS: &[u8] = b"\xE2\x80\xA9";

/// A compact `serde_json` formatter that writes U+2028, U+2029 and U+0085 as `\u` escapes.
///
/// Use it (through [`to_writer`] and friends) for every JSON body or line sluice produces.
#[derive(Debug, Clone, Copy, Default)]
pub struct WireFormatter;

impl Formatter for WireFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut pending = fragment.as_bytes();
        while let Some((at, len, escape)) = find_separator(pending) {
            writer.write_all(&pending[..at])?;
            writer.write_all(escape)?;
            pending = &pending[at + len..];
        }
        writer.write_all(pending)
    }
}

/// Serialises `value` as compact JSON through [`WireFormatter`].
pub fn to_writer<W: io::Write, T: ?Sized + Serialize>(
    writer: W,
    value: &T,
) -> serde_json::Result<()> {
    let mut ser = Serializer::with_formatter(writer, WireFormatter);
    value.serialize(&mut ser)
}

/// Serialises `value` as compact JSON through [`WireFormatter`] into a new buffer.
pub fn to_vec<T: ?Sized + Serialize>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(128);
    to_writer(&mut out, value)?;
    Ok(out)
}

/// Serialises `value` as compact JSON through [`WireFormatter`] into a `String`.
pub fn to_string<T: ?Sized + Serialize>(value: &T) -> serde_json::Result<String> {
    let bytes = to_vec(value)?;
    Ok(String::from_utf8(bytes).expect("serde_json writes UTF-8 and the escapes are ASCII"))
}

/// Appends `json` to `out` with every U+2028, U+2029 and U+0085 replaced by its `\u`
/// escape. `json` must be valid JSON (then these characters only occur inside strings);
/// other bytes are copied unchanged.
pub fn escape_line_separators(json: &[u8], out: &mut Vec<u8>) {
    let mut pending = json;
    while let Some((at, len, escape)) = find_separator(pending) {
        out.extend_from_slice(&pending[..at]);
        out.extend_from_slice(escape);
        pending = &pending[at + len..];
    }
    out.extend_from_slice(pending);
}

/// Whether `json` holds a character that [`escape_line_separators`] would rewrite, so a
/// caller can keep a borrowed slice when nothing needs to change.
pub fn has_line_separators(json: &[u8]) -> bool {
    find_separator(json).is_some()
}

/// Finds the first separator: its offset, its length in bytes and its escape. The lead
/// bytes `0xC2`/`0xE2` are located with `memchr2`; continuation bytes are then checked, so
/// other characters sharing a lead byte (`©`, `’`, `…`) are skipped.
fn find_separator(bytes: &[u8]) -> Option<(usize, usize, &'static [u8])> {
    let mut from = 0;
    while let Some(rel) = memchr::memchr2(0xC2, 0xE2, &bytes[from..]) {
        let at = from + rel;
        let rest = &bytes[at..];
        if rest.starts_with(NEL) {
            return Some((at, NEL.len(), b"\\u0085"));
        }
        if rest.starts_with(LS) {
            return Some((at, LS.len(), b"\\u2028"));
        }
        if rest.starts_with(PS) {
            return Some((at, PS.len(), b"\\u2029"));
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialised_strings_escape_the_three_separators() {
        let value = serde_json::json!({
            "text": "a\u{2028}b\u{2029}c\u{85}d",
            "k\u{2028}": ["\u{2029}"],
        });
        let out = to_string(&value).expect("serialises");
        assert_eq!(
            out,
            r#"{"k\u2028":["\u2029"],"text":"a\u2028b\u2029c\u0085d"}"#
        );
        let back: serde_json::Value = serde_json::from_str(&out).expect("still valid JSON");
        assert_eq!(back, value);
    }

    #[test]
    fn other_characters_are_untouched_and_output_is_compact() {
        let value = serde_json::json!({"t": "© ’quoted’ … \u{2027}\u{202A} \"q\" \n", "n": 1});
        let out = to_string(&value).expect("serialises");
        assert_eq!(out, serde_json::to_string(&value).expect("serialises"));
    }

    #[test]
    fn byte_pass_rewrites_forwarded_posts() {
        let raw = "{\"text\":\"x\u{2028}y\u{85}\u{2029}© …\",\"id\":1}";
        let mut out = b"prefix ".to_vec();
        assert!(has_line_separators(raw.as_bytes()));
        escape_line_separators(raw.as_bytes(), &mut out);
        assert_eq!(
            out,
            r#"prefix {"text":"x\u2028y\u0085\u2029© …","id":1}"#.as_bytes()
        );
        let reparsed: serde_json::Value =
            serde_json::from_slice(&out[7..]).expect("still valid JSON");
        assert_eq!(reparsed["text"], "x\u{2028}y\u{85}\u{2029}© …");
    }

    #[test]
    fn byte_pass_without_separators_copies_verbatim() {
        let raw = "{\"text\":\"plain ’ © text\"}";
        assert!(!has_line_separators(raw.as_bytes()));
        let mut out = Vec::new();
        escape_line_separators(raw.as_bytes(), &mut out);
        assert_eq!(out, raw.as_bytes());
    }

    #[test]
    fn byte_pass_handles_separators_at_the_edges() {
        let mut out = Vec::new();
        escape_line_separators("\u{2028}\u{85}".as_bytes(), &mut out);
        assert_eq!(out, br"\u2028\u0085".to_vec());
        out.clear();
        // A truncated lead byte at the end is not a separator.
        escape_line_separators(b"ab\xE2\x80", &mut out);
        assert_eq!(out, b"ab\xE2\x80".to_vec());
    }
}
