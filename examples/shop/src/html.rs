//! The HTML around the data: the document's head and foot, a product in a list (its live
//! values in `data-price-cents` / `data-stock` and shown as `$339.91` / `44 in stock`), and
//! the product page's script that follows the price and stock over Server-Sent Events.

use super::template::{Builder, What};
use super::url;

const STYLE: &str =
    "body{font:15px/1.4 system-ui,sans-serif;margin:0 auto;max-width:60em;padding:1em}\
header a{font-weight:bold;text-decoration:none}ul{padding-left:1.2em}\
.price{font-weight:600}.stock{color:#555}";

/// `<!doctype html>` up to the start of `<main>`.
pub fn open(b: &mut Builder, title: &str) {
    b.raw("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    b.raw("<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>");
    b.text(title)
        .raw(" · Shop</title><style>")
        .raw(STYLE)
        .raw("</style></head>\n<body>");
    b.raw("<header><a href=\"/shop/\">Shop</a></header>\n<main>");
}

/// From the end of `<main>` to the end of the document.
pub fn close(b: &mut Builder) {
    b.raw("</main></body></html>\n");
}

/// A link to `/shop/{section}/{id}`.
pub fn link(b: &mut Builder, section: &str, id: &str, label: &str) {
    b.raw("<a href=\"/shop/")
        .raw(section)
        .raw("/")
        .raw(&url::encode(id))
        .raw("\">");
    b.text(label).raw("</a>");
}

/// Product `index` of the page in a list.
pub fn product_item(b: &mut Builder, index: usize, id: &str, name: &str) {
    b.raw("<li class=\"product\" data-id=\"").text(id);
    live_attributes(b, index);
    b.raw(">");
    link(b, "p", id, name);
    b.raw(" <span class=\"price\">")
        .slot(index, What::Dollars)
        .raw("</span>");
    b.raw(" <span class=\"stock\">")
        .slot(index, What::StockText)
        .raw("</span></li>\n");
}

/// ` data-price-cents=".." data-stock=".."` of product `index`, closing the `data-id`.
pub fn live_attributes(b: &mut Builder, index: usize) {
    b.raw("\" data-price-cents=\"").slot(index, What::Cents);
    b.raw("\" data-stock=\"").slot(index, What::Stock).raw("\"");
}

/// Follows `/shop/live/{id}/price` and `/stock` (SSE `put` events carry the record in
/// `value`) and updates the product's attributes and text.
pub const LIVE_SCRIPT: &str = r#"<script>
(function () {
  var el = document.querySelector('article.product');
  if (!el || !window.EventSource) return;
  var base = '/shop/live/' + encodeURIComponent(el.dataset.id) + '/';
  function dollars(c) {
    var a = Math.abs(c);
    return (c < 0 ? '-' : '') + '$' + Math.floor(a / 100) + '.' + String(a % 100).padStart(2, '0');
  }
  function follow(what, field, show, attr) {
    var target = el.querySelector('.' + what);
    var events = new EventSource(base + what);
    events.onmessage = function (e) {
      var change = JSON.parse(e.data);
      if (change.type === 'delete') {
        target.textContent = what + ' unavailable';
        return;
      }
      var v = (change.value || {})[field];
      if (change.type !== 'put' || typeof v !== 'number') return;
      el.dataset[attr] = v;
      target.textContent = show(v);
    };
  }
  follow('price', 'amount_cents', dollars, 'priceCents');
  follow('stock', 'quantity', function (q) {
    return q > 0 ? q + ' in stock' : 'out of stock';
  }, 'stock');
})();
</script>
"#;
