//! A borrowed view of an X post in native (v1.1 enriched) JSON, holding only what matching
//! needs.
//!
//! Everything except the id is optional: posts from other platforms or hand-written test
//! posts often lack fields, and X adds fields over time, so unknown fields are skipped and
//! missing ones read as absent. Strings are `Cow` so that text without escapes is borrowed
//! straight from the input bytes.

use std::borrow::Cow;

use serde::Deserialize;

use crate::ids;

mod scan;

#[cfg(test)]
mod differential;

/// Why a post could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// The bytes are not a JSON object of the expected shape.
    #[error("invalid post JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Neither `id_str` nor `id` holds a 64-bit unsigned integer.
    #[error("post has no numeric id/id_str")]
    MissingId,
    /// The JSON value is not an object (serde would otherwise read an array positionally
    /// into the fields, so `[123]` would pass as a post with id 123).
    #[error("post is not a JSON object")]
    NotAnObject,
}

/// Parses one post. The post must be a JSON object with a numeric `id` or `id_str`.
///
/// The result (view or error text) is always the one [`parse_post_with_serde`] gives; most
/// posts are read by a faster hand-written pass (`scan`) that hands anything unusual,
/// and every error, to serde_json.
pub fn parse_post(bytes: &[u8]) -> Result<PostView<'_>, PostError> {
    check_object(bytes)?;
    // Valid UTF-8 (every real post) is checked once, in bulk and with SIMD, so that each
    // borrowed string need not be.
    let fast = simdutf8::basic::from_utf8(bytes).ok().map(scan::parse);
    let post = match fast {
        Some(Ok(post)) => post,
        Some(Err(scan::Bail)) | None => read_with_serde(bytes)?,
    };
    with_id(post)
}

/// [`parse_post`] done by serde_json alone: the reference the fast path is held to (by the
/// differential tests and the `post_parser` fuzz target), and the reader of every post the
/// fast path hands back.
pub fn parse_post_with_serde(bytes: &[u8]) -> Result<PostView<'_>, PostError> {
    check_object(bytes)?;
    with_id(read_with_serde(bytes)?)
}

/// Refuses input whose first non-blank byte is not `{`.
fn check_object(bytes: &[u8]) -> Result<(), PostError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first.is_some_and(|&b| b != b'{') {
        return Err(PostError::NotAnObject);
    }
    Ok(())
}

/// Refuses a post without a numeric id.
fn with_id(post: PostView<'_>) -> Result<PostView<'_>, PostError> {
    if post.id().is_none() {
        return Err(PostError::MissingId);
    }
    Ok(post)
}

/// The serde_json reading of a post.
fn read_with_serde(bytes: &[u8]) -> Result<PostView<'_>, serde_json::Error> {
    // Valid UTF-8 is read as text, borrowing strings without checking each again; anything
    // else goes through the byte reader, which reports the error (or accepts invalid bytes
    // inside skipped strings, as it always has).
    let mut post: PostView<'_> = match std::str::from_utf8(bytes) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(bytes),
    }?;
    // The fast path notes the member as it passes it; here it is looked for afterwards.
    post.has_matching_rules = crate::enrich::has_matching_rules_member(bytes);
    Ok(post)
}

/// Just the ids of a post, read as [`PostView::id`] reads them.
#[derive(Deserialize)]
struct Ids {
    #[serde(default, deserialize_with = "ids::lenient_u64")]
    id: Option<u64>,
    #[serde(default, deserialize_with = "ids::lenient_u64")]
    id_str: Option<u64>,
}

/// The id of a post already accepted (`id_str`, else `id`), skipping every other field
/// without building it: for posts read back from storage, which keeps the bytes but not
/// the id (the de-duplication window rebuilt at start, replay of volume streams). Posts
/// on their way from ingest carry the id [`parse_post`] read there instead. Skipping
/// still reads the whole post: about 7 µs for a 4.4 KB post (some 600 MB/s, measured with
/// serde_json in a release build on a busy 2-core machine).
pub fn read_post_id(bytes: &[u8]) -> Option<u64> {
    let ids: Ids = serde_json::from_slice(bytes).ok()?;
    ids.id_str.or(ids.id)
}

