//! The syntax tree of a PowerTrack rule.
//!
//! The tree is pure syntax: it records what the rule says, with operator aliases resolved to
//! one variant and values unescaped, but it knows nothing about how posts are tokenized or
//! indexed (that is `sluice-matcher`'s job). Values keep the case and spelling the customer
//! wrote, because the rules API echoes rules back verbatim and the canonical printer must
//! reproduce them.
//!
//! The parser always returns a *normalized* tree, which is what makes
//! `parse(print(parse(r))) == parse(r)` hold:
//! - no `And` directly inside an `And`, no `Or` directly inside an `Or` (they are flattened);
//! - no `And`/`Or` with fewer than two children (a group of one clause is that clause);
//! - parentheses leave no trace beyond the structure they imply.

/// A parsed, validated rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The boolean structure of the rule.
    pub expr: Expr,
}

/// A boolean combination of clauses.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// Every child must match (clauses separated by whitespace).
    And(Vec<Expr>),
    /// At least one child must match (clauses separated by ` OR `).
    Or(Vec<Expr>),
    /// The child must not match (`-clause` or `-( … )`).
    Not(Box<Expr>),
    /// A single clause.
    Clause(Clause),
}

/// One clause of a rule: a keyword, a phrase or an operator with its argument.
///
/// String values are stored unescaped and as written (case preserved). Operators that have
/// aliases (`user_bio:` for `bio:`, …) are stored under their canonical variant.
#[derive(Debug, Clone, PartialEq)]
pub enum Clause {
    /// A bare keyword or emoji, e.g. `apple`, `🍕`. Matches tokens of the post text; a
    /// keyword that tokenizes into several tokens (CJK text, `don't`) matches as a phrase.
    Keyword(String),
    /// `"exact phrase"`; the contents, with `\"` unescaped to `"`.
    Phrase(String),
    /// `"k1 k2 …"~N`: the keywords within `distance` tokens of each other (N ≤ 6).
    Proximity {
        /// The quoted contents.
        phrase: String,
        /// N.
        distance: u8,
    },
    /// `#tag`: a hashtag entity (without the `#`).
    Hashtag(String),
    /// `@user`: a user-mention entity (without the `@`).
    Mention(String),
    /// `$TAG`: a cashtag (symbol) entity (without the `$`).
    Cashtag(String),
    /// `contains:` substring of the post text.
    Contains(String),
    /// `from:` author, a username (without `@`) or a numeric user id, as written.
    From(String),
    /// `to:` the user replied to, username or numeric id.
    To(String),
    /// `retweets_of:` (alias `retweets_of_user:`), username or numeric id.
    RetweetsOf(String),
    /// `retweets_of_status_id:` (alias `retweets_of_tweet_id:`).
    RetweetsOfStatusId(u64),
    /// `in_reply_to_status_id:` (alias `in_reply_to_tweet_id:`).
    InReplyToStatusId(u64),
    /// `url:` tokenized match on expanded (and unwound) URLs.
    Url(String),
    /// `url_contains:` substring of expanded (and unwound) URLs.
    UrlContains(String),
    /// `url_title:` (alias `within_url_title:`) keyword/phrase in the unwound page title.
    UrlTitle(String),
    /// `url_description:` (alias `within_url_description:`).
    UrlDescription(String),
    /// `bio:` (alias `user_bio:`) keyword/phrase in the author's description.
    Bio(String),
    /// `bio_name:` keyword/phrase in the author's display name.
    BioName(String),
    /// `bio_location:` (alias `user_bio_location:`) keyword/phrase in the free-text location.
    BioLocation(String),
    /// `followers_count:`, `friends_count:`, … with `N` or `N..M`.
    Count {
        /// Which counter of the author.
        field: CountField,
        /// The inclusive range.
        range: CountRange,
    },
    /// `lang:` a BCP-47 code from X's list, as written.
    Lang(String),
    /// `place:` a place name or place id.
    Place(String),
    /// `place_country:` an ISO-3166-1 alpha-2 code.
    PlaceCountry(String),
    /// `point_radius:[lon lat r]`.
    PointRadius(Circle),
    /// `bounding_box:[w s e n]` (alias `geo_bounding_box:`).
    BoundingBox(BoundingBox),
    /// `profile_country:`.
    ProfileCountry(String),
    /// `profile_region:`.
    ProfileRegion(String),
    /// `profile_locality:`.
    ProfileLocality(String),
    /// `profile_subregion:`.
    ProfileSubregion(String),
    /// `profile_point_radius:[lon lat r]`.
    ProfilePointRadius(Circle),
    /// `profile_bounding_box:[w s e n]`.
    ProfileBoundingBox(BoundingBox),
    /// `has:…`.
    Has(HasKind),
    /// `is:…`.
    Is(IsKind),
    /// `sample:N`, 1 ≤ N ≤ 100.
    Sample(u8),
    /// `source:` the client application (name or URL).
    Source(String),
    /// `conversation_id:` the id of the post that started the conversation (v2 filtered
    /// stream only).
    ConversationId(u64),
    /// `context:domain.entity` or `context:domain.*`: a context annotation of the post (v2
    /// filtered stream only).
    Context(ContextRef),
    /// `entity:` a named entity X's annotations found in the post, by its name (v2 filtered
    /// stream only).
    Entity(String),
    /// `embedding:` semantic similarity to the given text (v2 filtered stream only,
    /// Enterprise; cannot be negated).
    Embedding(String),
}

