//! Which web pages may use the server: protection against cross-site requests and DNS rebinding.
//!
//! A browser visiting any web site can send requests to Sluice on the user's machine or LAN.
//! Two rules keep such a page from controlling or reading the API:
//!
//! - **Host** (DNS rebinding): an attacker's name (`evil.example`) can be made to resolve to
//!   Sluice's address, so the browser treats the attacker's page and Sluice as one origin and
//!   lets the page read the answers. A request from a browser must therefore name the server by
//!   an IP address, `localhost`, or a name listed in `server.allowed_hosts`. Programs (curl,
//!   Home Assistant, scripts) are not browsers and can send any `Host` anyway, so the rule is
//!   applied to browser requests only: those with an `Origin` or a `Sec-Fetch-*` header, which
//!   every current browser sends and page scripts cannot remove (they are forbidden request
//!   headers). Browsers older than those headers (before Chrome 76, Firefox 90, Safari 16.4)
//!   are only covered for state-changing requests, which carry `Origin`.
//! - **Origin** (cross-site requests): a state-changing request (any method but GET, HEAD,
//!   OPTIONS and TRACE) that carries an `Origin` must come from the server's own origin (the
//!   `Origin`'s host and port are the `Host`'s) or from one listed in `server.allowed_origins`.
//!   A page on another site can send a "simple" POST without a CORS preflight, so the browser's
//!   same-origin policy alone does not stop it; this does.
//!
//! Refusals are 403 with a JSON error naming the header and the config key that allows it.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::debug;

use crate::json::ApiError;

/// The allowed hosts and origins, from `server.allowed_hosts` and `server.allowed_origins`.
#[derive(Clone, Debug, Default)]
pub struct SitePolicy {
    any_host: bool,
    /// Lower-case host names, without a trailing dot.
    hosts: Vec<String>,
    /// Origins in their ASCII serialization (`http://host:port`, default port omitted).
    origins: Vec<String>,
}

impl SitePolicy {
    /// The policy for validated config values ([`check_allowed_host`],
    /// [`parse_allowed_origin`]); a value that does not validate is ignored.
    pub fn new(allowed_hosts: &[String], allowed_origins: &[String]) -> SitePolicy {
        SitePolicy {
            any_host: allowed_hosts.iter().any(|h| h == "*"),
            hosts: allowed_hosts
                .iter()
                .filter(|h| check_allowed_host(h).is_ok())
                .map(|h| normalize_host(h))
                .collect(),
            origins: allowed_origins
                .iter()
                .filter_map(|o| parse_allowed_origin(o).ok())
                .collect(),
        }
    }

    /// Checks a request's method and headers; the error is the reason to refuse it.
    pub fn check(&self, method: &Method, headers: &HeaderMap) -> Result<(), String> {
        let origin = headers
            .get(header::ORIGIN)
            .map(|v| v.to_str().unwrap_or(""));
        let from_browser =
            origin.is_some() || headers.keys().any(|k| k.as_str().starts_with("sec-fetch-"));
        if !from_browser {
            return Ok(());
        }
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let (name, port) = split_authority(host)
            .ok_or_else(|| format!("request refused: Host {host:?} is not a valid host[:port]"))?;
        if !self.host_allowed(&name) {
            return Err(format!(
                "request refused: Host {host:?} is not allowed (protection against DNS \
                 rebinding); if you reach Sluice by this name, add {name:?} to \
                 server.allowed_hosts"
            ));
        }
        let Some(origin) = origin else {
            return Ok(());
        };
        if is_safe(method) || same_origin(origin, &name, port) {
            return Ok(());
        }
        if url::Url::parse(origin)
            .is_ok_and(|u| self.origins.contains(&u.origin().ascii_serialization()))
        {
            return Ok(());
        }
        Err(format!(
            "request refused: Origin {origin:?} is not this server's origin (a cross-site \
             request); to let a web app there use the API, add {origin:?} to \
             server.allowed_origins"
        ))
    }

    fn host_allowed(&self, name: &str) -> bool {
        self.any_host
            || name == "localhost"
            || name.parse::<Ipv4Addr>().is_ok()
            || name
                .strip_prefix('[')
                .and_then(|n| n.strip_suffix(']'))
                .is_some_and(|n| n.parse::<Ipv6Addr>().is_ok())
            || self.hosts.iter().any(|h| h == name)
    }
}

