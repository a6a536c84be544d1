//! PowerTrack Replay (docs/compatibility.md "Replay"): a past window of the post log,
//! matched against the stream's own rule set, delivered once per request and ended by
//! X's completion message. Gnip-style like PowerTrack (basic auth, `{label}.json` URLs,
//! Gnip error bodies); its facts (URLs, connect limit, that it is never fed live) are its
//! row of the product table, [`sluice_store::Product::PowerTrackReplay`].
//!
//! - `query`: `fromDate`/`toDate`, their format and the embargo and 5-day checks;
//! - `stream`: the connect, the check that the post log still holds the window, the job
//!   slot;
//! - the rules API is PowerTrack's, served at this row's rules URL
//!   ([`super::powertrack::rules::routes`]).

pub mod query;
pub mod stream;

use axum::Router;
use axum::routing::get;
use sluice_store::Product;

use crate::state::AppState;

/// Replay's routes: the stream and its rules API.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/replay/powertrack/accounts/{account}/publishers/twitter/{label}",
            get(stream::connect),
        )
        .merge(super::powertrack::rules::routes(Product::PowerTrackReplay))
}
