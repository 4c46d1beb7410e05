//! Helpers for tests of authentication: credentials headers, requests as a user, accounts
//! made through `/admin/users` and `/admin/roles`, and `microlith user add` on a data dir.

use super::*;
use base64::Engine;
use serde_json::{json, Value};

/// The super-user every helper creates first.
pub const ADMIN: (&str, &str) = ("admin", "admin-password");

/// `Basic base64(user:password)`.
pub fn basic(user: &str, password: &str) -> String {
    let raw = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

/// A request with an `Authorization` header (or none).
pub fn call(
    a: &ureq::Agent,
    method: &str,
    url: &str,
    body: Option<&str>,
    authorization: Option<&str>,
) -> Resp {
    match authorization {
        Some(v) => send(a, method, url, body, &[("Authorization", v)]),
        None => send(a, method, url, body, &[]),
    }
}

/// A request as `user` (Basic).
pub fn as_user(
    a: &ureq::Agent,
    (user, password): (&str, &str),
    method: &str,
    url: &str,
    body: Option<&str>,
) -> Resp {
    call(a, method, url, body, Some(&basic(user, password)))
}

/// A request as the super-user.
pub fn as_admin(a: &ureq::Agent, method: &str, url: &str, body: Option<Value>) -> Resp {
    let body = body.map(|b| b.to_string());
    as_user(a, ADMIN, method, url, body.as_deref())
}

/// Creates the super-user (authentication starts with it) on a node that has no user yet.
pub fn create_admin(a: &ureq::Agent, s: &Server) {
    let body = json!({ "name": ADMIN.0, "password": ADMIN.1, "roles": ["super_user"] });
    let r = send(
        a,
        "POST",
        &s.url("/admin/users"),
        Some(&body.to_string()),
        &[],
    );
    assert_eq!(r.status, 201, "{}", r.body);
}

/// Creates (or replaces) role `name` with these table permissions and topic rules.
pub fn put_role(a: &ureq::Agent, s: &Server, name: &str, tables: Value, topics: Value) {
    let body = json!({ "name": name, "tables": tables, "topics": topics });
    let r = as_admin(
        a,
        "PUT",
        &s.url(&format!("/admin/roles/{name}")),
        Some(body),
    );
    assert!(matches!(r.status, 201 | 204), "{} {}", r.status, r.body);
}

/// Creates user `name` with `password` and `roles`.
pub fn create_user(a: &ureq::Agent, s: &Server, name: &str, password: &str, roles: &[&str]) {
    let body = json!({ "name": name, "password": password, "roles": roles });
    let r = as_admin(a, "POST", &s.url("/admin/users"), Some(body));
    assert_eq!(r.status, 201, "{}", r.body);
}

/// Runs `microlith user add NAME --role ROLE --password-stdin --config CONFIG`; answers the
/// exit status and what it printed (stdout and stderr).
pub fn user_add_offline(
    config: &std::path::Path,
    name: &str,
    role: &str,
    password: &str,
) -> (bool, String) {
    let config = config.to_str().expect("a UTF-8 config path");
    let args = [
        "user",
        "add",
        name,
        "--role",
        role,
        "--password-stdin",
        "--config",
        config,
    ];
    cli(&args, &format!("{password}\n"))
}
