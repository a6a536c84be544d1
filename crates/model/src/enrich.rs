//! The `matching_rules` enrichment: splices
//! `"matching_rules":[{"tag":…,"id":N,"id_str":"N"},…]` into a post's original bytes, as
//! PowerTrack delivers it (docs/compatibility.md §8.6), without re-serialising the post.
//!
//! The post's own bytes are kept (key order, number spelling, escapes), so what a client
//! receives is what was ingested plus one key. On the way through, the bytes are made safe
//! for the stream's line framing: U+2028/U+2029/U+0085 become `\u` escapes
//! ([`crate::json`]), leading and trailing whitespace (a `\r\n` line end) is dropped, and a
//! raw CR or LF between tokens (legal JSON whitespace in a pretty-printed post) becomes a
//! space, so the result is always one line.
//!
//! A post that already carries a top-level `matching_rules` key (for example a post
//! recorded from X's own PowerTrack stream and replayed into sluice) has that member
//! removed: those are another system's rules, and a duplicate key would make strict JSON
//! parsers fail or pick either value. Nested posts (`retweeted_status`, `quoted_status`)
//! are not touched. The key is recognised when it is spelled without escape sequences,
//! which is how every producer writes it.

use std::sync::LazyLock;

use memchr::memmem;

use crate::json;

/// One rule that matched, as it appears in `matching_rules`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchedRule<'a> {
    /// The rule id, written both as the number `id` and the string `id_str`.
    pub id: u64,
    /// The rule's tag; `None` is written as `null`.
    pub tag: Option<&'a str>,
}

/// Why a post could not be enriched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnrichError {
    /// The bytes (without surrounding whitespace) do not start with `{` and end with `}`.
    #[error("post is not a JSON object")]
    NotAnObject,
    /// The post carries `matching_rules` and its top level could not be read; the byte
    /// offset is where reading stopped.
    #[error("malformed post JSON near byte {0}")]
    Malformed(usize),
}

const MATCHING_RULES_KEY: &[u8] = b"\"matching_rules\"";

/// The search for [`MATCHING_RULES_KEY`], built once: `memmem::find` would build it again
/// for every post.
static MATCHING_RULES_FINDER: LazyLock<memmem::Finder<'static>> =
    LazyLock::new(|| memmem::Finder::new(MATCHING_RULES_KEY));

/// Appends `post` with `matching_rules` added as its last key to `out` (which is not
/// cleared, so a caller can reuse one buffer or batch several messages in it). No line
/// terminator is written.
///
/// `post` must be a JSON object, such as bytes [`crate::parse_post`] accepted; beyond its
/// outer braces it is only inspected when it already contains a `matching_rules` key. On
/// error `out` is left as it was.
pub fn enrich_into<'r, I>(post: &[u8], rules: I, out: &mut Vec<u8>) -> Result<(), EnrichError>
where
    I: IntoIterator<Item = MatchedRule<'r>>,
{
    enrich_with(post, |out| write_matching_rules(rules, out), out)
}

/// [`enrich_into`] with the `matching_rules` array written by `write_rules`: for a caller
/// that keeps each rule's entry rendered ([`write_matching_rule`],
/// [`write_rendered_matching_rules`]) instead of formatting it for every post.
pub fn enrich_with(
    post: &[u8],
    write_rules: impl FnOnce(&mut Vec<u8>),
    out: &mut Vec<u8>,
) -> Result<(), EnrichError> {
    enrich_knowing(post, true, write_rules, out)
}

/// [`enrich_with`] for a caller that has parsed the post: `may_have_key` false says its
/// top level has no `matching_rules` member (the parse's
/// [`PostView::has_matching_rules`](crate::PostView::has_matching_rules) is false), so the
/// post is not searched for one. The bytes written are the same either way; a `false`
/// for a post that has the member would send it with the member twice.
pub fn enrich_knowing(
    post: &[u8],
    may_have_key: bool,
    write_rules: impl FnOnce(&mut Vec<u8>),
    out: &mut Vec<u8>,
) -> Result<(), EnrichError> {
    let object = trim_ws(post);
    if object.len() < 2 || object[0] != b'{' || object[object.len() - 1] != b'}' {
        return Err(EnrichError::NotAnObject);
    }
    let members = if may_have_key && MATCHING_RULES_FINDER.find(object).is_some() {
        Some(top_level_members(object)?)
    } else {
        None
    };
    let has_members = match members {
        // Only a top-level member is replaced; a nested post's is another post's.
        Some(members) if members.iter().any(|m| is_matching_rules(object, m)) => {
            copy_members_but_matching_rules(object, &members, out)
        }
        _ => {
            let body = trim_ws(&object[..object.len() - 1]);
            copy_forwarded(body, out);
            body.len() > 1
        }
    };
    if has_members {
        out.push(b',');
    }
    out.extend_from_slice(b"\"matching_rules\":");
    write_rules(out);
    out.push(b'}');
    Ok(())
}