/// Middleware applying a [`SitePolicy`].
pub async fn guard(State(policy): State<Arc<SitePolicy>>, req: Request, next: Next) -> Response {
    match policy.check(req.method(), req.headers()) {
        Ok(()) => next.run(req).await,
        Err(reason) => {
            // Debug only: any web page the user visits can cause these.
            debug!(method = %req.method(), uri = %req.uri(), "{reason}");
            ApiError::new(StatusCode::FORBIDDEN, reason).into_response()
        }
    }
}

/// Methods that do not change anything (RFC 9110, 9.2.1).
fn is_safe(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// `host[:port]` as the lower-case host (IPv6 in brackets, no trailing dot) and the port, or
/// `None` if it is not an authority.
fn split_authority(authority: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = match authority.rsplit_once(':') {
        // An IPv6 literal without a port has colons but ends with `]`.
        Some((host, port)) if !port.contains(']') => (host, Some(port.parse::<u16>().ok()?)),
        _ => (authority, None),
    };
    if host.is_empty() || host.contains(['/', '@', ' ', '?', '#']) {
        return None;
    }
    Some((normalize_host(host), port))
}

fn normalize_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// Whether `origin` is the origin of the server reached as `host` (already normalized) and
/// `port` (a `Host` without a port means the default port of the origin's scheme).
fn same_origin(origin: &str, host: &str, port: Option<u16>) -> bool {
    let Ok(url) = url::Url::parse(origin) else {
        return false;
    };
    let Some(origin_host) = url.host_str() else {
        return false;
    };
    let scheme_default = match url.scheme() {
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    };
    normalize_host(origin_host) == host
        && port.or(scheme_default).is_some()
        && port.or(scheme_default) == url.port_or_known_default()
}

/// Checks one entry of `server.allowed_hosts`: a host name without scheme or port, or `*`.
pub fn check_allowed_host(host: &str) -> Result<(), String> {
    let ok = host == "*"
        || (!host.is_empty()
            && host.len() <= 253
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{host:?} is not a host name: write the name alone (\"nvr.example.com\", no \
             scheme or port), or \"*\" to allow any"
        ))
    }
}

