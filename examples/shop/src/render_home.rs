//! The home page: every category with its product count, and the featured products (the
//! first product of each category by id), each with its live price and stock.

use super::config::Config;
use super::html;
use super::render::{category_token, json_product, product_token, products_of, text, Rendered};
use super::template::{Builder, Format};
use super::CATEGORY;
use microlith::app::{Ctx, Error};

/// Most categories the home page lists.
const MAX_CATEGORIES: usize = 1000;

/// A category as the home page shows it.
struct Entry {
    id: String,
    name: String,
    count: usize,
}

pub async fn render(ctx: &Ctx, config: &Config) -> Result<Rendered, Error> {
    let query = format!("select(id,name)&sort(+id)&limit({MAX_CATEGORIES})");
    let rows = ctx.table(CATEGORY)?.search(&query).await?;
    let mut categories = Vec::with_capacity(rows.len());
    let mut featured = Vec::new();
    for row in &rows {
        let id = text(row, "id").to_string();
        let products = products_of(ctx, &id, config.max_listed).await?;
        if let Some(first) = products.first() {
            featured.push((
                text(first, "id").to_string(),
                text(first, "name").to_string(),
            ));
        }
        let name = text(row, "name").to_string();
        categories.push(Entry {
            id,
            name,
            count: products.len(),
        });
    }
    featured.sort();
    Ok(build(&categories, &featured))
}

fn build(categories: &[Entry], featured: &[(String, String)]) -> Rendered {
    let (mut j, mut h) = (Builder::new(Format::Json), Builder::new(Format::Html));
    html::open(&mut h, "Home");
    h.raw("<h1>Shop</h1>\n<section><h2>Categories</h2><ul class=\"categories\">\n");
    j.raw("{\"categories\":[");
    for (i, c) in categories.iter().enumerate() {
        j.raw(if i > 0 { ",{\"id\":" } else { "{\"id\":" })
            .text(&c.id);
        j.raw(",\"name\":")
            .text(&c.name)
            .raw(",\"count\":")
            .num(c.count as i64)
            .raw("}");
        h.raw("<li class=\"category\" data-id=\"")
            .text(&c.id)
            .raw("\" data-count=\"");
        h.num(c.count as i64).raw("\">");
        html::link(&mut h, "c", &c.id, &c.name);
        h.raw(" (").num(c.count as i64).raw(")</li>\n");
    }
    j.raw("],\"featured\":[");
    h.raw("</ul></section>\n<section><h2>Featured</h2><ul class=\"products\">\n");
    for (i, (id, name)) in featured.iter().enumerate() {
        if i > 0 {
            j.raw(",");
        }
        json_product(&mut j, i, id, name);
        html::product_item(&mut h, i, id, name);
    }
    j.raw("]}");
    h.raw("</ul></section>\n");
    html::close(&mut h);
    let shows = categories.iter().map(|c| category_token(&c.id));
    Rendered {
        category: None,
        products: featured.iter().map(|(id, _)| id.clone()).collect(),
        shows: shows
            .chain(featured.iter().map(|(id, _)| product_token(id)))
            .collect(),
        json: j.finish(),
        html: h.finish(),
    }
}
