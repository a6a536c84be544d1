//! [`PostGenerator`]: a seeded stream of realistic posts in X's native enriched JSON.
//!
//! ## The mix (per root post)
//! | share | kind | notes |
//! |---|---|---|
//! | 30 % | Retweet | `RT @user: …` root (cut at 140 with `…`), full original in `retweeted_status`; no geo; `editable: false` |
//! | 6 % | Quote | own text, `is_quote_status`, `quoted_status` (+ `_id`, `_id_str`, `quoted_status_permalink`) |
//! | 22 % | Reply | leading `@user `, `in_reply_to_*`; half reply to a post seen earlier in the stream |
//! | 42 % | original | 2 % of them are edits of a post from the last 30 minutes (`edit_history` with two ids) |
//!
//! In every post that has its own text: 55 % name one or two things from the vocabulary's
//! name pool (brands, people; Zipf), 25 % carry 1–3 hashtags, 15 % mentions, 25 % links
//! (with the `unwound` enrichment), 4 % cashtags, 30 % emoji, 12 % a common phrase, 18 %
//! media (photos 70 %, video 20 %, GIF 10 %). About one in eight posts exceeds 140 characters
//! and is an extended post (`truncated`, `extended_tweet.full_text`, root text cut with `…` and an
//! `i/web/status` link). 4 % of non-Retweets have a `place`, 40 % of those exact
//! `coordinates`; 35 % of users have Profile Geo (`user.derived.locations`). Languages
//! follow the author: about 62 % `en`, 15 % `es`, 11 % `pt`, 12 % `ja`; 2 % of posts are
//! emoji-only `und`. 0.2 % are nullcast (`scopes.followers: false`).
//!
//! Lengths: entity indices and the 140 limit are counted in code points (X weighs CJK
//! characters double when deciding to truncate; this generator does not).
//!
//! One file on purpose (about 900 lines): every part of a post is drawn from one seeded
//! random stream in a fixed order, so the generator reads as one recipe; moving a part
//! elsewhere would not shorten the recipe, only hide steps of it.

use std::collections::VecDeque;

use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Exp, LogNormal};
use rand_pcg::Pcg64Mcg;

use crate::compose::{Composed, Composer, shift_entities};
use crate::native::{
    Attributes, BoundingBox, Derived, EditControls, EditHistory, ExtendedTweet, MediaEntity,
    MediaList, Permalink, Place, Point, ProfileGeo, ProfileLocation, Scopes, Size, Sizes, Tweet,
    Unwound, UrlEntity, User, Variant, VideoInfo,
};
use crate::snowflake::{created_at, snowflake};
use crate::users::{Profile, mix, profile, tco_code};
use crate::vocab::{Language, Vocabulary, capitalize};
use crate::words::{CITIES, SOURCES};

/// 2026-11-01T00:00:00Z: where a generator's clock starts unless told otherwise.
pub const DEFAULT_START_MS: u64 = 1_793_491_200_000;

/// Posts per second the internal clock advances at unless told otherwise (about the real
/// firehose's average rate).
pub const DEFAULT_RATE: f64 = 6_000.0;

/// Longest root `text` before a post becomes an extended post.
const TEXT_LIMIT: usize = 140;

/// Length of a t.co link (`https://t.co/` + ten characters).
const TCO_LEN: usize = 23;

/// The edit window: a post can be edited for 30 minutes.
const EDIT_WINDOW_MS: u64 = 30 * 60 * 1000;

/// A recently generated post, remembered for replies and edits.
#[derive(Debug, Clone, Copy)]
struct Recent {
    id: u64,
    timestamp_ms: u64,
    author: u32,
}

/// What a root post is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Original,
    Reply,
    Quote,
    Retweet,
}

/// A deterministic stream of posts: the same seed gives the same posts, byte for byte.
///
/// Post ids are Snowflake ids that strictly increase along the stream, and `timestamp_ms` /
/// `created_at` agree with them. The clock advances by exponential gaps at [`DEFAULT_RATE`]
/// posts per second from [`DEFAULT_START_MS`] (see [`PostGenerator::with_clock`]), or is
/// given per post with [`PostGenerator::next_post_at`] (a live demo firehose).
#[derive(Debug)]
pub struct PostGenerator {
    vocab: &'static Vocabulary,
    rng: Pcg64Mcg,
    gap: Exp<f64>,
    clock_ms: f64,
    last_ms: u64,
    sequence: u16,
    worker: u16,
    recent: VecDeque<Recent>,
}

