//! `/admin/users` and `/admin/roles` (super-user only, like all of `/admin`): list (GET),
//! create (POST), read (GET `/{name}`), change (PUT `/{name}`), delete (DELETE `/{name}`).
//! A user is `{"name","password","roles"}` in and `{"name","roles"}` out: a password or its
//! hash is never returned. A role is `{"name","super_user","tables","topics"}`.

#![allow(clippy::result_large_err)] // like the REST handlers: the error is the ready response

use super::problem::problem;
use super::request::{Method, Request};
use super::response::Response;
use super::router::{not_allowed, percent_decode};
use super::shard::HttpShard;
use crate::security::store::{self, StoreResult};
use crate::security::Role;
use std::rc::Rc;

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    name: String,
    password: String,
    #[serde(default)]
    roles: Vec<String>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UserChange {
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    roles: Option<Vec<String>>,
}

fn json<T: serde::Serialize>(status: u16, value: &T) -> Response {
    Response::json(status, serde_json::to_vec(value).unwrap_or_default())
}

fn parse<'a, T: serde::Deserialize<'a>>(req: &Request<'a>, shape: &str) -> Result<T, Response> {
    serde_json::from_slice(req.body).map_err(|e| problem(400, &format!("expected {shape}: {e}")))
}

fn done(result: StoreResult<()>, status: u16) -> Response {
    match result {
        Ok(()) => Response::new(status),
        Err((s, m)) => problem(s, &m),
    }
}

/// The name after the collection's path (`""` for the collection itself).
fn name_of<'a>(rest: &'a str) -> Result<std::borrow::Cow<'a, str>, Response> {
    percent_decode(rest.trim_start_matches('/')).ok_or_else(|| problem(400, "bad percent-encoding"))
}

/// `/admin/users…`; `rest` is what follows `/admin/users`.
pub async fn users(shard: &Rc<HttpShard>, req: &Request<'_>, rest: &str) -> Response {
    let name = match name_of(rest) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let sec = &shard.security;
    let dir = sec.directory();
    let view = |n: &str, roles: &[String]| serde_json::json!({ "name": n, "roles": roles });
    match (req.method, name.is_empty()) {
        (Method::Get | Method::Head, true) => {
            let list: Vec<_> = dir.users().into_iter().map(|(n, r)| view(n, r)).collect();
            json(200, &list)
        }
        (Method::Post, true) => match parse::<NewUser>(req, "{\"name\",\"password\",\"roles\"}") {
            Ok(u) => {
                let created = store::create_user(
                    sec.shard(),
                    &dir,
                    &u.name,
                    u.password.into_bytes(),
                    u.roles.clone(),
                )
                .await;
                match created {
                    Ok(()) => {
                        let mut r = json(201, &view(&u.name, &u.roles));
                        r.location = Some(format!("/admin/users/{}", u.name));
                        r
                    }
                    Err((s, m)) => problem(s, &m),
                }
            }
            Err(r) => r,
        },
        (Method::Get | Method::Head, false) => match dir.user(&name) {
            Some(u) => json(200, &view(&name, &u.record.roles)),
            None => problem(404, &format!("user {name:?} does not exist")),
        },
        (Method::Put | Method::Patch, false) => {
            match parse::<UserChange>(req, "{\"password\"?,\"roles\"?}") {
                Ok(c) => {
                    let password = c.password.map(String::into_bytes);
                    done(
                        store::update_user(sec.shard(), &dir, &name, password, c.roles).await,
                        204,
                    )
                }
                Err(r) => r,
            }
        }
        (Method::Delete, false) => done(store::delete_user(sec.shard(), &name).await, 204),
        (m, true) => not_allowed(m, "GET, HEAD, POST"),
        (m, false) => not_allowed(m, "GET, HEAD, PUT, PATCH, DELETE"),
    }
}

/// `/admin/roles…`; `rest` is what follows `/admin/roles`.
pub async fn roles(shard: &Rc<HttpShard>, req: &Request<'_>, rest: &str) -> Response {
    let name = match name_of(rest) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let sec = &shard.security;
    let dir = sec.directory();
    let shape = "{\"name\",\"super_user\",\"tables\",\"topics\"}";
    match (req.method, name.is_empty()) {
        (Method::Get | Method::Head, true) => {
            let mut list: Vec<Role> = vec![Role::super_user()];
            list.extend(dir.roles().into_values().cloned());
            json(200, &list)
        }
        (Method::Post, true) => match parse::<Role>(req, shape) {
            Ok(role) => match store::put_role(sec.shard(), &dir, &role, true).await {
                Ok(_) => {
                    let mut r = json(201, &role);
                    r.location = Some(format!("/admin/roles/{}", role.name));
                    r
                }
                Err((s, m)) => problem(s, &m),
            },
            Err(r) => r,
        },
        (Method::Get | Method::Head, false) => match dir.role(&name) {
            Some(role) => json(200, role.as_ref()),
            None => problem(404, &format!("role {name:?} does not exist")),
        },
        (Method::Put, false) => match parse::<Role>(req, shape) {
            Ok(role) if role.name != name => problem(
                400,
                &format!("the body names role {:?} but the path {name:?}", role.name),
            ),
            Ok(role) => match store::put_role(sec.shard(), &dir, &role, false).await {
                Ok(true) => json(201, &role),
                Ok(false) => Response::new(204),
                Err((s, m)) => problem(s, &m),
            },
            Err(r) => r,
        },
        (Method::Delete, false) => done(store::delete_role(sec.shard(), &dir, &name).await, 204),
        (m, true) => not_allowed(m, "GET, HEAD, POST"),
        (m, false) => not_allowed(m, "GET, HEAD, PUT, DELETE"),
    }
}
