//! Refusals made around the handlers, answered in the path's [`Dialect`]: the fallback for
//! unknown routes, and one middleware that refuses oversized request heads and rewrites
//! every other error answer that is not JSON (axum's 405, its `Query`/`Path`/body
//! rejections, which are plain text) into the dialect (docs/errors.md).

use axum::extract::Request;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::middleware::Next;
use axum::response::Response;

use super::dialect::Dialect;
use super::encoding::accepts_gzip;

/// Longest request target (path and query) served; longer ones get 414 in the dialect.
pub const MAX_URI_BYTES: usize = 8 << 10;
/// Largest header section served (names, values and their separators); larger ones get
/// 431 in the dialect. hyper itself refuses heads over [`HYPER_MAX_HEAD_BYTES`].
pub const MAX_HEADER_BYTES: usize = 32 << 10;
/// The request head size at which hyper answers 431 itself, with an empty body, before
/// sluice sees the request (set on the connection builder in `crate::serve`).
pub const HYPER_MAX_HEAD_BYTES: usize = 64 << 10;

/// The router's fallback: 404 in the dialect of the path.
pub async fn not_found(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let path = uri.path();
    Dialect::of_path(path).error(
        StatusCode::NOT_FOUND,
        format!("Not found: nothing is served at {method} {path}."),
        accepts_gzip(&headers),
    )
}

/// The middleware around every route: refuses heads over [`MAX_URI_BYTES`] or
/// [`MAX_HEADER_BYTES`], then answers any error response that is not JSON again in the
/// path's dialect, keeping its status and its text as the message.
pub async fn errors_in_dialect(request: Request, next: Next) -> Response {
    let dialect = Dialect::of_path(request.uri().path());
    let gzip = accepts_gzip(request.headers());
    if let Some((status, message)) = oversized_head(&request) {
        return dialect.error(status, message, gzip);
    }
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let response = next.run(request).await;
    if !needs_dialect(&response) {
        return response;
    }
    let status = response.status();
    let text = axum::body::to_bytes(response.into_body(), 16 << 10)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_owned();
    let message = if !text.is_empty() {
        text
    } else if status == StatusCode::METHOD_NOT_ALLOWED {
        // axum adds `Allow` outside this middleware, to the answer below.
        format!("Method not allowed: {method} {path}; the Allow header lists the methods served.")
    } else {
        status.canonical_reason().unwrap_or("Error").to_owned()
    };
    dialect.error(status, message, gzip)
}

/// An error status whose body is not JSON: axum's own refusals.
fn needs_dialect(response: &Response) -> bool {
    if !(response.status().is_client_error() || response.status().is_server_error()) {
        return false;
    }
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    !(content_type.starts_with("application/json")
        || content_type.starts_with("application/problem+json"))
}

/// 414 or 431 with the reason, when the request line or the headers are over the limits.
fn oversized_head(request: &Request) -> Option<(StatusCode, String)> {
    let uri = request
        .uri()
        .path_and_query()
        .map_or(0, |pq| pq.as_str().len());
    if uri > MAX_URI_BYTES {
        return Some((
            StatusCode::URI_TOO_LONG,
            format!("URI too long: {uri} bytes; at most {MAX_URI_BYTES} are served."),
        ));
    }
    let headers: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if headers > MAX_HEADER_BYTES {
        return Some((
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            format!(
                "Request header fields too large: {headers} bytes; at most {MAX_HEADER_BYTES} \
                 are served."
            ),
        ));
    }
    None
}
