//! # sluice-text: the one normalizer
//!
//! PowerTrack matches keywords, phrases and `contains:` case-insensitively against tokens of
//! the post text. A rule term and a post must be normalized by *the same* code, or a rule
//! silently never matches; this crate is that code, used by `sluice-matcher` both when it
//! compiles rules and when it reads posts.
//!
//! The semantics (docs/compatibility.md ("Decisions")):
//! - **Folding** ([`fold`]): Unicode NFC, then lower case (`ς` folds to `σ`); variation
//!   selectors U+FE0E/U+FE0F are dropped so that `❤` and `❤️` are the same. Diacritics are
//!   significant: `cumpleaños` ≠ `cumpleanos`.
//! - **Tokens** ([`TokenizedText`]): the folded text is split on Unicode punctuation (P*),
//!   symbol (S*), separator (Z*) and control characters. Runs of letters, marks and digits
//!   are word tokens; every Han, Hiragana, Katakana or Hangul character is a token of its
//!   own; an emoji (with its modifiers, ZWJ sequence, keycap or flag pair) is a token of its
//!   own although emoji are symbols. No stopwords, no stemming.
//!
//! ## Layout
//! - [`fold`]: the case-insensitive comparison form of a string.
//! - `classify`: what each character is to the tokenizer.
//! - [`TokenizedText`]: folded text plus token spans, reusable across posts.

#![deny(missing_docs)]

mod classify;
mod tokens;

use std::borrow::Cow;

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

pub use tokens::{TokenizedText, tokenize};

/// Returns the case-insensitive comparison form of `text`: NFC, lower case, without
/// variation selectors. Borrows when `text` is already in that form (the common ASCII case).
pub fn fold(text: &str) -> Cow<'_, str> {
    if text.is_ascii() {
        if text.bytes().any(|b| b.is_ascii_uppercase()) {
            return Cow::Owned(text.to_ascii_lowercase());
        }
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    if is_nfc_quick(text.chars()) == IsNormalized::Yes {
        push_folded(&mut out, text.chars());
    } else {
        push_folded(&mut out, text.nfc());
    }
    if out == text {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(out)
    }
}

/// Appends the folded form of `text` to `out` (the allocation-free core of [`fold`]).
pub fn fold_into(text: &str, out: &mut String) {
    if text.is_ascii() {
        push_ascii_lowercase(out, text);
    } else if is_nfc(text) {
        push_folded_str(out, text);
    } else {
        push_folded(out, text.nfc());
    }
}

/// Appends ASCII `text` lower-cased, in bulk.
fn push_ascii_lowercase(out: &mut String, text: &str) {
    let start = out.len();
    out.push_str(text);
    out[start..].make_ascii_lowercase();
}

/// Whether `text` is certainly NFC (the quick check says yes).
///
/// The characters of [`resets_nfc_check`] are each a fresh start for the quick check, so
/// only the runs of other characters go through its tables. Every character below U+0300
/// is one of them, and every other character starts with a byte of 0xCC or more (a
/// continuation byte is below 0xC0): the bytes between such starts are skipped as bytes,
/// without decoding a character (decoding every character of a post's text was about a
/// fifth of the instructions spent folding it; docs/performance.md, "Fewer probes, and
/// text folded and split by the run").
fn is_nfc(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut at = 0;
    while let Some(skipped) = bytes[at..].iter().position(|&b| b >= 0xCC) {
        let start = at + skipped;
        // The run of characters that do not reset the check, from `start`, decoded once:
        // the quick check reads it, and the character that ends it (kana, CJK, Hangul,
        // emoji), taken from the iterator with it, is stepped over. A quick check that says
        // yes has read the whole run (it cannot vouch for characters it has not seen).
        let mut chars = text[start..].char_indices();
        let run = chars
            .by_ref()
            .map(|(_, c)| c)
            .take_while(|&c| !resets_nfc_check(c));
        if is_nfc_quick(run) != IsNormalized::Yes {
            return false;
        }
        at = start + chars.offset();
    }
    true
}

/// Frequent characters that are NFC, have canonical combining class 0 and never combine
/// with a preceding character: below U+0300, kana, CJK ideographs, Hangul syllables, and
/// the emoji blocks. The quick check passes over each of them without looking back.
fn resets_nfc_check(c: char) -> bool {
    matches!(
        c,
        '\0'..='\u{2FF}'
            | '\u{3041}'..='\u{3096}'
            | '\u{30A1}'..='\u{30FA}'
            | '\u{4E00}'..='\u{9FFF}'
            | '\u{AC00}'..='\u{D7A3}'
            | '\u{1F000}'..='\u{1FAFF}'
    )
}

