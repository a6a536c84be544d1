//! Edit metadata for posts that lack it.
//!
//! X gives every post created since edits began (2022-09-29) its edit metadata, edited or
//! not: `edit_history` (the ids of every version, as strings, oldest first),
//! `edit_controls` (how many edits remain and until when) and `editable` (whether the post
//! could be edited at all). Clients written for X read them, so a post ingested without
//! them (a firehose of one's own, an older recording) is given, once at ingest, the values
//! X gives a post never edited (docs/compliance.md, "Edits"). A post that carries
//! `edit_history` (even `null`) is left exactly as it came: its versions are its producer's
//! to state.

use std::io::Write as _;
use std::sync::LazyLock;

use memchr::memmem;
use serde::Deserialize;

use crate::ids::lenient_u64;
use crate::ingest_line::parse_created_at;
use crate::post::PostView;

/// How long after its creation a post may be edited.
pub const EDIT_WINDOW_MS: u64 = 30 * 60 * 1000;
/// How many times a post may be edited.
pub const EDITS: u32 = 5;

/// `raw` with the edit metadata of an unedited post added as its last members, when the
/// post (`view`, the parse of `raw`) has no `edit_history` of its own; `None` when it has,
/// or when it has no id or creation time to build the metadata from.
pub fn with_unedited_metadata(raw: &[u8], view: &PostView<'_>) -> Option<Vec<u8>> {
    if view.edit_history.is_some() {
        return None;
    }
    let id = view.id()?;
    let created_ms = match view.timestamp_ms {
        Some(ms) => ms,
        None => {
            let at = parse_created_at(view.created_at.as_deref()?)?;
            u64::try_from(at.assume_utc().unix_timestamp()).ok()? * 1000
        }
    };
    let object = raw.trim_ascii();
    let body = object.strip_suffix(b"}")?.trim_ascii_end();
    let mut out = Vec::with_capacity(object.len() + 160);
    out.extend_from_slice(body);
    if body != b"{" {
        out.push(b',');
    }
    write!(
        out,
        "\"edit_history\":{{\"initial_tweet_id\":\"{id}\",\"edit_tweet_ids\":[\"{id}\"]}},\
         \"edit_controls\":{{\"edits_remaining\":{EDITS},\"editable_until_ms\":{}}},\
         \"editable\":{}}}",
        created_ms + EDIT_WINDOW_MS,
        editable(view),
    )
    .expect("writing to a Vec");
    Some(out)
}

/// Whether X would let the post be edited: not a Retweet, not a reply to someone else
/// (a self-thread may be edited), not a nullcast (promoted-only) post.
pub fn editable(view: &PostView<'_>) -> bool {
    let author = view.user.as_ref().and_then(|u| u.id_str.or(u.id));
    let replies_to_other = view.reply_to_user().is_some_and(|to| Some(to) != author);
    let nullcast = view.scopes.as_ref().and_then(|s| s.followers) == Some(false);
    view.retweeted_status.is_none() && !replies_to_other && !nullcast
}

