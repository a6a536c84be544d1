//! What every streaming endpoint shares: the checks a Gnip-style stream request passes
//! before it connects, and opening a connection (outbox, registration, over-cap policy,
//! close messages, the open/close log lines and the connection gauge).
//!
//! PowerTrack uses it as is; Decahose/Firehose add their `partition`, Powerstream its own
//! auth, close texts and prelude.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use sluice_store::Product;
use sluice_wire::ErrorBody;
use sluice_wire::error::{
    COMPRESSION_REQUIRED_MESSAGE, OPERATIONAL_DISCONNECT_MESSAGE, SLOW_CONSUMER_MESSAGE,
    too_many_connections_message,
};

use super::encoding::accepts_gzip;
use super::error::ApiError;
use super::gnip::{find_stream, label_of, require_basic};
use crate::delivery::{BodySettings, CloseMessages, CloseReason, Encoding, Outbox, stream_body};
use crate::ratelimit::{RateInfo, RateLimiter};
use crate::registry::LiveStream;
use crate::state::AppState;
use crate::telemetry;

/// The in-band messages of Gnip-style streams (spec Part A, wire rule 7): one
/// `{"error":{"message":…,"sent":…}}` line in the stream `sent` format.
pub struct GnipCloseMessages;

impl CloseMessages for GnipCloseMessages {
    fn close_line(&self, reason: &CloseReason) -> Option<Bytes> {
        let message = match reason {
            CloseReason::SlowConsumer => SLOW_CONSUMER_MESSAGE.to_owned(),
            CloseReason::TooManyConnections { allowed } => too_many_connections_message(*allowed),
            CloseReason::Operational => OPERATIONAL_DISCONNECT_MESSAGE.to_owned(),
            CloseReason::Completed(line) => return Some(line.clone()),
        };
        let body = ErrorBody::new(message, sluice_wire::sent::stream_sent_now());
        Some(Bytes::from(sluice_wire::to_vec(&body)))
    }
}

/// A Gnip-style stream request that passed every check.
pub struct Admitted {
    /// The stream to connect to.
    pub live: Arc<LiveStream>,
    /// The connect limiter's state after counting this request (for the headers).
    pub rate: RateInfo,
}

/// The checks of a Gnip-style stream connect, in this order:
/// 1. the account exists: 404 (account names are in every URL X hands out, so they are
///    not treated as secret);
/// 2. basic auth for that account: 401. Credentials are per account, so a user of another
///    account is simply not authenticated here: 401 as well, never 403;
/// 3. the `{label}.json` segment names a stream of `product`: 404;
/// 4. the connect rate limit of the stream (`limiter`, keyed by stream): 429 with the
///    `x-rate-limit-*` headers; every authenticated request for an existing stream counts;
/// 5. the request accepts gzip: 406 with X's compression text.
///
/// Error bodies carry the stream `sent` format and are gzip-encoded when gzip was accepted.
pub async fn admit_gnip(
    state: &AppState,
    account: &str,
    label_segment: &str,
    product: Product,
    headers: &HeaderMap,
    limiter: &RateLimiter,
) -> Result<Admitted, ApiError> {
    let gzip = accepts_gzip(headers);
    let stream_error = |e: ApiError| e.stream_sent().gzip(gzip);
    let name = account.to_owned();
    let exists = state
        .blocking(move |s| s.account_exists(&name))
        .await
        .map_err(|e| stream_error(e.into()))?;
    if !exists {
        return Err(stream_error(ApiError::not_found(format!(
            "Account '{account}' not found."
        ))));
    }
    require_basic(state, account, headers, gzip)
        .await
        .map_err(stream_error)?;
    let live = match label_of(label_segment) {
        Some(label) => find_stream(state, account, product, label, gzip).map_err(stream_error)?,
        None => {
            return Err(stream_error(ApiError::not_found(format!(
                "Stream '{label_segment}' not found for account '{account}'."
            ))));
        }
    };
    let rate = limiter
        .check(&live.id.to_string())
        .map_err(|rate| stream_error(ApiError::rate_limited(rate)))?;
    if !gzip {
        return Err(stream_error(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            COMPRESSION_REQUIRED_MESSAGE,
        )));
    }
    Ok(Admitted { live, rate })
}

