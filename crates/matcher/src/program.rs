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
/// 512 bytes, twelve nodes of 40 bytes, more than the common evaluated shapes take
/// (`(a OR b OR c) word -other` is eight); a longer rule's tail may wait.
const PREFETCH_LINES: usize = 8;

/// The size of a cache line on the processors this is tuned for (x86_64).
const CACHE_LINE: usize = 64;

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

    /// Asks the CPU for the cache lines the program's nodes lie in (at most
    /// [`PREFETCH_LINES`]), without waiting for them.
    #[inline]
    pub(crate) fn prefetch(&self) {
        let start = self.0.as_ptr().cast::<u8>();
        let lines = lines_spanned(start.addr(), size_of_val(&*self.0));
        for k in 0..lines.min(PREFETCH_LINES) {
            // `start` plus `k` lines lies in the program's `k`-th line.
            crate::prefetch_address(start.wrapping_add(k * CACHE_LINE));
        }
    }

    /// The predicates at the leaves, in preorder.
    fn preds(&self) -> impl Iterator<Item = &Pred> {
        self.0.iter().filter_map(|op| match op {
            Op::Leaf(pred) => Some(pred),
            _ => None,
        })
    }
}

/// Appends `node`'s subtree to `ops` in preorder.
fn lay_out(node: Node, ops: &mut Vec<Op>) {
    let (children, compound): (Vec<Node>, fn(u32) -> Op) = match node {
        Node::Leaf(pred) => {
            ops.push(Op::Leaf(pred));
            return;
        }
        Node::And(children) => (children.into_vec(), |end| Op::And { end }),
        Node::Or(children) => (children.into_vec(), |end| Op::Or { end }),
        Node::Not(child) => (vec![*child], |end| Op::Not { end }),
    };
    let at = ops.len();
    // Its end is known once the children are laid out.
    ops.push(compound(0));
    children.into_iter().for_each(|c| lay_out(c, ops));
    ops[at] = compound(u32::try_from(ops.len()).expect("a rule has fewer than 2^32 nodes"));
}

/// How many cache lines the `len` bytes from address `start` touch (one for none).
fn lines_spanned(start: usize, len: usize) -> usize {
    (start + len.max(1) - 1) / CACHE_LINE - start / CACHE_LINE + 1
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
    fn every_line_a_program_lies_in_is_counted() {
        assert_eq!(lines_spanned(0, 40), 1);
        assert_eq!(lines_spanned(0, 64), 1);
        assert_eq!(lines_spanned(0, 65), 2);
        assert_eq!(lines_spanned(40, 40), 2);
        // `(a OR b OR c) word -other`: eight nodes of 40 bytes, not line-aligned.
        assert_eq!(lines_spanned(40, 320), 6);
        assert_eq!(lines_spanned(128, 0), 1);
    }

    #[test]
    fn a_node_fits_in_a_cache_line() {
        // 40 bytes on 64-bit targets: a phrase's few ids inline do not make a node larger.
        assert!(size_of::<Op>() <= 40, "{} bytes", size_of::<Op>());
    }
}
