//! Splitting folded text into tokens.

use std::ops::Range;

use crate::classify::{CharClass, ZWJ, classify, is_emoji_continuation};
use crate::fold_into;

/// Folded text and the byte spans of its tokens.
///
/// Built once per text field of a post and reused (call [`TokenizedText::clear`]) so that
/// matching a stream of posts allocates nothing in the steady state. Tokens borrow from the
/// folded text, so a token lookup is a plain `&str` hash lookup.
#[derive(Debug, Default, Clone)]
pub struct TokenizedText {
    folded: String,
    spans: Vec<Range<u32>>,
}

impl TokenizedText {
    /// An empty text.
    pub fn new() -> Self {
        Self::default()
    }

    /// Folds and tokenizes `raw`.
    pub fn from_text(raw: &str) -> Self {
        let mut t = Self::new();
        t.push(raw);
        t
    }

    /// Empties the text, keeping its allocations.
    pub fn clear(&mut self) {
        self.folded.clear();
        self.spans.clear();
    }

    /// Folds `raw`, appends it, and tokenizes it. Appending several fields makes one token
    /// sequence in which a phrase may span the join; use separate values to keep fields
    /// apart.
    pub fn push(&mut self, raw: &str) {
        let start = self.folded.len();
        if !self.folded.is_empty() {
            self.folded.push(' ');
        }
        fold_into(raw, &mut self.folded);
        split(&self.folded, start, &mut self.spans);
    }

    /// The folded text (the form `contains:` searches).
    pub fn folded(&self) -> &str {
        &self.folded
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The token at `index`.
    pub fn token(&self, index: usize) -> &str {
        let span = &self.spans[index];
        &self.folded[span.start as usize..span.end as usize]
    }

    /// The tokens in order.
    pub fn tokens(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.spans
            .iter()
            .map(|s| &self.folded[s.start as usize..s.end as usize])
    }
}

/// Folds and tokenizes `raw` into owned tokens: the form rule terms are compiled with.
pub fn tokenize(raw: &str) -> Vec<String> {
    TokenizedText::from_text(raw)
        .tokens()
        .map(str::to_owned)
        .collect()
}

/// What a byte is to the tokenizer's ASCII fast path.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ByteClass {
    /// An ASCII letter or digit.
    Word,
    /// Any other ASCII byte: it breaks words.
    Break,
    /// A byte of a non-ASCII character, which is decoded and looked up in the Unicode
    /// tables.
    Other,
}

/// The [`ByteClass`] of each byte: the tokenizer's ASCII fast path, with no character
/// decoding and no Unicode tables.
const BYTE_CLASS: [ByteClass; 256] = {
    let mut table = [ByteClass::Other; 256];
    let mut b = 0;
    while b < 128 {
        table[b] = if (b as u8).is_ascii_alphanumeric() {
            ByteClass::Word
        } else {
            ByteClass::Break
        };
        b += 1;
    }
    table
};

/// Where the run of bytes of class `class` that starts at `from` ends.
#[inline]
fn run_end(bytes: &[u8], from: usize, class: ByteClass) -> usize {
    bytes[from..]
        .iter()
        .position(|&b| BYTE_CLASS[usize::from(b)] != class)
        .map_or(bytes.len(), |n| from + n)
}

/// The character starting at byte `at` of `text`, if any (`at` must be a char boundary).
#[inline]
fn char_at(text: &str, at: usize) -> Option<char> {
    text.get(at..).and_then(|rest| rest.chars().next())
}