/// The argument of `context:`: a context annotation's domain, and the entity within it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ContextRef {
    /// The domain id (`10` in `context:10.799022225751871488`).
    pub domain: u64,
    /// The entity id, or `None` for `context:domain.*` (any entity of the domain).
    pub entity: Option<u64>,
}

/// The author counters that count operators test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CountField {
    /// `followers_count:`.
    Followers,
    /// `friends_count:` (alias `following_count:`).
    Friends,
    /// `statuses_count:` (alias `tweets_count:`).
    Statuses,
    /// `listed_count:` (alias `user_in_lists_count:`).
    Listed,
}

/// An inclusive count range: `N` means `N..` (at least N), `N..M` means N to M inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CountRange {
    /// Lower bound, inclusive.
    pub min: u64,
    /// Upper bound, inclusive; `None` for no upper bound.
    pub max: Option<u64>,
}

/// Distance units of the radius operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DistanceUnit {
    /// Miles (`mi`).
    Miles,
    /// Kilometres (`km`).
    Kilometers,
}

/// The argument of `point_radius:` and `profile_point_radius:`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Circle {
    /// Longitude of the centre, decimal degrees, −180..=180.
    pub longitude: f64,
    /// Latitude of the centre, decimal degrees, −90..=90.
    pub latitude: f64,
    /// Radius in `unit`s (less than 25 miles).
    pub radius: f64,
    /// Unit of `radius`.
    pub unit: DistanceUnit,
}

/// The argument of `bounding_box:` and `profile_bounding_box:`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoundingBox {
    /// Western longitude.
    pub west: f64,
    /// Southern latitude.
    pub south: f64,
    /// Eastern longitude.
    pub east: f64,
    /// Northern latitude.
    pub north: f64,
}

/// The `has:` attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HasKind {
    /// `has:geo` — the post has `coordinates` or a `place`.
    Geo,
    /// `has:profile_geo` (alias `has:derived_user_geo`).
    ProfileGeo,
    /// `has:links`.
    Links,
    /// `has:mentions`.
    Mentions,
    /// `has:hashtags`.
    Hashtags,
    /// `has:symbols`.
    Symbols,
    /// `has:media` (alias `has:media_link`).
    Media,
    /// `has:images`.
    Images,
    /// `has:videos` (alias `has:video_link`).
    Videos,
    /// `has:lang` — a language other than `und`.
    Lang,
    /// `has:cashtags` (v2 filtered stream only) — v2's name for what `has:symbols` tests.
    Cashtags,
}

/// The `is:` attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IsKind {
    /// `is:retweet`.
    Retweet,
    /// `is:reply`.
    Reply,
    /// `is:quote`.
    Quote,
    /// `is:verified`.
    Verified,
    /// `is:nullcast` (valid only negated).
    Nullcast,
}

impl Expr {
    /// Whether the expression can only match a post when some non-negated clause other than
    /// `sample:` matches it: a clause, an `And` with such a child, an `Or` whose children all
    /// have one. This is X's "positive clause" test (every valid rule passes it) and tells
    /// the matcher that the expression can be found from the clauses it contains rather than
    /// by testing every post.
    pub fn has_positive_clause(&self) -> bool {
        match self {
            Expr::Clause(clause) => !matches!(clause, Clause::Sample(_)),
            Expr::Not(_) => false,
            Expr::And(children) => children.iter().any(Expr::has_positive_clause),
            Expr::Or(children) => children.iter().all(Expr::has_positive_clause),
        }
    }
}
