//! Components and authentication (a node in this process, `app::testing::TestNode`): a
//! handler sees the authenticated user and checks its permissions with `Request::can`; with no
//! users it sees none and every check passes; a component's route needs a user once users
//! exist; a stream a component opens on a table needs read on that table.

mod common;
use common::auth::basic;
use common::{agent, send};
use microlith::app::testing::TestNode;
use microlith::app::{Component, Ctx, Error, Request, Response, Setup, TableOp};
use serde_json::json;
use std::sync::Arc;

struct WhoAmI;

async fn whoami(_ctx: Ctx, req: Request) -> Result<Response, Error> {
    let user = req
        .user()
        .map(|u| json!({ "name": u.name, "roles": u.roles }));
    let body = json!({
        "user": user,
        "can_read": req.can("Product", TableOp::Read),
        "can_delete": req.can("Product", TableOp::Delete),
    });
    Response::json(200, &body)
}

async fn follow(_ctx: Ctx, _req: Request) -> Result<Response, Error> {
    Ok(Response::stream("Secret", None))
}

impl Component for WhoAmI {
    fn name(&self) -> &'static str {
        "whoami"
    }

    fn setup(&self, s: &mut Setup<'_>) -> Result<(), String> {
        s.table("Product", "id", &[]);
        s.table("Secret", "id", &[]);
        s.get("/whoami", whoami)?;
        s.get("/follow-secret", follow)?;
        Ok(())
    }
}

fn post(a: &ureq::Agent, n: &TestNode, path: &str, body: serde_json::Value, auth: &str) -> u16 {
    let headers: Vec<(&str, &str)> = match auth {
        "" => vec![],
        v => vec![("Authorization", v)],
    };
    send(a, "POST", &n.url(path), Some(&body.to_string()), &headers).status
}

#[test]
fn a_handler_sees_the_user_and_checks_its_permissions() {
    let n = TestNode::start(vec![Arc::new(WhoAmI)], "[components.whoami]\n").unwrap();
    let a = agent();
    let open = send(&a, "GET", &n.url("/whoami"), None, &[]).json();
    assert_eq!(
        open,
        json!({"user": null, "can_read": true, "can_delete": true})
    );

    let admin = basic("admin", "admin-password");
    let body = json!({"name": "admin", "password": "admin-password", "roles": ["super_user"]});
    assert_eq!(post(&a, &n, "/admin/users", body, ""), 201);
    let role = json!({"name": "reader", "tables": {"Product": {"read": true}}});
    assert_eq!(post(&a, &n, "/admin/roles", role, &admin), 201);
    let body = json!({"name": "ann", "password": "ann-password", "roles": ["reader"]});
    assert_eq!(post(&a, &n, "/admin/users", body, &admin), 201);

    assert_eq!(send(&a, "GET", &n.url("/whoami"), None, &[]).status, 401);
    let ann = basic("ann", "ann-password");
    let seen = send(
        &a,
        "GET",
        &n.url("/whoami"),
        None,
        &[("Authorization", &ann)],
    )
    .json();
    let want = json!({"user": {"name": "ann", "roles": ["reader"]}, "can_read": true, "can_delete": false});
    assert_eq!(seen, want);
    let headers = [
        ("Authorization", ann.as_str()),
        ("Accept", "text/event-stream"),
    ];
    let r = send(&a, "GET", &n.url("/follow-secret"), None, &headers);
    assert_eq!(r.status, 403, "{}", r.body);
    n.stop().unwrap();
}
