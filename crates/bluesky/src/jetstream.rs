//! What Jetstream sends: one JSON object per WebSocket message (`kind` `commit`, `identity`
//! or `account`), and the post record a commit carries.
//!
//! Essentials are required fields, so a missing or mistyped one is an error that
//! `serde_path_to_error` names (`commit.rkey`, `commit.record.createdAt`). Everything else
//! is read leniently: an unknown field is skipped, and an optional one of the wrong shape
//! reads as absent (a malformed facet or image is dropped, not the post).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// One Jetstream message.
#[derive(Debug, Deserialize)]
pub(crate) struct Event {
    /// The repository (account) the event is about.
    pub did: String,
    /// Jetstream's cursor: microseconds since the UNIX epoch when it saw the event.
    pub time_us: u64,
    /// `commit`, `identity` or `account`.
    pub kind: String,
    #[serde(default)]
    pub commit: Option<Commit>,
    #[serde(default)]
    pub identity: Option<Identity>,
}

/// A record created, updated or deleted.
#[derive(Debug, Deserialize)]
pub(crate) struct Commit {
    /// `create`, `update` or `delete`.
    pub operation: String,
    /// The record's collection (`app.bsky.feed.post`, `app.bsky.feed.like`, …).
    pub collection: String,
    /// The record key.
    pub rkey: String,
    /// The record (creates and updates); read as a post only for posts.
    #[serde(default)]
    pub record: Option<Value>,
    /// The record's content id (creates and updates).
    #[serde(default, deserialize_with = "lenient")]
    pub cid: Option<String>,
}

/// An account's handle changed (or was first seen, or became invalid: no handle).
#[derive(Debug, Deserialize)]
pub(crate) struct Identity {
    #[serde(default, deserialize_with = "lenient")]
    pub handle: Option<String>,
}

/// An `app.bsky.feed.post` record.
#[derive(Debug, Deserialize)]
pub(crate) struct PostRecord {
    pub text: String,
    #[serde(rename = "createdAt")]
    pub created_at: String,
    #[serde(default, deserialize_with = "lenient")]
    pub langs: Option<Vec<String>>,
    #[serde(default, deserialize_with = "lenient_items")]
    pub facets: Vec<Facet>,
    #[serde(default, deserialize_with = "lenient")]
    pub embed: Option<Embed>,
    #[serde(default, deserialize_with = "lenient")]
    pub reply: Option<Reply>,
    #[serde(default, deserialize_with = "lenient")]
    pub labels: Option<SelfLabels>,
}

/// An `app.bsky.actor.profile` record: what a post's `user` can show of it.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ProfileRecord {
    #[serde(rename = "displayName", default, deserialize_with = "lenient")]
    pub display_name: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub description: Option<String>,
}

/// A rich-text annotation of a byte range of the text.
#[derive(Debug, Deserialize)]
pub(crate) struct Facet {
    pub index: ByteSlice,
    #[serde(deserialize_with = "lenient_items")]
    pub features: Vec<Feature>,
}

/// A range of UTF-8 bytes of the text, end exclusive.
#[derive(Debug, Clone, Copy, Deserialize)]
pub(crate) struct ByteSlice {
    #[serde(rename = "byteStart")]
    pub start: usize,
    #[serde(rename = "byteEnd")]
    pub end: usize,
}

/// One facet feature: `#mention` (did), `#link` (uri) or `#tag` (tag).
#[derive(Debug, Deserialize)]
pub(crate) struct Feature {
    #[serde(rename = "$type")]
    pub kind: String,
    #[serde(default, deserialize_with = "lenient")]
    pub did: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub uri: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub tag: Option<String>,
}

