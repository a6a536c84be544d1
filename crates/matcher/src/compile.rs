//! Rule AST → plan: the tree the index and the gates analyse at insert time, then laid out
//! flat ([`crate::program::Program`]) for evaluation.
//!
//! Compilation does every per-rule step once, at insert time, so that matching does none of
//! it: values are folded, phrases tokenized and their tokens interned, numeric user ids
//! parsed, substring patterns given a prepared searcher, operator variants grouped into a few
//! predicate shapes. The meaning of each predicate is `docs/matching-semantics.md`.

use memchr::memmem::Finder;
use sluice_rules::{BoundingBox, Circle, Clause, CountField, CountRange, Expr, HasKind, IsKind};
use sluice_text::{fold, tokenize};

use crate::intern::{Interner, UNKNOWN};

/// A tokenized field of a post; a phrase predicate names the kinds it searches as a mask.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub(crate) enum FieldKind {
    /// Untruncated text of one of the post's posts.
    #[default]
    Text = 0,
    /// `expanded_url` or `unwound.url` of a URL entity.
    Url = 1,
    /// `unwound.title`.
    UrlTitle = 2,
    /// `unwound.description`.
    UrlDescription = 3,
    /// Root author's `description`.
    Bio = 4,
    /// Root author's `name`.
    BioName = 5,
    /// Root author's `location`.
    BioLocation = 6,
    /// Root `source`.
    Source = 7,
    /// Root `place.full_name` / `place.name` (absent on Retweets).
    PlaceName = 8,
}

/// Number of [`FieldKind`]s.
pub(crate) const FIELD_KINDS: usize = 9;
const _: () = assert!(FIELD_KINDS <= 16, "field masks are u16");

impl FieldKind {
    /// Every kind, in discriminant order.
    pub(crate) const ALL: [FieldKind; FIELD_KINDS] = [
        FieldKind::Text,
        FieldKind::Url,
        FieldKind::UrlTitle,
        FieldKind::UrlDescription,
        FieldKind::Bio,
        FieldKind::BioName,
        FieldKind::BioLocation,
        FieldKind::Source,
        FieldKind::PlaceName,
    ];

    /// This kind's bit in a field mask.
    pub(crate) const fn bit(self) -> u16 {
        1 << self as u8
    }
}

/// Exact-value attributes of a post compared as (folded) strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub(crate) enum StrKind {
    /// Hashtag entity text.
    Hashtag,
    /// Cashtag (symbol) entity text.
    Cashtag,
    /// User-mention screen name.
    Mention,
    /// Root author screen name.
    From,
    /// Root `in_reply_to_screen_name`.
    To,
    /// Screen name of the Retweeted post's author.
    RetweetsOf,
    /// Root `lang` unless `und`.
    Lang,
    /// Root `place.id`, not folded (absent on Retweets).
    PlaceId,
    /// Root `place.country_code` (absent on Retweets).
    PlaceCountry,
    /// `derived.locations[].country_code`.
    ProfileCountry,
    /// `derived.locations[].region`.
    ProfileRegion,
    /// `derived.locations[].locality`.
    ProfileLocality,
    /// `derived.locations[].sub_region`.
    ProfileSubregion,
}

/// Number of [`StrKind`]s.
pub(crate) const STR_KINDS: usize = 13;

/// Exact-value attributes of a post compared as 64-bit ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub(crate) enum NumKind {
    /// User-mention id.
    Mention,
    /// Root author id.
    From,
    /// Root `in_reply_to_user_id`.
    To,
    /// Id of the Retweeted post's author.
    RetweetsOf,
    /// Id of the Retweeted post.
    RetweetsOfStatus,
    /// Root `in_reply_to_status_id`.
    InReplyToStatus,
    /// Root conversation id ([`sluice_model::PostView::conversation`]).
    Conversation,
}

/// Boolean attributes (`has:` and `is:`), as bit numbers of a post's flag set.
pub(crate) type Flag = u8;

/// Set when the root's coordinates or first place vertex lie off the geo grid (not a valid
/// point), so that rules anchored on grid cells are still tried. Never set by real posts.
pub(crate) const OFF_GRID: Flag = 15;

/// As [`OFF_GRID`], for a point of the root author's profile locations.
pub(crate) const PROFILE_OFF_GRID: Flag = 16;

/// Number of flags: ten `has:` kinds, five `is:` kinds, then the two off-grid flags.
pub(crate) const FLAGS: usize = 17;

