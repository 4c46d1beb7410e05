//! The admin page's files, compiled into the binary: `/admin/` (the page), `/admin/admin.js`,
//! `/admin/admin.css`. `/admin` redirects to `/admin/`; other paths under `/admin/` that no
//! route owns are 404.

use crate::http::problem::problem;
use crate::http::request::{Method, Request};
use crate::http::response::Response;
use crate::http::router::not_allowed;

const INDEX: &str = include_str!("files/index.html");
const SCRIPT: &str = include_str!("files/admin.js");
const STYLE: &str = include_str!("files/admin.css");

/// The file at `req.path`, or `None` for a path outside `/admin`.
pub fn serve(req: &Request<'_>) -> Option<Response> {
    let (body, content_type) = match req.path {
        "/admin" => return Some(redirect()),
        "/admin/" | "/admin/index.html" => (INDEX, "text/html; charset=utf-8"),
        "/admin/admin.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        "/admin/admin.css" => (STYLE, "text/css; charset=utf-8"),
        p if p.starts_with("/admin/") => {
            return Some(problem(404, &format!("no admin resource at {p}")))
        }
        _ => return None,
    };
    if !matches!(req.method, Method::Get | Method::Head) {
        return Some(not_allowed(req.method, "GET, HEAD"));
    }
    let mut r = Response::json(200, body.as_bytes().to_vec());
    r.content_type = content_type.into();
    r.extra.extend([
        "Cache-Control: no-cache".to_string(),
        "X-Content-Type-Options: nosniff".to_string(),
        "Content-Security-Policy: default-src 'self'; img-src 'self' data:".to_string(),
    ]);
    Some(r)
}

fn redirect() -> Response {
    let mut r = Response::new(308);
    r.location = Some("/admin/".into());
    r
}
