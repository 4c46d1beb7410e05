//! Caching tables: tables whose records are copies of an origin's (an HTTP service or a
//! function of a component), fetched when a read finds a record missing or stale.
//!
//! The shard that owns a record is the only one that fetches it: a read elsewhere asks the
//! owner through its bounded cache inbox (`node`), so there is one fetch per key at a time
//! without a lock, and every read waiting for it shares its record or its error (`flight`).
//! A failure is remembered for a short time (`negative`). Every origin call runs off the
//! executor and is cut at the table's timeout (`origin`); the fetched record is stored with
//! a compare-and-set against the version it replaces, so a newer write always stays. Each
//! shard sweeps its own partitions for records past expiration + eviction (`sweep`).

mod control;
mod flight;
mod negative;
mod node;
mod origin;
mod read;
mod shard;
mod spec;
mod sweep;

pub use control::CacheControl;
pub use node::NodeCaches;
pub use read::Cached;
pub use spec::{CacheSource, CacheSpec, SourceFuture};

pub(crate) use read::read;
pub(crate) use shard::{start, ShardCaches};

use super::Error;
use crate::storage::hlc::Version;
use std::sync::Arc;
use std::time::Duration;

/// A record a fetch produced: stored with `version`, or served without being stored
/// (`None`: the writer could not take it, or a newer delete had landed).
#[derive(Debug, Clone)]
pub(crate) struct Filled {
    pub version: Option<Version>,
    pub body: Arc<[u8]>,
}

/// Why a fetch produced no record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The origin has no such record (404).
    NotFound,
    /// The origin failed or answered something that is not a record (502).
    Origin(String),
    /// The origin did not answer within the timeout (504).
    Timeout,
    /// The owner shard is at its bound of origin calls, or its inbox is full (503).
    Busy(String),
    /// The node is stopping (503).
    Stopping,
}

/// What a fetch came to, as shared with every read waiting for it.
pub(crate) type Outcome = Result<Filled, Failure>;

impl Failure {
    /// Whether the failure is remembered for the negative TTL (the origin's own answers).
    fn remembered(&self) -> bool {
        matches!(
            self,
            Failure::NotFound | Failure::Origin(_) | Failure::Timeout
        )
    }

    /// Whether a stale record may stand in for the fetch (`stale_if_error`).
    fn stale_may_serve(&self) -> bool {
        matches!(
            self,
            Failure::Origin(_) | Failure::Timeout | Failure::Busy(_)
        )
    }

    /// The answer to a read of record `id` of `table`.
    fn to_error(&self, table: &str, id: &str, timeout: Duration) -> Error {
        match self {
            Failure::NotFound => Error::not_found(format!(
                "no record {id:?} in table {table:?} (its origin has none)"
            )),
            Failure::Origin(m) => Error::new(
                502,
                format!("the origin of table {table:?} failed for {id:?}: {m}"),
            ),
            Failure::Timeout => Error::new(
                504,
                format!(
                    "the origin of table {table:?} did not answer for {id:?} within {} ms",
                    timeout.as_millis()
                ),
            ),
            Failure::Busy(m) => Error {
                retry_after: Some(1),
                ..Error::new(503, m.clone())
            },
            Failure::Stopping => Error::new(503, "the node is shutting down"),
        }
    }
}
