//! The shop component (`examples/shop`) under test: a server with `[components.shop]`,
//! seeded and ready, and small readers for its pages, counters and HTML attributes.

use super::{agent, get, Server};
use serde_json::Value;
use std::time::{Duration, Instant};

/// A server with the shop on (and `extra` config), once it has seeded and is ready.
pub fn start(extra: &str) -> Server {
    let s = Server::start(&format!("[components.shop]\n{extra}\n"));
    wait_until("the shop is ready", Duration::from_secs(60), || {
        stats(&s)["phase"] == "ready"
    });
    s
}

/// `/shop/api/stats`.
pub fn stats(s: &Server) -> Value {
    get(&agent(), &s.url("/shop/api/stats")).json()
}

/// One counter of `/shop/api/stats`: `counter("renders", "pdp")`.
pub fn counter(s: &Server, group: &str, kind: &str) -> u64 {
    stats(s)[group][kind].as_u64().unwrap_or(0)
}

/// A page's JSON; panics unless it is 200.
pub fn json(s: &Server, path: &str) -> Value {
    let r = get(&agent(), &s.url(path));
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    assert_eq!(
        r.content_type.as_deref(),
        Some("application/json"),
        "{path}"
    );
    r.json()
}

/// A page's HTML; panics unless it is 200 HTML.
pub fn html(s: &Server, path: &str) -> String {
    let r = get(&agent(), &s.url(path));
    assert_eq!(r.status, 200, "GET {path}: {}", r.body);
    let ct = r.content_type.unwrap_or_default();
    assert!(ct.starts_with("text/html"), "GET {path}: {ct}");
    r.body
}

/// The `data-price-cents` and `data-stock` of the element with `data-id="{id}"`.
pub fn live_attributes(html: &str, id: &str) -> (i64, i64) {
    let at = html
        .find(&format!("data-id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element for {id}"));
    let tag = &html[at..at + html[at..].find('>').unwrap()];
    let attr = |name: &str| -> i64 {
        let from = tag.find(&format!("{name}=\"")).expect(name) + name.len() + 2;
        tag[from..from + tag[from..].find('"').unwrap()]
            .parse()
            .unwrap()
    };
    (attr("data-price-cents"), attr("data-stock"))
}

/// The product of a listing (`products` or `featured`) with this id.
pub fn listed<'a>(list: &'a Value, id: &str) -> &'a Value {
    list.as_array()
        .and_then(|a| a.iter().find(|p| p["id"] == id))
        .unwrap_or_else(|| panic!("{id} not listed"))
}

/// Polls `ok` until it holds; panics after `wait`.
pub fn wait_until(what: &str, wait: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + wait;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
