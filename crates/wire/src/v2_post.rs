//! The public v2 Post (`/2/tweets/search/stream` line) built from the native enriched
//! post, as a pure function: the v2 stream delivers the same posts as PowerTrack, in X's
//! v2 shape, with the fields and expansions the client asked for.
//!
//! - [`V2Fields::parse`] reads `tweet.fields`, `user.fields`, `place.fields`,
//!   `media.fields`, `poll.fields` and `expansions` (comma lists of X's documented names);
//!   unknown names give an [`UnknownFields`], rendered as X's 400 `invalid-request` problem.
//! - [`to_v2`] builds `{"data":{…},"includes":{…}}`: `data` always has `id`, `text` (the
//!   untruncated text) and `edit_history_tweet_ids`; any other field is copied only when
//!   the native post carries what it is made of — nothing is invented.
//! - [`with_matching_rules`] adds `matching_rules` with `tag` always present (`""` when the
//!   rule has none), as clients index it unconditionally.
//!
//! Polls are not converted: the native post carries no poll id, so `attachments.poll_ids`
//! and `includes.polls` are never produced.

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::FormatItem;
use time::macros::format_description;

/// X's `tweet.fields` names.
pub const TWEET_FIELDS: &[&str] = &[
    "article",
    "attachments",
    "author_id",
    "card_uri",
    "community_id",
    "context_annotations",
    "conversation_id",
    "created_at",
    "display_text_range",
    "edit_controls",
    "edit_history_tweet_ids",
    "entities",
    "geo",
    "id",
    "in_reply_to_user_id",
    "lang",
    "matched_media_notes",
    "media_metadata",
    "non_public_metrics",
    "note_request_suggestions",
    "note_tweet",
    "organic_metrics",
    "paid_partnership",
    "possibly_sensitive",
    "promoted_metrics",
    "public_metrics",
    "referenced_tweets",
    "reply_settings",
    "scopes",
    "source",
    "suggested_source_links",
    "suggested_source_links_with_counts",
    "text",
    "withheld",
];

/// X's `expansions` names.
pub const EXPANSIONS: &[&str] = &[
    "article.cover_media",
    "article.media_entities",
    "attachments.media_keys",
    "attachments.media_source_tweet",
    "attachments.poll_ids",
    "author_id",
    "edit_history_tweet_ids",
    "entities.mentions.username",
    "geo.place_id",
    "in_reply_to_user_id",
    "entities.note.mentions.username",
    "referenced_tweets.id",
    "referenced_tweets.id.attachments.media_keys",
    "referenced_tweets.id.author_id",
];

/// The post field each expansion is made from: asking for the expansion puts the field in
/// `data` too.
const IMPLIED_FIELDS: &[(&str, &str)] = &[
    ("author_id", "author_id"),
    ("in_reply_to_user_id", "in_reply_to_user_id"),
    ("referenced_tweets.id", "referenced_tweets"),
    ("referenced_tweets.id.author_id", "referenced_tweets"),
    (
        "referenced_tweets.id.attachments.media_keys",
        "referenced_tweets",
    ),
    ("attachments.media_keys", "attachments"),
    ("attachments.poll_ids", "attachments"),
    ("attachments.media_source_tweet", "attachments"),
    ("geo.place_id", "geo"),
    ("entities.mentions.username", "entities"),
];

/// X's `user.fields` names.
pub const USER_FIELDS: &[&str] = &[
    "affiliation",
    "confirmed_email",
    "connection_status",
    "created_at",
    "description",
    "entities",
    "id",
    "is_identity_verified",
    "location",
    "most_recent_tweet_id",
    "name",
    "parody",
    "pinned_tweet_id",
    "profile_banner_url",
    "profile_image_url",
    "protected",
    "public_metrics",
    "receives_your_dm",
    "subscription",
    "subscription_type",
    "url",
    "username",
    "verified",
    "verified_followers_count",
    "verified_type",
    "withheld",
];

