//! The HTTP side every client subcommand shares: a small client over hyper (HTTPS via
//! rustls with the ring provider), credentials, reading replies, X's error texts, and
//! waiting out a 429 until `x-rate-limit-reset`.
//!
//! hyper's client rather than reqwest: reqwest's rustls setups either build aws-lc (a C
//! library) or, without a bundled provider, make every `reqwest::Client` in the same
//! build (the workspace's tests) panic unless a provider was installed first.

use std::fmt;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use base64::Engine as _;
use bytes::Bytes;
use clap::Args;
use flate2::read::GzDecoder;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::header::{
    AUTHORIZATION, CONTENT_ENCODING, HeaderMap, HeaderName, HeaderValue, USER_AGENT,
};
use hyper::{Method, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use serde::Deserialize;
use url::Url;

/// Connect timeout of every client.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Wait after a 429 that carries no usable `x-rate-limit-reset`: X's windows are a minute.
const DEFAULT_RATE_LIMIT_WAIT: Duration = Duration::from_secs(60);
/// Longest 429 wait the clients sit out; a later reset (Powerstream's 24 h window) is an
/// error instead of a silent hang.
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(15 * 60);
/// Consecutive 429s for one request before giving up.
const MAX_RATE_LIMIT_RETRIES: u32 = 5;
/// Longest error body text quoted when it is not one of X's JSON shapes.
const MAX_QUOTED_BODY: usize = 300;
/// The `User-Agent` of every request (X asks clients to send one).
const AGENT: &str = concat!("sluice/", env!("CARGO_PKG_VERSION"));

/// `USER:PASSWORD` for HTTP basic auth (the password may contain `:`).
#[derive(Clone)]
pub struct Credentials {
    /// The console user name.
    pub user: String,
    /// Its password.
    pub password: String,
}

impl FromStr for Credentials {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once(':') {
            Some((user, password)) if !user.is_empty() => Ok(Self {
                user: user.to_owned(),
                password: password.to_owned(),
            }),
            _ => Err("expected USER:PASSWORD".to_owned()),
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:***", self.user)
    }
}

/// How a request authenticates.
#[derive(Clone)]
pub enum Auth {
    /// HTTP basic (PowerTrack, Decahose, Firehose, the rules API).
    Basic(Credentials),
    /// `Authorization: Bearer` (Powerstream, the ingest API).
    Bearer(String),
}

impl Auth {
    /// The `Authorization` header value; fails on a token that cannot be a header.
    pub fn header(&self) -> anyhow::Result<HeaderValue> {
        let value = match self {
            Auth::Basic(c) => {
                let pair = format!("{}:{}", c.user, c.password);
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                )
            }
            Auth::Bearer(token) => format!("Bearer {token}"),
        };
        let mut value = HeaderValue::from_str(&value)
            .context("the credentials contain characters not allowed in an HTTP header")?;
        value.set_sensitive(true);
        Ok(value)
    }
}

/// TLS flags shared by the client subcommands.
#[derive(Debug, Clone, Args)]
pub struct TlsArgs {
    /// Also trust the certificates in this PEM file (e.g. the one `sluice serve
    /// --tls-self-signed` writes to DATA_DIR/tls/cert.pem).
    #[arg(long, value_name = "PEM")]
    pub cacert: Option<PathBuf>,
}

/// One request to send (possibly several times: 429 retries).
#[derive(Debug, Clone)]
pub struct Request {
    method: Method,
    url: Url,
    headers: HeaderMap,
    body: Bytes,
}

impl Request {
    /// A request without a body, authenticated with `auth`.
    pub fn new(method: Method, url: &Url, auth: &Auth) -> anyhow::Result<Self> {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth.header()?);
        Ok(Self {
            method,
            url: url.clone(),
            headers,
            body: Bytes::new(),
        })
    }

    /// Adds a header.
    pub fn header(mut self, name: HeaderName, value: &'static str) -> Self {
        self.headers.insert(name, HeaderValue::from_static(value));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }
}

/// Why a request or a body read failed.
#[derive(Debug)]
pub enum HttpError {
    /// Nothing arrived within the read timeout.
    Timeout(Duration),
    /// The server's TLS certificate is not trusted (unknown issuer, expired, wrong name,
    /// …): retrying cannot help, trusting it (`--cacert`) can. The text is rustls's reason.
    Certificate(String),
    /// Connecting, sending or reading failed; the text has the causes.
    Failed(String),
}