/// The versions of an edited post, as its own `edit_history` states them: every id, oldest
/// first (the post itself last). `None` for a post that was never edited (its history
/// names only itself, or it has none), which is nearly every post: a byte search rules
/// those out before anything is parsed, so the pipeline can ask this of every post it
/// delivers (docs/compliance.md, "Edits").
pub fn edit_versions(raw: &[u8]) -> Option<Vec<u64>> {
    const KEY: &[u8] = b"\"edit_tweet_ids\"";
    // Built once: `memmem::find` would build the searcher again for every post.
    static FINDER: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(KEY));
    // A list of one id (no comma) is an unedited post's. The root's list may come after a
    // nested post's (a Quote's `quoted_status`), so every list is looked at before the
    // post is ruled out.
    let has_several_ids = |at: usize| {
        let rest = &raw[at + KEY.len()..];
        memchr::memchr(b']', rest).is_some_and(|end| memchr::memchr(b',', &rest[..end]).is_some())
    };
    if !FINDER.find_iter(raw).any(has_several_ids) {
        return None;
    }
    #[derive(Deserialize)]
    struct Root {
        edit_history: Option<History>,
    }
    #[derive(Deserialize)]
    struct History {
        edit_tweet_ids: Vec<IdString>,
    }
    #[derive(Deserialize)]
    struct IdString(#[serde(deserialize_with = "lenient_u64")] Option<u64>);
    let root: Root = serde_json::from_slice(raw).ok()?;
    let ids: Option<Vec<u64>> = root
        .edit_history?
        .edit_tweet_ids
        .into_iter()
        .map(|i| i.0)
        .collect();
    ids.filter(|ids| ids.len() > 1)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::parse_post;

    fn added(raw: &str) -> Option<Value> {
        let view = parse_post(raw.as_bytes()).unwrap();
        with_unedited_metadata(raw.as_bytes(), &view).map(|b| {
            // Still a post to every reading: no member twice.
            parse_post(&b).expect("a post still");
            serde_json::from_slice(&b).unwrap()
        })
    }

    const CREATED: &str = "Wed Oct 10 20:19:24 +0000 2018";
    const CREATED_MS: u64 = 1_539_202_764_000;

    #[test]
    fn a_post_without_edit_history_gets_an_unedited_posts_metadata() {
        let post = format!(r#"{{"created_at":"{CREATED}","id":7,"id_str":"7","text":"hi"}}"#);
        let got = added(&post).expect("metadata added");
        assert_eq!(got["text"], "hi");
        assert_eq!(
            got["edit_history"],
            serde_json::json!({"initial_tweet_id":"7","edit_tweet_ids":["7"]})
        );
        assert_eq!(
            got["edit_controls"],
            serde_json::json!({"edits_remaining":5,"editable_until_ms":CREATED_MS + EDIT_WINDOW_MS})
        );
        assert_eq!(got["editable"], true);
    }

    #[test]
    fn timestamp_ms_wins_over_created_at_and_whitespace_is_kept_valid() {
        let post =
            format!("  {{\"created_at\":\"{CREATED}\",\"id\":7,\"timestamp_ms\":\"1000\" }}\r\n");
        let got = added(&post).unwrap();
        assert_eq!(
            got["edit_controls"]["editable_until_ms"],
            1000 + EDIT_WINDOW_MS
        );
    }

    #[test]
    fn a_post_with_edit_history_is_left_alone() {
        let post = format!(
            r#"{{"created_at":"{CREATED}","id":9,"edit_history":{{"initial_tweet_id":"8","edit_tweet_ids":["8","9"]}}}}"#
        );
        assert!(added(&post).is_none());
        // A nested post's history is not the root's.
        let retweet = format!(
            r#"{{"created_at":"{CREATED}","id":10,"retweeted_status":{{"id":9,"edit_history":{{"initial_tweet_id":"9","edit_tweet_ids":["9"]}}}}}}"#
        );
        let got = added(&retweet).expect("the root has none");
        assert_eq!(got["edit_history"]["initial_tweet_id"], "10");
        // A null history is left as it came too: adding one would give the post the member
        // twice, and no parse would read it back (replay would then miss what live matched).
        let null = format!(r#"{{"created_at":"{CREATED}","id":11,"edit_history":null}}"#);
        assert!(added(&null).is_none());
        let view = crate::parse_post(null.as_bytes()).unwrap();
        assert!(view.edit_history.is_some());
    }

    #[test]
    fn retweets_replies_to_others_and_nullcasts_are_not_editable() {
        let cases = [
            (r#""retweeted_status":{"id":1}"#, false),
            (r#""in_reply_to_user_id":5,"user":{"id":6}"#, false),
            (
                r#""in_reply_to_user_id_str":"6","user":{"id_str":"6"}"#,
                true,
            ),
            (r#""scopes":{"followers":false}"#, false),
            (r#""is_quote_status":true,"quoted_status":{"id":1}"#, true),
        ];
        for (members, want) in cases {
            let post = format!(r#"{{"created_at":"{CREATED}","id":12,{members}}}"#);
            assert_eq!(added(&post).unwrap()["editable"], want, "{post}");
        }
    }

    #[test]
    fn the_versions_of_an_edited_post_are_read_from_its_own_history() {
        let edited =
            r#"{"id":9,"edit_history":{"initial_tweet_id":"8","edit_tweet_ids":["7","8","9"]}}"#;
        assert_eq!(edit_versions(edited.as_bytes()), Some(vec![7, 8, 9]));
        let unedited = r#"{"id":9,"edit_history":{"initial_tweet_id":"9","edit_tweet_ids":["9"]}}"#;
        assert_eq!(edit_versions(unedited.as_bytes()), None);
        assert_eq!(edit_versions(br#"{"id":9,"text":"no history"}"#), None);
        // A nested post's history is not the root's.
        let quoting = r#"{"id":10,"quoted_status":{"id":9,"edit_history":{"initial_tweet_id":"8","edit_tweet_ids":["8","9"]}},"edit_history":{"initial_tweet_id":"10","edit_tweet_ids":["10"]}}"#;
        assert_eq!(edit_versions(quoting.as_bytes()), None);
        // An edited Quote of an unedited post: the nested history comes first in the bytes
        // and has one id; the root's own still counts.
        let edited_quote = r#"{"id":12,"quoted_status":{"id":9,"edit_history":{"initial_tweet_id":"9","edit_tweet_ids":["9"]}},"edit_history":{"initial_tweet_id":"11","edit_tweet_ids":["11","12"]}}"#;
        assert_eq!(edit_versions(edited_quote.as_bytes()), Some(vec![11, 12]));
        // Ids that are not strings of digits make no versions.
        let bad = r#"{"id":9,"edit_history":{"edit_tweet_ids":["x","9"]}}"#;
        assert_eq!(edit_versions(bad.as_bytes()), None);
    }

    #[test]
    fn without_a_time_nothing_is_added() {
        assert!(added(r#"{"id":1}"#).is_none());
        assert!(added(r#"{"id":1,"created_at":"yesterday"}"#).is_none());
    }
}
