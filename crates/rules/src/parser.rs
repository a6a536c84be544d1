//! Tokens → a tree with positions.
//!
//! Recursive descent over the grammar
//! `rule := or EOF; or := and ("OR" and)*; and := unary+; unary := "-"? primary;
//! primary := "(" or ")" | clause`, so AND (juxtaposition) binds tighter than OR. The tree
//! keeps each node's position for [`crate::validate`] and is normalized while it is built
//! (flattened And/Or, no single-child groups). Syntax errors that leave the structure
//! intact (`AND`, a bad operator value) are collected and parsing goes on, so one message
//! can list several; the others stop the parse.
//!
//! One file on purpose (about 700 lines): the productions call one another, and reading
//! them together is reading the grammar; split, each would need the others open beside it.

use crate::Dialect;
use crate::ast::{
    BoundingBox, Circle, Clause, ContextRef, CountField, CountRange, DistanceUnit, Expr, HasKind,
    IsKind,
};
use crate::error::Problem;
use crate::lexer::{self, Kind, Source, Token};

/// Deepest nesting of parentheses accepted (bounds recursion everywhere downstream).
const MAX_DEPTH: usize = 100;

/// A tree node with the position X reports for it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    /// 1-based UTF-16 position of the node's first character.
    pub(crate) pos: usize,
    /// What the node is.
    pub(crate) kind: NodeKind,
}

/// The shape of a [`Node`], mirroring [`Expr`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NodeKind {
    /// All children.
    And(Vec<Node>),
    /// Any child.
    Or(Vec<Node>),
    /// Negation.
    Not(Box<Node>),
    /// A clause.
    Clause(Box<Located>),
}

/// A clause with what validation needs to report on it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Located {
    /// The clause.
    pub(crate) clause: Clause,
    /// Position of the clause's value (after `op:`), or of the clause.
    pub(crate) value_pos: usize,
    /// The operator as written (`url_title`, `#`, `~`, `has:hashtags`) and its position;
    /// `None` for keywords and phrases.
    pub(crate) op: Option<(String, usize)>,
}

impl Node {
    /// Drops the positions.
    pub(crate) fn into_expr(self) -> Expr {
        match self.kind {
            NodeKind::And(children) => {
                Expr::And(children.into_iter().map(Node::into_expr).collect())
            }
            NodeKind::Or(children) => Expr::Or(children.into_iter().map(Node::into_expr).collect()),
            NodeKind::Not(child) => Expr::Not(Box::new(child.into_expr())),
            NodeKind::Clause(located) => Expr::Clause(located.clause),
        }
    }
}

/// Parses `src`, returning the tree or every syntax problem found. The dialect decides
/// which operators exist: a v2-only operator is, outside [`Dialect::V2`], an unknown one.
pub(crate) fn parse_tree(src: &Source<'_>, dialect: Dialect) -> Result<Node, Vec<Problem>> {
    let tokens = lexer::tokenize(src).map_err(|p| vec![p])?;
    let mut parser = Parser {
        src,
        dialect,
        tokens,
        at: 0,
        depth: 0,
        problems: Vec::new(),
    };
    let result = parser.rule();
    match result {
        Ok(node) if parser.problems.is_empty() => Ok(node),
        Ok(_) => Err(parser.problems),
        Err(fatal) => {
            parser.problems.push(fatal);
            Err(parser.problems)
        }
    }
}

