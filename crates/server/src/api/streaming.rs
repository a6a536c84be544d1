//! What every streaming endpoint shares: the checks a Gnip-style stream request passes
//! before it connects, and opening a connection (outbox, registration, over-cap policy,
//! close messages, the open/close log lines and the connection gauge), live or starting
//! with a replay of the post log ([`Start`]: backfill, recovery).
//!
//! PowerTrack uses it as is; Decahose/Firehose add their `partition`, Powerstream its own
//! auth, close texts and prelude. Powerstream's `backfillMinutes` is [`Start::Backfill`]
//! passed to [`open_stream_at`]; the query parsing is in [`super::stream_query`].

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use sluice_store::Product;
use sluice_wire::error::COMPRESSION_REQUIRED_MESSAGE;

use super::close::close_messages;
use super::encoding::accepts_gzip;
use super::error::{ApiError, add_rate_headers};
use super::gnip::{Authenticated, find_stream, label_of, require_basic};
use super::recovery::RecoveryJob;
use super::stream_query::{QueryPairs, StartRequest, StreamQuery, check_held, requested_partition};
use crate::clock::now_ms;
use crate::delivery::replay::{self, ReplayKind, ReplayTarget};
use crate::delivery::{
    BodySettings, CloseMessages, CloseReason, Encoding, Format, Outbox, replay_then_stream_body,
};
use crate::ratelimit::{RateInfo, RateLimiter};
use crate::registry::LiveStream;
use crate::sessions::Checked;
use crate::state::AppState;
use crate::telemetry;

/// A Gnip-style stream request that passed every check.
pub struct Admitted {
    /// The stream to connect to.
    pub live: Arc<LiveStream>,
    /// The connect limiter's state after counting this request (for the headers); `None`
    /// for a product whose connects are not limited.
    pub rate: Option<RateInfo>,
    /// The user whose credentials it carried.
    pub user: Authenticated,
}

/// The checks of a Gnip-style stream connect, in this order:
/// 1. the account exists: 404 (account names are in every URL X hands out, so they are
///    not treated as secret);
/// 2. basic auth for that account: 401. Credentials are per account, so a user of another
///    account is simply not authenticated here: 401 as well, never 403;
/// 3. the `{label}.json` segment names a stream of `product`: 404;
/// 4. the connect rate limit (`limiter`, the product's, when it has one): 429 with the
///    `x-rate-limit-*` headers; every authenticated request for an existing stream
///    counts. It is counted per stream and `partition` (a valid one; requests without one
///    count against the stream alone), so a client can open all 20 Firehose partitions at
///    once as X's client libraries do; PowerTrack has no partitions and counts per
///    stream;
/// 5. the request accepts gzip: 406 with X's compression text.
///
/// Error bodies carry the stream `sent` format and are gzip-encoded when gzip was accepted.
pub async fn admit_gnip(
    state: &AppState,
    account: &str,
    label_segment: &str,
    product: Product,
    partition: Option<u32>,
    headers: &HeaderMap,
    limiter: Option<&RateLimiter>,
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
    let user = require_basic(state, account, headers, gzip)
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
    let key = match partition {
        Some(p) => format!("{}/{p}", live.id),
        None => live.id.to_string(),
    };
    let rate = limiter
        .map(|limiter| limiter.check(&key))
        .transpose()
        .map_err(|rate| stream_error(ApiError::rate_limited(rate)))?;
    if !gzip {
        return Err(stream_error(ApiError::new(
            StatusCode::NOT_ACCEPTABLE,
            COMPRESSION_REQUIRED_MESSAGE,
        )));
    }
    Ok(Admitted { live, rate, user })
}

/// Connects a Gnip-style stream (PowerTrack, Decahose, Firehose): the checks of
/// [`admit_gnip`] with the product's connect limiter, then the query (`partition` for a
/// product with partitions, `backfillMinutes`, recovery window: 406 in the stream `sent`
/// format), then the gzip connection with the product's in-band messages and the connect
/// rate headers.
pub async fn connect_gnip(
    state: &AppState,
    product: Product,
    account: &str,
    label_segment: &str,
    query: &QueryPairs,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    let spec = product.spec();
    let limiter = state.limits.connects(product);
    let partition = requested_partition(query, spec.partitions);
    let admitted = admit_gnip(
        state,
        account,
        label_segment,
        product,
        partition,
        headers,
        limiter,
    )
    .await?;
    // Admitted requests accept gzip.
    let refuse = |e: ApiError| e.stream_sent().gzip(true);
    let now = u64::try_from(now_ms()).unwrap_or(0);
    let query = StreamQuery::parse(
        query,
        spec.partitions,
        now,
        state.settings.post_log_retention,
    )
    .map_err(refuse)?;
    check_held(&state.post_log, query.start, now)
        .await
        .map_err(refuse)?;
    let start = Start::claim(query.start, &admitted.live).map_err(refuse)?;
    let options = StreamOptions {
        partition: query.partition,
        local_dc_only: false,
        format: Format::Native,
        encoding: Encoding::Gzip,
        prelude: None,
        messages: close_messages(spec.errors),
        user: Some(admitted.user),
    };
    let mut response = open_stream_at(state, admitted.live, options, start);
    if let Some(rate) = admitted.rate {
        add_rate_headers(&mut response, rate);
    }
    Ok(response)
}

