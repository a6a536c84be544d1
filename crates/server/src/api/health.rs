//! Liveness and metrics.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;
use crate::telemetry;

/// `GET /healthz`: 200 while the node can accept and deliver posts, 503 otherwise (with
/// the reason when it is a cluster problem: state still loading, cluster unreachable).
pub async fn healthz(State(state): State<AppState>) -> Response {
    if let Err(reason) = state.readiness.check() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({ "status": "unavailable", "reason": reason }).to_string(),
        )
            .into_response();
    }
    if state.pipeline_running() && !state.shutdown.is_cancelled() {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"status":"ok"}"#,
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"status":"unavailable"}"#,
        )
            .into_response()
    }
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics() -> Response {
    let mut response = telemetry::render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}
