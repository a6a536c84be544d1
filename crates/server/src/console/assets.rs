//! The console's page, style sheet and script, compiled into the binary: nothing is
//! fetched from anywhere else, and a strict Content-Security-Policy says so to the
//! browser (scripts, styles and connections from this origin only).

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::ConsoleError;

const INDEX_HTML: &str = include_str!("static/index.html");
const CONSOLE_CSS: &str = include_str!("static/console.css");
const CONSOLE_JS: &str = include_str!("static/console.js");

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; \
    frame-ancestors 'none'";

fn served(body: &'static str, content_type: &'static str) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// `GET /console/`: the page.
pub(super) async fn page() -> Response {
    served(INDEX_HTML, "text/html; charset=utf-8")
}

/// `GET /console/assets/{file}`: the style sheet and the script.
pub(super) async fn asset(Path(file): Path<String>) -> Response {
    match file.as_str() {
        "console.css" => served(CONSOLE_CSS, "text/css; charset=utf-8"),
        "console.js" => served(CONSOLE_JS, "text/javascript; charset=utf-8"),
        _ => ConsoleError::not_found(format!("No console asset {file:?}.")).into_response(),
    }
}
