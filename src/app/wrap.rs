//! A component wrapping a table's own REST resource (`/{Table}/{id}`, `/{Table}/?query`):
//! what readers see (hide or add fields) and what writers may write (check, derive, refuse).
//! It applies to REST only: MQTT table topics and SSE / WebSocket streams carry the stored
//! documents, and a component's own table calls see them unwrapped.

use super::component::Setup;
use super::request::Method;
use super::{Ctx, Doc, Error};
use std::sync::Arc;

/// What a component does around a table's REST resource.
pub trait TableWrapper: Send + Sync + 'static {
    /// A record (or a query row) about to be sent: hide or add fields.
    fn on_read(&self, _ctx: &Ctx, _doc: &mut Doc) {}

    /// A body about to be written through REST: PUT or PATCH of record `id`, or POST (`id`
    /// is `None` unless the body names one). Change it, or refuse with an error.
    fn before_write(
        &self,
        _ctx: &Ctx,
        _method: Method,
        _id: Option<&str>,
        _doc: &mut Doc,
    ) -> Result<(), Error> {
        Ok(())
    }
}

impl Setup<'_> {
    /// Wraps the REST resource of `table` (one wrapper per table).
    pub fn wrap_table(&mut self, table: &str, wrapper: impl TableWrapper) -> Result<(), String> {
        if self.decl.wrappers.iter().any(|(t, _)| t == table) {
            return Err(format!(
                "component {}: table {table:?} is wrapped twice",
                self.name()
            ));
        }
        self.decl
            .wrappers
            .push((table.to_string(), Arc::new(wrapper)));
        Ok(())
    }
}
