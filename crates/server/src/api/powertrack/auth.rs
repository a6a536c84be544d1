//! Who may use a PowerTrack (or PowerTrack Replay) stream's rules: basic auth as a user of
//! the account in the path (the product's [`sluice_store::AuthScheme::Basic`]), then the
//! stream itself. Stream
//! connects run the same checks inside [`crate::api::streaming::admit_gnip`].

use std::sync::Arc;

use axum::http::HeaderMap;
use sluice_store::Product;

use crate::api::error::ApiError;
use crate::api::gnip::{find_stream, require_basic};
use crate::registry::LiveStream;
use crate::state::AppState;

/// The `product` stream `account`/`label`, once the request's credentials are those of a
/// user of `account`: 401 (or 429, 503, see [`require_basic`]) before the stream is looked
/// up, then 404 for an unknown stream. `gzip` decides the encoding of the error body.
pub async fn authorize(
    state: &AppState,
    product: Product,
    account: &str,
    label: &str,
    headers: &HeaderMap,
    gzip: bool,
) -> Result<Arc<LiveStream>, ApiError> {
    let _user = require_basic(state, account, headers, gzip).await?;
    find_stream(state, account, product, label, gzip)
}
