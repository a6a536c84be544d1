//! What `sluice serve --source KIND=URL` names: the kind of source and where it reads.
//! Unknown kinds are refused with the list of known ones.

use std::fmt;
use std::str::FromStr;

use url::Url;

use crate::jetstream::subscribe;

/// A source to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// Bluesky's Jetstream at this instance URL.
    Jetstream(Url),
}

/// The kinds `--source` knows, for messages.
pub const KINDS: &str = "jetstream";

impl FromStr for SourceSpec {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let Some((kind, url)) = text.split_once('=') else {
            return Err(format!(
                "{text:?} is not KIND=URL; e.g. jetstream=wss://jetstream2.us-east.bsky.network"
            ));
        };
        match kind.trim() {
            "jetstream" => subscribe::instance(url.trim())
                .map(SourceSpec::Jetstream)
                .map_err(|e| e.to_string()),
            other => Err(format!(
                "unknown source kind {other:?}: the kinds are {KINDS} (e.g. \
                 jetstream=wss://jetstream2.us-east.bsky.network)"
            )),
        }
    }
}

impl fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceSpec::Jetstream(url) => write!(f, "jetstream={url}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_jetstream_source_is_parsed_and_others_are_refused() {
        let spec: SourceSpec = "jetstream=wss://jetstream2.us-east.bsky.network"
            .parse()
            .unwrap();
        assert_eq!(
            spec.to_string(),
            "jetstream=wss://jetstream2.us-east.bsky.network/"
        );
        for (bad, says) in [
            (
                "firehose=wss://h",
                "unknown source kind \"firehose\": the kinds are jetstream",
            ),
            ("wss://h", "is not KIND=URL"),
            ("jetstream=ftp://h", "not ftp://"),
        ] {
            let error = bad.parse::<SourceSpec>().unwrap_err();
            assert!(error.contains(says), "{bad}: {error}");
        }
    }
}
