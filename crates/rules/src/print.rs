//! The canonical printer: `Display` for [`Rule`], [`Expr`] and [`Clause`].
//!
//! Canonical form: operators under their canonical names (`bio:`, not `user_bio:`), clauses
//! separated by one space, ` OR ` between alternatives, parentheses only around an OR
//! inside an AND and around a negated group, values quoted only when a bare word would not
//! read back as the same value (`\"` and `\\` escaped inside quotes), and geo numbers in
//! Rust's shortest round-tripping decimal form. Parsing the output gives back the same tree.

use std::fmt::{self, Display, Formatter, Write as _};

use crate::ast::{
    BoundingBox, Circle, Clause, ContextRef, CountField, DistanceUnit, Expr, HasKind, IsKind, Rule,
};
use crate::lexer::{is_punctuation, is_variation_selector};

impl Display for Rule {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        self.expr.fmt(f)
    }
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::And(children) => {
                for (i, child) in children.iter().enumerate() {
                    if i > 0 {
                        f.write_char(' ')?;
                    }
                    match child {
                        Expr::Or(_) | Expr::And(_) => write!(f, "({child})")?,
                        _ => child.fmt(f)?,
                    }
                }
                Ok(())
            }
            Expr::Or(children) => {
                for (i, child) in children.iter().enumerate() {
                    if i > 0 {
                        f.write_str(" OR ")?;
                    }
                    match child {
                        Expr::Or(_) => write!(f, "({child})")?,
                        _ => child.fmt(f)?,
                    }
                }
                Ok(())
            }
            Expr::Not(child) => match child.as_ref() {
                Expr::Clause(clause) => write!(f, "-{clause}"),
                _ => write!(f, "-({child})"),
            },
            Expr::Clause(clause) => clause.fmt(f),
        }
    }
}

impl Display for Clause {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Clause::Keyword(k) => f.write_str(k),
            Clause::Phrase(p) => write_quoted(f, p),
            Clause::Proximity { phrase, distance } => {
                write_quoted(f, phrase)?;
                write!(f, "~{distance}")
            }
            Clause::Hashtag(v) => write!(f, "#{v}"),
            Clause::Mention(v) => write!(f, "@{v}"),
            Clause::Cashtag(v) => write!(f, "${v}"),
            Clause::RetweetsOfStatusId(id) => write!(f, "retweets_of_status_id:{id}"),
            Clause::InReplyToStatusId(id) => write!(f, "in_reply_to_status_id:{id}"),
            Clause::Count { field, range } => {
                let name = match field {
                    CountField::Followers => "followers_count",
                    CountField::Friends => "friends_count",
                    CountField::Statuses => "statuses_count",
                    CountField::Listed => "listed_count",
                };
                write!(f, "{name}:{}", range.min)?;
                match range.max {
                    Some(max) => write!(f, "..{max}"),
                    None => Ok(()),
                }
            }
            Clause::PointRadius(c) => write_circle(f, "point_radius", c),
            Clause::ProfilePointRadius(c) => write_circle(f, "profile_point_radius", c),
            Clause::BoundingBox(b) => write_box(f, "bounding_box", b),
            Clause::ProfileBoundingBox(b) => write_box(f, "profile_bounding_box", b),
            Clause::Has(kind) => write!(f, "has:{}", has_name(*kind)),
            Clause::Is(kind) => write!(f, "is:{}", is_name(*kind)),
            Clause::Sample(n) => write!(f, "sample:{n}"),
            Clause::Contains(v) => write_op(f, "contains", v),
            Clause::From(v) => write_op(f, "from", v),
            Clause::To(v) => write_op(f, "to", v),
            Clause::RetweetsOf(v) => write_op(f, "retweets_of", v),
            Clause::Url(v) => write_op(f, "url", v),
            Clause::UrlContains(v) => write_op(f, "url_contains", v),
            Clause::UrlTitle(v) => write_op(f, "url_title", v),
            Clause::UrlDescription(v) => write_op(f, "url_description", v),
            Clause::Bio(v) => write_op(f, "bio", v),
            Clause::BioName(v) => write_op(f, "bio_name", v),
            Clause::BioLocation(v) => write_op(f, "bio_location", v),
            Clause::Lang(v) => write_op(f, "lang", v),
            Clause::Place(v) => write_op(f, "place", v),
            Clause::PlaceCountry(v) => write_op(f, "place_country", v),
            Clause::ProfileCountry(v) => write_op(f, "profile_country", v),
            Clause::ProfileRegion(v) => write_op(f, "profile_region", v),
            Clause::ProfileLocality(v) => write_op(f, "profile_locality", v),
            Clause::ProfileSubregion(v) => write_op(f, "profile_subregion", v),
            Clause::Source(v) => write_op(f, "source", v),
            Clause::ConversationId(id) => write!(f, "conversation_id:{id}"),
            Clause::Context(ContextRef { domain, entity }) => match entity {
                Some(entity) => write!(f, "context:{domain}.{entity}"),
                None => write!(f, "context:{domain}.*"),
            },
            Clause::Entity(v) => write_op(f, "entity", v),
            Clause::Embedding(v) => write_op(f, "embedding", v),
        }
    }
}

fn has_name(kind: HasKind) -> &'static str {
    match kind {
        HasKind::Geo => "geo",
        HasKind::ProfileGeo => "profile_geo",
        HasKind::Links => "links",
        HasKind::Mentions => "mentions",
        HasKind::Hashtags => "hashtags",
        HasKind::Symbols => "symbols",
        HasKind::Media => "media",
        HasKind::Images => "images",
        HasKind::Videos => "videos",
        HasKind::Lang => "lang",
        HasKind::Cashtags => "cashtags",
    }
}

fn is_name(kind: IsKind) -> &'static str {
    match kind {
        IsKind::Retweet => "retweet",
        IsKind::Reply => "reply",
        IsKind::Quote => "quote",
        IsKind::Verified => "verified",
        IsKind::Nullcast => "nullcast",
    }
}

/// `name:value`, quoting the value unless it reads back as itself when bare.
fn write_op(f: &mut Formatter<'_>, name: &str, value: &str) -> fmt::Result {
    write!(f, "{name}:")?;
    if is_bare_safe(value) {
        f.write_str(value)
    } else {
        write_quoted(f, value)
    }
}

/// Whether `value` can be written as a bare operator value: it starts with a digit or a
/// non-punctuation character and has no whitespace, parenthesis, quote, colon or
/// variation selector.
fn is_bare_safe(value: &str) -> bool {
    value.chars().next().is_some_and(|c| !is_punctuation(c))
        && !value.chars().any(|c| {
            c.is_whitespace() || matches!(c, '(' | ')' | '"' | ':') || is_variation_selector(c)
        })
}

fn write_quoted(f: &mut Formatter<'_>, text: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in text.chars() {
        if matches!(c, '"' | '\\') {
            f.write_char('\\')?;
        }
        f.write_char(c)?;
    }
    f.write_char('"')
}

fn write_circle(f: &mut Formatter<'_>, name: &str, c: &Circle) -> fmt::Result {
    let unit = match c.unit {
        DistanceUnit::Miles => "mi",
        DistanceUnit::Kilometers => "km",
    };
    write!(
        f,
        "{name}:[{} {} {}{unit}]",
        c.longitude, c.latitude, c.radius
    )
}

fn write_box(f: &mut Formatter<'_>, name: &str, b: &BoundingBox) -> fmt::Result {
    write!(f, "{name}:[{} {} {} {}]", b.west, b.south, b.east, b.north)
}