/// How one streaming connection is opened.
pub struct StreamOptions {
    /// The partition (1-based) of a volume-stream connection.
    pub partition: Option<u32>,
    /// Powerstream `localDcOnly=true`.
    pub local_dc_only: bool,
    /// How posts are written (v2 streams: the fields and expansions asked for).
    pub format: Format,
    /// Gzip or identity.
    pub encoding: Encoding,
    /// A framed line written before anything else (Powerstream's `connection_metadata`).
    pub prelude: Option<Bytes>,
    /// The texts written before the server closes the stream.
    pub messages: Arc<dyn CloseMessages>,
    /// The credential the connection was opened with (a Gnip stream's basic-auth user, a
    /// Powerstream token): it is closed when the user's password changes, the user is
    /// deleted or the token is revoked.
    pub user: Option<Checked>,
}

/// Where a connection's stream starts.
pub enum Start {
    /// Live posts from the moment the connection opens.
    Live,
    /// `backfillMinutes`: the posts of the last `minutes` this connection would have
    /// received, oldest first, then live with no gap (see [`crate::delivery::replay`]).
    Backfill {
        /// 1 to 5.
        minutes: u32,
    },
    /// `startTime`/`endTime`: the posts appended in the window, then
    /// `Recovery Request Completed` and the end of the body. Holds one of the stream's
    /// recovery slots until the connection ends.
    Recovery {
        /// Window start, epoch ms, inclusive.
        start_ms: u64,
        /// Window end, epoch ms, exclusive.
        end_ms: u64,
        /// The stream's recovery slot.
        job: RecoveryJob,
    },
    /// A Replay API job (`fromDate`/`toDate`): the posts appended in the window, then one
    /// of Replay's completion messages and the end of the body. Holds the stream's one job
    /// slot until the connection ends.
    Replay {
        /// Window start, epoch ms, inclusive.
        from_ms: u64,
        /// Window end, epoch ms, exclusive.
        end_ms: u64,
        /// The stream's job slot.
        job: RecoveryJob,
    },
}

impl Start {
    /// The start a parsed query asks for; a recovery takes one of the stream's recovery
    /// slots (429 when none is free).
    pub fn claim(request: StartRequest, live: &Arc<LiveStream>) -> Result<Start, ApiError> {
        Ok(match request {
            StartRequest::Live => Start::Live,
            StartRequest::Backfill { minutes } => Start::Backfill { minutes },
            StartRequest::Recovery { start_ms, end_ms } => Start::Recovery {
                start_ms,
                end_ms,
                job: RecoveryJob::acquire(live)?,
            },
        })
    }

    fn kind(&self) -> &'static str {
        match self {
            Start::Live => "live",
            Start::Backfill { .. } => "backfill",
            Start::Recovery { .. } => "recovery",
            Start::Replay { .. } => "replay",
        }
    }
}

/// Registers a new live connection on `live` and returns its `200` streaming response:
/// [`open_stream_at`] with [`Start::Live`].
pub fn open_stream(state: &AppState, live: Arc<LiveStream>, options: StreamOptions) -> Response {
    open_stream_at(state, live, options, Start::Live)
}

