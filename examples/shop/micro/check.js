// The self-check: reads the shop's pages from a running gateway and compares them with
// SPEC values (a few written out by hand, and every PLP and PDP against lib/spec.js), then
// checks that a price and a stock write show on the next PDP and PLP, JSON and HTML, and
// puts the SPEC values back. Usage: node check.js PORT   (exit 1 when a check fails)
'use strict';

const assert = require('node:assert/strict');
const spec = require('./lib/spec');

const base = `http://127.0.0.1:${process.argv[2] || 3000}`;
let passed = 0;
let failed = 0;

async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok    ${name}`);
  } catch (err) {
    failed++;
    console.log(`FAIL  ${name}: ${err.message.split('\n').slice(0, 6).join(' ')}`);
  }
}

async function get(path) {
  const res = await fetch(base + path);
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
}

async function json(path) {
  const res = await get(path);
  assert.equal(res.status, 200, `${path} answered ${res.status}`);
  return JSON.parse(res.text);
}

async function html(path) {
  const res = await get(path);
  assert.equal(res.status, 200, `${path} answered ${res.status}`);
  assert.match(res.type, /^text\/html/);
  assert.match(res.text, /^<!doctype html>/i);
  return res.text;
}

async function put(path, body) {
  const res = await fetch(base + path, {
    method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  assert.ok([200, 201, 204].includes(res.status), `PUT ${path} answered ${res.status}`);
}

// The live attributes of every class="product" element, in page order.
function productElements(page) {
  const re = /<[a-z]+ class="product" data-id="([^"]+)" data-price-cents="(\d+)" data-stock="(\d+)"/g;
  const count = (page.match(/class="product"/g) || []).length;
  const found = [...page.matchAll(re)].map((m) => ({ id: m[1], price_cents: Number(m[2]), stock: Number(m[3]) }));
  assert.equal(found.length, count, 'every class="product" element has the three attributes');
  return found;
}

// ---- values written out from the SPEC ----

async function handWritten() {
  await check('PDP p-0042 JSON', async () => {
    const p = await json('/shop/api/p/p-0042');
    assert.equal(p.name, 'Deluxe Desk 42');
    assert.equal(p.description, 'The Deluxe Desk 42 is part of our Office range.');
    assert.deepEqual(p.category, { id: 'cat-2', name: 'Office' });
    assert.equal(p.price_cents, 33991);
    assert.equal(p.currency, 'USD');
    assert.equal(p.stock, 44);
    assert.deepEqual(p.rating, { count: 2, average_tenths: 20 });
    assert.deepEqual(p.reviews.map((r) => r.id), ['r-0042-0', 'r-0042-1']);
    assert.deepEqual(p.reviews[0], { id: 'r-0042-0', rating: 3, author: 'user61', text: 'Review 0 of Deluxe Desk 42.' });
  });
  await check('PDP p-0042 HTML', async () => {
    const page = await html('/shop/p/p-0042');
    assert.deepEqual(productElements(page), [{ id: 'p-0042', price_cents: 33991, stock: 44 }]);
    assert.ok(page.includes('$339.91'), 'shows $339.91');
  });
  await check('PDP p-0000: no reviews, out of stock', async () => {
    const p = await json('/shop/api/p/p-0000');
    assert.deepEqual([p.price_cents, p.stock, p.reviews.length], [199, 0, 0]);
    assert.deepEqual(p.rating, { count: 0, average_tenths: 0 });
    assert.ok((await html('/shop/p/p-0000')).includes('out of stock'), 'HTML says out of stock');
  });
  await check('PLP cat-3 JSON', async () => {
    const c = await json('/shop/api/c/cat-3');
    assert.deepEqual(c.category, { id: 'cat-3', name: 'Outdoor' });
    assert.equal(c.products.length, 125);
    assert.deepEqual(c.products[0], { id: 'p-0003', name: 'Eco Lamp 3', price_cents: 23956, stock: 111 });
  });
  await check('PLP cat-3 HTML', async () => {
    const items = productElements(await html('/shop/c/cat-3'));
    assert.equal(items.length, 125);
    assert.deepEqual(items[0], { id: 'p-0003', price_cents: 23956, stock: 111 });
  });
  await check('home JSON', async () => {
    const h = await json('/shop/api/home');
    assert.equal(h.categories.length, 8);
    for (const c of h.categories) assert.equal(c.count, 125, `${c.id} count`);
    assert.deepEqual(h.categories.map((c) => c.name),
      ['Kitchen', 'Garden', 'Office', 'Outdoor', 'Toys', 'Books', 'Audio', 'Lighting']);
    assert.deepEqual(h.featured.map((p) => p.id), ['p-0000', 'p-0001', 'p-0002', 'p-0003', 'p-0004', 'p-0005', 'p-0006', 'p-0007']);
    assert.deepEqual(h.featured[0], { id: 'p-0000', name: 'Classic Lamp 0', price_cents: 199, stock: 0 });
  });
  await check('home HTML', async () => {
    const items = productElements(await html('/shop/'));
    assert.deepEqual(items.map((p) => p.id), ['p-0000', 'p-0001', 'p-0002', 'p-0003', 'p-0004', 'p-0005', 'p-0006', 'p-0007']);
  });
  await check('unknown category and product: 404', async () => {
    for (const path of ['/shop/api/c/cat-8', '/shop/api/p/p-1000', '/shop/c/nope', '/shop/p/nope']) {
      assert.equal((await get(path)).status, 404, path);
    }
  });
}

// ---- every PLP and PDP against the formulas ----

function expected() {
  const d = spec.all();
  const price = new Map(d.prices.map((p) => [p.id, p]));
  const stock = new Map(d.inventory.map((s) => [s.id, s.quantity]));
  const catName = new Map(d.categories.map((c) => [c.id, c.name]));
  const item = (p) => ({ id: p.id, name: p.name, price_cents: price.get(p.id).amount_cents, stock: stock.get(p.id) });
  const plp = (c) => ({ category: c, products: d.products.filter((p) => p.category === c.id).map(item) });
  const pdp = (p) => {
    const reviews = d.reviews.filter((r) => r.product === p.id).map(({ product, ...r }) => r);
    const sum = reviews.reduce((s, r) => s + r.rating, 0);
    const n = reviews.length;
    return {
      id: p.id, name: p.name, description: p.description, category: { id: p.category, name: catName.get(p.category) },
      price_cents: price.get(p.id).amount_cents, currency: 'USD', stock: stock.get(p.id),
      rating: { count: n, average_tenths: n === 0 ? 0 : Math.floor((sum * 10 + Math.floor(n / 2)) / n) }, reviews,
    };
  };
  return { categories: d.categories, products: d.products, plp, pdp };
}

async function sweep() {
  const e = expected();
  await check('all 8 PLPs equal the SPEC', async () => {
    for (const c of e.categories) assert.deepEqual(await json(`/shop/api/c/${c.id}`), e.plp(c), c.id);
  });
  await check('all 1000 PDPs equal the SPEC', async () => {
    for (let i = 0; i < e.products.length; i += 50) {
      const batch = e.products.slice(i, i + 50);
      const got = await Promise.all(batch.map((p) => json(`/shop/api/p/${p.id}`)));
      batch.forEach((p, k) => assert.deepEqual(got[k], e.pdp(p), p.id));
    }
  });
}

// ---- writes show on the next request ----

async function setAndSee(priceCents, quantity) {
  await put('/Price/p-0042', { id: 'p-0042', amount_cents: priceCents, currency: 'USD' });
  await put('/Inventory/p-0042', { id: 'p-0042', quantity });
  const p = await json('/shop/api/p/p-0042');
  assert.deepEqual([p.price_cents, p.stock], [priceCents, quantity], 'PDP JSON');
  const page = await html('/shop/p/p-0042');
  assert.deepEqual(productElements(page), [{ id: 'p-0042', price_cents: priceCents, stock: quantity }], 'PDP HTML');
  const dollars = `$${Math.floor(priceCents / 100)}.${String(priceCents % 100).padStart(2, '0')}`;
  assert.ok(page.includes(dollars), `PDP HTML shows ${dollars}`);
  const listed = (await json('/shop/api/c/cat-2')).products.find((x) => x.id === 'p-0042');
  assert.deepEqual([listed.price_cents, listed.stock], [priceCents, quantity], 'PLP cat-2 JSON');
  const item = productElements(await html('/shop/c/cat-2')).find((x) => x.id === 'p-0042');
  assert.deepEqual([item.price_cents, item.stock], [priceCents, quantity], 'PLP cat-2 HTML');
}

async function writes() {
  await check('PUT /Price and /Inventory p-0042 show on the next PDP and PLP', () => setAndSee(12345, 0));
  await check('PUT puts the SPEC values back (33991, 44)', () => setAndSee(33991, 44));
}

async function main() {
  await handWritten();
  await sweep();
  await writes();
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

main().catch((err) => { console.error(err); process.exit(1); });
