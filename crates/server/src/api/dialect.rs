//! Which error shape a path answers in: the one place that decides it (docs/errors.md).
//!
//! - `/stream/…`, `/rules/…`, `/replay/…` and the Usage API (`/metrics/usage/…`): Gnip,
//!   `{"error":{"message","sent"}}`, gzip-encoded when the request accepted gzip
//!   ([`super::error`]);
//! - `/2/…`: v2 problem JSON ([`super::problem`]);
//! - everything else (`/admin/…`, `/ingest`, `/healthz`, unknown paths): the
//!   admin shape, the Gnip body without gzip.
//!
//! Handlers build their errors in their own family's type; this module is for answers
//! given before or around a handler: unknown routes, refused methods, extractor
//! rejections, refused request heads.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::error::{ApiError, SentFormat};
use super::problem::ProblemError;

/// The error shape of a family of paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PowerTrack, Decahose, Firehose and their rules API, with the family's `sent` format.
    Gnip(SentFormat),
    /// The `/2/` endpoints (Powerstream).
    V2,
    /// sluice's own endpoints and any path no family claims.
    Admin,
}

impl Dialect {
    /// The dialect of a request path.
    pub fn of_path(path: &str) -> Self {
        let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
        match first {
            "stream" | "replay" => Dialect::Gnip(SentFormat::Stream),
            // The rules API and the Usage API (`/metrics/usage/…`).
            "rules" | "metrics" => Dialect::Gnip(SentFormat::Rules),
            "2" => Dialect::V2,
            _ => Dialect::Admin,
        }
    }

    /// An error answer with `status` and `message` in this dialect; `gzip`: the request
    /// accepted gzip (only Gnip bodies are then gzip-encoded).
    pub fn error(self, status: StatusCode, message: String, gzip: bool) -> Response {
        match self {
            Dialect::Gnip(sent) => {
                let error = ApiError::new(status, message).gzip(gzip);
                match sent {
                    SentFormat::Stream => error.stream_sent().into_response(),
                    SentFormat::Rules => error.into_response(),
                }
            }
            Dialect::V2 => ProblemError::of_status(status, message).into_response(),
            Dialect::Admin => ApiError::new(status, message).into_response(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_family_has_its_dialect() {
        let cases = [
            (
                "/stream/powertrack/accounts/a/publishers/twitter/p.json",
                Dialect::Gnip(SentFormat::Stream),
            ),
            ("/stream", Dialect::Gnip(SentFormat::Stream)),
            ("/replay/powertrack/x", Dialect::Gnip(SentFormat::Stream)),
            (
                "/rules/powertrack/accounts/a/publishers/twitter/p.json",
                Dialect::Gnip(SentFormat::Rules),
            ),
            ("/2/powerstream", Dialect::V2),
            ("/2", Dialect::V2),
            ("/admin/accounts/a", Dialect::Admin),
            ("/ingest", Dialect::Admin),
            ("/healthz", Dialect::Admin),
            ("/metrics", Dialect::Gnip(SentFormat::Rules)),
            (
                "/metrics/usage/accounts/a.json",
                Dialect::Gnip(SentFormat::Rules),
            ),
            ("/", Dialect::Admin),
            ("/streams", Dialect::Admin),
            ("/20/x", Dialect::Admin),
        ];
        for (path, dialect) in cases {
            assert_eq!(Dialect::of_path(path), dialect, "{path}");
        }
    }
}
