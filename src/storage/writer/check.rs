//! Checks a local write must pass before it is stored, installed on every writer by the
//! composition root and implemented above storage (components' validators). A check runs on
//! the writer thread, in the writer's order, after the precondition and the operation are
//! decided: it sees exactly the live document the write replaces (the group's and the atomic
//! batch's earlier writes included) and the document it would store, may change that
//! document, or refuse the write with a status and a message. Changes replicated from other
//! nodes are not checked: they were checked where they were made.
//!
//! Tables no check covers pay one `covers` call. A check that panics is refused with 500 and
//! logged; the writer thread keeps running.

use super::{WriteOutcome, Writer};
use crate::storage::catalog::TableDef;
use serde_json::{Map, Value};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

/// A JSON object, as checks see documents.
pub type Object = Map<String, Value>;

/// Why a check refused a write: the status and message the writer's caller answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub message: String,
}

/// A check of local writes. Runs on a writer thread: keep it short, and do no I/O.
pub trait WriteCheck: Send + Sync + 'static {
    /// Whether writes of `table` are checked at all (called for every local write: cheap).
    fn covers(&self, table: &str) -> bool;

    /// Checks a local write of record `id`: `before` is the live document, `after` the one
    /// to store (`None` for a delete), which the check may change.
    fn check(
        &self,
        table: &TableDef,
        id: &str,
        before: Option<&Object>,
        after: Option<&mut Object>,
    ) -> Result<(), Refusal>;
}

impl Writer {
    /// Installs the check every local write of this writer must pass.
    pub fn with_check(mut self, check: Option<Arc<dyn WriteCheck>>) -> Writer {
        self.check = check;
        self
    }

    /// Runs the installed check over a decided write: the body to store (changed or not) or
    /// the refusal. `live` is the live document, `body` the one the operation leaves.
    pub(super) fn checked(
        &self,
        table: &TableDef,
        id: &str,
        live: Option<&[u8]>,
        body: Option<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>, WriteOutcome> {
        let Some(check) = self.check.as_ref().filter(|c| c.covers(&table.name)) else {
            return Ok(body);
        };
        let before = live.map(|b| parse(b, "the stored record")).transpose()?;
        let mut after = body
            .map(|b| parse(&b, "the document to store"))
            .transpose()?;
        let run = || check.check(table, id, before.as_ref(), after.as_mut());
        match std::panic::catch_unwind(AssertUnwindSafe(run)) {
            Ok(Ok(())) => after.map(|d| encode(&d)).transpose(),
            Ok(Err(r)) => Err(WriteOutcome::Rejected {
                status: r.status,
                message: r.message,
            }),
            Err(_) => {
                tracing::error!(shard = self.shard, table = %table.name, id, "a write check panicked; the write is refused");
                Err(WriteOutcome::Rejected {
                    status: 500,
                    message: "the check of this write failed".into(),
                })
            }
        }
    }
}

fn parse(bytes: &[u8], what: &str) -> Result<Object, WriteOutcome> {
    serde_json::from_slice(bytes)
        .map_err(|e| WriteOutcome::Failed(format!("{what} is not a JSON object: {e}")))
}

fn encode(doc: &Object) -> Result<Vec<u8>, WriteOutcome> {
    serde_json::to_vec(doc).map_err(|e| WriteOutcome::Failed(e.to_string()))
}
