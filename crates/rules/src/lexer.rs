//! Rule text → tokens.
//!
//! The lexer only finds where tokens start and end; what a bare word means (keyword,
//! `#tag`, `operator:value`, `OR`) is the parser's business. Two shapes are recognised here
//! because they change where a token ends: `name:"quoted value"` and `name:[bracketed
//! arguments]` (the brackets may contain spaces). Offsets are byte offsets into the rule;
//! [`Source::pos`] turns them into X's 1-based UTF-16 positions.

use crate::error::Problem;

/// The rule text with a byte → UTF-16 position table.
pub(crate) struct Source<'a> {
    /// The rule as given.
    pub(crate) text: &'a str,
    /// `utf16[b]`: UTF-16 units before byte `b` (valid at char boundaries and at the end).
    utf16: Vec<u32>,
}

impl<'a> Source<'a> {
    /// Indexes `text` (callers bound its length first).
    pub(crate) fn new(text: &'a str) -> Self {
        let mut utf16 = vec![0; text.len() + 1];
        let mut units = 0u32;
        for (b, c) in text.char_indices() {
            utf16[b] = units;
            units += u32::try_from(c.len_utf16()).expect("a char is 1 or 2 UTF-16 units");
        }
        utf16[text.len()] = units;
        Self { text, utf16 }
    }

    /// X's position of the character starting at byte `byte`: 1-based, in UTF-16 units.
    pub(crate) fn pos(&self, byte: usize) -> usize {
        self.utf16[byte] as usize + 1
    }

    /// The position X reports for the end of the rule (one past the last unit).
    pub(crate) fn eof_pos(&self) -> usize {
        self.pos(self.text.len())
    }
}

/// A `~N` suffix of a quoted phrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tilde {
    /// Byte offset of the `~`.
    pub(crate) at: usize,
    /// N, or `None` when it does not fit a `u64`.
    pub(crate) distance: Option<u64>,
}

/// What a token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `(`.
    LParen,
    /// `)`.
    RParen,
    /// A `-` directly followed by a clause or group.
    Minus,
    /// A run of characters other than whitespace, `(`, `)` and `"`.
    Word,
    /// A double-quoted string, unescaped, with an optional `~N`.
    Quoted {
        /// The contents with `\"` and `\\` unescaped.
        text: String,
        /// The proximity suffix.
        tilde: Option<Tilde>,
    },
    /// `name:"value"`.
    OpQuoted {
        /// Byte offset of the `:` ending the name.
        colon: usize,
        /// The unescaped value.
        value: String,
    },
    /// `name:[arguments]`.
    OpBracket {
        /// Byte offset of the `:` ending the name.
        colon: usize,
    },
    /// End of the rule.
    Eof,
}

/// One token and its byte span in the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    /// What it is.
    pub(crate) kind: Kind,
    /// Byte offset of its first character.
    pub(crate) start: usize,
    /// Byte offset just past it.
    pub(crate) end: usize,
}

/// Splits `src` into tokens, ending with [`Kind::Eof`]. Fails on an unterminated quote or
/// bracket and on a `~` without a number.
pub(crate) fn tokenize(src: &Source<'_>) -> Result<Vec<Token>, Problem> {
    let text = src.text;
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(c) = text[i..].chars().next() {
        if c.is_whitespace() {
            i += c.len_utf8();
            continue;
        }
        let start = i;
        let (kind, end) = match c {
            '(' => (Kind::LParen, i + 1),
            ')' => (Kind::RParen, i + 1),
            '"' => {
                let (value, end) = quoted(src, i)?;
                let (tilde, end) = tilde(src, end)?;
                (Kind::Quoted { text: value, tilde }, end)
            }
            '-' if text[i + 1..]
                .chars()
                .next()
                .is_some_and(|n| !n.is_whitespace()) =>
            {
                (Kind::Minus, i + 1)
            }
            _ => word(src, i)?,
        };
        tokens.push(Token { kind, start, end });
        i = end;
    }
    tokens.push(Token {
        kind: Kind::Eof,
        start: text.len(),
        end: text.len(),
    });
    Ok(tokens)
}

/// Lexes a bare word starting at `start`, or an operator with a quoted or bracketed value.
fn word(src: &Source<'_>, start: usize) -> Result<(Kind, usize), Problem> {
    let text = src.text;
    let mut i = start;
    while let Some(c) = text[i..].chars().next() {
        let after_colon = i > start && text.as_bytes()[i - 1] == b':';
        match c {
            '"' if after_colon => {
                let (value, end) = quoted(src, i)?;
                return Ok((
                    Kind::OpQuoted {
                        colon: i - 1,
                        value,
                    },
                    end,
                ));
            }
            '[' if after_colon => {
                return match text[i..].find(']') {
                    Some(close) => Ok((Kind::OpBracket { colon: i - 1 }, i + close + 1)),
                    None => Err(Problem::mismatched_eof(']', src.eof_pos())),
                };
            }
            '(' | ')' | '"' => break,
            c if c.is_whitespace() => break,
            c => i += c.len_utf8(),
        }
    }
    Ok((Kind::Word, i))
}

