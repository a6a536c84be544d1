//! The volume streams, Decahose, Firehose and the compliance firehose: one folder, since
//! they differ only in their rows of the product table (URL, partitions, sample, content). No rules API; auth is Gnip basic
//! auth for the account in the path, checked by [`crate::api::streaming::admit_gnip`].
//!
//! - `stream`: the three connects.

pub mod stream;

use axum::Router;
use axum::routing::get;

use crate::state::AppState;

/// The Decahose's, the Firehose's and the compliance firehose's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/stream/sample10/accounts/{account}/publishers/twitter/{label}",
            get(stream::decahose),
        )
        .route(
            "/stream/firehose/accounts/{account}/publishers/twitter/{label}",
            get(stream::firehose),
        )
        .route(
            "/stream/compliance/accounts/{account}/publishers/twitter/{label}",
            get(stream::compliance),
        )
}