/// The flag bit of `has:kind`. `has:cashtags` is v2's name for `has:symbols`: one bit.
pub(crate) fn has_flag(kind: HasKind) -> Flag {
    match kind {
        HasKind::Geo => 0,
        HasKind::ProfileGeo => 1,
        HasKind::Links => 2,
        HasKind::Mentions => 3,
        HasKind::Hashtags => 4,
        HasKind::Symbols | HasKind::Cashtags => 5,
        HasKind::Media => 6,
        HasKind::Images => 7,
        HasKind::Videos => 8,
        HasKind::Lang => 9,
    }
}

/// The flag bit of `is:kind`.
pub(crate) fn is_flag(kind: IsKind) -> Flag {
    match kind {
        IsKind::Retweet => 10,
        IsKind::Reply => 11,
        IsKind::Quote => 12,
        IsKind::Verified => 13,
        IsKind::Nullcast => 14,
    }
}

/// Which folded fields a substring operator searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub(crate) enum SubstrSource {
    /// `contains:` — text fields.
    Text = 0,
    /// `url_contains:` — URL fields.
    Url = 1,
}

impl SubstrSource {
    /// The kind of the fields it searches.
    pub(crate) fn field_kind(self) -> FieldKind {
        match self {
            SubstrSource::Text => FieldKind::Text,
            SubstrSource::Url => FieldKind::Url,
        }
    }
}

/// The interned tokens of a phrase. Most rule terms are one or two words: their ids are
/// kept inline in the plan node (in the 16 bytes a boxed slice takes), so evaluating them
/// follows no pointer.
#[derive(Debug, Clone)]
pub(crate) enum TokenIds {
    /// One or two tokens; a second id of [`UNKNOWN`] (never an interned id) means one. One
    /// variant for both, so that the enum keeps the size of a boxed slice: a null pointer
    /// tells it apart.
    Inline([u32; 2]),
    /// Any other number of tokens.
    Many(Box<[u32]>),
}

impl std::ops::Deref for TokenIds {
    type Target = [u32];

    fn deref(&self) -> &[u32] {
        match self {
            TokenIds::Inline(ids) if ids[1] == UNKNOWN => &ids[..1],
            TokenIds::Inline(ids) => ids,
            TokenIds::Many(ids) => ids,
        }
    }
}

impl FromIterator<u32> for TokenIds {
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> Self {
        let ids: Vec<u32> = iter.into_iter().collect();
        debug_assert!(!ids.contains(&UNKNOWN), "an interned id is never UNKNOWN");
        match *ids {
            [id] => TokenIds::Inline([id, UNKNOWN]),
            [first, second] => TokenIds::Inline([first, second]),
            _ => TokenIds::Many(ids.into_boxed_slice()),
        }
    }
}

/// A compiled boolean expression.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    /// Every child.
    And(Box<[Node]>),
    /// Any child.
    Or(Box<[Node]>),
    /// Not the child.
    Not(Box<Node>),
    /// One predicate.
    Leaf(Pred),
}

/// A compiled clause.
#[derive(Debug, Clone)]
pub(crate) enum Pred {
    /// Can never match (a value with no tokens, `lang:und` or empty, an empty substring).
    Never,
    /// The interned tokens occur consecutively in one field whose kind is in `fields`.
    Phrase {
        /// Mask of [`FieldKind::bit`]s.
        fields: u16,
        /// Interned tokens, at least one.
        ids: TokenIds,
    },
    /// `"…"~N` over text fields.
    Proximity {
        /// Interned tokens, at least one.
        ids: TokenIds,
        /// N.
        distance: u8,
    },
    /// The folded pattern is a substring of a folded field of `src`.
    Substring {
        /// Which fields.
        src: SubstrSource,
        /// The folded pattern, non-empty, with its searcher (boxed: it is large).
        finder: Box<Finder<'static>>,
    },
    /// The post has attribute `kind` equal to `value`.
    Str {
        /// Which attribute.
        kind: StrKind,
        /// Folded (except for place ids).
        value: Box<str>,
    },
    /// A user given by screen name or numeric id.
    User {
        /// The attribute holding screen names.
        name_kind: StrKind,
        /// The attribute holding ids.
        id_kind: NumKind,
        /// Folded screen name.
        name: Box<str>,
        /// The value as an id, when it is numeric.
        id: Option<u64>,
    },
    /// The post has attribute `kind` equal to `value`.
    Num {
        /// Which attribute.
        kind: NumKind,
        /// The id.
        value: u64,
    },
    /// `place:` — place id, or a phrase of the place names.
    Place {
        /// The value as written, compared exactly with `place.id`.
        id: Box<str>,
        /// Interned tokens of the value (possibly none).
        ids: TokenIds,
    },
    /// An author counter in range.
    Count {
        /// Which counter.
        field: CountField,
        /// Inclusive range.
        range: CountRange,
    },
    /// A point within a circle: the post's location, or a profile location.
    Radius {
        /// `profile_point_radius:` rather than `point_radius:`.
        profile: bool,
        /// The circle.
        circle: Circle,
    },
    /// A point within a box: the post's location, or a profile location.
    Box {
        /// `profile_bounding_box:` rather than `bounding_box:`.
        profile: bool,
        /// The box.
        bbox: BoundingBox,
    },
    /// A `has:`/`is:` flag is set.
    Flag(Flag),
    /// `sample:N`.
    Sample(u8),
}

