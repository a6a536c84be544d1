//! Embeds → X's media, link and quote fields.
//!
//! - `app.bsky.embed.images`: photos on the Bluesky CDN, alt text as `ext_alt_text`;
//! - `app.bsky.embed.video`: a video, its HLS playlist and thumbnail on Bluesky's video host;
//! - `app.bsky.embed.external`: a link card, as a URL entity with the card's title and
//!   description in X's Expanded-URL enrichment (`unwound`);
//! - `app.bsky.embed.record`: a quote (of a post; also of a feed, list or starter pack,
//!   which X has no kind for: still a quote, without a quoted post id);
//! - `app.bsky.embed.recordWithMedia`: a quote and its media.
//!
//! Media and cards are not in the text, so their `indices` are the text's end, where X puts
//! the link of trailing media.

use serde_json::Value;

use crate::ids::media_id;
use crate::jetstream::{AspectRatio, Embed};
use crate::x_post::{MediaEntity, Size, Sizes, Unwound, UrlEntity, Variant, VideoInfo};

const IMAGES: &str = "app.bsky.embed.images";
const VIDEO: &str = "app.bsky.embed.video";
const EXTERNAL: &str = "app.bsky.embed.external";
const RECORD: &str = "app.bsky.embed.record";
const RECORD_WITH_MEDIA: &str = "app.bsky.embed.recordWithMedia";

/// What the embed adds to the post.
#[derive(Debug, Default)]
pub(crate) struct EmbedParts {
    pub media: Vec<MediaEntity>,
    /// A link card's URL entity.
    pub card: Option<UrlEntity>,
    /// Whether the post quotes a record.
    pub is_quote: bool,
    /// The quoted record's `at://` URI, when the embed names one.
    pub quoted_uri: Option<String>,
}

/// The post an embed belongs to.
pub(crate) struct Owner<'a> {
    pub did: &'a str,
    pub post_id: u64,
    /// The post on bsky.app, where X would link the media.
    pub web_url: &'a str,
    /// The text's length in code points.
    pub text_end: usize,
}

/// The parts of `embed` (of any kind; unknown kinds add nothing).
pub(crate) fn parts(embed: &Embed, owner: &Owner<'_>) -> EmbedParts {
    let mut out = EmbedParts::default();
    add(embed, owner, &mut out, true);
    out
}

fn add(embed: &Embed, owner: &Owner<'_>, out: &mut EmbedParts, top: bool) {
    let kind = embed.kind.as_deref().unwrap_or_default();
    match kind.strip_suffix("#main").unwrap_or(kind) {
        IMAGES => add_images(embed, owner, out),
        VIDEO => add_video(embed, owner, out),
        EXTERNAL => add_card(embed, owner, out),
        RECORD if top => {
            out.is_quote = true;
            out.quoted_uri = embed.record.as_ref().and_then(uri_of);
        }
        RECORD_WITH_MEDIA if top => {
            out.is_quote = true;
            out.quoted_uri = embed
                .record
                .as_ref()
                .and_then(|r| r.get("record"))
                .and_then(uri_of);
            if let Some(media) = &embed.media {
                add(media, owner, out, false);
            }
        }
        _ => {}
    }
}

/// `uri` of a strong reference.
fn uri_of(reference: &Value) -> Option<String> {
    reference
        .get("uri")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .map(str::to_owned)
}

fn add_images(embed: &Embed, owner: &Owner<'_>, out: &mut EmbedParts) {
    for image in &embed.images {
        let Some(cid) = image.image.as_ref().and_then(|b| b.cid()) else {
            continue;
        };
        let url = format!(
            "https://cdn.bsky.app/img/feed_fullsize/plain/{}/{cid}@jpeg",
            owner.did
        );
        let mut media = media_entity(owner, cid, "photo", url);
        media.sizes = image.aspect_ratio.map(sizes);
        media.ext_alt_text = Some(alt_text(image.alt.as_deref()));
        out.media.push(media);
    }
}

fn add_video(embed: &Embed, owner: &Owner<'_>, out: &mut EmbedParts) {
    let Some(cid) = embed.video.as_ref().and_then(|b| b.cid()) else {
        return;
    };
    // The video host takes the DID percent-encoded in its paths.
    let base = format!(
        "https://video.bsky.app/watch/{}/{cid}",
        owner.did.replace(':', "%3A")
    );
    let mut media = media_entity(owner, cid, "video", format!("{base}/thumbnail.jpg"));
    media.sizes = embed.aspect_ratio.map(sizes);
    media.ext_alt_text = Some(alt_text(embed.alt.as_deref()));
    media.video_info = Some(VideoInfo {
        aspect_ratio: embed.aspect_ratio.map(|r| [r.width, r.height]),
        duration_millis: None,
        variants: vec![Variant {
            bitrate: None,
            content_type: "application/x-mpegURL",
            url: format!("{base}/playlist.m3u8"),
        }],
    });
    out.media.push(media);
}

fn add_card(embed: &Embed, owner: &Owner<'_>, out: &mut EmbedParts) {
    let Some(external) = embed.external.as_ref().filter(|e| !e.uri.is_empty()) else {
        return;
    };
    let uri = &external.uri;
    out.card = Some(UrlEntity {
        url: uri.clone(),
        expanded_url: uri.clone(),
        display_url: crate::facets::display_url(uri),
        indices: [owner.text_end, owner.text_end],
        unwound: Some(Unwound {
            url: uri.clone(),
            status: None,
            title: external.title.clone().filter(|t| !t.is_empty()),
            description: external.description.clone().filter(|d| !d.is_empty()),
        }),
    });
}

fn media_entity(owner: &Owner<'_>, cid: &str, kind: &'static str, url: String) -> MediaEntity {
    let id = media_id(owner.post_id, owner.did, cid);
    MediaEntity {
        id,
        id_str: id.to_string(),
        indices: [owner.text_end, owner.text_end],
        media_url: url.clone(),
        media_url_https: url,
        url: owner.web_url.to_owned(),
        display_url: crate::facets::display_url(owner.web_url),
        expanded_url: owner.web_url.to_owned(),
        kind,
        sizes: None,
        ext_alt_text: Some(None),
        video_info: None,
    }
}

fn sizes(ratio: AspectRatio) -> Sizes {
    Sizes {
        large: Some(Size {
            w: ratio.width,
            h: ratio.height,
            resize: "fit",
        }),
        ..Sizes::default()
    }
}

fn alt_text(alt: Option<&str>) -> Option<String> {
    alt.filter(|a| !a.trim().is_empty()).map(str::to_owned)
}
