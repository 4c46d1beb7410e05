// The frame every service shares: a Fastify app on 127.0.0.1, a pg pool on the service's
// own database, and a count of the requests it served (GET /_stats) so the internal
// calls per page can be measured.
'use strict';

const Fastify = require('fastify');
const { Pool } = require('pg');
const config = require('./config');

function countRequests(app) {
  let requests = 0;
  app.addHook('onRequest', async (req) => {
    if (req.url !== '/_stats') requests++;
  });
  app.get('/_stats', async () => ({ requests }));
}

// Parses "a,b,c" from ?ids=; an empty or missing list is an empty array.
function idList(query) {
  return String(query.ids || '').split(',').filter(Boolean);
}

// Starts service `name`: `routes(app, db)` adds its endpoints.
async function start(name, routes) {
  const db = new Pool({ ...config.database(name), max: Number(process.env.PG_POOL_MAX || 10) });
  const app = Fastify({ logger: false });
  countRequests(app);
  routes(app, db);
  await app.listen({ host: '127.0.0.1', port: config.port(name) });
  const stop = async () => { await app.close(); await db.end(); process.exit(0); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return app;
}

module.exports = { start, idList };
