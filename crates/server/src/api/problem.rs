//! Error responses of the `/2/` endpoints (Powerstream): v2 problem JSON
//! `{"title","detail","type","status"}` with `Content-Type: application/problem+json`, as X
//! answers them (docs/compatibility.md, wire rule 4 and §7.2). Every 429 carries the
//! `x-rate-limit-*` headers (wire rule 6).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sluice_wire::v2::{Problem, RuleProblem, problem_type};

use super::body::BodyError;
use super::error::{ApiError, add_rate_headers};
use crate::ratelimit::RateInfo;

/// An error answer of a `/2/` endpoint.
#[derive(Debug, Clone)]
pub struct ProblemError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body (boxed: errors travel in `Result`s and should stay small).
    pub problem: Box<Problem>,
    /// Rate-limit headers to add.
    pub rate: Option<RateInfo>,
    /// The `WWW-Authenticate` challenge of a 401.
    pub challenge: Option<&'static str>,
    /// A body that replaces `problem` on the wire: X's parameter errors carry an `errors`
    /// list of their own shape ([`ProblemError::invalid_parameters`]).
    pub body: Option<Box<serde_json::Value>>,
}

impl ProblemError {
    fn new(status: StatusCode, title: &str, kind: &str, detail: impl Into<String>) -> Self {
        Self {
            status,
            problem: Box::new(Problem::new(title, kind, detail, status.as_u16())),
            rate: None,
            challenge: None,
            body: None,
        }
    }

    /// 400 `invalid-request` naming each bad query parameter value, in X's shape:
    /// `{"errors":[{"parameters":{name:[value]},"message":…}],"title":"Invalid Request",
    /// "detail":"One or more parameters to your request was invalid.","type":…}`.
    pub fn invalid_parameters(errors: &[(&str, &str, String)]) -> Self {
        let errors: Vec<serde_json::Value> = errors
            .iter()
            .map(|(name, value, message)| {
                serde_json::json!({ "parameters": { *name: [value] }, "message": message })
            })
            .collect();
        Self::invalid_request_body(serde_json::json!({ "errors": errors }))
    }

    /// A refused stream connect, X's `ConnectionException` problem:
    /// `{"title":"ConnectionException","detail":…,"connection_issue":…,"type":…/streaming-connection}`
    /// (409 `RuleConfigurationIssue` without rules, 429 `TooManyConnections` at the cap).
    pub fn connection_exception(status: StatusCode, issue: &str, detail: &str) -> Self {
        let mut e = Self::new(
            status,
            "ConnectionException",
            problem_type::STREAMING_CONNECTION,
            detail,
        );
        e.body = Some(Box::new(serde_json::json!({
            "title": "ConnectionException",
            "detail": detail,
            "connection_issue": issue,
            "type": problem_type::STREAMING_CONNECTION,
        })));
        e
    }

    /// 400 `invalid-request` whose body is X's problem with these extra members (an
    /// `errors` list, …) merged in.
    pub fn invalid_request_body(extra: serde_json::Value) -> Self {
        const DETAIL: &str = "One or more parameters to your request was invalid.";
        let mut e = Self::invalid_request(DETAIL);
        let mut body = serde_json::json!({
            "title": "Invalid Request",
            "detail": DETAIL,
            "type": problem_type::INVALID_REQUEST,
        });
        if let (Some(body), serde_json::Value::Object(extra)) = (body.as_object_mut(), extra) {
            body.extend(extra);
        }
        e.body = Some(Box::new(body));
        e
    }

    /// 401 for a missing or unknown bearer token, X's body:
    /// `{"title":"Unauthorized","detail":"Unauthorized","type":"about:blank","status":401}`.
    pub fn unauthorized() -> Self {
        Self {
            challenge: Some(crate::auth::BEARER_CHALLENGE),
            ..Self::new(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                problem_type::ABOUT_BLANK,
                "Unauthorized",
            )
        }
    }

