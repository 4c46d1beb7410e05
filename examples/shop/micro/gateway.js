// The gateway: the only process a browser or the benchmark talks to. It serves the shop's
// pages as JSON and HTML, assembled from the four services in the design MODE names
// (naive or fair), and forwards the price and stock feed's writes to the owning service.
'use strict';

const Fastify = require('fastify');
const config = require('./lib/config');
const { createClient } = require('./lib/http-client');
const { createNaive } = require('./pages/naive');
const { createFair } = require('./pages/fair');
const { toJson } = require('./pages/shape');
const { renderDirect } = require('./pages/html');
const { fill } = require('./pages/template');

const PAGES = [
  { kind: 'home', json: '/shop/api/home', html: ['/shop/', '/shop'] },
  { kind: 'plp', json: '/shop/api/c/:id', html: ['/shop/c/:id'] },
  { kind: 'pdp', json: '/shop/api/p/:id', html: ['/shop/p/:id'] },
];

const NOT_FOUND_HTML = '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
  + '<title>Not found · Shop</title></head><body><h1>Not found</h1>'
  + '<p><a href="/shop/">Back to the shop</a></p></body></html>\n';

function html(kind, loaded) {
  return loaded.template ? fill(loaded.template, loaded.live) : renderDirect(kind, loaded.page, loaded.live);
}

function pageRoutes(app, design) {
  for (const { kind, json, html: htmlPaths } of PAGES) {
    app.get(json, async (req, reply) => {
      const loaded = await design.load(kind, req.params.id);
      if (!loaded) return reply.code(404).send({ error: 'not found' });
      return toJson(kind, loaded.page, loaded.live);
    });
    for (const path of htmlPaths) {
      app.get(path, async (req, reply) => {
        const loaded = await design.load(kind, req.params.id);
        reply.type('text/html; charset=utf-8');
        return loaded ? html(kind, loaded) : reply.code(404).send(NOT_FOUND_HTML);
      });
    }
  }
}

// PUT /Price/{id} and PUT /Inventory/{id} go to the service that owns the record.
function writeRoutes(app, client) {
  const owners = { Price: ['pricing', '/prices'], Inventory: ['inventory', '/inventory'] };
  for (const [table, [service, path]] of Object.entries(owners)) {
    app.put(`/${table}/:id`, async (req, reply) => {
      const res = await client.request(service, 'PUT', `${path}/${encodeURIComponent(req.params.id)}`, req.body);
      return reply.code(res.status).send(res.data === null ? undefined : res.data);
    });
  }
}

async function main() {
  const mode = config.mode();
  const client = createClient(mode);
  const ttlMs = Number(process.env.PAGE_CACHE_TTL_MS || 60000);
  const design = mode === 'fair' ? createFair(client, ttlMs) : createNaive(client);
  const app = Fastify({ logger: false });
  pageRoutes(app, design);
  writeRoutes(app, client);
  await app.listen({ host: '127.0.0.1', port: config.port('gateway') });
  const stop = async () => { await app.close(); process.exit(0); };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((err) => { console.error(err); process.exit(1); });
