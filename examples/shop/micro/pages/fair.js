// How an experienced team would assemble a page: the static part (names, descriptions,
// reviews, and its rendered HTML) comes from a TTL cache filled by a few catalog and
// reviews calls; price and stock are read live on every request with one batched call
// to pricing and one to inventory, over keep-alive connections.
// load(kind, id) answers { page, live, template } or null for an unknown id.
'use strict';

const { getJson } = require('../lib/http-client');
const { TtlCache } = require('../lib/cache');
const { pdpStatic, liveIds } = require('./shape');
const { compile } = require('./template');

function createFair(client, ttlMs) {
  const get = (service, path) => getJson(client, service, path);
  const cache = new TtlCache(ttlMs);

  async function liveBatch(ids) {
    const q = `?ids=${ids.map(encodeURIComponent).join(',')}`;
    const [prices, stocks] = await Promise.all([get('pricing', `/prices${q}`), get('inventory', `/inventory${q}`)]);
    const price = new Map(prices.map((p) => [p.id, p]));
    const stock = new Map(stocks.map((s) => [s.id, s.quantity]));
    return new Map(ids.map((id) => {
      const p = price.get(id);
      if (!p || !stock.has(id)) throw new Error(`no live price or stock for ${id}`);
      return [id, { price_cents: p.amount_cents, currency: p.currency, stock: stock.get(id) }];
    }));
  }

  // The static page of `kind`, straight from the services (null when unknown).
  async function fetchStatic(kind, id) {
    const key = encodeURIComponent(id);
    if (kind === 'home') {
      const [categories, featured] = await Promise.all([
        get('catalog', '/categories'), get('catalog', '/products/featured')]);
      return { categories, featured };
    }
    if (kind === 'plp') return get('catalog', `/categories/${key}/products`);
    const [product, reviews] = await Promise.all([
      get('catalog', `/products/${key}`), get('reviews', `/reviews?product=${key}`)]);
    return product && pdpStatic(product, reviews);
  }

  // The cached static page with its HTML template, or null when unknown.
  function cachedStatic(kind, id) {
    return cache.get(`${kind}:${id}`, async () => {
      const page = await fetchStatic(kind, id);
      return page && { page, ids: liveIds(kind, page), template: compile(kind, page) };
    });
  }

  async function load(kind, id) {
    const cached = await cachedStatic(kind, id);
    if (!cached) return null;
    return { page: cached.page, live: await liveBatch(cached.ids), template: cached.template };
  }

  return { load };
}

module.exports = { createFair };
