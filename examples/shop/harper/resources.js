// resources.js: the shop's pages (examples/shop/SPEC.md). One Resource, exported as
// `shop`, owns every path under /shop/:
//
//   GET /shop/api/home   GET /shop/api/c/{category id}   GET /shop/api/p/{product id}   JSON
//   GET /shop/           GET /shop/c/{category id}       GET /shop/p/{product id}       HTML
//
// Unknown ids and unknown paths get 404. The data lives in the tables of schema.graphql;
// the writes of the price and stock feed (PUT /Price/{id}, PUT /Inventory/{id}) go to those
// exported tables through Harper's REST and do not pass through this file. Pages read price
// and stock from their tables on every request, so a write shows on the next page. The one
// cached part is static: each category's product ids and names (CategoryListing, a caching
// table this file fills and invalidates when Product changes).
//
// Anonymous reads: with `loadAsInstance = false` a Resource class does its own access
// checks, and this one serves only public catalogue data, so it checks nothing; it reads
// the tables by id and query, not with the request's target, so the tables' role checks
// (which guard /Product/, /Price/, ... and every write) do not apply to these reads.

const { Category, Product, Price, Inventory, Review, CategoryListing } = tables;

const byId = (a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

// A search returns an async iterable; the pages need whole lists.
async function collect(results) {
	const list = [];
	for await (const item of results) list.push(item);
	return list;
}

// ---- the cached static part: category listings ----------------------------------------

// Computes a category's listing from Product when CategoryListing does not hold it.
class CategoryListingSource extends Resource {
	static loadAsInstance = false;

	async get(target) {
		const id = target.id;
		const products = await collect(Product.search({ conditions: [{ attribute: 'category', value: id }] }));
		return { id, products: products.sort(byId).map((product) => ({ id: product.id, name: product.name })) };
	}

	// Active invalidation: any change to Product (a new product, a rename, a move to another
	// category, a delete) drops every cached listing. Harper runs this on one thread and
	// applies the invalidations to the table for all threads. A burst of writes (the seed)
	// coalesces into one round of invalidations.
	subscribe() {
		const subscription = super.subscribe();
		let pending = false;
		const invalidateAll = async () => {
			pending = false;
			for await (const id of CategoryListing.search({ conditions: [], select: 'id' })) {
				subscription.send({ type: 'invalidate', id });
			}
		};
		(async () => {
			for await (const event of await Product.subscribe({ omitCurrent: true })) {
				if (!pending) {
					pending = true;
					setTimeout(() => invalidateAll().catch((error) => logger.error('shop: invalidating listings', error)), 0);
				}
			}
		})().catch((error) => logger.error('shop: Product subscription ended', error));
		return subscription;
	}
}
CategoryListing.sourcedFrom(CategoryListingSource);

// ---- pages ------------------------------------------------------------------------------

// The live part of a product, read from its own tables on every call.
async function live(id) {
	const [price, inventory] = await Promise.all([Price.get(id), Inventory.get(id)]);
	return {
		price_cents: price?.amount_cents ?? null,
		currency: price?.currency ?? null,
		stock: inventory?.quantity ?? null,
	};
}

async function summary({ id, name }) {
	const { price_cents, stock } = await live(id);
	return { id, name, price_cents, stock };
}

async function homePage() {
	const categories = (await collect(Category.search({ conditions: [] }))).sort(byId);
	const listings = await Promise.all(categories.map((category) => CategoryListing.get(category.id)));
	const firsts = listings.map((listing) => listing?.products[0]).filter(Boolean);
	return {
		categories: categories.map((category, i) => ({
			id: category.id,
			name: category.name,
			count: listings[i]?.products.length ?? 0,
		})),
		featured: await Promise.all(firsts.sort(byId).map(summary)),
	};
}

async function categoryPage(id) {
	const category = await Category.get(id);
	if (!category) return null;
	const listing = await CategoryListing.get(id);
	return {
		category: { id: category.id, name: category.name },
		products: await Promise.all((listing?.products ?? []).map(summary)),
	};
}

async function productPage(id) {
	const product = await Product.get(id);
	if (!product) return null;
	const [category, now, reviews] = await Promise.all([
		Category.get(product.category),
		live(id),
		collect(Review.search({ conditions: [{ attribute: 'product', value: id }] })),
	]);
	reviews.sort(byId);
	const count = reviews.length;
	const sum = reviews.reduce((total, review) => total + review.rating, 0);
	return {
		id: product.id,
		name: product.name,
		description: product.description,
		category: { id: product.category, name: category?.name ?? null },
		price_cents: now.price_cents,
		currency: now.currency,
		stock: now.stock,
		rating: { count, average_tenths: count ? Math.floor((sum * 10 + Math.floor(count / 2)) / count) : 0 },
		reviews: reviews.map((review) => ({
			id: review.id,
			rating: review.rating,
			author: review.author,
			text: review.text,
		})),
	};
}

// ---- HTML -----------------------------------------------------------------------------

const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const esc = (value) => String(value ?? '').replace(/[&<>"']/g, (ch) => ESCAPES[ch]);

const dollars = (cents) =>
	cents == null ? '' : `$${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;

const stockText = (quantity) => (quantity > 0 ? `${quantity} in stock` : 'out of stock');

// Every product on a page carries its live values in attributes.
const liveAttributes = (p) =>
	`class="product" data-id="${esc(p.id)}" data-price-cents="${esc(p.price_cents)}" data-stock="${esc(p.stock)}"`;

const productItem = (p) =>
	`<li ${liveAttributes(p)}><a href="/shop/p/${esc(p.id)}">${esc(p.name)}</a>` +
	` <span class="price">${dollars(p.price_cents)}</span> <span class="stock">${stockText(p.stock)}</span></li>`;

const document = (title, main) =>
	`<!doctype html>\n<html lang="en">\n<head><meta charset="utf-8"><title>${esc(title)} · Shop</title></head>\n` +
	`<body>\n<header><a href="/shop/">Shop</a></header>\n<main>\n${main}\n</main>\n</body>\n</html>\n`;

const homeHtml = (home) =>
	document(
		'Home',
		'<h1>Shop</h1>\n<h2>Categories</h2>\n<ul class="categories">' +
			home.categories
				.map((c) => `<li><a href="/shop/c/${esc(c.id)}">${esc(c.name)}</a> (${c.count})</li>`)
				.join('') +
			'</ul>\n<h2>Featured</h2>\n<ul class="products">' +
			home.featured.map(productItem).join('') +
			'</ul>'
	);

const categoryHtml = (plp) =>
	document(
		plp.category.name,
		`<h1>${esc(plp.category.name)}</h1>\n<ul class="products">` + plp.products.map(productItem).join('') + '</ul>'
	);

const productHtml = (pdp) =>
	document(
		pdp.name,
		`<article ${liveAttributes(pdp)}>\n<h1>${esc(pdp.name)}</h1>\n` +
			`<p class="category"><a href="/shop/c/${esc(pdp.category.id)}">${esc(pdp.category.name)}</a></p>\n` +
			`<p class="description">${esc(pdp.description)}</p>\n` +
			`<p><span class="price">${dollars(pdp.price_cents)}</span> <span class="stock">${stockText(pdp.stock)}</span></p>\n` +
			`<p class="rating">${pdp.rating.count} reviews, average ${Math.floor(pdp.rating.average_tenths / 10)}.${
				pdp.rating.average_tenths % 10
			}</p>\n<ul class="reviews">` +
			pdp.reviews
				.map((r) => `<li class="review" data-rating="${r.rating}"><b>${esc(r.author)}</b>: ${esc(r.text)}</li>`)
				.join('') +
			'</ul>\n</article>'
	);

// ---- routing --------------------------------------------------------------------------

// A page is a reader (its JSON) and a renderer (its HTML); `c` and `p` take an id.
const PAGES = {
	home: { read: homePage, html: homeHtml },
	c: { read: categoryPage, html: categoryHtml },
	p: { read: productPage, html: productHtml },
};

function notFound() {
	const error = new Error('Not found');
	error.statusCode = 404;
	return error;
}

const html = (status, body) => ({ status, headers: { 'Content-Type': 'text/html; charset=utf-8' }, body });

class Shop extends Resource {
	static loadAsInstance = false;

	// target.pathname is the path below /shop: "", "/", "/api/home", "/c/cat-3", ...
	async get(target) {
		let segments = target.pathname.split('/');
		if (segments[0] === '') segments = segments.slice(1);
		const api = segments[0] === 'api';
		if (api) segments = segments.slice(1);
		let page, id;
		const root = segments.length === 0 || (segments.length === 1 && segments[0] === '');
		if (api ? segments.length === 1 && segments[0] === 'home' : root) {
			page = PAGES.home;
		} else if (segments.length === 2 && (segments[0] === 'c' || segments[0] === 'p') && segments[1] !== '') {
			page = PAGES[segments[0]];
			try {
				id = decodeURIComponent(segments[1]);
			} catch {
				page = undefined;
			}
		}
		const data = page ? await page.read(id) : null;
		if (api) {
			if (data == null) throw notFound();
			return data; // serialized by Harper's content negotiation (JSON by default)
		}
		if (data == null) return html(404, document('Not found', '<h1>Not found</h1>'));
		return html(200, page.html(data));
	}
}

export { Shop as shop };
