//! The subscribe URL: the operator gives an instance (`wss://jetstream2.us-east.bsky.network`)
//! or its `/subscribe` URL; the source adds what it needs: `wantedCollections` (posts and
//! profiles: identity and account events come whatever the filter), the `cursor` to resume
//! from and `compress=true`. Other query parameters the operator wrote are kept.

use url::Url;

use super::WANTED_COLLECTIONS;

/// Why a URL cannot be a Jetstream instance.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadUrl(String);

/// Checks the operator's URL: a WebSocket URL (`ws://` or `wss://`; `http(s)://` is taken
/// as its WebSocket twin) with a host.
pub fn instance(text: &str) -> Result<Url, BadUrl> {
    let mut url = Url::parse(text).map_err(|e| {
        BadUrl(format!(
            "{text:?} is not a URL ({e}); a Jetstream instance looks like wss://jetstream2.us-east.bsky.network"
        ))
    })?;
    let scheme = match url.scheme() {
        "ws" | "http" => "ws",
        "wss" | "https" => "wss",
        other => {
            return Err(BadUrl(format!(
                "{text:?}: a Jetstream instance is a ws:// or wss:// URL, not {other}://"
            )));
        }
    };
    if url.host_str().is_none_or(str::is_empty) {
        return Err(BadUrl(format!("{text:?} names no host")));
    }
    url.set_scheme(scheme)
        .map_err(|()| BadUrl(format!("{text:?}: cannot use {scheme}://")))?;
    Ok(url)
}

/// The URL to connect to: `instance`'s `/subscribe` asking for posts, from `cursor` when
/// given, compressed when `compress`.
pub fn subscribe_url(instance: &Url, cursor: Option<u64>, compress: bool) -> Url {
    let mut url = instance.clone();
    if !url.path().trim_end_matches('/').ends_with("/subscribe") {
        let path = format!("{}/subscribe", url.path().trim_end_matches('/'));
        url.set_path(&path);
    }
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(name, _)| !matches!(&**name, "wantedCollections" | "cursor" | "compress"))
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect();
    let compress = compress
        || instance
            .query_pairs()
            .any(|(name, value)| name == "compress" && value == "true");
    {
        let mut query = url.query_pairs_mut();
        query.clear();
        for (name, value) in &kept {
            query.append_pair(name, value);
        }
        for collection in WANTED_COLLECTIONS {
            query.append_pair("wantedCollections", collection);
        }
        if let Some(cursor) = cursor {
            query.append_pair("cursor", &cursor.to_string());
        }
        if compress {
            query.append_pair("compress", "true");
        }
    }
    url
}

/// Whether `url` asks for compressed frames.
pub fn is_compressed(url: &Url) -> bool {
    url.query_pairs()
        .any(|(name, value)| name == "compress" && value == "true")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subscribe_url_asks_for_posts_from_the_cursor() {
        let base = instance("wss://jetstream2.us-east.bsky.network").unwrap();
        assert_eq!(
            subscribe_url(&base, None, false).as_str(),
            "wss://jetstream2.us-east.bsky.network/subscribe?wantedCollections=app.bsky.feed.post&wantedCollections=app.bsky.actor.profile"
        );
        let url = subscribe_url(&base, Some(1_725_911_162_329_308), true);
        assert_eq!(
            url.as_str(),
            "wss://jetstream2.us-east.bsky.network/subscribe?wantedCollections=app.bsky.feed.post&wantedCollections=app.bsky.actor.profile&cursor=1725911162329308&compress=true"
        );
        assert!(is_compressed(&url));
    }

    #[test]
    fn a_subscribe_url_is_not_doubled_and_keeps_other_parameters() {
        let base =
            instance("ws://127.0.0.1:6008/subscribe?wantedDids=did:plc:a&cursor=5&compress=true")
                .unwrap();
        let url = subscribe_url(&base, Some(9), false);
        assert_eq!(
            url.as_str(),
            "ws://127.0.0.1:6008/subscribe?wantedDids=did%3Aplc%3Aa&wantedCollections=app.bsky.feed.post&wantedCollections=app.bsky.actor.profile&cursor=9&compress=true"
        );
    }

    #[test]
    fn http_urls_become_websocket_urls_and_others_are_refused() {
        assert_eq!(instance("https://h.example").unwrap().scheme(), "wss");
        assert_eq!(instance("http://h.example:1").unwrap().scheme(), "ws");
        for (bad, says) in [
            ("ftp://h.example", "not ftp://"),
            ("jetstream2.us-east.bsky.network", "is not a URL"),
            ("wss://", "empty host"),
        ] {
            let error = instance(bad).unwrap_err().to_string();
            assert!(error.contains(says), "{bad}: {error}");
        }
    }
}