/// How one streaming connection is opened.
pub struct StreamOptions {
    /// The partition (1-based) of a volume-stream connection.
    pub partition: Option<u32>,
    /// Powerstream `localDcOnly=true`.
    pub local_dc_only: bool,
    /// Gzip or identity.
    pub encoding: Encoding,
    /// A framed line written before anything else (Powerstream's `connection_metadata`).
    pub prelude: Option<Bytes>,
    /// The texts written before the server closes the stream.
    pub messages: Arc<dyn CloseMessages>,
}

/// Registers a new connection on `live` and returns its `200` streaming response:
/// `Content-Type: application/json; charset=utf-8`, `Content-Encoding: gzip` when gzipped,
/// chunked. Callers add their own headers (rate limits, …) to the response.
///
/// The connection gets posts from the moment this returns. If it takes the stream over its
/// cap, it is accepted, and once `settings.over_cap_grace` has passed, the connections
/// still beyond the cap (newest first) are closed with the too-many-connections message
/// (spec Part A). When the body ends or the client goes away, the connection is
/// unregistered and its closing logged.
pub fn open_stream(state: &AppState, live: Arc<LiveStream>, options: StreamOptions) -> Response {
    let outbox = Arc::new(Outbox::new(state.settings.outbox_bytes));
    let (connection, open) =
        live.connections
            .open(outbox.clone(), options.partition, options.local_dc_only);
    let product = live.product().as_str();
    let allowed = live.limits().max_connections;
    telemetry::connections(product, 1.0);
    tracing::info!(
        account = live.key.account,
        stream = live.key.label,
        product,
        partition = options.partition,
        connection = connection.id,
        open,
        allowed,
        "stream connection opened"
    );
    if open > allowed as usize {
        close_over_cap_later(state, live.clone(), connection.id, options.partition);
    }

    let id = connection.id;
    let opened = connection.opened;
    let partition = options.partition;
    drop(connection);
    let on_close = Box::new(move |reason: &str| {
        live.connections.close(id);
        telemetry::connections(product, -1.0);
        tracing::info!(
            account = live.key.account,
            stream = live.key.label,
            product,
            partition,
            connection = id,
            reason,
            duration_ms = opened.elapsed().as_millis() as u64,
            "stream connection closed"
        );
    });
    let settings = BodySettings {
        heartbeat: state.settings.heartbeat,
        max_batch_bytes: state.settings.max_batch_bytes,
        encoding: options.encoding,
    };
    let body = stream_body(
        outbox,
        settings,
        options.prelude,
        options.messages,
        state.shutdown.clone(),
        on_close,
    );
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if options.encoding == Encoding::Gzip {
        headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    response
}

/// After the grace period, if connection `id` is still open and the stream still over its
/// cap, closes the connections beyond the cap. Only the connection that took the stream
/// over its cap acts: if it has gone meanwhile, the over-cap episode it started has ended
/// and a later over-cap connection runs its own grace period.
fn close_over_cap_later(state: &AppState, live: Arc<LiveStream>, id: u64, partition: Option<u32>) {
    let grace = state.settings.over_cap_grace;
    let shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = tokio::time::sleep(grace) => {}
            () = shutdown.cancelled() => return,
        }
        let still_open = live
            .connections
            .snapshot()
            .iter()
            .any(|c| c.id == id && !c.outbox.is_closed());
        if !still_open {
            return;
        }
        let allowed = live.limits().max_connections;
        for connection in live.connections.over_cap(partition, allowed) {
            tracing::info!(
                account = live.key.account,
                stream = live.key.label,
                connection = connection.id,
                allowed,
                "closing a connection over the stream's cap"
            );
            connection
                .outbox
                .close(CloseReason::TooManyConnections { allowed });
        }
    });
}
