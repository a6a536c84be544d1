//! The entity objects of X's native (v1.1) post JSON, for writing: `entities`,
//! `extended_entities` and what they hold, in X's field order.
//!
//! Two producers write X-native posts: the synthetic generator (`sluice-synth`) and the
//! Bluesky conversion (`sluice-bluesky`). Their entities are the same objects, with a few
//! parts only one of them fills, so the types live here once. A field that one producer
//! leaves out where X would too is an `Option` skipped when `None`; a field X always sends
//! is written even when empty or `null`. [`crate::post::PostView`] is the reading side of
//! the same payload.

use serde::Serialize;

/// `entities`. The four lists are always present (possibly empty); `media` only with media.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Entities {
    /// `hashtags`.
    pub hashtags: Vec<TagEntity>,
    /// `urls`.
    pub urls: Vec<UrlEntity>,
    /// `user_mentions`.
    pub user_mentions: Vec<MentionEntity>,
    /// `symbols` (cashtags).
    pub symbols: Vec<TagEntity>,
    /// `media`, left out when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub media: Vec<MediaEntity>,
}

/// `extended_entities`: every media item.
#[derive(Debug, Clone, Serialize)]
pub struct MediaList {
    /// `media`.
    pub media: Vec<MediaEntity>,
}

/// A hashtag or cashtag entity.
#[derive(Debug, Clone, Serialize)]
pub struct TagEntity {
    /// The tag without its `#` or `$`.
    pub text: String,
    /// Code-point offsets in the text.
    pub indices: [usize; 2],
}

/// A user-mention entity.
#[derive(Debug, Clone, Serialize)]
pub struct MentionEntity {
    /// `screen_name`.
    pub screen_name: String,
    /// `name`.
    pub name: String,
    /// `id`.
    pub id: u64,
    /// `id_str`.
    pub id_str: String,
    /// Code-point offsets in the text.
    pub indices: [usize; 2],
}

/// A URL entity.
#[derive(Debug, Clone, Serialize)]
pub struct UrlEntity {
    /// `url` (a t.co link on X).
    pub url: String,
    /// `expanded_url`.
    pub expanded_url: String,
    /// `display_url`.
    pub display_url: String,
    /// Code-point offsets in the text.
    pub indices: [usize; 2],
    /// The Expanded-URL enrichment, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unwound: Option<Unwound>,
}

/// `unwound`: the Expanded-URL enrichment.
#[derive(Debug, Clone, Serialize)]
pub struct Unwound {
    /// The final URL.
    pub url: String,
    /// Its HTTP status, left out when unknown (a Bluesky link card has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// The page title (`null` when unknown).
    pub title: Option<String>,
    /// The page description (`null` when unknown).
    pub description: Option<String>,
}

/// A media entity (photo, video or GIF).
#[derive(Debug, Clone, Serialize)]
pub struct MediaEntity {
    /// `id`.
    pub id: u64,
    /// `id_str`.
    pub id_str: String,
    /// Code-point offsets in the text.
    pub indices: [usize; 2],
    /// `media_url`.
    pub media_url: String,
    /// `media_url_https`.
    pub media_url_https: String,
    /// `url`.
    pub url: String,
    /// `display_url`.
    pub display_url: String,
    /// `expanded_url`.
    pub expanded_url: String,
    /// `type`: `photo`, `video` or `animated_gif`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `sizes`, left out when unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sizes: Option<Sizes>,
    /// `ext_alt_text`: left out (`None`), `null` (`Some(None)`) or the text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ext_alt_text: Option<Option<String>>,
    /// `video_info`, for videos and GIFs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video_info: Option<VideoInfo>,
}

/// `sizes` of a media entity; each size left out when unknown.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Sizes {
    /// `thumb`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thumb: Option<Size>,
    /// `medium`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub medium: Option<Size>,
    /// `small`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub small: Option<Size>,
    /// `large`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub large: Option<Size>,
}

/// One size of a media entity.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Size {
    /// Width in pixels.
    pub w: u32,
    /// Height in pixels.
    pub h: u32,
    /// `fit` or `crop`.
    pub resize: &'static str,
}

/// `video_info` of a video or GIF.
#[derive(Debug, Clone, Serialize)]
pub struct VideoInfo {
    /// `[width, height]`, left out when unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aspect_ratio: Option<[u32; 2]>,
    /// Length, left out for GIFs and when unknown.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_millis: Option<u64>,
    /// Its encodings.
    pub variants: Vec<Variant>,
}

/// One encoding of a video.
#[derive(Debug, Clone, Serialize)]
pub struct Variant {
    /// Bits per second, left out for playlists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bitrate: Option<u32>,
    /// MIME type.
    pub content_type: &'static str,
    /// Where it is.
    pub url: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_parts_are_left_out_and_nullable_ones_written_as_null() {
        let media = MediaEntity {
            id: 1,
            id_str: "1".into(),
            indices: [0, 0],
            media_url: "m".into(),
            media_url_https: "m".into(),
            url: "u".into(),
            display_url: "d".into(),
            expanded_url: "e".into(),
            kind: "photo",
            sizes: None,
            ext_alt_text: Some(None),
            video_info: None,
        };
        let json = serde_json::to_string(&media).unwrap();
        assert!(
            json.ends_with(r#""type":"photo","ext_alt_text":null}"#),
            "{json}"
        );
        let unwound = Unwound {
            url: "u".into(),
            status: None,
            title: None,
            description: Some("d".into()),
        };
        assert_eq!(
            serde_json::to_string(&unwound).unwrap(),
            r#"{"url":"u","title":null,"description":"d"}"#
        );
        let sizes = Sizes {
            large: Some(Size {
                w: 2,
                h: 1,
                resize: "fit",
            }),
            ..Sizes::default()
        };
        assert_eq!(
            serde_json::to_string(&sizes).unwrap(),
            r#"{"large":{"w":2,"h":1,"resize":"fit"}}"#
        );
    }
}
