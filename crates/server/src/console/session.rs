//! Console sessions: who signed in, held on the server under a random id that the browser
//! keeps in an `HttpOnly`, `SameSite=Strict` cookie (`Secure` when the console is served
//! over HTTPS), with a fixed lifetime; and the two checks every state-changing request
//! passes (docs/operator-interface.md, "Console"): its `Origin` is the console's own, and
//! it carries the session's CSRF token in `X-CSRF-Token`.
//!
//! Sessions live in this node's memory: a restart signs everyone out, and in a cluster a
//! browser keeps to the node it signed in on.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, Method, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore as _;
use subtle::ConstantTimeEq as _;

/// The session cookie's name.
pub const COOKIE: &str = "sluice_console";

/// The header that carries the CSRF token of state-changing requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How long a session lasts from sign-in.
pub const SESSION_TTL: Duration = Duration::from_secs(8 * 3600);

/// Sessions held at most; signing in past it forgets the expired ones, then the oldest.
const MAX_SESSIONS: usize = 10_000;

/// Who a session belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// The operator, signed in with the admin token. The token is kept (in memory only)
    /// to call the admin API's handlers on the operator's behalf.
    Operator {
        /// The admin token as presented.
        token: String,
    },
    /// A basic-auth user of one account: sees that account only.
    Customer {
        /// The account.
        account: String,
        /// The username.
        username: String,
        /// The user's generation at sign-in ([`crate::sessions::Sessions::generation`]):
        /// a password change or the user's deletion ends the session.
        generation: u64,
    },
}

/// One signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who signed in.
    pub role: Role,
    /// The token state-changing requests must carry.
    pub csrf: String,
    expires: Instant,
}

/// Every console session of this node.
pub struct ConsoleSessions {
    by_id: Mutex<HashMap<String, Session>>,
    ttl: Duration,
}

impl Default for ConsoleSessions {
    fn default() -> Self {
        Self::with_ttl(SESSION_TTL)
    }
}

/// 32 random bytes, URL-safe base64: session ids and CSRF tokens.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

impl ConsoleSessions {
    /// Sessions that last `ttl`.
    pub fn with_ttl(ttl: Duration) -> Self {
        Self {
            by_id: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    fn by_id(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.by_id.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a session for `role` at `now`; returns its id (the cookie value) and itself.
    pub fn open(&self, role: Role, now: Instant) -> (String, Session) {
        let id = random_token();
        let session = Session {
            role,
            csrf: random_token(),
            expires: now + self.ttl,
        };
        let mut by_id = self.by_id();
        if by_id.len() >= MAX_SESSIONS {
            by_id.retain(|_, s| s.expires > now);
            if by_id.len() >= MAX_SESSIONS
                && let Some(oldest) = by_id
                    .iter()
                    .min_by_key(|(_, s)| s.expires)
                    .map(|(id, _)| id.clone())
            {
                by_id.remove(&oldest);
            }
        }
        by_id.insert(id.clone(), session.clone());
        (id, session)
    }

    /// The live session `id` at `now`; an expired one is forgotten.
    pub fn get(&self, id: &str, now: Instant) -> Option<Session> {
        let mut by_id = self.by_id();
        match by_id.get(id) {
            Some(s) if s.expires > now => Some(s.clone()),
            Some(_) => {
                by_id.remove(id);
                None
            }
            None => None,
        }
    }

    /// Ends session `id` (sign-out, or its user was revoked).
    pub fn close(&self, id: &str) {
        self.by_id().remove(id);
    }
}

/// The session id in the request's `Cookie` header.
pub fn session_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())
}

/// The `Set-Cookie` value that hands the browser session `id` (`None`: clears it).
pub fn set_cookie(id: Option<&str>, secure: bool, ttl: Duration) -> String {
    let (value, max_age) = match id {
        Some(id) => (id, ttl.as_secs()),
        None => ("", 0),
    };
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE}={value}; Path=/console; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

/// Why a request was refused before it reached a handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// No session, or an expired or revoked one (401).
    SignedOut,
    /// A state-changing request from another origin, or without an `Origin` (403).
    CrossOrigin,
    /// A state-changing request without the session's CSRF token (403).
    BadCsrf,
}

impl Refused {
    /// The text of the refusal.
    pub fn message(self) -> &'static str {
        match self {
            Refused::SignedOut => "Not signed in, or the session has expired: sign in again.",
            Refused::CrossOrigin => "Refused: the request does not come from this console.",
            Refused::BadCsrf => "Refused: missing or wrong CSRF token; reload the console.",
        }
    }
}

