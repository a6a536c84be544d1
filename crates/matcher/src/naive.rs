//! The reference evaluator: every rule's syntax tree, walked against the post.
//!
//! Deliberately simple and independent of the index: it reads the semantics table of
//! `docs/matching-semantics.md` clause by clause, straight from the [`PostView`] and the
//! [`Rule`] AST, with string tokens and a brute-force proximity search. The differential
//! tests hold [`crate::Matcher`] to its answers, and the benchmark measures the index
//! against it.

use std::collections::BTreeMap;

use sluice_model::PostView;
use sluice_model::post::UrlEntity;
use sluice_model::sampling::sample_bucket;
use sluice_rules::{Clause, CountField, Expr, HasKind, IsKind, Rule};
use sluice_text::{fold, tokenize};

use crate::geo::{in_box, in_circle};

/// Reference evaluator: walks every rule's tree against the post. Same insert/remove/match
/// API as [`crate::Matcher`]; cost grows with the number of rules.
#[derive(Debug, Clone, Default)]
pub struct NaiveMatcher {
    rules: BTreeMap<u64, Rule>,
}

impl NaiveMatcher {
    /// An empty evaluator.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `rule` under `id`, replacing any rule with that id.
    pub fn insert(&mut self, id: u64, rule: &Rule) {
        self.rules.insert(id, rule.clone());
    }

    /// Removes the rule with `id`; returns whether there was one.
    pub fn remove(&mut self, id: u64) -> bool {
        self.rules.remove(&id).is_some()
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// True when there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Clears `out`, then pushes the id of every matching rule, ascending.
    pub fn match_post(&self, post: &PostView<'_>, out: &mut Vec<u64>) {
        out.clear();
        let view = View::new(post);
        out.extend(
            self.rules
                .iter()
                .filter(|(_, r)| view.expr(&r.expr))
                .map(|(&id, _)| id),
        );
    }
}

/// A tokenized field: its folded text and tokens.
struct Text {
    folded: String,
    tokens: Vec<String>,
}

impl Text {
    fn new(raw: &str) -> Self {
        Self {
            folded: fold(raw).into_owned(),
            tokens: tokenize(raw),
        }
    }
}

/// The post, with its text-like fields tokenized once.
struct View<'p, 'a> {
    root: &'p PostView<'a>,
    family: Vec<&'p PostView<'a>>,
    texts: Vec<Text>,
    urls: Vec<Text>,
    titles: Vec<Text>,
    descriptions: Vec<Text>,
}

fn opt_text(raw: Option<&str>) -> Vec<Text> {
    raw.map(Text::new).into_iter().collect()
}

impl<'p, 'a> View<'p, 'a> {
    fn new(root: &'p PostView<'a>) -> Self {
        let mut family = vec![root];
        if let Some(rt) = root.retweeted_status.as_deref() {
            family.push(rt);
        }
        if let Some(qt) = root.quoted_status.as_deref() {
            family.push(qt);
        }
        if let Some(qt) = root
            .retweeted_status
            .as_deref()
            .and_then(|rt| rt.quoted_status.as_deref())
        {
            family.push(qt);
        }
        let url_entities: Vec<&UrlEntity<'_>> = family
            .iter()
            .flat_map(|p| p.entity_sets())
            .flat_map(|e| e.urls.iter())
            .collect();
        let mut urls = Vec::new();
        let (mut titles, mut descriptions) = (Vec::new(), Vec::new());
        for u in url_entities {
            urls.extend(opt_text(u.expanded_url.as_deref()));
            if let Some(w) = &u.unwound {
                urls.extend(opt_text(w.url.as_deref()));
                titles.extend(opt_text(w.title.as_deref()));
                descriptions.extend(opt_text(w.description.as_deref()));
            }
        }
        let texts = family.iter().map(|p| Text::new(p.full_text())).collect();
        Self {
            root,
            family,
            texts,
            urls,
            titles,
            descriptions,
        }
    }

