//! Cross-origin resource sharing (`[http.cors]`): which pages of other origins may call the
//! node from a browser. Owns the answer to a preflight (`OPTIONS` with
//! `Access-Control-Request-Method`, answered before authentication, since browsers send no
//! credentials with it) and the `Access-Control-Allow-Origin` line every answer to an allowed
//! origin carries, errors included (a page must be able to read a 401 or a 429).
//!
//! `"*"` allows any origin, except on a node without users: it serves loopback only and asks
//! for no credentials, so any site its operator visits could read and write it. There `*`
//! narrows to the origins a WebSocket may come from (`hosts::AllowedHosts::origin`: loopback,
//! the node's own origin, `http.allowed_hosts`). Origins named in the list are always allowed.

use super::request::Request;
use super::response::Response;
use super::shard::HttpShard;
use crate::config::CorsConfig;

/// The methods and headers a page may use, as preflights are answered.
const METHODS: &str = "GET, HEAD, PUT, POST, PATCH, DELETE, OPTIONS";
const HEADERS: &str = "Accept, Authorization, Content-Type, If-Match, If-None-Match, Last-Event-ID";
/// The answer headers a page's script may read besides the basic ones.
const EXPOSED: &str = "ETag, Location, Retry-After, WWW-Authenticate, X-Records-Deleted";

/// `[http.cors]`, ready for matching.
#[derive(Debug, Clone)]
pub struct Cors {
    enabled: bool,
    any: bool,
    /// Named origins, lowercase.
    named: Vec<String>,
    credentials: bool,
    max_age_secs: u32,
}

/// Whom an answer allows: every origin (`*`), or the one that asked (echoed, `Vary: Origin`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    Any,
    Origin(String, bool),
}

impl Cors {
    pub fn new(cfg: &CorsConfig) -> Cors {
        Cors {
            enabled: cfg.enabled,
            any: cfg.origins.iter().any(|o| o == "*"),
            named: cfg
                .origins
                .iter()
                .filter(|o| *o != "*")
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
            credentials: cfg.credentials,
            max_age_secs: cfg.max_age_secs,
        }
    }

    /// Whether pages of `origin` may read answers. `open_node`: the node has no users;
    /// `trusted`: whether `origin` is loopback, the node's own or an allowed host's.
    pub fn allows(
        &self,
        origin: &str,
        open_node: bool,
        trusted: impl Fn() -> bool,
    ) -> Option<Allowed> {
        if !self.enabled {
            return None;
        }
        let named = self
            .named
            .iter()
            .any(|n| n.eq_ignore_ascii_case(origin.trim_end_matches('/')));
        if named {
            return Some(Allowed::Origin(origin.to_string(), self.credentials));
        }
        match (self.any, open_node) {
            (true, false) => Some(Allowed::Any),
            (true, true) if trusted() => Some(Allowed::Origin(origin.to_string(), false)),
            _ => None,
        }
    }

    /// The answer to a preflight from an allowed origin.
    pub fn preflight(&self) -> Response {
        let mut r = Response::new(204);
        r.extra
            .push(format!("Access-Control-Allow-Methods: {METHODS}"));
        r.extra
            .push(format!("Access-Control-Allow-Headers: {HEADERS}"));
        r.extra
            .push(format!("Access-Control-Max-Age: {}", self.max_age_secs));
        r.extra.push(format!("Allow: {METHODS}"));
        r
    }
}

impl Allowed {
    /// Appends this answer's CORS header lines (each ending in CRLF).
    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Allowed::Any => out.extend_from_slice(b"Access-Control-Allow-Origin: *\r\n"),
            Allowed::Origin(o, credentials) => {
                out.extend_from_slice(b"Access-Control-Allow-Origin: ");
                out.extend_from_slice(o.as_bytes());
                out.extend_from_slice(b"\r\nVary: Origin\r\n");
                if *credentials {
                    out.extend_from_slice(b"Access-Control-Allow-Credentials: true\r\n");
                }
            }
        }
        out.extend_from_slice(b"Access-Control-Expose-Headers: ");
        out.extend_from_slice(EXPOSED.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// Who the answer to `req` allows, if it came from a page of another origin that may read it.
pub fn allowed(shard: &HttpShard, req: &Request<'_>) -> Option<Allowed> {
    let origin = req.origin?;
    let open = !shard.security.auth_required();
    shard
        .cors
        .allows(origin, open, || shard.hosts.origin(origin, req.host))
}

/// A preflight: `OPTIONS` that names the method the page wants to use.
pub fn is_preflight(req: &Request<'_>) -> bool {
    req.method == super::request::Method::Options && req.cors_request_method
}

/// The answer to any `OPTIONS` that is not an allowed preflight: what the path allows.
pub fn options() -> Response {
    let mut r = Response::new(204);
    r.extra.push(format!("Allow: {METHODS}"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(origins: &[&str], credentials: bool) -> Cors {
        Cors::new(&CorsConfig {
            enabled: true,
            origins: origins.iter().map(|s| s.to_string()).collect(),
            credentials,
            max_age_secs: 60,
        })
    }

    #[test]
    fn any_origin_is_allowed_on_a_node_with_users() {
        let c = cors(&["*"], false);
        assert_eq!(
            c.allows("https://evil.test", false, || false),
            Some(Allowed::Any)
        );
    }

    #[test]
    fn an_open_node_answers_only_trusted_origins_for_star() {
        let c = cors(&["*"], false);
        assert_eq!(c.allows("https://evil.test", true, || false), None);
        assert_eq!(
            c.allows("http://localhost:3000", true, || true),
            Some(Allowed::Origin("http://localhost:3000".into(), false))
        );
    }

    #[test]
    fn named_origins_are_echoed_with_credentials_when_configured() {
        let c = cors(&["https://App.example.com"], true);
        assert_eq!(
            c.allows("https://app.example.com", true, || false),
            Some(Allowed::Origin("https://app.example.com".into(), true))
        );
        assert_eq!(c.allows("https://other.example.com", false, || true), None);
        let mut out = Vec::new();
        Allowed::Origin("https://app.example.com".into(), true).write(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("Access-Control-Allow-Credentials: true\r\n"),
            "{text}"
        );
        assert!(text.contains("Vary: Origin\r\n"), "{text}");
    }

    #[test]
    fn disabled_cors_allows_nobody() {
        let mut c = cors(&["*"], false);
        c.enabled = false;
        assert_eq!(c.allows("http://localhost", false, || true), None);
    }
}
