// The pages as HTML documents (SPEC "HTML"). Each renderer takes the static page and
// `v(kind, id)`, which gives a product's live value as text: 'cents', 'price' ($339.91),
// 'stock' or 'stockText'. renderDirect fills v from live values at once; pages/template.js
// renders once with markers and fills them per request.
'use strict';

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ESCAPES[c]);

const CSS = 'body{font-family:system-ui,sans-serif;max-width:60rem;margin:0 auto;padding:1rem}'
  + 'ul.grid{list-style:none;padding:0;display:grid;grid-template-columns:repeat(auto-fill,minmax(14rem,1fr));gap:.5rem}'
  + 'ul.grid li{border:1px solid #ddd;padding:.5rem}.price{font-weight:bold}.stock{color:#555}';

function dollars(cents) {
  return `$${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;
}

function formatLive(kind, v) {
  if (kind === 'cents') return String(v.price_cents);
  if (kind === 'price') return dollars(v.price_cents);
  if (kind === 'stock') return String(v.stock);
  return v.stock === 0 ? 'out of stock' : `${v.stock} in stock`;
}

function doc(title, body) {
  return '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
    + '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
    + `<title>${esc(title)} · Shop</title>\n<style>${CSS}</style>\n</head>\n<body>\n`
    + '<header><a href="/shop/">Shop</a></header>\n<main>\n'
    + `${body}</main>\n</body>\n</html>\n`;
}

function liveAttrs(id, v) {
  return `class="product" data-id="${esc(id)}" data-price-cents="${v('cents', id)}" data-stock="${v('stock', id)}"`;
}

function productItem(p, v) {
  return `<li ${liveAttrs(p.id, v)}><a href="/shop/p/${esc(p.id)}">${esc(p.name)}</a>`
    + ` <span class="price">${v('price', p.id)}</span> <span class="stock">${v('stockText', p.id)}</span></li>\n`;
}

function productGrid(products, v) {
  return `<ul class="grid">\n${products.map((p) => productItem(p, v)).join('')}</ul>\n`;
}

function home(page, v) {
  const cats = page.categories.map((c) =>
    `<li><a href="/shop/c/${esc(c.id)}">${esc(c.name)}</a> (${c.count})</li>\n`).join('');
  return doc('Home', `<h1>Shop</h1>\n<h2>Categories</h2>\n<ul class="categories">\n${cats}</ul>\n`
    + `<h2>Featured</h2>\n${productGrid(page.featured, v)}`);
}

function plp(page, v) {
  const { category, products } = page;
  return doc(category.name, `<h1>${esc(category.name)}</h1>\n<p>${products.length} products</p>\n`
    + productGrid(products, v));
}

function ratingText(r) {
  if (r.count === 0) return 'No reviews yet';
  return `Rated ${Math.floor(r.average_tenths / 10)}.${r.average_tenths % 10} of 5 from ${r.count} review${r.count === 1 ? '' : 's'}`;
}

function reviewItem(r) {
  return `<li class="review" data-id="${esc(r.id)}"><strong>${esc(r.author)}</strong>`
    + ` (${r.rating}/5): ${esc(r.text)}</li>\n`;
}

function pdp(page, v) {
  const cat = page.category;
  return doc(page.name, `<article ${liveAttrs(page.id, v)}>\n<h1>${esc(page.name)}</h1>\n`
    + `<p>In <a href="/shop/c/${esc(cat.id)}">${esc(cat.name)}</a></p>\n`
    + `<p class="description">${esc(page.description)}</p>\n`
    + `<p><span class="price">${v('price', page.id)}</span> <span class="stock">${v('stockText', page.id)}</span></p>\n`
    + `<section class="reviews">\n<h2>Reviews</h2>\n<p class="rating">${ratingText(page.rating)}</p>\n`
    + `<ul>\n${page.reviews.map(reviewItem).join('')}</ul>\n</section>\n</article>\n`);
}

const RENDERERS = { home, plp, pdp };

function render(kind, page, v) {
  return RENDERERS[kind](page, v);
}

// Renders with the live values at hand (the naive gateway does this on every request).
function renderDirect(kind, page, live) {
  return render(kind, page, (k, id) => formatLive(k, live.get(id)));
}

module.exports = { render, renderDirect, formatLive };
