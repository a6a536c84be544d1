//! The output model: X's native (v1.1 enriched) post JSON, field for field (docs/compatibility.md §8).
//!
//! These structs exist only to be serialized; their field order is X's, so generated lines
//! look like captured traffic. Fields X always sends with `null` are `Option`s without
//! `skip_serializing_if`; fields X omits when absent are skipped.

use serde::Serialize;

pub(crate) use sluice_model::native::{
    Entities, MediaEntity, MediaList, MentionEntity, Size, Sizes, TagEntity, Unwound, UrlEntity,
    Variant, VideoInfo,
};

/// A post (root or nested).
#[derive(Debug, Serialize)]
pub(crate) struct Tweet {
    pub created_at: String,
    pub id: u64,
    pub id_str: String,
    pub text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display_text_range: Option<[usize; 2]>,
    pub source: String,
    pub truncated: bool,
    pub in_reply_to_status_id: Option<u64>,
    pub in_reply_to_status_id_str: Option<String>,
    pub in_reply_to_user_id: Option<u64>,
    pub in_reply_to_user_id_str: Option<String>,
    pub in_reply_to_screen_name: Option<String>,
    pub user: User,
    pub geo: Option<Point>,
    pub coordinates: Option<Point>,
    pub place: Option<Place>,
    pub contributors: (),
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retweeted_status: Option<Box<Tweet>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quoted_status_id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quoted_status_id_str: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quoted_status: Option<Box<Tweet>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quoted_status_permalink: Option<Permalink>,
    pub is_quote_status: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extended_tweet: Option<ExtendedTweet>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Scopes>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filter_level: Option<&'static str>,
    pub lang: &'static str,
    pub edit_history: EditHistory,
    pub edit_controls: EditControls,
    pub editable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp_ms: Option<String>,
}

/// `extended_tweet`: the untruncated text and its complete entities.
#[derive(Debug, Serialize)]
pub(crate) struct ExtendedTweet {
    pub full_text: String,
    pub display_text_range: [usize; 2],
    pub entities: Entities,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extended_entities: Option<MediaList>,
}

/// The author. Deprecated fields are emitted as `null`, as X does.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct User {
    pub id: u64,
    pub id_str: String,
    pub name: String,
    pub screen_name: String,
    pub location: Option<String>,
    pub url: Option<String>,
    pub description: Option<String>,
    pub translator_type: &'static str,
    pub protected: bool,
    pub verified: bool,
    pub followers_count: u64,
    pub friends_count: u64,
    pub listed_count: u64,
    pub favourites_count: u64,
    pub statuses_count: u64,
    pub created_at: String,
    pub utc_offset: (),
    pub time_zone: (),
    pub geo_enabled: bool,
    pub lang: (),
    pub contributors_enabled: bool,
    pub is_translator: bool,
    pub profile_background_color: &'static str,
    pub profile_background_image_url: (),
    pub profile_background_image_url_https: (),
    pub profile_background_tile: bool,
    pub profile_link_color: &'static str,
    pub profile_sidebar_border_color: &'static str,
    pub profile_sidebar_fill_color: &'static str,
    pub profile_text_color: &'static str,
    pub profile_use_background_image: bool,
    pub profile_image_url: String,
    pub profile_image_url_https: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile_banner_url: Option<String>,
    pub default_profile: bool,
    pub default_profile_image: bool,
    pub following: (),
    pub follow_request_sent: (),
    pub notifications: (),
    #[serde(skip_serializing_if = "Option::is_none")]
    pub derived: Option<Derived>,
}

/// `user.derived`: the Profile Geo enrichment.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Derived {
    pub locations: Vec<ProfileLocation>,
}

/// One Profile Geo location.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ProfileLocation {
    pub country: &'static str,
    pub country_code: &'static str,
    pub locality: &'static str,
    pub region: &'static str,
    pub sub_region: &'static str,
    pub full_name: String,
    pub geo: ProfileGeo,
}

/// `derived.locations[].geo` (note the lower-case `point`, as X sends it).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ProfileGeo {
    pub coordinates: [f64; 2],
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// A GeoJSON point (`geo` is `[lat, lon]`, `coordinates` is `[lon, lat]`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Point {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub coordinates: [f64; 2],
}

/// A tagged place.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Place {
    pub id: String,
    pub url: String,
    pub place_type: &'static str,
    pub name: &'static str,
    pub full_name: String,
    pub country_code: &'static str,
    pub country: &'static str,
    pub bounding_box: BoundingBox,
    pub attributes: Attributes,
}

/// A place's bounding box: one ring of four `[lon, lat]` corners.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct BoundingBox {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub coordinates: [[[f64; 2]; 4]; 1],
}

/// `place.attributes`, always `{}` in practice.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Attributes {}

/// `quoted_status_permalink`.
#[derive(Debug, Serialize)]
pub(crate) struct Permalink {
    pub url: String,
    pub expanded: String,
    pub display: String,
}

/// `scopes` (`{"followers":false}` on nullcast posts).
#[derive(Debug, Serialize)]
pub(crate) struct Scopes {
    pub followers: bool,
}

/// `edit_history`: ids as strings, oldest first.
#[derive(Debug, Serialize)]
pub(crate) struct EditHistory {
    pub initial_tweet_id: String,
    pub edit_tweet_ids: Vec<String>,
}

/// `edit_controls`.
#[derive(Debug, Serialize)]
pub(crate) struct EditControls {
    pub editable_until_ms: u64,
    pub edits_remaining: u8,
}