impl PostGenerator {
    /// A generator whose output is a function of `seed` alone.
    pub fn new(seed: u64) -> Self {
        PostGenerator {
            vocab: Vocabulary::shared(),
            rng: Pcg64Mcg::seed_from_u64(seed),
            gap: Exp::new(DEFAULT_RATE / 1000.0).expect("positive rate"),
            clock_ms: DEFAULT_START_MS as f64,
            last_ms: 0,
            sequence: 0,
            worker: (mix(seed) % 1024) as u16,
            recent: VecDeque::with_capacity(512),
        }
    }

    /// Starts the internal clock at `start_ms` (Unix milliseconds) and advances it by
    /// `posts_per_second` on average.
    ///
    /// # Panics
    /// If `posts_per_second` is not positive and finite.
    pub fn with_clock(mut self, start_ms: u64, posts_per_second: f64) -> Self {
        assert!(
            posts_per_second.is_finite() && posts_per_second > 0.0,
            "posts_per_second must be positive"
        );
        self.gap = Exp::new(posts_per_second / 1000.0).expect("positive rate");
        self.clock_ms = start_ms as f64;
        self
    }

    /// The next post, timed by the internal clock, as one line of JSON (no newline).
    pub fn next_post(&mut self) -> String {
        self.clock_ms += self.gap.sample(&mut self.rng);
        self.post_at(self.clock_ms as u64)
    }

    /// The next post, created at `timestamp_ms` (Unix milliseconds; if it is earlier than the
    /// previous post's, the previous time is reused so that ids still increase).
    pub fn next_post_at(&mut self, timestamp_ms: u64) -> String {
        self.clock_ms = self.clock_ms.max(timestamp_ms as f64);
        self.post_at(timestamp_ms)
    }

    fn post_at(&mut self, timestamp_ms: u64) -> String {
        let tweet = self.root(timestamp_ms);
        serde_json::to_string(&tweet).expect("the native model always serializes")
    }

    /// The next root id at `timestamp_ms`, strictly greater than the previous one.
    fn next_id(&mut self, timestamp_ms: u64) -> (u64, u64) {
        let mut ts = timestamp_ms.max(self.last_ms);
        if ts == self.last_ms {
            self.sequence += 1;
            if self.sequence > 0xfff {
                ts += 1;
                self.sequence = 0;
            }
        } else {
            self.sequence = 0;
        }
        self.last_ms = ts;
        (snowflake(ts, self.worker, self.sequence), ts)
    }

    /// An id for a post or media item created at `timestamp_ms` outside the root stream.
    fn side_id(&mut self, timestamp_ms: u64) -> u64 {
        let worker = self.rng.random_range(0..1024u16);
        let sequence = self.rng.random_range(0..4096u16);
        snowflake(timestamp_ms, worker, sequence)
    }

    fn root(&mut self, requested_ms: u64) -> Tweet {
        let (id, ts) = self.next_id(requested_ms);
        let kind = match self.rng.random_range(0..100) {
            0..30 => Kind::Retweet,
            30..36 => Kind::Quote,
            36..58 => Kind::Reply,
            _ => Kind::Original,
        };
        let author_index = self.vocab.user(&mut self.rng);
        let author = profile(self.vocab, author_index);
        let mut tweet = match kind {
            Kind::Retweet => self.retweet(id, ts, &author),
            _ => self.authored(id, ts, &author, kind),
        };
        tweet.filter_level = Some("low");
        tweet.timestamp_ms = Some(ts.to_string());
        if self.recent.len() == self.recent.capacity() {
            self.recent.pop_front();
        }
        if kind != Kind::Retweet {
            self.recent.push_back(Recent {
                id,
                timestamp_ms: ts,
                author: author_index,
            });
        }
        tweet
    }

