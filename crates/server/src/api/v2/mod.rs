//! The X API v2 streams (docs/compatibility.md §7): the filtered stream
//! `GET /2/tweets/search/stream` with its rules API (`GET|POST
//! /2/tweets/search/stream/rules`, `GET …/rules/counts`), the 1 % sample
//! `GET /2/tweets/sample/stream`, and the enterprise volume streams
//! `GET /2/tweets/sample10/stream` (2 partitions) and `GET /2/tweets/firehose/stream`
//! (20 partitions). What tweepy, twarc, twitter-api-v2 and twitter-api-sdk talk to.
//!
//! Decisions where X is silent (docs/compatibility.md §7):
//! - Auth: X's app-only bearer tokens ([`auth`]); each app has its own streams, created on
//!   its first call: one filtered stream (its rules are the app's rules) and one of each
//!   volume stream, labelled with the app id, with the limits of their rows of the product
//!   table (filtered: 25,000 rules of up to 2,048 characters, 2 connections; volume: 2
//!   connections per partition). Every app may connect to every v2 stream.
//! - Rate limits per app, as X documents them: 50 connects per 15 minutes per stream
//!   endpoint, 450 rules reads and 100 rules changes per 15 minutes; every answer of a
//!   limited endpoint carries the `x-rate-limit-*` headers, a refusal is a 429 problem.
//! - Connecting: a filtered stream without rules is refused with 409
//!   `RuleConfigurationIssue`; a connection beyond the stream's cap (per partition) with
//!   429 `TooManyConnections`, at once, as X does (no grace period). Gzip when
//!   `Accept-Encoding` allows it, identity otherwise; `\r\n` framing; heartbeats.
//! - Lines: the v2 Post of each native post, with the fields and expansions the connection
//!   asked for (`sluice_wire::v2_post`), and on the filtered stream `matching_rules` with
//!   string ids and `tag` always present. In-band closing lines are v2 `errors` lines
//!   (`OperationalDisconnect` at shutdown, X's slow-reader text for a slow consumer).
//!
//! Files: `auth` (the app of a bearer token), `query` (stream parameters), `rules` (the
//! rules API), `stream` (the connects).

pub mod auth;
pub mod query;
pub mod rules;
pub mod stream;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use sluice_store::{Product, StoredApp};

use crate::changes::{self, ChangeError};
use crate::registry::LiveStream;
use crate::state::AppState;

/// The v2 routes: each stream at its row's `stream_url`, and the filtered stream's rules.
pub fn routes() -> Router<AppState> {
    let streams = Product::V2
        .into_iter()
        .fold(Router::new(), |router, product| {
            router.route(product.spec().stream_url, stream::endpoint(product))
        });
    streams
        .route(
            "/2/tweets/search/stream/rules",
            get(rules::list_rules).post(rules::change_rules),
        )
        .route("/2/tweets/search/stream/rules/counts", get(rules::counts))
}

/// The app's stream of `product` ([`StoredApp::stream`]), created (with
/// [`StoredApp::stream_limits`]) and registered if it does not
/// exist yet.
pub async fn ensure_stream(
    state: &AppState,
    app: &StoredApp,
    product: Product,
) -> Result<Arc<LiveStream>, ChangeError> {
    let key = app.stream(product);
    if let Some(live) = state.registry.get(&key) {
        return Ok(live);
    }
    changes::ensure_stream(state, &key, app.stream_limits(product)).await
}
