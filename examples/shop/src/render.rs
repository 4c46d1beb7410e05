//! Rendering a page's static part, once: the caching table's source (a miss or a stale
//! page) and the refresh after a change both come here. A rendered page is stored as one
//! record: both templates, the products whose live values it shows, its render stamp, and
//! `shows`, the records it displays (`product:{id}`, `category:{id}`, `review:{id}`),
//! indexed so a change finds exactly the pages that show it.

use super::counters::Counter;
use super::pages::{parse_key, Kind};
use super::state::State;
use super::template::Template;
use super::{render_home, render_pdp, render_plp};
use microlith::app::{Ctx, Doc, Error};
use serde_json::{json, Value};
use std::sync::Arc;

/// What a page shows, as the `shows` index holds it.
pub fn product_token(id: &str) -> String {
    format!("product:{id}")
}

pub fn category_token(id: &str) -> String {
    format!("category:{id}")
}

pub fn review_token(id: &str) -> String {
    format!("review:{id}")
}

/// A page's static part, rendered.
pub struct Rendered {
    /// The category the page belongs to (a listing's, a product's), if any.
    pub category: Option<String>,
    /// The products whose live values the templates' slots show, by index.
    pub products: Vec<String>,
    /// The records the page displays (tokens above).
    pub shows: Vec<String>,
    pub json: Template,
    pub html: Template,
}

impl Rendered {
    fn into_doc(self, key: &str, kind: Kind, stamp: u64) -> Doc {
        let doc = json!({
            "id": key,
            "stamp": stamp,
            "kind": kind.name(),
            "category": self.category,
            "products": self.products,
            "shows": self.shows,
            "json": self.json.encode(),
            "html": self.html.encode(),
        });
        match doc {
            Value::Object(m) => m,
            _ => Doc::new(),
        }
    }
}

/// The caching table's source: page `key` rendered, or `None` when it names no page.
pub async fn source(state: Arc<State>, ctx: Ctx, key: String) -> Result<Option<Doc>, Error> {
    page(&state, &ctx, &key).await
}

/// Renders page `key` now, stamped; `None` when no category or product has its id.
pub async fn page(state: &State, ctx: &Ctx, key: &str) -> Result<Option<Doc>, Error> {
    let Some((kind, id)) = parse_key(key) else {
        return Ok(None);
    };
    let stamp = state.next_stamp();
    let config = &state.config;
    let rendered = match kind {
        Kind::Home => Some(render_home::render(ctx, config).await?),
        Kind::Plp => render_plp::render(ctx, config, id).await?,
        Kind::Pdp => render_pdp::render(ctx, config, id).await?,
    };
    let Some(r) = rendered else { return Ok(None) };
    state.counters.add(ctx.shard_id(), Counter::Rendered(kind));
    Ok(Some(r.into_doc(key, kind, stamp)))
}

/// A string field of a row or record (empty when missing or not a string).
pub fn text<'a>(v: &'a Value, field: &str) -> &'a str {
    v.get(field).and_then(Value::as_str).unwrap_or("")
}

/// The name of category `id` (empty when there is no such category).
pub fn category_name(ctx: &Ctx, id: &str) -> Result<String, Error> {
    let Some(r) = ctx.table(super::CATEGORY)?.get(id)? else {
        return Ok(String::new());
    };
    let doc: Value = r.json()?;
    Ok(text(&doc, "name").to_string())
}

/// The products of category `id` (`id` and `name`), by id, at most `limit`.
pub async fn products_of(ctx: &Ctx, category: &str, limit: usize) -> Result<Vec<Value>, Error> {
    let query = format!(
        "category={}&select(id,name)&sort(+id)&limit({limit})",
        super::url::encode(category)
    );
    ctx.table(super::PRODUCT)?.search(&query).await
}

/// `{"id":..,"name":..,"price_cents":..,"stock":..}` of the page's product `index`.
pub fn json_product(b: &mut super::template::Builder, index: usize, id: &str, name: &str) {
    use super::template::What;
    b.raw("{\"id\":").text(id).raw(",\"name\":").text(name);
    b.raw(",\"price_cents\":").slot(index, What::Cents);
    b.raw(",\"stock\":").slot(index, What::Stock).raw("}");
}
