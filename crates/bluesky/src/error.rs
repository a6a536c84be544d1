//! Why an event could not be converted.

use std::fmt;

/// How long a message may be, in bytes: serde quotes the values it refuses whole, and a
/// consumer logs these messages, so one huge field must not make a huge log line.
const MAX_MESSAGE: usize = 300;

/// An event that is not one Jetstream sends, or lacks what its conversion needs. The
/// message names the field at fault (`commit.record.createdAt: missing field …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertError {
    message: String,
}

impl ConvertError {
    pub(crate) fn new(message: impl Into<String>) -> Self {
        let mut message = message.into();
        if message.len() > MAX_MESSAGE {
            let mut end = MAX_MESSAGE;
            while !message.is_char_boundary(end) {
                end -= 1;
            }
            message.truncate(end);
            message.push('…');
        }
        Self { message }
    }

    /// A deserialization failure at `prefix` + the path serde reached.
    pub(crate) fn at_path(
        prefix: &str,
        error: serde_path_to_error::Error<serde_json::Error>,
    ) -> Self {
        let path = error.path().to_string();
        let inner = error.into_inner();
        let place = match (prefix, path.as_str()) {
            ("", ".") => String::new(),
            (prefix, ".") => format!("{prefix}: "),
            ("", path) => format!("{path}: "),
            (prefix, path) => format!("{prefix}.{path}: "),
        };
        Self::new(format!("{place}{inner}"))
    }
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Jetstream event: {}", self.message)
    }
}

impl std::error::Error for ConvertError {}
