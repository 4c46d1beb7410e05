//! Example component: the shop of `examples/shop/SPEC.md` — home, category listings and
//! product pages, as HTML and JSON, over five tables seeded with the SPEC's data.
//!
//! Each page's static part (names, descriptions, categories, reviews, counts, markup) is
//! rendered once into the caching table `ShopPage` as templates with slots; a request
//! fills the slots with the live price and stock of the page's products, read from `Price`
//! and `Inventory` at that moment. So a price or stock write shows on the next request
//! with nothing to invalidate, and a Product, Review or Category write re-renders exactly
//! the pages that show it (`refresh.rs`). Pages also expire after `page_ttl_secs`.
//!
//! ```toml
//! [components.shop]
//! seed = true
//! page_ttl_secs = 300
//! ```
//!
//! Resources: `GET /shop/`, `/shop/c/{id}`, `/shop/p/{id}` (HTML), `/shop/api/home`,
//! `/shop/api/c/{id}`, `/shop/api/p/{id}` (JSON), `/shop/live/{id}/price` and `/stock`
//! (the product's Price and Inventory record as SSE), `/shop/api/stats` (counters).

#[path = "config.rs"]
mod config;
#[path = "counters.rs"]
mod counters;
#[path = "data.rs"]
mod data;
#[path = "html.rs"]
mod html;
#[path = "inject.rs"]
mod inject;
#[path = "live.rs"]
mod live;
#[path = "pages.rs"]
mod pages;
#[path = "refresh.rs"]
mod refresh;
#[path = "render.rs"]
mod render;
#[path = "render_home.rs"]
mod render_home;
#[path = "render_pdp.rs"]
mod render_pdp;
#[path = "render_plp.rs"]
mod render_plp;
#[path = "routes.rs"]
mod routes;
#[path = "seed.rs"]
mod seed;
#[path = "state.rs"]
mod state;
#[path = "template.rs"]
mod template;
#[path = "url.rs"]
mod url;

use microlith::app::{CacheSpec, Component, Schedule, Scope, Setup};
use state::State;
use std::sync::Arc;
use std::time::Duration;

pub(crate) const CATEGORY: &str = "Category";
pub(crate) const PRODUCT: &str = "Product";
pub(crate) const PRICE: &str = "Price";
pub(crate) const INVENTORY: &str = "Inventory";
pub(crate) const REVIEW: &str = "Review";
/// The caching table of pre-rendered pages.
pub(crate) const PAGES: &str = "ShopPage";

/// How often the seed job looks (it does nothing once the shop is ready).
const SEED_TICK: Duration = Duration::from_millis(100);
/// How long one seeding run may take.
const SEED_TIMEOUT: Duration = Duration::from_secs(300);
/// How long one page render may take.
const RENDER_TIMEOUT: Duration = Duration::from_secs(10);

/// The component.
pub struct Shop;

impl Component for Shop {
    fn name(&self) -> &'static str {
        "shop"
    }

    fn setup(&self, s: &mut Setup<'_>) -> Result<(), String> {
        let config: config::Config = s.config()?;
        config.check()?;
        let state = Arc::new(State::new(config));
        tables(s, &state)?;
        routes::declare(s, &state)?;
        hooks(s, &state);
        let st = state.clone();
        let schedule = Schedule::every(SEED_TICK).timeout(SEED_TIMEOUT);
        s.job("seed", schedule, Scope::OncePerNode, move |ctx| {
            seed::run(st.clone(), ctx)
        })?;
        Ok(())
    }
}

/// The five data tables, and the caching table of pages (indexed on what each page shows).
fn tables(s: &mut Setup<'_>, state: &Arc<State>) -> Result<(), String> {
    s.table(CATEGORY, "id", &[]);
    s.table(PRODUCT, "id", &["category"]);
    s.table(PRICE, "id", &[]);
    s.table(INVENTORY, "id", &[]);
    s.table(REVIEW, "id", &["product"]);
    s.table(PAGES, "id", &["shows"]);
    let ttl = state.config.page_ttl();
    let st = state.clone();
    let source = move |ctx, key| render::source(st.clone(), ctx, key);
    s.caching_table(
        CacheSpec::function(PAGES, source, ttl)
            .eviction(ttl)
            .stale_while_revalidate(true)
            .timeout(RENDER_TIMEOUT),
    )
}

/// Changes that re-render pages.
fn hooks(s: &mut Setup<'_>, state: &Arc<State>) {
    let st = state.clone();
    s.on_change(PRODUCT, move |ctx, c| {
        refresh::on_product(st.clone(), ctx, c)
    });
    let st = state.clone();
    s.on_change(REVIEW, move |ctx, c| refresh::on_review(st.clone(), ctx, c));
    let st = state.clone();
    s.on_change(CATEGORY, move |ctx, c| {
        refresh::on_category(st.clone(), ctx, c)
    });
}
