//! A rule's plan laid out flat, the form the matcher keeps and evaluates.
//!
//! The compiled [`Node`] tree keeps each node's children in an allocation of their own, so
//! evaluating `(a OR b) c -d` follows a pointer per level, and at 100,000 rules each of
//! those reads is a cache miss that waits for the one before it. A [`Program`] holds the
//! same nodes in preorder in one allocation: the matcher requests its cache lines before
//! evaluating, all at once, and evaluation then reads consecutive memory. The tree stays
//! the form that the index and the gates analyse at insert time (docs/performance.md, "A
//! rule's plan in one allocation").

use crate::compile::{Node, Pred, pred_fields, release_pred};
use crate::intern::Interner;

/// One node of a [`Program`], in preorder: a compound node is followed by its children's
/// subtrees, one after the other.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// Every child; `end` is the index just past the last child's subtree.
    And {
        /// Just past this node's subtree.
        end: u32,
    },
    /// Any child; `end` as for [`Op::And`].
    Or {
        /// Just past this node's subtree.
        end: u32,
    },
    /// Not the one child that follows.
    Not {
        /// Just past this node's subtree.
        end: u32,
    },
    /// One predicate.
    Leaf(Pred),
}

/// A compiled rule's nodes in preorder, in one allocation.
#[derive(Debug, Clone)]
pub(crate) struct Program(Box<[Op]>);

/// At most this many of a program's cache lines are requested ahead of its evaluation:
/// nearly every rule fits (a node is under a cache line), and a longer one is rare enough
/// that its tail may wait.
const PREFETCH_LINES: usize = 4;

impl Program {
    /// Lays `plan` out flat, moving its predicates.
    pub(crate) fn new(plan: Node) -> Self {
        let mut ops = Vec::new();
        lay_out(plan, &mut ops);
        Self(ops.into_boxed_slice())
    }

    /// The nodes, the root first.
    pub(crate) fn ops(&self) -> &[Op] {
        &self.0
    }

    /// The mask of field kinds the rule reads (see [`pred_fields`]).
    pub(crate) fn fields_read(&self) -> u16 {
        self.preds().fold(0, |mask, pred| mask | pred_fields(pred))
    }

    /// Gives back the interner references the rule's compilation took.
    pub(crate) fn release(&self, interner: &mut Interner) {
        self.preds().for_each(|pred| release_pred(pred, interner));
    }

    /// Asks the CPU for the program's first cache lines, without waiting for them.
    #[inline]
    pub(crate) fn prefetch(&self) {
        let per_line = (64 / size_of::<Op>()).max(1);
        self.0
            .iter()
            .step_by(per_line)
            .take(PREFETCH_LINES)
            .for_each(crate::prefetch);
    }

    fn preds(&self) -> impl Iterator<Item = &Pred> {
        self.0.iter().filter_map(|op| match op {
            Op::Leaf(pred) => Some(pred),
            _ => None,
        })
    }
}

/// Appends `node`'s subtree to `ops` in preorder.
fn lay_out(node: Node, ops: &mut Vec<Op>) {
    let at = ops.len();
    match node {
        Node::Leaf(pred) => {
            ops.push(Op::Leaf(pred));
            return;
        }
        Node::And(children) => {
            ops.push(Op::And { end: 0 });
            children
                .into_vec()
                .into_iter()
                .for_each(|c| lay_out(c, ops));
        }
        Node::Or(children) => {
            ops.push(Op::Or { end: 0 });
            children
                .into_vec()
                .into_iter()
                .for_each(|c| lay_out(c, ops));
        }
        Node::Not(child) => {
            ops.push(Op::Not { end: 0 });
            lay_out(*child, ops);
        }
    }
    let past = u32::try_from(ops.len()).expect("a rule has fewer than 2^32 nodes");
    match &mut ops[at] {
        Op::And { end } | Op::Or { end } | Op::Not { end } => *end = past,
        Op::Leaf(_) => unreachable!("a compound node was pushed at `at`"),
    }
}

/// The index just past the subtree that starts at `at`.
#[inline]
pub(crate) fn subtree_end(ops: &[Op], at: usize) -> usize {
    match ops[at] {
        Op::And { end } | Op::Or { end } | Op::Not { end } => end as usize,
        Op::Leaf(_) => at + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compile::compile;
    use sluice_rules::parse;

    /// The shape of a program: each node's kind and where its subtree ends.
    fn shape(rule: &str) -> Vec<(char, usize)> {
        let plan = compile(
            &parse(rule).expect("valid rule").expr,
            &mut Interner::default(),
        );
        let program = Program::new(plan);
        let ops = program.ops();
        (0..ops.len())
            .map(|at| {
                let kind = match ops[at] {
                    Op::And { .. } => '&',
                    Op::Or { .. } => '|',
                    Op::Not { .. } => '!',
                    Op::Leaf(_) => 'p',
                };
                (kind, subtree_end(ops, at))
            })
            .collect()
    }

    #[test]
    fn nodes_are_laid_out_in_preorder_with_the_end_of_each_subtree() {
        assert_eq!(shape("apple"), [('p', 1)]);
        assert_eq!(
            shape("(a OR b) c -d"),
            [
                ('&', 7),
                ('|', 4),
                ('p', 3),
                ('p', 4),
                ('p', 5),
                ('!', 7),
                ('p', 7)
            ]
        );
        assert_eq!(
            shape("x -(y OR (z w))"),
            [
                ('&', 8),
                ('p', 2),
                ('!', 8),
                ('|', 8),
                ('p', 5),
                ('&', 8),
                ('p', 7),
                ('p', 8)
            ]
        );
    }

    #[test]
    fn a_node_fits_in_a_cache_line() {
        // 40 bytes on 64-bit targets: a phrase's few ids inline do not make a node larger.
        assert!(size_of::<Op>() <= 40, "{} bytes", size_of::<Op>());
    }
}
