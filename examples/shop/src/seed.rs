//! Seeding: at start, each of the shop's tables that is empty gets the SPEC's records
//! (8 categories, 1,000 products, prices and stock, 2,000 reviews). The `seed` job runs on
//! shard 0: its first run decides which tables are empty and writes them, a window of
//! writes in flight at a time (the owners' writers commit each window in a few group
//! commits); later runs find the shop ready and return at once.
//!
//! Idempotent: every record is written only if absent, so a run cut short is completed by
//! the next one without touching what is there, and a table that already has records is
//! left alone (a restart does not bring back deleted records). Pages answer 503 until the
//! seed is written, and the seed's own writes cause no page refresh (`State::ignores`).

use super::data::{self, CATEGORIES, PRODUCTS};
use super::state::{Phase, State};
use super::{CATEGORY, INVENTORY, PRICE, PRODUCT, REVIEW};
use futures_util::future::join_all;
use microlith::app::{Ctx, Doc, Error, Precondition};
use std::cell::RefCell;
use std::sync::Arc;

/// Writes in flight at once: well under a writer's queue, enough to fill a group commit.
const WINDOW: usize = 256;
/// Attempts of one write that finds its writer's queue full.
const BUSY_ATTEMPTS: usize = 50;

/// The tables still to seed, decided on the first run (shard 0's own state).
#[derive(Default)]
pub struct Plan(RefCell<Option<Vec<&'static str>>>);

/// The `seed` job.
pub async fn run(state: Arc<State>, ctx: Ctx) -> Result<(), Error> {
    if state.phase() == Phase::Ready {
        return Ok(());
    }
    state.set_phase(Phase::Seeding);
    let plan = ctx.local::<Plan>();
    let planned = plan.0.borrow().clone();
    let todo = match planned {
        Some(t) => t,
        None => empty_tables(&ctx).await?,
    };
    *plan.0.borrow_mut() = Some(todo.clone());
    for table in &todo {
        if let Err(e) = write_table(&ctx, table).await {
            state.set_phase(Phase::Pending);
            return Err(e);
        }
    }
    if !todo.is_empty() {
        after_the_seed(&state, &ctx).await;
    }
    state.set_phase(Phase::Ready);
    Ok(())
}

/// The shop's tables that hold no record.
async fn empty_tables(ctx: &Ctx) -> Result<Vec<&'static str>, Error> {
    let mut empty = Vec::new();
    for name in [CATEGORY, PRODUCT, PRICE, INVENTORY, REVIEW] {
        if ctx
            .table(name)?
            .search("select(id)&limit(1)")
            .await?
            .is_empty()
        {
            empty.push(name);
        }
    }
    Ok(empty)
}

/// The seed records of `table`.
fn records(table: &str) -> Vec<Doc> {
    match table {
        CATEGORY => (0..CATEGORIES).map(data::category).collect(),
        PRODUCT => (0..PRODUCTS).map(data::product).collect(),
        PRICE => (0..PRODUCTS).map(data::price).collect(),
        INVENTORY => (0..PRODUCTS).map(data::inventory).collect(),
        REVIEW => (0..PRODUCTS)
            .flat_map(|i| (0..data::review_count(i)).map(move |j| data::review(i, j)))
            .collect(),
        _ => Vec::new(),
    }
}

/// Writes `table`'s seed records that are absent, a window at a time.
async fn write_table(ctx: &Ctx, name: &str) -> Result<(), Error> {
    let table = ctx.table(name)?;
    let docs = records(name);
    for window in docs.chunks(WINDOW) {
        let writes = window.iter().map(|doc| write_absent(ctx, &table, doc));
        for result in join_all(writes).await {
            result?;
        }
    }
    Ok(())
}

/// Writes `doc` unless its record exists; waits out a full writer queue.
async fn write_absent(ctx: &Ctx, table: &microlith::app::Table, doc: &Doc) -> Result<(), Error> {
    let id = doc.get("id").and_then(|v| v.as_str()).unwrap_or_default();
    for _ in 0..BUSY_ATTEMPTS {
        match table.put_if(id, doc.clone(), Precondition::IfAbsent).await {
            Ok(_) => return Ok(()),
            Err(e) if e.status == 409 || e.status == 412 => return Ok(()),
            Err(e) if e.status == 503 => ctx.yield_now().await,
            Err(e) => return Err(e),
        }
    }
    Err(Error::new(503, format!("the writer of {id:?} stayed busy")))
}

/// Marks every change committed so far as the seed's: waits until the clock has passed the
/// millisecond the last seed write may carry, so any later write has a later version.
async fn after_the_seed(state: &State, ctx: &Ctx) {
    let before = now_ms() + 1;
    while now_ms() < before {
        ctx.yield_now().await;
    }
    state.set_seeded_before(before);
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
