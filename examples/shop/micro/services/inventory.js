// The inventory service: owns the Inventory records (quantity in stock per product).
// Serves the live stock of one product or of many, and takes the stock feed's writes.
'use strict';

const { start } = require('../lib/service');
const { recordRoutes } = require('../lib/record');

const schema = ['CREATE TABLE inventory (id text PRIMARY KEY, quantity integer NOT NULL)'];
const fairIndexes = []; // every lookup is by primary key

function check(body) {
  if (!Number.isInteger(body.quantity) || body.quantity < 0) return 'quantity must be a whole number >= 0';
  return null;
}

function routes(app, db) {
  recordRoutes(app, db, { path: '/inventory', table: 'inventory', fields: ['quantity'], check });
}

if (require.main === module) start('inventory', routes);

module.exports = { schema, fairIndexes, routes };
