//! The in-stream `info` message that ends a finite stream (docs/compatibility.md §1.4 and §5):
//! `{"info":{"message":"Recovery Request Completed","sent":"…","activity_count":N}}`.

use serde::{Deserialize, Serialize};

/// The text of the message that ends a completed recovery (docs/compatibility.md §1.1, §5).
pub const RECOVERY_COMPLETED_MESSAGE: &str = "Recovery Request Completed";

/// `{"info":{"message":"…","sent":"…","activity_count":N}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfoBody {
    /// The one key of the body.
    pub info: InfoMessage,
}

/// The inside of [`InfoBody`], in X's field order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InfoMessage {
    /// What completed, e.g. [`RECOVERY_COMPLETED_MESSAGE`].
    pub message: String,
    /// When the message was written, in the stream format ([`crate::sent::stream_sent`]).
    pub sent: String,
    /// How many activities (posts) the finite stream delivered.
    pub activity_count: u64,
}

impl InfoBody {
    /// The message closing a completed recovery that delivered `activity_count` posts.
    pub fn recovery_completed(sent: impl Into<String>, activity_count: u64) -> Self {
        Self {
            info: InfoMessage {
                message: RECOVERY_COMPLETED_MESSAGE.to_owned(),
                sent: sent.into(),
                activity_count,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_completed_has_x_shape_and_field_order() {
        let body = InfoBody::recovery_completed("2016-05-27T22:15:50+00:00", 8874);
        assert_eq!(
            crate::to_string(&body),
            r#"{"info":{"message":"Recovery Request Completed","sent":"2016-05-27T22:15:50+00:00","activity_count":8874}}"#
        );
    }
}
