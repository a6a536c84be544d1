//! The limits and rules X enforces beyond syntax, and the per-dialect operator checks.
//!
//! Runs on the parser's positioned tree. Clause problems (value ranges, negation, dialect)
//! come first, in rule order; then the rule-level problems (no positive clause, a
//! standalone `source:` or `is:`/`has:`/`lang:`). Control characters are refused on the
//! text, before parsing ([`control_character`]).

use crate::Dialect;
use crate::ast::{BoundingBox, Circle, Clause, DistanceUnit, HasKind, IsKind};
use crate::error::Problem;
use crate::lang;
use crate::lexer::Source;
use crate::parser::{Located, Node, NodeKind};

/// Mean Earth radius used for distances, in km (the matcher uses the same).
const EARTH_RADIUS_KM: f64 = 6371.0088;
/// One statute mile in km.
const KM_PER_MILE: f64 = 1.609344;
/// Radii, box widths and box heights must be strictly less than this many miles.
const MAX_MILES: f64 = 25.0;

/// X's text for a `sample:` inside an OR that is not parenthesised away from it.
const SAMPLE_WITH_OR: &str = "The sample operator cannot be used with an OR. To use the sample \
operator with an OR in the rule, the ORed clauses must be grouped together with parenthesis.  \
For example, to get 10% of activites that have term1 or term2, the rule should be (excluding \
the single quotes) '(term1 OR term2) sample:10'";

/// The first control character of a rule, refused before parsing: NUL, the other C0
/// controls, DEL and the C1 controls would be stored and printed back invisibly (and NUL
/// cuts strings short in many clients). Tab, line feed and carriage return are whitespace,
/// which separates clauses, so they stay accepted. X documents no message for this; the
/// wording follows X's "Rules cannot be longer than …".
pub(crate) fn control_character(src: &Source<'_>) -> Option<Problem> {
    let (byte, c) = src
        .text
        .char_indices()
        .find(|&(_, c)| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))?;
    Some(Problem::at(
        format!(
            "Rules cannot contain control characters: found U+{:04X}",
            u32::from(c)
        ),
        src.pos(byte),
    ))
}

/// Every problem of a syntactically valid tree, in the order X reports them.
pub(crate) fn validate(root: &Node, dialect: Dialect) -> Vec<Problem> {
    let mut problems = Vec::new();
    match &root.kind {
        NodeKind::And(children) => {
            for child in children {
                walk(child, dialect, false, true, &mut problems);
            }
        }
        _ => walk(root, dialect, false, true, &mut problems),
    }
    if !positive(root, &|c| !matches!(c, Clause::Sample(_))) {
        problems.push(Problem::at("Rules must contain a non-negation term", 1));
        problems.push(Problem::at(
            "Rules must contain at least one positive, non-stopword clause",
            1,
        ));
        return problems;
    }
    match dialect {
        Dialect::PowerTrack => {
            let counts = |c: &Clause| !matches!(c, Clause::Sample(_) | Clause::Source(_));
            if !positive(root, &counts) {
                let at = first(root, &|c| matches!(c, Clause::Source(_))).unwrap_or(1);
                problems.push(Problem::at(
                    "source cannot be used as a standalone operator",
                    at,
                ));
            }
        }
        Dialect::Powerstream | Dialect::V2 => {
            let standalone =
                |c: &Clause| matches!(c, Clause::Is(_) | Clause::Has(_) | Clause::Lang(_));
            if !positive(root, &|c| !standalone(c) && !matches!(c, Clause::Sample(_))) {
                let at = first(root, &standalone).unwrap_or(1);
                problems.push(Problem::at(
                    "is/has/lang cannot be used as a standalone operator",
                    at,
                ));
            }
        }
    }
    problems
}

/// Whether `node` can only match when some clause for which `counts` holds matches
/// positively: a counted clause, an And with such a child, an Or whose every child is one.
fn positive(node: &Node, counts: &dyn Fn(&Clause) -> bool) -> bool {
    match &node.kind {
        NodeKind::Clause(located) => counts(&located.clause),
        NodeKind::Not(_) => false,
        NodeKind::And(children) => children.iter().any(|c| positive(c, counts)),
        NodeKind::Or(children) => children.iter().all(|c| positive(c, counts)),
    }
}

