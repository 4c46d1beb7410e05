// How the published design assembles a page: catalog calls for the static part, then one
// pricing call and one inventory call per product shown, each on a new connection.
// Nothing is cached. load(kind, id) answers { page, live } or null for an unknown id.
'use strict';

const { getJson } = require('../lib/http-client');
const { pdpStatic } = require('./shape');

function createNaive(client) {
  const get = (service, path) => getJson(client, service, path);

  async function liveOne(id) {
    const [price, stock] = await Promise.all([
      get('pricing', `/prices/${encodeURIComponent(id)}`),
      get('inventory', `/inventory/${encodeURIComponent(id)}`),
    ]);
    if (!price || !stock) throw new Error(`no live price or stock for ${id}`);
    return [id, { price_cents: price.amount_cents, currency: price.currency, stock: stock.quantity }];
  }

  async function liveEach(products) {
    return new Map(await Promise.all(products.map((p) => liveOne(p.id))));
  }

  async function home() {
    const [categories, featured] = await Promise.all([
      get('catalog', '/categories'), get('catalog', '/products/featured')]);
    return { page: { categories, featured }, live: await liveEach(featured) };
  }

  async function plp(id) {
    const page = await get('catalog', `/categories/${encodeURIComponent(id)}/products`);
    return page && { page, live: await liveEach(page.products) };
  }

  // All four calls at once; an unknown product has no price either, so the live values
  // only matter (and only fail the page) when the catalog knows the product.
  async function pdp(id) {
    const key = encodeURIComponent(id);
    const live = liveEach([{ id }]);
    live.catch(() => {});
    const [product, reviews] = await Promise.all([
      get('catalog', `/products/${key}`), get('reviews', `/reviews?product=${key}`)]);
    return product && { page: pdpStatic(product, reviews), live: await live };
  }

  const loaders = { home, plp, pdp };
  return { load: (kind, id) => loaders[kind](id) };
}

module.exports = { createNaive };
