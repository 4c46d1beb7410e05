//! A request as a component handler sees it: method, path and its parameters (from the
//! route's pattern), the query string (parsed on demand by the same Harper query parser REST
//! uses), headers, the body, and the authenticated user. Owned, so a handler may keep it
//! across awaits.

use super::Error;
use crate::query::{self, Query};
use crate::security::{Principal, TableOp};
use std::sync::Arc;

/// The methods a component route serves (HEAD is served by the GET route, without a body).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Head,
    Put,
    Post,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Put => "PUT",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

pub struct Request {
    pub method: Method,
    /// The path, percent-encoded as it came.
    pub path: String,
    /// The raw query string (after `?`), if any.
    pub query_string: Option<String>,
    /// Parameters of the route's pattern, in pattern order, decoded.
    pub params: Vec<(String, String)>,
    /// The request line and headers, as received (read by `header`).
    head: Vec<u8>,
    pub body: Vec<u8>,
    /// The authenticated user; `None` while the node has no users (no authentication).
    user: Option<Arc<Principal>>,
}

impl Request {
    pub(crate) fn new(
        method: Method,
        path: &str,
        query_string: Option<&str>,
        params: Vec<(String, String)>,
        head: &[u8],
        body: &[u8],
        user: Option<Arc<Principal>>,
    ) -> Request {
        Request {
            method,
            path: path.to_string(),
            query_string: query_string.map(str::to_string),
            params,
            head: head.to_vec(),
            body: body.to_vec(),
            user,
        }
    }

    /// Who sent the request (name, roles, permission checks); `None` while the node has no
    /// users, when requests are not authenticated.
    pub fn user(&self) -> Option<&Principal> {
        self.user.as_deref()
    }

    /// Whether the sender may do `op` on `table` (always, while the node has no users).
    /// The node checked only that the sender is a user: a handler that reads or writes
    /// tables on a user's behalf asks this first.
    pub fn can(&self, table: &str, op: TableOp) -> bool {
        self.user.as_ref().is_none_or(|u| u.can(table, op))
    }

    /// A parameter of the route's pattern (`:id` → `param("id")`).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A parameter that the pattern guarantees, or 400.
    pub fn required(&self, name: &str) -> Result<&str, Error> {
        self.param(name)
            .ok_or_else(|| Error::bad_request(format!("missing path parameter {name:?}")))
    }

    /// The first header of that name (case-insensitive), if it is UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        let text = std::str::from_utf8(&self.head).ok()?;
        text.split("\r\n").skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The query string parsed as a Harper query (`attr=value&sort(-price)&limit(10)`).
    pub fn query(&self) -> Result<Query, Error> {
        query::parse(self.query_string.as_deref().unwrap_or(""))
            .map_err(|e| Error::bad_request(e.to_string()))
    }

    /// The body parsed as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        if self.body.is_empty() {
            return Err(Error::bad_request("a JSON body is required"));
        }
        Ok(serde_json::from_slice(&self.body)?)
    }
}
