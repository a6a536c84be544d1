//! What a post offers to rules, extracted once per post.
//!
//! Matching a post against many rules reads the same few things over and over: the tokens of
//! each text-like field, the hashtags, the author, flags such as "is a Retweet". This module
//! reads them from the [`PostView`] once, in the forms the compiled plan compares against
//! (interned token ids, folded strings, a flag bit set), into buffers that are reused from
//! post to post so that steady-state matching does not allocate.

use sluice_model::PostView;
use sluice_model::post::Entities;
use sluice_model::sampling::sample_bucket;
use sluice_rules::{CountField, HasKind, IsKind};
use sluice_text::{TokenizedText, fold_into};

use crate::compile::{
    FieldKind, Flag, NumKind, OFF_GRID, PROFILE_OFF_GRID, StrKind, SubstrSource, has_flag, is_flag,
};
use crate::epoch_map::EpochMap;
use crate::gate::str_bit;
use crate::geo::point_cell;
use crate::grams::GramSet;
use crate::index::cell_key;
use crate::intern::{Interner, Known, Lookup, UNKNOWN};

/// One tokenized field.
#[derive(Debug, Default, Clone)]
pub(crate) struct Field {
    /// Which field this is.
    pub(crate) kind: FieldKind,
    /// The folded text and its tokens.
    pub(crate) text: TokenizedText,
    /// The interned id of each token, [`UNKNOWN`] for tokens no rule uses.
    pub(crate) ids: Vec<u32>,
    /// The field's text as the post holds it, to recognise a repeat of it.
    raw: String,
}

/// 64-bit words of [`Features::token_bloom`]: 1,024 bits, so that the fifteen or so
/// interned tokens of a realistic post set under 2 % of them (one in fifty hints passes
/// for a token the post does not have).
pub(crate) const TOKEN_BLOOM_WORDS: usize = 16;

/// The bit of interned token `id` in [`Features::token_bloom`] (a multiplicative hash:
/// ids are dense, neighbours must not share words).
#[inline]
pub(crate) fn token_bloom_bit(id: u32) -> u32 {
    id.wrapping_mul(0x9E37_79B9) >> (32 - 10)
}

/// The features of one post. Reused across posts; [`Features::load`] resets it.
#[derive(Debug, Default, Clone)]
pub(crate) struct Features {
    /// Stamp of the current post: the per-post maps (the token kinds here, the candidates
    /// in the matcher's `Scratch`) read entries of other stamps as absent.
    pub(crate) epoch: u32,
    /// Mask of the field kinds to tokenize for the current post.
    wanted: u16,
    /// Field pool; the first `field_count` are the current post's.
    fields: Vec<Field>,
    field_count: usize,
    /// Per interned token id of the post: the mask of the field kinds it occurs in.
    token_kinds: EpochMap<u16>,
    /// The lookups of a field's tokens, started together.
    lookups: Vec<Lookup>,
    /// Each (field kind, token id) of the post under which the index has a token posting
    /// ([`Known::posted`]), once: the token postings the matcher probes.
    pub(crate) token_keys: Vec<(FieldKind, u32)>,
    /// Backing text of `strs`.
    str_buf: String,
    /// String attributes: kind and range of `str_buf`.
    strs: Vec<(StrKind, u32, u32)>,
    /// Numeric attributes.
    pub(crate) nums: Vec<(NumKind, u64)>,
    /// `has:`/`is:` flag bits.
    pub(crate) flags: u32,
    /// The union of the [`str_bit`]s of the string attributes.
    pub(crate) str_bits: u64,
    /// A Bloom filter of the interned tokens of the post, in any field kind, by
    /// [`token_bloom_bit`]: what a [`Hint`](crate::gate::Hint) checks, without a lookup.
    pub(crate) token_bloom: [u64; TOKEN_BLOOM_WORDS],
    /// Root author counters, indexed by [`count_index`].
    pub(crate) counts: [Option<u64>; 4],
    /// Root `coordinates` (not on Retweets).
    pub(crate) coordinates: Option<[f64; 2]>,
    /// Every vertex of the root `place.bounding_box` (not on Retweets).
    pub(crate) place_vertices: Vec<[f64; 2]>,
    /// `derived.locations[].geo` of the root author.
    pub(crate) profile_points: Vec<[f64; 2]>,
    /// `sample_bucket(id)`.
    pub(crate) sample_bucket: Option<u8>,
    /// Geo grid cells ([`cell_key`]) of the root's coordinates, of its place's first vertex
    /// and of the profile points.
    pub(crate) cells: Vec<u32>,
    /// Per [`crate::compile::SubstrSource`]: the quadgrams of its folded fields, filled by
    /// the matcher while it probes them.
    pub(crate) grams: [GramSet; 2],
}

