// The pricing service: owns the Price records (amount in cents and currency per product).
// Serves the live price of one product or of many, and takes the price feed's writes.
'use strict';

const { start } = require('../lib/service');
const { recordRoutes } = require('../lib/record');

const schema = [
  'CREATE TABLE prices (id text PRIMARY KEY, amount_cents integer NOT NULL, currency text NOT NULL)',
];
const fairIndexes = []; // every lookup is by primary key

function check(body) {
  if (!Number.isInteger(body.amount_cents) || body.amount_cents < 0) return 'amount_cents must be a whole number >= 0';
  if (typeof body.currency !== 'string' || body.currency === '') return 'currency must be a string';
  return null;
}

function routes(app, db) {
  recordRoutes(app, db, { path: '/prices', table: 'prices', fields: ['amount_cents', 'currency'], check });
}

if (require.main === module) start('pricing', routes);

module.exports = { schema, fairIndexes, routes };