/// X's `media.fields` names.
pub const MEDIA_FIELDS: &[&str] = &[
    "alt_text",
    "duration_ms",
    "height",
    "media_key",
    "non_public_metrics",
    "organic_metrics",
    "preview_image_url",
    "promoted_metrics",
    "public_metrics",
    "type",
    "url",
    "variants",
    "width",
];

/// X's `poll.fields` names.
pub const POLL_FIELDS: &[&str] = &[
    "duration_minutes",
    "end_datetime",
    "id",
    "options",
    "voting_status",
];

/// X's `place.fields` names.
pub const PLACE_FIELDS: &[&str] = &[
    "contained_within",
    "country",
    "country_code",
    "full_name",
    "geo",
    "id",
    "name",
    "place_type",
];

/// The query parameters [`V2Fields::parse`] reads, with the names each allows.
const PARAMETERS: &[(&str, &[&str])] = &[
    ("tweet.fields", TWEET_FIELDS),
    ("expansions", EXPANSIONS),
    ("user.fields", USER_FIELDS),
    ("media.fields", MEDIA_FIELDS),
    ("poll.fields", POLL_FIELDS),
    ("place.fields", PLACE_FIELDS),
];

/// What a v2 stream connection asked for: the requested names of each parameter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct V2Fields {
    tweet: Vec<&'static str>,
    expansions: Vec<&'static str>,
    user: Vec<&'static str>,
    media: Vec<&'static str>,
    poll: Vec<&'static str>,
    place: Vec<&'static str>,
}

/// Names a client asked for that X does not define, per parameter, in request order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnknownFields {
    /// `(parameter, unknown value)` pairs.
    pub unknown: Vec<(&'static str, String)>,
}

impl UnknownFields {
    /// X's 400 body: an `invalid-request` problem with one error per unknown value, each
    /// naming the parameter, the value and the allowed values.
    pub fn to_problem(&self) -> Value {
        let errors: Vec<Value> = self
            .unknown
            .iter()
            .map(|(parameter, value)| {
                let allowed = PARAMETERS
                    .iter()
                    .find(|(p, _)| p == parameter)
                    .map_or(&[][..], |(_, names)| *names)
                    .join(",");
                json!({
                    "parameters": { *parameter: [value] },
                    "message": format!(
                        "The `{parameter}` query parameter value [{value}] is not one of [{allowed}]"
                    ),
                })
            })
            .collect();
        json!({
            "errors": errors,
            "title": "Invalid Request",
            "detail": "One or more parameters to your request was invalid.",
            "type": crate::v2::problem_type::INVALID_REQUEST,
        })
    }
}

impl V2Fields {
    /// Reads the field and expansion parameters from query pairs; other parameters are
    /// ignored (they belong to the caller). Empty items of a comma list are skipped.
    pub fn parse<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, UnknownFields> {
        let mut fields = Self::default();
        let mut unknown = UnknownFields::default();
        for (key, value) in pairs {
            let Some(&(parameter, allowed)) = PARAMETERS.iter().find(|(p, _)| *p == key) else {
                continue;
            };
            for name in value.split(',').filter(|n| !n.is_empty()) {
                match allowed.iter().find(|a| **a == name) {
                    Some(known) => {
                        let list = fields.list_mut(parameter);
                        if !list.contains(known) {
                            list.push(known);
                        }
                    }
                    None => unknown.unknown.push((parameter, name.to_owned())),
                }
            }
        }
        if !unknown.unknown.is_empty() {
            return Err(unknown);
        }
        // An expansion names objects by a field of the post, and X writes that field in
        // `data` whether or not `tweet.fields` asked for it (`expansions=author_id` gives
        // `data.author_id` and `includes.users`), so clients can join the two.
        for &(expansion, field) in IMPLIED_FIELDS {
            if fields.expand(expansion) && !fields.tweet(field) {
                let known = TWEET_FIELDS
                    .iter()
                    .find(|f| **f == field)
                    .expect("implied fields are tweet fields");
                fields.tweet.push(known);
            }
        }
        Ok(fields)
    }

