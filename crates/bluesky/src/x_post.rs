//! The output model: the parts of X's native post JSON a converted Bluesky post fills, in
//! X's field order (docs/bluesky.md says what each holds). These types exist only to be
//! serialised. Fields X always sends, even as `null`, are written as `null` when Bluesky
//! has no value; fields X leaves out when absent are left out.

use serde::Serialize;

pub(crate) use sluice_model::native::{
    Entities, MediaEntity, MediaList, MentionEntity, Size, Sizes, TagEntity, Unwound, UrlEntity,
    Variant, VideoInfo,
};

/// A post (root or quoted).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct XPost {
    pub created_at: String,
    pub id: u64,
    pub id_str: String,
    pub text: String,
    pub display_text_range: [usize; 2],
    pub source: &'static str,
    pub truncated: bool,
    pub in_reply_to_status_id: Option<u64>,
    pub in_reply_to_status_id_str: Option<String>,
    pub in_reply_to_user_id: Option<u64>,
    pub in_reply_to_user_id_str: Option<String>,
    pub in_reply_to_screen_name: Option<String>,
    pub user: XUser,
    pub geo: (),
    pub coordinates: (),
    pub place: (),
    pub contributors: (),
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quoted_status_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quoted_status_id_str: Option<String>,
    /// The quoted post as converted earlier.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quoted_status: Option<Box<XPost>>,
    pub is_quote_status: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id_str: Option<String>,
    pub quote_count: u64,
    pub reply_count: u64,
    pub retweet_count: u64,
    pub favorite_count: u64,
    pub entities: Entities,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extended_entities: Option<MediaList>,
    pub favorited: bool,
    pub retweeted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub possibly_sensitive: Option<bool>,
    pub lang: String,
    pub timestamp_ms: String,
    /// Where the post came from on Bluesky (the one extra field).
    pub bluesky: BlueskyOrigin,
}

/// The extra top-level field: the post's address on Bluesky.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BlueskyOrigin {
    /// `at://DID/app.bsky.feed.post/RKEY`.
    pub uri: String,
    /// The record's content id (absent when the event did not carry one).
    pub cid: Option<String>,
    /// The author's DID.
    pub did: String,
}

/// The author.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct XUser {
    pub id: u64,
    pub id_str: String,
    pub name: String,
    pub screen_name: String,
    pub location: (),
    pub url: (),
    pub description: Option<String>,
    pub protected: bool,
    pub verified: bool,
    pub followers_count: Option<u64>,
    pub friends_count: Option<u64>,
    pub listed_count: Option<u64>,
    pub favourites_count: Option<u64>,
    pub statuses_count: Option<u64>,
    pub created_at: (),
    pub default_profile_image: bool,
}
