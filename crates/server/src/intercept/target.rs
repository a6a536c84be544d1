//! Which `CONNECT` targets `--intercept` serves: X's API hosts on port 443, nothing else
//! (docs/operator-interface.md, "sluice serve --intercept").

use std::str::FromStr as _;

use axum::http::uri::Authority;

/// The host names X's clients have hard-coded over the years (docs/compatibility.md lists
/// the URLs behind them): v2 and Powerstream, PowerTrack 2.0 streams and rules (current and
/// older domains), PowerTrack 1.0. `--intercept` tunnels exactly these, on port 443; sluice
/// routes on the path, so every host reaches the same APIs.
pub const X_API_HOSTS: &[&str] = &[
    "api.x.com",
    "api.twitter.com",
    "gnip-stream.x.com",
    "gnip-stream.twitter.com",
    "gnip-stream.gnip.com",
    "gnip-api.x.com",
    "gnip-api.twitter.com",
    "data-api.x.com",
    "data-api.twitter.com",
    "stream-data-api.x.com",
    "stream-data-api.twitter.com",
    "stream.gnip.com",
    "api.gnip.com",
];

/// The only port tunnelled: HTTPS. A client sends `http://` URLs to a proxy as plain
/// requests (absolute form), not as `CONNECT`, and those need no interception.
pub const HTTPS_PORT: u16 = 443;

/// A `CONNECT` target that `--intercept` serves: one of [`X_API_HOSTS`], port 443.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XApiHost {
    /// The host, as listed in [`X_API_HOSTS`].
    pub host: &'static str,
    /// Its position in [`X_API_HOSTS`] (the key of the certificate cache).
    pub index: usize,
}

/// Why a `CONNECT` target is not served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Not `host:port` (a scheme, a path, user info, no port): 400.
    #[error("CONNECT needs a target of the form host:443, not {0:?}")]
    Malformed(String),
    /// A well-formed target that is not an X API host on port 443: 403.
    #[error("sluice intercepts only X's API hosts on port 443; CONNECT to {0} is refused")]
    NotAnXApiHost(String),
}

/// Reads a `CONNECT` request target (`api.twitter.com:443`). Host names compare without
/// regard to case, as DNS names do.
pub fn parse(target: &str) -> Result<XApiHost, Refusal> {
    let malformed = || Refusal::Malformed(target.to_owned());
    // `Authority` refuses paths, queries and schemes; user info and a missing port are
    // legal in it but not in a CONNECT target (RFC 9110, 9.3.6).
    let authority = Authority::from_str(target).map_err(|_| malformed())?;
    if authority.as_str().contains('@') || authority.host().is_empty() {
        return Err(malformed());
    }
    let port = authority.port_u16().ok_or_else(malformed)?;
    let host = authority.host();
    let found = X_API_HOSTS
        .iter()
        .position(|known| known.eq_ignore_ascii_case(host));
    match found {
        Some(index) if port == HTTPS_PORT => Ok(XApiHost {
            host: X_API_HOSTS[index],
            index,
        }),
        _ => Err(Refusal::NotAnXApiHost(authority.as_str().to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x_api_hosts_on_443_are_served_and_everything_else_refused() {
        let served = [
            ("api.twitter.com:443", "api.twitter.com"),
            ("api.x.com:443", "api.x.com"),
            ("API.Twitter.COM:443", "api.twitter.com"),
            ("gnip-stream.twitter.com:443", "gnip-stream.twitter.com"),
            ("gnip-api.x.com:443", "gnip-api.x.com"),
            ("stream.gnip.com:443", "stream.gnip.com"),
        ];
        for (target, host) in served {
            assert_eq!(parse(target).map(|t| t.host), Ok(host), "{target}");
        }
        let forbidden = [
            "example.com:443",
            "api.twitter.com:80",
            "api.twitter.com:8443",
            "api.twitter.com.:443",
            "evil-api.twitter.com:443",
            "api.twitter.com.evil.com:443",
            "twitter.com:443",
            "upload.twitter.com:443",
            "127.0.0.1:443",
            "[::1]:443",
        ];
        for target in forbidden {
            assert!(
                matches!(parse(target), Err(Refusal::NotAnXApiHost(_))),
                "{target}: {:?}",
                parse(target)
            );
        }
        let malformed = [
            "",
            "api.twitter.com",
            "api.twitter.com:",
            "api.twitter.com:https",
            "api.twitter.com:65536",
            "api.twitter.com:-1",
            ":443",
            "user@api.twitter.com:443",
            "user:pw@api.twitter.com:443",
            "https://api.twitter.com:443",
            "api.twitter.com:443/2/tweets",
            "api.twitter.com:443?x=1",
            "api twitter.com:443",
            "/",
            "*",
        ];
        for target in malformed {
            assert!(
                matches!(parse(target), Err(Refusal::Malformed(_))),
                "{target:?}: {:?}",
                parse(target)
            );
        }
    }

    #[test]
    fn each_host_is_listed_once_in_lower_case() {
        for (i, host) in X_API_HOSTS.iter().enumerate() {
            assert_eq!(host.to_ascii_lowercase(), *host);
            assert_eq!(parse(&format!("{host}:443")).unwrap().index, i);
        }
    }
}