    /// A post with its own text: an original, a reply or a quote.
    fn authored(&mut self, id: u64, ts: u64, author: &Profile, kind: Kind) -> Tweet {
        let language = self.post_language(author);
        let mut composer = Composer::new(language.spaced());
        let mut reply: Option<(u64, Profile)> = None;
        if kind == Kind::Reply {
            let (status, target) = self.reply_target(ts, author);
            composer.reply_mention(&target.screen_name, &target.name, target.id);
            reply = Some((status, target));
        }
        let emoji_only = self.rng.random_bool(0.02);
        if emoji_only {
            for _ in 0..self.rng.random_range(1..5) {
                composer.word(self.vocab.emoji.sample(&mut self.rng));
            }
        } else {
            self.body(&mut composer, language);
        }
        let media = self
            .rng
            .random_bool(0.18)
            .then(|| self.media(id, ts, &author.screen_name));
        let extended_media = media.map(|m| composer.media(m));
        let composed = composer.finish();

        let mut tweet = self.frame(id, ts, author, composed, extended_media);
        tweet.lang = if emoji_only { "und" } else { language.code() };
        if let Some((status, target)) = reply {
            tweet.in_reply_to_status_id = Some(status);
            tweet.in_reply_to_status_id_str = Some(status.to_string());
            tweet.in_reply_to_user_id = Some(target.id);
            tweet.in_reply_to_user_id_str = Some(target.id.to_string());
            tweet.in_reply_to_screen_name = Some(target.screen_name.clone());
            // Replies to others cannot be edited (self-threads can).
            tweet.editable = target.id == author.id;
        }
        if kind == Kind::Quote {
            let quoted = self.nested_original(ts);
            tweet.is_quote_status = true;
            tweet.quoted_status_id = Some(quoted.id);
            tweet.quoted_status_id_str = Some(quoted.id_str.clone());
            tweet.quoted_status_permalink = Some(Permalink {
                url: format!("https://t.co/{}", tco_code(&mut self.rng)),
                expanded: format!(
                    "https://twitter.com/{}/status/{}",
                    quoted.user.screen_name, quoted.id
                ),
                display: format!("twitter.com/{}/s…", quoted.user.screen_name),
            });
            tweet.quoted_status = Some(Box::new(quoted));
        }
        if kind == Kind::Original && self.rng.random_bool(0.02) {
            self.make_edit(&mut tweet, ts);
        }
        if kind == Kind::Original && self.rng.random_bool(0.002) {
            tweet.scopes = Some(Scopes { followers: false });
            tweet.editable = false;
        }
        if self.rng.random_bool(0.04) {
            self.geotag(&mut tweet, author);
        }
        tweet
    }

    /// A Retweet by `author` of a fresh original by someone else.
    fn retweet(&mut self, id: u64, ts: u64, author: &Profile) -> Tweet {
        let original = self.nested_original(ts);
        let prefix = format!("RT @{}: ", original.user.screen_name);
        let prefix_chars = prefix.chars().count();
        let (full_text, full_entities) = match &original.extended_tweet {
            Some(ext) => (&ext.full_text, &ext.entities),
            None => (&original.text, &original.entities),
        };
        let mut text = prefix.clone();
        text.push_str(full_text);
        let mut limit = text.chars().count();
        if limit > TEXT_LIMIT {
            text = text.chars().take(TEXT_LIMIT - 1).collect();
            text.push('…');
            limit = TEXT_LIMIT - 1;
        }
        let mut entities = shift_entities(full_entities, prefix_chars, limit);
        entities.media.clear();
        entities.user_mentions.insert(
            0,
            crate::native::MentionEntity {
                screen_name: original.user.screen_name.clone(),
                name: original.user.name.clone(),
                id: original.user.id,
                id_str: original.user.id_str.clone(),
                indices: [3, 4 + original.user.screen_name.chars().count()],
            },
        );
        let composed = Composed {
            chars: text.chars().count(),
            display_range: [0, 0],
            text,
            entities,
            cuts: Vec::new(),
        };
        let mut tweet = self.frame(id, ts, author, composed, None);
        tweet.display_text_range = None;
        tweet.lang = original.lang;
        tweet.possibly_sensitive = None;
        tweet.editable = false;
        tweet.retweeted_status = Some(Box::new(original));
        tweet
    }