    fn list_mut(&mut self, parameter: &str) -> &mut Vec<&'static str> {
        match parameter {
            "tweet.fields" => &mut self.tweet,
            "expansions" => &mut self.expansions,
            "user.fields" => &mut self.user,
            "media.fields" => &mut self.media,
            "poll.fields" => &mut self.poll,
            _ => &mut self.place,
        }
    }

    fn expand(&self, name: &str) -> bool {
        self.expansions.contains(&name)
    }

    fn tweet(&self, name: &str) -> bool {
        self.tweet.contains(&name)
    }

    /// Whether the conversion reads this member of a native post (one of `POST_KEYS`)
    /// for these fields.
    fn reads(&self, key: &str) -> bool {
        let any = |tweet: &[&str], expansions: &[&str]| {
            tweet.iter().any(|t| self.tweet(t)) || expansions.iter().any(|e| self.expand(e))
        };
        match key {
            "user" => any(
                &["author_id"],
                &["author_id", "referenced_tweets.id.author_id"],
            ),
            "created_at" | "lang" | "source" | "possibly_sensitive" | "display_text_range"
            | "edit_controls" => self.tweet(key),
            "editable" => self.tweet("edit_controls"),
            "withheld_in_countries" | "withheld_copyright" | "withheld_scope" => {
                self.tweet("withheld")
            }
            "conversation_id_str" | "conversation_id" | "in_reply_to_status_id" => {
                self.tweet("conversation_id")
            }
            "in_reply_to_user_id_str" => self.tweet("in_reply_to_user_id"),
            "in_reply_to_status_id_str" => {
                self.tweet("referenced_tweets") || self.tweet("conversation_id")
            }
            "quoted_status_id_str" => self.tweet("referenced_tweets"),
            "retweet_count" | "reply_count" | "favorite_count" | "quote_count" => {
                self.tweet("public_metrics")
            }
            "quoted_status" | "retweeted_status" => any(
                &["referenced_tweets"],
                &["referenced_tweets.id", "referenced_tweets.id.author_id"],
            ),
            "entities" | "extended_entities" => any(
                &["entities", "attachments"],
                &["entities.mentions.username", "attachments.media_keys"],
            ),
            "place" => any(&["geo"], &["geo.place_id"]),
            "coordinates" => self.tweet("geo"),
            _ => true,
        }
    }
}

/// Adds `matching_rules` to a line built by [`to_v2`]: `rules` are `(id, tag)` pairs;
/// `tag` is always written, `""` when the rule has none.
pub fn with_matching_rules(mut line: Value, rules: &[(&str, Option<&str>)]) -> Value {
    let rules: Vec<Value> = rules
        .iter()
        .map(|(id, tag)| json!({"id": id, "tag": tag.unwrap_or("")}))
        .collect();
    if let Value::Object(map) = &mut line {
        map.insert("matching_rules".to_owned(), Value::Array(rules));
    }
    line
}

/// Converts native post bytes; see [`to_v2`]. Faster than parsing the whole post first:
/// members the conversion never reads (deprecated user fields, `matching_rules`, media
/// sizes, …) are skipped without being built.
pub fn to_v2_bytes(native: &[u8], fields: &V2Fields) -> Result<Value, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(native);
    let post = Filtered(Level::Post, fields).deserialize(&mut de)?;
    de.end()?;
    Ok(to_v2(&post, fields))
}

/// The members of a post object the conversion reads.
const POST_KEYS: &[&str] = &[
    "id",
    "id_str",
    "text",
    "full_text",
    "extended_tweet",
    "edit_history",
    "user",
    "created_at",
    "lang",
    "source",
    "possibly_sensitive",
    "conversation_id_str",
    "conversation_id",
    "in_reply_to_user_id_str",
    "in_reply_to_status_id_str",
    "in_reply_to_status_id",
    "display_text_range",
    "retweet_count",
    "reply_count",
    "favorite_count",
    "quote_count",
    "quoted_status_id_str",
    "quoted_status",
    "retweeted_status",
    "entities",
    "extended_entities",
    "place",
    "coordinates",
    "editable",
    "edit_controls",
    "withheld_in_countries",
    "withheld_copyright",
    "withheld_scope",
];