/// The fields of a post that matching reads. Nested posts (Retweet originals, quoted posts)
/// use the same type.
///
/// Large nested objects are boxed so the view stays small (under 400 bytes instead of over
/// 1 KB): the deserializer builds each struct on the stack and moves it into place, so a big
/// view costs copies per post and per nested post, while absent parts cost nothing boxed.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PostView<'a> {
    /// `id` as a number (or string); exact only when it fits in 64 bits.
    #[serde(deserialize_with = "ids::lenient_u64")]
    pub id: Option<u64>,
    /// `id_str`, the authoritative id.
    #[serde(deserialize_with = "ids::lenient_u64")]
    pub id_str: Option<u64>,
    /// `created_at` in X's format (`Wed Oct 10 20:19:24 +0000 2018`).
    #[serde(borrow)]
    pub created_at: Option<Cow<'a, str>>,
    /// `timestamp_ms`, epoch milliseconds (a string in X's payloads).
    #[serde(deserialize_with = "ids::lenient_u64")]
    pub timestamp_ms: Option<u64>,
    /// `text` (possibly truncated to 140 characters; see [`PostView::full_text`]).
    #[serde(borrow)]
    pub text: Option<Cow<'a, str>>,
    /// `full_text`, as some API versions name the untruncated text.
    #[serde(borrow)]
    pub full_text: Option<Cow<'a, str>>,
    /// `truncated`.
    pub truncated: Option<bool>,
    /// `extended_tweet`, present on posts longer than 140 characters.
    #[serde(borrow)]
    pub extended_tweet: Option<Box<ExtendedTweet<'a>>>,
    /// `entities` (for extended posts, only those of the truncated `text`).
    #[serde(borrow)]
    pub entities: Option<Box<Entities<'a>>>,
    /// `extended_entities` (all media).
    #[serde(borrow)]
    pub extended_entities: Option<Box<Entities<'a>>>,
    /// `source`, an HTML anchor naming the client application.
    #[serde(borrow)]
    pub source: Option<Cow<'a, str>>,
    /// `lang`, a BCP-47 code or `und`.
    #[serde(borrow)]
    pub lang: Option<Cow<'a, str>>,
    /// `user`, the author.
    #[serde(borrow)]
    pub user: Option<Box<User<'a>>>,
    /// `in_reply_to_status_id` (or `_str`): set on replies.
    #[serde(deserialize_with = "ids::lenient_u64")]
    pub in_reply_to_status_id: Option<u64>,
    /// `in_reply_to_status_id_str`.
    #[serde(deserialize_with = "ids::lenient_u64")]
    pub in_reply_to_status_id_str: Option<u64>,
    /// `in_reply_to_user_id`.
    #[serde(deserialize_with = "ids::lenient_u64")]
    pub in_reply_to_user_id: Option<u64>,
    /// `in_reply_to_user_id_str`.
    #[serde(deserialize_with = "ids::lenient_u64")]
    pub in_reply_to_user_id_str: Option<u64>,
    /// `in_reply_to_screen_name`.
    #[serde(borrow)]
    pub in_reply_to_screen_name: Option<Cow<'a, str>>,
    /// `conversation_id`: the id of the post that started the conversation, when the
    /// payload carries it (see [`PostView::conversation`]).
    #[serde(deserialize_with = "ids::lenient_u64")]
    pub conversation_id: Option<u64>,
    /// `conversation_id_str`.
    #[serde(deserialize_with = "ids::lenient_u64")]
    pub conversation_id_str: Option<u64>,
    /// `retweeted_status`: the original of a Retweet.
    #[serde(borrow)]
    pub retweeted_status: Option<Box<PostView<'a>>>,
    /// `quoted_status`: the post a Quote quotes.
    #[serde(borrow)]
    pub quoted_status: Option<Box<PostView<'a>>>,
    /// `is_quote_status`.
    pub is_quote_status: Option<bool>,
    /// `coordinates`: the exact location, a GeoJSON point `[lon, lat]`.
    pub coordinates: Option<Point>,
    /// `place`: the place the post is tagged with.
    #[serde(borrow)]
    pub place: Option<Box<Place<'a>>>,
    /// `scopes` (`{"followers":false}` marks a nullcast, promoted-only post).
    pub scopes: Option<Scopes>,
    /// `edit_history`, read only for whether the post has the member (whatever its
    /// value, `null` included): ingest gives a post without it X's edit metadata of an
    /// unedited post ([`crate::edit`]), and a second `edit_history` member would make the
    /// stored post unreadable.
    #[serde(deserialize_with = "present_key")]
    pub edit_history: Option<serde::de::IgnoredAny>,
    /// Whether the post's top level has a member spelled `"matching_rules"` (a post
    /// recorded from a PowerTrack stream has one), which delivery replaces with the post's
    /// own matches ([`crate::enrich::enrich_knowing`]): knowing it is absent spares a
    /// search of every post for it. Set by [`parse_post`] and [`parse_post_with_serde`]
    /// for the post itself, never for a nested one; a `PostView` deserialized by other
    /// means says `false`. Not a member serde reads, so a post that repeats it is
    /// accepted, as it was before this was recorded.
    #[serde(skip)]
    pub has_matching_rules: bool,
}

