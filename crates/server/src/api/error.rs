//! Error responses in X's shapes.
//!
//! Gnip-style endpoints (PowerTrack, Decahose, Firehose, the rules API) and sluice's admin
//! and ingest APIs answer errors with `{"error":{"message":"…","sent":"…"}}`, gzip-encoded
//! when the request accepted gzip (docs/compatibility.md, wire rule 4). Every 429 carries the
//! `x-rate-limit-*` headers (wire rule 6).

use std::io::Write as _;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flate2::Compression;
use flate2::write::GzEncoder;
use sluice_wire::ErrorBody;

use super::body::BodyError;
use crate::ratelimit::RateInfo;

/// Which `sent` format the body carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SentFormat {
    /// `2016-06-01T15:46:48.654Z`, as the rules API writes it.
    Rules,
    /// `2017-01-11T18:12:52+00:00`, as streams write it.
    Stream,
}

/// An error answer of a Gnip-style or admin endpoint.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The `message` text.
    pub message: String,
    /// Gzip the body (the request accepted gzip).
    pub gzip: bool,
    /// Rate-limit headers to add.
    pub rate: Option<RateInfo>,
    /// The `sent` format.
    pub sent: SentFormat,
    /// The `WWW-Authenticate` challenge of a 401.
    pub challenge: Option<&'static str>,
}

impl ApiError {
    /// An error with `status` and `message`, identity-encoded, rules-API `sent`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            gzip: false,
            rate: None,
            sent: SentFormat::Rules,
            challenge: None,
        }
    }

    /// 400 Bad Request.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401 Unauthorized for basic auth, with its `WWW-Authenticate` challenge.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized: HTTP authentication failed due to invalid credentials.",
        )
        .challenge(crate::auth::BASIC_CHALLENGE)
    }

    /// 503 while too many password checks are running or waiting.
    pub fn auth_busy() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Service Unavailable: too many authentication requests are in progress. Retry shortly.",
        )
    }

    /// 404 Not Found.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 500, for store failures; the details go to the log, not the client.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {error}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal server error.")
    }

    /// 429 with the limiter's headers.
    pub fn rate_limited(rate: RateInfo) -> Self {
        Self {
            rate: Some(rate),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "Rate limit exceeded: too many requests in the current window.",
            )
        }
    }

    /// Gzip the body when `gzip` is true.
    pub fn gzip(mut self, gzip: bool) -> Self {
        self.gzip = gzip;
        self
    }

    /// Send `challenge` in `WWW-Authenticate`.
    pub fn challenge(mut self, challenge: &'static str) -> Self {
        self.challenge = Some(challenge);
        self
    }

    /// Use the stream `sent` format.
    pub fn stream_sent(mut self) -> Self {
        self.sent = SentFormat::Stream;
        self
    }
}

/// A body that could not be read: 413, 408 or 400 with the reason.
impl From<BodyError> for ApiError {
    fn from(e: BodyError) -> Self {
        ApiError::new(e.status(), e.message())
    }
}

impl From<sluice_store::StoreError> for ApiError {
    fn from(e: sluice_store::StoreError) -> Self {
        ApiError::internal(e)
    }
}

impl From<crate::changes::ChangeError> for ApiError {
    fn from(e: crate::changes::ChangeError) -> Self {
        match e {
            crate::changes::ChangeError::Store(e) => e.into(),
            crate::changes::ChangeError::Cluster(e) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let sent = match self.sent {
            SentFormat::Rules => sluice_wire::sent::rules_sent_now(),
            SentFormat::Stream => sluice_wire::sent::stream_sent_now(),
        };
        let body = sluice_wire::to_vec(&ErrorBody::new(self.message, sent));
        let mut response = json_response(self.status, body, self.gzip);
        if let Some(rate) = self.rate {
            add_rate_headers(&mut response, rate);
        }
        if let Some(challenge) = self.challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

/// A JSON response, gzip-encoded when `gzip`.
pub fn json_response(status: StatusCode, body: Vec<u8>, gzip: bool) -> Response {
    let mut response = if gzip {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
        encoder
            .write_all(&body)
            .expect("writing to a Vec cannot fail");
        let compressed = encoder.finish().expect("finishing into a Vec cannot fail");
        let mut r = (status, compressed).into_response();
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        (status, body).into_response()
    };
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// Adds `x-rate-limit-limit`, `x-rate-limit-remaining` and `x-rate-limit-reset`.
/// `outcome` with the `x-rate-limit-*` headers of `rate`, an answer or a refusal alike
/// (every answer of a limited endpoint carries them): what each rules API does once the
/// request has been counted.
pub fn with_rate<E: CarriesRate>(
    outcome: Result<Response, E>,
    rate: RateInfo,
) -> Result<Response, E> {
    match outcome {
        Ok(mut response) => {
            add_rate_headers(&mut response, rate);
            Ok(response)
        }
        Err(mut e) => {
            e.set_rate(rate);
            Err(e)
        }
    }
}

/// An error answer that carries the rate-limit headers of the request it refuses.
pub trait CarriesRate {
    /// Sets the limiter's state to report.
    fn set_rate(&mut self, rate: RateInfo);
}

impl CarriesRate for ApiError {
    fn set_rate(&mut self, rate: RateInfo) {
        self.rate = Some(rate);
    }
}

/// Adds the `x-rate-limit-*` headers of `rate` to `response`.
pub fn add_rate_headers(response: &mut Response, rate: RateInfo) {
    let headers = response.headers_mut();
    headers.insert("x-rate-limit-limit", HeaderValue::from(rate.limit));
    headers.insert("x-rate-limit-remaining", HeaderValue::from(rate.remaining));
    headers.insert("x-rate-limit-reset", HeaderValue::from(rate.reset));
}
