//! Where a source's batches go. A sink acknowledges a batch once every accepted line in
//! it is stored (the consumer saves its cursor only then); lines the ingest checks refuse
//! come back with their reasons.
//!
//! - [`ServerSink`]: the server in process (`sluice serve --source`), through the same
//!   function as `POST /ingest` ([`sluice_server::api::ingest::ingest_lines`]).
//! - [`HttpSink`]: a running server's `POST BASE/ingest` with the admin token
//!   (`sluice source jetstream --to BASE`).

use std::future::Future;

use bytes::Bytes;
use hyper::header::CONTENT_TYPE;
use hyper::{Method, StatusCode};
use serde::Deserialize;
use sluice_client::http::{Auth, HttpClient, Reply, Request};
use sluice_server::AppState;
use sluice_server::pipeline::PublishError;
use url::Url;

/// A batch's acknowledgment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Acknowledged {
    /// Lines accepted (stored, or duplicates of lines stored before).
    pub accepted: usize,
    /// Lines refused: (1-based line in the batch, why).
    pub rejected: Vec<(usize, String)>,
}

/// Why a sink did not acknowledge a batch.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// Nothing of the batch was stored; sending it again may succeed (the server is
    /// restarting, unreachable, overloaded).
    #[error("{0}")]
    Retry(String),
    /// Nothing of the batch was stored and retrying cannot help (a refused token, a URL
    /// that is not an ingest API): the source stops.
    #[error("{0}")]
    Fatal(String),
    /// The server in process is stopping: the source stops too, its cursor unsaved.
    #[error("the server is stopping")]
    Stopping,
}

/// A destination for batches of NDJSON lines.
pub trait Sink: Send {
    /// Stores `body` (NDJSON lines, each ending in `\n`); resolves once it is stored.
    fn deliver(
        &mut self,
        body: Bytes,
    ) -> impl Future<Output = Result<Acknowledged, SinkError>> + Send;
}

/// The server in process: the ingest API's own function, without HTTP.
#[derive(Clone)]
pub struct ServerSink {
    state: AppState,
}

impl ServerSink {
    /// Ingests into `state`'s pipeline (or cluster).
    pub fn new(state: AppState) -> Self {
        Self { state }
    }
}

impl Sink for ServerSink {
    async fn deliver(&mut self, body: Bytes) -> Result<Acknowledged, SinkError> {
        let outcome = sluice_server::api::ingest::ingest_lines(
            &self.state,
            std::slice::from_ref(&body),
            None,
        )
        .await
        .map_err(|e| match e {
            PublishError::Stopped(_) => SinkError::Stopping,
            e => SinkError::Retry(e.to_string()),
        })?;
        Ok(Acknowledged {
            accepted: outcome.accepted,
            rejected: outcome
                .rejected
                .into_iter()
                .map(|r| (r.line, r.error))
                .collect(),
        })
    }
}

/// A running server's ingest API.
pub struct HttpSink {
    client: HttpClient,
    url: Url,
    auth: Auth,
}

impl HttpSink {
    /// Posts to `base`'s `/ingest` (or to `base` itself when it already ends in
    /// `/ingest`) with the admin `token`.
    pub fn new(client: HttpClient, base: &Url, token: &str) -> Self {
        Self {
            client,
            url: ingest_url(base),
            auth: Auth::Bearer(token.to_owned()),
        }
    }

    /// The URL batches are posted to.
    pub fn url(&self) -> &Url {
        &self.url
    }
}

/// `BASE/ingest`, unless `base` already ends in `/ingest`.
fn ingest_url(base: &Url) -> Url {
    let mut url = base.clone();
    if !url.path().trim_end_matches('/').ends_with("/ingest") {
        let path = format!("{}/ingest", url.path().trim_end_matches('/'));
        url.set_path(&path);
    }
    url
}

/// The ingest API's answer.
#[derive(Deserialize)]
struct IngestReply {
    accepted: usize,
    #[serde(default)]
    rejected: Vec<RejectedLine>,
}

#[derive(Deserialize)]
struct RejectedLine {
    line: usize,
    error: String,
}

impl Sink for HttpSink {
    async fn deliver(&mut self, body: Bytes) -> Result<Acknowledged, SinkError> {
        let request = Request::new(Method::POST, &self.url, &self.auth)
            .map_err(|e| SinkError::Fatal(format!("{e:#}")))?
            .header(CONTENT_TYPE, "application/x-ndjson")
            .body(body);
        let response = self.client.send(&request).await.map_err(|e| {
            let text = format!("POST {}: {e}", self.url);
            if e.is_permanent() {
                SinkError::Fatal(text)
            } else {
                SinkError::Retry(text)
            }
        })?;
        let reply = Reply::read(response)
            .await
            .map_err(|e| SinkError::Retry(format!("POST {}: {e:#}", self.url)))?;
        let refused = |status: StatusCode| {
            format!(
                "POST {}: HTTP {status}: {}",
                self.url,
                reply.error_message()
            )
        };
        match reply.status {
            status if status.is_success() => {}
            // A server starting or stopping, overloaded, or behind a proxy that lost it.
            status
                if status.is_server_error()
                    || status == StatusCode::TOO_MANY_REQUESTS
                    || status == StatusCode::REQUEST_TIMEOUT =>
            {
                return Err(SinkError::Retry(refused(status)));
            }
            status => return Err(SinkError::Fatal(refused(status))),
        }
        let answer: IngestReply = serde_json::from_slice(&reply.body).map_err(|_| {
            SinkError::Fatal(format!(
                "POST {}: the answer is not the ingest API's {{\"accepted\":N,\"rejected\":[…]}}",
                self.url
            ))
        })?;
        Ok(Acknowledged {
            accepted: answer.accepted,
            rejected: answer
                .rejected
                .into_iter()
                .map(|r| (r.line, r.error))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ingest_url_is_added_once() {
        for (base, want) in [
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080/ingest"),
            ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/ingest"),
            ("https://h/sluice/", "https://h/sluice/ingest"),
            ("http://h/ingest", "http://h/ingest"),
        ] {
            assert_eq!(ingest_url(&Url::parse(base).unwrap()).as_str(), want);
        }
    }
}