    /// An original post from the past (minutes to days before `ts`), as nested in a Retweet
    /// or a Quote: with engagement counts, without `timestamp_ms`.
    fn nested_original(&mut self, ts: u64) -> Tweet {
        let age = Exp::new(1.0 / 21_600_000.0)
            .expect("positive rate")
            .sample(&mut self.rng) as u64;
        let created = ts.saturating_sub(1_000 + age);
        let id = self.side_id(created);
        let author = profile(self.vocab, self.vocab.user(&mut self.rng));
        let mut tweet = self.authored(id, created, &author, Kind::Original);
        let popularity = LogNormal::new(3.0, 2.0).expect("valid log-normal");
        let retweets: f64 = popularity.sample(&mut self.rng);
        let retweets = retweets.min(2_000_000.0) as u64;
        tweet.retweet_count = retweets;
        tweet.favorite_count = retweets * self.rng.random_range(2..8);
        tweet.quote_count = retweets / 20;
        tweet.reply_count = retweets / 5;
        tweet
    }

    /// The post and user a reply answers: half the time a post seen earlier in this stream.
    fn reply_target(&mut self, ts: u64, author: &Profile) -> (u64, Profile) {
        if !self.recent.is_empty() && self.rng.random_bool(0.5) {
            let pick = self.recent[self.rng.random_range(0..self.recent.len())];
            return (pick.id, profile(self.vocab, pick.author));
        }
        let earlier = ts.saturating_sub(self.rng.random_range(10_000..86_400_000));
        let status = self.side_id(earlier);
        if self.rng.random_bool(0.05) {
            return (status, author.clone());
        }
        (status, profile(self.vocab, self.vocab.user(&mut self.rng)))
    }

    fn post_language(&mut self, author: &Profile) -> Language {
        if self.rng.random_bool(0.93) {
            author.language
        } else {
            Language::ALL[self.rng.random_range(0..Language::ALL.len())]
        }
    }

    /// The body of a post: sentences of Zipf words with hashtags, mentions, cashtags, emoji,
    /// a phrase and links mixed in.
    ///
    /// Long on purpose: a recipe read top to bottom (length, then each kind of token with
    /// its probability); its parts share the composer and the random stream in order, and
    /// reordering them would change every generated post.
    fn body(&mut self, c: &mut Composer, language: Language) {
        let words = LogNormal::new(13f64.ln(), 0.6)
            .expect("valid log-normal")
            .sample(&mut self.rng)
            .clamp(2.0, 60.0) as usize;
        let rng = &mut self.rng;
        let vocab = self.vocab;
        let pick = |rng: &mut Pcg64Mcg, p: f64, max: usize| -> usize {
            if rng.random_bool(p) {
                rng.random_range(1..=max)
            } else {
                0
            }
        };
        let hashtags = pick(rng, 0.25, 3);
        let mentions = pick(rng, 0.15, 2);
        let links = if rng.random_bool(0.25) {
            if rng.random_bool(0.1) { 2 } else { 1 }
        } else {
            0
        };
        let cashtags = pick(rng, 0.04, 2);
        let emoji = pick(rng, 0.30, 3);
        let phrase = language.spaced() && rng.random_bool(0.12);
        let names = match rng.random_range(0..100) {
            0..45 => 0,
            45..80 => 1,
            _ => 2,
        };

        // Inline extras go at random word positions.
        let mut inline: Vec<(usize, u8)> = Vec::new();
        for (count, tag) in [
            (mentions, 0u8),
            (cashtags, 1),
            (emoji, 2),
            (usize::from(phrase), 3),
            (names, 5),
        ] {
            for _ in 0..count {
                inline.push((rng.random_range(0..=words), tag));
            }
        }
        // Some hashtags inline, the rest at the end.
        let inline_tags = if hashtags > 0 && rng.random_bool(0.3) {
            1
        } else {
            0
        };
        for _ in 0..inline_tags {
            inline.push((rng.random_range(0..=words), 4));
        }
        inline.sort_unstable();

        let mut next_inline = inline.into_iter().peekable();
        let mut sentence_start = true;
        for i in 0..=words {
            while let Some(&(at, tag)) = next_inline.peek() {
                if at != i {
                    break;
                }
                next_inline.next();
                match tag {
                    0 => {
                        let who = profile(vocab, vocab.user(rng));
                        c.mention(&who.screen_name, &who.name, who.id);
                    }
                    1 => c.cashtag(vocab.cashtags.sample(rng)),
                    2 => c.word(vocab.emoji.sample(rng)),
                    3 => c.word(vocab.phrases.sample(rng)),
                    5 => c.word(&capitalize(vocab.names.sample(rng))),
                    _ => c.hashtag(vocab.hashtags.sample(rng)),
                }
            }
            if i == words {
                break;
            }
            let word = vocab.word(language, rng);
            if sentence_start && language.spaced() {
                c.word(&capitalize(word));
            } else {
                c.word(word);
            }
            sentence_start = false;
            let roll = rng.random_range(0..100);
            if i + 1 == words || roll < 8 {
                let end = match (language.spaced(), rng.random_range(0..4)) {
                    (true, 0) => "!",
                    (true, 1) => "?",
                    (true, _) => ".",
                    (false, 0) => "！",
                    (false, _) => "。",
                };
                c.punct(end);
                sentence_start = true;
            } else if roll < 14 && language.spaced() {
                c.punct(",");
            }
        }
        for _ in 0..links {
            let link = self.link(language);
            c.link(link);
        }
        for _ in inline_tags..hashtags {
            c.hashtag(self.vocab.hashtags.sample(&mut self.rng));
        }
        if c.is_empty() {
            c.word(self.vocab.emoji.sample(&mut self.rng));
        }
    }

