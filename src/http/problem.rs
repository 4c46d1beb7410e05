//! Error responses as RFC 9457 problem documents (`application/problem+json`).

use super::response::Response;

/// Writes a problem response with `status` and a human-readable `detail`.
pub fn problem(status: u16, detail: &str) -> Response {
    let body = serde_json::json!({
        "type": "about:blank",
        "title": super::response::reason(status),
        "status": status,
        "detail": detail,
    });
    let mut r = Response::new(status);
    r.content_type = "application/problem+json".into();
    r.body = serde_json::to_vec(&body).unwrap_or_default();
    r
}