/// A value after `operator:`.
enum Value<'a> {
    /// A bare word, with the byte offset where it starts.
    Bare(&'a str, usize),
    /// A quoted string (unescaped), its raw text, and where it starts.
    Quoted(String, &'a str, usize),
    /// The text inside `[ ]` and where that text starts.
    Bracket(&'a str, usize),
}

/// What an operator takes, by operator name.
#[derive(Clone, Copy)]
enum Op {
    /// A string (bare or quoted).
    Str(fn(String) -> Clause),
    /// A `lang:` code.
    Lang,
    /// A numeric post id.
    Id(fn(u64) -> Clause),
    /// A count range.
    Count(CountField),
    /// `[lon lat r]`.
    Circle(fn(Circle) -> Clause),
    /// `[w s e n]`.
    Box(fn(BoundingBox) -> Clause),
    /// `has:`.
    Has,
    /// `is:`.
    Is,
    /// `sample:`.
    Sample,
    /// `context:domain.entity` or `context:domain.*`.
    Context,
}

/// Every operator of the PowerTrack catalogue, aliases included (names are case-sensitive),
/// and in [`Dialect::V2`] the v2 filtered stream's own operators.
fn operator(name: &str, dialect: Dialect) -> Option<Op> {
    use Op::*;
    if dialect == Dialect::V2 {
        match name {
            "conversation_id" => return Some(Id(Clause::ConversationId)),
            "context" => return Some(Context),
            "entity" => return Some(Str(Clause::Entity)),
            "embedding" => return Some(Str(Clause::Embedding)),
            _ => {}
        }
    }
    Some(match name {
        "contains" => Str(Clause::Contains),
        "from" => Str(Clause::From),
        "to" => Str(Clause::To),
        "retweets_of" | "retweets_of_user" => Str(Clause::RetweetsOf),
        "retweets_of_status_id" | "retweets_of_tweet_id" => Id(Clause::RetweetsOfStatusId),
        "in_reply_to_status_id" | "in_reply_to_tweet_id" => Id(Clause::InReplyToStatusId),
        "url" => Str(Clause::Url),
        "url_contains" => Str(Clause::UrlContains),
        "url_title" | "within_url_title" => Str(Clause::UrlTitle),
        "url_description" | "within_url_description" => Str(Clause::UrlDescription),
        "bio" | "user_bio" => Str(Clause::Bio),
        "bio_name" => Str(Clause::BioName),
        "bio_location" | "user_bio_location" => Str(Clause::BioLocation),
        "followers_count" => Count(CountField::Followers),
        "friends_count" | "following_count" => Count(CountField::Friends),
        "statuses_count" | "tweets_count" => Count(CountField::Statuses),
        "listed_count" | "user_in_lists_count" => Count(CountField::Listed),
        "lang" => Lang,
        "place" => Str(Clause::Place),
        "place_country" => Str(Clause::PlaceCountry),
        "point_radius" => Circle(Clause::PointRadius),
        "bounding_box" | "geo_bounding_box" => Box(Clause::BoundingBox),
        "profile_country" => Str(Clause::ProfileCountry),
        "profile_region" => Str(Clause::ProfileRegion),
        "profile_locality" => Str(Clause::ProfileLocality),
        "profile_subregion" => Str(Clause::ProfileSubregion),
        "profile_point_radius" => Circle(Clause::ProfilePointRadius),
        "profile_bounding_box" => Box(Clause::ProfileBoundingBox),
        "has" => Has,
        "is" => Is,
        "sample" => Sample,
        "source" => Str(Clause::Source),
        _ => return None,
    })
}

/// The `has:` attributes, aliases included; `has:cashtags` only in [`Dialect::V2`].
fn has_kind(value: &str, dialect: Dialect) -> Option<HasKind> {
    Some(match value {
        "cashtags" if dialect == Dialect::V2 => HasKind::Cashtags,
        "geo" => HasKind::Geo,
        "profile_geo" | "derived_user_geo" => HasKind::ProfileGeo,
        "links" => HasKind::Links,
        "mentions" => HasKind::Mentions,
        "hashtags" => HasKind::Hashtags,
        "symbols" => HasKind::Symbols,
        "media" | "media_link" => HasKind::Media,
        "images" => HasKind::Images,
        "videos" | "video_link" => HasKind::Videos,
        "lang" => HasKind::Lang,
        _ => return None,
    })
}

/// The `is:` attributes.
fn is_kind(value: &str) -> Option<IsKind> {
    Some(match value {
        "retweet" => IsKind::Retweet,
        "reply" => IsKind::Reply,
        "quote" => IsKind::Quote,
        "verified" => IsKind::Verified,
        "nullcast" => IsKind::Nullcast,
        _ => return None,
    })
}

/// A stand-in clause for a clause that failed; the tree is discarded when there are
/// problems, so its value never matters.
fn placeholder() -> Clause {
    Clause::Keyword(String::new())
}

/// The parser state.
struct Parser<'s, 'a> {
    src: &'s Source<'a>,
    dialect: Dialect,
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
    problems: Vec<Problem>,
}

impl<'a> Parser<'_, 'a> {
    fn peek(&self) -> &Token {
        &self.tokens[self.at.min(self.tokens.len() - 1)]
    }

    fn advance(&mut self) -> Token {
        let token = self.peek().clone();
        if self.at < self.tokens.len() - 1 {
            self.at += 1;
        }
        token
    }

    fn text(&self, token: &Token) -> &'a str {
        let text: &'a str = self.src.text;
        &text[token.start..token.end]
    }

    fn is_word(&self, token: &Token, word: &str) -> bool {
        token.kind == Kind::Word && self.text(token) == word
    }

    /// `Cannot parse rule at '<token>'` for an unexpected token.
    fn unexpected(&self, token: &Token) -> Problem {
        if token.kind == Kind::Eof {
            Problem::cannot_parse("<EOF>", self.src.eof_pos())
        } else {
            Problem::cannot_parse(self.text(token), self.src.pos(token.start))
        }
    }

    fn rule(&mut self) -> Result<Node, Problem> {
        let node = self.or()?;
        let next = self.peek().clone();
        match next.kind {
            Kind::Eof => Ok(node),
            _ => Err(Problem::at("missing EOF at ')'", self.src.pos(next.start))),
        }
    }

    fn or(&mut self) -> Result<Node, Problem> {
        let mut children = vec![self.and()?];
        while self.is_word(&self.peek().clone(), "OR") {
            self.advance();
            children.push(self.and()?);
        }
        Ok(join(children, NodeKind::Or, |k| {
            matches!(k, NodeKind::Or(_))
        }))
    }

    fn and(&mut self) -> Result<Node, Problem> {
        let mut children = Vec::new();
        loop {
            let next = self.peek().clone();
            match next.kind {
                Kind::RParen | Kind::Eof => break,
                Kind::Word if self.is_word(&next, "OR") => break,
                Kind::Word if self.is_word(&next, "AND") => {
                    self.problems.push(Problem::at(
                        "Ambiguous use of and as a keyword. Use a space to logically join two \
                         clauses, or \"and\" to find occurrences of and in text",
                        self.src.pos(next.start),
                    ));
                    self.advance();
                }
                _ => children.push(self.unary()?),
            }
        }
        if children.is_empty() {
            return Err(self.unexpected(&self.peek().clone()));
        }
        Ok(join(children, NodeKind::And, |k| {
            matches!(k, NodeKind::And(_))
        }))
    }

    fn unary(&mut self) -> Result<Node, Problem> {
        if self.peek().kind != Kind::Minus {
            return self.primary();
        }
        let minus = self.advance();
        let next = self.peek().clone();
        if matches!(next.kind, Kind::Minus | Kind::RParen | Kind::Eof)
            || self.is_word(&next, "OR")
            || self.is_word(&next, "AND")
        {
            return Err(self.unexpected(&next));
        }
        let child = self.primary()?;
        Ok(Node {
            pos: self.src.pos(minus.start),
            kind: NodeKind::Not(Box::new(child)),
        })
    }

    fn primary(&mut self) -> Result<Node, Problem> {
        let token = self.advance();
        let pos = self.src.pos(token.start);
        match token.kind {
            Kind::LParen => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return Err(Problem::at(
                        format!("Parentheses cannot be nested more than {MAX_DEPTH} deep"),
                        pos,
                    ));
                }
                let inner = self.or()?;
                self.depth -= 1;
                let close = self.advance();
                match close.kind {
                    Kind::RParen => Ok(inner),
                    _ => Err(Problem::mismatched_eof(')', self.src.eof_pos())),
                }
            }
            Kind::RParen | Kind::Eof | Kind::Minus => Err(self.unexpected(&token)),
            Kind::Word => Ok(self.word(&token)),
            Kind::Quoted {
                ref text,
                ref tilde,
            } => {
                let clause = if text.is_empty() {
                    self.problems
                        .push(Problem::no_viable_input(self.text(&token), pos));
                    placeholder()
                } else if let Some(tilde) = tilde {
                    let distance = tilde.distance.map_or(u8::MAX, saturate_u8);
                    let op = Some(("~".to_owned(), self.src.pos(tilde.at)));
                    return Ok(clause_node(
                        pos,
                        Located {
                            clause: Clause::Proximity {
                                phrase: text.clone(),
                                distance,
                            },
                            value_pos: self.src.pos(tilde.at),
                            op,
                        },
                    ));
                } else {
                    Clause::Phrase(text.clone())
                };
                Ok(clause_node(
                    pos,
                    Located {
                        clause,
                        value_pos: pos,
                        op: None,
                    },
                ))
            }
            Kind::OpQuoted { colon, ref value } => {
                let raw = &self.src.text[colon + 1..token.end];
                let value = Value::Quoted(value.clone(), raw, colon + 1);
                Ok(self.operator_clause(&token, colon, value))
            }
            Kind::OpBracket { colon } => {
                let inner = &self.src.text[colon + 2..token.end - 1];
                Ok(self.operator_clause(&token, colon, Value::Bracket(inner, colon + 2)))
            }
        }
    }

    /// A bare word: keyword, emoji, entity or `operator:value`.
    fn word(&mut self, token: &Token) -> Node {
        let word = self.text(token);
        let pos = self.src.pos(token.start);
        let first = word.chars().next().expect("a word token is never empty");
        if let Some(colon) = word.find(':').filter(|_| !matches!(first, '#' | '@' | '$')) {
            let value = Value::Bare(&word[colon + 1..], token.start + colon + 1);
            return self.operator_clause(token, token.start + colon, value);
        }
        let clause = match first {
            '#' | '@' | '$' => self.entity(word, token.start),
            c if lexer::is_punctuation(c) => {
                self.problems.push(Problem::no_viable_char(c, pos));
                placeholder()
            }
            _ if word.chars().any(lexer::is_variation_selector) => {
                self.problems.push(Problem::no_viable_input(word, pos));
                placeholder()
            }
            _ => Clause::Keyword(word.to_owned()),
        };
        let op = matches!(first, '#' | '@' | '$').then(|| (first.to_string(), pos));
        clause_node(
            pos,
            Located {
                clause,
                value_pos: pos,
                op,
            },
        )
    }

    /// `#tag`, `@user`, `$CASH`.
    fn entity(&mut self, word: &str, start: usize) -> Clause {
        let pos = self.src.pos(start);
        let value = &word[1..];
        let valid_start = value
            .chars()
            .next()
            .is_some_and(|c| c == '_' || !lexer::is_punctuation(c));
        if !valid_start || value.chars().any(lexer::is_variation_selector) {
            self.problems.push(Problem::no_viable_input(word, pos));
            return placeholder();
        }
        if let Some(colon) = value.find(':') {
            self.problems
                .push(Problem::cannot_parse(":", self.src.pos(start + 1 + colon)));
            return placeholder();
        }
        match word.as_bytes()[0] {
            b'#' => Clause::Hashtag(value.to_owned()),
            b'@' => Clause::Mention(value.to_owned()),
            _ => Clause::Cashtag(value.to_owned()),
        }
    }

    /// `name:value` where the token starts with the name and `colon` is a byte offset of a
    /// `:` after it (the last one for quoted and bracketed values).
    fn operator_clause(&mut self, token: &Token, colon: usize, value: Value<'_>) -> Node {
        let text = self.src.text;
        let pos = self.src.pos(token.start);
        let head = &text[token.start..colon];
        let first_colon = token.start + head.find(':').unwrap_or(head.len());
        let name = &text[token.start..first_colon];
        // X refuses a second `:` (`from:contains:heart`), in the name or in a bare value.
        let search_end = match value {
            Value::Bare(..) => token.end,
            Value::Quoted(..) | Value::Bracket(..) => colon + 1,
        };
        let extra_colon = text[first_colon + 1..search_end]
            .find(':')
            .map(|i| first_colon + 1 + i);
        let first = text[token.start..]
            .chars()
            .next()
            .expect("operator tokens are not empty");
        let value_pos = match &value {
            Value::Bare(_, at) | Value::Quoted(_, _, at) | Value::Bracket(_, at) => {
                self.src.pos(*at)
            }
        };
        let clause = if matches!(first, '#' | '@' | '$') {
            self.problems
                .push(Problem::cannot_parse(":", self.src.pos(colon)));
            placeholder()
        } else if lexer::is_punctuation(first) {
            self.problems.push(Problem::no_viable_char(first, pos));
            placeholder()
        } else {
            match (operator(name, self.dialect), extra_colon) {
                (None, _) => {
                    self.problems.push(Problem::at(
                        format!("Reference to invalid operator '{name}'"),
                        pos,
                    ));
                    placeholder()
                }
                (Some(_), Some(at)) => {
                    self.problems
                        .push(Problem::cannot_parse(":", self.src.pos(at)));
                    placeholder()
                }
                (Some(op), None) => self.operator_value(op, name, &value, value_pos),
            }
        };
        let written = match (&clause, &value) {
            (Clause::Has(_) | Clause::Is(_), Value::Bare(v, _)) => format!("{name}:{v}"),
            _ => name.to_owned(),
        };
        clause_node(
            pos,
            Located {
                clause,
                value_pos,
                op: Some((written, pos)),
            },
        )
    }

    /// Interprets the value of a known operator.
    fn operator_value(&mut self, op: Op, name: &str, value: &Value<'_>, at: usize) -> Clause {
        let result = match (op, value) {
            (_, Value::Bare("", _)) => Err(Problem::no_viable_input(&format!("{name}:"), at)),
            (Op::Str(make), Value::Bare(v, _)) => bare_string(v, name, at).map(make),
            (Op::Lang, Value::Bare(v, _)) => bare_string(v, name, at).map(Clause::Lang),
            (Op::Str(_) | Op::Lang, Value::Quoted(v, raw, _)) if v.is_empty() => {
                Err(Problem::no_viable_input(raw, at))
            }
            (Op::Str(make), Value::Quoted(v, _, _)) => Ok(make(v.clone())),
            (Op::Lang, Value::Quoted(v, _, _)) => Ok(Clause::Lang(v.clone())),
            (Op::Id(make), Value::Bare(v, _)) => digits(v)
                .map(make)
                .ok_or_else(|| Problem::cannot_parse(v, at)),
            (Op::Count(field), Value::Bare(v, _)) => count_range(v)
                .map(|range| Clause::Count { field, range })
                .ok_or_else(|| Problem::cannot_parse(v, at)),
            (Op::Has, Value::Bare(v, _)) => has_kind(v, self.dialect)
                .map(Clause::Has)
                .ok_or_else(|| Problem::at(format!("Reference to invalid field '{v}'"), at)),
            (Op::Is, Value::Bare(v, _)) => is_kind(v)
                .map(Clause::Is)
                .ok_or_else(|| Problem::at(format!("Reference to invalid field '{v}'"), at)),
            (Op::Sample, Value::Bare(v, _)) => {
                let all_digits = !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit());
                if all_digits {
                    Ok(Clause::Sample(digits(v).map_or(u8::MAX, saturate_u8)))
                } else {
                    Err(Problem::cannot_parse(v, at))
                }
            }
            (Op::Context, Value::Bare(v, _)) => context_ref(v)
                .map(Clause::Context)
                .ok_or_else(|| Problem::cannot_parse(v, at)),
            (Op::Circle(make), Value::Bracket(inner, start)) => {
                self.circle(inner, *start).map(make)
            }
            (Op::Box(make), Value::Bracket(inner, start)) => {
                self.bounding_box(inner, *start).map(make)
            }
            (_, Value::Bare(v, _)) => Err(Problem::cannot_parse(v, at)),
            (_, Value::Quoted(_, raw, _)) => Err(Problem::cannot_parse(raw, at)),
            (_, Value::Bracket(..)) => Err(Problem::cannot_parse("[", at)),
        };
        result.unwrap_or_else(|problem| {
            self.problems.push(problem);
            placeholder()
        })
    }

    /// `[lon lat r]` with `r` as `10mi`, `10 mi`, `5km` or `5 km`.
    fn circle(&self, inner: &str, start: usize) -> Result<Circle, Problem> {
        let parts = self.bracket_parts(inner, start);
        let end = start + inner.len();
        let longitude = self.number(&parts, 0, end)?;
        let latitude = self.number(&parts, 1, end)?;
        let (radius, unit, used) = match (parts.get(2), parts.get(3)) {
            (None, _) => return Err(Problem::cannot_parse("]", self.src.pos(end))),
            (Some(&(text, at)), next) => match (unit_of(text), parse_number(text), next) {
                (Some((radius, unit)), _, _) => (radius, unit, 3),
                (None, Some(radius), Some(&("mi", _))) => (radius, DistanceUnit::Miles, 4),
                (None, Some(radius), Some(&("km", _))) => (radius, DistanceUnit::Kilometers, 4),
                (None, Some(_), Some(&(unit, at))) => {
                    return Err(Problem::cannot_parse(unit, self.src.pos(at)));
                }
                _ => return Err(Problem::cannot_parse(text, self.src.pos(at))),
            },
        };
        if let Some(&(extra, at)) = parts.get(used) {
            return Err(Problem::cannot_parse(extra, self.src.pos(at)));
        }
        Ok(Circle {
            longitude,
            latitude,
            radius,
            unit,
        })
    }

    /// `[west south east north]`.
    fn bounding_box(&self, inner: &str, start: usize) -> Result<BoundingBox, Problem> {
        let parts = self.bracket_parts(inner, start);
        let end = start + inner.len();
        let bbox = BoundingBox {
            west: self.number(&parts, 0, end)?,
            south: self.number(&parts, 1, end)?,
            east: self.number(&parts, 2, end)?,
            north: self.number(&parts, 3, end)?,
        };
        if let Some(&(extra, at)) = parts.get(4) {
            return Err(Problem::cannot_parse(extra, self.src.pos(at)));
        }
        Ok(bbox)
    }

    /// The whitespace-separated parts of a bracket argument with their byte offsets.
    fn bracket_parts<'t>(&self, inner: &'t str, start: usize) -> Vec<(&'t str, usize)> {
        let mut parts = Vec::new();
        let mut from = None;
        for (i, c) in inner
            .char_indices()
            .chain(std::iter::once((inner.len(), ' ')))
        {
            match (c.is_whitespace(), from) {
                (true, Some(f)) => {
                    parts.push((&inner[f..i], start + f));
                    from = None;
                }
                (false, None) => from = Some(i),
                _ => {}
            }
        }
        parts
    }

    /// Part `index` as a decimal number. A malformed number is reported from its first
    /// digit to the end of the part, as X does (`Cannot parse rule at '71.1,42.2'`).
    fn number(&self, parts: &[(&str, usize)], index: usize, end: usize) -> Result<f64, Problem> {
        let Some(&(text, at)) = parts.get(index) else {
            return Err(Problem::cannot_parse("]", self.src.pos(end)));
        };
        parse_number(text).ok_or_else(|| {
            let sign = usize::from(text.starts_with(['-', '+']) && text.len() > 1);
            Problem::cannot_parse(&text[sign..], self.src.pos(at + sign))
        })
    }
}

