//! `GET /{Table}/{id}` of a caching table: the request's `Cache-Control` directives, the read
//! through the caching table (which may fetch from the origin), and the answer, sent like any
//! record (ETag, `If-None-Match`, the table's wrapper). Other methods on a caching table are
//! plain table operations.

use super::component::Wrapped;
use super::problem::problem;
use super::request::Request;
use super::response::Response;
use super::shard::HttpShard;
use crate::app::{self, CacheControl};
use crate::storage::catalog::TableDef;
use std::rc::Rc;

/// The answer to a read of record `id` if `def` is a caching table; `None` otherwise.
pub async fn get(
    shard: &Rc<HttpShard>,
    def: &TableDef,
    id: &str,
    req: &Request<'_>,
    wrapped: Option<&Wrapped>,
) -> Option<Response> {
    let cache = shard.app.caches.node.find(&def.name)?;
    let cc = CacheControl::parse(&header(req.head, "cache-control"));
    Some(match app::cache::read(&shard.app, cache, id, &cc).await {
        Ok(Some(rec)) => super::rest::send_record(rec.version(), rec.body(), req, wrapped),
        Ok(None) => problem(404, &format!("no record {id:?} in table {:?}", def.name)),
        Err(e) => {
            let mut r = problem(e.status, &e.message);
            r.retry_after = e.retry_after;
            r
        }
    })
}

/// Every value of header `name` in a request head, joined with `, `.
fn header(head: &[u8], name: &str) -> String {
    let text = String::from_utf8_lossy(head);
    let values: Vec<&str> = text
        .split("\r\n")
        .skip(1)
        .filter_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
        .collect();
    values.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cache_control_header_is_read() {
        let head = b"GET /T/1 HTTP/1.1\r\nHost: x\r\ncache-control: no-cache\r\nCache-Control: max-age=5\r\n\r\n";
        assert_eq!(header(head, "cache-control"), "no-cache, max-age=5");
        assert_eq!(header(head, "accept"), "");
    }
}
