// The catalog service: owns the categories and the products (names, descriptions) in
// its database. Read-only at run time; seed.js fills it.
'use strict';

const { start } = require('../lib/service');

const schema = [
  'CREATE TABLE categories (id text PRIMARY KEY, name text NOT NULL)',
  `CREATE TABLE products (id text PRIMARY KEY, category text NOT NULL,
     name text NOT NULL, description text NOT NULL)`,
];
// The fair design indexes the column it filters on; the naive one scans.
const fairIndexes = ['CREATE INDEX products_category ON products (category)'];

const CATEGORIES_WITH_COUNTS = `
  SELECT c.id, c.name, count(p.id)::int AS count
  FROM categories c LEFT JOIN products p ON p.category = c.id
  GROUP BY c.id, c.name ORDER BY c.id`;
// The first product of each category, by id.
const FEATURED = `
  SELECT id, name FROM (
    SELECT DISTINCT ON (category) id, name FROM products ORDER BY category, id
  ) f ORDER BY id`;
const PRODUCT = `
  SELECT p.id, p.name, p.description, c.id AS category_id, c.name AS category_name
  FROM products p JOIN categories c ON c.id = p.category WHERE p.id = $1`;

async function categoryProducts(db, id) {
  const cat = await db.query('SELECT id, name FROM categories WHERE id = $1', [id]);
  if (cat.rows.length === 0) return null;
  const products = await db.query(
    'SELECT id, name FROM products WHERE category = $1 ORDER BY id', [id]);
  return { category: cat.rows[0], products: products.rows };
}

function routes(app, db) {
  app.get('/categories', async () => (await db.query(CATEGORIES_WITH_COUNTS)).rows);

  app.get('/products/featured', async () => (await db.query(FEATURED)).rows);

  app.get('/categories/:id/products', async (req, reply) => {
    const page = await categoryProducts(db, req.params.id);
    return page || reply.code(404).send({ error: 'unknown category' });
  });

  app.get('/products/:id', async (req, reply) => {
    const { rows } = await db.query(PRODUCT, [req.params.id]);
    if (rows.length === 0) return reply.code(404).send({ error: 'unknown product' });
    const p = rows[0];
    return {
      id: p.id, name: p.name, description: p.description,
      category: { id: p.category_id, name: p.category_name },
    };
  });
}

if (require.main === module) start('catalog', routes);

module.exports = { schema, fairIndexes, routes };
