//! Powerstream (docs/compatibility.md §6 and "Decisions" "Powerstream"): `GET /2/powerstream` and the rules
//! API `GET`/`POST`/`DELETE /2/powerstream/rules`, with OAuth 2.0 bearer tokens from the
//! admin API.
//!
//! Each account has one Powerstream rule set: a stream of product Powerstream labelled
//! [`LABEL`], created on the account's first Powerstream call with the rule cap of
//! Powerstream's row in the product table (1,000) and the default connection cap. The
//! pipeline delivers to it as to a PowerTrack stream: every matching post once per
//! connection, as one JSON object per line with
//! PowerTrack-style `matching_rules` (`{"tag":…,"id":N,"id_str":"N"}`; `id_str` is the
//! string id the rules API hands out).
//!
//! Decisions where the spec is silent:
//! - Auth: no `Authorization` header, or an unknown bearer token: 401 with X's
//!   `Unauthorized` problem and `WWW-Authenticate: Bearer`; other schemes (basic auth,
//!   …): 403 `unsupported-authentication`. Unknown tokens spend the client address's
//!   attempt budget; once it is spent, 429 (docs/auth.md).
//! - Rules: every rules call (list, add, delete, refused or not, once authenticated) counts
//!   against the account's 50 per 24 h; the answers carry the `x-rate-limit-*` headers.
//!   An add of 1 to 100 rules (the row's `max_rules_per_add`) is all or nothing: any
//!   invalid rule (bad syntax, an operator Powerstream does not offer, over 2,048
//!   characters, a tag over 255) refuses the batch with 422 `invalid-rules` listing each
//!   invalid rule's `details`; over the cap, 422 `rule-cap`. Otherwise 201, with the
//!   created rules in `data.rules` and the duplicates (with the existing rule's id) as
//!   `duplicate-rules` problems in `errors`.
//!   Deletes are not capped at 100 entries (X suggests deleting everything in bulk); an
//!   entry with an `id` is deleted by id, else by `value`.
//! - `dry_run=true` (as v2 clients send it) on an add or a delete validates the request
//!   and answers 200 with what it would do, changing nothing; the rules an add would create
//!   carry fresh ids that are never stored. The rules endpoint's `POST` takes `dry_run` and
//!   `_method`, its `DELETE` `dry_run`; any other query parameter is a 400
//!   `invalid-request`, so that a parameter the server does not implement cannot go
//!   unnoticed. See docs/powerstream.md.
//! - List: `data.rules` is `[]` when there are no rules; `meta` has `sent` and
//!   `result_count`.
//! - Stream: connecting without rules is allowed (heartbeats only, as on PowerTrack). No
//!   connect rate limit (X: "no limit on streams"). Gzip when `Accept-Encoding` allows
//!   it, identity otherwise. The connection cap follows docs/compatibility.md ("Decisions") (an over-cap connection is
//!   accepted; if the stream is still over its cap after the grace period the newest is
//!   closed) rather than refusing with 429, so that a client reconnecting while its dead
//!   connection still holds a slot is not refused. In-band closing lines are v2 errors
//!   (`{"errors":[{"title":"operational-disconnect","disconnect_type":…}]}`); a recovery
//!   ends with PowerTrack's `Recovery Request Completed` `info` line. `localDcOnly` must
//!   be `true` or `false`; bad `localDcOnly`, `backfillMinutes`, `startTime`/`endTime`
//!   values are 406 `invalid-request` problems.
//!
//! Files: `auth` (bearer tokens), `rules` (the rules API in v2 shapes, over
//! [`super::rules_service`]), `stream` (the connect).

pub mod auth;
pub mod rules;
pub mod stream;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use sluice_store::{Product, StreamLimits, StreamRef};

pub use stream::{DATACENTER_HEADER, LOCAL_DC_ONLY_HEADER};

use crate::changes::{self, ChangeError};
use crate::registry::LiveStream;
use crate::state::AppState;

/// The label of every account's Powerstream rule set.
pub const LABEL: &str = "powerstream";

/// Powerstream's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/2/powerstream", get(stream::connect))
        .route(
            "/2/powerstream/rules",
            get(rules::list_rules)
                .post(rules::post_rules)
                .delete(rules::delete_rules),
        )
}

/// The Powerstream rule set of `account`.
pub fn stream_ref(account: &str) -> StreamRef {
    StreamRef {
        account: account.to_owned(),
        product: Product::Powerstream,
        label: LABEL.to_owned(),
    }
}

/// The limits of an account's Powerstream rule set: the product's rule cap and the
/// default connection cap.
pub fn limits(state: &AppState) -> StreamLimits {
    StreamLimits {
        max_connections: state.settings.default_max_connections,
        max_rules: Product::Powerstream
            .spec()
            .rules
            .expect("Powerstream has a rules API")
            .max_rules,
    }
}

/// The account's Powerstream stream, created (with [`limits`]) and registered if it does
/// not exist yet. The account must exist.
pub async fn ensure_stream(
    state: &AppState,
    account: &str,
) -> Result<Arc<LiveStream>, ChangeError> {
    let key = stream_ref(account);
    if let Some(live) = state.registry.get(&key) {
        return Ok(live);
    }
    changes::ensure_stream(state, &key, limits(state)).await
}