/// Joins parsed children into one node: the child itself when alone, else a flattened
/// And/Or positioned at its first child.
fn join(children: Vec<Node>, make: fn(Vec<Node>) -> NodeKind, same: fn(&NodeKind) -> bool) -> Node {
    let mut flat = Vec::with_capacity(children.len());
    for child in children {
        if same(&child.kind) {
            match child.kind {
                NodeKind::And(inner) | NodeKind::Or(inner) => flat.extend(inner),
                _ => unreachable!("`same` matched an And or Or"),
            }
        } else {
            flat.push(child);
        }
    }
    if flat.len() == 1 {
        return flat.pop().expect("one child");
    }
    let pos = flat.first().map_or(1, |c| c.pos);
    Node {
        pos,
        kind: make(flat),
    }
}

fn clause_node(pos: usize, located: Located) -> Node {
    Node {
        pos,
        kind: NodeKind::Clause(Box::new(located)),
    }
}

/// A bare operator value, which must start with a digit or a non-punctuation character
/// (`contains:$twtr` is refused; `contains:"$twtr"` is the way to say it).
fn bare_string(value: &str, name: &str, at: usize) -> Result<String, Problem> {
    match value.chars().next() {
        None => Err(Problem::no_viable_input(&format!("{name}:"), at)),
        Some(c) if lexer::is_punctuation(c) => Err(Problem::no_viable_input(value, at)),
        Some(_) => Ok(value.to_owned()),
    }
}