    fn expr(&self, e: &Expr) -> bool {
        match e {
            Expr::And(c) => c.iter().all(|e| self.expr(e)),
            Expr::Or(c) => c.iter().any(|e| self.expr(e)),
            Expr::Not(c) => !self.expr(c),
            Expr::Clause(c) => self.clause(c),
        }
    }

    fn is_retweet(&self) -> bool {
        self.root.retweeted_status.is_some()
    }

    fn entities(&self) -> impl Iterator<Item = &sluice_model::post::Entities<'a>> + '_ {
        self.family.iter().flat_map(|p| p.entity_sets())
    }

    /// Whether clause `c` holds for this post.
    ///
    /// Long on purpose: one arm per operator, the reference semantics of the whole catalogue
    /// in one place (docs/matching-semantics.md), checked against the indexed matcher.
    fn clause(&self, c: &Clause) -> bool {
        let root = self.root;
        let user = root.user.as_ref();
        let feq = |a: &str, b: &str| fold(a) == fold(b);
        match c {
            Clause::Keyword(v) | Clause::Phrase(v) => {
                has_phrase(self.texts.iter().chain(&self.urls), v)
            }
            Clause::Proximity { phrase, distance } => {
                let want = tokenize(phrase);
                !want.is_empty()
                    && self
                        .texts
                        .iter()
                        .any(|t| proximity(&t.tokens, &want, usize::from(*distance)))
            }
            Clause::Contains(v) => substring(&self.texts, v),
            Clause::UrlContains(v) => substring(&self.urls, v),
            Clause::Url(v) => has_phrase(&self.urls, v),
            Clause::UrlTitle(v) => has_phrase(&self.titles, v),
            Clause::UrlDescription(v) => has_phrase(&self.descriptions, v),
            Clause::Hashtag(v) => self
                .entities()
                .flat_map(|e| &e.hashtags)
                .any(|h| feq(&h.text, v)),
            Clause::Cashtag(v) => self
                .entities()
                .flat_map(|e| &e.symbols)
                .any(|h| feq(&h.text, v)),
            Clause::Mention(v) => self.entities().flat_map(|e| &e.user_mentions).any(|m| {
                m.screen_name.as_deref().is_some_and(|n| feq(n, v))
                    || numeric_eq(v, m.id_str.or(m.id))
            }),
            Clause::From(v) => user.is_some_and(|u| {
                u.screen_name.as_deref().is_some_and(|n| feq(n, v)) || numeric_eq(v, u.user_id())
            }),
            Clause::To(v) => {
                root.in_reply_to_screen_name
                    .as_deref()
                    .is_some_and(|n| feq(n, v))
                    || numeric_eq(v, root.reply_to_user())
            }
            Clause::RetweetsOf(v) => root
                .retweeted_status
                .as_deref()
                .and_then(|rt| rt.user.as_ref())
                .is_some_and(|u| {
                    u.screen_name.as_deref().is_some_and(|n| feq(n, v))
                        || numeric_eq(v, u.user_id())
                }),
            Clause::RetweetsOfStatusId(n) => {
                root.retweeted_status.as_deref().and_then(PostView::id) == Some(*n)
            }
            Clause::InReplyToStatusId(n) => root.reply_to_status() == Some(*n),
            Clause::Bio(v) => has_phrase(&opt_text(user.and_then(|u| u.description.as_deref())), v),
            Clause::BioName(v) => has_phrase(&opt_text(user.and_then(|u| u.name.as_deref())), v),
            Clause::BioLocation(v) => {
                has_phrase(&opt_text(user.and_then(|u| u.location.as_deref())), v)
            }
            Clause::Source(v) => has_phrase(&opt_text(root.source.as_deref()), v),
            Clause::Count { field, range } => {
                let value = user.and_then(|u| match field {
                    CountField::Followers => u.followers_count,
                    CountField::Friends => u.friends_count,
                    CountField::Statuses => u.statuses_count,
                    CountField::Listed => u.listed_count,
                });
                value.is_some_and(|v| v >= range.min && range.max.is_none_or(|m| v <= m))
            }
            Clause::Lang(v) => root
                .lang
                .as_deref()
                .is_some_and(|l| !l.is_empty() && fold(l) != "und" && fold(l) == fold(v)),
            Clause::Place(v) => {
                !self.is_retweet()
                    && root.place.as_ref().is_some_and(|p| {
                        p.id.as_deref() == Some(v.as_str())
                            || has_phrase(&opt_text(p.full_name.as_deref()), v)
                            || has_phrase(&opt_text(p.name.as_deref()), v)
                    })
            }
            Clause::PlaceCountry(v) => {
                !self.is_retweet()
                    && root
                        .place
                        .as_ref()
                        .and_then(|p| p.country_code.as_deref())
                        .is_some_and(|cc| feq(cc, v))
            }
            Clause::PointRadius(circle) => self.located(|p| in_circle(circle, p)),
            Clause::BoundingBox(b) => self.located(|p| in_box(b, p)),
            Clause::ProfileCountry(v) => self.profile(|l| l.country_code.as_deref(), v),
            Clause::ProfileRegion(v) => self.profile(|l| l.region.as_deref(), v),
            Clause::ProfileLocality(v) => self.profile(|l| l.locality.as_deref(), v),
            Clause::ProfileSubregion(v) => self.profile(|l| l.sub_region.as_deref(), v),
            Clause::ProfilePointRadius(circle) => self.profile_point(|p| in_circle(circle, p)),
            Clause::ProfileBoundingBox(b) => self.profile_point(|p| in_box(b, p)),
            Clause::Has(kind) => self.has(*kind),
            Clause::Is(kind) => self.is(*kind),
            Clause::Sample(n) => root.id().is_some_and(|id| sample_bucket(id) < *n),
            Clause::ConversationId(n) => root.conversation() == Some(*n),
            // Not in X's native format (context, entity) or not computable without X's
            // embedding model: never (docs/matching-semantics.md).
            Clause::Context(_) | Clause::Entity(_) | Clause::Embedding(_) => false,
        }
    }