/// Position of the first clause for which `wanted` holds.
fn first(node: &Node, wanted: &dyn Fn(&Clause) -> bool) -> Option<usize> {
    match &node.kind {
        NodeKind::Clause(located) => wanted(&located.clause).then_some(node.pos),
        NodeKind::Not(child) => first(child, wanted),
        NodeKind::And(children) | NodeKind::Or(children) => {
            children.iter().find_map(|c| first(c, wanted))
        }
    }
}

/// Checks every clause under `node`. `top` says whether `node` is the rule or a direct
/// child of its top-level And (the only places `sample:` may be).
fn walk(node: &Node, dialect: Dialect, negated: bool, top: bool, out: &mut Vec<Problem>) {
    match &node.kind {
        NodeKind::Clause(located) => clause(located, node.pos, dialect, negated, top, out),
        NodeKind::Not(child) => walk(child, dialect, !negated, false, out),
        NodeKind::And(children) | NodeKind::Or(children) => {
            for child in children {
                walk(child, dialect, negated, false, out);
            }
        }
    }
}

/// The checks of one clause.
fn clause(
    located: &Located,
    pos: usize,
    dialect: Dialect,
    negated: bool,
    top: bool,
    out: &mut Vec<Problem>,
) {
    if dialect == Dialect::Powerstream && !powerstream_allows(&located.clause) {
        let (name, at) = located.op.clone().unwrap_or_else(|| (String::new(), pos));
        out.push(Problem::at(
            format!("Reference to invalid operator '{name}'"),
            at,
        ));
        return;
    }
    let at = located.value_pos;
    match &located.clause {
        Clause::Sample(n) => {
            if negated {
                out.push(Problem::at("The sample operator cannot be negated", pos));
            } else if !top {
                out.push(Problem::at(SAMPLE_WITH_OR, pos));
            }
            if !(1..=100).contains(n) {
                out.push(Problem::at(
                    "The sample operator requires an integer from 1 to 100",
                    at,
                ));
            }
        }
        Clause::Embedding(_) if negated => {
            out.push(Problem::at("The embedding operator cannot be negated", pos));
        }
        Clause::Is(IsKind::Nullcast) if !negated => {
            out.push(Problem::at(
                "is:nullcast can only be used negated (-is:nullcast)",
                pos,
            ));
        }
        Clause::Proximity { distance, .. } if !(1..=6).contains(distance) => {
            out.push(Problem::at(
                "The proximity distance must be an integer from 1 to 6",
                at,
            ));
        }
        Clause::Lang(code) if !lang::is_supported(code) => {
            out.push(Problem::at(format!("Invalid language code '{code}'"), at));
        }
        Clause::Count { range, .. } if range.max.is_some_and(|max| max < range.min) => {
            out.push(Problem::at(
                "The lower bound of a count range cannot exceed its upper bound",
                at,
            ));
        }
        Clause::PointRadius(circle) | Clause::ProfilePointRadius(circle) => {
            check_circle(circle, at, out);
        }
        Clause::BoundingBox(bbox) | Clause::ProfileBoundingBox(bbox) => {
            check_box(bbox, at, out);
        }
        _ => {}
    }
}

/// The operators Powerstream documents (docs/compatibility.md §6.4), aliases of those included.
fn powerstream_allows(clause: &Clause) -> bool {
    match clause {
        Clause::Keyword(_)
        | Clause::Phrase(_)
        | Clause::Mention(_)
        | Clause::From(_)
        | Clause::To(_)
        | Clause::RetweetsOf(_)
        | Clause::Contains(_)
        | Clause::UrlContains(_)
        | Clause::Lang(_)
        | Clause::Place(_)
        | Clause::BoundingBox(_)
        | Clause::PointRadius(_)
        | Clause::Bio(_)
        | Clause::BioName(_)
        | Clause::RetweetsOfStatusId(_)
        | Clause::InReplyToStatusId(_) => true,
        Clause::Has(kind) => !matches!(
            kind,
            HasKind::Hashtags | HasKind::ProfileGeo | HasKind::Cashtags
        ),
        Clause::Is(kind) => matches!(kind, IsKind::Retweet | IsKind::Reply),
        _ => false,
    }
}

