//! The shop's HTTP resources: the three pages as HTML and as JSON, the live price and stock
//! streams the product page follows, and the counters. A page request loads its
//! pre-rendered templates (`pages.rs`), reads the live values of the page's products
//! (`live.rs`) and fills the slots (`inject.rs`) into the one buffer that is the answer.

use super::counters::Counter;
use super::inject;
use super::live;
use super::pages::{self, Kind, ShardLocal};
use super::state::State;
use super::template::Format;
use super::{CATEGORY, INVENTORY, PRICE, PRODUCT, REVIEW};
use microlith::app::{Ctx, Error, Request, Response, Setup, TableOp};
use serde_json::json;
use std::sync::Arc;

const HTML: &str = "text/html; charset=utf-8";

/// Declares every route of the shop.
pub fn declare(s: &mut Setup<'_>, state: &Arc<State>) -> Result<(), String> {
    let pages = [
        ("/shop", Kind::Home, Format::Html),
        ("/shop/c/:id", Kind::Plp, Format::Html),
        ("/shop/p/:id", Kind::Pdp, Format::Html),
        ("/shop/api/home", Kind::Home, Format::Json),
        ("/shop/api/c/:id", Kind::Plp, Format::Json),
        ("/shop/api/p/:id", Kind::Pdp, Format::Json),
    ];
    for (pattern, kind, format) in pages {
        let state = state.clone();
        s.get(pattern, move |ctx, req| {
            serve(state.clone(), ctx, req, kind, format)
        })?;
    }
    let st = state.clone();
    s.get("/shop/api/stats", move |_ctx, _req| stats(st.clone()))?;
    s.get("/shop/live/:id/price", |ctx, req| {
        live_stream(ctx, req, PRICE)
    })?;
    s.get("/shop/live/:id/stock", |ctx, req| {
        live_stream(ctx, req, INVENTORY)
    })?;
    Ok(())
}

/// A page: its templates with this request's live values.
async fn serve(
    state: Arc<State>,
    ctx: Ctx,
    req: Request,
    kind: Kind,
    format: Format,
) -> Result<Response, Error> {
    state.ready()?;
    may_read(&req, kind)?;
    let id = if kind == Kind::Home {
        ""
    } else {
        req.required("id")?
    };
    let page = pages::load(&state, &ctx, kind, id).await?;
    let local = ctx.local::<ShardLocal>();
    let mut spare = Vec::new();
    let mut buffer = local.live.try_borrow_mut();
    let values = buffer.as_deref_mut().unwrap_or(&mut spare);
    live::read(&ctx, &page.products, values)?;
    let mut out = Vec::new();
    inject::fill(page.template(format), values, &mut out);
    state.counters.add(ctx.shard_id(), Counter::Served(kind));
    Ok(match format {
        Format::Json => Response::raw_json(200, out),
        Format::Html => Response::bytes(200, HTML, out),
    })
}

/// 403 unless the sender may read every table the page shows (always, while the node has
/// no users): the shop reads them on the sender's behalf.
fn may_read(req: &Request, kind: Kind) -> Result<(), Error> {
    let tables: &[&str] = match kind {
        Kind::Pdp => &[PRODUCT, CATEGORY, PRICE, INVENTORY, REVIEW],
        Kind::Home | Kind::Plp => &[PRODUCT, CATEGORY, PRICE, INVENTORY],
    };
    match tables.iter().find(|t| !req.can(t, TableOp::Read)) {
        Some(t) => Err(Error::new(
            403,
            format!("reading this page needs read on {t}"),
        )),
        None => Ok(()),
    }
}

/// `/shop/api/stats`: where seeding stands, and the counters.
async fn stats(state: Arc<State>) -> Result<Response, Error> {
    let mut body = state.counters.json();
    body["phase"] = json!(state.phase().name());
    Response::json(200, &body)
}

/// The changes of the product's record in `table` (its current value first), as SSE or
/// over a WebSocket; the node checks the reader may read `table`.
async fn live_stream(ctx: Ctx, req: Request, table: &'static str) -> Result<Response, Error> {
    let id = req.required("id")?;
    if !req.can(PRODUCT, TableOp::Read) {
        return Err(Error::new(
            403,
            format!("reading this stream needs read on {PRODUCT}"),
        ));
    }
    if ctx.table(PRODUCT)?.get(id)?.is_none() {
        return Err(Error::not_found(format!("no product {id:?}")));
    }
    Ok(Response::stream(table, Some(id)))
}