    /// A link to a Zipf-popular domain with the `unwound` enrichment.
    fn link(&mut self, language: Language) -> UrlEntity {
        let domain = self.vocab.domains.sample(&mut self.rng).to_owned();
        let slug: Vec<&str> = (0..self.rng.random_range(2..6))
            .map(|_| self.vocab.word(Language::English, &mut self.rng))
            .collect();
        let path = if self.rng.random_bool(0.5) {
            format!("/{}/{}", self.rng.random_range(2019..2027), slug.join("-"))
        } else {
            format!("/{}", slug.join("-"))
        };
        let www = if self.rng.random_bool(0.4) {
            "www."
        } else {
            ""
        };
        let expanded_url = format!("https://{www}{domain}{path}");
        let shown = format!("{domain}{path}");
        let display_url = if shown.chars().count() > 26 {
            let mut s: String = shown.chars().take(25).collect();
            s.push('…');
            s
        } else {
            shown
        };
        let title = self.sentence(language, 3, 10, true);
        let description = self.sentence(language, 6, 16, false);
        let status = if self.rng.random_bool(0.95) { 200 } else { 404 };
        UrlEntity {
            url: format!("https://t.co/{}", tco_code(&mut self.rng)),
            expanded_url: expanded_url.clone(),
            display_url,
            indices: [0, 0],
            unwound: Some(Unwound {
                url: expanded_url,
                status: Some(status),
                title: Some(title),
                description: Some(description),
            }),
        }
    }

    /// A sentence of `min..max` words (a page title or description).
    fn sentence(&mut self, language: Language, min: usize, max: usize, title: bool) -> String {
        let n = self.rng.random_range(min..max);
        let sep = if language.spaced() { " " } else { "" };
        let mut out = String::new();
        for i in 0..n {
            let w = self.vocab.word(language, &mut self.rng);
            if i > 0 {
                out.push_str(sep);
            }
            if language.spaced() && (i == 0 || title) {
                out.push_str(&capitalize(w));
            } else {
                out.push_str(w);
            }
        }
        if !title {
            out.push(if language.spaced() { '.' } else { '。' });
        }
        out
    }

