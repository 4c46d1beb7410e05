//! Validators: a component's check of every local write of a table before it commits, on the
//! record's owner. A validator sees the live document and the one about to be stored; it may
//! change the new document (derive fields) or refuse the write with an `Error`, whose status
//! and message reach the client (REST: that status as a problem document; MQTT 5.0: reason
//! 0x83; a component's table call or atomic batch: the error, and the whole batch is refused).
//!
//! Validators run inside the owner shard's writer thread, in order with every write of the
//! shard, so the document they see as live is exactly the current one. They hold up every
//! write of the shard while they run: keep them short, and do no I/O. Every local write path
//! runs them (REST, MQTT table topics, WebSocket, component calls, atomic batches); changes
//! replicated from other nodes do not (they were validated where they were made). The node
//! installs them on the writers as a `storage::writer::WriteCheck` (`write_check`).

use super::call::panic_message;
use super::component::Setup;
use super::hooks::count;
use super::registry::Registry;
use super::shard::AppStats;
use super::{Doc, Error};
use crate::storage::catalog::TableDef;
use crate::storage::writer::{Refusal, WriteCheck};
use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

/// A validator, as declared.
pub type ValidateFn = dyn Fn(&mut Check<'_>) -> Result<(), Error> + Send + Sync;

/// A local write as a validator sees it.
pub struct Check<'a> {
    table: &'a str,
    id: &'a str,
    before: Option<&'a Doc>,
    doc: Option<&'a mut Doc>,
}

impl<'a> Check<'a> {
    /// The table written.
    pub fn table(&self) -> &str {
        self.table
    }

    /// The id of the record written.
    pub fn id(&self) -> &str {
        self.id
    }

    /// The live document the write replaces (`None`: the record does not exist now).
    pub fn before(&self) -> Option<&Doc> {
        self.before
    }

    /// The document to store (`None`: the write deletes the record).
    pub fn doc(&self) -> Option<&Doc> {
        self.doc.as_deref()
    }

    /// The document to store, to change before it is stored (`None` for a delete). Its
    /// primary key must stay as it is.
    pub fn doc_mut(&mut self) -> Option<&mut Doc> {
        self.doc.as_deref_mut()
    }

    /// Whether the write deletes the record.
    pub fn is_delete(&self) -> bool {
        self.doc.is_none()
    }
}

impl Setup<'_> {
    /// Checks every local write of `table` before it commits, on the owner's writer thread:
    /// `f` may change the document to store or refuse the write with an `Error` (4xx or 5xx).
    /// Several validators of one table run in the order components and their declarations
    /// come; the first refusal stops the write. Keep `f` short and free of I/O.
    pub fn validate(
        &mut self,
        table: &str,
        f: impl Fn(&mut Check<'_>) -> Result<(), Error> + Send + Sync + 'static,
    ) {
        self.decl
            .hooks
            .validators
            .push((table.to_string(), Arc::new(f)));
    }
}

/// Every component's validators, by table, as the writers' check (`None`: no validators).
pub fn write_check(registry: &Registry, stats: &Arc<AppStats>) -> Option<Arc<dyn WriteCheck>> {
    let mut by_table: HashMap<String, Vec<(usize, Arc<ValidateFn>)>> = HashMap::new();
    for (c, decl) in registry.components.iter().enumerate() {
        for (table, f) in &decl.hooks.validators {
            by_table
                .entry(table.clone())
                .or_default()
                .push((c, f.clone()));
        }
    }
    if by_table.is_empty() {
        return None;
    }
    Some(Arc::new(Validators {
        by_table,
        stats: stats.clone(),
    }))
}

/// The validators of the node, run by the writers.
struct Validators {
    /// Table → (component, validator), in order.
    by_table: HashMap<String, Vec<(usize, Arc<ValidateFn>)>>,
    stats: Arc<AppStats>,
}

impl WriteCheck for Validators {
    fn covers(&self, table: &str) -> bool {
        self.by_table.contains_key(table)
    }

    fn check(
        &self,
        table: &TableDef,
        id: &str,
        before: Option<&Doc>,
        after: Option<&mut Doc>,
    ) -> Result<(), Refusal> {
        let Some(list) = self.by_table.get(&table.name) else {
            return Ok(());
        };
        let key = after
            .as_deref()
            .and_then(|d| d.get(&table.primary_key))
            .cloned();
        let mut check = Check {
            table: &table.name,
            id,
            before,
            doc: after,
        };
        for (c, f) in list {
            self.run(*c, f.as_ref(), &mut check)?;
            let changed_key = check
                .doc()
                .is_some_and(|d| d.get(&table.primary_key) != key.as_ref());
            if changed_key {
                return Err(Refusal {
                    status: 500,
                    message: format!(
                        "component {} changed the primary key {:?} of the record it validated",
                        self.stats.components[*c].0, table.primary_key
                    ),
                });
            }
        }
        Ok(())
    }
}

impl Validators {
    /// Runs one validator, its panic caught; counts the outcome.
    fn run(&self, c: usize, f: &ValidateFn, check: &mut Check<'_>) -> Result<(), Refusal> {
        let (name, stats) = &self.stats.components[c];
        let stats = &stats.hooks;
        count(&stats.validations);
        match std::panic::catch_unwind(AssertUnwindSafe(|| f(check))) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                count(&stats.validations_refused);
                let status = if (400..=599).contains(&e.status) {
                    e.status
                } else {
                    500
                };
                Err(Refusal {
                    status,
                    message: e.message,
                })
            }
            Err(p) => {
                count(&stats.validation_panics);
                tracing::error!(
                    component = name,
                    table = check.table,
                    id = check.id,
                    "validator panicked (the write is refused): {}",
                    panic_message(&p)
                );
                Err(Refusal {
                    status: 500,
                    message: format!("component {name} failed to validate this write"),
                })
            }
        }
    }
}
