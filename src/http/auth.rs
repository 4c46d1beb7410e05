//! Who may do what over HTTP. While the node has no users every request passes (the node
//! then listens on loopback only: `security::bootstrap`). Once a user exists every request
//! but `/health`, `/auth/login`, `/auth/refresh`, MQTT over WebSocket (whose CONNECT
//! authenticates), static files and CORS preflights (answered before this) needs Basic credentials or a bearer token (401 with `WWW-Authenticate`
//! otherwise), and the permission its path and method need (403 otherwise):
//!
//! - `/admin/*` (the admin page too), `/cluster/*`: the super-user; `/status`, `/metrics` and
//!   components' routes: any user (a component checks finer permissions itself with
//!   `Request::can`); `/openapi`: any user, who sees the tables they may read
//! - tables: GET / HEAD (records, queries, the description, SSE and WebSocket streams) read;
//!   POST insert; PATCH update; DELETE delete; PUT insert when the record does not exist and
//!   update when it does (as the record is when the request arrives)
//!
//! On HTTPS with `tls.client_ca_file`, a request without credentials authenticates as the
//! user its connection's verified client certificate names (the certificate's common name).
//!
//! Also `POST /auth/login` and `POST /auth/refresh`, which hand out bearer tokens.

#![allow(clippy::result_large_err)] // like the REST handlers: the error is the ready response

use super::problem::problem;
use super::request::{Method, Request};
use super::response::Response;
use super::router::{not_allowed, percent_decode};
use super::shard::HttpShard;
use crate::runtime::records;
use crate::security::{AuthError, Principal, TableOp};
use std::borrow::Cow;
use std::rc::Rc;
use std::sync::Arc;

/// The header of every 401.
const CHALLENGE: &str = "WWW-Authenticate: Basic realm=\"microlith\", Bearer";

/// What a request needs beyond authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Need<'a> {
    Authenticated,
    SuperUser,
    Table(Cow<'a, str>, TableOp),
    /// A PUT: insert or update, depending on whether record `.1` of table `.0` exists.
    Put(Cow<'a, str>, Cow<'a, str>),
}

/// Paths anyone may call.
fn open(req: &Request<'_>) -> bool {
    match req.path {
        "/health" | "/auth/login" | "/auth/refresh" => true,
        "/mqtt" => req.upgrade.is_some(),
        _ => false,
    }
}

/// A static file (public) that no component's route takes first.
fn static_file(shard: &HttpShard, req: &Request<'_>) -> bool {
    shard.statics.serves(req) && !super::component::serves(shard, req.path)
}

/// Lets `req` through, with `req.user` set, or answers the refusal. `certified`: the user
/// the connection's verified client certificate names, used when the request carries no
/// credentials of its own.
pub async fn admit(
    shard: &Rc<HttpShard>,
    req: &mut Request<'_>,
    certified: Option<&str>,
) -> Result<(), Response> {
    if open(req) || static_file(shard, req) || !shard.security.auth_required() {
        return Ok(());
    }
    let security = &shard.security;
    let user = match (req.authorization, certified) {
        (Some(credentials), _) => security.authenticate_header(credentials).await,
        (None, Some(name)) => security.authenticate_certificate(name).map_err(|_| {
            AuthError::Unauthorized(format!(
                "the client certificate names {name:?}, who is not a user"
            ))
        }),
        (None, None) => return Err(unauthorized("credentials required (Basic or Bearer)")),
    }
    .map_err(refusal)?;
    if let Some(too_many) = super::admit::user(shard, &user.name) {
        return Err(too_many);
    }
    let need = need(shard, req);
    permit(shard, &user, &need)?;
    req.user = Some(user);
    Ok(())
}

/// The answer to a failed authentication.
pub fn refusal(e: AuthError) -> Response {
    match e {
        AuthError::Unauthorized(why) => unauthorized(&why),
        AuthError::Busy => {
            let mut r = problem(503, "too many password checks at once; retry shortly");
            r.retry_after = Some(1);
            r
        }
        AuthError::Internal(m) => problem(500, &m),
    }
}

fn unauthorized(why: &str) -> Response {
    let mut r = problem(401, why);
    r.extra.push(CHALLENGE.to_string());
    r
}

fn forbidden(user: &Principal, what: &str) -> Response {
    problem(
        403,
        &format!(
            "user {:?} (roles {:?}) may not {what}",
            user.name, user.roles
        ),
    )
}