/// An embed; which fields are set depends on `$type` (images, video, external, record,
/// recordWithMedia, whose `media` is itself one of the first three).
#[derive(Debug, Deserialize)]
pub(crate) struct Embed {
    #[serde(rename = "$type", default, deserialize_with = "lenient")]
    pub kind: Option<String>,
    #[serde(default, deserialize_with = "lenient_items")]
    pub images: Vec<Image>,
    #[serde(default, deserialize_with = "lenient")]
    pub video: Option<Blob>,
    #[serde(default, deserialize_with = "lenient")]
    pub alt: Option<String>,
    #[serde(rename = "aspectRatio", default, deserialize_with = "lenient")]
    pub aspect_ratio: Option<AspectRatio>,
    #[serde(default, deserialize_with = "lenient")]
    pub external: Option<External>,
    /// `embed.record`: the quoted record's strong reference; `recordWithMedia`: an
    /// `embed.record` holding it.
    #[serde(default, deserialize_with = "lenient")]
    pub record: Option<Value>,
    #[serde(default, deserialize_with = "lenient")]
    pub media: Option<Box<Embed>>,
}

/// One image of an images embed.
#[derive(Debug, Deserialize)]
pub(crate) struct Image {
    #[serde(default, deserialize_with = "lenient")]
    pub image: Option<Blob>,
    #[serde(default, deserialize_with = "lenient")]
    pub alt: Option<String>,
    #[serde(rename = "aspectRatio", default, deserialize_with = "lenient")]
    pub aspect_ratio: Option<AspectRatio>,
}

/// A blob reference: `{"$type":"blob","ref":{"$link":CID},…}`, or the legacy `{"cid":CID}`.
#[derive(Debug, Deserialize)]
pub(crate) struct Blob {
    #[serde(rename = "ref", default, deserialize_with = "lenient")]
    pub reference: Option<Link>,
    #[serde(default, deserialize_with = "lenient")]
    pub cid: Option<String>,
}

impl Blob {
    /// The blob's content id, whichever form carries it.
    pub fn cid(&self) -> Option<&str> {
        self.reference
            .as_ref()
            .map(|r| r.link.as_str())
            .or(self.cid.as_deref())
            .filter(|cid| !cid.is_empty())
    }
}

/// A CID link in DAG-JSON (`{"$link":CID}`).
#[derive(Debug, Deserialize)]
pub(crate) struct Link {
    #[serde(rename = "$link")]
    pub link: String,
}

/// Width and height, in any unit (only their ratio is meaningful).
#[derive(Debug, Clone, Copy, Deserialize)]
pub(crate) struct AspectRatio {
    pub width: u32,
    pub height: u32,
}

/// A link card.
#[derive(Debug, Deserialize)]
pub(crate) struct External {
    pub uri: String,
    #[serde(default, deserialize_with = "lenient")]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "lenient")]
    pub description: Option<String>,
}

/// The thread a reply belongs to.
#[derive(Debug, Deserialize)]
pub(crate) struct Reply {
    #[serde(default, deserialize_with = "lenient")]
    pub root: Option<StrongRef>,
    #[serde(default, deserialize_with = "lenient")]
    pub parent: Option<StrongRef>,
}

/// A record named by URI (and content id).
#[derive(Debug, Deserialize)]
pub(crate) struct StrongRef {
    pub uri: String,
}

/// Labels the author put on the post.
#[derive(Debug, Deserialize)]
pub(crate) struct SelfLabels {
    #[serde(deserialize_with = "lenient_items")]
    pub values: Vec<SelfLabel>,
}

/// One self-label.
#[derive(Debug, Deserialize)]
pub(crate) struct SelfLabel {
    pub val: String,
}

/// An optional field read as absent when it has the wrong shape.
fn lenient<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Option<T>, D::Error> {
    let value = Value::deserialize(d)?;
    Ok(T::deserialize(value).ok())
}

/// A list whose items of the wrong shape are skipped (and which reads as empty when it is
/// not a list).
fn lenient_items<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D) -> Result<Vec<T>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|item| T::deserialize(item).ok())
            .collect(),
        _ => Vec::new(),
    })
}