/// Opens a connection on `live` starting at `start` and returns its `200` streaming
/// response: `Content-Type: application/json; charset=utf-8`, `Content-Encoding: gzip`
/// when gzipped, chunked. Callers add their own headers (rate limits, …) to the response.
///
/// A live connection gets posts from the moment this returns; a backfilling one first
/// gets the window from the post log and is registered once it has caught up; a recovery
/// is never registered: it does not count towards the stream's connection cap.
///
/// If registering takes the stream (the partition, on volume streams) over its cap, the
/// connection is accepted, and once `settings.over_cap_grace` has passed, the connections
/// still beyond the cap (newest first) are closed with the too-many-connections message
/// (docs/compatibility.md ("Decisions")). When the body ends or the client goes away, the connection is
/// unregistered and its closing logged. A connection opened as a basic-auth user is held
/// in [`crate::sessions::Sessions`] for as long as its body lives.
///
/// Long on purpose: a connection's whole life (register, over-cap timer, replay part, live
/// part, unregister, close log) in the order it happens; the pieces share the guards
/// whose drop order ends it cleanly.
pub fn open_stream_at(
    state: &AppState,
    live: Arc<LiveStream>,
    options: StreamOptions,
    start: Start,
) -> Response {
    let outbox = Arc::new(Outbox::new(state.settings.outbox_bytes, options.encoding));
    let session = options
        .user
        .as_ref()
        .map(|checked| state.sessions.open(checked, &outbox));
    let product = live.product().as_str();
    let partition = options.partition;
    let kind = start.kind();
    telemetry::connections(product, 1.0);
    let opened = Instant::now();
    let registration = Arc::new(Registration {
        slot: Mutex::new(Slot::Pending),
        state: state.clone(),
        live: live.clone(),
        outbox: outbox.clone(),
        partition,
        local_dc_only: options.local_dc_only,
        format: options.format.clone(),
    });
    let now = u64::try_from(now_ms()).unwrap_or(0);
    let target = || ReplayTarget {
        log: state.post_log.clone(),
        delivery_mark: Some(state.delivery_mark.clone()),
        stream: live.clone(),
        partition,
        local_dc_only: options.local_dc_only,
        format: options.format.clone(),
        encoding: options.encoding,
        datacenter: state.settings.datacenter.as_str().into(),
        max_batch_bytes: state.settings.max_batch_bytes,
        compliance: state.compliance.clone(),
    };
    let mut recovery_job = None;
    // A live connection is registered at once; the others later or never.
    let registered = match start {
        Start::Live => registration.register(),
        Start::Backfill { .. } | Start::Recovery { .. } | Start::Replay { .. } => None,
    };
    tracing::info!(
        account = live.key.account,
        stream = live.key.label,
        product,
        partition,
        start = kind,
        connection = registered.map(|(id, _)| id),
        open = registered.map(|(_, open)| open),
        allowed = live.limits().max_connections,
        "stream connection opened"
    );
    let replay = match start {
        Start::Live => None,
        Start::Backfill { minutes } => {
            let from_ms = now.saturating_sub(u64::from(minutes) * 60_000);
            let r = registration.clone();
            let go_live = Box::new(move || r.register().is_some());
            Some(replay::spawn(
                target(),
                ReplayKind::Backfill {
                    from_ms,
                    go_live,
                    outbox: outbox.clone(),
                },
            ))
        }
        Start::Recovery {
            start_ms,
            end_ms,
            job,
        } => {
            recovery_job = Some(job);
            Some(replay::spawn(
                target(),
                ReplayKind::Recovery {
                    from_ms: start_ms,
                    end_ms,
                    outbox: outbox.clone(),
                },
            ))
        }
        Start::Replay {
            from_ms,
            end_ms,
            job,
        } => {
            recovery_job = Some(job);
            Some(replay::spawn(
                target(),
                ReplayKind::Replay {
                    from_ms,
                    end_ms,
                    outbox: outbox.clone(),
                    max_rate: state.settings.replay_rate,
                },
            ))
        }
    };

    let on_close = Box::new(move |reason: &str| {
        let connection = registration.unregister();
        drop(recovery_job);
        drop(session);
        telemetry::connections(product, -1.0);
        tracing::info!(
            account = live.key.account,
            stream = live.key.label,
            product,
            partition,
            start = kind,
            connection,
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
    let body = replay_then_stream_body(
        replay,
        outbox,
        settings,
        options.prelude,
        options.messages,
        &state.shutdown,
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

/// A connection's place among its stream's live connections: taken when it goes live
/// (at once, or when its backfill has caught up), given back when its body ends. Whichever
/// comes second sees the other, so a client that leaves mid-backfill is never registered.
struct Registration {
    slot: Mutex<Slot>,
    state: AppState,
    live: Arc<LiveStream>,
    outbox: Arc<Outbox>,
    partition: Option<u32>,
    local_dc_only: bool,
    format: Format,
}

enum Slot {
    Pending,
    Live(u64),
    Gone,
}

impl Registration {
    /// Registers the connection for live delivery and starts the over-cap policy when it
    /// takes its partition over the cap. Returns the connection's id and the number of
    /// connections now open on its partition; `None` when the body has already ended.
    fn register(&self) -> Option<(u64, usize)> {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        if !matches!(*slot, Slot::Pending) {
            return None;
        }
        let live = &self.live;
        let (connection, open) = live.connections.open(
            self.outbox.clone(),
            self.partition,
            self.local_dc_only,
            self.format.clone(),
        );
        *slot = Slot::Live(connection.id);
        drop(slot);
        let allowed = live.limits().max_connections;
        tracing::debug!(
            account = live.key.account,
            stream = live.key.label,
            partition = self.partition,
            connection = connection.id,
            open,
            allowed,
            "stream connection live"
        );
        if open > allowed as usize {
            close_over_cap_later(&self.state, live.clone(), connection.id, self.partition);
        }
        // A stream deleted while this connection was backfilling has closed the connections
        // it knew of; this one closes itself.
        let current = self.state.registry.get(&live.key);
        if !current.is_some_and(|c| Arc::ptr_eq(&c, live)) {
            self.outbox.close(CloseReason::Operational);
        }
        Some((connection.id, open))
    }

    /// Unregisters the connection if it went live; returns its id.
    fn unregister(&self) -> Option<u64> {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        let id = match *slot {
            Slot::Live(id) => Some(id),
            Slot::Pending | Slot::Gone => None,
        };
        *slot = Slot::Gone;
        drop(slot);
        if let Some(id) = id {
            self.live.connections.close(id);
        }
        id
    }
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