/// Appends the `matching_rules` array (`[{"tag":…,"id":N,"id_str":"N"},…]`) to `out`, in
/// the order given. Tags are escaped as JSON strings through [`json::WireFormatter`].
pub fn write_matching_rules<'r, I>(rules: I, out: &mut Vec<u8>)
where
    I: IntoIterator<Item = MatchedRule<'r>>,
{
    out.push(b'[');
    for (i, rule) in rules.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_matching_rule(rule, out);
    }
    out.push(b']');
}

/// Appends one entry of `matching_rules`, `{"tag":…,"id":N,"id_str":"N"}`, to `out`.
pub fn write_matching_rule(rule: MatchedRule<'_>, out: &mut Vec<u8>) {
    // itoa rather than `write!`: this function, mostly the formatting machinery, was 4 % of
    // `sluice match`'s time at 100,000 rules, where most posts match several rules.
    let mut digits = itoa::Buffer::new();
    out.extend_from_slice(b"{\"tag\":");
    json::to_writer(&mut *out, &rule.tag).expect("a string or null always serialises into a Vec");
    let id = digits.format(rule.id).as_bytes();
    out.extend_from_slice(b",\"id\":");
    out.extend_from_slice(id);
    out.extend_from_slice(b",\"id_str\":\"");
    out.extend_from_slice(id);
    out.extend_from_slice(b"\"}");
}

/// Appends the `matching_rules` array made of entries rendered by [`write_matching_rule`],
/// in the order given: the same bytes as [`write_matching_rules`] of those rules.
pub fn write_rendered_matching_rules<'e>(
    entries: impl IntoIterator<Item = &'e [u8]>,
    out: &mut Vec<u8>,
) {
    out.push(b'[');
    for (i, entry) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(entry);
    }
    out.push(b']');
}

/// Copies post bytes for forwarding: separators escaped, raw CR/LF (only possible as
/// whitespace between tokens) turned into spaces.
fn copy_forwarded(bytes: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    json::escape_line_separators(bytes, out);
    let copied = &mut out[start..];
    let mut from = 0;
    while let Some(rel) = memchr::memchr2(b'\r', b'\n', &copied[from..]) {
        copied[from + rel] = b' ';
        from += rel + 1;
    }
}

/// Whether `member` (a range [`top_level_members`] gave) is the `matching_rules` member.
fn is_matching_rules(object: &[u8], member: &std::ops::Range<usize>) -> bool {
    object[member.clone()].starts_with(MATCHING_RULES_KEY)
}

/// Writes `{` and every member of `object` but `matching_rules`, separated by commas (the
/// whitespace between members is not kept); returns whether any was written. The closing
/// `}` is left to the caller.
fn copy_members_but_matching_rules(
    object: &[u8],
    members: &[std::ops::Range<usize>],
    out: &mut Vec<u8>,
) -> bool {
    out.push(b'{');
    let mut written = false;
    for member in members.iter().filter(|m| !is_matching_rules(object, m)) {
        if written {
            out.push(b',');
        }
        copy_forwarded(&object[member.clone()], out);
        written = true;
    }
    written
}

/// Whether the post's top level has a member spelled `"matching_rules"` (what
/// [`enrich_with`] replaces): for the post parse's serde path, which cannot note it as it
/// reads (see [`crate::PostView::has_matching_rules`]). False for bytes that are not a
/// readable object.
pub(crate) fn has_matching_rules_member(post: &[u8]) -> bool {
    let object = trim_ws(post);
    object.first() == Some(&b'{')
        && object.last() == Some(&b'}')
        && MATCHING_RULES_FINDER.find(object).is_some()
        && top_level_members(object)
            .is_ok_and(|members| members.iter().any(|m| is_matching_rules(object, m)))
}

/// The location members a `scrub_geo` compliance event removes from a user's posts.
const LOCATION_KEYS: [&[u8]; 3] = [b"\"geo\"", b"\"coordinates\"", b"\"place\""];

