//! Writing post text and its entities together, so the entity indices are right by
//! construction.
//!
//! X's `indices` are `[start, end)` offsets in Unicode code points (not bytes, not UTF-16
//! units) into the `text` they belong to; a hashtag's span includes its `#`, a mention's its
//! `@`, a cashtag's its `$`. The [`Composer`] appends text piece by piece and records each
//! entity at the offset where it wrote it.

use crate::native::{Entities, MediaEntity, MentionEntity, TagEntity, UrlEntity};

/// Post text under construction with its entities.
#[derive(Debug)]
pub(crate) struct Composer {
    text: String,
    /// Length of `text` in code points.
    chars: usize,
    /// Whether words are separated by spaces (not in Japanese).
    spaced: bool,
    /// Whether the last piece was an entity or a link (always followed by a space).
    after_entity: bool,
    entities: Entities,
    /// `(code points, bytes)` at the end of every piece: where the text may be truncated.
    cuts: Vec<(usize, usize)>,
    /// Code point where the displayed text starts (after leading reply mentions).
    display_start: usize,
    /// Code point where the displayed text ends (before a trailing media link).
    display_end: Option<usize>,
}

/// A finished text: the string, its entities and where it may be cut.
#[derive(Debug, Clone)]
pub(crate) struct Composed {
    pub text: String,
    pub chars: usize,
    pub entities: Entities,
    pub cuts: Vec<(usize, usize)>,
    pub display_range: [usize; 2],
}

impl Composer {
    /// An empty text; `spaced` is false for languages written without spaces.
    pub(crate) fn new(spaced: bool) -> Self {
        Composer {
            text: String::new(),
            chars: 0,
            spaced,
            after_entity: false,
            entities: Entities::default(),
            cuts: Vec::new(),
            display_start: 0,
            display_end: None,
        }
    }

    /// True when nothing has been written.
    pub(crate) fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    fn separate(&mut self, entity: bool) {
        let open = self.text.is_empty() || self.text.ends_with(' ');
        if !open && (self.spaced || entity || self.after_entity) {
            self.raw(" ");
        }
        self.after_entity = entity;
    }

    fn raw(&mut self, s: &str) -> [usize; 2] {
        let start = self.chars;
        self.text.push_str(s);
        self.chars += s.chars().count();
        [start, self.chars]
    }

    fn cut_here(&mut self) {
        self.cuts.push((self.chars, self.text.len()));
    }

    /// Appends a word (or an emoji, or a phrase).
    pub(crate) fn word(&mut self, word: &str) {
        self.separate(false);
        self.raw(word);
        self.cut_here();
    }

    /// Appends punctuation directly after the previous piece (`,`, `.`, `。`).
    pub(crate) fn punct(&mut self, p: &str) {
        self.raw(p);
        if let Some(last) = self.cuts.last_mut() {
            *last = (self.chars, self.text.len());
        }
    }

    /// Appends `#tag`.
    pub(crate) fn hashtag(&mut self, tag: &str) {
        self.separate(true);
        let indices = self.raw(&format!("#{tag}"));
        self.entities.hashtags.push(TagEntity {
            text: tag.to_owned(),
            indices,
        });
        self.cut_here();
    }

    /// Appends `$TICKER`.
    pub(crate) fn cashtag(&mut self, ticker: &str) {
        self.separate(true);
        let indices = self.raw(&format!("${ticker}"));
        self.entities.symbols.push(TagEntity {
            text: ticker.to_owned(),
            indices,
        });
        self.cut_here();
    }

    /// Appends `@screen_name`.
    pub(crate) fn mention(&mut self, screen_name: &str, name: &str, id: u64) {
        self.separate(true);
        let indices = self.raw(&format!("@{screen_name}"));
        self.entities.user_mentions.push(MentionEntity {
            screen_name: screen_name.to_owned(),
            name: name.to_owned(),
            id,
            id_str: id.to_string(),
            indices,
        });
        self.cut_here();
    }

    /// Appends a reply's leading `@screen_name ` and starts the displayed text after it.
    pub(crate) fn reply_mention(&mut self, screen_name: &str, name: &str, id: u64) {
        self.mention(screen_name, name, id);
        self.raw(" ");
        self.after_entity = false;
        self.display_start = self.chars;
    }

