//! Request bodies, read only once the caller is authenticated, with a size limit and a
//! deadline (docs/errors.md, "Request bodies").
//!
//! A handler that takes a body takes an [`UnreadBody`]: extracting it reads nothing, so the
//! handler checks credentials from the headers first and only then calls
//! [`UnreadBody::read`]. A body that is never read (a 401, a 404, a 413 decided from
//! `Content-Length`) is dropped with the request: hyper then takes what it has already
//! buffered and, if the body goes on, closes the connection after the answer, so an
//! unwanted upload costs neither memory nor a waiting connection.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use bytes::{Buf, Bytes};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Body as _;

/// Why a body could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// The body is (or declared itself) longer than the endpoint's limit of this many bytes.
    TooLarge(usize),
    /// The whole body did not arrive within this deadline.
    Timeout(Duration),
    /// The body broke off or was malformed (a bad chunk size, the client went away).
    Broken(String),
}

impl BodyError {
    /// The HTTP status of the answer: 413, 408 or 400.
    pub fn status(&self) -> StatusCode {
        match self {
            BodyError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            BodyError::Broken(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// The client-facing text of the error, the same in every dialect.
    pub fn message(&self) -> String {
        match self {
            BodyError::TooLarge(limit) => {
                format!("Request body too large: this endpoint takes at most {limit} bytes.")
            }
            BodyError::Timeout(deadline) => format!(
                "Request timeout: the request body did not arrive within {} s.",
                deadline.as_secs_f64()
            ),
            BodyError::Broken(why) => format!("The request body could not be read: {why}."),
        }
    }
}

/// The request body, not read yet. Extracting it never fails and reads nothing.
pub struct UnreadBody(Body);

impl<S: Send + Sync> FromRequest<S> for UnreadBody {
    type Rejection = std::convert::Infallible;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(UnreadBody(req.into_body()))
    }
}

impl UnreadBody {
    /// Reads the whole body: at most `limit` bytes (413 when it declares or sends more),
    /// all within `deadline` from now (408 past it).
    pub async fn read(self, limit: usize, deadline: Duration) -> Result<Bytes, BodyError> {
        Ok(self.collect(limit, deadline).await?.to_bytes())
    }

    /// [`UnreadBody::read`], the body left in the pieces it arrived in (none copied): for a
    /// reader that can take it piece by piece, such as the ingest API's line splitter,
    /// which would otherwise copy every post once more.
    pub async fn read_chunks(
        self,
        limit: usize,
        deadline: Duration,
    ) -> Result<Vec<Bytes>, BodyError> {
        let mut body = self.collect(limit, deadline).await?.aggregate();
        let mut chunks = Vec::new();
        while body.has_remaining() {
            // A whole piece at a time: taking as much as the first piece holds splits it
            // off without copying.
            let len = body.chunk().len();
            chunks.push(body.copy_to_bytes(len));
        }
        Ok(chunks)
    }

    /// The body's frames, gathered under the limit and the deadline.
    async fn collect(
        self,
        limit: usize,
        deadline: Duration,
    ) -> Result<http_body_util::Collected<Bytes>, BodyError> {
        let body = self.0;
        // Refuse a declared length over the limit without reading a byte of it.
        if body.size_hint().lower() > limit as u64 {
            return Err(BodyError::TooLarge(limit));
        }
        let collected = tokio::time::timeout(deadline, Limited::new(body, limit).collect())
            .await
            .map_err(|_| BodyError::Timeout(deadline))?;
        match collected {
            Ok(collected) => Ok(collected),
            Err(e) if e.is::<LengthLimitError>() => Err(BodyError::TooLarge(limit)),
            Err(e) => Err(BodyError::Broken(error_chain(&*e))),
        }
    }
}

/// `error: its source: …`: hyper's own text ("error reading a body from connection") says
/// what failed, its source says why (an invalid chunk size, the connection closing).
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(e) = source {
        let part = e.to_string();
        // Wrappers (axum's, hyper's) often repeat the text of what they wrap.
        if parts.last() != Some(&part) {
            parts.push(part);
        }
        source = e.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unread(bytes: &'static [u8]) -> UnreadBody {
        UnreadBody(Body::from(bytes))
    }

    #[tokio::test]
    async fn a_body_within_the_limit_is_read_whole() {
        let read = unread(b"{\"a\":1}").read(7, Duration::from_secs(1)).await;
        assert_eq!(read.unwrap(), Bytes::from_static(b"{\"a\":1}"));
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused() {
        let read = unread(b"12345678").read(7, Duration::from_secs(1)).await;
        assert_eq!(read, Err(BodyError::TooLarge(7)));
    }

    #[tokio::test]
    async fn a_body_read_in_pieces_keeps_the_pieces_it_came_in() {
        let pieces = [
            Bytes::from_static(b"{\"a\":"),
            Bytes::from_static(b"1}\n{\"b\""),
            Bytes::from_static(b":2}"),
        ];
        let frames = pieces.clone().map(Ok::<_, std::io::Error>);
        let body = UnreadBody(Body::from_stream(futures_util::stream::iter(frames)));
        let chunks = body.read_chunks(100, Duration::from_secs(1)).await.unwrap();
        assert_eq!(chunks, pieces);
        // Not copied: each is its piece's own memory.
        for (chunk, piece) in chunks.iter().zip(&pieces) {
            assert_eq!(chunk.as_ptr(), piece.as_ptr());
        }
        let frames = pieces.map(Ok::<_, std::io::Error>);
        let body = UnreadBody(Body::from_stream(futures_util::stream::iter(frames)));
        let read = body.read_chunks(12, Duration::from_secs(1)).await;
        assert_eq!(read, Err(BodyError::TooLarge(12)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_that_never_ends_times_out() {
        let stream = futures_util::stream::pending::<Result<Bytes, std::io::Error>>();
        let body = UnreadBody(Body::from_stream(stream));
        let read = body.read(100, Duration::from_secs(3)).await;
        assert_eq!(read, Err(BodyError::Timeout(Duration::from_secs(3))));
    }
}