/// What compliance events received since a post was logged change in it when it is sent
/// again (backfill, recovery, Replay); see [`compliance_rewrite`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ComplianceRewrite {
    /// `scrub_geo`: the top-level `geo`, `coordinates` and `place` become `null`.
    pub scrub_location: bool,
    /// `status_withheld`: the post's `withheld_in_countries`.
    pub withheld_in: Option<Vec<String>>,
    /// `user_withheld`: the author's (`user.withheld_in_countries`).
    pub user_withheld_in: Option<Vec<String>>,
}

const WITHHELD_KEY: &[u8] = b"\"withheld_in_countries\"";
const USER_KEY: &[u8] = b"\"user\"";

/// `post` as `rewrite` says, everything else as it was (made line-safe, as by
/// [`enrich_into`]): location members set to `null`, and `withheld_in_countries` set (its
/// member replaced, or added last) on the post or on its `user` object. Only the top level
/// and the author are touched: nested posts are other users' posts.
pub fn compliance_rewrite(
    post: &[u8],
    rewrite: &ComplianceRewrite,
) -> Result<Vec<u8>, EnrichError> {
    let object = trim_ws(post);
    if object.len() < 2 || object[0] != b'{' || object[object.len() - 1] != b'}' {
        return Err(EnrichError::NotAnObject);
    }
    let mut out = Vec::with_capacity(object.len() + 64);
    let mut withheld_written = false;
    out.push(b'{');
    for (n, member) in top_level_members(object)?.into_iter().enumerate() {
        if n > 0 {
            out.push(b',');
        }
        let bytes = &object[member];
        let location = LOCATION_KEYS.iter().find(|key| bytes.starts_with(key));
        if let (true, Some(key)) = (rewrite.scrub_location, location) {
            out.extend_from_slice(key);
            out.extend_from_slice(b":null");
        } else if let (Some(countries), true) =
            (&rewrite.withheld_in, bytes.starts_with(WITHHELD_KEY))
        {
            write_countries(countries, &mut out);
            withheld_written = true;
        } else if let (Some(countries), true) =
            (&rewrite.user_withheld_in, bytes.starts_with(USER_KEY))
        {
            write_user_withheld(bytes, countries, &mut out)?;
        } else {
            copy_forwarded(bytes, &mut out);
        }
    }
    // An empty list only replaces one the post carries: a post withheld nowhere has none.
    if let (Some(countries), false) = (&rewrite.withheld_in, withheld_written)
        && !countries.is_empty()
    {
        if out.len() > 1 {
            out.push(b',');
        }
        write_countries(countries, &mut out);
    }
    out.push(b'}');
    Ok(out)
}

/// Writes the member `"withheld_in_countries":[…]`.
fn write_countries(countries: &[String], out: &mut Vec<u8>) {
    out.extend_from_slice(WITHHELD_KEY);
    out.push(b':');
    json::to_writer(&mut *out, countries).expect("strings always serialise into a Vec");
}

/// Writes the `user` member `member` with its object's `withheld_in_countries` set; a
/// `user` that is not an object (`null`) is written as it was.
fn write_user_withheld(
    member: &[u8],
    countries: &[String],
    out: &mut Vec<u8>,
) -> Result<(), EnrichError> {
    let colon = skip_ws(member, USER_KEY.len());
    let value = trim_ws(&member[colon + 1..]);
    if value.first() != Some(&b'{') {
        copy_forwarded(member, out);
        return Ok(());
    }
    out.extend_from_slice(USER_KEY);
    out.push(b':');
    let user = ComplianceRewrite {
        withheld_in: Some(countries.to_vec()),
        ..ComplianceRewrite::default()
    };
    out.extend_from_slice(&compliance_rewrite(value, &user)?);
    Ok(())
}

/// The byte ranges (`"key"` through the end of the value) of the members of a JSON object.
/// `object` starts with `{` and ends with `}`.
fn top_level_members(object: &[u8]) -> Result<Vec<std::ops::Range<usize>>, EnrichError> {
    let mut members = Vec::new();
    let mut pos = skip_ws(object, 1);
    if object.get(pos) == Some(&b'}') {
        return if pos == object.len() - 1 {
            Ok(members)
        } else {
            Err(EnrichError::Malformed(pos))
        };
    }
    loop {
        if object.get(pos) != Some(&b'"') {
            return Err(EnrichError::Malformed(pos));
        }
        let start = pos;
        pos = skip_ws(object, skip_string(object, pos)?);
        if object.get(pos) != Some(&b':') {
            return Err(EnrichError::Malformed(pos));
        }
        pos = skip_ws(object, pos + 1);
        let end = skip_value(object, pos)?;
        members.push(start..end);
        pos = skip_ws(object, end);
        match object.get(pos) {
            Some(b',') => pos = skip_ws(object, pos + 1),
            Some(b'}') if pos == object.len() - 1 => return Ok(members),
            _ => return Err(EnrichError::Malformed(pos)),
        }
    }
}