/// Appends the spans of the tokens of `text[from..]` to `spans`.
///
/// Walks bytes: ASCII bytes are classified by table, a run of them of one class at a time
/// (a run of letters and digits, or of spaces and punctuation, needs no per-byte state);
/// only non-ASCII characters are decoded and looked up in the Unicode tables.
fn split(text: &str, from: usize, spans: &mut Vec<Range<u32>>) {
    let bytes = text.as_bytes();
    let mut word_start: Option<usize> = None;
    let end_word = |start: &mut Option<usize>, at: usize, spans: &mut Vec<Range<u32>>| {
        if let Some(s) = start.take() {
            spans.push(s as u32..at as u32);
        }
    };
    let mut i = from;
    while i < bytes.len() {
        match BYTE_CLASS[usize::from(bytes[i])] {
            ByteClass::Word => {
                if word_start.is_none() {
                    word_start = Some(i);
                }
                i = run_end(bytes, i + 1, ByteClass::Word);
                continue;
            }
            ByteClass::Break => {
                end_word(&mut word_start, i, spans);
                i = run_end(bytes, i + 1, ByteClass::Break);
                continue;
            }
            ByteClass::Other => {}
        }
        let c = char_at(text, i).expect("a non-ASCII byte at a boundary starts a char");
        let mut end = i + c.len_utf8();
        match classify(c) {
            CharClass::Word => {
                if word_start.is_none() {
                    word_start = Some(i);
                }
            }
            CharClass::Break => end_word(&mut word_start, i, spans),
            CharClass::Ideograph => {
                end_word(&mut word_start, i, spans);
                // Combining marks (e.g. kana voicing marks) stay with their character.
                while let Some(m) = char_at(text, end) {
                    if classify(m) == CharClass::Word && is_mark(m) {
                        end += m.len_utf8();
                    } else {
                        break;
                    }
                }
                spans.push(i as u32..end as u32);
            }
            CharClass::RegionalIndicator => {
                end_word(&mut word_start, i, spans);
                if let Some(n) = char_at(text, end)
                    && classify(n) == CharClass::RegionalIndicator
                {
                    end += n.len_utf8();
                }
                spans.push(i as u32..end as u32);
            }
            CharClass::Emoji => {
                end_word(&mut word_start, i, spans);
                loop {
                    match char_at(text, end) {
                        Some(m) if is_emoji_continuation(m) => end += m.len_utf8(),
                        Some(ZWJ) => match char_at(text, end + ZWJ.len_utf8()) {
                            Some(e) if classify(e) == CharClass::Emoji => {
                                end += ZWJ.len_utf8() + e.len_utf8();
                            }
                            _ => break,
                        },
                        _ => break,
                    }
                }
                spans.push(i as u32..end as u32);
            }
        }
        i = end;
    }
    end_word(&mut word_start, text.len(), spans);
}

