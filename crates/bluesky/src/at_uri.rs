//! `at://` URIs of records (`at://did:plc:…/app.bsky.feed.post/3l…`), as replies and quotes
//! name the posts they refer to.

/// The collection of Bluesky posts.
pub const POST_COLLECTION: &str = "app.bsky.feed.post";

/// A record's address: its repository (a DID, or a handle in old records), collection and key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtUri<'a> {
    /// The repository: the author's DID.
    pub authority: &'a str,
    /// The record's collection (an NSID such as `app.bsky.feed.post`).
    pub collection: &'a str,
    /// The record key.
    pub rkey: &'a str,
}

impl<'a> AtUri<'a> {
    /// Reads `at://AUTHORITY/COLLECTION/RKEY` (no query or fragment); `None` for any other
    /// shape, or an empty part.
    pub fn parse(uri: &'a str) -> Option<AtUri<'a>> {
        let rest = uri.strip_prefix("at://")?;
        let mut parts = rest.split('/');
        let (authority, collection, rkey) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some()
            || [authority, collection, rkey].iter().any(|p| p.is_empty())
            || rkey.contains(['?', '#'])
        {
            return None;
        }
        Some(AtUri {
            authority,
            collection,
            rkey,
        })
    }

    /// Whether the record is a Bluesky post whose repository is named by its DID.
    pub fn is_post(&self) -> bool {
        self.collection == POST_COLLECTION && self.authority.starts_with("did:")
    }

    /// The URI of a post, as [`AtUri::parse`] reads it.
    pub fn post(did: &str, rkey: &str) -> String {
        format!("at://{did}/{POST_COLLECTION}/{rkey}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn post_uris_are_read_and_others_refused() {
        let uri = AtUri::parse("at://did:plc:abc/app.bsky.feed.post/3lbeqfiezv22l").unwrap();
        assert_eq!(uri.authority, "did:plc:abc");
        assert_eq!(uri.rkey, "3lbeqfiezv22l");
        assert!(uri.is_post());
        assert_eq!(
            AtUri::post("did:plc:abc", "3lbeqfiezv22l"),
            "at://did:plc:abc/app.bsky.feed.post/3lbeqfiezv22l"
        );
        let list = AtUri::parse("at://did:plc:abc/app.bsky.graph.list/x").unwrap();
        assert!(!list.is_post());
        let by_handle = AtUri::parse("at://alice.test/app.bsky.feed.post/x").unwrap();
        assert!(!by_handle.is_post());
        for bad in [
            "",
            "https://bsky.app/profile/x/post/y",
            "at://did:plc:abc",
            "at://did:plc:abc/app.bsky.feed.post",
            "at://did:plc:abc/app.bsky.feed.post/",
            "at:///app.bsky.feed.post/x",
            "at://did:plc:abc/app.bsky.feed.post/x/y",
            "at://did:plc:abc/app.bsky.feed.post/x?y",
        ] {
            assert_eq!(AtUri::parse(bad), None, "{bad:?}");
        }
    }
}