/// A member that counts as there whatever its value, `null` included (missing members are
/// `None` through the struct's `default`).
fn present_key<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<serde::de::IgnoredAny>, D::Error> {
    serde::de::IgnoredAny::deserialize(deserializer).map(Some)
}

impl<'a> PostView<'a> {
    /// The post id: `id_str` when present, else `id`.
    pub fn id(&self) -> Option<u64> {
        self.id_str.or(self.id)
    }

    /// The untruncated text: `extended_tweet.full_text`, else `full_text`, else `text`.
    pub fn full_text(&self) -> &str {
        self.extended_tweet
            .as_ref()
            .and_then(|e| e.full_text.as_deref())
            .or(self.full_text.as_deref())
            .or(self.text.as_deref())
            .unwrap_or("")
    }

    /// The id of the post this one replies to, if it is a reply.
    pub fn reply_to_status(&self) -> Option<u64> {
        self.in_reply_to_status_id_str
            .or(self.in_reply_to_status_id)
    }

    /// The id of the user this post replies to.
    pub fn reply_to_user(&self) -> Option<u64> {
        self.in_reply_to_user_id_str.or(self.in_reply_to_user_id)
    }

    /// The id of the post that started this post's conversation: `conversation_id_str`,
    /// else `conversation_id`, else, for a post that is not a reply, its own id (a post
    /// that replies to nothing starts its conversation). `None` for a reply whose payload
    /// does not say: the start of its thread is not in the post.
    pub fn conversation(&self) -> Option<u64> {
        self.conversation_id_str
            .or(self.conversation_id)
            .or_else(|| match self.reply_to_status() {
                None => self.id(),
                Some(_) => None,
            })
    }

    /// Every entity list of this post (root `entities`, `extended_entities`, and those of
    /// `extended_tweet`), not including nested posts.
    pub fn entity_sets(&self) -> impl Iterator<Item = &Entities<'a>> {
        let ext = self.extended_tweet.as_deref();
        [
            self.entities.as_deref(),
            self.extended_entities.as_deref(),
            ext.and_then(|e| e.entities.as_deref()),
            ext.and_then(|e| e.extended_entities.as_deref()),
        ]
        .into_iter()
        .flatten()
    }
}

/// `extended_tweet`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ExtendedTweet<'a> {
    /// The untruncated text.
    #[serde(borrow)]
    pub full_text: Option<Cow<'a, str>>,
    /// Entities of the full text.
    #[serde(borrow)]
    pub entities: Option<Box<Entities<'a>>>,
    /// All media of the full text.
    #[serde(borrow)]
    pub extended_entities: Option<Box<Entities<'a>>>,
}

/// `entities` / `extended_entities`. A missing or `null` list reads as empty.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Entities<'a> {
    /// `hashtags[].text` (without `#`).
    #[serde(borrow, deserialize_with = "null_as_default")]
    pub hashtags: Vec<TextEntity<'a>>,
    /// `symbols[].text` (cashtags, without `$`).
    #[serde(borrow, deserialize_with = "null_as_default")]
    pub symbols: Vec<TextEntity<'a>>,
    /// `user_mentions[]`.
    #[serde(borrow, deserialize_with = "null_as_default")]
    pub user_mentions: Vec<Mention<'a>>,
    /// `urls[]`.
    #[serde(borrow, deserialize_with = "null_as_default")]
    pub urls: Vec<UrlEntity<'a>>,
    /// `media[]`.
    #[serde(borrow, deserialize_with = "null_as_default")]
    pub media: Vec<Media<'a>>,
}

/// A hashtag or cashtag entity.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TextEntity<'a> {
    /// The tag without its `#`/`$`.
    #[serde(borrow)]
    pub text: Cow<'a, str>,
}

/// A user-mention entity.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Mention<'a> {
    /// `screen_name`.
    #[serde(borrow)]
    pub screen_name: Option<Cow<'a, str>>,
    /// `id` / `id_str` of the mentioned user.
    #[serde(deserialize_with = "ids::lenient_u64")]
    pub id: Option<u64>,
    /// `id_str`.
    #[serde(deserialize_with = "ids::lenient_u64")]
    pub id_str: Option<u64>,
}

