//! The `lang:` codes PowerTrack accepts.
//!
//! X's PowerTrack list, plus plain `zh`, which X's "Operators by product" table lists
//! instead of `zh-CN`/`zh-TW` (all three are accepted), plus `und`: X documents that
//! unsupported values, `und` included, are accepted (a `lang:und` clause matches no post:
//! `lang:` only matches posts X classified, see docs/matching-semantics.md). Any other code
//! is refused. Comparison ignores case.

/// Every accepted code, as X spells it.
const CODES: &[&str] = &[
    "am", "ar", "hy", "eu", "bn", "bs", "bg", "my", "hr", "ca", "cs", "da", "nl", "en", "et", "fi",
    "fr", "ka", "de", "el", "gu", "ht", "iw", "hi", "hi-Latn", "hu", "is", "in", "it", "ja", "kn",
    "km", "ko", "lo", "lv", "lt", "ml", "dv", "mr", "ne", "no", "or", "pa", "ps", "fa", "pl", "pt",
    "ro", "ru", "sr", "zh", "zh-CN", "sd", "si", "sk", "sl", "ckb", "es", "sv", "tl", "ta", "te",
    "th", "bo", "zh-TW", "tr", "uk", "ur", "ug", "vi", "cy", "und",
];

/// Whether `code` is a `lang:` value X accepts (case-insensitive).
pub(crate) fn is_supported(code: &str) -> bool {
    CODES.iter().any(|c| c.eq_ignore_ascii_case(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_listed_codes_in_any_case() {
        assert!(is_supported("en"));
        assert!(is_supported("ZH-cn"));
        assert!(is_supported("zh"));
        assert!(is_supported("hi-latn"));
        assert!(is_supported("und"));
        assert!(is_supported("UND"));
        assert!(!is_supported("english"));
        assert!(!is_supported("xx"));
    }
}
