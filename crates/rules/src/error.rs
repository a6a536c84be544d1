//! [`RuleError`]: why a rule was refused, in X's words.
//!
//! X's rules API answers an invalid rule with one `"message"` string built from one line per
//! problem, each ending in `\n` (the ANTLR "mismatched input" line ends in `\n\n`). The
//! positions in those lines are 1-based offsets in UTF-16 code units. [`RuleError`] keeps the
//! problems apart as well, so that v2-style endpoints (Powerstream) can list them one by one.

use std::fmt;

/// How a problem's position is attached to its text; X's parser uses three shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// `text (at position N)\n`: most messages.
    AtPosition,
    /// `text (position N)\n`: the `Cannot parse rule at '…'` messages.
    Position,
    /// `text (at position N)\n\n`: ANTLR's `mismatched input …` messages.
    Mismatched,
}

/// One problem found in a rule: its text and where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    text: String,
    position: usize,
    style: Style,
}

impl Problem {
    /// A problem rendered as `text (at position N)\n`.
    pub(crate) fn at(text: impl Into<String>, position: usize) -> Self {
        Self {
            text: text.into(),
            position,
            style: Style::AtPosition,
        }
    }

    /// `Cannot parse rule at '<what>' (position N)\n`.
    pub(crate) fn cannot_parse(what: &str, position: usize) -> Self {
        Self {
            text: format!("Cannot parse rule at '{what}'"),
            position,
            style: Style::Position,
        }
    }

    /// `mismatched input 'EOF' expecting '<expected>' (at position N)\n\n`.
    pub(crate) fn mismatched_eof(expected: char, position: usize) -> Self {
        Self {
            text: format!("mismatched input 'EOF' expecting '{expected}'"),
            position,
            style: Style::Mismatched,
        }
    }

    /// `no viable alternative at input '<input>' (at position N)\n`.
    pub(crate) fn no_viable_input(input: &str, position: usize) -> Self {
        Self::at(
            format!("no viable alternative at input '{input}'"),
            position,
        )
    }

    /// `no viable alternative at character '<c>' (at position N)\n`.
    pub(crate) fn no_viable_char(c: char, position: usize) -> Self {
        Self::at(
            format!("no viable alternative at character '{c}'"),
            position,
        )
    }

    /// The problem's text without its position, e.g. `Cannot parse rule at ':'`.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Where the problem is: a 1-based offset in UTF-16 code units (one past the end of the
    /// rule for problems at its end).
    pub fn position(&self) -> usize {
        self.position
    }

    /// The problem's line of the PowerTrack message, with its trailing newline(s).
    pub fn message(&self) -> String {
        let mut out = String::new();
        self.write_message(&mut out);
        out
    }

    fn write_message(&self, out: &mut String) {
        use fmt::Write as _;
        let (open, close) = match self.style {
            Style::AtPosition => ("at position", "\n"),
            Style::Position => ("position", "\n"),
            Style::Mismatched => ("at position", "\n\n"),
        };
        write!(out, "{} ({open} {}){close}", self.text, self.position)
            .expect("writing to a String cannot fail");
    }
}

/// Why a rule is invalid: one or more [`Problem`]s, and the exact message X's PowerTrack
/// rules API would return for them (what `Display` prints).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RuleError {
    problems: Vec<Problem>,
    message: String,
}

impl RuleError {
    /// Builds the error from its problems, in the order X reports them.
    pub(crate) fn new(problems: Vec<Problem>) -> Self {
        debug_assert!(!problems.is_empty(), "an error has at least one problem");
        let mut message = String::new();
        for problem in &problems {
            problem.write_message(&mut message);
        }
        Self { problems, message }
    }

    /// The `"message"` of the PowerTrack rules and validation APIs, byte for byte
    /// (every line ends in `\n`).
    pub fn powertrack_message(&self) -> &str {
        &self.message
    }

    /// The individual problems, for APIs that list them one by one (v2-style `details`).
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }
}