/// A URL entity, with the Expanded-URL enrichment (`unwound`) when present.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct UrlEntity<'a> {
    /// The t.co link.
    #[serde(borrow)]
    pub url: Option<Cow<'a, str>>,
    /// The URL the author typed.
    #[serde(borrow)]
    pub expanded_url: Option<Cow<'a, str>>,
    /// The enrichment: final URL, page title and description.
    #[serde(borrow)]
    pub unwound: Option<Unwound<'a>>,
}

/// The Expanded-URL enrichment of a URL entity.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Unwound<'a> {
    /// The final URL after redirects.
    #[serde(borrow)]
    pub url: Option<Cow<'a, str>>,
    /// The page title.
    #[serde(borrow)]
    pub title: Option<Cow<'a, str>>,
    /// The page description.
    #[serde(borrow)]
    pub description: Option<Cow<'a, str>>,
}

/// A media entity.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Media<'a> {
    /// `photo`, `video` or `animated_gif`.
    #[serde(borrow, rename = "type")]
    pub kind: Option<Cow<'a, str>>,
}

/// The author of a post.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct User<'a> {
    /// `id`.
    #[serde(deserialize_with = "ids::lenient_u64")]
    pub id: Option<u64>,
    /// `id_str`.
    #[serde(deserialize_with = "ids::lenient_u64")]
    pub id_str: Option<u64>,
    /// `screen_name` (username, without `@`).
    #[serde(borrow)]
    pub screen_name: Option<Cow<'a, str>>,
    /// `name` (display name).
    #[serde(borrow)]
    pub name: Option<Cow<'a, str>>,
    /// `description` (bio).
    #[serde(borrow)]
    pub description: Option<Cow<'a, str>>,
    /// `location` (free text).
    #[serde(borrow)]
    pub location: Option<Cow<'a, str>>,
    /// `verified`.
    pub verified: Option<bool>,
    /// `followers_count`.
    pub followers_count: Option<u64>,
    /// `friends_count`.
    pub friends_count: Option<u64>,
    /// `listed_count`.
    pub listed_count: Option<u64>,
    /// `statuses_count`.
    pub statuses_count: Option<u64>,
    /// `derived` (the Profile Geo enrichment).
    #[serde(borrow)]
    pub derived: Option<Derived<'a>>,
}

impl User<'_> {
    /// The user id: `id_str` when present, else `id`.
    pub fn user_id(&self) -> Option<u64> {
        self.id_str.or(self.id)
    }
}

/// `user.derived`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Derived<'a> {
    /// `locations[]`: the Profile Geo enrichment.
    #[serde(borrow, deserialize_with = "null_as_default")]
    pub locations: Vec<ProfileLocation<'a>>,
}

/// One entry of `user.derived.locations`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ProfileLocation<'a> {
    /// `country_code`.
    #[serde(borrow)]
    pub country_code: Option<Cow<'a, str>>,
    /// `region`.
    #[serde(borrow)]
    pub region: Option<Cow<'a, str>>,
    /// `sub_region`.
    #[serde(borrow)]
    pub sub_region: Option<Cow<'a, str>>,
    /// `locality`.
    #[serde(borrow)]
    pub locality: Option<Cow<'a, str>>,
    /// `geo`, a point `[lon, lat]`.
    pub geo: Option<Point>,
}

/// A GeoJSON point; only `coordinates` (`[lon, lat]`) is read.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(default)]
pub struct Point {
    /// `[longitude, latitude]`.
    pub coordinates: Option<[f64; 2]>,
}

/// A tagged place.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Place<'a> {
    /// The place id.
    #[serde(borrow)]
    pub id: Option<Cow<'a, str>>,
    /// Short name (`San Francisco`).
    #[serde(borrow)]
    pub name: Option<Cow<'a, str>>,
    /// Full name (`San Francisco, CA`).
    #[serde(borrow)]
    pub full_name: Option<Cow<'a, str>>,
    /// ISO-3166-1 alpha-2 country code.
    #[serde(borrow)]
    pub country_code: Option<Cow<'a, str>>,
    /// The bounding polygon.
    pub bounding_box: Option<Polygon>,
}

/// A GeoJSON polygon: `coordinates` is a list of rings of `[lon, lat]` points.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Polygon {
    /// Rings of `[lon, lat]` points.
    #[serde(deserialize_with = "null_as_default")]
    pub coordinates: Vec<Vec<[f64; 2]>>,
}

/// `scopes`.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(default)]
pub struct Scopes {
    /// `followers`: `false` on nullcast (promoted-only) posts.
    pub followers: Option<bool>,
}