/// The members of a user object the conversion reads.
const USER_KEYS: &[&str] = &[
    "id",
    "id_str",
    "name",
    "screen_name",
    "created_at",
    "description",
    "location",
    "verified",
    "protected",
    "url",
    "profile_image_url_https",
    "followers_count",
    "friends_count",
    "statuses_count",
    "listed_count",
    "withheld_in_countries",
];

/// Which kind of object [`Filtered`] reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Post,
    User,
}

/// Reads a post or user object keeping only the members the conversion reads for these
/// fields (nested posts and users filtered the same way); `null` stays `null`.
#[derive(Clone, Copy)]
struct Filtered<'f>(Level, &'f V2Fields);

impl<'de> DeserializeSeed<'de> for Filtered<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Value, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Filtered<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object or null")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let keys = match self.0 {
            Level::Post => POST_KEYS,
            Level::User => USER_KEYS,
        };
        let mut out = Map::new();
        while let Some(key) = map.next_key_seed(KnownKey(keys))? {
            let Some(key) = key.filter(|k| self.0 == Level::User || self.1.reads(k)) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let value = match (self.0, key) {
                (Level::Post, "retweeted_status" | "quoted_status") => {
                    map.next_value_seed(Filtered(Level::Post, self.1))?
                }
                (Level::Post, "user") => map.next_value_seed(Filtered(Level::User, self.1))?,
                _ => map.next_value::<Value>()?,
            };
            out.insert(key.to_owned(), value);
        }
        Ok(Value::Object(out))
    }
}

/// An object key, as the matching entry of a list, or `None` when it is not in the list
/// (read without allocating).
struct KnownKey(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for KnownKey {
    type Value = Option<&'static str>;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KnownKey {
    type Value = Option<&'static str>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(self.0.iter().find(|k| **k == key).copied())
    }
}

/// Builds the v2 line `{"data":{…},"includes":{…}}` of a native post (no `includes`
/// key when nothing is expanded).
pub fn to_v2(native: &Value, fields: &V2Fields) -> Value {
    let mut out = Map::new();
    out.insert("data".to_owned(), Value::Object(tweet(native, fields)));
    let includes = includes(native, fields);
    if !includes.is_empty() {
        out.insert("includes".to_owned(), Value::Object(includes));
    }
    Value::Object(out)
}

/// A non-null member of an object.
fn get<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    value.get(key).filter(|v| !v.is_null())
}

fn put(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        map.insert(key.to_owned(), value);
    }
}

/// The native post's id as a string.
fn id_str(post: &Value) -> Option<Value> {
    get(post, "id_str")
        .cloned()
        .or_else(|| get(post, "id").map(|id| Value::String(id.to_string())))
}

/// The untruncated text: `extended_tweet.full_text`, else `full_text`, else `text`.
fn full_text(post: &Value) -> Option<&Value> {
    post.get("extended_tweet")
        .and_then(|e| get(e, "full_text"))
        .or_else(|| get(post, "full_text"))
        .or_else(|| get(post, "text"))
}

/// The entity set that describes the untruncated text.
fn entities_of(post: &Value) -> Option<&Value> {
    post.get("extended_tweet")
        .and_then(|e| get(e, "entities"))
        .or_else(|| get(post, "entities"))
}

/// The media list (up to four), from `extended_entities` when present.
fn media_of(post: &Value) -> &[Value] {
    let extended = post.get("extended_tweet").unwrap_or(&Value::Null);
    [extended, post]
        .into_iter()
        .find_map(|p| {
            p.get("extended_entities")
                .or_else(|| p.get("entities"))
                .and_then(|e| e.get("media"))
                .and_then(Value::as_array)
        })
        .map_or(&[], Vec::as_slice)
}

const ISO_MILLIS: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
const NATIVE_DATE: &[FormatItem<'static>] = format_description!(
    "[weekday repr:short] [month repr:short] [day] [hour]:[minute]:[second] [offset_hour sign:mandatory][offset_minute] [year]"
);

