//! Rich-text facets → X's entities (mentions, links, hashtags), with X's indices.
//!
//! A facet marks a range of the text in UTF-8 *bytes*; X's `indices` count *code points*.
//! A facet whose range is empty, reversed, past the end of the text or not on character
//! boundaries is skipped: it cannot be placed, and one bad annotation must not lose the
//! post (clients do the same: they drop facets they cannot apply).

use crate::ids::user_id;
use crate::jetstream::{ByteSlice, Facet};
use crate::x_post::{Entities, MentionEntity, TagEntity, UrlEntity};

const MENTION: &str = "app.bsky.richtext.facet#mention";
const LINK: &str = "app.bsky.richtext.facet#link";
const TAG: &str = "app.bsky.richtext.facet#tag";

/// The entities of `text` from its facets, each list in text order.
pub(crate) fn entities(text: &str, facets: &[Facet]) -> Entities {
    let mut out = Entities::default();
    for facet in facets {
        let Some((indices, slice)) = locate(text, facet.index) else {
            continue;
        };
        for feature in &facet.features {
            match feature.kind.as_str() {
                MENTION => {
                    if let Some(did) = feature.did.as_deref().filter(|d| !d.is_empty()) {
                        out.user_mentions.push(mention(did, slice, indices));
                    }
                }
                LINK => {
                    if let Some(uri) = feature.uri.as_deref().filter(|u| !u.is_empty()) {
                        out.urls.push(link(uri, slice, indices));
                    }
                }
                TAG => {
                    let tag = feature.tag.as_deref().unwrap_or_default();
                    let tag = tag.strip_prefix('#').unwrap_or(tag);
                    if !tag.is_empty() {
                        out.hashtags.push(TagEntity {
                            text: tag.to_owned(),
                            indices,
                        });
                    }
                }
                _ => {}
            }
        }
    }
    out.hashtags.sort_by_key(|e| e.indices);
    out.urls.sort_by_key(|e| e.indices);
    out.user_mentions.sort_by_key(|e| e.indices);
    out
}

/// The facet's range as X's code-point `indices`, and the text it covers; `None` when it
/// cannot be placed (see the module).
pub(crate) fn locate(text: &str, range: ByteSlice) -> Option<([usize; 2], &str)> {
    let ByteSlice { start, end } = range;
    if start >= end {
        return None;
    }
    let slice = text.get(start..end)?;
    let before = text[..start].chars().count();
    Some(([before, before + slice.chars().count()], slice))
}

/// A mention: the handle as written (without its `@`), the id of the DID.
fn mention(did: &str, slice: &str, indices: [usize; 2]) -> MentionEntity {
    let written = slice.trim().trim_start_matches('@');
    let screen_name = if written.is_empty() { did } else { written };
    let id = user_id(did);
    MentionEntity {
        screen_name: screen_name.to_owned(),
        name: screen_name.to_owned(),
        id,
        id_str: id.to_string(),
        indices,
    }
}

/// A link: there is no shortener, so `url` is the full URI too; `display_url` is the text
/// the author showed (Bluesky clients shorten long links in the text itself).
fn link(uri: &str, slice: &str, indices: [usize; 2]) -> UrlEntity {
    let shown = slice.trim();
    UrlEntity {
        url: uri.to_owned(),
        expanded_url: uri.to_owned(),
        display_url: if shown.is_empty() {
            display_url(uri)
        } else {
            shown.to_owned()
        },
        indices,
        unwound: None,
    }
}

