//! Invalidation: a committed change of a Product, Review or Category re-renders exactly the
//! pages it affects, and stores them in place of the old ones. Price and Inventory need
//! nothing: they are read live on every request.
//!
//! Which pages: those whose `shows` index names the changed record (a product's page, the
//! listings and home that show it, a deleted review's product page), plus those it now
//! belongs to (the product's page and its category's listing; home when the product is
//! featured, or its category membership changed, which changes a count).
//!
//! Races: a refresh renders with a stamp taken after the change committed and stores the
//! page with a compare-and-set on the version it read. A lost compare-and-set (another
//! refresh, or a reader's first render, landed meanwhile) reads again: a stored page stamped
//! after this refresh began already includes the change and ends it; an older one is
//! rendered again. So changes handled at once on different shards cannot leave a page
//! rendered from data older than the last of them. (Change handlers run at most once per
//! change: one dropped at the handlers' queue bound leaves its pages to the TTL.)

use super::counters::Counter;
use super::pages::{parse_key, Key, Kind};
use super::render;
use super::state::State;
use super::url::encode;
use super::{PAGES, PRODUCT};
use microlith::app::{ChangeEvent, Ctx, Error, Precondition, Record, Version};
use serde::Deserialize;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Compare-and-set rounds one page refresh may take before it gives up (logged).
const MAX_ROUNDS: usize = 8;
/// Most stored pages one change may refresh.
const MAX_SHOWING: usize = 100_000;

/// A stored page that shows a record: its key, kind and category.
#[derive(Deserialize)]
struct Showing {
    id: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    category: Option<String>,
}

/// A Product changed: its page, the listings that show it or now should, and home when the
/// product is featured or moved in or out of a category.
pub async fn on_product(state: Arc<State>, ctx: Ctx, change: ChangeEvent) -> Result<(), Error> {
    if state.ignores(&change) {
        return Ok(());
    }
    let id = change.id.as_str();
    let category = change.doc.as_ref().map(|d| render::text(d, "category"));
    let category = category.filter(|c| !c.is_empty());
    let showing = showing(&ctx, &render::product_token(id)).await?;
    let mut keys: BTreeSet<String> = showing.iter().map(|s| s.id.clone()).collect();
    keys.insert(Key::new(Kind::Pdp, id).as_str().to_string());
    if let Some(c) = category {
        keys.insert(Key::new(Kind::Plp, c).as_str().to_string());
    }
    if moved(&showing, category) || featured(&ctx, id, category).await? {
        keys.insert(Key::new(Kind::Home, "").as_str().to_string());
    }
    refresh_all(&state, &ctx, keys).await
}

/// A Review changed: the page that shows it, and its product's page.
pub async fn on_review(state: Arc<State>, ctx: Ctx, change: ChangeEvent) -> Result<(), Error> {
    if state.ignores(&change) {
        return Ok(());
    }
    let showing = showing(&ctx, &render::review_token(&change.id)).await?;
    let mut keys: BTreeSet<String> = showing.into_iter().map(|s| s.id).collect();
    let product = change.doc.as_ref().map(|d| render::text(d, "product"));
    if let Some(p) = product.filter(|p| !p.is_empty()) {
        keys.insert(Key::new(Kind::Pdp, p).as_str().to_string());
    }
    refresh_all(&state, &ctx, keys).await
}

/// A Category changed: every page that shows it, its listing, and home (which lists every
/// category).
pub async fn on_category(state: Arc<State>, ctx: Ctx, change: ChangeEvent) -> Result<(), Error> {
    if state.ignores(&change) {
        return Ok(());
    }
    let showing = showing(&ctx, &render::category_token(&change.id)).await?;
    let mut keys: BTreeSet<String> = showing.into_iter().map(|s| s.id).collect();
    keys.insert(Key::new(Kind::Plp, &change.id).as_str().to_string());
    keys.insert(Key::new(Kind::Home, "").as_str().to_string());
    refresh_all(&state, &ctx, keys).await
}

/// The stored pages whose `shows` holds `token`.
async fn showing(ctx: &Ctx, token: &str) -> Result<Vec<Showing>, Error> {
    let query = format!(
        "shows={}&select(id,kind,category)&limit({MAX_SHOWING})",
        encode(token)
    );
    let rows = ctx.table(PAGES)?.search(&query).await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| serde_json::from_value(r).ok())
        .collect())
}

/// Whether the product's category membership changed (so home's counts did): it was
/// deleted or has no category, a stored listing or product page shows it in another
/// category, or no stored page says where it was (it may be new).
fn moved(showing: &[Showing], category: Option<&str>) -> bool {
    let Some(category) = category else {
        return true;
    };
    let placed: Vec<_> = showing
        .iter()
        .filter(|s| s.kind == Kind::Plp.name() || s.kind == Kind::Pdp.name())
        .collect();
    placed.is_empty()
        || placed
            .iter()
            .any(|s| s.category.as_deref() != Some(category))
}

/// Whether product `id` is now the first of its category (a featured product).
async fn featured(ctx: &Ctx, id: &str, category: Option<&str>) -> Result<bool, Error> {
    let Some(category) = category else {
        return Ok(false);
    };
    let query = format!(
        "category={}&select(id)&sort(+id)&limit(1)",
        encode(category)
    );
    let first = ctx.table(PRODUCT)?.search(&query).await?;
    Ok(first.first().map(|r| render::text(r, "id")) == Some(id))
}

/// Refreshes every page of `keys`; one that fails is logged and the others still go.
async fn refresh_all(state: &State, ctx: &Ctx, keys: BTreeSet<String>) -> Result<(), Error> {
    let mut first_error = None;
    for key in keys {
        if let Err(e) = refresh(state, ctx, &key).await {
            first_error.get_or_insert(Error::new(e.status, format!("page {key}: {e}")));
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Renders page `key` again and stores it, unless a page rendered after this refresh began
/// is stored already. A page that no longer exists (its product was deleted) is removed.
async fn refresh(state: &State, ctx: &Ctx, key: &str) -> Result<(), Error> {
    let floor = state.stamp_floor();
    let pages = ctx.table(PAGES)?;
    for _ in 0..MAX_ROUNDS {
        let current = pages.get(key)?;
        let pre = match &current {
            Some(r) if stamp(r) >= floor => return Ok(()),
            Some(r) => if_match(r.version()),
            None => Precondition::IfAbsent,
        };
        let Some(doc) = render::page(state, ctx, key).await? else {
            if current.is_some() {
                pages.delete(key).await?;
            }
            return Ok(());
        };
        match pages.put_if(key, doc, pre).await {
            Ok(_) => {
                if let Some((kind, _)) = parse_key(key) {
                    state.counters.add(ctx.shard_id(), Counter::Refreshed(kind));
                }
                return Ok(());
            }
            Err(e) if e.status == 409 || e.status == 412 => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::new(
        503,
        "the page kept changing while it was refreshed",
    ))
}

fn if_match(v: Version) -> Precondition {
    Precondition::IfMatch {
        clock: v.clock,
        node: v.node,
    }
}

/// A stored page's render stamp (0 when it has none).
fn stamp(r: &Record) -> u64 {
    #[derive(Deserialize)]
    struct Stamped {
        #[serde(default)]
        stamp: u64,
    }
    serde_json::from_slice::<Stamped>(r.body()).map_or(0, |s| s.stamp)
}