/// `Wed Oct 10 20:19:24 +0000 2018` → `2018-10-10T20:19:24.000Z`.
fn iso_date(native: &Value) -> Option<Value> {
    let date = OffsetDateTime::parse(native.as_str()?, NATIVE_DATE).ok()?;
    let utc = date.to_offset(time::UtcOffset::UTC);
    utc.format(ISO_MILLIS).ok().map(Value::String)
}

/// Epoch milliseconds → ISO 8601 with milliseconds.
fn iso_millis(ms: &Value) -> Option<Value> {
    let ms = i128::from(ms.as_i64()?);
    let date = OffsetDateTime::from_unix_timestamp_nanos(ms * 1_000_000).ok()?;
    date.format(ISO_MILLIS).ok().map(Value::String)
}

/// The v2 Post object (`data`, or an entry of `includes.tweets`).
fn tweet(post: &Value, fields: &V2Fields) -> Map<String, Value> {
    let mut data = Map::new();
    let id = id_str(post);
    put(&mut data, "id", id.clone());
    put(&mut data, "text", full_text(post).cloned());
    let history = post
        .get("edit_history")
        .and_then(|h| get(h, "edit_tweet_ids"))
        .cloned()
        .or_else(|| id.map(|id| Value::Array(vec![id])));
    put(&mut data, "edit_history_tweet_ids", history);
    for &name in &fields.tweet {
        let value = match name {
            "author_id" => post.get("user").and_then(id_str),
            "created_at" => get(post, "created_at").and_then(iso_date),
            "lang" | "source" | "possibly_sensitive" => get(post, name).cloned(),
            "conversation_id" => conversation_id(post),
            "in_reply_to_user_id" => get(post, "in_reply_to_user_id_str").cloned(),
            "display_text_range" => post
                .get("extended_tweet")
                .and_then(|e| get(e, "display_text_range"))
                .or_else(|| get(post, "display_text_range"))
                .cloned(),
            "public_metrics" => public_metrics(post),
            "referenced_tweets" => referenced_tweets(post),
            "entities" => entities_of(post).and_then(entities),
            "attachments" => attachments(post),
            "geo" => geo(post),
            "edit_controls" => edit_controls(post),
            "withheld" => withheld(post, Withheld::Post),
            _ => None,
        };
        put(&mut data, name, value);
    }
    data
}

/// The id of the post that started the post's conversation: `conversation_id_str`, else
/// `conversation_id`, else the post's own id when it replies to nothing (it starts its
/// conversation), the same rule the matcher's `conversation_id:` uses. A reply that does
/// not say has none: the start of its thread is not in the post.
fn conversation_id(post: &Value) -> Option<Value> {
    let numeric = |v: &Value| match v {
        Value::String(_) => Some(v.clone()),
        Value::Number(n) => Some(Value::String(n.to_string())),
        _ => None,
    };
    if let Some(id) = get(post, "conversation_id_str").or_else(|| get(post, "conversation_id")) {
        return numeric(id);
    }
    let replies = get(post, "in_reply_to_status_id_str")
        .or_else(|| get(post, "in_reply_to_status_id"))
        .is_some();
    if replies { None } else { id_str(post) }
}

/// Copies the members of `post` named in `pairs` (`(native, v2)`) that are present; `None`
/// when none is.
fn renamed(post: &Value, pairs: &[(&str, &str)]) -> Option<Value> {
    let map: Map<String, Value> = pairs
        .iter()
        .filter_map(|(from, to)| get(post, from).map(|v| ((*to).to_owned(), v.clone())))
        .collect();
    (!map.is_empty()).then_some(Value::Object(map))
}

fn public_metrics(post: &Value) -> Option<Value> {
    renamed(
        post,
        &[
            ("retweet_count", "retweet_count"),
            ("reply_count", "reply_count"),
            ("favorite_count", "like_count"),
            ("quote_count", "quote_count"),
        ],
    )
}

