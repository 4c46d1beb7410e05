#!/usr/bin/env bash
# check.sh PORT: checks the Harper shop on 127.0.0.1:PORT against examples/shop/SPEC.md:
# known values of the seeded data on every page (JSON and HTML), 404s, anonymous reads,
# the JSON of every page against the page built here from the SPEC data (seed.js computes
# the data), and that a write to Price and to Inventory shows on the next page; it puts
# the original values back at the end. Writes use Basic auth with the admin user
# (SHOP_HARPER_USER / SHOP_HARPER_PASS, default admin / shop-admin). Exit status 1 on a failure.
set -euo pipefail
PORT="${1:?usage: check.sh PORT}"
export SHOP_CHECK_BASE="http://127.0.0.1:$PORT"
export SHOP_CHECK_AUTH="${SHOP_HARPER_USER:-admin}:${SHOP_HARPER_PASS:-shop-admin}"
export SHOP_CHECK_SEED="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/seed.js"

exec node --input-type=module - <<'EOF'
import { isDeepStrictEqual } from 'node:util';
const { shopData } = await import(process.env.SHOP_CHECK_SEED);
const base = process.env.SHOP_CHECK_BASE;
const auth = 'Basic ' + Buffer.from(process.env.SHOP_CHECK_AUTH).toString('base64');
let failed = 0;
let passed = 0;

function check(what, ok, got) {
	if (ok) passed++;
	else failed++;
	console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}${ok ? '' : `  (got ${JSON.stringify(got)})`}`);
}

async function get(path) {
	const response = await fetch(base + path);
	return { status: response.status, type: response.headers.get('content-type') ?? '', text: await response.text() };
}

async function json(path) {
	const response = await get(path);
	if (response.status !== 200) throw new Error(`GET ${path}: ${response.status} ${response.text.slice(0, 200)}`);
	return JSON.parse(response.text);
}

async function put(path, body, withAuth = true) {
	const headers = { 'Content-Type': 'application/json' };
	if (withAuth) headers.Authorization = auth;
	const response = await fetch(base + path, { method: 'PUT', headers, body: JSON.stringify(body) });
	await response.text();
	return response.status;
}

// The attributes of the one element with class="product" for a product id.
function productAttributes(html, id) {
	const tags = html.match(/<[a-z]+ [^>]*class="product"[^>]*>/g) ?? [];
	const tag = tags.find((t) => t.includes(`data-id="${id}"`));
	if (!tag) return null;
	const attr = (name) => tag.match(new RegExp(`${name}="([^"]*)"`))?.[1];
	return { count: tags.length, price: attr('data-price-cents'), stock: attr('data-stock') };
}

// ---- PDP
const pdp = await json('/shop/api/p/p-0042');
check('PDP p-0042 price_cents 33991', pdp.price_cents === 33991, pdp.price_cents);
check('PDP p-0042 currency USD', pdp.currency === 'USD', pdp.currency);
check('PDP p-0042 stock 44', pdp.stock === 44, pdp.stock);
check('PDP p-0042 rating count 2', pdp.rating?.count === 2, pdp.rating);
check('PDP p-0042 rating average_tenths 20', pdp.rating?.average_tenths === 20, pdp.rating);
check('PDP p-0042 first review author user61', pdp.reviews?.[0]?.author === 'user61', pdp.reviews?.[0]);
check(
	'PDP p-0042 reviews r-0042-0, r-0042-1 (by id)',
	pdp.reviews?.map((r) => r.id).join() === 'r-0042-0,r-0042-1',
	pdp.reviews?.map((r) => r.id)
);
check('PDP p-0042 category cat-2 Office', pdp.category?.id === 'cat-2' && pdp.category?.name === 'Office', pdp.category);
check('PDP p-0042 name "Deluxe Desk 42"', pdp.name === 'Deluxe Desk 42', pdp.name);
check(
	'PDP p-0042 description',
	pdp.description === 'The Deluxe Desk 42 is part of our Office range.',
	pdp.description
);
const noReviews = await json('/shop/api/p/p-0000');
check(
	'PDP p-0000 without reviews: count 0, average_tenths 0',
	noReviews.rating?.count === 0 && noReviews.rating?.average_tenths === 0 && noReviews.reviews?.length === 0,
	noReviews.rating
);

