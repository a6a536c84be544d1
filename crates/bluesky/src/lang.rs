//! The post's language as X names it: Bluesky's `langs` are BCP-47 tags chosen by the
//! author (`pt-BR`, `en`, `zh-Hant`); X's `lang` holds its own codes (`pt`, `en`, `zh-TW`),
//! the ones PowerTrack's `lang:` accepts.

/// X's `lang` for the first of `langs`: its primary language subtag in lower case, with X's
/// spellings (`iw` for Hebrew, `in` for Indonesian, `tl` for Filipino, `no` for Norwegian
/// Bokmål and Nynorsk, `zh-CN`/`zh-TW` by script or region, `hi-Latn`). `und` when there
/// is none.
pub(crate) fn x_lang(langs: Option<&[String]>) -> String {
    let Some(tag) = langs.and_then(|l| l.first()).map(|t| t.trim()) else {
        return "und".to_owned();
    };
    let mut subtags = tag.split(['-', '_']);
    let primary = subtags.next().unwrap_or_default().to_ascii_lowercase();
    let rest: Vec<String> = subtags.map(|s| s.to_ascii_lowercase()).collect();
    let has = |s: &str| rest.iter().any(|r| r == s);
    let code = match primary.as_str() {
        "" => "und",
        "he" => "iw",
        "id" => "in",
        "fil" => "tl",
        "nb" | "nn" => "no",
        "zh" if has("hant") || has("tw") || has("hk") || has("mo") => "zh-TW",
        "zh" if has("hans") || has("cn") || has("sg") => "zh-CN",
        "hi" if has("latn") => "hi-Latn",
        other if other.len() <= 8 && other.bytes().all(|b| b.is_ascii_alphabetic()) => other,
        _ => "und",
    };
    code.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_become_x_s_codes() {
        for (langs, want) in [
            (vec![], "und"),
            (vec!["en"], "en"),
            (vec!["pt-BR", "en"], "pt"),
            (vec!["EN-us"], "en"),
            (vec!["he"], "iw"),
            (vec!["id"], "in"),
            (vec!["fil"], "tl"),
            (vec!["nb"], "no"),
            (vec!["zh-Hant"], "zh-TW"),
            (vec!["zh-TW"], "zh-TW"),
            (vec!["zh-Hans-CN"], "zh-CN"),
            (vec!["zh"], "zh"),
            (vec!["hi-Latn"], "hi-Latn"),
            (vec!["ja"], "ja"),
            (vec![""], "und"),
            (vec!["x😀"], "und"),
        ] {
            let langs: Vec<String> = langs.into_iter().map(str::to_owned).collect();
            assert_eq!(x_lang(Some(&langs)), want, "{langs:?}");
        }
        assert_eq!(x_lang(None), "und");
    }
}