fn is_mark(c: char) -> bool {
    use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};
    c.general_category_group() == GeneralCategoryGroup::Mark
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The straightforward char-by-char tokenizer the byte-walking [`split`] must agree with.
    fn reference_split(text: &str, from: usize, spans: &mut Vec<Range<u32>>) {
        let mut chars = text[from..]
            .char_indices()
            .map(|(i, c)| (i + from, c))
            .peekable();
        let mut word_start: Option<usize> = None;
        let end_word = |start: &mut Option<usize>, at: usize, spans: &mut Vec<Range<u32>>| {
            if let Some(s) = start.take() {
                spans.push(s as u32..at as u32);
            }
        };
        while let Some((i, c)) = chars.next() {
            match classify(c) {
                CharClass::Word => {
                    if word_start.is_none() {
                        word_start = Some(i);
                    }
                }
                CharClass::Break => end_word(&mut word_start, i, spans),
                CharClass::Ideograph => {
                    end_word(&mut word_start, i, spans);
                    let mut end = i + c.len_utf8();
                    // Combining marks (e.g. kana voicing marks) stay with their character.
                    while let Some(&(j, m)) = chars.peek() {
                        if classify(m) == CharClass::Word && is_mark(m) {
                            end = j + m.len_utf8();
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    spans.push(i as u32..end as u32);
                }
                CharClass::RegionalIndicator => {
                    end_word(&mut word_start, i, spans);
                    let mut end = i + c.len_utf8();
                    if let Some(&(j, n)) = chars.peek()
                        && classify(n) == CharClass::RegionalIndicator
                    {
                        end = j + n.len_utf8();
                        chars.next();
                    }
                    spans.push(i as u32..end as u32);
                }
                CharClass::Emoji => {
                    end_word(&mut word_start, i, spans);
                    let mut end = i + c.len_utf8();
                    loop {
                        match chars.peek() {
                            Some(&(j, m)) if is_emoji_continuation(m) => {
                                end = j + m.len_utf8();
                                chars.next();
                            }
                            Some(&(_, ZWJ)) => {
                                let mut ahead = chars.clone();
                                ahead.next();
                                match ahead.peek() {
                                    Some(&(k, e)) if classify(e) == CharClass::Emoji => {
                                        end = k + e.len_utf8();
                                        chars.next();
                                        chars.next();
                                    }
                                    _ => break,
                                }
                            }
                            _ => break,
                        }
                    }
                    spans.push(i as u32..end as u32);
                }
            }
        }
        end_word(&mut word_start, text.len(), spans);
    }

    /// Characters chosen to exercise every class and sequence rule of the tokenizer.
    fn tricky_text() -> impl Strategy<Value = String> {
        let pieces = prop::sample::select(vec![
            "a",
            "Z",
            "9",
            " ",
            "-",
            "'",
            "#",
            "é",
            "e\u{301}",
            "ñ",
            "東",
            "か",
            "\u{3099}",
            "ー",
            "한",
            "🍕",
            "👍",
            "\u{1F3FD}",
            "\u{200D}",
            "💻",
            "\u{1F1EF}",
            "\u{1F1F5}",
            "\u{FE0F}",
            "\u{20E3}",
            "\u{E0067}",
            "❤",
            "€",
            "\u{3000}",
            "\u{200B}",
            "Σ",
            "ς",
            "\u{E000}",
            "١",
            "\t",
        ]);
        prop::collection::vec(pieces, 0..24).prop_map(|v| v.concat())
    }

    proptest! {
        #[test]
        fn byte_walking_split_agrees_with_char_by_char(
            a in tricky_text(),
            b in tricky_text(),
            any in ".{0,24}",
        ) {
            for parts in [vec![a.as_str()], vec![a.as_str(), b.as_str()], vec![any.as_str()]] {
                let mut t = TokenizedText::new();
                for part in &parts {
                    t.push(part);
                }
                let mut want = Vec::new();
                let mut folded = String::new();
                for part in &parts {
                    let start = folded.len();
                    if !folded.is_empty() {
                        folded.push(' ');
                    }
                    fold_into(part, &mut folded);
                    reference_split(&folded, start, &mut want);
                }
                prop_assert_eq!(t.folded(), folded.as_str());
                prop_assert_eq!(&t.spans, &want);
            }
        }
    }

    fn toks(s: &str) -> Vec<String> {
        tokenize(s)
    }

    #[test]
    fn splits_on_punctuation_symbols_and_space() {
        assert_eq!(toks("I like coca-cola!"), ["i", "like", "coca", "cola"]);
        assert_eq!(toks("don't"), ["don", "t"]);
        assert_eq!(
            toks("3.14 #Tag @who $TWTR"),
            ["3", "14", "tag", "who", "twtr"]
        );
        assert_eq!(toks("https://t.co/AbC"), ["https", "t", "co", "abc"]);
        assert_eq!(toks("a\u{3000}b\u{00A0}c\td"), ["a", "b", "c", "d"]);
    }

    #[test]
    fn keeps_diacritics_inside_words() {
        assert_eq!(toks("¡Feliz CUMPLEAÑOS!"), ["feliz", "cumpleaños"]);
        assert_eq!(toks("Cafe\u{301} crème"), ["café", "crème"]);
    }

    #[test]
    fn cjk_characters_are_tokens() {
        assert_eq!(toks("東京タワー"), ["東", "京", "タ", "ワ", "ー"]);
        assert_eq!(toks("abc日本"), ["abc", "日", "本"]);
        assert_eq!(toks("안녕하세요"), ["안", "녕", "하", "세", "요"]);
    }

    #[test]
    fn emoji_are_tokens() {
        assert_eq!(toks("pizza🍕time"), ["pizza", "🍕", "time"]);
        assert_eq!(toks("🍕🍕"), ["🍕", "🍕"]);
        assert_eq!(toks("love ❤️ it"), ["love", "❤", "it"]);
        assert_eq!(toks("👍🏽!"), ["👍🏽"]);
        assert_eq!(toks("👩\u{200D}💻 coder"), ["👩\u{200D}💻", "coder"]);
        assert_eq!(toks("🇯🇵🇺🇸"), ["🇯🇵", "🇺🇸"]);
    }

    #[test]
    fn fields_pushed_separately_keep_their_tokens() {
        let mut t = TokenizedText::new();
        t.push("Hello");
        t.push("WORLD");
        assert_eq!(t.tokens().collect::<Vec<_>>(), ["hello", "world"]);
        assert_eq!(t.folded(), "hello world");
        t.clear();
        assert!(t.is_empty());
    }
}
