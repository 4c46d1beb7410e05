// The pages' JSON shapes (SPEC "JSON shapes"), shared by both designs.
// A page is its static part (names, descriptions, reviews) plus live values per product:
// `live` is a Map from product id to { price_cents, currency, stock }.
'use strict';

// Mean rating times 10, rounded half up, in integers; 0 without reviews.
function rating(reviews) {
  const count = reviews.length;
  if (count === 0) return { count: 0, average_tenths: 0 };
  const sum = reviews.reduce((s, r) => s + r.rating, 0);
  return { count, average_tenths: Math.floor((sum * 10 + Math.floor(count / 2)) / count) };
}

// The static part of a PDP, from the catalog's product and the reviews service's list.
function pdpStatic(product, reviews) {
  return { ...product, rating: rating(reviews), reviews };
}

// The product ids whose live values a page shows.
function liveIds(kind, page) {
  if (kind === 'home') return page.featured.map((p) => p.id);
  if (kind === 'plp') return page.products.map((p) => p.id);
  return [page.id];
}

function withLive(p, live) {
  const v = live.get(p.id);
  return { id: p.id, name: p.name, price_cents: v.price_cents, stock: v.stock };
}

function toJson(kind, page, live) {
  if (kind === 'home') {
    return { categories: page.categories, featured: page.featured.map((p) => withLive(p, live)) };
  }
  if (kind === 'plp') {
    return { category: page.category, products: page.products.map((p) => withLive(p, live)) };
  }
  const v = live.get(page.id);
  return {
    id: page.id, name: page.name, description: page.description, category: page.category,
    price_cents: v.price_cents, currency: v.currency, stock: v.stock,
    rating: page.rating, reviews: page.reviews,
  };
}

module.exports = { pdpStatic, liveIds, toJson };
