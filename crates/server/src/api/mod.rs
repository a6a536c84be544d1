//! The HTTP API surfaces assembled into one router.
//!
//! Each product's API is a folder with the same anatomy (`mod.rs` with its `routes()`,
//! `auth.rs`, `rules.rs`, `stream.rs`; the volume products have no rules); the facts that
//! differ between products are their rows of the product table
//! ([`sluice_store::Product::spec`]). Every rules dialect runs on [`rules_service`]. The
//! operator's surfaces (`admin`, `ingest`, `health`) and the parts the products share stay
//! at this level.
//!
//! Routing is on the path only: any `Host` is accepted, so clients keep X's host names and
//! change only the base URL (docs/compatibility.md, wire rule 8).

// Products.
pub mod powerstream;
pub mod powertrack;
pub mod replay;
pub mod v2;
pub mod volume;

// The operator's surfaces.
pub mod accounts;
pub mod admin;
pub mod admin_usage;
pub mod apps;
pub mod health;
pub mod ingest;
pub mod tokens;

// Shared by the products.
pub mod bearer;
pub mod body;
pub mod close;
pub mod dialect;
pub mod encoding;
pub mod error;
pub mod gnip;
pub mod problem;
pub mod recovery;
pub mod rejection;
pub mod rules_service;
pub mod stream_query;
pub mod streaming;
pub mod usage;

use axum::Router;
use axum::middleware;
use axum::routing::{delete, get, post, put};

use crate::state::AppState;

/// The whole API. Unknown routes, refused methods and extractor rejections are answered
/// in the dialect of the path ([`rejection`]); bodies are read by the handlers, after
/// authentication, with the limits of [`crate::Settings`] ([`body`]).
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .route("/admin/accounts", get(accounts::list_accounts))
        .route(
            "/admin/accounts/{account}",
            put(admin::put_account)
                .get(accounts::get_account)
                .delete(accounts::delete_account),
        )
        .route("/admin/accounts/{account}/users", get(admin::list_users))
        .route(
            "/admin/accounts/{account}/users/{username}",
            put(admin::put_user).delete(admin::delete_user),
        )
        .route(
            "/admin/accounts/{account}/streams",
            get(admin::list_streams),
        )
        .route(
            "/admin/accounts/{account}/streams/{label}",
            put(admin::put_stream).delete(admin::delete_stream),
        )
        .route(
            "/admin/accounts/{account}/tokens",
            post(tokens::create_token).get(tokens::list_tokens),
        )
        .route(
            "/admin/accounts/{account}/tokens/{prefix}",
            delete(tokens::revoke_token),
        )
        .route(
            "/admin/accounts/{account}/apps",
            post(apps::create_app).get(apps::list_apps),
        )
        .route(
            "/admin/accounts/{account}/apps/{app_id}",
            put(apps::put_app_limits).delete(apps::delete_app),
        )
        .route(
            "/admin/accounts/{account}/usage",
            get(admin_usage::get_usage),
        )
        .route("/oauth2/token", post(apps::oauth2_token))
        .route("/metrics/usage/accounts/{account}", get(usage::get_usage))
        .merge(powertrack::routes())
        .merge(replay::routes())
        .merge(volume::routes())
        .merge(powerstream::routes())
        .merge(v2::routes())
        .route("/ingest", post(ingest::ingest))
        .merge(crate::console::routes())
        // New routes go above: the layer wraps only the routes (and fallback) before it.
        .fallback(rejection::not_found)
        .layer(middleware::from_fn(rejection::errors_in_dialect))
        .with_state(state)
}