/// `bytes[pos]` is `"`; returns the offset just past the closing quote.
fn skip_string(bytes: &[u8], pos: usize) -> Result<usize, EnrichError> {
    let mut i = pos + 1;
    loop {
        let rel = memchr::memchr2(b'"', b'\\', bytes.get(i..).unwrap_or_default())
            .ok_or(EnrichError::Malformed(pos))?;
        let at = i + rel;
        if bytes[at] == b'"' {
            return Ok(at + 1);
        }
        i = at + 2;
    }
}

/// Returns the offset just past the value starting at `pos`.
fn skip_value(bytes: &[u8], pos: usize) -> Result<usize, EnrichError> {
    match bytes.get(pos) {
        Some(b'"') => skip_string(bytes, pos),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut i = pos;
            while let Some(&b) = bytes.get(i) {
                match b {
                    b'"' => {
                        i = skip_string(bytes, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            Err(EnrichError::Malformed(pos))
        }
        Some(_) => {
            let len = bytes[pos..]
                .iter()
                .position(|&b| matches!(b, b',' | b'}' | b']') || is_ws(b))
                .unwrap_or(bytes.len() - pos);
            if len == 0 {
                Err(EnrichError::Malformed(pos))
            } else {
                Ok(pos + len)
            }
        }
        None => Err(EnrichError::Malformed(pos)),
    }
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn skip_ws(bytes: &[u8], mut pos: usize) -> usize {
    while bytes.get(pos).is_some_and(|&b| is_ws(b)) {
        pos += 1;
    }
    pos
}

fn trim_ws(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| !is_ws(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| !is_ws(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn countries(list: &[&str]) -> Option<Vec<String>> {
        Some(list.iter().map(|c| (*c).to_owned()).collect())
    }

    #[test]
    fn withheld_countries_are_set_on_the_post_and_on_its_author_only() {
        let post =
            br#"{"id":1,"user":{"id":5, "name":"a"},"text":"t","quoted_status":{"user":{"id":6}}}"#;
        let rewrite = ComplianceRewrite {
            withheld_in: countries(&["DE", "FR"]),
            user_withheld_in: countries(&["TR"]),
            ..ComplianceRewrite::default()
        };
        let out = compliance_rewrite(post, &rewrite).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            value["withheld_in_countries"],
            serde_json::json!(["DE", "FR"])
        );
        assert_eq!(
            value["user"]["withheld_in_countries"],
            serde_json::json!(["TR"])
        );
        assert_eq!(value["user"]["name"], "a");
        assert!(
            value["quoted_status"]["user"]
                .get("withheld_in_countries")
                .is_none()
        );
        assert_eq!(value["text"], "t");
    }

    #[test]
    fn a_withheld_list_already_there_is_replaced_not_repeated() {
        let post = br#"{"id":1,"withheld_in_countries":["XY"],"user":{"id":5,"withheld_in_countries":[]}}"#;
        let rewrite = ComplianceRewrite {
            withheld_in: countries(&[]),
            user_withheld_in: countries(&["DE"]),
            ..ComplianceRewrite::default()
        };
        let out = String::from_utf8(compliance_rewrite(post, &rewrite).unwrap()).unwrap();
        assert_eq!(out.matches("withheld_in_countries").count(), 2, "{out}");
        let value: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value["withheld_in_countries"], serde_json::json!([]));
        assert_eq!(
            value["user"]["withheld_in_countries"],
            serde_json::json!(["DE"])
        );
        // No rewrite asked: the bytes come back as they were.
        let same = compliance_rewrite(post, &ComplianceRewrite::default()).unwrap();
        assert_eq!(same, post);
        // A post with no author object keeps its `user` as it was.
        let no_user = br#"{"id":1,"user":null}"#;
        let out = compliance_rewrite(no_user, &rewrite).unwrap();
        // An empty list is not added where there was none: withheld nowhere.
        assert_eq!(out, br#"{"id":1,"user":null}"#);
        let empty = compliance_rewrite(b"{}", &rewrite).unwrap();
        assert_eq!(empty, b"{}");
        let some = ComplianceRewrite {
            withheld_in: countries(&["XY"]),
            ..ComplianceRewrite::default()
        };
        assert_eq!(
            compliance_rewrite(b"{ }", &some).unwrap(),
            br#"{"withheld_in_countries":["XY"]}"#
        );
    }

    #[test]
    fn every_rewrite_at_once_touches_only_its_own_members() {
        let post = b"{\"id\":1,\"user_x\":{\"id\":9},\r\n \"user\" :\r\n {\"id\":5} ,\"geo\":{\"a\":1},\"place\" : {\"b\":2},\"quoted_status\":{\"user\":{\"id\":6},\"geo\":{\"c\":3}}}";
        let rewrite = ComplianceRewrite {
            scrub_location: true,
            withheld_in: countries(&["DE"]),
            user_withheld_in: countries(&["TR"]),
        };
        let out = compliance_rewrite(post, &rewrite).unwrap();
        assert!(!out.contains(&b'\n') && !out.contains(&b'\r'));
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["user_x"], serde_json::json!({"id": 9}));
        assert_eq!(
            value["user"],
            serde_json::json!({"id": 5, "withheld_in_countries": ["TR"]})
        );
        assert!(value["geo"].is_null() && value["place"].is_null());
        assert_eq!(value["withheld_in_countries"], serde_json::json!(["DE"]));
        assert_eq!(
            value["quoted_status"],
            serde_json::json!({"user": {"id": 6}, "geo": {"c": 3}})
        );
        // An empty author object gets the one member.
        let out = compliance_rewrite(br#"{"user":{}}"#, &rewrite).unwrap();
        assert_eq!(
            out,
            br#"{"user":{"withheld_in_countries":["TR"]},"withheld_in_countries":["DE"]}"#
        );
    }

    #[test]
    fn location_is_scrubbed_at_the_top_level_only() {
        let post = br#" {"id":1, "geo" : {"type":"Point"},"coordinates":{"coordinates":[1,2]},"place":{"name":"x"},"text":"geo","quoted_status":{"place":{"name":"y"}}} "#;
        let scrub = ComplianceRewrite {
            scrub_location: true,
            ..ComplianceRewrite::default()
        };
        let scrubbed = compliance_rewrite(post, &scrub).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&scrubbed).unwrap();
        assert!(
            value["geo"].is_null() && value["coordinates"].is_null() && value["place"].is_null()
        );
        assert_eq!(value["text"], "geo");
        assert_eq!(value["quoted_status"]["place"]["name"], "y");
        assert!(compliance_rewrite(b"[1]", &scrub).is_err());
    }

    fn enrich(post: &str, rules: &[MatchedRule<'_>]) -> String {
        let mut out = Vec::new();
        enrich_into(post.as_bytes(), rules.iter().copied(), &mut out).expect("enriches");
        String::from_utf8(out).expect("UTF-8 in, UTF-8 out")
    }

    const ONE: &[MatchedRule<'static>] = &[MatchedRule {
        id: 1_128_017_341_835_464_704,
        tag: None,
    }];

    #[test]
    fn appends_the_key_before_the_closing_brace() {
        assert_eq!(
            enrich(r#"{"id":1,"text":"hi"}"#, ONE),
            r#"{"id":1,"text":"hi","matching_rules":[{"tag":null,"id":1128017341835464704,"id_str":"1128017341835464704"}]}"#
        );
    }

    #[test]
    fn several_rules_keep_their_order_and_tags_are_escaped() {
        let rules = [
            MatchedRule {
                id: 7,
                tag: Some("say \"hi\"\\\n\u{2028}"),
            },
            MatchedRule { id: 9, tag: None },
        ];
        let out = enrich(r#"{"id":1}"#, &rules);
        assert_eq!(
            out,
            r#"{"id":1,"matching_rules":[{"tag":"say \"hi\"\\\n\u2028","id":7,"id_str":"7"},{"tag":null,"id":9,"id_str":"9"}]}"#
        );
        let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
        assert_eq!(v["matching_rules"][0]["tag"], "say \"hi\"\\\n\u{2028}");
    }

    #[test]
    fn rendered_entries_make_the_same_bytes_as_the_rules() {
        let rules = [
            MatchedRule {
                id: u64::MAX,
                tag: Some("say \"hi\"\\\n\u{2028}\u{85}é"),
            },
            MatchedRule { id: 0, tag: None },
            MatchedRule {
                id: 42,
                tag: Some(""),
            },
        ];
        let entries: Vec<Vec<u8>> = rules
            .iter()
            .map(|&rule| {
                let mut entry = Vec::new();
                write_matching_rule(rule, &mut entry);
                entry
            })
            .collect();
        for post in [r#"{"id":1}"#, "{}", r#"{"id":1,"matching_rules":[]}"#] {
            let mut rendered = Vec::new();
            enrich_with(
                post.as_bytes(),
                |out| write_rendered_matching_rules(entries.iter().map(Vec::as_slice), out),
                &mut rendered,
            )
            .unwrap();
            assert_eq!(String::from_utf8(rendered).unwrap(), enrich(post, &rules));
        }
    }

    #[test]
    fn trailing_crlf_and_whitespace_are_dropped() {
        assert_eq!(
            enrich("  {\"id\":1 }\r\n", ONE),
            r#"{"id":1,"matching_rules":[{"tag":null,"id":1128017341835464704,"id_str":"1128017341835464704"}]}"#
        );
    }

    #[test]
    fn empty_object_gets_no_leading_comma() {
        assert_eq!(
            enrich(
                "{ \n }",
                &[MatchedRule {
                    id: 3,
                    tag: Some("t")
                }]
            ),
            r#"{"matching_rules":[{"tag":"t","id":3,"id_str":"3"}]}"#
        );
    }

    #[test]
    fn an_existing_matching_rules_member_is_replaced() {
        let post = r#"{"matching_rules":[{"tag":"x","id":5,"id_str":"5"}], "id":1, "retweeted_status":{"matching_rules":[]},"t":"a,}\"b"}"#;
        assert_eq!(
            enrich(post, &[MatchedRule { id: 2, tag: None }]),
            r#"{"id":1,"retweeted_status":{"matching_rules":[]},"t":"a,}\"b","matching_rules":[{"tag":null,"id":2,"id_str":"2"}]}"#
        );
        assert_eq!(
            enrich(r#"{"id":1,"matching_rules":null}"#, &[]),
            r#"{"id":1,"matching_rules":[]}"#
        );
        assert_eq!(
            enrich(
                r#"{"matching_rules":[]}"#,
                &[MatchedRule { id: 2, tag: None }]
            ),
            r#"{"matching_rules":[{"tag":null,"id":2,"id_str":"2"}]}"#
        );
    }

    #[test]
    fn a_nested_matching_rules_leaves_the_post_as_it_was() {
        // Found by the search, but not a top-level member: the bytes are kept as they
        // came, whitespace included, as for any post without the key.
        let post = r#"{"id":1, "quoted_status":{"matching_rules":[]} }"#;
        let want = r#"{"id":1, "quoted_status":{"matching_rules":[]},"matching_rules":[]}"#;
        assert_eq!(enrich(post, &[]), want);
        // A caller whose parse found no top-level key writes the same bytes unsearched.
        let view = crate::parse_post(post.as_bytes()).expect("a post");
        assert!(!view.has_matching_rules);
        let mut out = Vec::new();
        enrich_knowing(
            post.as_bytes(),
            false,
            |out| write_matching_rules([], out),
            &mut out,
        )
        .expect("enriches");
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }

    #[test]
    fn the_text_matching_rules_inside_a_string_is_not_a_key() {
        let post = r#"{"text":"\"matching_rules\" is a key","id":1}"#;
        assert_eq!(
            enrich(post, &[MatchedRule { id: 2, tag: None }]),
            r#"{"text":"\"matching_rules\" is a key","id":1,"matching_rules":[{"tag":null,"id":2,"id_str":"2"}]}"#
        );
    }

    #[test]
    fn forwarded_bytes_are_escaped_and_kept_on_one_line() {
        let post = "{\"text\":\"a\u{2028}b\u{85}\",\r\n  \"n\": 1.50e3}";
        let out = enrich(post, &[]);
        assert_eq!(
            out,
            r#"{"text":"a\u2028b\u0085",    "n": 1.50e3,"matching_rules":[]}"#
        );
        let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
        assert_eq!(v["text"], "a\u{2028}b\u{85}");
    }

    #[test]
    fn output_is_appended_and_left_alone_on_error() {
        let mut out = b"prev\r\n".to_vec();
        enrich_into(b"{\"id\":1}", [MatchedRule { id: 4, tag: None }], &mut out).expect("enriches");
        assert!(out.starts_with(b"prev\r\n{\"id\":1,"));
        let before = out.clone();
        assert_eq!(
            enrich_into(b"[1,2]", [], &mut out),
            Err(EnrichError::NotAnObject)
        );
        assert_eq!(
            enrich_into(b"{\"matching_rules\":[1,", [], &mut out),
            Err(EnrichError::NotAnObject)
        );
        assert!(matches!(
            enrich_into(b"{\"matching_rules\":[1,}", [], &mut out),
            Err(EnrichError::Malformed(_))
        ));
        assert_eq!(out, before);
    }

    #[test]
    fn enriched_posts_still_parse_as_posts() {
        let post = r#"{"id_str":"20","text":"hello","matching_rules":[{"tag":"old"}]}"#;
        let mut out = Vec::new();
        enrich_into(
            post.as_bytes(),
            [MatchedRule {
                id: 1,
                tag: Some("new"),
            }],
            &mut out,
        )
        .expect("enriches");
        let view = crate::parse_post(&out).expect("still a post");
        assert_eq!(view.id(), Some(20));
        let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(v["matching_rules"][0]["tag"], "new");
        assert_eq!(v.as_object().map(|o| o.len()), Some(3));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;
        use serde_json::{Map, Value};

        fn leaf() -> impl Strategy<Value = Value> {
            prop_oneof![
                any::<i64>().prop_map(Value::from),
                any::<bool>().prop_map(Value::from),
                Just(Value::Null),
                "[a-z\u{85}\u{2028}\u{2029}\"\\\\ ,{}\\[\\]:\n\r\t€]{0,12}".prop_map(Value::from),
            ]
        }

        fn value() -> impl Strategy<Value = Value> {
            leaf().prop_recursive(2, 16, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                    prop::collection::vec(("[a-z_]{1,5}|matching_rules", inner), 0..4)
                        .prop_map(|kv| Value::Object(kv.into_iter().collect())),
                ]
            })
        }

        proptest! {
            /// Whatever the post, the result is one line of valid JSON equal to the post
            /// without its own top-level `matching_rules`, plus ours.
            #[test]
            fn enriched_is_the_post_plus_our_key(
                members in prop::collection::vec(("[a-z_]{1,5}|matching_rules", value()), 0..6),
                pretty in any::<bool>(),
                tag in proptest::option::of("[a-z\u{2028}\"]{0,5}"),
            ) {
                let post: Map<String, Value> = members.into_iter().collect();
                let bytes = if pretty {
                    serde_json::to_vec_pretty(&post)
                } else {
                    serde_json::to_vec(&post)
                }
                .expect("serialises");
                let mut out = Vec::new();
                let rules = [MatchedRule { id: 42, tag: tag.as_deref() }];
                enrich_into(&bytes, rules, &mut out).expect("enriches");

                prop_assert!(!out.contains(&b'\n') && !out.contains(&b'\r'));
                prop_assert!(!json::has_line_separators(&out));
                let got: Map<String, Value> = serde_json::from_slice(&out).expect("valid JSON");
                let mut want = post.clone();
                want.remove("matching_rules");
                want.insert(
                    "matching_rules".into(),
                    serde_json::json!([{"tag": tag, "id": 42, "id_str": "42"}]),
                );
                prop_assert_eq!(got, want);
                // What the post's parse says of the key spares the search, not a byte. (A
                // post needs an id to parse.)
                let mut with_id = post.clone();
                with_id.insert("id".into(), Value::from(7));
                let bytes = if pretty {
                    serde_json::to_vec_pretty(&with_id)
                } else {
                    serde_json::to_vec(&with_id)
                }
                .expect("serialises");
                let view = crate::parse_post(&bytes).expect("a post");
                let (mut searched, mut known) = (Vec::new(), Vec::new());
                enrich_into(&bytes, rules, &mut searched).expect("enriches");
                let may_have_key = view.has_matching_rules;
                prop_assert_eq!(may_have_key, with_id.contains_key("matching_rules"));
                enrich_knowing(&bytes, may_have_key, |out| write_matching_rules(rules, out), &mut known)
                    .expect("enriches");
                prop_assert_eq!(known, searched);
            }
        }
    }
}
