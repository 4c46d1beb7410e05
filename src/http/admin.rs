//! `/admin/tables`: list (GET), create (POST `{"name","primary_key","indexes","attributes"}`), describe
//! (GET `/admin/tables/{name}`), drop (DELETE `/admin/tables/{name}`).

use super::problem::problem;
use super::request::{Method, Request};
use super::response::Response;
use super::router::not_allowed;
use super::shard::HttpShard;
use crate::config::TableConfig;
use crate::runtime::mesh::{AdminOp, MeshMsg};
use std::rc::Rc;

pub async fn handle(shard: &Rc<HttpShard>, req: &Request<'_>, rest: &str) -> Response {
    let name = rest.trim_start_matches('/');
    match (req.method, name.is_empty()) {
        (Method::Get | Method::Head, true) => {
            let list: Vec<_> = shard
                .catalog
                .borrow()
                .tables
                .values()
                .map(|t| serde_json::to_value(t.as_ref()).unwrap_or_default())
                .collect();
            Response::json(200, serde_json::to_vec(&list).unwrap_or_default())
        }
        (Method::Post, true) => {
            let t: TableConfig = match serde_json::from_slice(req.body) {
                Ok(t) => t,
                Err(e) => {
                    return problem(
                        400,
                        &format!(
                            "invalid table definition at line {} column {}: {e}",
                            e.line(),
                            e.column()
                        ),
                    )
                }
            };
            let name = t.name.clone();
            match run(
                shard,
                AdminOp::Create {
                    name: t.name,
                    primary_key: t.primary_key,
                    indexes: t.indexes,
                    attributes: t
                        .attributes
                        .into_iter()
                        .map(|(n, ty)| (n, String::from(ty)))
                        .collect(),
                },
            )
            .await
            {
                Ok(()) => {
                    let def = shard.table(&name);
                    let mut r = Response::json(
                        201,
                        serde_json::to_vec(&def.as_deref()).unwrap_or_default(),
                    );
                    r.location = Some(format!("/admin/tables/{name}"));
                    r
                }
                Err(r) => r,
            }
        }
        (Method::Get | Method::Head, false) => match shard.table(name) {
            Some(def) => Response::json(200, serde_json::to_vec(def.as_ref()).unwrap_or_default()),
            None => problem(404, &format!("table {name:?} does not exist")),
        },
        (Method::Delete, false) => match run(
            shard,
            AdminOp::Drop {
                name: name.to_string(),
            },
        )
        .await
        {
            Ok(()) => Response::new(204),
            Err(r) => r,
        },
        (m, true) => not_allowed(m, "GET, POST"),
        (m, false) => not_allowed(m, "GET, DELETE"),
    }
}

async fn run(shard: &Rc<HttpShard>, op: AdminOp) -> Result<(), Response> {
    let (reply, wait) = flume::bounded(1);
    shard.node.inboxes[0]
        .send_async(MeshMsg::Admin { op, reply })
        .await
        .map_err(|_| problem(503, "shutting down"))?;
    match wait.recv_async().await {
        Ok(Ok(())) => Ok(()),
        Ok(Err((status, m))) => Err(problem(status, &m)),
        Err(_) => Err(problem(503, "shutting down")),
    }
}