/// Parses one entry of `server.allowed_origins` (`http[s]://host[:port]`) into the form
/// browsers send.
pub fn parse_allowed_origin(origin: &str) -> Result<String, String> {
    let bad = || {
        format!(
            "{origin:?} is not an origin: write scheme://host[:port] as the browser shows it, \
             e.g. \"https://ha.example.com:8123\""
        )
    };
    let url = url::Url::parse(origin).map_err(|_| bad())?;
    let plain = matches!(url.scheme(), "http" | "https")
        && url.host_str().is_some()
        && url.username().is_empty()
        && url.password().is_none()
        && url.path() == "/"
        && url.query().is_none()
        && url.fragment().is_none();
    if plain {
        Ok(url.origin().ascii_serialization())
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(policy: &SitePolicy, method: Method, headers: &[(&str, &str)]) -> Result<(), String> {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.insert(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        policy.check(&method, &map)
    }

    #[test]
    fn browsers_must_name_the_server_by_address_localhost_or_an_allowed_name() {
        let none = SitePolicy::default();
        let fetch = [("sec-fetch-site", "same-origin")];
        for host in [
            "127.0.0.1:8640",
            "192.168.1.20",
            "[::1]:8640",
            "[fe80::1]",
            "localhost:8640",
            "LOCALHOST.",
        ] {
            let headers = [("host", host), fetch[0]];
            assert_eq!(check(&none, Method::GET, &headers), Ok(()), "{host}");
        }
        for host in ["evil.example:8640", "nvr.lan", "127.0.0.1.evil.example", ""] {
            let headers = [("host", host), fetch[0]];
            assert!(check(&none, Method::GET, &headers).is_err(), "{host}");
        }
        assert_eq!(
            check(&none, Method::GET, &[("sec-fetch-mode", "cors")]),
            Err("request refused: Host \"\" is not a valid host[:port]".into()),
            "a browser request without Host"
        );
        assert_eq!(
            check(&none, Method::GET, &[("host", "nvr.lan:8640"), fetch[0]]),
            Err(
                "request refused: Host \"nvr.lan:8640\" is not allowed (protection against DNS \
                 rebinding); if you reach Sluice by this name, add \"nvr.lan\" to \
                 server.allowed_hosts"
                    .into()
            )
        );
        let listed = SitePolicy::new(&["NVR.lan".into()], &[]);
        assert_eq!(
            check(&listed, Method::GET, &[("host", "nvr.lan:8640"), fetch[0]]),
            Ok(())
        );
        let any = SitePolicy::new(&["*".into()], &[]);
        assert_eq!(
            check(&any, Method::GET, &[("host", "nvr.lan:8640"), fetch[0]]),
            Ok(())
        );
        // Programs are not browsers: no rule applies.
        assert_eq!(
            check(&none, Method::POST, &[("host", "sluice:8640")]),
            Ok(())
        );
    }

    #[test]
    fn state_changing_requests_must_come_from_this_origin_or_an_allowed_one() {
        let policy = SitePolicy::new(&["nvr.lan".into()], &["https://ha.example:8123".into()]);
        let post = |host: &str, origin: &str| {
            check(&policy, Method::POST, &[("host", host), ("origin", origin)])
        };
        assert_eq!(post("127.0.0.1:8640", "http://127.0.0.1:8640"), Ok(()));
        assert_eq!(post("nvr.lan", "http://nvr.lan"), Ok(()));
        assert_eq!(post("nvr.lan:80", "http://nvr.lan"), Ok(()));
        assert_eq!(
            post("nvr.lan", "https://nvr.lan"),
            Ok(()),
            "behind a TLS proxy"
        );
        assert_eq!(post("nvr.lan:443", "https://NVR.lan"), Ok(()));
        assert_eq!(post("[::1]:8640", "http://[::1]:8640"), Ok(()));
        assert_eq!(post("127.0.0.1:8640", "https://ha.example:8123"), Ok(()));
        assert_eq!(post("127.0.0.1:8640", "https://ha.example:8123/"), Ok(()));
        for (host, origin) in [
            ("127.0.0.1:8640", "http://evil.example"),
            ("127.0.0.1:8640", "http://127.0.0.1:9999"),
            ("127.0.0.1:8640", "http://localhost:8640"),
            ("nvr.lan", "http://nvr.lan:8080"),
            ("nvr.lan:8640", "http://nvr.lan"),
            ("127.0.0.1:8640", "http://ha.example:8123"),
            ("127.0.0.1:8640", "null"),
            ("127.0.0.1:8640", ""),
        ] {
            assert!(post(host, origin).is_err(), "{host} {origin}");
        }
        assert_eq!(
            post("127.0.0.1:8640", "http://evil.example"),
            Err(
                "request refused: Origin \"http://evil.example\" is not this server's origin \
                 (a cross-site request); to let a web app there use the API, add \
                 \"http://evil.example\" to server.allowed_origins"
                    .into()
            )
        );
        // Reading is not refused for the Origin (the API sends no CORS headers, so a foreign
        // page cannot read the answer anyway).
        assert_eq!(
            check(
                &policy,
                Method::GET,
                &[("host", "127.0.0.1"), ("origin", "http://evil.example")]
            ),
            Ok(())
        );
    }

    #[test]
    fn config_values_are_checked() {
        assert_eq!(check_allowed_host("nvr.example.com"), Ok(()));
        assert_eq!(check_allowed_host("*"), Ok(()));
        assert!(check_allowed_host("http://nvr.example.com").is_err());
        assert!(check_allowed_host("nvr:8640").is_err());
        assert!(check_allowed_host("").is_err());
        assert_eq!(
            parse_allowed_origin("https://HA.example.com:8123"),
            Ok("https://ha.example.com:8123".into())
        );
        assert_eq!(
            parse_allowed_origin("http://ha.example.com:80/"),
            Ok("http://ha.example.com".into())
        );
        for bad in [
            "ha.example.com",
            "https://ha.example.com/path",
            "https://u:p@ha.example.com",
            "ftp://ha.example.com",
            "*",
        ] {
            assert!(parse_allowed_origin(bad).is_err(), "{bad}");
        }
    }
}
