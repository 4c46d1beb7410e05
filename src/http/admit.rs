//! What a request must pass before it is routed, cheapest first: its address's request rate
//! (429 with `Retry-After`), a `Host` that names this node (421), an `Origin` this node allows
//! on a WebSocket upgrade (403), and, on a state-changing method, a body declared as JSON,
//! CBOR or MessagePack (415) — the body types a web page can send without a CORS preflight (none, `text/plain`,
//! forms) are what a cross-site page would use to write to a node it can reach.

use super::problem::problem;
use super::request::{Method, Request};
use super::response::Response;
use super::shard::HttpShard;
use crate::security::limits::{bump, Client, Key, Refused};

/// The answer that refuses `req`, or `None` to serve it.
pub fn check(shard: &HttpShard, client: &Client, req: &Request<'_>) -> Option<Response> {
    if let Err(r) = shard.limits.admit(Key::Ip(client)) {
        return Some(too_many(
            r,
            "too many requests from this address (`limits.http_requests_per_sec`)",
        ));
    }
    let stats = shard.limits.stats();
    if let Some(host) = req.host {
        if !shard.hosts.host(host) {
            bump(&stats.hosts_refused);
            return Some(problem(
                421,
                &format!("this node does not serve host {host:?}; add it to `http.allowed_hosts`"),
            ));
        }
    }
    let websocket = req
        .upgrade
        .is_some_and(|u| u.eq_ignore_ascii_case("websocket"));
    if let (true, Some(origin)) = (websocket, req.origin) {
        if !shard.hosts.origin(origin, req.host) {
            bump(&stats.origins_refused);
            return Some(problem(
                403,
                &format!("WebSockets from pages of {origin:?} are not allowed; add its host to `http.allowed_hosts`"),
            ));
        }
    }
    if needs_json(req) && !is_body_type(req.content_type) {
        bump(&stats.content_types_refused);
        return Some(problem(
            415,
            &format!(
                "a {} needs a body of one of the types {} (Content-Type {:?})",
                req.method.as_str(),
                super::negotiate::BODY_TYPES,
                req.content_type.unwrap_or("missing")
            ),
        ));
    }
    None
}

/// The per-user limit: for code that knows the user behind a request (after it
/// authenticated), the answer refusing it, or `None` to serve it.
pub fn user(shard: &HttpShard, name: &str) -> Option<Response> {
    shard.limits.admit(Key::User(name)).err().map(|r| {
        too_many(
            r,
            "too many requests from this user (`limits.user_requests_per_sec`)",
        )
    })
}

/// 429 with the seconds until a token is there.
fn too_many(r: Refused, detail: &str) -> Response {
    let secs = r.retry_after_secs();
    let mut resp = problem(429, &format!("{detail}; retry in {secs} s"));
    resp.retry_after = Some(secs);
    resp
}

/// POST, PUT and PATCH always (even empty: a page can POST nothing to a route that acts on
/// it); DELETE when it carries a body.
fn needs_json(req: &Request<'_>) -> bool {
    match req.method {
        Method::Post | Method::Put | Method::Patch => true,
        Method::Delete => !req.body.is_empty(),
        _ => false,
    }
}

/// `application/json` or any `+json` type, CBOR or MessagePack, parameters ignored: none
/// of them can be sent by a page without a CORS preflight.
pub fn is_body_type(content_type: Option<&str>) -> bool {
    content_type.is_some() && super::negotiate::body_format(content_type).is_some()
}

#[cfg(test)]
mod tests {
    use super::is_body_type;

    #[test]
    fn body_types_are_accepted_and_what_a_page_sends_unasked_is_not() {
        for ok in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/merge-patch+json",
            "application/problem+json",
            "application/cbor",
            "application/x-msgpack",
            "application/msgpack",
        ] {
            assert!(is_body_type(Some(ok)), "{ok}");
        }
        for bad in [
            "text/plain",
            "text/plain; charset=utf-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "",
            "+json",
            "json",
        ] {
            assert!(!is_body_type(Some(bad)), "{bad}");
        }
        assert!(!is_body_type(None));
    }
}
