//! Messages between shards of one node. Each shard has one bounded inbox (flume); a full
//! inbox is backpressure, answered to clients as 503. Message payloads are rkyv-archivable
//! types moved through the channel (no copy, no encoding); replies come back on a channel
//! carried with the request.

use crate::storage::catalog::Catalog;
use rkyv::{Archive, Deserialize, Serialize};

/// A query for one shard's part of a table.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ShardQuery {
    pub table: String,
    /// The raw query string (parsed again on the shard: cheaper than shipping a tree).
    pub query: String,
    /// Most rows this shard may return (after its own sort).
    pub max_rows: u64,
}

/// A shard's part of a query answer: matching documents, sorted, cut to `max_rows`.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct ShardRows {
    pub rows: Vec<Vec<u8>>,
    /// True when the shard had more matches than `max_rows`.
    pub truncated: bool,
}

/// A change to the set of tables; always executed by shard 0, one at a time.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum AdminOp {
    Create {
        name: String,
        primary_key: String,
        indexes: Vec<String>,
        /// Declared attribute types: (name, type as written, e.g. `Int!`).
        attributes: Vec<(String, String)>,
    },
    Drop {
        name: String,
    },
    /// Bring the catalog in line with the replicated schema table (tables created or dropped
    /// on peers); with `seed`, first record every local table the schema table lacks.
    Reconcile {
        seed: bool,
    },
}

/// The answer to an admin operation: an HTTP status and a message.
pub type AdminResult = Result<(), (u16, String)>;

/// What a shard's runtime inbox serves. Services above the runtime (MQTT) have meshes of
/// their own, built the same way.
pub enum MeshMsg {
    /// This shard's part of a query.
    Query {
        req: ShardQuery,
        reply: flume::Sender<Result<ShardRows, String>>,
    },
    /// A new catalog every shard must take before the requester answers.
    Catalog {
        catalog: Catalog,
        ack: flume::Sender<()>,
    },
    /// A table change (sent to shard 0 only).
    Admin {
        op: AdminOp,
        reply: flume::Sender<AdminResult>,
    },
    Shutdown,
}
