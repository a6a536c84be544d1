//! Liveness and metrics.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;
use crate::telemetry;

/// `GET /healthz`: 200 while the node can accept and deliver posts, 503 otherwise (with
/// the reason when it is a cluster problem: state still loading, cluster unreachable).
pub async fn healthz(State(state): State<AppState>) -> Response {
    match readiness(&state) {
        Ok(()) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            r#"{"status":"ok"}"#.to_owned(),
        )
            .into_response(),
        Err(reason) => {
            let mut body = serde_json::json!({ "status": "unavailable" });
            if let Some(reason) = reason {
                body["reason"] = reason.into();
            }
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "application/json")],
                body.to_string(),
            )
                .into_response()
        }
    }
}

/// Whether the node can serve; when not, the cluster problem if that is the reason (the
/// pipeline stopping or a shutdown under way have none).
fn readiness(state: &AppState) -> Result<(), Option<String>> {
    state.readiness.check().map_err(Some)?;
    if state.pipeline_running() && !state.shutdown.has_begun() {
        Ok(())
    } else {
        Err(None)
    }
}

/// `GET /metrics`: Prometheus text format.
/// Gauges that describe the node's state are read at scrape time.
pub async fn metrics(State(state): State<AppState>) -> Response {
    telemetry::ready(readiness(&state).is_ok());
    telemetry::rules_indexed(state.registry.rules().len());
    let mut response = telemetry::render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}