/// Lexes a double-quoted string whose opening quote is at `start`; returns the unescaped
/// contents and the offset past the closing quote. `\"` and `\\` are escapes; any other
/// backslash is literal.
fn quoted(src: &Source<'_>, start: usize) -> Result<(String, usize), Problem> {
    let text = src.text;
    let mut out = String::new();
    let mut chars = text[start + 1..].char_indices();
    while let Some((off, c)) = chars.next() {
        match c {
            '"' => return Ok((out, start + 1 + off + 1)),
            '\\' => match text[start + 1 + off + 1..].chars().next() {
                Some(e @ ('"' | '\\')) => {
                    out.push(e);
                    chars.next();
                }
                _ => out.push('\\'),
            },
            c => out.push(c),
        }
    }
    Err(Problem::no_viable_char('"', src.pos(start)))
}

/// Lexes an optional `~N` at `at`, directly after a closing quote.
fn tilde(src: &Source<'_>, at: usize) -> Result<(Option<Tilde>, usize), Problem> {
    let text = src.text;
    if !text[at..].starts_with('~') {
        return Ok((None, at));
    }
    let digits = text[at + 1..]
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count();
    if digits == 0 {
        return Err(Problem::cannot_parse("~", src.pos(at)));
    }
    let end = at + 1 + digits;
    let distance = text[at + 1..end].parse().ok();
    Ok((Some(Tilde { at, distance }), end))
}

/// Whether `c` counts as punctuation for X's rule that keywords and bare operator values
/// must start with a digit or a non-punctuation character.
///
/// Every ASCII character other than letters and digits counts; beyond ASCII, the
/// punctuation (Unicode P*) of Latin-1 and of the common punctuation blocks does. Symbols
/// such as emoji and currency signs outside ASCII do not, so `🍕` and `€uro` are keywords.
pub(crate) fn is_punctuation(c: char) -> bool {
    if c.is_ascii() {
        return !c.is_ascii_alphanumeric();
    }
    matches!(u32::from(c),
        0xA1 | 0xA7 | 0xAB | 0xB6 | 0xB7 | 0xBB | 0xBF
        | 0x37E | 0x387 | 0x55A..=0x55F | 0x589 | 0x5BE | 0x5C0 | 0x5C3 | 0x5C6
        | 0x5F3 | 0x5F4 | 0x609..=0x60D | 0x61B | 0x61D..=0x61F | 0x66A..=0x66D | 0x6D4
        | 0x964 | 0x965 | 0x970 | 0xE4F | 0xE5A | 0xE5B | 0x10FB | 0x1360..=0x1368 | 0x166E
        | 0x2010..=0x2027 | 0x2030..=0x205E | 0x2E00..=0x2E7F
        | 0x3001..=0x3003 | 0x3008..=0x3011 | 0x3014..=0x301F | 0x3030 | 0x303D | 0x30FB
        | 0xFE10..=0xFE19 | 0xFE30..=0xFE4F | 0xFE50..=0xFE6B
        | 0xFF01..=0xFF0F | 0xFF1A..=0xFF20 | 0xFF3B..=0xFF40 | 0xFF5B..=0xFF65)
}

/// Whether `c` is a variation selector (emoji with one must be quoted).
pub(crate) fn is_variation_selector(c: char) -> bool {
    matches!(c, '\u{FE0E}' | '\u{FE0F}')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(rule: &str) -> Vec<Kind> {
        let src = Source::new(rule);
        tokenize(&src)
            .expect("lexes")
            .into_iter()
            .map(|t| t.kind)
            .collect()
    }

    #[test]
    fn positions_count_utf16_units() {
        let src = Source::new("🍕a");
        assert_eq!(src.pos(0), 1);
        assert_eq!(src.pos(4), 3);
        assert_eq!(src.eof_pos(), 4);
    }

    #[test]
    fn operator_values_keep_quotes_and_brackets_together() {
        assert_eq!(
            kinds(r#"contains:"a \" b" point_radius:[1 2 3mi]"#),
            vec![
                Kind::OpQuoted {
                    colon: 8,
                    value: "a \" b".into()
                },
                Kind::OpBracket { colon: 30 },
                Kind::Eof
            ]
        );
    }

    #[test]
    fn minus_is_a_prefix_only_before_a_clause() {
        assert_eq!(kinds("-a"), vec![Kind::Minus, Kind::Word, Kind::Eof]);
        assert_eq!(kinds("- a"), vec![Kind::Word, Kind::Word, Kind::Eof]);
    }

    #[test]
    fn unterminated_quote_is_reported_at_the_quote() {
        let src = Source::new("ab \"cd");
        assert_eq!(tokenize(&src), Err(Problem::no_viable_char('"', 4)));
    }
}