// ---- PLP
const plp = await json('/shop/api/c/cat-3');
check('PLP cat-3 category Outdoor', plp.category?.id === 'cat-3' && plp.category?.name === 'Outdoor', plp.category);
check('PLP cat-3 has 125 products', plp.products?.length === 125, plp.products?.length);
const first = plp.products?.[0];
check(
	'PLP cat-3 first p-0003 price 23956 stock 111',
	first?.id === 'p-0003' && first?.price_cents === 23956 && first?.stock === 111,
	first
);
const ids = plp.products?.map((p) => p.id) ?? [];
check('PLP cat-3 products by id', ids.every((id, i) => i === 0 || ids[i - 1] < id), ids.slice(0, 5));

// ---- home
const home = await json('/shop/api/home');
check('home has 8 categories', home.categories?.length === 8, home.categories?.length);
check(
	'home categories cat-0..cat-7, each count 125',
	home.categories?.every((c, i) => c.id === `cat-${i}` && c.count === 125),
	home.categories
);
check('home categories[2] name Office', home.categories?.[2]?.name === 'Office', home.categories?.[2]);
check(
	'home featured p-0000..p-0007',
	home.featured?.map((p) => p.id).join() === ['0', '1', '2', '3', '4', '5', '6', '7'].map((i) => `p-000${i}`).join(),
	home.featured?.map((p) => p.id)
);
check(
	'home featured p-0000 price 199 stock 0',
	home.featured?.[0]?.price_cents === 199 && home.featured?.[0]?.stock === 0,
	home.featured?.[0]
);

// ---- HTML
const pdpHtml = await get('/shop/p/p-0042');
const attrs = productAttributes(pdpHtml.text, 'p-0042');
check('HTML PDP 200 text/html', pdpHtml.status === 200 && pdpHtml.type.startsWith('text/html'), [pdpHtml.status, pdpHtml.type]);
check('HTML PDP is a complete document', /^<!doctype html>/i.test(pdpHtml.text) && pdpHtml.text.includes('</html>'), pdpHtml.text.slice(0, 40));
check('HTML PDP one class="product"', attrs?.count === 1, attrs);
check('HTML PDP data-price-cents="33991"', attrs?.price === '33991', attrs);
check('HTML PDP data-stock="44"', attrs?.stock === '44', attrs);
check('HTML PDP shows $339.91', pdpHtml.text.includes('$339.91'), null);
const plpHtml = await get('/shop/c/cat-3');
const plpAttrs = productAttributes(plpHtml.text, 'p-0003');
check('HTML PLP 125 products, p-0003 23956/111', plpAttrs?.count === 125 && plpAttrs.price === '23956' && plpAttrs.stock === '111', plpAttrs);
const homeHtml = await get('/shop/');
const homeAttrs = productAttributes(homeHtml.text, 'p-0000');
check('HTML home 8 featured products, p-0000 out of stock', homeAttrs?.count === 8 && homeAttrs.stock === '0' && homeHtml.text.includes('out of stock'), homeAttrs);

// ---- 404
for (const path of ['/shop/api/p/p-9999', '/shop/api/c/cat-9', '/shop/p/p-9999', '/shop/c/cat-9']) {
	const response = await get(path);
	check(`GET ${path} 404`, response.status === 404, response.status);
}