/// Compiles `expr`, taking interner references for its tokens (given back by
/// [`crate::program::Program::release`]).
pub(crate) fn compile(expr: &Expr, interner: &mut Interner) -> Node {
    match expr {
        Expr::And(children) => Node::And(children.iter().map(|c| compile(c, interner)).collect()),
        Expr::Or(children) => Node::Or(children.iter().map(|c| compile(c, interner)).collect()),
        Expr::Not(child) => Node::Not(Box::new(compile(child, interner))),
        Expr::Clause(clause) => Node::Leaf(compile_clause(clause, interner)),
    }
}

/// The mask of [`FieldKind`]s whose fields `pred` reads: a post's fields of other kinds
/// need not be tokenized for it.
pub(crate) fn pred_fields(pred: &Pred) -> u16 {
    match pred {
        Pred::Phrase { fields, .. } => *fields,
        Pred::Proximity { .. } => FieldKind::Text.bit(),
        Pred::Substring { src, .. } => src.field_kind().bit(),
        Pred::Place { ids, .. } if !ids.is_empty() => FieldKind::PlaceName.bit(),
        _ => 0,
    }
}

/// Gives back the interner references [`compile`] took for `pred`.
pub(crate) fn release_pred(pred: &Pred, interner: &mut Interner) {
    if let Pred::Phrase { ids, .. } | Pred::Proximity { ids, .. } | Pred::Place { ids, .. } = pred {
        ids.iter().for_each(|&id| interner.release(id));
    }
}

fn intern_tokens(value: &str, interner: &mut Interner) -> TokenIds {
    tokenize(value)
        .iter()
        .map(|t| interner.acquire(t))
        .collect()
}

fn phrase(fields: u16, value: &str, interner: &mut Interner) -> Pred {
    let ids = intern_tokens(value, interner);
    if ids.is_empty() {
        Pred::Never
    } else {
        Pred::Phrase { fields, ids }
    }
}

fn folded(value: &str) -> Box<str> {
    fold(value).into()
}

fn user(name_kind: StrKind, id_kind: NumKind, value: &str) -> Pred {
    Pred::User {
        name_kind,
        id_kind,
        name: folded(value),
        id: numeric(value),
    }
}

/// The value as a user or status id: ASCII digits only.
pub(crate) fn numeric(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse().ok()
}

fn substring(src: SubstrSource, value: &str) -> Pred {
    let pattern = fold(value);
    if pattern.is_empty() {
        return Pred::Never;
    }
    Pred::Substring {
        src,
        finder: Box::new(Finder::new(pattern.as_bytes()).into_owned()),
    }
}