    /// Photos (1–4), a video or a GIF, sharing one t.co link as on X.
    fn media(&mut self, post_id: u64, ts: u64, screen_name: &str) -> Vec<MediaEntity> {
        let (kind, count) = match self.rng.random_range(0..10) {
            0..7 => ("photo", self.rng.random_range(1..=4)),
            7..9 => ("video", 1),
            _ => ("animated_gif", 1),
        };
        let code = tco_code(&mut self.rng);
        let url = format!("https://t.co/{code}");
        let size = |w, h, resize| Size { w, h, resize };
        (0..count)
            .map(|n| {
                let uploaded = ts.saturating_sub(self.rng.random_range(1_000..600_000));
                let id = self.side_id(uploaded);
                let key: String = tco_code(&mut self.rng) + &tco_code(&mut self.rng)[..5];
                let (path, video_info) = match kind {
                    "photo" => (format!("media/{key}.jpg"), None),
                    "video" => (
                        format!("ext_tw_video_thumb/{id}/pu/img/{key}.jpg"),
                        Some(VideoInfo {
                            aspect_ratio: Some([16, 9]),
                            duration_millis: Some(self.rng.random_range(3_000..140_000)),
                            variants: [(Some(256_000), "320x180"), (Some(832_000), "640x360"), (Some(2_176_000), "1280x720")]
                                .into_iter()
                                .map(|(bitrate, res)| Variant {
                                    bitrate,
                                    content_type: "video/mp4",
                                    url: format!("https://video.twimg.com/ext_tw_video/{id}/pu/vid/{res}/{key}.mp4?tag=12"),
                                })
                                .chain(std::iter::once(Variant {
                                    bitrate: None,
                                    content_type: "application/x-mpegURL",
                                    url: format!("https://video.twimg.com/ext_tw_video/{id}/pu/pl/{key}.m3u8?tag=12"),
                                }))
                                .collect(),
                        }),
                    ),
                    _ => (
                        format!("tweet_video_thumb/{key}.jpg"),
                        Some(VideoInfo {
                            aspect_ratio: Some([1, 1]),
                            duration_millis: None,
                            variants: vec![Variant {
                                bitrate: Some(0),
                                content_type: "video/mp4",
                                url: format!("https://video.twimg.com/tweet_video/{key}.mp4"),
                            }],
                        }),
                    ),
                };
                let segment = if kind == "photo" { "photo" } else { "video" };
                MediaEntity {
                    id,
                    id_str: id.to_string(),
                    indices: [0, 0],
                    media_url: format!("http://pbs.twimg.com/{path}"),
                    media_url_https: format!("https://pbs.twimg.com/{path}"),
                    url: url.clone(),
                    display_url: format!("pic.twitter.com/{code}"),
                    expanded_url: format!(
                        "https://twitter.com/{screen_name}/status/{post_id}/{segment}/{}",
                        n + 1
                    ),
                    kind,
                    sizes: Some(Sizes {
                        thumb: Some(size(150, 150, "crop")),
                        medium: Some(size(1200, 900, "fit")),
                        small: Some(size(680, 510, "fit")),
                        large: Some(size(2048, 1536, "fit")),
                    }),
                    ext_alt_text: None,
                    video_info,
                }
            })
            .collect()
    }