/// The referenced posts' ids: the replied-to post, the quoted post, the retweeted post.
fn referenced_tweets(post: &Value) -> Option<Value> {
    let mut refs = Vec::new();
    if let Some(id) = get(post, "in_reply_to_status_id_str") {
        refs.push(json!({"type": "replied_to", "id": id}));
    }
    if let Some(id) = get(post, "quoted_status_id_str")
        .cloned()
        .or_else(|| post.get("quoted_status").and_then(id_str))
    {
        refs.push(json!({"type": "quoted", "id": id}));
    }
    if let Some(id) = post.get("retweeted_status").and_then(id_str) {
        refs.push(json!({"type": "retweeted", "id": id}));
    }
    (!refs.is_empty()).then_some(Value::Array(refs))
}

/// `start`/`end` from native `indices` (native indices already count code points).
fn span(entity: &Value, out: &mut Map<String, Value>) {
    if let Some(indices) = entity.get("indices").and_then(Value::as_array) {
        put(out, "start", indices.first().cloned());
        put(out, "end", indices.get(1).cloned());
    }
}

/// One v2 entity: its span, then the `(native, v2)` members it carries.
fn entity(native: &Value, pairs: &[(&str, &str)]) -> Value {
    let mut out = Map::new();
    span(native, &mut out);
    for (from, to) in pairs {
        put(&mut out, to, get(native, from).cloned());
    }
    Value::Object(out)
}

fn entities(native: &Value) -> Option<Value> {
    let list = |key: &str| {
        native
            .get(key)
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice)
    };
    let mut out = Map::new();
    let mut add = |key: &str, items: Vec<Value>| {
        if !items.is_empty() {
            out.insert(key.to_owned(), Value::Array(items));
        }
    };
    add(
        "hashtags",
        list("hashtags")
            .iter()
            .map(|h| entity(h, &[("text", "tag")]))
            .collect(),
    );
    add(
        "cashtags",
        list("symbols")
            .iter()
            .map(|h| entity(h, &[("text", "tag")]))
            .collect(),
    );
    add(
        "mentions",
        list("user_mentions")
            .iter()
            .map(|m| entity(m, &[("screen_name", "username"), ("id_str", "id")]))
            .collect(),
    );
    let mut urls: Vec<Value> = list("urls").iter().map(url_entity).collect();
    urls.extend(list("media").iter().map(|m| {
        let mut url = entity(
            m,
            &[
                ("url", "url"),
                ("expanded_url", "expanded_url"),
                ("display_url", "display_url"),
            ],
        );
        if let (Value::Object(map), Some(key)) = (&mut url, media_key(m)) {
            map.insert("media_key".to_owned(), key);
        }
        url
    }));
    add("urls", urls);
    (!out.is_empty()).then_some(Value::Object(out))
}

/// A url entity, with the unwound enrichment as X's v2 `unwound_url`/`status`/`title`/
/// `description` when present.
fn url_entity(native: &Value) -> Value {
    let mut url = entity(
        native,
        &[
            ("url", "url"),
            ("expanded_url", "expanded_url"),
            ("display_url", "display_url"),
        ],
    );
    if let (Value::Object(map), Some(unwound)) = (&mut url, get(native, "unwound")) {
        for (from, to) in [
            ("status", "status"),
            ("title", "title"),
            ("description", "description"),
            ("url", "unwound_url"),
        ] {
            put(map, to, get(unwound, from).cloned());
        }
    }
    url
}

/// X's media key: a type prefix (`3_` photo, `7_` video, `16_` GIF) and the media id.
fn media_key(media: &Value) -> Option<Value> {
    let prefix = match get(media, "type")?.as_str()? {
        "photo" => "3",
        "video" => "7",
        "animated_gif" => "16",
        _ => return None,
    };
    let id = id_str(media)?;
    Some(Value::String(format!("{prefix}_{}", id.as_str()?)))
}

fn attachments(post: &Value) -> Option<Value> {
    let keys: Vec<Value> = media_of(post).iter().filter_map(media_key).collect();
    (!keys.is_empty()).then(|| json!({"media_keys": keys}))
}

