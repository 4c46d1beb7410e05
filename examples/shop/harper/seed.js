#!/usr/bin/env node
// seed.js: writes the shop's data (examples/shop/SPEC.md, integer formulas only) into a
// running Harper through its operations API: one batched `upsert` per table, as the admin
// user. Upserts make it idempotent: running it again resets every price and stock to the
// SPEC values. It waits for the tables (created by schema.graphql when the component loads).
//
// Usage: node seed.js
//   SHOP_HARPER_OPS    operations API: http://host:port, or unix:/path/to/socket
//                      (default unix:$SHOP_HARPER_DIR/root/operations-server)
//   SHOP_HARPER_USER   admin user (default admin)
//   SHOP_HARPER_PASS   admin password (default shop-admin)

import http from 'node:http';

const CATEGORY_NAMES = ['Kitchen', 'Garden', 'Office', 'Outdoor', 'Toys', 'Books', 'Audio', 'Lighting'];
const ADJECTIVES = ['Classic', 'Compact', 'Deluxe', 'Eco', 'Fresh', 'Grand', 'Handy', 'Modern', 'Rustic', 'Smart'];
const NOUNS = [
	'Lamp', 'Chair', 'Kettle', 'Rake', 'Desk', 'Tent', 'Kite', 'Novel', 'Speaker', 'Bulb', 'Mug', 'Hose', 'Stapler',
	'Lantern', 'Puzzle', 'Atlas', 'Radio', 'Candle', 'Pan', 'Shovel', 'Folder', 'Stove', 'Robot', 'Diary', 'Headset',
];
const CATEGORIES = 8;
const PRODUCTS = 1000;

const pad4 = (i) => String(i).padStart(4, '0');

export function shopData() {
	const data = { Category: [], Product: [], Price: [], Inventory: [], Review: [] };
	for (let c = 0; c < CATEGORIES; c++) data.Category.push({ id: `cat-${c}`, name: CATEGORY_NAMES[c] });
	for (let i = 0; i < PRODUCTS; i++) {
		const id = `p-${pad4(i)}`;
		const c = i % CATEGORIES;
		const name = `${ADJECTIVES[i % 10]} ${NOUNS[Math.trunc(i / 10) % 25]} ${i}`;
		data.Product.push({
			id,
			name,
			description: `The ${name} is part of our ${CATEGORY_NAMES[c]} range.`,
			category: `cat-${c}`,
		});
		data.Price.push({ id, amount_cents: 199 + ((i * 7919) % 49801), currency: 'USD' });
		data.Inventory.push({ id, quantity: (i * 37) % 151 });
		for (let j = 0; j < i % 5; j++) {
			data.Review.push({
				id: `r-${pad4(i)}-${j}`,
				product: id,
				rating: 1 + ((i + 3 * j) % 5),
				author: `user${(i * 13 + j) % 97}`,
				text: `Review ${j} of ${name}.`,
			});
		}
	}
	return data;
}

const dir = process.env.SHOP_HARPER_DIR || '/tmp/shop-harper';
const ops = process.env.SHOP_HARPER_OPS || `unix:${dir}/root/operations-server`;
const auth =
	'Basic ' +
	Buffer.from(`${process.env.SHOP_HARPER_USER || 'admin'}:${process.env.SHOP_HARPER_PASS || 'shop-admin'}`).toString(
		'base64'
	);

function operation(body) {
	const payload = JSON.stringify(body);
	const target = ops.startsWith('unix:') ? { socketPath: ops.slice(5) } : (() => {
		const url = new URL(ops);
		return { host: url.hostname, port: url.port };
	})();
	return new Promise((resolve, reject) => {
		const request = http.request(
			{
				...target,
				path: '/',
				method: 'POST',
				headers: { 'Content-Type': 'application/json', Authorization: auth, 'Content-Length': Buffer.byteLength(payload) },
			},
			(response) => {
				let text = '';
				response.setEncoding('utf8');
				response.on('data', (chunk) => (text += chunk));
				response.on('end', () => {
					let json;
					try {
						json = JSON.parse(text);
					} catch {
						json = text;
					}
					if (response.statusCode >= 300) {
						reject(new Error(`${body.operation} ${body.table ?? ''}: HTTP ${response.statusCode} ${text.slice(0, 300)}`));
					} else resolve(json);
				});
			}
		);
		request.on('error', reject);
		request.end(payload);
	});
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitForTables(tables, seconds = 60) {
	for (let waited = 0; ; waited++) {
		try {
			const described = await operation({ operation: 'describe_database', database: 'data' });
			if (tables.every((table) => described?.[table])) return;
		} catch (error) {
			if (waited >= seconds) throw error;
		}
		if (waited >= seconds) throw new Error(`tables ${tables.join(', ')} not there after ${seconds}s`);
		await sleep(1000);
	}
}

async function main() {
	const data = shopData();
	const tables = Object.keys(data);
	await waitForTables(tables);
	for (const table of tables) {
		const result = await operation({ operation: 'upsert', database: 'data', table, records: data[table] });
		const written = result?.upserted_hashes?.length ?? '?';
		console.log(`seeded ${table}: ${written} of ${data[table].length}`);
		if (written !== data[table].length) throw new Error(`${table}: ${JSON.stringify(result).slice(0, 300)}`);
	}
}

if (import.meta.url === `file://${process.argv[1]}`) {
	main().catch((error) => {
		console.error(`seed: ${error.message}`);
		process.exit(1);
	});
}