    /// Wraps composed text into a post: decides between a plain and an extended post and
    /// fills the fields every post has.
    ///
    /// Long on purpose: the fields every post has, written in the order X's JSON has them,
    /// from one draw of the random stream (splitting it would change the generated posts).
    fn frame(
        &mut self,
        id: u64,
        ts: u64,
        author: &Profile,
        composed: Composed,
        media: Option<Vec<MediaEntity>>,
    ) -> Tweet {
        let has_links = !composed.entities.urls.is_empty() || media.is_some();
        let (text, display_text_range, truncated, entities, extended_entities, extended_tweet) =
            if composed.chars <= TEXT_LIMIT {
                (
                    composed.text,
                    Some(composed.display_range),
                    false,
                    composed.entities,
                    media.map(|media| MediaList { media }),
                    None,
                )
            } else {
                // Cut at the last piece boundary that leaves room for "… " and the link.
                let room = TEXT_LIMIT - TCO_LEN - 2;
                let (cut_chars, cut_bytes) = composed
                    .cuts
                    .iter()
                    .copied()
                    .take_while(|&(chars, _)| chars <= room)
                    .last()
                    .unwrap_or((0, 0));
                let link = format!("https://t.co/{}", tco_code(&mut self.rng));
                let text = format!("{}… {link}", &composed.text[..cut_bytes]);
                let mut entities = shift_entities(&composed.entities, 0, cut_chars);
                entities.media.clear();
                entities.urls.push(UrlEntity {
                    url: link,
                    expanded_url: format!("https://twitter.com/i/web/status/{id}"),
                    display_url: "twitter.com/i/web/status/1…".to_owned(),
                    indices: [cut_chars + 2, cut_chars + 2 + TCO_LEN],
                    unwound: None,
                });
                let start = composed.display_range[0].min(cut_chars);
                (
                    text,
                    Some([start, cut_chars + 1]),
                    true,
                    entities,
                    None,
                    Some(ExtendedTweet {
                        full_text: composed.text,
                        display_text_range: composed.display_range,
                        entities: composed.entities,
                        extended_entities: media.map(|media| MediaList { media }),
                    }),
                )
            };
        let (source_name, source_url) = SOURCES[self.source_index()];
        Tweet {
            created_at: created_at(ts),
            id,
            id_str: id.to_string(),
            text,
            display_text_range,
            source: format!("<a href=\"{source_url}\" rel=\"nofollow\">{source_name}</a>"),
            truncated,
            in_reply_to_status_id: None,
            in_reply_to_status_id_str: None,
            in_reply_to_user_id: None,
            in_reply_to_user_id_str: None,
            in_reply_to_screen_name: None,
            user: user_object(author),
            geo: None,
            coordinates: None,
            place: None,
            contributors: (),
            retweeted_status: None,
            quoted_status_id: None,
            quoted_status_id_str: None,
            quoted_status: None,
            quoted_status_permalink: None,
            is_quote_status: false,
            extended_tweet,
            quote_count: 0,
            reply_count: 0,
            retweet_count: 0,
            favorite_count: 0,
            entities,
            extended_entities,
            favorited: false,
            retweeted: false,
            possibly_sensitive: has_links.then(|| self.rng.random_bool(0.02)),
            scopes: None,
            filter_level: None,
            lang: "en",
            edit_history: EditHistory {
                initial_tweet_id: id.to_string(),
                edit_tweet_ids: vec![id.to_string()],
            },
            edit_controls: EditControls {
                editable_until_ms: ts + EDIT_WINDOW_MS,
                edits_remaining: 5,
            },
            editable: true,
            timestamp_ms: None,
        }
    }

    /// Index into [`SOURCES`]: the phone apps dominate.
    fn source_index(&mut self) -> usize {
        match self.rng.random_range(0..100) {
            0..45 => 0,
            45..80 => 1,
            80..90 => 2,
            _ => self.rng.random_range(3..SOURCES.len()),
        }
    }

    /// Turns `tweet` into the edit of a post by the same author from the last 30 minutes,
    /// when there is one.
    fn make_edit(&mut self, tweet: &mut Tweet, ts: u64) {
        let author = tweet.user.id;
        let vocab = self.vocab;
        let Some(initial) = self.recent.iter().rev().copied().find(|r| {
            ts.saturating_sub(r.timestamp_ms) < EDIT_WINDOW_MS
                && crate::users::user_id(r.author) == author
        }) else {
            // No post of this author in the window: edit the latest post of anyone, as
            // that author.
            let Some(latest) = self.recent.back().copied() else {
                return;
            };
            if ts.saturating_sub(latest.timestamp_ms) >= EDIT_WINDOW_MS {
                return;
            }
            tweet.user = user_object(&profile(vocab, latest.author));
            self.mark_edit(tweet, latest);
            return;
        };
        self.mark_edit(tweet, initial);
    }

    fn mark_edit(&mut self, tweet: &mut Tweet, initial: Recent) {
        tweet.edit_history = EditHistory {
            initial_tweet_id: initial.id.to_string(),
            edit_tweet_ids: vec![initial.id.to_string(), tweet.id_str.clone()],
        };
        tweet.edit_controls = EditControls {
            editable_until_ms: initial.timestamp_ms + EDIT_WINDOW_MS,
            edits_remaining: 4,
        };
    }