fn check_longitude(longitude: f64, at: usize, out: &mut Vec<Problem>) {
    if !(-180.0..=180.0).contains(&longitude) {
        out.push(Problem::at("Longitude must be between -180 and 180", at));
    }
}

fn check_latitude(latitude: f64, at: usize, out: &mut Vec<Problem>) {
    if !(-90.0..=90.0).contains(&latitude) {
        out.push(Problem::at("Latitude must be between -90 and 90", at));
    }
}

fn check_circle(circle: &Circle, at: usize, out: &mut Vec<Problem>) {
    check_longitude(circle.longitude, at, out);
    check_latitude(circle.latitude, at, out);
    let miles = match circle.unit {
        DistanceUnit::Miles => circle.radius,
        DistanceUnit::Kilometers => circle.radius / KM_PER_MILE,
    };
    if !(miles > 0.0 && miles < MAX_MILES) {
        out.push(Problem::at(
            "The radius must be greater than 0 and less than 25 miles",
            at,
        ));
    }
}

fn check_box(bbox: &BoundingBox, at: usize, out: &mut Vec<Problem>) {
    let before = out.len();
    check_longitude(bbox.west, at, out);
    check_latitude(bbox.south, at, out);
    check_longitude(bbox.east, at, out);
    check_latitude(bbox.north, at, out);
    if bbox.west >= bbox.east {
        out.push(Problem::at(
            "The west longitude must be less than the east longitude",
            at,
        ));
    }
    if bbox.south >= bbox.north {
        out.push(Problem::at(
            "The south latitude must be less than the north latitude",
            at,
        ));
    }
    if out.len() == before && !box_within_limit(bbox) {
        out.push(Problem::at(
            "The width and height of a bounding box must be less than 25 miles",
            at,
        ));
    }
}

/// Whether the box is less than 25 miles wide and high. Height is the great-circle
/// distance along a meridian; width is the haversine distance between the west and east
/// edges at the box's latitude nearest the equator (where it is widest: 0 when the box
/// spans the equator).
fn box_within_limit(bbox: &BoundingBox) -> bool {
    let widest_lat = if bbox.south <= 0.0 && bbox.north >= 0.0 {
        0.0
    } else {
        bbox.south.abs().min(bbox.north.abs())
    };
    let width = haversine_miles(widest_lat, bbox.west, widest_lat, bbox.east);
    let height = haversine_miles(bbox.south, bbox.west, bbox.north, bbox.west);
    width < MAX_MILES && height < MAX_MILES && bbox.east - bbox.west < 180.0
}

/// Great-circle distance between two points given in degrees, in miles.
fn haversine_miles(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (phi1, phi2) = (lat1.to_radians(), lat2.to_radians());
    let d_phi = phi2 - phi1;
    let d_lambda = (lon2 - lon1).to_radians();
    let a = (d_phi / 2.0).sin().powi(2) + phi1.cos() * phi2.cos() * (d_lambda / 2.0).sin().powi(2);
    let c = 2.0 * a.sqrt().min(1.0).asin();
    EARTH_RADIUS_KM * c / KM_PER_MILE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haversine_matches_known_distances() {
        // One degree of latitude is about 69.09 miles.
        let d = haversine_miles(0.0, 0.0, 1.0, 0.0);
        assert!((d - 69.09).abs() < 0.05, "{d}");
        // One degree of longitude at 60° is about half that.
        let d = haversine_miles(60.0, 0.0, 60.0, 1.0);
        assert!((d - 34.54).abs() < 0.05, "{d}");
    }

    #[test]
    fn box_width_is_measured_where_the_box_is_widest() {
        // 0.5° of longitude: 34.5 mi at the equator, 17.3 mi at 60°.
        let north = BoundingBox {
            west: 0.0,
            south: 60.0,
            east: 0.5,
            north: 60.1,
        };
        assert!(box_within_limit(&north));
        let equator = BoundingBox {
            west: 0.0,
            south: -0.05,
            east: 0.5,
            north: 0.05,
        };
        assert!(!box_within_limit(&equator));
    }
}
