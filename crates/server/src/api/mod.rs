//! The HTTP API surfaces, one module per family, assembled into one router.
//!
//! Routing is on the path only: any `Host` is accepted, so clients keep X's host names and
//! change only the base URL (spec Part A, wire rule 8).

pub mod admin;
pub mod encoding;
pub mod error;
pub mod gnip;
pub mod health;
pub mod ingest;
pub mod powerstream;
pub mod powertrack_rules;
pub mod powertrack_stream;
pub mod problem;
pub mod recovery;
pub mod stream_query;
pub mod streaming;
pub mod volume_stream;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};

use crate::state::AppState;

/// The whole API.
pub fn router(state: AppState) -> Router {
    let ingest_limit = state.settings.ingest_body_limit;
    let rules_limit = state.settings.rules_body_limit;
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .route(
            "/admin/accounts/{account}",
            put(admin::put_account).get(admin::get_account),
        )
        .route("/admin/accounts/{account}/users", get(admin::list_users))
        .route(
            "/admin/accounts/{account}/users/{username}",
            put(admin::put_user).delete(admin::delete_user),
        )
        .route(
            "/admin/accounts/{account}/streams/{label}",
            put(admin::put_stream).delete(admin::delete_stream),
        )
        .route(
            "/admin/accounts/{account}/tokens",
            post(admin::create_token),
        )
        .route(
            "/stream/powertrack/accounts/{account}/publishers/twitter/{label}",
            get(powertrack_stream::connect),
        )
        .route(
            "/stream/sample10/accounts/{account}/publishers/twitter/{label}",
            get(volume_stream::decahose),
        )
        .route(
            "/stream/firehose/accounts/{account}/publishers/twitter/{label}",
            get(volume_stream::firehose),
        )
        .route(
            "/rules/powertrack/accounts/{account}/publishers/twitter/{label}",
            get(powertrack_rules::list)
                .post(powertrack_rules::post)
                .delete(powertrack_rules::delete)
                .layer(DefaultBodyLimit::max(rules_limit)),
        )
        .route(
            "/rules/powertrack/accounts/{account}/publishers/twitter/{label}/rules/{rule_id}",
            get(powertrack_rules::get_one),
        )
        .route(
            "/rules/powertrack/accounts/{account}/publishers/twitter/{label}/validation.json",
            post(powertrack_rules::validate).layer(DefaultBodyLimit::max(rules_limit)),
        )
        .route("/2/powerstream", get(powerstream::connect))
        .route(
            "/2/powerstream/rules",
            get(powerstream::list_rules)
                .post(powerstream::post_rules)
                .delete(powerstream::delete_rules)
                .layer(DefaultBodyLimit::max(rules_limit)),
        )
        .route(
            "/ingest",
            post(ingest::ingest).layer(DefaultBodyLimit::max(ingest_limit)),
        )
        .with_state(state)
}