/// How X shows a URL: without its scheme, cut to 25 characters and an ellipsis.
pub(crate) fn display_url(uri: &str) -> String {
    let bare = uri
        .strip_prefix("https://")
        .or_else(|| uri.strip_prefix("http://"))
        .unwrap_or(uri);
    if bare.chars().count() <= 26 {
        return bare.to_owned();
    }
    let mut cut: String = bare.chars().take(25).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jetstream::Feature;

    fn facet(start: usize, end: usize, kind: &str, value: &str) -> Facet {
        let mut feature = Feature {
            kind: format!("app.bsky.richtext.facet#{kind}"),
            did: None,
            uri: None,
            tag: None,
        };
        match kind {
            "mention" => feature.did = Some(value.to_owned()),
            "link" => feature.uri = Some(value.to_owned()),
            _ => feature.tag = Some(value.to_owned()),
        }
        Facet {
            index: ByteSlice { start, end },
            features: vec![feature],
        }
    }

    /// The byte range of `needle` in `text` (its first occurrence).
    fn bytes_of(text: &str, needle: &str) -> (usize, usize) {
        let start = text.find(needle).expect("needle in text");
        (start, start + needle.len())
    }

    /// (text, the tagged substring, its code-point indices as X counts them).
    const TABLE: &[(&str, &str, [usize; 2])] = &[
        ("#rust is fun", "#rust", [0, 5]),
        ("café #rust", "#rust", [5, 10]),
        // A ZWJ family is 5 code points (3 people, 2 joiners), 18 bytes.
        ("👨\u{200d}👩\u{200d}👧 #family", "#family", [6, 13]),
        // A flag is two regional indicators.
        ("🇯🇵🇫🇷 #flags", "#flags", [5, 11]),
        // CJK: 3 bytes per character.
        ("日本語のテキスト #日本", "#日本", [9, 12]),
        // Combining marks count on their own: e + U+0301, twice.
        ("e\u{301}e\u{301} #accents", "#accents", [5, 13]),
        // Skin tone modifier and a variation selector.
        ("👍🏽❤\u{fe0f} #mixed", "#mixed", [5, 11]),
        // The tag itself in several scripts.
        ("x #ünïcödé😀 y", "#ünïcödé😀", [2, 11]),
    ];

    #[test]
    fn byte_ranges_become_code_point_indices() {
        for &(text, needle, want) in TABLE {
            let (start, end) = bytes_of(text, needle);
            let out = entities(text, &[facet(start, end, "tag", &needle[1..])]);
            assert_eq!(out.hashtags.len(), 1, "{text:?}");
            assert_eq!(out.hashtags[0].indices, want, "{text:?}");
            assert_eq!(out.hashtags[0].text, &needle[1..]);
            // The indices pick the same characters out of the text as the bytes did.
            let picked: String = text.chars().skip(want[0]).take(want[1] - want[0]).collect();
            assert_eq!(picked, needle);
        }
    }

    #[test]
    fn unplaceable_facets_are_skipped_and_the_rest_kept() {
        let text = "é #ok";
        let good = bytes_of(text, "#ok");
        let out = entities(
            text,
            &[
                facet(1, 2, "tag", "inside-é"),   // byte 1 is inside the 2-byte é
                facet(3, 100, "tag", "past-end"), // beyond the text
                facet(4, 3, "tag", "reversed"),
                facet(3, 3, "tag", "empty"),
                facet(good.0, good.1, "tag", "ok"),
            ],
        );
        let tags: Vec<&str> = out.hashtags.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(tags, ["ok"]);
        assert_eq!(out.hashtags[0].indices, [2, 5]);
    }

    #[test]
    fn mentions_links_and_tags_fill_their_lists() {
        let text = "hi @alice.bsky.social see example.com/a… #tag";
        let m = bytes_of(text, "@alice.bsky.social");
        let l = bytes_of(text, "example.com/a…");
        let t = bytes_of(text, "#tag");
        let out = entities(
            text,
            &[
                facet(t.0, t.1, "tag", "tag"),
                facet(m.0, m.1, "mention", "did:plc:alice"),
                facet(l.0, l.1, "link", "https://example.com/a/long/path"),
            ],
        );
        let mention = &out.user_mentions[0];
        assert_eq!(mention.screen_name, "alice.bsky.social");
        assert_eq!(mention.id, user_id("did:plc:alice"));
        assert_eq!(mention.id_str, mention.id.to_string());
        assert_eq!(mention.indices, [3, 21]);
        let url = &out.urls[0];
        assert_eq!(url.expanded_url, "https://example.com/a/long/path");
        assert_eq!(url.url, url.expanded_url);
        assert_eq!(url.display_url, "example.com/a…");
        assert_eq!(url.indices, [26, 40]);
        assert_eq!(out.hashtags[0].text, "tag");
    }

    #[test]
    fn features_without_their_value_are_skipped() {
        let text = "@x #";
        let out = entities(
            text,
            &[
                facet(0, 2, "mention", ""),
                facet(3, 4, "tag", "#"),
                facet(0, 2, "link", ""),
            ],
        );
        assert!(out.user_mentions.is_empty() && out.hashtags.is_empty() && out.urls.is_empty());
    }

    #[test]
    fn long_urls_are_shown_short() {
        assert_eq!(display_url("https://example.com/"), "example.com/");
        assert_eq!(
            display_url("https://example.com/a/very/long/path/indeed"),
            "example.com/a/very/long/p…"
        );
    }
}