fn geo(post: &Value) -> Option<Value> {
    let mut out = Map::new();
    put(
        &mut out,
        "place_id",
        post.get("place").and_then(|p| get(p, "id")).cloned(),
    );
    if let Some(point) = get(post, "coordinates") {
        out.insert("coordinates".to_owned(), point.clone());
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

fn edit_controls(post: &Value) -> Option<Value> {
    let mut out = Map::new();
    put(&mut out, "is_edit_eligible", get(post, "editable").cloned());
    if let Some(controls) = get(post, "edit_controls") {
        put(
            &mut out,
            "editable_until",
            get(controls, "editable_until_ms").and_then(iso_millis),
        );
        put(
            &mut out,
            "edits_remaining",
            get(controls, "edits_remaining").cloned(),
        );
    }
    (!out.is_empty()).then_some(Value::Object(out))
}

/// `includes`: the expanded users, posts, media and places.
fn includes(post: &Value, fields: &V2Fields) -> Map<String, Value> {
    let mut users: Vec<Value> = Vec::new();
    let mut add_user = |user: Value| {
        if !users.iter().any(|u| u.get("id") == user.get("id")) {
            users.push(user);
        }
    };
    let author = post.get("user").filter(|_| fields.expand("author_id"));
    if let Some(user) = author.and_then(|u| user_object(u, fields)) {
        add_user(user);
    }
    if fields.expand("entities.mentions.username") {
        let mentions = entities_of(post)
            .and_then(|e| e.get("user_mentions"))
            .and_then(Value::as_array);
        for mention in mentions.into_iter().flatten() {
            if let Some(user) = user_object(mention, fields) {
                add_user(user);
            }
        }
    }
    let referenced: Vec<&Value> = ["quoted_status", "retweeted_status"]
        .iter()
        .filter_map(|key| get(post, key))
        .collect();
    if fields.expand("referenced_tweets.id.author_id") {
        for user in referenced.iter().filter_map(|r| r.get("user")) {
            if let Some(user) = user_object(user, fields) {
                add_user(user);
            }
        }
    }
    let mut out = Map::new();
    let mut add = |key: &str, items: Vec<Value>| {
        if !items.is_empty() {
            out.insert(key.to_owned(), Value::Array(items));
        }
    };
    add("users", users);
    if fields.expand("referenced_tweets.id") {
        add(
            "tweets",
            referenced
                .iter()
                .map(|r| Value::Object(tweet(r, fields)))
                .collect(),
        );
    }
    if fields.expand("attachments.media_keys") {
        add(
            "media",
            media_of(post)
                .iter()
                .filter_map(|m| media_object(m, fields))
                .collect(),
        );
    }
    if fields.expand("geo.place_id") {
        add(
            "places",
            get(post, "place")
                .and_then(|p| place_object(p, fields))
                .into_iter()
                .collect(),
        );
    }
    out
}

/// v2's `withheld` from a native post's or user's `withheld_in_countries` (and a post's
/// `withheld_copyright` and `withheld_scope`); `None` when it is withheld nowhere. A post's
/// has `copyright` (false unless the native post says so), `country_codes` and `scope`
/// (`tweet`, or `user` when the native `withheld_scope` says the author is withheld; the
/// native `status` is v2's `tweet`); a user's has `country_codes` and `scope` `user`.
fn withheld(native: &Value, of: Withheld) -> Option<Value> {
    let countries = get(native, "withheld_in_countries")?.as_array()?;
    let copyright = get(native, "withheld_copyright").and_then(Value::as_bool);
    if countries.is_empty() && copyright != Some(true) {
        return None;
    }
    let mut out = Map::new();
    let scope = match of {
        Withheld::Post => {
            out.insert(
                "copyright".to_owned(),
                Value::Bool(copyright.unwrap_or(false)),
            );
            match get(native, "withheld_scope").and_then(Value::as_str) {
                Some("user") => "user",
                _ => "tweet",
            }
        }
        Withheld::User => "user",
    };
    out.insert("country_codes".to_owned(), Value::Array(countries.clone()));
    out.insert("scope".to_owned(), Value::String(scope.to_owned()));
    Some(Value::Object(out))
}

/// Whose `withheld` [`withheld`] writes.
#[derive(Clone, Copy)]
enum Withheld {
    Post,
    User,
}

/// A v2 User: `id`, `name`, `username` by default, then the requested `user.fields`.
fn user_object(user: &Value, fields: &V2Fields) -> Option<Value> {
    let mut out = Map::new();
    out.insert("id".to_owned(), id_str(user)?);
    put(&mut out, "name", get(user, "name").cloned());
    put(&mut out, "username", get(user, "screen_name").cloned());
    for &name in &fields.user {
        let value = match name {
            "created_at" => get(user, "created_at").and_then(iso_date),
            "description" | "location" | "verified" | "protected" | "url" => {
                get(user, name).cloned()
            }
            "profile_image_url" => get(user, "profile_image_url_https").cloned(),
            "withheld" => withheld(user, Withheld::User),
            "public_metrics" => renamed(
                user,
                &[
                    ("followers_count", "followers_count"),
                    ("friends_count", "following_count"),
                    ("statuses_count", "tweet_count"),
                    ("listed_count", "listed_count"),
                ],
            ),
            _ => None,
        };
        put(&mut out, name, value);
    }
    Some(Value::Object(out))
}

/// A v2 Media: `media_key` and `type` by default, then the requested `media.fields`.
fn media_object(media: &Value, fields: &V2Fields) -> Option<Value> {
    let mut out = Map::new();
    out.insert("media_key".to_owned(), media_key(media)?);
    put(&mut out, "type", get(media, "type").cloned());
    let is_photo = get(media, "type").and_then(Value::as_str) == Some("photo");
    let video = get(media, "video_info");
    for &name in &fields.media {
        let value = match name {
            "url" if is_photo => get(media, "media_url_https").cloned(),
            "preview_image_url" if !is_photo => get(media, "media_url_https").cloned(),
            "width" | "height" => get(media, "original_info")
                .and_then(|o| get(o, name))
                .cloned(),
            "alt_text" => get(media, "ext_alt_text").cloned(),
            "duration_ms" => video.and_then(|v| get(v, "duration_millis")).cloned(),
            "variants" => video.and_then(|v| get(v, "variants")).cloned(),
            _ => None,
        };
        put(&mut out, name, value);
    }
    Some(Value::Object(out))
}

/// A v2 Place: `full_name` and `id` by default, then the requested `place.fields`.
fn place_object(place: &Value, fields: &V2Fields) -> Option<Value> {
    let mut out = Map::new();
    out.insert("id".to_owned(), get(place, "id")?.clone());
    put(&mut out, "full_name", get(place, "full_name").cloned());
    for &name in &fields.place {
        let value = match name {
            "country" | "country_code" | "name" | "place_type" => get(place, name).cloned(),
            "geo" => get(place, "bounding_box")
                .and_then(bbox)
                .map(|bbox| json!({"type": "Feature", "bbox": bbox, "properties": {}})),
            _ => None,
        };
        put(&mut out, name, value);
    }
    Some(Value::Object(out))
}

/// `[west, south, east, north]` of a native bounding-box polygon.
fn bbox(polygon: &Value) -> Option<Value> {
    let ring = polygon.get("coordinates")?.get(0)?.as_array()?;
    let points: Vec<(f64, f64)> = ring
        .iter()
        .filter_map(|p| Some((p.get(0)?.as_f64()?, p.get(1)?.as_f64()?)))
        .collect();
    if points.is_empty() {
        return None;
    }
    let fold = |f: fn(f64, f64) -> f64, pick: fn(&(f64, f64)) -> f64, start: f64| {
        points.iter().map(pick).fold(start, f)
    };
    Some(json!([
        fold(f64::min, |p| p.0, f64::INFINITY),
        fold(f64::min, |p| p.1, f64::INFINITY),
        fold(f64::max, |p| p.0, f64::NEG_INFINITY),
        fold(f64::max, |p| p.1, f64::NEG_INFINITY),
    ]))
}
