//! What each character is to the tokenizer.

use unicode_properties::{GeneralCategoryGroup, UnicodeEmoji, UnicodeGeneralCategory};
use unicode_script::{Script, UnicodeScript};

/// The tokenizer's view of one character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CharClass {
    /// Part of a word: letters, marks, digits (and unassigned or private-use characters,
    /// which X cannot know to be punctuation either).
    Word,
    /// A Han, Hiragana, Katakana or Hangul character: a token by itself.
    Ideograph,
    /// The start of an emoji: a token by itself, with its modifiers.
    Emoji,
    /// A regional indicator: two of them make a flag.
    RegionalIndicator,
    /// Punctuation, symbols, separators, controls: ends a token and is dropped.
    Break,
}

pub(crate) fn classify(c: char) -> CharClass {
    common_class(c).unwrap_or_else(|| table_class(c))
}

/// The class of the most frequent characters by their code point alone, without the
/// Unicode tables: ASCII, Latin letters, combining diacritics, and the core blocks of Han,
/// kana and Hangul. `None` for everything else.
#[inline]
fn common_class(c: char) -> Option<CharClass> {
    Some(match c {
        'a'..='z' | 'A'..='Z' | '0'..='9' => CharClass::Word,
        '\0'..='\u{7F}' => CharClass::Break,
        '×' | '÷' => CharClass::Break,
        // Latin-1 letters, Latin Extended-A and -B, IPA, spacing modifiers are letters
        // (except × and ÷ above); then the combining diacritical marks.
        '\u{C0}'..='\u{2AF}' | '\u{300}'..='\u{36F}' => CharClass::Word,
        // Hiragana, Katakana (letters), CJK Unified Ideographs, Hangul syllables.
        '\u{3041}'..='\u{3096}'
        | '\u{30A1}'..='\u{30FA}'
        | '\u{4E00}'..='\u{9FFF}'
        | '\u{AC00}'..='\u{D7A3}' => CharClass::Ideograph,
        _ => return None,
    })
}

/// The class from the Unicode general category, script and emoji tables.
fn table_class(c: char) -> CharClass {
    if c.is_ascii() {
        return if c.is_ascii_alphanumeric() {
            CharClass::Word
        } else {
            CharClass::Break
        };
    }
    if matches!(c, '\u{1F1E6}'..='\u{1F1FF}') {
        return CharClass::RegionalIndicator;
    }
    match c.general_category_group() {
        GeneralCategoryGroup::Letter => {
            if is_ideographic_script(c) {
                CharClass::Ideograph
            } else {
                CharClass::Word
            }
        }
        GeneralCategoryGroup::Mark | GeneralCategoryGroup::Number => CharClass::Word,
        GeneralCategoryGroup::Symbol => {
            if c.is_emoji_char() {
                CharClass::Emoji
            } else {
                CharClass::Break
            }
        }
        GeneralCategoryGroup::Punctuation | GeneralCategoryGroup::Separator => CharClass::Break,
        GeneralCategoryGroup::Other => {
            use unicode_properties::GeneralCategory::{Control, Format, Surrogate};
            match c.general_category() {
                Control | Format | Surrogate => CharClass::Break,
                _ => CharClass::Word,
            }
        }
    }
}

fn is_ideographic_script(c: char) -> bool {
    // The prolonged sound mark is script Common but only ever appears inside kana words.
    c == 'ー'
        || matches!(
            c.script(),
            Script::Han | Script::Hiragana | Script::Katakana | Script::Hangul
        )
}

/// Characters that continue an emoji sequence: skin-tone modifiers, the keycap mark, tag
/// characters (subdivision flags) and variation selectors (normally folded away already).
pub(crate) fn is_emoji_continuation(c: char) -> bool {
    matches!(
        c,
        '\u{1F3FB}'..='\u{1F3FF}' | '\u{20E3}' | '\u{E0020}'..='\u{E007F}' | '\u{FE0E}' | '\u{FE0F}'
    )
}

/// Zero-width joiner: glues two emoji into one.
pub(crate) const ZWJ: char = '\u{200D}';

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_path_agrees_with_the_tables() {
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            if let Some(class) = common_class(c) {
                assert_eq!(class, table_class(c), "{c:?}");
            }
        }
    }

    #[test]
    fn classes() {
        assert_eq!(classify('a'), CharClass::Word);
        assert_eq!(classify('9'), CharClass::Word);
        assert_eq!(classify('ñ'), CharClass::Word);
        assert_eq!(classify('\u{301}'), CharClass::Word);
        assert_eq!(classify('-'), CharClass::Break);
        assert_eq!(classify('#'), CharClass::Break);
        assert_eq!(classify('\u{3000}'), CharClass::Break);
        assert_eq!(classify('€'), CharClass::Break);
        assert_eq!(classify('🍕'), CharClass::Emoji);
        assert_eq!(classify('❤'), CharClass::Emoji);
        assert_eq!(classify('東'), CharClass::Ideograph);
        assert_eq!(classify('ひ'), CharClass::Ideograph);
        assert_eq!(classify('한'), CharClass::Ideograph);
        assert_eq!(classify('\u{1F1EF}'), CharClass::RegionalIndicator);
        assert_eq!(classify('\u{200B}'), CharClass::Break);
    }
}
