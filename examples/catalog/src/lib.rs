//! Example component: a product page assembled from three tables with function calls — the
//! product, its price and its stock — instead of three network hops. Enabled by
//! `[components.catalog]`; the table names can be changed there.
//!
//! ```toml
//! [components.catalog]
//! products = "Product"   # default
//! prices = "Price"       # default
//! stock = "Stock"        # default
//! ```
//!
//! `GET /page/{id}` answers `{"product": {...}, "price": {...} | null, "stock": {...} | null}`,
//! 404 when there is no such product.

use microlith::app::{Component, Ctx, Error, Request, Response, Setup};
use serde::Deserialize;
use std::sync::Arc;

/// The component.
pub struct Catalog;

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields, default)]
struct Config {
    products: String,
    prices: String,
    stock: String,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            products: "Product".into(),
            prices: "Price".into(),
            stock: "Stock".into(),
        }
    }
}

impl Component for Catalog {
    fn name(&self) -> &'static str {
        "catalog"
    }

    fn setup(&self, s: &mut Setup<'_>) -> Result<(), String> {
        let config: Config = s.config()?;
        s.table(&config.products, "id", &["category"]);
        s.table(&config.prices, "id", &[]);
        s.table(&config.stock, "id", &[]);
        let config = Arc::new(config);
        s.get("/page/:id", move |ctx, req| page(config.clone(), ctx, req))?;
        Ok(())
    }
}

/// `GET /page/{id}`: the three records, as one JSON document.
async fn page(config: Arc<Config>, ctx: Ctx, req: Request) -> Result<Response, Error> {
    let id = req.required("id")?;
    let product = ctx
        .table(&config.products)?
        .get(id)?
        .ok_or_else(|| Error::not_found(format!("no product {id:?}")))?;
    let price = ctx.table(&config.prices)?.get(id)?;
    let stock = ctx.table(&config.stock)?.get(id)?;
    // The stored JSON goes out as it is: no parse, no re-encoding.
    let mut out = Vec::with_capacity(64 + product.body().len());
    out.extend_from_slice(b"{\"product\":");
    out.extend_from_slice(product.body());
    out.extend_from_slice(b",\"price\":");
    out.extend_from_slice(price.as_ref().map_or(&b"null"[..], |r| r.body()));
    out.extend_from_slice(b",\"stock\":");
    out.extend_from_slice(stock.as_ref().map_or(&b"null"[..], |r| r.body()));
    out.push(b'}');
    Ok(Response::raw_json(200, out))
}