    /// Tags the post with a place (the author's Profile Geo city when known), and sometimes
    /// an exact point within a few kilometres of the city centre.
    fn geotag(&mut self, tweet: &mut Tweet, author: &Profile) {
        let city_index = author
            .profile_city
            .unwrap_or_else(|| self.rng.random_range(0..CITIES.len()));
        let city = &CITIES[city_index];
        let (dlon, dlat) = (0.25, 0.2);
        tweet.place = Some(Place {
            id: format!("{:016x}", mix(city_index as u64 + 0x91ace)),
            url: format!(
                "https://api.twitter.com/1.1/geo/id/{:016x}.json",
                mix(city_index as u64 + 0x91ace)
            ),
            place_type: "city",
            name: city.name,
            full_name: format!("{}, {}", city.name, city.short),
            country_code: city.country_code,
            country: city.country,
            bounding_box: BoundingBox {
                kind: "Polygon",
                coordinates: [[
                    [city.lon - dlon, city.lat - dlat],
                    [city.lon - dlon, city.lat + dlat],
                    [city.lon + dlon, city.lat + dlat],
                    [city.lon + dlon, city.lat - dlat],
                ]],
            },
            attributes: Attributes {},
        });
        if self.rng.random_bool(0.4) {
            let lon = round6(city.lon + self.rng.random_range(-0.05..0.05));
            let lat = round6(city.lat + self.rng.random_range(-0.04..0.04));
            tweet.coordinates = Some(Point {
                kind: "Point",
                coordinates: [lon, lat],
            });
            tweet.geo = Some(Point {
                kind: "Point",
                coordinates: [lat, lon],
            });
        }
    }
}

impl Iterator for PostGenerator {
    type Item = String;

    /// Never ends: the stream is infinite.
    fn next(&mut self) -> Option<String> {
        Some(self.next_post())
    }
}

fn round6(x: f64) -> f64 {
    (x * 1e6).round() / 1e6
}

/// The `user` object of a profile.
fn user_object(p: &Profile) -> User {
    let image = format!(
        "http://pbs.twimg.com/profile_images/{}/{:x}_normal.jpg",
        p.id % 1_000_000_000_000,
        mix(p.id)
    );
    User {
        id: p.id,
        id_str: p.id.to_string(),
        name: p.name.clone(),
        screen_name: p.screen_name.clone(),
        location: p.location.clone(),
        url: p.url.clone(),
        description: Some(p.description.clone()),
        translator_type: "none",
        protected: p.protected,
        verified: p.verified,
        followers_count: p.followers_count,
        friends_count: p.friends_count,
        listed_count: p.listed_count,
        favourites_count: p.favourites_count,
        statuses_count: p.statuses_count,
        created_at: created_at(p.created_at_ms),
        utc_offset: (),
        time_zone: (),
        geo_enabled: p.profile_city.is_some(),
        lang: (),
        contributors_enabled: false,
        is_translator: false,
        profile_background_color: "F5F8FA",
        profile_background_image_url: (),
        profile_background_image_url_https: (),
        profile_background_tile: false,
        profile_link_color: "1DA1F2",
        profile_sidebar_border_color: "C0DEED",
        profile_sidebar_fill_color: "DDEEF6",
        profile_text_color: "333333",
        profile_use_background_image: true,
        profile_image_url_https: image.replacen("http:", "https:", 1),
        profile_image_url: image,
        profile_banner_url: (!p.default_profile)
            .then(|| format!("https://pbs.twimg.com/profile_banners/{}/1700000000", p.id)),
        default_profile: p.default_profile,
        default_profile_image: false,
        following: (),
        follow_request_sent: (),
        notifications: (),
        derived: p.city().map(|city| Derived {
            locations: vec![ProfileLocation {
                country: city.country,
                country_code: city.country_code,
                locality: city.name,
                region: city.region,
                sub_region: city.sub_region,
                full_name: format!("{}, {}, {}", city.name, city.region, city.country),
                geo: ProfileGeo {
                    coordinates: [city.lon, city.lat],
                    kind: "point",
                },
            }],
        }),
    }
}
