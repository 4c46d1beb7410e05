//! The Harper-compatible REST query language as pure logic (no I/O, no storage access).
//!
//! Owns: parsing the raw URL query string into a [`Query`] ([`parse`](mod@parse); what a
//! client library percent-encoded whole: [`encoded`]), the AST and its
//! canonical text form (`ast`), evaluating filters / sort order / `select()` projection
//! against JSON documents ([`eval`]), and choosing a secondary-index scan for a filter
//! ([`plan`]). The byte encoding of index keys lives in `crate::storage::index_key`.
//!
//! ```text
//! (price=gt=100&lt=200|[rating=5&[tag=a|tag=b]])&select(name,price)&sort(-price,+name)&limit(10,20)
//! ```

mod ast;
pub mod encoded;
pub mod eval;
pub mod parse;
pub mod percent;
pub mod plan;

pub use encoded::parse_from_client;
pub use eval::{compare_docs, compare_values, project, value_at};
pub use parse::{parse, Condition, Expr, Limit, Literal, Op, Query, QueryError, Select, SortKey};
pub use plan::{plan_index, IndexScan, KeyRange};
