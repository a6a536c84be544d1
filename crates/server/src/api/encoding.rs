//! Content negotiation: does the client accept gzip?

use axum::http::HeaderMap;
use axum::http::header::ACCEPT_ENCODING;

/// Whether `Accept-Encoding` lists `gzip` (or `*`) with a non-zero q-value (docs/compatibility.md ("Decisions"),
/// wire rule 2). Clients send `gzip`, `gzip, deflate`, `gzip, deflate, br, zstd`, ….
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    let mut gzip = None;
    let mut star = None;
    for value in headers.get_all(ACCEPT_ENCODING) {
        let Ok(value) = value.to_str() else { continue };
        for item in value.split(',') {
            let mut parts = item.split(';');
            let coding = parts.next().unwrap_or("").trim();
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .filter_map(|q| q.trim().parse::<f32>().ok())
                .next()
                .unwrap_or(1.0);
            if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
                gzip = Some(q > 0.0);
            } else if coding == "*" {
                star = Some(q > 0.0);
            }
        }
    }
    gzip.or(star).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(ACCEPT_ENCODING, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn gzip_is_found_in_lists_and_respects_q() {
        assert!(accepts_gzip(&with("gzip")));
        assert!(accepts_gzip(&with("gzip, deflate")));
        assert!(accepts_gzip(&with("deflate, br, GZIP;q=0.5, zstd")));
        assert!(accepts_gzip(&with("*")));
        assert!(!accepts_gzip(&with("gzip;q=0")));
        assert!(!accepts_gzip(&with("deflate, br")));
        assert!(!accepts_gzip(&with("*, gzip;q=0")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }
}