    /// 403 for credentials of another kind than a bearer token (basic auth, …), with X's
    /// text naming what was used and what is supported.
    pub fn unsupported_authentication(used: &str) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "Unsupported Authentication",
            problem_type::UNSUPPORTED_AUTHENTICATION,
            format!(
                "Authenticating with {used} is forbidden for this endpoint.  Supported \
                 authentication types are [OAuth 2.0 Application-Only]."
            ),
        )
    }

    /// 400 `invalid-request` with what exactly was wrong.
    pub fn invalid_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "Invalid Request",
            problem_type::INVALID_REQUEST,
            detail,
        )
    }

    /// The same problem answered with `status` (kept in the body too).
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self.problem.status = Some(status.as_u16());
        self
    }

    /// 429 with the limiter's headers and X's body.
    pub fn rate_limited(rate: RateInfo) -> Self {
        Self {
            rate: Some(rate),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "Too Many Requests",
                problem_type::ABOUT_BLANK,
                "Too Many Requests",
            )
        }
    }

    /// 422 `rule-cap`: the add would take the account over its rules.
    pub fn rule_cap(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Rule Cap Exceeded",
            problem_type::RULE_CAP,
            detail,
        )
    }

    /// 422 `invalid-rules`: nothing was added; `errors` names each invalid rule.
    pub fn invalid_rules(errors: Vec<RuleProblem>) -> Self {
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid Rules",
            problem_type::INVALID_RULES,
            format!(
                "{} of the submitted rules {} invalid; no rule was added.",
                errors.len(),
                if errors.len() == 1 { "is" } else { "are" }
            ),
        );
        e.problem.errors = errors;
        e
    }

    /// 413 for a body over the rules body limit.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "Payload Too Large",
            problem_type::INVALID_REQUEST,
            format!("Request body too large: rules requests are limited to {limit} bytes."),
        )
    }

    /// A problem for a refusal made before any handler ran (unknown route, refused method,
    /// malformed request): `invalid-request` for a request that cannot be served as sent,
    /// `about:blank` with the status's reason as title otherwise.
    pub fn of_status(status: StatusCode, detail: impl Into<String>) -> Self {
        let reason = status.canonical_reason().unwrap_or("Error");
        match status {
            StatusCode::BAD_REQUEST
            | StatusCode::REQUEST_TIMEOUT
            | StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::URI_TOO_LONG
            | StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => Self::new(
                status,
                "Invalid Request",
                problem_type::INVALID_REQUEST,
                detail,
            ),
            _ => Self::new(status, reason, problem_type::ABOUT_BLANK, detail),
        }
    }

    /// 500, for store failures; the details go to the log.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!("internal error: {error}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal Server Error",
            problem_type::ABOUT_BLANK,
            "Internal server error.",
        )
    }
}

/// The shared stream helpers answer in Gnip form; a `/2/` endpoint keeps their status,
/// message and rate headers and answers with a problem (an `invalid-request` for 4xx
/// refusals of parameters).
impl From<ApiError> for ProblemError {
    fn from(e: ApiError) -> Self {
        let (title, kind) = match e.status {
            StatusCode::TOO_MANY_REQUESTS => ("Too Many Requests", problem_type::ABOUT_BLANK),
            s if s.is_server_error() => ("Internal Server Error", problem_type::ABOUT_BLANK),
            _ => ("Invalid Request", problem_type::INVALID_REQUEST),
        };
        Self {
            rate: e.rate,
            challenge: e.challenge,
            ..Self::new(e.status, title, kind, e.message)
        }
    }
}

/// A body that could not be read: 413 with the rules limit, 408, or 400.
impl From<BodyError> for ProblemError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge(limit) => ProblemError::payload_too_large(limit),
            e => ProblemError::of_status(e.status(), e.message()),
        }
    }
}

impl From<sluice_store::StoreError> for ProblemError {
    fn from(e: sluice_store::StoreError) -> Self {
        ProblemError::internal(e)
    }
}

impl From<crate::changes::ChangeError> for ProblemError {
    fn from(e: crate::changes::ChangeError) -> Self {
        ProblemError::from(ApiError::from(e))
    }
}

impl super::error::CarriesRate for ProblemError {
    fn set_rate(&mut self, rate: RateInfo) {
        self.rate = Some(rate);
    }
}

impl IntoResponse for ProblemError {
    fn into_response(self) -> Response {
        let body = match &self.body {
            Some(body) => sluice_wire::to_vec(body),
            None => sluice_wire::to_vec(&self.problem),
        };
        let mut response = (self.status, body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
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