/// [`push_folded`] over NFC `text`, copying runs of ASCII in bulk.
fn push_folded_str(out: &mut String, text: &str) {
    let mut rest = text;
    while !rest.is_empty() {
        let ascii = rest
            .bytes()
            .position(|b| !b.is_ascii())
            .unwrap_or(rest.len());
        push_ascii_lowercase(out, &rest[..ascii]);
        rest = &rest[ascii..];
        // Bytes of non-ASCII characters are all non-ASCII: the next ASCII byte starts a
        // character.
        let other = rest
            .bytes()
            .position(|b| b.is_ascii())
            .unwrap_or(rest.len());
        push_folded(out, rest[..other].chars());
        rest = &rest[other..];
    }
}

fn push_folded(out: &mut String, chars: impl Iterator<Item = char>) {
    for c in chars {
        match c {
            '\u{FE0E}' | '\u{FE0F}' => {}
            'ς' => out.push('σ'),
            c if c.is_ascii() => out.push(c.to_ascii_lowercase()),
            c if caseless(c) => out.push(c),
            c => out.extend(c.to_lowercase()),
        }
    }
}

/// Frequent non-ASCII characters that are their own lower case: CJK symbols, kana and
/// ideographs, Hangul syllables, the emoji blocks. Checked by range before the case
/// tables, whose lookup is a binary search per character (posts in Japanese, Chinese or
/// Korean, and emoji, are mostly such characters).
fn caseless(c: char) -> bool {
    matches!(
        c,
        '\u{3000}'..='\u{9FFF}' | '\u{AC00}'..='\u{D7A3}' | '\u{1F000}'..='\u{1FAFF}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_lowercases_and_keeps_diacritics() {
        assert_eq!(fold("Hello WORLD"), "hello world");
        assert_eq!(fold("CUMPLEAÑOS"), "cumpleaños");
        assert_ne!(fold("cumpleaños"), fold("cumpleanos"));
        assert_eq!(fold("ΟΔΟΣ"), fold("οδος"));
        assert_eq!(fold("❤\u{FE0F}"), "❤");
        assert!(matches!(fold("already folded"), Cow::Borrowed(_)));
    }

    #[test]
    fn caseless_characters_are_their_own_lower_case() {
        for c in (0..=0x10FFFF)
            .filter_map(char::from_u32)
            .filter(|&c| caseless(c))
        {
            assert!(c.to_lowercase().eq(std::iter::once(c)), "{c:?}");
        }
        assert!(!caseless('Ä') && !caseless('Ω') && !caseless('\u{FE0F}'));
    }

    #[test]
    fn folding_composes_decomposed_accents() {
        // "é" as e + COMBINING ACUTE ACCENT folds to the precomposed form.
        assert_eq!(fold("Cafe\u{301}"), "café");
    }

    #[test]
    fn characters_that_reset_the_nfc_check_are_plain_starters() {
        use unicode_normalization::char::canonical_combining_class;
        for c in (0..=0x10FFFF)
            .filter_map(char::from_u32)
            .filter(|&c| resets_nfc_check(c))
        {
            assert_eq!(is_nfc_quick(std::iter::once(c)), IsNormalized::Yes, "{c:?}");
            assert_eq!(canonical_combining_class(c), 0, "{c:?}");
        }
        // What `is_nfc` skips without decoding: a character that does not reset the check
        // starts with a byte of 0xCC or more.
        for c in (0..=0x10FFFF)
            .filter_map(char::from_u32)
            .filter(|&c| !resets_nfc_check(c))
        {
            assert!(c.to_string().as_bytes()[0] >= 0xCC, "{c:?}");
        }
        assert!(!is_nfc("Cafe\u{301}"));
        assert!(!is_nfc("ok 🍕 e\u{301}\u{300}"));
        assert!(!is_nfc("東京 \u{3099}x"));
        assert!(!is_nfc("Ω ab\u{212B}"));
        assert!(is_nfc("ok 🍕 東京 é"));
    }

    proptest::proptest! {
        #[test]
        fn run_wise_nfc_check_agrees_with_the_whole_text_check(
            pieces in proptest::collection::vec(
                proptest::sample::select(vec![
                    "a", "é", "e", "\u{301}", "\u{316}", "\u{300}", "\u{340}", "ñ", "ǅ",
                    "東", "\u{3099}", "か", "🍕", "Å", "\u{212B}", " ", "ᄀ", "\u{1161}", "가",
                    "\u{11A8}", "\u{F900}", "ｶ",
                ]),
                0..12,
            ),
            any in ".{0,12}",
        ) {
            for text in [pieces.concat(), any] {
                let whole = is_nfc_quick(text.chars()) == IsNormalized::Yes;
                proptest::prop_assert_eq!(is_nfc(&text), whole, "{:?}", text);
            }
        }
    }

    #[test]
    fn fold_into_agrees_with_fold() {
        for s in ["MiXeD ascii", "ÀÉÎ straße", "Cafe\u{301}", "🍕 Pizza"] {
            let mut out = String::new();
            fold_into(s, &mut out);
            assert_eq!(out, fold(s));
        }
    }
}