    fn located(&self, inside: impl Fn([f64; 2]) -> bool) -> bool {
        if self.is_retweet() {
            return false;
        }
        let root = self.root;
        if root
            .coordinates
            .and_then(|c| c.coordinates)
            .is_some_and(&inside)
        {
            return true;
        }
        let vertices: Vec<[f64; 2]> = root
            .place
            .iter()
            .flat_map(|p| p.bounding_box.iter())
            .flat_map(|b| b.coordinates.iter().flatten().copied())
            .collect();
        !vertices.is_empty() && vertices.into_iter().all(inside)
    }

    fn locations(&self) -> impl Iterator<Item = &sluice_model::post::ProfileLocation<'a>> + '_ {
        self.root
            .user
            .iter()
            .flat_map(|u| u.derived.iter())
            .flat_map(|d| d.locations.iter())
    }

    fn profile(
        &self,
        get: impl for<'l> Fn(&'l sluice_model::post::ProfileLocation<'a>) -> Option<&'l str>,
        v: &str,
    ) -> bool {
        self.locations()
            .any(|l| get(l).is_some_and(|x| fold(x) == fold(v)))
    }

    fn profile_point(&self, inside: impl Fn([f64; 2]) -> bool) -> bool {
        self.locations()
            .filter_map(|l| l.geo.and_then(|g| g.coordinates))
            .any(inside)
    }