// ---- every page's JSON against the pages built here from the SPEC's data
const data = shopData();
const names = Object.fromEntries(data.Category.map((c) => [c.id, c.name]));
const price = Object.fromEntries(data.Price.map((p) => [p.id, p.amount_cents]));
const stock = Object.fromEntries(data.Inventory.map((p) => [p.id, p.quantity]));
const row = (p) => ({ id: p.id, name: p.name, price_cents: price[p.id], stock: stock[p.id] });
const inCategory = (c) => data.Product.filter((p) => p.category === c); // already by id
const expectHome = {
	categories: data.Category.map((c) => ({ id: c.id, name: c.name, count: inCategory(c.id).length })),
	featured: data.Category.map((c) => row(inCategory(c.id)[0])),
};
check('home JSON equals the SPEC page', isDeepStrictEqual(await json('/shop/api/home'), expectHome), null);
let plpDiffs = [];
for (const c of data.Category) {
	const expected = { category: { id: c.id, name: c.name }, products: inCategory(c.id).map(row) };
	if (!isDeepStrictEqual(await json(`/shop/api/c/${c.id}`), expected)) plpDiffs.push(c.id);
}
check('8 PLP JSONs equal the SPEC pages', plpDiffs.length === 0, plpDiffs);
let pdpDiffs = [];
for (const p of data.Product) {
	const reviews = data.Review.filter((r) => r.product === p.id);
	const sum = reviews.reduce((total, r) => total + r.rating, 0);
	const count = reviews.length;
	const expected = {
		id: p.id,
		name: p.name,
		description: p.description,
		category: { id: p.category, name: names[p.category] },
		price_cents: price[p.id],
		currency: 'USD',
		stock: stock[p.id],
		rating: { count, average_tenths: count ? Math.trunc((sum * 10 + Math.trunc(count / 2)) / count) : 0 },
		reviews: reviews.map((r) => ({ id: r.id, rating: r.rating, author: r.author, text: r.text })),
	};
	if (!isDeepStrictEqual(await json(`/shop/api/p/${p.id}`), expected)) pdpDiffs.push(p.id);
}
check('1000 PDP JSONs equal the SPEC pages', pdpDiffs.length === 0, pdpDiffs.slice(0, 10));

// ---- writes: anonymous refused, admin's write shows on the next page
check('anonymous PUT /Price/p-0042 refused', [401, 403].includes(await put('/Price/p-0042', { id: 'p-0042', amount_cents: 1, currency: 'USD' }, false)), null);
const newPrice = 12345;
const putStatus = await put('/Price/p-0042', { id: 'p-0042', amount_cents: newPrice, currency: 'USD' });
check('PUT /Price/p-0042 accepted', putStatus >= 200 && putStatus < 300, putStatus);
const afterJson = await json('/shop/api/p/p-0042');
check(`PDP JSON shows the new price ${newPrice}`, afterJson.price_cents === newPrice, afterJson.price_cents);
const afterHtml = productAttributes((await get('/shop/p/p-0042')).text, 'p-0042');
check(`PDP HTML shows data-price-cents="${newPrice}"`, afterHtml?.price === String(newPrice), afterHtml);
const stockStatus = await put('/Inventory/p-0042', { id: 'p-0042', quantity: 0 });
check('PUT /Inventory/p-0042 accepted', stockStatus >= 200 && stockStatus < 300, stockStatus);
const afterStock = await json('/shop/api/p/p-0042');
check('PDP JSON shows the new stock 0', afterStock.stock === 0, afterStock.stock);
const plpAfter = (await json('/shop/api/c/cat-2')).products.find((p) => p.id === 'p-0042');
check('PLP cat-2 shows p-0042 at the new price and stock', plpAfter?.price_cents === newPrice && plpAfter?.stock === 0, plpAfter);

// put the SPEC values back
const restored = [
	await put('/Price/p-0042', { id: 'p-0042', amount_cents: 33991, currency: 'USD' }),
	await put('/Inventory/p-0042', { id: 'p-0042', quantity: 44 }),
];
const back = await json('/shop/api/p/p-0042');
check('SPEC values restored (33991, 44)', restored.every((s) => s < 300) && back.price_cents === 33991 && back.stock === 44, back);

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
EOF
