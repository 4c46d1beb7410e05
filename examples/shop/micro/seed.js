// Creates each service's database and tables in the cluster, adds the fair design's
// indexes when MODE=fair, and writes the SPEC data into each service's own tables.
// Usage: MODE=naive|fair PGHOST=... PGPORT=... node seed.js
'use strict';

const { Client } = require('pg');
const config = require('./lib/config');
const spec = require('./lib/spec');

const SERVICES = {
  catalog: require('./services/catalog'),
  inventory: require('./services/inventory'),
  pricing: require('./services/pricing'),
  reviews: require('./services/reviews'),
};

// The rows each service's tables get: table -> [columns, rows].
function rowsFor(name, data) {
  const tables = {
    catalog: {
      categories: [['id', 'name'], data.categories],
      products: [['id', 'category', 'name', 'description'], data.products],
    },
    inventory: { inventory: [['id', 'quantity'], data.inventory] },
    pricing: { prices: [['id', 'amount_cents', 'currency'], data.prices] },
    reviews: { reviews: [['id', 'product', 'rating', 'author', 'text'], data.reviews] },
  };
  return tables[name];
}

async function withClient(settings, fn) {
  const client = new Client(settings);
  await client.connect();
  try { return await fn(client); } finally { await client.end(); }
}

async function createDatabase(name) {
  const { database } = config.database(name);
  await withClient({ ...config.database(name), database: 'postgres' }, async (c) => {
    await c.query(`DROP DATABASE IF EXISTS ${database}`);
    await c.query(`CREATE DATABASE ${database}`);
  });
}

// One INSERT per table: each column travels as a text array, unnest() turns the arrays
// into rows, and each value is cast to its column's type.
async function insertAll(client, table, columns, rows) {
  const params = columns.map((_, i) => `$${i + 1}::text[]`);
  const arrays = columns.map((col) => rows.map((r) => String(r[col])));
  const types = await columnTypes(client, table, columns);
  const select = columns.map((col, i) => `u.${col}::${types[i]}`).join(', ');
  await client.query(
    `INSERT INTO ${table} (${columns.join(', ')})
     SELECT ${select} FROM unnest(${params.join(', ')}) AS u(${columns.join(', ')})`, arrays);
}

async function columnTypes(client, table, columns) {
  const { rows } = await client.query(
    'SELECT column_name, data_type FROM information_schema.columns WHERE table_name = $1', [table]);
  const types = Object.fromEntries(rows.map((r) => [r.column_name, r.data_type]));
  return columns.map((c) => types[c]);
}

async function seedService(name, data, mode) {
  await createDatabase(name);
  const svc = SERVICES[name];
  await withClient(config.database(name), async (client) => {
    for (const ddl of svc.schema) await client.query(ddl);
    if (mode === 'fair') for (const ddl of svc.fairIndexes) await client.query(ddl);
    for (const [table, [columns, rows]] of Object.entries(rowsFor(name, data))) {
      await insertAll(client, table, columns, rows);
      await client.query(`ANALYZE ${table}`);
    }
  });
}

async function main() {
  const mode = config.mode();
  const data = spec.all();
  for (const name of config.SERVICES) await seedService(name, data, mode);
  console.log(`seeded (${mode}): ${data.categories.length} categories, ${data.products.length} products, ` +
    `${data.prices.length} prices, ${data.inventory.length} stock records, ${data.reviews.length} reviews`);
}

main().catch((err) => { console.error(err); process.exit(1); });