    fn has(&self, kind: HasKind) -> bool {
        let root = self.root;
        let media = || self.entities().flat_map(|e| &e.media);
        match kind {
            HasKind::Geo => {
                !self.is_retweet()
                    && (root.coordinates.and_then(|c| c.coordinates).is_some()
                        || root.place.is_some())
            }
            HasKind::ProfileGeo => self.locations().next().is_some(),
            HasKind::Links => self
                .entities()
                .any(|e| !e.urls.is_empty() || !e.media.is_empty()),
            HasKind::Mentions => self.entities().any(|e| !e.user_mentions.is_empty()),
            HasKind::Hashtags => self.entities().any(|e| !e.hashtags.is_empty()),
            HasKind::Symbols | HasKind::Cashtags => self.entities().any(|e| !e.symbols.is_empty()),
            HasKind::Media => media().next().is_some(),
            HasKind::Images => media().any(|m| m.kind.as_deref() == Some("photo")),
            HasKind::Videos => media().any(|m| m.kind.as_deref() == Some("video")),
            HasKind::Lang => root
                .lang
                .as_deref()
                .is_some_and(|l| !l.is_empty() && fold(l) != "und"),
        }
    }

    fn is(&self, kind: IsKind) -> bool {
        let root = self.root;
        match kind {
            IsKind::Retweet => self.is_retweet(),
            IsKind::Reply => [
                Some(root),
                root.retweeted_status.as_deref(),
                root.quoted_status.as_deref(),
            ]
            .into_iter()
            .flatten()
            .any(|p| p.reply_to_status().is_some()),
            IsKind::Quote => root.is_quote_status == Some(true) || root.quoted_status.is_some(),
            IsKind::Verified => root.user.as_ref().and_then(|u| u.verified) == Some(true),
            IsKind::Nullcast => root.scopes.and_then(|s| s.followers) == Some(false),
        }
    }
}

/// `value` is all ASCII digits and equals `id`.
fn numeric_eq(value: &str, id: Option<u64>) -> bool {
    !value.is_empty()
        && value.bytes().all(|b| b.is_ascii_digit())
        && value.parse::<u64>().ok().is_some_and(|v| Some(v) == id)
}

/// tokens(value) occur consecutively in one of `fields`; never for a value without tokens.
fn has_phrase<'t>(fields: impl IntoIterator<Item = &'t Text>, value: &str) -> bool {
    let want = tokenize(value);
    !want.is_empty()
        && fields
            .into_iter()
            .any(|t| t.tokens.windows(want.len()).any(|w| w == want))
}

/// fold(value) is a non-empty substring of some field's folded text.
fn substring(fields: &[Text], value: &str) -> bool {
    let pattern = fold(value);
    !pattern.is_empty() && fields.iter().any(|t| t.folded.contains(&*pattern))
}

/// Brute force over every assignment of distinct positions to the wanted tokens.
fn proximity(hay: &[String], want: &[String], distance: usize) -> bool {
    fn search(hay: &[String], want: &[String], chosen: &mut Vec<usize>, distance: usize) -> bool {
        let n = want.len();
        if chosen.len() == n {
            let (min, max) = (chosen.iter().min(), chosen.iter().max());
            let (Some(&min), Some(&max)) = (min, max) else {
                return false;
            };
            let gap = max - min + 1 - n;
            let ordered = chosen.windows(2).all(|w| w[0] < w[1]);
            return if ordered {
                gap <= distance
            } else {
                gap + 2 <= distance
            };
        }
        let next = &want[chosen.len()];
        for pos in 0..hay.len() {
            if hay[pos] != *next || chosen.contains(&pos) {
                continue;
            }
            // Prune: no assignment spanning more than n + distance tokens can qualify.
            let lo = chosen.iter().copied().chain([pos]).min().unwrap_or(pos);
            let hi = chosen.iter().copied().chain([pos]).max().unwrap_or(pos);
            if hi - lo + 1 > n + distance {
                continue;
            }
            chosen.push(pos);
            if search(hay, want, chosen, distance) {
                return true;
            }
            chosen.pop();
        }
        false
    }
    search(hay, want, &mut Vec::with_capacity(want.len()), distance)
}
