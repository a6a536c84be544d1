//! [`Shift`] on a native post's bytes: only the members that change are parsed and written
//! again; every other member is copied as it was, in its place. This keeps the post's key
//! order and its bytes (a `Value` would sort the keys), and is several times faster than
//! a whole `Value` round trip on 4 KB posts (docs/performance.md). Anything outside the
//! plain shape — an event, a v2 line, a key with an escape, invalid JSON — is left to the
//! `Value` path, which the tests check this one against.

use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Map;
use serde_json::value::RawValue;
use sluice_model::compliance::is_event;

use super::Shift;

/// The members of a post that [`Shift::post`] rewrites in place (small values).
const REWRITTEN: [&str; 10] = [
    "id",
    "id_str",
    "in_reply_to_status_id",
    "in_reply_to_status_id_str",
    "quoted_status_id",
    "quoted_status_id_str",
    "timestamp_ms",
    "created_at",
    "edit_history",
    "edit_controls",
];
/// The members that are posts themselves, rewritten the same way.
const NESTED: [&str; 2] = ["quoted_status", "retweeted_status"];

/// A JSON object as its members in order, each value as its raw text.
struct Members<'a>(Vec<(&'a str, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(32));
                while let Some(member) = map.next_entry::<&'de str, &'de RawValue>()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(MembersVisitor)
    }
}

impl Shift {
    /// The line rewritten as [`Shift::apply`] would, with every member it does not change
    /// kept byte for byte; `None` when the line is not a plain native post (the caller
    /// then takes the `Value` path).
    pub fn apply_to_post_bytes(self, line: &[u8]) -> Option<Vec<u8>> {
        if is_event(line) {
            return None;
        }
        let text = std::str::from_utf8(line).ok()?.trim_ascii();
        let members: Members<'_> = serde_json::from_str(text).ok()?;
        if members.0.iter().any(|(key, _)| *key == "data") {
            return None;
        }
        let mut out = Vec::with_capacity(text.len() + 16);
        self.write_post(&members, &mut out)?;
        Some(out)
    }

    fn write_post(self, members: &Members<'_>, out: &mut Vec<u8>) -> Option<()> {
        let mut changed = Map::new();
        for (key, raw) in &members.0 {
            if REWRITTEN.contains(key) {
                changed.insert((*key).to_owned(), serde_json::from_str(raw.get()).ok()?);
            }
        }
        self.post(&mut changed);
        out.push(b'{');
        for (i, (key, raw)) in members.0.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            serde_json::to_writer(&mut *out, key).ok()?;
            out.push(b':');
            if let Some(value) = changed.get(*key) {
                serde_json::to_writer(&mut *out, value).ok()?;
            } else if NESTED.contains(key) && raw.get().starts_with('{') {
                let inner: Members<'_> = serde_json::from_str(raw.get()).ok()?;
                self.write_post(&inner, out)?;
            } else {
                out.extend_from_slice(raw.get().as_bytes());
            }
        }
        out.push(b'}');
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// Both paths on `line`: the bytes path must give the `Value` path's result.
    fn both(shift: Shift, line: &str) -> Option<String> {
        let fast = shift.apply_to_post_bytes(line.as_bytes())?;
        let fast = String::from_utf8(fast).expect("UTF-8");
        let mut slow: Value = serde_json::from_str(line).expect("JSON");
        shift.apply(&mut slow);
        let fast_value: Value = serde_json::from_str(&fast).expect("the bytes path writes JSON");
        assert_eq!(fast_value, slow, "{line}");
        Some(fast)
    }

    #[test]
    fn the_bytes_path_agrees_with_the_value_path_on_realistic_posts() {
        let mut posts = sluice_synth::PostGenerator::new(5).with_clock(1_539_202_764_000, 50.0);
        let shift = Shift { ms: 86_400_123 };
        for _ in 0..300 {
            let post = posts.next_post();
            let fast = both(shift, &post).expect("a plain post takes the bytes path");
            // Members keep their order: the keys come out as they went in.
            let keys = |text: &str| -> Vec<String> {
                let members: Members<'_> = serde_json::from_str(text).expect("object");
                members.0.iter().map(|(k, _)| (*k).to_owned()).collect()
            };
            assert_eq!(keys(&fast), keys(&post));
        }
    }

    #[test]
    fn nested_posts_are_rewritten_and_unchanged_members_kept_byte_for_byte() {
        let line = r#"{"created_at":"Wed Oct 10 20:19:24 +0000 2018","id":4194304,"id_str":"4194304","text":"caf\u00e9  \ud83c\udf55","user":{"id":12,"created_at":"Wed Oct 10 20:19:24 +0000 2018"},"quoted_status_id":4194305,"quoted_status_id_str":"4194305","quoted_status":{"id":4194305,"id_str":"4194305","created_at":"Wed Oct 10 20:19:23 +0000 2018","retweeted_status":{"id_str":"1"}},"geo":null}"#;
        let fast = both(Shift { ms: 1000 }, line).expect("bytes path");
        assert!(
            fast.contains(r#""text":"caf\u00e9  \ud83c\udf55","user":{"id":12,"created_at":"Wed Oct 10 20:19:24 +0000 2018"}"#),
            "{fast}"
        );
        assert!(fast.starts_with(r#"{"created_at":"Wed Oct 10 20:19:25 +0000 2018","id":4198498304,"id_str":"4198498304","#), "{fast}");
        assert!(fast.ends_with(r#","geo":null}"#), "{fast}");
    }

    #[test]
    fn other_lines_are_left_to_the_value_path() {
        let shift = Shift { ms: 1 };
        for line in [
            json!({"delete": {"status": {"id": 1}, "timestamp_ms": "1"}}).to_string(),
            json!({"data": {"id": "1"}}).to_string(),
            r#"{"i\u0064":1}"#.to_owned(),
            "[1,2]".to_owned(),
            "not json".to_owned(),
            r#"{"id":1,"#.to_owned(),
        ] {
            assert_eq!(shift.apply_to_post_bytes(line.as_bytes()), None, "{line}");
        }
    }
}
