//! PowerTrack: a filtered stream and its rules API, Gnip-style (basic auth, `{label}.json`
//! URLs, Gnip error bodies). Its facts (URLs, dialect, limits) are its row of the product
//! table, [`sluice_store::Product::spec`].
//!
//! - `auth`: basic auth for the account in the path, then the stream;
//! - `rules`: the rules API in PowerTrack's wire shapes, over [`super::rules_service`];
//! - `stream`: the stream connect.

pub mod auth;
pub mod rules;
pub mod stream;

use axum::Router;
use axum::routing::get;
use sluice_store::Product;

use crate::state::AppState;

/// PowerTrack's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/stream/powertrack/accounts/{account}/publishers/twitter/{label}",
            get(stream::connect),
        )
        .merge(rules::routes(Product::PowerTrack))
}