/// Reads `null` as the type's default (an empty list), as X sends for absent entity lists.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_objects_are_posts() {
        let array = parse_post(b"[123,null,null,null,\"cat\"]");
        assert!(matches!(array, Err(PostError::NotAnObject)));
        let string = parse_post(b" \"123\"");
        assert!(matches!(string, Err(PostError::NotAnObject)));
        assert!(matches!(parse_post(b""), Err(PostError::Json(_))));
        let post = parse_post(b" \r\n{\"id\":123,\"text\":\"cat\"}\r\n").expect("an object");
        assert_eq!(post.id(), Some(123));
    }

    #[test]
    fn read_post_id_reads_what_the_post_model_reads() {
        let cases: [&[u8]; 6] = [
            br#"{"id":5,"id_str":"6","user":{"id":9,"id_str":"9"}}"#,
            br#"{"user":{"id_str":"9"},"id":5}"#,
            br#"{"id_str":"x","id":5,"text":"{\"id_str\":\"9\"}"}"#,
            br#"{"id_str":"18446744073709551615"}"#,
            br#"{"id":-1,"id_str":"12"}"#,
            br#"{"text":"no id"}"#,
        ];
        for bytes in cases {
            let model = parse_post(bytes).ok().and_then(|p| p.id());
            assert_eq!(
                read_post_id(bytes),
                model,
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
        assert_eq!(read_post_id(br#"{"id":5,"id_str":"6"}"#), Some(6));
    }

    #[test]
    fn conversation_is_the_payloads_else_a_non_replys_own_id() {
        let cases: [(&[u8], Option<u64>); 7] = [
            (br#"{"id_str":"5","conversation_id_str":"3"}"#, Some(3)),
            (br#"{"id_str":"5","conversation_id":3}"#, Some(3)),
            (
                br#"{"id_str":"5","conversation_id":4,"conversation_id_str":"3"}"#,
                Some(3),
            ),
            (br#"{"id_str":"5"}"#, Some(5)),
            (br#"{"id_str":"5","conversation_id_str":null}"#, Some(5)),
            (br#"{"id_str":"5","in_reply_to_status_id_str":"4"}"#, None),
            (
                br#"{"id_str":"5","in_reply_to_status_id":4,"conversation_id_str":"2"}"#,
                Some(2),
            ),
        ];
        for (bytes, want) in cases {
            let post = parse_post(bytes).expect("valid post");
            assert_eq!(
                post.conversation(),
                want,
                "{}",
                String::from_utf8_lossy(bytes)
            );
        }
    }

    #[test]
    fn only_the_posts_own_matching_rules_member_is_noted_on_both_paths() {
        let deep = format!(
            r#"{{"id":1,"matching_rules":[],"x":{}{}}}"#,
            "[".repeat(100),
            "]".repeat(100)
        );
        let has: [&[u8]; 5] = [
            br#"{"id":1,"matching_rules":[]}"#,
            br#" {"id":1, "matching_rules" : null} "#,
            // Repeated: accepted, as any member the view does not read.
            br#"{"id":1,"matching_rules":[],"matching_rules":[1]}"#,
            // Invalid UTF-8 in a skipped string: the serde byte reader's path.
            b"{\"id\":1,\"x\":\"\xff\",\"matching_rules\":[]}",
            // Past the fast path's nesting limit: serde's path.
            deep.as_bytes(),
        ];
        let has_not: [&[u8]; 4] = [
            br#"{"id":1,"a":"matching_rules"}"#,
            br#"{"id":1,"a":"\"matching_rules\""}"#,
            br#"{"id":1,"quoted_status":{"id":2,"matching_rules":[]}}"#,
            br#"{"id":1,"user":{"matching_rules":[]}}"#,
        ];
        for (cases, want) in [(&has[..], true), (&has_not[..], false)] {
            for bytes in cases {
                let text = String::from_utf8_lossy(bytes);
                let fast = parse_post(bytes).expect("a post");
                let serde = parse_post_with_serde(bytes).expect("a post");
                assert_eq!(fast.has_matching_rules, want, "{text}");
                assert_eq!(serde.has_matching_rules, want, "{text}");
                let nested = fast.quoted_status.as_ref();
                assert!(nested.is_none_or(|n| !n.has_matching_rules), "{text}");
            }
        }
    }

    #[test]
    fn views_stay_small() {
        // Each nested post is a heap copy of this struct made during parsing.
        assert!(std::mem::size_of::<PostView<'_>>() <= 400);
    }
}