/// One clause of the rule tree as a predicate.
///
/// Long on purpose: one arm per operator of the catalogue, so the whole operator → predicate
/// mapping reads in one place, beside its twin in [`crate::naive`].
fn compile_clause(clause: &Clause, interner: &mut Interner) -> Pred {
    use FieldKind as F;
    let text_or_url = F::Text.bit() | F::Url.bit();
    match clause {
        Clause::Keyword(v) | Clause::Phrase(v) => phrase(text_or_url, v, interner),
        Clause::Proximity { phrase, distance } => {
            let ids = intern_tokens(phrase, interner);
            if ids.is_empty() {
                Pred::Never
            } else {
                Pred::Proximity {
                    ids,
                    distance: *distance,
                }
            }
        }
        Clause::Hashtag(v) => Pred::Str {
            kind: StrKind::Hashtag,
            value: folded(v),
        },
        Clause::Cashtag(v) => Pred::Str {
            kind: StrKind::Cashtag,
            value: folded(v),
        },
        Clause::Mention(v) => user(StrKind::Mention, NumKind::Mention, v),
        Clause::From(v) => user(StrKind::From, NumKind::From, v),
        Clause::To(v) => user(StrKind::To, NumKind::To, v),
        Clause::RetweetsOf(v) => user(StrKind::RetweetsOf, NumKind::RetweetsOf, v),
        Clause::RetweetsOfStatusId(n) => Pred::Num {
            kind: NumKind::RetweetsOfStatus,
            value: *n,
        },
        Clause::InReplyToStatusId(n) => Pred::Num {
            kind: NumKind::InReplyToStatus,
            value: *n,
        },
        Clause::Contains(v) => substring(SubstrSource::Text, v),
        Clause::UrlContains(v) => substring(SubstrSource::Url, v),
        Clause::Url(v) => phrase(F::Url.bit(), v, interner),
        Clause::UrlTitle(v) => phrase(F::UrlTitle.bit(), v, interner),
        Clause::UrlDescription(v) => phrase(F::UrlDescription.bit(), v, interner),
        Clause::Bio(v) => phrase(F::Bio.bit(), v, interner),
        Clause::BioName(v) => phrase(F::BioName.bit(), v, interner),
        Clause::BioLocation(v) => phrase(F::BioLocation.bit(), v, interner),
        Clause::Source(v) => phrase(F::Source.bit(), v, interner),
        Clause::Count { field, range } => Pred::Count {
            field: *field,
            range: *range,
        },
        Clause::Lang(v) => {
            let value = folded(v);
            if value.is_empty() || &*value == "und" {
                Pred::Never
            } else {
                Pred::Str {
                    kind: StrKind::Lang,
                    value,
                }
            }
        }
        Clause::Place(v) => Pred::Place {
            id: v.as_str().into(),
            ids: intern_tokens(v, interner),
        },
        Clause::PlaceCountry(v) => Pred::Str {
            kind: StrKind::PlaceCountry,
            value: folded(v),
        },
        Clause::PointRadius(circle) => Pred::Radius {
            profile: false,
            circle: *circle,
        },
        Clause::BoundingBox(bbox) => Pred::Box {
            profile: false,
            bbox: *bbox,
        },
        Clause::ProfileCountry(v) => Pred::Str {
            kind: StrKind::ProfileCountry,
            value: folded(v),
        },
        Clause::ProfileRegion(v) => Pred::Str {
            kind: StrKind::ProfileRegion,
            value: folded(v),
        },
        Clause::ProfileLocality(v) => Pred::Str {
            kind: StrKind::ProfileLocality,
            value: folded(v),
        },
        Clause::ProfileSubregion(v) => Pred::Str {
            kind: StrKind::ProfileSubregion,
            value: folded(v),
        },
        Clause::ProfilePointRadius(circle) => Pred::Radius {
            profile: true,
            circle: *circle,
        },
        Clause::ProfileBoundingBox(bbox) => Pred::Box {
            profile: true,
            bbox: *bbox,
        },
        Clause::Has(kind) => Pred::Flag(has_flag(*kind)),
        Clause::Is(kind) => Pred::Flag(is_flag(*kind)),
        Clause::Sample(n) => Pred::Sample(*n),
        Clause::ConversationId(n) => Pred::Num {
            kind: NumKind::Conversation,
            value: *n,
        },
        // Context and entity annotations are not in X's native format, and sluice has no
        // embedding model: these never match (docs/matching-semantics.md). `Never` has an
        // empty anchor set, so a rule that needs one is never even a candidate.
        Clause::Context(_) | Clause::Entity(_) | Clause::Embedding(_) => Pred::Never,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phrases_are_tokenized_and_interned_once_per_use() {
        let mut interner = Interner::default();
        let expr = Expr::And(vec![
            Expr::Clause(Clause::Phrase("Coca-Cola".into())),
            Expr::Clause(Clause::Keyword("COLA".into())),
        ]);
        let node = compile(&expr, &mut interner);
        let cola = interner.get("cola").expect("interned");
        let Node::And(children) = &node else {
            panic!("and expected")
        };
        assert!(matches!(&children[0], Node::Leaf(Pred::Phrase { ids, .. }) if ids[1] == cola));
        crate::program::Program::new(node).release(&mut interner);
        assert_eq!(interner.get("cola"), None);
    }

    #[test]
    fn phrase_ids_read_back_as_given_inline_or_boxed() {
        for ids in [vec![], vec![7], vec![7, 0], vec![7, 0, 9], vec![1, 2, 3, 4]] {
            let kept: TokenIds = ids.iter().copied().collect();
            assert_eq!(*kept, *ids);
            assert_eq!(
                matches!(kept, TokenIds::Inline(_)),
                (1..=2).contains(&ids.len())
            );
        }
        assert_eq!(size_of::<TokenIds>(), size_of::<Box<[u32]>>());
    }

    #[test]
    fn empty_values_never_match_and_ids_are_numeric() {
        let mut interner = Interner::default();
        let node = compile(&Expr::Clause(Clause::Keyword("!!".into())), &mut interner);
        assert!(matches!(node, Node::Leaf(Pred::Never)));
        let node = compile(&Expr::Clause(Clause::Lang("UND".into())), &mut interner);
        assert!(matches!(node, Node::Leaf(Pred::Never)));
        assert_eq!(numeric("12345"), Some(12345));
        assert_eq!(numeric("+12"), None);
        assert_eq!(numeric("jack"), None);
    }
}
