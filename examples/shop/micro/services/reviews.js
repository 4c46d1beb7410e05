// The reviews service: owns the Review records and answers the reviews of one product.
'use strict';

const { start } = require('../lib/service');

const schema = [
  `CREATE TABLE reviews (id text PRIMARY KEY, product text NOT NULL, rating integer NOT NULL,
     author text NOT NULL, text text NOT NULL)`,
];
// The naive design finds a product's reviews by scanning the table.
const fairIndexes = ['CREATE INDEX reviews_product ON reviews (product)'];

const BY_PRODUCT = 'SELECT id, rating, author, text FROM reviews WHERE product = $1 ORDER BY id';

function routes(app, db) {
  app.get('/reviews', async (req) => (await db.query(BY_PRODUCT, [String(req.query.product || '')])).rows);
}

if (require.main === module) start('reviews', routes);

module.exports = { schema, fairIndexes, routes };