impl HttpError {
    /// Whether retrying the same request could succeed.
    pub fn is_permanent(&self) -> bool {
        matches!(self, HttpError::Certificate(_))
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Timeout(after) => write!(f, "nothing received for {} s", after.as_secs()),
            HttpError::Certificate(reason) => write!(
                f,
                "the server's TLS certificate is not trusted ({reason}); if the server uses \
                 its own certificate (`sluice serve --tls-self-signed` writes it to \
                 DATA_DIR/tls/cert.pem), trust it with --cacert PEM"
            ),
            HttpError::Failed(text) => f.write_str(text),
        }
    }
}

/// The certificate verification failure among `e`'s causes, if that is why it failed.
/// rustls's error sits inside `io::Error`s (tokio-rustls, hyper-rustls), whose `source()`
/// skips what they wrap, so each `io::Error` is unwrapped as well.
fn certificate_failure(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(e);
    while let Some(cause) = next {
        let mut wrapped = Some(cause);
        while let Some(inner) = wrapped {
            if let Some(tls) = inner.downcast_ref::<rustls::Error>()
                && matches!(
                    tls,
                    rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented
                )
            {
                return Some(tls.to_string());
            }
            wrapped = inner
                .downcast_ref::<std::io::Error>()
                .and_then(std::io::Error::get_ref)
                .map(|inner| inner as &(dyn std::error::Error + 'static));
        }
        next = cause.source();
    }
    None
}

impl std::error::Error for HttpError {}

/// An HTTP(S) client: a 10 s connect timeout, an optional per-read timeout, and no
/// automatic decompression (stream bodies are decoded by hand, chunk by chunk).
pub struct HttpClient {
    inner: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    read_timeout: Option<Duration>,
}

impl HttpClient {
    /// A client trusting the system's certificates plus `tls.cacert`; body reads time out
    /// after `read_timeout` without data when given.
    pub fn new(tls: &TlsArgs, read_timeout: Option<Duration>) -> anyhow::Result<Self> {
        let mut roots = rustls::RootCertStore::empty();
        // Unreadable system certificates are not fatal: `--cacert` may be all that is needed.
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        if let Some(path) = &tls.cacert {
            for cert in load_certificates(path)? {
                roots
                    .add(cert)
                    .with_context(|| format!("{} holds an unusable certificate", path.display()))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS protocol versions")?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(CONNECT_TIMEOUT));
        http.set_nodelay(true);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Self {
            inner: Client::builder(TokioExecutor::new()).build(https),
            read_timeout,
        })
    }

    /// Sends `request`; the answer's body is still to be read.
    pub async fn send(&self, request: &Request) -> Result<Response, HttpError> {
        let uri: Uri = request
            .url
            .as_str()
            .parse()
            .map_err(|e| HttpError::Failed(format!("bad URL {}: {e}", request.url)))?;
        let mut builder = hyper::Request::builder()
            .method(request.method.clone())
            .uri(uri)
            .header(USER_AGENT, AGENT);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        let http_request = builder
            .body(Full::new(request.body.clone()))
            .map_err(|e| HttpError::Failed(e.to_string()))?;
        let sent = self.inner.request(http_request);
        let response = match self.read_timeout {
            Some(limit) => tokio::time::timeout(limit, sent)
                .await
                .map_err(|_| HttpError::Timeout(limit))?,
            None => sent.await,
        }
        .map_err(|e| match certificate_failure(&e) {
            Some(reason) => HttpError::Certificate(reason),
            None => HttpError::Failed(error_chain(&e)),
        })?;
        let (parts, body) = response.into_parts();
        Ok(Response {
            status: parts.status,
            headers: parts.headers,
            body,
            read_timeout: self.read_timeout,
        })
    }
}

/// An answer whose body is read as it arrives.
pub struct Response {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    body: Incoming,
    read_timeout: Option<Duration>,
}

impl Response {
    /// The next piece of the body as it came off the wire (still encoded); `None` at its
    /// end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, HttpError> {
        loop {
            let frame = self.body.frame();
            let frame = match self.read_timeout {
                Some(limit) => tokio::time::timeout(limit, frame)
                    .await
                    .map_err(|_| HttpError::Timeout(limit))?,
                None => frame.await,
            };
            match frame {
                None => return Ok(None),
                Some(Err(e)) => return Err(HttpError::Failed(error_chain(&e))),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data()
                        && !data.is_empty()
                    {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }

    /// Whether the body is gzip-encoded.
    pub fn is_gzip(&self) -> bool {
        is_gzip(&self.headers)
    }
}

fn is_gzip(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("gzip"))
}

fn load_certificates(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{} is not a PEM certificate file", path.display()))?;
    anyhow::ensure!(!certs.is_empty(), "{} holds no certificate", path.display());
    Ok(certs)
}

/// An error with its causes, which is where hyper puts "connection refused".
pub fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A whole HTTP answer, its body already un-gzipped.
#[derive(Debug)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The decoded body.
    pub body: Bytes,
}

impl Reply {
    /// Reads the whole body of `response`, gunzipping it when it says `gzip`.
    pub async fn read(mut response: Response) -> anyhow::Result<Reply> {
        let mut raw = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .context("reading the response body")?
        {
            raw.extend_from_slice(&chunk);
        }
        let Response {
            status, headers, ..
        } = response;
        let body = if is_gzip(&headers) {
            let mut decoded = Vec::new();
            GzDecoder::new(&raw[..])
                .read_to_end(&mut decoded)
                .context("decoding the gzip response body")?;
            Bytes::from(decoded)
        } else {
            Bytes::from(raw)
        };
        Ok(Reply {
            status,
            headers,
            body,
        })
    }

    /// The error text of a failed answer: X's `{"error":{"message"}}`, a v2 problem's
    /// `detail`/`title` (after its `connection_issue`, before the messages of its
    /// `errors`), or the start of the body itself.
    pub fn error_message(&self) -> String {
        #[derive(Deserialize)]
        struct Gnip {
            error: GnipInner,
        }
        #[derive(Deserialize)]
        struct GnipInner {
            message: String,
        }
        if let Ok(gnip) = serde_json::from_slice::<Gnip>(&self.body) {
            return gnip.error.message.trim_end().to_owned();
        }
        if let Ok(problem) = serde_json::from_slice::<Problem>(&self.body)
            && let Some(text) = problem.text()
        {
            return text;
        }
        let text = String::from_utf8_lossy(&self.body);
        let text = text.trim();
        if text.is_empty() {
            return self
                .status
                .canonical_reason()
                .unwrap_or("no message")
                .to_owned();
        }
        match text.char_indices().nth(MAX_QUOTED_BODY) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text.to_owned(),
        }
    }
}

/// An X API v2 problem (RFC 7807 style), as far as its text goes: a refused stream
/// connect is `{"title":"ConnectionException","detail":…,"connection_issue":…}`, an invalid
/// request adds `errors` with one `message` per bad parameter.
#[derive(Deserialize)]
struct Problem {
    detail: Option<String>,
    title: Option<String>,
    connection_issue: Option<String>,
    #[serde(default)]
    errors: Vec<ProblemItem>,
}

/// One entry of a problem's `errors`.
#[derive(Deserialize)]
struct ProblemItem {
    message: Option<String>,
    detail: Option<String>,
}

impl Problem {
    /// `[ISSUE: ]DETAIL[: MESSAGE; MESSAGE…]`, or `None` when the body has neither
    /// `detail` nor `title`.
    fn text(self) -> Option<String> {
        let mut text = self.detail.or(self.title)?;
        if let Some(issue) = self.connection_issue {
            text = format!("{issue}: {text}");
        }
        let messages: Vec<String> = self
            .errors
            .into_iter()
            .filter_map(|e| e.message.or(e.detail))
            .collect();
        if !messages.is_empty() {
            let head = text.trim_end_matches('.').len();
            text.truncate(head);
            text = format!("{text}: {}", messages.join("; "));
        }
        Some(text)
    }
}

/// How long to wait after a 429: until `x-rate-limit-reset` (UNIX seconds) plus a small
/// margin, or a minute when the header is missing or unreadable.
pub fn rate_limit_wait(headers: &HeaderMap, now: SystemTime) -> Duration {
    let reset = headers
        .get("x-rate-limit-reset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let Some(reset) = reset else {
        return DEFAULT_RATE_LIMIT_WAIT;
    };
    let now = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    Duration::from_secs(reset).saturating_sub(now) + Duration::from_millis(250)
}

/// Sends `request` and reads the reply; on 429 says so on stderr, waits until the
/// rate-limit window resets and sends it again (a few times at most). `what` names the
/// request in messages.
pub async fn send_waiting_out_429(
    client: &HttpClient,
    what: &str,
    request: &Request,
) -> anyhow::Result<Reply> {
    let mut retries = 0;
    loop {
        let response = client
            .send(request)
            .await
            .with_context(|| format!("{what}: request to {} failed", request.url))?;
        let reply = Reply::read(response).await?;
        if reply.status != StatusCode::TOO_MANY_REQUESTS || retries == MAX_RATE_LIMIT_RETRIES {
            return Ok(reply);
        }
        let wait = rate_limit_wait(&reply.headers, SystemTime::now());
        anyhow::ensure!(
            wait <= MAX_RATE_LIMIT_WAIT,
            "{what}: rate limited for another {} s ({}); try again later",
            wait.as_secs(),
            reply.error_message()
        );
        eprintln!(
            "sluice: {what}: rate limited (HTTP 429); waiting {:.1} s for the window to reset",
            wait.as_secs_f64()
        );
        tokio::time::sleep(wait).await;
        retries += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_split_at_the_first_colon() {
        let c: Credentials = "alice@example.com:pa:ss".parse().expect("valid");
        assert_eq!(
            (c.user.as_str(), c.password.as_str()),
            ("alice@example.com", "pa:ss")
        );
        assert!("alice".parse::<Credentials>().is_err());
        assert!(":secret".parse::<Credentials>().is_err());
        assert_eq!(format!("{c:?}"), "alice@example.com:***");
    }

    #[test]
    fn a_429_waits_until_the_reset_second() {
        let now = UNIX_EPOCH + Duration::from_millis(1_000_500);
        let mut headers = HeaderMap::new();
        headers.insert("x-rate-limit-reset", HeaderValue::from_static("1010"));
        assert_eq!(rate_limit_wait(&headers, now), Duration::from_millis(9_750));
        headers.insert("x-rate-limit-reset", HeaderValue::from_static("900"));
        assert_eq!(rate_limit_wait(&headers, now), Duration::from_millis(250));
        headers.insert("x-rate-limit-reset", HeaderValue::from_static("soon"));
        assert_eq!(rate_limit_wait(&headers, now), DEFAULT_RATE_LIMIT_WAIT);
        assert_eq!(
            rate_limit_wait(&HeaderMap::new(), now),
            DEFAULT_RATE_LIMIT_WAIT
        );
    }

    fn reply(status: u16, body: &str) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).expect("valid status"),
            headers: HeaderMap::new(),
            body: Bytes::from(body.to_owned()),
        }
    }

    #[test]
    fn error_messages_come_from_x_shapes_or_the_body() {
        let gnip = reply(401, r#"{"error":{"message":"Unauthorized.\n","sent":"x"}}"#);
        assert_eq!(gnip.error_message(), "Unauthorized.");
        let problem = reply(
            429,
            r#"{"title":"Too Many Requests","detail":"Slow down."}"#,
        );
        assert_eq!(problem.error_message(), "Slow down.");
        let refused = reply(
            409,
            r#"{"title":"ConnectionException","detail":"You must define rules.","connection_issue":"RuleConfigurationIssue","type":"https://api.x.com/2/problems/streaming-connection"}"#,
        );
        assert_eq!(
            refused.error_message(),
            "RuleConfigurationIssue: You must define rules."
        );
        let invalid = reply(
            400,
            r#"{"title":"Invalid Request","detail":"One or more parameters to your request was invalid.","errors":[{"parameters":{"foo":["1"]},"message":"The query parameter [foo] is not one of [a,b]"},{"message":"second"}]}"#,
        );
        assert_eq!(
            invalid.error_message(),
            "One or more parameters to your request was invalid: The query parameter [foo] \
             is not one of [a,b]; second"
        );
        assert_eq!(reply(502, " bad gateway \n").error_message(), "bad gateway");
        assert_eq!(reply(503, "").error_message(), "Service Unavailable");
        let long = reply(500, &"x".repeat(1000)).error_message();
        assert_eq!(long.chars().count(), MAX_QUOTED_BODY + 1);
    }
}
