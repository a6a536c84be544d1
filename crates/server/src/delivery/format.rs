//! How a connection writes the posts it receives: X's native post as ingested, or the
//! X API v2 line with the fields and expansions the connection asked for. Connections of
//! one stream that ask for the same format share their segments ([`super::fanout`]).

use std::sync::Arc;

use serde_json::Value;
use sluice_wire::v2_post::{V2Fields, to_v2_bytes};

/// The shape of the posts a connection receives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Format {
    /// The native post (with `matching_rules` spliced in on rules streams).
    #[default]
    Native,
    /// The v2 line built from the native post with these fields and expansions.
    V2(Arc<V2Fields>),
}

/// Appends the v2 line of the native post `raw` to `out`, framed with `\r\n`, with
/// `matching_rules` (a JSON array built once per post and stream) when given. A post that
/// is not a JSON object writes nothing: posts are validated at ingest, so it cannot
/// happen on a live stream.
pub fn write_v2_line(
    raw: &[u8],
    fields: &V2Fields,
    matching_rules: Option<&Value>,
    out: &mut Vec<u8>,
) -> bool {
    let Ok(mut line) = to_v2_bytes(raw, fields) else {
        return false;
    };
    if let (Some(rules), Value::Object(map)) = (matching_rules, &mut line) {
        map.insert("matching_rules".to_owned(), rules.clone());
    }
    if serde_json::to_writer(&mut *out, &line).is_err() {
        return false;
    }
    out.extend_from_slice(b"\r\n");
    true
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn v2_lines_are_framed_and_carry_the_rules_given() {
        let fields = V2Fields::default();
        let mut out = Vec::new();
        let rules = json!([{"id": "7", "tag": ""}]);
        let raw = br#"{"id":5,"id_str":"5","text":"hi"}"#;
        assert!(write_v2_line(raw, &fields, Some(&rules), &mut out));
        assert!(write_v2_line(raw, &fields, None, &mut out));
        assert!(!write_v2_line(b"[1]", &fields, None, &mut out));
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.split_terminator("\r\n").collect();
        assert_eq!(lines.len(), 2);
        let first: Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(first["data"]["id"], "5");
        assert_eq!(first["matching_rules"], rules);
        let second: Value = serde_json::from_str(lines[1]).unwrap();
        assert!(second.get("matching_rules").is_none());
    }
}