/// A non-negative integer of ASCII digits that fits a `u64`.
fn digits(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `domain.entity` or `domain.*`, both ids ASCII digits that fit a `u64`.
fn context_ref(text: &str) -> Option<ContextRef> {
    let (domain, entity) = text.split_once('.')?;
    Some(ContextRef {
        domain: digits(domain)?,
        entity: match entity {
            "*" => None,
            id => Some(digits(id)?),
        },
    })
}

fn saturate_u8(n: u64) -> u8 {
    u8::try_from(n).unwrap_or(u8::MAX)
}

/// `N` (at least N) or `N..M`.
fn count_range(text: &str) -> Option<CountRange> {
    match text.split_once("..") {
        None => Some(CountRange {
            min: digits(text)?,
            max: None,
        }),
        Some((min, max)) => Some(CountRange {
            min: digits(min)?,
            max: Some(digits(max)?),
        }),
    }
}

/// A decimal number: optional sign, digits, at most one `.` (no exponent, no `inf`).
fn parse_number(text: &str) -> Option<f64> {
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    let digits = body.bytes().filter(u8::is_ascii_digit).count();
    let dots = body.bytes().filter(|&b| b == b'.').count();
    if digits == 0 || dots > 1 || digits + dots != body.len() {
        return None;
    }
    text.parse().ok()
}

/// `10mi` / `5km` → the number and unit.
fn unit_of(text: &str) -> Option<(f64, DistanceUnit)> {
    if let Some(number) = text.strip_suffix("mi") {
        return Some((parse_number(number)?, DistanceUnit::Miles));
    }
    let number = text.strip_suffix("km")?;
    Some((parse_number(number)?, DistanceUnit::Kilometers))
}
