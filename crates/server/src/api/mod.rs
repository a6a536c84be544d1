//! The HTTP API surfaces, one module per family, assembled into one router.
//!
//! Routing is on the path only: any `Host` is accepted, so clients keep X's host names and
//! change only the base URL (spec Part A, wire rule 8).

pub mod admin;
pub mod body;
pub mod dialect;
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
pub mod rejection;
pub mod stream_query;
pub mod streaming;
pub mod volume_stream;

use axum::Router;
use axum::middleware;
use axum::routing::{get, post, put};

use crate::state::AppState;

/// The whole API. Unknown routes, refused methods and extractor rejections are answered
/// in the dialect of the path ([`rejection`]); bodies are read by the handlers, after
/// authentication, with the limits of [`crate::Settings`] ([`body`]).
pub fn router(state: AppState) -> Router {
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
                .delete(powertrack_rules::delete),
        )
        .route(
            "/rules/powertrack/accounts/{account}/publishers/twitter/{label}/rules/{rule_id}",
            get(powertrack_rules::get_one),
        )
        .route(
            "/rules/powertrack/accounts/{account}/publishers/twitter/{label}/validation.json",
            post(powertrack_rules::validate),
        )
        .route("/2/powerstream", get(powerstream::connect))
        .route(
            "/2/powerstream/rules",
            get(powerstream::list_rules)
                .post(powerstream::post_rules)
                .delete(powerstream::delete_rules),
        )
        .route("/ingest", post(ingest::ingest))
        // New routes go above: the layer wraps only the routes (and fallback) before it.
        .fallback(rejection::not_found)
        .layer(middleware::from_fn(rejection::errors_in_dialect))
        .with_state(state)
}
