//! Evaluating a rule's program against a post's features.
//!
//! Only candidate rules (those the index found anchored on something the post has) get
//! here, so this is where exact semantics are checked: phrases and proximity compare
//! interned token positions, substrings are searched with a prepared `memmem` finder.

use sluice_rules::CountRange;

use crate::compile::{FieldKind, Pred};
use crate::features::{Features, count_index};
use crate::geo::{in_box, in_circle};
use crate::program::{Op, Program, subtree_end};

/// Whether `program` is true for the post whose features are `f`.
pub(crate) fn eval(program: &Program, f: &Features) -> bool {
    eval_at(program.ops(), 0, f)
}

/// Whether the subtree of `ops` that starts at `at` is true.
fn eval_at(ops: &[Op], at: usize, f: &Features) -> bool {
    match &ops[at] {
        Op::And { end } => each_child(ops, at, *end, |c| eval_at(ops, c, f)),
        Op::Or { end } => !each_child(ops, at, *end, |c| !eval_at(ops, c, f)),
        Op::Not { .. } => !eval_at(ops, at + 1, f),
        Op::Leaf(pred) => eval_pred(pred, f),
    }
}

/// Whether `holds` is true of every child of the compound node at `at` (whose subtree ends
/// at `end`), stopping at the first for which it is not.
fn each_child(ops: &[Op], at: usize, end: u32, mut holds: impl FnMut(usize) -> bool) -> bool {
    let mut child = at + 1;
    while child < end as usize {
        if !holds(child) {
            return false;
        }
        child = subtree_end(ops, child);
    }
    true
}

fn eval_pred(pred: &Pred, f: &Features) -> bool {
    match pred {
        Pred::Never => false,
        Pred::Phrase { fields, ids } => phrase_in(f, *fields, ids),
        Pred::Proximity { ids, distance } => {
            let mask = FieldKind::Text.bit();
            ids.iter().all(|&id| f.token_in(id, mask))
                // One token: present is enough.
                && (ids.len() == 1 || f.fields()
                    .iter()
                    .filter(|field| field.kind == FieldKind::Text)
                    .any(|field| within_proximity(&field.ids, ids, usize::from(*distance))))
        }
        Pred::Substring { src, finder } => {
            let kind = src.field_kind();
            f.grams[*src as usize].may_contain(finder.needle())
                && f.fields()
                    .iter()
                    .filter(|field| field.kind == kind)
                    .any(|field| finder.find(field.text.folded().as_bytes()).is_some())
        }
        Pred::Str { kind, value } => f.strs().any(|(k, v)| k == *kind && v == &**value),
        Pred::User {
            name_kind,
            id_kind,
            name,
            id,
        } => {
            f.strs().any(|(k, v)| k == *name_kind && v == &**name)
                || id.is_some_and(|id| f.nums.contains(&(*id_kind, id)))
        }
        Pred::Num { kind, value } => f.nums.contains(&(*kind, *value)),
        Pred::Place { id, ids } => {
            f.strs()
                .any(|(k, v)| k == crate::compile::StrKind::PlaceId && v == &**id)
                || (!ids.is_empty() && phrase_in(f, FieldKind::PlaceName.bit(), ids))
        }
        Pred::Count { field, range } => {
            f.counts[count_index(*field)].is_some_and(|v| in_range(range, v))
        }
        Pred::Radius {
            profile: false,
            circle,
        } => located(f, |point| in_circle(circle, point)),
        Pred::Radius {
            profile: true,
            circle,
        } => f.profile_points.iter().any(|&p| in_circle(circle, p)),
        Pred::Box {
            profile: false,
            bbox,
        } => located(f, |point| in_box(bbox, point)),
        Pred::Box {
            profile: true,
            bbox,
        } => f.profile_points.iter().any(|&p| in_box(bbox, p)),
        Pred::Flag(flag) => f.flag(*flag),
        Pred::Sample(n) => f.sample_bucket.is_some_and(|b| b < *n),
    }
}

fn in_range(range: &CountRange, v: u64) -> bool {
    range.min <= v && range.max.is_none_or(|max| v <= max)
}

/// The post's point is inside, or every vertex of its place's box is (at least one vertex).
fn located(f: &Features, inside: impl Fn([f64; 2]) -> bool) -> bool {
    f.coordinates.is_some_and(&inside)
        || (!f.place_vertices.is_empty() && f.place_vertices.iter().all(|&p| inside(p)))
}

/// Whether `ids` occur consecutively in one field whose kind is in `mask`.
fn phrase_in(f: &Features, mask: u16, ids: &[u32]) -> bool {
    if !ids.iter().all(|&id| f.token_in(id, mask)) {
        return false;
    }
    if ids.len() == 1 {
        // A one-token phrase is its token, which occurs in such a field.
        return true;
    }
    f.fields()
        .iter()
        .filter(|field| field.kind.bit() & mask != 0)
        .any(|field| contains_run(&field.ids, ids))
}

/// Whether `needle` occurs as a contiguous run of `hay`.
fn contains_run(hay: &[u32], needle: &[u32]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return false;
    };
    hay.len() >= needle.len()
        && (0..=hay.len() - needle.len())
            .any(|i| hay[i] == first && hay[i + 1..i + needle.len()] == *rest)
}

/// `"k1 … kn"~N` within one field: distinct positions whose gap (span − n) is at most N in
/// the rule's order, or at most N − 2 in any order.
pub(crate) fn within_proximity(hay: &[u32], ids: &[u32], distance: usize) -> bool {
    let n = ids.len();
    if n == 0 || hay.len() < n {
        return false;
    }
    // In order: for each start, take the earliest next occurrence of each token; that
    // minimises the span for the start.
    let max_span = n + distance;
    let in_order = (0..hay.len()).filter(|&i| hay[i] == ids[0]).any(|start| {
        let limit = (start + max_span).min(hay.len());
        let mut pos = start;
        ids[1..].iter().all(
            |&id| match hay[pos + 1..limit].iter().position(|&t| t == id) {
                Some(offset) => {
                    pos += 1 + offset;
                    true
                }
                None => false,
            },
        )
    });
    if in_order {
        return true;
    }
    // Any order: some window of n + N − 2 tokens holds each token as often as the rule does.
    let Some(window) = (n + distance).checked_sub(2).filter(|&w| w >= n) else {
        return false;
    };
    (0..hay.len())
        .filter(|&i| ids.contains(&hay[i]))
        .any(|start| {
            let w = &hay[start..(start + window).min(hay.len())];
            ids.iter().all(|id| {
                let need = ids.iter().filter(|&x| x == id).count();
                w.iter().filter(|&x| x == id).count() >= need
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_must_be_contiguous() {
        assert!(contains_run(&[1, 2, 3], &[2, 3]));
        assert!(!contains_run(&[1, 2, 4, 3], &[2, 3]));
        assert!(!contains_run(&[1], &[1, 1]));
    }

    #[test]
    fn proximity_in_and_out_of_order() {
        // a x x b: gap 2.
        let hay = [1, 9, 9, 2];
        assert!(within_proximity(&hay, &[1, 2], 2));
        assert!(!within_proximity(&hay, &[1, 2], 1));
        // Reversed: needs gap ≤ N − 2.
        assert!(within_proximity(&hay, &[2, 1], 4));
        assert!(!within_proximity(&hay, &[2, 1], 3));
        // Repeated tokens need distinct positions.
        assert!(!within_proximity(&[1, 9], &[1, 1], 6));
        assert!(within_proximity(&[1, 9, 1], &[1, 1], 1));
        // One token: present is enough.
        assert!(within_proximity(&[7, 1], &[1], 0));
    }
}