    /// Appends a link's t.co URL; `entity.indices` is filled in.
    pub(crate) fn link(&mut self, mut entity: UrlEntity) {
        self.separate(true);
        entity.indices = self.raw(&entity.url);
        self.entities.urls.push(entity);
        self.cut_here();
    }

    /// Appends the trailing media link shared by all `media` (one t.co URL for up to four
    /// photos, as on X); their `indices` are filled in. The displayed text ends before it.
    /// Returns the media with indices, for `extended_entities`.
    pub(crate) fn media(&mut self, mut media: Vec<MediaEntity>) -> Vec<MediaEntity> {
        let Some(first) = media.first() else {
            return media;
        };
        let url = first.url.clone();
        self.display_end = Some(self.chars);
        self.separate(true);
        let indices = self.raw(&url);
        for m in &mut media {
            m.indices = indices;
        }
        // `entities.media` holds the first item only; `extended_entities` all of them.
        self.entities.media.push(media[0].clone());
        self.cut_here();
        media
    }

    /// Finishes the text.
    pub(crate) fn finish(self) -> Composed {
        Composed {
            display_range: [self.display_start, self.display_end.unwrap_or(self.chars)],
            text: self.text,
            chars: self.chars,
            entities: self.entities,
            cuts: self.cuts,
        }
    }
}

/// Shifts every entity of `entities` right by `by` code points and keeps only those that end
/// at or before `limit` (used to build a Retweet's or a truncated post's root entities).
pub(crate) fn shift_entities(entities: &Entities, by: usize, limit: usize) -> Entities {
    fn keep(indices: [usize; 2], by: usize, limit: usize) -> Option<[usize; 2]> {
        let moved = [indices[0] + by, indices[1] + by];
        (moved[1] <= limit).then_some(moved)
    }
    Entities {
        hashtags: entities
            .hashtags
            .iter()
            .filter_map(|e| {
                keep(e.indices, by, limit).map(|indices| TagEntity {
                    indices,
                    ..e.clone()
                })
            })
            .collect(),
        urls: entities
            .urls
            .iter()
            .filter_map(|e| {
                keep(e.indices, by, limit).map(|indices| UrlEntity {
                    indices,
                    ..e.clone()
                })
            })
            .collect(),
        user_mentions: entities
            .user_mentions
            .iter()
            .filter_map(|e| {
                keep(e.indices, by, limit).map(|indices| MentionEntity {
                    indices,
                    ..e.clone()
                })
            })
            .collect(),
        symbols: entities
            .symbols
            .iter()
            .filter_map(|e| {
                keep(e.indices, by, limit).map(|indices| TagEntity {
                    indices,
                    ..e.clone()
                })
            })
            .collect(),
        media: entities
            .media
            .iter()
            .filter_map(|e| {
                keep(e.indices, by, limit).map(|indices| MediaEntity {
                    indices,
                    ..e.clone()
                })
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(text: &str, [start, end]: [usize; 2]) -> String {
        text.chars().skip(start).take(end - start).collect()
    }

    #[test]
    fn indices_are_code_point_offsets_of_the_entity_text() {
        let mut c = Composer::new(true);
        c.reply_mention("ana", "Ana", 7);
        c.word("🔥");
        c.word("café");
        c.hashtag("fútbol");
        c.cashtag("TSLA");
        let done = c.finish();
        assert_eq!(done.text, "@ana 🔥 café #fútbol $TSLA");
        let e = &done.entities;
        assert_eq!(slice(&done.text, e.user_mentions[0].indices), "@ana");
        assert_eq!(slice(&done.text, e.hashtags[0].indices), "#fútbol");
        assert_eq!(slice(&done.text, e.symbols[0].indices), "$TSLA");
        assert_eq!(done.display_range, [5, done.chars]);
    }

    #[test]
    fn unspaced_text_separates_only_entities() {
        let mut c = Composer::new(false);
        c.word("今日");
        c.word("猫");
        c.punct("。");
        c.hashtag("東京");
        c.word("最高");
        assert_eq!(c.finish().text, "今日猫。 #東京 最高");
    }
}