/// Whether `method` changes state (everything but `GET`, `HEAD` and `OPTIONS`).
pub fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The same-origin check of a state-changing request: an `Origin` header whose host (and
/// port) is the request's `Host`. Browsers send `Origin` with every `POST`, `PUT` and
/// `DELETE`, so a request without one did not come from the console's page. A
/// `Sec-Fetch-Site` other than `same-origin` is refused too.
pub fn check_origin(headers: &HeaderMap) -> Result<(), Refused> {
    let value = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if value("sec-fetch-site").is_some_and(|site| site != "same-origin") {
        return Err(Refused::CrossOrigin);
    }
    let origin_host = value(header::ORIGIN.as_str())
        .and_then(|o| o.split_once("://"))
        .map(|(_, host)| host);
    match (origin_host, value(header::HOST.as_str())) {
        (Some(origin), Some(host)) if origin.eq_ignore_ascii_case(host) => Ok(()),
        _ => Err(Refused::CrossOrigin),
    }
}

/// The CSRF check of a state-changing request: `X-CSRF-Token` is the session's token
/// (compared in constant time).
pub fn check_csrf(session: &Session, headers: &HeaderMap) -> Result<(), Refused> {
    let presented = headers
        .get(CSRF_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    if bool::from(presented.ct_eq(session.csrf.as_bytes())) {
        Ok(())
    } else {
        Err(Refused::BadCsrf)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn customer() -> Role {
        Role::Customer {
            account: "acme".into(),
            username: "alice".into(),
            generation: 0,
        }
    }

    /// Request headers, as (name, value) pairs.
    type Pairs<'a> = &'a [(&'static str, &'a str)];

    fn headers(pairs: Pairs<'_>) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_str(value).unwrap());
        }
        h
    }

    #[test]
    fn a_session_expires_after_its_lifetime_and_is_forgotten() {
        let sessions = ConsoleSessions::with_ttl(Duration::from_secs(60));
        let t0 = Instant::now();
        let (id, opened) = sessions.open(customer(), t0);
        let got = sessions.get(&id, t0 + Duration::from_secs(59)).unwrap();
        assert_eq!((got.role, got.csrf), (customer(), opened.csrf));
        assert!(sessions.get(&id, t0 + Duration::from_secs(60)).is_none());
        // Forgotten: even a clock going back does not revive it.
        assert!(sessions.get(&id, t0).is_none());
        assert!(sessions.get("not-a-session", t0).is_none());
    }

    #[test]
    fn ids_and_csrf_tokens_are_random_and_sign_out_ends_a_session() {
        let sessions = ConsoleSessions::default();
        let now = Instant::now();
        let (a, sa) = sessions.open(customer(), now);
        let (b, sb) = sessions.open(customer(), now);
        assert_ne!(a, b);
        assert_ne!(sa.csrf, sb.csrf);
        assert_ne!(a, sa.csrf);
        assert_eq!(a.len(), 43);
        sessions.close(&a);
        assert!(sessions.get(&a, now).is_none());
        assert!(sessions.get(&b, now).is_some());
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        #[rustfmt::skip]
        let cases: &[(Pairs<'_>, Option<&str>)] = &[
            (&[("cookie", "sluice_console=abc")], Some("abc")),
            (&[("cookie", "a=1; sluice_console=abc; b=2")], Some("abc")),
            (&[("cookie", "a=1"), ("cookie", "sluice_console=xyz")], Some("xyz")),
            (&[("cookie", "sluice_console=")], None),
            (&[("cookie", "xsluice_console=abc")], None),
            (&[], None),
        ];
        for (pairs, want) in cases {
            assert_eq!(session_id(&headers(pairs)), *want, "{pairs:?}");
        }
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_under_tls() {
        let ttl = Duration::from_secs(3600);
        let plain = set_cookie(Some("abc"), false, ttl);
        assert_eq!(
            plain,
            "sluice_console=abc; Path=/console; Max-Age=3600; HttpOnly; SameSite=Strict"
        );
        assert!(set_cookie(Some("abc"), true, ttl).ends_with("; Secure"));
        assert!(set_cookie(None, false, ttl).contains("sluice_console=; Path=/console; Max-Age=0"));
    }

    #[test]
    fn state_changing_requests_need_the_consoles_own_origin() {
        #[rustfmt::skip]
        let cases: &[(Pairs<'_>, bool)] = &[
            (&[("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:8080")], true),
            (&[("host", "sluice.example"), ("origin", "https://sluice.example")], true),
            (&[("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:8080"),
               ("sec-fetch-site", "same-origin")], true),
            // Another site, another port, no Origin, a null Origin, a cross-site fetch.
            (&[("host", "127.0.0.1:8080"), ("origin", "http://evil.example")], false),
            (&[("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:9090")], false),
            (&[("host", "127.0.0.1:8080")], false),
            (&[("host", "127.0.0.1:8080"), ("origin", "null")], false),
            (&[("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:8080"),
               ("sec-fetch-site", "cross-site")], false),
            (&[("host", "127.0.0.1:8080"), ("origin", "http://127.0.0.1:8080"),
               ("sec-fetch-site", "same-site")], false),
            (&[("origin", "http://127.0.0.1:8080")], false),
        ];
        for (pairs, ok) in cases {
            assert_eq!(check_origin(&headers(pairs)).is_ok(), *ok, "{pairs:?}");
        }
    }

    #[test]
    fn state_changing_requests_need_the_sessions_csrf_token() {
        let sessions = ConsoleSessions::default();
        let (_, session) = sessions.open(customer(), Instant::now());
        let (_, other) = sessions.open(customer(), Instant::now());
        assert_eq!(check_csrf(&session, &headers(&[])), Err(Refused::BadCsrf));
        assert_eq!(
            check_csrf(&session, &headers(&[(CSRF_HEADER, "")])),
            Err(Refused::BadCsrf)
        );
        assert_eq!(
            check_csrf(&session, &headers(&[(CSRF_HEADER, &other.csrf)])),
            Err(Refused::BadCsrf)
        );
        assert_eq!(
            check_csrf(&session, &headers(&[(CSRF_HEADER, &session.csrf[..10])])),
            Err(Refused::BadCsrf)
        );
        assert_eq!(
            check_csrf(&session, &headers(&[(CSRF_HEADER, &session.csrf)])),
            Ok(())
        );
        assert!(changes_state(&Method::POST) && changes_state(&Method::DELETE));
        assert!(changes_state(&Method::PUT) && !changes_state(&Method::GET));
    }
}