/// What the path and method of `req` need.
fn need<'a>(shard: &HttpShard, req: &Request<'a>) -> Need<'a> {
    let path = req.path;
    let under = |root: &str| {
        path.strip_prefix(root)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    };
    if under("/admin") || under("/cluster") {
        return Need::SuperUser;
    }
    if matches!(path, "/status" | "/metrics" | "/openapi") || super::component::serves(shard, path)
    {
        return Need::Authenticated;
    }
    let (table_raw, rest) = match path[1..].split_once('/') {
        Some((t, r)) => (t, Some(r)),
        None => (&path[1..], None),
    };
    let Some(table) = percent_decode(table_raw).filter(|t| !t.is_empty()) else {
        return Need::Authenticated;
    };
    let op = match (rest, req.method) {
        (_, Method::Get | Method::Head) | (None, _) => TableOp::Read,
        (Some(""), Method::Post) => TableOp::Insert,
        (Some(""), Method::Delete) | (Some(_), Method::Delete) => TableOp::Delete,
        (Some(id), Method::Put) if !id.is_empty() => match percent_decode(id) {
            Some(id) => return Need::Put(table, id),
            None => return Need::Authenticated,
        },
        (Some(id), Method::Patch) if !id.is_empty() => TableOp::Update,
        _ => return Need::Authenticated,
    };
    Need::Table(table, op)
}

/// Checks that `user` has what `need` asks.
fn permit(shard: &HttpShard, user: &Principal, need: &Need) -> Result<(), Response> {
    let (table, op) = match need {
        Need::Authenticated => return Ok(()),
        Need::SuperUser if user.is_super_user() => return Ok(()),
        Need::SuperUser => return Err(forbidden(user, "use /admin or /cluster (super_user only)")),
        Need::Table(table, op) => (table, *op),
        Need::Put(table, _)
            if !user.can(table, TableOp::Insert) && !user.can(table, TableOp::Update) =>
        {
            return Err(forbidden(
                user,
                &format!("insert or update table {table:?}"),
            ))
        }
        Need::Put(table, id) => (table, put_op(shard, user, table, id)),
    };
    if user.can(table, op) {
        return Ok(());
    }
    Err(forbidden(user, &format!("{} table {table:?}", op.as_str())))
}

/// What a PUT of record `id` amounts to: update if it exists, insert if not (looked up only
/// when the user may do one and not the other).
fn put_op(shard: &HttpShard, user: &Principal, table: &str, id: &str) -> TableOp {
    if user.can(table, TableOp::Insert) && user.can(table, TableOp::Update) {
        return TableOp::Update;
    }
    match shard.table(table) {
        Some(def) if records::version_of(shard, &def, id).is_some() => TableOp::Update,
        _ => TableOp::Insert,
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    username: String,
    password: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Refresh {
    refresh_token: String,
}

/// `POST /auth/login` `{"username","password"}` and `POST /auth/refresh` `{"refresh_token"}`:
/// `{"access_token","refresh_token","token_type","expires_in"}`.
pub async fn tokens(shard: &Rc<HttpShard>, req: &Request<'_>) -> Response {
    if req.method != Method::Post {
        return not_allowed(req.method, "POST");
    }
    let sec = &shard.security;
    let result = if req.path == "/auth/login" {
        match serde_json::from_slice::<Login>(req.body) {
            Ok(l) => sec.login(&l.username, l.password.as_bytes()).await,
            Err(e) => return problem(400, &format!("expected {{\"username\",\"password\"}}: {e}")),
        }
    } else {
        match serde_json::from_slice::<Refresh>(req.body) {
            Ok(r) => sec.refresh(&r.refresh_token).await,
            Err(e) => return problem(400, &format!("expected {{\"refresh_token\"}}: {e}")),
        }
    };
    match result {
        Ok(tokens) => {
            let mut r = Response::json(200, serde_json::to_vec(&tokens).unwrap_or_default());
            r.extra.push("Cache-Control: no-store".into());
            r
        }
        Err(e) => refusal(e),
    }
}

/// Whether the user of `req` (if the node authenticates) may read `table`: for streams a
/// component opens on a table.
pub fn may_read(req: &Request<'_>, table: &str) -> Result<(), Response> {
    match &req.user {
        Some(u) if !u.can(table, TableOp::Read) => {
            Err(forbidden(u, &format!("read table {table:?}")))
        }
        _ => Ok(()),
    }
}

/// The principal of a request, for components.
pub fn user_of(req: &Request<'_>) -> Option<Arc<Principal>> {
    req.user.clone()
}
