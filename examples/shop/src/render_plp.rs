//! The category listing (PLP): the category and every product in it, by id, each with its
//! live price and stock.

use super::config::Config;
use super::html;
use super::render::{category_token, json_product, product_token, products_of, text, Rendered};
use super::template::{Builder, Format};
use super::CATEGORY;
use microlith::app::{Ctx, Error};
use serde_json::Value;

/// The listing of category `id`; `None` when there is no such category.
pub async fn render(ctx: &Ctx, config: &Config, id: &str) -> Result<Option<Rendered>, Error> {
    let Some(record) = ctx.table(CATEGORY)?.get(id)? else {
        return Ok(None);
    };
    let category: Value = record.json()?;
    let name = text(&category, "name");
    let rows = products_of(ctx, id, config.max_listed).await?;
    let (mut j, mut h) = (Builder::new(Format::Json), Builder::new(Format::Html));
    j.raw("{\"category\":{\"id\":")
        .text(id)
        .raw(",\"name\":")
        .text(name);
    j.raw("},\"products\":[");
    html::open(&mut h, name);
    h.raw("<h1 class=\"category\" data-id=\"")
        .text(id)
        .raw("\">")
        .text(name)
        .raw("</h1>\n");
    h.raw("<ul class=\"products\">\n");
    let mut products = Vec::with_capacity(rows.len());
    let mut shows = vec![category_token(id)];
    for (i, row) in rows.iter().enumerate() {
        let (pid, pname) = (text(row, "id"), text(row, "name"));
        if i > 0 {
            j.raw(",");
        }
        json_product(&mut j, i, pid, pname);
        html::product_item(&mut h, i, pid, pname);
        products.push(pid.to_string());
        shows.push(product_token(pid));
    }
    j.raw("]}");
    h.raw("</ul>\n");
    html::close(&mut h);
    Ok(Some(Rendered {
        category: Some(id.to_string()),
        products,
        shows,
        json: j.finish(),
        html: h.finish(),
    }))
}
