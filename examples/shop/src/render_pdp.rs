//! The product page (PDP): the product, its category, its live price, currency and stock,
//! its rating (count and mean in tenths, rounded half up) and its reviews by id; the HTML
//! carries the script that follows the price and stock live.

use super::config::Config;
use super::data::average_tenths;
use super::html;
use super::render::{category_name, category_token, product_token, review_token, text, Rendered};
use super::template::{Builder, Format, What};
use super::{url, PRODUCT, REVIEW};
use microlith::app::{Ctx, Error};
use serde_json::Value;

/// What the page shows of the product, from its records.
struct Product<'a> {
    id: &'a str,
    name: &'a str,
    description: &'a str,
    category: &'a str,
    category_name: &'a str,
}

/// What the page shows of one review.
struct Review<'a> {
    id: &'a str,
    rating: i64,
    author: &'a str,
    text: &'a str,
}

/// The page of product `id`; `None` when there is no such product.
pub async fn render(ctx: &Ctx, config: &Config, id: &str) -> Result<Option<Rendered>, Error> {
    let Some(record) = ctx.table(PRODUCT)?.get(id)? else {
        return Ok(None);
    };
    let doc: Value = record.json()?;
    let category = text(&doc, "category");
    let category_name = category_name(ctx, category)?;
    let query = format!(
        "product={}&sort(+id)&limit({})",
        url::encode(id),
        config.max_reviews
    );
    let rows = ctx.table(REVIEW)?.search(&query).await?;
    let reviews: Vec<Review> = rows.iter().map(review).collect();
    let p = Product {
        id,
        name: text(&doc, "name"),
        description: text(&doc, "description"),
        category,
        category_name: &category_name,
    };
    let mut shows = vec![product_token(id), category_token(category)];
    shows.extend(reviews.iter().map(|r| review_token(r.id)));
    Ok(Some(Rendered {
        category: (!category.is_empty()).then(|| category.to_string()),
        products: vec![id.to_string()],
        shows,
        json: json(&p, &reviews),
        html: page(&p, &reviews),
    }))
}

fn review(row: &Value) -> Review<'_> {
    Review {
        id: text(row, "id"),
        rating: row.get("rating").and_then(Value::as_i64).unwrap_or(0),
        author: text(row, "author"),
        text: text(row, "text"),
    }
}

/// (count, mean in tenths).
fn rating(reviews: &[Review]) -> (i64, i64) {
    let count = reviews.len() as i64;
    let sum: i64 = reviews.iter().map(|r| r.rating).sum();
    (count, average_tenths(sum, count))
}

fn json(p: &Product, reviews: &[Review]) -> super::template::Template {
    let mut j = Builder::new(Format::Json);
    j.raw("{\"id\":").text(p.id).raw(",\"name\":").text(p.name);
    j.raw(",\"description\":")
        .text(p.description)
        .raw(",\"category\":");
    if p.category.is_empty() {
        j.raw("null");
    } else {
        j.raw("{\"id\":")
            .text(p.category)
            .raw(",\"name\":")
            .text(p.category_name)
            .raw("}");
    }
    j.raw(",\"price_cents\":").slot(0, What::Cents);
    j.raw(",\"currency\":").slot(0, What::Currency);
    j.raw(",\"stock\":").slot(0, What::Stock);
    let (count, tenths) = rating(reviews);
    j.raw(",\"rating\":{\"count\":").num(count);
    j.raw(",\"average_tenths\":")
        .num(tenths)
        .raw("},\"reviews\":[");
    for (i, r) in reviews.iter().enumerate() {
        j.raw(if i > 0 { ",{\"id\":" } else { "{\"id\":" })
            .text(r.id);
        j.raw(",\"rating\":")
            .num(r.rating)
            .raw(",\"author\":")
            .text(r.author);
        j.raw(",\"text\":").text(r.text).raw("}");
    }
    j.raw("]}");
    j.finish()
}

fn page(p: &Product, reviews: &[Review]) -> super::template::Template {
    let mut h = Builder::new(Format::Html);
    html::open(&mut h, p.name);
    h.raw("<article class=\"product\" data-id=\"").text(p.id);
    html::live_attributes(&mut h, 0);
    h.raw(">\n<h1>")
        .text(p.name)
        .raw("</h1>\n<p class=\"category\">");
    html::link(&mut h, "c", p.category, p.category_name);
    h.raw("</p>\n<p class=\"description\">")
        .text(p.description)
        .raw("</p>\n");
    h.raw("<p class=\"buy\"><span class=\"price\">")
        .slot(0, What::Dollars);
    h.raw("</span> <span class=\"currency\">")
        .slot(0, What::Currency);
    h.raw("</span> · <span class=\"stock\">")
        .slot(0, What::StockText)
        .raw("</span></p>\n");
    reviews_section(&mut h, reviews);
    h.raw("</article>\n").raw(html::LIVE_SCRIPT);
    html::close(&mut h);
    h.finish()
}

fn reviews_section(h: &mut Builder, reviews: &[Review]) {
    let (count, tenths) = rating(reviews);
    h.raw("<section class=\"reviews\"><h2>Reviews</h2>\n<p class=\"rating\" data-count=\"");
    h.num(count)
        .raw("\" data-average-tenths=\"")
        .num(tenths)
        .raw("\">");
    h.num(tenths / 10).raw(".").num((tenths % 10).abs());
    h.raw(" of 5 from ").num(count);
    h.raw(if count == 1 { " review" } else { " reviews" })
        .raw("</p>\n<ul>\n");
    for r in reviews {
        h.raw("<li class=\"review\" data-id=\"")
            .text(r.id)
            .raw("\" data-rating=\"");
        h.num(r.rating)
            .raw("\"><b>")
            .text(r.author)
            .raw("</b> ")
            .num(r.rating);
        h.raw("/5: ").text(r.text).raw("</li>\n");
    }
    h.raw("</ul></section>\n");
}