/// The position of a counter in [`Features::counts`].
pub(crate) fn count_index(field: CountField) -> usize {
    match field {
        CountField::Followers => 0,
        CountField::Friends => 1,
        CountField::Statuses => 2,
        CountField::Listed => 3,
    }
}

/// The root post, its Retweeted original, its quoted post and the original's quoted post.
pub(crate) fn post_family<'p, 'a>(
    root: &'p PostView<'a>,
) -> impl Iterator<Item = &'p PostView<'a>> {
    let rt = root.retweeted_status.as_deref();
    let qt = root.quoted_status.as_deref();
    let rt_qt = rt.and_then(|r| r.quoted_status.as_deref());
    [Some(root), rt, qt, rt_qt].into_iter().flatten()
}

impl Features {
    /// The current post's tokenized fields.
    pub(crate) fn fields(&self) -> &[Field] {
        &self.fields[..self.field_count]
    }

    /// The current post's tokenized fields, with the gram set of `src` to fill from them.
    pub(crate) fn fields_and_grams(&mut self, src: SubstrSource) -> (&[Field], &mut GramSet) {
        (
            &self.fields[..self.field_count],
            &mut self.grams[src as usize],
        )
    }

    /// The current post's string attributes.
    pub(crate) fn strs(&self) -> impl Iterator<Item = (StrKind, &str)> + '_ {
        self.strs
            .iter()
            .map(|&(k, s, e)| (k, &self.str_buf[s as usize..e as usize]))
    }

    /// Whether `id` occurs in a field whose kind is in `mask`.
    #[inline]
    pub(crate) fn token_in(&self, id: u32, mask: u16) -> bool {
        self.token_kinds
            .get(id)
            .is_some_and(|&kinds| kinds & mask != 0)
    }

    /// Whether the flag is set.
    #[inline]
    pub(crate) fn flag(&self, flag: Flag) -> bool {
        self.flags & (1 << flag) != 0
    }

    /// Replaces the features with those of `post`, tokens interned through `interner`.
    ///
    /// Only fields whose kind is in `wanted` (a mask of [`FieldKind::bit`]s) are tokenized:
    /// no rule reads the others.
    ///
    /// Long on purpose: one pass over the post that visits each field once, in the order
    /// the view holds them, and fills every feature from it. Split into a function per field
    /// family, each would walk the post family and entity sets again on the hottest path.
    pub(crate) fn load(&mut self, post: &PostView<'_>, interner: &Interner, wanted: u16) {
        self.wanted = wanted;
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            // Stamps wrapped; 1 tells the per-post maps to forget the last lap.
            self.epoch = 1;
        }
        self.token_kinds.start(self.epoch);
        self.token_bloom = [0; TOKEN_BLOOM_WORDS];
        self.field_count = 0;
        self.token_keys.clear();
        self.str_buf.clear();
        self.strs.clear();
        self.nums.clear();
        self.flags = 0;
        self.place_vertices.clear();
        self.profile_points.clear();
        self.coordinates = None;
        self.sample_bucket = post.id().map(sample_bucket);
        self.grams.iter_mut().for_each(GramSet::reset);

        let rt = post.retweeted_status.as_deref();
        let is_retweet = rt.is_some();
        for p in post_family(post) {
            self.push_field(FieldKind::Text, p.full_text(), interner);
            for set in p.entity_sets() {
                self.load_entities(set, interner);
            }
        }

        let user = post.user.as_ref();
        if let Some(user) = user {
            for (kind, value) in [
                (FieldKind::Bio, &user.description),
                (FieldKind::BioName, &user.name),
                (FieldKind::BioLocation, &user.location),
            ] {
                if let Some(v) = value {
                    self.push_field(kind, v, interner);
                }
            }
            if let Some(name) = &user.screen_name {
                self.push_str(StrKind::From, name, true);
            }
            if let Some(id) = user.user_id() {
                self.nums.push((NumKind::From, id));
            }
            self.counts = [
                user.followers_count,
                user.friends_count,
                user.statuses_count,
                user.listed_count,
            ];
            if user.verified == Some(true) {
                self.set(is_flag(IsKind::Verified));
            }
            if let Some(derived) = &user.derived {
                if !derived.locations.is_empty() {
                    self.set(has_flag(HasKind::ProfileGeo));
                }
                for loc in &derived.locations {
                    for (kind, value) in [
                        (StrKind::ProfileCountry, &loc.country_code),
                        (StrKind::ProfileRegion, &loc.region),
                        (StrKind::ProfileLocality, &loc.locality),
                        (StrKind::ProfileSubregion, &loc.sub_region),
                    ] {
                        if let Some(v) = value {
                            self.push_str(kind, v, true);
                        }
                    }
                    if let Some(point) = loc.geo.and_then(|g| g.coordinates) {
                        self.profile_points.push(point);
                    }
                }
            }
        } else {
            self.counts = [None; 4];
        }
        if let Some(source) = &post.source {
            self.push_field(FieldKind::Source, source, interner);
        }
        if let Some(name) = &post.in_reply_to_screen_name {
            self.push_str(StrKind::To, name, true);
        }
        if let Some(id) = post.reply_to_user() {
            self.nums.push((NumKind::To, id));
        }
        if let Some(id) = post.reply_to_status() {
            self.nums.push((NumKind::InReplyToStatus, id));
        }
        if let Some(id) = post.conversation() {
            self.nums.push((NumKind::Conversation, id));
        }
        if let Some(rt) = rt {
            self.set(is_flag(IsKind::Retweet));
            if let Some(id) = rt.id() {
                self.nums.push((NumKind::RetweetsOfStatus, id));
            }
            if let Some(user) = &rt.user {
                if let Some(name) = &user.screen_name {
                    self.push_str(StrKind::RetweetsOf, name, true);
                }
                if let Some(id) = user.user_id() {
                    self.nums.push((NumKind::RetweetsOf, id));
                }
            }
        }
        if let Some(lang) = &post.lang {
            let start = self.str_buf.len();
            fold_into(lang, &mut self.str_buf);
            let value = &self.str_buf[start..];
            if value.is_empty() || value == "und" {
                self.str_buf.truncate(start);
            } else {
                self.strs
                    .push((StrKind::Lang, start as u32, self.str_buf.len() as u32));
                self.set(has_flag(HasKind::Lang));
            }
        }
        if [Some(post), rt, post.quoted_status.as_deref()]
            .into_iter()
            .flatten()
            .any(|p| p.reply_to_status().is_some())
        {
            self.set(is_flag(IsKind::Reply));
        }
        if post.is_quote_status == Some(true) || post.quoted_status.is_some() {
            self.set(is_flag(IsKind::Quote));
        }
        if post.scopes.and_then(|s| s.followers) == Some(false) {
            self.set(is_flag(IsKind::Nullcast));
        }
        if !is_retweet {
            self.load_geo(post, interner);
        }
        self.load_cells();
        self.str_bits = self.strs().fold(0, |bits, (k, v)| bits | str_bit(k, v));
    }

    /// Grid cells of the locations read by the geo regions: the coordinates, the first
    /// place vertex (a place inside a region has every vertex inside, so the first one too)
    /// and each profile point. A point off the grid sets its off-grid flag instead.
    fn load_cells(&mut self) {
        self.cells.clear();
        let root = self
            .coordinates
            .into_iter()
            .chain(self.place_vertices.first().copied());
        for point in root {
            match point_cell(point) {
                Some(cell) => self.cells.push(cell_key(false, cell)),
                None => self.flags |= 1 << OFF_GRID,
            }
        }
        for &point in &self.profile_points {
            match point_cell(point) {
                Some(cell) => self.cells.push(cell_key(true, cell)),
                None => self.flags |= 1 << PROFILE_OFF_GRID,
            }
        }
    }

    fn load_geo(&mut self, post: &PostView<'_>, interner: &Interner) {
        self.coordinates = post.coordinates.and_then(|c| c.coordinates);
        if let Some(place) = &post.place {
            self.set(has_flag(HasKind::Geo));
            if let Some(id) = &place.id {
                self.push_str(StrKind::PlaceId, id, false);
            }
            if let Some(code) = &place.country_code {
                self.push_str(StrKind::PlaceCountry, code, true);
            }
            for name in [&place.full_name, &place.name].into_iter().flatten() {
                self.push_field(FieldKind::PlaceName, name, interner);
            }
            if let Some(bbox) = &place.bounding_box {
                self.place_vertices
                    .extend(bbox.coordinates.iter().flatten().copied());
            }
        }
        if self.coordinates.is_some() {
            self.set(has_flag(HasKind::Geo));
        }
    }

    fn load_entities(&mut self, set: &Entities<'_>, interner: &Interner) {
        if !set.urls.is_empty() || !set.media.is_empty() {
            self.set(has_flag(HasKind::Links));
        }
        for url in &set.urls {
            if let Some(v) = &url.expanded_url {
                self.push_field(FieldKind::Url, v, interner);
            }
            if let Some(unwound) = &url.unwound {
                for (kind, value) in [
                    (FieldKind::Url, &unwound.url),
                    (FieldKind::UrlTitle, &unwound.title),
                    (FieldKind::UrlDescription, &unwound.description),
                ] {
                    if let Some(v) = value {
                        self.push_field(kind, v, interner);
                    }
                }
            }
        }
        if !set.hashtags.is_empty() {
            self.set(has_flag(HasKind::Hashtags));
        }
        for tag in &set.hashtags {
            self.push_str(StrKind::Hashtag, &tag.text, true);
        }
        if !set.symbols.is_empty() {
            self.set(has_flag(HasKind::Symbols));
        }
        for tag in &set.symbols {
            self.push_str(StrKind::Cashtag, &tag.text, true);
        }
        if !set.user_mentions.is_empty() {
            self.set(has_flag(HasKind::Mentions));
        }
        for mention in &set.user_mentions {
            if let Some(name) = &mention.screen_name {
                self.push_str(StrKind::Mention, name, true);
            }
            if let Some(id) = mention.id_str.or(mention.id) {
                self.nums.push((NumKind::Mention, id));
            }
        }
        if !set.media.is_empty() {
            self.set(has_flag(HasKind::Media));
        }
        for media in &set.media {
            match media.kind.as_deref() {
                Some("photo") => self.set(has_flag(HasKind::Images)),
                Some("video") => self.set(has_flag(HasKind::Videos)),
                _ => {}
            }
        }
    }

    fn set(&mut self, flag: Flag) {
        self.flags |= 1 << flag;
    }

    fn push_str(&mut self, kind: StrKind, value: &str, folded: bool) {
        let start = self.str_buf.len();
        if folded {
            fold_into(value, &mut self.str_buf);
        } else {
            self.str_buf.push_str(value);
        }
        self.strs
            .push((kind, start as u32, self.str_buf.len() as u32));
    }

    fn push_field(&mut self, kind: FieldKind, raw: &str, interner: &Interner) {
        if self.wanted & kind.bit() == 0 {
            return;
        }
        // A repeat of a field already loaded (a URL's `unwound.url` is usually its
        // `expanded_url`; the same link sits in `entities` and `extended_entities`) adds
        // nothing: every predicate over fields asks whether *some* field of a kind has
        // something. Comparing the raw text is far cheaper than folding and tokenizing it.
        if self.fields[..self.field_count]
            .iter()
            .any(|f| f.kind == kind && f.raw == raw)
        {
            return;
        }
        if self.field_count == self.fields.len() {
            self.fields.push(Field::default());
        }
        let Field {
            kind: field_kind,
            text,
            ids,
            raw: raw_copy,
        } = &mut self.fields[self.field_count];
        self.field_count += 1;
        *field_kind = kind;
        raw_copy.clear();
        raw_copy.push_str(raw);
        text.clear();
        text.push(raw);
        ids.clear();
        // Every lookup is started before any is finished, so that their cache misses
        // overlap (see `table`).
        self.lookups.clear();
        self.lookups
            .extend(text.tokens().map(|token| interner.start(token)));
        for (lookup, token) in self.lookups.iter().zip(text.tokens()) {
            let Some(Known { id, posted }) = interner.finish(lookup, token) else {
                ids.push(UNKNOWN);
                continue;
            };
            ids.push(id);
            let bit = token_bloom_bit(id);
            self.token_bloom[bit as usize / 64] |= 1 << (bit % 64);
            let kinds = self.token_kinds.entry(id).0;
            if *kinds & kind.bit() == 0 {
                *kinds |= kind.bit();
                // A token no rule is anchored on in this field kind has no posting to probe.
                if posted & kind.bit() != 0 {
                    self.token_keys.push((kind, id));
                }
            }
        }
    }
}
