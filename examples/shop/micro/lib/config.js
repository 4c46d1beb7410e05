// Settings read from the environment, shared by the gateway, the services and seed.js.
// run.sh sets them; the defaults suit a manual run on one machine.
'use strict';

const SERVICES = ['catalog', 'inventory', 'pricing', 'reviews'];
const DEFAULT_PORTS = { gateway: 3000, catalog: 3001, inventory: 3002, pricing: 3003, reviews: 3004 };

function mode() {
  const m = process.env.MODE || 'naive';
  if (m !== 'naive' && m !== 'fair') throw new Error(`MODE must be naive or fair, not ${m}`);
  return m;
}

// The port a process listens on: GATEWAY_PORT, CATALOG_PORT, ...
function port(name) {
  const v = process.env[`${name.toUpperCase()}_PORT`];
  return v ? Number(v) : DEFAULT_PORTS[name];
}

function serviceUrl(name) {
  return `http://127.0.0.1:${port(name)}`;
}

// Each service owns one database in the shared cluster, named after it.
function database(name) {
  return {
    host: process.env.PGHOST || '127.0.0.1',
    port: Number(process.env.PGPORT || 5432),
    user: process.env.PGUSER || 'shop',
    database: `${process.env.PGDB_PREFIX || 'shop_'}${name}`,
  };
}

module.exports = { SERVICES, mode, port, serviceUrl, database };
